"""Attacks on what a client keeps in a store that others may read.

On S3 the Terraform module's one client role lets every client list the bucket and read every
object: another client (Bob, with his own result key) reads what Alice's endpoint stored for her.
He must learn nothing of it but sizes: her results, spilled arguments and functions are sealed
(encrypted) under her secrets (faas/sealing.py), and what he plants, alters or copies there is
never unpickled. The same holds for a real second Unix account on a file store opened to it.
"""
from __future__ import annotations

import base64
import json
import os
import pickle
import secrets
import sys
import uuid
from pathlib import Path

import pytest

import faas
from faas import sealing, serialize
from faas.exceptions import ResultForged, SignatureError
from faas.messages import args_key, function_key, result_key
from faas.store import create_queue, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import open_to_users, python_as, running_endpoint, shared_script  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

pytestmark = pytest.mark.timeout(240)

RESULT_MARK = secrets.token_hex(32)   # what only Alice's function computes (from her argument)
ARGS_MARK = secrets.token_hex(32)     # what only her arguments hold
FN_MARK = secrets.token_hex(32)       # what only her function holds (a global it uses: shipped with it)
ERROR_MARK = secrets.token_hex(32)    # what only the message of her function's error holds


def alices_work(x):
    if x == FN_MARK:
        return None
    if x == "fail":
        raise ValueError(f"the password is {ERROR_MARK}")
    return {"answer": x[:64][::-1]}


def other_work(x):
    return x


@pytest.fixture
def s3_site(request, tmp_path):
    """A running endpoint on S3 + SQS (moto's server), and the store's URL."""
    request.getfixturevalue("moto_url")
    bucket = request.getfixturevalue("s3_bucket")
    with running_endpoint(tmp_path / "h", name="shared", store=f"s3://{bucket}/faas", queue="sqs") as cfg:
        yield cfg.store


def _client(store: str, tmp_path, who: str) -> faas.Client:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    return faas.client(endpoint="shared", store=store, home=str(tmp_path / who), result_key=key)


def _everything(store_url: str) -> dict[str, bytes]:
    """What a holder of the client role reads: every object in the bucket."""
    store = open_store(store_url)
    return {key: store.get(key) for key in store.list("")}


def test_another_client_of_the_bucket_reads_no_result(s3_site, tmp_path):
    alice, bob = _client(s3_site, tmp_path, "alice"), _client(s3_site, tmp_path, "bob")
    fid = alice.register_function(alices_work)
    tid = alice.run(fid, args=(RESULT_MARK[::-1],))   # small: it rides in the message, not the store
    assert alice.get_result(tid, timeout=120) == {"answer": RESULT_MARK}
    spilled = alice.run(fid, args=(ARGS_MARK + "." * (400 << 10),))   # too large for a message
    assert alice.get_result(spilled, timeout=120) == {"answer": ARGS_MARK[::-1]}
    seen = _everything(s3_site)   # Bob lists the bucket and reads it all
    assert {result_key(tid, alice.client_id), args_key(spilled, alice.client_id),
            function_key(fid, alice.client_id)} <= set(seen), sorted(seen)
    marks = {"result": RESULT_MARK, "arguments": ARGS_MARK, "function": FN_MARK}
    leaked = {what: [key for key, data in seen.items() if mark.encode() in data] for what, mark in marks.items()}
    assert not any(leaked.values()), f"Bob read Alice's objects: {leaked}"
    # nor can he read it with his own key: it opens only under her task's secret
    with pytest.raises(ResultForged, match=f"task {tid}"):
        serialize.open_result(seen[result_key(tid, alice.client_id)], tid, bob.task_secret(tid))
    alice.close()
    bob.close()


# Bob, a real second account, reads every file of a store opened to him and says which of the
# marks (argv[2:]) each holds
BOB_READS = r"""
import json, os, sys
found = {}
for folder, _, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            data = f.read()
        found[os.path.relpath(path, sys.argv[1])] = [m for m in sys.argv[2:] if m.encode() in data]
print(json.dumps(found))
"""


@pytest.mark.slow
def test_another_account_that_may_read_a_file_store_reads_no_result(mu_users, mu_shared, tmp_path):
    """The same on a shared file store whose folders were opened to other accounts (a project
    folder shared with a group, a backup): mode 700 keeps them out no longer, the seal does."""
    _, bob, _ = mu_users
    base = mu_shared / f"readable-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    store_url = (base / "store").as_uri()
    with running_endpoint(base / "h", name="shared", store=store_url):
        alice = _client(store_url, tmp_path, "alice")
        fid = alice.register_function(alices_work)
        tid = alice.run(fid, args=(RESULT_MARK[::-1],))
        spilled = alice.run(fid, args=(ARGS_MARK + "." * (2 << 20),))   # over the local queue's 1 MiB
        assert alice.get_result(tid, timeout=120) == {"answer": RESULT_MARK}
        assert alice.get_result(spilled, timeout=120) == {"answer": ARGS_MARK[::-1]}
        failed = alice.run(fid, args=("fail",))   # its error's message is hers too (the journal)
        with pytest.raises(ValueError, match=ERROR_MARK):
            alice.get_result(failed, timeout=120)
        alice.close()
    open_to_users(base / "store")   # the endpoint has stopped: its journal is written
    script = shared_script(base, "bob_reads.py", BOB_READS)
    read = python_as(bob, script, str(base / "store"), RESULT_MARK, ARGS_MARK, FN_MARK, ERROR_MARK)
    assert read.returncode == 0, read.stderr
    found = json.loads(read.stdout)
    assert {result_key(tid, alice.client_id), args_key(spilled, alice.client_id),
            function_key(fid, alice.client_id)} <= set(found), sorted(found)
    assert any(key.startswith("journal/") for key in found), sorted(found)
    leaked = {key: marks for key, marks in found.items() if marks}
    assert not leaked, f"Bob ({bob.pw_name}) read Alice's objects: {leaked}"


# -- the construction itself, without a site ------------------------------------------------------

def _result(task_id: str, rk: str, value: object) -> bytes:
    return serialize.result_bytes({"task_id": task_id, "started": 1.0, "finished": 2.0, "host": "h"},
                                  [(True, value)], rk)


@pytest.fixture
def loads_calls(monkeypatch) -> list:
    """Every payload handed to the unpickler: faas's ``serialize.loads`` and dill's and
    pickle's own ``loads`` beneath it."""
    calls: list = []

    def recording(module, name: str) -> None:
        real = getattr(module, name)

        def loads(*args, **kwargs):
            calls.append(f"{module.__name__}.{name}")
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, loads)
    for module, name in ((serialize, "loads"), (serialize.dill, "loads"), (pickle, "loads")):
        recording(module, name)
    return calls


def test_a_result_moved_to_another_task_does_not_open(tmp_path, loads_calls):
    c = faas.client(store=(tmp_path / "store").as_uri(), home=str(tmp_path / "h"))
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    sealed_for_x = _result(x, c.task_secret(x), RESULT_MARK)
    assert RESULT_MARK.encode() not in sealed_for_x
    c.store.put(result_key(y, c.client_id), sealed_for_x)
    with pytest.raises(ResultForged, match=f"task {y}.*does not open"):
        c.get_result(y, timeout=0)
    # the same frame with its public header renamed to Y: the header is authenticated too
    renamed = sealed_for_x.replace(x.encode(), y.encode())
    c.store.put(result_key(y, c.client_id), renamed)
    with pytest.raises(ResultForged, match=f"task {y}.*does not open"):
        c.get_result(y, timeout=0)
    assert loads_calls == [], "a result that did not open reached the unpickler"
    c.close()


@pytest.mark.parametrize("where", ["header", "nonce", "ciphertext", "tag"])
def test_a_tampered_result_never_reaches_the_unpickler(tmp_path, loads_calls, where):
    c = faas.client(store=(tmp_path / "store").as_uri(), home=str(tmp_path / "h"))
    tid = str(uuid.uuid4())
    data = bytearray(_result(tid, c.task_secret(tid), RESULT_MARK))
    header, sealed = serialize.unframe(bytes(data))
    start = len(data) - len(sealed)
    at = {"header": data.index(b'"status":"success"') + len('"status":"'), "nonce": start,
          "ciphertext": start + 20, "tag": len(data) - 1}[where]
    data[at] ^= 0x01
    c.store.put(result_key(tid, c.client_id), bytes(data))
    with pytest.raises(ResultForged, match=f"task {tid}"):
        c.get_result(tid, timeout=0)
    assert loads_calls == [], "a tampered result reached the unpickler"
    # the genuine one opens and loads (the check above is not one that always fails)
    c.store.put(result_key(tid, c.client_id), _result(tid, c.task_secret(tid), RESULT_MARK))
    assert c.get_result(tid, timeout=0) == RESULT_MARK and loads_calls


def test_spilled_arguments_open_only_for_their_task(loads_calls):
    user_key = os.urandom(32)
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    sealed = serialize.seal_args(serialize.calls_bytes([((ARGS_MARK,), {})]), x, sealing.task_secret(user_key, x))
    assert ARGS_MARK.encode() not in sealed
    opened = serialize.open_args(sealed, x, sealing.task_secret(user_key, x))
    assert serialize.load_calls(opened) == [((ARGS_MARK,), {})]
    loads_calls.clear()
    tampered = bytearray(sealed)
    tampered[-5] ^= 0x01
    for data, tid in ((sealed, y), (bytes(tampered), x)):
        with pytest.raises(SignatureError, match=f"task {tid}.*not loaded"):
            serialize.open_args(data, tid, sealing.task_secret(user_key, tid))
    with pytest.raises(SignatureError, match="does not open"):   # another client's key
        serialize.open_args(sealed, x, sealing.task_secret(os.urandom(32), x))
    assert loads_calls == []


def test_a_function_opens_only_under_its_own_secret(loads_calls):
    user_key = os.urandom(32)
    fid, plain = serialize.function_bytes(alices_work)
    sealed = serialize.seal_function(plain, fid, sealing.function_secret(user_key, fid))
    assert FN_MARK.encode() in plain and FN_MARK.encode() not in sealed
    other, other_plain = serialize.function_bytes(other_work)
    tampered = bytearray(sealed)
    tampered[-1] ^= 0x01
    refused = {"tampered": (bytes(tampered), fid, sealing.function_secret(user_key, fid)),
               "another client's": (sealed, fid, sealing.function_secret(os.urandom(32), fid)),
               "moved to another id": (sealed, other, sealing.function_secret(user_key, other)),
               "unsealed": (plain, fid, sealing.function_secret(user_key, fid)),
               "no secret in the message": (sealed, fid, None)}
    for why, (data, function_id, fk) in refused.items():
        with pytest.raises(SignatureError, match=f"function {function_id}.*not loaded"):
            serialize.open_function(data, function_id, fk)
            pytest.fail(f"a {why} function opened")
    # sealed by its own client under its id but holding other bytes: the id is the plain frame's hash
    swapped = serialize.seal_function(other_plain, fid, sealing.function_secret(user_key, fid))
    with pytest.raises(SignatureError, match="do not hash to its id"):
        serialize.open_function(swapped, fid, sealing.function_secret(user_key, fid))
    assert loads_calls == []
    opened = serialize.open_function(sealed, fid, sealing.function_secret(user_key, fid))
    assert serialize.load_function(opened, fid)(FN_MARK) is None


def test_a_result_frame_says_nothing_but_its_status_and_timings():
    tid = str(uuid.uuid4())
    rk = sealing.task_secret(os.urandom(32), tid)
    failed = serialize.result_bytes({"task_id": tid, "started": 1.0, "finished": 2.0, "host": "secret-host"},
                                    [serialize.error_outcome(ValueError(RESULT_MARK))], rk)
    public, _ = serialize.unframe(failed)
    assert set(public) == {"task_id", "kind", "status", "n", "started", "finished", "seal"}
    assert RESULT_MARK.encode() not in failed and b"secret-host" not in failed
    header, _ = serialize.open_result(failed, tid, rk)
    assert RESULT_MARK in header["error"]["message"] and header["host"] == "secret-host"


def test_a_dead_letter_kept_in_the_store_holds_no_secret_nor_argument(tmp_path):
    """``dead-letters/`` is read by every client of a bucket: the copy of a dead-lettered or
    refused message kept there must not carry what opens the task's result and function."""
    from faas.endpoint import outcomes
    c = faas.client(store=(tmp_path / "store").as_uri(), home=str(tmp_path / "h"))
    fid = c.register_function(alices_work)
    queue = create_queue(f"local://{tmp_path / 'q'}/ep")
    tid, body = c._message(queue, fid, [((ARGS_MARK,), {})], None)
    fields = json.loads(body)
    secrets_sent = [fields[name] for name in ("rk", "fk", "args") if name in fields]
    assert len(secrets_sent) >= 2, fields   # the task's secret and its inline arguments at least
    for keep in (lambda: outcomes.set_aside(c.store, "m-1", "bad signature", body),
                 lambda: outcomes.keep_dead_letter(c.store, tid, body)):
        data = c.store.get(keep())
        assert not [s for s in secrets_sent if s.encode() in data], data
        assert tid.encode() in data and b"(withheld: " in data
    assert outcomes.withheld("not json {") == "not json {"
    c.close()
