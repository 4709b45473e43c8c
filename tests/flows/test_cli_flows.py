"""``faas flows`` and ``faas timers`` end to end, with the real runner and the built-in
transfer action."""
from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

from faas.cli.main import main
from faas.flows.runner import Runner

FLOW = {"Comment": "copy then say done", "StartAt": "Copy", "States": {
    "Copy": {"Type": "Action", "ActionUrl": "https://actions.automate.globus.org/transfer/transfer",
             "Parameters": {"source_endpoint_id.$": "$.src", "destination_endpoint_id.$": "$.dst",
                            "transfer_items": [{"source_path": "/a.txt",
                                                "destination_path": "/b.txt",
                                                "recursive": False}]},
             "ResultPath": "$.copy", "Next": "Done"},
    "Done": {"Type": "Pass", "Result": "ok", "ResultPath": "$.done", "End": True}}}
SCHEMA = {"type": "object", "required": ["src", "dst"],
          "properties": {"src": {"type": "string"}, "dst": {"type": "string"}}}


@pytest.fixture
def env(tmp_path, faas_home):
    store = (tmp_path / "store").as_uri()
    (tmp_path / "def.json").write_text(json.dumps(FLOW))
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a.txt").write_text("hello")
    (tmp_path / "in.json").write_text(json.dumps({"src": src.as_uri(), "dst": dst.as_uri()}))
    cli = CliRunner()

    def run(*args, ok=True):
        r = cli.invoke(main, [*args], catch_exceptions=False)
        if ok:
            assert r.exit_code == 0, r.output
        return r
    return tmp_path, store, run


def test_validate_reports_every_error_with_its_location(env):
    tmp, store, run = env
    r = run("flows", "validate", str(tmp / "def.json"), "--input-schema", str(tmp / "schema.json"))
    assert "valid" in r.output
    bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Step2", "End": True},
                                      "Orphan": {"Type": "Pass", "End": True}}}
    (tmp / "bad.yaml").write_text(json.dumps(bad))
    (tmp / "bad_schema.json").write_text('{"type": 5}')
    r = run("flows", "validate", str(tmp / "bad.yaml"), "--input-schema",
            str(tmp / "bad_schema.json"), ok=False)
    assert r.exit_code == 1
    out = r.output
    assert f"{tmp / 'bad.yaml'}: $.States.A" in out and "Step2" in out
    assert "Orphan" in out
    assert f"{tmp / 'bad_schema.json'}: input_schema.type" in out
    (tmp / "broken.json").write_text("{not json: [")
    r = run("flows", "validate", str(tmp / "broken.json"), ok=False)
    assert r.exit_code == 1 and "broken.json" in r.output


def test_deploy_start_watch_and_manage(env):
    tmp, store, run = env
    flow = json.loads(run("flows", "deploy", str(tmp / "def.json"), "--input-schema",
                          str(tmp / "schema.json"), "--title", "Copy", "--store", store).output)
    assert flow["title"] == "Copy" and flow["version"] == 1
    fid = flow["id"]
    assert fid in run("flows", "list", "--store", store).output
    assert json.loads(run("flows", "show", fid, "--store", store).output)["id"] == fid
    # a bad input: every violation, nothing started
    (tmp / "bad_in.json").write_text(json.dumps({"src": 1}))
    r = run("flows", "start", fid, "--input", str(tmp / "bad_in.json"), "--store", store, ok=False)
    assert r.exit_code == 1 and "$.src: 1 is not of type 'string'" in r.output
    assert "'dst' is a required property" in r.output
    r = run("flows", "start", fid, "--input", str(tmp / "nope.json"), "--store", store, ok=False)
    assert r.exit_code == 1 and "nope.json" in r.output
    assert run("flows", "runs", "--store", store, "--json").output.strip() == "[]"
    # a good one, driven by `serve --once` passes
    started = json.loads(run("flows", "start", fid, "--input", str(tmp / "in.json"), "--label",
                             "L1", "--tag", "t", "--store", store).output)
    rid = started["run_id"]
    for _ in range(100):
        run("flows", "serve", "--once", "--store", store)
        doc = json.loads(run("flows", "status", rid, "--store", store).output)
        if doc["status"] != "ACTIVE":
            break
        import time
        time.sleep(0.1)
    assert doc["status"] == "SUCCEEDED", doc
    assert (tmp / "dst" / "b.txt").read_text() == "hello"
    log = run("flows", "log", rid, "--store", store).output
    assert "FlowStarted" in log and "FlowSucceeded" in log
    follow = run("flows", "log", rid, "--follow", "--json", "--store", store).output.splitlines()
    assert json.loads(follow[-1])["code"] == "FlowSucceeded"
    runs = run("flows", "runs", "--status", "SUCCEEDED", "--label", "L1", "--store", store).output
    assert rid in runs and "SUCCEEDED" in runs
    assert rid not in run("flows", "runs", "--status", "FAILED", "--store", store).output
    # update makes version 2; delete removes it
    upd = json.loads(run("flows", "update", fid, "--title", "Copy2", "--store", store).output)
    assert upd["version"] == 2 and upd["title"] == "Copy2"
    r = run("flows", "cancel", rid, "--store", store)
    assert "cancel" in r.output
    run("flows", "delete", fid, "--store", store)
    r = run("flows", "show", fid, "--store", store, ok=False)
    assert r.exit_code == 1 and "no flow" in r.output


def test_start_wait_with_a_runner(env):
    tmp, store, run = env
    fid = json.loads(run("flows", "deploy", str(tmp / "def.json"), "--store", store).output)["id"]
    runner = Runner(store)
    stop = threading.Event()
    t = threading.Thread(target=runner.serve, kwargs={"max_wait": 0.1, "should_stop": stop.is_set},
                         daemon=True)
    t.start()
    try:
        r = run("flows", "start", fid, "--input", str(tmp / "in.json"), "--wait", "--timeout",
                "120", "--store", store)
    finally:
        stop.set()
        t.join(30)
    assert json.loads(r.output)["status"] == "SUCCEEDED"


def test_timers_cli(env):
    tmp, store, run = env
    fid = json.loads(run("flows", "deploy", str(tmp / "def.json"), "--store", store).output)["id"]
    t = json.loads(run("timers", "create", "--flow", fid, "--input", str(tmp / "in.json"),
                       "--interval", "1h", "--start", "2030-01-01T00:00:00Z",
                       "--stop-after-runs", "5", "--store", store).output)
    assert t["schedule"]["interval"] == 3600 and t["next_run"].startswith("2030-01-01T00:00:00")
    assert t["id"] in run("timers", "list", "--store", store).output
    assert json.loads(run("timers", "pause", t["id"], "--store", store).output)["status"] == "paused"
    assert json.loads(run("timers", "resume", t["id"], "--store", store).output)["status"] == "active"
    shown = json.loads(run("timers", "show", t["id"], "--store", store).output)
    assert {"status", "last_ran_at", "next_run", "runs", "errors", "skipped"} <= set(shown)
    f = json.loads(run("timers", "create", "--function", "abc", "--endpoint", "local", "--args",
                       "[1, 2]", "--store", store).output)
    assert f["kind"] == "function" and f["args"] == [1, 2]
    x = json.loads(run("timers", "create", "--transfer", "file:///a/", "file:///b/",
                       "--interval", "30m", "--store", store).output)
    assert x["kind"] == "transfer"
    r = run("timers", "create", "--function", "abc", "--store", store, ok=False)
    assert r.exit_code == 1 and "endpoint" in r.output
    r = run("timers", "create", "--flow", fid, "--interval", "often", "--store", store, ok=False)
    assert r.exit_code == 1 and "interval" in r.output
    run("timers", "delete", t["id"], "--store", store)
    assert t["id"] not in run("timers", "list", "--store", store).output


@pytest.mark.slow
def test_serve_as_a_process_stops_on_sigterm(env):
    import os
    import signal
    import subprocess
    import sys
    import time
    tmp, store, run = env
    fid = json.loads(run("flows", "deploy", str(tmp / "def.json"), "--store", store).output)["id"]
    exe = os.path.join(os.path.dirname(sys.executable), "faas")
    proc = subprocess.Popen([exe, "flows", "serve", "--store", store, "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rid = json.loads(run("flows", "start", fid, "--input", str(tmp / "in.json"), "--store",
                             store).output)["run_id"]
        deadline = time.time() + 120
        while json.loads(run("flows", "status", rid, "--store", store).output)["status"] == "ACTIVE":
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.2)
        assert json.loads(run("flows", "status", rid, "--store", store).output)["status"] == "SUCCEEDED"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
