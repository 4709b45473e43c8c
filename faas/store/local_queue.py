"""The embedded queue: SQS's semantics in one SQLite file, with a doorbell instead of polling.

Layout of ``local:///DIR/NAME`` (NAME matches ``[A-Za-z0-9_-]{1,80}``):

- ``DIR/NAME.sqlite3``: tables ``meta`` (max_receives, visibility_timeout), ``messages`` and
  ``dead_letters``. WAL with ``synchronous=NORMAL``: a committed send survives kill -9 of any
  process (only a power cut can lose the last commits), and nothing is fsync'd per message.
  Dead letters live in the same file so moving one is a single atomic transaction.
  Opened only as a regular file with one name, never through a link at its name (SQLite would
  follow one, and make the file it names), and made (mode 600) only in a folder of this
  account's or root's; in another account's folder only a queue of that account's is opened
  (a runner's shared doorbell), and in any folder others may write into (/tmp, /dev/shm, a
  1777 one) only a file of this account's, root's or the folder owner's (anyone could have
  planted it first), its ``-wal`` and ``-shm`` likewise when the queue is this account's and
  private (mode 600).
  Anything else there: a QueueError naming the path (and the owner).
- ``DIR/NAME.sqlite3-lock``: every write transaction holds ``flock`` on it first, so writers
  from several processes (a pool, its workers, clients) wait for each other in steps of at most
  0.5 ms; SQLite's own busy handler, which they would otherwise meet, sleeps 1, 2, 5... ms
  between tries (measured: a pool lost 0.7 s in 18,000 tasks to it). Held past SQLite's own
  busy timeout (a writer stopped mid-transaction), it is passed over and SQLite decides.
  Mode 600, used only when it is a regular file of the writer's own user (no other account can
  hold it); otherwise SQLite's own locking is all, as it is for the other accounts.
- ``DIR/NAME.waiters/<token>``: one marker per instance that has waited in ``receive``; the
  instance listens on the abstract AF_UNIX datagram socket ``\\0faas-<token>`` (the marker holds
  that name too). ``send`` and ``change_visibility(timeout=0)`` ring every marker after commit,
  so a blocked receive wakes at once without polling. Markers of dead processes are removed by
  the next ring (ECONNREFUSED). Abstract sockets are per network namespace: a waiter in another
  namespace (container) sharing DIR still gets its messages, but only at its next deadline.
  The folder counts only if it is this account's own (in a folder others may write into,
  someone else may have made it first: then the receiver looks every POLL_WITHOUT_BELL), and a
  ring only if the kernel names this account (or root) as its sender (SO_PASSCRED).

The dead-letter queue is ``local:///DIR/NAME-dlq``: a view over the ``dead_letters`` table of
``NAME.sqlite3`` (``open`` resolves it when no ``NAME-dlq.sqlite3`` file exists). It has no
dead-letter queue of its own, and its ``destroy()`` only empties it.

Order is FIFO by the time a message became visible (send time, or the end of its last
invisibility), then by arrival. Only the latest receipt of a message can delete or change it;
older receipts are ignored. ``max_message_bytes`` is 1 MiB: the client spills bigger payloads
to the store.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import re
import select
import shutil
import socket
import sqlite3
import stat
import struct
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit

from .. import accounts, random_ids
from ..exceptions import ConfigError, QueueDoesNotExist, QueueError
from .queue_base import Message, Queue

_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_TOKEN = re.compile(r"[0-9a-f]{32}")
_ABSTRACT = sys.platform.startswith("linux")   # abstract AF_UNIX names: no path, gone on death
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {t} (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, body TEXT NOT NULL, sent_at REAL NOT NULL,
    visible_at REAL NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT);
CREATE INDEX IF NOT EXISTS {t}_visible ON {t}(visible_at);
"""
_MAIN, _DEAD = "messages", "dead_letters"
POLL_WITHOUT_BELL = 0.1   # seconds between looks of a receiver nobody (else: only strangers) can ring
log = logging.getLogger("faas.local_queue")


def _parse(url: str) -> tuple[str, str]:
    """``local:///DIR/NAME`` -> (DIR, NAME); a ConfigError that shows the expected form otherwise."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    directory, name = os.path.split(path)
    if parts.scheme != "local" or parts.netloc or not path.startswith("/") or not _NAME.fullmatch(name):
        raise ConfigError(f"queue URL {url!r}: expected local:///ABSOLUTE/DIR/NAME with NAME "
                          "of 1-80 letters, digits, '-' or '_'")
    return directory, name


_O_PATH = getattr(os, "O_PATH", 0)


def _folder(path: str, create: bool = False, listed: bool = True) -> int:
    """A descriptor of the folder ``path``, never through a link at its name (made mode 700 when
    missing and ``create``); OSError if there is none. Not ``listed``: an O_PATH descriptor
    (Linux), for fstat and the ``*at`` calls only, which needs no read permission on the folder
    (a drop box, mode 1733, others may send into but not list)."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    mode = os.O_RDONLY if listed or not _O_PATH else _O_PATH
    return os.open(path, mode | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _queue_file(path: str, create: bool) -> os.stat_result:
    """Check (``create``: make, mode 600) the queue's database ``path`` before SQLite opens it.

    It must be a regular file with one name: a link (SQLite would follow it, and make the file it
    names) or anything else planted there is refused, never followed, never created through. A
    queue is made only in a folder of this account's or root's: in another account's, that
    account could swap or read it; there only a queue that account made itself (the shared
    doorbell of a runner run by a service account) is opened. In a folder others may write
    into (mode & 022, sticky or not: /tmp, /dev/shm) an existing file counts only if it is this
    account's, root's or the folder owner's: anyone else's was planted there to be written to.
    """
    directory, name = os.path.split(path)
    if create:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        dfd = _folder(directory, listed=False)
    except FileNotFoundError:
        raise QueueDoesNotExist(f"local queue {path}: no folder {directory}") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise QueueError(f"local queue {path}: its folder {directory} is a symbolic link (or "
                             "not a folder): refused, not followed") from None
        raise QueueError(f"local queue {path}: its folder {directory} cannot be opened "
                         f"({e.strerror})") from None
    try:
        folder = os.fstat(dfd)
        foreign = folder.st_uid not in (os.geteuid(), 0)
        # in a folder others may write into (/tmp, /dev/shm, a shared 1777 one), anyone could
        # have planted the file first: only ours, root's or the folder owner's counts
        shared = foreign or bool(folder.st_mode & 0o022)
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                raise QueueDoesNotExist(f"local queue {path} is missing") from None
            if foreign:
                raise QueueError(f"will not make the queue {path}: its folder {directory} belongs "
                                 f"to {accounts.user(folder.st_uid)}, who could swap or read it; use a "
                                 "folder of your own (or root's)") from None
            try:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600, dir_fd=dfd))
            except FileExistsError:
                pass   # made meanwhile (another process, or a link planted): looked at below
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise QueueError(f"local queue {path} is a symbolic link (planted?): refused, not "
                             "followed; remove it")
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise QueueError(f"local queue {path} is not a regular file with one name (a FIFO, "
                             "a folder, a hard link?): refused; remove it")
        trusted = (os.geteuid(), 0, folder.st_uid)
        if shared and st.st_uid not in trusted:
            raise QueueError(f"local queue {path} belongs to {accounts.user(st.st_uid)}, in {directory} "
                             f"(of {accounts.user(folder.st_uid)}), which others may write into "
                             "(planted?): refused; remove it, or use a folder of your own")
        if shared:
            # SQLite opens NAME.sqlite3-wal and -shm itself, following links: a planted one
            # would get (or feed) what is written to the queue
            for extra in ("-wal", "-shm"):
                try:
                    xt = os.stat(name + extra, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(xt.st_mode):
                    raise QueueError(f"local queue {path}{extra} is not a regular file (a link, "
                                     "a FIFO?): refused, not followed; remove it")
                # (a queue of ours others may open, mode 666, is shared on purpose: their
                # SQLite may make these files; ours, private, only we can have made them)
                if st.st_uid == os.geteuid() and not st.st_mode & 0o077 \
                        and xt.st_uid not in trusted:
                    raise QueueError(f"local queue {path}{extra} belongs to {accounts.user(xt.st_uid)}, "
                                     "in a folder others may write into (planted?): refused; "
                                     "remove it")
        return st
    finally:
        os.close(dfd)


LOCK_PATIENCE = 120.0   # seconds a call waits on another writer's lock (SQLite's busy timeout)


def _connect(path: str, create: bool = False) -> sqlite3.Connection:
    """Autocommit connection (we BEGIN IMMEDIATE ourselves); one per instance, guarded by a lock.
    SQLite never makes the file (``_queue_file`` does, after its checks), and the file SQLite
    opened must be the one checked (not a link put in its place meanwhile)."""
    checked = _queue_file(path, create)
    db = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True,
                         isolation_level=None, check_same_thread=False, timeout=LOCK_PATIENCE)
    try:
        opened = next(row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main")
        st = os.stat(opened)
        if (st.st_dev, st.st_ino) != (checked.st_dev, checked.st_ino):
            raise QueueError(f"local queue {path} was replaced while it was opened (by a link to "
                             f"{opened}?): refused")
        if create:
            db.execute("PRAGMA journal_mode=WAL")     # persistent in the file
        db.execute("PRAGMA synchronous=NORMAL")       # per connection: no fsync per commit in WAL
    except BaseException:
        db.close()
        raise
    return db


def _flock(fd: int, patience: float = LOCK_PATIENCE) -> bool:
    """Take the writers' lock; False if it stays held past ``patience`` (SQLite's own busy
    timeout), so a writer stopped mid-transaction (SIGSTOP) makes the others fail as SQLite
    would make them, never hang. Polled in 20-500 us steps: SQLite's busy handler sleeps whole
    milliseconds (1, 2, 5, 10...), which is what this lock is there to avoid."""
    deadline, delay = None, 20e-6
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            now = time.monotonic()
            if deadline is None:
                deadline = now + patience
            elif now > deadline:
                return False
        time.sleep(delay)
        delay = min(delay * 2, 500e-6)


# --- the doorbell -----------------------------------------------------------------------------
_bell = None            # one unbound non-blocking datagram socket per process, for ringing


def _address(entry: os.DirEntry, folder_fd: int) -> bytes:
    if _ABSTRACT:
        return b"\0faas-" + entry.name.encode()
    # elsewhere the marker holds a socket file's path
    fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
    with os.fdopen(fd, "rb") as f:
        return f.read(4096)


def _own_folder(path: str, create: bool = False) -> int | None:
    """A descriptor of the waiters folder ``path`` if it is this account's own (not a link, not
    writable by others: no other account can plant a marker, a link or a FIFO in it), else None.
    In a queue folder others may write into, someone else may have made it first."""
    try:
        fd = _folder(path, create)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        os.close(fd)
        return None
    return fd


def _ring(folder: str) -> None:
    """Wake every waiter registered in ``folder``; forget the ones whose process is gone. Only a
    folder of this account's own: its waiters are this account's processes (another account's
    folder is mode 700 anyway). Never raises: a send has committed before it rings."""
    global _bell
    fd = _own_folder(folder)
    if fd is None:
        return
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if not _TOKEN.fullmatch(entry.name):
                    continue
                if _bell is None:
                    _bell = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    _bell.setblocking(False)
                try:
                    _bell.sendto(b"!", _address(entry, fd))
                except (ConnectionRefusedError, FileNotFoundError):
                    try:                        # nobody listens: that waiter died
                        os.unlink(entry.name, dir_fd=fd)
                    except FileNotFoundError:
                        pass
                except OSError:                 # EAGAIN: its buffer is full, it is awake anyway
                    pass
    except OSError:
        pass
    finally:
        os.close(fd)


_CREDS = hasattr(socket, "SO_PASSCRED") and hasattr(socket, "SCM_CREDENTIALS")
_CMSG_SPACE = socket.CMSG_SPACE(struct.calcsize("iII")) if _CREDS else 0


def _from_us(ancillary: list) -> bool:
    """Whether a datagram's credentials (pid, uid, gid, checked by the kernel) are this account's or root's."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
            uid = struct.unpack("iII", data[:12])[1]
            return uid in (os.geteuid(), 0)
    return False


def _hang_up(pid: int, sock: socket.socket, marker: str, path: str | None) -> None:
    """Finalizer: drop the marker (only in the process that made it) and close the socket."""
    sock.close()
    if os.getpid() == pid:
        for p in (marker, path):
            try:
                if p:
                    os.unlink(p)
            except OSError:
                pass


_instances: weakref.WeakSet[LocalQueue] = weakref.WeakSet()
_inherited: list = []   # a forked child never closes its parent's SQLite handles (sqlite.org/howtocorrupt)


def _after_fork() -> None:
    for q in list(_instances):
        q._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class LocalQueue(Queue):
    """An embedded queue in ``DIR/NAME.sqlite3``; safe across threads and processes."""

    max_message_bytes = 1 << 20
    max_batch = 500          # no per-request limit here; this bounds one transaction

    def __init__(self, url: str):
        """Open an existing queue (``create`` makes one); raise QueueDoesNotExist if missing."""
        directory, name = _parse(url)
        self.url, self.name = f"local://{quote(os.path.join(directory, name))}", name
        self._path = os.path.join(directory, name + ".sqlite3")
        self._table = _MAIN
        if not os.path.exists(self._path) and name.endswith("-dlq") and \
                os.path.exists(os.path.join(directory, name[:-4] + ".sqlite3")):
            self._path, self._table = os.path.join(directory, name[:-4] + ".sqlite3"), _DEAD
        self._waiters = os.path.join(directory, name + ".waiters")
        self._dlq_waiters = os.path.join(directory, name + "-dlq.waiters")
        self._patience = LOCK_PATIENCE
        self._init_process_state()
        try:
            meta = dict(self._conn().execute("SELECT key, value FROM meta"))
        except (sqlite3.Error, QueueDoesNotExist) as e:
            self.close()
            raise QueueDoesNotExist(f"queue {self.url!r} does not exist ({self._path} is missing "
                                    "or not a queue); create it with create_queue()") from e
        except QueueError:
            self.close()
            raise
        self.visibility_timeout = float(meta["visibility_timeout"])
        self.max_receives: int | None = int(meta["max_receives"]) if self._table == _MAIN else None
        _instances.add(self)

    def _init_process_state(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()        # one connection, many threads
        self._flock: int | None = None          # fd of NAME.sqlite3-lock (-1: cannot be had)
        self._recv_lock = threading.Lock()      # one receive at a time per instance
        self._sock: socket.socket | None = None
        self._poll: select.poll | None = None
        self._marker: str | None = None
        self._sock_path: str | None = None
        self._address = b""
        self._ringable: bool | None = None      # our marker is in our own waiters folder (False: cannot be)
        self._registered_in: tuple[int, int] | None = None   # that folder's (device, inode)
        self._finalizer: weakref.finalize | None = None
        self._closing = False

    def _forked(self) -> None:
        """In a forked child: never touch the parent's connection, socket or marker."""
        if self._finalizer is not None:
            self._finalizer.detach()
            if self._sock is not None:
                self._sock.close()
        _inherited.append(self._db)
        if self._flock is not None and self._flock >= 0:
            # the child opens its own: this copy shares the parent's lock (closing it frees nothing
            # the parent holds; a flock ends only with the last copy or the holder's LOCK_UN)
            os.close(self._flock)
        self._init_process_state()

    @classmethod
    def open(cls, url: str) -> LocalQueue:
        return cls(url)

    @classmethod
    def create(cls, url: str, max_receives: int = 5, visibility_timeout: float = 60.0,
               dead_letter: bool = True) -> LocalQueue:
        """Create the file and tables if missing (idempotent); the given settings replace the old.
        The dead-letter table costs nothing here, so ``dead_letter`` is accepted and ignored."""
        directory, name = _parse(url)
        if max_receives < 1 or visibility_timeout < 0:
            raise ConfigError("max_receives must be >= 1 and visibility_timeout >= 0")
        try:
            db = _connect(os.path.join(directory, name + ".sqlite3"), create=True)
        except sqlite3.Error as e:
            raise QueueError(f"cannot create queue {url!r}: {e}") from e
        try:
            db.execute("BEGIN IMMEDIATE")
            for t in (_MAIN, _DEAD):
                for stmt in _SCHEMA.format(t=t).split(";"):
                    if stmt.strip():
                        db.execute(stmt)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [("max_receives", int(max_receives)),
                            ("visibility_timeout", float(visibility_timeout))])
            db.execute("COMMIT")
        except sqlite3.Error as e:
            raise QueueError(f"cannot create queue {url!r}: {e}") from e
        finally:
            db.close()
        return cls(url)

    # --- plumbing ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = _connect(self._path)
            if self._patience != LOCK_PATIENCE:
                self._db.execute(f"PRAGMA busy_timeout = {int(self._patience * 1000)}")
        return self._db

    def wait_on_locks_at_most(self, seconds: float) -> None:
        """A queue other accounts may write (a flows runner's shared doorbell): any of them may
        hold SQLite's lock, and each call would wait SQLite's whole busy timeout (120 s) on it."""
        with self._db_lock:
            self._patience = seconds
            if self._db is not None:
                self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._db_lock:
            try:
                yield self._conn()
            except sqlite3.Error as e:
                raise QueueError(f"local queue {self.url!r}: {e}") from e

    def _lock_fd(self) -> int | None:
        """The writers' lock file, opened once per process (caller holds ``_db_lock``). Only a
        regular file of this process's own user counts (mode 600: no other account can open it,
        so none can hold it and stall this one; a link or a FIFO planted there is not
        followed, not waited on). Anything else: SQLite's own locking alone, as before."""
        if self._flock is None:
            fd = -1
            try:
                fd = os.open(self._path + "-lock", os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW
                             | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
                    os.close(fd)
                    fd = -1
            except OSError:
                if fd >= 0:
                    os.close(fd)
                fd = -1
            self._flock = fd
        return self._flock if self._flock >= 0 else None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: takes the write lock up front, so no deadlock on upgrade."""
        with self._read() as db:
            lock = self._lock_fd()
            if lock is not None and not _flock(lock, self._patience):
                lock = None   # held past SQLite's own patience (a stopped process?): SQLite decides
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if lock is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def _register(self) -> None:
        """Listen on our doorbell and (re)write our marker; called BEFORE looking at the queue."""
        if self._sock is None:
            token = uuid.uuid4().hex
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if _ABSTRACT:
                address = b"\0faas-" + token.encode()
            else:
                address = os.path.join(tempfile.gettempdir(), f"faas-{token[:16]}.sock").encode()
                self._sock_path = address.decode()
            sock.bind(address)
            sock.setblocking(False)
            if _CREDS:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._poll = select.poll()
            self._poll.register(sock, select.POLLIN)
            self._sock, self._address = sock, address
            self._marker = os.path.join(self._waiters, token)
            self._finalizer = weakref.finalize(self, _hang_up, os.getpid(), sock, self._marker,
                                               self._sock_path)
        marker = self._marker
        assert marker is not None   # set with the socket above
        if self._ringable and self._registered_in is not None:   # the common case: two stats
            try:
                st = os.stat(self._waiters, follow_symlinks=False)
                if (st.st_dev, st.st_ino) == self._registered_in and os.path.exists(marker):
                    return
            except OSError:
                pass
        # (again after destroy() or a wrong cleanup), in our own folder only: checked again
        # whenever the folder is not the one we checked (moved away, another put in its place)
        fd = _own_folder(self._waiters)
        if fd is None:
            fd = _own_folder(self._waiters, create=True)
        if fd is None:
            if self._ringable is not False:
                log.warning("local queue %s: its doorbell folder %s is not this account's own (made "
                            "by another account in a shared folder?); receiving by polling every "
                            "%.1f s instead", self.url, self._waiters, POLL_WITHOUT_BELL)
            self._ringable = False
            return
        try:
            mfd = os.open(os.path.basename(marker), os.O_WRONLY | os.O_CREAT | os.O_EXCL
                          | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
            with os.fdopen(mfd, "wb") as f:
                f.write(self._address)
        except FileExistsError:
            pass
        finally:
            st = os.fstat(fd)
            os.close(fd)
        self._registered_in = (st.st_dev, st.st_ino)
        self._ringable = True

    def _drain(self) -> tuple[bool, bool]:
        """Empty the doorbell: ``(it rang, it got rings that do not count or more than it
        reads at once)``. Where the kernel names each ring's sender (SO_PASSCRED), only this
        account's rings (or root's) count: anyone may send to an abstract socket (their names
        are listed in /proc/net/unix)."""
        assert self._sock is not None   # after _register
        rang = foreign = False
        try:
            for _ in range(64):   # bounded: a flood refills it as fast as it is read
                if _CREDS:
                    _, anc, _, _ = self._sock.recvmsg(64, _CMSG_SPACE)
                    if _from_us(anc):
                        rang = True
                    else:
                        foreign = True
                else:
                    self._sock.recv(64)
                    rang = True
            else:
                foreign = True   # more than a ring's worth: someone floods it
        except (BlockingIOError, InterruptedError):
            pass
        return rang, foreign

    def _parse_receipts(self, receipts: list[str]) -> list[tuple[int, str]]:
        try:
            return [(int(r.partition(".")[0]), r) for r in receipts]
        except (ValueError, AttributeError):
            raise QueueError(f"not a receipt of a local queue in {receipts!r}") from None

    # --- the interface ----------------------------------------------------------------------
    def send(self, bodies: list[str]) -> list[str]:
        """Insert all bodies in one transaction, then ring the waiters."""
        if isinstance(bodies, str):
            raise TypeError("send() takes a list of str bodies")
        limit = self.max_message_bytes
        for b in bodies:
            if not isinstance(b, str):
                raise TypeError(f"message bodies are str, not {type(b).__name__}")
            if len(b) > limit // 4 and len(b.encode()) > limit:
                raise QueueError(f"message body of {len(b.encode())} bytes exceeds this queue's "
                                 f"limit of {limit}; put large payloads in the store")
        if not bodies:
            return []
        now = time.time()
        ids = [str(random_ids.uuid4()) for _ in bodies]
        with self._write() as db:
            db.executemany(f"INSERT INTO {self._table} (id, body, sent_at, visible_at) "
                           "VALUES (?, ?, ?, ?)", [(i, b, now, now) for i, b in zip(ids, bodies, strict=True)])
        _ring(self._waiters)
        return ids

    def receive(self, max_messages: int = 10, wait: float = 0.0,
                visibility_timeout: float | None = None) -> list[Message]:
        """Take up to ``max_messages``; if none, sleep on the doorbell (no polling) up to ``wait``."""
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        vt = self.visibility_timeout if visibility_timeout is None else float(visibility_timeout)
        deadline = time.monotonic() + max(0.0, wait)
        with self._recv_lock:
            if wait > 0:
                self._register()
            while True:
                rang, foreign = self._drain() if self._sock is not None else (False, False)
                messages, next_visible = self._take(max_messages, vt, look_first=not rang)
                remaining = deadline - time.monotonic()
                if messages or remaining <= 0 or self._closing:
                    return messages
                if next_visible is not None:    # an invisible message comes back then: wake up
                    remaining = min(remaining, max(0.0, next_visible - time.time()))
                assert self._poll is not None   # wait > 0 here: _register made it
                if foreign and not rang:
                    # another account rings us (a flood would keep us taking the lock, or fill
                    # the bell so our own rings are lost): look on our own clock meanwhile
                    time.sleep(min(remaining, POLL_WITHOUT_BELL))
                    continue
                if not self._ringable:   # nobody can ring us: look again soon
                    remaining = min(remaining, POLL_WITHOUT_BELL)
                self._poll.poll(math.ceil(remaining * 1000))

    def _take(self, n: int, vt: float, look_first: bool = True) -> tuple[list[Message], float | None]:
        """Deliver (or dead-letter) visible messages; else return when the next one is due.

        ``look_first``: a cheap read first, so polling an empty queue never takes the write
        lock; skipped when the doorbell rang (a message was just sent: the read would only
        delay taking it).
        """
        if look_first:
            with self._read() as db:
                (first,) = db.execute(f"SELECT MIN(visible_at) FROM {self._table}").fetchone()
            if first is None or first > time.time():
                return [], first
        out: list[Message] = []
        dead: list[tuple[float, int]] = []
        t, limit = self._table, self.max_receives
        with self._write() as db:
            now = time.time()
            until = max(now + vt, math.nextafter(now, math.inf))    # never re-picked below
            while len(out) < n:
                rows = db.execute(f"SELECT seq, id, body, sent_at, receive_count FROM {t} "
                                  "WHERE visible_at <= ? ORDER BY visible_at, seq LIMIT ?",
                                  (now, n - len(out))).fetchall()
                if not rows:
                    break
                updates, moved = [], []
                tokens = random_ids.token_hex(8 * len(rows))
                for i, (seq, mid, body, sent_at, count) in enumerate(rows):
                    if limit is not None and count >= limit:
                        moved.append((now, seq))
                    else:
                        receipt = f"{seq}.{tokens[16 * i:16 * i + 16]}"
                        updates.append((receipt, until, seq))
                        out.append(Message(mid, body, receipt, count + 1, sent_at))
                db.executemany(f"UPDATE {t} SET receive_count = receive_count + 1, receipt = ?, "
                               "visible_at = ? WHERE seq = ?", updates)
                if moved:
                    db.executemany(f"INSERT INTO {_DEAD} (id, body, sent_at, visible_at, "
                                   "receive_count) SELECT id, body, sent_at, ?, receive_count "
                                   f"FROM {t} WHERE seq = ?", moved)
                    db.executemany(f"DELETE FROM {t} WHERE seq = ?", [(s,) for _, s in moved])
                    dead += moved
            if not out:
                (first,) = db.execute(f"SELECT MIN(visible_at) FROM {t}").fetchone()
        if dead:
            _ring(self._dlq_waiters)
        return out, (None if out else first)

    def delete(self, receipts: list[str]) -> None:
        """Delete by current receipt; a stale receipt (the message was received again) is ignored."""
        pairs = self._parse_receipts(receipts)
        if pairs:
            with self._write() as db:
                db.executemany(f"DELETE FROM {self._table} WHERE seq = ? AND receipt = ?", pairs)

    def change_visibility(self, receipts: list[str], timeout: float) -> None:
        """Heartbeat (``timeout`` > 0) or hand back (0: visible now, and the waiters are woken)."""
        pairs = self._parse_receipts(receipts)
        if not pairs:
            return
        until = time.time() + max(0.0, timeout)
        with self._write() as db:
            db.executemany(f"UPDATE {self._table} SET visible_at = ? WHERE seq = ? AND receipt = ?",
                           [(until, s, r) for s, r in pairs])
        if timeout <= 0:
            _ring(self._waiters)

    def depth(self) -> dict[str, int]:
        with self._read() as db:
            (visible,) = db.execute(f"SELECT COUNT(*) FROM {self._table} WHERE visible_at <= ?",
                                    (time.time(),)).fetchone()
            (total,) = db.execute(f"SELECT COUNT(*) FROM {self._table}").fetchone()
        return {"visible": visible, "in_flight": total - visible}

    def dead_letters(self) -> LocalQueue:
        """The ``dead_letters`` table of the same file, as a queue at ``local:///DIR/NAME-dlq``."""
        if self._table == _DEAD:
            raise QueueError(f"{self.url!r} is a dead-letter queue; it has none of its own")
        q = LocalQueue.__new__(LocalQueue)
        q.url, q.name, q._path, q._table = self.url + "-dlq", self.name + "-dlq", self._path, _DEAD
        q._waiters = q._dlq_waiters = self._dlq_waiters
        q.visibility_timeout, q.max_receives = self.visibility_timeout, None
        q._patience = self._patience
        q._init_process_state()
        _instances.add(q)
        return q

    def destroy(self) -> None:
        """Remove the file and the waiters folders (a dead-letter view is only emptied)."""
        if self._table == _DEAD:
            with self._write() as db:
                db.execute(f"DELETE FROM {_DEAD}")
            return
        self.close()
        for suffix in ("", "-wal", "-shm", "-lock"):
            try:
                os.unlink(self._path + suffix)
            except FileNotFoundError:
                pass
        shutil.rmtree(self._waiters, ignore_errors=True)
        shutil.rmtree(self._dlq_waiters, ignore_errors=True)

    def close(self) -> None:
        """Wake and wait out a blocked receive, then close the connection and hang up the bell."""
        self._closing = True
        if self._sock is not None:
            try:
                _bell_self = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                with _bell_self:
                    _bell_self.setblocking(False)
                    _bell_self.sendto(b"!", self._address)
            except OSError:
                pass
        with self._recv_lock, self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._flock is not None and self._flock >= 0:
                os.close(self._flock)
            self._flock = None
            if self._finalizer is not None:
                self._finalizer()
                self._finalizer = None
                self._sock = self._poll = None
            self._closing = False
