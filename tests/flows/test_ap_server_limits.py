"""``faas actions serve`` against a caller who holds a run token and sends what no flow sends: a
request of many megabytes (with its length declared, or streamed in chunks with none) or JSON
nested thousands deep. The server must refuse it before it costs the server its memory, or
crashes in the parser, with the Action Provider API's error shape."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

pytest.importorskip("fastapi")
import uvicorn  # noqa: E402 - after the skip: the web extra may be missing
from helpers import free_port  # noqa: E402

from faas.flows.ap_server import ActionTokens, create_app  # noqa: E402

RUN = "run-token-limits"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = (tmp_path_factory.mktemp("ap-limits") / "store").as_uri()
    app = create_app(tokens=ActionTokens([("run", RUN)]), store_url=store, config={})
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and t.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


def post(url: str, content, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}/transfer/delete/run", content=content, timeout=60,
                      headers={"Authorization": f"Bearer {RUN}", "Content-Type": "application/json",
                               **(headers or {})})


def big_request() -> bytes:
    pad = "x" * (16 << 20)                          # 16 MiB: 16 times the server's limit
    return (b'{"request_id": "big", "body": {"endpoint_id": "nowhere", "items": ["/a"], '
            b'"label": "' + pad.encode() + b'"}}')


def test_a_request_over_the_limit_is_refused(server):
    r = post(server, big_request())
    assert r.status_code == 413, r.text[:300]
    assert r.json()["code"] == "RequestTooLarge"


def test_a_streamed_request_with_no_length_is_cut_at_the_limit(server):
    data = big_request()

    def chunks():
        for i in range(0, len(data), 64 * 1024):
            yield data[i:i + 64 * 1024]
    r = post(server, chunks())
    assert r.status_code == 413, r.text[:300]


def test_json_nested_too_deep_is_a_bad_request(server):
    for depth in (200, 100_000):     # over the server's 64, under Python's recursion limit; far over
        nested = "[" * depth + "]" * depth
        r = post(server, f'{{"request_id": "deep-{depth}", "body": {{"items": {nested}}}}}'.encode())
        assert r.status_code == 400, (depth, r.status_code, r.text[:300])
        assert r.json()["code"] == "BadActionRequest"


def test_an_ordinary_request_still_runs(server):
    r = post(server, b'{"request_id": "ok", "body": {"endpoint_id": "nowhere", "items": ["/a"]}}')
    assert r.status_code == 400 and "nowhere" in r.json()["description"], r.text
