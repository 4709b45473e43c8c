"""How an endpoint fails a task for its client, whoever notices the failure: the pool (timeout,
a lost worker, a function not allowed), the daemon (a dead-lettered task) or the multi-user
router (a refused task). One shape for all, like CPython's ``_ExceptionWithTraceback``: a result
frame sealed (encrypted) with the task's secret, and the done notice that tells the client. A
message whose task id cannot be trusted gets no result at all: it is set aside (:func:`set_aside`).
"""
from __future__ import annotations

import json
import logging
import time

from .. import sealing, serialize
from ..messages import Notice, TaskMessage, dead_letter_key, result_key
from ..store import Store, open_queue

log = logging.getLogger("faas.endpoint.outcomes")


def failure_frame(task: TaskMessage, exc: BaseException, **where: object) -> bytes:
    """The result of a task that failed with ``exc`` before (or instead of) running."""
    now = time.time()
    return serialize.result_bytes({"task_id": task.id, "started": now, "finished": now, **where},
                                  [serialize.error_outcome(exc)], task.rk)


def error_summary(frame: bytes | None, task: TaskMessage) -> str | None:
    """The type of ``task``'s failed result frame's first error (``builtins.ValueError``), for
    the task journal; None without a frame, or if it cannot be read (the journal line is a
    summary, never a blocker). Only the type: the journal lies in the store unsealed, readable
    by whoever may read the store, while the message (``the password is ...``) is as private as
    the result it was sealed in."""
    if frame is None:
        return None
    try:
        err = serialize.open_result(frame, task.id, task.rk)[0].get("error") or {}
        return str(err.get("type") or "Error")[:200]
    except Exception:  # noqa: BLE001 - see above
        return None


def done_notice(task: TaskMessage, status: str, result: bytes | None = None,
                size: int | None = None) -> str:
    """The notice that tells the client ``task`` is done, with its result frame when small, else
    the ``size`` of the frame stored for it (sealed: the client reads no more than that)."""
    if result is not None:
        size = None   # the frame rides in the notice: the client reads nothing from the store
    return Notice(id=task.id, event="done", status=status,
                  result=serialize.b64(result) if result is not None else None, size=size,
                  mac=sealing.notice_mac(task.rk, task.id, "done", status, size) if task.rk else None
                  ).model_dump_json(exclude_none=True)


def fail_for_client(store: Store, task: TaskMessage, exc: BaseException, *, notify: bool = True,
                    **where: object) -> bytes:
    """Fail ``task`` with ``exc``: its result where the client looks (a store error propagates:
    the caller keeps the message and tries again), then, when ``notify``, the done notice (a
    lost notice is logged: the client finds the result in the store). Returns the result frame."""
    data = failure_frame(task, exc, **where)
    store.put(result_key(task.id, task.cid), data)
    if notify and task.reply:
        try:
            open_queue(task.reply).send([done_notice(task, "failed", data)])
        except Exception as e:  # noqa: BLE001 - the client reads the store later
            log.warning("could not tell the client of task %s on %s: %s", task.id, task.reply, e)
    return data


#: the fields of a task message a copy in the store withholds: its secrets (which open the task's
#: result, arguments and function) and its inline arguments; the store's readers are not the site
_WITHHELD = ("rk", "fk", "args")


def withheld(body: str) -> str:
    """``body`` (a task message, as received) fit to keep in the store, where every client of a
    bucket may read it: its secrets and inline arguments replaced by what they were (their
    length), the rest (ids, times, signature) kept for the administrator. The queue's own
    dead-letter copy keeps the whole message. A body that is not a JSON object is kept as is:
    it carries no field a client of ours wrote."""
    try:
        fields = json.loads(body)
    except ValueError:
        return body
    if not isinstance(fields, dict):
        return body
    for name in _WITHHELD:
        if isinstance(fields.get(name), str):
            fields[name] = f"(withheld: {len(fields[name])} characters)"
    return json.dumps(fields, separators=(",", ":"))


def keep_dead_letter(store: Store, task_id: str, body: str) -> str:
    """Keep a dead-lettered task's message at ``dead-letters/<task id>``, withheld
    (:func:`withheld`). Returns the key."""
    key = dead_letter_key(task_id)
    store.put(key, withheld(body).encode())
    return key


def set_aside(store: Store, message_id: str, why: str, body: str) -> str:
    """Keep a message whose sender or task id cannot be trusted out of the way, for the
    administrator: ``dead-letters/refused-<message id>`` with the reason, withheld
    (:func:`withheld`). No result is written (its task id may be someone else's). Returns the key."""
    key = dead_letter_key(f"refused-{message_id}")
    store.put(key, json.dumps({"reason": why, "body": withheld(body)}).encode())
    return key
