"""Flows, runs and timers through the console's API and pages, with the runner in this process."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from faas.console import Tokens, create_app

FLOW = {"Comment": "wait for a person", "StartAt": "Prepare", "States": {
    "Prepare": {"Type": "Pass", "Parameters": {"sample.$": "$.sample"}, "ResultPath": "$.prep",
                "Next": "Approve"},
    "Approve": {"Type": "Action", "ActionUrl": "faas://approval", "WaitTime": 300,
                "Parameters": {"message": "go?"}, "ResultPath": "$.approval", "Next": "Done"},
    "Done": {"Type": "Pass", "End": True}}}
SCHEMA = {"type": "object", "required": ["sample"], "properties": {
    "sample": {"type": "string", "title": "Sample", "pattern": "^S[0-9]{3}$",
               "errorMessage": {"pattern": "a sample id looks like S123"}},
    "repeats": {"type": "integer", "minimum": 1, "default": 2}}}


@pytest.fixture
def store_url():
    return f"memory://console-flows-{uuid.uuid4().hex}"


@pytest.fixture
def runner(store_url):
    from faas.flows.runner import Runner
    r = Runner(store_url)
    stop = threading.Event()
    t = threading.Thread(target=r.serve, kwargs={"max_wait": 0.05, "should_stop": stop.is_set}, daemon=True)
    t.start()
    yield r
    stop.set()
    t.join(30)


@pytest.fixture
def flow(store_url):
    from faas.flows import FlowsClient
    return FlowsClient(store_url).deploy(FLOW, SCHEMA, title="Approve a sample")


@pytest.fixture
def client(store_url, tmp_path):
    with TestClient(create_app(store_url, home=tmp_path, tokens=Tokens(manage="m-test-token")),
                    base_url="http://127.0.0.1", headers={"Authorization": "Bearer m-test-token"}) as c:
        yield c


def _wait(fn, timeout=60.0):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_flow_page_draws_graph_and_form(client, flow):
    assert [f["id"] for f in client.get("/api/flows").json()] == [flow["id"]]
    html = client.get(f"/flows/{flow['id']}").text
    assert "<svg class=\"flowgraph\"" in html and ">Approve<" in html
    assert 'name="sample"' in html and 'data-pattern="^S[0-9]{3}$"' in html
    assert 'data-msg-pattern="a sample id looks like S123"' in html
    assert 'name="repeats"' in html and 'value="2"' in html and 'min="1"' in html
    assert "Approve a sample" in client.get("/flows").text


def test_wrong_input_is_refused_with_the_schemas_message(client, flow, store_url):
    r = client.post(f"/flows/{flow['id']}/start", data={"sample": "x1", "repeats": "0"})
    assert r.status_code == 422
    assert "a sample id looks like S123" in r.text and "repeats must be at least 1" in r.text
    assert 'value="x1"' in r.text                       # what was typed stays
    r = client.post(f"/api/flows/{flow['id']}/runs", json={"input": {"sample": "nope"}})
    assert r.status_code == 422 and r.json()["errors"] == {"sample": "a sample id looks like S123"}
    assert client.get("/api/runs").json()["total"] == 0


def test_start_watch_log_approve_and_cancel(client, flow, runner, store_url):
    r = client.post(f"/flows/{flow['id']}/start", data={"sample": "S042", "repeats": "3", "_label": "first"},
                    follow_redirects=False)
    assert r.status_code == 303
    run_id = r.headers["location"].split("/runs/")[1].split("?")[0]
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["label"] == "first" and run["flow_id"] == flow["id"]
    log = _wait(lambda: [e for e in client.get(f"/api/runs/{run_id}/log").json()["entries"]
                         if "Approve" in str(e)])
    assert log
    entries = client.get(f"/api/runs/{run_id}/log").json()["entries"]
    later = client.get(f"/api/runs/{run_id}/log", params={"after": entries[-1]["seq"] - 1}).json()["entries"]
    assert later == entries[-1:]
    html = client.get(f"/runs/{run_id}", params={"tab": "log"}).text
    assert 'id="event-log"' in html and entries[0]["code"] in html
    # approve from the page: the run ends SUCCEEDED
    _wait(lambda: client.post(f"/runs/{run_id}/approve", data={"comment": "ok"},
                              follow_redirects=False).status_code == 303)
    assert _wait(lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "SUCCEEDED")
    # a second run is cancelled from the API
    run2 = client.post(f"/api/flows/{flow['id']}/runs", json={"input": {"sample": "S001"}, "label": "second"})
    assert run2.status_code == 201
    rid2 = run2.json()["run_id"]
    _wait(lambda: any("Approve" in str(e) for e in client.get(f"/api/runs/{rid2}/log").json()["entries"]))
    assert client.post(f"/api/runs/{rid2}/cancel").status_code == 200
    assert _wait(lambda: client.get(f"/api/runs/{rid2}").json()["status"] in ("ENDED", "FAILED"))
    # runs list with filters
    assert client.get("/api/runs", params={"status": "SUCCEEDED"}).json()["runs"][0]["run_id"] == run_id
    assert client.get("/api/runs", params={"label": "second"}).json()["total"] == 1
    assert client.get("/api/runs", params={"since": "1h"}).json()["total"] == 2
    assert client.get("/api/runs", params={"since": "2999-01-01"}).json()["total"] == 0
    assert client.get("/api/runs", params={"status": "bogus"}).status_code == 400
    assert "first" in client.get("/runs").text
    # the API agrees with the Python client
    from faas.flows import FlowsClient
    fc = FlowsClient(store_url)
    assert {r["run_id"] for r in client.get("/api/runs").json()["runs"]} == {r["run_id"] for r in fc.list_runs()}
    assert client.get(f"/api/runs/{run_id}/log").json()["entries"] == fc.get_log(run_id)
    # a third run is rejected: the approval fails, and so does the run
    rid3 = client.post(f"/api/flows/{flow['id']}/runs", json={"input": {"sample": "S002"}}).json()["run_id"]
    _wait(lambda: client.get(f"/api/runs/{rid3}").json()["status"] == "INACTIVE")
    assert 'formaction="/runs/' in client.get(f"/runs/{rid3}").text and ">Reject<" in client.get(f"/runs/{rid3}").text
    assert client.post(f"/api/runs/{rid3}/reject", json={"comment": "no"}).status_code == 200
    assert _wait(lambda: client.get(f"/api/runs/{rid3}").json()["status"] == "FAILED")
    assert ">Reject<" not in client.get(f"/runs/{rid3}").text      # nothing to decide any more


def test_read_only_token_cannot_start_cancel_or_approve(store_url, flow, tmp_path):
    app = create_app(store_url, home=tmp_path, tokens=Tokens(manage="m", read="r"))
    with TestClient(app, headers={"Authorization": "Bearer r"}) as c:
        assert c.post(f"/api/flows/{flow['id']}/runs", json={"input": {"sample": "S001"}}).status_code == 403
        assert c.post("/api/runs/x/cancel").status_code == 403
        assert c.post("/api/runs/x/approve").status_code == 403
        assert c.get("/api/runs").json()["total"] == 0
        assert "disabled title=\"starting needs the manage token\"" in c.get(f"/flows/{flow['id']}").text


def test_timers_pause_resume_delete(client, flow, store_url):
    from faas.flows import TimersClient
    tc = TimersClient(store_url)
    t = tc.create(flow["id"], {"sample": "S007"}, name="nightly", interval="1d",
                  start=time.time() + 3600)
    rows = client.get("/api/timers").json()
    assert [(x["id"], x["status"]) for x in rows] == [(t["id"], "active")]
    html = client.get("/timers").text
    assert "nightly" in html and "every 1 d" in html
    assert client.post(f"/timers/{t['id']}/pause", follow_redirects=False).status_code == 303
    assert tc.get(t["id"])["status"] == "paused"
    assert client.post(f"/api/timers/{t['id']}/resume").json()["status"] == "active"
    assert client.delete(f"/api/timers/{t['id']}").status_code == 200
    assert client.get("/api/timers").json() == []
    assert client.get(f"/api/timers/{t['id']}").status_code == 404


def test_timer_page_shows_its_ticks_and_runs(client, flow, runner, store_url):
    from faas.flows import TimersClient
    tc = TimersClient(store_url)
    t = tc.create(flow["id"], {"sample": "S009"}, name="soon", start=time.time(), interval=3600)
    _wait(lambda: tc.get(t["id"])["runs"] >= 1)
    timer = tc.get(t["id"])
    html = client.get(f"/timers/{t['id']}").text
    assert f'href="/runs/{timer["last_run_id"]}"' in html and "1 run(s)" in html and "every 1 h" in html
    assert "S009" in html                                              # its input
    r = client.post(f"/timers/{t['id']}/pause", headers={"Referer": f"http://127.0.0.1/timers/{t['id']}"},
                    follow_redirects=False)
    assert r.headers["location"].startswith(f"/timers/{t['id']}?")     # back where the button was
    assert tc.get(t["id"])["status"] == "paused"
    assert client.get("/api/timers/nope").status_code == 404
