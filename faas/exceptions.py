"""Typed errors. Like botocore's, each carries a ``code`` a program can branch on."""
from __future__ import annotations


class FaasError(Exception):
    """Base of every error faas raises on purpose."""

    code = "FaasError"


class ConfigError(FaasError, ValueError):
    """A configuration file, variable or argument is wrong (the message says which and how)."""

    code = "ConfigError"


class EndpointNotFound(FaasError, LookupError):
    code = "EndpointNotFound"


class FunctionNotFound(FaasError, LookupError):
    """No function of this id was registered by this client's user (function ids are private to
    the result key that registered them)."""

    code = "FunctionNotFound"


class TaskNotFound(FaasError, LookupError):
    code = "TaskNotFound"


class SerializationError(FaasError):
    """A function, its arguments or its result could not be (de)serialized."""

    code = "SerializationError"


class TaskFailed(FaasError):
    """A task failed remotely and its own exception cannot be re-raised here.

    ``remote_type`` names the remote exception's type; ``remote_traceback`` is its text.
    """

    code = "TaskFailed"

    def __init__(self, message: str, *, task_id: str | None = None,
                 remote_type: str | None = None, remote_traceback: str | None = None):
        super().__init__(message)
        self.task_id = task_id
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


class WorkerLost(TaskFailed):
    """The task's worker died every time it ran the task, and the task was dead-lettered."""

    code = "WorkerLost"


class TaskTimeout(FaasError, TimeoutError):
    """A task ran longer than its ``timeout`` and was stopped (or a wait for it timed out)."""

    code = "TaskTimeout"


class TaskCancelled(FaasError):
    code = "TaskCancelled"


class StoreError(FaasError, OSError):
    """The store could not be reached or refused a request."""

    code = "StoreError"


class QueueError(FaasError, OSError):
    """The queue could not be reached, does not exist, or refused a request."""

    code = "QueueError"
    #: the AWS error code when SQS refused the request (e.g. ``InvalidParameterValue``), else None
    aws_code: str | None = None


class QueueDoesNotExist(QueueError):
    code = "QueueDoesNotExist"


class CredentialsError(FaasError):
    """No AWS credentials were found, or they were refused."""

    code = "CredentialsError"


class FunctionNotAllowed(TaskFailed):
    """The endpoint's ``allowed_functions`` does not list this function."""

    code = "FunctionNotAllowed"


class SignatureError(FaasError):
    """A task message is unsigned, wrongly signed, expired, or its payload was swapped."""

    code = "SignatureError"


class ResultForged(SignatureError, TaskFailed):
    """A result (or notice) for a task was not written by the endpoint that ran it: forged,
    planted before the real one, or altered in the store. It is never unpickled."""

    code = "ResultForged"


class MaxResultSizeExceeded(FaasError):
    """A task's result is larger than ``max_result_bytes`` (Globus Compute's error of the same
    name): the endpoint stores a failure in its place, which a client reading with the same
    limit can load."""

    code = "MaxResultSizeExceeded"

    def __init__(self, result_size: int, result_size_limit: int):
        super().__init__(result_size, result_size_limit)
        self.result_size = result_size
        self.result_size_limit = result_size_limit

    def __str__(self) -> str:
        return (f"Task result of {self.result_size}B exceeded current limit of {self.result_size_limit}B "
                f"(max_result_bytes; set FAAS_MAX_RESULT_BYTES on the endpoint and the client alike "
                f"to raise it, or return less: write big data to a file and transfer it)")
