"""Endpoint records in the store (``endpoints/NAME.json``): how clients find an endpoint's queue
by name or by its UUID (``endpoint_id`` in the record), and whether its daemon is alive."""
from __future__ import annotations

import json
import re
import time

from ..exceptions import EndpointNotFound
from ..messages import endpoint_key
from ..store import KeyNotFound, Store
from .config import NAME_RE, is_uuid

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


def resolve(store: Store, ref: str) -> dict:
    """The record of the endpoint ``ref`` names: an endpoint's UUID (as Globus Compute's
    ``endpoint_id``) or its name. An unknown one: EndpointNotFound listing those there are."""
    if is_uuid(ref):   # records are shared ground: one whose name is no endpoint name is skipped
        same = [r for r in list_all(store) if str(r.get("endpoint_id", "")).lower() == ref.lower()
                and re.match(NAME_RE, str(r.get("name", "")))]
        if len(same) > 1:
            raise EndpointNotFound(
                f"endpoint id {ref} is published by {len(same)} endpoints in store {store.url} "
                f"({', '.join(sorted(r['name'] for r in same))}): one was copied with its endpoint.json; "
                f"delete that endpoint.json and restart it to give it a new id, or use a name")
        if same:
            return same[0]
    try:
        return read(store, ref)
    except EndpointNotFound as e:
        known = ", ".join(f"{r.get('name')} ({r.get('endpoint_id') or 'no id yet'})" for r in list_all(store))
        what = (f"no endpoint with id {ref} is registered in store {store.url} (an endpoint publishes "
                f"its id when it starts; `faas endpoint list` on its site shows it)") if is_uuid(ref) else str(e)
        raise EndpointNotFound(f"{what}; known endpoints: {known or 'none'}") from None


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
