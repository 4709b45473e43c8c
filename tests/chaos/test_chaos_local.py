"""Chaos on the embedded local queue (SQLite) and file store: 1,000 tasks while worker
processes, whole worker pools, the endpoint daemon *and the client* are kill -9'd.

The client runs as a subprocess (tests/chaos/client_proc.py) that records each task id once its
message is sent. The first client is killed mid-submission, the second (which sends what was not
recorded) mid-wait; then a new client, in the test process, gets every result by task id with
``get_result(task_id=..., timeout=...)``. Every result must be correct, none lost, none
dead-lettered; duplicate executions are counted and reported. Knobs: FAAS_CHAOS_SEED,
FAAS_CHAOS_TASKS, FAAS_CHAOS_POOLS_PER_NODE (engine.pools_per_node; both 1 and 2 when unset).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid

import chaoslib
import pytest
from chaoslib import Chaos, Executions, expected, fmt_counter, table
from client_proc import recorded

import faas
from faas.endpoint import control
from faas.exceptions import TaskTimeout
from faas.store import open_queue, open_store

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SEED = int(os.environ.get("FAAS_CHAOS_SEED") or 6)
N = int(os.environ.get("FAAS_CHAOS_TASKS") or 1000)
#: engine.pools_per_node: one pool per node, and two (a node process starting them)
POOLS = [int(os.environ["FAAS_CHAOS_POOLS_PER_NODE"])] if os.environ.get("FAAS_CHAOS_POOLS_PER_NODE") else [1, 2]
PLAN = ["kill_worker"] * 10 + ["kill_pool"] * 3 + ["restart_daemon"] * 3
RESULT_DEADLINE = 170.0       # seconds from the first submit; a task with no result by then is lost
MAX_RECEIVES = 10
MAX_MS = 30                   # task sleeps 0..30 ms
SURFACED = ("receive failed", "notice failed", "delete failed", "heartbeat failed", "release failed",
            "could not store its result", "could not write the failure", "hand back by re-sending failed",
            "scaling step failed", "monitor:", "could not copy task", "could not dead-letter",
            "NOT LIVE")   # the watchdog: a loop stalled (its stacks are in the log)


def _lines(path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait(pred, seconds: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out ({seconds} s) waiting for {what}")
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the client exited ({proc.returncode}) before {what}")
        time.sleep(0.02)


@pytest.mark.timeout(290)
@pytest.mark.parametrize("pools", POOLS)
def test_chaos_local_queue(tmp_path, capsys, pools):
    rng = random.Random(SEED)
    home = tmp_path / "home"
    name = f"chaos-{uuid.uuid4().hex[:6]}"
    store = (home / "store").as_uri()
    files = {k: tmp_path / f"{k}.txt" for k in ("ids", "got", "submitted", "executions")}
    execs = Executions(files["executions"])
    clients: list[dict] = []
    chaos = swept = None

    def progress() -> float:
        execs.refresh()
        return len(execs.inputs_done) / N

    def start_client(gen: int, pause: float) -> subprocess.Popen:
        out = open(tmp_path / f"client-{gen}.out", "wb")
        with out:
            return subprocess.Popen(
                [sys.executable, str(chaoslib.HERE / "client_proc.py"), "--store", store,
                 "--endpoint", name, "--n", str(N), "--gen", str(gen), "--ids", str(files["ids"]),
                 "--got", str(files["got"]), "--submitted", str(files["submitted"]),
                 "--exec-log", str(files["executions"]), "--max-ms", str(MAX_MS),
                 "--pause", str(pause)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill_client(proc: subprocess.Popen, gen: int, when: str) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        clients.append({"gen": gen, "pid": proc.pid, "when": when, "recorded": _lines(files["ids"]),
                        "done": round(progress(), 3), "exit": proc.returncode})

    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("FAAS_") and k not in ("FAAS_TEST_MOTO_URL", "FAAS_CHAOS_SEED"):
                mp.delenv(k)
        mp.setenv("FAAS_HOME", str(home))
        d = chaoslib.configure(home, name, {
            "store": store, "queue": "local", "max_receives": MAX_RECEIVES, "visibility_timeout": 5,
            "stop_grace": 5, "strategy_period": 0.5, "stall_timeout": 20,
            "engine": {"max_workers_per_node": 2, "max_idle_time": 120, "pools_per_node": pools,
                       "provider": {"type": "local", "init_blocks": 2, "min_blocks": 2, "max_blocks": 2}}})
        try:
            control.start_detached(name, home, wait=60.0)
            t0, wall_t0 = time.monotonic(), time.time()
            chaos = Chaos(name, home, progress, PLAN, rng)
            chaos.start()
            # Client 1 (sends 10 tasks every 50 ms): killed mid-submission, after 20-40% were sent.
            c1 = start_client(1, pause=0.05)
            cut = int(N * rng.uniform(0.2, 0.4))
            _wait(lambda: _lines(files["ids"]) >= cut, 90, f"client 1 to send {cut} tasks", c1)
            kill_client(c1, 1, "mid-submission")
            # Client 2: sends what client 1 had not recorded, then waits; killed mid-wait.
            c2 = start_client(2, pause=0.0)
            _wait(lambda: _lines(files["submitted"]) >= 1, 90, "client 2 to send the rest", c2)
            target = max(progress(), rng.uniform(0.5, 0.7))
            _wait(lambda: progress() >= target or c2.poll() is not None, 120, "half the results")
            kill_client(c2, 2, "mid-wait" if c2.poll() is None else "had already exited")
            # A new client, here, gets every result by task id.
            ids = recorded(str(files["ids"]))
            c = faas.client(store=store, endpoint=name)
            deadline = t0 + RESULT_DEADLINE
            lost, wrong, failed = [], [], []
            for i, tasks in sorted(ids.items()):
                for gen, tid in tasks:
                    try:
                        v = c.get_result(task_id=tid, timeout=max(0.1, deadline - time.monotonic()))
                    except TaskTimeout:
                        lost.append((i, gen, tid))
                        continue
                    except Exception as e:  # noqa: BLE001 - a failed task: reported below
                        failed.append((i, gen, tid, repr(e)[:300]))
                        continue
                    if v != expected(i):
                        wrong.append((i, gen, tid, v))
            wall, wall_end = time.monotonic() - t0, time.time()
            if lost:   # stacks of every thread, while the processes are as they failed
                chaoslib.dump_stacks(d)
            chaos.stop()
            c.close()
            time.sleep(1.0)                   # executions still finishing in orphaned workers
            cfg = chaoslib.ep_config.load(d / "config.yaml")
            dead = list(open_store(store).list("dead-letters/"))
            dlq_depth = open_queue(cfg.queue_url(name, home)).dead_letters().depth()
        finally:
            if chaos is not None:
                chaos.stop()
            try:
                control.stop(name, home, wait=60.0)
            finally:
                swept = chaoslib.sweep(d)

    runs = Executions(files["executions"]).figures()
    gap = Executions(files["executions"]).longest_gap(wall_t0, wall_end if lost else None)
    execs.refresh()
    unrecorded = sorted({i for (i, gen) in execs.started if gen == 1 and all(g != 1 for g, _ in ids.get(i, []))})
    surfaced = chaoslib.log_lines(home, SURFACED)
    n_ids = sum(len(v) for v in ids.values())
    rows = [
        ("tasks", f"{N} inputs, {n_ids} task ids recorded (2 blocks x 2 workers in {pools} pool(s), "
                  "local queue + file store)"),
        ("results correct", f"{n_ids - len(lost) - len(wrong) - len(failed)} / {n_ids}"),
        ("inputs without a task id", N - len(ids)),
        (f"lost (no result in {RESULT_DEADLINE}s)", len(lost)),
        ("failed / wrong", f"{len(failed)} / {len(wrong)}"),
        ("dead-lettered", f"{len(dead)} (DLQ depth {dlq_depth})"),
        ("clients killed", "; ".join(f"client {k['gen']} {k['when']} ({k['recorded']} ids recorded, "
                                     f"{k['done']:.0%} done)" for k in clients)),
        ("sent, not recorded (re-sent)", f"{len(unrecorded)} (client 1 killed between send and record)"),
        *chaoslib.kill_rows(chaos, home),
        ("errors surfaced in logs", fmt_counter(surfaced)),
        *chaoslib.execution_rows(runs),
        ("wall time", f"{wall:.1f} s"),
        ("seed", SEED),
        ("left running after stop", f"{len(swept or [])} process(es)"),
        ("longest time with no result", f"{gap:.1f} s (bound {chaoslib.STALL_BOUND:.0f} s)"),
    ]
    swept = swept or []
    report = table("chaos, local queue, client killed too", rows) + "".join(
        f"\n  left running after stop: {s}" for s in swept)
    evidence = None
    if chaos.errors or len(ids) != N or lost or failed or wrong or dead or swept or surfaced \
            or gap > chaoslib.STALL_BOUND:
        evidence = chaoslib.keep_evidence(f"chaos-local-{pools}-pools", SEED, [home / "endpoints", files["executions"]]
                                          + sorted(tmp_path.glob("client-*.out")), report)
    note = f" (the run's logs and stacks: {evidence})" if evidence else ""
    with capsys.disabled():
        print("\n" + table("chaos, local queue, client killed too", rows))
        if evidence:
            print(f"  EVIDENCE of the failed run kept in {evidence}")
        for line in swept or []:
            print("  left running after stop:", line)
        if chaos.errors:
            print("  chaos errors:", chaos.errors)

    assert not chaos.errors, f"{chaos.errors}{note}"
    assert len(ids) == N, f"{N - len(ids)} input(s) never got a task id: the second client did not finish sending{note}"
    assert not lost, f"{len(lost)} task(s) lost, e.g. {lost[:5]}{note}"
    assert not failed, f"{failed[:5]}{note}"
    assert not wrong, f"{wrong[:5]}{note}"
    assert not dead and dlq_depth == {"visible": 0, "in_flight": 0}, f"{(dead[:5], dlq_depth)}{note}"
    assert gap <= chaoslib.STALL_BOUND, f"no result for {gap:.0f} s while faults were injected{note}"
    assert not swept, f"{len(swept)} process(es) left running after stop: {swept}{note}"
    assert [k["when"] for k in clients] == ["mid-submission", "mid-wait"], clients
    for what in set(PLAN):
        assert chaos.counts()[what] >= 1, f"no {what} happened: {chaos.done} (skipped {chaos.skipped})"
    assert runs["most runs of one task"] < MAX_RECEIVES
    assert not surfaced, f"{surfaced}{note}"


@pytest.mark.timeout(120)
def test_is_running_probe_does_not_block_a_starting_daemon(tmp_path):
    """No daemon runs; a watcher process polls ``is_running`` (as a status loop would). Here,
    probes must all say 'not running' and a starting daemon must always get the lock."""
    from faas.endpoint import daemon as dm
    home = tmp_path / "home"
    d = chaoslib.configure(home, "race", {"store": (home / "store").as_uri(), "queue": "local"})
    dm.lock_path(d).touch()
    watcher = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom faas.endpoint.daemon import is_running\n"
        "d, end = Path(sys.argv[1]), time.monotonic() + 60\n"
        "while time.monotonic() < end:\n    is_running(d)\n"), str(d)])
    try:
        time.sleep(1.0)                      # the watcher is polling
        said_running = refused = attempts = 0
        end = time.monotonic() + 20
        while time.monotonic() < end and not (said_running and refused):
            attempts += 1
            said_running += dm.is_running(d)
            daemon = dm.Daemon("race", home)  # what a starting daemon does first
            try:
                daemon._lock()
                daemon.lock_file.close()       # and what its exit does
            except dm.AlreadyRunning:
                refused += 1
        assert (said_running, refused) == (0, 0), (
            f"{attempts} attempts with no daemon running: is_running() said True {said_running} "
            f"time(s); a starting daemon was refused {refused} time(s)")
    finally:
        watcher.kill()
        watcher.wait(10)
