"""Timers: schedules on a fake clock, at-most-once ticks, skipped and missed ticks, and one real
short-interval timer fired by the runner."""
from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_runner_support import URL, counts, resolver  # noqa: E402

from faas.flows import FlowsClient, TimersClient  # noqa: E402
from faas.flows import store_layout as L  # noqa: E402
from faas.flows.access import AccessDenied  # noqa: E402
from faas.flows.runner import Runner  # noqa: E402
from faas.flows.timers import TimerFirer, TimerNotFound, inline_flow, parse_interval, tick_run_id  # noqa: E402

T0 = 1_800_000_000.0
ONE = {"StartAt": "A", "States": {"A": {"Type": "Action", "ActionUrl": URL,
                                        "Parameters": {"n.$": "$.n"}, "End": True}}}


class Fake:
    """start_run/run_status stand-ins: runs stay ACTIVE until ``finish``."""

    def __init__(self):
        self.started: list[tuple[str, float]] = []
        self.status: dict[str, str] = {}

    def start_run(self, flow, input, user, run_id, label, timer_id):
        if run_id not in self.status:
            self.started.append((run_id, input["n"]))
            self.status[run_id] = "ACTIVE"
        return {"run_id": run_id}

    def finish_all(self):
        for k in self.status:
            self.status[k] = "SUCCEEDED"


@pytest.fixture
def setup():
    url = f"memory://timers-{uuid.uuid4().hex}"
    clock = [T0]
    flows = FlowsClient(url)
    flow = flows.deploy(ONE)
    timers = TimersClient(url, clock=lambda: clock[0])
    fake = Fake()
    firer = TimerFirer(flows.store, fake.start_run, fake.status.get)
    yield flows, flow, timers, fake, firer, clock
    L.open_command_queue(flows.store).destroy()   # memory stores' queues live in $FAAS_HOME/queues


def test_parse_interval():
    assert parse_interval(90) == 90 and parse_interval("90") == 90
    assert parse_interval("1h30m") == 5400 and parse_interval("2d") == 172800
    assert parse_interval("30m") == 1800 and parse_interval("45s") == 45
    assert parse_interval(None) is None
    for bad in ("soon", "1x", "0", "-5"):
        with pytest.raises(ValueError):
            parse_interval(bad)


def test_recurring_timer_on_a_fake_clock(setup):
    flows, flow, timers, fake, firer, clock = setup
    t = timers.create(flow["id"], {"n": 1}, start=T0 + 10, interval="1m", stop_after_runs=3)
    assert t["status"] == "active" and t["schedule"]["interval"] == 60
    assert t["next_run"].startswith("2027-01-15T08:00:10")
    assert firer.fire_due(T0 + 5) == []
    recs = firer.fire_due(T0 + 11)
    assert [r["result"] for r in recs] == ["started"]
    assert recs[0]["run_id"] == tick_run_id(t["id"], T0 + 10)
    # the next tick comes while the first run is still going: skipped and recorded
    recs = firer.fire_due(T0 + 71)
    assert [r["result"] for r in recs] == ["skipped"]
    got = timers.get(t["id"])
    assert got["skipped"] == 1 and got["runs"] == 1 and got["history"][-1]["result"] == "skipped"
    fake.finish_all()
    firer.fire_due(T0 + 131)
    fake.finish_all()
    firer.fire_due(T0 + 191)
    got = timers.get(t["id"])
    assert got["runs"] == 3 and got["status"] == "ended" and got["next_run"] is None
    assert got["last_ran_at"].startswith("2027-01-15T08:03:11")
    assert len(fake.started) == 3
    assert firer.fire_due(T0 + 1000) == []


def test_each_tick_fires_at_most_once_across_restarts(setup):
    flows, flow, timers, fake, firer, clock = setup
    t = timers.create(flow["id"], {"n": 2}, start=T0, interval=60)
    firer.fire_due(T0 + 1)
    # a runner that died before recording the tick fires it again: the same run id, no new run
    L.put_json(flows.store, L.timer_key(t["id"]), dict(
        L.get_json(flows.store, L.timer_key(t["id"])), next_run_epoch=T0, runs=0))
    TimerFirer(flows.store, fake.start_run, lambda rid: "SUCCEEDED").fire_due(T0 + 2)
    assert len(fake.started) == 1
    assert list(flows.store.list(f"timers/{t['id']}/ticks/")) == [L.tick_key(t["id"], T0)]


@pytest.mark.parametrize("run_missed,expect_runs", [("once", 1), ("skip", 0)])
def test_missed_ticks_are_reported_and_run_once(setup, run_missed, expect_runs):
    flows, flow, timers, fake, firer, clock = setup
    t = timers.create(flow["id"], {"n": 3}, start=T0, interval=600, run_missed=run_missed)
    recs = firer.fire_due(T0 + 3600 + 100)   # the runner was down for an hour
    missed = [r for r in recs if r["result"] == "missed"]
    assert len(missed) == 7                  # T0, T0+10m, ..., T0+60m
    assert len(fake.started) == expect_runs
    if expect_runs:                          # the latest missed tick is the one run
        assert fake.started[0][0] == tick_run_id(t["id"], T0 + 3600)
    got = timers.get(t["id"])
    assert got["missed"] == 7 and got["runs"] == expect_runs
    assert got["next_run"].startswith("2027-01-15T09:10:00")


def test_a_tick_on_time_after_missed_ones_runs_as_usual(setup):
    flows, flow, timers, fake, firer, clock = setup
    t = timers.create(flow["id"], {"n": 3}, start=T0, interval=60, run_missed="skip")
    recs = firer.fire_due(T0 + 3600 + 10)
    assert [r["result"] for r in recs].count("missed") == 60
    assert [r["result"] for r in recs][-1] == "started"
    assert fake.started == [(tick_run_id(t["id"], T0 + 3600), 3)]


def test_once_timer_pause_resume_delete_and_owner(setup):
    flows, flow, timers, fake, firer, clock = setup
    t = timers.create(flow["id"], {"n": 4}, start=T0 + 30)
    assert timers.pause(t["id"])["status"] == "paused"
    assert firer.fire_due(T0 + 40) == []
    clock[0] = T0 + 20
    assert timers.resume(t["id"])["status"] == "active"
    assert [r["result"] for r in firer.fire_due(T0 + 45)] == ["started"]
    assert timers.get(t["id"])["status"] == "ended"
    other = TimersClient(flows.store_url, identity="someone-else")
    assert other.list() == []
    with pytest.raises(AccessDenied):
        other.pause(t["id"])
    assert [x["id"] for x in timers.list()] == [t["id"]]
    timers.delete(t["id"])
    with pytest.raises(TimerNotFound):
        timers.get(t["id"])


def test_create_checks_its_arguments(setup):
    flows, flow, timers, fake, firer, clock = setup
    with pytest.raises(ValueError, match="exactly one"):
        timers.create()
    with pytest.raises(ValueError, match="endpoint"):
        timers.create(function_id="f")
    with pytest.raises(ValueError, match="URL"):
        timers.create(transfer=("no-url", "file:///x"))
    stranger = TimersClient(flows.store_url, identity="stranger")
    with pytest.raises(AccessDenied):
        stranger.create(flow["id"], {"n": 1})
    f = timers.create(function_id="fn", endpoint="local", args=[1, 2], interval="1h")
    d = inline_flow(L.get_json(flows.store, L.timer_key(f["id"])))["definition"]["States"]["Run"]
    assert d["Parameters"] == {"endpoint": "local", "function": "fn", "args": [1, 2], "kwargs": {}}
    x = timers.create(transfer=("file:///data/in/", "s3://bucket/out/"))
    d = inline_flow(L.get_json(flows.store, L.timer_key(x["id"])))["definition"]["States"]["Run"]
    assert d["Parameters"]["source_endpoint_id"] == "file://"
    assert d["Parameters"]["transfer_items"] == [
        {"source_path": "/data/in/", "destination_path": "/out/", "recursive": True}]


@pytest.mark.slow
def test_a_real_short_interval_timer_fired_by_the_runner(tmp_path, faas_home):
    store_url = (tmp_path / "store").as_uri()
    flows = FlowsClient(store_url)
    flow = flows.deploy(ONE)
    timers = TimersClient(store_url)
    t = timers.create(flow["id"], {"n": 5}, interval=1, stop_after_runs=3)
    runner = Runner(store_url, resolve=resolver(store_url))
    stop = threading.Event()
    th = threading.Thread(target=runner.serve, kwargs={"max_wait": 0.1, "should_stop": stop.is_set},
                          daemon=True)
    th.start()
    try:
        deadline = time.time() + 90
        while timers.get(t["id"])["status"] != "ended":
            assert time.time() < deadline, timers.get(t["id"])
            time.sleep(0.2)
        runs = flows.list_runs(flow_id=flow["id"])
        for r in runs:
            flows.wait(r["run_id"], timeout=60)
    finally:
        stop.set()
        th.join(30)
    got = timers.get(t["id"])
    assert got["runs"] == 3 and len(runs) == 3
    assert {r["label"] for r in runs} == {got["name"]} and all(r["timer_id"] == t["id"] for r in runs)
    assert all(flows.get_run(r["run_id"])["status"] == "SUCCEEDED" for r in runs)
    assert len(counts(store_url)) == 3


def test_a_transfer_timer_copies_with_the_builtin_action(tmp_path, faas_home):
    store_url = (tmp_path / "store").as_uri()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "data.txt").write_text("tick")
    timers = TimersClient(store_url)
    t = timers.create(transfer=((tmp_path / "src").as_uri() + "/",
                                (tmp_path / "dst").as_uri() + "/"))
    runner = Runner(store_url)
    flows = FlowsClient(store_url)
    deadline = time.time() + 60
    while True:
        runner.serve(once=True)
        runs = flows.list_runs()
        if runs and runs[0]["status"] != "ACTIVE":
            break
        assert time.time() < deadline, runs
        time.sleep(0.1)
    assert runs[0]["status"] == "SUCCEEDED", runs[0]
    assert runs[0]["timer_id"] == t["id"]
    assert (tmp_path / "dst" / "data.txt").read_text() == "tick"
    assert timers.get(t["id"])["status"] == "ended"


def test_transfer_timers_take_the_transfer_and_sync_options(setup):
    flows, flow, timers, fake, firer, clock = setup
    rules = [{"method": "exclude", "type": "file", "name": "*.tmp"}]
    t = timers.create(transfer=("file:///data/in/", "s3://bucket/out/"), interval="1d",
                      sync_level="checksum", verify_checksum=False, preserve_timestamp=True,
                      delete_destination_extra=True, skip_source_errors=True, filter_rules=rules,
                      label="nightly sync", recursive=True)
    d = inline_flow(L.get_json(flows.store, L.timer_key(t["id"])))["definition"]["States"]["Run"]
    p = d["Parameters"]
    assert (p["sync_level"], p["verify_checksum"], p["preserve_timestamp"], p["label"]) == \
        (3, False, True, "nightly sync")
    assert p["delete_destination_extra"] is True and p["skip_source_errors"] is True
    assert p["filter_rules"] == [{"DATA_TYPE": "filter_rule", "method": "exclude", "type": "file",
                                  "name": "*.tmp"}]
    with pytest.raises(ValueError, match="sync_level: expected"):
        timers.create(transfer=("file:///a/", "file:///b/"), sync_level="often")
    with pytest.raises(ValueError, match=r"filter_rules\[0\].method"):
        timers.create(transfer=("file:///a/", "file:///b/"), filter_rules=[{"method": "x", "name": "*"}])
    with pytest.raises(ValueError, match="sync_level: transfer options need transfer"):
        timers.create(flow["id"], {"n": 1}, sync_level=1)


def test_cli_timers_create_transfer_options(tmp_path, faas_home, monkeypatch):
    from click.testing import CliRunner

    from faas.cli.main import main
    monkeypatch.setattr(TimersClient, "_runner_up", lambda self: None)
    store = (tmp_path / "store").as_uri()
    r = CliRunner().invoke(main, [
        "timers", "create", "--transfer", "file:///data/in/", "file:///data/out/", "--interval", "1h",
        "--sync-level", "mtime", "--no-verify-checksum", "--preserve-timestamp",
        "--delete-destination-extra", "--skip-source-errors", "--filter-rule", "exclude:file:*.tmp",
        "--filter-rule", "include:keep*", "--label", "hourly", "--no-recursive", "--store", store],
        catch_exceptions=False)
    assert r.exit_code == 0, r.output
    t = TimersClient(store).list()[0]
    assert t["recursive"] is False
    assert t["transfer_options"] == {
        "sync_level": 2, "verify_checksum": False, "preserve_timestamp": True,
        "delete_destination_extra": True, "skip_source_errors": True, "label": "hourly",
        "filter_rules": [{"DATA_TYPE": "filter_rule", "method": "exclude", "type": "file", "name": "*.tmp"},
                         {"DATA_TYPE": "filter_rule", "method": "include", "name": "keep*"}]}
    r = CliRunner().invoke(main, ["timers", "create", "--transfer", "file:///a/", "file:///b/",
                                  "--filter-rule", "drop:*", "--store", store])
    assert r.exit_code != 0 and "--filter-rule 'drop:*'" in r.output


@pytest.mark.parametrize("level", ["mtime", "checksum"])
def test_a_sync_timer_copies_only_what_changed(tmp_path, faas_home, level):
    """Two ticks of a timer with a sync level: the second copies the one changed file and skips
    the others (the transfer action's own counts say so)."""
    store_url = (tmp_path / "store").as_uri()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.txt").write_text(f"file {i}")
    offset = [0.0]                       # the hour between the ticks passes at once

    def clock():
        return time.time() + offset[0]
    timers = TimersClient(store_url, clock=clock)
    t = timers.create(transfer=(src.as_uri() + "/", (tmp_path / "dst").as_uri() + "/"),
                      interval="1h", stop_after_runs=2, sync_level=level)
    runner = Runner(store_url, clock=clock)
    flows = FlowsClient(store_url)

    def runs_done(n):
        deadline = time.time() + 60
        while True:
            runner.serve(once=True)
            runs = flows.list_runs()
            if len(runs) >= n and all(r["status"] != "ACTIVE" for r in runs):
                return sorted(runs, key=lambda r: r["created_at"] if "created_at" in r else r["run_id"])
            assert time.time() < deadline, runs
            time.sleep(0.05)
    assert len(runs_done(1)) == 1
    (src / "f3.txt").write_text("FILE 3")     # same size: only mtime or checksum tell
    offset[0] += 3600
    runs = runs_done(2)
    results = [flows.get_run(r["run_id"])["output"]["result"]["details"] for r in runs]
    counts = sorted((d["files_transferred"], d["files_skipped"]) for d in results)
    assert counts == [(1, 4), (5, 0)], results
    assert all(d["sync_level"] == {"mtime": 2, "checksum": 3}[level] for d in results)
    assert (tmp_path / "dst" / "f3.txt").read_text() == "FILE 3"
    assert timers.get(t["id"])["runs"] == 2
