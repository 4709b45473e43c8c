"""The durable runner: drives every run in a store with the pure interpreter.

One process (``faas flows serve``) holds the store: on a ``file://`` store an exclusive
``flock`` on ``<store>/flows/runner.lock`` (the kernel drops it when the process dies, even by
``kill -9``); on other stores a lease object (``flows/runner/lease.json``) renewed every few
seconds and taken over when it expires. Other runners started on the same store wait as
standbys, so a run is never driven by two processes at once. One runner is plenty: it holds no
thread per run, only a heap of wake-up times (Wait states, Retry delays, WaitTime deadlines,
the next status poll of each active action).

Durability, the order of writes for every event:

1. the new RunState (with its log) is written to ``flows/runs/<id>/state.json``,
2. then its effects are carried out (actions started with their deterministic request ids,
   timers scheduled, actions canceled),
3. then the public run document is updated.

A runner killed anywhere in between restarts from ``state.json``: it re-issues every
outstanding StartAction with the same request id (providers are idempotent by request id, so
nothing starts twice) and re-arms the timers, whose deadlines are in the state. Commands
(start, cancel, resume) are objects in the store with a doorbell on the queue; a command object
is deleted only after it was applied, so none is lost either.
"""
from __future__ import annotations

import dataclasses
import errno
import heapq
import json
import logging
import os
import socket
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from faas import accounts
from faas.exceptions import QueueError, StoreError
from faas.flows import access, interpreter, schema, site_config, store_layout
from faas.flows.actions.base import ActionUnableToRun
from faas.flows.client import iso
from faas.store import KeyNotFound, open_store

if TYPE_CHECKING:
    from faas.flows.timers import TimerFirer

COMMAND_LIMIT = 1 << 20   # bytes of a command file read to learn its writer
RECORD_LIMIT = 256 << 20  # bytes of a run's state or request read back on a file store
log = logging.getLogger("faas.flows.runner")

MAX_POLL = 30.0        # seconds between status polls of a long action, at most
SCAN_EVERY = 10.0      # seconds between scans for commands whose doorbell was lost
LEASE_TTL = 30.0


@dataclasses.dataclass
class _FallbackContext:  # the shape of faas.flows.actions.ActionContext
    store_url: str
    run_id: str
    flow_id: str
    username: str
    run_as: str | None = None
    config: dict = dataclasses.field(default_factory=dict)


def _action_context(**kw):
    try:
        from faas.flows.actions import ActionContext
    except ImportError:
        return _FallbackContext(**kw)
    return ActionContext(**kw)


def _default_resolve(url: str):
    from faas.flows.actions import resolve
    return resolve(url)


def _unable_to_run(e: BaseException) -> bool:
    return isinstance(e, ActionUnableToRun)


class StoreBusy(RuntimeError):
    """Another runner holds the store."""


# --- holding the store ------------------------------------------------------------------------------
class _HeldByAnother(Exception):
    pass


class _FileLock:
    """An flock on ``<store>/flows/runner.lock``. The store's users may create entries in its
    folders, so the lock file is opened without following a link (in ``flows/`` or at the lock's
    name), and only a regular file with one name of this runner's account (or root's) is locked
    and written: anything else there (a link to /etc/passwd, a hard link to it, a FIFO) was
    planted and is replaced, never truncated or written through. Another account's lock file
    (mode 644, so each can tell) that a runner of that account holds makes this one stand by,
    naming it (two runners on one store would both act on its runs); one it holds no more is
    replaced; one this runner may not remove (a sticky folder) is refused with its owner named.
    ``flows/`` is made mode 755: written only by the runner's account (the folders users write
    commands and runs into are the site's to make, mode 1777)."""

    NAME = "runner.lock"
    _OPEN = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

    def __init__(self, store):
        import fcntl
        self._fcntl = fcntl
        self.root = store.root
        self.path = os.path.join(store.root, "flows", self.NAME)
        self.fd: int | None = None
        self.busy = ""   # who holds the store, when a runner of another account does
        os.close(self._folder())

    def _folder(self) -> int:
        from faas import safe_open
        os.makedirs(self.root, mode=0o700, exist_ok=True)   # configured, trusted; new: as FileStore makes it
        return safe_open.open_dir(self.root, ["flows"], create=True, mode=0o755, trust_uid=None)

    def _planted(self, dfd: int) -> tuple[str, int] | None:
        """What is at the lock's name and its owner, if it is not a lock file of this runner's
        account or root's (None: it is one, or nothing is there); looked at without opening it."""
        import stat
        try:
            st = os.stat(self.NAME, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return "not a lock file a runner made (a link, a file with other names, a FIFO)", st.st_uid
        if st.st_uid not in (os.geteuid(), 0):
            return f"a file of {accounts.user(st.st_uid)}'s, not this runner's account's or root's", st.st_uid
        return None

    def _open(self) -> int:
        import stat
        dfd = self._folder()
        try:
            for _ in range(3):
                planted = self._planted(dfd)
                if planted is None:
                    try:
                        # 644: a runner of another account can tell it is held (flock needs no write)
                        fd = os.open(self.NAME, self._OPEN | os.O_CREAT, 0o644, dir_fd=dfd)
                    except OSError as e:
                        if e.errno == errno.EACCES:   # root's, from a runner run as root
                            raise StoreError(f"cannot open {self.path}: {e.strerror}; its owner or "
                                             "root must remove it") from None
                        if e.errno not in (errno.ELOOP, errno.ENXIO):   # a link; a socket
                            raise
                    else:
                        st = os.fstat(fd)
                        if (stat.S_ISREG(st.st_mode) and st.st_nlink == 1
                                and st.st_uid in (os.geteuid(), 0)):
                            return fd
                        os.close(fd)
                    continue   # swapped between the look and the open: look again
                what, owner = planted
                if owner not in (os.geteuid(), 0):
                    self._not_held(dfd, what, owner)
                log.warning("%s is %s; replacing it", self.path, what)
                try:
                    os.unlink(self.NAME, dir_fd=dfd)
                except FileNotFoundError:
                    pass
                except PermissionError:
                    raise StoreError(
                        f"{self.path} is {what}, and this runner may not remove it (flows/ is "
                        f"sticky, or not this account's): {accounts.user(owner)} or root must remove "
                        f"it before a runner can hold the store") from None
            raise StoreBusy(f"{self.path} keeps being replaced by something that is no lock file")
        finally:
            os.close(dfd)

    def _not_held(self, dfd: int, what: str, owner: int) -> None:
        """StoreBusy unless another account's file at the lock's name is free: a live runner of
        that account holds the store (two runners on one store would both act on its runs); one
        whose state cannot be told is refused, never replaced."""
        try:
            fd = os.open(self.NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENXIO):   # a link; a socket: nothing holds it
                return
            raise StoreBusy(f"{self.path} is {what}, which this runner cannot open to tell whether "
                            f"a runner holds it ({e.strerror}): stop {accounts.user(owner)}'s runner, or "
                            f"remove the file") from None
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except BlockingIOError:
            raise _HeldByAnother(f"{self.path} is held by a runner of {accounts.user(owner)} (one runner "
                                 f"serves a store: this one stands by until it stops)") from None
        except OSError:
            pass   # a FIFO or the like: no runner holds it
        finally:
            os.close(fd)

    def acquire(self) -> bool:
        try:
            fd = self._open()
        except _HeldByAnother as e:
            self.busy = str(e)
            return False
        self.busy = ""
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        self.fd = fd
        return True

    def renew(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Lease:
    """A lease object for stores with no locks: write, wait, read back (the last writer wins
    and every contender sees who that was); renewed every ``ttl/3``."""

    def __init__(self, store, ttl: float = LEASE_TTL, settle: float = 1.0):
        self.store, self.ttl, self.settle = store, ttl, settle
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.renewed = 0.0

    def acquire(self) -> bool:
        cur = store_layout.get_json(self.store, store_layout.LEASE, None)
        if cur and cur.get("holder") != self.me and cur.get("expires", 0) > time.time():
            return False
        self._write()
        time.sleep(self.settle)
        cur = store_layout.get_json(self.store, store_layout.LEASE, None)
        return bool(cur) and cur.get("holder") == self.me

    def _write(self) -> None:
        self.renewed = time.time()
        store_layout.put_json(self.store, store_layout.LEASE,
                              {"holder": self.me, "expires": self.renewed + self.ttl})

    def renew(self) -> bool:
        if time.time() - self.renewed < self.ttl / 3:
            return True
        cur = store_layout.get_json(self.store, store_layout.LEASE, None)
        if not cur or cur.get("holder") != self.me:
            return False
        self._write()
        return True

    def release(self) -> None:
        cur = store_layout.get_json(self.store, store_layout.LEASE, None)
        if cur and cur.get("holder") == self.me:
            self.store.delete(store_layout.LEASE)


# --- runs in memory ----------------------------------------------------------------------------------
@dataclasses.dataclass
class _Run:
    run_id: str
    doc: dict
    request: dict
    definition: dict
    rs: interpreter.RunState
    actions: dict   # request_id -> {action_url, action_id, status, interval, run_as}


class Runner:
    """Drive the runs of one store. ``resolve(action_url) -> provider`` defaults to
    :func:`faas.flows.actions.resolve`; ``config`` is handed to every action (site collections,
    ...)."""

    def __init__(self, store_url: str, *, resolve: Callable | None = None,
                 config: dict | None = None, queue_url: str | None = None,
                 clock: Callable[[], float] = time.time):
        self.store = open_store(store_url)
        self.store_url = self.store.url
        self.config = dict(site_config.check(config, "the runner's site config"))
        if queue_url:   # the store's own flows/config.json (clients read it), not the site config
            recorded = store_layout.get_json(self.store, store_layout.CONFIG, {})
            store_layout.put_json(self.store, store_layout.CONFIG, dict(recorded, queue=queue_url))
        self.queue = store_layout.open_command_queue(self.store)
        self.resolve = resolve or _default_resolve
        self.clock = clock
        self.runs: dict[str, _Run] = {}
        self.events: deque = deque()
        self.heap: list = []
        self._n = 0
        self._next_scan = 0.0
        self._doorbell_warned = -1e9   # monotonic time of the last 'cannot read the doorbell'
        from faas.store.file import FileStore
        # a file store's folder: commands' identities come from their files' owners
        self._file_root = self.store.root if isinstance(self.store, FileStore) else None
        self._file_store = self._file_root is not None
        self._hold = _FileLock(self.store) if self._file_store else _Lease(self.store)
        self._timers: TimerFirer | None = None
        self.stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------
    def acquire(self, wait: bool = True, poll: float = 2.0) -> None:
        while not self._hold.acquire():
            busy = getattr(self._hold, "busy", "")
            if not wait or self.stopping:
                raise StoreBusy(f"another runner holds {self.store_url}" + (f": {busy}" if busy else ""))
            (log.warning if busy else log.info)("another runner holds %s; standing by%s",
                                                self.store_url, f": {busy}" if busy else "")
            time.sleep(poll)

    def release(self) -> None:
        self._hold.release()

    def idle(self) -> bool:
        """No run in hand, nothing due, no active timer: an autostarted runner may exit."""
        return not self.runs and not self.events and not (self._timers is not None and self._timers.next)

    def _active_run_ids(self) -> list[str]:
        """The runs marked active; a marker that names no run (``flows/active/`` is open to the
        users: ``a/b`` planted there) is removed, never resumed or left to fail every scan."""
        ids = []
        for key in list(self.store.list(store_layout.ACTIVE)):
            run_id = key[len(store_layout.ACTIVE):]
            try:
                ids.append(store_layout.check_run_id(run_id))
            except ValueError as e:
                log.warning("active marker %s removed: %s", key, e)
                self.store.delete(key)
        return ids

    def recover(self) -> None:
        """Load every active run and re-issue what it waits on (after a start or a crash)."""
        for run_id in self._active_run_ids():
            if run_id not in self.runs:
                self._resume_from_store(run_id)
        self._scan_commands()
        self._drain()

    def serve(self, once: bool = False, max_wait: float = 1.0,
              should_stop: Callable[[], bool] | None = None) -> None:
        """Run until stopped (``once``: one pass over what is due now, then return)."""
        self.acquire(wait=not once)
        try:
            self.recover()
            while not self.stopping and not (should_stop and should_stop()):
                self.tick(0.0 if once else max_wait)
                if once:
                    break
                if not self._hold.renew():
                    log.error("lost the runner lease on %s; stopping", self.store_url)
                    break
        finally:
            self.release()

    def _doorbells(self, wait: float) -> list:
        """The doorbells rung, or none when the queue cannot be read: one another user holds
        locked (a shared doorbell's users may write it) waits DOORBELL_PATIENCE, not SQLite's 120 s,
        and the scan of ``flows/commands/`` finds what was rung meanwhile."""
        try:
            return self.queue.receive(10, wait=wait)
        except QueueError as e:
            now = time.monotonic()
            if now - self._doorbell_warned > 60:
                self._doorbell_warned = now
                log.warning("cannot read the doorbell %s (%s): commands are found by the scan of "
                            "the store meanwhile (every %.0f s)", self.queue.url, e, SCAN_EVERY)
            self._next_scan = min(self._next_scan, self.clock())
            return []

    def tick(self, max_wait: float = 1.0) -> None:
        """One turn: wait for a command or the next due wake-up, then do everything due."""
        now = self.clock()
        wait = max_wait
        if self.heap:
            wait = max(0.0, min(wait, self.heap[0][0] - now))
        if self.events:
            wait = 0.0
        for m in self._doorbells(wait):
            try:
                body = json.loads(m.body)
                if body.get("command"):
                    self._command(body["command"])
            except Exception:  # noqa: BLE001 - a bad doorbell must not stop the runner
                log.exception("bad command message %r", m.body)
            try:
                self.queue.delete([m.receipt])
            except QueueError as e:   # it comes back: its command is applied once (deleted then)
                log.warning("doorbell not deleted: %s", e)
        self._due()
        self._drain()
        now = self.clock()
        if now >= self._next_scan:
            self._next_scan = now + SCAN_EVERY
            self._scan_commands()
            for rid in self._active_run_ids():
                if rid not in self.runs:
                    self._resume_from_store(rid)
            self._drain()
        self._fire_timers(now)
        self._drain()

    # -- commands -------------------------------------------------------------------------------------
    def _scan_commands(self) -> None:
        for key in sorted(self.store.list(store_layout.COMMANDS)):
            if key.endswith(".json"):
                self._command(key[len(store_layout.COMMANDS):-5])

    def command_identity(self, key: str, cmd: dict) -> str:
        """Who sent a command: on a file store the owner of the command's file (a claim in the
        file cannot make one user another); elsewhere the claim (the store's IAM decides who
        may write commands at all)."""
        if self._file_root is not None:   # the owner of the file read, never through a link
            _, uid = access.read_owned(self._file_root, key, COMMAND_LIMIT)
            return access.identity_of_uid(uid)
        return access.normalize(cmd.get("user") or "")

    def _command(self, cid: str) -> None:
        key = store_layout.command_key(cid)
        cmd = store_layout.get_json(self.store, key, None)
        if cmd is None:
            return   # applied already (a second doorbell, or the scan got there first)
        try:
            try:
                who = self.command_identity(key, cmd)
            except access.UntrustedFile as e:   # a link or FIFO where a command belongs: dropped
                log.warning("command %s ignored: its writer cannot be told (%s)", cid, e.strerror)
                self.store.delete(key)
                return
            op, run_id = cmd.get("op"), cmd.get("run_id")
            try:
                store_layout.check_run_id(run_id)
            except ValueError as e:   # never a run's: dropped, not retried
                log.warning("command %s from %s ignored: %s", cid, who, e)
                self.store.delete(key)
                return
            if op == "start":
                self._begin(run_id, who)
            elif op in ("cancel", "resume"):
                self._control(op, run_id, who)
            else:
                log.warning("unknown command %r", cmd)
        except Exception:  # noqa: BLE001 - kept: the next scan tries it again
            log.exception("command %s failed; will retry", cid)
            return
        self.store.delete(key)

    def _flow_doc(self, flow_id: str) -> dict | None:
        return store_layout.get_json(self.store, store_layout.flow_key(flow_id), None)

    def _begin(self, run_id: str, who: str | None) -> None:
        """Start a run whose records the client wrote (``who``: the command's sender; None for
        the runner's own timer runs, checked when the timer fires)."""
        if run_id in self.runs or self.store.exists(store_layout.run_key(run_id, "state")):
            if run_id not in self.runs:
                self._resume_from_store(run_id)
            return
        doc = store_layout.get_json(self.store, store_layout.run_key(run_id), None)
        why = None
        try:
            request, request_uid = self._run_record(run_id, "request")
        except (access.UntrustedFile, ValueError) as e:
            request, request_uid, why = {}, None, f"its request cannot be read as written ({e})"
        if doc is None or request is None or doc.get("status") in interpreter.DONE:
            self.store.delete(store_layout.active_key(run_id))
            return
        # A timer's run is begun with no sender to check: its request must be the runner's own
        # (else anyone who can guess a tick's run id plants one naming any user, root included).
        why = why or self._untrusted_request(request, request_uid, runner_only=who is None)
        if why:
            self._refuse(run_id, doc, "UntrustedRequest", f"run {run_id} is not started: {why}")
            return
        try:
            definition = self._definition(request, request_uid)
            if who is not None:
                flow = self._flow_doc(request["flow_id"]) or store_layout.get_json(
                    self.store, store_layout.flow_version_key(request["flow_id"], request["flow_version"]))
                if access.normalize(who) != access.normalize(request["user"]):
                    raise access.AccessDenied(f"{who} sent the start of a run for "
                                              f"{request['user']}")
                access.require(access.can_start(flow, who), who,
                               f"start flow {request['flow_id']}")
                schema.require_valid(flow.get("input_schema") if flow["version"] ==
                                     request["flow_version"] else self._version_schema(request),
                                     request["input"])
            ctx = {"flow_id": request["flow_id"], "run_id": run_id,
                   "username": access.username(request["user"])}
            rs = interpreter.start(definition, request["input"], ctx, time=self.clock())
        except Exception as e:  # noqa: BLE001 - refuse the run, start nothing
            code = getattr(e, "code", type(e).__name__)
            self._refuse(run_id, doc, code, str(e))
            return
        run = _Run(run_id, doc, request, definition, rs, {})
        self.runs[run_id] = run
        self._persist(run)
        self._perform(run, interpreter.outstanding(rs))
        self._after_change(run)

    def _version_schema(self, request: dict):
        key = store_layout.flow_version_key(request["flow_id"], request["flow_version"])
        v = store_layout.get_json(self.store, key)
        return v.get("input_schema")

    def _definition(self, request: dict, request_uid: int | None) -> dict:
        """The flow version the request names; a definition of its own (a timer's one-action
        flow) only from a request the runner wrote, never from one a user could write."""
        if request.get("definition"):
            if not access.written_by_runner_or(request_uid):
                raise access.AccessDenied(f"the request of run {request.get('run_id')} carries a "
                                          f"definition of its own, which only the runner writes")
            return request["definition"]
        return store_layout.get_json(self.store, store_layout.flow_version_key(request["flow_id"],
                                                         request["flow_version"]))["definition"]

    def _refuse(self, run_id: str, doc: dict, error: str, cause: str) -> None:
        doc = dict(doc, status="FAILED", error=error, cause=cause, completion_time=iso(time.time()))
        store_layout.put_json(self.store, store_layout.run_key(run_id), doc)
        self.store.delete(store_layout.active_key(run_id))
        log.warning("run %s refused: %s: %s", run_id, error, cause)

    def _control(self, op: str, run_id: str, who: str) -> None:
        run = self.runs.get(run_id) or self._resume_from_store(run_id)
        doc = run.doc if run else store_layout.get_json(self.store, store_layout.run_key(run_id), None)
        if doc is None or doc.get("status") in interpreter.DONE:
            return
        flow = self._flow_doc(doc["flow_id"])
        if not access.can_manage(doc, who, flow):
            log.warning("%s may not %s run %s; ignored", who, op, run_id)
            return
        if run is None:   # never started: end it where it is
            if op == "cancel":
                self._refuse(run_id, doc, "FlowCanceled", f"canceled by {who} before it started")
            return
        if op == "cancel":
            self.events.append((run_id, interpreter.Cancel(self.clock(), f"canceled by {who}")))
        else:   # resume: look at every waiting action now
            for rid in list(run.actions):
                self._schedule(self.clock(), run_id, "poll", rid)

    # -- runs -----------------------------------------------------------------------------------------
    def _run_record(self, run_id: str, what: str) -> tuple[Any, int | None]:
        """``(JSON of the run's record, the uid that wrote it)``: on a file store read with its
        owner from one descriptor (no link followed); elsewhere the uid is None."""
        try:
            data, uid = access.read_with_writer(self.store, store_layout.run_key(run_id, what), RECORD_LIMIT)
        except KeyNotFound:
            return None, None
        return json.loads(data), uid

    def _untrusted(self, state_uid: int | None, request: Any, request_uid: int | None) -> str | None:
        """Why a run's records on a file store were not written as the runner writes them (None
        when they were): its state by the runner's account; its request by the runner (a timer's
        run) or by the user it names. A run folder is its user's, who could otherwise put a
        state the runner never made, or a request naming another user, there."""
        if not access.written_by_runner_or(state_uid):
            return f"its state was written by {access.identity_of_uid(state_uid or 0)}, not the runner"
        return self._untrusted_request(request, request_uid, runner_only=False)

    @staticmethod
    def _untrusted_request(request: Any, request_uid: int | None, runner_only: bool) -> str | None:
        """Why a run's request may not be acted on (None when it may): on a file store it was
        written by the runner, or (unless ``runner_only``) by the user it names."""
        if not isinstance(request, dict):
            return "its request is missing or not an object"
        named = request.get("user") or ""
        if access.written_by_runner_or(request_uid, None if runner_only else named):
            return None
        return (f"its request names user {access.normalize(named)} but was written by "
                f"{access.identity_of_uid(request_uid or 0)}" + (", not the runner" if runner_only else ""))

    def _resume_from_store(self, run_id: str) -> _Run | None:
        request: Any = None
        try:
            state, state_uid = self._run_record(run_id, "state")
            request, request_uid = self._run_record(run_id, "request") if state else (None, None)
            why = self._untrusted(state_uid, request, request_uid) if state else None
        except (access.UntrustedFile, ValueError) as e:
            why = f"its records cannot be read as the runner wrote them ({e})"
        if why:
            log.warning("run %s is not resumed: %s", run_id, why)
            self.store.delete(store_layout.active_key(run_id))
            return None
        if state is None:
            doc = store_layout.get_json(self.store, store_layout.run_key(run_id), None)
            if doc is None:
                self.store.delete(store_layout.active_key(run_id))
            # else: not started yet; its start command is on its way (or in the scan)
            return None
        doc = store_layout.get_json(self.store, store_layout.run_key(run_id))
        rs = interpreter.RunState.from_dict(state["run_state"])
        run = _Run(run_id, doc, request, self._definition(request, request_uid), rs, state.get("actions", {}))
        if rs.status in interpreter.DONE:
            self._finish(run)
            return None
        self.runs[run_id] = run
        log.info("recovering run %s (%s)", run_id, rs.status)
        self._perform(run, interpreter.outstanding(rs))
        return run

    def _persist(self, run: _Run) -> None:
        store_layout.put_json(self.store, store_layout.run_key(run.run_id, "state"),
                   {"run_state": run.rs.to_dict(), "actions": run.actions})

    def _after_change(self, run: _Run) -> None:
        """Update the public run document; finish the run if it ended."""
        rs = run.rs
        doc = dict(run.doc, status=rs.status, error=rs.error, cause=rs.cause,
                   current_state=rs.current)
        if rs.status in interpreter.DONE:
            doc["output"] = store_layout.redact_private(rs.output)
            doc["completion_time"] = doc.get("completion_time") or iso(self.clock())
        if doc != run.doc:
            run.doc = doc
            store_layout.put_json(self.store, store_layout.run_key(run.run_id), doc)
        if rs.status in interpreter.DONE:
            self._finish(run)

    def _finish(self, run: _Run) -> None:
        if run.doc.get("status") not in interpreter.DONE:
            run.doc = dict(run.doc, status=run.rs.status, error=run.rs.error,
                           cause=run.rs.cause, output=store_layout.redact_private(run.rs.output),
                           completion_time=iso(self.clock()))
            store_layout.put_json(self.store, store_layout.run_key(run.run_id), run.doc)
        self.store.delete(store_layout.active_key(run.run_id))
        self.runs.pop(run.run_id, None)

    def _apply(self, run: _Run, event) -> None:
        before = len(run.rs.log), run.rs.status
        rs, effects = interpreter.step(run.definition, run.rs, event)
        if not effects and (len(rs.log), rs.status) == before and rs.to_dict() == run.rs.to_dict():
            return   # stale: nothing was waiting for it
        run.rs = rs
        waiting = {e.request_id for e in interpreter.outstanding(rs) if isinstance(e, interpreter.StartAction)}
        finished = {r: run.actions.pop(r) for r in list(run.actions) if r not in waiting}
        self._persist(run)
        self._perform(run, effects, finished)
        for a in finished.values():
            if a.get("status") in ("SUCCEEDED", "FAILED") and a.get("action_id"):
                self._quietly("release", a, run)
        self._after_change(run)

    def _drain(self) -> None:
        while self.events:
            run_id, event = self.events.popleft()
            run = self.runs.get(run_id)
            if run is not None:
                try:
                    self._apply(run, event)
                except Exception:  # noqa: BLE001 - one broken run must not stop the others
                    # forget it: the next scan reloads it from its last saved state and
                    # re-issues what it waits on, as after a restart
                    log.exception("run %s: applying %s failed; reloading it", run_id, event)
                    self.runs.pop(run_id, None)

    # -- effects --------------------------------------------------------------------------------------
    def _schedule(self, at: float, run_id: str, kind: str, key: str) -> None:
        self._n += 1
        heapq.heappush(self.heap, (at, self._n, run_id, kind, key))

    def _due(self) -> None:
        now = self.clock()
        while self.heap and self.heap[0][0] <= now:
            _, _, run_id, kind, key = heapq.heappop(self.heap)
            run = self.runs.get(run_id)
            if run is None:
                continue
            if kind == "timer":
                self.events.append((run_id, interpreter.Timer(key, now)))
            elif kind == "poll":
                self._poll(run, key)

    def _perform(self, run: _Run, effects: list, finished: dict | None = None) -> None:
        for eff in effects:
            if isinstance(eff, interpreter.SetTimer):
                self._schedule(eff.at, run.run_id, "timer", eff.timer_id)
            elif isinstance(eff, interpreter.StartAction):
                self._start_action(run, eff)
            elif isinstance(eff, interpreter.CancelAction):
                a = run.actions.get(eff.request_id) or (finished or {}).get(eff.request_id)
                if a and a.get("action_id"):
                    self._quietly("cancel", a, run)

    def _ctx(self, run: _Run, run_as: str | None):
        return _action_context(store_url=self.store_url, run_id=run.run_id,
                               flow_id=run.request["flow_id"],
                               username=access.username(run.request["user"]), run_as=run_as,
                               config=self.config)

    def _start_action(self, run: _Run, eff: interpreter.StartAction) -> None:
        rid = eff.request_id
        now = self.clock()
        a = run.actions.setdefault(rid, {"action_url": eff.action_url, "action_id": None,
                                         "status": None, "interval": 1.0, "run_as": eff.run_as})
        try:
            provider = self.resolve(eff.action_url)
            doc = provider.run(eff.parameters, rid, self._ctx(run, eff.run_as))
        except Exception as e:  # noqa: BLE001 - the provider's failure is the run's event
            cause = f"{type(e).__name__}: {e}"
            if not _unable_to_run(e):
                log.warning("run %s: starting %s failed: %s", run.run_id, rid,
                            traceback.format_exc())
            self.events.append((run.run_id, interpreter.ActionUnableToRun(rid, cause, now)))
            return
        a["action_id"] = doc.get("action_id") or a["action_id"]
        self._persist(run)   # the action id, so a restart can poll instead of guess
        self._on_status(run, rid, doc)

    def _poll(self, run: _Run, rid: str) -> None:
        a = run.actions.get(rid)
        if a is None:
            return
        pending = {e.request_id: e for e in interpreter.outstanding(run.rs) if isinstance(e, interpreter.StartAction)}
        if rid not in pending:
            return
        if not a.get("action_id"):
            self._start_action(run, pending[rid])
            return
        try:
            doc = self.resolve(a["action_url"]).status(a["action_id"], self._ctx(run, a.get("run_as")))
        except Exception as e:  # noqa: BLE001 - transient: poll again later; WaitTime bounds it
            log.warning("run %s: status of %s failed: %s", run.run_id, rid, e)
            a["interval"] = min(a.get("interval", 1.0) * 2, MAX_POLL)
            self._schedule(self.clock() + a["interval"], run.run_id, "poll", rid)
            return
        self._on_status(run, rid, doc)

    def _on_status(self, run: _Run, rid: str, doc: dict) -> None:
        a = run.actions[rid]
        now = self.clock()
        prev, status = a.get("status"), doc.get("status")
        a["status"] = status
        if status == "SUCCEEDED":
            self.events.append((run.run_id, interpreter.ActionCompleted(rid, doc.get("details"), now)))
        elif status == "FAILED":
            details = doc.get("details")
            cause = None
            if isinstance(details, dict):   # Globus providers say "cause"; ours error + message
                cause = details.get("cause") or (
                    f"{details['error']}: {details.get('message', '')}" if details.get("error") else None)
            self.events.append((run.run_id, interpreter.ActionFailed(rid, details, cause, now)))
        else:
            if status == "INACTIVE" and prev != "INACTIVE":
                self.events.append((run.run_id, interpreter.ActionInactive(rid, doc.get("details"), now)))
            shown = doc.get("display_status")
            if status == "ACTIVE" and shown and shown != a.get("display_status") and prev == "ACTIVE":
                # a long action's progress lines ("1,200 of 40,000 files...") reach the run's log
                self.events.append((run.run_id, interpreter.ActionProgress(rid, shown, doc.get("details"), now)))
            a["display_status"] = shown
            after = doc.get("poll_after")
            if not isinstance(after, (int, float)) or after <= 0:
                after = a.get("interval", 1.0)
                a["interval"] = min(after * 2, MAX_POLL)
            self._schedule(now + min(float(after), MAX_POLL), run.run_id, "poll", rid)

    def _quietly(self, what: str, a: dict, run: _Run) -> None:
        try:
            getattr(self.resolve(a["action_url"]), what)(a["action_id"],
                                                         self._ctx(run, a.get("run_as")))
        except Exception as e:  # noqa: BLE001 - best effort: the run has moved on
            log.info("run %s: %s of action %s failed: %s", run.run_id, what, a["action_id"], e)

    # -- timers ---------------------------------------------------------------------------------------
    def _fire_timers(self, now: float) -> None:
        from faas.flows import timers
        if self._timers is None:
            self._timers = timers.TimerFirer(self.store, self._start_timer_run, self._run_status)
        try:
            self._timers.fire_due(now)
        except Exception:  # noqa: BLE001 - a broken timer must not stop the runner: logged, tried next tick
            log.exception("firing timers failed")

    def _run_status(self, run_id: str) -> str | None:
        run = self.runs.get(run_id)
        if run is not None:
            return run.rs.status
        doc = store_layout.get_json(self.store, store_layout.run_key(run_id), None)
        return doc.get("status") if doc else None

    def _start_timer_run(self, flow: dict, input: Any, user: str, run_id: str,
                         label: str | None, timer_id: str) -> dict:
        from faas.flows.client import create_run
        if not flow.get("inline"):
            access.require(access.can_start(flow, user), user, f"start flow {flow['id']}")
        doc = create_run(self.store, flow, input, label, ("timer",), (), (), run_id, user,
                         {"timer_id": timer_id})
        doc.pop("_existing", None)
        self._begin(doc["run_id"], None)
        return doc


def serve(store_url: str, once: bool = False, **kw: Any) -> None:
    Runner(store_url, **kw).serve(once=once)
