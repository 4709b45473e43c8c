"""The soak's short form (tests/chaos/soak.py): about 50 s of mixed load per path (submit, map
with chunksize, cancels, task_timeout overruns, arguments spilled to the store) while workers and
pools are killed and the daemon restarted, and on S3/SQS AWS faults are injected. Zero lost, no
wrong result, no stall over 60 s, nothing left after stop, memory and open fds flat by role.
The long form: ``python tests/chaos/soak.py --minutes 30 --path local|s3``. Knobs:
FAAS_CHAOS_SEED, FAAS_SOAK_SECONDS."""
from __future__ import annotations

import os

import pytest
import soak

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SEED = int(os.environ.get("FAAS_CHAOS_SEED") or 6)
SECONDS = float(os.environ.get("FAAS_SOAK_SECONDS") or 50)


def _run(path, tmp_path, capsys):
    ok, report, figures = soak.run_soak(SECONDS, path, SEED, tmp_path, kill_every=7.0,
                                        out=lambda *_: None)
    with capsys.disabled():
        print("\n" + report)
    assert ok, report
    assert figures["lost"] == 0 and not figures["problems"]
    for what in ("kill_worker", "kill_pool", "restart_daemon"):
        assert figures["kills"].get(what, 0) >= 1, figures["kills"]


@pytest.mark.timeout(300)
def test_soak_local_short(tmp_path, capsys):
    _run("local", tmp_path, capsys)


@pytest.mark.timeout(300)
@pytest.mark.aws
def test_soak_s3_sqs_short(moto_url, tmp_path, capsys):
    _run("s3", tmp_path, capsys)
