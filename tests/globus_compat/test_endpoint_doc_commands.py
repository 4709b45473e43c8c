"""The ``globus-compute-endpoint`` (``gce``) command lines of Globus's endpoint docs (globus-compute
at commit 845796fc: docs/quickstart.rst, docs/endpoints/endpoints.rst, multi_user.rst,
templates.rst), each run as the docs give it with ``globus-compute-endpoint``/``gce`` changed to
``faas endpoint`` (docs/from-globus.md), as a user runs it (a subprocess).

Command lines not run here, and why:

- ``pipx install globus-compute-endpoint`` and the other installation lines: faas installs with pip.
- ``GLOBUS_COMPUTE_CLIENT_ID=... GLOBUS_COMPUTE_CLIENT_SECRET=... gce start``: Globus Auth client
  credentials; the start itself runs (``test_start_detach_list_stop``).
- ``globus-compute-diagnostic``, ``globus-connect-server oidc show``, ``systemctl ...``, ``ps``,
  ``ip addr``, ``ping``: other programs than the endpoint's command.
- ``kill -SIGQUIT <manager_pid>``: tests/test_endpoint_lifecycle.py stops the daemon by signal.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from faas.endpoint import config as ep_config


def gce(home: Path, *args: str, cwd: Path | None = None, input: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """``faas endpoint ARGS`` (Globus's ``globus-compute-endpoint ARGS``) with FAAS_HOME=home."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("FAAS_", "GLOBUS_COMPUTE_"))}
    full_env.update(env or {}, FAAS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "faas.cli.main", "endpoint", *args], cwd=cwd,
                          env=full_env, input=input, capture_output=True, text=True, timeout=120)


def config_of(home: Path, name: str) -> dict:
    return yaml.safe_load((home / "endpoints" / name / "config.yaml").read_text())


# -- quickstart.rst:163, endpoints.rst:42, :297, :1018 -----------------------------------------

def test_start_detach_list_stop(tmp_path):
    """quickstart.rst:163 ``globus-compute-endpoint configure`` (no name: Globus's ``default``),
    endpoints.rst:1018 ``start my_endpoint --detach`` and ``list``, endpoints.rst:297 ``stop``;
    with no name each acts on ``default``, as Globus's do."""
    home = tmp_path / "home"
    r = gce(home, "configure")
    assert r.returncode == 0, r.stderr
    assert "Created profile for endpoint named <default>" in r.stdout
    assert (home / "endpoints" / "default" / "config.yaml").is_file()
    r = gce(home, "start", "--detach")
    assert r.returncode == 0, r.stderr
    try:
        r = gce(home, "list")
        assert r.returncode == 0 and "default" in r.stdout and "running" in r.stdout, r.stdout + r.stderr
    finally:
        r = gce(home, "stop")
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr


# -- endpoints.rst:65 ------------------------------------------------------------------------

def test_configure_prints_what_globus_prints(tmp_path):
    home = tmp_path / "home"
    r = gce(home, "configure", "my_endpoint")
    assert r.returncode == 0, r.stderr
    path = home / "endpoints" / "my_endpoint" / "config.yaml"
    assert "Created profile for endpoint named <my_endpoint>" in r.stdout
    assert f"Configuration file: {path}" in r.stdout
    assert "Use the `start` subcommand to run it:" in r.stdout


# -- endpoints.rst:399-465: configure from pre-defined files ----------------------------------

SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
          "properties": {"endpoint_setup": {"type": "string"}}, "additionalProperties": False}


def test_configure_from_custom_files(tmp_path):
    """``gce configure --manager-config custom_manager_config.yaml --template-config
    custom_user_template.yaml.j2 --schema-config custom_user_schema.json my_custom_endpoint``:
    the files are copied in place of the defaults (the template makes the endpoint one whose
    user endpoints render it: here, a multi-user endpoint), and the display name is the file's."""
    home, src = tmp_path / "home", tmp_path / "files"
    src.mkdir()
    (src / "custom_manager_config.yaml").write_text("display_name: Custom Config Endpoint\n")
    (src / "custom_user_template.yaml.j2").write_text("endpoint_setup: {{ endpoint_setup|default() }}\n")
    (src / "custom_user_schema.json").write_text(json.dumps(SCHEMA, indent=3) + "\n")
    shared = tmp_path / "shared-store"
    r = gce(home, "configure", "--manager-config", "custom_manager_config.yaml",
            "--template-config", "custom_user_template.yaml.j2",
            "--schema-config", "custom_user_schema.json",
            "--store", shared.as_uri(),   # a multi-user endpoint's store is one its users reach
            "my_custom_endpoint", cwd=src)
    assert r.returncode == 0, r.stderr
    d = home / "endpoints" / "my_custom_endpoint"
    assert (d / "user_config_template.yaml.j2").read_text() == "endpoint_setup: {{ endpoint_setup|default() }}\n"
    assert json.loads((d / "user_config_schema.json").read_text()) == SCHEMA
    cfg = ep_config.load(d / "config.yaml")
    assert isinstance(cfg, ep_config.ManagerEndpointConfig)
    assert cfg.display_name == "Custom Config Endpoint"
    # the schema copied is the one user_endpoint_config is checked against
    r = gce(home, "render-user-config", "my_custom_endpoint", "--vars", "-",
            input=json.dumps({"endpoint_setup": "echo hi"}))
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["endpoint_setup"] == "echo hi"
    r = gce(home, "render-user-config", "my_custom_endpoint", "--vars", "-", input=json.dumps({"other": 1}))
    assert r.returncode != 0 and "other" in r.stderr


def test_configure_template_files_without_multi_user_say_what_to_do(tmp_path):
    """A template, schema, environment or identity mapping file is a multi-user endpoint's here
    (faas tells the kind by the folder): given for a plain endpoint, the error says so."""
    home = tmp_path / "home"
    tmpl = tmp_path / "t.yaml.j2"
    tmpl.write_text("engine: {type: GlobusComputeEngine}\n")
    r = gce(home, "configure", "--template-config", str(tmpl), "--multi-user", "false", "plain")
    assert r.returncode == 2 and "--template-config" in r.stderr and "--multi-user" in r.stderr, r.stderr
    assert not (home / "endpoints" / "plain").exists()


def test_configure_endpoint_config_is_globus_deprecated_manager_config(tmp_path):
    """``--endpoint-config`` (deprecated in Globus for ``--manager-config``) acts as it, with
    Globus's DeprecationWarning text."""
    home = tmp_path / "home"
    conf = tmp_path / "old.yaml"
    conf.write_text("display_name: From An Old Script\n")
    r = gce(home, "configure", "--endpoint-config", str(conf), "old")
    assert r.returncode == 0, r.stderr
    assert "--endpoint-config is deprecated; use --manager-config instead." in r.stderr
    assert config_of(home, "old")["display_name"] == "From An Old Script"


# -- endpoints.rst:1116, :1157, multi_user.rst:144: Globus's keys given on the command line ----

def test_configure_auth_policy(tmp_path):
    """``globus-compute-endpoint configure my_endpoint --auth-policy 2340174a-...``: written as
    ``authentication_policy``, as Globus writes it, and listed as having no effect here."""
    home = tmp_path / "home"
    policy = "2340174a-1a0e-46d8-a958-7c3ddf2c834a"
    r = gce(home, "configure", "my_endpoint", "--auth-policy", policy)
    assert r.returncode == 0, r.stderr
    assert config_of(home, "my_endpoint")["authentication_policy"] == policy
    r = gce(home, "status", "my_endpoint")
    assert any(n.startswith("authentication_policy") for n in json.loads(r.stdout)["no_effect_here"]), r.stdout


def test_configure_display_name_contact_email_subscription_high_assurance(tmp_path):
    """endpoints.rst:1157's keys and multi_user.rst:144's ``--contact-email``, given as options."""
    home = tmp_path / "home"
    sub = "2c94f030-d346-11e9-939f-02ff96a5aa76"
    r = gce(home, "configure", "--display-name", "Example High-Assurance Compute Endpoint",
            "--contact-email", "admin@example.edu", "--subscription-id", sub, "--high-assurance",
            "--auth-policy", "2340174a-1a0e-46d8-a958-7c3ddf2c834a", "ha_ep")
    assert r.returncode == 0, r.stderr
    data = config_of(home, "ha_ep")
    assert (data["display_name"], data["email"], data["subscription_id"], data["high_assurance"]) == \
        ("Example High-Assurance Compute Endpoint", "admin@example.edu", sub, True)
    r = gce(home, "configure", "--high-assurance", "ha_no_policy")
    assert r.returncode == 2 and "High Assurance(HA) endpoints require both a HA policy and a HA " \
        "subscription id" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [
    # endpoints.rst:1179 (HA policy made at configure time)
    ["--multi-user", "--display-name", "Example High-Assurance Compute Endpoint", "--high-assurance",
     "--subscription-id", "00000000-1111-2222-3333-444444444444",
     "--auth-policy-project-id", "11111111-2222-3333-4444-555555555555",
     "--allowed-domains", "example.edu,*.example.edu", "--auth-timeout", "1800",
     "example_ha_compute_endpoint"],
    # multi_user.rst:738
    ["--allowed-domains", "<OIDC-domain>", "my_oidc_compute_endpoint"],
])
def test_configure_making_a_globus_auth_policy_says_why_not(tmp_path, args):
    home = tmp_path / "home"
    r = gce(home, "configure", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Globus Auth" in r.stderr and "policy" in r.stderr, r.stderr
    assert not (home / "endpoints" / args[-1]).exists()


def test_multi_user_takes_globus_true_false(tmp_path):
    """Globus's ``--multi-user`` takes ``true``/``false``; faas's bare flag still works."""
    home = tmp_path / "home"
    shared = (tmp_path / "shared").as_uri()
    r = gce(home, "configure", "--multi-user", "false", "single")
    assert r.returncode == 0, r.stderr
    assert not ep_config.is_multi_user(home / "endpoints" / "single")
    for name, flag in (("mu1", ["--multi-user", "true"]), ("mu2", ["--multi-user"]), ("mu3", ["--multi-user=yes"])):
        r = gce(home, "configure", *flag, "--store", shared, "--contact-email", "admin@example.edu", name)
        assert r.returncode == 0, r.stderr
        assert ep_config.is_multi_user(home / "endpoints" / name)
        assert config_of(home, name)["email"] == "admin@example.edu"
    # the flag before the name (faas's own order) stays a flag; a store beside FAAS_HOME whose name
    # begins with it (home-shared) is not inside it
    r = gce(home, "configure", "--multi-user", "mu4", "--store", (tmp_path / "home-shared").as_uri())
    assert r.returncode == 0, r.stderr
    assert ep_config.is_multi_user(home / "endpoints" / "mu4")


# -- multi_user.rst:870 (common options), endpoints.rst:1204 ----------------------------------

def test_common_options(tmp_path):
    """``-h``, ``--debug``, ``--log-to-console`` and ``--no-color`` on every command, as Globus's
    ``common_options``; ``configure --help`` as endpoints.rst:1204 runs it."""
    home = tmp_path / "home"
    for args in (["configure", "--help"], ["configure", "-h"], ["start", "-h"], ["stop", "-h"]):
        r = gce(home, *args)
        assert r.returncode == 0 and "Usage:" in r.stdout, r.stderr
    r = gce(home, "configure", "dbg", "--debug", "--no-color")
    assert r.returncode == 0, r.stderr
    assert config_of(home, "dbg").get("debug") is not True   # --debug is the command's, not a key
    log = home / "endpoints" / "dbg" / "endpoint.log"
    for flags, debug_lines in ((["--log-to-console"], False), (["--debug"], True)):
        r = gce(home, "start", "dbg", *flags, "--detach")
        assert r.returncode == 0, r.stderr
        assert gce(home, "stop", "dbg").returncode == 0
        # the config dump Globus logs at DEBUG (``debug: true``), for this run only
        assert ("DEBUG faas.daemon Begin Compute endpoint configuration" in log.read_text()) is debug_lines
        assert config_of(home, "dbg").get("debug") is not True


# -- version, login, logout, whoami, enable-on-boot ------------------------------------------

def test_version(tmp_path):
    from faas import __version__
    r = gce(tmp_path / "home", "version")
    assert r.returncode == 0 and r.stdout.strip().endswith(__version__), r.stdout + r.stderr


@pytest.mark.parametrize("cmd", ["login", "logout", "whoami"])
def test_globus_auth_commands_say_why_not(tmp_path, cmd):
    r = gce(tmp_path / "home", cmd)
    assert r.returncode == 2 and "Globus Auth" in r.stderr and "docs/from-globus.md" in r.stderr, r.stderr


# -- templates.rst: render-user-config with Globus's options ---------------------------------

TEMPLATE = """\
engine:
   type: GlobusComputeEngine
   provider:
      type: LocalProvider
      worker_init: {{ worker_init }}
"""


@pytest.fixture
def mu_endpoint(tmp_path):
    home = tmp_path / "home"
    r = gce(home, "configure", "my_endpoint", "--multi-user", "--store", (tmp_path / "shared").as_uri())
    assert r.returncode == 0, r.stderr
    (home / "endpoints" / "my_endpoint" / "user_config_template.yaml.j2").write_text(TEMPLATE)
    (tmp_path / "user_options.json").write_text('{ "worker_init": "echo \'hello world\'" }\n')
    return home


def test_render_user_config_e_o(mu_endpoint, tmp_path):
    """templates.rst:32: ``render-user-config -e my_endpoint -o user_options.json``."""
    r = gce(mu_endpoint, "render-user-config", "-e", "my_endpoint", "-o", "user_options.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["engine"]["provider"]["worker_init"] == "echo 'hello world'"


def test_render_user_config_offline_template_stdin(mu_endpoint, tmp_path):
    """templates.rst:66: ``cat user_options.json | render-user-config --template
    user_config_template.yaml.j2 --user-options-file -``: no endpoint needed."""
    (tmp_path / "user_config_template.yaml.j2").write_text(TEMPLATE)
    r = gce(tmp_path / "no-home", "render-user-config", "--template", "user_config_template.yaml.j2",
            "--user-options-file", "-", cwd=tmp_path, input=(tmp_path / "user_options.json").read_text())
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["engine"]["provider"]["worker_init"] == "echo 'hello world'"


def test_render_user_config_user_runtime(tmp_path):
    """templates.rst:92: ``render-user-config -t template-snippet.yaml.j2 --user-runtime
    my-custom-user-runtime.json`` prints what the docs show."""
    (tmp_path / "template-snippet.yaml.j2").write_text(textwrap.dedent("""\
        worker_init: |
           echo 'Globus Compute SDK version: {{ user_runtime.globus_compute_sdk_version }}'
           echo 'foo: {{ user_runtime.foo }}'
        """))
    (tmp_path / "my-custom-user-runtime.json").write_text(
        '{\n   "globus_compute_sdk_version": "arbitrary value",\n   "foo": "bar"\n}\n')
    r = gce(tmp_path / "home", "render-user-config", "-t", "template-snippet.yaml.j2",
            "--user-runtime", "my-custom-user-runtime.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["worker_init"].splitlines() == \
        ["echo 'Globus Compute SDK version: \"arbitrary value\"'", "echo 'foo: \"bar\"'"]
    assert "worker_init: unknown key" in r.stderr   # a snippet, not a whole config: said, not refused


def test_render_user_config_bad_template(tmp_path):
    """templates.rst:126: a template whose output is not YAML: the error names the file, on
    stderr, and nothing reaches stdout (the docs pipe stdout to ``yq``)."""
    (tmp_path / "bad-template.yaml.j2").write_text("engine: there shouldn't be any text here!\n"
                                                   "   type: GlobusComputeEngine\n")
    r = gce(tmp_path / "home", "render-user-config", "-t", "bad-template.yaml.j2", cwd=tmp_path)
    assert r.returncode != 0 and r.stdout == "" and "bad-template.yaml.j2" in r.stderr, r.stdout + r.stderr


def test_render_user_config_needs_endpoint_or_template(tmp_path):
    r = gce(tmp_path / "home", "render-user-config")
    assert r.returncode == 2 and "Must provide at least one of --endpoint or --template." in r.stderr, r.stderr


def test_uuid_is_not_a_name_for_configure(tmp_path):
    """Globus's configure refuses a UUID as the new endpoint's name."""
    r = gce(tmp_path / "home", "configure", str(uuid.uuid4()))
    assert r.returncode == 2 and "requires an endpoint name that is not a UUID" in r.stderr, r.stderr


# -- multi_user.rst:465, :475, :883: on-boot persistence ---------------------------------------

@pytest.fixture
def unit_dir(tmp_path, monkeypatch):
    """Globus's /etc/systemd/system, in a folder of the test's."""
    from faas.cli import from_globus
    d = tmp_path / "systemd"
    d.mkdir()
    monkeypatch.setattr(from_globus, "SYSTEMD_UNIT_DIR", d)
    return d


def test_enable_and_disable_on_boot(faas_home, unit_dir):
    """``gce enable-on-boot my_endpoint`` writes a unit that starts it as this account with this
    FAAS_HOME, restarted always; ``disable-on-boot`` prints the commands that undo it."""
    import pwd

    from click.testing import CliRunner

    from faas.cli.main import main
    runner = CliRunner()
    assert runner.invoke(main, ["endpoint", "configure", "my_endpoint"]).exit_code == 0
    r = runner.invoke(main, ["endpoint", "enable-on-boot", "my_endpoint"])
    assert r.exit_code == 0, r.output
    unit = unit_dir / "faas-endpoint-my_endpoint.service"
    assert f"Systemd service installed at {unit}" in r.output
    assert "sudo systemctl enable faas-endpoint-my_endpoint --now" in r.output
    text = unit.read_text()
    assert f"ExecStart={sys.executable} -m faas.cli.main endpoint start my_endpoint\n" in text
    assert f'Environment="FAAS_HOME={faas_home}"' in text and "Restart=always" in text
    assert f"User={pwd.getpwuid(os.geteuid()).pw_name}\n" in text
    r = runner.invoke(main, ["endpoint", "enable-on-boot", "my_endpoint"])   # never over a unit there
    assert r.exit_code == 1 and "already exists" in r.output and unit.read_text() == text
    r = runner.invoke(main, ["endpoint", "disable-on-boot", "my_endpoint"])
    assert r.exit_code == 0 and f"rm {unit}" in r.output and "systemctl disable faas-endpoint-my_endpoint" in r.output
    r = runner.invoke(main, ["endpoint", "disable-on-boot", "other"])
    assert r.exit_code == 1 and "not found" in r.output


def test_enable_on_boot_writes_a_unit_root_may_trust(tmp_path, unit_dir, monkeypatch):
    """The unit is 644 whatever the umask, and a FAAS_HOME with a control character (a carriage
    return would start a line of its own in the unit: ExecStartPre=...) is refused, not written."""
    from click.testing import CliRunner

    from faas.cli.main import main
    runner = CliRunner()
    monkeypatch.setenv("FAAS_HOME", str(tmp_path / "plain"))
    assert runner.invoke(main, ["endpoint", "configure", "ep"]).exit_code == 0
    old = os.umask(0o077)
    try:
        assert runner.invoke(main, ["endpoint", "enable-on-boot", "ep"]).exit_code == 0
    finally:
        os.umask(old)
    assert (unit_dir / "faas-endpoint-ep.service").stat().st_mode & 0o777 == 0o644
    monkeypatch.setenv("FAAS_HOME", str(tmp_path / "h\rExecStartPre=touch /tmp/owned"))
    assert runner.invoke(main, ["endpoint", "configure", "other"]).exit_code == 0
    r = runner.invoke(main, ["endpoint", "enable-on-boot", "other"])
    assert r.exit_code == 1 and "control characters" in r.output, r.output
    assert not (unit_dir / "faas-endpoint-other.service").exists()


def test_enable_on_boot_refuses_a_running_endpoint(tmp_path, unit_dir, monkeypatch):
    from click.testing import CliRunner

    from faas.cli.main import main
    home = tmp_path / "home"
    assert gce(home, "configure", "busy").returncode == 0
    assert gce(home, "start", "busy", "--detach").returncode == 0
    try:
        monkeypatch.setenv("FAAS_HOME", str(home))
        r = CliRunner().invoke(main, ["endpoint", "enable-on-boot", "busy"])
        assert r.exit_code == 1 and "currently running" in r.output, r.output
        assert not list(unit_dir.iterdir())
    finally:
        gce(home, "stop", "busy")


# -- endpoints.rst:228, :239: Globus's folder of endpoints ------------------------------------

def test_config_dir_and_globus_compute_user_dir_say_where_endpoints_are(tmp_path):
    """``gce configure --config-dir ~/.custom_3 ...`` (a group option in Globus's code, so
    ``gce --config-dir DIR configure``) is refused saying FAAS_HOME; GLOBUS_COMPUTE_USER_DIR in
    the environment is a warning naming where the endpoint goes instead."""
    home = tmp_path / "home"
    r = gce(home, "--config-dir", str(tmp_path / "custom_3"), "configure", "endpoint_in_group_3")
    assert r.returncode == 2 and "FAAS_HOME" in r.stderr and "--config-dir" in r.stderr, r.stderr
    assert not (tmp_path / "custom_3").exists() and not (home / "endpoints").exists()
    r = gce(home, "configure", "endpoint_in_new_group", env={"GLOBUS_COMPUTE_USER_DIR": str(tmp_path / "custom_2")})
    assert r.returncode == 0, r.stderr
    assert "GLOBUS_COMPUTE_USER_DIR has no effect here" in r.stderr and str(home / "endpoints") in r.stderr
    assert (home / "endpoints" / "endpoint_in_new_group" / "config.yaml").is_file()


# -- the other options and commands of globus-compute-endpoint -------------------------------

def test_delete_force_and_yes(tmp_path):
    """``delete --yes`` of an endpoint whose config.yaml does not load fails naming ``--force``;
    with ``--force`` the folder goes."""
    home = tmp_path / "home"
    assert gce(home, "configure", "broken").returncode == 0
    (home / "endpoints" / "broken" / "config.yaml").write_text("engine: [\n")
    r = gce(home, "delete", "broken", "--yes")
    assert r.returncode == 2 and "--force" in r.stderr and (home / "endpoints" / "broken").is_dir(), r.stderr
    r = gce(home, "delete", "broken", "--yes", "--force")
    assert r.returncode == 0 and not (home / "endpoints" / "broken").exists(), r.stderr
    # --force removes the folder a name names: only an endpoint's (not FAAS_HOME through "..")
    (home / "keep").write_text("FAAS_HOME's own file\n")
    for name in ("..", ".", "../endpoints"):
        r = gce(home, "delete", name, "--yes", "--force")
        assert r.returncode == 2 and "endpoint name" in r.stderr, r.stderr
    assert (home / "endpoints").is_dir() and (home / "keep").is_file()


def test_stop_remote_and_endpoint_uuid(tmp_path):
    home = tmp_path / "home"
    assert gce(home, "configure", "ep").returncode == 0
    r = gce(home, "stop", "ep", "--remote")
    assert r.returncode == 2 and "hosted service" in r.stderr, r.stderr
    ep_id = ep_config.endpoint_id(home / "endpoints" / "ep")
    other = str(uuid.uuid4())
    r = gce(home, "start", "ep", "--endpoint-uuid", other, "--detach")
    assert r.returncode == 2 and other in r.stderr and ep_id in r.stderr, r.stderr
    r = gce(home, "restart", "ep", "--endpoint-uuid", ep_id, "--detach")
    assert r.returncode == 0 and "restarted" in r.stdout, r.stderr
    assert gce(home, "stop", "ep").returncode == 0


def test_python_exec(tmp_path):
    """``globus-compute-endpoint python-exec MODULE ARGS``: the module as a script, with faas's Python."""
    r = gce(tmp_path / "home", "python-exec", "json.tool", "--sort-keys", input='{"b": 1, "a": 2}')
    assert r.returncode == 0 and r.stdout.index('"a"') < r.stdout.index('"b"'), r.stdout + r.stderr


def test_migrate_to_template_capable_says_what_to_do(tmp_path):
    home = tmp_path / "home"
    assert gce(home, "configure", "old").returncode == 0
    before = (home / "endpoints" / "old" / "config.yaml").read_text()
    r = gce(home, "migrate-to-template-capable", "old", "--yes")
    assert r.returncode == 2 and "--multi-user" in r.stderr, r.stderr
    assert (home / "endpoints" / "old" / "config.yaml").read_text() == before
