"""The approval action: a run waits INACTIVE until someone approves or rejects it.

On a file store the runner takes the decider from the owner of the decision file, so these
tests decide as the account running them (ME); the other accounts' side is in
tests/security/test_flows_security.py (real Unix accounts, as root)."""
from __future__ import annotations

import json
import os
import pwd
import threading
import time
import uuid

import pytest

import faas.flows as ff
from faas.flows import store_layout as L
from faas.flows.actions import APPROVAL, ActionConflict, ActionContext, ActionError, ActionUnableToRun, resolve
from faas.flows.actions.approval import DECISIONS, ApprovalProvider, decide, pending, write_decision
from faas.store import open_store

ME = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def ctx(tmp_path):
    return ActionContext((tmp_path / "site").as_uri(), "run-a", "flow-a", ME)


def test_approve(ctx):
    p = resolve(APPROVAL)
    doc = p.run({"message": "publish the data?", "approvers": [ME]}, "req-1", ctx)
    assert doc["status"] == "INACTIVE" and ME in doc["display_status"]
    assert "faas flows approve" in doc["display_status"]
    assert p.run({"message": "again"}, "req-1", ctx)["action_id"] == doc["action_id"]
    assert [d["action_id"] for d in pending(ctx.store_url, "run-a")] == [doc["action_id"]]
    with pytest.raises(PermissionError, match=f"approvers are {ME}"):
        decide(ctx.store_url, "run-a", True, by="mallory")
    with pytest.raises(ActionConflict):
        p.release(doc["action_id"], ctx)
    assert decide(ctx.store_url, "run-a", True, by=ME, comment="fine") == [doc["action_id"]]
    done = p.status(doc["action_id"], ctx)
    assert done["status"] == "SUCCEEDED"
    assert done["details"]["approved_by"] == ME and done["details"]["comment"] == "fine"
    assert pending(ctx.store_url, "run-a") == []
    assert decide(ctx.store_url, "run-a", True, by=ME) == []      # nothing waits any more
    p.release(doc["action_id"], ctx)
    assert list(open_store(ctx.store_url).list(DECISIONS)) == []


def test_reject_and_cancel(ctx):
    p = resolve(APPROVAL)
    a = p.run({}, "req-2", ctx)
    decide(ctx.store_url, "run-a", False, by=ME, comment="not yet")
    doc = p.status(a["action_id"], ctx)
    assert doc["status"] == "FAILED" and doc["details"]["rejected_by"] == ME
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
            if decide(store, "run-wait", approved, by=ME, comment="ok"):
                return
            time.sleep(0.05)
    t = threading.Thread(target=approver)
    t.start()
    doc = ff.run(defn, {"question": "go?"}, actions="site", store_url=store,
                 context={"run_id": "run-wait", "username": ME})
    t.join()
    if approved:
        assert doc["status"] == "SUCCEEDED", doc
        assert doc["output"]["decision"]["details"]["approved_by"] == ME
    else:
        assert doc["status"] == "FAILED" and doc["error"] == "ActionFailedException"
        assert "Rejected" in (doc["cause"] or "")


# --- the runner checks who decided ----------------------------------------------------------
def _start(ctx, body, rid="req-check"):
    p = ApprovalProvider()
    return p, p.run(body, rid, ctx)["action_id"]


def test_on_a_file_store_the_decider_is_the_files_owner_not_the_claim(ctx, caplog):
    p, aid = _start(ctx, {"approvers": ["bob"]})
    write_decision(ctx.store_url, "run-a", aid, True, by="bob")   # written by ME, claims bob
    doc = p.status(aid, ctx)
    assert doc["status"] == "INACTIVE"
    assert doc["details"]["ignored"][0]["by"] == f"local:{ME}"
    assert "not among the approvers (bob)" in doc["details"]["ignored"][0]["why"]
    assert f"by local:{ME}" in caplog.text and "still waits" in caplog.text


def test_without_approvers_a_manager_of_the_run_decides(ctx):
    store = open_store(ctx.store_url)
    L.put_json(store, L.run_key("run-a"), {"run_id": "run-a", "flow_id": "flow-a",
                                           "user": "local:someone-else", "managers": [ME]})
    p, aid = _start(ActionContext(ctx.store_url, "run-a", "flow-a", "someone-else"), {})
    write_decision(ctx.store_url, "run-a", aid, True, by="whoever")
    assert p.status(aid, ctx)["details"]["approved_by"] == ME


def test_without_approvers_others_do_not_decide(ctx):
    theirs = ActionContext(ctx.store_url, "run-a", "flow-a", "someone-else")
    p, aid = _start(theirs, {})
    write_decision(ctx.store_url, "run-a", aid, True, by="someone-else")
    doc = p.status(aid, theirs)
    assert doc["status"] == "INACTIVE"
    assert doc["details"]["ignored"][0]["why"] == "not a manager of the run"


def test_a_decision_for_another_approval_or_behind_a_link_is_ignored(ctx, tmp_path):
    p, aid = _start(ctx, {"approvers": [ME]})
    root = tmp_path / "site"
    other = write_decision(ctx.store_url, "run-a", "another-approval", True, by=ME)
    os.rename(root / other, root / f"{DECISIONS}{aid}.moved.json")   # moved under this one
    lent = write_decision(ctx.store_url, "run-a", aid, True, by=ME)    # valid, but kept away:
    os.rename(root / lent, tmp_path / "elsewhere.json")                # only a link leads to it
    os.symlink(tmp_path / "elsewhere.json", root / f"{DECISIONS}{aid}.link.json")
    doc = p.status(aid, ctx)
    assert doc["status"] == "INACTIVE"
    whys = [i["why"] for i in doc["details"]["ignored"]]
    assert any("decides another approval" in w for w in whys), whys
    # a store that lists links shows this one, and the runner refuses it; one that lists
    # regular files only never shows it: either way it decides nothing
    assert all("decides another" in w or "symbolic link" in w for w in whys), whys


def test_claims_are_checked_where_the_store_cannot_tell_the_writer():
    """memory:// (like S3): the runner can only check the name a decision claims."""
    ctx = ActionContext(f"memory://approvals-{uuid.uuid4().hex}", "run-m", "flow-m", "alice")
    p, aid = _start(ctx, {"approvers": ["bob"]})
    write_decision(ctx.store_url, "run-m", aid, True, by="mallory")
    assert p.status(aid, ctx)["status"] == "INACTIVE"
    write_decision(ctx.store_url, "run-m", aid, True, by="bob")
    done = p.status(aid, ctx)
    assert done["status"] == "SUCCEEDED" and done["details"]["approved_by"] == "bob"
    assert done["details"]["ignored"][0]["by"] == "local:mallory"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another account needs root")
def test_an_approval_document_written_by_another_account_is_put_back(ctx, tmp_path, caplog):
    """What deciding used to be: the approval's own document rewritten SUCCEEDED."""
    p, aid = _start(ctx, {"approvers": ["bob"]})
    path = tmp_path / "site" / f"flows/actions/approval/{aid}.json"
    forged = dict(json.loads(path.read_text()), status="SUCCEEDED",
                  details={"approved": True, "approved_by": "bob"})
    path.write_text(json.dumps(forged))
    os.chown(path, 65534, 65534)                       # as if nobody wrote it
    back = p.status(aid, ctx)
    assert back["status"] == "INACTIVE" and back["details"]["approvers"] == ["bob"]
    assert os.stat(path).st_uid == os.geteuid()
    assert "not by the runner" in caplog.text
    os.chown(path, 65534, 65534)   # a runner that did not start it cannot tell what was asked
    with pytest.raises(ActionError, match="cannot tell what was asked"):
        ApprovalProvider().status(aid, ctx)
