"""On the embedded default a running endpoint daemon keeps the flows runner up (issue 17 item 9):
a runner killed with kill -9 comes back with no flows command at all, so a waiting run finishes
and a timer keeps firing (after a reboot too: the daemon is what a client starts first)."""
from __future__ import annotations

import json
import os
import signal

from helpers import running_endpoint, wait_until

from faas.flows import FlowsClient, store_layout
from faas.flows.control import RUNNER_CHECK_EVERY, lock_path, runner_holds, runner_needed
from faas.flows.timers import TimersClient
from faas.locks import lock_holders
from faas.store import open_store

NAP = {"StartAt": "Nap", "States": {
    "Nap": {"Type": "Wait", "Seconds": 6, "Next": "Done"},
    "Done": {"Type": "Pass", "Parameters": {"twice.=": "x * 2"}, "End": True}}}
TICK = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def test_runner_needed_reads_runs_and_active_timers(tmp_path):
    store = open_store((tmp_path / "s").as_uri())
    assert not runner_needed(store)
    store_layout.put_json(store, store_layout.timer_key("t1"), {"id": "t1", "status": "paused", "next_run_epoch": None})
    assert not runner_needed(store)                   # a paused timer needs no runner
    store_layout.put_json(store, store_layout.timer_key("t1"), {"id": "t1", "status": "active", "next_run_epoch": 1.0})
    assert runner_needed(store)
    store.delete(store_layout.timer_key("t1"))
    store.put(store_layout.active_key("r1"), b"")                 # an unfinished run
    assert runner_needed(store)


def test_the_endpoint_daemon_brings_a_killed_runner_back(tmp_path):
    home = tmp_path / "h"
    with running_endpoint(home):
        root = home / "store"
        fc = FlowsClient()
        store = open_store(fc.store_url)
        timer = TimersClient().create(fc.deploy(TICK, title="tick")["id"], {}, interval=2, name="every 2 s")

        def timer_runs() -> int:
            return store_layout.get_json(store, store_layout.timer_key(timer["id"])).get("runs", 0)
        wait_until(lambda: runner_holds(root) and timer_runs() >= 1, 60, "the runner to fire the timer")
        run = fc.start(fc.deploy(NAP, title="nap")["id"], {"x": 4})

        def run_status() -> str:   # read from the store: no flows command (they start runners)
            return store_layout.get_json(store, store_layout.run_key(run["run_id"]))["status"]
        wait_until(lambda: fc.get_log(run["run_id"]), 30, "the run to start")
        assert run_status() == "ACTIVE"                # in its Wait state
        holder = lock_holders(lock_path(root))[0]
        os.killpg(os.getpgid(holder), signal.SIGKILL)
        wait_until(lambda: not runner_holds(root), 30, "the killed runner to let go")
        fired = timer_runs()

        # no flows command from here on: only the daemon can bring a runner back
        bound = RUNNER_CHECK_EVERY + 45
        wait_until(lambda: run_status() == "SUCCEEDED", bound, "the waiting run to finish")
        wait_until(lambda: timer_runs() > fired, bound, "the timer to fire again")
        doc = json.loads(store.get(store_layout.run_key(run["run_id"])))
        assert doc["output"]["twice"] == 8
        assert lock_holders(lock_path(root))[0] != holder
        log = (home / "endpoints" / "local" / "endpoint.log").read_text()
        assert "started a flows runner" in log
        store.delete(store_layout.timer_key(timer["id"]))
        for pid in lock_holders(lock_path(root)) or []:   # the runner the daemon started (idle for 10 min otherwise)
            os.killpg(os.getpgid(pid), signal.SIGKILL)
