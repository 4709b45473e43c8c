"""Lithops with its localhost compute backend and localhost storage.

    ~/.cache/faas-bench/venvs/lithops/bin/python benchmarks/bench_lithops.py [--quick] [--out lithops.json]

Runs in its own virtual environment (run_all.py makes it: ``pip install lithops``), with a config
file written to a fresh temporary folder (``backend: localhost``, ``storage: localhost``,
``worker_processes: 2``, the runtime is this interpreter), and TMPDIR pointing there, so its
storage, job folders and logs stay in it. ``submit`` is ``call_async``; map is
``FunctionExecutor.map(chunksize=...)``; results are collected with ``get_result(...,
wait_dur_sec=0.05)`` (Lithops' default polls every 1 s, which alone would make each round trip
take about 1 s).

Lithops' localhost backend runs every call in a fresh Python process (two at a time), about
0.35 s each, so 5,000 calls take 12-15 minutes per workload. Unless ``--full``, the
submit and map workloads run ``--cap`` calls (default 200) once and are extrapolated linearly to
their full size (marked ``~`` in the table): the per-call cost is a process start, constant in
the number of calls. The 100,000 queued calls are not run (about 5 hours).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import _common as c


def inc(x):
    return x + 1


def sleep(s):
    time.sleep(s)      # Lithops inspects the function's signature: a builtin has none


WAIT = 0.05


class _Future:
    """A Lithops ResponseFuture whose result() polls every WAIT s."""

    def __init__(self, fexec, f):
        self.fexec, self.f = fexec, f

    def result(self):
        return self.fexec.get_result([self.f], wait_dur_sec=WAIT, show_progressbar=False)   # one value for one future


def _setup_dir() -> str:
    """A fresh folder for Lithops' config, storage and temp files; returns its config file."""
    d = os.environ.get("FAAS_BENCH_LITHOPS_DIR")
    if not d:
        d = tempfile.mkdtemp(prefix="lithops-bench-")
        os.environ["FAAS_BENCH_LITHOPS_DIR"] = d
    cfg = os.path.join(d, "lithops.yaml")
    if not os.path.exists(cfg):
        with open(cfg, "w") as f:
            f.write("lithops:\n  backend: localhost\n  storage: localhost\n  log_level: WARNING\n"
                    "  data_cleaner: false\n"
                    f"localhost:\n  worker_processes: 2\n  runtime: {sys.executable}\n")
    os.environ["TMPDIR"] = d                # Lithops' temp dir, storage and job folders
    os.environ["LITHOPS_CONFIG_FILE"] = cfg
    tempfile.tempdir = None
    return cfg


class Lithops(c.System):
    name = "Lithops localhost"
    supports_queued = False

    def __init__(self, sizes, args):
        super().__init__(sizes, args)
        try:
            from importlib.metadata import PackageNotFoundError, version
            self.version = version("lithops")
        except PackageNotFoundError:   # not installed: the run says so without a version
            pass
        self.full_ns = tuple(sizes.ns)
        self.cap = args.cap if not args.quick else min(args.cap, 40)
        if not args.full:
            sizes.ns = ()            # measured in after_repeats, capped
            sizes.repeats = 1
            sizes.warm_calls = min(sizes.warm_calls, 50)
        self.notes = [f"worker_processes=2; results fetched with wait_dur_sec={WAIT}"]
        if not args.full:
            self.notes.append(f"1 repeat; warm latency over {sizes.warm_calls} calls; submit/map measured "
                              f"on {self.cap} calls and extrapolated (~)")
        self.skip = {"queued": "each call is a fresh process, 2 at a time: 100,000 would take ~5 h"}
        self.estimated = {}

    def cold_child(self) -> dict:
        t = c.now()
        import lithops
        t_import = c.now() - t
        fexec = lithops.FunctionExecutor(config_file=os.environ["LITHOPS_CONFIG_FILE"])
        fexec.get_result([fexec.call_async(inc, (0,))], wait_dur_sec=WAIT, show_progressbar=False)
        out = {"first_result_s": c.now() - t, "import_s": t_import}
        fexec.clean()
        return out

    def start(self) -> None:
        import lithops
        self.fexec = lithops.FunctionExecutor(config_file=os.environ["LITHOPS_CONFIG_FILE"])

    def stop(self) -> None:
        try:
            self.fexec.clean()
        finally:
            if not self.args.keep:
                shutil.rmtree(os.environ["FAAS_BENCH_LITHOPS_DIR"], ignore_errors=True)

    def submit_inc(self, x):
        return _Future(self.fexec, self.fexec.call_async(inc, (x,)))

    def gather(self, futures):
        return self.fexec.get_result([f.f for f in futures], wait_dur_sec=WAIT, show_progressbar=False)

    def map_chunked(self, n, chunksize):
        fs = self.fexec.map(inc, list(range(n)), chunksize=chunksize)
        return self.fexec.get_result(fs, wait_dur_sec=WAIT, show_progressbar=False)

    def sleep_many(self, k, s):
        fs = self.fexec.map(sleep, [s] * k)
        self.fexec.get_result(fs, wait_dur_sec=WAIT, show_progressbar=False)

    def after_repeats(self, runs, add) -> None:
        if self.args.full:
            return
        per: dict[str, float] = {}          # seconds per call, from the largest size measured
        for n in sorted(self.full_ns):
            m = min(n, self.cap)
            for key, run in ((f"{n} submits (s)", lambda m: self.submit_many(m)),
                             (f"{n} map chunksize={self.sizes.chunksize} (s)",
                              lambda m: self.map_chunked(m, min(self.sizes.chunksize, m)))):
                if m == n or key.split(" ", 1)[1] not in per:
                    t = c.now()
                    out = run(m)
                    per[key.split(" ", 1)[1]] = (c.now() - t) / m
                    assert sum(out) == m * (m + 1) // 2
                add(key, per[key.split(" ", 1)[1]] * n)
                if m < n:
                    self.estimated[key] = f"{m} calls measured, x {n / m:g}"


def _args(p):
    p.add_argument("--full", action="store_true", help="run every size in full (hours), 3 repeats")
    p.add_argument("--cap", type=int, default=200, help="calls measured per submit/map workload")
    p.add_argument("--keep", action="store_true", help="keep Lithops' temporary folder")


if __name__ == "__main__":
    _setup_dir()
    sys.exit(c.main(Lithops, __doc__, _args))
