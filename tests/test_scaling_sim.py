"""The scaling simulation (benchmarks/scaling_sim.py) in quick mode: the real ``decide`` on a
simulated 1,000-node site loses no task, runs every task, idles far fewer nodes than keeping
max_blocks, and never has more blocks pending than decide allows."""
from __future__ import annotations

import importlib.util
import math
import sys
import time
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling_sim.py"


def _load():
    spec = importlib.util.spec_from_file_location("faas_scaling_sim", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


sim = _load()


@pytest.fixture(scope="module")
def quick():
    t = time.perf_counter()
    bursts, results = sim.run_all(seed=1, quick=True)
    return bursts, {r.name: r for r in results}, time.perf_counter() - t


def decide_runs(results):
    return [r for name, r in results.items() if name.startswith("decide")]


def test_quick_is_quick(quick):
    bursts, results, seconds = quick
    assert seconds < 20
    assert len(results) == 6 and len(bursts) >= 2


def test_no_task_lost_and_all_done(quick):
    bursts, results, _ = quick
    n = sum(len(b.durations) for b in bursts)
    for r in results.values():
        assert r.tasks == n
        assert r.lost == 0 and r.unfinished == 0 and r.twice == 0, r.name
        assert r.done == n, r.name
        assert all(not math.isnan(m) and m > 0 for m in r.burst_makespans), r.name
        assert r.makespan > 0


def test_decide_idles_fewer_nodes_than_static_max_blocks(quick):
    _, results, _ = quick
    static = results["static max_blocks"]
    for r in decide_runs(results):
        assert r.idle_node_hours < static.idle_node_hours / 3, r.name
        assert r.node_hours < static.node_hours, r.name
        assert r.utilisation > static.utilisation, r.name
    # the naive one also wastes far more than decide
    naive = results["naive 1 block/task idle=120s"]
    assert all(r.idle_node_hours < naive.idle_node_hours for r in decide_runs(results))


def test_pending_within_what_decide_allows(quick):
    _, results, _ = quick
    for r in decide_runs(results):
        assert r.violations == [], r.name   # no over-submission, <= max_blocks, >= min_blocks, ...
        assert r.max_pending <= sim.Site().max_blocks, r.name
        assert r.max_live <= sim.Site().max_blocks, r.name
        assert r.cancelled_busy == 0, r.name
        assert r.ticks > 100
    # the naive baseline does over-submit, so the check above means something
    assert results["naive 1 block/task idle=120s"].max_pending > sim.Site().max_blocks


def test_parallelism_and_idle_time_move_the_figures(quick):
    _, results, _ = quick
    p1 = results["decide p=1 idle=60s"]
    half = results["decide p=0.5 idle=60s"]
    long_idle = results["decide p=1 idle=600s"]
    assert half.submitted < p1.submitted
    assert long_idle.idle_node_hours > p1.idle_node_hours
    # keeping everything is fastest: a bound the others are measured against
    static = results["static max_blocks"]
    assert max(static.burst_makespans) <= min(max(r.burst_makespans) for r in decide_runs(results))


def test_same_seed_same_figures():
    site, load = sim.settings(quick=True, hours=None)
    bursts = sim.make_bursts(load, seed=3)
    s = sim.strategies(site)[0]
    a = sim.simulate(s, bursts, load, seed=3)
    b = sim.simulate(s, sim.make_bursts(load, seed=3), load, seed=3)
    assert (a.node_hours, a.idle_node_hours, a.burst_makespans, a.submitted) == \
           (b.node_hours, b.idle_node_hours, b.burst_makespans, b.submitted)


def test_walltime_drain_hands_back_and_reruns():
    """Blocks shorter than the work: pools drain before the walltime, tasks still running at the
    kill are handed back and run again elsewhere; nothing is lost."""
    site = sim.Site(nodes=40, nodes_per_block=2, workers_per_node=4, max_blocks=20,
                    walltime=300.0, walltime_margin=30.0, wait_median=30.0, long_wait_p=0.0)
    load = sim.Load(hours=1.0)
    bursts = [sim.Burst(10.0, [50.0 + (i % 10) for i in range(3000)])]
    r = sim.simulate(sim.Strategy("decide", site), bursts, load, seed=1)
    assert r.lost == 0 and r.unfinished == 0 and r.twice == 0 and r.done == 3000
    assert r.reruns > 0                     # some runs were cut by the walltime
    assert r.submitted > site.max_blocks    # blocks were replaced after their walltime
    assert r.violations == []


def test_cli_prints_the_table(capsys):
    assert sim.main(["--quick", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("decide p=1 idle=60s", "decide p=0.5 idle=600s", "static max_blocks",
                 "naive 1 block/task"):
        assert name in out
    assert "idle node-h" in out and "makespan per burst" in out
