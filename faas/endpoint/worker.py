"""A worker process: runs the tasks its pool hands it, one at a time, and writes each result to
the store itself (so the pool's manager moves only small messages).

Jobs arrive on a pipe as ``(task_id, function_id, args_frame | None, spilled, inline_max,
args_sha256 | None, check_cancel, rk | None, client_id | None, env | None)`` (``check_cancel``:
the client's cancel epoch says a cancel may concern this task, so look for its marker first;
``rk``: the task's secret, which seals the result and proves a cancel marker; ``client_id``: where
the client keeps its functions; ``env``: variables set for this task only, e.g. an MPI task's
``PARSL_MPI_PREFIX``);
the reply is ``(task_id, status, result_frame | None)`` with the frame only when it is small
enough to ride in the client's notice.

Each task runs in the engine's ``working_dir`` (or its own ``<working_dir>/<task id>`` with
``run_in_sandbox``) with ``GC_TASK_UUID`` set, as Globus Compute's workers do.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from .. import sealing, serialize, signing
from ..exceptions import SignatureError
from ..messages import args_key as _args_key, cancel_key, function_key, result_key
from ..store import open_store

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
        try:
            reply = run_job(store, functions, job, where, allowed_serializers, tasks)
        except Exception as e:  # the store refused the result: the pool hands the task back
            reply = (job[0], "retry", f"{type(e).__name__}: {e}".encode())
        conn.send(reply)


def run_job(store, functions: dict, job: tuple, where: dict, allowed: tuple = ("dill",),
            tasks: dict | None = None) -> tuple:
    task_id, function_id, args_frame, _spilled, inline_max, args_sha256, check_cancel, rk, cid, env = job
    if check_cancel and cancelled(store, task_id, rk, cid):
        return (task_id, "cancelled", None)
    started = time.time()
    try:
        fn = functions.get(function_id)
        if fn is None:   # load_function checks the bytes hash to the id: a swap never loads
            fn = functions[function_id] = serialize.load_function(
                store.get(function_key(function_id, cid)), function_id, allowed)
        if args_frame is None:
            args_frame = store.get(_args_key(task_id, cid))   # never a key the message names
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
    try:
        store.put(result_key(task_id, cid), data)
    except OSError:   # StoreError too: then the patient path
        _put_result(store, result_key(task_id, cid), data)
    status = "failed" if any(not o[0] for o in outcomes) else "success"
    return (task_id, status, data if len(data) <= inline_max else None)


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


def cancelled(store, task_id: str, rk: str, cid: str) -> bool:
    """True if the task's own client wrote its cancel marker (anyone else's does not count)."""
    key = cancel_key(task_id, cid)
    try:   # HEAD first: the common answer is "no marker", and one HEAD is all it costs
        data = store.get(key) if store.exists(key) else None
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
       wait=wait_exponential_jitter(initial=0.5, max=10), reraise=True,
       before_sleep=lambda rs: print(f"faas worker: storing a result failed ({rs.outcome.exception()}); "
                                     f"retrying", file=sys.stderr))
def _put_result(store, key: str, data: bytes) -> None:
    """A computed result is worth waiting for: a full disk or a store outage gets minutes of
    retries (the pool keeps the task's message invisible meanwhile) before the task is handed
    back to run again."""
    store.put(key, data)
