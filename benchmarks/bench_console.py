"""How long each console page takes with 10,000 tasks in the journal and 1,000 flow runs.

    python benchmarks/bench_console.py [--tasks 10000] [--runs 1000] [--store URL] [--repeats 5]

Fills a fresh store (a temporary file:// store unless --store) the way endpoints and the flows
runner do (Journal objects of a few hundred tasks each, results for a sample of tasks, runs
driven to the end by a real Runner in this process), then times every page and a few API
calls through the ASGI app in this process (no network): the index build the console does at
startup, then each page's first load and the median of the next ``--repeats`` loads.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def work(x):
    return x * 2


def other(x):
    return x + 1


def fill_tasks(store, n: int, seed: int = 1) -> dict:
    """Tasks of the user the console runs as (this FAAS_HOME's result key), as pools write them."""
    import faas
    from faas import serialize
    from faas.endpoint import registry
    from faas.endpoint.journal import Journal
    from faas.messages import function_key, result_key
    rnd = random.Random(seed)
    me = faas.client(store=store.url, autostart=False)
    fids = []
    for fn in (work, other):
        fid, data = serialize.function_bytes(fn)
        store.put(function_key(fid, me.client_id), serialize.seal_function(data, fid, me.function_secret(fid)))
        fids.append(fid)
    endpoints = ["hpc-a", "hpc-b", "cloud"]
    for name in endpoints:
        registry.publish(store, {"name": name, "status": "running", "queue": f"local:///nonexistent/{name}",
                                 "provider": "slurm", "max_blocks": 8, "nodes_per_block": 2,
                                 "max_workers_per_node": 16, "blocks": 3})
    now = time.time()
    journals = {(e, b): Journal(store, e, f"block-{b}", f"node{b}", flush_every=1e9, max_batch=10**9)
                for e in endpoints for b in range(3)}
    sample = []
    for i in range(n):
        e, b = rnd.choice(endpoints), rnd.randrange(3)
        finished = now - rnd.random() * 6 * 3600      # the last 6 hours
        status = "failed" if rnd.random() < 0.03 else "success"
        tid = str(uuid.uuid4())
        journals[(e, b)].record(tid, rnd.choice(fids), n=1, sent=finished - 0.5, started=finished - 0.3,
                                finished=finished, status=status,
                                error="ValueError: x" if status == "failed" else None)
        if i % 100 == 0:
            header = {"task_id": tid, "started": finished - 0.3, "finished": finished, "endpoint": e}
            store.put(result_key(tid, me.client_id),
                      serialize.result_bytes(header, [(True, i)], me.task_secret(tid)))
            sample.append(tid)
        if i % 250 == 249:                            # a pool flushes a few hundred at a time
            for j in journals.values():
                j.flush()
    for j in journals.values():
        j.close()
    return {"task": sample[0], "function": fids[0], "endpoint": endpoints[0]}


FLOW = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": True}, "ResultPath": "$.a", "Next": "B"},
                                   "B": {"Type": "Pass", "End": True}}}
SCHEMA = {"type": "object", "required": ["sample"],
          "properties": {"sample": {"type": "string", "pattern": "^S[0-9]+$"}, "n": {"type": "integer"}}}


def fill_runs(store_url: str, n: int) -> dict:
    from faas.flows import FlowsClient, TimersClient
    from faas.flows.runner import Runner
    fc = FlowsClient(store_url)
    flows = [fc.deploy(FLOW, SCHEMA, title=f"flow {k}") for k in range(5)]
    runner = Runner(store_url)
    stop = threading.Event()
    t = threading.Thread(target=runner.serve, kwargs={"max_wait": 0.05, "should_stop": stop.is_set}, daemon=True)
    t.start()
    ids = [fc.start(flows[i % 5]["id"], {"sample": f"S{i}", "n": i}, label=f"run {i % 20}")["run_id"]
           for i in range(n)]
    deadline = time.monotonic() + 600
    while fc.get_run(ids[-1])["status"] != "SUCCEEDED" and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    t.join(60)
    tc = TimersClient(store_url)
    for k in range(10):
        tc.create(flows[0]["id"], {"sample": "S1"}, name=f"timer {k}", interval="1h", start=time.time() + 60)
    return {"flow": flows[0]["id"], "run": ids[len(ids) // 2]}


def found(store, url: str) -> dict:
    """The ids to open in a store an earlier run filled."""
    from faas.flows import FlowsClient
    fc = FlowsClient(url)
    flows = fc.list_flows()
    runs = fc.list_runs(flow_id=flows[0]["id"]) if flows else []
    return {"task": next(iter(store.list("results/"))).rsplit("/", 1)[1],
            "function": next(iter(store.list("functions/"))).rsplit("/", 1)[1],
            "endpoint": "hpc-a", "flow": flows[0]["id"] if flows else None,
            "run": runs[len(runs) // 2]["run_id"] if runs else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=1_000)
    ap.add_argument("--store", help="store URL [default: a temporary file:// store]")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--reuse", action="store_true", help="time the pages of a store filled by an "
                                                        "earlier run (with --store) instead of filling it")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-console-")
    os.environ["FAAS_HOME"] = str(Path(tmp) / "home")
    url = a.store or (Path(tmp) / "store").as_uri()
    from fastapi.testclient import TestClient

    from faas.console import Tokens, create_app
    from faas.store import open_store
    store = open_store(url)
    t0 = time.perf_counter()
    if a.reuse:
        ids = found(store, url)
        t1 = t2 = t0
    else:
        ids = fill_tasks(store, a.tasks)
        t1 = time.perf_counter()
        ids.update(fill_runs(url, a.runs) if a.runs else {"flow": None, "run": None})
        t2 = time.perf_counter()
    print(f"store {url}: {len(list(store.list('journal/')))} journal objects "
          f"({t1 - t0:.1f} s to write {a.tasks:,} tasks), {len(list(store.list('flows/runs/'))) // 3:,} runs "
          f"({t2 - t1:.1f} s to run)")
    pages = ["/endpoints", f"/endpoints/{ids['endpoint']}", "/tasks", "/tasks?status=failed",
             f"/tasks?function={ids['function'][:12]}", "/tasks?page=50", f"/tasks/{ids['task']}",
             "/functions", "/api/tasks?limit=100", "/api/endpoints"]
    if ids["flow"]:
        pages += ["/flows", f"/flows/{ids['flow']}", "/runs", "/runs?status=SUCCEEDED&label=run+3",
                  f"/runs/{ids['run']}", f"/runs/{ids['run']}?tab=log", "/timers", "/api/runs?limit=100"]
    app = create_app(url, tokens=Tokens(manage="bench"))
    t = time.perf_counter()
    app.state.console.warm_up()      # what the console does in the background when it starts
    print(f"startup: journal index and run cache built in {time.perf_counter() - t:.2f} s")
    rows = []
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": "Bearer bench"}) as c:
        for p in pages:
            t = time.perf_counter()
            r = c.get(p)
            cold = time.perf_counter() - t
            assert r.status_code == 200, (p, r.status_code, r.text[:300])
            warm = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                c.get(p)
                warm.append(time.perf_counter() - t)
            rows.append((p, cold, statistics.median(warm), max(warm), len(r.content)))
    w = max(len(p) for p, *_ in rows)
    print(f"{'page':<{w}}  {'first (s)':>9}  {'median (s)':>10}  {'max (s)':>8}  {'bytes':>8}")
    for p, cold, med, mx, size in rows:
        print(f"{p:<{w}}  {cold:9.3f}  {med:10.3f}  {mx:8.3f}  {size:8,}")
    slow = [p for p, cold, med, *_ in rows if med >= 1.0]
    print("every page under 1 s (median)" if not slow else f"over 1 s: {', '.join(slow)}")


if __name__ == "__main__":
    main()
