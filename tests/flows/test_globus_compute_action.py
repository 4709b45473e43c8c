"""Flows written for Globus's compute action run unchanged: its request bodies (V2 single task,
V3 ``endpoint_id`` + ``tasks``), its result shape (``details.result`` / ``details.results[{task_id,
output}]``) and its failures (``ActionFailedException`` for a function that raised,
``ActionUnableToRun`` naming the key of a bad body). Each flow runs through
``faas.flows.run(definition, input)`` with no ``actions=``: the real actions are the default."""
from __future__ import annotations

import uuid

import pytest

import faas
import faas.flows as ff

COMPUTE_V2 = "https://compute.actions.globus.org/fxap"
COMPUTE_V3 = "https://compute.actions.globus.org/v3"

# The talk's "Transfer and process files" flow (shared/seeds), as written for Globus, and a state
# that reads the compute result the way Globus's docs say it is shaped.
TRANSFER_AND_PROCESS = {
    "Comment": "Transfer and process files by invoking a funcX function",
    "StartAt": "TransferFiles",
    "States": {
        "TransferFiles": {
            "Next": "ProcessFiles", "Type": "Action", "Comment": "Transfer to a guest collection",
            "WaitTime": 60, "ActionUrl": "https://actions.automate.globus.org/transfer/transfer",
            "Parameters": {
                "transfer_items": [{"recursive.$": "$.input.recursive_tx",
                                    "source_path.$": "$.input.source.path",
                                    "destination_path.$": "$.input.destination.path"}],
                "source_endpoint_id.$": "$.input.source.id",
                "destination_endpoint_id.$": "$.input.destination.id"},
            "ResultPath": "$.TransferFiles"},
        "ProcessFiles": {
            "Next": "Report", "Type": "Action", "Comment": "Process files - generate thumbnails",
            "WaitTime": 180, "ActionUrl": "https://compute.actions.globus.org/fxap",
            "Parameters": {"kwargs.$": "$.input.compute_function_kwargs",
                           "endpoint.$": "$.input.compute_endpoint_id",
                           "function.$": "$.input.compute_function_id"},
            "ResultPath": "$.ProcessFiles"},
        "Report": {
            "Type": "Pass", "End": True, "ResultPath": "$.report",
            "Parameters": {"processed.$": "$.ProcessFiles.details.results[0].output",
                           "task_id.$": "$.ProcessFiles.details.results[0].task_id",
                           "legacy.$": "$.ProcessFiles.details.result[0]"}}}}


def list_files(path):
    import os
    return sorted(os.listdir(path))


def add(a, b=0):
    return a + b


def shout(word):
    return word.upper() + "!"


def boom(msg):
    raise ValueError(f"bad input: {msg}")


@pytest.fixture(scope="module")
def fns(home):
    c = faas.client()
    ids = {f.__name__: c.register_function(f) for f in (list_files, add, shout, boom)}
    c.close()
    return ids


def action(url, params, **state):
    return {"StartAt": "Run", "States": {"Run": dict(
        {"Type": "Action", "ActionUrl": url, "Parameters": params, "ResultPath": "$.run",
         "WaitTime": 120, "End": True}, **state)}}


def test_talks_transfer_then_compute_flow_reads_results_output(fns, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "in").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (src / "in" / name).write_bytes(b"png " + name.encode())
    dst.mkdir()
    doc = ff.run(TRANSFER_AND_PROCESS, {"input": {
        "source": {"id": src.as_uri(), "path": "/in/"},
        "destination": {"id": dst.as_uri(), "path": "/out/"},
        "recursive_tx": True,
        "compute_endpoint_id": "local",
        "compute_function_id": fns["list_files"],
        "compute_function_kwargs": {"path": str(dst / "out")}}})
    assert doc["status"] == "SUCCEEDED", doc
    details = doc["output"]["ProcessFiles"]["details"]
    assert details["result"] == [["a.png", "b.png"]]
    assert details["results"] == [{"task_id": details["results"][0]["task_id"],
                                   "output": ["a.png", "b.png"]}]
    report = doc["output"]["report"]
    assert report["processed"] == report["legacy"] == ["a.png", "b.png"]
    assert faas.client().get_task(report["task_id"])["status"] == "success"


def test_v3_tasks_body_with_task_group_and_options(fns):
    group = str(uuid.uuid4())
    doc = ff.run(action(COMPUTE_V3, {
        "endpoint_id": "local",
        "tasks": [{"function_id": fns["add"], "args": [1, 2]},
                  {"function_id": fns["shout"], "kwargs": {"word": "hi"}},
                  {"function_id": fns["add"], "args": [5], "kwargs": {"b": 5}}],
        "task_group_id": group,
        "resource_specification": {"priority": 3},
        "create_queue": False}), {})
    assert doc["status"] == "SUCCEEDED", doc
    details = doc["output"]["run"]["details"]
    assert details["result"] == [3, "HI!", 10]
    ids = [r["task_id"] for r in details["results"]]
    assert [r["output"] for r in details["results"]] == details["result"]
    c = faas.client()
    sent = [tid for _, _, tids in c.group_tasks(group).values() for tid in tids]
    assert sorted(sent) == sorted(ids)          # task_group_id reached the client


def test_v2_single_task_plus_tasks_and_a_single_arg(fns):
    """Globus's V2 body: the top-level task runs first, then ``tasks`` (each naming its endpoint);
    ``args`` may be one item; ``payload`` is the older name of ``kwargs``."""
    doc = ff.run(action(COMPUTE_V2, {
        "endpoint": "local", "function": fns["shout"], "args": "one",
        "tasks": [{"endpoint": "local", "function": fns["add"], "payload": {"a": 2, "b": 2}}]}), {})
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["run"]["details"]["result"] == ["ONE!", 4]


def test_resource_specification_reaches_the_endpoint(fns):
    """The endpoint's engine refuses MPI keys it cannot honour: proof the spec travelled."""
    doc = ff.run(action(COMPUTE_V3, {"endpoint_id": "local", "tasks": [{"function_id": fns["add"],
                                                                        "args": [1]}],
                                     "resource_specification": {"num_nodes": 2}}), {})
    assert doc["status"] == "FAILED" and doc["error"] == "ActionFailedException", doc
    assert "num_nodes" in doc["cause"]


def test_failing_function_is_caught_as_action_failed_exception(fns):
    defn = action(COMPUTE_V2, {"endpoint": "local", "function": fns["boom"], "args": ["x"]})
    state = defn["States"]["Run"]
    del state["End"]
    state.update(Next="Handled", Catch=[{"ErrorEquals": ["ActionFailedException"],
                                         "ResultPath": "$.failure", "Next": "Handled"}])
    defn["States"]["Handled"] = {"Type": "Pass", "End": True}
    doc = ff.run(defn, {"keep": 1})
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["keep"] == 1
    failure = doc["output"]["failure"]
    assert failure["Error"] == "ActionFailedException"
    assert "ValueError" in failure["Cause"] and "bad input: x" in failure["Cause"]


def test_bad_bodies_name_the_key(fns):
    doc = ff.run(action(COMPUTE_V2, {"endpoint": "local", "args": [1]}), {})
    assert doc["status"] == "FAILED" and doc["error"] == "ActionUnableToRun"
    assert "function: missing" in doc["cause"]
    doc = ff.run(action(COMPUTE_V3, {"endpoint_id": "local",
                                     "tasks": [{"function_id": fns["add"], "args": [1]},
                                               {"args": [2]}]}), {})
    assert doc["error"] == "ActionUnableToRun" and "tasks[1].function: missing" in doc["cause"]
    doc = ff.run(action(COMPUTE_V3, {"endpoint_id": "local", "tasks": [{"function_id": fns["add"]}],
                                     "user_endpoint_config": "big"}), {})
    assert doc["error"] == "ActionUnableToRun" and "user_endpoint_config: expected an object" in doc["cause"]
    doc = ff.run(action(COMPUTE_V3, {"endpoint_id": "local", "tasks": [{"function_id": fns["add"]}],
                                     "task_group_id": "not-a-uuid"}), {})
    assert doc["error"] == "ActionUnableToRun" and "task_group_id" in doc["cause"]


def test_opting_out_of_actions(fns):
    """Tests that want no actions say so: ``actions={}``."""
    doc = ff.run(action(COMPUTE_V2, {"endpoint": "local", "function": fns["add"], "args": [1]}), {},
                 actions={})
    assert doc["error"] == "ActionUnableToRun" and "no action registered" in doc["cause"]


@pytest.mark.slow
def test_the_docs_compute_example_runs_as_written(tmp_path):
    """docs/flows.md's compute example, pasted into a script, on a fresh embedded default."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path
    docs = (Path(__file__).resolve().parents[2] / "docs" / "flows.md").read_text()
    section = docs.split("## Actions: every ActionUrl faas serves", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(tmp_path / "home")
    (tmp_path / "example.py").write_text(code)
    try:
        out = subprocess.run([sys.executable, str(tmp_path / "example.py")], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=180)
    finally:
        subprocess.run([sys.executable, "-m", "faas.cli.main", "endpoint", "stop", "local"],
                       env=env, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "SUCCEEDED 42"
