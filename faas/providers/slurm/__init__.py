"""Blocks as Slurm batch jobs: ``sbatch`` to submit, ``squeue`` / ``scontrol`` to watch,
``scancel`` to cancel.

Commands (each run through :meth:`Provider.run`, so each is bounded by ``cmd_timeout`` and a
failure is a :class:`ProviderError` that quotes what Slurm said on stderr):

``submit``
    ``sbatch --parsable SCRIPT`` with the script rendered from ``template.sh.j2`` (``--time`` as
    ``HH:MM:SS`` or ``D-HH:MM:SS``, whichever Slurm format the config used; with ``clusters``,
    every command below also gets ``--clusters``) into
    ``submit_scripts/BLOCK.sh`` (the job's ``--output`` / ``--error`` are ``BLOCK.stdout`` /
    ``BLOCK.stderr`` beside it). ``--parsable`` prints ``JOBID`` or ``JOBID;CLUSTER``: the job id
    is the part before ``;``.
``status``
    one ``squeue --user=ME --noheader --states=all --format=%i|%T`` for all blocks at once (all of
    this user's jobs, finished ones included while slurmctld keeps them: 22.05's ``squeue -j``
    answers nothing at all when one of the ids is no longer known, so we filter ourselves), then,
    for each id squeue no longer lists, one ``scontrol -o show job ID`` (it knows finished jobs
    for ``MinJobAge``, 300 s by default). An id that neither knows has left slurmctld's memory:
    its last state seen here if it was a final one, else COMPLETED. No ``sacct``: it needs
    accounting storage, which many small sites (and CI) do not run.
``cancel``
    plain ``scancel ID ...``: Slurm sends SIGTERM to every process of the job (the pools drain
    and hand back what they hold), waits ``KillWait`` (30 s by default), then SIGKILL. A task
    still running at the SIGKILL is not lost: its message comes back after the visibility
    timeout and runs again elsewhere.

State mapping (Slurm's job state -> :class:`BlockState`):

=======================================================================  ===========
PENDING, CONFIGURING, REQUEUED, REQUEUE_HOLD, REQUEUE_FED, RESIZING,      PENDING
SUSPENDED, STOPPED, RESV_DEL_HOLD
RUNNING, COMPLETING, SIGNALING, STAGE_OUT                                 RUNNING
COMPLETED                                                                 COMPLETED
TIMEOUT                                                                   TIMEOUT
CANCELLED, REVOKED                                                        CANCELLED
FAILED, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, BOOT_FAIL, DEADLINE,         FAILED
SPECIAL_EXIT
anything else (and a job scontrol could not be asked about)               UNKNOWN
=======================================================================  ===========

TIMEOUT is the normal end of a pilot job, not a failure: a block is a batch job that runs
pools until its walltime, and Slurm ends it there (its pools stop taking tasks before it and
hand back what they hold; a pool not told the walltime hands back at Slurm's SIGTERM). Parsl
maps it to its own state for the same reason; ``faas endpoint status`` lists it among the
ended blocks as such. COMPLETING counts as running: the pools of a cancelled block are still
handing back their tasks. UNKNOWN counts as active, so a block is never forgotten because a
command failed once.
"""
from __future__ import annotations

import logging
import os
import pwd
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..base import BlockState, ClusterProvider, ProviderError

if TYPE_CHECKING:   # the endpoint's config model: an upper layer, for annotations only
    from ...endpoint.provider_config import SlurmProviderConfig

log = logging.getLogger("faas.providers.slurm")

STATES: dict[str, BlockState] = {
    **dict.fromkeys(["PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                     "RESIZING", "SUSPENDED", "STOPPED", "RESV_DEL_HOLD"], BlockState.PENDING),
    **dict.fromkeys(["RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"], BlockState.RUNNING),
    "COMPLETED": BlockState.COMPLETED,
    "TIMEOUT": BlockState.TIMEOUT,   # the walltime: how a pilot job ends (see above)
    **dict.fromkeys(["CANCELLED", "REVOKED"], BlockState.CANCELLED),
    **dict.fromkeys(["FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
                     "DEADLINE", "SPECIAL_EXIT"], BlockState.FAILED),
}

_FINAL = (BlockState.COMPLETED, BlockState.TIMEOUT, BlockState.CANCELLED, BlockState.FAILED)
_JOB_ID = re.compile(r"^\d+(?:_\d+)?$")


def map_state(slurm_state: str) -> BlockState:
    """One Slurm job state (``RUNNING``, ``CANCELLED by 0``, ``cancelled``) as a BlockState."""
    words = slurm_state.strip().split()
    return STATES.get(words[0].upper(), BlockState.UNKNOWN) if words else BlockState.UNKNOWN


def parse_job_id(stdout: str) -> str:
    """The job id in what ``sbatch --parsable`` printed: ``123`` or ``123;cluster``."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    job = lines[-1].split(";")[0].strip() if lines else ""
    if not _JOB_ID.match(job):
        raise ProviderError(f"sbatch printed no job id (expected JOBID or JOBID;CLUSTER with "
                            f"--parsable), got {stdout.strip()[:300]!r}")
    return job


def parse_squeue(stdout: str) -> dict[str, str]:
    """``JOBID|STATE`` lines (``squeue --format=%i|%T``) as {job id: Slurm state}."""
    out = {}
    for line in stdout.splitlines():
        job, sep, state = line.strip().partition("|")
        if sep and job:
            out[job.strip()] = state.strip()
    return out


def parse_scontrol(stdout: str) -> str | None:
    """The ``JobState=`` of ``scontrol -o show job ID`` (one line of KEY=VALUE pairs)."""
    m = re.search(r"(?:^|\s)JobState=(\S+)", stdout)
    return m.group(1) if m else None


def slurm_walltime(seconds: int) -> str:
    """``--time`` in one of Slurm's formats: ``HH:MM:SS`` under a day, else ``D-HH:MM:SS``."""
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{days}-{h:02d}:{m:02d}:{s:02d}" if days else f"{h:02d}:{m:02d}:{s:02d}"


def mem_option(gb: float) -> str:
    """``--mem`` wants whole units: 4 GB -> ``4G``, 1.5 GB -> ``1536M``."""
    return f"{int(gb)}G" if float(gb).is_integer() else f"{max(int(gb * 1024), 1)}M"


class SlurmProvider(ClusterProvider):
    template = str(Path(__file__).with_name("template.sh.j2"))
    status_interval = 5.0
    cfg: SlurmProviderConfig

    def __init__(self, cfg: SlurmProviderConfig, endpoint_dir: Path | str) -> None:
        super().__init__(cfg, endpoint_dir)
        self.last_seen: dict[str, BlockState] = {}
        try:   # the jobs' owner (--me needs Slurm 20.11; --user works everywhere)
            self.user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            self.user = str(os.getuid())

    def submit(self, command: str, block_id: str) -> str:
        mem = mem_option(self.cfg.mem_per_node) if self.cfg.mem_per_node else None
        script = self.script(command, block_id, mem=mem, workdir=str(self.endpoint_dir))
        job = parse_job_id(self.run(["sbatch", "--parsable", str(script)]))
        self.last_seen[job] = BlockState.PENDING
        return job

    def script(self, command: str, block_id: str, **extra) -> Path:
        extra.setdefault("walltime", slurm_walltime(self.cfg.walltime_s) if self.cfg.walltime_s else None)
        return super().script(command, block_id, **extra)

    def status(self, job_ids: list[str]) -> dict[str, BlockState]:
        if not job_ids:
            return {}
        listed = parse_squeue(self.run(["squeue", *self._clusters(), f"--user={self.user}", "--noheader",
                                         "--states=all", "--format=%i|%T"]))
        out: dict[str, BlockState] = {}
        for job in job_ids:
            if job in listed:
                out[job] = map_state(listed[job])
            else:
                out[job] = self._gone(job)
            if out[job] is not BlockState.UNKNOWN:
                self.last_seen[job] = out[job]
        return out

    def _gone(self, job: str) -> BlockState:
        """A job squeue no longer lists: ask scontrol, which remembers it for MinJobAge."""
        try:
            state = parse_scontrol(self.run(["scontrol", *self._clusters(), "-o", "show", "job", job]))
        except ProviderError as e:
            if "invalid job id" not in str(e).lower():
                log.warning("could not tell the state of job %s: %s", job, e)
                return BlockState.UNKNOWN
            state = None
        if state is not None:
            return map_state(state)
        last = self.last_seen.get(job)
        return last if last in _FINAL else BlockState.COMPLETED

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            self.run(["scancel", *self._clusters(), *job_ids])

    def _clusters(self) -> list[str]:
        """``--clusters`` on every command when the config names the cluster(s) (a job on another
        cluster of a multi-cluster site is invisible without it)."""
        return [f"--clusters={self.cfg.clusters}"] if self.cfg.clusters else []
