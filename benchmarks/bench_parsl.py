"""Parsl's HighThroughputExecutor with a LocalProvider: one block of 2 workers on this machine.

    ~/.cache/faas-bench/venvs/parsl/bin/python benchmarks/bench_parsl.py [--quick] [--out parsl.json]

Runs in its own virtual environment (run_all.py makes it: ``pip install parsl``), with that
environment's bin/ on PATH (HTEX starts ``interchange.py`` and ``process_worker_pool.py`` from it).
Apps are ``@python_app``s; a "map with chunking" is what a Parsl user writes: one app per chunk of
``chunksize`` calls. Cold start: a fresh process, from ``import parsl`` to the first result
(``parsl.load`` starts the interchange and the block).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

import _common as c


def _config(run_dir: str, workers: int):
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider
    return Config(
        executors=[HighThroughputExecutor(
            label="htex", max_workers_per_node=workers, cores_per_worker=1, address="127.0.0.1",
            provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1))],
        run_dir=run_dir, strategy="none", usage_tracking=0)


def _apps():
    import parsl

    @parsl.python_app
    def inc(x):
        return x + 1

    @parsl.python_app
    def inc_chunk(xs):
        return [x + 1 for x in xs]

    @parsl.python_app
    def sleep(s):
        import time
        time.sleep(s)

    return inc, inc_chunk, sleep


class Parsl(c.System):
    name = "Parsl HTEX"

    def __init__(self, sizes, args):
        super().__init__(sizes, args)
        try:
            from importlib.metadata import PackageNotFoundError, version
            self.version = version("parsl")
        except PackageNotFoundError:   # not installed: the run says so without a version
            pass
        self.notes = ["HighThroughputExecutor(max_workers_per_node=2), LocalProvider(init_blocks=1, "
                      "max_blocks=1), strategy none; map = one @python_app per chunk"]

    def cold_child(self) -> dict:
        t = c.now()
        import parsl
        t_import = c.now() - t
        run_dir = tempfile.mkdtemp(prefix="parsl-bench-")
        dfk = parsl.load(_config(run_dir, self.sizes.workers))
        inc, _, _ = _apps()
        inc(0).result()
        out = {"first_result_s": c.now() - t, "import_s": t_import}
        dfk.cleanup()
        shutil.rmtree(run_dir, ignore_errors=True)
        return out

    def start(self) -> None:
        import parsl
        self.run_dir = tempfile.mkdtemp(prefix="parsl-bench-")
        self.dfk = parsl.load(_config(self.run_dir, self.sizes.workers))
        self.inc, self.inc_chunk, self.sleep = _apps()

    def stop(self) -> None:
        self.dfk.cleanup()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def submit_inc(self, x):
        return self.inc(x)

    def submit_sleep(self, s):
        return self.sleep(s)

    def map_chunked(self, n, chunksize):
        xs = list(range(n))
        fs = [self.inc_chunk(xs[i:i + chunksize]) for i in range(0, n, chunksize)]
        return [y for f in fs for y in f.result()]


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(sys.executable))
    if here not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")
    sys.exit(c.main(Parsl, __doc__))
