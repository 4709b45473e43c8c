"""Quick figures for the embedded default beside ProcessPoolExecutor(2), measured in one run.

    python benchmarks/quick.py [--n 5000]

Uses a private FAAS_HOME (a temporary folder) and stops its endpoint at the end. The full
benchmark suite (cold starts, Lithops, Parsl, S3/SQS costs) is the benchmarks issue's.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import tempfile
import time


def inc(x):
    return x + 1


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(ex, n: int) -> dict:
    ex.submit(inc, 0).result()
    lat = []
    for i in range(200):
        t = time.perf_counter()
        ex.submit(inc, i).result()
        lat.append(time.perf_counter() - t)
    out = {"warm p50 (ms)": statistics.median(lat) * 1e3,
           "warm p95 (ms)": statistics.quantiles(lat, n=20)[18] * 1e3}
    out[f"{n} submits (s)"] = timed(lambda: [f.result() for f in [ex.submit(inc, i) for i in range(n)]])
    out[f"{n} map chunksize=100 (s)"] = timed(lambda: list(ex.map(inc, range(n), chunksize=100)))
    out["200 x 50 ms sleeps (s)"] = timed(lambda: list(ex.map(time.sleep, [0.05] * 200)))
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=5000)
    a = p.parse_args()
    home = tempfile.mkdtemp(prefix="faas-bench-")
    os.environ["FAAS_HOME"] = home
    import faas
    from faas.endpoint import control
    try:
        t = time.perf_counter()
        with faas.Executor() as ex:
            ex.submit(inc, 0).result()
            cold = time.perf_counter() - t
            ours = run(ex, a.n)
        with cf.ProcessPoolExecutor(2) as ppe:
            base = run(ppe, a.n)
    finally:
        control.stop("local")
    print(f"faas {faas.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"cold start to first result, no endpoint running: {cold:.2f} s")
    print(f"{'workload':32} {'faas':>10} {'PPE(2)':>10} {'ratio':>7}")
    for k in ours:
        print(f"{k:32} {ours[k]:10.3f} {base[k]:10.3f} {ours[k] / base[k]:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
