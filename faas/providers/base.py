"""The provider interface (after Parsl's ``providers/base.py``): submit, status, cancel.

A provider starts *blocks*: one batch job (or local process group) of ``nodes_per_block``
nodes, whose script runs ``worker_init`` and then the launcher, which starts one worker pool per
node. Providers know nothing about tasks; the daemon drives them.
"""
from __future__ import annotations

import enum
import os
import shlex
import signal
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from ..exceptions import FaasError
from .launchers import launch_command

if TYPE_CHECKING:   # the endpoint's config models: an upper layer, for annotations only
    from ..endpoint.provider_config import BaseProviderConfig, ClusterProviderConfig


class ProviderError(FaasError):
    """A scheduler command failed, hung past ``cmd_timeout``, or is not installed."""

    code = "ProviderError"


class BlockState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    #: the scheduler ended the job at its walltime: the normal end of a pilot job (its pools
    #: stop taking tasks and hand back what they hold before it), not a failure. Parsl keeps
    #: its own state for Slurm's TIMEOUT for the same reason.
    TIMEOUT = "timeout"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def active(self) -> bool:
        return self in (BlockState.PENDING, BlockState.RUNNING, BlockState.UNKNOWN)

    @property
    def meaning(self) -> str:
        """What an ended block's state tells its administrator (``faas endpoint status``)."""
        return _ENDINGS.get(self, "")


_ENDINGS = {
    BlockState.COMPLETED: "its pools exited (idle, or stopped before the walltime): a normal end",
    BlockState.TIMEOUT: "the scheduler ended it at its walltime: the normal end of a pilot job (its "
                        "pools handed back what they held; those tasks run in another block)",
    BlockState.CANCELLED: "cancelled (scaled in, the endpoint stopped, or scancel/qdel by hand)",
    BlockState.FAILED: "the job failed (node failure, out of memory, preempted, ...): its tasks come "
                       "back after the visibility timeout; see its .stderr in submit_scripts/",
}


class Provider(ABC):
    #: the submit script's template, a file beside the provider's module (None: a plain script)
    template: str | None = None
    #: seconds between status queries (a real scheduler's controller is shared: spare it)
    status_interval: float = 0.0
    #: the provider's own config model (each subclass reads its type's: provider_config.py)
    cfg: BaseProviderConfig

    def __init__(self, cfg: BaseProviderConfig, endpoint_dir: Path | str) -> None:
        self.cfg = cfg
        self.endpoint_dir = Path(endpoint_dir)
        self.scripts_dir = self.endpoint_dir / "submit_scripts"
        self.scripts_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def submit(self, command: str, block_id: str) -> str:
        """Start a block whose every node runs ``command``; return its job id."""

    @abstractmethod
    def status(self, job_ids: list[str]) -> dict[str, BlockState]: ...

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None:
        """Ask blocks to end: their pools get SIGTERM and hand back what they hold."""

    # -- helpers for the providers ----------------------------------------------------------
    def script(self, command: str, block_id: str, **extra: Any) -> Path:
        """Render the block's script into ``submit_scripts/BLOCK.sh`` (kept, as Globus Compute
        does, beside the job's ``.stdout`` / ``.stderr``)."""
        path = self.scripts_dir / f"{block_id}.sh"
        launch = launch_command(self.cfg.launcher, command, self.cfg.nodes_per_block)
        if self.template is None:
            text = f"#!/bin/bash\n# faas block {block_id}\n{self.cfg.worker_init}\nexec {launch}\n"
        else:
            env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(self.template).parent),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
            text = env.get_template(Path(self.template).name).render(
                cfg=self.cfg, block_id=block_id, launch_command=launch, command=command,
                stdout=str(self.scripts_dir / f"{block_id}.stdout"),
                stderr=str(self.scripts_dir / f"{block_id}.stderr"), **extra)
        path.write_text(text)
        path.chmod(0o755)
        return path


class ClusterProvider(Provider):
    """A batch scheduler's provider (after Parsl's ``ClusterProvider``): blocks are jobs that
    its commands submit, watch and cancel, each bounded by ``cmd_timeout``."""

    cfg: ClusterProviderConfig

    def run(self, args: list[str], what: str | None = None) -> str:
        """Run a scheduler command within ``cmd_timeout``; its stdout, or a ProviderError that
        quotes what the scheduler said."""
        r = self.run_result(args, what)
        if r.returncode != 0:
            said = (r.stderr.strip() or r.stdout.strip() or "(no output)")[-1500:]
            raise ProviderError(f"{what or args[0]} failed (exit {r.returncode}): {said}")
        return r.stdout

    def run_result(self, args: list[str], what: str | None = None) -> subprocess.CompletedProcess:
        """Like :meth:`run`, but a non-zero exit is the caller's to read (qstat and qdel exit
        non-zero when some ids are merely finished, and still print the rest)."""
        what = what or args[0]
        try:   # its own session, so a timeout ends a wrapper script's children too
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except FileNotFoundError:
            raise ProviderError(f"{args[0]} not found on PATH: is the scheduler's client installed "
                                f"on this node (the endpoint's {self.cfg.type} provider needs it)?") from None
        try:
            out, err = proc.communicate(timeout=self.cfg.cmd_timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise ProviderError(f"{what} did not answer within {self.cfg.cmd_timeout:g} s "
                                f"(cmd_timeout): {shlex.join(args)}") from None
        return subprocess.CompletedProcess(args, proc.returncode, out, err)
