"""A worker process: runs the tasks its pool hands it, one at a time, and writes each result to
the store itself (so the pool's manager moves only small messages).

Jobs arrive on a pipe, one or a list of several, each as ``(task_id, function_id, args_frame |
None, args_size | None, inline_max, args_sha256 | None, check_cancel, rk | None, client_id | None, env |
None)`` (``check_cancel``:
the client's cancel epoch says a cancel may concern this task, so look for its marker first;
``args_size``: the signed length of spilled arguments, the most read of them;
``rk``: the task's secret, which seals the result and proves a cancel marker; ``client_id``: where
the client keeps its functions; ``env``: variables set for this task only, e.g. an MPI task's
``PARSL_MPI_PREFIX``);
the reply, one per job, is ``(task_id, status, result_frame | None,
done_notice | None)`` with the frame only when it is small enough to ride in the client's notice,
and the client's done notice (sealed with the task's secret) made here, so the pool's one process
only forwards it.

Each task runs in the engine's ``working_dir`` (or its own ``<working_dir>/<task id>`` with
``run_in_sandbox``) with ``GC_TASK_UUID`` set, as Globus Compute's workers do.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential, wait_random

from .. import config, sealing, serialize, signing
from ..exceptions import MaxResultSizeExceeded, SignatureError
from ..messages import TaskMessage, cancel_key, function_key, result_key
from ..messages import args_key as _args_key
from ..store import open_store
from .outcomes import done_notice

HOST = socket.gethostname()
RESULT_WRITE_PATIENCE = 120.0   # seconds


def main(conn, store_url: str, log_path: str, where: dict, env: dict | None = None,
         allowed_serializers: tuple = ("dill",), memory_limit_mb: int | None = None,
         tasks: dict | None = None) -> None:
    """``tasks``: how tasks run: ``working_dir`` (absolute), ``sandbox`` (bool), ``engine`` (its
    type) and ``endpoint`` (its name)."""
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
    tasks = tasks or {}
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        # A batch (the pool hands short tasks over several at a time) runs in order, each task
        # answered as soon as it ends: the pool always knows which one runs now (its timeout's
        # clock, the task a cancel or a crash concerns); it reads the answers waiting together.
        for one in job if isinstance(job, list) else [job]:
            conn.send(_run_one(store, functions, one, where, allowed_serializers, tasks))


def _run_one(store, functions: dict, job: tuple, where: dict, allowed: tuple, tasks: dict) -> tuple:
    try:
        return run_job(store, functions, job, where, allowed, tasks)
    except Exception as e:  # noqa: BLE001 - the store refused the result (any backend's error): the pool hands the task back
        return (job[0], "retry", f"{type(e).__name__}: {e}".encode(), None)


def run_job(store, functions: dict, job: tuple, where: dict, allowed: tuple = ("dill",),
            tasks: dict | None = None) -> tuple:
    task_id, function_id, args_frame, args_size, inline_max, args_sha256, check_cancel, rk, cid, env = job
    if check_cancel and cancelled(store, task_id, rk, cid):
        return (task_id, "cancelled", None, None)
    started = time.time()
    try:
        fn = functions.get(function_id)
        if fn is None:   # load_function checks the bytes hash to the id: a swap never loads
            fn = functions[function_id] = serialize.load_function(
                _read_function(store, function_id, cid), function_id, allowed)
        if args_frame is None:
            args_frame = _read_args(store, task_id, cid, args_size)   # never a key the message names
            if args_sha256 is not None and signing.sha256(args_frame) != args_sha256:
                raise SignatureError(f"the arguments stored for task {task_id} do not match the "
                                     f"digest its message carries: swapped or corrupted; not loaded")
        calls = serialize.load_calls(args_frame, allowed)
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
    try:
        store.put(result_key(task_id, cid), data)
    except OSError:   # StoreError too: then the patient path
        _put_result(store, result_key(task_id, cid), data)
    status = "failed" if any(not o[0] for o in outcomes) else "success"
    inline = data if len(data) <= inline_max else None
    # model_construct: the pool checked the message; the notice needs only its id and secret
    notice = done_notice(TaskMessage.model_construct(id=task_id, fn=function_id, rk=rk, cid=cid), status, inline,
                         size=len(data))
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


@retry(retry=retry_if_exception_type(OSError), stop=stop_after_delay(RESULT_WRITE_PATIENCE),
       wait=wait_exponential(multiplier=0.5, max=10) + wait_random(0, 1), reraise=True,
       before_sleep=lambda rs: print(f"faas worker: storing a result failed ({rs.outcome and rs.outcome.exception()}); "
                                     f"retrying", file=sys.stderr))
def _put_result(store, key: str, data: bytes) -> None:
    """A computed result is worth waiting for: a full disk or a store outage gets minutes of
    retries (the pool keeps the task's message invisible meanwhile) before the task is handed
    back to run again."""
    store.put(key, data)
