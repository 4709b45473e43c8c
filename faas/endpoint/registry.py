"""Endpoint records in the store (``endpoints/NAME.json``): how clients find an endpoint's queue
by name, and whether its daemon is alive."""
from __future__ import annotations

import json
import time

from ..exceptions import EndpointNotFound
from ..messages import endpoint_key
from ..store import KeyNotFound, Store

#: a record whose heartbeat is older than this many daemon periods is reported as "lost"
STALE_AFTER = 90.0


def publish(store: Store, record: dict) -> None:
    record = dict(record, heartbeat_at=time.time())
    store.put(endpoint_key(record["name"]), json.dumps(record, indent=1).encode())


def read(store: Store, name: str) -> dict:
    try:
        record = json.loads(store.get(endpoint_key(name)))
    except KeyNotFound:
        raise EndpointNotFound(
            f"endpoint {name!r} is not registered in store {store.url}: start it on the site with "
            f"`faas endpoint start {name}` (after `faas endpoint configure {name} --store {store.url}`), "
            f"or check the store URL and the endpoint name") from None
    return _with_state(record)


def list_all(store: Store) -> list[dict]:
    out = []
    for key in sorted(store.list("endpoints/")):
        if key.endswith(".json"):
            try:
                out.append(_with_state(json.loads(store.get(key))))
            except (KeyNotFound, ValueError):
                continue
    return out


def _with_state(record: dict) -> dict:
    if record.get("status") == "running" and time.time() - record.get("heartbeat_at", 0) > STALE_AFTER:
        record["status"] = "lost"
    return record
