"""The S3/SQS path end to end, over HTTP against a real moto server: a whole endpoint (daemon,
pools, workers) with ``store: s3://...`` and ``queue: sqs``, driven by the client and Executor.
Every AWS call of every process is counted through botocore event hooks (tests/aws_calls)."""
from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

import pytest

import faas
from faas.endpoint import config as ep_config
from faas.endpoint import control
from faas.exceptions import EndpointNotFound, WorkerLost

pytestmark = pytest.mark.aws

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "aws_calls"))
import sitecustomize as aws_calls  # noqa: E402  (the hook installer, also used by subprocesses)

aws_calls.install()


@pytest.fixture(scope="module")
def site(moto_url, tmp_path_factory):
    import boto3
    root = tmp_path_factory.mktemp("aws")
    bucket = f"faas-site-{os.getpid()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = f"s3://{bucket}/faas"
    home = root / "home"
    log = root / "aws-calls.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
                mp.delenv(k)
        mp.setenv("FAAS_HOME", str(home))
        mp.setenv("FAAS_AWS_CALL_LOG", str(log))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(HERE / "aws_calls"), os.environ.get("PYTHONPATH", "")]))
        from faas import signing
        key = signing.new_key("site1")
        mp.setenv("FAAS_SIGNING_KEY", key)        # clients sign; the endpoint checks
        cfg = ep_config.UserEndpointConfig.model_validate({
            "store": store, "queue": "sqs", "max_receives": 2, "visibility_timeout": 10, "stop_grace": 5,
            "signing_keys": [key],
            "engine": {"max_workers_per_node": 2,
                       "provider": {"type": "local", "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}})
        ep_config.write(ep_config.endpoint_dir("site", home) / "config.yaml", cfg)
        control.start_detached("site", home)
        try:
            yield {"store": store, "home": home, "log": log, "bucket": bucket}
        finally:
            control.stop("site", home)


def square(x):
    return x * x


def fails(x):
    raise KeyError(f"no {x}")


def test_endpoint_registered_in_s3(site):
    c = faas.client(store=site["store"])
    names = [e["name"] for e in c.list_endpoints()]
    assert "site" in names
    d = c.describe_endpoint(name="site")
    assert d["status"] == "running" and d["queue"].endswith("faas-site") and "queue_depth" in d
    with pytest.raises(EndpointNotFound, match="endpoint 'elsewhere' is not registered"):
        c.run(function_id=c.register_function(square), endpoint="elsewhere", args=(1,))


def test_client_api_round_trip(site):
    c = faas.client(store=site["store"], endpoint="site")
    fid = c.register_function(square)
    assert c.register_function(square) == fid
    tid = c.run(function_id=fid, args=(9,))
    assert c.get_result(task_id=tid, timeout=60) == 81
    assert c.get_task(task_id=tid)["status"] == "success"
    ids = c.submit_batch(tasks=[{"function_id": fid, "args": [i]} for i in range(15)])
    assert [c.get_result(task_id=t, timeout=60) for t in ids] == [i * i for i in range(15)]
    assert c.get_results(task_ids=ids[:2]) == {
        ids[0]: {**c.get_task(task_id=ids[0]), "result": 0}, ids[1]: {**c.get_task(task_id=ids[1]), "result": 1}}
    bad = c.run(function_id=c.register_function(fails), args=("key",))
    with pytest.raises(KeyError, match="no key"):
        c.get_result(task_id=bad, timeout=60)
    assert c.get_task(task_id=bad)["status"] == "failed"
    c.close()
    # A different client, later: results are objects in the store.
    other = faas.client(store=site["store"], endpoint="site")
    assert other.get_result(task_id=tid) == 81


def test_a_notice_another_client_takes_does_not_hang_the_task(site, monkeypatch):
    """Every holder of the client role may receive from every reply queue (faas-reply-*): a
    done notice another client takes is gone. The task still finishes: its client finds the
    result in the store once notice_grace (here 2 s) has passed."""
    from test_lost_notices import _take_notices
    monkeypatch.setenv("FAAS_NOTICE_GRACE", "2")
    victim = faas.client(store=site["store"], endpoint="site")
    try:
        fid = victim.register_function(square)
        monkeypatch.setattr(victim, "_ensure_listener", lambda: None)   # the thief is first on it
        tid = victim.run(function_id=fid, args=(12,))
        _take_notices(victim._reply_queue().url, tid)                  # another client's receive
        monkeypatch.undo()
        victim._ensure_listener()
        assert victim.get_result(task_id=tid, timeout=60) == 144
    finally:
        victim.close()


def test_executor_map_chunks_and_big_payloads(site):
    with faas.Executor("site", store=site["store"]) as ex:
        assert list(ex.map(square, range(40), chunksize=7)) == [i * i for i in range(40)]
        big = os.urandom(600 * 1024)          # over SQS's 256 KiB: spills to S3
        assert ex.submit(len, big).result(timeout=60) == len(big)
        assert len(ex.submit(os.urandom, 700 * 1024).result(timeout=60)) == 700 * 1024


def test_poison_task_dead_lettered_on_sqs(site):
    with faas.Executor("site", store=site["store"]) as ex:
        f = ex.submit(os._exit, 9)
        with pytest.raises(WorkerLost, match="dead-lettered"):
            f.result(timeout=90)
        assert ex.submit(square, 3).result(timeout=60) == 9


def test_api_calls_per_task(site, capsys):
    """Counts every AWS call (client, daemon, pool, workers) for N tasks and prints the figures
    the README reports. Bounds are loose: they catch a design regression (a call per task where
    a batch was meant), not noise."""
    log: Path = site["log"]
    n = 200
    results = {}
    for label, chunksize in (("submit", None), ("map chunksize=10", 10)):
        with faas.Executor("site", store=site["store"]) as ex:
            ex.submit(square, 0).result(timeout=60)   # warm: function stored, reply queue made
            time.sleep(1.5)
            log.write_text("")
            t = time.monotonic()
            if chunksize:
                out = list(ex.map(square, range(n), chunksize=chunksize))
            else:
                out = [f.result(timeout=120) for f in [ex.submit(square, i) for i in range(n)]]
            elapsed = time.monotonic() - t
            assert out == [i * i for i in range(n)]
        time.sleep(2.5)   # let the daemon's periodic calls of this window land too
        calls, mine = collections.Counter(), collections.Counter()
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            calls[f"{rec['service']}:{rec['op']}"] += 1
            if rec["pid"] == os.getpid():
                mine[f"{rec['service']}:{rec['op']}"] += 1
        results[label] = (calls, elapsed, mine)
    with capsys.disabled():
        print("\nAWS API calls per task (all processes, moto server over HTTP):")
        for label, (calls, elapsed, mine) in results.items():
            per = {k: round(v / n, 3) for k, v in sorted(calls.items())}
            print(f"  {label}: {round(sum(calls.values()) / n, 3)} calls/task in {elapsed:.2f} s: {per}")
            print(f"    of which the client's: {({k: round(v / n, 3) for k, v in sorted(mine.items())})}")
    calls, _, _ = results["submit"]
    assert calls["s3:PutObject"] / n <= 1.05            # the result, once per task
    assert calls["s3:GetObject"] / n <= 0.1             # results ride in the notices
    assert calls["sqs:SendMessage"] == 0                # everything is batched
    assert calls["s3:HeadObject"] / n <= 0.05           # no cancel check a task: the epoch covers it
    assert sum(calls.values()) / n < 6
    calls, _, _ = results["map chunksize=10"]
    assert calls["s3:PutObject"] / n <= 0.15
    assert sum(calls.values()) / n < 1.5
