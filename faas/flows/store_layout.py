"""Where flows, runs and timers live in the store, and how commands reach the runner.

Every object is JSON under ``flows/`` (or ``timers/``)::

    flows/defs/<flow_id>/flow.json            the latest version of the flow document
    flows/defs/<flow_id>/v/<version>.json     every version (runs name the version they use)
    flows/runs/<run_id>/run.json              the run document (status, output, ...; public)
    flows/runs/<run_id>/request.json          what the run was started with (input, user, ...)
    flows/runs/<run_id>/state.json            the interpreter's RunState + the runner's actions
    flows/active/<run_id>                     a marker per run the runner must drive
    flows/commands/<command_id>.json          start/cancel/resume/wake commands for the runner
    flows/runner/lease.json                   which runner holds the store (non-file stores)
    timers/<timer_id>/timer.json              a timer document
    timers/<timer_id>/ticks/<scheduled time>  one marker per tick fired (at most once)

The queue (``local://`` beside a file store, SQS for s3://) carries only ``{op, run_id,
command}`` doorbells; the command object in the store is the durable part, so a lost message
delays a command until the runner's next scan of ``flows/commands/`` and never loses it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from faas.config import faas_home
from faas.store import KeyNotFound, Queue, Store, create_queue

FLOWS, RUNS, ACTIVE, COMMANDS = "flows/defs/", "flows/runs/", "flows/active/", "flows/commands/"
TIMERS = "timers/"
CONFIG = "flows/config.json"
LEASE = "flows/runner/lease.json"
log = logging.getLogger("faas.flows")


def flow_key(flow_id: str) -> str:
    return f"{FLOWS}{flow_id}/flow.json"


def flow_version_key(flow_id: str, version: int) -> str:
    return f"{FLOWS}{flow_id}/v/{int(version):06d}.json"


#: a run id is one part of a key: a run's folder never sits inside another run's
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: object) -> str:
    """``run_id`` if it can name a run's folder (letters, digits, ``.``, ``_``, ``-``; a UUID
    as faas makes them), else ValueError: one with ``/`` would nest in another run's folder."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r}: expected 1-128 letters, digits, '.', '_' or '-', starting "
                         f"with a letter or digit (a UUID, as faas makes them)")
    return run_id


def run_key(run_id: str, what: str = "run") -> str:
    return f"{RUNS}{check_run_id(run_id)}/{what}.json"


def active_key(run_id: str) -> str:
    return f"{ACTIVE}{check_run_id(run_id)}"


def command_key(command_id: str) -> str:
    return f"{COMMANDS}{command_id}.json"


def timer_key(timer_id: str) -> str:
    return f"{TIMERS}{timer_id}/timer.json"


def tick_key(timer_id: str, at: float) -> str:
    return f"{TIMERS}{timer_id}/ticks/{at:017.3f}"


def get_json(store: Store, key: str, default: Any = KeyNotFound) -> Any:
    try:
        return json.loads(store.get(key))
    except KeyNotFound:
        if default is KeyNotFound:
            raise
        return default


def put_json(store: Store, key: str, value: Any) -> None:
    store.put(key, json.dumps(value, sort_keys=True, default=str).encode())


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> float:
    return time.time()


# --- the command queue ------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:60] or "store"


def default_queue_url(store: Store) -> str:
    """``local://`` beside a file store (``$FAAS_HOME/queues/flows-store`` for the embedded one),
    ``sqs://faas-flows-<bucket>`` for S3, ``$FAAS_HOME/queues/flows-memory-<name>`` for
    ``memory://``."""
    u = urlsplit(store.url)
    if u.scheme in ("file", ""):
        root = getattr(store, "root", u.path).rstrip("/")
        parent, base = os.path.split(root)
        return f"local://{parent}/queues/flows-{_safe(base)}"
    if u.scheme in ("s3", "s3a"):
        return f"sqs://faas-flows-{_safe(u.netloc)}"
    # private: $FAAS_HOME/queues (made 700 and checked as this account's or root's); never a
    # name in /tmp another account could make first
    return f"local://{faas_home() / 'queues'}/flows-memory-{_safe(u.netloc + u.path)}"


def queue_url(store: Store) -> str:
    """``$FAAS_FLOWS_QUEUE``, else the ``queue`` of ``flows/config.json``, else the default."""
    explicit = os.environ.get("FAAS_FLOWS_QUEUE")
    if explicit:
        return explicit
    cfg = get_json(store, CONFIG, {})
    return cfg.get("queue") or default_queue_url(store)


#: seconds one call on the runner's queue waits on a lock: the doorbell may be shared with every
#: user of the runner, any of whom could hold it (each receive of the runner would wait 120 s)
DOORBELL_PATIENCE = 5.0


def open_command_queue(store: Store) -> Queue:
    q = create_queue(queue_url(store), max_receives=100, visibility_timeout=60, dead_letter=True)
    q.wait_on_locks_at_most(DOORBELL_PATIENCE)
    return q


def send_command(store: Store, op: str, run_id: str | None, identity: str,
                 queue: Callable[[], Queue] | None = None, **extra: Any) -> str:
    """Write a command object, then ring the runner's queue (``queue()`` opens it; default
    :func:`open_command_queue`). Returns the command id."""
    cid = f"{time.time():017.6f}-{uuid.uuid4().hex[:12]}"
    put_json(store, command_key(cid), {"id": cid, "op": op, "run_id": run_id, "user": identity,
                                       "time": time.time(), **extra})
    ring(queue or (lambda: open_command_queue(store)),
         json.dumps({"op": op, "run_id": run_id, "command": cid}))
    return cid


RING_PATIENCE = 2.0   # seconds a ring may take (it takes milliseconds) before the client goes on

#: rings of this process still running past their patience: while one is, a new ring would only
#: queue behind the same lock, so it is skipped (one stuck thread per process, not one per command)
_stuck_rings = 0
_stuck_lock = threading.Lock()


def ring(queue: Callable[[], Queue], body: str, patience: float = RING_PATIENCE) -> bool:
    """Send ``body`` on the runner's queue, best effort: whether it was sent within ``patience``.

    The command object is durable and the runner's scan of ``flows/commands/`` finds it, so a
    doorbell that cannot be rung (a link planted at the queue, a queue another account holds
    locked: SQLite's own timeout is 120 s) is logged and left to finish in the background, never
    waited on for minutes; while such a ring is still stuck, later ones are not tried."""
    global _stuck_rings
    with _stuck_lock:
        stuck = _stuck_rings
    if stuck:
        log.warning("not ringing the runner's queue: an earlier doorbell of this process is still "
                    "stuck; the runner finds the command in its next scan of %s", COMMANDS)
        return False
    done = threading.Event()
    late = threading.Event()       # set once the caller has stopped waiting
    failed: list[BaseException] = []

    def send() -> None:
        global _stuck_rings
        try:
            queue().send([body])
        except Exception as e:  # noqa: BLE001 - reported below (or logged here, if late)
            failed.append(e)
        finally:
            with _stuck_lock:
                done.set()
                if late.is_set():
                    _stuck_rings -= 1
                    if failed:
                        log.warning("the runner's doorbell failed late (%s); its scan finds the "
                                    "command", failed[0])

    threading.Thread(target=send, name="faas-flows-ring", daemon=True).start()
    if not done.wait(patience):
        with _stuck_lock:
            if not done.is_set():
                late.set()
                _stuck_rings += 1
        if late.is_set():
            log.warning("the runner's queue did not take a doorbell within %.0f s (held locked by "
                        "another process?); going on: the runner finds the command in its next scan "
                        "of %s", patience, COMMANDS)
            return False
    if failed:
        log.warning("could not ring the runner's queue (%s); the runner finds the command in its "
                    "next scan of %s", failed[0], COMMANDS)
        return False
    return True


def redact_private(value: Any) -> Any:
    """``value`` with every ``__Private_Parameters`` key (and the names it lists) removed."""
    if isinstance(value, dict):
        hidden = value.get("__Private_Parameters")
        if isinstance(hidden, str):
            hidden = [hidden]
        drop = {"__Private_Parameters", *(hidden or [])} if "__Private_Parameters" in value else set()
        return {k: redact_private(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [redact_private(v) for v in value]
    return value
