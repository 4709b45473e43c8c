"""The PBS provider (PBS Professional / OpenPBS: qsub, qstat -x -f -F json, qdel).

No real PBS server could be run for these tests: none is packaged for Debian. Every test here
runs against recorded outputs in the real formats (``tests/pbs_recorded/``; its README cites
where each format comes from and marks what is reconstructed), replayed by fake ``qsub`` /
``qstat`` / ``qdel`` scripts put first on PATH. They prove the provider reads those formats and
drives those commands as documented; they do not prove a live server answers the same way.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from faas.endpoint.config import EngineConfig
from faas.endpoint.provider_config import PBSProviderConfig
from faas.providers import BlockState, ProviderError, make_provider
from faas.providers.pbs import PBSProvider, job_state, parse_qstat_json, parse_qsub

RECORDED = Path(__file__).with_name("pbs_recorded")
FAKE_BIN = RECORDED / "bin"
BLOCK = "block-20240312-100004-a19b07"


@pytest.fixture
def pbs_env(tmp_path, monkeypatch):
    """Fake PBS commands first on PATH, a fresh fake-server state, and a log of every call."""
    for k in list(os.environ):
        if k.startswith("FAKE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PBS_STATE", str(tmp_path / "fake-pbs" / "state.json"))
    log = tmp_path / "fake-pbs" / "calls.jsonl"
    monkeypatch.setenv("FAKE_PBS_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def provider(tmp_path, **keys) -> PBSProvider:
    cfg = PBSProviderConfig(**{"cmd_timeout": 10, **keys})
    return PBSProvider(cfg, tmp_path / "endpoint")


CLUSTER = dict(queue="workq", account="ABC123", nodes_per_block=2, cores_per_node=64,
               mem_per_node=256, gpus_per_node=4, walltime="1-02:00:00", exclusive=True,
               scheduler_options="#PBS -l filesystems=home:eagle\n#PBS -m n",
               worker_init="module load conda\nconda activate faas", cmd_timeout=15,
               launcher={"type": "mpiexec", "overrides": "--cpu-bind none"})


def directives(script: str) -> list[str]:
    """The #PBS lines qsub would read: those before the first line that is neither blank nor
    a comment (PBS stops reading directives there)."""
    out = []
    for line in script.splitlines()[1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        if line.startswith("#PBS"):
            out.append(line)
    return out


# -- the submit script ------------------------------------------------------------------------
def test_template_renders_every_key_for_a_typical_cluster(tmp_path, pbs_env):
    """Every config key lands in the script (rendered as submit() renders it, kept under
    submit_scripts/ beside the job's stdout/stderr); all #PBS lines come before any command."""
    p = provider(tmp_path, **CLUSTER)
    job = p.submit("python -m faas.endpoint.pool --block-id " + BLOCK, BLOCK)
    assert job == "1234.pbs-server"
    sdir = tmp_path / "endpoint" / "submit_scripts"
    text = (sdir / f"{BLOCK}.sh").read_text()
    assert text.startswith("#!/bin/bash\n")
    assert directives(text) == [
        "#PBS -N faas-a19b07",
        "#PBS -S /bin/bash",
        f"#PBS -o {sdir / (BLOCK + '.stdout')}",
        f"#PBS -e {sdir / (BLOCK + '.stderr')}",
        "#PBS -j n",
        "#PBS -l select=2:ncpus=64:mem=256gb:ngpus=4",
        "#PBS -l walltime=26:00:00",           # PBS has no days field: 1-02:00:00 -> 26 hours
        "#PBS -l place=scatter:excl",
        "#PBS -q workq",
        "#PBS -A ABC123",
        "#PBS -l filesystems=home:eagle",      # scheduler_options, verbatim
        "#PBS -m n",
    ]
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert body == ["module load conda", "conda activate faas",
                    f"exec mpiexec -n 2 -ppn 1 --cpu-bind none python -m faas.endpoint.pool "
                    f"--block-id {BLOCK}"]
    assert "PBS_O_WORKDIR\n" not in text and "cd " not in "\n".join(body)
    assert os.access(sdir / f"{BLOCK}.sh", os.X_OK)
    assert calls(pbs_env) == [["qsub", str(sdir / f"{BLOCK}.sh")]]


def test_template_leaves_out_what_is_not_set(tmp_path):
    """A minimal config: one node, no queue/account/resources/walltime: only those lines go."""
    p = provider(tmp_path)
    text = p.script("pool", "block-x-1f2e3d", **p.template_vars("block-x-1f2e3d")).read_text()
    lines = directives(text)
    assert "#PBS -l select=1" in lines and "#PBS -l place=scatter" in lines
    assert not [ln for ln in lines if re.match(r"#PBS -(q|A|l walltime)", ln)]
    assert text.rstrip().endswith("exec pool")


def test_template_sizes_in_pbs_units(tmp_path):
    """Fractional GB become MB (PBS sizes are integers with a unit); gpus_per_node 0 adds no
    ngpus; exclusive false is plain scatter."""
    p = provider(tmp_path, mem_per_node=7.5, gpus_per_node=0, cores_per_node=8,
                 walltime="00:30:00", exclusive=False)
    text = p.script("pool", BLOCK, **p.template_vars(BLOCK)).read_text()
    assert "#PBS -l select=1:ncpus=8:mem=7680mb\n" in text
    assert "#PBS -l walltime=00:30:00\n" in text
    assert "#PBS -l place=scatter\n" in text


def test_make_provider_picks_pbs_for_its_names(tmp_path):
    for name in ("pbs", "PBSProProvider", "TorqueProvider"):
        cfg = EngineConfig.model_validate({"provider": {"type": name}}).provider
        assert isinstance(make_provider(cfg, tmp_path), PBSProvider)


# -- parsing the recordings ---------------------------------------------------------------------
def test_qsub_job_id_parsing():
    """qsub prints the id on stdout (recorded); it is returned as printed."""
    assert parse_qsub((RECORDED / "qsub.stdout").read_text()) == "1234.pbs-server"
    assert parse_qsub("Welcome to the cluster\nproject ABC123 has 1000 h left\n77.pbs01\n") == "77.pbs01"
    assert parse_qsub("1235[].pbs-server\n") == "1235[].pbs-server"
    with pytest.raises(ProviderError, match="no job id"):
        parse_qsub("something unexpected\n")


@pytest.mark.parametrize("jid, expected", [
    ("1230.pbs-server", BlockState.PENDING),     # Q
    ("1235.pbs-server", BlockState.PENDING),     # H
    ("1231.pbs-server", BlockState.RUNNING),     # R
    ("1236.pbs-server", BlockState.RUNNING),     # E: exiting, still ending its run
    ("1232.pbs-server", BlockState.COMPLETED),   # F, Exit_status 0
    ("1233.pbs-server", BlockState.CANCELLED),   # F, Exit_status 271 (qdel of a running job)
    ("1229.pbs-server", BlockState.FAILED),      # F, Exit_status 1
])
def test_state_mapping_from_the_recorded_json(jid, expected):
    jobs = parse_qstat_json((RECORDED / "qstat_x_f_F_json.json").read_text())
    assert job_state(jobs[jid]) == expected


@pytest.mark.parametrize("attrs, expected", [
    ({"job_state": "W"}, BlockState.PENDING),
    ({"job_state": "T"}, BlockState.PENDING),
    ({"job_state": "S"}, BlockState.PENDING),
    ({"job_state": "U"}, BlockState.PENDING),
    ({"job_state": "B"}, BlockState.RUNNING),
    ({"job_state": "X"}, BlockState.COMPLETED),
    ({"job_state": "M"}, BlockState.UNKNOWN),
    ({"job_state": "F", "Exit_status": -29}, BlockState.FAILED),          # walltime kill
    ({"job_state": "F", "substate": 91}, BlockState.CANCELLED),           # deleted before it ran
    ({"job_state": "F", "Exit_status": 143, "comment": "Job deleted by alice"}, BlockState.CANCELLED),
    ({"job_state": "F"}, BlockState.FAILED),
    ({}, BlockState.UNKNOWN),
])
def test_state_mapping_of_the_other_letters(attrs, expected):
    assert job_state(attrs) == expected


def test_qstat_json_with_a_broken_escape_is_still_read():
    """Older PBS prints ``\\'`` and ``\\,`` inside strings and numbers like ``005``
    (openpbs PR #2049, issue #1255): not JSON, but the provider repairs and reads it."""
    text = (RECORDED / "qstat_broken_escape.json").read_text()
    with pytest.raises(ValueError):
        json.loads(text)
    jobs = parse_qstat_json(text)
    assert {k: job_state(v) for k, v in jobs.items()} == {
        "1240.pbs-server": BlockState.RUNNING, "1241.pbs-server": BlockState.COMPLETED}
    env = jobs["1240.pbs-server"]["Variable_List"]
    assert env["MYVAR2"] == "ab,c" and env["foo"] == "005" and env["MYVAR"] == "'\"asads\"'"


def test_qstat_json_past_repair_falls_back_to_a_regex_per_job():
    """Unescaped quotes inside a comment (PR #830) cannot be repaired; the per-job regex
    still reads the states."""
    text = (RECORDED / "qstat_unescaped_quotes.json").read_text()
    jobs = parse_qstat_json(text)
    assert {k: job_state(v) for k, v in jobs.items()} == {
        "1250.pbs-server": BlockState.PENDING, "1251.pbs-server": BlockState.CANCELLED}


# -- status through the fake qstat ------------------------------------------------------------
def test_status_is_one_qstat_call_for_all_blocks(tmp_path, pbs_env, monkeypatch):
    monkeypatch.setenv("FAKE_QSTAT_REPLAY", str(RECORDED / "qstat_x_f_F_json.json"))
    p = provider(tmp_path)
    ids = ["1229.pbs-server", "1230.pbs-server", "1231.pbs-server", "1232.pbs-server",
           "1233.pbs-server", "1235.pbs-server", "1236.pbs-server"]
    assert p.status(ids) == {
        "1229.pbs-server": BlockState.FAILED, "1230.pbs-server": BlockState.PENDING,
        "1231.pbs-server": BlockState.RUNNING, "1232.pbs-server": BlockState.COMPLETED,
        "1233.pbs-server": BlockState.CANCELLED, "1235.pbs-server": BlockState.PENDING,
        "1236.pbs-server": BlockState.RUNNING}
    assert calls(pbs_env) == [["qstat", "-x", "-f", "-F", "json", *ids]]
    assert p.status([]) == {}
    assert len(calls(pbs_env)) == 1                  # no call for no blocks


def test_status_matches_ids_by_sequence_number(tmp_path, pbs_env, monkeypatch):
    monkeypatch.setenv("FAKE_QSTAT_REPLAY", str(RECORDED / "qstat_x_f_F_json.json"))
    assert provider(tmp_path).status(["1231"]) == {"1231": BlockState.RUNNING}


def test_unknown_job_ids_count_as_ended_not_as_errors(tmp_path, pbs_env, monkeypatch):
    """``qstat: Unknown Job Id ID`` with exit 153: that job is gone (COMPLETED); the others
    in the same output keep their state."""
    monkeypatch.setenv("FAKE_QSTAT_REPLAY", str(RECORDED / "qstat_x_f_F_json.json"))
    monkeypatch.setenv("FAKE_QSTAT_STDERR", str(RECORDED / "qstat_unknown_job.stderr"))
    monkeypatch.setenv("FAKE_QSTAT_RC", "153")
    assert provider(tmp_path).status(["999.pbs-server", "1231.pbs-server"]) == {
        "999.pbs-server": BlockState.COMPLETED, "1231.pbs-server": BlockState.RUNNING}


def test_qstat_failing_otherwise_is_an_error_not_all_completed(tmp_path, pbs_env, monkeypatch):
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("FAKE_QSTAT_REPLAY", str(empty))
    monkeypatch.setenv("FAKE_QSTAT_STDERR", str(RECORDED / "qstat_no_server.stderr"))
    monkeypatch.setenv("FAKE_QSTAT_RC", "111")
    with pytest.raises(ProviderError, match=r"qstat failed \(exit 111\): .*cannot connect"):
        provider(tmp_path).status(["1231.pbs-server"])


# -- errors ---------------------------------------------------------------------------------------
def test_unknown_queue_is_a_provider_error_quoting_qsub(tmp_path, pbs_env):
    p = provider(tmp_path, queue="nosuchq")
    with pytest.raises(ProviderError) as e:
        p.submit("pool", BLOCK)
    assert "qsub: Unknown queue" in str(e.value) and "exit 170" in str(e.value)
    assert (tmp_path / "endpoint" / "submit_scripts" / f"{BLOCK}.sh").exists()   # kept to read


@pytest.mark.parametrize("what", ["qstat", "qsub"])
def test_a_hanging_command_fails_after_cmd_timeout(tmp_path, pbs_env, monkeypatch, what):
    """A scheduler command that hangs is cut off at cmd_timeout, with an error that says so."""
    monkeypatch.setenv("FAKE_PBS_SLEEP", "30")
    p = provider(tmp_path, cmd_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(ProviderError, match=rf"{what} did not answer within 0.5 s \(cmd_timeout\)"):
        if what == "qstat":
            p.status(["1231.pbs-server"])
        else:
            p.submit("pool", BLOCK)
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("what", ["qsub", "qstat", "qdel"])
def test_missing_command_on_path(tmp_path, monkeypatch, what):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    p = provider(tmp_path)
    with pytest.raises(ProviderError, match=f"{what} not found on PATH"):
        {"qsub": lambda: p.submit("pool", BLOCK),
         "qstat": lambda: p.status(["1.pbs-server"]),
         "qdel": lambda: p.cancel(["1.pbs-server"])}[what]()


# -- a whole cycle --------------------------------------------------------------------------------
def test_end_to_end_submit_pending_running_cancel_cancelled(tmp_path, pbs_env):
    """submit -> PENDING -> RUNNING -> qdel -> CANCELLED, through the fake commands."""
    p = provider(tmp_path, **CLUSTER)
    job = p.submit("pool --block-id " + BLOCK, BLOCK)
    assert p.status([job]) == {job: BlockState.PENDING}
    assert p.status([job]) == {job: BlockState.RUNNING}
    p.cancel([job])
    assert p.status([job]) == {job: BlockState.CANCELLED}
    p.cancel([job])                       # "qdel: Job has finished": nothing left, no error
    assert [c[0] for c in calls(pbs_env)] == ["qsub", "qstat", "qstat", "qdel", "qstat", "qdel"]


def test_end_to_end_blocks_that_finish_or_are_cancelled_while_queued(tmp_path, pbs_env):
    p = provider(tmp_path)
    a = p.submit("pool", "block-a-aaaaaa")
    b = p.submit("pool", "block-b-bbbbbb")
    assert p.status([a, b]) == {a: BlockState.PENDING, b: BlockState.PENDING}
    p.cancel([b])                         # deleted while queued
    states = [p.status([a, b]) for _ in range(3)]
    assert [s[a] for s in states] == [BlockState.RUNNING, BlockState.RUNNING, BlockState.COMPLETED]
    assert {s[b] for s in states} == {BlockState.CANCELLED}
    p.cancel(["4242.pbs-server"])          # unknown: no error either
