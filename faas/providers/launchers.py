"""Launchers: the command a block's script runs to start one worker pool on each of its nodes."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # the endpoint's config model: an upper layer, for annotations only
    from ..endpoint.provider_config import LauncherConfig


def launch_command(launcher: LauncherConfig, command: str, nodes: int) -> str:
    """``command`` once per node. The pools tell themselves apart by the rank variable the
    launcher sets (SLURM_PROCID, PMI_RANK, ...)."""
    extra = f" {launcher.overrides}" if launcher.overrides else ""
    if launcher.type == "single_node":
        return command
    if launcher.type == "srun":
        return f"srun --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1{extra} {command}"
    if launcher.type == "mpiexec":
        return f"mpiexec -n {nodes} -ppn 1{extra} {command}"
    raise ValueError(f"unknown launcher {launcher.type!r}")


RANK_VARIABLES = ("SLURM_PROCID", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PALS_RANKID")
