"""Signed tasks: a forged, altered, unsigned or replayed message never runs, a payload swapped in
the store never loads, keys rotate; allowed_functions and allowed_serializers refuse the rest."""
from __future__ import annotations

import json
import struct
import time
import uuid
from pathlib import Path

import pytest
from helpers import running_endpoint

import faas
from faas import serialize, signing
from faas.endpoint import config as ep_config
from faas.exceptions import FunctionNotAllowed, SerializationError, SignatureError
from faas.messages import args_key, function_key
from faas.store import open_queue

K1, K2, OTHER = signing.new_key("k1"), signing.new_key("k2"), signing.new_key("k1")


def mark(path):
    Path(path).write_text("ran")
    return "ran"


def echo(x):
    return x


def never_run_before(x):
    return ("original", x)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("sign") / "h"
    with running_endpoint(home, name="signed", signing_keys=[K1, K2]) as cfg:
        yield home, cfg


def client(key):
    return faas.client(endpoint="signed", signing_key=key)


def pool_log(home):
    return "".join(p.read_text() for p in
                   (ep_config.endpoint_dir("signed", home) / "blocks").glob("**/pool.log"))


def raw_send(home, body: dict):
    q = open_queue(f"local://{home / 'queues'}/signed")
    q.send([json.dumps(body)])


def test_signed_tasks_run_with_either_key(site):
    for key in (K1, K2):
        c = client(key)
        assert c.get_result(task_id=c.run(function_id=c.register_function(echo), args=(7,)), timeout=30) == 7
        c.close()


def test_a_client_without_an_accepted_key_fails_at_submit(site):
    """The endpoint's record names the key ids it accepts: no waiting for a result that never
    comes (a CI runner without FAAS_SIGNING_KEY)."""
    c = faas.client(endpoint="signed")
    t0 = time.monotonic()
    with pytest.raises(SignatureError, match="runs only signed tasks.*set FAAS_SIGNING_KEY.*k1, k2"):
        c.run(function_id=c.register_function(echo), args=(1,))
    stranger = faas.client(endpoint="signed", signing_key=signing.new_key("k9"))
    with pytest.raises(SignatureError, match="does not accept signing key 'k9'"):
        stranger.run(function_id=stranger.register_function(echo), args=(1,))
    assert time.monotonic() - t0 < 10
    c.close()
    stranger.close()


def test_a_forged_key_never_runs_and_its_sender_hears_why(site, tmp_path):
    home, _ = site
    c = faas.client(endpoint="signed", signing_key=OTHER)   # key id k1, another secret
    marker = tmp_path / "ran"
    tid = c.run(function_id=c.register_function(mark), args=(str(marker),))
    t0 = time.monotonic()
    with pytest.raises(SignatureError, match=f"task {tid} refused by endpoint 'signed': bad signature"):
        c.get_result(task_id=tid, timeout=30)
    assert time.monotonic() - t0 < 20
    assert not marker.exists()
    assert f"claims task {tid}): bad signature" in pool_log(home)
    assert "payload was not deserialized" in pool_log(home)
    assert any(k.startswith("dead-letters/refused-") for k in c.store.list("dead-letters/"))
    # an unsigned message put on the queue by hand: refused the same way
    body = signed_body(c, mark, (str(marker),))
    del body["sig"]
    raw_send(home, body)
    deadline = time.monotonic() + 20
    while f"claims task {body['id']}): unsigned" not in pool_log(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"claims task {body['id']}): unsigned" in pool_log(home)
    assert not marker.exists()
    c.close()


def signed_body(c, fn, args, key=K1, **over):
    fid = c.register_function(fn)
    tid = str(uuid.uuid4())
    body = {"v": 1, "id": tid, "fn": fid, "n": 1, "sent": time.time(), "rk": c.task_secret(tid), "cid": c.client_id,
            "fk": c.function_secret(fid), "expires": time.time() + 60,
            "args": serialize.b64(serialize.calls_bytes([(args, {})]))}
    body.update(over)
    body["sig"] = signing.sign(body, signing.parse_key(key))
    return body


def test_altered_message_never_runs(site, tmp_path):
    home, _ = site
    c = client(K1)
    marker = tmp_path / "ran"
    body = signed_body(c, echo, (1,))
    body["fn"] = c.register_function(mark)                      # swap the function after signing
    body["args"] = serialize.b64(serialize.calls_bytes([((str(marker),), {})]))
    raw_send(home, body)
    time.sleep(2)
    assert not marker.exists()
    assert f"claims task {body['id']}): bad signature (forged or altered)" in pool_log(home)
    c.close()


def test_replay_past_expiry_never_runs(site, tmp_path):
    home, _ = site
    c = client(K1)
    marker = tmp_path / "ran"
    body = signed_body(c, mark, (str(marker),), sent=time.time() - 120, expires=time.time() - 60)
    raw_send(home, body)
    time.sleep(2)
    assert not marker.exists()
    assert f"claims task {body['id']}): expired" in pool_log(home)
    c.close()


def test_swapped_payloads_in_store_never_load(site, tmp_path):
    home, _ = site
    c = client(K1)
    marker = tmp_path / "ran"
    # Arguments big enough to spill: swap them in the store before the task runs.
    with faas.Executor("signed", client=c) as ex:
        blockers = [ex.submit(time.sleep, 1.5) for _ in range(2)]
        time.sleep(0.3)
        f = ex.submit(echo, b"x" * (2 << 20))
        time.sleep(0.3)
        c.store.put(args_key(f.task_id, c.client_id), serialize.calls_bytes([((str(marker),), {})]))
        with pytest.raises(SignatureError, match="do not match the digest"):
            f.result(timeout=30)
        for b in blockers:
            b.result(timeout=30)
    # A function object swapped under its id (before any worker loaded it) never loads either.
    fid = c.register_function(never_run_before)
    _, evil = serialize.function_bytes(mark)
    c.store.put(function_key(fid, c.client_id), evil)
    tid = c.run(function_id=fid, args=(str(marker),))
    with pytest.raises(SignatureError, match="not the one its client sealed"):
        c.get_result(task_id=tid, timeout=30)
    assert not marker.exists()
    c.close()


def test_allowed_functions_and_serializers(tmp_path):
    home = tmp_path / "h"
    probe = faas.client(store=(home / "store").as_uri(), home=str(home))   # the same user: the same result key
    allowed = probe.register_function(echo)
    with running_endpoint(home, name="strict", allowed_functions=[allowed]):
        c = faas.client(endpoint="strict")
        assert c.get_result(task_id=c.run(function_id=allowed, args=(3,)), timeout=30) == 3
        tid = c.run(function_id=c.register_function(mark), args=("/nonexistent",))
        with pytest.raises(FunctionNotAllowed, match="is not allowed on endpoint 'strict'"):
            c.get_result(task_id=tid, timeout=30)
        # A payload that says it was made by another serializer is not loaded.
        calls = serialize.calls_bytes([((1,), {})])
        header, payload = serialize.unframe(calls)
        head = json.dumps(dict(header, ser="pickle")).encode()
        c.store.put("args/x", serialize.MAGIC + struct.pack(">I", len(head)) + head + payload)
        with pytest.raises(SerializationError, match="serialized with 'pickle'"):
            serialize.load_calls(c.store.get("args/x"))
        c.close()


def test_embedded_default_signs_by_default(tmp_path, monkeypatch):
    """The embedded endpoint makes a private key (mode 600) and refuses unsigned messages."""
    home = tmp_path / "h"
    monkeypatch.setenv("FAAS_HOME", str(home))
    from faas.endpoint import control
    try:
        with faas.Executor() as ex:
            assert ex.submit(echo, 5).result(timeout=60) == 5
        key_file = ep_config.endpoint_dir("local", home) / "signing.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        marker = tmp_path / "ran"
        c = faas.client(signing_key=OTHER)
        tid = c.run(function_id=c.register_function(mark), args=(str(marker),))
        with pytest.raises(SignatureError, match="bad signature"):
            c.get_result(task_id=tid, timeout=30)
        assert not marker.exists()
        c.close()
    finally:
        control.stop("local", home)
