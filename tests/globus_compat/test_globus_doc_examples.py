"""Every Python example a Globus Compute user runs, from Globus's own docs (globus-compute at
commit 845796fc: docs/quickstart.rst, docs/sdk/executor_user_guide.rst,
docs/sdk/client_user_guide.rst, docs/reference/*.rst (their autodoc docstrings),
docs/tutorials/*.rst, docs/endpoints/endpoints.rst), copied verbatim with only
``globus_compute_sdk`` replaced by ``faas``, and run on the embedded default endpoint (``home``).
The endpoint id placeholder of each example is replaced by the endpoint's UUID, as a user pastes
their own. Where Globus's text has a typo that stops it running on Globus too, the fix is the
smallest one and a comment says so.

Examples not run here, and why:

- quickstart.rst "First Run" prints Globus Auth's login prompt: there is no login here; the
  ``Client()`` it makes is run (``test_quickstart_first_run``).
- client_user_guide.rst "GlobusApps" (``globus_sdk.UserApp``), "Using an Existing Token"
  (``globus_sdk.AccessTokenAuthorizer``, ``globus_sdk.scopes.ComputeScopes``): they need
  globus_sdk and a Globus Auth client id or token; faas.Client accepts ``app=``/``authorizer=``
  without effect (tests/globus_compat/test_client.py).
- executor_user_guide.rst "globus_compute_client_submit_batch.py": written for an older SDK
  (``gcc.session_task_group_id``, ``batch.add(fn_id, ep_id, ...)``, ``gcc.batch_run(batch)``);
  globus-compute-sdk 4.x raises AttributeError / TypeError on it too. Its idea runs here with 4.x's
  calls, followed by "globus_compute_executor_reload_batch.py" (``test_reload_a_batch``).
- executor_user_guide.rst "Submitting MPI Tasks" and docs/tutorials/mpi.rst: MPIFunction needs a
  GlobusMPIEngine endpoint, not the embedded default; they run against MPICH's mpiexec in
  tests/globus_compat/test_shell_mpi.py (``test_mpi_tutorial_with_the_executor``). Here only
  the MPIFunction constructors of the guide run.
- tutorials/dynamic_containers.rst and the container example of tutorials/compute_for_lambda.rst:
  they need the ``compute-worker:3.7.0`` image (Globus's endpoint in a container) in a container
  registry; this machine has no network. Containers run in tests/test_containers.py.
- tutorials/compute_for_lambda.rst's boto3 ``lambda`` example: AWS Lambda, not Globus Compute.
- tutorials/stage_data_with_transfer.rst: needs a Globus Transfer collection mounted on the
  endpoint (and its blocks are sketches with ``...`` lines and unclosed parentheses).
- endpoints.rst "Restricting Submission Serialization Methods": needs an endpoint whose
  ``allowed_serializers`` excludes dill; faas sends with dill only, so such a config is refused
  when it loads (tests/globus_compat/test_config_yaml.py,
  ``test_serializers_faas_cannot_send_are_refused_at_load``).
- reference/mpi_function.rst: MPIFunction.__call__'s docstring needs a GlobusMPIEngine endpoint
  with two nodes (as the MPI tutorial, above).
- endpoints.rst "High-Assurance Functions", second block: Globus Auth's re-login for HA
  policies; HA registration (the first block) runs here.
- endpoints.rst "arguments to os.execvpe" is Globus's own internals, not user code.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from faas.endpoint import config as ep_config

TUTORIAL_EP = "4b116d3c-1703-4f8f-9f6f-39921e5864df"   # Globus's public tutorial endpoint


@pytest.fixture(scope="module")
def ep_uuid(home) -> str:
    """The embedded default endpoint's UUID: what a user pastes for ``endpoint_id``."""
    eid = ep_config.endpoint_id(ep_config.endpoint_dir("local", home))
    assert eid and uuid.UUID(eid)
    return eid


def run_example(code: str, placeholder: str | None, ep_id: str, /, **given) -> tuple[dict, str]:
    """Run an example as a script (``__main__``, so its functions travel by value, as a user's
    do), with ``placeholder`` replaced by ``ep_id``; its names and what it printed."""
    if placeholder is not None:
        assert placeholder in code, f"{placeholder!r} is not in the example"
        code = code.replace(placeholder, ep_id)
    ns: dict = {"__name__": "__main__", **given}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(textwrap.dedent(code), "<globus doc example>", "exec"), ns)   # noqa: S102
    return ns, out.getvalue()


# -- docs/quickstart.rst ----------------------------------------------------------------------

# quickstart.rst, "First Run" (the login prompt it shows has no counterpart here)
QUICKSTART_FIRST_RUN = """
from faas import Client
Client()
"""


def test_quickstart_first_run(home):
    run_example(QUICKSTART_FIRST_RUN, None, "")


# quickstart.rst, "Running a function"
QUICKSTART_RUNNING_A_FUNCTION = """
from faas import Executor

# First, define the function ...
def add_func(a, b):
    return a + b

tutorial_endpoint_id = '4b116d3c-1703-4f8f-9f6f-39921e5864df' # Public tutorial endpoint
# ... then create the executor, ...
with Executor(endpoint_id=tutorial_endpoint_id) as gce:
    # ... then submit for execution, ...
    future = gce.submit(add_func, 5, 10)

    # ... and finally, wait for the result
    print(future.result())
"""


def test_quickstart_running_a_function(ep_uuid):
    _, out = run_example(QUICKSTART_RUNNING_A_FUNCTION, TUTORIAL_EP, ep_uuid)
    assert out == "15\n"


# -- docs/sdk/executor_user_guide.rst --------------------------------------------------------

# executor_user_guide.rst, introduction: globus_compute_executor_basic_example.py
EXECUTOR_BASIC = """
from faas import Executor

def double(x):
    return x * 2

tutorial_endpoint_id = '4b116d3c-1703-4f8f-9f6f-39921e5864df'
with Executor(endpoint_id=tutorial_endpoint_id) as gce:
    fut = gce.submit(double, 7)

    print(fut.result())
"""


def test_executor_basic_example(ep_uuid):
    _, out = run_example(EXECUTOR_BASIC, TUTORIAL_EP, ep_uuid)
    assert out == "14\n"


# executor_user_guide.rst, "Multiple Function Invocations": globus_compute_executor_collatz.py
EXECUTOR_COLLATZ = """
from faas import Executor

def generate_collatz_sequence(N: int, sequence_limit = 10_000):
    seq = [N]
    while N != 1 and len(seq) < sequence_limit:
        if N % 2:
            N = 3 * N + 1
        else:
            N //= 2  # okay because guaranteed integer result
        seq.append(N)
    return seq

ep_id = "<your_endpoint_id>"

generate_from = 1
generate_through = 100
futs, results, disproof_candidates = [], [], []
with Executor(endpoint_id=ep_id) as gce:
    for n in range(generate_from, generate_through + 1):
        futs.append(gce.submit(generate_collatz_sequence, n))
    print("Tasks all submitted; waiting for results")

# The futures were appended to the `futs` list in order, so one could wait
# for each result in turn to get a submission-ordered set of results:
for f in futs:
    r = f.result()
    results.append(r)
    if r[-1] != 1:
        # of course, given the conjecture, we don't expect this branch
        disproof_candidates.append(r[0])

print(f"All sequences generated (from {generate_from} to {generate_through})")
for res in results:
    print(res)

if disproof_candidates:
    print("Possible conjecture disproving integers:", disproof_candidates)
"""


def test_executor_collatz(ep_uuid):
    ns, out = run_example(EXECUTOR_COLLATZ, "<your_endpoint_id>", ep_uuid)
    assert len(ns["results"]) == 100 and not ns["disproof_candidates"]
    assert "All sequences generated (from 1 to 100)\n[1]\n[2, 1]\n" in out
    assert "Possible conjecture" not in out
    # executor_user_guide.rst, "Checking the Status of a Result" continues the script ("...")
    STATUS = """
    ...
    future = gce.submit(generate_collatz_sequence, 1234567890)

    # Use the .done() method to check the status of the function without
    # blocking; this will return a Bool indicating whether the result is ready
    print("Status: ", future.done())
    """
    from faas import Executor
    with Executor(endpoint_id=ep_uuid) as gce:
        ns2, out2 = run_example(STATUS, None, "", gce=gce,
                                generate_collatz_sequence=ns["generate_collatz_sequence"])
        assert out2 in ("Status:  False\n", "Status:  True\n")
        assert ns2["future"].result()[-1] == 1


# executor_user_guide.rst, "Handling Exceptions":
# globus_compute_executor_handle_result_exceptions.py (Globus's text lacks the closing quote of
# the last f-string, a SyntaxError; added). ``ep_id`` comes from the previous example.
EXECUTOR_HANDLE_EXCEPTIONS = """
from faas import Executor

def generate_collatz_sequence(N: int, sequence_limit=100):
    seq = [N]
    while N != 1 and len(seq) < sequence_limit:
        if N % 2:
            N = 3 * N + 1
        else:
            N //= 2  # okay because guaranteed integer result
        seq.append(N)
    if N != 1:
        raise ValueError(f"Sequence not terminated in {sequence_limit} steps")
    return seq

with Executor(endpoint_id=ep_id) as gce:
    future = gce.submit(generate_collatz_sequence, 1234567890)

try:
    print(future.result())
except Exception as exc:
    print(f"Oh no!  The task raised an exception: {exc}")
"""


def test_executor_handling_exceptions(ep_uuid):
    ns, out = run_example(EXECUTOR_HANDLE_EXCEPTIONS, None, "", ep_id=ep_uuid)
    assert out == "Oh no!  The task raised an exception: Sequence not terminated in 100 steps\n"
    assert isinstance(ns["exc"] if "exc" in ns else ns["future"].exception(), ValueError)


# executor_user_guide.rst, "Receiving Results Out of Order":
# globus_compute_executor_results_as_arrived.py (it continues the earlier examples: their
# ``from faas import Executor`` and an ``endpoint_id`` are given).
EXECUTOR_RESULTS_AS_ARRIVED = """
import concurrent.futures

def double(x):
    return f"{x} -> {x * 2}"

def slow_double(x):
    import random, time
    time.sleep(x * random.random())
    return f"{x} -> {x * 2}"

with Executor(endpoint_id=endpoint_id) as gce:
    futs = [gce.submit(double, i) for i in range(10)]

    # The futures were appended to the `futs` list in order, so one could
    # wait for each result in turn to get an ordered set:
    print("Results:", [f.result() for f in futs])

    # But often acting on the results *as they arrive* is more desirable
    # as results are NOT guaranteed to arrive in the order they were
    # submitted.
    #
    # NOTA BENE: handling results "as they arrive" must happen before the
    # executor is shutdown.  Since this executor was used in a `with`
    # statement, then to stream results, we must *stay* within the `with`
    # statement.  Otherwise, at the unindent, `.shutdown()` will be
    # implicitly invoked (with default arguments) and the script will not
    # continue until *all* of the futures complete.
    futs = [gce.submit(slow_double, i) for i in range(10, 20)]
    for f in concurrent.futures.as_completed(futs):
        print("Received:", f.result())
"""


@pytest.mark.slow
def test_executor_results_as_arrived(ep_uuid):
    from faas import Executor
    _, out = run_example(EXECUTOR_RESULTS_AS_ARRIVED, None, "", Executor=Executor, endpoint_id=ep_uuid)
    lines = out.splitlines()
    assert lines[0] == "Results: " + str([f"{i} -> {i * 2}" for i in range(10)])
    assert sorted(lines[1:]) == sorted(f"Received: {i} -> {i * 2}" for i in range(10, 20))


# executor_user_guide.rst, "Reloading Tasks": globus_compute_executor_reload_tasks.py
EXECUTOR_RELOAD_TASKS = '''
# execute initially as:
# $ python globus_compute_executor_reload_tasks.py
#  ... this Task Group ID: <TG_UUID_STR>
#  ...
# Then run with the Task Group ID as an argument:
# $ python globus_compute_executor_reload_tasks.py <TG_UUID_STR>

import os, signal, sys, time, typing as t
from faas import Executor
from faas.sdk.executor import ComputeFuture

task_group_id = sys.argv[1] if len(sys.argv) > 1 else None

def task_kernel(num):
    return f"your Globus Compute logic result, from task: {num}"

ep_id = "<YOUR_ENDPOINT_UUID>"
with Executor(endpoint_id=ep_id) as gce:
    futures: t.Iterable[ComputeFuture]
    if task_group_id:
        print(f"Reloading tasks from Task Group ID: {task_group_id}")
        gce.task_group_id = task_group_id
        futures = gce.reload_tasks()

    else:
        # Save the task_group_id somewhere.  Perhaps in a file, or less
        # robustly "as mere text" on your console:
        print(
            "New session; creating Globus Compute tasks; if this script dies, rehydrate"
            f" futures with this Task Group ID: {gce.task_group_id}"
        )
        num_tasks = 5
        futures = [gce.submit(task_kernel, i + 1) for i in range(num_tasks)]

        # Ensure all tasks have been sent upstream ...
        while gce.task_count_submitted < num_tasks:
            time.sleep(1)
            print(f"Tasks submitted upstream: {gce.task_count_submitted}")

        # ... before script death for [silly reason; did you lose power!?]
        bname = sys.argv[0]
        if sys.argv[0] != sys.orig_argv[0]:
            bname = f"{sys.orig_argv[0]} {bname}"

        print("Simulating unexpected process death!  Now reload the session")
        print("by rerunning this script with the task_group_id:\\n")
        print(f"  {bname} {gce.task_group_id}\\n")
        os.kill(os.getpid(), signal.SIGKILL)
        exit(1)  # In case KILL takes split-second to process

# Get results:
results, exceptions = [], []
for f in futures:
    try:
        results.append(f.result(timeout=10))
    except Exception as exc:
        exceptions.append(exc)
print("Results:\\n ", "\\n  ".join(results))
'''


@pytest.mark.slow
def test_executor_reload_tasks(ep_uuid, tmp_path):
    script = tmp_path / "globus_compute_executor_reload_tasks.py"
    script.write_text(EXECUTOR_RELOAD_TASKS.replace("<YOUR_ENDPOINT_UUID>", ep_uuid))
    first = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ), cwd=tmp_path)
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert "Simulating unexpected process death!" in first.stdout
    # as on Globus, the group id is made at the first send: the first line says None; the last
    # says the group to rerun with
    assert "rehydrate futures with this Task Group ID: None" in first.stdout
    tg_id = first.stdout.split("by rerunning this script with the task_group_id:\n\n")[1].split()[-1]
    assert uuid.UUID(tg_id)
    second = subprocess.run([sys.executable, str(script), tg_id], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(f"Reloading tasks from Task Group ID: {tg_id}\nResults:\n")
    assert sorted(second.stdout.splitlines()[2:]) == \
        [f"  your Globus Compute logic result, from task: {i}" for i in range(1, 6)]


# executor_user_guide.rst, "Reloading Tasks": globus_compute_client_submit_batch.py is written
# for an older SDK (see the module docstring); here its steps with 4.x's calls (``batch.add``
# without the endpoint, ``batch_run(ep_id, batch)``, the group id from ``batch_run``'s answer)
# and a short task in place of 24 hours, then globus_compute_executor_reload_batch.py as
# written, but for its ``futs`` (a NameError on Globus too: the list is ``futures``) and the
# ``import concurrent.futures`` it takes from the earlier example.
CLIENT_SUBMIT_BATCH_4X = """
from faas import Client

def expensive_task(task_arg):
    import time
    time.sleep(0.1)
    return "All done!"

ep_id = "<endpoint_id>"
gcc = Client()

fn_id = gcc.register_function(expensive_task)
batch = gcc.create_batch()
for task_i in range(10):
    batch.add(fn_id, args=(task_i,))
tg_id = gcc.batch_run(ep_id, batch)["task_group_id"]
"""
EXECUTOR_RELOAD_BATCH = """
import concurrent.futures
from faas import Executor

ep_id = "<endpoint_id>"
tg_id = "Saved task group id from 'yesterday'"
with Executor(endpoint_id=ep_id, task_group_id=tg_id) as gce:
    futures = gce.reload_tasks()
    for f in concurrent.futures.as_completed(futures):
        print("Received:", f.result())
"""


def test_reload_a_batch(ep_uuid):
    ns, _ = run_example(CLIENT_SUBMIT_BATCH_4X, "<endpoint_id>", ep_uuid)
    ns["gcc"].close()
    code = EXECUTOR_RELOAD_BATCH.replace("Saved task group id from 'yesterday'", ns["tg_id"])
    ns, out = run_example(code, "<endpoint_id>", ep_uuid)
    assert len(ns["futures"]) == 10
    assert out == "Received: All done!\n" * 10


# executor_user_guide.rst, "Shell Functions": globus_compute_shell_function.py
EXECUTOR_SHELL_FUNCTION = """
from faas import ShellFunction, Executor

ep_id = "<SPECIFY_ENDPOINT_ID>"
# The cmd will be formatted with kwargs at invocation time
bf = ShellFunction("echo '{message}'")
with Executor(endpoint_id=ep_id) as ex:
    for msg in ("hello", "hola", "bonjour"):
        future = ex.submit(bf, message=msg)
        shell_result = future.result()  # ShellFunctions return ShellResults
        print(shell_result.stdout)
"""


def test_executor_shell_function(ep_uuid):
    _, out = run_example(EXECUTOR_SHELL_FUNCTION, "<SPECIFY_ENDPOINT_ID>", ep_uuid)
    assert out == "hello\n\nhola\n\nbonjour\n\n"     # "Executing the above prints:"


# executor_user_guide.rst, "Shell Results" (Globus's text reads ``future.result()`` where its
# future is ``fut``, a NameError on Globus too; fixed)
EXECUTOR_SHELL_RETURN_DICT = """
from faas import Executor, ShellFunction

func = ShellFunction("echo '{message}'", return_dict=True)
with Executor(endpoint_id="...") as ex:
    for msg in ("hello", "hola", "bonjour"):
        fut = ex.submit(func, message=msg)
        res = fut.result()
        assert isinstance(res, dict)
        assert msg in res["stdout"]
"""


def test_executor_shell_return_dict(ep_uuid):
    ns, _ = run_example(EXECUTOR_SHELL_RETURN_DICT, '"..."', f'"{ep_uuid}"')
    assert ns["res"]["returncode"] == 0 and ns["res"]["cmd"] == "echo 'bonjour'"


# executor_user_guide.rst, "Walltime" (``executor`` is the user's; Globus's text prints
# ``future.returncode``, an AttributeError on Globus too: the return code is the result's)
EXECUTOR_SHELL_WALLTIME = """
# Limit execution to 1s
bf = ShellFunction("sleep 2", walltime=1)
future = executor.submit(bf)
print(future.result().returncode)
"""


def test_executor_shell_walltime(ep_uuid):
    from faas import Executor, ShellFunction
    with Executor(endpoint_id=ep_uuid) as executor:
        _, out = run_example(EXECUTOR_SHELL_WALLTIME, None, "", executor=executor, ShellFunction=ShellFunction)
    assert out == "124\n"                                  # "Executing the above prints:"


# executor_user_guide.rst, "Submitting MPI Tasks": "Multi-line commands" and "Results" (made
# here; they run on a GlobusMPIEngine endpoint in test_shell_mpi.py)
EXECUTOR_MPI_FUNCTIONS = '''
from faas import MPIFunction
multi = MPIFunction("""true; # force the default prefix to launch a no-op
$PARSL_MPI_PREFIX <command_1>
$PARSL_MPI_PREFIX <command_2>
""")
snippets = MPIFunction(
    "my_mpi_application --arg1 val1",
    snippet_lines=2048
)
'''


def test_executor_mpi_function_constructors():
    ns, _ = run_example(EXECUTOR_MPI_FUNCTIONS, None, "")
    assert ns["multi"].cmd.startswith("true; # force")      # the prefix is added at the call
    assert ns["snippets"].snippet_lines == 2048


# executor_user_guide.rst, "Specifying a Submit-Side Serialization Strategy" (first block)
EXECUTOR_SERIALIZER = """
from faas import Executor
from faas.serialize import ComputeSerializer, PureSourceTextInspect, JSONData

with Executor('<your-endpoint-id>') as gcx:
  gcx.serializer = ComputeSerializer(
    strategy_code=PureSourceTextInspect(), strategy_data=JSONData()
  )
"""


def test_executor_serializer(ep_uuid):
    ns, _ = run_example(EXECUTOR_SERIALIZER, "<your-endpoint-id>", ep_uuid)
    ser = ns["gcx"].serializer
    assert type(ser.code_serializer).__name__ == "PureSourceTextInspect"
    assert type(ser.data_serializer).__name__ == "JSONData"


# executor_user_guide.rst, "Specifying a Submit-Side Serialization Strategy" (second block;
# ``gcx`` is the Executor of the block before)
EXECUTOR_CHECK_STRATEGIES = """
from faas.serialize import ComputeSerializer, DillCodeSource, JSONData

def greet(name, greeting = "greetings"):
  \"\"\"Greet someone.\"\"\"

  return f"{greeting} {name}"

serializer = ComputeSerializer(
  strategy_code=DillCodeSource(),
  strategy_data=JSONData()
)

serializer.check_strategies(greet, "world", greeting="hello")
# serializes like the following:
gcx.submit(greet, "world", greeting="hello")

# use the return value of check_strategies:
fn, args, kwargs = serializer.check_strategies(greet, "world", greeting="hello")
assert fn(*args, **kwargs) == greet("world", greeting="hello")
"""


def test_executor_check_strategies(ep_uuid, tmp_path):
    # DillCodeSource reads the function's source from its file, so this runs as a script, in the
    # Executor ``gcx`` of the block before (kept open: the block submits to it)
    script = tmp_path / "check_strategies.py"
    script.write_text(f"from faas import Executor\ngcx = Executor({ep_uuid!r})\n" + EXECUTOR_CHECK_STRATEGIES
                      + "\nprint(gcx.submit(greet, 'world', greeting='hi').result())\ngcx.shutdown()\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi world\n"


# executor_user_guide.rst, "Specifying Result Serialization Strategies"
EXECUTOR_RESULT_SERIALIZERS = """
from faas import Executor
from faas.serialize import JSONData

with Executor("your endpoint id", result_serializers=[JSONData()]) as gcx:
  # or set it directly:
  gcx.result_serializers = [JSONData()]
"""


def test_executor_result_serializers(ep_uuid):
    ns, _ = run_example(EXECUTOR_RESULT_SERIALIZERS, "your endpoint id", ep_uuid)
    assert [type(s).__name__ for s in ns["gcx"].result_serializers] == ["JSONData"]


# executor_user_guide.rst, "AMQP Port"
EXECUTOR_AMQP_PORT = """
from faas import Executor
gce = Executor(amqp_port=443)
"""


def test_executor_amqp_port(home):
    ns, _ = run_example(EXECUTOR_AMQP_PORT, None, "")
    assert ns["gce"].amqp_port == 443
    ns["gce"].shutdown()


# -- docs/reference/*.rst: the examples in the docstrings they render -----------------------

# reference/shell_function.rst: ShellFunction.__call__'s docstring (``executor``: the user's)
REFERENCE_SHELL_FUNCTION_CALL = """
bf = ShellFunction("echo 'Hello'")
future = executor.submit(bf)  # Invokes this method on an endpoint
future.result()               # returns a ShellResult
"""

# reference/serialization_strategies.rst and executor.rst: ComputeSerializer.check_strategies's
# and Executor.serializer's and .result_serializers' docstrings (``>>>`` prompts dropped)
REFERENCE_CHECK_STRATEGIES = """
def function(x, y=None):
    return x+y

serde = ComputeSerializer()
rf, args, kwargs = serde.check_strategies(function, 3, y=4)
assert rf(*args, **kwargs) == 7
"""
REFERENCE_EXECUTOR_SERIALIZER = """
from faas import Executor
from faas.serialize import CombinedCode, ComputeSerializer
serde = ComputeSerializer(strategy_code=CombinedCode())
gce = Executor(serializer=serde)

# May also alter after construction:
gce.serializer = serde
"""
REFERENCE_EXECUTOR_RESULT_SERIALIZERS = """
from faas import Executor
from faas.serialize import CombinedCode
result_serializers = [CombinedCode()]
gce = Executor(result_serializers=result_serializers)

# May also alter after construction:
gce.result_serializers = result_serializers
"""


def test_reference_docstrings(ep_uuid, monkeypatch):
    from faas import Executor, ShellFunction, ShellResult
    from faas.serialize import ComputeSerializer
    with Executor(endpoint_id=ep_uuid) as executor:
        ns, _ = run_example(REFERENCE_SHELL_FUNCTION_CALL, None, "", executor=executor, ShellFunction=ShellFunction)
        res = ns["future"].result()
        assert isinstance(res, ShellResult) and (res.returncode, res.stdout) == (0, "Hello\n")
    run_example(REFERENCE_CHECK_STRATEGIES, None, "", ComputeSerializer=ComputeSerializer)
    monkeypatch.setenv("FAAS_ENDPOINT", ep_uuid)
    for example in (REFERENCE_EXECUTOR_SERIALIZER, REFERENCE_EXECUTOR_RESULT_SERIALIZERS):
        ns, _ = run_example(example, None, "")
        with ns["gce"] as gce:
            assert gce.submit(pow, 2, 5).result() == 32       # faas still sends with dill


# -- docs/sdk/client_user_guide.rst ----------------------------------------------------------

# client_user_guide.rst, from the top through "Arguments and data" (one session: each block
# uses the names of the ones before)
CLIENT_GUIDE = """
from faas import Client
gcc = Client()

def platform_func():
  \"\"\"Get platform information about this system.\"\"\"

  import platform
  return platform.platform()

func_uuid = gcc.register_function(platform_func)

tutorial_endpoint = '4b116d3c-1703-4f8f-9f6f-39921e5864df'
task_id = gcc.run(endpoint_id=tutorial_endpoint, function_id=func_uuid)

try:
  print(gcc.get_result(task_id))
except Exception as e:
  print("Exception: {}".format(e))

def hello(firstname, lastname):
  \"\"\"Say hello to someone.\"\"\"

  return 'Hello {} {}'.format(firstname, lastname)

func_id = gcc.register_function(hello)

task_id = gcc.run("Bob", "Smith", endpoint_id=tutorial_endpoint, function_id=func_id)

try:
  print(gcc.get_result(task_id))
except Exception as e:
  print("Exception: {}".format(e))
"""


def test_client_guide(ep_uuid):
    ns, out = run_example(CLIENT_GUIDE, TUTORIAL_EP, ep_uuid)
    # "This will either return the deserialized result of your invocation or raise an exception
    # indicating that the task is still pending": right after run(), it is pending
    first, second = out.splitlines()
    import platform
    assert first == platform.platform() or first.startswith("Exception: Task is pending due to ")
    assert second == "Hello Bob Smith" or second.startswith("Exception: Task is pending due to ")
    from faas.errors import TaskPending
    gcc = ns["gcc"]
    for _ in range(600):
        try:
            assert gcc.get_result(ns["task_id"]) == "Hello Bob Smith"
            break
        except TaskPending:
            import time
            time.sleep(0.1)
    else:
        raise AssertionError("the hello task did not finish in 60 s")
    gcc.close()


# client_user_guide.rst, "Sharing Functions" (``<globus_group_id>`` filled in with a group
# UUID, as the user would) and the description examples; ``func`` is the user's function
CLIENT_SHARING = """
gcc.register_function(func, group=<globus_group_id>)

gcc.register_function(func, public=True)

gcc.register_function(func, description="My function")

def function_with_docstring():
  \"\"\"My function, with a docstring\"\"\"
  return "foo"

gcc.register_function(func)  # description is automatically read from the docstring

gcx = Executor()
fut = gcx.submit(function_with_docstring)  # automatically registers the function with its docstring

# if both are specified, the argument wins
gcc.register_function(function_with_docstring, description="this has priority over docstrings")
"""


def test_client_sharing_functions(home):
    from faas import Client, Executor

    def func(x=1):
        return x

    gcc = Client()
    ns, _ = run_example(CLIENT_SHARING, "<globus_group_id>", f"{str(uuid.uuid4())!r}",
                        gcc=gcc, func=func, Executor=Executor)
    assert ns["fut"].result() == "foo"
    ns["gcx"].shutdown()
    fid = gcc.register_function(ns["function_with_docstring"], description="this has priority over docstrings")
    assert gcc.get_function(fid)["description"] == "this has priority over docstrings"
    gcc.close()


# client_user_guide.rst, "Batching" (``{"noise": val // 5, offset=val + 1}`` is a SyntaxError
# on Globus too: ``"offset": val + 1``; ``time.sleep(60)`` shortened to what a no-op needs;
# ``gcc``, ``endpoint_id`` and ``time`` are the user's)
CLIENT_BATCHING = """
def noisy_multiply(x, y, noise=1, offset=0) -> float:
    import random
    return x * y + random.uniform(offset - noise, offset + noise)

noisy_fn_id = gcc.register_function(noisy_multiply)
batch = gcc.create_batch()

for val in range(7):
  fn_args = (val + 3, val)
  fn_kwargs = {"noise": val // 5, "offset": val + 1}

  batch.add(noisy_fn_id, args=fn_args, kwargs=fn_kwargs)

# See what data structure will be sent to the API with .prepare()
# pprint.pprint(batch.prepare())

batch_res = gcc.batch_run(endpoint_id, batch)

# The endpoint may not have even received the tasks yet, much less returned any
# results to the Compute web services, so sit for a spell before checking on the
# status:
time.sleep(3)  # or otherwise an appropriate time for your use-case

# Now collate the task_ids.  The `batch_res` data structure is, analogous to what
# `Batch.prepare` sent to the API, so iterate it accordingly:

task_ids = []
for fn_task_list in batch_res["tasks"].values():
  task_ids.extend(fn_task_list)

# then pass that list to `get_batch_result()`
batch_status = gcc.get_batch_result(task_ids)
# pprint.pprint(batch_status)  # A dictionary, keyed by the batch task ids
"""


def test_client_batching(ep_uuid):
    import time

    from faas import Client
    gcc = Client()
    ns, _ = run_example(CLIENT_BATCHING, None, "", gcc=gcc, endpoint_id=ep_uuid, time=time)
    status = ns["batch_status"]
    assert sorted(status) == sorted(ns["task_ids"]) and len(status) == 7
    for val, tid in enumerate(ns["task_ids"]):
        assert status[tid]["pending"] is False and status[tid]["status"] == "success"
        center = (val + 3) * val + val + 1
        assert abs(status[tid]["result"] - center) <= val // 5
    gcc.close()


# client_user_guide.rst, "Endpoint Operations" (a session at the prompt)
CLIENT_ENDPOINT_OPERATIONS = """
from faas import Client
gcc = Client()
ep_id = '4b116d3c-1703-4f8f-9f6f-39921e5864df'
status = gcc.get_endpoint_status(ep_id)
metadata = gcc.get_endpoint_metadata(ep_id)
"""


def test_client_endpoint_operations(ep_uuid):
    ns, _ = run_example(CLIENT_ENDPOINT_OPERATIONS, TUTORIAL_EP, ep_uuid)
    assert ns["status"]["status"] == "online"                 # {'status': 'online'}
    assert ns["metadata"]["uuid"] == ep_uuid and ns["metadata"]["name"] == "local"
    ns["gcc"].close()


# -- docs/tutorials --------------------------------------------------------------------------

# tutorials/compute_for_lambda.rst, "Defining Functions": "Defining and registering in Compute
# with the Executor"
LAMBDA_REGISTER = """
from faas import Executor

# define
def array_stats(array):
  import numpy as np

  array = np.array(array)
  mean = np.mean(array)
  std = np.std(array)
  return { "mean": mean, "std": std }

# register
function_id = Executor().register_function(array_stats)
# function_id is a UUID, eg eca16448-bfe2-445a-900c-cd46b1426522
"""

# tutorials/compute_for_lambda.rst, "Defining Functions": ``module.py`` and "Using module.py"
LAMBDA_MODULE_PY = """
import numpy as np

def array_stats(array):
  array = np.array(array)
  mean = np.mean(array)
  std = np.std(array)
  return { "mean": mean, "std": std }
"""
LAMBDA_REGISTER_SOURCE = """
from pathlib import Path
from faas import Executor

other_module_code = Path("module.py").read_text()

function_id = Executor().register_source_code(
  other_module_code, function_name="array_stats"
)
# function_id is a UUID, eg a8cfa586-d8ff-489f-bf77-e62f3d0ffa1a
"""

# tutorials/compute_for_lambda.rst, "Calling Functions": "Submitting to Compute" (Globus's text
# passes ``array`` as the ``args`` tuple, so ``array_stats(1, 2, 3, 4, 5)``: a TypeError on
# Globus too; ``(array,)`` here)
LAMBDA_SUBMIT_REGISTERED = """
from faas import Executor

endpoint_id = "<some endpoint UUID>"
array_stats_function_id = "<the function ID from the previous example>"

array = [1, 2, 3, 4, 5]

with Executor(endpoint_id) as gcx:
  future = gcx.submit_to_registered_function(
    array_stats_function_id, (array,)
  )
  print(future.result())
"""

# tutorials/compute_for_lambda.rst, "Calling Functions": ``Executor.submit`` (``endpoint_id``
# from the block before)
LAMBDA_SUBMIT = """
from faas import Executor

def string_stats(string):
  return {
    "length": len(string),
    "uppercase": string.upper(),
    "lowercase": string.lower()
  }

string = "Hello, Compute!"

with Executor(endpoint_id) as gcx:
  future = gcx.submit(string_stats, string)
  print(future.result())
"""


@pytest.mark.parametrize("register", [LAMBDA_REGISTER, LAMBDA_REGISTER_SOURCE], ids=["function", "source_code"])
def test_compute_for_lambda(ep_uuid, tmp_path, monkeypatch, register):
    (tmp_path / "module.py").write_text(LAMBDA_MODULE_PY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAAS_ENDPOINT", ep_uuid)     # ``Executor()``: the user's default endpoint
    ns, _ = run_example(register, None, "")
    code = LAMBDA_SUBMIT_REGISTERED.replace("<the function ID from the previous example>", ns["function_id"])
    ns, out = run_example(code, "<some endpoint UUID>", ep_uuid)
    assert out == "{'mean': np.float64(3.0), 'std': np.float64(1.4142135623730951)}\n"
    _, out = run_example(LAMBDA_SUBMIT, None, "", endpoint_id=ep_uuid)
    assert out == "{'length': 15, 'uppercase': 'HELLO, COMPUTE!', 'lowercase': 'hello, compute!'}\n"


# tutorials/dynamic_python_environments.rst: ``get_worker_python.py``
WORKER_PYTHON = """
from faas import Executor


def get_python_version():
   import platform
   return platform.python_version()


ep_id = "..."  # Endpoint ID from previous step

with Executor(endpoint_id=ep_id) as ex:
   f = ex.submit(get_python_version)
   print(f.result())
"""


def test_dynamic_python_environments(ep_uuid):
    import platform
    _, out = run_example(WORKER_PYTHON, '"..."', f'"{ep_uuid}"')
    assert out == platform.python_version() + "\n"


# -- docs/endpoints/endpoints.rst -----------------------------------------------------------

# endpoints.rst, "Basic User Workflow" (``/path/to/venv1`` and ``venv2``: two real virtual
# environments, made here as the user's would be)
ENDPOINTS_USER_WORKFLOW = """
from faas import Executor

def add(a, b):
   return a + b

with Executor(
    endpoint_id="...",
    user_endpoint_config={"worker_init": "source /path/to/venv1/bin/activate"}
) as ex:
    print(ex.submit(add, 30, 12).result())
    ex.user_endpoint_config["worker_init"] = "source /path/to/venv2/bin/activate"
    print(ex.submit(add, 21, 21).result())
"""


def test_endpoints_basic_user_workflow(ep_uuid, tmp_path):
    for venv in ("venv1", "venv2"):
        (tmp_path / venv / "bin").mkdir(parents=True)
        (tmp_path / venv / "bin" / "activate").write_text("export VIRTUAL_ENV=x\n")
    code = ENDPOINTS_USER_WORKFLOW.replace("/path/to", str(tmp_path))
    _, out = run_example(code, '"..."', f'"{ep_uuid}"')
    assert out == "42\n42\n"


# endpoints.rst, "High-Assurance Functions" (first block; ``'...'``: the endpoint's id)
ENDPOINTS_HA_REGISTRATION = """
from faas import Client, Executor

def ha_func(pii: str):
   from datetime import datetime
   return f"ha_func: {datetime.now()} - processed pii: {pii}"

gc = Client()
ex = Executor()  # for illustrative purposes; strongly consider `with Executor() as ex:` style

# Registration works the same, whether via the Client or the Executor
ha_func_id_via_client = gc.register_function(ha_func, ha_endpoint_id='...')
ha_func_id_via_ex = ex.register_function(ha_func, ha_endpoint_id='...')

# Now save one of the registered ids (from this example, they point to the same
# function logic) for later use with `.submit_to_registered_function()`
print(ha_func_id_via_ex)
"""


def test_endpoints_ha_registration(ep_uuid, monkeypatch):
    monkeypatch.setenv("FAAS_ENDPOINT", ep_uuid)
    ns, out = run_example(ENDPOINTS_HA_REGISTRATION, "'...'", repr(ep_uuid))
    assert out == ns["ha_func_id_via_ex"] + "\n" and ns["ha_func_id_via_client"] == ns["ha_func_id_via_ex"]
    fut = ns["ex"].submit_to_registered_function(ns["ha_func_id_via_ex"], ("ha-worthy-argument-to-function",))
    assert fut.result().endswith(" - processed pii: ha-worthy-argument-to-function")
    ns["ex"].shutdown()
    ns["gc"].close()


# endpoints.rst, "Tracing a Task to the Endpoint"
ENDPOINTS_TRACING = """
from faas import Executor

def some_task(*a, **k):
    return 1

with Executor() as ex:
    ex.endpoint_id = "..."  # as acquired from step 1
    ex.user_endpoint_config = {"worker_init": "source /path/to/venv/bin/activate"}
    fut = ex.submit(some_task)
    print("Result:", fut.result())  # Reminder: blocks until result received
"""


def test_endpoints_tracing_a_task(ep_uuid, tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "activate").write_text("export VIRTUAL_ENV=x\n")
    code = ENDPOINTS_TRACING.replace("/path/to", str(tmp_path))
    _, out = run_example(code, '"..."', f'"{ep_uuid}"')
    assert out == "Result: 1\n"


# -- the drop-in gaps these examples found, each pinned down ---------------------------------

def test_globus_sdk_module_paths_import():
    """``globus_compute_sdk.sdk.*`` paths the docs import from (ComputeFuture in the reload
    example; the reference's ShellFunction, ShellResult and MPIFunction)."""
    from faas import Batch, Client, Executor, MPIFunction, ShellFunction, ShellResult
    from faas.sdk.asynchronous.compute_future import ComputeFuture as AsyncComputeFuture
    from faas.sdk.batch import Batch as SdkBatch
    from faas.sdk.client import Client as SdkClient
    from faas.sdk.executor import ComputeFuture
    from faas.sdk.executor import Executor as SdkExecutor
    from faas.sdk.mpi_function import MPIFunction as SdkMPIFunction
    from faas.sdk.shell_function import ShellFunction as SdkShellFunction
    from faas.sdk.shell_function import ShellResult as SdkShellResult
    assert (SdkExecutor, SdkClient, SdkBatch, SdkShellFunction, SdkShellResult, SdkMPIFunction) == \
        (Executor, Client, Batch, ShellFunction, ShellResult, MPIFunction)
    import concurrent.futures
    assert AsyncComputeFuture is ComputeFuture and issubclass(ComputeFuture, concurrent.futures.Future)


def test_serialization_strategies_round_trip_as_globus_docs_say(tmp_path):
    from faas.errors import DeserializationError, SerdeError, SerializationError
    from faas.serialize import (
        DEFAULT_STRATEGY_CODE,
        DEFAULT_STRATEGY_DATA,
        AllCodeStrategies,
        AllDataStrategies,
        CombinedCode,
        ComputeSerializer,
        DillCode,
        DillCodeSource,
        DillCodeTextInspect,
        DillDataBase64,
        JSONData,
        PureSourceDill,
        PureSourceTextInspect,
    )
    assert (type(DEFAULT_STRATEGY_CODE), type(DEFAULT_STRATEGY_DATA)) == (DillCode, DillDataBase64)
    import importlib.util
    (tmp_path / "user_code.py").write_text("def add(a, b):\n    return a + b\n")   # source strategies read files
    spec = importlib.util.spec_from_file_location("user_code", tmp_path / "user_code.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ns = {"add": module.add}
    for code in (DillCode, DillCodeSource, DillCodeTextInspect, PureSourceTextInspect, PureSourceDill,
                 AllCodeStrategies, CombinedCode):
        for data in (DillDataBase64, JSONData, AllDataStrategies):
            serde = ComputeSerializer(strategy_code=code(), strategy_data=data)
            fn, args, kwargs = serde.check_strategies(ns["add"], 2, b=3)
            assert fn(*args, **kwargs) == 5 and list(args) == [2] and kwargs == {"b": 3}
    assert PureSourceTextInspect().serialize(ns["add"]) == "st\nadd:def add(a, b):\n    return a + b\n"
    with pytest.raises(SerializationError, match="check_strategies failed to serialize"):
        ComputeSerializer(strategy_data=JSONData()).check_strategies(ns["add"], {1, 2})   # a set: not JSON
    with pytest.raises(SerdeError, match="JSONData is a data serialization strategy, expected a code strategy"):
        ComputeSerializer(strategy_code=JSONData())
    with pytest.raises(SerdeError, match="Invalid strategy-like 'no.such.Strategy'"):
        ComputeSerializer(strategy_data="no.such.Strategy")
    assert type(ComputeSerializer(strategy_data="faas.serialize.JSONData").data_serializer) is JSONData
    strict = ComputeSerializer(allowed_deserializer_types=[PureSourceTextInspect, JSONData])
    with pytest.raises(DeserializationError, match="Code serializer DillCode disabled by current configuration"):
        strict.deserialize(ComputeSerializer().serialize(ns["add"]))
    with pytest.raises(SerdeError, match="at least one code and one data"):
        ComputeSerializer(allowed_deserializer_types=[JSONData])


def test_register_source_code_on_the_client(ep_uuid):
    """Globus's ``Client.register_source_code(source, function_name, ...)``: the source runs on
    the worker; a source that cannot run says so at registration."""
    from faas import Client
    from faas.errors import SerializationError, TaskPending
    gcc = Client()
    fid = gcc.register_source_code("import math\n\ndef hyp(a, b):\n    return math.hypot(a, b)\n", "hyp",
                                   description="the hypotenuse")
    assert gcc.get_function(fid)["description"] == "the hypotenuse"
    tid = gcc.run(3, 4, endpoint_id=ep_uuid, function_id=fid)
    for _ in range(600):
        try:
            assert gcc.get_result(tid) == 5.0
            break
        except TaskPending:
            import time
            time.sleep(0.1)
    else:
        raise AssertionError("the source-code task did not finish in 60 s")
    with pytest.raises(SerializationError, match="the source defines no top-level 'hyp' .it defines: other"):
        gcc.register_source_code("def other():\n    pass\n", "hyp")
    with pytest.raises(SerializationError, match="the source does not parse"):
        gcc.register_source_code("def hyp(:\n", "hyp")
    gcc.close()
    from faas import Executor
    with Executor(endpoint_id=ep_uuid) as gce:
        source = "def twice(x):\n    return 2 * x\n"
        fid = gce.register_source_code(source, function_name="twice")
        assert gce.submit_to_registered_function(fid, (21,)).result() == 42
        with pytest.raises(ValueError, match=f"Function already registered as function id: {fid}"):
            gce.register_source_code(source, function_name="twice")
