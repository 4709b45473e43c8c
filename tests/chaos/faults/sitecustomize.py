"""Fault injection into the AWS calls of a process, through botocore's own event hooks.

Put this folder on PYTHONPATH (Python imports ``sitecustomize`` at start-up) and set:

- ``FAAS_CHAOS_FAULTS``: rates per request, e.g. ``slowdown=0.03,throttle=0.03,reset=0.01,reset_after=0.005``
- ``FAAS_CHAOS_LOG``: a file; one JSON line is appended (O_APPEND, one write) per event
- ``FAAS_CHAOS_SEED``: seeds each process's generator (with its pid, so processes differ)
- ``FAAS_CHAOS_MATCH`` (optional): a regular expression; only requests whose ``"OP URL BODY"``
  (e.g. ``sqs.SendMessageBatch http://... {"QueueUrl": ...``) it matches get faults
- ``FAAS_CHAOS_LIMIT`` (optional): at most this many faults per process, then none

Every boto3/botocore client the process (and its forked children: worker processes) creates gets:

- a ``before-send`` hook that, with the given probabilities, does not send the request and
  instead returns or raises what AWS or the network would have:

  ``slowdown``  (S3)  an HTTP 503 ``SlowDown`` reply ("Please reduce your request rate.");
  ``throttle``  (SQS) an HTTP 400 ``ThrottlingException`` in the JSON protocol, with the
                ``x-amzn-query-error: Throttling;Sender`` header (botocore reports code ``Throttling``);
  ``reset``     (any) botocore's ``ConnectionClosedError``, what its HTTP layer raises when
                urllib3 reports a connection reset (``ProtocolError``): the request never arrived;

- a ``before-parse`` hook for ``reset_after``: the request *was* applied by the server, then the
  connection drops before the reply is read (``ConnectionClosedError`` again). A retried send of
  that kind delivers a message twice, a retried receive finds its messages invisible, etc.

Events logged (``"k"`` field): ``fault`` (kind, op, botocore attempt), ``botocore_retry`` (a
request sent by botocore's own retry handler, attempt > 1), ``tenacity_wait`` (tenacity computed a
backoff after a failed attempt: wait seconds, attempt number, exception, the AWS op that failed
last in this thread) and ``tenacity_gave_up`` (tenacity stopped retrying: the error surfaced).

The test process uses :func:`install` / :func:`uninstall` instead of the start-up import.
"""
from __future__ import annotations

import io
import json
import os
import random
import re
import threading
import time

ENV_FAULTS, ENV_LOG, ENV_SEED = "FAAS_CHAOS_FAULTS", "FAAS_CHAOS_LOG", "FAAS_CHAOS_SEED"
ENV_MATCH, ENV_LIMIT = "FAAS_CHAOS_MATCH", "FAAS_CHAOS_LIMIT"
KINDS = ("slowdown", "throttle", "reset", "reset_after")
MARK = "x-faas-chaos"          # header on the replies we made up (never "reset_after" those)

_local = threading.local()     # the last AWS op of this thread (names tenacity's waits)
_state: dict = {"pid": None, "rng": None, "spec": None, "rates": {}, "injected": 0}
_saved: dict = {}


def _rng() -> random.Random:
    pid = os.getpid()
    if _state["pid"] != pid:   # a forked child re-seeds: its draws must not copy its parent's
        _state["pid"] = pid
        _state["rng"] = random.Random(f"{os.environ.get(ENV_SEED, '0')}-{pid}")
        _state["injected"] = 0
    return _state["rng"]


def rates() -> dict[str, float]:
    spec = os.environ.get(ENV_FAULTS, "")
    if spec != _state["spec"]:
        out = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kind, _, value = part.partition("=")
            if kind not in KINDS:
                raise ValueError(f"{ENV_FAULTS}: unknown fault kind {kind!r} (known: {', '.join(KINDS)})")
            out[kind] = float(value)
        _state["spec"], _state["rates"] = spec, out
    return _state["rates"]


def _log(**rec) -> None:
    path = os.environ.get(ENV_LOG)
    if not path:
        return
    rec.update(pid=os.getpid(), t=round(time.time(), 4))
    data = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)     # one short write with O_APPEND: lines from many processes stay whole
    finally:
        os.close(fd)


def _draw(kind: str, target: str) -> bool:
    p = rates().get(kind, 0.0)
    if p <= 0:
        return False
    match = os.environ.get(ENV_MATCH)
    if match and not re.search(match, target):
        return False
    hit = _rng().random() < p      # one C call: atomic under the GIL, no lock (fork-safe)
    if hit and os.environ.get(ENV_LIMIT):
        if _state["injected"] >= int(os.environ[ENV_LIMIT]):
            return False
        _state["injected"] += 1
    return hit


class _Raw:
    """The part of a urllib3 response botocore's AWSResponse reads."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, amt=1024, decode_content=True):
        f = io.BytesIO(self._body)
        while chunk := f.read(amt):
            yield chunk

    def read(self, amt=None):
        return self._body


def _response(request, status: int, headers: dict, body: bytes):
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders
    h = HTTPHeaders()
    for k, v in dict(headers, **{MARK: "1", "Content-Length": str(len(body))}).items():
        h[k] = v
    return AWSResponse(request.url, status, h, _Raw(body))


def _slowdown(request):
    body = b"" if request.method == "HEAD" else (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message>"
        b"<RequestId>FAASCHAOS</RequestId><HostId>faas-chaos</HostId></Error>")
    return _response(request, 503, {"Content-Type": "application/xml"}, body)


def _throttle(request):
    body = json.dumps({"__type": "com.amazonaws.sqs#ThrottlingException",
                       "message": "Rate exceeded"}).encode()
    return _response(request, 400, {"Content-Type": "application/x-amz-json-1.0",
                                    "x-amzn-query-error": "Throttling;Sender",
                                    "x-amzn-RequestId": "faas-chaos"}, body)


def _attempt(request) -> int:
    v = request.headers.get("amz-sdk-request", b"")
    v = v.decode() if isinstance(v, bytes) else str(v)
    for part in v.split(";"):
        k, _, n = part.strip().partition("=")
        if k == "attempt" and n.isdigit():
            return int(n)
    return 1


def _op(event_name: str) -> str:
    parts = event_name.split(".")          # before-send.s3.PutObject
    return f"{parts[1]}.{parts[2]}" if len(parts) >= 3 else event_name


def before_send(request, event_name: str = "", **_):
    from botocore.exceptions import ConnectionClosedError
    op = _op(event_name)
    _local.op = op
    attempt = _attempt(request)
    if attempt > 1:
        _log(k="botocore_retry", op=op, attempt=attempt)
    service = op.split(".")[0]
    body = request.body if isinstance(request.body, (bytes, str)) else b""
    body = body[:2000].decode(errors="replace") if isinstance(body, bytes) else body[:2000]
    target = f"{op} {request.url} {body}"
    if service == "s3" and _draw("slowdown", target):
        _log(k="fault", kind="slowdown", op=op, attempt=attempt)
        return _slowdown(request)
    if service == "sqs" and _draw("throttle", target):
        _log(k="fault", kind="throttle", op=op, attempt=attempt)
        return _throttle(request)
    if _draw("reset", target):
        _log(k="fault", kind="reset", op=op, attempt=attempt)
        raise ConnectionClosedError(endpoint_url=request.url)
    return None


def before_parse(response_dict=None, event_name: str = "", **_):
    from botocore.exceptions import ConnectionClosedError
    headers = (response_dict or {}).get("headers") or {}
    op = _op(event_name)
    if MARK in headers or not _draw("reset_after", op):      # (no request here: matched on OP)
        return
    _log(k="fault", kind="reset_after", op=op, status=(response_dict or {}).get("status_code"))
    raise ConnectionClosedError(endpoint_url=f"(reply of {op})")


def _register(client) -> None:
    client.meta.events.register("before-send", before_send, unique_id="faas-chaos-send")
    client.meta.events.register("before-parse", before_parse, unique_id="faas-chaos-parse")


def install() -> None:
    """Hook every botocore client made from now on; instrument tenacity's waits and give-ups."""
    if _saved:
        return
    _state["injected"] = 0
    import botocore.session
    import tenacity
    import tenacity.wait

    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        _register(client)
        return client

    original_wait = tenacity.wait.wait_random_exponential.__call__

    def wait(self, retry_state):
        seconds = original_wait(self, retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        _log(k="tenacity_wait", wait=round(seconds, 4), attempt=retry_state.attempt_number,
             exc=type(exc).__name__ if exc is not None else None,
             code=_code(exc), op=getattr(_local, "op", None),
             max=getattr(self, "max", None), multiplier=getattr(self, "multiplier", None))
        return seconds

    original_post_stop = getattr(tenacity.BaseRetrying, "_post_stop_check_actions", None)

    def post_stop(self, retry_state):
        if self.iter_state.stop_run_result:
            exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
            _log(k="tenacity_gave_up", attempt=retry_state.attempt_number,
                 exc=type(exc).__name__ if exc is not None else None, code=_code(exc),
                 op=getattr(_local, "op", None))
        return original_post_stop(self, retry_state)

    _saved.update(create_client=original, wait=original_wait, post_stop=original_post_stop)
    botocore.session.Session.create_client = create_client
    tenacity.wait.wait_random_exponential.__call__ = wait
    if original_post_stop is not None:
        tenacity.BaseRetrying._post_stop_check_actions = post_stop


def uninstall() -> None:
    if not _saved:
        return
    import botocore.session
    import tenacity
    import tenacity.wait
    botocore.session.Session.create_client = _saved["create_client"]
    tenacity.wait.wait_random_exponential.__call__ = _saved["wait"]
    if _saved["post_stop"] is not None:
        tenacity.BaseRetrying._post_stop_check_actions = _saved["post_stop"]
    _saved.clear()


def _code(exc) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


if __name__ == "sitecustomize" and os.environ.get(ENV_FAULTS):
    install()
