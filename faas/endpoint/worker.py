"""A worker process: runs the tasks its pool hands it, one at a time, and writes each result to
the store itself (so the pool's manager moves only small messages).

Jobs arrive on a pipe as ``(task_id, function_id, args_frame | None, spilled, inline_max,
args_sha256 | None, check_cancel, rk | None, client_id | None)`` (``check_cancel``: the client's
cancel epoch says a cancel may concern this task, so look for its marker first; ``rk``: the
task's secret, which seals the result and proves a cancel marker; ``client_id``: where the
client keeps its functions);
the reply is ``(task_id, status, result_frame | None)`` with the frame only when it is small
enough to ride in the client's notice.
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
         allowed_serializers: tuple = ("dill",), memory_limit_mb: int | None = None) -> None:
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
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply = run_job(store, functions, job, where, allowed_serializers)
        except Exception as e:  # the store refused the result: the pool hands the task back
            reply = (job[0], "retry", f"{type(e).__name__}: {e}".encode())
        conn.send(reply)


def run_job(store, functions: dict, job: tuple, where: dict, allowed: tuple = ("dill",)) -> tuple:
    task_id, function_id, args_frame, _spilled, inline_max, args_sha256, check_cancel, rk, cid = job
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
    except BaseException as e:  # noqa: BLE001 - any failure to load is the task's failure
        outcomes = [serialize.error_outcome(e)]
    else:
        outcomes = []
        for args, kwargs in calls:
            try:
                outcomes.append((True, fn(*args, **kwargs)))
            except BaseException as e:  # noqa: BLE001 - SystemExit too: the worker lives on
                outcomes.append(serialize.error_outcome(e))
    header = {"task_id": task_id, "function_id": function_id, "started": started,
              "finished": time.time(), **where}
    data = serialize.result_bytes(header, outcomes, rk)
    try:
        store.put(result_key(task_id, cid), data)
    except OSError:   # StoreError too: then the patient path
        _put_result(store, result_key(task_id, cid), data)
    status = "failed" if any(not o[0] for o in outcomes) else "success"
    return (task_id, status, data if len(data) <= inline_max else None)


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
