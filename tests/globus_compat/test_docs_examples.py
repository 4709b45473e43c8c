"""The Globus Compute documentation examples that test_globus_doc_examples.py does not hold yet
(globus-compute at commit 845796fc): the ``>>>`` sessions and ``::`` examples in the docstrings
that docs/reference/executor.rst and client.rst render (compute_sdk/globus_compute_sdk/sdk/
executor.py: ``endpoint_id``, ``task_group_id``, ``resource_specification``,
``user_endpoint_config``, ``serializer``, ``submit``, ``submit_to_registered_function``, ``map``,
``get_worker_hardware_details``; sdk/client.py: ``get_batch_result``,
``get_worker_hardware_details``), docs/index.rst's "Using Globus Compute", the sandbox config.yaml
of docs/sdk/executor_user_guide.rst, and the multi-user endpoint config.yaml examples of
docs/endpoints/config_reference.rst, multi_user.rst and endpoints.rst (each the whole file, in a
folder with the template beside it, as Globus's ``configure --multi-user`` writes, and
endpoints.rst's allow list in a template; the user_environment.yaml examples). Each is copied as
the docs give it, with only ``globus_compute_sdk`` replaced by ``faas`` and the ``>>>``/``...``
prompts dropped, and run on the embedded default endpoint (the sandbox config.yaml: on an endpoint
made from it; the multi-user ones are loaded as the router loads them). A comment names each one's
file and lines; where a placeholder (an endpoint id, "some-ep-id") stands for the user's own, the
user's own is put in, as they would.

Left out, and why:

- executor.py:269, ``Executor(endpoint_id=None)`` raising "No endpoint_id set" (at submit in
  Globus's code): faas's Executor without an endpoint uses the client's (``FAAS_ENDPOINT``, else
  the embedded ``local``), by design (docs/from-globus.md, "faas.Executor").
- executor.py:663-672 runs Globus's public "Hello World" function by its UUID: Globus's hosted
  function registry has no counterpart here; the test checks the error says so.
- mpi_function.py:18 (MPIFunction.__call__) and executor_user_guide.rst:467 (the
  ``resource_specification`` with ``<int>`` placeholders): they need a GlobusMPIEngine endpoint;
  tests/globus_compat/test_shell_mpi.py runs them with MPICH.
- multi_user.rst:105 (``jitter_double`` with ``user_endpoint_config``): needs a multi-user
  endpoint run as root; its template renders in tests/multiuser/test_globus_templates.py.
- executor.py:1303 (``_ResultWatcher``) and :1613: Globus's internals (AMQP), not user code.
"""
from __future__ import annotations

import ast
import contextlib
import io
import platform
import textwrap
import time
import uuid

import pytest
from helpers import wait_until

from faas import Client, Executor, ShellFunction, ShellResult
from faas.endpoint import config as ep_config
from faas.endpoint import control
from faas.endpoint.mpi import InvalidResourceSpecification
from faas.errors import TaskPending
from faas.exceptions import ConfigError, EndpointNotFound, FunctionNotFound

WAIT = 90


@pytest.fixture(scope="module")
def ep_uuid(home) -> str:
    """The embedded default endpoint's UUID: what a user pastes for ``endpoint_id``."""
    return ep_config.endpoint_id(ep_config.endpoint_dir("local", home))


@pytest.fixture
def fresh_task_group(monkeypatch):
    """Globus's Executors share the last task group set in the process (a class attribute); the
    docstrings set random ones, which must not leak into the next test."""
    monkeypatch.setattr(Executor, "_default_task_group_id", None)


def run_session(code: str, /, **given) -> tuple[dict, object, str]:
    """Run a ``>>>`` session (prompts already dropped) as a script in ``__main__``: its names, the
    value of its last line when that line is an expression (what the REPL shows), and what it
    printed."""
    tree = ast.parse(textwrap.dedent(code))
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    ns: dict = {"__name__": "__main__", **given}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, "<globus doc example>", "exec"), ns)   # noqa: S102
        shown = eval(compile(ast.Expression(last.value), "<globus doc example>", "eval"), ns) \
            if last is not None else None   # noqa: S307
    return ns, shown, out.getvalue()


# -- docs/index.rst ----------------------------------------------------------------------------

# docs/index.rst:53, "Using Globus Compute" (the tutorial endpoint's id: the user's own here)
INDEX_HELLO_WORLD = """
from faas import Executor

def hello_world():
    return "Hello World!"

tutorial_endpoint_id = '4b116d3c-1703-4f8f-9f6f-39921e5864df'
with Executor(endpoint_id=tutorial_endpoint_id) as fxe:
    future = fxe.submit(hello_world)
    print(future.result())
"""


def test_index_hello_world(ep_uuid):
    code = INDEX_HELLO_WORLD.replace("4b116d3c-1703-4f8f-9f6f-39921e5864df", ep_uuid)
    assert run_session(code)[2] == "Hello World!\n"
    # unchanged, it names Globus's tutorial endpoint, which runs in Globus's cloud: the error says
    # so, and what to use here
    with pytest.raises(EndpointNotFound, match=r"4b116d3c-1703-4f8f-9f6f-39921e5864df.*Globus Compute's public "
                                               r"tutorial endpoint.*no hosted endpoints.*`local`"):
        run_session(INDEX_HELLO_WORLD)


# -- docs/reference/executor.rst: the docstrings of compute_sdk/globus_compute_sdk/sdk/executor.py

# executor.py:252-266, Executor.endpoint_id
EXECUTOR_ENDPOINT_ID = """
import uuid
from faas import Executor
ep_id = uuid.uuid4()  # IRL: some *known* endpoint id
gce = Executor(endpoint_id=ep_id)

# Alternatively, may use a stringified uuid:
gce = Executor(endpoint_id=str(ep_id))

# May also alter after construction:
gce.endpoint_id = ep_id
gce.endpoint_id = str(ep_id)

# Internally, it is always stored as a UUID (or None):
gce.endpoint_id
"""


def test_executor_endpoint_id_docstring(home):
    ns, shown, _ = run_session(EXECUTOR_ENDPOINT_ID)
    assert isinstance(shown, uuid.UUID) and shown == ns["ep_id"]
    assert repr(shown) == f"UUID('{ns['ep_id']}')"
    # an endpoint's name (faas's own, beside the UUID) stays a str, even one of 32 hex digits
    gce = ns["gce"]
    for name in ("local", "0123456789abcdef0123456789abcdef"):
        gce.endpoint_id = name
        assert gce.endpoint_id == name and gce.endpoint == name


# executor.py:293-307, Executor.task_group_id
EXECUTOR_TASK_GROUP_ID = """
import uuid
from faas import Executor
tg_id = uuid.uuid4()  # IRL: some *known* taskgroup id
gce = Executor(task_group_id=tg_id)

# Alternatively, may use a stringified uuid:
gce = Executor(task_group_id=str(tg_id))

# May also alter after construction:
gce.task_group_id = tg_id
gce.task_group_id = str(tg_id)

# Internally, it is always stored as a UUID (or None):
gce.task_group_id
"""


def test_executor_task_group_id_docstring(home, fresh_task_group):
    ns, shown, _ = run_session(EXECUTOR_TASK_GROUP_ID)
    assert isinstance(shown, uuid.UUID) and shown == ns["tg_id"]
    # "Subsequent Executor objects will reuse the same task group ID by default" (executor.py:313)
    assert Executor().task_group_id == ns["tg_id"]


# executor.py:334-339, Executor.resource_specification; executor.py:367-372,
# Executor.user_endpoint_config
EXECUTOR_RESOURCE_SPECIFICATION = """
from faas import Executor
res_spec = {"foo": "bar"}
gce = Executor(resource_specification=res_spec)

# May also alter after construction:
gce.resource_specification = res_spec
"""
EXECUTOR_USER_ENDPOINT_CONFIG = """
from faas import Executor
uep_config = {"foo": "bar"}
gce = Executor(user_endpoint_config=uep_config)

# May also alter after construction:
gce.user_endpoint_config = uep_config
"""


def test_executor_resource_specification_and_user_endpoint_config_docstrings(ep_uuid):
    ns, _, _ = run_session(EXECUTOR_RESOURCE_SPECIFICATION)
    assert ns["gce"].resource_specification == {"foo": "bar"}
    # sent to a GlobusComputeEngine, "foo" is refused as Parsl's HighThroughputExecutor refuses
    # it (validate_resource_spec: only "priority" there)
    ns["gce"].endpoint_id = ep_uuid
    with ns["gce"] as gce, pytest.raises(InvalidResourceSpecification, match="'foo'.*only accepts.*priority"):
        gce.submit(pow, 2, 3).result(timeout=WAIT)
    ns, _, _ = run_session(EXECUTOR_USER_ENDPOINT_CONFIG)
    assert ns["gce"].user_endpoint_config == {"foo": "bar"}
    # the setters check as Globus's do (executor.py:344-357, 377-387)
    for prop in ("resource_specification", "user_endpoint_config"):
        with pytest.raises(TypeError, match="dict"):
            setattr(ns["gce"], prop, ["foo"])
        with pytest.raises(TypeError, match="JSON-serializable"):
            setattr(ns["gce"], prop, {"foo": object()})


# executor.py:403-408, Executor.serializer: "Property access to the underlying Client instance's
# owned serializer", and executor_user_guide.rst:520-525: "The default strategies are DillCode
# for function code and DillDataBase64 for function *args and **kwargs"
def test_executor_default_serializer(ep_uuid):
    from faas.serialize import ComputeSerializer, DillCode, DillDataBase64

    def greet(name, greeting="greetings"):
        return f"{greeting} {name}"

    with Executor(endpoint_id=ep_uuid) as gcx:
        serde = gcx.serializer
        assert isinstance(serde, ComputeSerializer) and serde is gcx.serializer
        assert (type(serde.code_serializer), type(serde.data_serializer)) == (DillCode, DillDataBase64)
        fn, args, kwargs = gcx.serializer.check_strategies(greet, "world", greeting="hello")
        assert fn(*args, **kwargs) == gcx.submit(greet, "world", greeting="hello").result(timeout=WAIT)


# executor.py:601-605, Executor.submit ("some-ep-id" is no UUID, so Globus's Executor refuses it
# at construction too: the user's endpoint id stands in its place, as for the tutorial's id)
EXECUTOR_SUBMIT = """
def add(a: int, b: int) -> int: return a + b
gce = Executor(endpoint_id="some-ep-id")
fut = gce.submit(add, 1, 2)
fut.result()    # wait (block) until result is received from remote
"""


def test_executor_submit_docstring(ep_uuid):
    ns, shown, _ = run_session(EXECUTOR_SUBMIT.replace("some-ep-id", ep_uuid), Executor=Executor)
    ns["gce"].shutdown()
    assert shown == 3


# executor.py:641-655, Executor.submit_to_registered_function: pre_registration.py
EXECUTOR_PRE_REGISTRATION = """
# pre_registration.py
from faas import Executor

def some_processor(*args, **kwargs):
    # ... function logic ...
    return ["some", "result"]

gce = Executor()
fn_id = gce.register_function(some_processor)
print(f"Function registered successfully.\\nFunction ID: {fn_id}")
"""
# executor.py:663-672, the same docstring: Globus's public "Hello World" function by its UUID
EXECUTOR_PUBLIC_FUNCTION = """
from faas import Executor

fn_id = "b0a5d1a0-2b22-4381-b899-ba73321e41e0"  # public; "Hello World"
with Executor(endpoint_id="your-endpoint-id") as fxe:
    futs = [
        fxe.submit_to_registered_function(function_id=fn_id)
        for i in range(5)
    ]

for f in futs:
    print(f.result())
"""


def test_executor_submit_to_registered_function_docstring(ep_uuid, fresh_task_group):
    ns, _, out = run_session(EXECUTOR_PRE_REGISTRATION)
    fn_id = ns["fn_id"]
    assert out == f"Function registered successfully.\nFunction ID: {fn_id}\n"
    # the id is the user's: their Executor on their endpoint runs it
    with Executor(endpoint_id=ep_uuid) as gce:
        assert gce.submit_to_registered_function(fn_id).result(timeout=WAIT) == ["some", "result"]
    ns["gce"].shutdown()
    # Globus's public functions live in its hosted registry: the error says so, and what to do
    with pytest.raises(FunctionNotFound, match="Globus Compute function UUID.*hosted registry.*register_function"):
        run_session(EXECUTOR_PUBLIC_FUNCTION.replace("your-endpoint-id", ep_uuid))
    with pytest.raises(ValueError, match="Globus Compute function UUID.*hosted registry"):
        Client().run(endpoint_id=ep_uuid, function_id="b0a5d1a0-2b22-4381-b899-ba73321e41e0")


# executor.py:725-728, Executor.map: the "naive implementation" Globus suggests in place of map()
EXECUTOR_NAIVE_MAP = """
def map(fxexec, fn, *fn_args_kwargs):
    return [fxexec.submit(fn, *a, **kw) for a, kw in fn_args_kwargs]
"""


def test_executor_naive_map_docstring(ep_uuid):
    ns, _, _ = run_session(EXECUTOR_NAIVE_MAP)
    with Executor(endpoint_id=ep_uuid) as gce:
        futs = ns["map"](gce, pow, ((2, 3), {}), ((2,), {"exp": 5}))
        assert [f.result(timeout=WAIT) for f in futs] == [8, 32]
        # and faas's own map, which Globus's Executor does not implement
        assert list(gce.map(pow, [2, 3], [3, 2])) == [8, 9]


# executor.py:949-951, Executor.get_worker_hardware_details
EXECUTOR_HARDWARE = """
from faas import Executor
with Executor(ep_uuid) as gcx:
    print(gcx.get_worker_hardware_details())
"""


def test_executor_get_worker_hardware_details_docstring(ep_uuid):
    out = run_session(EXECUTOR_HARDWARE, ep_uuid=ep_uuid)[2]
    assert f"python: {platform.python_version()}" in out and "cpus: " in out


# -- docs/reference/client.rst: the docstrings of compute_sdk/globus_compute_sdk/sdk/client.py --

# client.py:430-437, Client.get_batch_result (its two ids stand for tasks submitted before: one
# still running, one done with the result None)
CLIENT_GET_BATCH_RESULT = """
# Task identifiers are UUIDs, as returned by the API for tasks previously
# submitted.
previously_submitted_task_identifiers = [
  "00000000-0000-0000-0000-000000000000",
  "00000000-0000-0000-0000-000000000001"
]
c = Client()
c.get_batch_result(previously_submitted_task_identifiers)
"""


def wait_for_file(path: str) -> str:
    """A task that runs until the test lets it finish (bounded, so no worker is kept)."""
    import os
    import time
    deadline = time.monotonic() + 120
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"


def return_none() -> None:
    """A task whose result is None, as the docstring's second task's."""
    return None


def test_client_get_batch_result_docstring(ep_uuid, tmp_path):
    release = tmp_path / "release"
    with Executor(endpoint_id=ep_uuid) as gce:
        running = gce.submit(wait_for_file, str(release))
        done = gce.submit(return_none)
        assert done.result(timeout=WAIT) is None
        # another process's Client knows a task once its group record is in the store (within
        # 0.5 s of submit) and its result once stored (a small one rides in the submitter's
        # notice first): "previously submitted" tasks, as the docstring's are
        wait_until(lambda: gce.client.stored_result(done.task_id) and {running.task_id, done.task_id} <= {
            tid for _, _, ids in gce.client.group_tasks().values() for tid in ids}, 30, "stored records")
        code = (CLIENT_GET_BATCH_RESULT.replace("00000000-0000-0000-0000-000000000000", running.task_id)
                .replace("00000000-0000-0000-0000-000000000001", done.task_id))
        try:
            _, shown, _ = run_session(code, Client=Client)   # a new Client: it finds both in the store
        finally:
            release.touch()
        assert running.result(timeout=WAIT) == "released"
    assert set(shown) == {running.task_id, done.task_id}
    pending = shown[running.task_id]
    assert pending["pending"] is True and pending["status"] in ("pending", "running")
    assert "result" not in pending
    finished = shown[done.task_id]
    assert (finished["pending"], finished["status"], finished["result"]) == (False, "success", None)
    assert isinstance(finished["completion_t"], str) and float(finished["completion_t"]) <= time.time()


# client.py:975-979, Client.get_worker_hardware_details (after its "# wait some time..." one line
# added: wait_some_time, a poll until the result is there, as Globus's users wait)
CLIENT_HARDWARE = """
from faas import Client
gcc = Client()
task_id = gcc.get_worker_hardware_details(ep_uuid)
# wait some time...
wait_some_time(gcc, task_id)
print(gcc.get_result(task_id))
"""


def wait_some_time(gcc: Client, task_id: str) -> None:
    """Poll as a Globus user does: get_result raises TaskPending until the task is done."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            gcc.get_result(task_id)
            return
        except TaskPending:
            time.sleep(0.1)


def test_client_get_worker_hardware_details_docstring(ep_uuid):
    out = run_session(CLIENT_HARDWARE, ep_uuid=ep_uuid, wait_some_time=wait_some_time)[2]
    assert f"python: {platform.python_version()}" in out and "cpus: " in out


# -- docs/sdk/executor_user_guide.rst ----------------------------------------------------------

# executor_user_guide.rst:419, "Working Directory": the sandbox example's config.yaml
SANDBOX_EXAMPLE_CONFIG = """
display_name: SandboxExample
engine:
  type: GlobusComputeEngine

  # Enable sandboxing
  run_in_sandbox: True
"""


def test_executor_guide_sandbox_config(home):
    """The guide's config.yaml as an endpoint's whole config: each ShellFunction runs in
    ``<endpoint folder>/tasks_working_dir/<task id>`` (Globus's ``~/.globus_compute/<ENDPOINT_NAME>
    /tasks_working_dir/<TASK_UUID>``), so two tasks writing the same file do not collide."""
    folder = ep_config.endpoint_dir("sandbox-example", home)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(textwrap.dedent(SANDBOX_EXAMPLE_CONFIG).lstrip())
    control.start_detached("sandbox-example", home)
    try:
        sandbox_ep = ep_config.endpoint_id(folder)
        with Executor(endpoint_id=sandbox_ep) as ex:
            futs = [ex.submit(ShellFunction("echo {n} > out.txt; pwd; cat out.txt"), n=n) for n in (1, 2)]
            results = [f.result(timeout=WAIT) for f in futs]
    finally:
        control.stop("sandbox-example", home)
    for n, (fut, res) in enumerate(zip(futs, results, strict=True), start=1):
        assert isinstance(res, ShellResult) and res.returncode == 0, res
        sandbox = folder / "tasks_working_dir" / fut.task_id
        assert res.stdout.split() == [str(sandbox), str(n)]
        assert (sandbox / "out.txt").read_text() == f"{n}\n"


# -- docs/endpoints/config_reference.rst, multi_user.rst, endpoints.rst: a multi-user endpoint's
#    config.yaml (Globus's ManagerEndpointConfig), each example as the whole file -------------

# (caption's file:line, config.yaml as the docs give it, the keys that act (key: value loaded),
#  the keys listed as having no effect here)
MANAGER_CONFIGS = [
    ("config_reference.rst:343", "public: true\n", {}, {"public"}),
    ("config_reference.rst:355", "email: admin@example.edu\n", {}, {"email"}),
    ("config_reference.rst:367", "identity_mapping_config_path: /path/to/idmap_config.json\n",
     {"identity_mapping_path": "/path/to/idmap_config.json"}, set()),
    ("config_reference.rst:380", "user_config_template_path: /path/to/my_template.yaml.j2\n", {},
     {"user_config_template_path"}),
    ("config_reference.rst:393", "user_config_schema_path: /path/to/my_schema.json\n", {},
     {"user_config_schema_path"}),
    ("config_reference.rst:408", """subscription_id: 600ba9ac-ef16-4387-30ad-60c6cc3a6853
admins:
  # Peter Gibbons (software engineer)
  - 10afcf74-b041-4439-8e0d-eab371767440
  # Samir Nagheenanajar (sysadmin, HPC services)
  - a6a7b9ee-be04-4e45-9832-d3737c2fafa2
""", {}, {"subscription_id", "admins"}),
    ("config_reference.rst:426", "display_name: Debug queue, 10m max job time (RCC, Midway, UChicago)\npublic: true\n",
     {"display_name": "Debug queue, 10m max job time (RCC, Midway, UChicago)"}, {"public"}),
    ("config_reference.rst:454", "authentication_policy: 498c7327-9c6a-4847-c954-1eafa923da8e\n"
     "subscription_id: 600ba9ac-ef16-4387-30ad-60c6cc3a6853\n", {}, {"authentication_policy", "subscription_id"}),
    ("multi_user.rst:170", """amqp_port: 443
display_name: null
public: true
email: admin@example.edu
identity_mapping_config_path: /root/.globus_compute/my_mu_ep/example_identity_mapping_config.json
""", {"identity_mapping_path": "/root/.globus_compute/my_mu_ep/example_identity_mapping_config.json",
      "display_name": None}, {"amqp_port", "public", "email"}),
    ("endpoints.rst:1290", "high_assurance: true\naudit_log_path: /.../audit.log\n",
     {"audit_log_path": "/.../audit.log"}, {"high_assurance"}),
]

# (caption's file:line, config.yaml as the docs give it, what the error must say)
REFUSED_MANAGER_CONFIGS = [
    # Globus function UUIDs can never name a faas function (SHA-256 ids): every task would be
    # refused, so the file is, saying why
    ("config_reference.rst:441", "allowed_functions:\n  - 00911703-e76b-4d0b-7b98-6f2e25ab9943\n"
     "  - e552e7f2-c007-4671-6ca4-3a4fd84f3805\n",
     r"allowed_functions: function id '00911703-e76b-4d0b-7b98-6f2e25ab9943'.*Globus Compute function UUID"
     r".*hosted registry.*register_function"),
    ("endpoints.rst:1369", "allowed_functions:\n   - 6d0ba55f-de15-4af2-827d-05c50c338aa7\n"
     "   - e552e7f2-c007-4671-8ca4-3a4fd84f3805\n",
     r"'6d0ba55f-de15-4af2-827d-05c50c338aa7'.*Globus Compute function UUID"),
    ("config_reference.rst:467", "pam:\n  enable: true\n", r"pam: faas cannot run PAM account checks.*allowed_users"),
    # Globus's docs name a key its own ManagerEndpointConfig does not take (a TypeError there too)
    ("multi_user.rst:778", "identity_mapping: /path/to/identity_mapping.json\n",
     r"identity_mapping: unknown key.*did you mean identity_mapping_path"),
]


def manager_folder(home, caption: str, text: str):
    """A multi-user endpoint's folder, as Globus's configure --multi-user writes it (the default
    template beside config.yaml), with ``text`` as its config.yaml."""
    folder = ep_config.endpoint_dir(caption.replace(".rst:", "-"), home)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(text)
    (folder / ep_config.MULTI_USER_TEMPLATE).write_text("engine:\n  type: GlobusComputeEngine\n")
    return folder


@pytest.mark.parametrize("caption, text, acts, no_effect", MANAGER_CONFIGS, ids=[c[0] for c in MANAGER_CONFIGS])
def test_manager_config_examples(faas_home, caption, text, acts, no_effect):
    cfg = ep_config.load(manager_folder(faas_home, caption, text) / "config.yaml")
    assert isinstance(cfg, ep_config.ManagerEndpointConfig)
    assert {key: getattr(cfg, key) for key in acts} == acts
    assert {note.split(" (", 1)[0] for note in cfg.no_effect_here} == no_effect
    assert all(" (" in note for note in cfg.no_effect_here)   # each says why


@pytest.mark.parametrize("caption, text, why", REFUSED_MANAGER_CONFIGS, ids=[c[0] for c in REFUSED_MANAGER_CONFIGS])
def test_manager_config_examples_refused_with_why(faas_home, caption, text, why):
    path = manager_folder(faas_home, caption, text) / "config.yaml"
    with pytest.raises(ConfigError, match=why) as refused:
        ep_config.load(path)
    assert str(path) in str(refused.value)


# endpoints.rst:1401, "Function Allow Listing": the allow list in the user config template, per the
# submitter's Python ("engine: ..." is the docs' ellipsis: left out)
TEMPLATE_ALLOWED_FUNCTIONS = """
allowed_functions:
{% if '3.13' in user_runtime.python_version %}
  - c01ebede-06f5-4647-9712-e5649d0f573a
  - 701fc11a-69b5-4e97-899b-58c3cb56334d
{% elif '3.12' in user_runtime.python_version %}
  - 8dea796f-67cd-49ba-92b9-c9763d76a21d
  - 0a6e8bed-ae93-4fd5-bb60-11c45bc1f42d
{% endif %}
"""


@pytest.mark.parametrize("python_version", ["3.13.1 (main)", "3.12.7 (main)", "3.11.7 (main)"])
def test_template_allowed_functions_example(python_version):
    """Rendered for 3.13 or 3.12, the list holds Globus function UUIDs, which no faas function id
    matches: the user endpoint's config is refused, naming the entry and why, rather than
    refusing every task. For another Python nothing is listed (no restriction), as in Globus."""
    from faas.endpoint.multiuser import templates
    runtime = dict(templates.user_runtime(), python_version=python_version)
    reserved = templates.reserved("campus", "nobody", 65534, "/nonexistent", runtime=runtime)

    def user_config() -> dict:
        return templates.user_config(TEMPLATE_ALLOWED_FUNCTIONS, {}, reserved, store="file:///shared/faas",
                                     max_blocks=1, allowed_functions=None)

    if python_version.startswith("3.11"):
        assert "allowed_functions" not in user_config()
        return
    with pytest.raises(ConfigError, match=r"allowed_functions: function id '[0-9a-f-]{36}'.*Globus Compute "
                                          r"function UUID.*hosted registry"):
        user_config()


# user_environment.yaml, the environment of every user endpoint: endpoints.rst:206,
# endpoints.rst:706 (the PATH of a wrapper) and multi_user.rst:846 (the administrator quickstart)
USER_ENVIRONMENTS = [
    ("endpoints.rst:206", """COMPILER_PATH: /opt/compiler/3.2.9/bin
LD_LIBRARY_PATH: /opt/compiler/lib:/opt/cray/lib64:/opt/nvidia/Linux_x86_64/nccl/lib
LD_PRELOAD: /opt/lib64/libsite.so
""", {"COMPILER_PATH": "/opt/compiler/3.2.9/bin",
      "LD_LIBRARY_PATH": "/opt/compiler/lib:/opt/cray/lib64:/opt/nvidia/Linux_x86_64/nccl/lib",
      "LD_PRELOAD": "/opt/lib64/libsite.so"}),
    ("endpoints.rst:706", "PATH: /usr/local/admin_scripts/\n", {"PATH": "/usr/local/admin_scripts/"}),
    ("multi_user.rst:846", """SOME_SITE_SPECIFIC_ENV_VAR: a site specific value
PATH: /site/specific:/path:/opt:/usr:/some/other/path
""", {"SOME_SITE_SPECIFIC_ENV_VAR": "a site specific value",
      "PATH": "/site/specific:/path:/opt:/usr:/some/other/path"}),
]


@pytest.mark.parametrize("caption, text, env", USER_ENVIRONMENTS, ids=[c[0] for c in USER_ENVIRONMENTS])
def test_user_environment_examples(tmp_path, caption, text, env):
    from faas.endpoint.multiuser import files
    (tmp_path / "user_environment.yaml").write_text(text)
    assert files.read_environment(tmp_path) == env
