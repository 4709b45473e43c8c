"""The approval action: a run waits INACTIVE until someone approves or rejects it."""
from __future__ import annotations

import threading
import time

import pytest

import faas.flows as ff
from faas.flows.actions import APPROVAL, ActionConflict, ActionContext, ActionUnableToRun, resolve
from faas.flows.actions.approval import decide, pending


@pytest.fixture
def ctx(tmp_path):
    return ActionContext((tmp_path / "site").as_uri(), "run-a", "flow-a", "alice")


def test_approve(ctx):
    p = resolve(APPROVAL)
    doc = p.run({"message": "publish the data?", "approvers": ["bob"]}, "req-1", ctx)
    assert doc["status"] == "INACTIVE" and "bob" in doc["display_status"]
    assert "faas flows approve" in doc["display_status"]
    assert p.run({"message": "again"}, "req-1", ctx)["action_id"] == doc["action_id"]
    assert [d["action_id"] for d in pending(ctx.store_url, "run-a")] == [doc["action_id"]]
    with pytest.raises(PermissionError, match="approvers are bob"):
        decide(ctx.store_url, "run-a", True, by="mallory")
    with pytest.raises(ActionConflict):
        p.release(doc["action_id"], ctx)
    assert decide(ctx.store_url, "run-a", True, by="bob", comment="fine") == [doc["action_id"]]
    done = p.status(doc["action_id"], ctx)
    assert done["status"] == "SUCCEEDED"
    assert done["details"]["approved_by"] == "bob" and done["details"]["comment"] == "fine"
    assert pending(ctx.store_url, "run-a") == []
    assert decide(ctx.store_url, "run-a", True, by="bob") == []      # nothing waits any more
    p.release(doc["action_id"], ctx)


def test_reject_and_cancel(ctx):
    p = resolve(APPROVAL)
    a = p.run({}, "req-2", ctx)
    decide(ctx.store_url, "run-a", False, by="carol", comment="not yet")
    doc = p.status(a["action_id"], ctx)
    assert doc["status"] == "FAILED" and doc["details"]["rejected_by"] == "carol"
    b = p.run(None, "req-3", ctx)
    assert p.cancel(b["action_id"], ctx)["status"] == "FAILED"
    with pytest.raises(ActionUnableToRun, match="approvers"):
        p.run({"approvers": "bob"}, "req-4", ctx)


@pytest.mark.parametrize("approved", [True, False])
def test_a_run_waits_for_the_decision(tmp_path, approved):
    defn = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Action", "ActionUrl": APPROVAL, "Parameters": {"message.$": "$.question"},
                "WaitTime": 120, "ResultPath": "$.decision", "Next": "Done"},
        "Done": {"Type": "Pass", "End": True}}}
    store = (tmp_path / "site").as_uri()

    def approver():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if decide(store, "run-wait", approved, by="bob", comment="ok"):
                return
            time.sleep(0.05)
    t = threading.Thread(target=approver)
    t.start()
    doc = ff.run(defn, {"question": "go?"}, actions="site", store_url=store,
                 context={"run_id": "run-wait"})
    t.join()
    if approved:
        assert doc["status"] == "SUCCEEDED", doc
        assert doc["output"]["decision"]["details"]["approved_by"] == "bob"
    else:
        assert doc["status"] == "FAILED" and doc["error"] == "ActionFailedException"
        assert "Rejected" in (doc["cause"] or "")
