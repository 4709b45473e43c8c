"""Each benchmark script runs from a clean clone with one command (small sizes here): a smoke
test that they keep working, with no timing assertion. The figures in BENCHMARKS.md come from
the full-size runs named there. (scaling_sim.py has its own test: test_scaling_sim.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
pytestmark = pytest.mark.slow


def run(args: list[str], tmp_path: Path, timeout: float) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(tmp_path / "home")
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"{args} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def test_run_all_quick_every_system(tmp_path):
    """ProcessPoolExecutor, faas, Parsl and Lithops (their venvs are made once under
    ~/.cache/faas-bench, from the package registry) side by side, one table."""
    out_dir = tmp_path / "out"
    out = run([str(BENCH / "run_all.py"), "--quick", "--queued", "2000", "--out-dir", str(out_dir)],
              tmp_path, timeout=900)
    header = next(line for line in out.splitlines() if line.startswith("| workload |"))
    for system in ("ProcessPoolExecutor(2)", "faas (embedded)", "Parsl HTEX", "Lithops localhost"):
        assert system in header, out[-3000:]
    for name in ("ppe", "faas", "parsl", "lithops"):
        data = json.loads((out_dir / f"{name}.json").read_text())
        assert data, name
    assert "| warm p50 (ms) |" in out and "Targets for the embedded default" in out


def test_aws_cost_quick(tmp_path):
    out = run([str(BENCH / "aws_cost.py"), "--quick", "--n", "40", "--out", str(tmp_path / "aws.json")],
              tmp_path, timeout=600)
    assert "$ per million tasks" in out and "AWS list prices" in out
    data = json.loads((tmp_path / "aws.json").read_text())
    assert data["n"] == 40


def test_quick_and_profile(tmp_path):
    out = run([str(BENCH / "quick.py"), "--n", "300"], tmp_path, timeout=300)
    assert "cold start to first result" in out and "x 50 ms sleeps" in out
    out = run([str(BENCH / "profile_faas.py"), "--n", "300", "--rounds", "1"], tmp_path, timeout=300)
    assert out.strip()
    out = run([str(BENCH / "file_store.py"), "--n", "200", "--dir", str(tmp_path)], tmp_path, timeout=120)
    assert "| put new key |" in out and "| exists |" in out



@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="2 workers need 2 cores (scale.py skips more)")
def test_scale_tiny(tmp_path):
    """benchmarks/scale.py (issue 18) at a sliver of its sizes: both systems, one pool per node and
    two, the K-clients run."""
    out = run([str(BENCH / "scale.py"), "--workers", "2", "--pools", "1", "2", "--scale", "0.005",
               "--clients", "1", "2", "--out", str(tmp_path / "scale.json")], tmp_path, timeout=300)
    assert "| workload | PPE(2) | faas, 1 pool | / PPE | pool ms/task | faas, 2 pools | / PPE | " \
           "pool ms/task |" in out, out
    data = json.loads((tmp_path / "scale.json").read_text())
    for pools, fa in data["results"]["2"]["faas_by_pools"].items():
        assert [c["k"] for c in fa["clients"]] == [1, 2] and all(c["pool_cpu_s"] >= 0 for c in fa["clients"])
        assert set(fa["workloads"]) == {"warm", "submits", "map", "sleeps", "busy"}
        assert len(fa["pool_pids"]) == (1 if pools == "1" else 3), fa["pool_pids"]   # 2: the node's process too
