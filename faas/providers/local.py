"""Blocks as local processes: the embedded default, and a single node without a scheduler."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from .base import BlockState, Provider

if TYPE_CHECKING:   # the endpoint's config model: an upper layer, for annotations only
    from ..endpoint.provider_config import LocalProviderConfig


class LocalProvider(Provider):
    cfg: LocalProviderConfig

    def __init__(self, cfg: LocalProviderConfig, endpoint_dir: Path | str) -> None:
        super().__init__(cfg, endpoint_dir)
        self.procs: dict[str, subprocess.Popen] = {}

    def submit(self, command: str, block_id: str) -> str:
        script = self.script(command, block_id)
        out = open(self.scripts_dir / f"{block_id}.stdout", "ab")
        err = open(self.scripts_dir / f"{block_id}.stderr", "ab")
        with out, err:
            proc = subprocess.Popen(["/bin/bash", str(script)], stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self.endpoint_dir)
        self.procs[str(proc.pid)] = proc
        return str(proc.pid)

    def status(self, job_ids: list[str]) -> dict[str, BlockState]:
        out = {}
        for jid in job_ids:
            proc = self.procs.get(jid)
            if proc is not None:
                code = proc.poll()
                out[jid] = (BlockState.RUNNING if code is None else
                            BlockState.COMPLETED if code == 0 else
                            BlockState.CANCELLED if code in (-signal.SIGTERM, -signal.SIGKILL) else
                            BlockState.FAILED)
            else:   # adopted from an earlier daemon: we are not its parent
                out[jid] = BlockState.RUNNING if _alive(int(jid)) else BlockState.COMPLETED
            if out[jid] != BlockState.RUNNING:
                end_job(jid)
        return out

    def cancel(self, job_ids: list[str]) -> None:
        for jid in job_ids:
            try:
                os.kill(int(jid), signal.SIGTERM)   # the pool drains its own workers
            except ProcessLookupError:
                pass


def end_job(job_id: str) -> None:
    """What a scheduler does when a job ends: stop every process left in it. A block is its own
    session (``start_new_session``), so its process group is the job: a pool killed with SIGKILL
    leaves its forkserver, resource tracker and any worker still running a task, which would
    otherwise live on (the forkserver as long as one worker does). A group outlives no member,
    so the id names no one else's processes."""
    try:
        os.killpg(int(job_id), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
