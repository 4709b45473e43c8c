"""faas.Executor against a real embedded endpoint: the concurrent.futures contract, checked
side by side with ProcessPoolExecutor where the standard library defines the behaviour."""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import gc
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

import faas
from faas.exceptions import SerializationError, TaskTimeout, WorkerLost


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


def sleep_then_touch(path, seconds):
    time.sleep(seconds)
    Path(path).write_text("finished")
    return seconds


def exit_hard():
    os._exit(3)


def make_namespace(i):
    return argparse.Namespace(i=i)


def make_factorial():
    def fact(n):
        return 1 if n < 2 else n * fact(n - 1)
    return fact


def make_sum_of_squares():
    def walk(n):   # recursive through its closure, and uses a global of this module
        return 0 if n < 1 else square(n) + walk(n - 1)
    return walk


def make_even_odd():
    def even(n):
        return True if n == 0 else odd(n - 1)

    def odd(n):
        return False if n == 0 else even(n - 1)
    return even


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


def test_map_timeout(ex, tmp_path, monkeypatch):
    it = ex.map(time.sleep, [3, 3], timeout=0.5)
    t = time.monotonic()
    with pytest.raises(cf.TimeoutError):
        list(it)
    assert time.monotonic() - t < 2.5

    # When the timeout fires, the future waited on and every later one is cancelled, as
    # concurrent.futures' _result_or_cancel does: each ends cancelled, or had already started
    # (running or done) and cannot be; a cancelled call never runs to completion.
    with cf.ProcessPoolExecutor(2) as ppe:
        for name, executor in (("ProcessPoolExecutor", ppe), ("faas", ex)):
            blockers = [executor.submit(time.sleep, 2.0) for _ in range(2)]   # both workers busy
            deadline = time.monotonic() + 30
            while not all(b.running() or b.done() for b in blockers) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert all(b.running() for b in blockers), name
            made = []   # the futures map makes, in order
            maker = "_submit_chunks" if executor is ex else "submit"
            original = getattr(executor, maker)

            def recording(*a, original=original, made=made, **k):
                out = original(*a, **k)
                made.extend(out if isinstance(out, list) else [out])
                return out
            monkeypatch.setattr(executor, maker, recording)
            markers = [tmp_path / f"{name}-{i}" for i in range(6)]
            with pytest.raises(cf.TimeoutError):
                list(executor.map(sleep_then_touch, markers, [1.0] * 6, timeout=0.5))
            monkeypatch.undo()
            states = [(f.cancelled(), f.running() or f.done()) for f in made]
            assert len(made) == 6 and all(c or started for c, started in states), (name, states)
            assert sum(c for c, _ in states) >= 3, (name, states)
            if executor is ex:   # no prefetch marks a queued faas call as started: all cancelled
                assert all(c for c, _ in states), states
                assert all(ex.client.get_task(task_id=f.task_id)["status"] == "cancelled" for f in made)
            for b in blockers:
                b.result(timeout=30)
            for f, (c, _) in zip(made, states, strict=True):
                if not c:   # (ProcessPoolExecutor's map submits chunks: a list)
                    assert f.result(timeout=30) in (1.0, [1.0])
            time.sleep(1.5)   # a cancelled call that had been taken would have finished by now
            ran = [m.name for m, (c, _) in zip(markers, states, strict=True) if c and m.exists()]
            assert not ran, f"{name}: cancelled calls ran to completion: {ran}"


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
    with pytest.raises(SerializationError, match="cannot serialize function "
                       "'test_unserializable_function_fails_at_submit.<locals>.uses_connection'.*sqlite3.Connection"):
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


def _collected(ref, seconds=30.0):
    """True once nothing holds what ``ref`` points to (collecting cycles too)."""
    deadline = time.monotonic() + seconds
    while True:
        gc.collect()
        if ref() is None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_no_stale_references(ex):
    """CPython's ExecutorTest.test_no_stale_references (issue 16284): a future that is done and
    dropped leaves nothing in the executor or its client holding the call's function or
    arguments: not the function cache, the task states, the sender, or the futures' sets."""
    my_object = argparse.Namespace(payload=b"x" * 1000)
    my_object_collected = threading.Event()
    my_object_callback = weakref.ref(my_object, lambda obj: my_object_collected.set())
    ex.submit(my_object.__repr__)     # deliberately discarding the future (a bound method, as there)
    del my_object
    assert my_object_collected.wait(timeout=30) or _collected(my_object_callback), \
        "Stale reference not collected within timeout."

    for call in (lambda o: ex.submit(repr, o).result(timeout=30),              # an argument
                 lambda o: ex.submit(dict, key=o).result(timeout=30),          # a keyword argument
                 lambda o: list(ex.map(repr, [o, o, o], chunksize=2)),         # map chunks
                 lambda o: ex.submit(functools.partial(repr, o)).result(timeout=30)):   # in the function
        arg = argparse.Namespace(payload=b"y" * 1000)
        ref = weakref.ref(arg)
        call(arg)     # done, and its future dropped
        del arg
        assert _collected(ref), "the executor still holds a call's argument after its future was dropped"

    # a cancelled call's future, once dropped, is not held either
    blockers = [ex.submit(time.sleep, 1.0) for _ in range(2)]
    arg = argparse.Namespace(payload=b"z" * 1000)
    ref = weakref.ref(arg)
    f = ex.submit(repr, arg)
    assert f.cancel()
    fref = weakref.ref(f)
    del f, arg
    assert _collected(ref) and _collected(fref)
    for b in blockers:
        b.result(timeout=30)
    assert not ex._futures and not ex._by_task
    assert not any(st.n for st in ex.client._tasks.values()), "finished Executor tasks stay in the client"


def test_free_reference(ex):
    """CPython's ExecutorTest.test_free_reference (issue 14406): the result iterator of map does
    not keep a reference to the result objects (nor do the futures' task states)."""
    for obj in ex.map(make_namespace, range(10)):
        wr = weakref.ref(obj)
        del obj
        assert _collected(wr, 10), "a result map yielded is still held"
    for chunk in (1, 4):
        objs = [weakref.ref(o) for o in ex.map(make_namespace, range(8), chunksize=chunk)]
        assert all(_collected(r, 10) for r in objs)


def test_nested_recursive_function_runs_remotely(ex, home, tmp_path):
    """A function that calls itself through its closure (a nested ``def``) is sent (dill's
    recurse=True never ends on it: the fallback ships it) and returns the right value."""
    assert ex.submit(make_factorial(), 10).result(timeout=30) == 3628800
    assert ex.submit(make_sum_of_squares(), 5).result(timeout=30) == 55
    assert ex.submit(make_even_odd(), 7).result(timeout=30) is False
    assert list(ex.map(make_factorial(), range(6), chunksize=3)) == [1, 1, 2, 6, 24, 120]
    # the same from a script's __main__, as the issue shows it
    script = tmp_path / "nested.py"
    script.write_text("import math\nimport faas\n\n"
                      "def outer():\n"
                      "    def rec(n):\n"
                      "        return n if n < 1 else rec(n - 1)\n"
                      "    return rec\n\n"
                      "def outer2():\n"
                      "    def fib(n):\n"
                      "        return n if n < 2 else fib(n - 1) + fib(n - 2) + 0 * math.pi\n"
                      "    return fib\n\n"
                      "with faas.Executor() as ex:\n"
                      "    print(ex.submit(outer(), 5).result(timeout=60),\n"
                      "          ex.submit(outer2(), 10).result(timeout=60))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(home)
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "55.0"]


QUIET_SCRIPT = """\
import sys
import faas

def square(x):
    return x * x

if sys.argv[1] == "client":        # no close(): the client is closed at exit
    c = faas.client()
    fid = c.register_function(square)
    for i in range(3):
        assert c.get_result(task_id=c.run(function_id=fid, args=(i,)), timeout=60) == i * i
elif sys.argv[1] == "first-of-many":     # exits while notices still come in
    c = faas.client()
    ids = c.submit_batch(tasks=[{"function_id": c.register_function(square), "args": [i]} for i in range(10)])
    assert c.get_result(task_id=ids[0], timeout=60) == 0
else:
    with faas.Executor() as ex:
        assert [ex.submit(square, i).result(timeout=60) for i in range(3)] == [0, 1, 4]
"""


def test_script_exits_quietly_after_its_last_result(home, tmp_path):
    """A script that exits right after its last result prints nothing on stderr: the reply
    queue's listener does not report the close at exit (once "reply queue receive failed:
    [Errno 9] Bad file descriptor; retrying")."""
    script = tmp_path / "quiet.py"
    script.write_text(QUIET_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(home)
    noisy = []
    for _ in range(6):   # two at a time: the race at exit is timing-dependent (once 10-25 % a run)
        for kinds in (("client", "first-of-many"), ("executor", "first-of-many")):
            procs = [subprocess.Popen([sys.executable, str(script), kind], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for kind in kinds]
            for kind, p in zip(kinds, procs, strict=True):
                out, err = p.communicate(timeout=120)
                assert p.returncode == 0, err
                if err:
                    noisy.append(f"{kind}: {err}")
    assert not noisy, f"{len(noisy)} of 24 runs wrote to stderr, e.g. {noisy[0]!r}"


def test_listener_quiet_when_a_close_breaks_its_receive(home, caplog):
    """The race above, made certain: the reply queue's receive fails because the queue is being
    closed (at exit its finalizer closes the socket first), and close() sets the client's flag a
    moment later. The listener ends without reporting it; a failure with no close is reported."""
    import logging
    c = faas.client()
    fid = c.register_function(square)
    assert c.get_result(task_id=c.run(function_id=fid, args=(2,)), timeout=30) == 4
    q, real = c._reply, c._reply.receive
    breaking, raised = threading.Event(), threading.Event()

    def receive(*a, **k):
        if breaking.is_set():
            raised.set()
            raise OSError(9, "Bad file descriptor")
        return real(*a, **{**k, "wait": min(k.get("wait", 0.0), 0.1)})
    with caplog.at_level(logging.WARNING, logger="faas.client"):
        q.receive = receive
        time.sleep(2.5)          # the listener is in the patched receive now
        breaking.set()
        assert raised.wait(5)
        time.sleep(0.1)
        q.receive = real
        c.close()
        c._listener.join(5)
        assert not c._listener.is_alive()
        assert "receive failed" not in caplog.text, caplog.text

    c = faas.client()            # with no close, it is reported, and the listener retries
    assert c.get_result(task_id=c.run(function_id=fid, args=(3,)), timeout=30) == 9
    q, real = c._reply, c._reply.receive
    calls = []

    def failing_once(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        return real(*a, **{**k, "wait": min(k.get("wait", 0.0), 0.1)})
    with caplog.at_level(logging.WARNING, logger="faas.client"):
        q.receive = failing_once
        time.sleep(2.5)
        q.receive = real
        assert "reply queue receive failed: [Errno 5] Input/output error; retrying" in caplog.text
        assert c.get_result(task_id=c.run(function_id=fid, args=(4,)), timeout=30) == 16
    c.close()
