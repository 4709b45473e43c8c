"""The one place faas talks to boto3: how clients are made, how AWS errors are read, how calls
are retried. Used by the S3 store, the SQS queue and the flows' S3 file access.

Clients: botocore's own retries are off (``total_max_attempts=1``); every call is retried here,
with tenacity, so the bound is ours and visible. boto3 Sessions are not thread-safe, clients are:
one boto3 Session per credentials source (the environment and config files boto3 reads) is kept,
and clients are made from it under a lock. Each store or queue keeps its own client, so hooks
registered on ``client.meta.events`` stay its own.

Errors: :func:`classify` says what an exception means (throttled, credentials, denied, not found,
unreachable, dropped, other), from one set of code lists for S3 and SQS alike.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_random_exponential,
)

NO_CREDENTIALS = ("no AWS credentials found: set AWS_PROFILE or "
                  "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (boto3's usual chain)")

# -- what an error means ---------------------------------------------------------------------------

THROTTLED = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestLimitExceeded", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "KmsThrottled",
    "KMS.ThrottlingException", "InternalError", "InternalFailure", "ServiceUnavailable",
    "503", "500", "502", "504",
})
BAD_CREDENTIALS = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
    "TokenRefreshRequired", "ExpiredTokenException", "InvalidClientTokenId",
    "UnrecognizedClientException", "InvalidSecurity", "MissingAuthenticationToken",
})
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "403", "AllAccessDisabled",
                    "AccountProblem", "InvalidObjectState"})
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)   # the endpoint never answered
# a connection that broke after the request went out (ReadTimeout, ConnectionClosed, streaming)
DROPPED = (HTTPClientError, IncompleteReadError)


def code(exc: ClientError) -> str:
    """The error code AWS answered with ("" if none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def status(exc: ClientError) -> int:
    """The HTTP status of the answer (0 if none)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def classify(exc: BaseException) -> str:
    """One word for what ``exc`` means: ``throttled`` (throttling, 429 or 5xx: try again),
    ``credentials`` (the keys themselves were refused), ``denied`` (the identity lacks
    permission), ``not_found``, ``unreachable`` (no connection at all), ``dropped`` (the connection
    broke mid-call: try again), or ``other``."""
    if isinstance(exc, ClientError):
        c, s = code(exc), status(exc)
        if c in THROTTLED or s == 429 or s >= 500:
            return "throttled"
        if c in BAD_CREDENTIALS:
            return "credentials"
        if c in DENIED or s == 403:
            return "denied"
        if c in NOT_FOUND or s == 404:
            return "not_found"
        return "other"
    if isinstance(exc, UNREACHABLE):
        return "unreachable"
    if isinstance(exc, DROPPED):
        return "dropped"
    return "other"


def is_transient(exc: BaseException) -> bool:
    """Throttling, a 5xx reply or a dropped connection: worth another try after a pause."""
    return classify(exc) in ("throttled", "dropped")


# -- how calls are retried -------------------------------------------------------------------------

def retrying(*, attempts: int, deadline: float | None = None, connect_attempts: int | None = None,
             wait: float = 0.1, wait_max: float = 5.0,
             also: Callable[[BaseException], bool] | None = None) -> Retrying:
    """The retry policy for AWS calls: transient errors (and ``also``) are retried with
    exponential backoff and full jitter (random in [0, wait * 2**n], capped at ``wait_max``), at
    most ``attempts`` tries in all and never past ``deadline`` seconds; an endpoint that cannot be
    reached at all gets ``connect_attempts`` tries (default: ``attempts``). The last error is
    raised as it was."""
    connects = attempts if connect_attempts is None else connect_attempts

    def should_retry(state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        exc = state.outcome.exception()
        if exc is None:
            return False
        if isinstance(exc, UNREACHABLE):
            return state.attempt_number < connects
        return is_transient(exc) or (also is not None and also(exc))

    stop = stop_after_attempt(attempts)
    return Retrying(stop=stop | (stop_after_delay(deadline) if deadline is not None else stop_never),
                    wait=wait_random_exponential(multiplier=wait, max=wait_max),
                    retry=should_retry, reraise=True)


# -- how clients are made --------------------------------------------------------------------------

_CREDENTIAL_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                   "AWS_SHARED_CREDENTIALS_FILE", "AWS_DEFAULT_REGION", "AWS_REGION",
                   "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
_lock = threading.Lock()
_sessions: dict[str, boto3.session.Session] = {}


def _mtime(path: str) -> float:
    try:
        return os.stat(os.path.expanduser(path)).st_mtime
    except OSError:
        return 0.0


def _credentials_source() -> str:
    """What boto3's chain reads credentials and settings from, as one key (secrets hashed, never
    kept): the AWS_* variables, and which config and credentials files, as of when."""
    env = os.environ
    files = (env.get("AWS_CONFIG_FILE", "~/.aws/config"),
             env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))
    seen = [f"{k}={env.get(k, '')}" for k in _CREDENTIAL_ENV]
    seen += [f"{os.path.expanduser(f)}@{_mtime(f)}" for f in files]
    return hashlib.sha256("\0".join(seen).encode()).hexdigest()


def forget_sessions() -> None:
    """Drop the cached boto3 Sessions (after a fork: a child makes its own)."""
    with _lock:
        _sessions.clear()


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()   # a parent's thread may have held it at the fork
    _sessions.clear()


os.register_at_fork(after_in_child=_after_fork)


def client(service: str, *, region: str | None = None, endpoint_url: str | None = None,
           connect_timeout: float = 5.0, read_timeout: float = 60.0,
           max_pool_connections: int = 10) -> Any:
    """A new boto3 client for ``service`` with botocore's retries off (see :func:`retrying`).
    ``region`` and ``endpoint_url`` None: boto3's usual chain (``AWS_DEFAULT_REGION``,
    ``AWS_ENDPOINT_URL``, the config file) decides. Raises botocore's NoRegionError as is."""
    config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    max_pool_connections=max_pool_connections)
    with _lock:   # a Session is not thread-safe; the client it makes is
        key = _credentials_source()
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = boto3.session.Session()
        return session.client(service, region_name=region, endpoint_url=endpoint_url,
                              config=config)
