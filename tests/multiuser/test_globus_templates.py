"""Globus Compute's user config templates, as a site admin moving from Globus would check them:
Globus's own files and the examples of its template docs, pasted unchanged, rendered by faas and
loaded by the endpoint config loader a user endpoint runs.

Sources (globus/globus-compute, commit 845796fc843ee9fe00dd8eb90be0b9dc8acb8054):
- ``globus/user_config_template.yaml.j2``, ``globus/user_config_schema.json``: byte for byte
  ``compute_endpoint/globus_compute_endpoint/endpoint/config/`` (what ``configure`` writes).
- the templates below: ``docs/endpoints/templates.rst``, ``docs/endpoints/multi_user.rst``,
  ``docs/endpoints/config_reference.rst`` (captions named at each).
- the escaping and reserved-variable cases: ``compute_endpoint/tests/unit/test_config_utils.py``.
"""
from __future__ import annotations

import json
import logging
import os
import pwd
import shlex
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from faas.endpoint import config as ep_config
from faas.endpoint.multiuser import templates
from faas.exceptions import ConfigError

GLOBUS = Path(__file__).parent / "globus"
NOBODY = pwd.getpwnam("nobody")

#: keys of Globus's template examples that faas/endpoint/config.py does not take yet (another
#: change of issue 16: config.py learns Globus's keys). A rendered config refused for any other
#: key fails these tests; once config.py takes these, this set is empty.
PENDING_IN_CONFIG_PY: set = set()   # Globus keys config.py does not take yet (none)


def reserved(**kw):
    return templates.reserved("campus", NOBODY.pw_name, NOBODY.pw_uid, NOBODY.pw_dir, "slurm",
                              identity=f"local:{NOBODY.pw_name}", **kw)


def render(template: str, variables: dict | None = None, **kw) -> str:
    return templates.render(template, templates.check_variables(variables or {}, None), reserved(**kw))


def user_endpoint_config(template: str, variables: dict | None = None, tmp_path: Path | None = None,
                         schema: dict | None = None) -> ep_config.UserEndpointConfig | None:
    """What a user endpoint would run: rendered, checked, written as its config.yaml and read
    back by ``ep_config.load``, the loader the user endpoint runs. None when the only keys
    refused are PENDING_IN_CONFIG_PY's."""
    variables = templates.check_variables(variables or {}, schema)
    try:
        raw = templates.user_config(template, variables, reserved(), store="file:///shared/faas", max_blocks=1,
                                    allowed_functions=None)
    except templates.VariablesRefused as e:
        problems = {line.strip().split(":")[0] for line in str(e).splitlines()[1:]}
        assert problems and problems <= PENDING_IN_CONFIG_PY, str(e)
        return None
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / "config.yaml").write_text(yaml.safe_dump(raw))
    return ep_config.load(folder / "config.yaml")


# -- Globus's default files ------------------------------------------------------------------

def test_globus_default_template_and_schema_render_and_load(tmp_path):
    template = (GLOBUS / "user_config_template.yaml.j2").read_text()
    schema = json.loads((GLOBUS / "user_config_schema.json").read_text())
    # nothing sent: endpoint_setup and worker_init are empty, which means their defaults
    text = render(template)
    raw = yaml.safe_load(text)
    assert raw["endpoint_setup"] is None and raw["engine"]["provider"]["worker_init"] is None
    assert raw["engine"]["type"] == "GlobusComputeEngine" and raw["engine"]["provider"]["type"] == "LocalProvider"
    assert raw["idle_heartbeats_soft"] == 10 and raw["idle_heartbeats_hard"] == 5760
    cfg = user_endpoint_config(template, {}, tmp_path, schema)
    if cfg is not None:
        assert cfg.engine.provider.type == "local" and cfg.engine.provider.init_blocks == 1
        assert cfg.engine.provider.worker_init == "" and cfg.engine.type == "GlobusComputeEngine"
    # a user's worker_init, with the quotes and newlines a shell line has
    line = "module load python/3.11; export GREETING='hi there'\necho \"done\""
    raw = yaml.safe_load(render(template, {"worker_init": line}))
    assert raw["engine"]["provider"]["worker_init"] == line
    cfg = user_endpoint_config(template, {"worker_init": line}, tmp_path, schema)
    if cfg is not None:
        assert cfg.engine.provider.worker_init == line
    # additionalProperties: true - other variables pass the schema; a wrong type is named
    templates.check_variables({"worker_init": "x", "anything": [1]}, schema)
    with pytest.raises(templates.VariablesRefused, match=r"user_endpoint_config: worker_init: 5 is not of type "
                                                         r"'string'"):
        templates.check_variables({"worker_init": 5}, schema)


# -- docs/endpoints/templates.rst ------------------------------------------------------------

def test_render_tool_example():
    """Caption ``~/.globus_compute/my_endpoint/user_config_template.yaml.j2``, user_options.json
    and the rendered config the docs show, text for text."""
    template = ("engine:\n"
                "   type: GlobusComputeEngine\n"
                "   provider:\n"
                "      type: LocalProvider\n"
                "      worker_init: {{ worker_init }}\n")
    options = json.loads('{ "worker_init": "echo \'hello world\'" }')
    assert render(template, options) == ("engine:\n"
                                         "   type: GlobusComputeEngine\n"
                                         "   provider:\n"
                                         "      type: LocalProvider\n"
                                         "      worker_init: \"echo 'hello world'\"")
    cfg = user_endpoint_config(template, options)
    assert cfg.engine.provider.worker_init == "echo 'hello world'"


def test_custom_user_runtime_example(caplog):
    """Captions ``template-snippet.yaml.j2`` and ``my-custom-user-runtime.json``: user_runtime is
    serialized like a user's values; its bare name works and says it is deprecated."""
    template = ("worker_init: |\n"
                "   echo 'Globus Compute SDK version: {{ user_runtime.globus_compute_sdk_version }}'\n"
                "   echo 'foo: {{ user_runtime.foo }}'\n")
    runtime = json.loads('{"globus_compute_sdk_version": "arbitrary value", "foo": "bar"}')
    with caplog.at_level(logging.WARNING):
        out = render(template, runtime=runtime)
    assert out == ("worker_init: |\n"
                   "   echo 'Globus Compute SDK version: \"arbitrary value\"'\n"
                   "   echo 'foo: \"bar\"'")
    assert "`user_runtime` is deprecated" in caplog.text and "(i.e., _GC.user_runtime)" in caplog.text


def test_bad_template_example_is_a_clear_error():
    """Caption ``bad-template.yaml.j2``: YAML's own message, and which file."""
    template = ("engine: there shouldn't be any text here!\n"
                "   type: GlobusComputeEngine\n")
    with pytest.raises(ConfigError, match="/etc/campus/user_config_template.yaml.j2: the rendered config is not "
                                          "valid YAML.*mapping values are not allowed here"):
        templates.user_config(template, {}, reserved(), store="file:///shared/faas", max_blocks=1,
                              allowed_functions=None, template_path="/etc/campus/user_config_template.yaml.j2")


ENVIRONMENT_EXAMPLE = """\
engine:
  type: GlobusComputeEngine
  provider:
    type: SlurmProvider
{% if environment == '"test"' %}
    partition: test
    worker_init: "source test_setup.sh"
    walltime: 00:01:00
 {% else %}
    partition: default
    worker_init: "source normal_setup.sh"
    walltime: 00:30:00
 {% endif %}
"""


def test_user_input_security_example():
    """Section "User Input Security": the user's string is compared in its serialized form."""
    test = yaml.safe_load(render(ENVIRONMENT_EXAMPLE, {"environment": "test"}))["engine"]["provider"]
    assert test["partition"] == "test" and test["worker_init"] == "source test_setup.sh"
    prod = yaml.safe_load(render(ENVIRONMENT_EXAMPLE, {"environment": "prod"}))["engine"]["provider"]
    assert prod["partition"] == "default" and prod["worker_init"] == "source normal_setup.sh"
    # as the docs warn: compared with 'test', the user's "test" does not match
    naive = ENVIRONMENT_EXAMPLE.replace("""'"test"'""", "'test'")
    assert yaml.safe_load(render(naive, {"environment": "test"}))["engine"]["provider"]["partition"] == "default"
    user_endpoint_config(ENVIRONMENT_EXAMPLE, {"environment": "prod"})
    # the test branch's 1-minute walltime is shorter than faas's default walltime_margin (60 s:
    # pools stop taking tasks that long before the walltime): the margin shrinks to a quarter
    test_cfg = user_endpoint_config(ENVIRONMENT_EXAMPLE, {"environment": "test"})
    assert test_cfg.engine.provider.walltime_s == 60 and test_cfg.engine.provider.walltime_margin == 15


MAPPED_IDENTITY_EXAMPLE = """\
 engine:
    type: GlobusComputeEngine
    provider:
       type: SlurmProvider
 {% if 1001 in _GC.mapped_identity.local.groups %}
       partition: {{ partition }}
 {% else %}
       partition: default
 {% endif %}
"""


def test_mapped_identity_example():
    """Caption "Example usage of mapped_identity in a template" (its one-space indent kept)."""
    member = 1001 in os.getgrouplist(NOBODY.pw_name, NOBODY.pw_gid)
    raw = yaml.safe_load(render(MAPPED_IDENTITY_EXAMPLE, {"partition": "gpu"}))
    assert raw["engine"]["provider"]["partition"] == ("gpu" if member else "default")


def test_combining_templates_example(tmp_path):
    """Section "Combining Templates": ``extends`` and ``include`` from the template's folder
    (what Jinja makes of the example's text outside blocks is Jinja's, in Globus as here)."""
    (tmp_path / "base_config.yaml").write_text("engine:\n  type: GlobusComputeEngine\n"
                                               "{% block provider %}{% endblock %}\n")
    (tmp_path / "test_config.yaml").write_text("    partition: test\n")
    (tmp_path / "default_config.yaml").write_text("    partition: default\n")
    example = ('{% extends "base_config.yaml" %}\n\nprovider:\n  type: SlurmProvider\n\n'
               '{% if environment == \'"test"\' %}\n{% include "test_config.yaml" %}\n{% else %}\n'
               '{% include "default_config.yaml" %}\n{% endif %}\n')
    path = str(tmp_path / "user_config_template.yaml.j2")
    out = templates.render(example, {"environment": "test"}, reserved(), path)
    assert "engine:\n  type: GlobusComputeEngine" in out and "partition: test" in out
    included = ("engine:\n  type: GlobusComputeEngine\n  provider:\n    type: SlurmProvider\n"
                '{% if environment == \'"test"\' %}\n{% include "test_config.yaml" %}\n{% else %}\n'
                '{% include "default_config.yaml" %}\n{% endif %}\n')
    for env, partition in (("test", "test"), ("prod", "default")):
        out = templates.render(included, {"environment": env}, reserved(), path)
        assert yaml.safe_load(out)["engine"]["provider"]["partition"] == partition
    # no folder (a template given as text), no include; nor a path out of the folder
    with pytest.raises(ConfigError, match="rendering failed"):
        templates.render(included, {"environment": "test"}, reserved())
    with pytest.raises(ConfigError, match="rendering failed: TemplateNotFound"):
        templates.render('{% include "../etc/passwd" %}', {}, reserved(), path)


# -- docs/endpoints/multi_user.rst -----------------------------------------------------------

POLARIS = """\
display_name: Polaris at ALCF - debug-scaling queue
engine:
  type: GlobusComputeEngine
  address:
    type: address_by_interface
    ifname: bond0

  strategy:
    type: SimpleStrategy
    max_idletime: 30

  provider:
    type: PBSProProvider
    queue: debug-scaling

    account: {{ ACCOUNT_ID }}

    # Command to be run before starting a worker
    # e.g., "module load Anaconda; source activate parsl_env"
    worker_init: {{ WORKER_INIT_COMMAND|default() }}

    init_blocks: 0
    min_blocks: 0
    max_blocks: 1
    nodes_per_block: {{ NODES_PER_BLOCK|default(1) }}

    walltime: 1:00:00

    launcher:
      type: MpiExecLauncher

idle_heartbeats_soft: 10
idle_heartbeats_hard: 5760
"""


def test_polaris_example_with_the_users_executor_variables(tmp_path):
    """Caption ``/root/.globus_compute/debug_scaling_ep/user_config_template.yaml.j2`` and the
    user's ``Executor(user_endpoint_config={"ACCOUNT_ID": ..., "NODES_PER_BLOCK": 2})``."""
    uec = {"ACCOUNT_ID": "user_allocation_account_id", "NODES_PER_BLOCK": 2}
    raw = yaml.safe_load(render(POLARIS, uec))
    p = raw["engine"]["provider"]
    assert p["account"] == "user_allocation_account_id" and p["nodes_per_block"] == 2
    assert p["worker_init"] is None and p["launcher"] == {"type": "MpiExecLauncher"}
    cfg = user_endpoint_config(POLARIS, uec, tmp_path)
    if cfg is not None:
        p = cfg.engine.provider
        assert (p.type, p.queue, p.account, p.nodes_per_block, p.walltime) == (
            "pbs", "debug-scaling", "user_allocation_account_id", 2, "1:00:00")
        assert p.launcher.type == "mpiexec"
    # ACCOUNT_ID has no default: without it the task is refused, naming it
    with pytest.raises(ConfigError, match="'ACCOUNT_ID' is undefined.*send it in user_endpoint_config"):
        render(POLARIS, {"NODES_PER_BLOCK": 2})


# -- docs/endpoints/config_reference.rst -----------------------------------------------------

CONFIG_REFERENCE = {
    "simple_threadpool": "engine:\n  type: ThreadPoolEngine\n",
    "three_threads": "engine:\n  type: ThreadPoolEngine\n  max_workers: 3\n",
    "four_workers_100_tasks": "engine:\n  type: ProcessPoolEngine\n  max_tasks_per_child: 100\n  max_workers: 4\n",
    "my_first_cluster_setup": "engine:\n  type: GlobusComputeEngine\n  provider:\n    type: LocalProvider\n"
                              "    max_blocks: 4\n",
    "retries": "engine:\n    type: GlobusComputeEngine\n    max_retries_on_system_failure: 2  # Default=0\n",
    "auto_scaling": "engine:\n    type: GlobusComputeEngine\n    job_status_kwargs:\n"
                    "        max_idletime: 60.0      # Default = 120s\n"
                    "        strategy_period: 120.0  # Default = 5s\n",
    "midway": ("engine:\n    type: GlobusComputeEngine\n    max_workers_per_node: 2\n    provider:\n"
               "        type: SlurmProvider\n        account: {{ account }}\n        partition: caslake\n"
               "        worker_init: \"module load Anaconda; source activate compute-env\"\n"
               "        nodes_per_block: 1\n        max_blocks: 1\n        walltime: 00:05:00\n    address:\n"
               "        type: address_by_interface\n        ifname: bond0\n"),
}


@pytest.mark.parametrize("name", sorted(CONFIG_REFERENCE))
def test_config_reference_examples(name, tmp_path):
    template = CONFIG_REFERENCE[name]
    variables = {"account": "pi-jdoe"} if "account" in template else {}
    raw = yaml.safe_load(render(template, variables))
    cfg = user_endpoint_config(template, variables, tmp_path)
    if name == "midway":
        assert raw["engine"]["provider"]["account"] == "pi-jdoe"
    if cfg is not None:
        assert cfg.engine.type == raw["engine"]["type"]
        if name == "my_first_cluster_setup":   # the root endpoint caps the blocks (max_blocks_per_user)
            assert cfg.engine.provider.max_blocks == 1
        if name == "midway":
            assert (cfg.engine.provider.account, cfg.engine.provider.walltime) == ("pi-jdoe", "00:05:00")


# -- escaping, filters, reserved variables (Globus's test_config_utils.py cases) ---------------

def test_user_values_cannot_inject_yaml():
    """test_render_user_config_escape_strings: keys hidden in every kind of value stay text."""
    template = ("\nendpoint_setup: {{ setup }}\ndisplay_name: {{ _GC.user_runtime.python.version }}\nengine:\n"
                "    type: {{ engine.type }}\n    accelerators:\n        {%- for a in engine.accelerators %}\n"
                "        - {{ a }}\n        {% endfor %}\n    ")
    opts = {"setup": f"my-setup\nallowed_functions:\n    - {uuid.uuid4()}",
            "engine": {"type": "GlobusComputeEngine\n    task_status_queue: bad_boy_queue",
                       "accelerators": [f"{uuid.uuid4()}\n    mem_per_worker: 100"]}}
    runtime = {"python": {"version": "3.13.7\n    bar: baz"}}
    loaded = yaml.safe_load(render(template, opts, runtime=runtime))
    assert loaded == {"endpoint_setup": opts["setup"], "display_name": runtime["python"]["version"],
                      "engine": {"type": opts["engine"]["type"], "accelerators": opts["engine"]["accelerators"]}}
    # a list or object rendered whole (JSON): a quote inside cannot end it early
    for value in (["a", "x', evil: 'y", "it's"], {"k": "v", "a: b\nc": 1}):
        loaded = yaml.safe_load(render("v: {{ v }}\nafter: 1", {"v": value}))
        assert set(loaded) == {"v", "after"} and loaded["after"] == 1
        assert loaded["v"] == templates.sanitize_user_json(value)   # Globus's values: serialized items


def test_null_and_value_types():
    """test_render_user_config_handles_null_user_values, test_render_user_config_option_types."""
    loaded = yaml.safe_load(render("endpoint_setup: {{ some_var }}\ndisplay_name: {{ _GC.user_runtime.some_var }}",
                                   {"some_var": None}, runtime={"some_var": None}))
    assert loaded == {"endpoint_setup": None, "display_name": None}
    for value in (10, "bar", 10.0, ["bar", 10], {"bar": 10}, True):
        assert "foo" in yaml.safe_load(render("foo: {{ foo }}", {"foo": value}))
    assert yaml.safe_load(render("foo: {{ foo }}", {"foo": True}))["foo"] is True


@pytest.mark.parametrize("option", ["-lh", "'-lh'", "'-l' '-h'", "-lh; rm -rf", '-lh && "rm -rf"',
                                    '"-lh && "rm -rf"', '-lh && rm -rf"', "\0Do this thing", '\r"-lh && rm -rf"',
                                    '\n"-lh && rm -rf"', '"-lh && \\u0015rm -rf"', "-lh\nbad: boy"])
def test_shell_escape(option):
    """test_render_user_config_shell_escape: one shell word, whatever the user sends."""
    loaded = yaml.safe_load(render("option: {{ option|shell_escape }}", {"option": option}))
    assert loaded == {"option": shlex.quote(option)}


def test_shell_escape_of_numbers_and_of_the_admins_own_strings():
    assert yaml.safe_load(render("option: {{ option|shell_escape }}", {"option": 10})) == {"option": 10}
    assert yaml.safe_load(render("option: {{ option|shell_escape }}", {"option": "10"})) == {"option": "10"}
    # reserved values are not serialized: quoted all the same (Globus's filter fails on them)
    out = yaml.safe_load(render("cd: {{ _GC.mapped_identity.local.dir|shell_escape }}"))
    assert out == {"cd": shlex.quote(NOBODY.pw_dir)}
    out = yaml.safe_load(render("cd: {{ '/scratch/my data'|shell_escape }}"))
    assert out == {"cd": "'/scratch/my data'"}


def test_reserved_values_are_not_quoted_again():
    """Reserved and the admin's own values go in as they are, so a template may quote around them;
    a user's value inside quotes is invalid YAML, in Globus as here, and says so."""
    template = ('worker_init: "cd {{ _GC.mapped_identity.local.dir }}/scratch"\n'
                'display_name: "{{ _faas.endpoint_name }} for {{ _GC.mapped_identity.local.uname }}"\n')
    assert yaml.safe_load(render(template)) == {"worker_init": f"cd {NOBODY.pw_dir}/scratch",
                                                "display_name": f"campus for {NOBODY.pw_name}"}
    with pytest.raises(ConfigError, match="not valid YAML"):
        templates.user_config('display_name: "{{ name }}"', {"name": "x"}, reserved(), store="file:///s",
                              max_blocks=1, allowed_functions=None)


def test_reserved_variables(caplog):
    """test_render_config_passes_mapped_identity / _parent_config / _all_reserved_variables."""
    parent = ep_config.UserEndpointConfig(store="file:///shared/faas", display_name="Campus cluster")
    template = ("uname: {{ _GC.mapped_identity.local.uname }}\nuid: {{ _GC.mapped_identity.local.uid }}\n"
                "gid: {{ _GC.mapped_identity.local.gid }}\ngroups: {{ _GC.mapped_identity.local.groups }}\n"
                "gecos: {{ _GC.mapped_identity.local.gecos }}\nshell: {{ _GC.mapped_identity.local.shell }}\n"
                "home_dir: {{ _GC.mapped_identity.local.dir }}\nglobus_id: {{ _GC.mapped_identity.globus.id }}\n"
                "parent: {{ _GC.parent_config.display_name }}\npython: {{ _GC.user_runtime.python.version }}\n"
                "sdk: {{ _GC.user_runtime.globus_compute_sdk_version }}\n"
                "node: {{ _GC.user_runtime.platform.node }}\n")
    loaded = yaml.safe_load(render(template, parent_config=parent))
    assert loaded == {"uname": NOBODY.pw_name, "uid": NOBODY.pw_uid, "gid": NOBODY.pw_gid,
                      "groups": os.getgrouplist(NOBODY.pw_name, NOBODY.pw_gid), "gecos": NOBODY.pw_gecos,
                      "shell": NOBODY.pw_shell, "home_dir": NOBODY.pw_dir,
                      "globus_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"local:{NOBODY.pw_name}")),
                      "parent": "Campus cluster", "python": ".".join(map(str, sys.version_info[:3])),
                      "sdk": __import__("faas").__version__, "node": os.uname().nodename}
    for word in templates.RESERVED_USER_CONFIG_TEMPLATE_VARIABLES:
        out = render(f"{{% if {word} is defined %}}\n# \"{word}\" is defined\n{{% endif %}}\n"
                     f"{{% if {word[:-1]}x is defined %}}\n# unreachable\n{{% endif %}}\n")
        assert f'# "{word}" is defined' in out and "# unreachable" not in out
        with pytest.raises(templates.VariablesRefused, match=f"'{word}' is a reserved word"):
            templates.check_variables({word: "foo"}, None)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            render(f"some_key: {{{{ {word} }}}}")
        if word == "_GC":
            assert not caplog.records
        else:
            assert f"`{word}` is deprecated" in caplog.text and f"(i.e., _GC.{word})" in caplog.text


def test_undefined_variables_are_errors():
    """test_render_user_config: a variable used without a default must be sent."""
    assert yaml.safe_load(render("heartbeat_period: {{ heartbeat }}", {"heartbeat": 10})) == {"heartbeat_period": 10}
    with pytest.raises(ConfigError, match="'heartbeat' is undefined"):
        render("heartbeat_period: {{ heartbeat }}", {"foo": "bar"})


def test_schema_checks_before_rendering_and_names_the_variable():
    """test_validate_user_config_options: nested objects, additional properties; the schema sees
    the values the user sent, not their serialized form."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"foo": {"type": "string"},
                             "nest": {"type": "object", "properties": {"nested": {"type": "number"}},
                                      "additionalProperties": False}}}
    for ok in ({"foo": "bar", "nest": {"nested": 10}}, {"foo": "bar", "extra": "ok"}):
        assert templates.check_variables(ok, schema) == ok
    for bad, where in (({"foo": 10}, "foo"), ({"foo": {"nested": "bar"}}, "foo"), ({"nest": "nested"}, "nest"),
                       ({"nest": {"nested": "blah", "extra": "baddie"}}, "nest")):
        with pytest.raises(templates.VariablesRefused, match=f"user_endpoint_config: {where}"):
            templates.check_variables(bad, schema)
    with pytest.raises(templates.VariablesRefused, match=r"nest/nested: 'blah' is not of type 'number'"):
        templates.check_variables({"nest": {"nested": "blah"}}, schema)


def test_schema_file(tmp_path):
    assert templates.load_schema(tmp_path / "absent.json") is None     # no file: no check, as in Globus
    (tmp_path / "s.json").write_text('{"foo": "bar", }')
    with pytest.raises(ConfigError, match="s.json: not valid JSON"):
        templates.load_schema(tmp_path / "s.json")
    (tmp_path / "s.json").write_text('{"type": "blah"}')
    with pytest.raises(ConfigError, match="s.json: not a valid JSON Schema"):
        templates.load_schema(tmp_path / "s.json")
