"""The HTTP action: any Globus Action Provider over HTTP, here one served on 127.0.0.1."""
from __future__ import annotations

import getpass

import pytest
from ap_server import Served

import faas.flows as ff
from faas.flows.actions import ActionConflict, ActionContext, ActionNotFound, ActionUnableToRun, resolve
from faas.flows.actions import http as http_action

TOKEN = "secret-token"


@pytest.fixture(scope="module")
def ap():
    with Served(TOKEN) as s:
        yield s


def ctx(ap, token=TOKEN, tmp="memory://http-actions"):
    return ActionContext(tmp, "run-1", "flow-1", "alice", config={"http": {ap.url: {"token": token}}})


def test_run_status_release(ap):
    p = resolve(ap.url)
    assert isinstance(p, http_action.HttpProvider)
    doc = p.run({"op": "echo", "x": 1}, "req-echo", ctx(ap))
    assert doc["status"] == "SUCCEEDED" and doc["details"] == {"echo": {"op": "echo", "x": 1}}
    assert p.status(doc["action_id"], ctx(ap))["status"] == "SUCCEEDED"
    p.release(doc["action_id"], ctx(ap))
    with pytest.raises(ActionNotFound):
        p.status(doc["action_id"], ctx(ap))


def test_run_is_idempotent_by_request_id(ap):
    p = resolve(ap.url)
    before = ap.app.state.runs
    a = p.run({"op": "slow", "polls": 3}, "req-idem", ctx(ap))
    b = p.run({"op": "slow", "polls": 3}, "req-idem", ctx(ap))
    assert a["action_id"] == b["action_id"] and ap.app.state.runs == before + 1
    with pytest.raises(ActionConflict):
        p.release(a["action_id"], ctx(ap))
    assert p.cancel(a["action_id"], ctx(ap))["status"] == "FAILED"


def test_bad_body_and_bad_token_are_unable_to_run(ap):
    p = resolve(ap.url)
    with pytest.raises(ActionUnableToRun, match="HTTP 400.*unknown op"):
        p.run({"op": "nope"}, "req-bad", ctx(ap))
    with pytest.raises(ActionUnableToRun, match="HTTP 401"):
        p.run({"op": "echo"}, "req-tok", ctx(ap, token="wrong"))


def test_longest_prefix_token_wins(ap):
    c = ActionContext("memory://x", "r", "f", "u",
                      config={"http": {"http://127.0.0.1": {"token": "wrong"}, ap.url: {"token": TOKEN}}})
    assert resolve(ap.url).run({"op": "echo"}, "req-prefix", c)["status"] == "SUCCEEDED"


def test_transient_503_is_retried(ap):
    ap.app.state.flaky = 2
    doc = resolve(ap.url).run({"op": "echo"}, "req-flaky", ctx(ap))
    assert doc["status"] == "SUCCEEDED" and ap.app.state.flaky == 0


def test_unreachable_provider_is_unable_to_run():
    me = getpass.getuser()   # a run of the runner's own account may call any provider
    with pytest.raises(ActionUnableToRun, match="unreachable"):
        resolve("http://127.0.0.1:9/ap").run({}, "req-x", ActionContext("memory://x", "r", "f", me))


def test_another_users_run_calls_only_the_providers_the_site_lists(ap):
    """A runner serving other users lends them its network: loopback services, a cloud's
    metadata address, hosts behind the firewall. Their runs call only what ``http:`` lists
    (no request is made otherwise), or anything where the site sets http_allow_any_url."""
    someone = "someone-else-" + getpass.getuser()
    before = ap.app.state.runs
    with pytest.raises(ActionUnableToRun, match="calls only the Action Providers its site lists"):
        resolve(ap.url).run({"op": "echo"}, "req-1", ActionContext("memory://x", "r", "f", someone))
    with pytest.raises(ActionUnableToRun, match="calls only the Action Providers"):   # a path boundary
        resolve(ap.url).run({"op": "echo"}, "req-2", ActionContext(
            "memory://x", "r", "f", someone, config={"http": {ap.url + "x": {"token": TOKEN}}}))
    assert ap.app.state.runs == before, "a request went out"
    listed = ActionContext("memory://x", "r", "f", someone, config={"http": {ap.url: {"token": TOKEN}}})
    assert resolve(ap.url).run({"op": "echo"}, "req-3", listed)["status"] == "SUCCEEDED"
    anything = ActionContext("memory://x", "r", "f", someone, config={"http_allow_any_url": True})
    with pytest.raises(ActionUnableToRun, match="HTTP 401"):   # called (without a token: refused there)
        resolve(ap.url).run({"op": "echo"}, "req-4", anything)


def test_flow_over_http_provider(ap):
    defn = {"StartAt": "Slow", "States": {
        "Slow": {"Type": "Action", "ActionUrl": ap.url, "Parameters": {"op": "slow", "polls": 3},
                 "ResultPath": "$.slow", "Next": "Fail"},
        "Fail": {"Type": "Action", "ActionUrl": ap.url,
                 "Parameters": {"op": "fail", "message.$": "$.why"}, "ResultPath": "$.failed",
                 "Catch": [{"ErrorEquals": ["ActionFailedException"], "ResultPath": "$.caught",
                            "Next": "Done"}], "End": True},
        "Done": {"Type": "Pass", "End": True}}}
    doc = ff.run(defn, {"why": "no disk"}, actions="site", store_url="memory://http-flow",
                 config={"http": {ap.url: {"token": TOKEN}}})
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["slow"]["details"] == {"polled": 3}
    assert "no disk" in doc["output"]["caught"]["Cause"]
