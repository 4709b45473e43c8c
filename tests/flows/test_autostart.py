"""On the embedded store a run starts the runner by itself (as the client starts the ``local``
endpoint), and that runner leaves when idle or when its store is deleted."""
from __future__ import annotations

import shutil
import time

import pytest

from faas.config import resolve
from faas.flows import FlowsClient
from faas.flows.control import runner_holds

FLOW = {"StartAt": "Nap", "States": {
    "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
    "Done": {"Type": "Pass", "Parameters": {"twice.=": "x * 2"}, "End": True}}}


def wait_until(pred, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_embedded_run_starts_a_runner_that_leaves_when_idle(faas_home, monkeypatch):
    monkeypatch.setenv("FAAS_FLOWS_IDLE_EXIT", "3")
    root = resolve().home / "store"
    c = FlowsClient()
    flow = c.deploy(FLOW, title="autostart")
    assert not runner_holds(root)
    run = c.start(flow["id"], {"x": 21})
    assert runner_holds(root)
    done = c.wait(run["run_id"], timeout=60)
    assert done["status"] == "SUCCEEDED" and done["output"]["twice"] == 42
    wait_until(lambda: not runner_holds(root), 60, "the idle runner to exit")
    run = c.start(flow["id"], {"x": 1})        # and the next start brings one back
    assert c.wait(run["run_id"], timeout=60)["output"]["twice"] == 2


def test_runner_leaves_when_its_store_is_deleted(faas_home, monkeypatch):
    monkeypatch.setenv("FAAS_FLOWS_IDLE_EXIT", "600")
    root = resolve().home / "store"
    c = FlowsClient()
    flow = c.deploy(FLOW)
    c.wait(c.start(flow["id"], {"x": 1})["run_id"], timeout=60)
    assert runner_holds(root)
    lock = root / "flows" / "runner.lock"
    fd = open(lock, "rb")          # keep the lock file's inode to see when the holder lets go
    shutil.rmtree(root)
    try:
        import fcntl
        deadline = time.monotonic() + 60
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the runner outlived its store"
                time.sleep(0.2)
    finally:
        fd.close()


def test_explicit_store_is_not_autostarted(tmp_path, faas_home):
    url = (tmp_path / "site").as_uri()
    c = FlowsClient(url)
    flow = c.deploy(FLOW)
    c.start(flow["id"], {"x": 1})
    assert not runner_holds(tmp_path / "site")


def test_a_killed_runner_comes_back_when_its_run_is_looked_at(faas_home, monkeypatch):
    """kill -9 of the runner while a run waits in a Wait state left the run ACTIVE for good;
    looking at the run (`faas flows status`, `wait`, the console) brings a runner back, and the
    run ends as if nothing happened."""
    import os
    import signal

    from faas.flows.control import lock_path
    from faas.locks import lock_holders
    monkeypatch.setenv("FAAS_FLOWS_IDLE_EXIT", "600")
    root = resolve().home / "store"
    c = FlowsClient()
    flow = c.deploy({"StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 3, "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"twice.=": "x * 2"}, "End": True}}})
    run = c.start(flow["id"], {"x": 4})
    wait_until(lambda: runner_holds(root) and c.get_log(run["run_id"]), 30, "the run to start")
    holder = lock_holders(lock_path(root))[0]
    os.killpg(os.getpgid(holder), signal.SIGKILL)
    wait_until(lambda: not runner_holds(root), 30, "the killed runner to let go")
    done = FlowsClient().wait(run["run_id"], timeout=90)     # another process's view of the run
    assert done["status"] == "SUCCEEDED" and done["output"]["twice"] == 8
    assert runner_holds(root)
