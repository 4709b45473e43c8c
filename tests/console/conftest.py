"""Shared by the console tests: a store filled the way endpoints and pools fill it."""
from __future__ import annotations

import os
import time
import uuid

import pytest

from faas import sealing, serialize
from faas.endpoint import registry
from faas.endpoint.journal import Journal
from faas.messages import args_key, function_key, result_key
from faas.store import open_store


def square(x):
    return x * x


def boom(x):
    raise ValueError(f"bad value {x}")


class Opaque:
    pass


def put_function(store, fn, user_key: bytes) -> str:
    fid, data = serialize.function_bytes(fn)
    store.put(function_key(fid, sealing.client_id(user_key)),
              serialize.seal_function(data, fid, sealing.function_secret(user_key, fid)))
    return fid


def put_result(store, task_id: str, outcomes: list, user_key: bytes, *, started: float, finished: float,
               endpoint: str = "site", block: str = "block-0", host: str = "node1") -> None:
    """A result as the endpoint that ran the task writes it: sealed with the task's secret."""
    header = {"task_id": task_id, "started": started, "finished": finished, "endpoint": endpoint,
              "block": block, "host": host, "pid": 123}
    store.put(result_key(task_id, sealing.client_id(user_key)),
              serialize.result_bytes(header, outcomes, sealing.task_secret(user_key, task_id)))


class Filled:
    """A store with an endpoint ``site``, two functions and a few finished tasks."""

    def __init__(self, store, user_key: bytes):
        self.store, self.user_key = store, user_key
        self.cid = sealing.client_id(user_key)
        registry.publish(store, {"name": "site", "status": "running", "queue": "local:///nonexistent/q",
                                 "provider": "slurm", "host": "login1", "max_blocks": 4,
                                 "nodes_per_block": 1, "max_workers_per_node": 8, "blocks": 2})
        self.f_square = put_function(store, square, user_key)
        self.f_boom = put_function(store, boom, user_key)
        now = time.time()
        j = Journal(store, "site", "block-0", "node1")
        self.ok_ids, self.failed_ids = [], []
        for i in range(30):
            tid = str(uuid.uuid4())
            t = now - 60 * i - 5
            j.record(tid, self.f_square, n=1, sent=t - 2, started=t - 1, finished=t, status="success")
            put_result(store, tid, [(True, i * i)], user_key, started=t - 1, finished=t)
            self.ok_ids.append(tid)
        for i in range(3):
            tid = str(uuid.uuid4())
            t = now - 30 * i - 10
            j.record(tid, self.f_boom, n=1, sent=t - 2, started=t - 1, finished=t, status="failed",
                     error="ValueError: bad value")
            put_result(store, tid, [serialize.error_outcome(_raised(i))], user_key, started=t - 1, finished=t)
            self.failed_ids.append(tid)
        j.close()
        # a task whose arguments spilled to the store, and whose result holds a user class
        self.opaque_id = str(uuid.uuid4())
        store.put(args_key(self.opaque_id, self.cid),
                  serialize.seal_args(serialize.calls_bytes([((7, "seven"), {"scale": 2.5})]), self.opaque_id,
                                      sealing.task_secret(user_key, self.opaque_id)))
        put_result(store, self.opaque_id, [(True, Opaque())], user_key, started=now - 1, finished=now)


def _raised(i):
    try:
        boom(i)
    except ValueError as e:
        return e


@pytest.fixture
def filled(monkeypatch):
    """The store, and the result key of the user whose tasks these are (FAAS_RESULT_KEY: every
    console and client in the test is that user)."""
    key = sealing._b64(os.urandom(32))
    monkeypatch.setenv("FAAS_RESULT_KEY", key)
    store = open_store(f"memory://console-{uuid.uuid4().hex}")
    yield Filled(store, sealing.load_user_key(None, key))
    store.clear()
