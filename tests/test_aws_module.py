"""faas/store/aws.py: the one way faas makes AWS clients, reads AWS errors and retries calls,
shared by the S3 store, the SQS queue and the flows' S3 file access."""
from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from faas.store import aws


def _error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize("exc, kind", [
    (_error("SlowDown", 503), "throttled"),
    (_error("ThrottlingException", 400), "throttled"),
    (_error("Whatever", 429), "throttled"),
    (_error("ExpiredToken", 400), "credentials"),
    (_error("InvalidClientTokenId", 403), "credentials"),
    (_error("AccessDenied", 403), "denied"),
    (_error("NoSuchKey", 404), "not_found"),
    (_error("InvalidRange", 416), "other"),
    (EndpointConnectionError(endpoint_url="http://nowhere"), "unreachable"),
    (ReadTimeoutError(endpoint_url="http://somewhere"), "dropped"),
    (ValueError("x"), "other"),
])
def test_classify(exc, kind):
    assert aws.classify(exc) == kind
    assert aws.is_transient(exc) == (kind in ("throttled", "dropped"))


def test_retrying_counts_and_connect_attempts():
    calls = []

    def throttled():
        calls.append(1)
        raise _error("SlowDown", 503)

    with pytest.raises(ClientError):
        aws.retrying(attempts=4, wait=0.001)(throttled)
    assert len(calls) == 4

    calls.clear()

    def unreachable():
        calls.append(1)
        raise EndpointConnectionError(endpoint_url="http://nowhere")

    with pytest.raises(EndpointConnectionError):
        aws.retrying(attempts=6, connect_attempts=2, wait=0.001)(unreachable)
    assert len(calls) == 2

    calls.clear()

    def denied():
        calls.append(1)
        raise _error("AccessDenied", 403)

    with pytest.raises(ClientError):
        aws.retrying(attempts=6, wait=0.001)(denied)
    assert calls == [1]          # never retried: the same answer would come back


def test_clients_have_botocore_retries_off_and_share_one_session(moto_url):
    made = []
    aws.forget_sessions()

    def make():
        made.append(aws.client("sqs"))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 8 and len({id(c) for c in made}) == 8   # each its own client and hooks
    assert all(c.meta.config.retries["total_max_attempts"] == 1 for c in made)
    assert len(aws._sessions) == 1                              # ... from one Session
    for c in made:
        c.close()


def test_s3_files_retry_like_the_store(s3_bucket):
    """The flows' S3 file access has the S3 store's retry policy: throttling is retried by
    tenacity, not by botocore."""
    from faas.flows.actions.files import open_url
    from faas.store.s3 import S3Store

    files, path = open_url(f"s3://{s3_bucket}/dir/a.txt")
    assert files.client.meta.config.retries["total_max_attempts"] == 1
    calls = []

    def throttle_twice(**kw):
        calls.append(1)
        if len(calls) <= 2:
            raise _error("SlowDown", 503)

    files.client.meta.events.register("before-call.s3.DeleteObject", throttle_twice)
    files.delete(path)
    assert len(calls) == 3

    calls.clear()

    def always(**kw):
        calls.append(1)
        raise _error("SlowDown", 503)

    files.client.meta.events.unregister("before-call.s3.DeleteObject", throttle_twice)
    files.client.meta.events.register("before-call.s3.DeleteObject", always)
    old = S3Store.retry_wait
    S3Store.retry_wait = 0.001
    try:
        with pytest.raises(ClientError, match="SlowDown"):
            files.delete(path)
    finally:
        S3Store.retry_wait = old
    assert len(calls) == S3Store.retry_attempts
