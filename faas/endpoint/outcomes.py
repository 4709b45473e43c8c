"""How an endpoint fails a task for its client, whoever notices the failure: the pool (timeout,
a lost worker, a function not allowed), the daemon (a dead-lettered task) or the multi-user
router (a refused task). One shape for all, like CPython's ``_ExceptionWithTraceback``: a result
frame sealed with the task's secret, and the done notice that tells the client.
"""
from __future__ import annotations

import time

from .. import sealing, serialize
from ..messages import Notice, TaskMessage


def failure_frame(task: TaskMessage, exc: BaseException, **where: object) -> bytes:
    """The result of a task that failed with ``exc`` before (or instead of) running."""
    now = time.time()
    return serialize.result_bytes({"task_id": task.id, "started": now, "finished": now, **where},
                                  [serialize.error_outcome(exc)], task.rk)


def done_notice(task: TaskMessage, status: str, result: bytes | None = None) -> str:
    """The notice that tells the client ``task`` is done, with its result frame when small."""
    return Notice(id=task.id, event="done", status=status,
                  result=serialize.b64(result) if result is not None else None,
                  mac=sealing.notice_mac(task.rk, task.id, "done", status) if task.rk else None
                  ).model_dump_json(exclude_none=True)
