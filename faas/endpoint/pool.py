"""The worker pool of one node of a block: long-polls the endpoint's queue, runs tasks in worker
processes, keeps held messages invisible (heartbeat), tells clients, and only then deletes.

Threads, each with one job:
- *receiver*: blocks on the queue for as many tasks as the pool has room for (it parses each
  message; the worker that runs it checks its signature: see worker.py);
- *main loop*: hands tasks to idle workers (short ones several at a time), collects their
  reports (several tasks to a pipe message: worker.Replier; a worker tells the clients itself
  where their reply queue sends at once), enforces timeouts, notices dead workers (wakes on a
  worker pipe, a worker's death, or the receiver's self-pipe: no sleeps);
- *outbox*: deletes messages in batches, sends the notices workers did not (SQS: several to a
  request), sets refused messages aside;
- *monitor*: heartbeats held messages; started notices and running markers for tasks that run a
  while, remote cancels; the block's status file.

Run as ``python -m faas.endpoint.pool --endpoint-dir DIR --block-id ID``.
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import itertools
import json
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import queue as _queue
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path

from .. import proctree, sealing, serialize, signing
from ..config import size_limit
from ..exceptions import QueueDoesNotExist, QueueError, SignatureError
from ..messages import (
    Notice,
    TaskMessage,
    cancel_epoch_key,
    cancel_may_apply,
    inline_limit,
    result_key,
    running_key,
)
from ..providers.launchers import RANK_VARIABLES
from ..safe_open import replace_file
from ..store import KeyNotFound, Message, beside, message_limit, open_queue, open_store
from . import config as ep_config
from . import mpi, node_pools, outcomes
from . import worker as worker_mod
from .journal import Journal
from .liveness import Loops, dump_on_signal

log = logging.getLogger("faas.pool")
HOST = socket.gethostname()

STARTED_NOTICE_DELAY = 0.05   # seconds a task runs before its client hears it started (monitor's tick: 0.1)
PREFETCH_WINDOW = 0.1         # seconds of queued work a pool holds per worker (prefetch: -1)
#: a pool holds no more queued tasks than it finished in this many seconds: after an idle spell
#: (or short tasks, then long ones) it takes a burst a few at a time, so other blocks share it
RAMP_WINDOW = 1.0
OUTBOX_BEAT = 5.0             # seconds the idle outbox sleeps between beats (liveness)
DELETE_LINGER = 0.5           # seconds a finished task's delete waits to share a batch
CANCEL_POLL = 1.0            # seconds between reads of the store's cancel epoch
RUNNING_MARKER_AFTER = 1.0   # seconds: then a store marker and remote-cancel checks, each second
BATCH_RUN_UNDER = 0.01       # seconds: tasks shorter than this on average go to workers in batches
MAX_BATCH = 16               # tasks in one batch (one pipe message; the worker runs them in order)
REPLY_QUEUES_KEPT = 256      # reply queues kept open (one per client; the oldest closed first)


@dataclass
class Held:
    msg: Message
    task: TaskMessage
    received: float
    started: float = 0.0
    marked: float = 0.0
    mpi: dict | None = None   # GlobusMPIEngine: the task's checked resource_specification
    seq: int = 0         # its number among the jobs handed to its worker (from 1; 0: not handed)
    told: bool = False   # its started notice is sent


@dataclass
class Slot:
    index: int
    proc: BaseProcess   # a forkserver context's Process
    conn: mpc.Connection
    job: Held | None = None   # the task it runs (of a batch: the first not yet reported done)
    queued: collections.deque = field(default_factory=collections.deque)   # the batch's rest
    nodes: list = field(default_factory=list)   # the block's nodes its MPI task holds
    verified: ctypes.c_ulonglong | None = None   # shared: the worker's last job that passed its checks
    handed: int = 0           # jobs handed to this worker
    down: bool = False        # dead or being replaced: no job is handed to it (the receiver hands out too)
    gone: bool = False        # dead and not replaced (the pool stops): the main loop no longer listens to it


def _verified(slot: Slot, held: Held) -> bool:
    """Has ``slot``'s worker checked ``held``'s signature? Until then the pool acts on none of
    its fields beyond routing it (no started notice, marker, timeout, or result under its id)."""
    return slot.verified is not None and 0 < held.seq <= slot.verified.value


def _running(slot: Slot, held: Held) -> bool:
    """Is ``held`` (checked) the job ``slot``'s worker runs now? A worker reports a batch's tasks
    a few milliseconds after they end (worker.Replier): the job the pool has not yet heard of
    may have ended, and the worker's count of checked jobs says it has once a later one began."""
    return slot.verified is not None and 0 < held.seq == slot.verified.value


@dataclass
class Outgoing:
    notices: dict = field(default_factory=lambda: collections.defaultdict(list))
    deletes: list = field(default_factory=list)
    releases: list = field(default_factory=list)
    handbacks: list = field(default_factory=list)
    refused: list = field(default_factory=list)     # (held, why): its worker refused it
    malformed: list = field(default_factory=list)   # (held, why)


class Pool:
    mpi = False   # GlobusMPIEngine (see __init__): tasks borrow the block's nodes
    mean_run: float | None = None   # moving average of task run times, seconds

    def __init__(self, cfg: ep_config.UserEndpointConfig, name: str, home: Path, block_dir: Path,
                 block_id: str, keep_alive: bool = False, walltime: float | None = None,
                 walltime_margin: float = 60.0, share: tuple[int, int, int] | None = None):
        self.cfg, self.name, self.block_id, self.block_dir = cfg, name, block_id, block_dir
        self.keep_alive = keep_alive
        self.store = open_store(cfg.store)
        self.journal = Journal(self.store, name, block_id, HOST)   # what the console lists
        self.queue = open_queue(cfg.queue_url(name, home))
        self.endpoint_dir = ep_config.endpoint_path(name, home)
        self.keys = cfg.keyring(self.endpoint_dir)
        self.seen_listed = False
        # (index, pools, workers): this pool's share of the node's workers and accelerators
        # (engine.pools_per_node; node_pools hands each pool its own), or the whole node's
        share = share or (0, 1, cfg.engine.workers_per_node)
        self.pool_index, self.pools_on_node = share[0], share[1]
        self.n_workers, self.accelerators = cfg.engine.pool_share(*share)
        self.engine_type = cfg.engine.type
        # GlobusMPIEngine: this pool, on the block's first node, lends the block's nodes to its
        # tasks (num_nodes each); a task waits in ``ready`` until enough of them are free.
        self.mpi = self.engine_type == "GlobusMPIEngine"
        self.free_nodes: list[str] = []
        self.block_nodes = 0
        self.mpi_problem: str | None = None
        self.mpi_launcher = ""   # GlobusMPIEngine's: its config always names one (mpiexec by default)
        if self.mpi:
            assert cfg.engine.mpi_launcher is not None   # EngineConfig._engine_shape set it
            self.mpi_launcher = cfg.engine.mpi_launcher
            try:
                self.free_nodes = mpi.block_nodes(cfg.engine.provider.nodes_per_block)
            except (OSError, subprocess.SubprocessError) as e:   # the tasks fail and say why
                self.mpi_problem = f"cannot list the block's nodes: {e}"
            self.block_nodes = len(self.free_nodes)
            self.mpi_problem = self.mpi_problem or mpi.launcher_problem(self.mpi_launcher)
        self.priority_noted = False
        t0 = self.t0 = time.monotonic()
        # Near the block's walltime: stop taking tasks, hand back the held ones, and give the
        # running ones until just before the scheduler's kill.
        self.drain_at = t0 + walltime - walltime_margin if walltime else None
        self.kill_at = t0 + walltime - min(5.0, walltime_margin / 2) if walltime else None
        self.batch = getattr(self.queue, "max_batch", 10)
        self.prefetch = cfg.engine.prefetch
        # short tasks: enough held that every worker gets a full batch while the next receive runs
        self.max_prefetch = max(MAX_BATCH * self.n_workers, min(self.batch, 10))
        self.mean_run = None    # moving average of task run times, seconds
        self.finished_at: collections.deque[float] = collections.deque(maxlen=self.max_prefetch)
        self.vt = cfg.visibility_timeout
        self.where = {"endpoint": name, "block": block_id}
        self.lock = threading.Condition()
        self.ready: collections.deque[Held] = collections.deque()
        self.slots: list[Slot] = []
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self.outbox: _queue.SimpleQueue = _queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.last_busy = time.monotonic()
        self.reply_queues: dict = {}
        self.dlq = None
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["faas.endpoint.worker", "faas.serialize", "faas.store"])
        self.counts: collections.Counter[str] = collections.Counter()
        self.to_cancel: set[str] = set()
        self.cancel_epochs: dict[str, tuple[float, float]] = {}   # client id -> (latest cancel, when read)
        self.loops = Loops(self._stalled)
        self.unhealthy: str | None = None
        self.spawned = 0
        self.selector: tuple[int, selectors.BaseSelector] | None = None   # (spawned, selector)
        self.grace_until: float | None = None   # stopping: when running tasks are killed

    # -- workers ----------------------------------------------------------------------
    def _spawn(self, index: int) -> Slot:
        self.spawned += 1   # the main loop's selector is rebuilt with the new worker's pipe
        parent, child = self.ctx.Pipe()
        log_path = str(self.block_dir / f"worker-{index}.log")
        env = {"CUDA_VISIBLE_DEVICES": self.accelerators[index]} if self.accelerators else {}
        eng = self.cfg.engine
        tasks = {"working_dir": str(self.endpoint_dir / eng.working_dir), "sandbox": eng.run_in_sandbox,
                 "engine": eng.type, "endpoint": self.name}
        verified = self.ctx.RawValue("Q", 0)
        proc = self.ctx.Process(target=worker_mod.main, name=f"faas-worker-{index}",
                                args=(child, self.cfg.store, log_path, self.where, env,
                                      tuple(self.cfg.allowed_serializers),
                                      eng.worker_memory_limit_mb, tasks),
                                kwargs={"keys": self.keys or None, "verified": verified,
                                        "allowed_functions": self.cfg.allowed_functions},
                                daemon=True)
        proc.start()
        child.close()
        return Slot(index, proc, parent, verified=verified)

    def capacity(self) -> int:
        """Tasks to hold: one per worker, plus about PREFETCH_WINDOW seconds of queued work,
        learnt from run times. Short tasks get a deep buffer (no worker waits on the queue);
        long ones none, so they spread over every block instead of queueing in the first."""
        if self.prefetch >= 0 or self.mpi:   # MPI tasks: none held beyond the workers (as Parsl)
            return self.n_workers + max(self.prefetch, 0)
        if self.mean_run is None:
            return self.n_workers
        extra = int(self.n_workers * PREFETCH_WINDOW / max(self.mean_run, 1e-6))
        return self.n_workers + min(extra, self.max_prefetch, self._finished_lately())

    def _finished_lately(self) -> int:
        """Tasks finished in the last RAMP_WINDOW seconds (up to max_prefetch): the evidence
        that this pool gets through what it holds, rather than the run times of earlier tasks
        (a burst of long tasks after short ones would otherwise all queue in the first block)."""
        since, finished = time.monotonic() - RAMP_WINDOW, self.finished_at
        while finished and finished[0] < since:
            finished.popleft()
        return len(finished)

    def _held(self) -> list[Held]:
        with self.lock:
            return self._held_unlocked()

    def _wake(self) -> None:
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass

    # -- receiver thread ----------------------------------------------------------------
    def _receiver(self) -> None:
        # Receive in whole batches where the queue has a batch size (SQS: 10), so a task that
        # finishes does not cost a receive of its own; never let the workers run dry waiting.
        while not self.stopping.is_set():
            self.loops.beat("receiver")
            with self.lock:
                room = self._room()
                if not room:
                    self.lock.wait(1.0)
                    continue
            try:
                msgs = self.queue.receive(max_messages=room, wait=5.0, visibility_timeout=self.vt)
            except Exception as e:  # noqa: BLE001 - a flaky queue must not kill the pool
                log.warning("receive failed (%s: %s); retrying in 1 s", type(e).__name__, e)
                self.stopping.wait(1.0)
                continue
            if not msgs:
                continue
            good: list[Held] = []
            now = time.time()
            for m in msgs:
                # Parsed and validated (3-4 us: the fields it is routed by, typed), not trusted:
                # its worker checks the signature before it deserializes anything (worker.admit)
                try:
                    fields = json.loads(m.body)
                    task = TaskMessage.model_validate(fields)
                except Exception as e:  # noqa: BLE001 - any parse or validation error: the message is dead-lettered, never run
                    self._dead_letter_malformed(m, e)
                    continue
                held = Held(m, task, time.monotonic())
                if self.mpi and not self._admit_mpi(held, fields, now):
                    continue
                if task.res and "priority" in task.res and not self.priority_noted:
                    self.priority_noted = True
                    log.info("resource_specification 'priority' has no effect here: tasks start in "
                             "the order the queue hands them out")
                good.append(held)
            if self.stopping.is_set():   # received while stopping: hand straight back
                self.outbox.put(("handback", good))
                return
            with self.lock:
                self.ready.extend(good)
                self.last_busy = time.monotonic()
                idle = any(s.job is None and not s.down for s in self.slots)
            if idle:   # straight to an idle worker: the main loop's wake-up is off the task's way
                self._dispatch(from_main=False)
            with self.lock:
                left = bool(self.ready)
            if left:   # else the main loop hears the worker's report (it listens to every worker)
                self._wake()

    def _room(self) -> int:
        """How many tasks the receiver asks the queue for now; 0: it waits until the workers
        have made room for at least a low-water mark (caller holds the lock)."""
        capacity = self.capacity()
        low_water = max(1, min(self.batch, capacity // 2))
        # a batch's tasks queued in a worker count as running, not as the buffer: the buffer
        # refills while they run, so a worker done with its batch finds the next
        n_held = len(self.ready) + sum(1 for s in self.slots if s.job)
        room = capacity - n_held
        return room if room >= low_water or not n_held else 0

    def _held_unlocked(self) -> list[Held]:
        """Tasks received and not yet finished: waiting to start, or running (caller holds the lock)."""
        return list(self.ready) + [h for s in self.slots if s.job for h in (s.job, *s.queued)]

    def _dead_letter_malformed(self, m: Message, e: Exception) -> None:
        log.error("malformed message %s (%s: %s) moved to the dead-letter queue", m.id,
                  type(e).__name__, str(e)[:200])
        try:
            self._dlq().send([m.body])
            self.queue.delete([m.receipt])
        except Exception as e2:  # noqa: BLE001 - any backend's error: logged; the message comes back later
            log.error("could not dead-letter message %s: %s", m.id, e2)

    def _refuse(self, m: Message, task: TaskMessage, why: str, notices: dict | None = None) -> None:
        """Never deserialize, never write a result under its (unproven) task id: keep the
        message for the administrator under ``dead-letters/`` and drop it from the queue. Its
        sender hears why at once, in a notice sealed with the message's own secret (only the
        client that made the message can read it as its task's; the store is not touched).
        ``notices``: the outbox's own batch (reply -> [(body, receipt)]) when it calls this."""
        log.error("REFUSED message %s (claims task %s): %s; its payload was not deserialized",
                  m.id, task.id, why)
        if task.reply and not self._may_answer(m, task):
            log.error("not telling the sender of message %s: its reply queue %s is neither covered "
                      "by a signature this endpoint checked nor beside its own queue", m.id, task.reply)
        elif task.reply:
            err = SignatureError(f"task {task.id} refused by endpoint {self.name!r}: {why}; set "
                                 f"FAAS_SIGNING_KEY to one of its keys (`faas endpoint configure "
                                 f"--signing-key` on the site shows how)")
            frame = outcomes.failure_frame(task, err, **self.where)
            notice = outcomes.done_notice(task, "failed", frame)
            if notices is not None:
                notices[task.reply].append((notice, None))
            else:
                self.outbox.put(("notice", (task.reply, notice, None)))
        try:
            outcomes.set_aside(self.store, m.id, why, m.body)
            self.queue.delete([m.receipt])
        except Exception as e:  # noqa: BLE001 - any backend's error: logged; the message comes back later
            log.error("could not set refused message %s aside: %s", m.id, e)
        self.counts["refused"] += 1

    def _may_answer(self, m: Message, task: TaskMessage) -> bool:
        """Whether a refused message's reply queue may be told: one its signature covers (it
        checked out: only the expiry or the arguments' digest failed), or one beside this
        endpoint's own queue, where a client's reply queue is made. Never a host or folder an
        unsigned sender names (the site's credentials would go there, or its writes)."""
        if beside(self.queue.url, task.reply or ""):
            return True
        if not self.keys:
            return False
        try:
            fields = json.loads(m.body)
        except ValueError:
            return False
        return isinstance(fields, dict) and signing.check_signature(fields, self.keys) is None

    def _admit_mpi(self, held: Held, fields: dict, now: float) -> bool:
        """GlobusMPIEngine: a task's resource specification decides which of the block's nodes it
        borrows, so its signature is checked here, before the spec is believed (its worker
        checks again). False: refused or failed here."""
        why = worker_mod.refusal(fields, held.task, self.keys or None, now)
        if why is not None:
            self._refuse(held.msg, held.task, why)
            return False
        try:
            held.mpi = self._check_resources(held.task)
        except ValueError as e:   # InvalidResourceSpecification too
            log.warning("task %s refused: %s", held.task.id, e)
            self._fail(held, e)
            return False
        return True

    def _check_resources(self, task: TaskMessage) -> dict | None:
        """The task's resource_specification, checked against this engine (Globus's errors for
        what its engine of the same type refuses); the normalized MPI spec or None."""
        spec = mpi.check_spec(self.engine_type, task.res, self.block_nodes)
        if spec is not None and self.mpi_problem:
            raise mpi.InvalidResourceSpecification(set(), self.mpi_problem)
        if spec is not None and spec["launcher_options"].strip() and self.cfg.allowed_functions is not None:
            # the launcher runs the first word it takes for a program: options from the sender
            # ("python3 -c ...") would run any command here, not only the functions allowed
            raise mpi.InvalidResourceSpecification(
                {"launcher_options"}, "this endpoint runs only its allowed_functions, and launcher "
                "options from a task can make the MPI launcher run any program; send the task "
                "without launcher_options (or ask the endpoint's administrator)")
        return spec

    def _dlq(self):
        if self.dlq is None:
            self.dlq = self.queue.dead_letters()
        return self.dlq

    # -- outbox thread ------------------------------------------------------------------
    def _outbox(self) -> None:
        """Notices and deletes go out in batches; a finished task's message is deleted only once
        its client was told. Named steps, as the manager loop of CPython's
        concurrent/futures/process.py."""
        deletes: list[str] = []
        delete_due = 0.0
        # reply queue -> (send by, bodies, receipts of the tasks whose done notices they are)
        notices: dict[str, tuple[float, list[str], list[str]]] = {}
        while True:
            dues = [d for d, _, _ in notices.values()] + ([delete_due] if deletes else [])
            timeout = max(0.0, min(dues) - time.monotonic()) if dues else OUTBOX_BEAT
            self.loops.beat("outbox")
            out, stop = self._outbox_take(min(timeout, OUTBOX_BEAT))
            for held, why in out.refused:   # first: their notices go out in this round
                self._refuse(held.msg, held.task, why, out.notices)
            for held, why in out.malformed:
                self._dead_letter_malformed(held.msg, ValueError(why))
            now = time.monotonic()
            self._gather_notices(notices, out.notices, now)
            out.deletes.extend(self._send_notices(notices, now, stop))
            # Deletes can wait a little (the message stays invisible meanwhile): whole batches
            # cost one request instead of one a task.
            if out.deletes and not deletes:
                delete_due = now + DELETE_LINGER
            deletes.extend(out.deletes)
            if deletes and (len(deletes) >= self.batch or now >= delete_due or stop):
                self._call("delete", self.queue.delete, deletes)
                deletes = []
            if out.releases:
                self._call("release", self.queue.change_visibility, out.releases, 0)
            if out.handbacks:
                self._handback(out.handbacks)
            if stop:
                return

    def _outbox_take(self, timeout: float) -> tuple[Outgoing, bool]:
        """What the other threads put in the outbox (waiting up to ``timeout`` for the first),
        sorted by kind; and whether the pool is stopping."""
        try:
            items = [self.outbox.get(timeout=timeout)]
        except _queue.Empty:
            items = []
        while True:
            try:
                items.append(self.outbox.get_nowait())
            except _queue.Empty:
                break
        out = Outgoing()
        stop = False
        for kind, payload in items:
            if kind == "notice":
                reply, body, receipt = payload   # receipt: the task's message, deleted once sent
                out.notices[reply].append((body, receipt))
            elif kind == "delete":
                out.deletes.append(payload)
            elif kind == "deletes":
                out.deletes.extend(payload)
            elif kind in ("release", "handback"):
                getattr(out, kind + "s").extend(payload)
            elif kind in ("refused", "malformed"):
                getattr(out, kind).append(payload)
            elif kind == "stop":
                stop = True
        return out, stop

    def _gather_notices(self, notices: dict, new: dict, now: float) -> None:
        """Notices to a queue that charges per request wait up to its ``linger`` for company
        (SQS: 20 ms, up to 10 a request); the local queue sends at once."""
        for reply, pairs in new.items():
            q = self._reply_queue(reply)
            due, bodies, receipts = notices.get(
                reply, (now + getattr(q, "linger", 0.0) if q is not None else now, [], []))
            notices[reply] = (due, bodies + [b for b, _ in pairs],
                              receipts + [r for _, r in pairs if r is not None])

    def _send_notices(self, notices: dict, now: float, stop: bool) -> list[str]:
        """Send the notices that are due (or fill a request); the receipts that may be deleted."""
        deletes: list[str] = []
        for reply, (due, bodies, receipts) in list(notices.items()):
            q = self._reply_queue(reply)
            if q is not None and len(bodies) < q.max_batch and now < due and not stop:
                continue
            del notices[reply]
            deletes.extend(self._notify(reply, q, bodies, receipts))
        return deletes

    def _notify(self, reply: str, q, bodies: list[str], receipts: list[str]) -> list[str]:
        """Send done notices; return the receipts of the tasks that may now be deleted. A task
        whose client could not be told is not deleted: it runs again after its visibility
        timeout and tells the client then (at least once). A client that is gone for good (its
        reply queue deleted) needs no notice: its results are in the store."""
        if q is None:
            q, gone = self._reopen(reply)
            if q is None:
                return receipts if gone else []
        try:
            q.send(bodies)
            return receipts
        except QueueDoesNotExist:
            return receipts
        except Exception as e:  # noqa: BLE001 - any backend's failure: the tasks stay on the queue and run again to tell their client
            log.warning("notices to %s failed (%s: %s); their %d task(s) stay on the queue and "
                        "will run again to tell their client", reply, type(e).__name__, e, len(receipts))
            return []

    def _reopen(self, reply: str):
        """``(queue, gone)``: open it again now (the last failure may have been passing)."""
        try:
            q = open_queue(reply)
        except QueueDoesNotExist:
            return None, True
        except Exception:  # noqa: BLE001 - unreachable: keep the tasks
            return None, False
        self.reply_queues[reply] = (q, 0.0)
        return q, False

    def _handback(self, held: list[Held]) -> None:
        """Return tasks this pool will not run (it is stopping) as fresh messages, so a
        graceful stop never uses up a task's ``max_receives``; then delete the old ones."""
        try:
            self.queue.send([h.msg.body for h in held])
        except Exception as e:  # noqa: BLE001 - fall back to a plain release
            log.warning("hand back by re-sending failed (%s); releasing instead", e)
            self._call("release", self.queue.change_visibility, [h.msg.receipt for h in held], 0)
            return
        self._call("delete", self.queue.delete, [h.msg.receipt for h in held])
        log.info("handed back %d task(s)", len(held))

    def _call(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - logged; the task comes back if it mattered
            log.warning("%s failed: %s: %s", what, type(e).__name__, e)

    def _reply_queue(self, url: str):
        q, retry_at = self.reply_queues.get(url, (None, 0.0))
        if q is None and time.monotonic() >= retry_at:
            if len(self.reply_queues) >= REPLY_QUEUES_KEPT:   # one per client: keep the recent ones
                oldest = next(iter(self.reply_queues))
                self._close_reply(self.reply_queues.pop(oldest)[0])
            try:
                q = open_queue(url)
                self.reply_queues[url] = (q, 0.0)
            except Exception as e:  # noqa: BLE001 - the client went away: results are in the store
                log.info("reply queue %s unavailable (%s); results stay in the store", url, e)
                self.reply_queues[url] = (None, time.monotonic() + 5.0)   # try again later
        return q

    @staticmethod
    def _close_reply(q) -> None:
        try:
            if q is not None:
                q.close()
        except Exception as e:  # noqa: BLE001 - any backend's: nothing depends on it
            log.debug("closing a reply queue: %s", e)

    def _inline_max(self, url: str | None) -> int:
        """From the reply URL's kind, never by opening it: a message's reply is the sender's word
        until its worker has checked the signature (an unsigned message naming an http:// host
        had this pool call it with the site's credentials, and wait on it)."""
        limit = message_limit(url) if url else 0
        return inline_limit(limit) if limit else 0

    def _finish(self, held: Held, status: str, result: bytes | None, error: str | None = None,
                notice: str | None = None, deletes: list[str] | None = None,
                entry: tuple[float, str] | None = None) -> None:
        """``notice``: the done notice the worker made (sealed there: this process only forwards
        it), or ``worker.TOLD``: the worker sent it to a queue that sends at once (the local one).
        ``deletes``: where to add the message's receipt when it only needs deleting (the caller
        puts them in the outbox together). ``entry``: the task journal's record, when the worker
        made it (``worker.journal_entry``); else it is made here."""
        t = held.task
        if entry is not None:
            self.journal.add(*entry)
        else:
            now, mono = time.time(), time.monotonic()
            if error is None and status == "failed":
                error = outcomes.error_summary(result, t)
            self.journal.record(t.id, t.fn, n=t.n, sent=t.sent,
                                started=now - (mono - (held.started or held.received)), finished=now,
                                status=status, error=error)
        if t.reply and notice != worker_mod.TOLD:
            self.outbox.put(("notice", (t.reply, notice or outcomes.done_notice(t, status, result),
                                        held.msg.receipt)))
        elif deletes is not None:   # no client to tell, or its worker told it
            deletes.append(held.msg.receipt)
        else:
            self.outbox.put(("delete", held.msg.receipt))
        self.counts[status] += 1

    def _fail(self, held: Held, exc: BaseException) -> None:
        """Write a failure the worker could not write itself (timeout, lost worker)."""
        data = outcomes.failure_frame(held.task, exc, **self.where)
        try:
            self.store.put(result_key(held.task.id, held.task.cid), data)
        except Exception as e:  # noqa: BLE001 - any store error: the task is handed back, not lost
            log.error("could not write the failure of task %s: %s; handing it back", held.task.id, e)
            self.outbox.put(("release", [held.msg.receipt]))
            return
        inline = data if len(data) <= self._inline_max(held.task.reply) else None
        self._finish(held, "failed", inline, error=f"{type(exc).__name__}: {exc}"[:300],
                     notice=outcomes.done_notice(held.task, "failed", inline, size=len(data)))

    # -- main loop ----------------------------------------------------------------------
    def _latest_cancel(self, client_id: str | None) -> float:
        """The cancel epoch of the task's client, read at most every CANCEL_POLL seconds per
        client (one GET a second instead of a HEAD a task). A task with no client id: always look."""
        if client_id is None:
            return float("inf")
        epoch, read = self.cancel_epochs.get(client_id, (0.0, float("-inf")))
        now = time.monotonic()
        if now - read >= CANCEL_POLL:
            try:
                epoch = float(self.store.get_head(cancel_epoch_key(client_id), sealing.CANCEL_MARKER_MAX))
            except KeyNotFound:
                epoch = 0.0
            except Exception as e:  # noqa: BLE001 - unreadable: assume a cancel may apply
                log.warning("cannot read the cancel epoch of client %s (%s): checking each of its tasks",
                            client_id, e)
                epoch = float("inf")
            if len(self.cancel_epochs) > 10_000:
                self.cancel_epochs.clear()
            self.cancel_epochs[client_id] = (epoch, now)
        return epoch

    def _dispatch(self, from_main: bool = True) -> None:
        """Hand waiting tasks to idle workers (from the receiver too: ``from_main`` False, then a
        worker found dead is left to the main loop, which finds it so again)."""
        if self.ready:   # the epochs' reads (a GET each, at most once a second) outside the lock
            with self.lock:
                cids = {h.task.cid for h in itertools.islice(self.ready, len(self.slots) * MAX_BATCH)}
            for cid in cids:
                self._latest_cancel(cid)
        dead: list[Slot] = []
        with self.lock:
            idle = sum(1 for s in self.slots if s.job is None and not s.down)
            for slot in self.slots:
                if not self.ready:
                    break
                if slot.job is None and not slot.down:
                    held = self._next_task(slot)
                    if held is None:   # MPI: no waiting task fits the free nodes
                        break
                    batch = [held] + self._batch_rest(idle)
                    idle -= 1
                    jobs = [self._job(h, slot) for h in batch]
                    try:
                        slot.conn.send(jobs[0] if len(jobs) == 1 else jobs)
                    except OSError:
                        # The idle worker died (killed) since the main loop last looked: the
                        # tasks go back first in line, the worker is replaced below. (This
                        # BrokenPipeError once escaped run(): the pool then hung at exit in
                        # multiprocessing's join of its other worker, while its daemon threads
                        # kept receiving and heartbeating tasks that never ran.)
                        self._release_nodes(slot)
                        self.ready.extendleft(reversed(batch))
                        slot.down = True
                        dead.append(slot)
                        continue
                    held.started = time.monotonic()
                    slot.job, slot.queued = held, collections.deque(batch[1:])
                    self.last_busy = held.started
                    for h in batch:   # (started notices: the monitor's, once the worker checked it)
                        slot.handed += 1
                        h.seq = slot.handed
        for slot in dead if from_main else []:
            log.warning("worker %d was gone when a task was handed to it", slot.index)
            self._worker_died(slot)

    def _batch_rest(self, idle: int) -> list[Held]:
        """More tasks to hand over with the next one (caller holds the lock): when tasks are short
        (one pipe message and one reply then serve several) and enough wait for every idle worker
        to get its share; never for MPI tasks, which hold nodes."""
        if self.mpi or self.mean_run is None or self.mean_run >= BATCH_RUN_UNDER:
            return []
        n = min(MAX_BATCH - 1, len(self.ready) // max(idle, 1))
        if n:
            self.counts["batched"] += n
        return [self.ready.popleft() for _ in range(n)]

    def _job(self, held: Held, slot: Slot) -> tuple:
        """The pipe message that hands ``held`` to ``slot``'s worker (worker.py's job tuple)."""
        t = held.task
        env = mpi.task_env(self.mpi_launcher, held.mpi, slot.nodes) if held.mpi else None
        return (t.id, held.msg.body, self._inline_max(t.reply),
                cancel_may_apply(self._latest_cancel(t.cid), t.sent), env)

    def _take_back(self, slot: Slot) -> tuple[Held | None, list[Held]]:
        """Take ``slot``'s jobs from its worker, which is dead or about to be killed (caller holds
        the lock): ``(the job it ran (None: none), the jobs it ended without reporting them)``
        (a worker reports within milliseconds: a death takes the last few reports with it; see
        :meth:`_settle_unreported`). Those it never began go back first in line. The slot takes
        no jobs until its worker is replaced."""
        held, slot.job, slot.down = slot.job, None, True
        v = slot.verified.value if slot.verified is not None else 0
        ended = []
        while held is not None and 0 < held.seq < v:
            ended.append(held)
            held = slot.queued.popleft() if slot.queued else None
        self._requeue(slot)
        self._release_nodes(slot)
        self.lock.notify_all()
        return held, ended

    def _settle_unreported(self, ended: list[Held]) -> None:
        """Tasks a worker ran but died (or was killed) before reporting: a result it stored is
        the task's, told to the client from here (its MAC proves the worker wrote it with the
        task's secret); the others (a refusal, a result the store would not take) go back to the
        queue as fresh messages, charged no receive: the worker's death was not theirs (a
        release would count one, and a task in two such batches could be dead-lettered
        unrun)."""
        back = []
        for held in ended:
            t = held.task
            try:
                data = self.store.get_head(result_key(t.id, t.cid), size_limit("max_result_bytes") + 1)
                header, _ = serialize.open_result(data, t.id, t.rk)
            except Exception:  # noqa: BLE001 - none, unreadable or not the worker's: it runs again
                back.append(held)
                continue
            status = "success" if header.get("status") == "success" else "failed"
            inline = data if len(data) <= self._inline_max(t.reply) else None
            self._finish(held, status, inline,
                         notice=outcomes.done_notice(t, status, inline, size=len(data)))
        if back:
            self.outbox.put(("handback", back))
        if ended:
            log.info("%d task(s) ended unreported by a worker that died: %d told from their stored "
                     "results, %d sent again", len(ended), len(ended) - len(back), len(back))

    def _requeue(self, slot: Slot) -> None:
        """The tasks of ``slot``'s batch that never started go back first in line (caller holds
        the lock): they ran nowhere, so they are not charged a receive."""
        self.ready.extendleft(reversed(slot.queued))
        slot.queued = collections.deque()

    def _next_task(self, slot: Slot) -> Held | None:
        """The next task to start (caller holds the lock). GlobusMPIEngine: the first waiting task
        whose num_nodes are free, with those nodes lent to ``slot`` (a task never asks for more
        nodes than the block has: :meth:`_check_resources` failed it)."""
        if not self.mpi:
            return self.ready.popleft()
        for i, held in enumerate(self.ready):
            need = held.mpi["num_nodes"] if held.mpi else 0
            if need <= len(self.free_nodes):
                del self.ready[i]
                slot.nodes, self.free_nodes = self.free_nodes[:need], self.free_nodes[need:]
                return held
        return None

    def _release_nodes(self, slot: Slot) -> None:
        """Give back the nodes ``slot``'s MPI task held (its task ended or was handed back)."""
        if slot.nodes:
            self.free_nodes.extend(slot.nodes)
            slot.nodes = []

    def _collect(self, slot: Slot) -> None:
        try:
            replies = list(slot.conn.recv())   # worker.Replier: several tasks' reports
        except (EOFError, OSError):
            self._worker_died(slot)
            return
        try:   # a batch's other answers already waiting: one pass of the main loop for them all
            while len(replies) <= len(slot.queued) and _readable(slot.conn):
                replies.extend(slot.conn.recv())
        except (EOFError, OSError):
            pass   # it died: its sentinel says so next
        self._replies(slot, replies)

    def _drain(self, slot: Slot) -> None:
        """Whatever a dead worker said before it died (a batch's replies, maybe several)."""
        try:
            while slot.job is not None and slot.conn.poll():
                self._replies(slot, list(slot.conn.recv()))
        except (EOFError, OSError):
            pass

    def _replies(self, slot: Slot, replies: list) -> None:
        """A worker's replies, in the order its tasks ran: each finishes ``slot.job``, and the
        batch's next task becomes the one running."""
        done = []
        with self.lock:
            now = time.monotonic()
            for task_id, status, data, notice, took, entry in replies:
                # the worker's clock: dispatch and collection waits (a busy machine) left out
                self.mean_run = took if self.mean_run is None else 0.8 * self.mean_run + 0.2 * took
                self.finished_at.append(now)
                held = slot.job
                if held is None or held.task.id != task_id:
                    continue   # a task taken back (its worker was stopped) answers no more
                slot.job = slot.queued.popleft() if slot.queued else None
                if slot.job is not None:
                    slot.job.started = now
                done.append((held, status, data, notice, entry))
            if slot.job is None:
                self._release_nodes(slot)
            if self._room():   # the receiver waits for this much room: wake it only then
                self.lock.notify_all()
        deletes: list[str] = []
        for held, status, data, notice, entry in done:
            if status == "retry":
                log.warning("task %s: the worker could not store its result (%s); handing it back",
                            held.task.id, data.decode(errors="replace"))
                self.outbox.put(("release", [held.msg.receipt]))
                continue
            if status in ("refused", "malformed"):   # the worker deserialized nothing of it
                self.outbox.put((status, (held, data.decode(errors="replace"))))
                continue
            self._finish(held, status, data, notice=notice, deletes=deletes, entry=entry)
        if deletes:
            self.outbox.put(("deletes", deletes))

    def _worker_died(self, slot: Slot) -> None:
        slot.proc.join(1)
        code = slot.proc.exitcode
        with self.lock:
            held, ended = self._take_back(slot)
            checked = held is not None and _verified(slot, held)
        self._settle_unreported(ended)
        cause = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        if held is not None:
            t = held.task
            log.error("worker %d died (%s) running task %s (receive %d of %d)", slot.index, cause,
                      t.id, held.msg.receive_count, self.cfg.max_receives)
            if held.msg.receive_count >= self.cfg.max_receives and checked:   # else: the queue's own dead letter
                from ..exceptions import WorkerLost
                self._send_dead_letter(held)
                self._fail(held, WorkerLost(
                    f"task {t.id} was dead-lettered: its worker process died ({cause}) each of the "
                    f"{held.msg.receive_count} times it ran (max_receives={self.cfg.max_receives})",
                    task_id=t.id))
            else:
                self.outbox.put(("release", [held.msg.receipt]))
        else:
            log.error("idle worker %d died (%s)", slot.index, cause)
        if not self.stopping.is_set():
            self._respawn(slot)
        if slot.down:   # not replaced (the pool stops, or no worker could be started): its pipe's
            # end and its sentinel stay readable and would wake the main loop at once on every
            # pass for the rest of the stop (it spun: 100,000 log lines of this death in 3 s)
            slot.gone = True
            if self.selector is not None:
                for obj in (slot.conn, slot.proc.sentinel):
                    try:
                        self.selector[1].unregister(obj)
                    except (KeyError, ValueError):
                        pass

    def _respawn(self, slot: Slot) -> None:
        try:
            new = self._spawn(slot.index)
        except Exception as e:  # noqa: BLE001 - e.g. the forkserver died with the job's SIGTERM
            log.error("cannot start a new worker %d (%s): this pool stops and hands back its tasks",
                      slot.index, e)
            self.stopping.set()
            return
        with self.lock:
            slot.proc, slot.conn, slot.verified, slot.handed = new.proc, new.conn, new.verified, 0
            slot.down = False

    def _send_dead_letter(self, held: Held) -> None:
        try:
            outcomes.keep_dead_letter(self.store, held.task.id, held.msg.body)
            self._dlq().send([held.msg.body])
        except Exception as e:  # noqa: BLE001 - best effort, any backend's error: logged; _fail still writes the task's failure
            log.error("could not copy task %s to the dead-letter queue: %s", held.task.id, e)

    def _kill(self, slot: Slot) -> Held | None:
        """Stop ``slot``'s worker and what its task started (a ShellFunction's command, an
        MPI launcher), and start a fresh worker."""
        with self.lock:
            held, ended = self._take_back(slot)
        tree = proctree.descendants(slot.proc.pid) if slot.proc.pid else []
        slot.proc.kill()
        proctree.signal_all(tree)
        slot.proc.join(5)
        self._settle_unreported(ended)
        self._respawn(slot)
        return held

    def _wait(self, timeout: float) -> list:
        """What ``multiprocessing.connection.wait`` on the wake pipe, every worker's pipe and
        sentinel returns, from one selector kept until a worker is replaced
        (building and filling a selector each time cost the main loop more than a dispatch)."""
        if self.selector is None or self.selector[0] != self.spawned:
            if self.selector is not None:
                self.selector[1].close()
            sel = selectors.PollSelector() if hasattr(selectors, "PollSelector") else selectors.SelectSelector()
            sel.register(self.wake_r, selectors.EVENT_READ)
            for s in self.slots:
                if not s.gone:
                    sel.register(s.conn, selectors.EVENT_READ)
                    sel.register(s.proc.sentinel, selectors.EVENT_READ)
            self.selector = (self.spawned, sel)
        # every worker's pipe, idle ones too: the receiver hands tasks to idle workers without
        # waking this loop, which then learns of those tasks from their reports
        return [key.fileobj for key, _ in self.selector[1].select(timeout)]

    def _hand_back_ready(self) -> None:
        with self.lock:
            back, self.ready = list(self.ready), collections.deque()
        if back:
            self.outbox.put(("handback", back))

    def _timeouts(self, now: float) -> None:
        from ..exceptions import TaskTimeout
        for slot in self.slots:
            h = slot.job
            if h is None or not _running(slot, h):   # not begun, or ended and its report on its way
                continue
            if h.task.id in self.to_cancel:
                self.to_cancel.discard(h.task.id)
                log.info("task %s cancelled while running: its worker is stopped", h.task.id)
                if self._kill(slot) is h:
                    self._finish(h, "cancelled", None)
                continue
            if h.task.timeout and now - h.started > h.task.timeout:
                held = self._kill(slot)
                if held:
                    log.info("task %s exceeded its timeout of %ss; worker killed", h.task.id, h.task.timeout)
                    self._fail(held, TaskTimeout(
                        f"task {h.task.id} ran longer than its timeout of {h.task.timeout} s and was stopped"))

    def run(self) -> int:
        """The main loop, in named steps (as the manager loop of CPython's
        concurrent/futures/process.py): hand out tasks, see whether to stop, wait for a worker's
        answer (or death, or the receiver's wake-up), enforce timeouts."""
        threads = self._start()
        while True:
            self.loops.beat("main")
            self._dispatch()
            busy = [s for s in self.slots if s.job]
            if self._time_to_stop(busy, time.monotonic()):
                break
            self._wait_and_collect(min(1.0, self.vt / 3))
            self._timeouts(time.monotonic())
        self._shut_down(threads)
        return 70 if self.unhealthy else 0

    def _start(self) -> list[threading.Thread]:
        """Start the workers, then the other loops; return the threads."""
        self.block_dir.mkdir(parents=True, exist_ok=True)
        # The forkserver and the workers start with SIGTERM blocked (the mask is inherited
        # across fork and exec; workers then ignore it): a scheduler's cancel signals every
        # process of the job, and this pool, not the signal, decides when they stop. Blocked,
        # not ignored, here: a stop that arrives while the workers start stays pending and
        # reaches this pool's handler when unblocked, instead of being lost.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            self.slots = [self._spawn(i) for i in range(self.n_workers)]
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        limit = self.cfg.stall_timeout
        threads = [self.loops.thread("receiver", self._receiver, limit),
                   self.loops.thread("outbox", self._outbox, limit),
                   self.loops.thread("monitor", self._monitor, limit)]
        self.loops.add("main", limit)
        for t in threads:
            t.start()
        self.loops.start_watchdog()
        log.info("pool %s up: %d workers, prefetch %s, queue %s", self.block_id, self.n_workers,
                 "auto" if self.prefetch < 0 else self.prefetch, self.queue.url)
        return threads

    def _time_to_stop(self, busy: list[Slot], now: float) -> bool:
        """Whether the main loop ends now: stopping (asked, near the block's walltime, or idle
        for max_idle_time) with no task running, or past the stop's grace (the running ones are
        then killed and handed back). While stopping, held tasks go back on each pass."""
        if not self.stopping.is_set() and (self._near_walltime(now) or self._idle_too_long(busy, now)):
            self.stopping.set()
        if not self.stopping.is_set():
            return False
        if self.grace_until is None:
            self.grace_until = now + self.cfg.stop_grace
            if self.kill_at is not None:
                self.grace_until = min(self.grace_until, self.kill_at)
        self._hand_back_ready()   # each pass: a stopped worker's unstarted batch too
        if busy and now > self.grace_until:
            for s in busy:
                held = self._kill(s)
                if held:
                    self.outbox.put(("handback", [held]))
            self._hand_back_ready()
            return True
        return not busy

    def _near_walltime(self, now: float) -> bool:
        if self.drain_at is None or now < self.drain_at:
            return False
        log.info("near the block's walltime: handing back held tasks, taking no more")
        return True

    def _idle_too_long(self, busy: list[Slot], now: float) -> bool:
        idle = self.cfg.engine.max_idle_time
        if self.keep_alive or idle <= 0 or busy or self.ready or now - self.last_busy <= idle:
            return False
        log.info("idle for %.0f s: exiting", idle)
        return True

    def _wait_and_collect(self, timeout: float) -> None:
        """Wait for a worker's answer, a worker's death or a wake-up, and take them in."""
        for obj in self._wait(timeout):
            if obj == self.wake_r:
                os.read(self.wake_r, 65536)
                continue
            for s in self.slots:
                if s.gone:   # its pipe and sentinel may both have been ready: its death is handled
                    continue
                if obj is s.conn:
                    self._collect(s)
                elif obj == s.proc.sentinel and not s.proc.is_alive():
                    self._drain(s)   # it answered before it died
                    self._worker_died(s)

    def _shut_down(self, threads: list[threading.Thread]) -> None:
        """Let the workers go, flush the outbox (notices, deletes, hand-backs), the journal and the
        block's status, then make sure no worker is left."""
        for s in self.slots:
            try:
                s.conn.send(None)
            except OSError:
                pass
        self.finished.set()
        self.loops.done("receiver")
        self.loops.done("monitor")
        self.outbox.put(("stop", None))
        threads[1].join(30)   # the outbox
        try:
            self.journal.close()
        except Exception as e:  # noqa: BLE001 - stopping: a journal not written is logged, the stop goes on
            log.warning("could not write the task journal: %s", e)
        try:
            self._write_status("stopped")
        except OSError:
            pass
        for s in self.slots:
            s.proc.join(2)
            if s.proc.is_alive():
                s.proc.kill()
        self.loops.stop()
        log.info("pool %s stopped: %s", self.block_id, dict(self.counts))

    # -- monitor thread -----------------------------------------------------------------
    def _monitor(self) -> None:
        """Each tenth of a second: heartbeats (every third of the visibility timeout), what the
        running tasks need (started notices, running markers, remote cancels), and every two
        seconds the journal, the block's status and whether the block is still the daemon's."""
        last_status = last_beat = 0.0
        while not self.finished.wait(0.1):
            self.loops.beat("monitor")
            now = time.monotonic()
            if now - last_beat > self.vt / 3:
                last_beat = now
                self._heartbeat()
            for slot in self.slots:
                h = slot.job
                if h is not None and _running(slot, h):
                    self._watch_running(slot, h, now)
            if now - last_status > 2.0:
                last_status = now
                self._status_tick(now)

    def _heartbeat(self) -> None:
        """Keep every held message invisible. Here, not in the outbox: a notice stuck in retries
        must not let held tasks become visible again (and run twice)."""
        receipts = [h.msg.receipt for h in self._held()]
        if receipts:
            self._call("heartbeat", self.queue.change_visibility, receipts, self.vt)

    def _watch_running(self, slot: Slot, h: Held, now: float) -> None:
        """A running task (its worker checked it): its started notice once it has run
        STARTED_NOTICE_DELAY, then each RUNNING_MARKER_AFTER a look for its remote cancel."""
        age = now - h.started
        if not h.told and age >= STARTED_NOTICE_DELAY and h.task.reply:
            self._tell_started(slot, h, age)
        if age <= RUNNING_MARKER_AFTER or now - h.marked <= RUNNING_MARKER_AFTER:
            return
        first = h.marked == 0.0
        h.marked = now
        try:
            if first:
                self.store.put(running_key(h.task.id, h.task.cid), json.dumps(
                    dict(self.where, host=HOST, pid=slot.proc.pid, started=time.time() - age)).encode())
            if cancel_may_apply(self._latest_cancel(h.task.cid), h.task.sent) and \
                    worker_mod.cancelled(self.store, h.task.id, h.task.rk, h.task.cid):
                self.to_cancel.add(h.task.id)   # the main loop owns the workers
                self._wake()
        except Exception as e:  # noqa: BLE001 - the monitor thread must live: a store error is logged and looked at again next round
            log.warning("monitor: %s", e)

    def _status_tick(self, now: float) -> None:
        try:
            self.journal.flush_if_due()
        except Exception as e:  # noqa: BLE001 - records are kept for the next flush
            log.warning("task journal: %s", e)
        try:
            self._write_status("draining" if self.stopping.is_set() else "running")
        except OSError as e:   # e.g. the endpoint's folder was deleted under us
            log.warning("cannot write the block's status: %s", e)
        if not self.stopping.is_set() and self._orphaned(now):
            log.warning("block %s is no longer in the daemon's blocks.json (its job ended "
                        "or was cancelled, yet this pool lives on): handing back and exiting",
                        self.block_id)
            self.stopping.set()
            self._wake()

    def _tell_started(self, slot: Slot, h: Held, age: float) -> None:
        """The started notice of a task that runs a while (a short one's done notice is all its
        client needs); until it arrives the client may still cancel its future."""
        where = dict(self.where, host=HOST, pid=slot.proc.pid, started=time.time() - age)
        mac = sealing.notice_mac(h.task.rk, h.task.id, "started", None, where=where)
        body = Notice(id=h.task.id, event="started", where=where, mac=mac).model_dump_json(exclude_none=True)
        with self.lock:
            if slot.job is h:   # not done meanwhile: a done notice is queued after this one
                h.told = True
                self.outbox.put(("notice", (h.task.reply, body, None)))

    def _stalled(self, why: str) -> None:
        """The watchdog's call: stop as gracefully as the stuck part allows (running tasks get
        stop_grace, held ones go back), and exit hard if even that does not end, so the daemon
        starts a fresh pool; a task this pool could not finish comes back on its own."""
        self.unhealthy = why
        self.stopping.set()
        self._wake()
        try:
            self._write_status("unhealthy")
        except OSError:
            pass

        def last_resort() -> None:
            if not self.finished.wait(self.cfg.stop_grace + 30):
                log.error("pool %s did not stop after %s; exiting now (its tasks come back after "
                          "their visibility timeout)", self.block_id, why)
                logging.shutdown()
                os._exit(70)
        threading.Thread(target=last_resort, name="last-resort", daemon=True).start()

    def _orphaned(self, now: float) -> bool:
        """True once the daemon has dropped this block (e.g. a container whose ``podman run``
        was killed keeps running). Before the pool has seen itself listed, only after a minute:
        the daemon records a block after its submit returns."""
        if not (self.endpoint_dir / "config.yaml").exists():
            return True    # the endpoint was deleted (`faas endpoint delete`)
        try:
            listed = self.block_id in json.loads((self.endpoint_dir / "blocks.json").read_text())
        except (OSError, ValueError):
            return False   # no daemon bookkeeping here (or mid-write): nothing to go by
        if listed:
            self.seen_listed = True
            return False
        return self.seen_listed or now - self.t0 > 60.0

    def _write_status(self, state: str) -> None:
        held = self._held()
        status = {"block": self.block_id, "pid": os.getpid(), "host": HOST,
                  "pool": self.pool_index, "pools_on_node": self.pools_on_node,
                  "state": state, "workers": self.n_workers,
                  "busy": sum(1 for s in self.slots if s.job), "held": len(held),
                  "idle_for": round(time.monotonic() - self.last_busy, 1), "counts": dict(self.counts),
                  "time": time.time(), "loops": self.loops.ages(),
                  "problem": self.unhealthy or self.loops.problem()}
        replace_file(self.block_dir / "status.json", json.dumps(status))


def _readable(conn: mpc.Connection) -> bool:
    """``conn.poll()`` without the selector it builds and fills on each call (per reply here)."""
    p = select.poll()
    p.register(conn.fileno(), select.POLLIN)
    return bool(p.poll(0))


def _profile_threads(pool: Pool, prefix: str) -> None:
    """cProfile each of the pool's loops (a profiler sees only its own thread); each writes
    ``<prefix>.<pid>.<loop>.prof`` when it ends. For benchmarks/profile_faas.py only."""
    import cProfile
    ended: dict[str, threading.Event] = {}

    def wrap(name: str, fn):
        ended[name] = threading.Event()

        def profiled(*args, **kwargs):
            prof = cProfile.Profile(time.thread_time)   # CPU time: waiting is left out
            prof.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                prof.disable()
                prof.dump_stats(f"{prefix}.{os.getpid()}.{name}.prof")
                ended[name].set()
                if name == "run":   # the other loops are daemon threads: let them write theirs
                    for event in ended.values():
                        event.wait(10)
        return profiled

    for name in ("run", "_receiver", "_outbox", "_monitor"):
        setattr(pool, name, wrap(name.strip("_"), getattr(pool, name)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="faas-pool")
    p.add_argument("--endpoint-dir", required=True, type=Path)
    p.add_argument("--block-id", required=True)
    p.add_argument("--keep-alive", action="store_true", help="never exit when idle (min_blocks)")
    p.add_argument("--walltime", type=float, help="seconds the scheduler gives the block")
    p.add_argument("--walltime-margin", type=float, default=60.0,
                   help="seconds before the walltime to stop taking tasks and hand back")
    # set by node_pools for each pool of a node: its index, the node's pools and workers
    p.add_argument("--pool-share", type=int, nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    name = a.endpoint_dir.name
    home = a.endpoint_dir.parent.parent
    block_dir = a.endpoint_dir / "blocks" / a.block_id
    cfg = ep_config.as_single_user(ep_config.load(a.endpoint_dir / "config.yaml"))
    if cfg.engine.pools_per_block > 1:   # one pool per node: a folder each
        rank = next((os.environ[v] for v in RANK_VARIABLES if v in os.environ), "0")
        block_dir = block_dir / f"rank-{rank}"
    share = tuple(a.pool_share) if a.pool_share else None
    if share is None and cfg.engine.pools_per_node > 1:
        pools, workers = cfg.engine.node_pools()
        if pools > 1:   # this node's pools, each its own process
            block_dir.mkdir(parents=True, exist_ok=True)
            return node_pools.run(sys.argv[1:] if argv is None else argv, pools, workers,
                                  block_dir / "pools.log", cfg.stop_grace)
    if share is not None:
        block_dir = block_dir / f"pool-{share[0]}"
    block_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=block_dir / "pool.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    dump_on_signal(block_dir / "pool.log")   # kill -USR1: every thread's stack in pool.log
    pool = Pool(cfg, name, home, block_dir, a.block_id, keep_alive=a.keep_alive,
                walltime=a.walltime, walltime_margin=a.walltime_margin, share=share)
    def stop(*_: object) -> None:
        pool.stopping.set()
        pool._wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    profile_to = os.environ.get("FAAS_POOL_CPROFILE")   # benchmarks/profile_faas.py --cprofile
    if profile_to:
        _profile_threads(pool, profile_to)
    try:
        return pool.run()
    except QueueError as e:
        log.error("%s", e)
        print(f"faas pool: {e}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - logged where admins look, then out at once
        # Never a normal exit here: multiprocessing's atexit hook would join the workers (which
        # ignore SIGTERM and wait on their pipes) forever, while the daemon threads went on
        # receiving and heartbeating tasks that never run. The tasks come back after their
        # visibility timeout; the daemon starts a new pool.
        log.exception("pool %s crashed; exiting now", a.block_id)
        logging.shutdown()
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
