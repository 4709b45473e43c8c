"""How a worker answers for a task it ran (worker.Replier): a result small enough to ride in the
client's notice reaches the client before the store's write (an S3 PUT, a file created on a
shared file system) is waited for; the result is stored before the pool hears of the task (the
pool deletes its message then, so a worker that dies in between leaves the message to run
again); a larger result is stored before the notice that tells the client to read it."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

import faas
from faas import sealing, serialize
from faas.endpoint import worker
from faas.endpoint.journal import Journal, read_journal
from faas.messages import Notice, result_key
from faas.store import create_queue, open_store


def echo(x):
    return x


def divide(x):
    return 1 / x


class Pipe:
    """The worker's end of its pipe to the pool: what it sends, in order."""

    def __init__(self, events: list):
        self.events = events

    def send(self, reports) -> None:
        self.events.append(("report", list(reports)))


class WatchedStore:
    """The worker's store; each put notes how many notices the client's queue held then."""

    def __init__(self, store, reply, events: list, fail: bool = False):
        self.store, self.reply, self.events, self.fail = store, reply, events, fail

    def put(self, key: str, data: bytes) -> None:
        self.events.append(("put", key, self.reply.depth()["visible"]))
        if self.fail:
            raise RuntimeError("the store said no")
        self.store.put(key, data)

    def __getattr__(self, name):
        return getattr(self.store, name)


def run_one(tmp_path, arg, inline_max: int = 1 << 18, fail: bool = False, fn=echo):
    """One task through the worker's real steps (run, then report at once, as for the last task
    of a hand-over): the events in order, the task id, the client."""
    store_url = (tmp_path / "store").as_uri()
    c = faas.client(store=store_url, home=str(tmp_path / "h"))
    reply = create_queue(f"local://{tmp_path / 'q'}/reply", dead_letter=False)
    tid, fid = str(uuid.uuid4()), c.register_function(fn)
    body = {"v": 1, "id": tid, "fn": fid, "n": 1, "sent": time.time(), "fk": c.function_secret(fid),
            "rk": c.task_secret(tid), "cid": c.client_id, "reply": reply.url,
            "args": serialize.b64(serialize.calls_bytes([((arg,), {})]))}
    events: list = []
    store = WatchedStore(open_store(store_url), reply, events, fail)
    later: list = []
    task, rep = worker._run_message(store, {}, (tid, json.dumps(body), inline_max, False, None),
                                    {"endpoint": "e"}, ("dill",), {"endpoint": "e"}, 1, None, later)
    replier = worker.Replier(Pipe(events), store)
    entry = worker.journal_entry(task, rep, 1000.0, 1000.5, {"endpoint": "e", "block": "b1", "host": "h", "pid": 7})
    replier.add(task, (*rep, 0.001, entry), last=True, unstored=later[0] if later else None)
    return events, tid, c, reply


def test_a_small_result_reaches_the_client_before_the_store_and_the_pool_after_it(tmp_path):
    events, tid, c, reply = run_one(tmp_path, "small")
    assert [e[0] for e in events] == ["put", "report"], events
    assert events[0][1] == result_key(tid, c.client_id)
    assert events[0][2] == 1, "the result was stored before its notice was sent"
    (report,) = events[1][1]
    assert report[:2] == (tid, "success") and report[3] == worker.TOLD
    # what the client gets: the notice with the result, and the same result in the store
    assert c.get_result(tid, timeout=5) == "small"
    (m,) = reply.receive(1)
    assert json.loads(m.body)["id"] == tid and "result" in json.loads(m.body)
    c.close()


def test_a_result_too_large_for_the_notice_is_stored_before_the_notice(tmp_path):
    events, tid, c, _ = run_one(tmp_path, "x" * 2000, inline_max=100)
    assert [e[0] for e in events] == ["put", "report"], events
    assert events[0][2] == 0, "the notice that says 'read it from the store' went out first"
    assert c.get_result(tid, timeout=5) == "x" * 2000
    c.close()


def test_a_result_the_store_refuses_after_its_notice_is_handed_back(tmp_path):
    """The client may have its result, but no store has it: the pool must not delete the message
    (a "retry" report hands it back to run again)."""
    events, tid, c, _ = run_one(tmp_path, "small", fail=True)
    assert [e[0] for e in events] == ["put", "report"]
    (report,) = events[1][1]
    assert report[:2] == (tid, "retry") and b"the store said no" in report[2]
    c.close()


def _done_notice(c, tid: str, value) -> Notice:
    """The done notice a worker sends for a small result (the frame rides in it), as it is sent
    before the worker stores that result."""
    rk = c.task_secret(tid)
    frame = serialize.result_bytes({"task_id": tid, "function_id": "f" * 64, "started": 1.0,
                                    "finished": 2.0, "endpoint": "e"}, [(True, value)], rk)
    return Notice(id=tid, event="done", status="success", result=serialize.b64(frame),
                  mac=sealing.notice_mac(rk, tid, "done", "success"))


@pytest.mark.parametrize("owner", ["run", "executor"])
def test_get_task_reports_a_task_done_once_its_notice_came_before_its_stored_result(tmp_path, owner):
    """Between the notice and the store's write, the notice's checked header answers: also once
    get_result has read the result (a run() task's record is then dropped) and for an
    Executor's task (dropped as its future resolves). (It said "pending" after get_result had
    returned: tests/test_endpoint_lifecycle.py::test_remote_cancel_and_statuses, once in CI.)"""
    c = faas.client(store=(tmp_path / "store").as_uri(), home=str(tmp_path / "h"))
    tid = str(uuid.uuid4())
    st = faas.api.TaskState(tid, 1)
    resolved = []
    if owner == "executor":
        st.on_change(resolved.append)   # what an Executor's resolver is to the client
    c._tasks[tid] = st
    assert c.get_task(tid)["status"] == "pending"
    c._on_notice(_done_notice(c, tid, 42))
    if owner == "run":
        assert c.get_result(tid, timeout=5) == 42
    else:
        assert resolved and tid not in c._tasks
    got = c.get_task(tid)
    assert got["status"] == "success" and got["completion_t"] == 2.0 and got["endpoint"] == "e"
    assert not c.store.exists(result_key(tid, c.client_id))   # the store had no say in it
    c.close()


def test_a_result_read_again_before_the_store_has_it_waits_for_the_store(tmp_path, monkeypatch):
    """get_result reads a run() task's result from memory once, then from the store: read again
    (or through get_results) in the moment before the worker's write, a result its notice
    announced is waited for, even with timeout=0, for at most STORING_GRACE seconds."""
    c = faas.client(store=(tmp_path / "store").as_uri(), home=str(tmp_path / "h"))
    tid = str(uuid.uuid4())
    c._tasks[tid] = faas.api.TaskState(tid, 1)
    notice = _done_notice(c, tid, 42)
    c._on_notice(notice)
    assert c.get_result(tid, timeout=5) == 42
    stored = threading.Timer(0.3, c.store.put, (result_key(tid, c.client_id), serialize.unb64(notice.result)))
    stored.start()
    t0 = time.monotonic()
    assert c.get_results([tid]) == {tid: {**c.get_task(tid), "result": 42}}
    assert 0.2 < time.monotonic() - t0 < 5
    lost = str(uuid.uuid4())   # announced, never stored (its worker died after the notice): not for ever
    c._tasks[lost] = faas.api.TaskState(lost, 1)
    c._on_notice(_done_notice(c, lost, 7))
    assert c.get_result(lost, timeout=0) == 7
    monkeypatch.setattr(faas.api, "STORING_GRACE", 0.5)
    t0 = time.monotonic()
    with pytest.raises(faas.exceptions.TaskTimeout):
        c.get_result(lost, timeout=0)
    assert time.monotonic() - t0 < 5
    c.close()


def test_the_worker_makes_the_task_journal_line_the_pool_only_files(tmp_path):
    """The journal's record of a task a worker ran comes with its report (the pool's one process
    spent ~10 us a task making it), the failure's summary included."""
    events, tid, c, _ = run_one(tmp_path, 0, fn=divide)
    (report,) = events[-1][1]
    assert report[1] == "failed"
    finished, text = report[5]
    store = open_store((tmp_path / "store").as_uri())
    j = Journal(store, "e", "b1", "pool-host")
    j.add(finished, text)
    j.flush()
    (rec,) = read_journal(store, "e")
    assert rec["task_id"] == tid and rec["status"] == "failed" and rec["n"] == 1
    assert (rec["started"], rec["finished"], rec["block"], rec["host"], rec["pid"]) == (1000.0, 1000.5, "b1", "h", 7)
    assert rec["error"] == "builtins.ZeroDivisionError"   # its type only: the journal is not sealed
    c.close()
