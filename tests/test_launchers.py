"""Launchers start one worker pool per node of a block: mpiexec (MPICH, two ranks on this one
machine standing in for two nodes) and srun (the real single-node Slurm); accelerators give each
worker its own CUDA_VISIBLE_DEVICES."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from helpers import running_endpoint

import faas
from faas.endpoint import config as ep_config

pytestmark = pytest.mark.slow


def where(seconds):
    time.sleep(seconds)
    return {k: os.environ.get(k) for k in ("PMI_RANK", "SLURM_STEP_ID", "SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")}


@pytest.mark.skipif(not shutil.which("mpiexec"), reason="needs mpiexec (apt-get install mpich; .ci/run does)")
def test_mpiexec_starts_a_pool_per_rank(tmp_path):
    home = tmp_path / "h"
    engine = {"max_workers_per_node": 1,
              "provider": {"type": "local", "nodes_per_block": 2, "init_blocks": 1, "min_blocks": 1,
                           "max_blocks": 1, "launcher": {"type": "mpiexec"}}}
    with running_endpoint(home, engine=engine):
        with faas.Executor() as ex:
            seen = [f.result(timeout=60) for f in [ex.submit(where, 0.4) for _ in range(8)]]
        assert {s["PMI_RANK"] for s in seen} == {"0", "1"}      # both pools served
        block = next((ep_config.endpoint_dir("local", home) / "blocks").iterdir())
        assert (block / "rank-0" / "pool.log").exists() and (block / "rank-1" / "pool.log").exists()
        script = next((ep_config.endpoint_dir("local", home) / "submit_scripts").glob("*.sh")).read_text()
        assert "exec mpiexec -n 2 -ppn 1 " in script


@pytest.mark.skipif(not shutil.which("sinfo"), reason="needs Slurm (.ci/slurm.sh)")
def test_srun_launcher_on_slurm(tmp_path):
    home = tmp_path / "h"
    engine = {"max_workers_per_node": 1, "max_idle_time": 5,
              "provider": {"type": "slurm", "init_blocks": 1, "min_blocks": 0, "max_blocks": 1,
                           "launcher": {"type": "srun"}}}
    with running_endpoint(home, name="srunsite", engine=engine):
        with faas.Executor("srunsite") as ex:
            seen = ex.submit(where, 0).result(timeout=120)
        assert seen["SLURM_JOB_ID"] and seen["SLURM_STEP_ID"] == "0"   # inside an srun step
        script = next((ep_config.endpoint_dir("srunsite", home) / "submit_scripts").glob("*.sh")).read_text()
        assert "exec srun --nodes=1 --ntasks=1 --ntasks-per-node=1 " in script


def test_one_accelerator_per_worker(tmp_path):
    home = tmp_path / "h"
    engine = {"max_workers_per_node": 4, "available_accelerators": 2,
              "provider": {"type": "local", "init_blocks": 1, "min_blocks": 1, "max_blocks": 1}}
    with running_endpoint(home, engine=engine):
        with faas.Executor() as ex:
            seen = [f.result(timeout=60) for f in [ex.submit(where, 0.3) for _ in range(6)]]
        assert {s["CUDA_VISIBLE_DEVICES"] for s in seen} == {"0", "1"}
        status = json.loads(next((ep_config.endpoint_dir("local", home) / "blocks").glob("*/status.json")).read_text())
        assert status["workers"] == 2          # capped by the accelerators, not 4
