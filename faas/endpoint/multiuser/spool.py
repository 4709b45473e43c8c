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
    """As root: the spool (1733) and the shared store prefixes (:data:`SHARED_PREFIXES`), made or fixed."""
    spool = spool_dir(store_url, endpoint)   # raises unless the store is a file:// one
    root = store_root(store_url)
    assert root is not None   # spool_dir checked it
    for d, mode in [(root, 0o755), (root / "spool", 0o755), (spool, 0o1733)] + \
            [(root / p, m) for p, m in SHARED_PREFIXES.items()]:
        d.mkdir(parents=True, exist_ok=True)
        st = d.lstat()
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{d}: expected a directory")
        if st.st_uid != 0:   # a folder someone else made would be theirs to list and empty
            os.chown(d, 0, 0)
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(d, mode)
    return spool


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
    path: str
    uid: int | None        # the owner of the file: the sender
    body: str | None
    problem: str | None    # why the file cannot be trusted (then uid may be None)
    mtime: float = 0.0


def scan(spool: Path, limit: int = 500) -> list[SpoolEntry]:
    """As root: the oldest complete messages in the spool, each with its writer's uid."""
    names = []
    try:
        with os.scandir(spool) as it:
            for e in it:
                if not e.name.startswith("."):
                    names.append(e.name)
                elif e.name.startswith(".tmp-"):
                    _reap_tmp(e)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        out.append(read_entry(os.path.join(spool, name)))
    out.sort(key=lambda e: e.mtime)
    return out[:limit]


def _reap_tmp(entry: os.DirEntry) -> None:
    """A temporary file a killed client left behind for an hour: remove it."""
    try:
        if time.time() - entry.stat(follow_symlinks=False).st_mtime > 3600:
            os.unlink(entry.path)
    except OSError:
        pass


def read_entry(path: str) -> SpoolEntry:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return SpoolEntry(path, None, None, "a symbolic link, not a message file")
        return SpoolEntry(path, None, None, f"cannot open: {e.strerror}")
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
