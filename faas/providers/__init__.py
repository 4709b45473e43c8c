"""Providers start, watch and cancel blocks (batch jobs). They know nothing about tasks."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..registry import Registry
from .base import BlockState, ClusterProvider, Provider, ProviderError

if TYPE_CHECKING:   # the endpoint's config model: an upper layer, for annotations only
    from ..endpoint.provider_config import ProviderConfig


#: provider ``type`` -> "module:Class" (the class takes its type's config model and the endpoint's
#: folder; a plugin's type gets a PluginProviderConfig, with its own keys in ``model_extra``)
PROVIDERS = Registry("provider type", {
    "local": "faas.providers.local:LocalProvider",
    "slurm": "faas.providers.slurm:SlurmProvider",
    "pbs": "faas.providers.pbs:PBSProvider",
})


def register_provider(type_: str, target: str | type, *, clobber: bool = False,
                      hint: str | None = None) -> None:
    """Start blocks of provider ``type_`` with ``target`` (a Provider subclass or "module:Class")."""
    PROVIDERS.register(type_, target, clobber=clobber, hint=hint)


def make_provider(cfg: ProviderConfig, endpoint_dir: Path | str) -> Provider:
    """The provider ``cfg.type`` names, keeping its scripts under ``endpoint_dir``."""
    return PROVIDERS.get(cfg.type)(cfg, endpoint_dir)


__all__ = ["BlockState", "ClusterProvider", "Provider", "ProviderError", "make_provider", "register_provider",
           "PROVIDERS"]
