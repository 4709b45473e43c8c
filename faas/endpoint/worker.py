"""A worker process: runs the tasks its pool hands it, one at a time, and writes each result to
the store itself (so the pool's manager moves only small messages).

Jobs arrive on a pipe, one or a list of several, each as ``(task_id, message_body, inline_max,
check_cancel, env | None)``: the task's queue message as it came, which this worker verifies
(signature, expiry, spilled arguments' digest and size, allowed_functions, the resource
specification) before anything of it is deserialized, so the pool's one process does no per-task
cryptography (issue 18). A message that fails is answered ``(task_id, "refused", why, None)``
(the pool sets it aside and tells its sender, as it always did) and never unpickled; once a task
passes, the worker counts it in ``verified`` (shared memory): the pool acts on a task's own
fields (a started notice, a running marker, its timeout) only after that.
:func:`run_job` runs an admitted task given as ``(task_id, function_id, args_frame |
None, args_size | None, inline_max, args_sha256 | None, check_cancel, rk | None, fk | None,
client_id | None, env | None)`` (``check_cancel``:
the client's cancel epoch says a cancel may concern this task, so look for its marker first;
``args_size``: the signed length of spilled arguments, the most read of them;
``rk``: the task's secret, which seals the result and its spilled arguments and proves a cancel
marker; ``fk``: the function's secret, which seals its stored bytes; ``client_id``: where
the client keeps its functions; ``env``: variables set for this task only, e.g. an MPI task's
``PARSL_MPI_PREFIX``);
the reply, one per job, is ``(task_id, status, result_frame | None,
done_notice | None)`` with the frame only when it is small enough to ride in the client's
notice, and the client's done notice (sealed with the task's secret) made here, so the pool's one
process only forwards it. Replies go to the pool several to a pipe message (:class:`Replier`),
each with the seconds the job took here appended (the pool's measure of how short its tasks are,
which the pool's own clock would inflate on a loaded machine) and the task journal's record
(:func:`journal_entry`, so the pool only files it); where the reply queue sends at
once (the local queue) the done notices are sent from here first, several to a send, and the
reply's notice is :data:`TOLD` (the pool then only deletes). A task reported at once (the last
of what the pool handed over) whose result rides in its notice has that result stored after the
notice and before the report: the client's future does not wait for the store's write, and the
pool still deletes the message only once the result is stored.

Each task runs in the engine's ``working_dir`` (or its own ``<working_dir>/<task id>`` with
``run_in_sandbox``) with ``GC_TASK_UUID`` set, as Globus Compute's workers do.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential, wait_random

from .. import config, sealing, serialize, signing
from ..exceptions import FunctionNotAllowed, MaxResultSizeExceeded, SignatureError
from ..messages import TaskMessage, cancel_key, function_key, result_key
from ..messages import args_key as _args_key
from ..proctree import name_os_thread
from ..store import open_queue, open_store
from . import journal
from .outcomes import done_notice, error_summary, failure_frame

HOST = socket.gethostname()
RESULT_WRITE_PATIENCE = 120.0   # seconds
TOLD = "told"   # a reply's notice when this worker sent it to the client itself
FLUSH_AFTER = 0.002   # seconds a finished task of a batch waits for company before it is reported


def main(conn, store_url: str, log_path: str, where: dict, env: dict | None = None,
         allowed_serializers: tuple = ("dill",), memory_limit_mb: int | None = None,
         tasks: dict | None = None, keys: dict[str, signing.Key] | None = None,
         allowed_functions: list[str] | None = None, verified=None) -> None:
    """``tasks``: how tasks run: ``working_dir`` (absolute), ``sandbox`` (bool), ``engine`` (its
    type) and ``endpoint`` (its name). ``keys``: the endpoint's signing keys (None: it runs
    unsigned tasks); ``verified``: a shared counter (``multiprocessing.RawValue``) of the jobs
    received that passed :func:`admit`, counted from 1."""
    # A scheduler's cancel (scancel, qdel, the walltime) signals every process of the job: the
    # pool decides when its workers stop (after handing back, or at its grace deadline).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})   # blocked by the pool's spawn
    os.environ.update(env or {})   # e.g. this worker's CUDA_VISIBLE_DEVICES
    if memory_limit_mb:
        import resource
        limit = memory_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The user's prints land in the worker's log, not on the pool's terminal.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    store = open_store(store_url)
    functions: dict = {}
    where = dict(where, host=HOST, pid=os.getpid())
    tasks = dict(tasks or {}, keys=keys, allowed_functions=allowed_functions)
    if allowed_functions is not None:
        from .. import shell_function
        shell_function.fields_as_data(True)
    replier = Replier(conn, store)
    received = 0
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        # A batch (the pool hands short tasks over several at a time) runs in order; its replies
        # go back together (Replier), each within FLUSH_AFTER of its task's end.
        jobs = job if isinstance(job, list) else [job]
        for i, one in enumerate(jobs):
            received += 1
            last = i == len(jobs) - 1
            # The last task of a hand-over is reported at once: its result, when small enough to
            # ride in the client's notice, is stored after that notice is sent (the client's
            # future does not wait for the store's write: an S3 PUT, a shared file system's
            # create) and before the report, so the pool still deletes its message only once the
            # result is stored. A batch's earlier tasks store theirs before the next task runs.
            later: list | None = [] if last else None
            started, t0 = time.time(), time.perf_counter()
            task, reply = _run_message(store, functions, one, where, allowed_serializers, tasks,
                                       received, verified, later)
            took = time.perf_counter() - t0
            replier.add(task, (*reply, took, journal_entry(task, reply, started, started + took, where)),
                        last=last, unstored=later[0] if later else None)


def journal_entry(task: TaskMessage | None, reply: tuple, started: float, finished: float,
                  where: dict) -> tuple[float, str] | None:
    """``(finished, line)``: the task journal's record of a task this worker ran (or failed
    without running), made here so the pool's one process only files it (it cost the pool
    ~10 us a task: issue 18); None for the replies the pool records itself (refused, cancelled,
    handed back)."""
    status = reply[1]
    if task is None or status not in ("success", "failed"):
        return None
    error = error_summary(reply[2], task) if status == "failed" else None
    return finished, journal.line(task.id, task.fn, n=task.n, sent=task.sent, started=started,
                                  finished=finished, status=status, endpoint=where.get("endpoint", ""),
                                  block=where.get("block", ""), host=where.get("host", HOST),
                                  pid=where.get("pid", os.getpid()), error=error)


class Replier:
    """Reports finished tasks to the pool, several to a pipe message, after telling their clients
    (several done notices to a send, one per reply queue): the pool's one process then reads one
    message for many tasks and only deletes them (issue 18). The last task of what the pool
    handed over is reported at once (a task that came alone: the warm path); the others wait up
    to FLUSH_AFTER for company, timed by a thread, so a report never waits on a long task that
    follows a short one (the pool would think the short one still running). Reports keep the
    order the tasks ran in (the pool matches them to its batch in that order).

    Done notices are sent from here where the reply queue sends at once (the local queue; an SQS
    queue charges per request and the pool gathers notices from every worker for it): the
    report's notice is then :data:`TOLD`. Any trouble sending: the report carries the notice
    and the pool tells the client as it always did."""

    def __init__(self, conn, store=None) -> None:
        self.conn = conn
        self.store = store   # where the results handed over unstored go (see add)
        self.pending: list[tuple[TaskMessage | None, tuple, tuple | None]] = []
        self.first_at = 0.0
        self.cv = threading.Condition()
        self.send_lock = threading.Lock()   # one report at a time, in order
        self.queues: dict = {}   # reply URL -> queue that sends at once, or None
        self.timer: threading.Thread | None | bool = None   # False: cannot be had

    def add(self, task: TaskMessage | None, reply: tuple, last: bool, unstored: tuple | None = None) -> None:
        """``unstored``: ``(key, frame)`` of the task's result, to be stored after its notice is
        sent and before its report (the report then says "retry" if the store refuses it)."""
        with self.cv:
            self.pending.append((task, reply, unstored))
            if len(self.pending) == 1 and not last:
                self.first_at = time.monotonic()
                last = not self._timer_runs()
                self.cv.notify()
        if last:
            self.flush()

    def _timer_runs(self) -> bool:
        if self.timer is None:   # first batch: a thread, only in workers that get batches
            self.timer = threading.Thread(target=self._flush_when_due, name="faas-replier", daemon=True)
            try:
                self.timer.start()
            except RuntimeError as e:   # e.g. worker_memory_limit_mb leaves no room for a stack
                print(f"faas worker: no replier thread ({e}); reporting each task at once",
                      file=sys.stderr)
                self.timer = False
        return bool(self.timer)

    def _flush_when_due(self) -> None:
        name_os_thread("faas-replier")
        while True:
            with self.cv:
                while not self.pending:
                    self.cv.wait()
                wait = self.first_at + FLUSH_AFTER - time.monotonic()
                if wait > 0:
                    self.cv.wait(wait)
                    continue
            self.flush()

    def flush(self) -> None:
        with self.send_lock:
            with self.cv:
                done, self.pending = self.pending, []
            if done:
                self.conn.send(self._tell(done))

    def _tell(self, done: list[tuple[TaskMessage | None, tuple, tuple | None]]) -> list[tuple]:
        """Send the done notices this worker may send, one send per reply queue, then store the
        results handed over unstored; the reports, with :data:`TOLD` for the notices sent (a
        success's inline result dropped then: the pool has no more use for it)."""
        by_queue: dict[str, list[int]] = {}
        for i, (task, (_, status, _, notice, *_), _) in enumerate(done):
            if task is not None and task.reply and notice and status != "cancelled":
                by_queue.setdefault(task.reply, []).append(i)
        reports = [reply for _, reply, _ in done]
        for url, idx in by_queue.items():
            q = self._queue(url)
            if q is None:
                continue
            try:
                q.send([reports[i][3] for i in idx])
            except Exception:  # noqa: BLE001 - the pool tells the client (and decides about a gone one)
                continue
            for i in idx:
                task_id, status, data, _, took, entry = reports[i]
                reports[i] = (task_id, status, data if status != "success" else None, TOLD, took, entry)
        for i, (_, _, unstored) in enumerate(done):
            if unstored is not None:
                try:
                    _store_result(self.store, *unstored)
                except Exception as e:  # noqa: BLE001 - as run_job's own store: the pool hands the task back
                    reports[i] = (reports[i][0], "retry", f"{type(e).__name__}: {e}".encode(), None,
                                  reports[i][4], None)
        return reports

    def _queue(self, url: str):
        q = self.queues.get(url, False)
        if q is False:
            if len(self.queues) >= 64:   # one per client: a long-lived worker keeps the recent ones
                self.queues.clear()
            try:
                q = open_queue(url)
            except Exception:  # noqa: BLE001 - any backend's error: the pool tells the client
                q = None
            self.queues[url] = q = q if q is not None and getattr(q, "linger", 0.0) == 0 else None
        return q


class Refused(Exception):
    """A message this endpoint will not run, nor deserialize anything of (its text: why)."""


def admit(body: str, keys: dict[str, signing.Key] | None, now: float) -> TaskMessage:
    """The task of a queue message, once its signature, expiry and spilled arguments' digest and
    size check out: :class:`Refused` otherwise (ValueError for a message that is not a task at
    all). Nothing of the payload is deserialized here."""
    fields = json.loads(body)
    task = TaskMessage.model_validate(fields)
    why = refusal(fields, task, keys, now)
    if why is not None:
        raise Refused(why)
    return task


def refusal(fields: dict, task: TaskMessage, keys: dict[str, signing.Key] | None, now: float) -> str | None:
    """Why the message ``fields`` (validated as ``task``) must not run, or None."""
    why = signing.check(fields, keys, now) if keys else None
    if why is None and task.args_key and not task.args_sha256 and keys:
        why = "spilled arguments without a digest"
    if why is None and task.args_key and task.args_size is None:
        why = "spilled arguments without their size (a client older than this endpoint?)"
    return why


def not_runnable(task: TaskMessage, tasks: dict) -> Exception | None:
    """Why an admitted task fails without running here (a function not in allowed_functions, a
    resource_specification this engine refuses), as the error its client gets; else None."""
    allowed = tasks.get("allowed_functions")
    if allowed is not None and task.fn not in allowed:
        print(f"faas worker: task {task.id} refused: function {task.fn} is not in allowed_functions",
              file=sys.stderr)
        return FunctionNotAllowed(
            f"function {task.fn} is not allowed on endpoint {tasks.get('endpoint')!r} (its config.yaml "
            f"lists allowed_functions); ask the endpoint's administrator to add it", task_id=task.id)
    engine = tasks.get("engine") or "GlobusComputeEngine"
    if task.res and engine != "GlobusMPIEngine":   # the MPI engine's pool checked it (it lends nodes)
        from .mpi import check_spec
        try:
            check_spec(engine, task.res)
        except ValueError as e:   # InvalidResourceSpecification too
            return e
    return None


def _run_message(store, functions: dict, job: tuple, where: dict, allowed: tuple, tasks: dict,
                 seq: int, verified, later: list | None = None) -> tuple[TaskMessage | None, tuple]:
    """Admit and run one job: ``(task, reply)``, ``task`` None where it was refused (its fields
    are not to be believed) or could not be read. ``later``: as :func:`run_job`'s."""
    claimed_id, body, inline_max, check_cancel, env = job
    try:
        task = admit(body, tasks.get("keys"), time.time())
    except Refused as e:
        return None, (claimed_id, "refused", str(e).encode(), None)
    except ValueError as e:   # the pool validated it already: not expected
        return None, (claimed_id, "malformed", f"{type(e).__name__}: {e}".encode()[:500], None)
    if verified is not None:
        verified.value = seq
    try:
        exc = not_runnable(task, tasks)
        if exc is not None:
            return task, fail_task(store, task, exc, where, inline_max)
        args = serialize.unb64(task.args) if task.args is not None else None
        reply = run_job(store, functions, (task.id, task.fn, args, task.args_size, inline_max, task.args_sha256,
                                           check_cancel, task.rk, task.fk, task.cid, env), where, allowed, tasks, task,
                        later)
    except Exception as e:  # noqa: BLE001 - the store refused the result (any backend's error): the pool hands the task back
        return task, (task.id, "retry", f"{type(e).__name__}: {e}".encode(), None)
    return task, reply


def fail_task(store, task: TaskMessage, exc: BaseException, where: dict, inline_max: int) -> tuple:
    """Fail an admitted task without running it: its result where its client looks, and the
    reply (with the done notice) the pool forwards."""
    data = failure_frame(task, exc, **where)
    _store_result(store, result_key(task.id, task.cid), data)
    inline = data if len(data) <= inline_max else None
    return (task.id, "failed", inline, done_notice(task, "failed", inline, size=len(data)))


def run_job(store, functions: dict, job: tuple, where: dict, allowed: tuple = ("dill",),
            tasks: dict | None = None, task: TaskMessage | None = None, later: list | None = None) -> tuple:
    """Run the job, store its result and return the reply. With a list as ``later``, a result
    small enough to ride in the reply (and the client's notice) is not stored here: ``(key,
    frame)`` is appended to ``later`` for the caller to store."""
    task_id, function_id, args_frame, args_size, inline_max, args_sha256, check_cancel, rk, fk, cid, env = job
    if check_cancel and cancelled(store, task_id, rk, cid):
        return (task_id, "cancelled", None, None)
    started = time.time()
    try:
        fn = functions.get(function_id)
        if fn is None:   # opened with the function's secret, its hash checked against the id: a swap never loads
            fn = functions[function_id] = serialize.load_function(
                serialize.open_function(_read_function(store, function_id, cid), function_id, fk), function_id, allowed)
        if args_frame is None:
            args_frame = _read_args(store, task_id, cid, args_size)   # never a key the message names
            if args_sha256 is not None and signing.sha256(args_frame) != args_sha256:
                raise SignatureError(f"the arguments stored for task {task_id} do not match the "
                                     f"digest its message carries: swapped or corrupted; not loaded")
            args_frame = serialize.open_args(args_frame, task_id, rk)
        calls = serialize.load_calls(args_frame, allowed,   # restricted: no code in the arguments either
                                     plain_only=(tasks or {}).get("allowed_functions") is not None)
        saved = _enter_task(task_id, env, tasks or {}, fn)
    except BaseException as e:  # noqa: BLE001 - any failure to load is the task's failure
        outcomes = [serialize.error_outcome(e)]
    else:
        outcomes = []
        try:
            for args, kwargs in calls:
                try:
                    outcomes.append((True, fn(*args, **kwargs)))
                except BaseException as e:  # noqa: BLE001 - SystemExit too: the worker lives on
                    outcomes.append(serialize.error_outcome(e))
        finally:
            _restore_env(saved)
    header = {"task_id": task_id, "function_id": function_id, "started": started,
              "finished": time.time(), **where}
    data = serialize.result_bytes(header, outcomes, rk)
    limit = config.size_limit("max_result_bytes")
    if len(data) > limit:   # clients read no more than this of a result they hold no notice for
        outcomes = [serialize.error_outcome(MaxResultSizeExceeded(len(data), limit))]
        data = serialize.result_bytes(header, outcomes, rk)
    inline = data if len(data) <= inline_max else None
    if later is not None and inline is not None:
        later.append((result_key(task_id, cid), data))
    else:
        _store_result(store, result_key(task_id, cid), data)
    status = "failed" if any(not o[0] for o in outcomes) else "success"
    # model_construct (20 us: given ``task`` when the caller has it): the notice needs only its id and secret
    notice = done_notice(task or TaskMessage.model_construct(id=task_id, fn=function_id, rk=rk, cid=cid),
                         status, inline, size=len(data))
    return (task_id, status, inline, notice)


def _enter_task(task_id: str, env: dict | None, tasks: dict, fn) -> dict:
    """Set the task's variables and folder (Globus's ``GC_TASK_UUID``, ``GC_TASK_SANDBOX_DIR``,
    an MPI task's ``PARSL_*``); return what to restore after it."""
    if env is None and tasks.get("engine") != "GlobusMPIEngine" and _is_mpi_function(fn):
        from .mpi import NotAnMPIEngine
        raise NotAnMPIEngine(
            f"MPIFunction needs an endpoint whose engine.type is GlobusMPIEngine (which sets "
            f"$PARSL_MPI_PREFIX from the task's resource_specification); endpoint "
            f"{tasks.get('endpoint')!r} runs {tasks.get('engine', 'GlobusComputeEngine')}")
    env = dict(env or {}, GC_TASK_UUID=task_id)
    folder = tasks.get("working_dir")
    if folder and tasks.get("sandbox"):
        folder = os.path.join(folder, task_id)
        env["GC_TASK_SANDBOX_DIR"] = folder
    if folder:
        try:
            os.chdir(folder)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            os.chdir(folder)
    saved = {k: os.environ.get(k) for k in (*env, "GC_TASK_SANDBOX_DIR")}
    os.environ.pop("GC_TASK_SANDBOX_DIR", None)
    os.environ.update(env)
    return saved


def _restore_env(saved: dict) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _is_mpi_function(fn) -> bool:
    mod = sys.modules.get("faas.shell_function")   # loaded with any MPIFunction
    return mod is not None and isinstance(fn, mod.MPIFunction)


def _read_function(store, function_id: str, cid: str) -> bytes:
    """The function's bytes, never more than ``max_function_bytes`` read (an object planted at
    its key is refused before its hash is even checked)."""
    limit = config.size_limit("max_function_bytes")
    data = store.get_head(function_key(function_id, cid), limit + 1)
    if len(data) > limit:
        raise SignatureError(f"the function stored for id {function_id} is larger than "
                             f"max_function_bytes ({limit} bytes; FAAS_MAX_FUNCTION_BYTES on the "
                             f"endpoint): planted, or the limit is lower here than on the client; "
                             f"not loaded")
    return data


def _read_args(store, task_id: str, cid: str, size: int | None) -> bytes:
    """The spilled arguments, never more read than their signed size (+1, to tell a longer
    object, which someone planted or swapped: refused)."""
    if not isinstance(size, int) or isinstance(size, bool):   # None, or a pool older than args_size
        raise SignatureError(f"task {task_id}: its arguments were spilled to the store but its "
                             f"message gives no args_size; not loaded (send it again from a "
                             f"current faas client)")
    data = store.get_head(_args_key(task_id, cid), size + 1)
    if len(data) != size:
        found = f"more than {size}" if len(data) > size else str(len(data))
        raise SignatureError(f"the arguments stored for task {task_id} do not match the digest its "
                             f"message carries ({found} bytes where its signed args_size is {size}; "
                             f"no more was read): swapped or corrupted; not loaded")
    return data


def cancelled(store, task_id: str, rk: str, cid: str) -> bool:
    """True if the task's own client wrote its cancel marker (anyone else's does not count)."""
    key = cancel_key(task_id, cid)
    try:   # HEAD first: the common answer is "no marker", and one HEAD is all it costs
        data = store.get_head(key, sealing.CANCEL_MARKER_MAX) if store.exists(key) else None
    except KeyError:   # KeyNotFound: deleted in between
        data = None
    if data is None:
        return False
    if sealing.check_cancel(data, rk, task_id):
        return True
    print(f"faas worker: ignoring a cancel marker for task {task_id} that its client did not write",
          file=sys.stderr)
    return False


def _store_result(store, key: str, data: bytes) -> None:
    try:
        store.put(key, data)
    except OSError:   # StoreError too: then the patient path
        _put_result(store, key, data)


@retry(retry=retry_if_exception_type(OSError), stop=stop_after_delay(RESULT_WRITE_PATIENCE),
       wait=wait_exponential(multiplier=0.5, max=10) + wait_random(0, 1), reraise=True,
       before_sleep=lambda rs: print(f"faas worker: storing a result failed ({rs.outcome and rs.outcome.exception()}); "
                                     f"retrying", file=sys.stderr))
def _put_result(store, key: str, data: bytes) -> None:
    """A computed result is worth waiting for: a full disk or a store outage gets minutes of
    retries (the pool keeps the task's message invisible meanwhile) before the task is handed
    back to run again."""
    store.put(key, data)
