"""Several pools on one node (engine.pools_per_node): the node's workers and accelerators shared
among them, each pool its own process serving the endpoint's queue; a stop reaches them all; a
pool that fails takes its siblings down with it and the daemon replaces the block."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import running_endpoint, wait_until

import faas
from faas.endpoint import config as ep_config


def engine(**keys) -> ep_config.EngineConfig:
    return ep_config.EngineConfig.model_validate(keys)


def test_the_nodes_workers_and_accelerators_are_split_among_its_pools():
    e = engine(max_workers_per_node=5, pools_per_node=2, available_accelerators=["a", "b", "c", "d", "e"])
    assert e.node_pools() == (2, 5)
    assert e.pool_share(0, 2, 5) == (3, ["a", "b", "c"])
    assert e.pool_share(1, 2, 5) == (2, ["d", "e"])
    e = engine(max_workers_per_node=7, pools_per_node=3)
    assert [e.pool_share(i, 3, 7) for i in range(3)] == [(3, []), (2, []), (2, [])]
    e = engine(max_workers_per_node=2, pools_per_node=4)   # no pool without a worker
    assert e.node_pools() == (2, 2) and [e.pool_share(i, 2, 2) for i in range(2)] == [(1, []), (1, [])]
    for bad in ((2, 2, 2), (0, 3, 2), (-1, 2, 2)):
        with pytest.raises(ValueError, match="no such pool"):
            e.pool_share(*bad)
    e = engine(max_workers_per_node=4, available_accelerators=2, pools_per_node=2)   # capped by the GPUs
    assert e.node_pools() == (2, 2) and [e.pool_share(i, 2, 2) for i in range(2)] == [(1, ["0"]), (1, ["1"])]


def test_a_nodes_pools_share_the_worker_count_read_once(monkeypatch):
    """mem_per_worker caps the workers by the memory free when asked: the node process reads it
    once and hands it to its pools, so pools started later (the memory taken meanwhile) still
    split the same count, and none finds itself without a share."""
    e = engine(mem_per_worker=1.0, pools_per_node=4)
    free = iter([4.0, 1.0, 1.0, 1.0, 1.0])
    monkeypatch.setattr(ep_config, "_available_memory_gb", lambda: next(free))
    pools, workers = e.node_pools()
    assert (pools, workers) == (4, 4)
    assert [e.pool_share(i, pools, workers) for i in range(pools)] == [(1, [])] * 4
    assert e.workers_per_node == 1   # what a pool reading it itself would have seen


def test_pools_per_node_is_checked():
    with pytest.raises(ValueError, match="GlobusMPIEngine runs one pool a block"):
        engine(type="GlobusMPIEngine", pools_per_node=2, provider={"launcher": {"type": "SimpleLauncher"}})
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        engine(pools_per_node=0)
    assert engine().pools_per_node == 1


def where(seconds: float) -> tuple[int, str | None]:
    time.sleep(seconds)
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


def _pool_status(block: Path) -> dict[str, dict]:
    out = {}
    for f in block.glob("pool-*/status.json"):
        try:
            out[f.parent.name] = json.loads(f.read_text())
        except ValueError:   # mid-write
            continue
    return out


def _blocks(home: Path) -> list[Path]:
    return sorted((ep_config.endpoint_dir("local", home) / "blocks").iterdir())


@pytest.mark.slow
def test_two_pools_on_a_node_each_serve_the_queue_and_stop_together(tmp_path):
    home = tmp_path / "h"
    with running_endpoint(home, engine={"max_workers_per_node": 2, "pools_per_node": 2,
                                        "available_accelerators": ["0", "1"]}):
        with faas.Executor() as ex:
            seen = {f.result(timeout=60) for f in [ex.submit(where, 0.3) for _ in range(8)]}
        assert len(seen) == 2 and {gpu for _, gpu in seen} == {"0", "1"}   # a worker, a GPU a pool
        (block,) = _blocks(home)
        status = wait_until(lambda: (s := _pool_status(block)) and sum(
            p["counts"].get("success", 0) for p in s.values()) == 8 and s, 30, "both pools' counts")
        assert sorted(status) == ["pool-0", "pool-1"]
        assert all(p["workers"] == 1 and p["pools_on_node"] == 2 for p in status.values())
        assert all(p["counts"].get("success", 0) > 0 for p in status.values()), status
        assert len({p["pid"] for p in status.values()}) == 2
        pools = [p["pid"] for p in status.values()]
        shown = subprocess.run([sys.executable, "-m", "faas.cli.main", "endpoint", "status", "local"],
                               capture_output=True, text=True, timeout=60, check=True)
        (listed,) = json.loads(shown.stdout)["blocks"]   # faas endpoint status: a line per pool
        assert sorted(p["pid"] for p in listed["pools"]) == sorted(pools)
        # kill -USR1 of the block's process (the node's) is each pool's stack dump, not its end
        (job,) = [b["job"] for b in json.loads((block.parent.parent / "blocks.json").read_text()).values()]
        os.kill(int(job), signal.SIGUSR1)
        for k in range(2):
            wait_until(lambda k=k: "Thread" in (block / f"pool-{k}" / "pool.log").read_text()
                       and "_monitor" in (block / f"pool-{k}" / "pool.log").read_text(), 20, "stacks")
        assert Path(f"/proc/{job}").exists()
        with faas.Executor() as ex:
            assert ex.submit(where, 0).result(timeout=30)
    # the endpoint's stop reached both pools through the node's process
    assert {p["state"] for p in _pool_status(block).values()} == {"stopped"}
    assert not [pid for pid in pools if Path(f"/proc/{pid}").exists()]
    assert "node: 2 pools started" in (block / "pools.log").read_text()


@pytest.mark.slow
def test_a_pool_that_fails_stops_its_sibling_and_the_block_is_replaced(tmp_path):
    home = tmp_path / "h"
    with running_endpoint(home, engine={"max_workers_per_node": 2, "pools_per_node": 2}):
        with faas.Executor() as ex:
            assert ex.submit(where, 0).result(timeout=60)
            (block,) = _blocks(home)
            status = wait_until(lambda: len(s := _pool_status(block)) == 2 and s, 30, "both pools' status")
            os.kill(status["pool-0"]["pid"], signal.SIGKILL)
            wait_until(lambda: _pool_status(block)["pool-1"]["state"] == "stopped", 60,
                       "the sibling to stop")
            log = wait_until(lambda: "every pool ended" in (t := (block / "pools.log").read_text()) and t,
                             30, "the node to end")
            assert "pool 0 failed (exit 137): stopping the node's other pools" in log
            assert "pool 1 ended (exit 0)" in log and "exit 137" in log.splitlines()[-1]
            # the daemon saw the block end and started another: tasks run again
            wait_until(lambda: len(_blocks(home)) == 2, 60, "a new block")
            assert ex.submit(where, 0).result(timeout=60)
