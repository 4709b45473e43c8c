"""Amazon SQS standard queues (or anything speaking its API: moto's server, ElasticMQ).

URLs: ``sqs://NAME`` (default region and endpoint, from boto3's usual chain including
``AWS_ENDPOINT_URL``), or a queue URL: ``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME``, or
``http(s)://HOST:PORT/ACCOUNT/NAME`` for a local server (its host becomes the endpoint, unless
an endpoint is configured the way boto3 reads it: ``AWS_ENDPOINT_URL_SQS``, ``AWS_ENDPOINT_URL``
or ``endpoint_url`` in the AWS config file; then that one is used, as for ``sqs://NAME``). The
dead-letter queue is ``NAME-dlq`` beside it (redrive after ``max_receives``).

Every AWS call goes through the one boto3 client ``self.client`` (shared with the dead-letter
queue object), so botocore event hooks registered on it see all of them. Throttling, 5xx and
connection errors are retried with exponential backoff and jitter (tenacity), as are the failed
entries of a batch call that were not the sender's fault.

SQS semantics the caller should know: long polls are whole seconds (``wait`` is rounded,
at most 20 s per request, looped for longer waits); visibility timeouts are whole seconds
(rounded up); ``depth`` is approximate; a stale receipt may still delete on AWS. A receipt
SQS no longer knows (the message was deleted, or received again) is ignored by ``delete`` and
``change_visibility``, whichever way the server says so: moto answers ``ReceiptHandleIsInvalid``,
AWS and LocalStack ``InvalidParameterValue`` with "Message does not exist or is not available for
visibility timeout change" or "The receipt handle has expired" (see ``_is_stale``).
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from ..exceptions import ConfigError, CredentialsError, QueueDoesNotExist, QueueError
from . import aws
from .queue_base import Message, Queue

_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_AWS_HOST = re.compile(r"sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")
_MAX_BYTES = 262_144                 # per message and per batch request
_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_EXISTS = {"QueueAlreadyExists", "QueueNameExists"}
_AUTH = aws.BAD_CREDENTIALS | aws.DENIED   # both are "AWS refused the credentials" for SQS
_STALE = {"ReceiptHandleIsInvalid", "MessageNotInflight",
          "AWS.SimpleQueueService.MessageNotInflight", "InvalidReceiptHandle"}
# AWS (and LocalStack) say "stale receipt" with a generic code and a precise message:
# "Value RECEIPT for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not
# available for visibility timeout change." (ChangeMessageVisibility[Batch]) or "... Reason: The
# receipt handle has expired." (DeleteMessage[Batch]). A batch entry's Code may be the exception's
# name (LocalStack: InvalidParameterValueException, with SenderFault false). Any other
# InvalidParameterValue is a real error.
_INVALID_VALUE = {"InvalidParameterValue", "InvalidParameterValueException"}
_STALE_REASONS = ("Message does not exist or is not available for visibility timeout change",
                  "The receipt handle has expired")


def _same_attribute(name: str, have: str | None, want: str) -> bool:
    """Equal as SQS means them: a redrive policy is JSON whose count may be a string or a number."""
    if have is None:
        return False
    if name == "RedrivePolicy":
        try:
            a, b = json.loads(have), json.loads(want)
            return (a.get("deadLetterTargetArn") == b.get("deadLetterTargetArn")
                    and int(a.get("maxReceiveCount")) == int(b.get("maxReceiveCount")))
        except (ValueError, TypeError):
            return False
    return str(have) == str(want)


def _is_stale(code: str | None, message: str | None) -> bool:
    """Does this error (of a call or of a batch entry) say the receipt is no longer valid?"""
    if code in _STALE:
        return True
    message = message or ""
    return (code in _INVALID_VALUE and "parameter ReceiptHandle is invalid" in message
            and any(reason in message for reason in _STALE_REASONS))


def _configured_endpoint() -> str | None:
    """The SQS endpoint boto3 would take from the environment or the config file, if any."""
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider
    try:
        session = botocore.session.get_session()
        if session.get_config_variable("ignore_configured_endpoint_urls"):
            return None
        return ConfiguredEndpointProvider(full_config=session.full_config,
                                          scoped_config=session.get_scoped_config(),
                                          client_name="sqs").provide()
    except BotoCoreError:    # a profile that does not exist: the client will say so
        return os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL")


class _PartialFailure(QueueError):
    """Some entries of a batch call failed through no fault of ours: retry just those."""


def _with_retries(fn: Callable[[], Any]) -> Any:
    """aws's policy with SQS's numbers: 8 tries, no deadline; an unreachable endpoint is not
    retried; the failed entries of a batch (:class:`_PartialFailure`) are."""
    policy = aws.retrying(attempts=8, connect_attempts=1, wait=0.1, wait_max=5.0,
                          also=lambda exc: isinstance(exc, _PartialFailure))
    return policy(fn)


def _seconds(x: float) -> int:
    """SQS takes whole seconds in 0..43200; round up so a message is never hidden too briefly."""
    return min(43_200, max(0, math.ceil(x)))


def _parse(url: str) -> dict[str, Any]:
    """URL -> name, account, region and endpoint (None where boto3's chain decides). A queue
    URL's own host is the endpoint only if none is configured (``AWS_ENDPOINT_URL[_SQS]``)."""
    p = urlsplit(url)
    if p.scheme == "sqs" and _NAME.fullmatch(p.netloc) and p.path in ("", "/"):
        return dict(name=p.netloc, account=None, region=None, endpoint=None)
    segments = p.path.strip("/").split("/")
    if p.scheme in ("http", "https") and len(segments) == 2 and _NAME.fullmatch(segments[1]):
        aws = _AWS_HOST.fullmatch(p.hostname or "")
        return dict(name=segments[1], account=segments[0] or None,
                    region=aws.group(1) if aws else None,
                    endpoint=None if aws or _configured_endpoint() else f"{p.scheme}://{p.netloc}")
    raise ConfigError(f"queue URL {url!r}: expected sqs://NAME or an SQS queue URL "
                      "(https://sqs.REGION.amazonaws.com/ACCOUNT/NAME); NAME is 1-80 letters, "
                      "digits, '-' or '_'")


def _client(region: str | None, endpoint: str | None):
    try:   # one attempt per call: _with_retries (above) does the retrying
        return aws.client("sqs", region=region, endpoint_url=endpoint,
                          connect_timeout=5, read_timeout=30)
    except NoRegionError as e:
        raise ConfigError("no AWS region: set AWS_DEFAULT_REGION (or AWS_REGION, or region in "
                          "~/.aws/config), or give a full https://sqs.REGION.amazonaws.com/... "
                          "queue URL") from e


class SQSQueue(Queue):
    """A standard SQS queue with a redrive policy to ``NAME-dlq``."""

    max_message_bytes = _MAX_BYTES
    linger = 0.02            # 20 ms: notices share requests (each request is billed)

    def __init__(self, url: str, *, client: Any = None, queue_url: str | None = None):
        """Make the client only; ``open``/``create`` resolve ``queue_url`` (one API call)."""
        where = _parse(url)
        self.url, self.name, self._account = url, where["name"], where["account"]
        self._owns_client = client is None
        self.client = client if client is not None else _client(where["region"], where["endpoint"])
        self.queue_url = queue_url

    # --- plumbing ---------------------------------------------------------------------------
    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` with retries; turn botocore errors into faas errors that say what to do."""
        try:
            return _with_retries(fn)
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise CredentialsError(aws.NO_CREDENTIALS) from e
        except ClientError as e:
            err = e.response.get("Error", {})
            code, msg = err.get("Code", ""), err.get("Message", "")
            if code in _MISSING:
                exc: QueueError = QueueDoesNotExist(
                    f"SQS queue {self.name!r} does not exist; create it with create_queue()")
            elif code in _AUTH:
                raise CredentialsError(f"AWS refused the credentials for SQS {what} on "
                                       f"{self.name!r}: {code}: {msg}. Check AWS_PROFILE or "
                                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the IAM "
                                       "policy") from e
            else:
                exc = QueueError(f"SQS {what} on {self.name!r} failed: {code}: {msg}")
            exc.aws_code = code
            raise exc from e
        except BotoCoreError as e:
            raise QueueError(f"SQS {what} on {self.name!r} failed: {e}") from e

    def _call(self, op: str, **kw: Any) -> dict:
        return self._guard(op, lambda: getattr(self.client, op)(**kw))

    def _batch(self, op: str, entries: list[dict], ignore_stale: bool = False,
               on_success: Callable[[dict], None] | None = None) -> None:
        """One ``*_batch`` call; retry only the entries that failed through no fault of ours.
        ``ignore_stale``: entries whose receipt SQS no longer knows are done, not failed (also
        when the server rejects a one-entry call as a whole for that reason)."""
        pending = entries

        def attempt() -> None:
            nonlocal pending
            try:
                resp = getattr(self.client, op)(QueueUrl=self._url(), Entries=pending)
            except ClientError as e:
                err = e.response.get("Error", {})
                stale = _is_stale(err.get("Code"), err.get("Message"))
                if ignore_stale and stale and len(pending) == 1:
                    return
                raise
            for ok in resp.get("Successful", []):
                if on_success:
                    on_success(ok)
            failed = [f for f in resp.get("Failed", [])
                      if not (ignore_stale and _is_stale(f.get("Code"), f.get("Message")))]
            # an invalid parameter never succeeds on a retry, whatever SenderFault says
            # (LocalStack reports SenderFault false for every failed entry)
            ours = [f for f in failed if f.get("SenderFault") or f.get("Code") in _INVALID_VALUE]
            if ours:
                raise QueueError(f"SQS {op} on {self.name!r} rejected entries: "
                                 + "; ".join(f"{f.get('Code')}: {f.get('Message')}" for f in ours))
            if failed:
                again = {f["Id"] for f in failed}
                pending = [e for e in pending if e["Id"] in again]
                raise _PartialFailure(f"SQS {op} on {self.name!r}: {len(failed)} entries kept "
                                      f"failing: {failed[0].get('Code')}")

        self._guard(op, attempt)

    def _url(self) -> str:
        if self.queue_url is None:
            kw = {"QueueOwnerAWSAccountId": self._account} if (self._account or "").isdigit() else {}
            self.queue_url = self._call("get_queue_url", QueueName=self.name, **kw)["QueueUrl"]
        return self.queue_url

    def _create_or_update(self, name: str, attributes: dict[str, str]) -> str:
        """create_queue, or (exists with other settings) apply ours to it: idempotent either way."""
        try:
            return self._call("create_queue", QueueName=name, Attributes=attributes)["QueueUrl"]
        except QueueError as e:
            if getattr(e, "aws_code", None) not in _EXISTS:
                raise
        url = self._call("get_queue_url", QueueName=name)["QueueUrl"]
        have = self._call("get_queue_attributes", QueueUrl=url,
                          AttributeNames=list(attributes))["Attributes"]
        changed = {k: v for k, v in attributes.items() if not _same_attribute(k, have.get(k), v)}
        if changed:   # only what really differs (a queue made by Terraform usually matches)
            self._call("set_queue_attributes", QueueUrl=url, Attributes=changed)
        return url

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def open(cls, url: str) -> SQSQueue:
        """Open an existing queue; QueueDoesNotExist (with its name) if it is not there."""
        q = cls(url)
        q._url()
        return q

    @classmethod
    def create(cls, url: str, max_receives: int = 5, visibility_timeout: float = 60.0,
               dead_letter: bool = True) -> SQSQueue:
        """Create NAME-dlq (14 days' retention) then NAME redriving to it; idempotent.
        ``dead_letter=False`` makes NAME alone (a client's reply queue needs none)."""
        if max_receives < 1 or visibility_timeout < 0:
            raise ConfigError("max_receives must be >= 1 and visibility_timeout >= 0")
        q = cls(url)
        attributes = {"VisibilityTimeout": str(_seconds(visibility_timeout)),
                      "ReceiveMessageWaitTimeSeconds": "0"}
        if dead_letter:
            dlq = q._create_or_update(q.name + "-dlq", {"MessageRetentionPeriod": "1209600"})
            arn = q._call("get_queue_attributes", QueueUrl=dlq,
                          AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn,
                                                      "maxReceiveCount": str(int(max_receives))})
        q.queue_url = q._create_or_update(q.name, attributes)
        return q

    # --- the interface ----------------------------------------------------------------------
    def send(self, bodies: list[str]) -> list[str]:
        """send_message_batch in requests of <= 10 entries and <= 256 KiB; ids in input order."""
        if isinstance(bodies, str):
            raise TypeError("send() takes a list of str bodies")
        sizes = []
        for b in bodies:
            if not isinstance(b, str):
                raise TypeError(f"message bodies are str, not {type(b).__name__}")
            sizes.append(len(b.encode()))
            if sizes[-1] > _MAX_BYTES:
                raise QueueError(f"message body of {sizes[-1]} bytes exceeds SQS's limit of "
                                 f"{_MAX_BYTES}; put large payloads in the store")
        ids: list[str | None] = [None] * len(bodies)

        def done(ok: dict) -> None:
            ids[int(ok["Id"])] = ok["MessageId"]

        batch: list[int] = []
        total = 0
        for i, size in enumerate(sizes + [None]):
            if batch and (size is None or len(batch) == 10 or total + size > _MAX_BYTES):
                self._batch("send_message_batch",
                            [{"Id": str(j), "MessageBody": bodies[j]} for j in batch],
                            on_success=done)
                batch, total = [], 0
            if size is not None:
                batch.append(i)
                total += size
        sent = [i for i in ids if i is not None]
        if len(sent) != len(ids):   # _batch retries failed entries until each succeeds or raises
            raise QueueError(f"SQS send_message_batch on {self.name!r} returned no id for "
                             f"{len(ids) - len(sent)} of {len(ids)} messages")
        return sent

    def receive(self, max_messages: int = 10, wait: float = 0.0,
                visibility_timeout: float | None = None) -> list[Message]:
        """Long-poll (<= 20 s a request, looped up to ``wait``); top up with instant receives
        while full batches of 10 keep coming and more were asked for."""
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        deadline = time.monotonic() + max(0.0, wait)
        extra = {} if visibility_timeout is None else {"VisibilityTimeout": _seconds(visibility_timeout)}
        out: list[Message] = []
        while True:
            want = min(max_messages - len(out), 10)
            seconds = 0 if out else round(min(max(0.0, deadline - time.monotonic()), 20))
            got = self._call("receive_message", QueueUrl=self._url(), MaxNumberOfMessages=want,
                             WaitTimeSeconds=seconds, **extra,
                             MessageSystemAttributeNames=["ApproximateReceiveCount",
                                                          "SentTimestamp"]).get("Messages", [])
            for m in got:
                attrs = m.get("Attributes", {})
                out.append(Message(id=m["MessageId"], body=m["Body"], receipt=m["ReceiptHandle"],
                                   receive_count=int(attrs.get("ApproximateReceiveCount", 1)),
                                   sent_at=int(attrs.get("SentTimestamp", 0)) / 1000))
            if len(out) >= max_messages or (out and len(got) < want) or \
                    (not out and deadline - time.monotonic() < 0.5):
                return out

    def delete(self, receipts: list[str]) -> None:
        """delete_message_batch by 10; receipts SQS no longer knows are ignored."""
        for i in range(0, len(receipts), 10):
            self._batch("delete_message_batch",
                        [{"Id": str(j), "ReceiptHandle": r} for j, r in enumerate(receipts[i:i + 10])],
                        ignore_stale=True)

    def change_visibility(self, receipts: list[str], timeout: float) -> None:
        """change_message_visibility_batch by 10 (whole seconds, rounded up); stale receipts ignored."""
        for i in range(0, len(receipts), 10):
            self._batch("change_message_visibility_batch",
                        [{"Id": str(j), "ReceiptHandle": r, "VisibilityTimeout": _seconds(timeout)}
                         for j, r in enumerate(receipts[i:i + 10])], ignore_stale=True)

    def depth(self) -> dict[str, int]:
        a = self._call("get_queue_attributes", QueueUrl=self._url(), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return {"visible": int(a["ApproximateNumberOfMessages"]),
                "in_flight": int(a["ApproximateNumberOfMessagesNotVisible"])}

    def _sibling(self, name: str) -> tuple[str, str]:
        """(faas URL, SQS queue URL) of the queue NAME beside this one, without an API call."""
        url = f"sqs://{name}" if self.url.startswith("sqs:") else self.url.rsplit("/", 1)[0] + "/" + name
        return url, self._url().rsplit("/", 1)[0] + "/" + name

    def dead_letters(self) -> SQSQueue:
        """``NAME-dlq``, sharing this queue's client (so hooks on ``self.client`` count it too)."""
        url, queue_url = self._sibling(self.name + "-dlq")
        return SQSQueue(url, client=self.client, queue_url=queue_url)

    def destroy(self) -> None:
        """Delete the queue and its dead-letter queue (AWS then refuses the names for 60 s)."""
        try:
            urls = (self._url(), self._sibling(self.name + "-dlq")[1])
        except QueueDoesNotExist:
            return
        for queue_url in urls:
            try:
                self._call("delete_queue", QueueUrl=queue_url)
            except QueueDoesNotExist:
                pass

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
