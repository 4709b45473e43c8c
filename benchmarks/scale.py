"""Does a node's throughput grow with its cores? faas's embedded default with W workers beside
ProcessPoolExecutor(W), one run, each system in a fresh process; then K client processes at once
against one endpoint, with the CPU the pool's supervising process spends per task (issue 18).

    python benchmarks/scale.py [--workers 2 4 8 16] [--pools 1 2] [--clients 1 2 4 8] [--scale 1.0]
                               [--out scale.json]

Full size (``--scale 1``): warm p50 over 200 round trips; 20,000 no-op submits, end to end;
map(100,000 no-ops, chunksize=100); 400 x 50 ms sleeps; 8,000 x 2 ms busy tasks; K x 5,000
no-ops. ``--scale 0.1`` runs a tenth of each (a quick look; the smoke test runs it tinier).
Worker counts above this machine's cores are skipped (they would measure the scheduler).

``--pools``: faas runs once for each ``engine.pools_per_node`` given (default 1), so one run
compares one pool per node with several beside the same ProcessPoolExecutor.

The pool's CPU comes from ``/proc/<pid>/stat`` (utime + stime of the pool processes, all their
threads) before and after each workload: "pool ms/task" is that CPU over the workload's tasks,
"pool share" that CPU over the wall time, and "busiest pool" the share of the busiest pool
process (1.0 = one core always busy: the ceiling of one pool).
Every FAAS_HOME is a fresh temporary folder; every endpoint started is stopped.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import proc_cpu, settle_disk

FULL = {"warm": 200, "submits": 20_000, "map": 100_000, "sleeps": 400, "busy": 8_000, "client_n": 5_000}
CHUNKSIZE = 100
SLEEP_S, BUSY_S = 0.05, 0.002


def inc(x):
    return x + 1


def busy(s):
    end = time.perf_counter() + s
    while time.perf_counter() < end:
        pass
    return s


def sizes(scale: float) -> dict:
    return {k: max(4 if k != "warm" else 10, int(v * scale)) for k, v in FULL.items()}


# -- the pool process's CPU ------------------------------------------------------------------
def pool_pids(home: str) -> list[int]:
    pids = []
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "faas.endpoint.pool" in cmd and home in cmd:
            pids.append(int(p.split("/")[2]))
    return pids


def _wait_for_pools(home: str, pools: int) -> list[int]:
    """The pool processes of ``home``'s endpoint once all ``pools`` (and their node process) run."""
    want = pools + (pools > 1)
    deadline = time.monotonic() + 60
    while len(pids := pool_pids(home)) < want and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """utime + stime of each of these processes (every thread), in seconds."""
    return {pid: got[1] for pid in pids if (got := proc_cpu(f"/proc/{pid}/stat"))}


def cpu_s(pids: list[int]) -> float:
    return sum(cpu_by_pid(pids).values())


# -- one system, in its own process ------------------------------------------------------------
def workloads(ex, sz: dict, pool=lambda: 0.0) -> dict:
    """Each workload's wall seconds (and, for faas, the pool's CPU seconds)."""
    out = {}

    def timed(name: str, tasks: int, fn) -> None:
        c0, t0 = pool(), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        out[name] = {"s": wall, "tasks": tasks, "pool_cpu_s": pool() - c0}

    ex.submit(inc, 0).result()
    lat = []
    c0 = pool()
    for i in range(sz["warm"]):
        t = time.perf_counter()
        assert ex.submit(inc, i).result() == i + 1
        lat.append(time.perf_counter() - t)
    out["warm"] = {"s": statistics.median(lat), "tasks": sz["warm"], "pool_cpu_s": pool() - c0}

    def submits():
        n = sz["submits"]
        fs = [ex.submit(inc, i) for i in range(n)]
        assert sum(f.result() for f in fs) == n * (n + 1) // 2

    def mapped():
        n = sz["map"]
        assert sum(ex.map(inc, range(n), chunksize=CHUNKSIZE)) == n * (n + 1) // 2

    def sleeps():
        fs = [ex.submit(time.sleep, SLEEP_S) for _ in range(sz["sleeps"])]
        [f.result() for f in fs]

    def busies():
        fs = [ex.submit(busy, BUSY_S) for _ in range(sz["busy"])]
        [f.result() for f in fs]

    timed("submits", sz["submits"], submits)
    timed("map", sz["map"], mapped)
    timed("sleeps", sz["sleeps"], sleeps)
    timed("busy", sz["busy"], busies)
    return out


def write_config(home: str, workers: int, pools: int = 1) -> None:
    """The embedded default's config (as the client writes it), with ``workers`` workers in
    ``pools`` pools."""
    from pathlib import Path

    from faas.endpoint import config as ep_config
    from faas.endpoint import control
    d = ep_config.endpoint_dir("local", Path(home))
    cfg = control.default_local_config(Path(home))
    cfg.engine.max_workers_per_node = workers
    cfg.engine.pools_per_node = pools
    control.ensure_key_file(d)
    ep_config.write(d / "config.yaml", cfg)


def child(kind: str, workers: int, sz: dict, clients: list[int], pools: int = 1) -> dict:
    if kind == "ppe":
        with cf.ProcessPoolExecutor(workers) as ex:
            return {"workloads": workloads(ex, sz)}
    home = os.environ["FAAS_HOME"]
    write_config(home, workers, pools)
    import faas
    from faas.endpoint import control
    try:
        with faas.Executor() as ex:
            ex.submit(inc, 0).result()
            # every pool's process (with several, their node process too: it sleeps)
            pids = _wait_for_pools(home, pools)
            res = {"workloads": workloads(ex, sz, lambda: cpu_s(pids)), "pool_pids": pids}
            res["clients"] = [k_clients(k, sz["client_n"], pids) for k in clients]
        return res
    finally:
        control.stop("local")


def k_clients(k: int, n: int, pids: list[int]) -> dict:
    """``k`` client processes, ``n`` no-op submits each, released at once against this endpoint."""
    procs = [subprocess.Popen([sys.executable, __file__, "--client", str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(k)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", "a client did not start"
    c0, t0 = cpu_by_pid(pids), time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.stdout.readline().strip() == "done", "a client failed"
    wall = time.perf_counter() - t0
    by_pid = {pid: c - c0.get(pid, 0.0) for pid, c in cpu_by_pid(pids).items()}
    cpu = sum(by_pid.values())
    for p in procs:
        p.stdin.close()
        p.wait(60)
    return {"k": k, "n": n, "s": wall, "tasks_per_s": k * n / wall, "pool_cpu_s": cpu,
            "pool_share": cpu / wall, "busiest_pool_share": max(by_pid.values(), default=0.0) / wall,
            "pool_ms_per_task": cpu / (k * n) * 1e3}


def client(n: int) -> int:
    import faas
    with faas.Executor() as ex:
        ex.submit(inc, 0).result()
        print("ready", flush=True)
        sys.stdin.readline()
        fs = [ex.submit(inc, i) for i in range(n)]
        assert sum(f.result() for f in fs) == n * (n + 1) // 2
        print("done", flush=True)
    return 0


def run_child(kind: str, workers: int, a, pools: int = 1) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    home = env["FAAS_HOME"] = tempfile.mkdtemp(prefix="faas-scale-")
    settle_disk()   # nor pay for what ran before this script
    try:
        p = subprocess.run([sys.executable, __file__, "--child", kind, "--workers", str(workers),
                            "--scale", str(a.scale), "--pools", str(pools), "--clients", *map(str, a.clients)],
                           env=env, capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"{kind} with {workers} workers exited {p.returncode}:\n{p.stderr[-3000:]}")
        return json.loads(p.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(home, ignore_errors=True)
        settle_disk()   # the next run must not pay for this cleanup


# -- the tables ------------------------------------------------------------------------------
def _pools(n: int) -> str:
    return f"{n} pool{'s' * (n > 1)}"


def table(workers: int, sz: dict, ppe: dict, faas_by_pools: dict[int, dict]) -> str:
    rows = [("warm", "warm p50 round trip", "ms"),
            ("submits", f"{sz['submits']:,} no-op submits, end to end", "s"),
            ("map", f"map({sz['map']:,} no-ops, chunksize={CHUNKSIZE})", "s"),
            ("sleeps", f"{sz['sleeps']} x 50 ms sleeps (floor {sz['sleeps'] * SLEEP_S / workers:.2f} s)", "s"),
            ("busy", f"{sz['busy']:,} x 2 ms busy tasks (floor {sz['busy'] * BUSY_S / workers:.2f} s)", "s")]
    pools = sorted(faas_by_pools)
    name = {n: "faas" if pools == [1] else f"faas, {_pools(n)}" for n in pools}
    out = [f"\n### {workers} workers: ProcessPoolExecutor({workers}) and faas embedded, one run\n",
           f"| workload | PPE({workers}) | " + " | ".join(
               f"{name[n]} | / PPE | pool ms/task" for n in pools) + " |",
           "|---|---|" + "---|---|---|" * len(pools)]
    for key, label, unit in rows:
        p = ppe["workloads"][key]
        mult = 1e3 if unit == "ms" else 1
        cells = []
        for n in pools:
            f = faas_by_pools[n]["workloads"][key]
            cells.append(f"{f['s'] * mult:.2f} {unit} | {f['s'] / p['s']:.2f}x | "
                         f"{f['pool_cpu_s'] / f['tasks'] * 1e3:.3f}")
        out.append(f"| {label} | {p['s'] * mult:.2f} {unit} | " + " | ".join(cells) + " |")
    for n in pools:
        fa = faas_by_pools[n]
        if fa.get("clients"):
            out += [f"\nK clients at once, {sz['client_n']:,} no-ops each, one endpoint ({workers} "
                    f"workers, {_pools(n)}):\n",
                    "| K | tasks/s | pools' CPU share (cores) | busiest pool | pool ms/task |",
                    "|---|---|---|---|---|"]
            for c in fa["clients"]:
                out.append(f"| {c['k']} | {c['tasks_per_s']:,.0f} | {c['pool_share']:.2f} | "
                           f"{c['busiest_pool_share']:.2f} | {c['pool_ms_per_task']:.3f} |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--pools", type=int, nargs="+", default=[1], help="engine.pools_per_node values to run")
    p.add_argument("--clients", type=int, nargs="*", default=[1, 2, 4, 8])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes (0.1: quick)")
    p.add_argument("--out", help="write every figure here as JSON")
    p.add_argument("--child", choices=("ppe", "faas"), help=argparse.SUPPRESS)
    p.add_argument("--client", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.client is not None:
        return client(a.client)
    sz = sizes(a.scale)
    if a.child:
        clients = a.clients if a.child == "faas" else []
        print(json.dumps(child(a.child, a.workers[0], sz, clients, a.pools[0])))
        return 0
    if min(a.pools) < 1:
        p.error("--pools: each value is a number of pools per node, 1 or more")
    cores = os.cpu_count() or 1
    ws = [w for w in a.workers if w <= cores]
    if not [w for w in ws if w >= min(a.pools)]:
        p.error(f"no run left: --workers {ws} on {cores} cores, each fewer than the smallest of "
                f"--pools {a.pools} (a pool needs a worker)")
    skipped = [w for w in a.workers if w > cores]
    print(f"machine: {cores} cores, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}; "
          f"scale {a.scale}" + (f"; skipped {skipped} workers (more than the cores)" if skipped else ""))
    results = {}
    for w in ws:
        if w < min(a.pools):
            print(f"skipped {w} workers: fewer than every --pools value", flush=True)
            continue
        ppe = run_child("ppe", w, a)
        by_pools = {n: run_child("faas", w, a, n) for n in a.pools if n <= w}
        results[w] = {"ppe": ppe, "faas": by_pools[min(by_pools)], "faas_by_pools": by_pools}
        print(table(w, sz, ppe, by_pools), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"sizes": sz, "cores": cores, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
