"""Nothing stalls silently: a loop that stops or a thread that dies is noticed within its bound,
logged with every thread's stack, and the process is replaced (issue 15)."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers import running_endpoint, wait_until

import faas
from faas.cli.main import pool_health
from faas.endpoint.liveness import Loops, thread_stacks

HANG = Path(__file__).parent / "liveness_hang"




def test_a_loop_that_stops_beating_is_reported_once_with_the_stacks(caplog):
    stalls = []
    loops = Loops(stalls.append, check_every=0.05)
    loops.add("ticker", limit=0.3)
    stuck = threading.Event()

    def stuck_here():
        stuck.wait(5)
    t = threading.Thread(target=stuck_here, name="stuck-one", daemon=True)
    t.start()
    loops.start_watchdog()
    for _ in range(5):
        loops.beat("ticker")
        time.sleep(0.05)
    assert stalls == []
    wait_until(lambda: stalls, 3, "the stall to be reported")
    time.sleep(0.3)
    assert len(stalls) == 1 and "ticker has made no progress" in stalls[0]
    assert "stuck_here" in caplog.text and 'thread "stuck-one"' in caplog.text
    assert "stuck_here" in thread_stacks()
    stuck.set()
    loops.stop()


def test_a_thread_that_dies_is_reported_with_its_traceback(caplog):
    stalls = []
    loops = Loops(stalls.append, check_every=0.05)

    def broken():
        raise RuntimeError("the outbox broke")
    loops.thread("outbox", broken, limit=60).start()
    loops.start_watchdog()
    wait_until(lambda: stalls, 3, "the dead thread to be reported")
    assert "thread outbox died: RuntimeError: the outbox broke" in stalls[0]
    assert "Traceback" in caplog.text and "the outbox broke" in caplog.text
    # a thread that ends as it should is not a problem
    done = Loops(stalls.append)
    done.thread("quiet", lambda: None, limit=0.01).start()
    time.sleep(0.1)
    assert done.problem() is None
    loops.stop()


def test_status_shows_a_stuck_or_silent_pool_as_unhealthy():
    now = time.time()
    assert pool_health({"state": "running", "time": now}, 120)["health"] == "ok"
    stale = pool_health({"state": "running", "time": now - 300}, 120)["health"]
    assert stale.startswith("unhealthy: its status has not been written for 3")
    stuck = pool_health({"state": "running", "time": now, "problem": "receiver has made no progress for 9 s"}, 120)
    assert stuck["health"] == "unhealthy: receiver has made no progress for 9 s"


@pytest.mark.slow
def test_a_pool_whose_receiver_hangs_is_replaced_and_tasks_still_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HANG), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("HANG_TEST_RECEIVES", "3")   # not FAAS_*: running_endpoint clears those
    home = tmp_path / "h"
    with running_endpoint(home, stall_timeout=3, stop_grace=2,
                          engine={"max_workers_per_node": 1, "max_idle_time": 600}):
        c = faas.client()
        fid = c.register_function(pow)
        assert c.get_result(c.run(function_id=fid, args=(2, 5)), timeout=60) == 32
        blocks = home / "endpoints" / "local" / "blocks"

        def stalled_logs():
            return [p for p in blocks.glob("*/pool.log") if "NOT LIVE: receiver has made no progress" in p.read_text()]
        first = wait_until(stalled_logs, 60, "the stuck receiver to be reported")[0]
        text = first.read_text()
        assert "liveness_hang/sitecustomize.py" in text and 'thread "receiver"' in text, text[-3000:]
        # the daemon replaces the pool; tasks sent now still run (on the next pool)
        wait_until(lambda: len(list(blocks.glob("*/pool.log"))) >= 2, 90, "a new pool")
        assert c.get_result(c.run(function_id=fid, args=(3, 3)), timeout=90) == 27
        c.close()


def test_a_job_for_a_worker_that_died_meanwhile_goes_back_first_in_line():
    """The cause of the chaos stall of issue 15: an idle worker killed between two looks of the
    main loop made ``conn.send`` raise BrokenPipeError out of ``run()``; the pool then hung at
    exit joining its other worker while its threads kept heartbeating tasks that never ran. Now
    the task goes back first in line and the worker is replaced."""
    import collections
    import multiprocessing as mp
    import queue
    import uuid

    from faas.endpoint import pool as pool_mod
    from faas.messages import TaskMessage
    from faas.store.queue_base import Message

    class Gone:                       # the killed worker's process
        pid, exitcode = 12345, -9

        def join(self, timeout=None):
            pass
    dead_end, gone = mp.Pipe()
    gone.close()                      # the worker side is gone: a send breaks
    p = pool_mod.Pool.__new__(pool_mod.Pool)
    p.lock, p.ready, p.outbox = threading.Condition(), collections.deque(), queue.SimpleQueue()
    p.where, p.stopping, p.reply_queues, p.last_busy = {"endpoint": "e", "block": "b"}, threading.Event(), {}, 0.0
    p._latest_cancel = lambda cid: 0.0
    p.slots = [pool_mod.Slot(0, Gone(), dead_end)]
    fresh_parent, fresh_child = mp.Pipe()
    p._spawn = lambda index: pool_mod.Slot(index, Gone(), fresh_parent)
    tid = str(uuid.uuid4())
    task = TaskMessage(id=tid, fn="a" * 64, rk="A" * 43, cid="0" * 32, args="", sent=time.time())
    p.ready.append(pool_mod.Held(Message("m1", "{}", "r1", 1, time.time()), task, time.monotonic()))
    p._dispatch()                     # no BrokenPipeError escapes
    assert [h.task.id for h in p.ready] == [tid] and p.slots[0].conn is fresh_parent
    p._dispatch()                     # the new worker gets it
    assert fresh_child.poll(1) and fresh_child.recv()[0] == tid and not p.ready


def nap_telling(path, seconds):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return seconds


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def test_a_worker_that_dies_while_its_pool_stops_is_reported_once_and_the_pool_does_not_spin(tmp_path):
    """A stopping pool replaces no worker; the dead one's pipe and sentinel stayed readable, so
    the main loop woke at once on every pass for the whole stop grace: one core busy and 100,000+
    lines of "idle worker died" in 3 s, while its other worker finished its task."""
    home = tmp_path / "h"
    with running_endpoint(home, stop_grace=8, engine={"max_idle_time": 600}):
        ex = faas.Executor()
        assert ex.submit(nap_telling, str(tmp_path / "warm"), 0).result(timeout=60) == 0
        ran_by = tmp_path / "ran_by"
        fut = ex.submit(nap_telling, str(ran_by), 30)
        wait_until(lambda: ran_by.exists() and ran_by.read_text(), 30, "the long task to start")
        pool = next(int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
                    if b"faas.endpoint.pool" in _read(p) and str(home).encode() in _read(p))
        workers = [w for c in _children(pool) for w in _children(c)]   # pool > forkserver > workers
        busy = int(ran_by.read_text())
        idle = [w for w in workers if w != busy]
        assert busy in workers and len(idle) == 1, (workers, busy)
        os.kill(pool, signal.SIGTERM)      # stopping: its running task has stop_grace to end
        time.sleep(0.5)
        os.kill(idle[0], signal.SIGKILL)

        def pool_log() -> str:
            return "".join(p.read_text() for p in (home / "endpoints" / "local" / "blocks").glob("*/pool.log"))
        wait_until(lambda: "idle worker" in pool_log(), 20, "the idle worker's death to be logged")
        time.sleep(2)   # the old main loop logged it again on every pass: thousands by now
        log = pool_log()
        assert log.count("idle worker") == 1, \
            f"the death was logged {log.count('idle worker')} times (the main loop spun on it)\n{log[-2000:]}"
        ex.shutdown(wait=False, cancel_futures=True)
        del fut


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_a_local_block_that_ended_leaves_no_process_behind(tmp_path):
    """A pool killed with SIGKILL leaves its forkserver and any worker still running a task (the
    soak found two forkservers alive after `stop`). When the provider sees the job end it stops
    the rest of the job's processes, as a scheduler does."""
    from faas.endpoint.provider_config import LocalProviderConfig
    from faas.providers.base import BlockState
    from faas.providers.local import LocalProvider

    marker = tmp_path / "child.pid"
    provider = LocalProvider(LocalProviderConfig(), tmp_path)
    job = provider.submit(f"bash -c 'sleep 300 & echo $! > {marker}; exec sleep 301'", "block-x")
    deadline = time.monotonic() + 10
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(marker.read_text())
    assert provider.status([job]) == {job: BlockState.RUNNING}
    os.kill(int(job), signal.SIGKILL)          # the pool dies; the child of its job lives on
    provider.procs[job].wait(10)
    assert _pid_alive(child), "the test's leftover process is already gone"
    assert provider.status([job])[job] == BlockState.CANCELLED
    deadline = time.monotonic() + 10
    while _pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child), f"process {child} of the ended job was left running"


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
