"""Providers start, watch and cancel blocks (batch jobs). They know nothing about tasks."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import BlockState, Provider, ProviderError

if TYPE_CHECKING:   # the endpoint's config model: an upper layer, for annotations only
    from ..endpoint.config import ProviderConfig


def make_provider(cfg: ProviderConfig, endpoint_dir: Path | str) -> Provider:
    """The provider ``cfg.type`` names, keeping its scripts under ``endpoint_dir``."""
    if cfg.type == "local":
        from .local import LocalProvider
        return LocalProvider(cfg, endpoint_dir)
    if cfg.type == "slurm":
        from .slurm import SlurmProvider
        return SlurmProvider(cfg, endpoint_dir)
    if cfg.type == "pbs":
        from .pbs import PBSProvider
        return PBSProvider(cfg, endpoint_dir)
    raise ValueError(f"unknown provider type {cfg.type!r}")


__all__ = ["BlockState", "Provider", "ProviderError", "make_provider"]
