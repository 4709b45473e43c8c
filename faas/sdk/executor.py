"""``globus_compute_sdk.sdk.executor``: the Executor and its futures (``ComputeFuture`` is
faas's ``TaskFuture``: a ``concurrent.futures.Future`` with ``task_id``)."""
from __future__ import annotations

from ..executor import Executor, TaskFuture

ComputeFuture = TaskFuture

__all__ = ["ComputeFuture", "Executor"]
