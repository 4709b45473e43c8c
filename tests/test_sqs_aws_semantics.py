"""SQS where implementations differ: how a stale receipt is reported, and which endpoint a full
queue URL goes to.

A visibility change (or a delete) with the receipt of a message already deleted: moto answers
``ReceiptHandleIsInvalid``; AWS and LocalStack answer ``InvalidParameterValue`` with "Message does
not exist or is not available for visibility timeout change" (batch entries: LocalStack's Code is
``InvalidParameterValueException``, with SenderFault false). Either way it is a stale receipt,
ignored at once: retrying it stalled the worker pool's monitor thread (heartbeats, cancels) for
4-8 s. The AWS-shaped replies are injected with botocore's Stubber (no server needed); the
server tests run on whatever ``moto_url`` is: moto by default, LocalStack with
FAAS_TEST_AWS_URL (.ci/run runs them against both).
"""
from __future__ import annotations

import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from faas.exceptions import QueueError
from faas.store.registry import create_queue, open_queue
from faas.store.sqs import SQSQueue, _is_stale, _parse

pytestmark = pytest.mark.timeout(60)

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/t-stale"
RECEIPT = "AQEBzbVv" + "x" * 40
# The texts AWS sends (LocalStack copies them): "Value RECEIPT for parameter ReceiptHandle is
# invalid. Reason: ..."
VISIBILITY_GONE = (f"Value {RECEIPT} for parameter ReceiptHandle is invalid. Reason: Message does "
                   "not exist or is not available for visibility timeout change.")
DELETE_EXPIRED = f"Value {RECEIPT} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
OTHER_INVALID = ("Value 50000 for parameter VisibilityTimeout is invalid. Reason: Must be between "
                 "0 and 43200, if provided.")


# --- the classification ----------------------------------------------------------------------
@pytest.mark.parametrize("code, message, stale", [
    ("ReceiptHandleIsInvalid", "The input receipt handle is invalid.", True),          # moto
    ("InvalidParameterValue", VISIBILITY_GONE, True),                                  # AWS
    ("InvalidParameterValueException", VISIBILITY_GONE, True),      # LocalStack's batch entries
    ("InvalidParameterValue", DELETE_EXPIRED, True),
    ("InvalidParameterValue", OTHER_INVALID, False),
    ("InvalidParameterValue", "Message does not exist", False),     # no ReceiptHandle, no reason
    ("InvalidParameterValue", None, False),
    ("InternalError", VISIBILITY_GONE, False),                      # the text alone is not enough
])
def test_is_stale(code, message, stale):
    assert _is_stale(code, message) is stale


# --- AWS-shaped replies through botocore's Stubber ---------------------------------------------
@pytest.fixture
def stubbed():
    """An SQSQueue whose client answers from a Stubber: no network, no retries hidden."""
    client = boto3.session.Session().client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    q = SQSQueue("sqs://t-stale", client=client, queue_url=QUEUE_URL)
    with Stubber(client) as stub:
        yield q, stub
        stub.assert_no_pending_responses()


def _entry(op: str, i: int) -> dict:
    e = {"Id": str(i), "ReceiptHandle": f"{RECEIPT}{i}"}
    if op == "change_message_visibility_batch":
        e["VisibilityTimeout"] = 30
    return e


def _call(q: SQSQueue, op: str, n: int) -> None:
    receipts = [f"{RECEIPT}{i}" for i in range(n)]
    if op == "change_message_visibility_batch":
        q.change_visibility(receipts, 30)
    else:
        q.delete(receipts)


@pytest.mark.parametrize("op, message", [("change_message_visibility_batch", VISIBILITY_GONE),
                                         ("delete_message_batch", DELETE_EXPIRED)])
@pytest.mark.parametrize("code, sender_fault", [("InvalidParameterValue", True),
                                                ("InvalidParameterValueException", False)])
def test_stale_batch_entries_are_ignored_at_once(stubbed, op, message, code, sender_fault):
    q, stub = stubbed
    stub.add_response(op, {"Successful": [{"Id": "0"}],
                           "Failed": [{"Id": "1", "SenderFault": sender_fault, "Code": code,
                                       "Message": message}]},
                      {"QueueUrl": QUEUE_URL, "Entries": [_entry(op, 0), _entry(op, 1)]})
    t0 = time.monotonic()
    _call(q, op, 2)                 # one request (a second would find no stubbed response)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("op, message", [("change_message_visibility_batch", VISIBILITY_GONE),
                                         ("delete_message_batch", DELETE_EXPIRED)])
def test_stale_one_entry_call_rejected_whole_is_ignored(stubbed, op, message):
    q, stub = stubbed
    stub.add_client_error(op, service_error_code="InvalidParameterValue", service_message=message,
                          http_status_code=400)
    t0 = time.monotonic()
    _call(q, op, 1)
    assert time.monotonic() - t0 < 1.0


def test_other_invalid_parameter_entries_still_fail(stubbed):
    q, stub = stubbed
    op = "change_message_visibility_batch"
    stub.add_response(op, {"Successful": [], "Failed": [
        {"Id": "0", "SenderFault": False, "Code": "InvalidParameterValueException",
         "Message": OTHER_INVALID}]})
    t0 = time.monotonic()
    with pytest.raises(QueueError, match="Must be between 0 and 43200"):
        _call(q, op, 1)                              # at once: a retry cannot make it valid
    assert time.monotonic() - t0 < 1.0


def test_other_invalid_parameter_call_still_fails(stubbed):
    q, stub = stubbed
    stub.add_client_error("delete_message_batch", service_error_code="InvalidParameterValue",
                          service_message=OTHER_INVALID, http_status_code=400)
    with pytest.raises(QueueError) as info:
        _call(q, "delete_message_batch", 1)
    assert info.value.aws_code == "InvalidParameterValue"


def test_stale_call_with_many_entries_is_not_guessed(stubbed):
    """A whole call refused as stale cannot say which entry was: it is not swallowed."""
    q, stub = stubbed
    stub.add_client_error("change_message_visibility_batch", service_error_code="InvalidParameterValue",
                          service_message=VISIBILITY_GONE, http_status_code=400)
    with pytest.raises(QueueError, match="visibility timeout change"):
        _call(q, "change_message_visibility_batch", 2)


def test_sends_do_not_ignore_stale_looking_entries(stubbed):
    q, stub = stubbed
    stub.add_response("send_message_batch", {"Successful": [], "Failed": [
        {"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue", "Message": VISIBILITY_GONE}]})
    with pytest.raises(QueueError, match="rejected entries"):
        q.send(["x"])


# --- against the server (moto, or LocalStack with FAAS_TEST_AWS_URL) ---------------------------
@pytest.fixture
def sqs_queue(moto_url):
    q = create_queue(f"sqs://t-{uuid.uuid4().hex[:16]}", visibility_timeout=30)
    yield q
    q.destroy()
    q.close()


def _received(q, n: int):
    got, deadline = [], time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        got += q.receive(n - len(got), wait=1)
    assert len(got) == n
    return got


def test_server_reports_a_deleted_receipt_as_stale(sqs_queue, aws_server):
    """Whatever this server answers for a deleted message's receipt, _is_stale recognises it."""
    q = sqs_queue
    q.send(["gone"])
    (m,) = _received(q, 1)
    q.delete([m.receipt])
    with pytest.raises(ClientError) as info:
        q.client.change_message_visibility(QueueUrl=q.queue_url, ReceiptHandle=m.receipt,
                                           VisibilityTimeout=5)
    err = info.value.response["Error"]
    assert _is_stale(err["Code"], err["Message"]), err
    expected = {"moto": "ReceiptHandleIsInvalid", "localstack": "InvalidParameterValue"}[aws_server]
    assert err["Code"] == expected
    resp = q.client.change_message_visibility_batch(QueueUrl=q.queue_url, Entries=[
        {"Id": "0", "ReceiptHandle": m.receipt, "VisibilityTimeout": 5}])
    for f in resp.get("Failed", []):
        assert _is_stale(f.get("Code"), f.get("Message")), f


def test_deleted_receipts_are_ignored_at_once(sqs_queue):
    q = sqs_queue
    q.send(["gone", "kept"])
    got = _received(q, 2)
    gone = next(m for m in got if m.body == "gone")
    kept = next(m for m in got if m.body == "kept")
    q.delete([gone.receipt])
    t0 = time.monotonic()
    q.change_visibility([gone.receipt, kept.receipt], 0)  # heartbeat or hand-back with both
    q.change_visibility([gone.receipt], 30)
    q.delete([gone.receipt])
    assert time.monotonic() - t0 < 2.0                     # no retrying (it took 4-8 s)
    (again,) = _received(q, 1)                            # the live receipt's change applied
    assert again.body == "kept" and again.receive_count == 2
    q.delete([again.receipt, kept.receipt])               # kept.receipt: superseded, stale
    assert q.depth() == {"visible": 0, "in_flight": 0}


# --- a full queue URL and a configured endpoint -------------------------------------------------
@pytest.fixture
def no_configured_endpoint(monkeypatch, tmp_path):
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
              "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    (tmp_path / "config").write_text("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    return monkeypatch


LOCAL_URL = "http://10.1.2.3:9324/000000000000/jobs"


def test_full_url_host_is_the_endpoint_when_none_is_configured(no_configured_endpoint):
    assert _parse(LOCAL_URL) == dict(name="jobs", account="000000000000", region=None,
                                     endpoint="http://10.1.2.3:9324")


@pytest.mark.parametrize("var", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"])
def test_configured_endpoint_wins_over_the_url_host(no_configured_endpoint, var):
    no_configured_endpoint.setenv(var, "http://127.0.0.1:4566")
    assert _parse(LOCAL_URL)["endpoint"] is None          # boto3's chain decides: the variable
    q = SQSQueue(LOCAL_URL)
    try:
        assert q.client.meta.endpoint_url == "http://127.0.0.1:4566"
    finally:
        q.close()


def test_config_file_endpoint_wins_too(no_configured_endpoint, tmp_path):
    (tmp_path / "config").write_text("[default]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:4566\n")
    assert _parse(LOCAL_URL)["endpoint"] is None


def test_ignored_configured_endpoint_leaves_the_url_host(no_configured_endpoint):
    no_configured_endpoint.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    no_configured_endpoint.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert _parse(LOCAL_URL)["endpoint"] == "http://10.1.2.3:9324"


def test_aws_url_keeps_its_region_with_an_endpoint_configured(no_configured_endpoint):
    no_configured_endpoint.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert _parse("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs")["region"] == "eu-west-1"


def test_full_url_on_another_host_reaches_the_configured_server(sqs_queue, moto_url):
    """A queue URL as some servers write it (a host only they resolve): AWS_ENDPOINT_URL wins."""
    account, name = sqs_queue.queue_url.rsplit("/", 2)[1:]
    url = f"http://sqs.us-east-1.localhost.invalid:4566/{account}/{name}"
    q = open_queue(url)
    try:
        assert q.client.meta.endpoint_url == moto_url
        q.send(["via the configured endpoint"])
        assert [m.body for m in _received(sqs_queue, 1)] == ["via the configured endpoint"]
    finally:
        q.close()
