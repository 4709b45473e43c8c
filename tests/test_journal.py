"""The task journal (faas/endpoint/journal.py) on a memory store and a file store."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from faas.endpoint import registry
from faas.endpoint.journal import Journal, find_task, hour_of, journal_keys, read_journal
from faas.store import open_store


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    if request.param == "memory":
        s = open_store(f"memory://journal-{uuid.uuid4().hex}")
        yield s
        s.clear()
    else:
        yield open_store((tmp_path / "store").as_uri())


def _rec(j: Journal, i: int, t: float, status: str = "success", **kw) -> str:
    tid = f"t{i:05d}"
    j.record(tid, "f" * 64, n=1, sent=t - 1, started=t - 0.5, finished=t, status=status, **kw)
    return tid


def test_one_put_per_flush_and_round_trip(store):
    j = Journal(store, "ep", "block-1", "node1", flush_every=3600, max_batch=10_000)
    now = time.time()
    ids = [_rec(j, i, now) for i in range(1000)]
    _rec(j, 1000, now, "failed", error="ValueError: boom")
    assert list(store.list("journal/")) == []          # nothing written before a flush
    j.flush_if_due()                                    # not due: neither old nor big enough
    assert list(store.list("journal/")) == []
    j.close()
    keys = list(store.list("journal/"))
    assert len(keys) == 1                               # 1001 tasks, one object
    assert keys[0].startswith(f"journal/ep/{hour_of(now)}/block-1-node1-")
    recs = list(read_journal(store))
    assert [r["task_id"] for r in recs[:1000]] == ids
    assert recs[-1]["status"] == "failed" and recs[-1]["error"] == "ValueError: boom"
    assert recs[0]["endpoint"] == "ep" and recs[0]["block"] == "block-1" and recs[0]["host"] == "node1"
    assert find_task(store, "t01000")["status"] == "failed"
    assert find_task(store, "nope") is None


def test_flush_when_due_by_size_and_by_age(store):
    j = Journal(store, "ep", "b", "h", flush_every=3600, max_batch=5)
    now = time.time()
    for i in range(5):
        _rec(j, i, now)
    j.flush_if_due()
    assert len(list(store.list("journal/"))) == 1       # max_batch reached
    _rec(j, 5, now)
    j.flush_if_due()
    assert len(list(store.list("journal/"))) == 1       # one record, younger than flush_every
    j.flush_every = 0.2
    time.sleep(0.3)
    j.flush_if_due()
    assert len(list(store.list("journal/"))) == 2       # now old enough
    assert len(list(read_journal(store))) == 6


def test_records_go_to_the_hour_they_finished_and_windows_read_only_those(store):
    registry.publish(store, {"name": "ep", "status": "running", "queue": "local:///x/ep"})
    j = Journal(store, "ep", "b", "h", flush_every=3600)
    now = time.time()
    old = now - 3 * 3600
    _rec(j, 1, old)
    _rec(j, 2, now)
    j.close()
    keys = journal_keys(store)
    assert sorted(k.split("/")[2] for k in keys) == sorted([hour_of(old), hour_of(now)])
    assert journal_keys(store, since=now - 60) == [k for k in keys if f"/{hour_of(now)}/" in k]
    assert [r["task_id"] for r in read_journal(store, since=now - 60)] == ["t00002"]
    assert [r["task_id"] for r in read_journal(store, until=now - 60)] == ["t00001"]
    assert [r["task_id"] for r in read_journal(store, endpoint="ep", since=old - 1)] == ["t00001", "t00002"]
    assert list(read_journal(store, endpoint="other")) == []


class FlakyStore:
    """Refuses the first ``fail`` puts (a store outage), then passes through."""

    def __init__(self, inner, fail: int):
        self.inner, self.fail = inner, fail

    def put(self, key, data):
        if self.fail:
            self.fail -= 1
            raise OSError("store unavailable")
        self.inner.put(key, data)


def test_a_failed_flush_loses_nothing(store):
    j = Journal(FlakyStore(store, 1), "ep", "b", "h", flush_every=0)
    now = time.time()
    _rec(j, 1, now)
    j.flush()                      # refused: kept
    assert list(store.list("journal/")) == [] and j.pending() == 1
    _rec(j, 2, now)
    j.close()
    assert [r["task_id"] for r in read_journal(store)] == ["t00001", "t00002"]


def test_record_is_thread_safe_and_keys_are_unique(store):
    j = Journal(store, "ep", "b", "h", flush_every=0, max_batch=50)
    now = time.time()
    stop = threading.Event()

    def flusher():
        while not stop.is_set():
            j.flush_if_due()

    def writer(k):
        for i in range(500):
            j.record(f"w{k}-{i}", "f", n=1, sent=now, started=now, finished=now, status="success")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    ft = threading.Thread(target=flusher)
    ft.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    ft.join()
    j.close()
    ids = [r["task_id"] for r in read_journal(store)]
    assert len(ids) == 2000 and len(set(ids)) == 2000


def test_find_task_returns_the_last_run_of_a_task_run_twice(store):
    now = time.time()
    a = Journal(store, "ep", "b1", "h")
    a.record("t", "f", n=1, sent=now - 9, started=now - 8, finished=now - 7, status="timeout")
    a.close()
    b = Journal(store, "ep", "b0", "h")
    b.record("t", "f", n=1, sent=now - 9, started=now - 2, finished=now - 1, status="success")
    b.close()
    assert find_task(store, "t")["status"] == "success"
