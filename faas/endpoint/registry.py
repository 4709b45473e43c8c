"""Endpoint records in the store (``endpoints/NAME.json``): how clients find an endpoint's queue
by name or by its UUID (``endpoint_id`` in the record), and whether its daemon is alive.

The store is shared ground, and a record names the queue a client sends its tasks to (their
arguments, and the per-task secret that seals their results): a record someone else wrote
would get a client to hand its tasks to them, and then to load the results they forge. So a
client believes a record only when

- it carries a MAC under the client's own signing key (``macs``: one per key the endpoint
  accepts; every daemon and router publishes them), or
- the store can tell who wrote it (a file store: the file's owner) and that is root, the
  client's own account or the store's owner;
- else (an object store, a client with no signing key) there is nothing to check it against:
  a client that sends unsigned tasks through a bucket trusts whoever may write the bucket.

Records nobody vouches for are skipped when looking up an id, and named when looking up a name.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Iterable

from ..exceptions import EndpointNotFound, StoreError
from ..messages import endpoint_key
from ..signing import Key
from ..store import KeyNotFound, Store
from .config import NAME_RE, is_uuid

log = logging.getLogger("faas.registry")

#: a record whose heartbeat is older than this many daemon periods is reported as "lost"
STALE_AFTER = 90.0
#: the most read of a record (one is ~1-10 KB; a multi-user endpoint's holds a MAC per user)
RECORD_MAX = 4 << 20
_RECORD = b"faas-endpoint-record:v1:"


class RecordNotTrusted(EndpointNotFound):
    """A record is there, but nothing shows its endpoint wrote it."""


def _mac(secret: bytes, record: dict) -> str:
    body = json.dumps({k: v for k, v in record.items() if k != "macs"}, sort_keys=True,
                      separators=(",", ":"), default=str).encode()
    return hmac.new(secret, _RECORD + body, hashlib.sha256).hexdigest()


def publish(store: Store, record: dict, keys: Iterable[Key] = ()) -> None:
    """Write the record with a MAC under each of ``keys`` (the signing keys the endpoint
    accepts: each client checks the one it holds)."""
    record = dict(record, heartbeat_at=time.time())
    record["macs"] = {k.id: _mac(k.secret, record) for k in keys}
    store.put(endpoint_key(record["name"]), json.dumps(record, indent=1).encode())


def why_not_trusted(record: dict, writer: int | None, key: Key | None, store: Store) -> str | None:
    """None if the client holding ``key`` may believe ``record`` (written by uid ``writer``, None:
    unknown), else why not (see the module's docstring)."""
    macs = record.get("macs")
    if key is not None and isinstance(macs, dict) and isinstance(macs.get(key.id), str) and \
            hmac.compare_digest(macs[key.id], _mac(key.secret, record)):
        return None
    if writer is not None:
        if writer in (0, os.geteuid(), store.owner_uid()):
            return None
        return (f"it was written by uid {writer}, which is neither root, you nor the store's owner"
                + (f", and it carries no MAC under your signing key {key.id!r}" if key is not None else ""))
    if key is None:
        return None
    return (f"it carries no MAC under your signing key {key.id!r} (planted or altered, or the endpoint "
            f"does not accept that key)")


def _load(store: Store, key: str, signing_key: Key | None) -> dict:
    """The record at ``key``, believed; KeyNotFound, ValueError (not a record) or RecordNotTrusted."""
    data, writer = store.get_with_writer(key, RECORD_MAX + 1)
    if len(data) > RECORD_MAX:
        raise ValueError(f"over {RECORD_MAX} bytes")
    record = json.loads(data)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    why = why_not_trusted(record, writer, signing_key, store)
    if why is not None:
        raise RecordNotTrusted(
            f"the record {key} in store {store.url} is not believed: {why}. It was planted or altered "
            f"in the store, or its endpoint runs a faas older than this client (restart it to publish "
            f"MACs); check the store URL, the endpoint name and FAAS_SIGNING_KEY")
    return _with_state(record)


def read(store: Store, name: str, key: Key | None = None) -> dict:
    try:
        record = _load(store, endpoint_key(name), key)
    except ValueError as e:
        raise EndpointNotFound(f"the record of endpoint {name!r} in store {store.url} is not one "
                               f"({e}); restart the endpoint to publish it again") from None
    except KeyNotFound:
        raise EndpointNotFound(
            f"endpoint {name!r} is not registered in store {store.url}: start it on the site with "
            f"`faas endpoint start {name}` (after `faas endpoint configure {name} --store {store.url}`), "
            f"or check the store URL and the endpoint name") from None
    return record


def resolve(store: Store, ref: str, key: Key | None = None) -> dict:
    """The record of the endpoint ``ref`` names: an endpoint's UUID (as Globus Compute's
    ``endpoint_id``) or its name. An unknown one: EndpointNotFound listing those there are."""
    if is_uuid(ref):   # records are shared ground: one whose name is no endpoint name is skipped
        same = [r for r in list_all(store, key) if str(r.get("endpoint_id", "")).lower() == ref.lower()
                and re.match(NAME_RE, str(r.get("name", "")))]
        if len(same) > 1:
            raise EndpointNotFound(
                f"endpoint id {ref} is published by {len(same)} endpoints in store {store.url} "
                f"({', '.join(sorted(r['name'] for r in same))}): one was copied with its endpoint.json; "
                f"delete that endpoint.json and restart it to give it a new id, or use a name")
        if same:
            return same[0]
    try:
        return read(store, ref, key)
    except RecordNotTrusted:
        raise
    except EndpointNotFound as e:
        known = ", ".join(f"{r.get('name')} ({r.get('endpoint_id') or 'no id yet'})" for r in list_all(store, key))
        what = (f"no endpoint with id {ref} is registered in store {store.url} (an endpoint publishes "
                f"its id when it starts; `faas endpoint list` on its site shows it)") if is_uuid(ref) else str(e)
        raise EndpointNotFound(f"{what}{_globus_hosted_hint(ref)}; known endpoints: {known or 'none'}") from None


#: the endpoint of Globus Compute's quickstart and tutorials, which Globus runs in its cloud
GLOBUS_TUTORIAL_ENDPOINT = "4b116d3c-1703-4f8f-9f6f-39921e5864df"


def _globus_hosted_hint(ref: str) -> str:
    """Why the id in Globus's own examples names nothing here, and what to use instead."""
    if ref.lower() != GLOBUS_TUTORIAL_ENDPOINT:
        return ""
    return (". It is Globus Compute's public tutorial endpoint, which Globus runs in its cloud; faas "
            "has no hosted service and so no hosted endpoints: use an endpoint of your own, such as "
            "the embedded default, `local` (faas.Executor() with no endpoint_id; `faas endpoint list` "
            "shows its id)")


def list_all(store: Store, key: Key | None = None) -> list[dict]:
    """The records the holder of ``key`` may believe; the others are skipped (logged)."""
    out = []
    for name in sorted(store.list("endpoints/")):
        if name.endswith(".json"):
            try:
                out.append(_load(store, name, key))
            except (KeyNotFound, ValueError):
                continue
            except RecordNotTrusted as e:
                log.info("%s", e)   # a user endpoint of another account, on a shared store, is one
            except StoreError as e:   # one another account made unreadable must not hide the rest
                log.info("endpoint record %s passed over: %s", name, e)
    return out


def _with_state(record: dict) -> dict:
    if record.get("status") == "running" and time.time() - record.get("heartbeat_at", 0) > STALE_AFTER:
        record["status"] = "lost"
    return record
