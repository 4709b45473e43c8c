"""The Slurm provider without Slurm: its submit script, what it reads from sbatch / squeue /
scontrol (recorded from Slurm 22.05), and its errors, with fake scheduler commands on PATH."""
from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

from faas.endpoint.provider_config import SlurmProviderConfig
from faas.providers import BlockState, ProviderError, make_provider
from faas.providers.slurm import SlurmProvider, map_state, mem_option, parse_job_id, parse_scontrol, parse_squeue

POOL = "/opt/venv/bin/python -m faas.endpoint.pool --endpoint-dir /home/u/.faas/endpoints/site --block-id B"

CLUSTER = dict(
    type="slurm", partition="compute", account="proj42", qos="normal", constraint="haswell&ib",
    nodes_per_block=2, cores_per_node=32, mem_per_node=128, gpus_per_node=4, exclusive=True,
    walltime="02:00:00",
    scheduler_options="#SBATCH --reservation=faas-demo\n#SBATCH --mail-type=NONE  # verbatim\n",
    worker_init="module load python/3.11\nsource ~/venv/bin/activate",
    launcher={"type": "srun", "overrides": "--cpu-bind=none"},
)


def provider(tmp_path: Path, **cfg) -> SlurmProvider:
    p = make_provider(SlurmProviderConfig(**cfg), tmp_path / "ep")
    assert isinstance(p, SlurmProvider)
    return p


def sbatch_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]


def fake(bindir: Path, name: str, body: str) -> None:
    """A fake scheduler command: a /bin/sh script (so it needs nothing from PATH)."""
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def bindir(tmp_path, monkeypatch):
    """A PATH holding only the fake scheduler commands the test writes."""
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    return d


# -- the submit script ---------------------------------------------------------------------
def test_template_renders_every_key_of_a_cluster_config(tmp_path):
    p = provider(tmp_path, **CLUSTER)
    path = p.script(POOL, "block-1", mem=mem_option(128), workdir=str(p.endpoint_dir))
    assert path == tmp_path / "ep" / "submit_scripts" / "block-1.sh"
    text = path.read_text()
    assert text.startswith("#!/bin/bash\n")
    lines = sbatch_lines(text)
    for want in ["#SBATCH --job-name=faas-block-1",
                 f'#SBATCH --output="{tmp_path}/ep/submit_scripts/block-1.stdout"',
                 f'#SBATCH --error="{tmp_path}/ep/submit_scripts/block-1.stderr"',
                 f'#SBATCH --chdir="{tmp_path}/ep"',
                 "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --cpus-per-task=32",
                 "#SBATCH --partition=compute", "#SBATCH --account=proj42", "#SBATCH --qos=normal",
                 '#SBATCH --constraint="haswell&ib"', "#SBATCH --mem=128G",
                 "#SBATCH --gpus-per-node=4", "#SBATCH --exclusive", "#SBATCH --time=02:00:00",
                 "#SBATCH --reservation=faas-demo", "#SBATCH --mail-type=NONE  # verbatim"]:
        assert want in lines, f"{want!r} missing from\n{text}"
    # every #SBATCH line comes before the first command (sbatch stops reading at it)
    body = [ln for ln in text.splitlines()[1:] if ln.strip() and not ln.startswith("#")]
    first_cmd = text.splitlines().index(body[0])
    assert max(i for i, ln in enumerate(text.splitlines()) if ln.startswith("#SBATCH")) < first_cmd
    # the scheduler options keep their order, after ours
    assert lines[-2:] == ["#SBATCH --reservation=faas-demo", "#SBATCH --mail-type=NONE  # verbatim"]
    # worker_init, then the pools through srun, one per node
    i_module = text.index("module load python/3.11\nsource ~/venv/bin/activate\n")
    launch = f"exec srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --cpu-bind=none {POOL}\n"
    assert text.endswith(launch)
    assert i_module < text.index(launch)
    assert "export SRUN_CPUS_PER_TASK=32" in text
    subprocess.run(["bash", "-n", str(path)], check=True)   # valid bash


def test_template_minimal_config_has_no_optional_lines(tmp_path):
    p = provider(tmp_path)
    text = p.script(POOL, "block-2", mem=None, workdir=str(p.endpoint_dir)).read_text()
    opts = {ln.split("=")[0] for ln in sbatch_lines(text)}
    assert opts == {"#SBATCH --job-name", "#SBATCH --output", "#SBATCH --error", "#SBATCH --chdir",
                    "#SBATCH --nodes", "#SBATCH --ntasks-per-node"}
    assert "#SBATCH --nodes=1" in text
    assert text.endswith(f"exec {POOL}\n")   # single_node: the pool is the job's process
    assert "\n\n\n" not in text
    subprocess.run(["bash", "-n", "-c", text], check=True)


def test_template_mpiexec_launcher(tmp_path):
    p = provider(tmp_path, nodes_per_block=3, launcher={"type": "mpiexec"})
    text = p.script(POOL, "b", mem=None, workdir="/w").read_text()
    assert text.endswith(f"exec mpiexec -n 3 -ppn 1 {POOL}\n")


def test_mem_option():
    assert mem_option(4) == "4G"
    assert mem_option(4.0) == "4G"
    assert mem_option(1.5) == "1536M"
    assert mem_option(0.001) == "1M"


# -- what the scheduler prints ---------------------------------------------------------------
@pytest.mark.parametrize("out, job", [("1234\n", "1234"), ("1234;cluster2\n", "1234"),
                                      ("  77 \n", "77"), ("sbatch: warning: x\n88\n", "88")])
def test_parse_job_id(out, job):
    assert parse_job_id(out) == job


@pytest.mark.parametrize("out", ["", "\n", "Submitted batch job\n", "abc;def"])
def test_parse_job_id_refuses_garbage(out):
    with pytest.raises(ProviderError, match="sbatch printed no job id"):
        parse_job_id(out)


# recorded with `squeue --me --noheader --states=all --format=%i|%T` on Slurm 22.05.8
SQUEUE = """\
7|PENDING
8|RUNNING
9|COMPLETING
10|COMPLETED
11|CANCELLED
12|TIMEOUT
13|FAILED
14|CONFIGURING
15|SUSPENDED
16|NODE_FAIL
17|OUT_OF_MEMORY
18|PREEMPTED
19|REQUEUED
20|BOOT_FAIL
21|DEADLINE
22|SOMETHING_NEW
"""

# recorded with `scontrol -o show job 4` (abridged: the line has ~60 fields)
SCONTROL = ("JobId=4 JobName=faas-block-x UserId=root(0) GroupId=root(0) MCS_label=N/A "
            "Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=CANCELLED Reason=None "
            "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:9 "
            "RunTime=00:00:02 TimeLimit=UNLIMITED Partition=debug NodeList=vm "
            "Command=/tmp/a b/submit_scripts/block-x.sh WorkDir=/tmp/a b Comment=JobState=RUNNING\n")


def test_parse_squeue_and_state_mapping():
    got = {job: map_state(s) for job, s in parse_squeue(SQUEUE).items()}
    P, R, C, T, X, F, U = (BlockState.PENDING, BlockState.RUNNING, BlockState.COMPLETED, BlockState.TIMEOUT,
                           BlockState.CANCELLED, BlockState.FAILED, BlockState.UNKNOWN)
    assert got == {"7": P, "8": R, "9": R, "10": C, "11": X, "12": T, "13": F, "14": P, "15": P,
                   "16": F, "17": F, "18": F, "19": P, "20": F, "21": F, "22": U}
    assert map_state("CANCELLED by 0") == X
    assert map_state("running") == R
    assert map_state("") == U
    assert [s.active for s in (P, R, U)] == [True] * 3
    assert not any(s.active for s in (C, T, X, F))


def test_timeout_is_the_normal_end_of_a_pilot_job():
    """Slurm's TIMEOUT is how a block (a pilot job) ends at its walltime: its own state, said to
    be normal, not FAILED (Parsl keeps its own state for it too)."""
    assert map_state("TIMEOUT") == BlockState.TIMEOUT != BlockState.FAILED
    assert "normal end of a pilot job" in BlockState.TIMEOUT.meaning
    assert "failed" in BlockState.FAILED.meaning
    import faas.providers.slurm as slurm_module
    table = slurm_module.__doc__
    assert "TIMEOUT                                                                   TIMEOUT" in table
    assert "TIMEOUT is the normal end of a pilot job" in table


def test_parse_scontrol_reads_the_real_jobstate():
    assert parse_scontrol(SCONTROL) == "CANCELLED"
    assert parse_scontrol("slurm_load_jobs error: Invalid job id specified") is None


# -- the provider against fake commands ------------------------------------------------------
def test_submit_runs_sbatch_on_the_rendered_script(tmp_path, bindir):
    fake(bindir, "sbatch", f'echo "$@" > {tmp_path}/sbatch.args\necho "4242;faas-ci"')
    p = provider(tmp_path, partition="debug", mem_per_node=2)
    assert p.submit(POOL, "block-7") == "4242"
    script = tmp_path / "ep" / "submit_scripts" / "block-7.sh"
    assert (tmp_path / "sbatch.args").read_text().split() == ["--parsable", str(script)]
    assert "#SBATCH --mem=2G" in script.read_text()
    assert "#SBATCH --partition=debug" in script.read_text()


def test_status_one_squeue_call_then_scontrol_for_the_missing(tmp_path, bindir):
    calls = tmp_path / "calls"
    fake(bindir, "squeue", f'echo "squeue $*" >> {calls}\nprintf "8|RUNNING\\n7|PENDING\\n99|RUNNING\\n"')
    fake(bindir, "scontrol", f'''echo "scontrol $*" >> {calls}
case "$4" in
  4) echo "{SCONTROL.strip()}" ;;
  5) echo "JobId=5 JobName=faas-b JobState=TIMEOUT Reason=TimeLimit" ;;
  *) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;;
esac''')
    p = provider(tmp_path)
    p.last_seen["6"] = BlockState.CANCELLED     # seen cancelled, since forgotten by slurmctld
    got = p.status(["7", "8", "4", "5", "6", "3"])
    assert got == {"7": BlockState.PENDING, "8": BlockState.RUNNING, "4": BlockState.CANCELLED,
                   "5": BlockState.TIMEOUT, "6": BlockState.CANCELLED, "3": BlockState.COMPLETED}
    lines = calls.read_text().splitlines()
    me = pwd.getpwuid(os.getuid()).pw_name
    assert lines[0] == f"squeue --user={me} --noheader --states=all --format=%i|%T"
    assert sorted(lines[1:]) == [f"scontrol -o show job {j}" for j in "3456"]
    assert p.status([]) == {}


def test_status_unknown_when_scontrol_hangs(tmp_path, bindir):
    fake(bindir, "squeue", 'echo "8|RUNNING"')
    fake(bindir, "scontrol", "exec /bin/sleep 30")
    p = provider(tmp_path, cmd_timeout=0.5)
    assert p.status(["8", "9"]) == {"8": BlockState.RUNNING, "9": BlockState.UNKNOWN}


def test_status_raises_when_squeue_fails(tmp_path, bindir):
    fake(bindir, "squeue", 'echo "squeue: error: Unable to contact slurm controller (connect failure)" >&2; exit 1')
    with pytest.raises(ProviderError, match="Unable to contact slurm controller"):
        provider(tmp_path).status(["1"])


def test_cancel_one_scancel_for_all(tmp_path, bindir):
    fake(bindir, "scancel", f'echo "$@" >> {tmp_path}/scancel.args')
    p = provider(tmp_path)
    p.cancel(["11", "12"])
    p.cancel([])
    assert (tmp_path / "scancel.args").read_text() == "11 12\n"


# -- bad input: each a clear error -------------------------------------------------------------
def test_unknown_partition_quotes_sbatch(tmp_path, bindir):
    fake(bindir, "sbatch", "echo 'sbatch: error: invalid partition specified: nope' >&2\n"
                           "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\n"
                           "exit 1")
    with pytest.raises(ProviderError) as e:
        provider(tmp_path, partition="nope").submit(POOL, "block-1")
    assert "sbatch: error: invalid partition specified: nope" in str(e.value)
    assert "exit 1" in str(e.value)
    assert e.value.code == "ProviderError"


def test_hanging_sbatch_fails_at_cmd_timeout(tmp_path, bindir):
    fake(bindir, "sbatch", "exec /bin/sleep 60")
    p = provider(tmp_path, cmd_timeout=1)
    t0 = time.monotonic()
    with pytest.raises(ProviderError, match="cmd_timeout") as e:
        p.submit(POOL, "block-1")
    assert time.monotonic() - t0 < 3
    assert "sbatch" in str(e.value) and "1 s" in str(e.value)


def test_missing_sbatch(tmp_path, bindir):
    with pytest.raises(ProviderError, match="sbatch not found on PATH"):
        provider(tmp_path).submit(POOL, "block-1")
    with pytest.raises(ProviderError, match="squeue not found on PATH"):
        provider(tmp_path).status(["1"])
    with pytest.raises(ProviderError, match="scancel not found on PATH"):
        provider(tmp_path).cancel(["1"])


def test_endpoint_status_says_a_timed_out_block_ended_normally(tmp_path, monkeypatch):
    """A real daemon on fake Slurm commands: its block's job reaches its walltime (squeue says
    TIMEOUT); `faas endpoint status` lists it among the ended blocks as a pilot job's normal end,
    and endpoint.log says so."""
    import json
    import sys

    from faas.endpoint import config as ep_config
    from faas.endpoint import control

    home, bindir = tmp_path / "h", tmp_path / "bin"
    # job 501 runs until the flag file exists, then has TIMEOUT; later jobs run
    fake(bindir, "sbatch",
         f'n=$(cat {tmp_path}/n 2>/dev/null || echo 500); n=$((n+1)); echo $n > {tmp_path}/n; echo $n')
    fake(bindir, "squeue", f'if [ -e {tmp_path}/walltime ]; then echo "501|TIMEOUT"; else echo "501|RUNNING"; fi\n'
                           f'n=$(cat {tmp_path}/n); i=502; while [ $i -le $n ]; do echo "$i|RUNNING"; i=$((i+1)); done')
    fake(bindir, "scancel", "exit 0")
    for k in list(os.environ):
        if k.startswith("FAAS_") and k not in ("FAAS_TEST_MOTO_URL", "FAAS_TEST_AWS_URL"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("FAAS_HOME", str(home))
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    cfg = ep_config.UserEndpointConfig.model_validate({
        "store": (home / "store").as_uri(), "queue": "local", "strategy_period": 0.2, "stop_grace": 1,
        "engine": {"max_workers_per_node": 1,
                   "provider": {"type": "slurm", "init_blocks": 1, "min_blocks": 1, "max_blocks": 1,
                                "walltime": "00:10:00"}}})
    d = ep_config.endpoint_dir("hpc", home)
    ep_config.write(d / "config.yaml", cfg)
    control.start_detached("hpc", home)
    try:
        first = json.loads((d / "blocks.json").read_text())
        assert [b["job"] for b in first.values()] == ["501"]
        (tmp_path / "walltime").touch()

        def status() -> dict:
            r = subprocess.run([sys.executable, "-m", "faas.cli.main", "endpoint", "status", "hpc"],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)
        deadline = time.monotonic() + 60
        while not (info := status()).get("ended_blocks"):
            assert time.monotonic() < deadline, f"no ended block in {info}"
            time.sleep(0.5)
        ended = info["ended_blocks"][0]
        assert ended["job"] == "501" and ended["state"] == "timeout", info
        assert "normal end of a pilot job" in ended["meaning"]
        log = (d / "endpoint.log").read_text()
        assert "ended: timeout (the scheduler ended it at its walltime: the normal end of a pilot job" in log
    finally:
        control.stop("hpc", home)
