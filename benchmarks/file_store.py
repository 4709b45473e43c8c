"""FileStore beside plain file calls on the same disk, measured in one run.

    python benchmarks/file_store.py [--n 2000] [--size 1024] [--dir /tmp]

The baseline is what a store on local disk cannot do with less: ``open/write`` a temporary
file then ``os.replace`` it (put), ``open/read`` (get), ``os.stat`` (exists). FileStore adds the
link-free walk, mode and owner checks (faas/safe_open.py); the ratios say what that costs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from faas.store.file import FileStore  # noqa: E402


def timings_us(fn, n: int) -> dict:
    """Per-call times in microseconds: mean, median and 99th percentile."""
    clock, times = time.perf_counter, []
    for i in range(n):
        t = clock()
        fn(i)
        times.append(clock() - t)
    times.sort()
    return {"mean": sum(times) / n * 1e6, "p50": times[n // 2] * 1e6, "p99": times[int(n * 0.99)] * 1e6}


def plain_put(root: str, key: str, data: bytes) -> None:
    path = os.path.join(root, key)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def plain_get(root: str, key: str) -> bytes:
    with open(os.path.join(root, key), "rb") as f:
        return f.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="calls of each kind")
    ap.add_argument("--size", type=int, default=1024, help="object size in bytes")
    ap.add_argument("--dir", default=None, help="where the stores live (default: a temporary folder)")
    a = ap.parse_args()
    data = os.urandom(a.size)
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        store = FileStore(Path(tmp, "store").as_uri())
        plain = Path(tmp, "plain", "results")
        plain.mkdir(parents=True)
        store.put("warm/up", data)
        root = str(plain.parent)
        rows = {
            "put new key": (timings_us(lambda i: store.put(f"results/{i:08d}", data), a.n),
                            timings_us(lambda i: plain_put(root, f"results/{i:08d}", data), a.n)),
            "put overwrite": (timings_us(lambda i: store.put("results/same", data), a.n),
                              timings_us(lambda i: plain_put(root, "results/same", data), a.n)),
            "get": (timings_us(lambda i: store.get(f"results/{i:08d}"), a.n),
                    timings_us(lambda i: plain_get(root, f"results/{i:08d}"), a.n)),
            "exists": (timings_us(lambda i: store.exists(f"results/{i:08d}"), a.n),
                       timings_us(lambda i: os.path.exists(os.path.join(root, f"results/{i:08d}")), a.n)),
        }
    print(f"FileStore vs plain file calls, {a.size} B objects, {a.n} calls each (us), one run")
    print("| call | FileStore p50 | plain p50 | ratio | FileStore p99 | plain p99 |")
    print("|---|---|---|---|---|---|")
    for name, (fs, pl) in rows.items():
        print(f"| {name} | {fs['p50']:.1f} | {pl['p50']:.1f} | {fs['p50'] / pl['p50']:.2f}x "
              f"| {fs['p99']:.1f} | {pl['p99']:.1f} |")


if __name__ == "__main__":
    main()
