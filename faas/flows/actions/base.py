"""The action interface (shaped like the Globus Action Provider API) and what providers share.

A provider's ``run(body, request_id, ctx)`` starts an action and returns its *status document*
(Globus's keys: ``action_id``, ``status`` ACTIVE | INACTIVE | SUCCEEDED | FAILED,
``display_status``, ``details``, ``creator_id``, ``start_time``, ``completion_time``,
``release_after``; optionally ``poll_after``, seconds before the next ``status`` is worth asking).
``run`` returns at once for long work; the caller polls ``status``.

Idempotency: a provider keeps each action's document in the site store under
``flows/actions/<kind>/<action_id>.json``, where the action id is a hash of the provider kind and
the request id. The document is written *before* the side effect starts, so ``run`` with a
request id already seen (in this process or another, after a ``kill -9``) returns the same action
and starts nothing twice.

A document holds what the action will do (a transfer's plan: which files, from and to where),
and a document found for a request id is resumed as it stands. So on a ``file://`` store, where
the store's users may create files and folders, only a document this process's account wrote
(the kernel's owner of the file) is read; one planted or replaced by another account is refused
as if absent, and written over.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from faas.exceptions import FaasError
from faas.flows import access
from faas.flows.times import iso
from faas.store import KeyNotFound, Store, open_store

ACTIVE, INACTIVE, SUCCEEDED, FAILED = "ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED"
DONE = (SUCCEEDED, FAILED)
PREFIX = "flows/actions/"
RELEASE_AFTER = 30 * 24 * 3600   # seconds a finished action's document is kept (Globus: 30 days)
MAX_DOC = 64 * 1024 * 1024        # bytes of one action document read
log = logging.getLogger("faas.flows.actions")


@dataclass
class ActionContext:
    """Who and where an action runs for; built by the runner (or ``faas.flows.run``)."""

    store_url: str          # the site store (flows state; actions keep docs under flows/actions/)
    run_id: str
    flow_id: str
    username: str           # identity the run acts for ($._context.username)
    run_as: str | None = None
    #: site flows settings: {"collections": {name: base URL}, "compute": {"profile", "store",
    #: "endpoints": {id: name}}, "http": {url_prefix: {"token": ...}}}
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.config is None:
            self.config = {}


def for_runner_account(ctx: ActionContext) -> bool:
    """The run acts for the account the runner runs as (a user's own runner). A runner serving
    other users (root, a service account) lends them its rights and its network: the transfer
    action's raw URLs and the HTTP action's hosts are then the site's to allow."""
    return access.normalize(ctx.username) == access.identity_of_uid(os.geteuid())


@runtime_checkable
class ActionProvider(Protocol):
    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict: ...
    def status(self, action_id: str, ctx: ActionContext) -> dict: ...
    def cancel(self, action_id: str, ctx: ActionContext) -> dict: ...
    def release(self, action_id: str, ctx: ActionContext) -> dict: ...


class ActionError(FaasError):
    code = "ActionError"


class ActionUnableToRun(ActionError):
    """The action cannot start: a bad body, an unknown endpoint or collection, an unknown URL.
    The runner turns it into the interpreter's ``ActionUnableToRun`` event."""

    code = "ActionUnableToRun"


class ActionNotFound(ActionError, LookupError):
    """No action with this id (never started, or released)."""

    code = "ActionNotFound"


class ActionConflict(ActionError):
    """The request does not fit the action's state (release of an action still running)."""

    code = "ActionConflict"


def action_id_for(kind: str, request_id: str) -> str:
    """Deterministic: the same request id at the same provider is the same action."""
    return hashlib.sha256(f"{kind}\0{request_id}".encode()).hexdigest()[:32]


def new_doc(kind: str, action_id: str, request_id: str, ctx: ActionContext, *,
            status: str = ACTIVE, display_status: str = "", details: Any = None) -> dict:
    now = time.time()
    return {"action_id": action_id, "status": status, "display_status": display_status or status,
            "details": details, "creator_id": ctx.run_as or ctx.username, "start_time": iso(now),
            "completion_time": None, "release_after": RELEASE_AFTER,
            "request_id": request_id, "kind": kind, "run_id": ctx.run_id, "flow_id": ctx.flow_id}


def finish(doc: dict, status: str, details: Any, display_status: str | None = None) -> dict:
    doc.update(status=status, details=details, display_status=display_status or status,
               completion_time=iso(time.time()))
    doc.pop("poll_after", None)
    return doc


def public(doc: dict) -> dict:
    """The status document as callers see it: internal bookkeeping (keys starting ``_``) hidden."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def store_for(url: str) -> Store:
    """One open store per URL per process (S3 clients are costly to make, cheap to share)."""
    with _stores_lock:
        s = _stores.get(url)
        if s is None:
            s = _stores[url] = open_store(url)
        return s


def read_own(store: Store, key: str, limit: int = MAX_DOC) -> bytes:
    """The object ``key``; on a ``file://`` store only if this process's account wrote it
    (:func:`faas.flows.access.read_with_writer`): one written by another account is logged and
    raises :class:`KeyNotFound`, as if absent. Other stores cannot tell who wrote an object:
    there the bucket's IAM decides who may write ``flows/``."""
    try:
        data, uid = access.read_with_writer(store, key, limit)
    except access.UntrustedFile as e:
        log.warning("%s is not trusted (%s); ignored", key, e.strerror)
        raise KeyNotFound(key) from None
    if not access.written_by_runner_or(uid):
        log.warning("%s was written by %s, not by this process's account; ignored", key,
                    access.identity_of_uid(uid or 0))
        raise KeyNotFound(key)
    return data


class Docs:
    """Action documents of one provider kind in the site store."""

    def __init__(self, kind: str):
        self.kind = kind
        self._lock = threading.Lock()   # check-then-create is atomic within one process

    def key(self, action_id: str) -> str:
        return f"{PREFIX}{self.kind}/{action_id}.json"

    def get(self, ctx: ActionContext, action_id: str) -> dict:
        try:
            return json.loads(read_own(store_for(ctx.store_url), self.key(action_id)))
        except KeyNotFound:
            raise ActionNotFound(f"no {self.kind} action {action_id!r} in store {ctx.store_url} "
                                 f"(never started, or released)") from None

    def put(self, ctx: ActionContext, doc: dict) -> dict:
        store_for(ctx.store_url).put(self.key(doc["action_id"]), json.dumps(doc).encode())
        return doc

    def delete(self, ctx: ActionContext, action_id: str) -> None:
        store_for(ctx.store_url).delete(self.key(action_id))

    def create(self, ctx: ActionContext, request_id: str, make) -> tuple[dict, bool]:
        """``(doc, created)``: the existing document for ``request_id``, or ``make(action_id)``
        written to the store (before any side effect: the caller starts it after this returns)."""
        aid = action_id_for(self.kind, request_id)
        with self._lock:
            try:
                return self.get(ctx, aid), False
            except ActionNotFound:
                pass
            return self.put(ctx, make(aid)), True
