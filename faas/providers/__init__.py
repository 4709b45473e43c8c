"""Providers start, watch and cancel blocks (batch jobs). They know nothing about tasks."""
from __future__ import annotations

from .base import BlockState, Provider


def make_provider(cfg, endpoint_dir) -> Provider:
    if cfg.type == "local":
        from .local import LocalProvider
        return LocalProvider(cfg, endpoint_dir)
    raise ValueError(f"unknown provider type {cfg.type!r}")


__all__ = ["BlockState", "Provider", "make_provider"]
