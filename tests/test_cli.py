"""The `faas` command, run as a user runs it (a subprocess), against a real endpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from faas.endpoint import config as ep_config


def faas_cmd(home, *args, cwd=None, input=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "faas.cli.main", *args], cwd=cwd, env=env,
                          input=input, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An endpoint `cli` configured and started through the CLI; stopped and deleted at the end."""
    root = tmp_path_factory.mktemp("cli")
    home = root / "home"
    r = faas_cmd(home, "endpoint", "configure", "cli", "--max-workers-per-node", "2",
                 "--max-receives", "2", "--init-blocks", "1", "--min-blocks", "1")
    assert r.returncode == 0, r.stderr
    assert "config.yaml" in r.stdout
    r = faas_cmd(home, "endpoint", "start", "cli", "--detach")
    assert r.returncode == 0, r.stderr
    work = root / "work"
    work.mkdir()
    (work / "tasks.py").write_text(textwrap.dedent("""
        def helper(x):
            return 10 * x

        def score(x, bonus=0):
            if x < 0:
                raise ValueError(f"negative input {x}")
            return helper(x) + bonus
    """))
    yield home, work
    r = faas_cmd(home, "endpoint", "stop", "cli")
    assert r.returncode == 0 and "stopped" in r.stdout, r.stderr
    r = faas_cmd(home, "endpoint", "delete", "cli", "--yes")
    assert r.returncode == 0, r.stderr
    assert not (home / "endpoints" / "cli").exists()
    # No pool of the deleted endpoint lives on (one still draining exits by itself).
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _pools_of(home):
        time.sleep(0.5)
    assert not _pools_of(home), _pools_of(home)


def _pools_of(home):
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            state = open(f"/proc/{pid}/stat").read().split()[2]
        except OSError:
            continue
        if "faas.endpoint.pool" in cmd and str(home) in cmd and state != "Z":
            out.append(pid)
    return out


def test_list_and_status(site):
    home, _ = site
    r = faas_cmd(home, "endpoint", "list")
    assert r.returncode == 0 and "cli" in r.stdout and "running" in r.stdout
    r = faas_cmd(home, "endpoint", "status", "cli")
    info = json.loads(r.stdout)
    assert info["state"] == "running" and info["provider"] == "local"
    assert info["queue_depth"] == {"visible": 0, "in_flight": 0} or "visible" in info["queue_depth"]
    assert (home / "endpoints" / "cli" / "endpoint.log").exists()
    assert list((home / "endpoints" / "cli" / "submit_scripts").glob("block-*.sh"))
    assert list((home / "endpoints" / "cli" / "blocks").glob("block-*/pool.log"))


def test_submit_batch_in_order_with_output_file(site):
    home, work = site
    lines = [{"args": [i]} for i in range(25)] + [{"args": [1], "kwargs": {"bonus": 5}}]
    (work / "calls.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    r = faas_cmd(home, "submit", "--endpoint", "cli", "--function", "tasks:score", "--input", "calls.jsonl",
                 "--output", "results.jsonl", "--chunksize", "4", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "26 call(s): 26 succeeded, 0 failed" in r.stderr
    out = [json.loads(x) for x in (work / "results.jsonl").read_text().splitlines()]
    assert [o["result"] for o in out] == [10 * i for i in range(25)] + [15]
    task_id = out[0]["task_id"]
    r = faas_cmd(home, "status", task_id)
    assert json.loads(r.stdout)["status"] == "success"


def test_submit_failure_exits_nonzero_with_summary(site):
    home, work = site
    (work / "bad.jsonl").write_text('{"args": [2]}\n{"args": [-1]}\n')
    r = faas_cmd(home, "submit", "--endpoint", "cli", "--function", "tasks:score", "--input", "bad.jsonl",
                 cwd=work)
    assert r.returncode == 1
    assert "2 call(s): 1 succeeded, 1 failed" in r.stderr
    assert "line 2" in r.stderr and "ValueError: negative input -1" in r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert out[0]["result"] == 20 and out[1]["error"]["type"] == "ValueError"
    r2 = faas_cmd(home, "result", out[1]["task_id"])
    assert r2.returncode == 1 and "negative input" in r2.stdout and "Traceback" in r2.stderr
    r3 = faas_cmd(home, "result", out[0]["task_id"])
    assert r3.returncode == 0 and json.loads(r3.stdout)["result"] == 20


def test_submit_bad_inputs(site):
    home, work = site
    (work / "ok.jsonl").write_text('{"args": [1]}\n')
    r = faas_cmd(home, "submit", "--endpoint", "cli", "--function", "nosuchmodule:f", "--input", "ok.jsonl", cwd=work)
    assert r.returncode == 2 and "cannot import module 'nosuchmodule'" in r.stderr
    r = faas_cmd(home, "submit", "--endpoint", "cli", "--function", "tasks:nope", "--input", "ok.jsonl", cwd=work)
    assert r.returncode == 2 and "has no attribute 'nope'" in r.stderr
    r = faas_cmd(home, "submit", "--endpoint", "cli", "--function", "tasks", "--input", "ok.jsonl", cwd=work)
    assert r.returncode == 2 and "expected module:callable" in r.stderr
    (work / "broken.jsonl").write_text('{"args": [1]}\n{"args": 5}\n')
    r = faas_cmd(home, "submit", "--endpoint", "cli", "--function", "tasks:score", "--input", "broken.jsonl", cwd=work)
    assert r.returncode == 2 and "broken.jsonl:2" in r.stderr
    (work / "notjson.jsonl").write_text('{"args": [1]\n')
    r = faas_cmd(home, "submit", "--endpoint", "cli", "--function", "tasks:score", "--input", "notjson.jsonl", cwd=work)
    assert r.returncode == 2 and "notjson.jsonl:1: not JSON" in r.stderr


def test_unknown_endpoint_is_a_clear_error(site):
    home, work = site
    (work / "one.jsonl").write_text('{"args": [1]}\n')
    r = faas_cmd(home, "submit", "--endpoint", "nowhere", "--function", "tasks:score", "--input", "one.jsonl", cwd=work)
    assert r.returncode == 2
    assert "endpoint 'nowhere' is not registered" in r.stderr and "faas endpoint start nowhere" in r.stderr
    assert "Traceback" not in r.stderr


def test_start_with_malformed_config(site, tmp_path):
    home, _ = site
    d = home / "endpoints" / "broken"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("store: file:///tmp/x\nengine:\n  max_workers_per_node: -1\n")
    r = faas_cmd(home, "endpoint", "start", "broken", "--detach")
    assert r.returncode == 2
    assert str(d / "config.yaml") in r.stderr and "engine.max_workers_per_node" in r.stderr
    r = faas_cmd(home, "endpoint", "start", "nothere", "--detach")
    assert r.returncode == 2 and "faas endpoint configure nothere" in r.stderr


def test_configure_rejects_bad_values(site):
    home, _ = site
    r = faas_cmd(home, "endpoint", "configure", "x2", "--min-blocks", "3", "--max-blocks", "1")
    assert r.returncode == 2 and "min_blocks (3) must be <= max_blocks (1)" in r.stderr
    r = faas_cmd(home, "endpoint", "configure", "bad/name")
    assert r.returncode == 2 and "endpoint name 'bad/name'" in r.stderr
    r = faas_cmd(home, "endpoint", "configure", "x3", "--pools-per-node", "0")
    assert r.returncode == 2 and "engine.pools_per_node" in r.stderr and "greater than or equal to 1" in r.stderr


def test_configure_sets_pools_per_node(tmp_path):
    r = faas_cmd(tmp_path / "h", "endpoint", "configure", "many", "--max-workers-per-node", "16",
                 "--pools-per-node", "2")
    assert r.returncode == 0, r.stderr
    cfg = ep_config.load(tmp_path / "h" / "endpoints" / "many" / "config.yaml")
    assert (cfg.engine.max_workers_per_node, cfg.engine.pools_per_node) == (16, 2)


def test_configure_signing_keys_new_rotates_none_turns_off(tmp_path):
    """A new endpoint gets a signing key; --signing-key new adds one and keeps the old (rotation);
    reconfiguring without it changes nothing; none turns signing off."""
    home = tmp_path / "home"
    key_file = home / "endpoints" / "sk" / "signing.key"
    config = home / "endpoints" / "sk" / "config.yaml"

    def keys() -> int:
        return len([line for line in key_file.read_text().splitlines() if line and not line.startswith("#")])

    def configure(*args):
        r = faas_cmd(home, "endpoint", "configure", "sk", *args)
        assert r.returncode == 0, r.stderr
        return r.stdout
    assert "FAAS_SIGNING_KEY=" in configure()
    assert keys() == 1 and "signing_keys_file: signing.key" in config.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "FAAS_SIGNING_KEY=" in configure("--signing-key", "new")
    assert keys() == 2
    assert "FAAS_SIGNING_KEY=" not in configure("--max-blocks", "2")
    assert keys() == 2 and "signing_keys_file: signing.key" in config.read_text()
    configure("--signing-key", "none")
    assert "signing_keys_file" not in config.read_text()
    r = faas_cmd(home, "endpoint", "configure", "sk", "--signing-key", "old")
    assert r.returncode == 2 and "expected new or none" in r.stderr
    # a key file someone made readable is not added to (the new secret would be readable too)
    key_file.chmod(0o644)
    r = faas_cmd(home, "endpoint", "configure", "sk", "--signing-key", "new")
    assert r.returncode != 0 and "chmod 600" in r.stderr and keys() == 2


def test_stop_hands_back_tasks_none_lost(site):
    """Tasks queued while the endpoint stops are all there after a restart."""
    home, work = site
    (work / "slow.py").write_text("import time\ndef nap(x):\n    time.sleep(0.3)\n    return x\n")
    (work / "naps.jsonl").write_text("".join(json.dumps({"args": [i]}) + "\n" for i in range(12)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "faas.cli.main", "submit", "--endpoint", "cli",
                             "--function", "slow:nap", "--input", "naps.jsonl"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time
    time.sleep(1.5)
    r = faas_cmd(home, "endpoint", "restart", "cli")
    assert r.returncode == 0, r.stderr
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert [json.loads(x)["result"] for x in out.splitlines()] == list(range(12))
