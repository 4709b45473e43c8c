"""Action providers for the runner tests (no tests here): they keep their state in the store,
so a runner in another process sees the same actions, and count every start."""
from __future__ import annotations

import json
import time
import uuid

from faas.store import open_store

URL = "test://counting"


class ActionUnableToRun(Exception):
    pass


class CountingProvider:
    """``run`` is idempotent by request id. Body keys: ``seconds`` (time to succeed), ``gate``
    (stay ACTIVE until the store key ``testprov/gates/<gate>`` exists), ``fail`` (FAILED),
    ``inactive`` (INACTIVE until the gate opens), ``unable`` (raise ActionUnableToRun)."""

    def __init__(self, store_url: str):
        self.store = open_store(store_url)

    def _key(self, rid: str) -> str:
        return f"testprov/actions/{rid}.json"

    def run(self, body: dict, request_id: str, ctx) -> dict:
        self.store.put(f"testprov/calls/{request_id}/{uuid.uuid4().hex}", b"")
        if body.get("unable"):
            raise ActionUnableToRun("this action cannot run: " + str(body["unable"]))
        if not self.store.exists(self._key(request_id)):
            self.store.put(f"testprov/starts/{request_id}/{uuid.uuid4().hex}", b"")
            self.store.put(self._key(request_id), json.dumps(
                {"body": body, "started": time.time(), "user": ctx.username,
                 "run_id": ctx.run_id}).encode())
        return self.status(request_id, ctx)

    def status(self, action_id: str, ctx) -> dict:
        a = json.loads(self.store.get(self._key(action_id)))
        body = a["body"]
        doc = {"action_id": action_id, "details": {"echo": body}, "poll_after": 0.1}
        gate = body.get("gate") or body.get("inactive")
        if a.get("canceled"):
            return dict(doc, status="FAILED", details={"cause": "canceled"})
        if gate and not self.store.exists(f"testprov/gates/{gate}"):
            return dict(doc, status="INACTIVE" if body.get("inactive") else "ACTIVE")
        if time.time() - a["started"] < body.get("seconds", 0):
            return dict(doc, status="ACTIVE")
        if body.get("fail"):
            return dict(doc, status="FAILED", details={"cause": str(body["fail"])})
        return dict(doc, status="SUCCEEDED")

    def cancel(self, action_id: str, ctx) -> dict:
        a = json.loads(self.store.get(self._key(action_id)))
        a["canceled"] = True
        self.store.put(self._key(action_id), json.dumps(a).encode())
        self.store.put(f"testprov/canceled/{action_id}", b"")
        return self.status(action_id, ctx)

    def release(self, action_id: str, ctx) -> dict:
        self.store.put(f"testprov/released/{action_id}", b"")
        return {"action_id": action_id, "status": "SUCCEEDED"}


def counts(store_url: str, what: str = "starts") -> dict[str, int]:
    """request id -> how many times it was started (``starts``) or run() called (``calls``)."""
    store = open_store(store_url)
    out: dict[str, int] = {}
    for key in store.list(f"testprov/{what}/"):
        rid = key[len(f"testprov/{what}/"):].rsplit("/", 1)[0]
        out[rid] = out.get(rid, 0) + 1
    return out


def open_gate(store_url: str, gate: str) -> None:
    open_store(store_url).put(f"testprov/gates/{gate}", b"")


def resolver(store_url: str):
    provider = CountingProvider(store_url)

    def resolve(url: str):
        if url != URL:
            raise ActionUnableToRun(f"no action provider for {url}")
        return provider
    return resolve


def serve_forever(store_url: str) -> None:
    """Entry point of the runner subprocess in the kill -9 test."""
    import logging

    from faas.flows.runner import Runner
    logging.basicConfig(level=logging.INFO)
    Runner(store_url, resolve=resolver(store_url)).serve(max_wait=0.2)
