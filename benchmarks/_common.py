"""What every runner shares: the workload set, its sizes, timing, percentiles and the client's RSS.

Standard library only: the Lithops and Parsl runners import this from their own virtual
environments, where faas is not installed.

A runner subclasses :class:`System` (how *its* users submit one call, a batch, a chunked map)
and calls :func:`main`. It prints a table and writes its results as JSON (``--out``), which
``run_all.py`` combines into one table with the ratios to ProcessPoolExecutor(2).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


# -- the disk -----------------------------------------------------------------------------------
def settle_disk() -> None:
    """Flush the file system's pending work before a measured run. Measured on the 2-core VM
    (BENCHMARKS.md): after a run's store (tens of thousands of files) is deleted, file creation
    can cost 5-10x its CPU (35 -> 400-700 us a put); faas writes a file per result, so the next
    run's first burst measured the previous run's cleanup. ``sync`` helps, not always: that VM's
    ext4 has no journal, and its allocator skips (and checks) inodes deleted in the last minutes.
    For a before/after of CPU there, put the runs on tmpfs: ``TMPDIR=/dev/shm``."""
    os.sync()


# -- CPU from /proc ---------------------------------------------------------------------------
def proc_cpu(stat_path: str) -> tuple[str, float] | None:
    """``(name, utime + stime in seconds)`` from a ``/proc/PID/stat`` or ``/proc/PID/task/TID/stat``
    file (a process's: all its threads; a thread's: its own); None once it is gone. The name is
    what ``ps`` shows (a thread's own, where it set one: the pool names its loops)."""
    try:
        with open(stat_path) as f:
            text = f.read()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    fields = rest.split()
    return head.partition("(")[2], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- sizes --------------------------------------------------------------------------------------
@dataclass
class Sizes:
    repeats: int = 3             # each timed workload; the table shows the median
    warm_calls: int = 200        # sequential round trips for p50/p95/p99
    ns: tuple = (1000, 5000)     # no-op calls, by submit and by map with chunking
    chunksize: int = 100
    sleeps: int = 200            # calls that sleep ...
    sleep_s: float = 0.05        # ... this long, on 2 workers (floor: sleeps * sleep_s / 2)
    queued: int = 100_000        # submitted at once: client RSS and throughput sampled ...
    queued_every: int = 10_000   # ... every this many
    workers: int = 2

    @property
    def sleep_floor(self) -> float:
        return self.sleeps * self.sleep_s / self.workers


QUICK = Sizes(repeats=1, warm_calls=50, ns=(1000,), sleeps=40, queued=10_000, queued_every=2_000)


def sizes_from(args: argparse.Namespace) -> Sizes:
    s = Sizes(**asdict(QUICK)) if args.quick else Sizes()
    if args.repeats:
        s.repeats = args.repeats
    if args.queued is not None:
        s.queued = args.queued
    return s


# -- measuring ----------------------------------------------------------------------------------
def now() -> float:
    return time.perf_counter()


def rss_mb() -> float:
    """This process's resident set size now, in MiB (Linux: /proc/self/statm)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:   # not Linux: the peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear interpolation between closest ranks."""
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem, "os": platform.platform(),
            "python": platform.python_version(), "load": os.getloadavg()}


def run_child(argv: list[str], env: dict | None = None, timeout: float = 300) -> dict:
    """Run ``argv`` (a fresh process); return the JSON object on the last line of its stdout."""
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{argv} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# -- the workloads ------------------------------------------------------------------------------
def inc(x):
    return x + 1


class System:
    """One system under test. Subclasses set ``name`` and implement the hooks."""

    name = "?"
    version = "?"
    notes: list[str] = []
    #: workloads this system cannot run in a sensible time: {key: why}
    skip: dict[str, str] = {}
    #: figures extrapolated from a smaller run, not measured at full size: {key: how}
    estimated: dict[str, str] = {}

    def __init__(self, sizes: Sizes, args: argparse.Namespace):
        self.sizes, self.args = sizes, args

    # lifecycle, in the runner's own process
    def start(self) -> None: ...
    def stop(self) -> None: ...

    # one call of inc(x) / time.sleep(s): a future with .result()
    def submit_inc(self, x: int): raise NotImplementedError
    def submit_sleep(self, s: float): raise NotImplementedError

    def gather(self, futures: list) -> list:
        return [f.result() for f in futures]

    def submit_many(self, n: int) -> list:
        return self.gather([self.submit_inc(i) for i in range(n)])

    def map_chunked(self, n: int, chunksize: int) -> list:
        raise NotImplementedError

    def sleep_many(self, k: int, s: float) -> None:
        self.gather([self.submit_sleep(s) for _ in range(k)])

    # cold start: {label: argv-and-env runner} returning seconds; default: one kind, a fresh process
    def cold_kinds(self) -> dict[str, Callable[[], dict]]:
        return {"cold first result (s)": lambda: run_child([sys.executable, self.script(), "--cold-child"])}

    def cold_child(self) -> dict:
        """In a fresh process: import the system, make its executor, first result. Seconds."""
        raise NotImplementedError

    def script(self) -> str:
        return os.path.abspath(sys.modules["__main__"].__file__)

    # n queued calls; False if this system cannot take them
    supports_queued = True

    def after_repeats(self, runs: dict, add: Callable[[str, float], None]) -> None:
        """After the timed repeats, before the queued calls: derived figures, if any."""


class ExecutorSystem(System):
    """A system that is a ``concurrent.futures.Executor`` in ``self.ex`` (set by ``start``)."""

    ex: Any = None

    def stop(self) -> None:
        self.ex.shutdown()

    def submit_inc(self, x):
        return self.ex.submit(inc, x)

    def submit_sleep(self, s):
        return self.ex.submit(time.sleep, s)

    def map_chunked(self, n, chunksize):
        return list(self.ex.map(inc, range(n), chunksize=chunksize))


def _check(out: list, n: int, what: str) -> None:
    if len(out) != n or sum(out) != n * (n + 1) // 2:
        raise AssertionError(f"{what}: wrong results ({len(out)} values, sum {sum(out)})")


def measure_warm(sys_: System, calls: int) -> dict:
    lat = []
    for i in range(calls):
        t = now()
        r = sys_.submit_inc(i).result()
        lat.append(now() - t)
        assert r == i + 1
    return {"warm p50 (ms)": pct(lat, 50) * 1e3, "warm p95 (ms)": pct(lat, 95) * 1e3,
            "warm p99 (ms)": pct(lat, 99) * 1e3}


def measure_queued(sys_: System, n: int, every: int) -> dict:
    """Submit ``n`` no-ops at once (keeping every future, as a user does); sample the client's
    RSS and the elapsed time every ``every`` submitted and every ``every`` completed."""
    gc.collect()
    base = rss_mb()
    done = [0]
    lock = threading.Lock()
    completed: list[dict] = []
    t0 = now()

    def on_done(_f) -> None:
        with lock:
            done[0] += 1
            d = done[0]
        if d % every == 0:
            completed.append({"n": d, "t": now() - t0, "rss_mb": rss_mb()})

    submitted: list[dict] = []
    fs = []
    for i in range(n):
        f = sys_.submit_inc(i)
        f.add_done_callback(on_done)
        fs.append(f)
        if (i + 1) % every == 0:
            submitted.append({"n": i + 1, "t": now() - t0, "rss_mb": rss_mb()})
    t_sub = now() - t0
    out = [f.result() for f in fs]
    t_all = now() - t0
    _check(out, n, "queued")
    deadline = time.monotonic() + 10
    while len(completed) < n // every and time.monotonic() < deadline:   # last callbacks
        time.sleep(0.01)
    after = rss_mb()
    del fs, out
    gc.collect()
    released = rss_mb()

    def blocks(samples: list[dict]) -> list[dict]:
        rows, prev_t, prev_rss = [], 0.0, base
        for s in samples:
            rows.append({**s, "rate_per_s": every / max(s["t"] - prev_t, 1e-9),
                         "rss_growth_mb": s["rss_mb"] - prev_rss})
            prev_t, prev_rss = s["t"], s["rss_mb"]
        return rows

    return {"n": n, "every": every, "rss_before_mb": base, "rss_after_mb": after,
            "rss_after_release_mb": released, "submit_s": t_sub, "total_s": t_all,
            "throughput_per_s": n / t_all, "submitted": blocks(submitted),
            "completed": blocks(sorted(completed, key=lambda s: s["n"]))}


def flatness(rows: list[dict]) -> dict:
    """After the first block (warm-up): the spread of throughput and RSS growth per block."""
    body = rows[1:] or rows
    rates = [r["rate_per_s"] for r in body]
    growth = [r["rss_growth_mb"] for r in body]
    return {"rate_min": min(rates), "rate_max": max(rates), "rate_last_over_first": rates[-1] / rates[0],
            "growth_median_mb": statistics.median(growth), "growth_max_mb": max(growth)}


def run_workloads(sys_: System) -> dict:
    s = sys_.sizes
    runs: dict[str, list[float]] = {}
    extra: dict[str, Any] = {}

    def add(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)
        log(f"  {sys_.name}: {key} = {value:.4g}")

    if "cold" not in sys_.skip:
        for label, fn in sys_.cold_kinds().items():
            for _ in range(s.repeats):
                r = fn()
                add(label, r["first_result_s"])
                if "import_s" in r:
                    add(label.replace("first result", "import") if "first result" in label
                        else label + " import", r["import_s"])
    sys_.start()
    try:
        sys_.submit_inc(0).result()   # warm: function shipped, workers up
        for rep in range(s.repeats):
            log(f"{sys_.name}: repeat {rep + 1}/{s.repeats}")
            if "warm" not in sys_.skip:
                for k, v in measure_warm(sys_, s.warm_calls).items():
                    add(k, v)
            for n in s.ns:
                key = f"{n} submits (s)"
                if key not in sys_.skip:
                    t = now()
                    _check(sys_.submit_many(n), n, key)
                    add(key, now() - t)
                key = f"{n} map chunksize={s.chunksize} (s)"
                if key not in sys_.skip:
                    t = now()
                    _check(sys_.map_chunked(n, s.chunksize), n, key)
                    add(key, now() - t)
            key = f"{s.sleeps} x {int(s.sleep_s * 1000)} ms sleeps (s)"
            if key not in sys_.skip:
                t = now()
                sys_.sleep_many(s.sleeps, s.sleep_s)
                add(key, now() - t)
        sys_.after_repeats(runs, add)
        if s.queued and sys_.supports_queued and "queued" not in sys_.skip:
            log(f"{sys_.name}: {s.queued} queued calls")
            q = measure_queued(sys_, s.queued, s.queued_every)
            q["flat_submitted"] = flatness(q["submitted"])
            q["flat_completed"] = flatness(q["completed"])
            extra["queued"] = q
    finally:
        sys_.stop()
    return {"system": sys_.name, "version": sys_.version, "sizes": asdict(s) | {"sleep_floor": s.sleep_floor},
            "median": {k: statistics.median(v) for k, v in runs.items()}, "runs": runs,
            "skipped": dict(sys_.skip), "estimated": dict(sys_.estimated), "notes": list(sys_.notes),
            "machine": machine(), **extra}


# -- printing -----------------------------------------------------------------------------------
def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    if v >= 0.01:
        return f"{v:.3f}"
    return f"{v:.4f}"


def print_queued(name: str, q: dict, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"\n{name}: {q['n']:,} queued no-op calls (all submitted at once, futures kept), "
      f"sampled every {q['every']:,}")
    p(f"  client RSS before {q['rss_before_mb']:.0f} MiB, after all results {q['rss_after_mb']:.0f} MiB, "
      f"after dropping the futures {q['rss_after_release_mb']:.0f} MiB; submit loop {q['submit_s']:.2f} s, "
      f"all results {q['total_s']:.2f} s ({q['throughput_per_s']:,.0f} calls/s)")
    p(f"  {'calls':>8} | {'submitted: t (s)':>16} {'calls/s':>9} {'RSS MiB':>8} {'+MiB':>6} | "
      f"{'completed: t (s)':>16} {'calls/s':>9} {'RSS MiB':>8} {'+MiB':>6}")
    comp = {r["n"]: r for r in q["completed"]}
    for r in q["submitted"]:
        c = comp.get(r["n"])
        right = (f"{c['t']:16.2f} {c['rate_per_s']:9,.0f} {c['rss_mb']:8.0f} {c['rss_growth_mb']:+6.1f}"
                 if c else f"{'':16} {'':9} {'':8} {'':6}")
        p(f"  {r['n']:8,} | {r['t']:16.2f} {r['rate_per_s']:9,.0f} {r['rss_mb']:8.0f} "
          f"{r['rss_growth_mb']:+6.1f} | {right}")
    for label in ("submitted", "completed"):
        f = q[f"flat_{label}"]
        p(f"  {label} (after the first block): {fmt(f['rate_min'])}-{fmt(f['rate_max'])} calls/s, "
          f"last/first {f['rate_last_over_first']:.2f}; RSS growth per block median "
          f"{f['growth_median_mb']:+.1f} MiB, max {f['growth_max_mb']:+.1f} MiB")


def print_single(res: dict, base: dict | None = None) -> None:
    print(f"\n{res['system']} {res['version']}: median of {res['sizes']['repeats']} repeat(s)"
          + (f", ratio to {base['system']}" if base else ""))
    for k, v in res["median"].items():
        b = base["median"].get(k) if base else None
        ratio = f"{v / b:8.1f}x" if b else ""
        est = res.get("estimated", {}).get(k)
        print(f"  {k:36} {('~' if est else '') + fmt(v):>10} {ratio}" + (f"  ({est})" if est else ""))
    for k, why in res["skipped"].items():
        print(f"  {k:36} {'n/a':>10}  ({why})")
    if "queued" in res:
        print_queued(res["system"], res["queued"])


# -- the runner's command line ------------------------------------------------------------------
def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repeat (CI)")
    p.add_argument("--repeats", type=int, help="repeats of each workload (default 3; --quick 1)")
    p.add_argument("--queued", type=int, help="queued calls (default 100,000; --quick 10,000; 0: skip)")
    p.add_argument("--out", help="write the results here as JSON")
    p.add_argument("--baseline", help="a PPE results JSON: print ratios to it")
    p.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    return p


def main(cls: type[System], doc: str, extra_args: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    p = parser(doc)
    if extra_args:
        extra_args(p)
    args = p.parse_args()
    sizes = sizes_from(args)
    sys_ = cls(sizes, args)
    if args.cold_child:
        print(json.dumps(sys_.cold_child()), flush=True)
        return 0
    res = run_workloads(sys_)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    base = None
    if args.baseline:
        with open(args.baseline) as f:
            base = json.load(f)
    print_single(res, base)
    return 0
