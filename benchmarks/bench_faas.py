"""faas on the embedded default (local store, local queue, the ``local`` endpoint started on demand).

    python benchmarks/bench_faas.py [--quick] [--out faas.json] [--baseline ppe.json]

Every FAAS_HOME it uses is a fresh temporary folder, and it stops every endpoint it started.
Cold start is measured twice, each in a fresh client process, timed from ``import faas`` to the
first result: (a) with no endpoint running (the client configures and starts it: daemon, block,
worker pool, workers) and (b) with the endpoint already running.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

import _common as c


def inc(x):
    return x + 1


class Faas(c.ExecutorSystem):
    name = "faas (embedded)"

    def __init__(self, sizes, args):
        super().__init__(sizes, args)
        self.homes: list[str] = []
        if not args.cold_child:
            atexit.register(self._cleanup)
            import faas
            self.version = faas.__version__
        self.notes = ["cold first result: a fresh client process with no endpoint running (it configures "
                      "and starts one: daemon, block, pool, 2 workers), timed from `import faas`; "
                      "'endpoint up': the same with the endpoint already running"]

    # -- private homes ---------------------------------------------------------------------
    def _home(self) -> str:
        h = tempfile.mkdtemp(prefix="faas-bench-")
        self.homes.append(h)
        return h

    def _stop(self, home: str) -> None:
        from pathlib import Path

        from faas.endpoint import control
        try:
            control.stop("local", Path(home))
        except Exception as e:  # noqa: BLE001 - best effort at the end of a run: logged
            c.log(f"stopping the endpoint in {home}: {e}")

    def _cleanup(self) -> None:
        for h in self.homes:
            self._stop(h)
            if not self.args.keep:
                shutil.rmtree(h, ignore_errors=True)
        self.homes.clear()

    def _child(self, home: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
        env["FAAS_HOME"] = home
        return c.run_child([sys.executable, self.script(), "--cold-child"], env=env, timeout=120)

    def cold_kinds(self):
        warm_home: list[str] = []

        def no_endpoint() -> dict:
            home = self._home()
            try:
                return self._child(home)
            finally:
                self._stop(home)

        def endpoint_running() -> dict:
            if not warm_home:
                warm_home.append(self._home())
                self._child(warm_home[0])       # starts the endpoint (not timed)
            return self._child(warm_home[0])

        return {"cold first result (s)": no_endpoint,
                "cold first result, endpoint up (s)": endpoint_running}

    def cold_child(self) -> dict:
        t = c.now()
        import faas
        Executor = faas.Executor      # noqa: N806 - the lazy import of the executor (boto3, dill)
        t_import = c.now() - t
        ex = Executor()
        ex.submit(inc, 0).result()
        out = {"first_result_s": c.now() - t, "import_s": t_import}
        ex.shutdown()
        return out

    # -- the warm workloads ------------------------------------------------------------------
    def start(self) -> None:
        os.environ["FAAS_HOME"] = self._home()
        import faas
        self.ex = faas.Executor()

    def stop(self) -> None:
        super().stop()
        self._cleanup()


def _args(p):
    p.add_argument("--keep", action="store_true", help="keep the temporary FAAS_HOMEs (logs)")


if __name__ == "__main__":
    for k in [k for k in os.environ if k.startswith("FAAS_") and k != "FAAS_HOME"]:
        del os.environ[k]          # the embedded default: no outside configuration leaks in
    sys.exit(c.main(Faas, __doc__, _args))
