"""faas: functions as a service for HPC and cloud sites, with no central server.

>>> import faas
>>> with faas.Executor() as ex:          # the embedded default: no configuration at all
...     ex.submit(pow, 2, 10).result()
1024
"""
from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .config import Settings, resolve

if TYPE_CHECKING:
    from .api import Client


class Session:
    """Resolves configuration once (like ``boto3.Session``); clients are cheap."""

    def __init__(self, profile_name: str | None = None, **overrides: Any):
        self.settings: Settings = resolve(profile_name, **overrides)

    def client(self, **overrides: Any) -> Client:
        from .api import Client
        settings = self.settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        return Client(settings)


def client(profile: str | None = None, **overrides: Any) -> Client:
    """A client: explicit arguments, then FAAS_* variables, then the profile in $FAAS_HOME/config."""
    return Session(profile, **overrides).client()


# Lazy names (``import faas`` stays light: boto3/dill load on first use): name -> "module:attr".
# ``faas.Client`` is the Globus Compute SDK's Client (faas/globus_client.py); ``faas.client()``
# returns the boto-style client of faas/api.py.
_LAZY = {
    "Executor": "faas.executor:Executor",
    "Client": "faas.globus_client:Client",
    "Batch": "faas.globus_client:Batch",
    "ShellFunction": "faas.shell_function:ShellFunction",
    "ShellResult": "faas.shell_function:ShellResult",
    "MPIFunction": "faas.shell_function:MPIFunction",
}


def __getattr__(name: str) -> Any:
    if name in ("exceptions", "errors"):   # faas.errors: the names of globus_compute_sdk.errors
        import importlib
        return importlib.import_module(f"faas.{name}")
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'faas' has no attribute {name!r}")
    import importlib
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


__all__ = ["Session", "client", "Settings", "__version__", *_LAZY]
