"""AWS API calls per task and the cost per million tasks on the S3/SQS path, against a moto server.

    python benchmarks/aws_cost.py [--n 1000] [--quick] [--out aws.json]

Starts its own ``moto_server`` on a free 127.0.0.1 port and a whole endpoint on it (daemon, one
block, a pool of 2 workers) with ``store: s3://...`` and ``queue: sqs``, as tests/test_aws.py
does: a signing key in FAAS_SIGNING_KEY, and benchmarks/aws_calls (which loads
tests/aws_calls) first on PYTHONPATH, so that every AWS call of every process (this client, the
daemon, the pool, the workers) is logged through botocore's event hooks, with the payload size of
each SQS call. Then, for each way of sending ``--n`` no-op calls (single ``submit``s, and
``map`` with chunksize 10 and 100), and for n/5 single submits of ``time.sleep(0.05)``, it counts
the calls from the first submit until 2.5 s after the last result and the Executor's shutdown, by
kind, and prices them at AWS list prices (printed with the table). It also counts the fixed
calls of one client session (one call from a new client) and the background calls of an idle
endpoint.

moto is not AWS: it is slow (a ReceiveMessage of 10 can take ~250 ms, and it scans the whole
queue), so the times are not AWS's; the calls per task are what this measures. Batching depends
a little on speed (notices wait up to 20 ms for company), so on a slow server the SQS share is on
the high side. The endpoint's background calls (the daemon reads the queue depth every
``strategy_period``, idle pools long-poll) are counted in each window like any other call, so
the per-task figures include them.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as c  # noqa: E402

#: AWS list prices (us-east-1, 2026): what each request costs, in dollars
PRICES = {
    "SQS request (per 64 KiB chunk of payload)": 0.40 / 1e6,
    "S3 PUT/COPY/POST/LIST": 0.005 / 1000,
    "S3 GET/HEAD and other reads": 0.0004 / 1000,
}
PRICE_TEXT = ("AWS list prices: SQS $0.40 per million requests, each 64 KiB chunk of a payload a request "
              "(standard queue, beyond the free tier); S3 Standard PUT, COPY, POST, LIST $0.005 per 1,000; "
              "GET, HEAD and other reads $0.0004 per 1,000; DELETE free. Storage, transfer and compute "
              "are not counted.")
TARGETS = {"submit": 6.0, "map": 1.0}    # $ per million no-op tasks

KINDS = [   # (column, ops)
    ("SQS send", {"SendMessage", "SendMessageBatch"}),
    ("SQS receive", {"ReceiveMessage"}),
    ("SQS delete", {"DeleteMessage", "DeleteMessageBatch"}),
    ("SQS other", None),                  # visibility (heartbeats), queue attributes, create/delete queue
    ("S3 PUT", {"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart",
                "CompleteMultipartUpload"}),
    ("S3 GET", {"GetObject"}),
    ("S3 LIST", {"ListObjectsV2", "ListObjects"}),
    ("S3 HEAD", {"HeadObject"}),
    ("S3 other", None),                   # DELETE (free), bucket calls
]


def kind_of(service: str, op: str) -> str:
    for name, ops in KINDS:
        if ops is not None and op in ops and name.lower().startswith(service):
            return name
    return "SQS other" if service == "sqs" else "S3 other"


def price_class(service: str, op: str) -> str | None:
    if service == "sqs":
        return "SQS request (per 64 KiB chunk of payload)"
    k = kind_of(service, op)
    if k in ("S3 PUT", "S3 LIST"):
        return "S3 PUT/COPY/POST/LIST"
    if k in ("S3 GET", "S3 HEAD"):
        return "S3 GET/HEAD and other reads"
    if op in ("DeleteObject", "DeleteObjects"):
        return None                        # free
    return "S3 PUT/COPY/POST/LIST" if op.startswith(("Create", "Put")) else "S3 GET/HEAD and other reads"


def noop(x):
    return x + 1


# -- the moto server and the site ---------------------------------------------------------------
def start_moto() -> tuple[subprocess.Popen, str]:
    """The tests' moto server (tests/helpers.py: a free loopback port), once it answers."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from helpers import start_moto_server
    proc, url = start_moto_server()
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            return proc, url
        except Exception:  # noqa: BLE001 - any error means not up yet; the deadline bounds the wait
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("moto_server did not start (pip install 'moto[server]')") from None
            time.sleep(0.1)


class Logs:
    def __init__(self, root: Path):
        self.calls = root / "aws-calls.jsonl"
        self.sizes = root / "sqs-sizes.jsonl"
        for p in (self.calls, self.sizes):
            p.write_text("")

    def clear(self) -> None:
        self.calls.write_text("")
        self.sizes.write_text("")

    def read(self) -> tuple[list[dict], list[dict]]:
        load = lambda p: [json.loads(x) for x in p.read_text().splitlines() if x.strip()]  # noqa: E731
        return load(self.calls), load(self.sizes)


def tally(calls: list[dict], sizes: list[dict], me: int) -> dict:
    """Counts by kind (and by client/site), and the billed requests by price class."""
    by_kind: collections.Counter = collections.Counter()
    by_op: collections.Counter = collections.Counter()
    client: collections.Counter = collections.Counter()
    billed: collections.Counter = collections.Counter()
    for r in calls:
        k = kind_of(r["service"], r["op"])
        by_kind[k] += 1
        by_op[f"{r['service']}:{r['op']}"] += 1
        if r["pid"] == me:
            client[k] += 1
        pc = price_class(r["service"], r["op"])
        if pc and r["service"] == "s3":
            billed[pc] += 1
    # SQS: each call is billed as ceil(payload / 64 KiB) requests, at least 1
    sqs_calls = sum(1 for r in calls if r["service"] == "sqs")
    chunks = sum(max(1, math.ceil(max(s["req"], s["resp"]) / 65536)) for s in sizes)
    extra = max(0, chunks - len(sizes))      # chunks beyond one per call
    billed["SQS request (per 64 KiB chunk of payload)"] = sqs_calls + extra
    return {"by_kind": dict(by_kind), "by_op": dict(by_op), "client": dict(client), "billed": dict(billed),
            "sqs_calls": sqs_calls, "sqs_sized": len(sizes), "sqs_extra_chunks": extra,
            "sqs_max_payload": max([max(s["req"], s["resp"]) for s in sizes], default=0)}


def dollars(billed: dict) -> float:
    return sum(PRICES[k] * v for k, v in billed.items())


def measure(n: int, idle_s: float, root: Path, logs: Logs, url: str) -> dict:
    for k in [k for k in os.environ if k.startswith("FAAS_")]:
        del os.environ[k]
    home = root / "home"
    os.environ.update(
        AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1", FAAS_HOME=str(home), FAAS_AWS_CALL_LOG=str(logs.calls),
        FAAS_BENCH_SQS_SIZE_LOG=str(logs.sizes),
        PYTHONPATH=os.pathsep.join([str(HERE / "aws_calls")] + [x for x in [os.environ.get("PYTHONPATH")] if x]))
    os.environ.pop("AWS_PROFILE", None)
    import importlib.util  # benchmarks/aws_calls/sitecustomize.py: this process counts its calls too
    spec = importlib.util.spec_from_file_location("faas_bench_hooks", HERE / "aws_calls" / "sitecustomize.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    hooks.install()

    import boto3

    import faas
    from faas import signing
    from faas.endpoint import config as ep_config
    from faas.endpoint import control

    bucket = f"faas-cost-{os.getpid()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = f"s3://{bucket}/faas"
    key = signing.new_key("site1")
    os.environ["FAAS_SIGNING_KEY"] = key
    cfg = ep_config.UserEndpointConfig.model_validate({
        "store": store, "queue": "sqs", "signing_keys": [key],
        "engine": {"max_workers_per_node": 2,
                   "provider": {"type": "local", "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}})
    ep_config.write(ep_config.endpoint_dir("site", home) / "config.yaml", cfg)
    me = os.getpid()
    results: dict = {"n": n, "prices": PRICES, "price_text": PRICE_TEXT, "moto": url,
                     "config": {"visibility_timeout": cfg.visibility_timeout,
                                "strategy_period": cfg.strategy_period,
                                "max_workers_per_node": 2}, "workloads": {}}
    t_start = time.monotonic()
    load_before = os.getloadavg()
    try:
        control.start_detached("site", home, wait=60)
        with faas.Executor("site", store=store) as ex:     # warm: the pool is up and polling
            ex.submit(noop, 0).result(timeout=120)
        time.sleep(2.0)
        c.log(f"idle endpoint: counting background calls for {idle_s:.0f} s")
        logs.clear()
        time.sleep(idle_s)
        idle = tally(*logs.read(), me)
        idle["seconds"] = idle_s
        results["idle"] = idle

        # One call from a new client: the fixed calls of a client session (reply queue made and
        # deleted, endpoint record read, function looked up), not a per-task cost.
        logs.clear()
        with faas.Executor("site", store=store) as ex:
            ex.submit(noop, 0).result(timeout=120)
        time.sleep(1.0)
        r = tally(*logs.read(), me)
        results["session"] = r

        warm = []
        sleeps = max(20, n // 5)
        for label, chunksize, fn, xs in (
                ("submit", None, noop, range(n)),
                ("map chunksize=10", 10, noop, range(n)),
                ("map chunksize=100", 100, noop, range(n)),
                ("submit, 50 ms sleeps", None, time.sleep, [0.05] * sleeps)):
            calls_n = len(xs)
            with faas.Executor("site", store=store) as ex:
                ex.submit(noop, 0).result(timeout=120)       # function stored, reply queue made
                if fn is time.sleep:
                    ex.submit(time.sleep, 0).result(timeout=120)
                if chunksize is None and fn is noop:          # a few warm round trips, for the record
                    for i in range(10):
                        t = time.perf_counter()
                        ex.submit(noop, i).result(timeout=60)
                        warm.append(time.perf_counter() - t)
                time.sleep(1.5)
                logs.clear()
                c.log(f"{label}: {calls_n} calls")
                t = time.monotonic()
                if chunksize:
                    out = list(ex.map(fn, xs, chunksize=chunksize, timeout=1800))
                else:
                    out = [f.result(timeout=1800) for f in [ex.submit(fn, a) for a in xs]]
                elapsed = time.monotonic() - t
                want = [i + 1 for i in xs] if fn is noop else [None] * calls_n
                assert out == want, f"{label}: wrong results"
            time.sleep(2.5)      # the pool's last deletes and the daemon's calls of this window
            window = time.monotonic() - t
            r = tally(*logs.read(), me)
            r.update(elapsed=elapsed, window=window, chunksize=chunksize, n=calls_n, noop=fn is noop)
            results["workloads"][label] = r
            c.log(f"  {label}: {sum(r['by_kind'].values()) / calls_n:.3f} calls/task in {elapsed:.1f} s")
        results["warm_p50_ms_on_moto"] = c.pct(warm, 50) * 1e3
    finally:
        control.stop("site", home)
    results["load"] = {"before": load_before, "after": os.getloadavg()}
    results["seconds"] = time.monotonic() - t_start
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, help="no-op calls per workload (default 1,000; --quick 100)")
    p.add_argument("--quick", action="store_true", help="100 calls per workload, a short idle window")
    p.add_argument("--idle", type=float, help="seconds of idle endpoint to measure background calls (default 20)")
    p.add_argument("--out", help="write the results here as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, endpoint folder)")
    args = p.parse_args()
    n = args.n or (100 if args.quick else 1000)
    idle_s = args.idle if args.idle is not None else (5.0 if args.quick else 20.0)

    root = Path(tempfile.mkdtemp(prefix="faas-aws-cost-"))
    logs = Logs(root)
    moto, url = start_moto()
    try:
        results = measure(n, idle_s, root, logs, url)
    finally:
        moto.terminate()
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:
            moto.kill()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    text = report(results)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


def report(res: dict) -> str:
    n = res["n"]
    cols = [k for k, _ in KINDS]
    lines = ["faas on S3/SQS (moto server on loopback): AWS API calls per task (calls in brackets), "
             "every process counted (client + daemon + pool + workers)", ""]
    lines.append("| workload | calls/task | " + " | ".join(cols) + " | $ per million tasks | target | |")
    lines.append("|---|---|" + "---|" * len(cols) + "---|---|---|")
    for label, r in res["workloads"].items():
        n = r["n"]
        per = {k: r["by_kind"].get(k, 0) / n for k in cols}
        cost = dollars(r["billed"]) / n * 1e6
        target = TARGETS["map" if r["chunksize"] else "submit"] if r.get("noop", True) else None
        verdict = ("" if target is None else f"<= ${target:.0f} | {'met' if cost <= target else 'MISSED'}")
        lines.append(f"| {label} ({n:,}) | {sum(r['by_kind'].values()) / n:.3f} | "
                     + " | ".join(f"{per[k]:.3f}" for k in cols)
                     + f" | ${cost:.2f} | {verdict or ' | '} |")
    lines += ["", PRICE_TEXT, ""]
    lines.append("Where the cost goes ($ per million tasks, by price class), the client's own share, "
                 "and the time on moto:")
    for label, r in res["workloads"].items():
        n = r["n"]
        parts = ", ".join(f"{k}: ${PRICES[k] * v / n * 1e6:.2f} ({v / n:.3f}/task)" for k, v in r["billed"].items())
        client = sum(r["client"].values()) / n
        lines.append(f"- {label}: {parts}; client {client:.3f} calls/task; "
                     f"{r['elapsed']:.1f} s for {n:,} calls (window {r['window']:.1f} s); "
                     f"largest SQS payload {r['sqs_max_payload']:,} B, "
                     f"chunks beyond one per call: {r['sqs_extra_chunks']}")
        ops = ", ".join(f"{k} {v / n:.3f}" for k, v in sorted(r["by_op"].items()))
        lines.append(f"  by operation, per task: {ops}")
    ses = res["session"]
    lines.append("- one call from a new client (the fixed calls of a client session, not per task): "
                 + ", ".join(f"{k} {v}" for k, v in sorted(ses["by_op"].items()))
                 + f": ${dollars(ses['billed']) * 1e6:.2f} per million sessions")
    idle = res["idle"]
    per_h = {k: v / idle["seconds"] * 3600 for k, v in idle["by_op"].items()}
    day = dollars(idle["billed"]) / idle["seconds"] * 86400
    lines.append(f"- idle endpoint (1 block of 2 workers, no tasks, {idle['seconds']:.0f} s): "
                 + ", ".join(f"{k} {v:,.0f}/h" for k, v in sorted(per_h.items()))
                 + f": ${day:.3f} per day. These calls also fall in each workload's window above "
                 "(longer on moto than on AWS), so they are part of its per-task figures.")
    lines.append(f"- warm round trip on moto (not AWS's figure): p50 {res['warm_p50_ms_on_moto']:.0f} ms")
    ld = res["load"]
    lines.append(f"- load average before {ld['before'][0]:.2f}, after {ld['after'][0]:.2f}; ran {res['seconds']:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
