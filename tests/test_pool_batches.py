"""Short tasks go to the workers in batches (one pipe message, replies together; issue 18): a
batch must keep every task's guarantees. A worker that dies mid-batch, a timeout in a batch:
every other task of the batch still runs and answers, the culprit is failed as before."""
from __future__ import annotations

import glob
import json
import os
import time

import pytest
from helpers import wait_until

import faas
from faas.exceptions import TaskTimeout, WorkerLost


def square(x):
    return x * x


def exit_hard():
    os._exit(3)


def batched_tasks(home) -> int:
    """Tasks the pool handed over behind another in a batch (its status file's counts)."""
    total = 0
    for path in glob.glob(str(home / "endpoints" / "local" / "blocks" / "**" / "status.json"), recursive=True):
        try:
            total += json.loads(open(path).read())["counts"].get("batched", 0)
        except (OSError, ValueError, KeyError):
            pass
    return total


def warm_up(ex) -> None:
    """Enough no-ops that the pool knows its tasks are short (batches start then)."""
    assert sum(f.result(timeout=60) for f in [ex.submit(square, 1) for _ in range(300)]) == 300


def test_a_worker_that_dies_mid_batch_loses_no_other_task(home):
    with faas.Executor() as ex:
        warm_up(ex)
        fs = [ex.submit(square, i) for i in range(150)]
        poison = ex.submit(exit_hard)
        fs += [ex.submit(square, i) for i in range(150, 300)]
        assert [f.result(timeout=120) for f in fs] == [i * i for i in range(300)]
        with pytest.raises(WorkerLost, match="dead-lettered"):
            poison.result(timeout=120)
        assert ex.submit(square, 7).result(timeout=30) == 49
    wait_until(lambda: batched_tasks(home) > 0, timeout=10, what="tasks handed over in batches")


def test_a_timeout_in_a_batch_stops_only_its_task(home):
    with faas.Executor(task_timeout=1.0) as ex:
        warm_up(ex)
        fs = [ex.submit(square, i) for i in range(100)]
        slow = [ex.submit(time.sleep, 30), ex.submit(time.sleep, 30)]
        fs += [ex.submit(square, i) for i in range(100, 200)]
        t = time.monotonic()
        assert [f.result(timeout=60) for f in fs] == [i * i for i in range(200)]
        for f in slow:
            with pytest.raises(TaskTimeout, match="timeout of 1.0"):
                f.result(timeout=60)
        assert time.monotonic() - t < 20
