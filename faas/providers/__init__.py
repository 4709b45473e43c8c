"""Providers start, watch and cancel blocks (batch jobs). They know nothing about tasks."""
from __future__ import annotations

from .base import BlockState, Provider, ProviderError


def make_provider(cfg, endpoint_dir) -> Provider:
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
