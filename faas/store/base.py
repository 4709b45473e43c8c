"""The store interface: a flat key -> bytes namespace under one URL.

Like fsspec's ``spec.py``: a few primitives each backend implements. Keys use ``/`` and never
start with one. Nothing here knows about tasks or endpoints.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator


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

    @abstractmethod
    def get_head(self, key: str, nbytes: int) -> bytes:
        """The first ``nbytes`` of ``key``, never more read from the backend (give or take a
        buffer): anyone with write access can plant a huge object at a key a reader expects, so
        every read of an object another party could have written is bounded by a size the reader
        knows (a signed size, a sealed notice's size, a configured maximum; see faas.sealing).
        Raise :class:`KeyNotFound` if it does not exist."""

    def get_with_writer(self, key: str, nbytes: int) -> tuple[bytes, int | None]:
        """:meth:`get_head`, and the uid of the account that wrote the object where the backend
        can tell (a file store: the file's owner, from the very file read); None elsewhere."""
        return self.get_head(key, nbytes), None

    def owner_uid(self) -> int | None:
        """The uid of the account the store belongs to (a file store: its root folder's owner),
        where the backend can tell; None elsewhere."""
        return None

    def claim(self, prefix: str) -> None:  # noqa: B027 - optional hook: doing nothing is the right default
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

    def close(self) -> None:  # noqa: B027  # pragma: no cover - optional hook: backends with resources override
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
