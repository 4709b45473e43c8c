"""Issue 19's known leftover, as the attacker: a second party with write access to the bucket
(another S3 principal, a compromised client) plants a huge object at a key the victim reads whole
before any MAC or signature refuses it: her result, a cancel marker, a task's spilled arguments, a
function. The victim's client and the worker refuse it, and read no more of it than a size they
know from an authenticated source (a sealed notice, the signed message) or a small fixed cap.

Each memory check is tracemalloc's peak over the victim's read in this process (the moto server
is another process): on the code before the fix each of these reads took the whole planted object
(64 MiB), so every peak assertion below failed there (checked by running this file against the old
worker/api/store modules: the peaks were >= 64 MiB).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import boto3
import pytest

import faas
from faas import serialize, signing
from faas.endpoint import worker
from faas.errors import MaxResultSizeExceeded
from faas.exceptions import ResultForged, SerializationError
from faas.messages import args_key, cancel_epoch_key, cancel_key, client_prefixes, function_key, result_key
from faas.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import running_endpoint, wait_until  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

PLANTED = 64 << 20          # what the attacker writes
BOUNDED = 16 << 20          # the most the victim's read may cost (her real data is far smaller)


def big_result(n):
    return b"r" * n


def echo(x):
    return x


def slow_one():
    import time
    time.sleep(1.0)
    return 1


def plant(bucket: str, key: str, size: int = PLANTED) -> None:
    """The attacker: its own credentials, straight to the bucket (no faas code)."""
    s3 = boto3.client("s3", aws_access_key_id="attacker", aws_secret_access_key="attacker-secret")
    body = serialize.frame({"kind": "result", "status": "success", "task_id": "x", "n": 1}, bytes(size))
    s3.put_object(Bucket=bucket, Key=f"faas/{key}", Body=body)


def as_user(user, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin"}, cwd=user.pw_dir,
                          capture_output=True, text=True, timeout=120)


class Peak:
    """tracemalloc's peak (bytes) over the ``with`` block."""

    def __enter__(self):
        tracemalloc.start()
        tracemalloc.reset_peak()
        return self

    def __exit__(self, *exc):
        self.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


@pytest.fixture
def s3_site(request, tmp_path):
    """A running endpoint on S3 + SQS (moto's server over HTTP), and the bucket's name."""
    request.getfixturevalue("moto_url")
    bucket = request.getfixturevalue("s3_bucket")
    with running_endpoint(tmp_path / "h", name="planted", store=f"s3://{bucket}/faas", queue="sqs") as cfg:
        yield cfg.store, bucket


def test_the_done_notice_seals_the_result_size():
    """Whoever can forge a notice's size could lift the client's bound: the MAC covers it."""
    from faas.endpoint.outcomes import done_notice
    from faas.messages import Notice, TaskMessage
    from faas.sealing import check_notice, task_secret

    tid = str(uuid.uuid4())
    rk = task_secret(os.urandom(32), tid)
    n = Notice.model_validate_json(done_notice(TaskMessage.model_construct(id=tid, rk=rk), "success", None, size=1234))
    assert n.size == 1234 and check_notice(n.mac, rk, tid, "done", "success", n.size)
    assert not check_notice(n.mac, rk, tid, "done", "success", 10 ** 9)   # enlarged
    assert not check_notice(n.mac, rk, tid, "done", "success", None)      # dropped
    inline = Notice.model_validate_json(
        done_notice(TaskMessage.model_construct(id=tid, rk=rk), "success", b"frame", size=5))
    assert inline.size is None and check_notice(inline.mac, rk, tid, "done", "success")


@pytest.mark.slow
def test_a_huge_object_planted_at_an_announced_result_costs_its_announced_size(s3_site):
    """The done notice seals the stored result's size: the client reads size + 1 bytes and
    refuses the rest. The attacker swaps the result between the worker's write and the client's
    read (the client is busy in a user's done callback meanwhile)."""
    store_url, bucket = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    go, busy = threading.Event(), threading.Event()

    def hold_the_listener(_):   # a user's callback runs in the client's notice thread
        busy.set()
        go.wait(60)

    with faas.Executor("planted", client=c) as ex:
        first = ex.submit(slow_one)
        first.add_done_callback(hold_the_listener)
        assert busy.wait(60)
        victim = ex.submit(big_result, 1 << 20)   # too big to ride in the notice
        key = result_key(victim.task_id, c.client_id)
        wait_until(lambda: c.store.exists(key), 60, "the real result")
        plant(bucket, key)
        with Peak() as peak:
            go.set()
            with pytest.raises(ResultForged, match="longer than the .* bytes its endpoint's sealed notice announced"):
                victim.result(timeout=60)
        assert first.result() == 1
    c.close()
    assert peak.bytes < BOUNDED, f"the client read {peak.bytes} bytes of a planted result"


@pytest.mark.slow
def test_a_huge_object_planted_at_a_result_read_without_its_notice_costs_the_cap(s3_site, monkeypatch):
    """get_result / get_task from another process (no notice): at most max_result_bytes + 1."""
    store_url, bucket = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    tid = c.run(function_id=c.register_function(echo), endpoint="planted", args=(7,))
    assert c.get_result(task_id=tid, timeout=60) == 7
    c.close()
    plant(bucket, result_key(tid, c.client_id))
    monkeypatch.setenv("FAAS_MAX_RESULT_BYTES", str(1 << 20))
    later = faas.client(endpoint="planted", store=store_url)   # the same user, another process
    assert later.settings.max_result_bytes == 1 << 20
    with Peak() as peak:
        with pytest.raises(ResultForged, match=r"larger than max_result_bytes \(1048576 bytes"):
            later.get_result(task_id=tid, timeout=0.5)
        info = later.get_task(tid)
    assert info["status"] == "failed" and info["error"]["type"] == "ResultForged"
    assert peak.bytes < BOUNDED, f"the client read {peak.bytes} bytes of a planted result"


@pytest.mark.slow
def test_huge_planted_cancel_markers_are_read_to_a_small_cap(s3_site):
    """Her task's cancel marker and her cancel epoch, planted huge: the worker and the pool take
    the first bytes (the marker is not hers: the task runs), and her client's check of the marker
    reads as little."""
    store_url, bucket = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    fid = c.register_function(echo)
    tid = c.run(function_id=fid, endpoint="planted", args=(1,))
    assert c.get_result(task_id=tid, timeout=60) == 1
    plant(bucket, cancel_epoch_key(c.client_id))   # every pool now looks for each task's marker
    later = str(uuid.uuid4())
    plant(bucket, cancel_key(later, c.client_id))
    with Peak() as peak:
        assert not c._cancelled(later)
        assert c.get_task(later)["status"] == "pending"
    assert peak.bytes < BOUNDED, f"the client read {peak.bytes} bytes of a planted cancel marker"
    # the worker's own check, on the real store (the worker runs this with the task's secret)
    store = open_store(store_url)
    with Peak() as peak:
        assert not worker.cancelled(store, later, c.task_secret(later), c.client_id)
    assert peak.bytes < BOUNDED, f"the worker read {peak.bytes} bytes of a planted cancel marker"
    # and through the endpoint: the pool reads the planted epoch, the worker the planted marker
    for _ in range(3):
        tid = c.run(function_id=fid, endpoint="planted", args=(2,))
        plant(bucket, cancel_key(tid, c.client_id), 4 << 20)
        assert c.get_result(task_id=tid, timeout=60) == 2
    c.close()


def _job(c, task_id: str, fid: str, args_size: int | None, sha: str | None) -> tuple:
    """The pool's job tuple for one task (faas/endpoint/pool.py ``_job``): spilled arguments."""
    return (task_id, fid, None, args_size, 1 << 18, sha, True, c.task_secret(task_id), c.function_secret(fid),
            c.client_id, None)


@pytest.mark.slow
def test_huge_planted_arguments_cost_their_signed_size(s3_site):
    """The signed message carries the spilled frame's size; the worker reads size + 1 bytes."""
    store_url, bucket = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    fid = c.register_function(echo)
    # a real spill first: the message carries args_size under the signature's canonical form
    queue = c._endpoint_queue("planted")
    key = signing.parse_key(signing.new_key("k1"))
    tid, body = c._message(queue, fid, [((b"a" * (400 << 10),), {})], None, key)
    fields = json.loads(body)
    frame = c.store.get(args_key(tid, c.client_id))
    assert fields["args_size"] == len(frame) and fields["args_sha256"] == signing.sha256(frame)
    assert signing.check(fields, {key.id: key}, time.time()) is None
    assert signing.check(dict(fields, args_size=len(frame) + 1), {key.id: key}, time.time()) == \
        "bad signature (forged or altered)"   # the size is under the signature
    # the attacker swaps the spilled frame for a huge one; the worker (its real code) refuses it
    plant(bucket, args_key(tid, c.client_id))
    store = open_store(store_url)
    with Peak() as peak:
        _, status, inline, _ = worker.run_job(store, {}, _job(c, tid, fid, len(frame), fields["args_sha256"]), {})
    assert status == "failed"
    header, _ = serialize.open_result(inline, tid, c.task_secret(tid))
    assert header["error"]["type"].endswith("SignatureError") and "no more was read" in header["error"]["message"]
    assert peak.bytes < BOUNDED, f"the worker read {peak.bytes} bytes of planted arguments"
    # a message that gives no size reads nothing at all
    _, status, inline, _ = worker.run_job(store, {}, _job(c, tid, fid, None, fields["args_sha256"]), {})
    assert status == "failed" and "gives no args_size" in \
        serialize.open_result(inline, tid, c.task_secret(tid))[0]["error"]["message"]
    c.close()


@pytest.mark.slow
def test_a_huge_planted_function_costs_max_function_bytes(s3_site, monkeypatch):
    store_url, bucket = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    fid = signing.sha256(b"the id of a function she will send")
    plant(bucket, function_key(fid, c.client_id))
    monkeypatch.setenv("FAAS_MAX_FUNCTION_BYTES", str(1 << 20))
    tid = str(uuid.uuid4())
    frame = serialize.calls_bytes([((1,), {})])
    job = (tid, fid, frame, None, 1 << 18, None, False, c.task_secret(tid), c.function_secret(fid), c.client_id, None)
    store = open_store(store_url)
    with Peak() as peak:
        _, status, inline, _ = worker.run_job(store, {}, job, {})
    assert status == "failed"
    err = serialize.open_result(inline, tid, c.task_secret(tid))[0]["error"]
    assert err["type"].endswith("SignatureError") and "larger than max_function_bytes (1048576" in err["message"]
    assert peak.bytes < BOUNDED, f"the worker read {peak.bytes} bytes of a planted function"
    # her own client refuses to store a function over the limit, naming the setting
    blob = os.urandom(2 << 20)
    with pytest.raises(SerializationError, match="max_function_bytes"):
        faas.client(endpoint="planted", store=store_url).register_function(lambda: blob)
    c.close()


@pytest.mark.slow
def test_an_object_planted_at_a_function_key_before_she_registers_it_does_not_block_it(s3_site):
    """Function ids are public hashes: the attacker plants at her key first. Registering used to
    see "the key exists" and keep the planted bytes, so every task of hers failed."""
    store_url, bucket = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    fid, _ = serialize.function_bytes(echo)
    plant(bucket, function_key(fid, c.client_id), size=1 << 10)
    with Peak() as peak:
        assert c.register_function(echo) == fid
    assert peak.bytes < BOUNDED
    assert c.get_result(c.run(fid, args=["hers"]), timeout=120) == "hers"
    assert faas.Client(store=store_url).get_function(fid)["function_name"] == "echo"
    c.close()


def test_a_huge_object_planted_at_a_functions_description_is_read_to_a_cap(s3_site):
    """Beside each function, Globus's Client keeps its name and docstring (sealed): one planted
    there costs FUNCTION_META_MAX to read, then does not open."""
    from faas.globus_client import FUNCTION_META_MAX
    store_url, bucket = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    fid = c.register_function(echo)
    plant(bucket, function_key(fid, c.client_id) + ".json")
    with Peak() as peak:
        found = faas.Client(store=store_url).get_function(fid)
    assert peak.bytes < max(BOUNDED, 4 * FUNCTION_META_MAX), f"{peak.bytes} bytes read of a planted description"
    assert found["function_uuid"] == fid and found["description"] is None
    c.close()


def test_a_header_nested_thousands_deep_is_corrupt_not_a_crash():
    """A frame's header is JSON that anyone who writes the store may make: nesting that makes
    the decoder recurse too deep is a corrupt object like any other (ResultForged for a result),
    never a RecursionError reaching the reader."""
    head = b"[" * 100_000 + b"]" * 100_000
    data = serialize.MAGIC + len(head).to_bytes(4, "big") + head
    with pytest.raises(SerializationError, match="corrupt faas object header"):
        serialize.unframe(data)
    with pytest.raises(ResultForged):
        serialize.open_result(data, str(uuid.uuid4()), "A" * 43)


@pytest.mark.slow
def test_the_endpoint_refuses_to_store_a_result_over_max_result_bytes(s3_site, monkeypatch):
    """What the client will read without a notice, the endpoint never stores: the task fails
    with Globus Compute's MaxResultSizeExceeded, naming the setting."""
    store_url, _ = s3_site
    c = faas.client(endpoint="planted", store=store_url)
    fid = c.register_function(big_result)
    monkeypatch.setenv("FAAS_MAX_RESULT_BYTES", str(1 << 20))
    tid = str(uuid.uuid4())
    job = (tid, fid, serialize.calls_bytes([((2 << 20,), {})]), None, 1 << 18, None, False,
           c.task_secret(tid), c.function_secret(fid), c.client_id, None)
    _, status, inline, notice = worker.run_job(open_store(store_url), {}, job, {})
    assert status == "failed"
    later = faas.client(endpoint="planted", store=store_url)
    with pytest.raises(MaxResultSizeExceeded, match="FAAS_MAX_RESULT_BYTES") as e:
        later.get_result(task_id=tid, timeout=5)
    assert e.value.result_size > 2 << 20 and e.value.result_size_limit == 1 << 20
    c.close()


# -- a multi-user endpoint's shared file store: other accounts cannot write at her keys at all --

@pytest.mark.slow
def test_on_a_shared_file_store_another_account_cannot_plant_at_her_keys(mu_users):
    """On a shared ``file://`` store the attack needs write access at her keys, which another
    Unix account never has: her client claims her folders (mode 700) before it sends anything.
    Bob (a real account) tries every key she reads: results, cancels, her epoch, args, functions."""
    alice, bob, _ = mu_users
    shared = Path(f"/tmp/faas-planted-{uuid.uuid4().hex}")
    shared.mkdir()
    os.chmod(shared, 0o1777)   # a shared store: every account may create the top folders
    try:
        p = as_user(alice, f"import faas\nprint(faas.client(store={shared.as_uri()!r}).client_id)\n")
        assert p.returncode == 0, p.stderr
        cid = p.stdout.strip()
        tid = str(uuid.uuid4())
        keys = [result_key(tid, cid), cancel_key(tid, cid), cancel_epoch_key(cid), args_key(tid, cid),
                function_key(signing.sha256(b"f"), cid)]
        p = as_user(bob, (
            "import json, os\n"
            "out = {}\n"
            f"for key in {keys!r}:\n"
            "    try:\n"
            f"        with open(os.path.join({str(shared)!r}, key), 'wb') as f:\n"
            "            f.write(bytes(1 << 20))\n"
            "        out[key] = 'written'\n"
            "    except OSError as e:\n"
            "        out[key] = type(e).__name__\n"
            "print(json.dumps(out))\n"))
        assert p.returncode == 0, p.stderr
        assert set(json.loads(p.stdout).values()) == {"PermissionError"}, p.stdout
        for prefix in client_prefixes(cid):
            st = (shared / prefix).stat()
            assert st.st_uid == alice.pw_uid and st.st_mode & 0o077 == 0, (prefix, oct(st.st_mode))
    finally:
        shutil.rmtree(shared, ignore_errors=True)
