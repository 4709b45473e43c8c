"""Soak: a time-bounded mixed load through a whole endpoint while processes are killed and, on the
S3/SQS path, AWS calls fail now and then.

    python tests/chaos/soak.py --minutes 30 --path local [--seed 6]
    python tests/chaos/soak.py --minutes 30 --path s3    # moto: $FAAS_TEST_AWS_URL / $FAAS_TEST_MOTO_URL,
                                                         # else a moto_server started here on 127.0.0.1

For the whole run a ``faas.Executor`` drives a seeded mix, with a bounded number of calls in
flight: ``submit`` of short tasks, ``map`` with ``chunksize``, cancels of pending and running
futures, calls that overrun ``task_timeout`` (they must fail with ``TaskTimeout``) and calls whose
argument is larger than a queue message (it spills to the store). Meanwhile a time-based killer
(the actions of ``chaoslib.Chaos``) kills worker processes and whole pools and restarts the
daemon, and a sampler reads RSS (``/proc/PID/status``) and open fds (``/proc/PID/fd``) of every
endpoint process every few seconds, by role (daemon, pool, forkserver, worker) and of the client.

It fails (exit status 1, evidence kept under $FAAS_CHAOS_EVIDENCE) on any of: a future not done
within the drain deadline (lost), a wrong result or an unexpected failure, a cancelled future that
neither ended cancelled nor got its result, an overrun that did not fail with TaskTimeout, a
time with no completed future longer than ``chaoslib.STALL_BOUND``, a dead-lettered task, an
error surfaced in the endpoint's logs, a process left after stop, or memory or open fds that are
not flat: for each role of the endpoint, the median over the last quarter of the load of the
per-sample median must stay within +30 % (RSS) and +20 (fds) of that over the first quarter.
Killed and replaced processes are new processes, so roles are compared, not pids. The client's
own figures are reported but not judged (it holds the run's bookkeeping).

tests/chaos/test_soak.py runs the short form (about a minute per path) in CI.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for _d in (HERE, HERE.parent):      # chaoslib, and the tests' helpers
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))
if __name__ == "__main__" and (REPO / "faas").is_dir():
    sys.path.insert(0, str(REPO))      # run as a script: test this checkout's faas, not an installed one

import chaoslib  # noqa: E402
from chaoslib import Chaos, Executions, expected, fmt_counter, table  # noqa: E402
from helpers import start_moto_server  # noqa: E402

STALL_BOUND = chaoslib.STALL_BOUND
RSS_TOLERANCE = 0.30          # last-quarter median <= first-quarter median * 1.3 ...
RSS_SLACK_KIB = 4 * 1024      # ... + 4 MiB (page-granular noise of small processes)
FD_TOLERANCE = 20             # last-quarter median <= first-quarter median + 20 fds
SAMPLE_EVERY = 3.0            # seconds between samples of every process
DRAIN_DEADLINE = 150.0        # seconds after the load stops for every future to be done
TIMEOUT_S = 2.0               # task_timeout of the overrunning calls
OVERRUN_S = 30.0              # how long they would run
MAX_RECEIVES = 10
SURFACED = ("receive failed", "notice failed", "delete failed", "heartbeat failed", "release failed",
            "could not store its result", "could not write the failure", "hand back by re-sending failed",
            "scaling step failed", "monitor:", "could not copy task", "could not dead-letter",
            "NOT LIVE")
#: the mix: (kind, weight)
MIX = (("submit", 40), ("map", 12), ("cancel", 12), ("timeout", 3), ("large", 6))


# -- the calls (travel by value: this file is outside site-packages) -------------------------

def overrun(seconds: float) -> str:
    import time as _t
    _t.sleep(seconds)
    return "should have been stopped"


def digest(blob: bytes):
    import hashlib as _h
    return len(blob), _h.sha256(blob).hexdigest()


# -- sampling --------------------------------------------------------------------------------

def _status_kib(pid: int, field: str = "VmRSS") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def role(pid: int) -> str:
    cmd = chaoslib._cmdline(pid)
    if "faas.endpoint.daemon" in cmd:
        return "daemon"
    if "faas.endpoint.pool" in cmd:
        return "pool"
    if "resource_tracker" in cmd:
        return "resource_tracker"
    if "multiprocessing.forkserver" in cmd:
        # the workers are forked from the forkserver and keep its command line
        return "worker" if "multiprocessing.forkserver" in chaoslib._cmdline(_ppid(pid)) else "forkserver"
    return "other"


class Sampler(threading.Thread):
    """Every ``every`` seconds: RSS (KiB) and open fds of every endpoint process and the client."""

    def __init__(self, endpoint_dir: Path, every: float = SAMPLE_EVERY):
        super().__init__(name="sampler", daemon=True)
        self.dir, self.every = endpoint_dir, every
        self.samples: list[tuple[float, dict]] = []   # (monotonic, {role: [(pid, rss, fds)]})
        self.stop_event = threading.Event()

    def sample(self) -> None:
        by_role: dict = collections.defaultdict(list)
        for pid in chaoslib.endpoint_processes(self.dir):
            rss, fds = _status_kib(pid), _fds(pid)
            if rss is not None and fds is not None:
                by_role[role(pid)].append((pid, rss, fds))
        me = os.getpid()
        by_role["client"].append((me, _status_kib(me) or 0, _fds(me) or 0))
        self.samples.append((time.monotonic(), dict(by_role)))

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a process that went away mid-read
                pass
            self.stop_event.wait(self.every)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)

    def flatness(self, t0: float, t1: float) -> dict:
        """Per role: first- and last-quarter medians (of the per-sample medians over the role's
        processes) of RSS and fds, the number of distinct pids seen, and whether it is flat."""
        span = t1 - t0
        first = [s for t, s in self.samples if t0 <= t <= t0 + span / 4]
        last = [s for t, s in self.samples if t1 - span / 4 <= t <= t1]
        out = {}
        roles = sorted({r for _, s in self.samples for r in s})
        for r in roles:
            def med(samples, k, r=r):
                vals = [statistics.median(p[k] for p in s[r]) for s in samples if s.get(r)]
                return statistics.median(vals) if vals else None
            pids = {p[0] for _, s in self.samples for p in s.get(r, [])}
            peak_rss = max((p[1] for _, s in self.samples for p in s.get(r, [])), default=0)
            rss0, rss1, fd0, fd1 = med(first, 1), med(last, 1), med(first, 2), med(last, 2)
            flat = None
            if None not in (rss0, rss1, fd0, fd1):
                flat = rss1 <= rss0 * (1 + RSS_TOLERANCE) + RSS_SLACK_KIB and fd1 <= fd0 + FD_TOLERANCE
            out[r] = {"rss0": rss0, "rss1": rss1, "fd0": fd0, "fd1": fd1, "pids": len(pids),
                      "peak_rss": peak_rss, "flat": flat,
                      "n_first": sum(1 for s in first if s.get(r)), "n_last": sum(1 for s in last if s.get(r))}
        return out


# -- the killer, on a clock -----------------------------------------------------------------

class TimedChaos(Chaos):
    """``Chaos``'s actions on a clock: one every ``interval`` seconds (jittered +-50 %); the first
    three are one of each kind, in seeded order, then seeded draws (workers 3x as often)."""

    def __init__(self, name: str, home: Path, rng: random.Random, interval: float):
        super().__init__(name, home, lambda: 0.0, [], rng)
        self.interval = interval

    def run(self) -> None:
        first = ["kill_worker", "kill_pool", "restart_daemon"]
        self.rng.shuffle(first)
        k = 0
        while not self.stop_event.wait(self.interval * self.rng.uniform(0.5, 1.5)):
            what = first[k] if k < len(first) else \
                self.rng.choice(["kill_worker"] * 3 + ["kill_pool", "restart_daemon"])
            k += 1
            try:
                info = self.actions[what]()
            except Exception as e:  # noqa: BLE001 - reported
                self.errors.append(f"{what}: {type(e).__name__}: {e}")
                continue
            if info is None:
                self.skipped.append(what)
            else:
                self.done.append(dict(info, action=what, t=time.time()))


# -- the load --------------------------------------------------------------------------------

class Load:
    """Drives the mix and tallies every future as it completes (dropping it then)."""

    def __init__(self, ex, ex_timeout, rng: random.Random, exec_log: Path, big_bytes: int, window: int):
        self.ex, self.ex_timeout, self.rng = ex, ex_timeout, rng
        self.exec_log, self.big_bytes, self.window = str(exec_log), big_bytes, window
        self.cv = threading.Condition()
        self.in_flight = 0
        self.pending: dict = {}               # future -> record, until done
        self.counts: collections.Counter = collections.Counter()   # kind -> calls sent
        self.outcomes: collections.Counter = collections.Counter()
        self.problems: list[str] = []
        self.last_done = time.monotonic()
        self.max_gap = 0.0
        self.i = 0
        self.map_threads: list[threading.Thread] = []
        self.timeouts_in_flight = 0

    # bookkeeping
    def _completed(self, n: int = 1) -> None:
        now = time.monotonic()
        with self.cv:
            self.max_gap = max(self.max_gap, now - self.last_done)
            self.last_done = now
            self.in_flight -= n
            self.cv.notify_all()

    def _problem(self, what: str) -> None:
        with self.cv:
            self.outcomes["problem"] += 1
            if len(self.problems) < 50:
                self.problems.append(what)

    def _track(self, f, rec: dict) -> None:
        with self.cv:
            self.pending[f] = rec
            self.in_flight += 1
        f.add_done_callback(self._on_done)

    def _on_done(self, f) -> None:
        with self.cv:
            rec = self.pending.pop(f, None)
        if rec is None:
            return
        kind = rec["kind"]
        from faas.exceptions import TaskTimeout
        try:
            if f.cancelled():
                if "cancel" in rec and rec["cancel"] is not False:   # None: inside cancel()
                    self.outcomes["cancelled"] += 1
                else:
                    self._problem(f"{kind} {f.task_id}: cancelled, but cancel() was not called or said False")
            else:
                exc = f.exception()
                if kind == "timeout":
                    if isinstance(exc, TaskTimeout):
                        self.outcomes["timed out (TaskTimeout)"] += 1
                    else:
                        self._problem(f"timeout {f.task_id}: {exc!r} instead of TaskTimeout")
                elif exc is not None:
                    self._problem(f"{kind} {f.task_id}: failed: {exc!r}"[:300])
                elif f.result() != rec["expect"]:
                    self._problem(f"{kind} {f.task_id}: wrong result {f.result()!r}"[:300])
                else:
                    self.outcomes["ran after cancel() said False" if rec.get("cancel") is False
                                  else "correct"] += 1
        finally:
            if kind == "timeout":
                with self.cv:
                    self.timeouts_in_flight -= 1
            self._completed()

    def _wait_room(self, n: int, until: float) -> bool:
        with self.cv:
            while self.in_flight + n > self.window and time.monotonic() < until:
                self.cv.wait(0.2)
            return time.monotonic() < until

    # the kinds of call
    def submit(self) -> None:
        for _ in range(self.rng.randint(1, 5)):
            i, self.i = self.i, self.i + 1
            self._track(self.ex.submit(chaoslib.task, i, 1, self.exec_log, 20),
                        {"kind": "submit", "expect": expected(i)})
        self.counts["submit"] += 1

    def map(self, until: float) -> None:
        n, chunk = self.rng.randint(10, 40), self.rng.randint(2, 8)
        first, self.i = self.i, self.i + n
        ids = list(range(first, first + n))
        with self.cv:
            self.in_flight += n
        it = self.ex.map(chaoslib.task, ids, [2] * n, [self.exec_log] * n, [20] * n, chunksize=chunk,
                         timeout=until - time.monotonic())

        def consume():
            got = 0
            try:
                for i, v in zip(ids, it, strict=False):
                    got += 1
                    if v != expected(i):
                        self._problem(f"map item {i}: wrong result {v!r}"[:300])
                    else:
                        self.outcomes["correct (map)"] += 1
                    self._completed()
            except TimeoutError:
                self._problem(f"map of {n} (chunksize {chunk}): {n - got} item(s) not done by the deadline (lost)")
                self.outcomes["lost (map)"] += n - got
                self._completed(n - got)
            except Exception as e:  # noqa: BLE001 - a chaos run records any task failure as a problem
                self._problem(f"map item {ids[got]}: failed: {e!r}"[:300])
                self._completed(n - got)
        t = threading.Thread(target=consume, name="map-consumer", daemon=True)
        t.start()
        self.map_threads = [x for x in self.map_threads if x.is_alive()] + [t]
        self.counts["map"] += 1
        self.counts["map items"] += n

    def cancel(self) -> None:
        """A few slower calls (0-1.5 s); cancel some at once (pending), some after a while (pending
        or running)."""
        fs = []
        for _ in range(self.rng.randint(2, 6)):
            i, self.i = self.i, self.i + 1
            f = self.ex.submit(chaoslib.task, i, 3, self.exec_log, 1500)
            rec = {"kind": "cancel", "expect": expected(i)}
            self._track(f, rec)
            fs.append((f, rec))
        delay = self.rng.choice([0.0, 0.0, 0.2, 0.5, 1.0, 2.0])

        def later():
            time.sleep(delay)
            for f, rec in fs:
                if self.rng.random() < 0.7:
                    rec["cancel"] = None                  # in progress: not yet known
                    ok = f.cancel()
                    rec["cancel"] = ok
                    self.counts["cancel() -> True" if ok else "cancel() -> False"] += 1
        if delay:
            threading.Thread(target=later, daemon=True).start()
        else:
            later()
        self.counts["cancel"] += 1

    def timeout(self) -> None:
        if self.timeouts_in_flight >= 1:      # each holds a worker for TIMEOUT_S
            return self.submit()
        with self.cv:
            self.timeouts_in_flight += 1
        self._track(self.ex_timeout.submit(overrun, OVERRUN_S), {"kind": "timeout", "expect": None})
        self.counts["timeout"] += 1

    def large(self) -> None:
        i, self.i = self.i, self.i + 1
        blob = random.Random(i).randbytes(self.big_bytes + self.rng.randint(0, 4096))
        want = (len(blob), hashlib.sha256(blob).hexdigest())
        self._track(self.ex.submit(digest, blob), {"kind": "large", "expect": want})
        self.counts["large"] += 1

    def drive(self, until: float) -> None:
        kinds = [k for k, w in MIX for _ in range(w)]
        while time.monotonic() < until:
            if not self._wait_room(8, until):
                break
            kind = self.rng.choice(kinds)
            if kind == "map":
                self.map(until + DRAIN_DEADLINE)
            else:
                getattr(self, kind)()
            time.sleep(self.rng.uniform(0.0, 0.05))

    def drain(self, deadline: float) -> list:
        """Wait until every future is done or ``deadline``; the futures not done are lost."""
        with self.cv:
            while (self.pending or self.in_flight > 0) and time.monotonic() < deadline:
                self.cv.wait(0.5)
            lost = list(self.pending.items())
        for t in self.map_threads:
            t.join(max(0.0, deadline - time.monotonic()) + 5)
        return lost


# -- the run ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _environ():
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)



@contextlib.contextmanager
def moto_server():
    """The URL of an S3 + SQS server: the one named by $FAAS_TEST_AWS_URL / $FAAS_TEST_MOTO_URL,
    else a ``moto_server`` started here on a free loopback port (stopped on exit)."""
    import urllib.request
    url = os.environ.get("FAAS_TEST_AWS_URL") or os.environ.get("FAAS_TEST_MOTO_URL")
    proc = None
    if not url:
        proc, url = start_moto_server()
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
                break
            except Exception:  # noqa: BLE001 - polling a server that is starting: any failure means not yet
                if time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"moto_server did not answer at {url}") from None
                time.sleep(0.1)
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    try:
        yield url
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


def _load_faults():
    import importlib.util
    spec = importlib.util.spec_from_file_location("faas_chaos_faults", chaoslib.FAULTS_DIR / "sitecustomize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _mib(kib) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def run_soak(seconds: float, path: str = "local", seed: int = 6, workdir: Path | None = None,
             kill_every: float | None = None, rates: str | None = None, window: int | None = None,
             out=print) -> tuple[bool, str, dict]:
    """Run the soak for ``seconds`` of load on ``path`` ("local" or "s3"); return (passed,
    report, figures). On "s3" the AWS_* variables must name a server (see ``moto_server``)."""
    import faas
    from faas.endpoint import control
    from faas.messages import inline_limit
    from faas.store import open_queue, open_store

    assert path in ("local", "s3"), path
    rng = random.Random(seed)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="faas-soak-"))
    home = workdir / "home"
    name = f"soak-{uuid.uuid4().hex[:8]}"
    exec_log, fault_log = workdir / "executions.log", workdir / "faults.jsonl"
    kill_every = kill_every or max(6.0, min(30.0, seconds / 8))
    rates = rates or "slowdown=0.03,throttle=0.03,reset=0.01,reset_after=0.005"
    faults = _load_faults() if path == "s3" else None
    if path == "s3":
        import boto3

        from faas.store.sqs import SQSQueue
        bucket = f"faas-soak-{uuid.uuid4().hex[:10]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        store, queue, msg_bytes = f"s3://{bucket}/faas", "sqs", SQSQueue.max_message_bytes
        window = window or 40     # moto's queue calls slow down with the queue's depth
    else:
        from faas.store.local_queue import LocalQueue
        store, queue, msg_bytes = (home / "store").as_uri(), "local", LocalQueue.max_message_bytes
        window = window or 60
    big = inline_limit(msg_bytes) + 16 * 1024
    ex = ex_timeout = chaos = sampler = load = None
    swept: list[str] = []
    lost: list = []
    dead: list = []
    dlq_depth = None
    wall = 0.0
    t_load0 = t_load1 = time.monotonic()
    with _environ():
        for k in list(os.environ):
            if k.startswith("FAAS_") and k not in ("FAAS_TEST_MOTO_URL", "FAAS_TEST_AWS_URL", "FAAS_CHAOS_EVIDENCE"):
                del os.environ[k]
        os.environ["FAAS_HOME"] = str(home)
        # the endpoint's processes import the faas this client imported (not another checkout
        # installed in site-packages: a result sealed by one version may not verify in another)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(faas.__file__).resolve().parent.parent),
                                                                  os.environ.get("PYTHONPATH")]))
        if faults is not None:
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(chaoslib.FAULTS_DIR),
                                                                      os.environ.get("PYTHONPATH")]))
            os.environ[faults.ENV_FAULTS] = rates
            os.environ[faults.ENV_LOG] = str(fault_log)
            os.environ[faults.ENV_SEED] = str(seed)
        d = chaoslib.configure(home, name, {
            "store": store, "queue": queue, "max_receives": MAX_RECEIVES, "visibility_timeout": 5,
            "stop_grace": 5, "strategy_period": 0.5, "stall_timeout": 20,
            "engine": {"max_workers_per_node": 2, "max_idle_time": 120,
                       "provider": {"type": "local", "init_blocks": 2, "min_blocks": 2, "max_blocks": 2}}})
        if faults is not None:
            faults.install()
        try:
            control.start_detached(name, home, wait=60.0)
            ex = faas.Executor(name, store=store)
            ex_timeout = faas.Executor(name, store=store, task_timeout=TIMEOUT_S)
            # warm up: a first call, so the first quarter's samples see working processes
            ex.submit(chaoslib.task, -1, 0, str(exec_log), 0).result(timeout=120)
            load = Load(ex, ex_timeout, rng, exec_log, big, window)
            sampler = Sampler(d)
            chaos = TimedChaos(name, home, random.Random(seed + 1), kill_every)
            t_load0 = time.monotonic()
            load.last_done = t_load0
            sampler.start()
            chaos.start()
            out(f"soak: {path}, {seconds:.0f} s of load, seed {seed}, endpoint {name}, work dir {workdir}")
            next_note = t_load0 + 60
            until = t_load0 + seconds
            while time.monotonic() < until:
                load.drive(min(until, next_note))
                if time.monotonic() >= next_note:
                    next_note += 60
                    out(f"  {time.monotonic() - t_load0:5.0f} s: {sum(load.outcomes.values())} done, "
                        f"{load.in_flight} in flight, kills {fmt_counter(chaos.counts())}, "
                        f"problems {len(load.problems)}")
            t_load1 = time.monotonic()
            chaos.stop()
            sampler.stop()
            lost = load.drain(t_load1 + DRAIN_DEADLINE)
            wall = time.monotonic() - t_load0
            if lost:
                chaoslib.dump_stacks(d)
            time.sleep(1.0)
            dead = list(open_store(store).list("dead-letters/"))
            cfg = chaoslib.ep_config.load(d / "config.yaml")
            dlq_depth = open_queue(cfg.queue_url(name, home)).dead_letters().depth()
        finally:
            if chaos is not None:
                chaos.stop()
            if sampler is not None:
                sampler.stop()
            for e in (ex, ex_timeout):
                if e is not None:
                    e.shutdown(wait=False, cancel_futures=True)
                    e.client.close()
            try:
                control.stop(name, home, wait=60.0)
            finally:
                swept = chaoslib.sweep(d)
                if faults is not None:
                    faults.uninstall()
                    try:
                        SQSQueue.open(f"sqs://faas-{name}").destroy()
                    except Exception:  # noqa: BLE001 - cleanup of the moto server only
                        pass

    # -- the tally --
    flat = sampler.flatness(t_load0, t_load1) if sampler else {}
    runs = Executions(exec_log).figures()
    gap = load.max_gap if load else float("inf")
    if lost and load:
        gap = max(gap, t_load1 + DRAIN_DEADLINE - load.last_done)
    surfaced = chaoslib.log_lines(home, SURFACED)
    fl = chaoslib.read_fault_log(fault_log) if faults is not None else None
    endpoint_roles = [r for r in ("daemon", "pool", "forkserver", "worker") if r in flat]
    not_flat = [r for r in endpoint_roles if flat[r]["flat"] is False]
    unsampled = [r for r in ("daemon", "pool", "worker") if r not in flat or flat[r]["flat"] is None]
    problems = load.problems if load else ["no load ran"]
    done = sum(load.outcomes.values()) if load else 0
    rows = [
        ("path", f"{'S3 + SQS on moto (faults injected)' if path == 's3' else 'local queue + file store'}; "
                 f"2 blocks x 2 workers, about {window} calls in flight (a map may add up to 40)"),
        ("load", f"{t_load1 - t_load0:.0f} s, then drained in {wall - (t_load1 - t_load0):.0f} s "
                 f"(deadline {DRAIN_DEADLINE:.0f} s)"),
        ("calls sent", fmt_counter(load.counts) if load else "none"),
        ("futures done", f"{done}: {fmt_counter(load.outcomes) if load else ''}"),
        ("large arguments", f"{big} - {big + 4096} bytes (message limit {msg_bytes}, inline limit "
                            f"{inline_limit(msg_bytes)}): spilled to the store"),
        ("lost (not done in time)", len(lost) + (load.outcomes["lost (map)"] if load else 0)),
        ("wrong / failed / other problems", len(problems)),
        ("dead-lettered", f"{len(dead)} (DLQ depth {dlq_depth})"),
        *chaoslib.kill_rows(chaos, home),
        ("errors surfaced in logs", fmt_counter(surfaced)),
        *chaoslib.execution_rows(runs),
        ("longest time with no future done", f"{gap:.1f} s (bound {STALL_BOUND:.0f} s)"),
        ("left running after stop", f"{len(swept)} process(es)"),
        ("samples", f"{len(sampler.samples) if sampler else 0}, every {SAMPLE_EVERY:.0f} s; flat = last-quarter "
                    f"median <= first-quarter x {1 + RSS_TOLERANCE:.1f} + {RSS_SLACK_KIB // 1024} MiB, "
                    f"fds + {FD_TOLERANCE}"),
    ]
    for r, v in flat.items():
        verdict = {True: "flat", False: "NOT FLAT", None: "too few samples"}[v["flat"]]
        if r == "client":
            verdict = "reported only"
        rows.append((f"  {r} RSS MiB / fds", f"{_mib(v['rss0'])} -> {_mib(v['rss1'])} / {v['fd0']} -> {v['fd1']} "
                                             f"(peak {_mib(v['peak_rss'])} MiB, {v['pids']} pid(s)) {verdict}"))
    if fl is not None:
        rows += [("faults injected", f"{sum(fl['faults'].values())}: {fmt_counter(fl['faults'])}"),
                 ("tenacity gave up", len(fl["gave_up"]))]
    rows.append(("seed", seed))
    report = table(f"soak, {path}", rows) + "".join(f"\n  problem: {p}" for p in problems[:20]) + \
        "".join(f"\n  lost: {rec['kind']} {f.task_id}" for f, rec in lost[:20]) + \
        "".join(f"\n  left running after stop: {s}" for s in swept) + \
        "".join(f"\n  chaos error: {e}" for e in (chaos.errors if chaos else []))
    failures = []
    if lost or (load and load.outcomes["lost (map)"]):
        failures.append("lost futures")
    if problems:
        failures.append("wrong results or failures")
    if gap > STALL_BOUND:
        failures.append(f"stall of {gap:.0f} s")
    if dead or (dlq_depth and dlq_depth != {"visible": 0, "in_flight": 0}):
        failures.append("dead-lettered tasks")
    if swept:
        failures.append("processes left after stop")
    if not_flat:
        failures.append(f"not flat: {not_flat}")
    if unsampled:
        failures.append(f"roles never sampled in both quarters: {unsampled}")
    if surfaced:
        failures.append("errors surfaced in logs")
    if chaos is None or chaos.errors:
        failures.append("chaos errors")
    if runs["most runs of one task"] >= MAX_RECEIVES:
        failures.append("a task ran max_receives times")
    if fl is not None and fl["gave_up"]:
        failures.append("tenacity gave up")
    if load and not (load.outcomes["correct"] and load.outcomes["correct (map)"] and load.counts["large"]
                     and load.outcomes["timed out (TaskTimeout)"] and load.outcomes["cancelled"]):
        failures.append(f"a kind of call never completed as it should: {fmt_counter(load.outcomes)}")
    if failures:
        report += "\n  FAILED: " + "; ".join(failures)
        evidence = chaoslib.keep_evidence(f"soak-{path}", seed, [home / "endpoints", exec_log, fault_log], report)
        report += f"\n  EVIDENCE of the failed run kept in {evidence}"
    figures = {"flat": flat, "lost": len(lost), "problems": problems, "gap": gap, "swept": swept,
               "counts": dict(load.counts) if load else {}, "outcomes": dict(load.outcomes) if load else {},
               "kills": dict(chaos.counts()) if chaos else {}, "failures": failures, "wall": wall}
    return not failures, report, figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--path", choices=("local", "s3"), default="local")
    p.add_argument("--seed", type=int, default=int(os.environ.get("FAAS_CHAOS_SEED") or 6))
    p.add_argument("--kill-every", type=float, default=None, help="seconds between kills (default: run/8, 6..30)")
    p.add_argument("--workdir", type=Path, default=None)
    a = p.parse_args(argv)
    ctx = moto_server() if a.path == "s3" else contextlib.nullcontext()
    with _environ(), ctx:
        ok, report, _ = run_soak(a.minutes * 60, a.path, a.seed, a.workdir, kill_every=a.kill_every)
    print(report)
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
