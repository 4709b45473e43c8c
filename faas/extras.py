"""Optional parts of faas and the extra that installs each, so a plain ``pip install faas``
that reaches one says what to install (as fsspec's registry does for its backends)."""
from __future__ import annotations

import importlib


def require(extra: str, what: str, *modules: str) -> None:
    """Import ``modules`` or raise ModuleNotFoundError naming ``faas[extra]``."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                f"{what} needs {name} ({e}): install faas[{extra}] (pip install 'faas[{extra}]')",
                name=e.name) from None
