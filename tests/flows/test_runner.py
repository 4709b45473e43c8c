"""The durable runner: kill -9 and restart, standby runners, identity from the transport, s3."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from helpers import wait_until  # noqa: E402
from test_runner_support import URL, counts, open_gate, resolver  # noqa: E402

from faas.flows import FlowsClient  # noqa: E402
from faas.flows import store_layout as L  # noqa: E402
from faas.flows.runner import Runner, StoreBusy  # noqa: E402

FLOW = {"StartAt": "A", "States": {
    "A": {"Type": "Action", "ActionUrl": URL, "Parameters": {"gate.$": "$.gate"},
          "ResultPath": "$.a", "Next": "W"},
    "W": {"Type": "Wait", "Seconds": 3, "Next": "B"},
    "B": {"Type": "Action", "ActionUrl": URL, "Parameters": {"seconds": 0.2}, "ResultPath": "$.b",
          "Next": "C"},
    "C": {"Type": "Pass", "Result": "done", "ResultPath": "$.c", "End": True}}}


def _wait_for(pred, what, timeout=90.0):
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _runner_proc(store_url: str, tmp_path: Path, n: int) -> subprocess.Popen:
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from test_runner_support import serve_forever; "
            f"serve_forever({store_url!r})")
    log = open(tmp_path / f"runner{n}.log", "w")
    return subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _codes(c, run_id):
    return [e["code"] for e in c.get_log(run_id)]


@pytest.mark.slow
def test_kill_9_and_standby_take_over_nothing_starts_twice(tmp_path, faas_home):
    store_url = (tmp_path / "store").as_uri()
    c = FlowsClient(store_url)
    flow = c.deploy(FLOW)
    gate = uuid.uuid4().hex
    procs = [_runner_proc(store_url, tmp_path, 1), _runner_proc(store_url, tmp_path, 2)]
    try:
        run = c.start(flow["id"], {"gate": gate})
        rid = run["run_id"]
        a = f"{rid}/A/1/0"
        _wait_for(lambda: a in counts(store_url), "action A to start")
        # exactly one runner holds the store: the other stands by
        first = next(p for p in procs if p.poll() is None)
        holder = int(Path(tmp_path / "store" / "flows" / "runner.lock").read_text().split()[1])
        assert holder in [p.pid for p in procs]
        killed = next(p for p in procs if p.pid == holder)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(30)
        open_gate(store_url, gate)
        # the standby takes the store, re-issues A with the same request id, and goes on
        _wait_for(lambda: "WaitStarted" in _codes(c, rid), "the Wait state")
        standby = next(p for p in procs if p is not killed)
        assert standby.poll() is None and first is not None
        os.killpg(standby.pid, signal.SIGKILL)      # kill -9 in the middle of the Wait
        standby.wait(30)
        assert c.get_run(rid)["status"] == "ACTIVE"
        procs.append(_runner_proc(store_url, tmp_path, 3))
        done = c.wait(rid, timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(30)
    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["c"] == "done" and done["output"]["b"]["status"] == "SUCCEEDED"
    starts = counts(store_url)
    assert starts == {a: 1, f"{rid}/B/3/0": 1}          # no action started twice
    assert counts(store_url, "calls")[a] >= 2           # ... though A was re-issued after kill
    codes = _codes(c, rid)
    assert codes == ["FlowStarted", "ActionStarted", "ActionCompleted", "WaitStarted",
                     "WaitCompleted", "ActionStarted", "ActionCompleted", "PassStarted",
                     "PassCompleted", "FlowSucceeded"]
    assert not list(L.get_json(c.store, L.run_key(rid, "state"))["actions"])
    assert not c.store.exists(L.active_key(rid))


def test_one_runner_holds_a_file_store(tmp_path, faas_home):
    store_url = (tmp_path / "store").as_uri()
    r1 = Runner(store_url, resolve=resolver(store_url))
    r1.acquire(wait=False)
    r2 = Runner(store_url, resolve=resolver(store_url))
    with pytest.raises(StoreBusy):
        r2.acquire(wait=False)
    r1.release()
    r2.acquire(wait=False)
    r2.release()


def test_lease_on_a_store_without_locks(faas_home):
    store_url = f"memory://lease-{uuid.uuid4().hex}"
    r1, r2 = Runner(store_url), Runner(store_url)
    r1._hold.settle = r2._hold.settle = 0.01
    r1.acquire(wait=False)
    with pytest.raises(StoreBusy):
        r2.acquire(wait=False)
    # r1 stalls past its lease: r2 takes over, and r1 learns at its next renewal and stops
    L.put_json(r1.store, L.LEASE, {"holder": r1._hold.me, "expires": time.time() - 1})
    r2.acquire(wait=False)
    r1._hold.renewed = 0.0
    assert not r1._hold.renew() and r2._hold.renew()
    r1.release()   # not its lease any more: leaves r2's alone
    assert L.get_json(r2.store, L.LEASE)["holder"] == r2._hold.me
    r2.queue.destroy()


def test_identity_on_a_file_store_comes_from_the_file_owner(tmp_path, faas_home):
    """A client that claims to be someone else (here: the flow's owner) is who owns its command
    file to the runner, and that user may not start the flow."""
    store_url = (tmp_path / "store").as_uri()
    bob = FlowsClient(store_url, identity="local:bob-not-me")
    flow = bob.deploy({"StartAt": "A", "States": {"A": {"Type": "Action", "ActionUrl": URL,
                                                        "Parameters": {}, "End": True}}})
    run = bob.start(flow["id"], {})
    r = Runner(store_url, resolve=resolver(store_url))
    r.serve(once=True)
    doc = bob.get_run(run["run_id"])
    assert doc["status"] == "FAILED" and doc["error"] == "AccessDenied", doc
    assert counts(store_url) == {}
    # the same, as myself: it runs
    me = FlowsClient(store_url)
    flow = me.deploy({"StartAt": "A", "States": {"A": {"Type": "Action", "ActionUrl": URL,
                                                       "Parameters": {}, "End": True}}})
    run = me.start(flow["id"], {})
    for _ in range(50):
        r.serve(once=True)
        if me.get_run(run["run_id"])["status"] != "ACTIVE":
            break
        time.sleep(0.1)
    assert me.get_run(run["run_id"])["status"] == "SUCCEEDED"


def test_a_lost_doorbell_is_found_by_the_scan(tmp_path, faas_home, monkeypatch):
    store_url = (tmp_path / "store").as_uri()
    c = FlowsClient(store_url)
    flow = c.deploy({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    monkeypatch.setattr(L, "open_command_queue", _broken_queue(L.open_command_queue))
    c._queue = None
    run = c.start(flow["id"], {"v": 1})
    monkeypatch.undo()
    Runner(store_url, resolve=resolver(store_url)).serve(once=True)
    assert c.get_run(run["run_id"])["status"] == "SUCCEEDED"
    assert list(c.store.list(L.COMMANDS)) == []


def test_a_stuck_doorbell_leaves_one_thread_not_one_per_command():
    """A doorbell held locked by another account keeps its ring's thread for up to SQLite's
    timeout: rings after it are skipped while it is stuck (the scan finds their commands), and
    ringing resumes once it has ended."""
    release = threading.Event()
    sent: list[str] = []

    class Held:
        def send(self, bodies):
            release.wait(30)
            sent.extend(bodies)

    def ringers() -> int:
        return sum(t.name == "faas-flows-ring" and t.is_alive() for t in threading.enumerate())

    before = ringers()
    try:
        assert L.ring(Held, "first", patience=0.2) is False
        for i in range(5):
            assert L.ring(Held, f"more {i}", patience=0.2) is False
        assert ringers() - before == 1, "each ring behind a stuck doorbell left its own thread"
    finally:
        release.set()
    wait_until(lambda: ringers() == before, 10)
    assert sent == ["first"]
    assert L.ring(Held, "after", patience=5) is True and sent == ["first", "after"]


def test_markers_and_commands_that_name_no_run_are_dropped_not_retried(tmp_path, faas_home):
    """``flows/active/`` and ``flows/commands/`` are open to the store's users: a marker or
    command whose run id is a path (``victim/x``) must not reach another run's folder or fail the
    runner's every scan; it is removed, and the runner goes on with real runs."""
    store_url = (tmp_path / "store").as_uri()
    c = FlowsClient(store_url)
    flow = c.deploy({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    c.store.put(L.ACTIVE + "victim/x", b"")
    c.store.put(L.command_key("forged"), b'{"op": "cancel", "run_id": "../runs/victim"}')
    with pytest.raises(ValueError, match="run id 'a/b'"):
        c.start(flow["id"], {}, run_id="a/b")
    run = c.start(flow["id"], {})
    r = Runner(store_url, resolve=resolver(store_url))
    r.recover()
    r.serve(once=True)
    assert c.get_run(run["run_id"])["status"] == "SUCCEEDED"
    assert list(c.store.list(L.ACTIVE)) == [] and list(c.store.list(L.COMMANDS)) == []


def _broken_queue(real):
    class Dead:
        def send(self, bodies):
            raise OSError("the queue is down")

    def open_(store):
        real(store)
        return Dead()
    return open_


@pytest.mark.slow
def test_runs_on_s3_with_sqs(s3_bucket, faas_home):
    store_url = f"s3://{s3_bucket}/site"
    c = FlowsClient(store_url)
    flow = c.deploy({"StartAt": "A", "States": {
        "A": {"Type": "Action", "ActionUrl": URL, "Parameters": {"v.$": "$.v"}, "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 1, "End": True}}})
    runner = Runner(store_url, resolve=resolver(store_url))
    runner._hold.settle = 0.2
    stop = threading.Event()
    t = threading.Thread(target=runner.serve, kwargs={"max_wait": 0.2, "should_stop": stop.is_set},
                         daemon=True)
    t.start()
    try:
        run = c.start(flow["id"], {"v": 42})
        done = c.wait(run["run_id"], timeout=120)
    finally:
        stop.set()
        t.join(60)
    assert done["status"] == "SUCCEEDED"
    assert done["output"]["details"]["echo"] == {"v": 42}
    assert L.queue_url(c.store) == f"sqs://faas-flows-{s3_bucket}"
