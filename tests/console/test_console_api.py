"""The console's JSON API and pages over a filled memory store (no browser, no endpoint)."""
from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from faas.console import Tokens, create_app
from faas.console.schema_form import fields, parse
from faas.console.svg import flow_graph, layers
from faas.messages import cancel_key

T1, T2, T9, T10 = (str(uuid.uuid4()) for _ in range(4))   # tasks nobody ran

#: every console has a token (there is no open mode): these tests hold the manage one
TOKENS = Tokens(manage="m-test-token")
MANAGE = {"Authorization": "Bearer m-test-token"}


@pytest.fixture
def app(filled, tmp_path):
    return create_app(filled.store.url, home=tmp_path / "home", tokens=TOKENS)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://127.0.0.1:8000", headers=MANAGE) as c:
        yield c


def test_endpoints_show_record_depth_error_and_tasks_per_minute(client, filled):
    eps = client.get("/api/endpoints").json()
    assert [e["name"] for e in eps] == ["site"]
    ep = eps[0]
    assert ep["provider"] == "slurm" and ep["status"] == "running" and ep["block_count"] == 2
    assert "error" in ep["queue_depth"]          # its queue is on another machine: said, not hidden
    assert ep["blocks"] is None                  # no daemon status file here
    assert len(ep["tasks_per_minute"]) == 60
    # 30 successes one a minute (the last hour holds 60 min: all of them) and 3 failures
    assert ep["tasks_last_hour"] == 33 and sum(ep["tasks_per_minute"]) == 33
    page = client.get("/endpoints")
    assert page.status_code == 200 and "<svg" in page.text and "33 task(s) in the last hour" in page.text
    assert client.get("/endpoints/site").status_code == 200
    assert client.get("/api/endpoints/nope").status_code == 404


def test_multi_user_endpoint_shows_user_endpoints_and_usage(filled, tmp_path):
    import json as _json

    from faas.endpoint import config as ep_config
    from faas.endpoint import registry
    from faas.endpoint.multiuser.audit import AuditLog
    from faas.endpoint.multiuser.user_endpoints import UserEndpoint
    home = tmp_path / "home"
    registry.publish(filled.store, {"name": "mu", "status": "running", "multi_user": True,
                                    "queue": "local:///nonexistent/mu", "user_endpoints": 1})
    d = ep_config.endpoint_dir("mu", home)
    d.mkdir(parents=True)
    ue = UserEndpoint(key="alice/x", name="mu-alice", user="alice", uid=1001, gid=1001, home="/home/alice",
                      variables={}, vhash="x", state="running", routed=5, done=4, failed=1)
    (d / "user_endpoints.json").write_text(_json.dumps({"endpoints": {ue.key: ue.to_json()}, "seen": {}}))
    log = AuditLog(d / "audit.log")
    for outcome in ("success", "success", "failed"):
        log.write(identity="local:alice", user="alice", function="f", task="t", outcome=outcome, run_seconds=36)
    log.close()
    with TestClient(create_app(filled.store.url, home=home, tokens=TOKENS), base_url="http://127.0.0.1",
                    headers=MANAGE) as c:
        ep = c.get("/api/endpoints/mu").json()
        assert ep["multi_user"] and ep["users"]["user_endpoints"][0]["name"] == "mu-alice"
        usage = ep["users"]["usage"]["alice"]
        assert (usage["tasks"], usage["success"], usage["failed"]) == (3, 2, 1)
        assert usage["task_hours"] == pytest.approx(0.03)
        html = c.get("/endpoints/mu").text
        assert "User endpoints" in html and "mu-alice" in html and "Usage per user" in html


def test_tasks_list_filters_and_paging(client, filled):
    all_ = client.get("/api/tasks").json()
    assert all_["total"] == 33
    fins = [t["finished"] for t in all_["tasks"]]
    assert fins == sorted(fins, reverse=True)    # newest first
    failed = client.get("/api/tasks", params={"status": "failed"}).json()
    assert {t["task_id"] for t in failed["tasks"]} == set(filled.failed_ids)
    by_name = client.get("/api/tasks", params={"function": "boom"}).json()
    assert by_name["total"] == 3 and by_name["tasks"][0]["function_name"] == "boom"
    by_prefix = client.get("/api/tasks", params={"function": filled.f_square[:10]}).json()
    assert by_prefix["total"] == 30
    assert client.get("/api/tasks", params={"endpoint": "other"}).json()["total"] == 0
    page2 = client.get("/api/tasks", params={"limit": 10, "offset": 10}).json()
    assert [t["task_id"] for t in page2["tasks"]] == [t["task_id"] for t in all_["tasks"][10:20]]
    html = client.get("/tasks", params={"status": "failed"}).text
    assert all(tid[:8] in html for tid in filled.failed_ids) and filled.ok_ids[0][:8] not in html
    # find by id redirects to the task's page
    r = client.get("/tasks", params={"id": filled.ok_ids[3]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/tasks/{filled.ok_ids[3]}"


def test_task_page_result_traceback_args_and_no_user_code(client, filled):
    ok = client.get(f"/api/tasks/{filled.ok_ids[4]}").json()
    assert ok["status"] == "success" and ok["result"]["values"] == ["16"]
    assert ok["endpoint"] == "site" and ok["host"] == "node1" and ok["function_name"] == "square"
    assert ok["sent"] < ok["started"] < ok["finished"]
    bad = client.get(f"/api/tasks/{filled.failed_ids[0]}").json()
    assert bad["status"] == "failed" and bad["error"]["type"] == "builtins.ValueError"
    assert "bad value 0" in bad["error"]["traceback"] and "Traceback" in bad["error"]["traceback"]
    html = client.get(f"/tasks/{filled.failed_ids[0]}").text
    assert "Remote traceback" in html and "bad value 0" in html
    op = client.get(f"/api/tasks/{filled.opaque_id}").json()
    assert op["args"]["calls"] == ["(7, 'seven', scale=2.5)"]
    assert op["result"]["values"] is None and "loads only plain data" in op["result"]["note"]
    assert "Opaque" in op["result"]["note"]
    import faas
    with faas.client(store=filled.store.url, autostart=False) as py:   # the API agrees with the client
        for tid in (filled.ok_ids[4], filled.failed_ids[0], filled.opaque_id):
            assert client.get(f"/api/tasks/{tid}").json()["status"] == py.get_task(tid)["status"]
        assert py.get_result(filled.ok_ids[4]) == 16
    never = str(uuid.uuid4())
    pending = client.get(f"/api/tasks/{never}").json()
    assert pending["status"] == "pending"
    bad = client.get("/api/tasks/never-sent")
    assert bad.status_code == 400 and "not a UUID" in bad.json()["detail"]
    assert 'http-equiv="refresh"' in client.get(f"/tasks/{never}").text   # live until it ends


def test_cancel_from_api_and_page(client, filled):
    r = client.post(f"/api/tasks/{T1}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert filled.store.exists(cancel_key(T1, filled.cid))
    r = client.post(f"/tasks/{T2}/cancel", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/tasks/{T2}?msg=")
    assert client.get(f"/api/tasks/{T2}").json()["status"] == "cancelled"
    # a finished task is not cancelled
    assert client.post(f"/api/tasks/{filled.ok_ids[0]}/cancel").json()["status"] == "success"


def test_functions(client, filled):
    fns = client.get("/api/functions").json()
    by_name = {f["name"]: f for f in fns}
    assert set(by_name) == {"square", "boom"}
    assert by_name["square"]["runs"] == 30 and by_name["boom"]["runs"] == 3
    assert by_name["square"]["size"] > 100 and by_name["square"]["function_id"] == filled.f_square
    assert by_name["square"]["first_seen"] < by_name["square"]["last_run"]
    assert "square" in client.get("/functions").text


def test_openapi_document_lists_the_api(client):
    doc = client.get("/openapi.json").json()
    paths = set(doc["paths"])
    assert {"/api/endpoints", "/api/tasks", "/api/tasks/{task_id}", "/api/tasks/{task_id}/cancel",
            "/api/functions", "/api/flows", "/api/flows/{flow_id}/runs", "/api/runs",
            "/api/runs/{run_id}/log", "/api/runs/{run_id}/cancel", "/api/runs/{run_id}/approve",
            "/api/timers", "/api/timers/{timer_id}/pause"} <= paths
    assert not any(p.startswith("/tasks") for p in paths)     # pages are not API


def test_tokens_roles_login_and_cross_site(filled, tmp_path):
    app = create_app(filled.store.url, home=tmp_path, tokens=Tokens(manage="m-secret", read="r-secret"))
    with TestClient(app) as c:
        assert c.get("/api/tasks").status_code == 401
        r = c.get("/tasks", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        ro = {"Authorization": "Bearer r-secret"}
        rw = {"Authorization": "Bearer m-secret"}
        assert c.get("/api/whoami", headers=ro).json() == {"role": "read"}
        assert c.get("/api/tasks", headers=ro).status_code == 200
        r = c.post(f"/api/tasks/{T9}/cancel", headers=ro)
        assert r.status_code == 403 and "manage token" in r.json()["detail"]
        assert not filled.store.exists(cancel_key(T9, filled.cid))
        assert c.post(f"/api/tasks/{T9}/cancel", headers={"Authorization": "Bearer wrong"}).status_code == 401
        # a cross-site post with a good token is refused too
        r = c.post(f"/api/tasks/{T9}/cancel", headers=dict(rw, Origin="https://evil.example"))
        assert r.status_code == 403
        assert c.post(f"/api/tasks/{T9}/cancel", headers=rw).status_code == 200
        # login sets a cookie the pages use; a read-only page shows a disabled cancel button
        r = c.post("/login", data={"token": "r-secret", "next": f"/tasks/{T10}"}, follow_redirects=False)
        assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
        html = c.get(f"/tasks/{T10}").text
        assert "read-only" in html and 'disabled title="cancelling needs the manage token"' in html
        assert c.post(f"/tasks/{T10}/cancel").status_code == 403
        denied = c.post("/login", data={"token": "nope"}, follow_redirects=False)
        assert denied.headers["location"].startswith("/login?error")


def test_token_option_forms_and_login_redirects_only_inside(filled, tmp_path):
    from faas.console.auth import parse_token_option
    assert parse_token_option(["m1"]) == Tokens(manage="m1")
    assert parse_token_option(["manage:m1", "read:r1"]) == Tokens(manage="m1", read="r1")
    assert parse_token_option(["read:r1"]) == Tokens(read="r1")
    with pytest.raises(ValueError, match="empty"):
        parse_token_option(["read:"])
    app = create_app(filled.store.url, home=tmp_path, tokens=Tokens(manage="m"))
    with TestClient(app) as c:
        for evil in ("https://evil.example/", "//evil.example/x"):
            r = c.post("/login", data={"token": "m", "next": evil}, follow_redirects=False)
            assert r.headers["location"] == "/endpoints"
        r = c.post("/login", data={"token": "m", "next": "/runs?status=FAILED"}, follow_redirects=False)
        assert r.headers["location"] == "/runs?status=FAILED"


def test_no_open_mode_even_on_loopback(filled, tmp_path):
    """A console without a token cannot be built, and a request without one is refused on a
    loopback host name too (loopback is every local account's)."""
    with pytest.raises(TypeError):
        create_app(filled.store.url, home=tmp_path)                       # tokens= is required
    with pytest.raises(TypeError, match="no open mode"):
        create_app(filled.store.url, home=tmp_path, tokens=None)
    for bad in ({}, {"manage": ""}, {"manage": " "}, {"read": ""}):
        with pytest.raises(ValueError):
            Tokens(**bad)
    with pytest.raises(ValueError, match="the same"):
        Tokens(manage="x", read="x")
    assert "m-test-token" not in repr(TOKENS)
    import uuid
    app = create_app(filled.store.url, home=tmp_path, tokens=TOKENS)
    t1, t2 = str(uuid.uuid4()), str(uuid.uuid4())
    for base in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        with TestClient(app, base_url=base) as c:
            assert c.get("/api/whoami").status_code == 401
            assert c.get("/api/endpoints").status_code == 401
            assert c.post(f"/api/tasks/{t1}/cancel").status_code == 401
            r = c.post(f"/tasks/{t2}/cancel", follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            r = c.get("/endpoints", follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            assert "site" not in c.get("/api/endpoints").text
    with TestClient(app, base_url="http://127.0.0.1:8000", headers=MANAGE) as c:
        assert [c.get(f"/api/tasks/{t}").json()["status"] for t in (t1, t2)] == ["pending", "pending"]


def test_cli_refuses_a_public_host_without_a_token():
    from click.testing import CliRunner

    from faas.cli.main import main
    r = CliRunner().invoke(main, ["console", "--host", "0.0.0.0", "--port", "1"], env={"FAAS_CONSOLE_TOKEN": ""})
    assert r.exit_code != 0 and "not a loopback address" in r.output


# -- pieces ---------------------------------------------------------------------------------

SCHEMA = {"type": "object", "required": ["name", "count"],
          "properties": {"name": {"type": "string", "title": "Sample name", "pattern": "^[a-z]+$",
                                  "errorMessage": {"pattern": "lower-case letters only"}},
                         "count": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                         "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                         "dry": {"type": "boolean"}, "extra": {"type": "object"}}}


def test_schema_form_fields_and_parse():
    fs = {f["name"]: f for f in fields(SCHEMA)}
    assert fs["name"]["required"] and fs["name"]["attrs"]["pattern"] == "^[a-z]+$"
    assert fs["name"]["messages"]["pattern"] == "lower-case letters only"
    assert fs["count"]["value"] == 3 and fs["count"]["input_type"] == "number" and fs["count"]["step"] == "1"
    assert fs["mode"]["kind"] == "enum" and fs["dry"]["kind"] == "boolean" and fs["extra"]["kind"] == "json"
    data, errors = parse(SCHEMA, {"name": "abc", "count": "4", "mode": "slow", "dry": "true", "extra": '{"a": 1}'})
    assert errors == {} and data == {"name": "abc", "count": 4, "mode": "slow", "dry": True, "extra": {"a": 1}}
    _, errors = parse(SCHEMA, {"name": "ABC", "count": "40"})
    assert errors == {"name": "lower-case letters only", "count": "count must be at most 10"}
    ticked = {"properties": {"dry": {"type": "boolean", "default": True}}}
    assert fields(ticked)[0]["value"] is True and fields(ticked, {})[0]["value"] is False   # unticked stays so
    _, errors = parse(SCHEMA, {"count": "x", "extra": "{"})
    assert errors == {"name": "Sample name is required", "count": "count must be an integer",
                      "extra": "extra must be JSON (object)"}


def test_flow_graph_layers_and_svg():
    d = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "C"}], "Default": "D"},
        "C": {"Type": "Action", "Next": "A", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "D"}]},
        "D": {"Type": "Fail"}, "Orphan": {"Type": "Pass", "End": True}}}
    assert layers(d) == [["A"], ["B"], ["C", "D"], ["Orphan"]]
    svg = flow_graph(d, {"C": "current"})
    assert svg.count("<g class=\"state") == 5 and "current" in svg and "catch" in svg
    assert json.dumps(svg)  # plain text, no script
    assert "<script" not in svg


def test_a_console_elsewhere_shows_blocks_from_the_daemons_store_record(tmp_path):
    """A real daemon publishes its blocks (job ids, states, workers) in its store record, so a
    console on another machine (another FAAS_HOME here) shows them."""
    import time

    from helpers import running_endpoint

    from faas.endpoint import daemon as daemon_mod
    home = tmp_path / "site-home"
    with running_endpoint(home) as cfg:
        d = daemon_mod.Daemon("local", home)     # the record a running daemon publishes
        d.blocks = json.loads((home / "endpoints" / "local" / "blocks.json").read_text())
        deadline = time.monotonic() + 60
        while True:
            status = json.loads((home / "endpoints" / "local" / "daemon.status.json").read_text())
            d.last_states = {b["job"]: b["state"] for b in status["blocks"].values()}
            detail = d._block_detail()
            if detail and detail[0]["workers"] == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        from faas.endpoint import registry
        from faas.store import open_store
        store = open_store(cfg.store)
        assert isinstance(registry.read(store, "local")["block_detail"], list)   # the daemon's own
        registry.publish(store, dict(registry.read(store, "local"), block_detail=detail))
        app = create_app(cfg.store, home=tmp_path / "elsewhere", tokens=TOKENS)
        with TestClient(app, base_url="http://127.0.0.1:8000", headers=MANAGE) as c:
            ep = c.get("/api/endpoints/local").json()
            assert ep["blocks"] and ep["blocks"][0]["job"] == detail[0]["job"]
            assert ep["blocks"][0]["workers"] == 2 and ep["blocks"][0]["remote"]
            assert "published every 30 s" in c.get("/endpoints/local").text


def nap(seconds):
    import time
    time.sleep(seconds)
    return seconds


def test_running_tasks_are_listed_from_the_pools_markers(tmp_path, monkeypatch):
    """A task that runs (over a second) shows in the list as running, from the pool's marker,
    before the journal has it; once finished it shows once, from the journal."""
    import time

    from helpers import running_endpoint

    import faas
    home = tmp_path / "site-home"
    with running_endpoint(home) as cfg:
        c = faas.client()
        tid = c.run(function_id=c.register_function(nap), args=(4,))
        # the console of the same user (elsewhere, with the user's result key): it sees the
        # user's own tasks, which live in the user's client folder of the store
        monkeypatch.setenv("FAAS_RESULT_KEY", (home / "result.key").read_text().split()[-1])
        app = create_app(cfg.store, home=tmp_path / "elsewhere", tokens=TOKENS)
        with TestClient(app, base_url="http://127.0.0.1:8000", headers=MANAGE) as web:
            deadline = time.monotonic() + 60
            while True:
                rows = web.get("/api/tasks", params={"status": "running"}).json()["tasks"]
                if any(r["task_id"] == tid for r in rows) or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            row = next(r for r in rows if r["task_id"] == tid)
            assert row["status"] == "running" and row["endpoint"] == "local" and row["started"]
            assert tid[:8] in web.get("/tasks", params={"status": "running"}).text
            assert c.get_result(task_id=tid, timeout=60) == 4
            deadline = time.monotonic() + 60
            while True:   # the pool's journal flush (every 5 s) brings the finished record
                rows = web.get("/api/tasks").json()["tasks"]
                mine = [r for r in rows if r["task_id"] == tid]
                if mine and mine[0]["status"] == "success" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert [r["status"] for r in mine] == ["success"]
            assert not [r for r in web.get("/api/tasks", params={"status": "running"}).json()["tasks"]
                        if r["task_id"] == tid]
        c.close()
