"""Issue 14, as anyone who can write the store (another user of a shared folder, a principal
with bucket write on S3): a planted result is never unpickled and the real one still arrives; a
cancel marker only counts from the task's own client; secrets files others could read or swap
stop the program. On the file store and on S3/SQS (moto's server over HTTP)."""
from __future__ import annotations

import json
import os
import pickle
import time

import pytest
from helpers import running_endpoint, wait_until

import faas
from faas import sealing, serialize, signing
from faas.exceptions import ConfigError, ResultForged, TaskCancelled
from faas.messages import Notice, cancel_epoch_key, cancel_key, result_key

pytestmark = pytest.mark.slow


def slow(x, delay):
    import time
    time.sleep(delay)
    return x


class Pwn:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def evil_frame(task_id: str, path) -> bytes:
    return serialize.frame({"kind": "result", "status": "success", "task_id": task_id, "n": 1},
                           pickle.dumps([(True, Pwn(str(path)))]))


@pytest.fixture(params=["file", "s3"])
def endpoint(request, tmp_path):
    over = {}
    if request.param == "s3":
        request.getfixturevalue("moto_url")
        over = {"store": f"s3://{request.getfixturevalue('s3_bucket')}/faas", "queue": "sqs"}
    with running_endpoint(tmp_path / "h", name="trust", **over) as cfg:
        yield cfg.store


def test_a_planted_result_is_refused_and_the_real_one_arrives(endpoint, tmp_path):
    pwned = tmp_path / "pwned"
    c = faas.client(endpoint="trust", store=endpoint)
    with faas.Executor("trust", client=c) as ex:
        f = ex.submit(slow, 42, 3)
        c.flush()
        # planted before the real result is written (the task sleeps 3 s)
        c.store.put(result_key(f.task_id, c.client_id), evil_frame(f.task_id, pwned))
        assert f.result(timeout=90) == 42
        g = ex.submit(slow, "other", 0)
        assert g.result(timeout=90) == "other"
    other = faas.client(endpoint="trust", store=endpoint)   # another process of the same user, later
    assert other.get_result(f.task_id, timeout=10) == 42   # the real one replaced the planted one
    # planted after the fact: refused by name, never loaded
    c.store.put(result_key(f.task_id, c.client_id), evil_frame(f.task_id, pwned))
    with pytest.raises(ResultForged, match=f"task {f.task_id}.*it is not sealed"):
        other.get_result(f.task_id, timeout=0)
    assert other.get_task(f.task_id)["error"]["type"] == "ResultForged"
    # another task's genuine result copied under this task's key: it opens only under its own task's secret
    c.store.put(result_key(f.task_id, c.client_id), c.store.get(result_key(g.task_id, c.client_id)))
    with pytest.raises(ResultForged, match="does not open under its secret"):
        other.get_result(f.task_id, timeout=0)
    # a genuine frame whose payload was swapped
    genuine = c.store.get(result_key(g.task_id, c.client_id))
    header, _ = serialize.unframe(genuine)
    c.store.put(result_key(g.task_id, c.client_id), serialize.frame(header, pickle.dumps([(True, Pwn(str(pwned)))])))
    with pytest.raises(ResultForged, match="does not open under its secret"):
        other.get_result(g.task_id, timeout=0)
    assert not pwned.exists(), "a planted result was unpickled"
    c.close()
    other.close()


def test_a_cancel_only_counts_from_the_tasks_client(endpoint):
    c = faas.client(endpoint="trust", store=endpoint)
    fid = c.register_function(slow)
    tid = c.run(function_id=fid, args=(7, 3))
    # someone else writes a marker (they cannot make its MAC) and moves the epoch forward
    c.store.put(cancel_key(tid, c.client_id), f"{time.time()!r} {'0' * 64}".encode())
    c.store.put(cancel_epoch_key(c.client_id), str(time.time() + 5).encode())
    assert c.get_result(tid, timeout=90) == 7
    # the client's own cancel stops a running task
    tid = c.run(function_id=fid, args=(8, 60))
    deadline = time.monotonic() + 30
    while c.get_task(tid)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert c.cancel(tid)["status"] in ("cancelled", "cancelling")
    with pytest.raises(TaskCancelled):
        c.get_result(tid, timeout=30)
    c.close()


def test_a_started_notice_counts_only_from_the_tasks_endpoint(endpoint, caplog):
    """Whoever may put messages on a client's reply queue (on SQS, any principal the queue's policy
    lets send) must not mark its tasks running: a running future refuses ``cancel()``, and the
    console and get_task show the notice's place. Before, started notices were unsealed."""
    c = faas.client(endpoint="trust", store=endpoint)
    with faas.Executor("trust", client=c) as ex:
        busy = [ex.submit(slow, i, 12) for i in range(2)]   # both workers taken
        wait_until(lambda: all(f.running() for f in busy), 60, "the endpoint's own (sealed) started notices")
        assert c.get_task(busy[0].task_id)["where"]["endpoint"] == "trust"
        f = ex.submit(slow, 3, 0)   # waits for a worker: no started notice of its own for 12 s
        c.flush()
        reply = c._reply_queue()
        forged = {"host": "attacker", "endpoint": "trust", "pid": 1}
        for mac in (None, "0" * 64, sealing.notice_mac("B" * 43, f.task_id, "started", None)):
            notice = Notice(id=f.task_id, event="started", where=forged, mac=mac)
            reply.send([notice.model_dump_json(exclude_none=True)])
        with caplog.at_level("WARNING", logger="faas.client"):
            wait_until(lambda: f.running() or caplog.text.count(f"started notice for task {f.task_id}") == 3,
                       60, "the forged notices read")
        assert not f.running(), "a forged started notice marked the task running"
        assert "where" not in c.get_task(f.task_id)
        assert f.cancel(), "a forged started notice made the task refuse its cancel"
        assert [g.result(timeout=90) for g in busy] == [0, 1]
    c.close()


def test_secret_files_must_be_private(tmp_path, monkeypatch):
    home = tmp_path / "h"
    monkeypatch.setenv("FAAS_HOME", str(home))
    c = faas.client(autostart=False)
    _ = c.user_key   # made on first use
    assert oct(os.stat(home).st_mode & 0o777) == "0o700"
    key = home / "result.key"
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    os.chmod(key, 0o644)
    with pytest.raises(ConfigError, match=f"{key}: .*mode 644.*chmod 600"):
        _ = faas.client(autostart=False).user_key
    os.chmod(key, 0o600)
    os.rename(key, home / "elsewhere")
    os.symlink(home / "elsewhere", key)
    with pytest.raises(ConfigError, match="symbolic link"):
        _ = faas.client(autostart=False).user_key
    # an endpoint's signing key, and a multi-user endpoint's per-user keys
    path = tmp_path / "signing.key"
    signing.write_key_file(path, signing.new_key("k1"))
    assert signing.read_key_file(path)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        signing.read_key_file(path)
    from faas.endpoint.multiuser import files
    d = tmp_path / "mu"
    d.mkdir()
    (d / files.USER_KEYS).write_text(json.dumps({"local:alice": [signing.new_key("a1")]}))
    os.chmod(d / files.USER_KEYS, 0o644)
    with pytest.raises(ConfigError, match="per-user signing keys.*chmod 600"):
        files.read_user_keys(d)
    os.chmod(d / files.USER_KEYS, 0o600)
    assert files.read_user_keys(d)


def test_a_key_file_written_again_is_a_new_private_file(tmp_path):
    """``faas endpoint configure --signing-key new`` writes signing.key again: a file someone
    made readable (or a link put in its place) must not keep the new secret readable, or have it
    written where the link points."""
    path = tmp_path / "signing.key"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    signing.write_key_file(path, signing.new_key("k2"))
    assert os.stat(path).st_mode & 0o777 == 0o600 and signing.read_key_file(path)
    target = tmp_path / "elsewhere"
    target.write_text("")
    path.unlink()
    os.symlink(target, path)
    signing.write_key_file(path, signing.new_key("k3"))
    assert target.read_text() == "" and not path.is_symlink() and "k3" in signing.read_key_file(path)
