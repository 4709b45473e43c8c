"""Work an action must do in some process (a transfer's copy), run by a small bounded pool of
threads, held by a lease in the action's document so that another process can resume it.

A job's holder renews ``_lease`` (owner, expiry) as it goes (:meth:`Job.beat`, at most every
:data:`HEARTBEAT` seconds) and writes its progress with it. ``status`` in any process calls
:func:`check`: a job whose lease has expired lost its process (``kill -9``, a crash), so
``check`` takes the lease and runs the job again. Work functions are idempotent (a copy skips
files already at the destination, checked by checksum), so a resumed job never does harm.
Cancel is a separate key beside the document, so a heartbeat's read-modify-write cannot lose it.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from .base import ACTIVE, DONE, FAILED, SUCCEEDED, ActionContext, Docs, finish, store_for

log = logging.getLogger("faas.flows.actions")

LEASE = 60.0       # seconds without a heartbeat after which a job's process is presumed dead
HEARTBEAT = 5.0    # seconds between lease renewals (and progress writes) of a running job
WORKERS = 2        # copies at once in one process: I/O bound, and the machine is shared

_work_queue: queue.SimpleQueue = queue.SimpleQueue()
_threads: list[threading.Thread] = []
_pool_lock = threading.Lock()
_running: dict[tuple[str, str], dict] = {}  # (kind, action_id) -> {"token", "started"} held here
_running_lock = threading.Lock()
OWNER = f"{socket.gethostname()}:{os.getpid()}"


class Canceled(Exception):
    pass


class LeaseLost(Exception):
    """Another process took the job over (this one was presumed dead): stop quietly."""


def _worker() -> None:
    while True:
        fn, args = _work_queue.get()
        try:
            fn(*args)
        except BaseException:  # noqa: BLE001 - _execute records failures; keep the thread
            log.exception("action job crashed")


def _submit(fn, *args) -> None:
    """Queue ``fn(*args)`` for the pool. Daemon threads: a process that exits mid-copy does not
    wait for it (the lease lets another process finish the job)."""
    with _pool_lock:
        if len(_threads) < WORKERS:
            t = threading.Thread(target=_worker, name=f"faas-action-{len(_threads)}", daemon=True)
            t.start()
            _threads.append(t)
    _work_queue.put((fn, args))


def cancel_key(docs: Docs, action_id: str) -> str:
    return docs.key(action_id)[:-len(".json")] + ".cancel"


class Job:
    """What a work function gets: the document (``doc``), ``progress`` to fill, ``beat()``."""

    def __init__(self, docs: Docs, ctx: ActionContext, doc: dict, token: str):
        self.docs, self.ctx, self.doc, self.token = docs, ctx, doc, token
        self.progress: dict = dict(doc.get("_progress") or {})
        self._last = 0.0

    @property
    def resumed(self) -> bool:
        return self.doc.get("_attempts", 1) > 1

    def beat(self, force: bool = False, **fields: Any) -> None:
        """Renew the lease and save progress (and ``fields`` into the document); raise
        :class:`Canceled` or :class:`LeaseLost` when the job should stop."""
        self.doc.update(fields)
        now = time.time()
        if not force and now - self._last < HEARTBEAT:
            return
        store = store_for(self.ctx.store_url)
        if store.exists(cancel_key(self.docs, self.doc["action_id"])):
            raise Canceled()
        current = self.docs.get(self.ctx, self.doc["action_id"])
        if (current.get("_lease") or {}).get("token") != self.token or current["status"] in DONE:
            raise LeaseLost()
        self.doc["_progress"] = dict(self.progress)
        self.doc["_lease"] = {"owner": OWNER, "token": self.token, "expires": now + LEASE}
        self.docs.put(self.ctx, self.doc)
        self._last = now


def _take(doc: dict) -> str:
    token = uuid.uuid4().hex
    doc["_lease"] = {"owner": OWNER, "token": token, "expires": time.time() + LEASE}
    doc["_attempts"] = doc.get("_attempts", 0) + 1
    return token


def start(docs: Docs, ctx: ActionContext, doc: dict, work: Callable[[Job], object]) -> dict:
    """Take the lease on a new ``doc``, save it, and queue ``work`` in the pool."""
    token = _take(doc)
    docs.put(ctx, doc)
    _launch(docs, ctx, doc, token, work)
    return doc


def _launch(docs, ctx, doc, token, work) -> None:
    with _running_lock:
        _running[(docs.kind, doc["action_id"])] = {"token": token, "started": False}
    _submit(_execute, docs, ctx, dict(doc), token, work)


def check(docs: Docs, ctx: ActionContext, doc: dict, work: Callable[[Job], object]) -> dict:
    """From ``status``: keep the lease of a job queued here alive, and resume a job whose
    process died. Returns the (possibly updated) document."""
    if doc["status"] != ACTIVE:
        return doc
    key = (docs.kind, doc["action_id"])
    lease = doc.get("_lease") or {}
    now = time.time()
    with _running_lock:
        mine = _running.get(key)
    if mine is not None and mine["token"] == lease.get("token"):
        # Only a job still queued behind others needs its lease kept here; a started one renews
        # its own (and writing here could overwrite its newer progress).
        if not mine["started"] and lease.get("expires", 0) - now < LEASE / 2:
            doc["_lease"] = dict(lease, expires=now + LEASE)
            docs.put(ctx, doc)
        return doc
    if lease.get("expires", 0) > now:
        return doc                                      # alive in another process
    log.warning("%s action %s: its worker (%s) stopped renewing its lease; resuming the job here",
                docs.kind, doc["action_id"], lease.get("owner"))
    token = _take(doc)
    docs.put(ctx, doc)
    _launch(docs, ctx, doc, token, work)
    return doc


def _execute(docs: Docs, ctx: ActionContext, doc: dict, token: str, work) -> None:
    job = Job(docs, ctx, doc, token)
    key = (docs.kind, doc["action_id"])
    with _running_lock:
        if key in _running:
            _running[key]["started"] = True
    try:
        try:
            job.beat(force=True)
            details = work(job)
            status, display = SUCCEEDED, SUCCEEDED
        except LeaseLost:
            return
        except Canceled:
            status, display = FAILED, "Canceled"
            details = {"error": "Canceled", "message": "the action was canceled", **job.progress}
        except Exception as e:  # noqa: BLE001 - the action fails with the reason in its details
            if store_for(ctx.store_url).exists(cancel_key(docs, doc["action_id"])):
                status, display = FAILED, "Canceled"    # Canceled, wrapped by a library (boto3)
                details = {"error": "Canceled", "message": "the action was canceled", **job.progress}
            else:
                status, display = FAILED, FAILED
                details = {"error": type(e).__name__, "message": str(e),
                           "traceback": traceback.format_exc(), **job.progress}
            log.info("%s action %s failed: %s", docs.kind, doc["action_id"], e)
        try:
            current = docs.get(ctx, doc["action_id"])
        except Exception:  # noqa: BLE001 - released meanwhile
            return
        if (current.get("_lease") or {}).get("token") != token or current["status"] in DONE:
            return
        doc = job.doc
        doc["_progress"] = job.progress
        doc.pop("_lease", None)
        docs.put(ctx, finish(doc, status, details, display))
    except Exception:  # noqa: BLE001 - the store failed; the lease expires and another resumes
        log.exception("%s action %s: could not record its end", docs.kind, doc["action_id"])
    finally:
        with _running_lock:
            if (_running.get(key) or {}).get("token") == token:
                del _running[key]


def request_cancel(docs: Docs, ctx: ActionContext, doc: dict) -> dict:
    """Ask the job to stop; a job no process holds is failed here at once."""
    if doc["status"] in DONE:
        return doc
    store_for(ctx.store_url).put(cancel_key(docs, doc["action_id"]), str(time.time()).encode())
    lease = doc.get("_lease") or {}
    with _running_lock:
        held_here = (docs.kind, doc["action_id"]) in _running
    if held_here or lease.get("expires", 0) > time.time():
        doc["display_status"] = "Canceling"
        return doc
    doc.pop("_lease", None)
    return docs.put(ctx, finish(doc, FAILED, {"error": "Canceled", "message": "the action was canceled"},
                                "Canceled"))


def forget(docs: Docs, ctx: ActionContext, action_id: str) -> None:
    store_for(ctx.store_url).delete(cancel_key(docs, action_id))
    docs.delete(ctx, action_id)
