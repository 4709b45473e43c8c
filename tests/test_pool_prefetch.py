"""What a pool holds beyond its workers (prefetch -1, issue 18): a deep buffer for a stream of
short tasks, but not at once after an idle spell: a burst of long tasks that follows one short
task is shared by the blocks, not queued in the first one (the pool holds no more than it
finished in the last second). A burst that follows a *stream* of short tasks is still held as
short work, up to 16 tasks a worker, as Globus's prefetch_capacity holds its 10 (docs/site-admin.md)."""
from __future__ import annotations

import os
import time

from helpers import running_endpoint

import faas


def square(x):
    return x * x


def parent_after(seconds):
    time.sleep(seconds)
    return os.getppid()   # the pool that ran it


def test_a_burst_of_long_tasks_after_a_short_one_spreads_over_the_blocks(tmp_path):
    engine = {"max_workers_per_node": 1, "max_idle_time": 30,
              "provider": {"type": "local", "init_blocks": 1, "min_blocks": 1, "max_blocks": 2}}
    with running_endpoint(tmp_path, engine=engine), faas.Executor() as ex:
        assert ex.submit(square, 7).result(timeout=60) == 49   # the pool learns its tasks are short
        pools = [f.result(timeout=120) for f in [ex.submit(parent_after, 1.0) for _ in range(6)]]
    assert len(set(pools)) == 2, f"all six ran in one block's pool: {pools}"
