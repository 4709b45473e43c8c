"""The provider interface (after Parsl's ``providers/base.py``): submit, status, cancel."""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from pathlib import Path


class BlockState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def active(self) -> bool:
        return self in (BlockState.PENDING, BlockState.RUNNING, BlockState.UNKNOWN)


class Provider(ABC):
    def __init__(self, cfg, endpoint_dir: Path):
        self.cfg = cfg
        self.endpoint_dir = Path(endpoint_dir)
        self.scripts_dir = self.endpoint_dir / "submit_scripts"
        self.scripts_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def submit(self, command: str, block_id: str) -> str:
        """Start a block that runs ``command`` (on each node, through the launcher); return its job id."""

    @abstractmethod
    def status(self, job_ids: list[str]) -> dict[str, BlockState]: ...

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None:
        """Ask blocks to end: their pools get SIGTERM and hand back what they hold."""

    def script(self, command: str, block_id: str) -> Path:
        """The block's script, kept under ``submit_scripts/`` as Globus Compute does."""
        path = self.scripts_dir / f"{block_id}.sh"
        path.write_text("#!/bin/bash\n"
                        f"# faas block {block_id}\n"
                        f"{self.cfg.worker_init}\n"
                        f"exec {command}\n")
        path.chmod(0o755)
        return path
