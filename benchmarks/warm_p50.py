"""Warm round trip of the embedded default, alone: after 50 warm-up calls, ``--rounds`` x
``--n`` submit-then-result round trips of a no-op, the p50 of each round (issue 18's goal: <= 1
ms). Alternate it with a copy of another tree (``PYTHONPATH=<copy> python <copy>/benchmarks/
warm_p50.py``) for a before/after that sees the same machine load.

    python benchmarks/warm_p50.py [--n 200] [--rounds 3]

Uses a private FAAS_HOME and stops its endpoint at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from _common import settle_disk


def inc(x):
    return x + 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    for k in [k for k in os.environ if k.startswith("FAAS_")]:
        del os.environ[k]
    home = os.environ["FAAS_HOME"] = tempfile.mkdtemp(prefix="faas-warm-")
    import faas
    from faas.endpoint import control
    try:
        with faas.Executor() as ex:
            for _ in range(50):
                ex.submit(inc, 0).result()
            p50s = []
            for _ in range(a.rounds):
                lat = []
                for i in range(a.n):
                    t = time.perf_counter()
                    assert ex.submit(inc, i).result() == i + 1
                    lat.append(time.perf_counter() - t)
                p50s.append(statistics.median(lat) * 1e3)
        print(f"{os.path.dirname(faas.__file__)}: warm p50 ms " + " / ".join(f"{x:.2f}" for x in p50s)
              + f" (load {os.getloadavg()[0]:.2f})")
    finally:
        control.stop("local")
        shutil.rmtree(home, ignore_errors=True)
        settle_disk()   # the next run must not pay for this cleanup
    return 0


if __name__ == "__main__":
    sys.exit(main())
