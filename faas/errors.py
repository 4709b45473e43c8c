"""Globus Compute SDK's error names (``globus_compute_sdk.errors``), for code that moves over by
changing its imports: each is faas's own error of the same meaning (faas/exceptions.py), so
``except`` clauses written for either catch what faas raises.

- ``ComputeError``: the base of every faas error (``FaasError``).
- ``TaskPending``: raised by ``faas.Client.get_result`` while the task has no result yet.
- ``TaskExecutionFailed``: a task failed remotely and its own exception could not be rebuilt
  here (``TaskFailed``). Where it can be, faas raises the task's own exception (ZeroDivisionError,
  your classes...) with the remote traceback as ``__cause__``, as ProcessPoolExecutor does.
- ``SerializationError``, ``DeserializationError``, ``SerdeError``: faas's one
  ``SerializationError`` (either direction).
- ``MaxResultSizeExceeded``: a result over ``max_result_bytes`` (FAAS_MAX_RESULT_BYTES, 256 MiB
  by default; Globus's limit is 10 MiB): the task fails with it.
- ``VersionMismatch``: never raised here (no service to compare versions with; a Python mismatch
  between client and endpoint fails the task with a SerializationError naming both versions).
  Offered so imports keep working.
"""
from __future__ import annotations

from .exceptions import FaasError, MaxResultSizeExceeded, SerializationError, TaskFailed

ComputeError = FaasError
TaskExecutionFailed = TaskFailed
SerdeError = SerializationError
DeserializationError = SerializationError


class TaskPending(FaasError):
    """The task has no result yet; ``reason`` is its status (``pending`` or ``running``)."""

    code = "TaskPending"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"Task is pending due to {self.reason}"



class VersionMismatch(FaasError):
    """Never raised by faas (see the module's docstring)."""

    code = "VersionMismatch"

    def __init__(self, version_message: str):
        super().__init__(version_message)
        self.version_message = version_message


__all__ = ["ComputeError", "TaskExecutionFailed", "MaxResultSizeExceeded", "SerdeError", "SerializationError",
           "DeserializationError", "TaskPending", "VersionMismatch"]
