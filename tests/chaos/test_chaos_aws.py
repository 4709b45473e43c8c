"""Chaos on the S3/SQS path, against the moto server over HTTP: 1,000 tasks while worker
processes, whole worker pools and the endpoint daemon are kill -9'd, and the AWS calls of every
process (client, daemon, pools, workers) fail now and then: S3 503 SlowDown, SQS throttling,
connection resets before the request and after the server applied it (tests/chaos/faults,
loaded through PYTHONPATH; the test process installs the same hooks).

Every result must be correct, none lost, none dead-lettered; duplicate executions are counted
and reported; injected faults must be retried (tenacity: exponential backoff with jitter), never
surface. Knobs (environment): FAAS_CHAOS_SEED, FAAS_CHAOS_TASKS, FAAS_CHAOS_RATES.
"""
from __future__ import annotations

import importlib.util
import os
import random
import threading
import time
import uuid
from concurrent import futures

import chaoslib
import pytest
from chaoslib import Chaos, Executions, expected, fmt_counter, table

import faas
from faas.endpoint import control
from faas.store import open_store
from faas.store.sqs import SQSQueue

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.aws]

SEED = int(os.environ.get("FAAS_CHAOS_SEED") or 6)
N = int(os.environ.get("FAAS_CHAOS_TASKS") or 1000)
RATES = os.environ.get("FAAS_CHAOS_RATES") or "slowdown=0.03,throttle=0.03,reset=0.01,reset_after=0.005"
PLAN = ["kill_worker"] * 8 + ["kill_pool"] * 2 + ["restart_daemon"] * 2
RESULT_DEADLINE = 170.0       # seconds from the first submit; a task with no result by then is lost
MAX_RECEIVES = 10
WINDOW = 100                  # tasks in flight at most (sent, no result yet)
SURFACED = ("receive failed", "notice failed", "delete failed", "heartbeat failed", "release failed",
            "could not store its result", "could not write the failure", "hand back by re-sending failed",
            "scaling step failed", "monitor:", "could not copy task", "could not dead-letter",
            "NOT LIVE")   # the watchdog: a loop stalled (its stacks are in the log)


def _load_faults():
    spec = importlib.util.spec_from_file_location("faas_chaos_faults", chaoslib.FAULTS_DIR / "sitecustomize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


faults = _load_faults()


@pytest.mark.timeout(290)
def test_chaos_s3_sqs(moto_url, tmp_path, capsys):
    import boto3
    rng = random.Random(SEED)
    bucket = f"faas-chaos-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = f"s3://{bucket}/faas"
    home = tmp_path / "home"
    name = f"chaos-{uuid.uuid4().hex[:8]}"
    exec_log, fault_log = tmp_path / "executions.log", tmp_path / "faults.jsonl"
    ex = chaos = swept = None
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("FAAS_") and k not in ("FAAS_TEST_MOTO_URL", "FAAS_CHAOS_SEED"):
                mp.delenv(k)
        mp.setenv("FAAS_HOME", str(home))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(chaoslib.FAULTS_DIR),
                                                              os.environ.get("PYTHONPATH")])))
        mp.setenv(faults.ENV_FAULTS, RATES)
        mp.setenv(faults.ENV_LOG, str(fault_log))
        mp.setenv(faults.ENV_SEED, str(SEED))
        d = chaoslib.configure(home, name, {
            "store": store, "queue": "sqs", "max_receives": MAX_RECEIVES, "visibility_timeout": 5,
            "stop_grace": 5, "strategy_period": 0.5, "stall_timeout": 20,
            "engine": {"max_workers_per_node": 2, "max_idle_time": 120,
                       "provider": {"type": "local", "init_blocks": 2, "min_blocks": 2, "max_blocks": 2}}})
        faults.install()                      # the client's own AWS calls get faults too
        try:
            control.start_detached(name, home, wait=60.0)
            ex = faas.Executor(name, store=store)
            finished = [0]
            cv = threading.Condition()

            def one_done(_f):
                with cv:
                    finished[0] += 1
                    cv.notify_all()

            # At most WINDOW tasks in flight: moto's queue calls slow down with the queue's
            # depth (ReceiveMessage of 10: 8 ms empty, ~0.9 s at 1,000 queued).
            t0, wall_t0 = time.monotonic(), time.time()
            deadline = t0 + RESULT_DEADLINE
            chaos = Chaos(name, home, lambda: finished[0] / N, PLAN, rng)
            chaos.start()
            fs: list = []
            while len(fs) < N and time.monotonic() < deadline:
                with cv:
                    while len(fs) - finished[0] >= WINDOW and time.monotonic() < deadline:
                        cv.wait(0.5)
                for i in range(len(fs), min(N, len(fs) + 10)):
                    f = ex.submit(chaoslib.task, i, 1, str(exec_log))
                    f.add_done_callback(one_done)
                    fs.append(f)
            unsent = N - len(fs)              # the window stayed full of tasks with no result
            done, lost = futures.wait(fs, timeout=max(0.0, deadline - time.monotonic()))
            wall, wall_end = time.monotonic() - t0, time.time()
            if lost or unsent:   # stacks of every thread, while the processes are as they failed
                chaoslib.dump_stacks(d)
            chaos.stop()
            wrong, failed = [], []
            for i, f in enumerate(fs):
                if f in lost:
                    continue
                if f.exception() is not None:
                    failed.append((i, f.task_id, repr(f.exception())[:300]))
                elif f.result() != expected(i):
                    wrong.append((i, f.task_id, f.result()))
            time.sleep(1.0)                   # executions still finishing in orphaned workers
            st = open_store(store)
            dead = list(st.list("dead-letters/"))
            dlq_depth = SQSQueue.open(f"sqs://faas-{name}").dead_letters().depth()
        finally:
            if chaos is not None:
                chaos.stop()
            if ex is not None:
                ex.shutdown(wait=False, cancel_futures=True)
                ex.client.close()
            try:
                control.stop(name, home, wait=60.0)
            finally:
                swept = chaoslib.sweep(d)
                faults.uninstall()
                try:
                    SQSQueue.open(f"sqs://faas-{name}").destroy()
                except Exception:  # noqa: BLE001 - cleanup of the shared moto server only
                    pass

    runs = Executions(exec_log).figures()
    gap = Executions(exec_log).longest_gap(wall_t0, wall_end if lost or unsent else None)
    fl = chaoslib.read_fault_log(fault_log)
    waits = chaoslib.wait_summary(fl["waits"])
    surfaced = chaoslib.log_lines(home, SURFACED)
    swept = swept or []
    rows = [
        ("tasks", f"{N} (Executor.submit, <= {WINDOW} in flight; 2 blocks x 2 workers; S3 + SQS on moto)"),
        ("results correct", f"{len(fs) - len(lost) - len(wrong) - len(failed)} / {N}"),
        (f"lost (no result in {RESULT_DEADLINE}s)", f"{len(lost)}" + (f" (and {unsent} never sent)" if unsent else "")),
        ("failed / wrong", f"{len(failed)} / {len(wrong)}"),
        ("dead-lettered", f"{len(dead)} (DLQ depth {dlq_depth})"),
        ("faults injected", f"{sum(fl['faults'].values())}: {fmt_counter(fl['faults'])}"),
        ("  by AWS op", fmt_counter(fl["faults_by_op"])),
        ("botocore's own retries", fmt_counter(fl["botocore_retries"])),
        ("tenacity waits", "; ".join(f"{s}: {w['waits']} (median {w['median_s']} s, max {w['max_s']} s)"
                                     for s, w in waits.items()) or "none"),
        ("tenacity gave up (surfaced)", len(fl["gave_up"])),
        ("errors surfaced in logs", fmt_counter(surfaced)),
        *chaoslib.kill_rows(chaos, home),
        *chaoslib.execution_rows(runs),
        ("wall time", f"{wall:.1f} s"),
        ("seed / rates", f"{SEED} / {RATES}"),
        ("left running after stop", f"{len(swept)} process(es)"),
        ("longest time with no result", f"{gap:.1f} s (bound {chaoslib.STALL_BOUND:.0f} s)"),
    ]
    report = table("chaos, S3/SQS on moto", rows) + "".join(f"\n  left running after stop: {s}" for s in swept)
    evidence = None
    if chaos.errors or unsent or lost or failed or wrong or dead or swept or surfaced or gap > chaoslib.STALL_BOUND:
        evidence = chaoslib.keep_evidence("chaos-s3-sqs", SEED, [home / "endpoints", exec_log, fault_log], report)
    note = f" (the run's logs and stacks: {evidence})" if evidence else ""
    with capsys.disabled():
        print("\n" + table("chaos, S3/SQS on moto", rows))
        if evidence:
            print(f"  EVIDENCE of the failed run kept in {evidence}")
        for s, w in waits.items():
            print(f"  tenacity {s} by attempt: {w['by_attempt']}")
        for line in swept:
            print("  left running after stop:", line)
        if chaos.errors:
            print("  chaos errors:", chaos.errors)

    assert not chaos.errors, f"{chaos.errors}{note}"
    assert not unsent, f"{unsent} task(s) never sent: the window stayed full of tasks without a result{note}"
    assert not lost, f"{len(lost)} task(s) lost, e.g. {[f.task_id for f in list(lost)[:5]]}{note}"
    assert not failed, f"{failed[:5]}{note}"
    assert not wrong, f"{wrong[:5]}{note}"
    assert not dead and dlq_depth == {"visible": 0, "in_flight": 0}, f"{(dead[:5], dlq_depth)}{note}"
    assert gap <= chaoslib.STALL_BOUND, f"no result for {gap:.0f} s while faults were injected{note}"
    assert not swept, f"{len(swept)} process(es) left running after stop: {swept}{note}"
    for kind in faults.KINDS:
        assert fl["faults"][kind] > 0, f"no {kind} fault was injected: {fl['faults']}"
    for what in set(PLAN):
        assert chaos.counts()[what] >= 1, f"no {what} happened: {chaos.done} (skipped {chaos.skipped})"
    assert runs["most runs of one task"] < MAX_RECEIVES
    # Retried, not surfaced: tenacity backs off exponentially with jitter, and never gave up.
    assert not fl["gave_up"], fl["gave_up"][:5]
    assert not surfaced, f"{surfaced}{note}"
    assert not chaoslib.check_waits(fl["waits"])
    assert "s3" in waits and "sqs" in waits, waits
    s3_first = [w["wait"] for w in fl["waits"] if (w.get("op") or "").startswith("s3.") and w["attempt"] == 1]
    assert len(set(s3_first)) > 1, "no jitter in tenacity's first waits"


def square(x):
    return x * x


@pytest.mark.timeout(150)
@pytest.mark.parametrize("outage", [
    pytest.param(r"^sqs\.SendMessageBatch .*faas-reply-.*event\W+done", id="notice-send-fails"),
    pytest.param(r"^sqs\.GetQueueUrl .*faas-reply-", id="reply-queue-lookup-fails"),
])
def test_lost_notice_still_completes_the_future(moto_url, tmp_path, outage):
    """A short SQS outage on the pool's side, on the reply queue only: the first 8 requests that
    match ``outage`` (the send of the done notice, or the lookup of the reply queue's URL) get a
    connection reset; with botocore's own retries off these are all of tenacity's 8 attempts
    (4-11 s of backoff); every later request succeeds. The task ran and its result is in the
    store; its future must still complete. (With botocore's default retries, the same takes
    5 x 8 failed requests: an outage of a minute or two.)"""
    import boto3
    bucket = f"faas-chaos-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = f"s3://{bucket}/faas"
    home = tmp_path / "home"
    name = f"notice-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
                mp.delenv(k)
        mp.setenv("FAAS_HOME", str(home))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(chaoslib.FAULTS_DIR),
                                                              os.environ.get("PYTHONPATH")])))
        mp.setenv(faults.ENV_FAULTS, "reset=1")
        mp.setenv(faults.ENV_MATCH, outage)
        mp.setenv(faults.ENV_LIMIT, "8")
        mp.setenv(faults.ENV_LOG, str(tmp_path / "faults.jsonl"))
        mp.setenv("AWS_MAX_ATTEMPTS", "1")
        d = chaoslib.configure(home, name, {
            # visibility 20 s: longer than tenacity's backoff, so no re-run hides the lost notice
            "store": store, "queue": "sqs", "max_receives": 10, "visibility_timeout": 20,
            "stop_grace": 5, "engine": {"max_workers_per_node": 1, "provider": {
                "type": "local", "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}})
        control.start_detached(name, home, wait=60.0)
        ex = faas.Executor(name, store=store)
        try:
            f = ex.submit(square, 7)
            try:
                value = f.result(timeout=35)
            except TimeoutError:
                # Not lost: it ran, and a client reading the store by task id gets it.
                assert faas.client(store=store).get_result(task_id=f.task_id, timeout=20) == 49
                assert len(chaoslib.read_fault_log(tmp_path / "faults.jsonl")["gave_up"]) >= 1
                raise
            assert value == 49
        finally:
            ex.shutdown(wait=False, cancel_futures=True)
            ex.client.close()
            try:
                control.stop(name, home, wait=60.0)
            finally:
                chaoslib.sweep(d)
                try:
                    SQSQueue.open(f"sqs://faas-{name}").destroy()
                except Exception:  # noqa: BLE001 - best-effort cleanup after the run
                    pass


@pytest.mark.timeout(60)
def test_sqs_faults_are_retried_by_tenacity(moto_url, tmp_path, monkeypatch):
    """Two throttling replies to one SendMessageBatch: faas's own retries (tenacity) should
    take them, as sqs.py's docstring says, not botocore's."""
    q = SQSQueue.create(f"sqs://chaos-retry-{uuid.uuid4().hex[:8]}")
    log = tmp_path / "faults.jsonl"
    monkeypatch.setenv(faults.ENV_FAULTS, "throttle=1")
    monkeypatch.setenv(faults.ENV_MATCH, r"^sqs\.SendMessageBatch ")
    monkeypatch.setenv(faults.ENV_LIMIT, "2")
    monkeypatch.setenv(faults.ENV_LOG, str(log))
    faults.install()
    try:
        mine = SQSQueue.open(q.url)          # a client made with the hooks on
        mine.send(["hello"])
    finally:
        faults.uninstall()
        q.destroy()
    fl = chaoslib.read_fault_log(log)
    assert fl["faults"]["throttle"] == 2
    assert (fl["botocore_retries"]["sqs"], len(fl["waits"])) == (0, 2), (
        f"botocore retried {fl['botocore_retries']['sqs']} time(s), tenacity {len(fl['waits'])}")
