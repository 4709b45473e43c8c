"""Shared by the chaos tests: the task, the endpoint, the process killer, and the tally.

The task is a deterministic function of its input that appends ``start``/``end`` lines
(``i gen pid time``) to an executions log (O_APPEND), so every execution is counted, the
duplicates of at-least-once delivery included. Killing is done by :class:`Chaos`, a thread that
SIGKILLs random worker processes, whole worker pools and the endpoint daemon (restarting the
daemon with ``control.start_detached``) as the run passes seeded progress thresholds, each kind a
bounded number of times.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import signal
import statistics
import threading
import time
from pathlib import Path

from faas.endpoint import config as ep_config
from faas.endpoint import control
from faas.endpoint.daemon import daemon_pid, is_running, ready_path

HERE = Path(__file__).parent
FAULTS_DIR = HERE / "faults"


# -- the task --------------------------------------------------------------------------------

def task(i: int, gen: int, log_path: str, max_ms: int = 20):
    """Sleep 0..max_ms ms (a function of ``i``) and return a value computed from ``i`` only.
    ``gen`` tells apart the clients that sent the same input (the local test re-sends what a
    killed client sent but had not recorded)."""
    import hashlib as _h
    import os as _os
    import time as _t

    def note(phase: str) -> None:
        fd = _os.open(log_path, _os.O_WRONLY | _os.O_APPEND | _os.O_CREAT, 0o644)
        try:
            _os.write(fd, f"{phase} {i} {gen} {_os.getpid()} {_t.time():.4f}\n".encode())
        finally:
            _os.close(fd)

    note("start")
    _t.sleep(((i * 7919) % (max_ms + 1)) / 1000.0)
    value = (i, i * i, _h.sha256(str(i).encode()).hexdigest()[:16])
    note("end")
    return value


def expected(i: int):
    return (i, i * i, hashlib.sha256(str(i).encode()).hexdigest()[:16])


class Executions:
    """Reads the executions log incrementally: which inputs finished, how often each ran."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.started: collections.Counter = collections.Counter()   # (i, gen) -> runs started
        self.ended: collections.Counter = collections.Counter()     # (i, gen) -> runs finished
        self.inputs_done: set[int] = set()
        self.end_times: list[float] = []     # wall clock of each finished execution
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    data = f.read()
            except FileNotFoundError:
                return
            end = data.rfind(b"\n") + 1          # a line being written is read next time
            self.offset += end
            for line in data[:end].decode().splitlines():
                phase, i, gen, _pid, t = line.split()
                key = (int(i), int(gen))
                if phase == "start":
                    self.started[key] += 1
                else:
                    self.ended[key] += 1
                    self.inputs_done.add(int(i))
                    self.end_times.append(float(t))

    def longest_gap(self, since: float, until: float | None = None) -> float:
        """The longest time (s) with no execution finishing, from ``since`` (wall clock) to the
        last one (or to ``until``, when some work never finished): a stall while faults were
        injected shows here, however the run ended."""
        self.refresh()
        times = sorted(t for t in self.end_times if t >= since)
        edges = [since] + times + ([until] if until is not None else [])
        return max((b - a for a, b in zip(edges, edges[1:], strict=False)), default=0.0)

    def figures(self) -> dict:
        self.refresh()
        return {
            "executions started": sum(self.started.values()),
            "executions finished": sum(self.ended.values()),
            "tasks run more than once": sum(1 for n in self.started.values() if n > 1),
            "duplicate executions (started)": sum(n - 1 for n in self.started.values() if n > 1),
            "duplicate executions (finished)": sum(n - 1 for n in self.ended.values() if n > 1),
            "most runs of one task": max(self.started.values(), default=0),
        }


# -- evidence of a failed run ----------------------------------------------------------------

#: seconds with no execution finishing that count as a stall (a daemon restart, a pool kill and
#: a visibility timeout of 5 s together take well under this)
STALL_BOUND = 60.0
EVIDENCE_ROOT = Path(os.environ.get("FAAS_CHAOS_EVIDENCE", "/tmp/faas-chaos-evidence"))


def dump_stacks(endpoint_dir: Path) -> list[int]:
    """SIGUSR1 to the endpoint's daemon and pools: each writes every thread's stack to its log
    (faulthandler), while the processes are still as the failure left them."""
    sent = []
    for pid in endpoint_processes(endpoint_dir):
        cmd = _cmdline(pid)
        if "faas.endpoint.daemon" in cmd or "faas.endpoint.pool" in cmd:
            try:
                os.kill(pid, signal.SIGUSR1)
                sent.append(pid)
            except ProcessLookupError:
                pass
    time.sleep(1.0)
    return sent


def keep_evidence(test: str, seed: int, sources: list[Path], report: str) -> Path:
    """Copy every log of the run and its report into a folder of its own, and name it."""
    import shutil
    folder = EVIDENCE_ROOT / f"{test}-{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.txt").write_text(report)
    for src in sources:
        src = Path(src)
        try:
            if src.is_dir():
                shutil.copytree(src, folder / src.name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.sqlite3*", "store", "*.waiters"))
            elif src.exists():
                shutil.copy2(src, folder / src.name)
        except OSError as e:
            (folder / "copy-errors.txt").open("a").write(f"{src}: {e}\n")
    return folder


# -- the endpoint -----------------------------------------------------------------------------

def configure(home: Path, name: str, data: dict) -> Path:
    cfg = ep_config.UserEndpointConfig.model_validate(data)
    d = ep_config.endpoint_dir(name, home)
    ep_config.write(d / "config.yaml", cfg)
    return d


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(fields[1])].append(int(entry))
    return out


def pool_pids(endpoint_dir: Path) -> list[int]:
    """Live pools of the endpoint's blocks (local provider: the job id is the pool's pid; with
    engine.pools_per_node > 1, the node's process, whose children are its pools: both listed)."""
    try:
        blocks = json.loads((endpoint_dir / "blocks.json").read_text())
    except (OSError, ValueError):
        return []
    out = []
    kids = None
    for b in blocks.values():
        pid = int(b["job"])
        if _alive(pid) and "faas.endpoint.pool" in _cmdline(pid) and str(endpoint_dir) in _cmdline(pid):
            out.append(pid)
            if "--pool-share" not in _cmdline(pid):
                kids = _children() if kids is None else kids
                out.extend(c for c in kids.get(pid, []) if "--pool-share" in _cmdline(c) and _alive(c))
    return out


def worker_pids(pool_pid: int) -> list[int]:
    """The pool's worker processes: children of its forkserver (not the forkserver itself, not
    the resource tracker)."""
    kids = _children()
    out = []
    for c in kids.get(pool_pid, []):
        if "multiprocessing.forkserver" in _cmdline(c):
            out.extend(w for w in kids.get(c, []) if _alive(w))
    return out


def endpoint_processes(endpoint_dir: Path) -> list[int]:
    """Every live process started for this endpoint: its daemon, pools and their descendants."""
    kids = _children()
    roots = [int(p) for p in os.listdir("/proc") if p.isdigit() and str(endpoint_dir) in _cmdline(int(p))]
    d = daemon_pid(endpoint_dir)
    if d and _alive(d) and "faas.endpoint.daemon" in _cmdline(d):
        roots.append(d)
    seen, stack = set(), list(roots)
    while stack:
        p = stack.pop()
        if p in seen or p == os.getpid():
            continue
        seen.add(p)
        stack.extend(kids.get(p, []))
    return sorted(seen)


def sweep(endpoint_dir: Path, grace: float = 10.0) -> list[str]:
    """After the endpoint was stopped: give its processes ``grace`` seconds to exit on their own
    (a stopped daemon lets go of its lock a moment before it exits), then SIGKILL what is left
    and say what it was."""
    deadline = time.monotonic() + grace
    while endpoint_processes(endpoint_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    out = []
    for pid in endpoint_processes(endpoint_dir):
        what = _cmdline(pid)[:160]
        try:
            os.kill(pid, signal.SIGKILL)
            out.append(f"{pid} {what}")
        except ProcessLookupError:
            pass
    return out


# -- the killer ------------------------------------------------------------------------------

class Chaos(threading.Thread):
    """Performs ``plan`` (a list of action names) as the run's progress passes seeded,
    stratified thresholds in [lo, hi]; at most one action at a time, each recorded."""

    def __init__(self, name: str, home: Path, progress, plan: list[str], rng: random.Random,
                 lo: float = 0.05, hi: float = 0.8, min_gap: float = 0.3, actions: dict | None = None):
        super().__init__(name="chaos", daemon=True)
        self.endpoint, self.home = name, home
        self.dir = ep_config.endpoint_dir(name, home)
        self.progress, self.rng, self.min_gap = progress, rng, min_gap
        plan = list(plan)
        rng.shuffle(plan)
        # One of each kind first: on a loaded machine the work may end before the whole plan is
        # done, and each kind must still have happened (the suites check it).
        kinds = list(dict.fromkeys(plan))
        rng.shuffle(kinds)
        for k in kinds:
            plan.remove(k)
        plan = kinds + plan
        step = (hi - lo) / max(len(plan), 1)
        self.schedule = [(lo + step * (k + rng.random()), what) for k, what in enumerate(plan)]
        self.actions = {"kill_worker": self.kill_worker, "kill_pool": self.kill_pool,
                        "restart_daemon": self.restart_daemon, **(actions or {})}
        self.done: list[dict] = []
        self.skipped: list[str] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        for threshold, what in self.schedule:
            while self.progress() < threshold and not self.stop_event.is_set():
                self.stop_event.wait(0.05)
            if self.stop_event.is_set() or self.progress() >= 1.0:
                self.skipped.append(what)
                continue
            try:
                info = self.actions[what]()
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(f"{what}: {type(e).__name__}: {e}")
                continue
            if info is None:
                self.skipped.append(what)
            else:
                self.done.append(dict(info, action=what, at=round(self.progress(), 3), t=time.time()))
            self.stop_event.wait(self.min_gap)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(120)

    def counts(self) -> collections.Counter:
        return collections.Counter(d["action"] for d in self.done)

    # -- actions ------------------------------------------------------------------------------
    def _wait_pools(self, seconds: float = 20.0) -> list[int]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stop_event.is_set():
            pools = pool_pids(self.dir)
            if pools:
                return pools
            time.sleep(0.05)
        return []

    def kill_worker(self) -> dict | None:
        for _ in range(40):                        # a pool just (re)started may not have workers yet
            pools = self._wait_pools()
            workers = [(p, w) for p in pools for w in worker_pids(p)]
            if workers:
                pool, victim = self.rng.choice(workers)
                os.kill(victim, signal.SIGKILL)
                return {"pid": victim, "pool": pool}
            time.sleep(0.05)
        return None

    def kill_pool(self) -> dict | None:
        pools = self._wait_pools()
        if not pools:
            return None
        victim = self.rng.choice(pools)
        os.kill(victim, signal.SIGKILL)
        return {"pid": victim}

    def restart_daemon(self) -> dict | None:
        pid = daemon_pid(self.dir)
        if not pid or not _alive(pid) or "faas.endpoint.daemon" not in _cmdline(pid):
            return None
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while is_running(self.dir):
            if time.monotonic() > deadline:
                raise TimeoutError(f"killed daemon {pid} still holds the endpoint's lock")
            time.sleep(0.02)
        # The killed daemon left daemon.ready behind (start_detached ignores a stale one, and
        # is_running no longer takes the lock; see test_is_running_probe_does_not_block_...).
        ready_path(self.dir).unlink(missing_ok=True)
        new = control.start_detached(self.endpoint, self.home, wait=60.0)
        return {"pid": pid, "new_pid": new, "restart_s": round(time.monotonic() - t0, 2)}


# -- the tally -------------------------------------------------------------------------------

def read_fault_log(path: Path) -> dict:
    """Faults by kind (and by AWS op), botocore's own retries, tenacity's waits and give-ups."""
    faults, faults_by_op, retries = collections.Counter(), collections.Counter(), collections.Counter()
    waits: list[dict] = []
    gave_up: list[dict] = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        rec = json.loads(line)
        if rec["k"] == "fault":
            faults[rec["kind"]] += 1
            faults_by_op[f"{rec['kind']}:{rec['op']}"] += 1
        elif rec["k"] == "botocore_retry":
            retries[rec["op"].split(".")[0]] += 1
        elif rec["k"] == "tenacity_wait":
            waits.append(rec)
        elif rec["k"] == "tenacity_gave_up":
            gave_up.append(rec)
    return {"faults": faults, "faults_by_op": faults_by_op, "botocore_retries": retries,
            "waits": waits, "gave_up": gave_up}


def wait_summary(waits: list[dict]) -> dict:
    """Per service: tenacity waits, their spread per attempt (jitter) and the growth of their
    bound with the attempt number (backoff)."""
    out = {}
    by_service: dict = collections.defaultdict(list)
    for w in waits:
        by_service[(w.get("op") or "?").split(".")[0]].append(w)
    for service, ws in sorted(by_service.items()):
        by_attempt = collections.defaultdict(list)
        for w in ws:
            by_attempt[w["attempt"]].append(w["wait"])
        out[service] = {
            "waits": len(ws),
            "median_s": round(statistics.median(w["wait"] for w in ws), 3),
            "max_s": round(max(w["wait"] for w in ws), 3),
            "by_attempt": {a: {"n": len(v), "max_s": round(max(v), 3), "distinct": len(set(v))}
                           for a, v in sorted(by_attempt.items())},
        }
    return out


def check_waits(waits: list[dict]) -> list[str]:
    """Each wait of tenacity's wait_random_exponential lies in [0, min(max, multiplier * 2**(n-1))]."""
    bad = []
    for w in waits:
        bound = min(w["max"], w["multiplier"] * 2 ** (w["attempt"] - 1))
        if not (0 <= w["wait"] <= bound + 1e-3):
            bad.append(f"{w}: outside [0, {bound}]")
    return bad


def log_lines(root: Path, patterns: tuple[str, ...]) -> collections.Counter:
    """Lines of the endpoint's logs (endpoint.log, pool.log) that match, by pattern."""
    out: collections.Counter = collections.Counter()
    for f in list(root.glob("**/endpoint.log")) + list(root.glob("**/pool.log")):
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            for p in patterns:
                if p in line:
                    out[p] += 1
    return out


def table(title: str, rows: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def kill_rows(chaos, home: Path) -> list[tuple[str, object]]:
    """The report's rows for the kills done and the worker deaths the pools logged."""
    deaths = log_lines(home, ("died (signal 9) running task", "idle worker"))
    return [("kills", f"{fmt_counter(chaos.counts())} (skipped: {chaos.skipped or 'none'})"),
            ("worker deaths seen by pools", f"{deaths['died (signal 9) running task']} running a task, "
                                            f"{deaths['idle worker']} idle")]


def execution_rows(runs: dict) -> list[tuple[str, object]]:
    """The report's rows for executions, from ``Executions.figures()``."""
    return [("executions started / finished", f"{runs['executions started']} / {runs['executions finished']}"),
            ("duplicate executions", f"{runs['duplicate executions (started)']} started, "
                                     f"{runs['duplicate executions (finished)']} finished "
                                     f"({runs['tasks run more than once']} tasks; most runs of one: "
                                     f"{runs['most runs of one task']})")]


def fmt_counter(c) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"
