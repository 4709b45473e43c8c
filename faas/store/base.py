"""The store interface: a flat key -> bytes namespace under one URL.

Like fsspec's ``spec.py``: a few primitives each backend implements. Keys use ``/`` and never
start with one. Nothing here knows about tasks or endpoints.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator


class KeyNotFound(KeyError):
    """``get`` of a key that does not exist."""


class Store(ABC):
    url: str

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically: a reader sees the old bytes or the new, never a part."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Read ``key``; raise :class:`KeyNotFound` if it does not exist."""

    def get_head(self, key: str, nbytes: int) -> bytes:
        """The first ``nbytes`` of ``key`` (a reader that needs only a header, and must not be
        made to read a huge object: the multi-user router reads users' results this way)."""
        return self.get(key)[:nbytes]

    def claim(self, prefix: str) -> None:
        """Make sure the folder that will hold keys under ``prefix`` (``"results/<client id>/"``)
        exists and is this user's before anything is written there: on a shared file store,
        whoever makes a folder first owns it. Stores without folders have nothing to do."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with ``prefix``, in no promised order."""

    def close(self) -> None:  # pragma: no cover - backends with resources override
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
