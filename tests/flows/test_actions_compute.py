"""The compute action against a real local endpoint (daemon, pool, worker processes)."""
from __future__ import annotations

import os
import time

import pytest

import faas
import faas.flows as ff
from faas.flows.access import identity_of_uid
from faas.flows.actions import COMPUTE, ActionContext, ActionUnableToRun, canonical, resolve
from faas.flows.actions.compute import ComputeProvider

WAIT = 120.0


def add(a, b=0):
    return a + b


def boom(msg):
    raise ValueError(f"bad input: {msg}")


def nap(seconds):
    import time
    time.sleep(seconds)
    return seconds


def not_json():
    return {1, 2}


@pytest.fixture(scope="module")
def fns(home):
    c = faas.client()
    ids = {f.__name__: c.register_function(f) for f in (add, boom, nap, not_json)}
    c.close()
    return ids


@pytest.fixture
def ctx(home, tmp_path):
    # the runner acting for its own account (a run of another user: test_compute_endpoints_for_other_users)
    return ActionContext((tmp_path / "site").as_uri(), "run-c", "flow-c", identity_of_uid(os.geteuid()))


def wait_done(p, doc, ctx, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while doc["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, f"still {doc['status']}: {doc}"
        time.sleep(0.1)
        doc = p.status(doc["action_id"], ctx)
    return doc


def test_compute_aliases():
    for url in ("https://compute.actions.globus.org/fxap", "https://compute.actions.globus.org",
                "https://compute.actions.globus.org/v2", "https://compute.actions.globus.org/v3/",
                "faas://compute"):
        assert canonical(url) == COMPUTE and isinstance(resolve(url), ComputeProvider)


def test_one_call_and_a_list_of_tasks(fns, ctx):
    p = resolve(COMPUTE)
    doc = p.run({"endpoint": "local", "function": fns["add"], "args": [2], "kwargs": {"b": 3}}, "r1", ctx)
    assert doc["status"] == "ACTIVE" and doc["poll_after"] > 0
    task_ids = doc["details"]["task_ids"]
    doc = wait_done(p, doc, ctx)
    # Globus's result shape, also for one task: details.result and details.results[{task_id, output}]
    assert doc["status"] == "SUCCEEDED"
    assert doc["details"] == {"result": [5], "results": [{"task_id": task_ids[0], "output": 5}]}
    doc = wait_done(p, p.run({"tasks": [{"endpoint": "local", "function": fns["add"], "args": [i, i]}
                                        for i in range(4)]}, "r2", ctx), ctx)
    assert doc["details"]["result"] == [0, 2, 4, 6]
    assert [r["output"] for r in doc["details"]["results"]] == [0, 2, 4, 6]
    # Globus's other spellings: endpoint_id/function_id, payload as kwargs
    doc = wait_done(p, p.run({"endpoint_id": "local", "function_id": fns["add"],
                              "payload": {"a": 1, "b": 1}}, "r3", ctx), ctx)
    assert doc["details"]["result"] == [2]


def test_remote_exception_fails_with_its_traceback(fns, ctx):
    p = resolve(COMPUTE)
    doc = wait_done(p, p.run({"endpoint": "local", "function": fns["boom"], "args": ["x"]}, "r4", ctx), ctx)
    assert doc["status"] == "FAILED"
    d = doc["details"]
    assert d["error"] == "ValueError" and "bad input: x" in d["message"]
    assert "Traceback" in d["traceback"] and "in boom" in d["traceback"]
    doc = wait_done(p, p.run({"endpoint": "local", "function": fns["not_json"]}, "r5", ctx), ctx)
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "ResultNotJSON"


def test_same_request_id_sends_once(fns, ctx):
    p = ComputeProvider()
    body = {"endpoint": "local", "function": fns["add"], "args": [1, 1]}
    a = p.run(body, "r-idem", ctx)
    b = ComputeProvider().run(body, "r-idem", ctx)      # another provider object: the store decides
    assert a["status"] == "ACTIVE" and a["action_id"] == b["action_id"]
    assert wait_done(p, b, ctx)["details"]["result"] == [2]
    raw = p.docs.get(ctx, a["action_id"])
    assert raw["_task_ids"] == a["details"]["task_ids"] and len(raw["_task_ids"]) == 1


def test_unable_to_run(fns, ctx):
    p = resolve(COMPUTE)
    with pytest.raises(ActionUnableToRun, match="not registered"):
        p.run({"endpoint": "local", "function": "0" * 64}, "r6", ctx)
    with pytest.raises(ActionUnableToRun, match="EndpointNotFound"):
        p.run({"tasks": [{"endpoint": "local", "function": fns["add"], "args": [1]},
                         {"endpoint": "nowhere", "function": fns["add"], "args": [1]}]}, "r7", ctx)
    with pytest.raises(ActionUnableToRun, match="function: missing"):
        p.run({"endpoint": "local"}, "r8", ctx)
    with pytest.raises(ActionUnableToRun, match=r"tasks\[0\]\.function: expected a function id"):
        p.run({"endpoint": "local", "tasks": [{"function": 7}]}, "r8", ctx)
    with pytest.raises(ActionUnableToRun, match="kwargs: expected an object"):
        p.run({"endpoint": "local", "function": fns["add"], "kwargs": [3]}, "r9", ctx)
    with pytest.raises(ActionUnableToRun, match="resource_specification: expected an object"):
        p.run({"endpoint": "local", "function": fns["add"], "resource_specification": 2}, "r9", ctx)
    # nothing was started, so the same request id may start afresh once the body is fixed
    assert wait_done(p, p.run({"endpoint": "local", "function": fns["add"], "args": [1]}, "r6", ctx),
                     ctx)["details"]["result"] == [1]


def test_cancel_stops_the_task(fns, ctx):
    p = resolve(COMPUTE)
    doc = p.run({"endpoint": "local", "function": fns["nap"], "args": [60]}, "r10", ctx)
    doc = p.cancel(doc["action_id"], ctx)
    assert (doc["status"], doc["display_status"]) == ("FAILED", "Canceled")
    tid = doc["details"]["task_ids"][0]
    c = faas.client()
    deadline = time.monotonic() + WAIT
    while c.get_task(tid)["status"] not in ("cancelled", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    c.close()


def test_endpoint_ids_map_to_names(fns, ctx):
    ctx.config = {"compute": {"endpoints": {"4b116d3c-1703-4f8f-9f6f-39921e5864df": "local"}}}
    p = resolve(COMPUTE)
    doc = p.run({"endpoint": "4b116d3c-1703-4f8f-9f6f-39921e5864df", "function": fns["add"], "args": [7]},
                "r11", ctx)
    assert wait_done(p, doc, ctx)["details"]["result"] == [7]


def test_map_state_fans_out_compute(fns, home, tmp_path):
    """A Map state over a list, each item a compute action, in-process with the real provider."""
    defn = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.numbers", "MaxConcurrency": 2, "ResultPath": "$.sums", "End": True,
        "Iterator": {"StartAt": "Add", "States": {"Add": {
            "Type": "Action", "ActionUrl": "https://compute.actions.globus.org/fxap",
            "Parameters": {"endpoint": "local", "function": fns["add"], "args.$": "$.pair"},
            "ResultPath": "$.r", "OutputPath": "$.r.details.results[0].output", "End": True}}}}}}
    doc = ff.run(defn, {"numbers": [{"pair": [1, 2]}, {"pair": [3, 4]}]}, actions="site",
                 store_url=(tmp_path / "site").as_uri())
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["sums"] == [3, 7]


def test_died_while_sending_fails_rather_than_sending_twice(fns, ctx):
    """A document without task ids is what a process killed between writing it and recording the
    sent tasks leaves: it fails with ActionInterrupted and sends nothing."""
    from faas.flows.actions.base import new_doc
    p = ComputeProvider()
    doc, created = p.docs.create(ctx, "r-died", lambda aid: dict(
        new_doc("compute", aid, "r-died", ctx), _tasks=[], _many=False, _task_ids=None))
    assert created
    again = p.run({"endpoint": "local", "function": fns["add"], "args": [1]}, "r-died", ctx)
    assert again["action_id"] == doc["action_id"]
    assert again["status"] == "FAILED" and again["details"]["error"] == "ActionInterrupted"


def test_compute_endpoints_for_other_users(home, fns, tmp_path):
    """A runner serving another user's run sends tasks only to the endpoints its site config
    lists (compute.allowed_endpoints, names or ids mapped under compute.endpoints; "*": any)."""
    p = ComputeProvider()
    body = {"endpoint": "local", "function": fns["add"], "args": [1, 2]}

    def ctx(compute: dict | None):
        return ActionContext((tmp_path / "site").as_uri(), "run-o", "flow-o", "local:someone-else",
                             config={"compute": compute} if compute is not None else {})
    for compute in (None, {}, {"allowed_endpoints": ["other"]}):
        with pytest.raises(ActionUnableToRun, match=r"endpoint: 'local' is not one this runner sends "
                                                    r"tasks to for local:someone-else's runs.*"
                                                    r"compute.allowed_endpoints"):
            p.run(body, f"r-{len(str(compute))}", ctx(compute))
    with pytest.raises(ActionUnableToRun, match="compute.allowed_endpoints"):   # a retry: refused again
        p.run(body, "r-2", ctx(None))
    gid = "0f0e0d0c-0000-4000-8000-000000000001"
    for n, compute in enumerate(({"allowed_endpoints": ["local"]}, {"allowed_endpoints": ["*"]},
                                 {"allowed_endpoints": [gid], "endpoints": {gid: "local"}})):
        doc = wait_done(p, p.run(body, f"ok-{n}", ctx(compute)), ctx(compute))
        assert doc["status"] == "SUCCEEDED" and doc["details"]["result"] == [3], doc
