"""An in-process store for tests: ``memory://name`` on fsspec's MemoryFileSystem.

Every ``MemoryStore`` with the same name in one process sees the same objects (fsspec's memory
file system is one global dict), so a test can open the store twice, like two clients would.
A ``put`` replaces one dict entry with a complete new file, so it is atomic for readers.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ..exceptions import ConfigError
from .fsspec_store import FsspecStore


class MemoryStore(FsspecStore):
    def __init__(self, url: str):
        if urlsplit(url).scheme != "memory":
            raise ConfigError(f"memory store URL {url!r}: expected memory://NAME")
        super().__init__(url)

    def clear(self) -> None:
        """Remove every object of this store (tests)."""
        for key in list(self.list()):
            self.delete(key)
