"""A scheduler that refuses, hangs or is missing: a clear error in endpoint.log and in
`faas endpoint status`, and the daemon keeps running (fake `sbatch` scripts on PATH: the real
Slurm is exercised in test_slurm_integration)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from faas.endpoint import config as ep_config
from faas.endpoint import control
from faas.endpoint.daemon import is_running


def fake(bin_dir, name, body):
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def start(home, monkeypatch, path, **provider):
    for k in list(os.environ):
        if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
            monkeypatch.delenv(k)
    monkeypatch.setenv("FAAS_HOME", str(home))
    monkeypatch.setenv("PATH", path)
    cfg = ep_config.UserEndpointConfig.model_validate({
        "store": (home / "store").as_uri(), "queue": "local", "strategy_period": 0.2,
        "engine": {"max_workers_per_node": 1,
                   "provider": {"type": "slurm", "init_blocks": 1, "min_blocks": 1, "max_blocks": 1,
                                **provider}}})
    ep_config.write(ep_config.endpoint_dir("hpc", home) / "config.yaml", cfg)
    control.start_detached("hpc", home)


def status(home):
    env = dict(os.environ, FAAS_HOME=str(home))
    r = subprocess.run([sys.executable, "-m", "faas.cli.main", "endpoint", "status", "hpc"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("script, provider, expected", [
    ('echo "sbatch: error: invalid partition specified: nope" >&2; exit 1', {"partition": "nope"},
     "sbatch failed (exit 1): sbatch: error: invalid partition specified: nope"),
    ("sleep 30", {"cmd_timeout": 1}, "sbatch did not answer within 1 s (cmd_timeout)"),
    (None, {}, "sbatch not found on PATH"),
])
def test_scheduler_errors_are_reported_and_the_daemon_lives(tmp_path, monkeypatch, script, provider, expected):
    home = tmp_path / "h"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if script is not None:
        fake(bin_dir, "sbatch", script)
        fake(bin_dir, "squeue", "exit 0")
        fake(bin_dir, "sleep", 'exec /bin/sleep "$@"')
    # Only the fakes (or nothing) on PATH: a real Slurm may be installed in /usr/bin.
    start(home, monkeypatch, str(bin_dir), **provider)
    try:
        d = ep_config.endpoint_dir("hpc", home)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = status(home)
            if info.get("last_error"):
                break
            time.sleep(0.2)
        assert expected in info["last_error"]["error"], info
        assert expected in (d / "endpoint.log").read_text()
        time.sleep(1.0)
        assert is_running(d), "the daemon died on a scheduler error"
        assert info["state"] == "running"
    finally:
        control.stop("hpc", home)
