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
- ``MaxResultSizeExceeded``, ``VersionMismatch``: never raised here (faas has no result size cap
  and no service to compare versions with; a Python mismatch between client and endpoint fails the
  task with a SerializationError naming both versions). Offered so imports keep working.
"""
from __future__ import annotations

from .exceptions import FaasError, SerializationError, TaskFailed

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


class MaxResultSizeExceeded(FaasError):
    """Never raised by faas: results of any size go through the store."""

    code = "MaxResultSizeExceeded"

    def __init__(self, result_size: int, result_size_limit: int):
        super().__init__(result_size, result_size_limit)
        self.result_size, self.result_size_limit = result_size, result_size_limit

    def __str__(self) -> str:
        return f"Task result of {self.result_size}B exceeded current limit of {self.result_size_limit}B"


class VersionMismatch(FaasError):
    """Never raised by faas (see the module's docstring)."""

    code = "VersionMismatch"

    def __init__(self, version_message: str):
        super().__init__(version_message)
        self.version_message = version_message


__all__ = ["ComputeError", "TaskExecutionFailed", "MaxResultSizeExceeded", "SerdeError", "SerializationError",
           "DeserializationError", "TaskPending", "VersionMismatch"]
