"""The worker, not the pool's one process, checks a task's signature (issue 18): a message that
is forged, altered, unsigned or expired is refused there before anything of it is unpickled, and
its sender hears why exactly as when the pool refused it."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from helpers import running_endpoint, wait_until

import faas
from faas import serialize, signing
from faas.endpoint import config as ep_config
from faas.endpoint import worker
from faas.exceptions import SignatureError
from faas.store import open_queue, open_store

KEY = signing.new_key("k1")


class Bomb:
    """Unpickling it creates ``path``: proof that a payload was deserialized."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def echo(x):
    return x


def body_for(c, marker: Path, key: str | None = KEY, **over) -> dict:
    """A task message as a client writes it, its argument a :class:`Bomb`; signed with ``key``."""
    tid, fid = str(uuid.uuid4()), c.register_function(echo)
    body = {"v": 1, "id": tid, "fn": fid, "n": 1, "sent": time.time(), "fk": c.function_secret(fid),
            "rk": c.task_secret(tid), "cid": c.client_id, "expires": time.time() + 60,
            "args": serialize.b64(serialize.calls_bytes([((Bomb(str(marker)),), {})]))}
    body.update(over)
    if key is not None:
        body["sig"] = signing.sign(body, signing.parse_key(key))
    return body


def run_in_worker(store, body: dict, keys) -> tuple:
    """One job through the worker's real entry (what its process does with a pipe message)."""
    tasks = {"keys": keys, "endpoint": "e", "engine": "GlobusComputeEngine"}
    return worker._run_message(store, {}, (body["id"], json.dumps(body), 1 << 18, False, None),
                               {"endpoint": "e"}, ("dill",), tasks, 1, None)[1]


def test_the_worker_refuses_before_it_unpickles(tmp_path):
    store_url = (tmp_path / "store").as_uri()
    c = faas.client(store=store_url, home=str(tmp_path / "h"))
    store = open_store(store_url)
    keys = signing.parse_keys([KEY])
    marker = tmp_path / "unpickled"
    cases = {
        "bad signature (forged or altered)": body_for(c, marker, key=signing.new_key("k1")),
        "unsigned": body_for(c, marker, key=None),
        "signed with unknown key 'k9'": body_for(c, marker, key=signing.new_key("k9")),
        "expired": body_for(c, marker, sent=time.time() - 120, expires=time.time() - 60),
    }
    for why, body in cases.items():
        task_id, status, data, notice = run_in_worker(store, body, keys)
        assert (task_id, status, notice) == (body["id"], "refused", None)
        assert data.decode().startswith(why)
        assert not marker.exists(), f"a payload refused as {why!r} was unpickled"
        assert not store.exists(f"results/{c.client_id}/{body['id']}")   # nothing under its id
    # the bomb is real: a message signed with the endpoint's key is deserialized (and runs)
    good = body_for(c, marker)
    task_id, status, _, _ = run_in_worker(store, good, keys)
    assert (task_id, status) == (good["id"], "success") and marker.exists()
    c.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("admission") / "h"
    with running_endpoint(home, name="checked", signing_keys=[KEY]) as cfg:
        yield home, cfg


def test_a_forged_message_through_the_endpoint_is_refused_and_told(site, tmp_path):
    """End to end: the refusal reaches the client's future (outcomes.py's sealed notice), the
    message is set aside for the administrator and gone from the queue, nothing was unpickled,
    and the endpoint goes on running signed tasks."""
    home, _ = site
    c = faas.client(endpoint="checked", signing_key=signing.new_key("k1"))   # k1, another secret
    marker = tmp_path / "unpickled"
    tid = c.run(function_id=c.register_function(echo), args=(Bomb(str(marker)),))
    with pytest.raises(SignatureError, match=f"task {tid} refused by endpoint 'checked': bad signature"):
        c.get_result(task_id=tid, timeout=30)
    blocks = ep_config.endpoint_dir("checked", home) / "blocks"
    wait_until(lambda: any(f"claims task {tid}): bad signature" in p.read_text()
                           for p in blocks.glob("**/pool.log")), 10, "the refusal in pool.log")
    assert not marker.exists()
    assert any(k.startswith("dead-letters/refused-") for k in c.store.list("dead-letters/"))
    queue = open_queue(f"local://{home / 'queues'}/checked")
    wait_until(lambda: sum(queue.depth().values()) == 0, 10, "the refused message gone from the queue")
    good = faas.client(endpoint="checked", signing_key=KEY)
    assert good.get_result(task_id=good.run(function_id=good.register_function(echo), args=(5,)),
                           timeout=30) == 5
    c.close()
    good.close()
