"""Single-user and multi-user endpoint configs are two kinds, as Globus Compute's
UserEndpointConfig and ManagerEndpointConfig: ``config.load`` picks the kind by the folder (the
user config template beside config.yaml makes it multi-user), each kind holds only its own keys,
and every config.yaml faas wrote before the split (which held every key at its default) still
loads. A key of the other kind set to anything but its default is an error that names the file,
the key, the kinds and what to do."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from faas.cli.main import main
from faas.endpoint import config as ep_config
from faas.endpoint.multiuser import files, templates
from faas.exceptions import ConfigError

GLOBUS_FILES = Path(__file__).parent / "multiuser" / "globus"

#: what `faas endpoint configure NAME` wrote before the kinds were split: every key at its default
OLD_SINGLE_USER = """\
# faas endpoint configuration; keys are documented in the README
display_name: old
store: file:///srv/faas-store
queue: local
max_receives: 5
visibility_timeout: 60.0
strategy_period: 1.0
stop_grace: 30.0
stall_timeout: 120.0
signing_keys_file: signing.key
signing_keys: []
allowed_serializers:
- dill
debug: false
engine:
  type: GlobusComputeEngine
  max_workers_per_node: 3
  provider:
    type: slurm
    partition: cpu
    max_blocks: 4
identity_mapping_path: identity_mapping.json
denied_users: []
max_user_endpoints: 64
max_blocks_per_user: 1
over_limit: wait
user_endpoint_idle_timeout: 300.0
audit_log_path: audit.log
"""


def old_multi_user(provider: str = "slurm") -> str:
    """What `faas endpoint configure NAME --multi-user --provider P` wrote before the split: its
    own keys, and a default engine for P (max_workers_per_node: the cores of the host that wrote
    it, here another host's, so the file loads on a host whatever its cores)."""
    return f"""\
# faas endpoint configuration; keys are documented in the README
display_name: campus
store: file:///shared/faas
queue: local
max_receives: 5
visibility_timeout: 10
strategy_period: 1.0
stop_grace: 5
stall_timeout: 120.0
signing_keys: []
allowed_serializers:
- dill
debug: false
engine:
  type: GlobusComputeEngine
  max_workers_per_node: {(os.cpu_count() or 1) + 7}
  working_dir: tasks_working_dir
  run_in_sandbox: false
  prefetch: -1
  max_idle_time: 120.0
  container_type: none
  container_cmd_options: ''
  provider:
    type: {provider}
    init_blocks: 1
    min_blocks: 0
    max_blocks: 1
    nodes_per_block: 1
    parallelism: 1.0
    walltime_margin: 60.0
    scheduler_options: ''
    worker_init: ''
    cmd_timeout: 30.0
    launcher:
      type: single_node
      overrides: ''
identity_mapping_path: identity_mapping.json
allowed_users:
- alice
denied_users: []
max_user_endpoints: 8
max_blocks_per_user: 2
over_limit: refuse
user_endpoint_idle_timeout: 120
audit_log_path: /var/log/faas-audit.log
"""


def endpoint(home: Path, name: str, text: str, multi_user: bool = False) -> Path:
    """config.yaml of endpoint ``name`` holding ``text`` (with the multi-user files beside it)."""
    d = ep_config.endpoint_dir(name, home)
    d.mkdir(parents=True, exist_ok=True)
    if multi_user:
        files.write_defaults(d)
    (d / "config.yaml").write_text(text)
    return d / "config.yaml"


def own_keys(model: type[ep_config.BaseEndpointConfig]) -> set[str]:
    return set(model.model_fields) - set(ep_config.BaseEndpointConfig.model_fields)


def test_the_kinds_share_a_base_and_nothing_else():
    user, manager = own_keys(ep_config.UserEndpointConfig), own_keys(ep_config.ManagerEndpointConfig)
    assert "engine" in user and "engine" not in ep_config.ManagerEndpointConfig.model_fields
    assert {"identity_mapping_path", "allowed_users", "denied_users", "max_user_endpoints",
            "max_user_endpoints_per_user", "max_blocks_per_user", "over_limit", "user_endpoint_idle_timeout",
            "audit_log_path"} == manager
    assert not user & manager
    # what the router and the admin commands read beside its own keys
    assert {"store", "queue", "max_receives", "visibility_timeout", "stop_grace", "stall_timeout",
            "allowed_functions", "display_name", "debug"} <= set(ep_config.BaseEndpointConfig.model_fields)
    # a rendered user endpoint config drops the root's keys: the same set
    assert templates.MULTI_USER_KEYS == manager


def test_old_single_user_file_loads_and_a_rewrite_is_clean(faas_home):
    path = endpoint(faas_home, "old", OLD_SINGLE_USER)
    cfg = ep_config.load(path)
    assert isinstance(cfg, ep_config.UserEndpointConfig)
    assert cfg.engine.provider.type == "slurm" and cfg.engine.provider.partition == "cpu"
    r = CliRunner().invoke(main, ["endpoint", "configure", "old", "--max-blocks", "6"])
    assert r.exit_code == 0, r.output
    data = yaml.safe_load(path.read_text())
    assert data["engine"]["provider"]["max_blocks"] == 6 and data["engine"]["provider"]["partition"] == "cpu"
    assert not set(data) & own_keys(ep_config.ManagerEndpointConfig), data
    assert set(data) <= set(ep_config.UserEndpointConfig.model_fields)


@pytest.mark.parametrize("provider", ["slurm", "local"])
def test_old_multi_user_file_loads_and_a_rewrite_drops_the_engine(faas_home, provider):
    path = endpoint(faas_home, "campus", old_multi_user(provider), multi_user=True)
    cfg = ep_config.load(path)
    assert isinstance(cfg, ep_config.ManagerEndpointConfig)
    assert (cfg.allowed_users, cfg.max_user_endpoints, cfg.max_blocks_per_user, cfg.over_limit) == \
        (["alice"], 8, 2, "refuse")
    assert cfg.audit_log_path == "/var/log/faas-audit.log" and cfg.stop_grace == 5
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--max-receives", "7"])
    assert r.exit_code == 0, r.output
    data = yaml.safe_load(path.read_text())
    assert data["max_receives"] == 7 and data["allowed_users"] == ["alice"]
    assert not set(data) & own_keys(ep_config.UserEndpointConfig), data
    assert set(data) <= set(ep_config.ManagerEndpointConfig.model_fields)


def test_configure_writes_only_the_keys_of_its_kind(faas_home, tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["endpoint", "configure", "one"]).exit_code == 0
    r = runner.invoke(main, ["endpoint", "configure", "many", "--multi-user", "--provider", "pbs",
                             "--store", (tmp_path / "shared").as_uri()])
    assert r.exit_code == 0, r.output
    one = yaml.safe_load((ep_config.endpoint_dir("one", faas_home) / "config.yaml").read_text())
    many_dir = ep_config.endpoint_dir("many", faas_home)
    many = yaml.safe_load((many_dir / "config.yaml").read_text())
    assert "engine" in one and not set(one) & own_keys(ep_config.ManagerEndpointConfig)
    assert "engine" not in many and not set(many) & own_keys(ep_config.UserEndpointConfig), many
    assert set(many) & own_keys(ep_config.ManagerEndpointConfig) == own_keys(ep_config.ManagerEndpointConfig) \
        - {"allowed_users"}   # None: not written
    # the provider asked for is in the template (config.yaml has no engine to hold it)
    assert "    type: pbs\n" in (many_dir / files.TEMPLATE).read_text()
    assert isinstance(ep_config.load(many_dir / "config.yaml"), ep_config.ManagerEndpointConfig)


def test_a_multi_user_key_in_a_single_user_config_is_named(faas_home):
    path = endpoint(faas_home, "solo", OLD_SINGLE_USER.replace("max_user_endpoints: 64", "max_user_endpoints: 3")
                    .replace("denied_users: []", "denied_users: [bob]"))
    with pytest.raises(ConfigError) as e:
        ep_config.load(path)
    msg = str(e.value)
    assert str(path) in msg and "2 problem(s)" in msg
    assert "max_user_endpoints: a multi-user endpoint's key, in the config.yaml of a single-user endpoint" in msg
    assert "denied_users: a multi-user endpoint's key" in msg and "(got ['bob'])" in msg
    assert "faas endpoint configure NAME --multi-user" in msg and files.TEMPLATE in msg
    # Globus's spelling is named as written
    path = endpoint(faas_home, "globus-solo", "identity_mapping_config_path: /etc/idmap.json\n")
    with pytest.raises(ConfigError, match=r"identity_mapping_config_path: a multi-user endpoint's key"):
        ep_config.load(path)


def test_a_single_user_key_in_a_multi_user_config_is_named(faas_home):
    text = old_multi_user().replace("    max_blocks: 1\n", "    max_blocks: 5\n") \
        .replace("debug: false\n", "debug: false\nendpoint_setup: module load x\n")
    path = endpoint(faas_home, "campus", text, multi_user=True)
    with pytest.raises(ConfigError) as e:
        ep_config.load(path)
    msg = str(e.value)
    assert str(path) in msg and "2 problem(s)" in msg
    assert "engine: a single-user endpoint's key, in the config.yaml of a multi-user endpoint" in msg
    assert "endpoint_setup: a single-user endpoint's key" in msg
    assert "move endpoint_setup there" in msg and files.TEMPLATE in msg
    # the admin commands and start say the same
    r = CliRunner().invoke(main, ["endpoint", "check-mapping", "campus", "local:alice"])
    assert r.exit_code == 2 and "engine: a single-user endpoint's key" in r.output, r.output


def test_globus_multi_user_endpoint_folder_loads_as_a_manager(faas_home):
    """As Globus's `configure` writes one (its default_config.yaml with no engine, and the
    manager's keys), with Globus's own template, schema and mapping beside it."""
    d = ep_config.endpoint_dir("gc-mep", faas_home)
    d.mkdir(parents=True)
    for name in ("user_config_template.yaml.j2", "user_config_schema.json", "example_identity_mapping_config.json"):
        shutil.copy(GLOBUS_FILES / name, d / name)
    (d / "config.yaml").write_text(
        "display_name: Debug queue, 1-block max\n"
        f"identity_mapping_config_path: {d / 'example_identity_mapping_config.json'}\n"
        "public: true\nhigh_assurance: false\n"
        f"audit_log_path: {d / 'audit.log'}\n"
        "pam:\n  enable: false\n")
    cfg = ep_config.load(d / "config.yaml")
    assert isinstance(cfg, ep_config.ManagerEndpointConfig)
    assert cfg.identity_mapping_path == str(d / "example_identity_mapping_config.json")
    assert cfg.audit_log_path == str(d / "audit.log")
    assert {n.split(" (")[0] for n in cfg.no_effect_here} == {"public", "high_assurance", "pam"}
    # Globus's empty manager config.yaml
    (d / "config.yaml").write_text("# The generated config file is currently empty\n")
    assert isinstance(ep_config.load(d / "config.yaml"), ep_config.ManagerEndpointConfig)


def test_globus_config_without_the_template_is_single_user(faas_home):
    """No template beside it: a single-user endpoint, with its engine or the default one
    (Globus's rule would call an engine-less file a manager; without the template there is
    nothing to run user endpoints from)."""
    cfg = ep_config.load(endpoint(faas_home, "plain", "display_name: null\n"))
    assert isinstance(cfg, ep_config.UserEndpointConfig) and cfg.engine.provider.type == "local"
    cfg = ep_config.load(endpoint(faas_home, "uep", "engine:\n  type: GlobusComputeEngine\n  provider:\n"
                                                    "    type: SlurmProvider\n    partition: debug\n"))
    assert isinstance(cfg, ep_config.UserEndpointConfig) and cfg.engine.provider.partition == "debug"


def test_the_single_user_view_of_a_multi_user_config(faas_home):
    """A multi-user folder started by someone other than root runs single-user: its shared
    keys, the default engine, and a note that says so (endpoint.log, `faas endpoint status`)."""
    cfg = ep_config.load(endpoint(faas_home, "campus", old_multi_user(), multi_user=True))
    single = ep_config.as_single_user(cfg)
    assert isinstance(single, ep_config.UserEndpointConfig)
    assert (single.store, single.stop_grace, single.visibility_timeout) == ("file:///shared/faas", 5, 10)
    assert single.engine.provider.type == "local"
    assert any(n.startswith("engine: the default") and files.TEMPLATE in n for n in single.chosen_here)
    user = ep_config.load(endpoint(faas_home, "old", OLD_SINGLE_USER))
    assert ep_config.as_single_user(user) is user


def test_configure_refuses_engine_options_for_a_multi_user_endpoint(faas_home, tmp_path):
    store = (tmp_path / "shared").as_uri()
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--multi-user", "--store", store,
                                  "--max-blocks", "3", "--pbs-queue", "q"])
    assert r.exit_code == 2 and "--max-blocks, --pbs-queue: engine options" in r.output, r.output
    assert files.TEMPLATE in r.output and not ep_config.endpoint_dir("campus", faas_home).exists()
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--multi-user", "--store", store,
                                  "--signing-key", "new"])
    assert r.exit_code == 2 and "takes no shared signing key" in r.output, r.output
    # once multi-user, the folder decides: no --multi-user needed to be refused
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--multi-user", "--store", store])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--walltime", "1:00:00"])
    assert r.exit_code == 2 and "--walltime: engine options" in r.output, r.output


def test_a_single_user_endpoint_made_multi_user(faas_home, tmp_path):
    """`configure NAME --multi-user` on a single-user endpoint: a default engine goes (the
    template holds the user endpoints'); one set by hand must be moved into the template."""
    store = (tmp_path / "shared").as_uri()
    assert CliRunner().invoke(main, ["endpoint", "configure", "a", "--store", store]).exit_code == 0
    r = CliRunner().invoke(main, ["endpoint", "configure", "a", "--multi-user"])
    assert r.exit_code == 0, r.output
    d = ep_config.endpoint_dir("a", faas_home)
    data = yaml.safe_load((d / "config.yaml").read_text())
    assert "engine" not in data and "signing_keys_file" not in data
    assert isinstance(ep_config.load(d / "config.yaml"), ep_config.ManagerEndpointConfig)
    assert CliRunner().invoke(main, ["endpoint", "configure", "b", "--store", store, "--provider", "slurm",
                                     "--partition", "cpu"]).exit_code == 0
    r = CliRunner().invoke(main, ["endpoint", "configure", "b", "--multi-user"])
    assert r.exit_code == 2 and "engine: a single-user endpoint's key" in r.output, r.output
    assert not (ep_config.endpoint_dir("b", faas_home) / files.TEMPLATE).exists()


def test_admin_commands_need_a_multi_user_endpoint(faas_home):
    assert CliRunner().invoke(main, ["endpoint", "configure", "solo"]).exit_code == 0
    for args in (["check-mapping", "solo", "local:alice"], ["usage", "solo"]):
        r = CliRunner().invoke(main, ["endpoint", *args])
        assert r.exit_code == 2 and "endpoint 'solo' is single-user" in r.output, (args, r.output)
