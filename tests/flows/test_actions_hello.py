"""Globus's Hello World provider (served here) and the refusal of Globus-hosted providers that
faas has no counterpart of."""
from __future__ import annotations

import time

import httpx
import pytest

from faas.flows.actions import ActionConflict, ActionContext, ActionUnableToRun, resolve
from faas.flows.actions.hello import HelloWorldProvider

URL = "https://actions.globus.org/hello_world"


@pytest.fixture
def ctx(tmp_path):
    return ActionContext((tmp_path / "store").as_uri(), "run-1", "flow-1", "alice")


def test_hello_world_url_is_served_here():
    assert isinstance(resolve(URL), HelloWorldProvider)
    assert isinstance(resolve(URL + "/"), HelloWorldProvider)


def test_no_sleep_succeeds_at_once(ctx):
    doc = resolve(URL).run({"echo_string": "hi"}, "r1", ctx)
    assert (doc["status"], doc["details"]) == ("SUCCEEDED", {"Hello": "World", "hello": "hi"})
    assert resolve(URL).run({}, "r2", ctx)["details"] == {"Hello": "World"}


def test_sleep_time_keeps_it_active_then_succeeds(ctx):
    p = resolve(URL)
    doc = p.run({"echo_string": "x", "sleep_time": 0.3}, "r1", ctx)
    assert doc["status"] == "ACTIVE" and 0 < doc["poll_after"] <= 0.3
    with pytest.raises(ActionConflict):
        p.release(doc["action_id"], ctx)
    assert p.run({"sleep_time": 0.3}, "r1", ctx)["action_id"] == doc["action_id"]   # same request
    time.sleep(0.35)
    assert p.status(doc["action_id"], ctx)["details"] == {"Hello": "World", "hello": "x"}
    assert p.release(doc["action_id"], ctx)["status"] == "SUCCEEDED"


def test_cancel(ctx):
    p = resolve(URL)
    doc = p.run({"sleep_time": 60}, "r1", ctx)
    assert p.cancel(doc["action_id"], ctx)["status"] == "FAILED"
    assert p.status(doc["action_id"], ctx)["details"]["error"] == "Canceled"


@pytest.mark.parametrize("body,match", [
    ({"required_dependent_scope": "https://auth.globus.org/scopes/x"}, "Globus Auth"),
    ({"sleep_time": -1}, "sleep_time"), ({"sleep_time": "5"}, "sleep_time"), ([], "object"),
])
def test_bad_bodies(ctx, body, match):
    with pytest.raises(ActionUnableToRun, match=match):
        resolve(URL).run(body, "r1", ctx)


@pytest.mark.parametrize("url,names", [
    ("https://actions.globus.org/search/ingest", "Globus Search"),
    ("https://actions.globus.org/search/delete", "Globus Search"),
    ("https://actions.globus.org/weboption/wait_for_option", "Wait For User Selection"),
    ("https://actions.globus.org/datacite/mint/basic_auth", "DataCite"),
    ("https://actions.globus.org/expression_eval", "Expression Evaluation"),
    ("https://transfer.actions.globus.org/collection_info", "an action provider of Globus's"),
])
def test_globus_hosted_providers_are_refused_by_name(ctx, url, names, monkeypatch):
    """Unless the site lists it: then it is called, with the token the site configured."""
    called: list = []
    monkeypatch.setattr(httpx, "request", lambda *a, **kw: called.append((a, kw)) or httpx.Response(
        202, json={"action_id": "a1", "status": "ACTIVE"}))
    with pytest.raises(ActionUnableToRun, match=names) as e:
        resolve(url).run({}, "r1", ctx)
    assert "Globus's cloud" in str(e.value) and "register" in str(e.value) and called == []
    listed = ActionContext(ctx.store_url, "run-1", "flow-1", "alice",
                           config={"http": {url: {"token": "from-globus-auth"}}})
    assert resolve(url).run({}, "r1", listed)["action_id"] == "a1"
    assert called[0][1]["headers"]["Authorization"] == "Bearer from-globus-auth"


def test_any_other_host_is_still_an_http_provider():
    assert type(resolve("https://ap.example.org/run_thing")).__name__ == "HttpProvider"
