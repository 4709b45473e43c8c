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
    def __init__(self, store_url: str, name: str, endpoint_dir: Path):
        self.dir = spool.prepare(store_url, name)
        self.refused_dir = endpoint_dir / "refused"
        self.address = f"spool://{self.dir}"
        # an inotify_simple.INotify (untyped), made on first wait: None = not tried, False = unavailable
        self._inotify: Any = None

    def take(self) -> list[Incoming]:
        out = []
        for e in spool.scan(self.dir):
            identity = identity_of_uid(e.uid) if e.uid is not None else "unknown"
            out.append(Incoming(e.body, identity, e.problem, os.path.basename(e.path).removesuffix(".json"),
                                e.uid, ack=functools.partial(_unlink, e.path),
                                aside=functools.partial(self._aside, e.path)))
        return out

    def _aside(self, path: str, why: str) -> None:
        """The file itself, moved to refused/ (the router logs ``why``)."""
        self.refused_dir.mkdir(mode=0o700, exist_ok=True)
        try:
            os.rename(path, self.refused_dir / os.path.basename(path))
        except OSError:
            _unlink(path)

    def wait(self, stop) -> None:
        """Until a message may have arrived: inotify wakes us at once for files renamed into the
        spool on this host; a look every RESCAN seconds catches writes from other hosts of a
        network filesystem (NFS, Lustre), which inotify does not see."""
        if self._inotify is None:
            try:
                import inotify_simple
                self._inotify = inotify_simple.INotify()
                self._inotify.add_watch(self.dir, inotify_simple.flags.MOVED_TO
                                        | inotify_simple.flags.CLOSE_WRITE)
            except (ImportError, OSError) as e:   # no inotify here: plain short sleeps
                log.info("no inotify on %s (%s): looking every %.2f s", self.dir, e, POLL_NO_INOTIFY)
                self._inotify = False
        if self._inotify is False:
            stop.wait(POLL_NO_INOTIFY)
        else:
            self._inotify.read(timeout=int(RESCAN * 1000))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


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
