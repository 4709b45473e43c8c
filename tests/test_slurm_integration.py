"""A whole run through a REAL Slurm (22.05 from Debian; CI starts it with ``bash .ci/slurm.sh``):
an endpoint with the slurm provider submits blocks with sbatch, they run tasks, go back to
min_blocks; a block cancelled by scancel mid-task has its task re-run elsewhere; a block that
reaches its walltime loses nothing; a failing sbatch leaves the daemon running with the error
in endpoint.log. Cold start (zero blocks -> first result) is printed.

Skipped only where there is no ``sinfo`` at all. Jobs run as the test's user (root in CI), so
they read the private FAAS_HOME under the test's tmp folder. Our jobs are told apart from anyone
else's by their working directory (the endpoint's folder: ``--chdir`` in the submit script).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import running_endpoint

import faas
from faas.endpoint import config as ep_config
from faas.endpoint.daemon import is_running
from faas.providers.slurm import map_state, parse_scontrol

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sinfo") is None,
                       reason="no Slurm here (sinfo not on PATH); `bash .ci/slurm.sh` (as root) "
                              "installs and starts a single-node Slurm"),
]


@pytest.fixture(scope="module", autouse=True)
def slurm_up():
    """Slurm is installed: it must also answer, with a node that can run jobs."""
    deadline = time.monotonic() + 60
    out = ""
    while time.monotonic() < deadline:
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
        out = (r.stdout + r.stderr).strip()
        if r.returncode == 0 and any(s.rstrip("*") in ("idle", "mix", "alloc", "comp")
                                     for s in out.split()):
            return
        time.sleep(1)
    pytest.fail(f"Slurm is installed but not ready (sinfo: {out!r}); start it with "
                f"`bash .ci/slurm.sh`")


# -- the functions the tests run (they travel by value) ---------------------------------------
def square(x):
    return x * x


def slow_square(x, seconds):
    import os
    import time
    time.sleep(seconds)
    return x * x, os.environ.get("SLURM_JOB_ID")


def marked(path, x):
    """Note each start (with the Slurm job it ran in); the first run is long, later ones short."""
    import os
    import time
    with open(path, "a") as f:
        f.write(f"{os.environ.get('SLURM_JOB_ID')} {os.getpid()} {time.time():.2f}\n")
    with open(path) as f:
        runs = len(f.read().splitlines())
    time.sleep(60 if runs == 1 else 0.5)
    return x * 2, os.environ.get("SLURM_JOB_ID")


def tagged(i, seconds):
    import os
    import time
    time.sleep(seconds)
    return i, os.environ.get("SLURM_JOB_ID"), time.time()


# -- helpers ------------------------------------------------------------------------------------
def our_jobs(edir: Path) -> dict[str, tuple[str, str]]:
    """{job id: (name, Slurm state)} of the jobs this endpoint submitted (any state squeue still
    shows), told apart by their working directory."""
    out = subprocess.run(["squeue", "--me", "--noheader", "--states=all", "--format=%i|%j|%T|%Z"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4 and parts[3] == str(edir):
            jobs[parts[0]] = (parts[1], parts[2])
    return jobs


def active(jobs: dict) -> dict:
    return {j: v for j, v in jobs.items() if map_state(v[1]).active}


def job_state(job: str) -> str:
    r = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=60)
    return parse_scontrol(r.stdout) or f"unknown ({(r.stdout + r.stderr).strip()[:200]})"


def job_field(job: str, key: str) -> str | None:
    r = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=60)
    for field in r.stdout.split():
        if field.startswith(key + "="):
            return field.split("=", 1)[1]
    return None


def seconds(hms: str) -> int:
    days, _, hms = hms.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def diagnose(edir: Path) -> str:
    """What to read when a scenario fails: the daemon's log, the blocks' stderr and pool logs."""
    parts = []
    for f in [edir / "endpoint.log", *sorted((edir / "submit_scripts").glob("*.stderr")),
              *sorted((edir / "blocks").glob("*/pool.log"))]:
        try:
            parts.append(f"---- {f.relative_to(edir)} ----\n{f.read_text(errors='replace')[-3000:]}")
        except OSError:
            pass
    try:
        parts.append(f"---- squeue ----\n{our_jobs(edir)}")
    except Exception as e:  # noqa: BLE001 - diagnostics for a failure report: never mask the failure
        parts.append(f"---- squeue failed: {e}")
    return "\n".join(parts)


def assert_pools_exited_cleanly(edir: Path) -> None:
    """Slurm's SIGTERM (scancel, TIMEOUT) reaches every process of a job, the pool's workers
    too: the pool must still hand back what it holds and exit, not crash."""
    for f in sorted((edir / "submit_scripts").glob("*.stderr")):
        text = f.read_text(errors="replace")
        assert "Traceback" not in text, (
            f"a pool crashed when Slurm signalled its job ({f.name}):\n{text[-2500:]}")


def wait_for(cond, timeout: float, what: str, edir: Path, period: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s\n{diagnose(edir)}")
        time.sleep(period)


def slurm_endpoint(home: Path, name: str, provider: dict, engine: dict | None = None, **top):
    prov = {"type": "slurm", "partition": "debug", "init_blocks": 0, "min_blocks": 0,
            "max_blocks": 2, "cmd_timeout": 30, **provider}
    eng = {"max_workers_per_node": 1, "max_idle_time": 5, "provider": prov, **(engine or {})}
    top = {"max_receives": 5, "visibility_timeout": 30, "stop_grace": 5, **top}
    return running_endpoint(home, name, engine=eng, **top)


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[slurm] {text}", flush=True)


# -- (a) scale out from zero, run, measure cold start, back to min_blocks ----------------------
@pytest.mark.timeout(300)
def test_blocks_from_zero_run_tasks_and_go_back_to_zero(tmp_path, capsys):
    home, name = tmp_path / "home", "slurm-a"
    edir = ep_config.endpoint_dir(name, home)
    with slurm_endpoint(home, name, {}):
        assert active(our_jobs(edir)) == {}, "init_blocks 0: no block before the first task"
        with faas.Executor(name) as ex:
            t0 = time.monotonic()
            first = ex.submit(square, 7)
            try:
                assert first.result(timeout=150) == 49
            except TimeoutError:
                pytest.fail("no first result within 150 s\n" + diagnose(edir))
            cold = time.monotonic() - t0
            jobs = our_jobs(edir)
            assert jobs and all(n.startswith("faas-block-") for n, _ in jobs.values()), jobs
            first_job = next(iter(jobs))
            started = job_field(first_job, "StartTime")
            report(capsys, f"cold start, zero blocks -> first result: {cold:.2f} s "
                           f"(job {first_job}, submitted {job_field(first_job, 'SubmitTime')}, "
                           f"started {started})")

            # A load for two blocks: 8 one-second tasks, one worker a block.
            t1 = time.monotonic()
            futs = [ex.submit(slow_square, i, 1.0) for i in range(8)]
            most, seen, recorded = 0, set(), {}
            while not all(f.done() for f in futs) and time.monotonic() - t1 < 150:
                now = active(our_jobs(edir))
                most = max(most, sum(1 for _, s in now.values() if s == "RUNNING"))
                seen |= set(now)
                try:
                    recorded.update({b["job"]: bid for bid, b in
                                     json.loads((edir / "blocks.json").read_text()).items()})
                except (OSError, ValueError):
                    pass
                assert len(now) <= 2, f"max_blocks is 2, squeue shows {now}"
                time.sleep(0.3)
            try:
                results = [f.result(timeout=5) for f in futs]
            except TimeoutError:
                pytest.fail("the 8 tasks did not finish within 150 s\n" + diagnose(edir))
            load_s = time.monotonic() - t1
        assert [r[0] for r in results] == [i * i for i in range(8)]
        ran_in = {r[1] for r in results}
        # Scaled out to max_blocks. (Both blocks run at once unless someone else's job holds a
        # CPU of this 2-CPU node: then the second one waits in the queue, and is not needed.)
        assert len(seen) >= 2, (seen, diagnose(edir))
        assert ran_in <= seen | {first_job}, (ran_in, seen)
        # the job ids are recorded (a restarted daemon adopts them), with the kept scripts
        assert ran_in <= set(recorded), (ran_in, recorded)
        for job in ran_in:
            bid = recorded[job]
            for ext in ("sh", "stdout", "stderr"):
                assert (edir / "submit_scripts" / f"{bid}.{ext}").exists(), (bid, ext)
            assert f"job {job} on" in (edir / "submit_scripts" / f"{bid}.stdout").read_text()
            assert "#SBATCH --partition=debug" in (edir / "submit_scripts" / f"{bid}.sh").read_text()

        # Load gone: back to min_blocks (0) with the endpoint still up.
        t2 = time.monotonic()
        wait_for(lambda: not active(our_jobs(edir)), 120, "blocks back to min_blocks 0", edir)
        to_zero = time.monotonic() - t2
        assert is_running(edir)
        finals = {j: job_state(j) for j in ran_in | {first_job}}
        assert all(not map_state(s).active for s in finals.values()), finals
        report(capsys, f"8 x 1 s tasks: {load_s:.1f} s in {len(ran_in)} block(s), {most} running "
                       f"at once; idle blocks gone "
                       f"{to_zero:.1f} s after the load (max_idle_time 5 s): {finals}")


# -- (b) scancel a block mid-task: the task runs again elsewhere --------------------------------
@pytest.mark.timeout(300)
def test_scancel_mid_task_reruns_it_on_another_block(tmp_path, capsys):
    home, name = tmp_path / "home", "slurm-b"
    edir = ep_config.endpoint_dir(name, home)
    marker = tmp_path / "marker"
    with slurm_endpoint(home, name, {}, engine={"max_idle_time": 30}):
        with faas.Executor(name) as ex:
            fut = ex.submit(marked, str(marker), 21)
            wait_for(lambda: marker.exists() and marker.read_text().strip(), 150,
                     "the task starting", edir)
            job = marker.read_text().split()[0]
            assert job in active(our_jobs(edir)), (job, our_jobs(edir))
            t0 = time.monotonic()
            subprocess.run(["scancel", job], check=True, timeout=60)
            try:
                value, rerun_job = fut.result(timeout=150)
            except TimeoutError:
                pytest.fail("no result after the scancel within 150 s\n" + diagnose(edir))
            took = time.monotonic() - t0
        assert value == 42
        runs = [ln.split() for ln in marker.read_text().splitlines()]
        assert len(runs) >= 2, runs
        assert rerun_job != job and runs[-1][0] == rerun_job, (job, runs)
        wait_for(lambda: not map_state(job_state(job)).active, 60, f"job {job} ending", edir)
        assert job_state(job) == "CANCELLED"
        assert_pools_exited_cleanly(edir)
        report(capsys, f"scancel {job} mid-task: re-run in job {rerun_job}, result {took:.1f} s "
                       f"after the scancel")


# -- (c) walltime: a stream of short tasks goes on across blocks, nothing lost ----------------
@pytest.mark.timeout(300)
def test_walltime_nothing_lost(tmp_path, capsys):
    home, name = tmp_path / "home", "slurm-c"
    edir = ep_config.endpoint_dir(name, home)
    with slurm_endpoint(home, name, {"walltime": "00:01:00", "walltime_margin": 30},
                        engine={"max_idle_time": 20}):
        with faas.Executor(name) as ex:
            t0 = time.monotonic()
            futs = [ex.submit(tagged, 0, 0.2)]
            first = futs[0].result(timeout=150)
            first_job = first[1]
            ended_at = None
            # Four tasks a second until the first block has ended and ten seconds more
            # (bounded: Slurm ends a 1-minute job by ~90 s plus KillWait).
            while time.monotonic() - t0 < 170:
                futs.append(ex.submit(tagged, len(futs), 0.2))
                time.sleep(0.25)
                if ended_at is None and len(futs) % 8 == 0 and \
                        not map_state(job_state(first_job)).active:
                    ended_at = time.monotonic()
                if ended_at is not None and time.monotonic() - ended_at > 10:
                    break
            assert ended_at is not None, "the first block did not end\n" + diagnose(edir)
            try:
                results = [f.result(timeout=120) for f in futs]
            except TimeoutError:
                done = sum(f.done() for f in futs)
                pytest.fail(f"{len(futs) - done} of {len(futs)} results missing\n{diagnose(edir)}")
        assert [r[0] for r in results] == list(range(len(futs))), "a task was lost"
        jobs = {r[1] for r in results}
        assert len(jobs) >= 2, jobs
        state = job_state(first_job)
        run = job_field(first_job, "RunTime") or "0:0:0"
        # RunTime is whole seconds and the first result can come under a second after the job
        # started: 2 s of slack so the block's last task is not counted as after its end
        after = [r for r in results if r[2] > results[0][2] + seconds(run) + 2]
        assert after and all(r[1] != first_job for r in after), "tasks after the first block ended"
        assert state in ("COMPLETED", "TIMEOUT"), state
        how = ("drained and exited before its walltime" if state == "COMPLETED" else
               "killed by Slurm at its walltime (TIMEOUT); its tasks came back")
        report(capsys, f"walltime 00:01:00, margin 30 s: first block {first_job} {how} after "
                       f"{run}; {len(results)} tasks in {len(jobs)} blocks, none lost")


# -- (c') Slurm's own TIMEOUT kill, of a pool that was not told the walltime --------------------
@pytest.mark.timeout(300)
def test_timeout_kill_by_slurm_loses_nothing(tmp_path, capsys):
    """The walltime only in scheduler_options (the last --time wins), so the pool does not drain
    before it: Slurm's TIMEOUT sends SIGTERM (the pool hands back what it holds), KillWait later
    SIGKILL. Every task still gets its result."""
    home, name = tmp_path / "home", "slurm-t"
    edir = ep_config.endpoint_dir(name, home)
    with slurm_endpoint(home, name, {"scheduler_options": "#SBATCH --time=00:01:00", "max_blocks": 1},
                        engine={"max_idle_time": 60}):
        with faas.Executor(name) as ex:
            t0 = time.monotonic()
            futs = [ex.submit(tagged, 0, 0.5)]
            first_job = futs[0].result(timeout=150)[1]
            ended_at = None
            while time.monotonic() - t0 < 170:
                futs.append(ex.submit(tagged, len(futs), 0.5))
                time.sleep(0.5)
                if ended_at is None and len(futs) % 4 == 0 and \
                        not map_state(job_state(first_job)).active:
                    ended_at = time.monotonic()
                if ended_at is not None and time.monotonic() - ended_at > 10:
                    break
            assert ended_at is not None, "Slurm did not end the first block\n" + diagnose(edir)
            try:
                results = [f.result(timeout=120) for f in futs]
            except TimeoutError:
                done = sum(f.done() for f in futs)
                pytest.fail(f"{len(futs) - done} of {len(futs)} results missing\n{diagnose(edir)}")
        assert [r[0] for r in results] == list(range(len(futs))), "a task was lost"
        assert job_state(first_job) == "TIMEOUT"
        assert_pools_exited_cleanly(edir)
        jobs = {r[1] for r in results}
        assert len(jobs) >= 2, jobs
        report(capsys, f"Slurm TIMEOUT of block {first_job} after {job_field(first_job, 'RunTime')}: "
                       f"{len(results)} tasks in {len(jobs)} blocks, none lost")


# -- (e) a restarted daemon adopts the running blocks ------------------------------------------
@pytest.mark.timeout(240)
def test_restarted_daemon_adopts_its_running_block(tmp_path):
    import signal

    from faas.endpoint import control
    from faas.endpoint.daemon import daemon_pid
    home, name = tmp_path / "home", "slurm-e"
    edir = ep_config.endpoint_dir(name, home)
    with slurm_endpoint(home, name, {"init_blocks": 1, "min_blocks": 1, "max_blocks": 1}):
        jobs = wait_for(lambda: {j for j, (_, s) in our_jobs(edir).items() if s == "RUNNING"},
                        120, "the min_blocks block running", edir)
        assert len(jobs) == 1
        job = next(iter(jobs))
        recorded = json.loads((edir / "blocks.json").read_text())
        assert [b["job"] for b in recorded.values()] == [job]
        pid = daemon_pid(edir)
        os.kill(pid, signal.SIGKILL)            # a crash: the daemon cancels nothing
        wait_for(lambda: not is_running(edir), 30, "the killed daemon letting go", edir)
        control.start_detached(name, home, wait=60)
        assert "adopted running blocks" in (edir / "endpoint.log").read_text()
        with faas.Executor(name) as ex:
            assert ex.submit(slow_square, 5, 0.1).result(timeout=120) == (25, job)
        assert set(active(our_jobs(edir))) == {job}, "the restarted daemon submitted another block"


# -- (d) a failing sbatch: the daemon stays up and says why ------------------------------------
@pytest.mark.timeout(240)
def test_sbatch_failure_is_logged_and_the_daemon_keeps_running(tmp_path):
    home, name = tmp_path / "home", "slurm-d"
    edir = ep_config.endpoint_dir(name, home)
    with slurm_endpoint(home, name, {"partition": "nope", "init_blocks": 1}):
        log = edir / "endpoint.log"
        wait_for(lambda: log.exists() and "invalid partition specified: nope" in log.read_text(),
                 60, "the sbatch error in endpoint.log", edir)
        with faas.Executor(name) as ex:
            fut = ex.submit(square, 3)   # load: the daemon tries again (and fails again)
            time.sleep(8)
            assert not fut.done()
            assert is_running(edir), "the daemon died on a failing sbatch\n" + diagnose(edir)
            ex.shutdown(wait=False, cancel_futures=True)
        assert active(our_jobs(edir)) == {}
        text = log.read_text()
        assert "sbatch" in text and "Invalid partition name specified" in text
        env = dict(os.environ, FAAS_HOME=str(home))
        r = subprocess.run([sys.executable, "-m", "faas.cli.main", "endpoint", "status", name],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "invalid partition specified: nope" in r.stdout, r.stdout
