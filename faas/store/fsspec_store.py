"""The generic fallback: a store on any fsspec file system (``gs://``, ``az://``, ``sftp://``, ...).

A key is a file under the URL's path. ``put`` is one ``pipe_file`` call, so it is as atomic as the
backend makes a single whole-object write: object stores (GCS, Azure, S3 through s3fs) replace
an object in one request, and fsspec's memory file system swaps one dict entry. For local
folders use :class:`faas.store.file.FileStore`, which writes a temporary file and renames it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..exceptions import ConfigError, StoreError
from .base import KeyNotFound, Store
from .file import check_key, check_prefix


class FsspecStore(Store):
    """Objects as files of one fsspec file system, under the path of ``url``.

    ``storage_options`` go to the file system's constructor, as in ``fsspec.open``.
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise ConfigError(
                f"store URL {url!r}: fsspec cannot open it ({exc}); install the package for its "
                "protocol (e.g. gcsfs for gs://, adlfs for az://) or fix the URL") from exc
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/")
        # The path of a key: memory:// with no name puts keys at the file system's root.
        self._base = self.root + "/" if self.root else (fs.root_marker or "")

    # -- helpers -------------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return self._base + check_key(key)

    def _error(self, action: str, key: str, exc: Exception) -> StoreError:
        if isinstance(exc, PermissionError):
            hint = "check the credentials and permissions for this store"
        elif isinstance(exc, (FileExistsError, NotADirectoryError, IsADirectoryError)):
            hint = "a key cannot be both an object and a folder of other keys"
        else:
            hint = "check the store URL and that the service is reachable"
        return StoreError(f"store {self.url}: cannot {action} {key!r}: "
                          f"{type(exc).__name__}: {exc}; {hint}")

    def _forget(self, path: str) -> None:
        # Remote file systems cache listings; another process may have written since.
        try:
            self.fs.invalidate_cache(self.fs._parent(path))
        except Exception:  # noqa: BLE001 - best effort: any backend's cache drop may fail; reads still work
            pass

    # -- the Store interface ------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        data = bytes(data)
        try:
            try:
                self.fs.pipe_file(path, data)
            except FileNotFoundError:
                # Folder-based file systems (local, sftp) need the parent folder first.
                self.fs.makedirs(self.fs._parent(path), exist_ok=True)
                self.fs.pipe_file(path, data)
        except OSError as exc:
            raise self._error("write", key, exc) from exc

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return self.fs.cat_file(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as exc:
            raise self._error("read", key, exc) from exc

    def get_head(self, key: str, nbytes: int) -> bytes:
        path = self._path(key)
        try:   # a ranged read: object stores send only these bytes, the memory one slices
            return self.fs.cat_file(path, start=0, end=max(0, nbytes))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as exc:
            raise self._error("read", key, exc) from exc

    def exists(self, key: str) -> bool:
        path = self._path(key)
        self._forget(path)
        try:
            return bool(self.fs.isfile(path))
        except OSError as exc:
            raise self._error("check", key, exc) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            self.fs.rm_file(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass
        except OSError as exc:
            raise self._error("delete", key, exc) from exc
        self._forget(path)

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        top = self._base + folder if folder else (self.root or self._base)
        try:
            self.fs.invalidate_cache(top)
        except Exception:  # noqa: BLE001 - best effort: any backend's cache drop may fail; find() still works
            pass
        try:
            paths = self.fs.find(top)
        except FileNotFoundError:
            paths = []
        except OSError as exc:
            raise self._error("list", prefix, exc) from exc
        base, n = self._base, len(self._base)
        out = []
        for p in paths:
            if not p.startswith(base):
                p = self.fs._strip_protocol(p)
                if not p.startswith(base):
                    continue
            rel = p[n:]
            if rel.startswith(prefix) and rel:
                out.append(rel)
        return iter(out)
