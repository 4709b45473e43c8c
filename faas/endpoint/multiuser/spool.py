"""The file transport of a multi-user endpoint on a shared ``file://`` store: the identity of a
task is the kernel's record of who wrote its message.

The spool is ``<store>/spool/<ENDPOINT>``, owned by root, mode 1733: anyone may create a file
there, nobody but root may list it, and the sticky bit stops anyone from renaming or deleting
another user's file. A client writes each message to a private temporary file and renames it to
``<task id>.json`` (mode 600). The router opens each file without following links, and takes the
owner uid of the open file as the identity ``local:<name>``; a file that is not a regular file
of one link, or that others could write, is refused. Nothing inside the message names the sender.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ... import accounts
from ...exceptions import ConfigError, QueueError
from ...store.queue_base import Message, Queue

#: store prefixes users write into, made by the router: 1733 (anyone may create an entry, nobody
#: but root may list: task and function names stay private, so no one can plant a file at a
#: name they cannot see), except the endpoint records every client reads (1777, like /tmp)
SHARED_PREFIXES = {"functions": 0o1733, "args": 0o1733, "results": 0o1733, "cancels": 0o1733,
                   "running": 0o1733, "groups": 0o1733, "dead-letters": 0o1733, "journal": 0o1733, "endpoints": 0o1777}
MAX_MESSAGE_BYTES = 1 << 20


def store_root(store_url: str) -> Path | None:
    parts = urlsplit(store_url)
    if parts.scheme not in ("file", ""):
        return None
    return Path(unquote(parts.path))


def spool_dir(store_url: str, endpoint: str) -> Path:
    root = store_root(store_url)
    if root is None:
        raise ConfigError(f"store {store_url}: the spool transport needs a shared file:// store")
    return root / "spool" / endpoint


def prepare(store_url: str, endpoint: str) -> Path:
    """As root: the spool (1733) and the shared store prefixes (:data:`SHARED_PREFIXES`), made or
    fixed (:func:`open_prepared`); the spool's path."""
    os.close(open_prepared(store_url, endpoint))
    return spool_dir(store_url, endpoint)


def open_prepared(store_url: str, endpoint: str) -> int:
    """As root: check the folders above the store (:func:`check_parent`), make or fix the
    store's root (0755), ``spool/`` (0755), the spool (1733) and the shared prefixes, each
    opened without following links and changed through its descriptor; the spool's descriptor
    (O_DIRECTORY). Root works on the spool through it from then on (scandir, openat, renameat,
    unlinkat): renaming a folder of the path later cannot aim root at another folder."""
    spool = spool_dir(store_url, endpoint)   # raises unless the store is a file:// one
    root = store_root(store_url)
    assert root is not None   # spool_dir checked it
    parent_fd, name, real = _open_parent(root)
    try:
        root_fd = _open_folder(parent_fd, name, 0o755, real, take_over=False)
    finally:
        os.close(parent_fd)
    try:
        for prefix, mode in SHARED_PREFIXES.items():
            os.close(_open_folder(root_fd, prefix, mode, real / prefix))
        spools_fd = _open_folder(root_fd, "spool", 0o755, real / "spool")
        try:
            return _open_folder(spools_fd, spool.name, 0o1733, real / "spool" / spool.name)
        finally:
            os.close(spools_fd)
    finally:
        os.close(root_fd)


def _open_parent(root: Path) -> tuple[int, str, Path]:
    """The descriptor of the folder that holds the store's root (walked from ``/`` without
    following links, each folder checked by :func:`check_parent`, missing ones made 0755), the
    root's name in it, and the root's real path (links above it resolved once, here)."""
    _check_path_as_written(root)
    real = Path(os.path.realpath(root))
    if real == real.parent:
        raise ConfigError(f"{root}: the store cannot be the root folder /")
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    here = Path("/")
    try:
        check_parent(fd, here)
        for part in real.parent.parts[1:]:
            here = here / part
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            nfd = _open_dir_at(fd, part, here)
            os.close(fd)
            fd = nfd
            check_parent(fd, here)
    except BaseException:
        os.close(fd)
        raise
    return fd, real.name, real


def _check_path_as_written(root: Path) -> None:
    """The folders that hold each name of the store's path as configured (which clients and the
    store's own code follow) pass :func:`check_parent` too: a link on that path, in a folder a
    user may change (``/home/bob/link -> /srv/x``), would let that user aim it elsewhere later."""
    here = Path(os.path.abspath(root)).parent
    for folder in [*reversed(here.parents), here]:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:   # made by _open_parent, as root
            return
        except OSError as e:
            raise ConfigError(f"{folder}: a folder on the store's path {root} cannot be opened: "
                              f"{e.strerror}") from None
        try:
            check_parent(fd, folder)
        finally:
            os.close(fd)


def check_parent(fd: int, path: Path) -> None:
    """ConfigError unless the folder ``fd`` (``path``, above the store) can be changed by root
    (or this account) only: owned by one of them, and not writable by group or others unless
    sticky. Anyone else who could rename an entry in it could swap the store, or the spool, for
    a folder of their choosing, and aim root's moves and deletions there."""
    st = os.fstat(fd)
    if st.st_uid not in (0, os.geteuid()):
        raise ConfigError(f"{path}: a folder above the multi-user endpoint's store is owned by "
                          f"{accounts.user(st.st_uid)}, who could rename what is in it and swap the store for a "
                          f"folder of their choosing; put the store under folders owned by root "
                          f"(or `chown root {path}`)")
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002)) if st.st_mode & bit)
        raise ConfigError(f"{path}: a folder above the multi-user endpoint's store is writable by "
                          f"{who} (mode {stat.S_IMODE(st.st_mode):o}) "
                          f"without the sticky bit: its users could rename the store and swap it for a folder "
                          f"of their choosing; `chmod go-w {path}` (or `chmod +t {path}`), or put the store "
                          f"elsewhere")


def _open_folder(parent_fd: int, name: str, mode: int, path: Path, take_over: bool = True) -> int:
    """The folder ``name`` of ``parent_fd``, made if missing, opened without following links,
    owned by root and of ``mode`` (fixed through its descriptor, never by path). A folder of
    another account: taken over (a prefix someone made first would be theirs to list and empty),
    or, where ``take_over`` is False (the store's root), refused."""
    try:
        os.mkdir(name, mode, dir_fd=parent_fd)
    except FileExistsError:
        pass
    fd = _open_dir_at(parent_fd, name, path)
    try:
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()):
            if not take_over:
                raise ConfigError(f"{path}: the multi-user endpoint's store is owned by {accounts.user(st.st_uid)}, "
                                  f"not root; root does not take over another account's folder: use a new "
                                  f"folder, or `chown root:root {path}` if it is the site's")
            os.fchown(fd, 0, 0)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dir_at(parent_fd: int, name: str, path: Path) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ConfigError(f"{path}: expected a directory, found a symbolic link or a file; "
                              f"remove it (the multi-user endpoint makes the folder)") from None
        raise ConfigError(f"{path}: cannot open the folder: {e.strerror}") from None


class SpoolQueue(Queue):
    """The client's side: ``send`` writes each message as a file of its own (send-only)."""

    max_batch = 100

    def __init__(self, directory: str):
        self.dir = directory
        self.url = f"spool://{directory}"
        self.max_message_bytes = MAX_MESSAGE_BYTES

    @classmethod
    def open(cls, url: str) -> SpoolQueue:
        """``spool:///DIR`` (the URL a multi-user endpoint registers) -> its spool."""
        return cls(url[len("spool://"):])

    @classmethod
    def create(cls, url: str, max_receives: int = 5, visibility_timeout: float = 60.0,
               dead_letter: bool = True) -> SpoolQueue:
        raise QueueError(f"{url}: a spool is made by its multi-user endpoint, not by clients")

    def send(self, bodies: list[str]) -> list[str]:
        import json
        ids = []
        for body in bodies:
            try:
                name = json.loads(body)["id"]
            except (ValueError, KeyError, TypeError):
                name = secrets.token_hex(16)
            tmp = os.path.join(self.dir, f".tmp-{secrets.token_hex(8)}")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(body)
                os.rename(tmp, os.path.join(self.dir, f"{name}.json"))
            except OSError as e:
                raise QueueError(f"cannot write a task into the spool {self.dir}: {e.strerror} (is the "
                                 f"multi-user endpoint's store shared with this machine?)") from None
            ids.append(name)
        return ids

    def receive(self, max_messages: int = 10, wait: float = 0.0,
                visibility_timeout: float | None = None) -> list[Message]:
        raise QueueError("a spool is send-only for clients")

    def delete(self, receipts: list[str]) -> None:
        raise QueueError("a spool is send-only for clients")

    def change_visibility(self, receipts: list[str], timeout: float) -> None:
        raise QueueError("a spool is send-only for clients")

    def depth(self) -> dict[str, int]:
        return {"visible": 0, "in_flight": 0}   # clients cannot list the spool (mode 1733)

    def dead_letters(self) -> Queue:
        raise QueueError("a spool has no dead-letter queue")

    def destroy(self) -> None:
        pass


@dataclass
class SpoolEntry:
    path: str              # where it is, for messages
    uid: int | None        # the owner of the file: the sender
    body: str | None
    problem: str | None    # why the file cannot be trusted (then uid may be None)
    mtime: float = 0.0


def scan(spool: Path | int, limit: int = 500, where: Path | None = None) -> list[SpoolEntry]:
    """As root: complete messages in the spool, each with its writer's uid, at most ``limit``:
    the oldest of each writer in turn, so one writer's pile (however many, however old: a task
    over a limit waits here) never keeps another's messages out. ``spool``: the spool's
    descriptor (:func:`open_prepared`; ``where`` its path, for messages), or its path."""
    found: list[tuple[float, int, str]] = []   # (mtime, owner, name), from the entry (not read yet)
    where = where if where is not None else Path(str(spool))
    try:
        with os.scandir(spool) as it:
            for e in it:
                if not e.name.startswith("."):
                    try:
                        st = e.stat(follow_symlinks=False)
                        found.append((st.st_mtime, st.st_uid, e.name))
                    except OSError:   # gone meanwhile, or unreadable: read_entry says which
                        found.append((0.0, -1, e.name))
                elif e.name.startswith(".tmp-"):
                    _reap_tmp(e, spool if isinstance(spool, int) else None)
    except FileNotFoundError:
        return []
    out = []
    for name in _take_turns(found, limit):
        if isinstance(spool, int):
            out.append(read_entry(name, dir_fd=spool, where=where))
        else:
            out.append(read_entry(os.path.join(spool, name)))
    out.sort(key=lambda e: e.mtime)
    return out[:limit]


def _take_turns(found: list[tuple[float, int, str]], limit: int) -> list[str]:
    """Names, oldest first within each owner, owners taking turns (the owner of the oldest
    first), ``limit`` at most."""
    piles: dict[int, list[str]] = {}
    for _, uid, name in sorted(found):
        piles.setdefault(uid, []).append(name)
    queues = list(piles.values())
    out: list[str] = []
    for i in range(max(map(len, queues), default=0)):
        for pile in queues:
            if i < len(pile):
                out.append(pile[i])
                if len(out) >= limit:
                    return out
    return out


def _reap_tmp(entry: os.DirEntry, dir_fd: int | None) -> None:
    """A temporary file a killed client left behind for an hour: remove it."""
    try:
        if time.time() - entry.stat(follow_symlinks=False).st_mtime > 3600:
            os.unlink(entry.name if dir_fd is not None else entry.path, dir_fd=dir_fd)
    except OSError:
        pass


def read_entry(path: str, dir_fd: int | None = None, where: Path | None = None) -> SpoolEntry:
    """One message file: ``path`` (a name in ``dir_fd`` when given, ``where`` that folder's path
    for messages), opened without following links or blocking, checked, read bounded."""
    shown = str(where / path) if where is not None else path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return SpoolEntry(shown, None, None, "a symbolic link, not a message file")
        return SpoolEntry(shown, None, None, f"cannot open: {e.strerror}")
    path = shown
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return SpoolEntry(path, st.st_uid, None, "not a regular file", st.st_mtime)
        if st.st_nlink != 1:
            return SpoolEntry(path, st.st_uid, None, "a file with several hard links (someone else's "
                                                    "message linked in?)", st.st_mtime)
        if st.st_mode & 0o022:
            return SpoolEntry(path, st.st_uid, None, "writable by group or others (could be "
                                                    "changed by another user)", st.st_mtime)
        if st.st_size > MAX_MESSAGE_BYTES:
            return SpoolEntry(path, st.st_uid, None, f"larger than {MAX_MESSAGE_BYTES} bytes", st.st_mtime)
        with os.fdopen(fd, "rb", closefd=False) as f:
            body = f.read(MAX_MESSAGE_BYTES + 1).decode("utf-8", "replace")
        return SpoolEntry(path, st.st_uid, body, None, st.st_mtime)
    finally:
        os.close(fd)
