"""faas.Executor against a real embedded endpoint: the concurrent.futures contract, checked
side by side with ProcessPoolExecutor where the standard library defines the behaviour."""
from __future__ import annotations

import concurrent.futures as cf
import os
import time
from pathlib import Path

import pytest

import faas
from faas.exceptions import SerializationError, TaskTimeout, WorkerLost

from helpers import running_endpoint


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("exec") / "faas-home"
    with running_endpoint(home):
        yield home


@pytest.fixture
def ex(home):
    with faas.Executor() as ex:
        yield ex


def square(x):
    return x * x


def boom(x):
    return 1 / x


def touch_then_sleep(path, seconds):
    Path(path).write_text("ran")
    time.sleep(seconds)
    return seconds


def exit_hard():
    os._exit(3)


def test_submit_and_result(ex):
    f = ex.submit(square, 7)
    assert isinstance(f, cf.Future)
    assert isinstance(f.task_id, str) and len(f.task_id) == 36
    assert f.result(timeout=30) == 49
    assert f.done() and not f.cancelled()


def test_remote_exception_is_original_type_with_traceback(ex):
    f = ex.submit(boom, 0)
    with pytest.raises(ZeroDivisionError) as info:
        f.result(timeout=30)
    cause = info.value.__cause__
    assert cause is not None and "in boom" in str(cause) and "ZeroDivisionError" in str(cause)
    assert isinstance(f.exception(), ZeroDivisionError)


def test_same_exception_semantics_as_process_pool(ex):
    with cf.ProcessPoolExecutor(1) as ppe:
        theirs = ppe.submit(boom, 0).exception()
    ours = ex.submit(boom, 0).exception(timeout=30)
    assert type(ours) is type(theirs) and str(ours) == str(theirs)
    assert type(ours.__cause__).__name__ == type(theirs.__cause__).__name__ == "_RemoteTraceback" \
        or "Traceback" in str(ours.__cause__)


def test_map_in_order_with_chunks_matches_process_pool(ex):
    data = list(range(23))
    with cf.ProcessPoolExecutor(2) as ppe:
        expected = list(ppe.map(square, data, chunksize=5))
    assert list(ex.map(square, data)) == expected
    assert list(ex.map(square, data, chunksize=5)) == expected
    assert list(ex.map(pow, [2, 3], [5, 2])) == [32, 9]
    assert list(ex.map(square, [])) == []
    with pytest.raises(ValueError):
        ex.map(square, data, chunksize=0)


def test_map_exception_raised_in_order(ex):
    it = ex.map(boom, [1, 0, 2], chunksize=2)
    assert next(it) == 1.0
    with pytest.raises(ZeroDivisionError):
        next(it)


def test_map_timeout(ex):
    it = ex.map(time.sleep, [3, 3], timeout=0.5)
    t = time.monotonic()
    with pytest.raises(cf.TimeoutError):
        list(it)
    assert time.monotonic() - t < 2.5


def test_wait_and_as_completed(ex):
    fs = [ex.submit(time.sleep, d) for d in (0.6, 0.05)]
    done, not_done = cf.wait(fs, return_when=cf.FIRST_COMPLETED, timeout=30)
    assert fs[1] in done
    order = list(cf.as_completed(fs, timeout=30))
    assert set(order) == set(fs)
    done, not_done = cf.wait(fs, timeout=30)
    assert not not_done


def test_running_state_for_long_task(ex):
    f = ex.submit(time.sleep, 1.0)
    deadline = time.monotonic() + 10
    while not f.running() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f.running()
    assert not f.cancel()          # a running call cannot be cancelled (like ProcessPoolExecutor)
    assert f.result(timeout=30) is None


def test_cancel_before_start_never_runs(ex, tmp_path):
    blockers = [ex.submit(time.sleep, 1.5) for _ in range(2)]  # both workers busy
    marker = tmp_path / "ran"
    victims = [ex.submit(touch_then_sleep, str(marker), 0) for _ in range(12)]  # beyond prefetch too
    time.sleep(0.2)
    assert all(v.cancel() for v in victims)
    assert all(v.cancelled() for v in victims)
    with pytest.raises(cf.CancelledError):
        victims[0].result()
    for b in blockers:
        b.result(timeout=30)
    time.sleep(1.0)   # what the pool held has been through its hands by now
    assert not marker.exists(), "a cancelled task ran"


def test_shutdown_cancel_futures_and_submit_after(home, tmp_path):
    ex = faas.Executor()
    marker = tmp_path / "ran"
    blockers = [ex.submit(time.sleep, 1.0) for _ in range(2)]
    pending = [ex.submit(touch_then_sleep, str(marker), 0) for _ in range(12)]
    time.sleep(0.2)
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(b.done() and not b.cancelled() for b in blockers)
    assert all(p.cancelled() for p in pending)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)
    time.sleep(0.5)
    assert not marker.exists()


def test_shutdown_wait_false_results_still_arrive(home):
    ex = faas.Executor()
    f = ex.submit(square, 3)
    ex.shutdown(wait=False)
    assert f.result(timeout=30) == 9


def test_task_timeout(home):
    with faas.Executor(task_timeout=0.5) as ex:
        f = ex.submit(time.sleep, 5)
        t = time.monotonic()
        with pytest.raises(TaskTimeout, match="timeout of 0.5"):
            f.result(timeout=30)
        assert time.monotonic() - t < 4
        assert ex.submit(square, 4).result(timeout=30) == 16   # the pool replaced the worker


def test_large_arguments_and_results_spill_to_store(ex):
    big = b"x" * (3 * 1024 * 1024)
    assert ex.submit(len, big).result(timeout=60) == len(big)
    assert len(ex.submit(bytes, 3 * 1024 * 1024).result(timeout=60)) == 3 * 1024 * 1024


def test_unserializable_function_fails_at_submit(ex):
    import sqlite3
    conn = sqlite3.connect(":memory:")

    def uses_connection():
        return conn.execute("select 1").fetchone()
    with pytest.raises(SerializationError, match="cannot serialize function 'test_unserializable_function_fails_at_submit.<locals>.uses_connection'.*sqlite3.Connection"):
        ex.submit(uses_connection)
    with pytest.raises(SerializationError, match="cannot serialize the arguments"):
        ex.submit(square, (i for i in range(3)))


def test_unpicklable_result_is_a_clear_error(ex):
    def make_generator():
        return (i for i in range(3))
    with pytest.raises(SerializationError, match="returned a generator that cannot be serialized"):
        ex.submit(make_generator).result(timeout=30)


def test_function_that_exits_kills_its_worker_and_is_dead_lettered(ex):
    f = ex.submit(exit_hard)
    with pytest.raises(WorkerLost, match="dead-lettered") as info:
        f.result(timeout=60)
    assert "exit status 3" in str(info.value)
    assert ex.submit(square, 5).result(timeout=30) == 25    # the endpoint still serves


def test_sys_exit_is_an_exception_not_a_crash(ex):
    import sys as _sys
    with pytest.raises(SystemExit):
        ex.submit(_sys.exit, 4).result(timeout=30)


def test_result_from_another_client(ex, home):
    f = ex.submit(square, 12)
    assert f.result(timeout=30) == 144
    other = faas.client()
    assert other.get_result(task_id=f.task_id) == 144
    assert other.get_task(task_id=f.task_id)["status"] == "success"


def test_client_forgets_finished_run_tasks(home, monkeypatch):
    """run() tasks leave the client's memory once read, and unread ones beyond DONE_KEPT are
    dropped oldest first; their results still come from the store."""
    import faas.api
    monkeypatch.setattr(faas.api, "DONE_KEPT", 5)
    c = faas.client()
    try:
        fid = c.register_function(square)
        read = [c.run(function_id=fid, args=(i,)) for i in range(3)]
        assert [c.get_result(task_id=t, timeout=60) for t in read] == [0, 1, 4]
        assert not any(t in c._tasks for t in read)
        assert c.get_result(task_id=read[2], timeout=60) == 4          # again, from the store
        unread = [c.run(function_id=fid, args=(i,)) for i in range(20)]
        deadline = time.monotonic() + 60
        while sum(t in c._tasks for t in unread) > 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(t in c._tasks for t in unread) <= 5
        assert [c.get_result(task_id=t, timeout=60) for t in unread] == [i * i for i in range(20)]
    finally:
        c.close()
