"""The bad-input catalogue: each case checks the message a user sees, and that the endpoint still
serves afterwards (nothing lost or left stuck). Cases already covered elsewhere are listed at the
bottom with where they live, so the catalogue is complete in one place."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from helpers import running_endpoint

import faas
from faas.exceptions import (
    ConfigError,
    CredentialsError,
    EndpointNotFound,
    SerializationError,
    StoreError,
    TaskFailed,
    TaskTimeout,
)
from faas.store import open_queue


def ok(x):
    return x


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("catalogue") / "h"
    with running_endpoint(home, engine={"worker_memory_limit_mb": 1024}):
        yield home


@pytest.fixture
def ex(home):
    with faas.Executor() as ex:
        yield ex
        # whatever the case did, the endpoint still serves
        assert ex.submit(ok, "alive").result(timeout=30) == "alive"


# 1
def test_not_a_callable(ex):
    with pytest.raises(SerializationError, match="expected a callable, got int"):
        ex.submit(5)


# 2
def test_wrong_number_of_arguments(ex):
    with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given") as info:
        ex.submit(ok, 1, 2).result(timeout=30)
    assert "Traceback" in str(info.value.__cause__)


def down(n):
    return down(n + 1)


# 3
def test_recursion_blow_up(ex):
    with pytest.raises(RecursionError, match="maximum recursion depth"):
        ex.submit(down, 0).result(timeout=30)


# 3b
def test_self_referencing_closure_is_sent(ex):
    def loop(n):          # refers to itself through its closure: dill's recurse=True never ends
        return loop(n + 1)   # on it; the function is sent all the same (serialize.dumps' fallback)

    def count_down(n):
        return n if n < 1 else count_down(n - 1)
    with pytest.raises(RecursionError, match="maximum recursion depth"):
        ex.submit(loop, 0).result(timeout=30)
    assert ex.submit(count_down, 50).result(timeout=30) == 0


# 4
def test_memory_blow_up_hits_the_worker_limit(ex):
    def hog():
        return len(bytearray(3 << 30))      # 3 GiB, over worker_memory_limit_mb: 1024
    with pytest.raises(MemoryError):
        ex.submit(hog).result(timeout=60)


# 5
def test_result_the_client_cannot_import(ex, tmp_path):
    """The function returns an object of a module only the worker has."""
    def make(path):
        import importlib
        import sys as _sys
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "worker_only_mod.py"), "w") as f:
            f.write("class Thing:\n    pass\n\nclass WorkerOnlyError(Exception):\n    pass\n")
        _sys.path.insert(0, path)
        return importlib.import_module("worker_only_mod").Thing()
    mod_dir = str(tmp_path / "worker-side")
    with pytest.raises(SerializationError, match="cannot deserialize the result.*worker_only_mod"):
        ex.submit(make, mod_dir).result(timeout=30)


# 6
def test_exception_the_client_cannot_import(ex, tmp_path):
    def fail(path):
        import importlib
        import sys as _sys
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "worker_only_exc.py"), "w") as f:
            f.write("class WorkerOnlyError(Exception):\n    pass\n")
        _sys.path.insert(0, path)
        raise importlib.import_module("worker_only_exc").WorkerOnlyError("only over there")
    with pytest.raises(TaskFailed, match="worker_only_exc.WorkerOnlyError: only over there") as info:
        ex.submit(fail, str(tmp_path / "w2")).result(timeout=30)
    assert info.value.remote_type == "worker_only_exc.WorkerOnlyError"
    assert "raise importlib.import_module" in info.value.remote_traceback


# 7
def test_keyboard_interrupt_inside_a_task(ex):
    def interrupt():
        raise KeyboardInterrupt("stop")
    with pytest.raises(KeyboardInterrupt):
        ex.submit(interrupt).result(timeout=30)


# 8
def test_bad_timeouts(home):
    with pytest.raises(ConfigError, match="task_timeout must be a number of seconds > 0, got -1"):
        faas.Executor(task_timeout=-1)
    c = faas.client()
    with pytest.raises(ConfigError, match="timeout must be a number of seconds > 0"):
        c.run(function_id=c.register_function(ok), args=(1,), timeout=0)
    c.close()


# 9
def test_result_of_unknown_task_times_out_clearly(home):
    c = faas.client()
    tid = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(TaskTimeout, match=f"task {tid}: no result within 0.5 s \\(pending\\)"):
        c.get_result(task_id=tid, timeout=0.5)
    with pytest.raises(ValueError, match="not a UUID"):
        c.get_result(task_id="../no-such-task", timeout=0.5)


# 10
def test_malformed_messages_never_crash_the_pool(ex, home):
    q = open_queue(f"local://{home / 'queues'}/local")
    q.send(["not json at all", json.dumps({"v": 1, "id": "x"}), json.dumps({"v": 99, "id": "y", "fn": "z"})])
    deadline = time.monotonic() + 30
    c = faas.client()
    while time.monotonic() < deadline:
        kept = [k for k in c.store.list("dead-letters/") if k.startswith("dead-letters/refused-")]
        if len(kept) >= 3:
            break
        time.sleep(0.2)
    assert len(kept) >= 3, kept
    reasons = [json.loads(c.store.get(k))["reason"] for k in kept]
    assert all(r.startswith("malformed") for r in reasons), reasons
    logs = "".join(p.read_text() for p in (home / "endpoints" / "local" / "blocks").glob("**/pool.log"))
    assert "malformed message" in logs


# 11
def test_deleted_queue(home, tmp_path, monkeypatch):
    """The endpoint's queue deleted behind its back: a clear error, not a hang."""
    other = tmp_path / "h2"
    with running_endpoint(other, name="gone"):
        open_queue(f"local://{other / 'queues'}/gone").destroy()
        with faas.Executor("gone") as ex2:
            with pytest.raises(EndpointNotFound, match="registered with queue .*gone, which cannot be opened"):
                ex2.submit(ok, 1)


# 12
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_on_the_local_store(tmp_path):
    """A store on a 4 MiB tmpfs: a spilled argument that does not fit fails at submit with the
    path and the cause; a result that does not fit is handed back and completes once there is
    room again. Nothing is lost."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        home = tmp_path / "h"
        with running_endpoint(home, name="tiny", store=(mnt / "store").as_uri()):
            with faas.Executor("tiny", store=(mnt / "store").as_uri()) as ex:
                with pytest.raises(StoreError, match="No space left|ENOSPC|space"):
                    ex.submit(len, b"x" * (6 << 20))
                filler = mnt / "filler"
                filler.write_bytes(b"\0" * (3 << 20))     # leave less room than the result needs
                f = ex.submit(bytes, 2 << 20)
                time.sleep(2.0)
                assert not f.done()                         # handed back, not failed
                filler.unlink()
                assert len(f.result(timeout=60)) == 2 << 20
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# 13
def test_expired_aws_credentials(moto_url, tmp_path, monkeypatch):
    """An ExpiredToken answer (injected with a botocore hook: moto accepts any key) becomes
    CredentialsError saying what to do."""
    import boto3

    from faas.store import open_store
    boto3.client("s3").create_bucket(Bucket="faas-expired")
    store = open_store("s3://faas-expired/p")

    def expired(**kwargs):
        from botocore.exceptions import ClientError
        raise ClientError({"Error": {"Code": "ExpiredToken",
                                     "Message": "The provided token has expired."}}, "PutObject")
    store.client.meta.events.register("before-call.s3.*", expired)
    with pytest.raises(CredentialsError, match="expired|refused|credentials"):
        store.put("functions/x", b"1")


# 14
def test_profile_that_does_not_exist(home):
    with pytest.raises(ConfigError, match="profile 'nope' not found"):
        faas.Executor(profile="nope")


# 15
def test_bad_store_url(home):
    with pytest.raises(ConfigError):
        faas.client(store="file://relative/path").register_function(ok)


# Covered elsewhere (same catalogue):
# 16 unserializable function, 17 unserializable arguments, 18 unpicklable result,
# 19 huge arguments and results (spilled; results over max_result_bytes and functions over
#    max_function_bytes refused, naming the setting) -> tests/test_executor.py,
#    tests/security/test_planted_objects.py
# 20 Python version mismatch (forged and real 3.12 client),
# 21 unknown endpoint, 22 malformed embedded config.yaml,
# 23 unreachable store, 24 missing AWS credentials        -> tests/test_bad_input.py
# 25 function that exits its worker (dead-lettered), 26 sys.exit -> tests/test_executor.py
# 27 malformed config.yaml (each key), 28 bad profile file -> tests/test_config.py
# 29 missing module / bad --function / bad JSONL line      -> tests/test_cli.py
# 30 forged, altered, replayed, swapped payloads, 31 function not allowed -> tests/test_signing.py
# 32 scheduler refuses / hangs / missing                   -> tests/test_provider_errors.py
