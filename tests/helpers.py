"""Shared by the test modules: start a real endpoint (daemon + pools) in a private FAAS_HOME."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faas.endpoint import config as ep_config
from faas.endpoint import control


@contextlib.contextmanager
def running_endpoint(home: Path, name: str = "local", **cfg_overrides):
    """Configure ``name`` under ``home`` with small timeouts, start its daemon detached, yield its
    config, then stop it (and check it stopped)."""
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
                mp.delenv(k)
        mp.setenv("FAAS_HOME", str(home))
        engine = {"max_workers_per_node": 2, "max_idle_time": 60,
                  "provider": {"type": "local", "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}
        engine.update(cfg_overrides.pop("engine", {}))
        data = {"store": (home / "store").as_uri(), "queue": "local", "max_receives": 2,
                "visibility_timeout": 10, "stop_grace": 5, "engine": engine}
        data.update(cfg_overrides)
        cfg = ep_config.UserEndpointConfig.model_validate(data)
        ep_config.write(ep_config.endpoint_dir(name, home) / "config.yaml", cfg)
        control.start_detached(name, home)
        try:
            yield cfg
        finally:
            control.stop(name, home)


def wait_until(cond, timeout: float = 90.0, what: str = "condition", every: float = 0.1):
    """``cond()``'s first true value, polled every ``every`` s; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill_processes_of(uids: set[int]) -> None:
    """SIGKILL, by pid, every process owned by the given (test) accounts."""
    for _ in range(3):
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid in uids:
                        pids.append(int(entry))
                except OSError:
                    pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto_server() -> tuple[subprocess.Popen, str]:
    """``moto_server`` on a free loopback port: ``(process, URL)``; the caller waits for it."""
    exe = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


#: a script another account runs: the depth of the local queue named by its argument
QUEUE_DEPTH = """
import sys
from faas.store.local_queue import LocalQueue
print(sum(LocalQueue.open(sys.argv[1]).depth().values()))
"""


def shared_script(base: Path, name: str, text: str) -> str:
    """``text`` as ``base/name``, readable by every account (for :func:`python_as`)."""
    path = base / name
    path.write_text(text)
    os.chmod(path, 0o644)
    return str(path)


def python_as(user, *args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` as ``user`` (a pwd entry), with only their own HOME, FAAS_HOME and a
    bare PATH (and this PYTHONPATH, so it is the same faas): what a real account would run."""
    env = {"HOME": user.pw_dir, "USER": user.pw_name, "PATH": "/usr/bin:/bin",
           "FAAS_HOME": os.path.join(user.pw_dir, ".faas"), "FAAS_AUTOSTART": "false",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    return subprocess.run([sys.executable, *args], user=user.pw_uid, group=user.pw_gid,
                          extra_groups=[], env=env, cwd=user.pw_dir, capture_output=True,
                          text=True, timeout=120)


def drive_runner(runner, until, seconds: float) -> None:
    """Let a flows runner work (one pass at a time) until ``until()`` or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        runner.serve(once=True)
        time.sleep(0.05)


# A flows user: deploy a flow (argv[2], JSON) to the store argv[1] and start it with input argv[3].
DEPLOY_AND_START = r'''
import json, sys
from faas.flows import FlowsClient
fc = FlowsClient(sys.argv[1])
flow = fc.deploy(json.loads(sys.argv[2]))
print(fc.start(flow["id"], json.loads(sys.argv[3]))["run_id"])
'''


def open_to_users(path: Path) -> None:
    """A flows runner's store (or its doorbell folder) as the site's users may write it."""
    for folder, _, files in os.walk(path):
        os.chmod(folder, 0o777)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o666)


def stop_process(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Terminate ``proc``; kill it if it has not ended after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
