"""A store in a local (or shared POSIX) folder: ``file:///abs/path`` or a plain absolute path.

Each key is a file under the root. ``put`` writes a temporary file beside the target and renames
it into place, so a reader sees the old bytes or the new, never a part, and a process killed in
the middle leaves at most a hidden temporary file, never a half-written object.

Nothing is fsync'd: what we must survive is ``kill -9`` of a client, worker or endpoint, and after
a process dies everything it wrote is already in the kernel's page cache, which every other
process sees and which outlives the process. Surviving a power cut or a kernel crash would need an
fsync of the file and its folder on every put: a thousand times slower, for a failure the queue's
at-least-once delivery already covers (a lost result makes the task run again).

The key helpers :func:`check_key` and :func:`check_prefix` live here and every backend uses them, so
a key that is legal for one store is legal for all.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import stat
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from .. import random_ids, safe_open
from ..exceptions import ConfigError, StoreError
from .base import KeyNotFound, Store

log = logging.getLogger(__name__)

_Folders = list[str]   # a key's folder names (FileStore.list shadows the builtin in its annotations)

#: Temporary files are named ``.faas-tmp-<random hex>`` in the target's folder; ``list`` hides them
#: and no key may have a segment that starts with this.
TMP_PREFIX = ".faas-tmp-"

_CONTROL = re.compile("[\x00-\x1f\x7f]").search
_O_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


# --------------------------------------------------------------------------------------------
# Keys: shared by every backend.

def _bad(what: str, key: object, why: str) -> ValueError:
    return ValueError(f"bad store {what} {key!r}: {why}; keys are relative, '/'-separated paths "
                      "like 'results/abc' with no empty, '.' or '..' segments")


def check_key(key: str) -> str:
    """Return ``key`` if it is a legal store key, else raise :class:`ValueError`.

    Legal: a non-empty relative path of non-empty segments joined by ``/``; no ``.`` or ``..``
    segment (nothing may escape the root, and every backend must map a key to one object), no
    control characters (NUL, tab, newline, ...),
    no segment starting with :data:`TMP_PREFIX`. Anything else (spaces, unicode, ``=``, ...) is fine.
    """
    if not isinstance(key, str):
        raise TypeError(f"store keys are str, not {type(key).__name__}: {key!r}")
    if not key:
        raise _bad("key", key, "it is empty")
    if key[0] == "/":
        raise _bad("key", key, "it starts with '/'")
    if key[-1] == "/" or "//" in key:
        raise _bad("key", key, "it has an empty segment")
    if _CONTROL(key):
        raise _bad("key", key, "it contains a control character (S3 cannot list those)")
    if "." in key:  # the common key has no dot: skip the split
        for seg in key.split("/"):
            if seg == ".." or seg == ".":
                raise _bad("key", key, f"it has a {seg!r} segment")
            if seg.startswith(TMP_PREFIX):
                raise _bad("key", key, f"segments starting with {TMP_PREFIX!r} are reserved")
    return key


def check_prefix(prefix: str) -> str:
    """Like :func:`check_key`, but ``""`` and a trailing ``/`` are allowed."""
    if not isinstance(prefix, str):
        raise TypeError(f"store prefixes are str, not {type(prefix).__name__}: {prefix!r}")
    if prefix:
        check_key(prefix[:-1] if prefix[-1] == "/" and len(prefix) > 1 else prefix)
    return prefix


# --------------------------------------------------------------------------------------------
# Renaming into place.
#
# os.replace() over an existing file on ext4 (the default mount option auto_da_alloc) makes the
# kernel allocate and start writing back the new file's blocks before the rename returns, which
# costs ~100 us per overwrite and real disk I/O. Linux's renameat2() lets us avoid that without
# losing atomicity: RENAME_NOREPLACE for a new key (the common case: one result per task id),
# and for an existing key RENAME_EXCHANGE (swap the temp file and the target in one step; a
# reader sees the old file or the new one) followed by unlinking the temp name, which now holds
# the old bytes. Where renameat2 or its flags are missing (other OSes, NFS, some FUSE mounts) we
# fall back to os.replace(), which is atomic everywhere.

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


def _file_url(url: str) -> str:
    """The root folder named by ``url``: ``file:///abs``, ``file://localhost/abs``, ``/abs``, ``~/x``."""
    if not isinstance(url, (str, os.PathLike)):
        raise ConfigError(f"file store URL must be a string, not {type(url).__name__}")
    url = os.fspath(url)
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"file store URL {url!r}: host {parts.netloc!r} is not allowed; write "
                "file:///absolute/path (three slashes)")
        path = parts.path
    else:
        path = os.path.expanduser(url)
    if not path or not os.path.isabs(path):
        raise ConfigError(
            f"file store URL {url!r}: the path must be absolute (file:///abs/path or /abs/path); "
            "a relative path would mean different folders to the client and the workers")
    path = os.path.normpath(path)
    return path if path == "/" else path.rstrip("/")


class _Descriptors:
    """Folder descriptors one thread keeps (a few: a worker writes to its clients' folders), closed
    when dropped (the thread ended, the store was closed)."""

    LIMIT = 32

    def __init__(self) -> None:
        self.fds: dict[tuple, int] = {}

    def get(self, key: tuple) -> int | None:
        return self.fds.get(key)

    def put(self, key: tuple, fd: int) -> int:
        old = self.fds.pop(key, None)
        if old is not None:
            os.close(old)
        if len(self.fds) >= self.LIMIT:
            self.close()
        self.fds[key] = fd
        return fd

    def close(self, _close=os.close) -> None:   # (bound now: __del__ may run at interpreter exit)
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            try:
                _close(fd)
            except OSError:
                pass

    def __del__(self) -> None:
        self.close()


class FileStore(Store):
    """Objects as files under one folder. Thread-safe and safe across processes sharing the folder.

    Others may write into a shared store's folders, so every key is walked from the root one
    folder at a time without following symbolic links (:mod:`faas.safe_open`), only regular files
    are read (a FIFO never blocks a reader), and a link or FIFO planted at a key is replaced, never
    written through. Objects are private (files 600, folders 700) except under
    ``public_prefixes`` (644/755): records every user of a site must read (endpoint records).
    """

    def __init__(self, url: str, public_prefixes: tuple[str, ...] = ("endpoints/",)):
        self.root = _file_url(url)
        self.url = "file://" + self.root
        self._base = self.root if self.root.endswith("/") else self.root + "/"
        self._use_renameat2 = _renameat2 is not None
        self._written = threading.local()   # per thread: folders written into lately (see _write_folder)
        self.public_prefixes = tuple(public_prefixes)
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ConfigError(f"file store {self.url}: {self.root} exists and is not a folder")

    # -- helpers -------------------------------------------------------------------------------

    def _error(self, action: str, path: str, exc: OSError) -> StoreError:
        cause = exc.strerror or str(exc)
        if isinstance(exc, safe_open.NotRegular):
            hint = ("someone put a link, FIFO or device where an object belongs; it was not "
                    "followed or read (see docs/security.md)")
        elif exc.errno == errno.ENOSPC:
            hint = "free space on that file system or move the store (FAAS_HOME or the store URL)"
        elif exc.errno == errno.EDQUOT:
            hint = "you are over your disk quota; free space or move the store"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "check the folder's owner and permissions, or move the store"
        elif exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
            hint = "a key cannot be both an object and a folder of other keys"
        else:
            hint = "check the file system"
        err = StoreError(f"file store {self.url}: cannot {action} {path}: {cause} "
                         f"[errno {exc.errno}]; {hint}")
        err.errno = exc.errno
        return err

    def _public(self, key: str) -> bool:
        return any(key.startswith(p) for p in self.public_prefixes)

    def _folder(self, folders: list[str], create: bool, public: bool = False) -> int:
        """A descriptor of the key's folder, walked without following links."""
        try:
            return safe_open.open_dir(self.root, folders, create, 0o755 if public else 0o700)
        except FileNotFoundError:
            if not create or os.path.isdir(self.root):
                raise
        os.makedirs(self.root, mode=0o755 if public else 0o700, exist_ok=True)   # a new store
        return safe_open.open_dir(self.root, folders, create, 0o755 if public else 0o700)

    def _write_folder(self, folders: list[str], public: bool, fresh: bool = False) -> int:
        """A descriptor of the folder a put writes into, kept for this thread's next put there
        (a worker writes every result of a client into one folder: the safe walk from the root
        is 5-8 system calls, the put itself 4). A kept descriptor stays the folder it was opened
        as, checked as :meth:`_folder` checks it, wherever it is moved; one removed meanwhile is
        opened afresh (``fresh``). Per thread, so no other thread closes one in use."""
        kept = getattr(self._written, "dirs", None)
        if kept is None:
            kept = self._written.dirs = _Descriptors()
        key = (*folders, public)
        fd = None if fresh else kept.get(key)
        if fd is None:
            fd = kept.put(key, self._folder(folders, create=True, public=public))
        return fd

    def _rename_into_place(self, dfd: int, tmp: str, name: str) -> None:
        if self._use_renameat2:
            btmp, bname = os.fsencode(tmp), os.fsencode(name)
            for _ in range(8):  # only loops while other processes race to create/delete the key
                if _renameat2(dfd, btmp, dfd, bname, _RENAME_NOREPLACE) == 0:
                    return
                err = ctypes.get_errno()
                if err != errno.EEXIST:
                    break
                try:
                    if stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
                except FileNotFoundError:
                    continue  # deleted meanwhile: try NOREPLACE again
                # Whatever is there (an older object, or a link someone planted) is swapped
                # out by name and unlinked: never opened, never followed.
                if _renameat2(dfd, btmp, dfd, bname, _RENAME_EXCHANGE) == 0:
                    try:
                        os.unlink(tmp, dir_fd=dfd)  # the old entry, now under the temp name
                    except IsADirectoryError:
                        # A folder appeared at the key between lstat and exchange: swap back.
                        _renameat2(dfd, btmp, dfd, bname, _RENAME_EXCHANGE)
                        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name) from None
                    except FileNotFoundError:
                        pass
                    return
                err = ctypes.get_errno()
                if err != errno.ENOENT:
                    break
            if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
                self._use_renameat2 = False  # this file system cannot: use plain rename from now on
            elif err not in (errno.EEXIST, errno.ENOENT):
                raise OSError(err, os.strerror(err), name)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)

    # -- the Store interface ------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return self._base + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        *folders, name = key.split("/")
        public = self._public(key)
        try:
            dfd = self._write_folder(folders, public)
        except OSError as exc:
            raise self._error("create the folder of", path, exc) from exc
        # The random name makes concurrent writers (threads, processes, hosts) never share a temp.
        tmp = f"{TMP_PREFIX}{random_ids.token_hex(8)}"
        mode = 0o644 if public else 0o600
        try:
            try:
                fd = os.open(tmp, _O_CREATE, mode, dir_fd=dfd)
            except FileNotFoundError:   # the kept folder was removed: walk to it again
                dfd = self._write_folder(folders, public, fresh=True)
                fd = os.open(tmp, _O_CREATE, mode, dir_fd=dfd)
        except OSError as exc:
            raise self._error("create a file in", path.rpartition("/")[0], exc) from exc
        try:
            try:
                view = memoryview(data)
                size = view.nbytes
                n = os.write(fd, view) if size else 0
                if n < size:  # short write: keep going (os.write raises on ENOSPC and friends)
                    view = view.cast("B")
                    while n < size:
                        n += os.write(fd, view[n:])
            finally:
                os.close(fd)
            self._rename_into_place(dfd, tmp, name)
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            if isinstance(exc, OSError) and not isinstance(exc, StoreError):
                raise self._error("write", path, exc) from exc
            raise

    def claim(self, prefix: str) -> None:
        check_prefix(prefix)
        folders = [p for p in prefix.split("/") if p]
        try:
            os.close(self._folder(folders, create=True, public=self._public(prefix)))
        except OSError as exc:
            raise self._error("claim the folder", self._base + prefix, exc) from exc

    def get(self, key: str) -> bytes:
        return self._read(key, None)[0]

    def get_head(self, key: str, nbytes: int) -> bytes:
        return self._read(key, nbytes)[0]

    def get_with_writer(self, key: str, nbytes: int) -> tuple[bytes, int | None]:
        return self._read(key, nbytes)

    def owner_uid(self) -> int | None:
        try:
            return os.stat(self.root).st_uid
        except OSError:
            return None

    def _read(self, key: str, limit: int | None) -> tuple[bytes, int]:
        path = self._path(key)
        *folders, name = key.split("/")
        try:
            dfd = self._folder(folders, create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as exc:
            raise self._error("read", path, exc) from exc
        try:
            fd, st = safe_open.open_regular(dfd, name)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as exc:
            raise self._error("read", path, exc) from exc
        finally:
            os.close(dfd)
        try:
            return safe_open.read_fd(fd, st.st_size, limit), st.st_uid
        except OSError as exc:
            raise self._error("read", path, exc) from exc
        finally:
            os.close(fd)

    def exists(self, key: str) -> bool:
        path = self._path(key)
        *folders, name = key.split("/")
        try:
            dfd = self._folder(folders, create=False)
        except (FileNotFoundError, NotADirectoryError, safe_open.NotRegular):
            return False
        except OSError as exc:
            raise self._error("stat", path, exc) from exc
        try:
            return stat.S_ISREG(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._error("stat", path, exc) from exc
        finally:
            os.close(dfd)

    def delete(self, key: str) -> None:
        path = self._path(key)
        *folders, name = key.split("/")
        try:
            dfd = self._folder(folders, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise self._error("delete", path, exc) from exc
        try:
            os.unlink(name, dir_fd=dfd)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass  # no object at this key (perhaps a folder of other keys): nothing to do
        except OSError as exc:
            raise self._error("delete", path, exc) from exc
        finally:
            os.close(dfd)

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        # Walk only the folder part of the prefix; its last part filters names at the top.
        folder, _, name_prefix = prefix.rpartition("/")
        return self._walk(folder.split("/") if folder else [], name_prefix)

    def _walk(self, folders: _Folders, name_prefix: str) -> Iterator[str]:
        """Keys of regular files below ``folders``, never through a link. A folder below them that
        this account may not list is passed over: in a shared store (a multi-user endpoint's
        ``endpoints/``, 1777) any account may make one, and it must not stop every listing."""
        stack = [(folders, name_prefix)]
        while stack:
            parts, name_prefix = stack.pop()
            rel = "/".join(parts) + "/" if parts else ""
            try:
                dfd = safe_open.open_dir(self.root, parts, listable=True)
            except (FileNotFoundError, NotADirectoryError, safe_open.NotRegular):
                continue  # nothing there (or it vanished while we walked, or is a link)
            except PermissionError as exc:
                if parts is folders:
                    raise self._error("list", self._base + rel, exc) from exc
                log.debug("listing %s: passed over %s (%s)", self._base, rel, exc.strerror)
                continue
            except OSError as exc:
                raise self._error("list", self._base + rel, exc) from exc
            try:
                with os.scandir(dfd) as it:
                    entries = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                               for e in it if not (name_prefix and not e.name.startswith(name_prefix))
                               and not e.name.startswith(TMP_PREFIX)]
            except OSError as exc:
                raise self._error("list", self._base + rel, exc) from exc
            finally:
                os.close(dfd)
            for name, is_dir, is_file in entries:
                if is_dir:
                    stack.append((parts + [name], ""))
                elif is_file:
                    yield rel + name

    def __reduce__(self) -> tuple:
        return (type(self), (self.url, self.public_prefixes))
