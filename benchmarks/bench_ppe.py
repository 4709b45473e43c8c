"""concurrent.futures.ProcessPoolExecutor(2): the floor on a 2-core machine.

    python benchmarks/bench_ppe.py [--quick] [--out ppe.json]

The same workloads as every runner (see _common.py); the other tables give their ratios to this one.
"""
from __future__ import annotations

import concurrent.futures as cf
import sys

import _common as c


def inc(x):
    return x + 1


class PPE(c.ExecutorSystem):
    name = "ProcessPoolExecutor(2)"
    version = f"Python {sys.version.split()[0]}"

    def start(self) -> None:
        self.ex = cf.ProcessPoolExecutor(self.sizes.workers)

    def cold_child(self) -> dict:
        t = c.now()
        import concurrent.futures as cf_
        ex = cf_.ProcessPoolExecutor(self.sizes.workers)
        ex.submit(inc, 0).result()
        out = {"first_result_s": c.now() - t}
        ex.shutdown()
        return out


if __name__ == "__main__":
    sys.exit(c.main(PPE, __doc__))
