"""Name -> class tables for the pluggable kinds (stores, queues, providers, action providers).

Shaped like fsspec's ``registry.py``: each entry is ``"module:Class"`` imported only when first
asked for (a local run never imports boto3), a site plugin adds its own with ``register``, and an
entry may carry an install hint shown when its module is missing. A bottom module: it imports
nothing from faas but :mod:`faas.exceptions`.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any

from .exceptions import ConfigError


class Registry:
    """One kind's table (``kind`` names it in errors: "store scheme", "provider type"...)."""

    def __init__(self, kind: str, known: dict[str, str] | None = None,
                 hints: dict[str, str] | None = None):
        self.kind = kind
        self._targets: dict[str, str | type] = dict(known or {})
        self._hints: dict[str, str] = dict(hints or {})
        self._loaded: dict[str, type] = {}   # name -> its class, once imported
        self._lock = threading.Lock()

    def register(self, name: str, target: str | type, *, clobber: bool = False,
                 hint: str | None = None) -> None:
        """Serve ``name`` with ``target`` (a class, or ``"module:Class"`` imported on first use).

        An existing name is kept unless ``clobber`` (a plugin must say it replaces a built-in);
        ``hint`` is what to install when the module is missing (e.g. "pip install 'faas[x]'")."""
        if isinstance(target, str) and target.count(":") != 1:
            raise ConfigError(f"{self.kind} {name!r}: target {target!r} must be 'module:Class' or a class")
        with self._lock:
            if name in self._targets and not clobber and self._targets[name] != target:
                raise ConfigError(f"{self.kind} {name!r} is already registered as "
                                  f"{self._targets[name]!r}; pass clobber=True to replace it")
            self._targets[name] = target
            self._loaded.pop(name, None)
            if hint is not None:
                self._hints[name] = hint

    def unregister(self, name: str) -> None:
        with self._lock:
            self._targets.pop(name, None)
            self._loaded.pop(name, None)
            self._hints.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def names(self) -> list[str]:
        return sorted(self._targets)

    def get(self, name: str) -> Any:
        """The class registered under ``name``, imported now if it was given as a string.

        :class:`ConfigError` (a ``ValueError``) naming the known names if ``name`` is unknown;
        :class:`ImportError` with the install hint if its module (or a module it needs) is missing."""
        with self._lock:
            target = self._targets.get(name)
            loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        if target is None:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}")
        if not isinstance(target, str):
            return target
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            hint = self._hints.get(name)
            raise ImportError(f"{self.kind} {name!r} needs {module_name}, which cannot be imported "
                              f"({e})" + (f"; {hint}" if hint else "")) from e
        try:
            cls = getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"{self.kind} {name!r}: {module_name} has no {attr!r} "
                              f"(registered as {target!r})") from None
        with self._lock:   # later lookups skip the import machinery
            if self._targets.get(name) == target:
                self._loaded[name] = cls
        return cls


__all__ = ["Registry"]
