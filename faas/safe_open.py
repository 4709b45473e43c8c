"""Opening files under a folder others can write into, without being steered by them.

Whoever may create entries in a folder (a shared store, a user's home read by root) may put a
symbolic link, a FIFO or a folder where a file is expected. Every path here is walked one
component at a time from a trusted base with ``O_NOFOLLOW`` (a link anywhere on the way is
refused, not followed), files are opened ``O_NONBLOCK`` (a FIFO cannot hang the reader) and only
regular files are read, up to a bound.
"""
from __future__ import annotations

import errno
import os
import stat

# O_PATH: a folder we may enter but not list (mode 1733, a shared store's) still gives a
# descriptor to open, make and rename names in.
_DIR = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LISTABLE = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotRegular(OSError):
    """The path leads through a link, or ends at something that is not a regular file."""


_EUID = os.geteuid()


def open_dir(base: str, parts: list[str], create: bool = False, mode: int = 0o700,
             trust_uid: int | None = None if _EUID == 0 else _EUID, listable: bool = False) -> int:
    """A descriptor of ``base/parts...``, never through a symbolic link below ``base``; missing
    folders are made (``mode``) when ``create``. ``base`` itself is trusted (configured). Each
    folder below it must belong to root or ``trust_uid`` (this process's user; no check for
    root, which follows nothing and reads only regular files anyway). ``listable``: the last
    folder is opened for reading (``os.scandir``), not only for names in it."""
    fd = os.open(base, (_LISTABLE if listable and not parts else _DIR) & ~os.O_NOFOLLOW)
    try:
        for i, part in enumerate(parts):
            flags = _LISTABLE if listable and i == len(parts) - 1 else _DIR
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = os.open(part, flags, dir_fd=fd)
            except OSError as e:
                if e.errno == errno.ENOTDIR and not _is_link(part, fd):
                    raise   # an object, not a folder: the caller's "no such key"
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotRegular(e.errno, f"{part!r} is a symbolic link, not a folder",
                                     os.path.join(base, *parts)) from None
                raise
            os.close(fd)
            fd = nfd
            if trust_uid is not None:
                owner = os.fstat(fd).st_uid
                if owner not in (0, trust_uid):
                    raise NotRegular(errno.EPERM, f"folder {part!r} belongs to uid {owner}, who could "
                                     f"swap or plant what is in it", os.path.join(base, *parts))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_regular(dir_fd: int, name: str) -> tuple[int, os.stat_result]:
    """Open ``name`` in ``dir_fd`` for reading: only a regular file, without blocking or following."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegular(e.errno, f"{name!r} is a symbolic link", name) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        raise NotRegular(errno.EINVAL, f"{name!r} is not a regular file (a FIFO, device or socket?)", name)
    return fd, st


def read_fd(fd: int, size: int, limit: int | None = None) -> bytes:
    """Read a regular file whose fstat said ``size`` bytes, at most ``limit`` bytes. Store objects
    never change once in place (writers rename a new file over them), so one read usually does."""
    cap = size if limit is None else min(size, limit)
    data = os.read(fd, cap) if cap else b""
    if len(data) >= cap:
        return data
    chunks = [data]
    got = len(data)
    while limit is None or got < limit:
        chunk = os.read(fd, 1 << 20 if limit is None else min(1 << 20, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_beneath(base: str, rel: str, limit: int) -> bytes:
    """The first ``limit`` bytes of the regular file ``base/rel``, walked without following links."""
    *folders, name = rel.split("/")
    dfd = open_dir(base, folders)
    try:
        fd, st = open_regular(dfd, name)
    finally:
        os.close(dfd)
    try:
        return read_fd(fd, st.st_size, limit)
    finally:
        os.close(fd)


def replace_file(path: str | os.PathLike, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path``'s content all at once (readers see the old file or the new one, never
    half of one): written to a temporary name beside it, never through a link planted there
    (``O_NOFOLLOW``), then renamed over ``path``. ``mode`` for a new file (600 for one that
    names users or secrets); the umask may narrow it."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:   # a file left there (a crash, or someone else's) is never reused: its owner and mode stay
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
