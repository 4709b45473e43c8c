"""FlowsClient against a memory:// store with the runner in this process."""
from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_runner_support import URL, counts, open_gate, resolver  # noqa: E402

from faas.flows import FlowsClient  # noqa: E402
from faas.flows.access import AccessDenied  # noqa: E402
from faas.flows.client import FlowNotFound, RunNotFound  # noqa: E402
from faas.flows.definition import DefinitionError  # noqa: E402
from faas.flows.runner import Runner  # noqa: E402
from faas.flows.schema import InputInvalid  # noqa: E402

TWO_STEPS = {"Comment": "two steps", "StartAt": "A", "States": {
    "A": {"Type": "Action", "ActionUrl": URL, "Parameters": {"x.$": "$.x"}, "ResultPath": "$.a",
          "Next": "B"},
    "B": {"Type": "Action", "ActionUrl": URL,
          "Parameters": {"n": 2, "secret": "s3cr3t", "__Private_Parameters": ["secret"]},
          "ResultPath": "$.b", "End": True}}}
SCHEMA = {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}


@pytest.fixture
def store_url():
    url = f"memory://flows-{uuid.uuid4().hex}"
    yield url
    from faas.flows import store_layout as L
    from faas.store import open_store
    L.open_command_queue(open_store(url)).destroy()   # memory stores' queues live in $FAAS_HOME/queues


@pytest.fixture
def runner(store_url):
    r = Runner(store_url, resolve=resolver(store_url))
    stop = threading.Event()
    t = threading.Thread(target=r.serve, kwargs={"max_wait": 0.05, "should_stop": stop.is_set},
                         daemon=True)
    t.start()
    yield r
    stop.set()
    t.join(30)


def test_deploy_get_list_update_delete(store_url):
    c = FlowsClient(store_url)
    f = c.deploy(TWO_STEPS, SCHEMA, title="T", keywords=["k"], viewers=["bob"])
    assert f["version"] == 1 and f["title"] == "T" and f["viewers"] == ["local:bob"]
    assert f["owner"] == c.identity and f["created_at"] == f["updated_at"]
    assert c.get_flow(f["id"])["definition"] == TWO_STEPS
    assert [x["id"] for x in c.list_flows()] == [f["id"]]
    f2 = c.update_flow(f["id"], title="T2")
    assert f2["version"] == 2 and c.get_flow(f["id"])["title"] == "T2"
    assert c.get_flow(f["id"], version=1)["title"] == "T"
    with pytest.raises(ValueError, match="unknown field"):
        c.update_flow(f["id"], colour="red")
    with pytest.raises(DefinitionError, match=r"\$.States.A.Next"):
        c.update_flow(f["id"], definition={"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "Nope"}}})
    c.delete_flow(f["id"])
    with pytest.raises(FlowNotFound):
        c.get_flow(f["id"])
    assert c.list_flows() == []


def test_validate_lists_every_problem(store_url):
    c = FlowsClient(store_url)
    bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": True},
                                      "C": {"Type": "Task", "End": True}}}
    found = c.validate(bad, {"type": "objekt"})
    locs = [p["location"] for p in found]
    assert any(loc.startswith("$.States.A") for loc in locs)
    assert any(loc.startswith("$.States.C") for loc in locs)
    assert any(loc.startswith("input_schema") for loc in locs), found
    assert c.validate(TWO_STEPS, SCHEMA) == []
    with pytest.raises(DefinitionError):
        c.deploy(bad)


def test_bad_input_lists_violations_and_starts_nothing(store_url):
    c = FlowsClient(store_url)
    f = c.deploy(TWO_STEPS, SCHEMA)
    with pytest.raises(InputInvalid) as e:
        c.start(f["id"], {"x": "one", "y": 1})
    assert e.value.violations == [{"path": "$.x", "message": "'one' is not of type 'integer'"}]
    with pytest.raises(InputInvalid, match=r"\$: 'x' is a required property"):
        c.start(f["id"], {})
    assert c.list_runs() == []


def test_run_to_success_with_log_and_private_parameters(store_url, runner):
    c = FlowsClient(store_url)
    f = c.deploy(TWO_STEPS, SCHEMA)
    r = c.start(f["id"], {"x": 7}, label="first", tags=["t1"])
    assert r["status"] == "ACTIVE" and r["flow_version"] == 1 and r["label"] == "first"
    done = c.wait(r["run_id"], timeout=60)
    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["a"]["details"]["echo"] == {"x": 7}
    assert done["completion_time"] and done["error"] is None
    log = c.get_log(r["run_id"])
    codes = [e["code"] for e in log]
    assert codes == ["FlowStarted", "ActionStarted", "ActionCompleted", "ActionStarted",
                     "ActionCompleted", "FlowSucceeded"]
    assert [e["seq"] for e in log] == list(range(1, 7))
    assert set(log[0]) == {"seq", "time", "code", "description", "details"}
    started_b = log[3]
    assert started_b["details"]["parameters"] == {"n": 2}   # the secret stays out of the log
    assert "__Private_Parameters" not in str(log)
    assert c.get_log(r["run_id"], after=4) == log[4:]
    assert [x["run_id"] for x in c.list_runs(status="SUCCEEDED", label="first")] == [r["run_id"]]
    assert c.list_runs(status="FAILED") == [] and c.list_runs(label="other") == []
    assert c.list_runs(flow_id="nope") == []
    assert len(c.list_runs(since="2000-01-01T00:00:00Z")) == 1
    assert counts(store_url) == {f"{r['run_id']}/A/1/0": 1, f"{r['run_id']}/B/2/0": 1}


def test_action_failure_fails_the_run(store_url, runner):
    c = FlowsClient(store_url)
    f = c.deploy({"StartAt": "A", "States": {"A": {"Type": "Action", "ActionUrl": URL,
                                                   "Parameters": {"fail": "disk full"},
                                                   "End": True}}})
    done = c.wait(c.start(f["id"], {})["run_id"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "ActionFailedException"
    assert "disk full" in done["cause"]
    codes = [e["code"] for e in c.get_log(done["run_id"])]
    assert "ActionFailed" in codes and codes[-1] == "FlowFailed"


def test_unable_to_run_is_caught(store_url, runner):
    c = FlowsClient(store_url)
    f = c.deploy({"StartAt": "A", "States": {
        "A": {"Type": "Action", "ActionUrl": "test://nowhere", "Parameters": {},
              "Catch": [{"ErrorEquals": ["ActionUnableToRun"], "Next": "Caught",
                         "ResultPath": "$.err"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}})
    done = c.wait(c.start(f["id"], {})["run_id"], timeout=60)
    assert done["status"] == "SUCCEEDED"
    assert done["output"]["err"]["Error"] == "ActionUnableToRun"


def test_cancel_inactive_run_and_resume(store_url, runner):
    c = FlowsClient(store_url)
    gate = uuid.uuid4().hex
    f = c.deploy({"StartAt": "A", "States": {"A": {"Type": "Action", "ActionUrl": URL,
                                                   "Parameters": {"inactive": gate},
                                                   "End": True}}})
    r = c.start(f["id"], {})
    deadline = time.time() + 60
    while c.get_run(r["run_id"])["status"] != "INACTIVE":
        assert time.time() < deadline
        time.sleep(0.05)
    c.cancel_run(r["run_id"])
    done = c.wait(r["run_id"], timeout=60)
    assert done["status"] == "ENDED"
    assert [e["code"] for e in c.get_log(r["run_id"])][-1] == "FlowCanceled"
    rid = f"{r['run_id']}/A/1/0"
    deadline = time.time() + 30
    while not runner.store.exists(f"testprov/canceled/{rid}"):
        assert time.time() < deadline, "the action was not canceled"
        time.sleep(0.05)
    # a second run: INACTIVE, then the gate opens and resume makes the runner look at once
    r2 = c.start(f["id"], {})
    while c.get_run(r2["run_id"])["status"] != "INACTIVE":
        time.sleep(0.05)
    open_gate(store_url, gate)
    c.resume_run(r2["run_id"])
    assert c.wait(r2["run_id"], timeout=60)["status"] == "SUCCEEDED"


def test_wait_state_and_timeout(store_url, runner):
    c = FlowsClient(store_url)
    f = c.deploy({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 1, "Next": "A"},
        "A": {"Type": "Action", "ActionUrl": URL, "Parameters": {"gate": "never"},
              "WaitTime": 1, "End": True}}})
    done = c.wait(c.start(f["id"], {})["run_id"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "ActionTimeout"


def test_access_roles(store_url, runner):
    alice = FlowsClient(store_url, identity="alice")
    bob = FlowsClient(store_url, identity="bob")
    carol = FlowsClient(store_url, identity="local:carol")
    f = alice.deploy(TWO_STEPS, SCHEMA, viewers=["carol"], starters=["bob"])
    assert [x["id"] for x in carol.list_flows()] == [f["id"]]
    assert FlowsClient(store_url, identity="dave").list_flows() == []
    with pytest.raises(AccessDenied):
        FlowsClient(store_url, identity="dave").get_flow(f["id"])
    with pytest.raises(AccessDenied, match="start flow"):
        carol.start(f["id"], {"x": 1})
    with pytest.raises(AccessDenied):
        bob.update_flow(f["id"], title="mine")
    r = bob.start(f["id"], {"x": 1}, monitors=["carol"])
    assert bob.wait(r["run_id"], timeout=60)["status"] == "SUCCEEDED"
    assert r["user"] == "local:bob"
    assert carol.get_run(r["run_id"])["status"] == "SUCCEEDED"     # monitor
    assert alice.get_log(r["run_id"])                               # flow administrator
    with pytest.raises(AccessDenied):
        FlowsClient(store_url, identity="dave").get_run(r["run_id"])
    with pytest.raises(AccessDenied, match="cancel"):
        carol.cancel_run(r["run_id"])                               # monitor, not manager
    assert [x["run_id"] for x in carol.list_runs()] == [r["run_id"]]
    assert FlowsClient(store_url, identity="dave").list_runs() == []
    with pytest.raises(RunNotFound):
        bob.get_run("no-such-run")


def test_runner_refuses_a_start_the_client_should_not_have_sent(store_url, runner):
    """A client that skips the checks (or lies) starts nothing: the runner checks again."""
    alice = FlowsClient(store_url, identity="alice")
    f = alice.deploy(TWO_STEPS, SCHEMA)
    mallory = FlowsClient(store_url, identity="mallory")
    flow = alice.get_flow(f["id"])
    r = mallory._start(flow, {"x": 1}, None, (), (), (), None)   # skips the client's check
    done = FlowsClient(store_url, identity="mallory").wait(r["run_id"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "AccessDenied"
    assert counts(store_url) == {}


@pytest.fixture
def builtin_runner(store_url):
    r = Runner(store_url)   # the real action providers (faas.flows.actions)
    stop = threading.Event()
    t = threading.Thread(target=r.serve, kwargs={"max_wait": 0.05, "should_stop": stop.is_set},
                         daemon=True)
    t.start()
    yield r
    stop.set()
    t.join(30)


APPROVAL = {"StartAt": "Ask", "States": {
    "Ask": {"Type": "Action", "ActionUrl": "faas://approval", "Parameters": {"message": "ok?"},
            "WaitTime": 600, "ResultPath": "$.approval", "End": True}}}


def _wait_status(c, run_id, status):
    deadline = time.time() + 60
    while c.get_run(run_id)["status"] != status:
        assert time.time() < deadline, c.get_run(run_id)
        time.sleep(0.05)


def test_approve_and_reject(store_url, builtin_runner):
    c = FlowsClient(store_url)
    f = c.deploy(APPROVAL)
    r = c.start(f["id"], {})
    _wait_status(c, r["run_id"], "INACTIVE")
    assert "ActionInactive" in [e["code"] for e in c.get_log(r["run_id"])]
    assert len(c.approve(r["run_id"], comment="fine")) == 1
    done = c.wait(r["run_id"], timeout=60)
    assert done["status"] == "SUCCEEDED"
    assert done["output"]["approval"]["details"]["comment"] == "fine"
    r2 = c.start(f["id"], {})
    _wait_status(c, r2["run_id"], "INACTIVE")
    with pytest.raises(AccessDenied):
        FlowsClient(store_url, identity="stranger").reject(r2["run_id"])
    c.reject(r2["run_id"], comment="no")
    done = c.wait(r2["run_id"], timeout=60)
    assert done["status"] == "FAILED" and done["error"] == "ActionFailedException"
    with pytest.raises(LookupError):
        c.approve(r2["run_id"])


def test_a_long_transfer_shows_its_progress_in_the_runs_log(store_url, builtin_runner, tmp_path,
                                                              monkeypatch):
    from faas.flows.actions import transfer
    monkeypatch.setattr(transfer, "PROGRESS_FILES", 20)
    monkeypatch.setattr(transfer, "POLL_AFTER", 0.05)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(600):
        (src / f"f{i:03}.txt").write_text(f"file {i}\n")
    c = FlowsClient(store_url)
    f = c.deploy({"StartAt": "Copy", "States": {"Copy": {
        "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/transfer",
        "Parameters": {"source_endpoint_id": src.as_uri(), "destination_endpoint_id": dst.as_uri(),
                       "transfer_items": [{"source_path": "/", "destination_path": "/",
                                           "recursive": True}]},
        "ResultPath": "$.copy", "End": True}}})
    done = c.wait(c.start(f["id"], {})["run_id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done
    progress = [e for e in c.get_log(done["run_id"]) if e["code"] == "ActionProgress"]
    assert progress, [e["code"] for e in c.get_log(done["run_id"])]
    assert all(e["details"]["state_name"] == "Copy" for e in progress)
    assert any("of 600 files" in e["description"] for e in progress), progress
