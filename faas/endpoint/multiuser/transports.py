"""Where the router takes tasks from, each with an identity its sender cannot choose.

- ``SpoolTransport`` (a shared ``file://`` store): the owner uid of the message file (spool.py).
- ``SignedQueueTransport`` (S3/SQS, or any queue): the message's HMAC signature must verify under
  a key the administrator registered for one identity (``user_signing_keys.json``:
  ``{"arn:aws:iam::123:user/alice": ["ID:SECRET"]}``); that identity is the sender's. A message
  that is unsigned, signed with an unknown key, altered or expired never runs.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import signing
from ...store import create_queue
from .. import outcomes
from . import files, spool
from .mapping import identity_of_uid

log = logging.getLogger("faas.multiuser.transports")
RESCAN = 0.25            # seconds between looks at the spool when inotify has said nothing
POLL_NO_INOTIFY = 0.02   # without inotify: an empty spool costs one getdents a look


@dataclass
class Incoming:
    body: str | None
    identity: str
    problem: str | None          # why the message cannot be trusted at all (then: set aside)
    label: str                   # the task id it claims, for the audit log
    notify_uid: int | None       # the local account that wrote it, when the transport knows one
    ack: Callable[[], None]      # it is handled: remove it from the transport
    aside: Callable[[str], None]  # keep it out of the way, for inspection


class SpoolTransport:
    """The spool, held open: every look, open, move and removal is made relative to the
    descriptor taken at start (spool.open_prepared), never by re-resolving its path, so that
    no rename of a folder above it can aim root's moves and deletions at another folder."""

    def __init__(self, store_url: str, name: str, endpoint_dir: Path):
        self.fd = spool.open_prepared(store_url, name)
        self.dir = spool.spool_dir(store_url, name)
        self.refused_fd = _private_folder(endpoint_dir / "refused")
        self.address = f"spool://{self.dir}"
        # an inotify_simple.INotify (untyped), made on first wait: None = not tried, False = unavailable
        self._inotify: Any = None

    def take(self) -> list[Incoming]:
        out = []
        for e in spool.scan(self.fd, where=self.dir):
            name = os.path.basename(e.path)
            identity = identity_of_uid(e.uid) if e.uid is not None else "unknown"
            out.append(Incoming(e.body, identity, e.problem, name.removesuffix(".json"),
                                e.uid, ack=functools.partial(self._unlink, name),
                                aside=functools.partial(self._aside, name)))
        return out

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def _aside(self, name: str, why: str) -> None:
        """The file itself, moved to refused/ (the router logs ``why``); removed where it
        cannot be moved (another filesystem)."""
        try:
            os.rename(name, name, src_dir_fd=self.fd, dst_dir_fd=self.refused_fd)
        except OSError:
            self._unlink(name)

    def wait(self, stop) -> None:
        """Until a message may have arrived: inotify wakes us at once for files renamed into the
        spool on this host; a look every RESCAN seconds catches writes from other hosts of a
        network filesystem (NFS, Lustre), which inotify does not see. The watch is on the folder
        held open (/proc/self/fd), not on whatever its path names now."""
        if self._inotify is None:
            try:
                import inotify_simple
                self._inotify = inotify_simple.INotify()
                held = f"/proc/self/fd/{self.fd}"
                self._inotify.add_watch(held if os.path.exists(held) else self.dir,
                                        inotify_simple.flags.MOVED_TO | inotify_simple.flags.CLOSE_WRITE)
            except (ImportError, OSError) as e:   # no inotify here: plain short sleeps
                log.info("no inotify on %s (%s): looking every %.2f s", self.dir, e, POLL_NO_INOTIFY)
                self._inotify = False
        if self._inotify is False:
            stop.wait(POLL_NO_INOTIFY)
        else:
            self._inotify.read(timeout=int(RESCAN * 1000))


def _private_folder(path: Path) -> int:
    """``path`` (root's own, in the endpoint's folder), made 0700 if missing, opened without
    following a link."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


class SignedQueueTransport:
    def __init__(self, queue_url: str, endpoint_dir: Path, store, max_receives: int, visibility_timeout: float):
        self.queue = create_queue(queue_url, max_receives=max_receives, visibility_timeout=visibility_timeout)
        self.address = self.queue.url
        self.dir, self.store = endpoint_dir, store
        self._stamp: tuple[int, int, int] | None = None   # the key file's, when last read
        self.keys: dict = {}
        self._reload(first=True)

    def _reload(self, first: bool = False) -> None:
        path = self.dir / files.USER_KEYS
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self.keys = files.read_user_keys(self.dir)
            log.info("%d per-user signing key(s) loaded from %s", len(self.keys), path)
        except Exception as e:  # noqa: BLE001 - keep the keys in force
            if first:   # at start: refuse to run on keys others could read or swap
                raise
            log.error("user signing keys NOT reloaded, the previous keys stay in force: %s", e)

    def take(self) -> list[Incoming]:
        self._reload()
        out = []
        for m in self.queue.receive(max_messages=10, wait=1.0):
            problem: str | None
            try:
                fields = json.loads(m.body)
                if not isinstance(fields, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                fields, problem, identity = {}, f"not a JSON task message: {e}", "unknown"
            else:
                kid = str(fields.get("sig") or "").partition(":")[0]
                identity, key = self.keys.get(kid, ("unknown", None))
                if key is None:
                    problem = ("unsigned" if not fields.get("sig") else f"signed with key {kid!r}, which is "
                               f"not registered for any identity in {files.USER_KEYS}")
                else:
                    problem = signing.check(fields, {kid: key}, time.time())
                    if problem:
                        problem = f"signature of {identity} does not verify: {problem}"
            out.append(Incoming(m.body, identity, problem, str(fields.get("id") or m.id), None,
                                ack=functools.partial(self.queue.delete, [m.receipt]),
                                aside=functools.partial(self._aside, m)))
        return out

    def _aside(self, m, why: str) -> None:
        outcomes.set_aside(self.store, m.id, why, m.body)
        self.queue.delete([m.receipt])

    def wait(self, stop) -> None:
        """take() long-polls the queue: nothing to wait for here."""
