"""A done notice that never reaches its client (taken from the reply queue by another principal
of a shared SQS role, or lost) must not leave the task's future waiting for ever: the client's
listener looks for overdue tasks' results in the store (faas.api.Client._sweep_unnotified).
The same over SQS, with another client taking the notices: tests/test_aws.py."""
from __future__ import annotations

import json
import time

import pytest

import faas
from faas import api, random_ids
from faas.endpoint import control
from faas.messages import result_key
from faas.store import KeyNotFound, open_queue


def double(x):
    return 2 * x


def _take_notices(url: str, task_id: str, timeout: float = 60.0) -> list[dict]:
    """Receive (and delete) everything on the reply queue ``url`` until the done notice of
    ``task_id`` is among it: what a thief holding the queue's permissions does."""
    q = open_queue(url)
    taken: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = q.receive(max_messages=10, wait=1.0)
        if msgs:
            q.delete([m.receipt for m in msgs])
            taken += [json.loads(m.body) for m in msgs]
        if any(n.get("id") == task_id and n.get("event") == "done" for n in taken):
            return taken
    raise AssertionError(f"no done notice of {task_id} within {timeout} s: {taken}")


def test_a_task_whose_notice_was_taken_finishes_from_the_store(faas_home, monkeypatch):
    monkeypatch.setenv("FAAS_NOTICE_GRACE", "1")
    c = faas.client()
    try:
        fid = c.register_function(double)
        monkeypatch.setattr(c, "_ensure_listener", lambda: None)   # the thief is first on the queue
        tid = c.run(function_id=fid, args=(21,))
        _take_notices(c._reply_queue().url, tid)
        monkeypatch.undo()
        c._ensure_listener()
        t = time.monotonic()
        assert c.get_result(task_id=tid, timeout=30) == 42
        assert time.monotonic() - t < 15
    finally:
        c.close()
        control.stop("local", faas_home)   # the embedded endpoint it started


def test_the_sweep_reaches_every_overdue_task_with_few_lookups(faas_home, monkeypatch):
    """100 overdue tasks, one of them done: the sweeps look up NOTICE_SWEEP_LOOKUPS a time, each
    going on where the last stopped, so the done one is found however many wait before it; and
    sweeps that find nothing back off."""
    c = faas.client(autostart=False)
    old = time.monotonic() - 3600
    states = []
    for _ in range(100):
        st = api.TaskState(str(random_ids.uuid4()), 1)
        st.sent = old
        c._tasks[st.task_id] = st
        states.append(st)
    done = states[77].task_id
    looked: list[str] = []

    def read_result(task_id, size):
        looked.append(task_id)
        if task_id != done:
            raise KeyNotFound(task_id)
        return b"frame"

    monkeypatch.setattr(c, "_read_result", read_result)
    monkeypatch.setattr(api.serialize, "open_result", lambda data, tid, rk: ({"status": "success"}, b"opened"))
    sweeps = 0
    while not states[77].finished:
        c._sweep_unnotified()
        sweeps += 1
        assert sweeps <= 100 // api.NOTICE_SWEEP_LOOKUPS + 1, "a sweep never got past the oldest tasks"
        assert len(looked) <= sweeps * api.NOTICE_SWEEP_LOOKUPS
    assert states[77].status == "success" and states[77].data == b"opened"
    assert looked[:78] == [st.task_id for st in states[:78]]   # in order, none twice
    pauses = []
    for _ in range(12):
        c._sweep_unnotified()
        pauses.append(c._sweep_every)
    assert pauses[-1] == api.NOTICE_SWEEP_MAX and pauses == sorted(pauses), pauses
    c.close()


def test_an_object_planted_at_an_overdue_task_is_not_read_every_sweep(faas_home, monkeypatch):
    """What a store writer plants at an overdue task's result key never settles it, and costs
    one read (up to max_result_bytes) per NOTICE_REFUSED_FIRST seconds, doubling, not one per
    sweep."""
    c = faas.client(autostart=False)
    st = api.TaskState(str(random_ids.uuid4()), 1)
    st.sent = time.monotonic() - 3600
    c._tasks[st.task_id] = st
    c.store.put(result_key(st.task_id, c.client_id), b"x" * 1000)   # planted
    reads: list[str] = []
    real = c._read_result
    monkeypatch.setattr(c, "_read_result", lambda tid, size: reads.append(tid) or real(tid, size))
    for _ in range(20):
        c._sweep_unnotified()
    assert reads == [st.task_id] and not st.finished
    until, wait = c._sweep_refused[st.task_id]
    assert wait == api.NOTICE_REFUSED_FIRST
    c._sweep_refused[st.task_id] = (0.0, wait)   # its wait is over
    c._sweep_unnotified()
    assert reads == [st.task_id] * 2 and c._sweep_refused[st.task_id][1] == 2 * api.NOTICE_REFUSED_FIRST
    st._set("failed", error=RuntimeError("ended"))
    c._sweep_unnotified()
    assert st.task_id not in c._sweep_refused
    c.close()


@pytest.mark.parametrize("bad", ["0", "-1", "soon"])
def test_notice_grace_must_be_a_positive_number(faas_home, monkeypatch, bad):
    monkeypatch.setenv("FAAS_NOTICE_GRACE", bad)
    with pytest.raises(Exception, match="notice_grace"):
        faas.client()
