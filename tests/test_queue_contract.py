"""One contract for every queue backend: the same assertions on the embedded local queue and on
SQS (a real moto server over HTTP). Short visibility timeouts keep it fast; SQS counts whole
seconds, so the timings below allow for that."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from faas.exceptions import QueueDoesNotExist, QueueError
from faas.store.queue_base import Message, Queue
from faas.store.registry import create_queue, open_queue

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["local", "sqs"])
def url_for(request, tmp_path):
    """A function giving a fresh, unique queue URL of the backend under test."""
    if request.param == "sqs":
        request.getfixturevalue("moto_url")
        return lambda: f"sqs://t-{uuid.uuid4().hex[:16]}"
    return lambda: f"local://{tmp_path}/t-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def make(url_for):
    """create_queue(...) for the test, destroyed afterwards."""
    made: list[Queue] = []

    def _make(**kw) -> Queue:
        q = create_queue(url_for(), **kw)
        made.append(q)
        return q

    yield _make
    for q in made:
        q.destroy()
        q.close()


def collect(q: Queue, n: int, seconds: float = 10.0, **kw) -> list[Message]:
    """Receive until ``n`` messages arrived (SQS may hand out fewer than asked per call)."""
    out: list[Message] = []
    deadline = time.monotonic() + seconds
    while len(out) < n and time.monotonic() < deadline:
        out += q.receive(min(n - len(out), 500), wait=1, **kw)
    return out


def is_local(q: Queue) -> bool:
    return q.url.startswith("local:")


def test_round_trip_returns_ids_and_delete_removes(make):
    q = make()
    ids = q.send(["alpha", "beta"])
    assert len(ids) == 2 and len(set(ids)) == 2 and all(isinstance(i, str) and i for i in ids)
    got = collect(q, 2)
    assert sorted(m.body for m in got) == ["alpha", "beta"]
    assert {m.id for m in got} == set(ids)
    assert all(m.receive_count == 1 and abs(m.sent_at - time.time()) < 60 for m in got)
    q.delete([m.receipt for m in got])
    assert q.depth() == {"visible": 0, "in_flight": 0}
    assert q.receive(10) == []


def test_send_nothing(make):
    assert make().send([]) == []


def test_batch_of_25_in_order_locally(make):
    q = make()
    bodies = [f"m{i:02d}" for i in range(25)]
    ids = q.send(bodies)
    assert len(ids) == 25
    got = collect(q, 25)
    assert sorted(m.body for m in got) == bodies
    assert [m.id for m in sorted(got, key=lambda m: m.body)] == ids
    if is_local(q):
        assert [m.body for m in got] == bodies          # FIFO on the embedded queue
    q.delete([m.receipt for m in got])
    assert q.depth() == {"visible": 0, "in_flight": 0}


def test_visibility_expiry_redelivers_with_higher_count(make):
    q = make(visibility_timeout=1)
    q.send(["again"])
    first = q.receive(1, wait=1)
    assert [m.receive_count for m in first] == [1]
    assert q.receive(1) == []                            # invisible now
    t0 = time.monotonic()
    second = q.receive(1, wait=5)
    assert time.monotonic() - t0 < 3.5
    assert [(m.id, m.receive_count) for m in second] == [(first[0].id, 2)]
    assert second[0].receipt != first[0].receipt
    q.delete([second[0].receipt])


def test_change_visibility_zero_hands_back_at_once(make):
    q = make(visibility_timeout=30)
    q.send(["back"])
    (m,) = q.receive(1, wait=1)
    q.change_visibility([m.receipt], 0)
    t0 = time.monotonic()
    again = q.receive(1, wait=3)
    assert time.monotonic() - t0 < 1.0
    assert [(x.body, x.receive_count) for x in again] == [("back", 2)]


def test_heartbeat_keeps_message_hidden(make):
    q = make(visibility_timeout=2)
    q.send(["busy"])
    (m,) = q.receive(1, wait=1)
    time.sleep(1.0)
    q.change_visibility([m.receipt], 4)                  # extend before the 2 s run out
    time.sleep(1.6)                                      # past the first deadline
    assert q.receive(1) == []
    assert q.depth() == {"visible": 0, "in_flight": 1}
    q.delete([m.receipt])
    assert q.depth() == {"visible": 0, "in_flight": 0}


def test_dead_letter_after_max_receives(make):
    q = make(max_receives=2, visibility_timeout=30)
    q.send(["poison"])
    for count in (1, 2):
        got = q.receive(1, wait=1, visibility_timeout=0)   # visible again at once
        assert [(m.body, m.receive_count) for m in got] == [("poison", count)]
    assert q.receive(1, wait=1) == []                    # the third receive dead-letters it
    dlq = q.dead_letters()
    got = collect(dlq, 1, seconds=5)
    assert [m.body for m in got] == ["poison"]
    dlq.delete([got[0].receipt])
    assert dlq.depth() == {"visible": 0, "in_flight": 0}
    assert q.depth() == {"visible": 0, "in_flight": 0}
    # the dead-letter queue's URL opens like any other
    assert type(q).open(dlq.url).depth() == {"visible": 0, "in_flight": 0}


def test_dead_letters_accepts_sends(make):
    dlq = make().dead_letters()
    dlq.send(["by hand"])
    assert [m.body for m in collect(dlq, 1)] == ["by hand"]


def test_long_poll_blocks_then_wakes_on_send(make):
    q = make()
    sender = threading.Timer(0.5, lambda: q.send(["wake"]))
    t0 = time.monotonic()
    sender.start()
    got = q.receive(1, wait=8)
    elapsed = time.monotonic() - t0
    sender.join()
    assert [m.body for m in got] == ["wake"]
    assert 0.4 < elapsed < 3.0


def test_long_poll_times_out_empty(make):
    q = make()
    t0 = time.monotonic()
    assert q.receive(1, wait=1) == []
    assert 0.9 < time.monotonic() - t0 < 3.0


def test_wait_zero_returns_at_once_when_empty(make):
    q = make()
    t0 = time.monotonic()
    assert q.receive(10, wait=0) == []
    assert time.monotonic() - t0 < 0.5


def test_body_near_the_limit_and_over_it(make):
    q = make()
    limit = q.max_message_bytes
    big = "é" * ((limit - 1024) // 2)                    # 2 bytes each in UTF-8
    q.send([big])
    (m,) = collect(q, 1)
    assert m.body == big
    with pytest.raises(QueueError):
        q.send(["x" * (limit + 1)])


def test_send_splits_big_batches_by_bytes(make):
    q = make()
    bodies = [f"{i}" + "b" * (q.max_message_bytes // 3) for i in range(5)]   # > 1 request's worth
    ids = q.send(bodies)
    assert len(set(ids)) == 5
    got = collect(q, 5)
    assert sorted(m.body for m in got) == sorted(bodies)
    assert {m.id: m.body for m in got} == dict(zip(ids, bodies, strict=True))


def test_unicode_bodies(make):
    q = make()
    bodies = ["héllo wörld", "日本語のテキスト", "emoji 🎉🚀 and ✓", "tab\tnew\nline",
              '{"json": "\\u00e9"}']
    q.send(bodies)
    assert sorted(m.body for m in collect(q, len(bodies))) == sorted(bodies)


def test_depth_counts_visible_and_in_flight(make):
    q = make(visibility_timeout=30)
    q.send(["a", "b", "c"])
    assert q.depth() == {"visible": 3, "in_flight": 0}
    got = q.receive(1, wait=1)
    assert len(got) == 1
    assert q.depth() == {"visible": 2, "in_flight": 1}


def test_open_missing_raises(url_for):
    url = url_for()
    with pytest.raises(QueueDoesNotExist, match=url.rsplit("/", 1)[-1]):
        open_queue(url)


def test_create_is_idempotent_and_open_finds_it(make):
    q = make(visibility_timeout=5)
    q.send(["kept"])
    again = create_queue(q.url, visibility_timeout=5)
    opened = open_queue(q.url)
    assert again.url == opened.url == q.url
    assert [m.body for m in collect(opened, 1)] == ["kept"]
    again.close()
    opened.close()


def test_destroy_removes_queue(url_for):
    q = create_queue(url_for())
    q.send(["gone"])
    q.destroy()
    q.close()
    with pytest.raises(QueueDoesNotExist):
        open_queue(q.url)


# --- SQS only: request shapes, retries, errors (counted through hooks on ``q.client``) -------
@pytest.fixture
def sqs_queue(moto_url):
    q = create_queue(f"sqs://t-{uuid.uuid4().hex[:16]}", visibility_timeout=30)
    yield q
    q.destroy()
    q.close()


def count_calls(q, operation: str) -> list[dict]:
    calls: list[dict] = []
    q.client.meta.events.register(f"before-parameter-build.sqs.{operation}",
                                  lambda params, **_: calls.append(params))
    return calls


def test_sqs_batches_by_count_and_bytes(sqs_queue):
    q = sqs_queue
    calls = count_calls(q, "SendMessageBatch")
    q.send([f"{i}" for i in range(25)])
    assert len(calls) == 3                               # 10 + 10 + 5
    calls.clear()
    q.send(["x" * (q.max_message_bytes // 3 + 1)] * 5)  # 3 of them would exceed 256 KiB
    assert len(calls) == 3


def test_sqs_receive_tops_up_beyond_10(sqs_queue):
    q = sqs_queue
    q.send([f"{i}" for i in range(25)])
    calls = count_calls(q, "ReceiveMessage")
    got = q.receive(25, wait=1)
    assert len(got) == 25 and len(calls) == 3
    assert all(c["MaxNumberOfMessages"] <= 10 for c in calls)


def test_sqs_retries_throttling_and_failed_entries(sqs_queue):
    from botocore.exceptions import ClientError
    q = sqs_queue
    real = q.client.send_message_batch
    script = ["throttle", "half"]

    def flaky(**kw):
        step = script.pop(0) if script else None
        if step == "throttle":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendMessageBatch")
        if step == "half":                               # SQS fails some entries, not our fault
            entries = kw.pop("Entries")
            resp = real(Entries=entries[::2], **kw)
            resp["Failed"] = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError",
                               "Message": "try again"} for e in entries[1::2]]
            return resp
        return real(**kw)

    q.client.send_message_batch = flaky
    ids = q.send([f"b{i}" for i in range(6)])
    del q.client.send_message_batch
    got = collect(q, 6)
    assert {m.id: m.body for m in got} == {i: f"b{n}" for n, i in enumerate(ids)}


def test_sqs_full_queue_url(sqs_queue):
    q = open_queue(sqs_queue.queue_url)                  # http://127.0.0.1:PORT/ACCOUNT/NAME
    assert q.url == sqs_queue.queue_url and q.dead_letters().url.endswith(q.name + "-dlq")
    q.send(["via url"])
    assert [m.body for m in collect(sqs_queue, 1)] == ["via url"]


def test_sqs_without_credentials_says_what_to_do(moto_url, monkeypatch, tmp_path):
    from faas.exceptions import CredentialsError
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError, match="AWS_ACCESS_KEY_ID"):
        open_queue("sqs://anything")
