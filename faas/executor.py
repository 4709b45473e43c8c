"""``faas.Executor``: a ``concurrent.futures.Executor`` whose calls run on an endpoint.

Semantics follow ``concurrent.futures`` (and ProcessPoolExecutor where it defines them): futures
move PENDING -> RUNNING -> FINISHED; ``cancel()`` succeeds until the call starts, and a cancelled
call never runs; ``map`` yields in order, its ``timeout`` counts from the call to ``map``;
``shutdown(wait, cancel_futures)``; submitting after shutdown raises RuntimeError.
"""
from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, Callable, Iterable, Iterator

from .api import Client, TaskState, decode_result, outcome_value
from .config import resolve
from .exceptions import ConfigError, TaskCancelled


def _done_hook(future: "TaskFuture") -> None:
    """The cancel hook of a future whose task is over (cancel() then fails anyway)."""


class TaskFuture(Future):
    """A Future with the ``task_id`` of the task that computes it."""

    def __init__(self, task_id: str, on_cancel: Callable[["TaskFuture"], None]):
        super().__init__()
        self.task_id = task_id
        self._on_cancel = on_cancel

    def cancel(self) -> bool:
        if super().cancel():
            self._on_cancel(self)
            return True
        return False


def _result_or_cancel(fut: Future, timeout: float | None = None) -> Any:
    """As concurrent.futures does in ``map``: the future waited on is cancelled too when the wait
    ends early (a timeout, the iterator closed), which cancels its task if it has not started."""
    try:
        try:
            return fut.result(timeout)
        finally:
            fut.cancel()
    finally:
        del fut   # no cycle through the exception held by the future


class Executor(_BaseExecutor):
    """Run calls on ``endpoint`` (default: the client's, ``local`` for the embedded default).

    ``task_timeout`` (seconds) stops any call that runs longer, failing it with TaskTimeout.
    ``endpoint_id`` is accepted as a synonym of ``endpoint`` for Globus Compute users.
    ``user_endpoint_config``: variables for a multi-user endpoint's template (account, walltime, ...).
    """

    def __init__(self, endpoint: str | None = None, *, client: Client | None = None,
                 profile: str | None = None, task_timeout: float | None = None,
                 endpoint_id: str | None = None, user_endpoint_config: dict | None = None,
                 **client_options: Any):
        self._own_client = client is None
        self.client = client or Client(resolve(profile, **client_options))
        self.endpoint = endpoint or endpoint_id or self.client.settings.endpoint
        if task_timeout is not None and not task_timeout > 0:
            raise ConfigError(f"task_timeout must be a number of seconds > 0, got {task_timeout!r}")
        self.task_timeout = task_timeout
        self.user_endpoint_config = user_endpoint_config
        self._futures: set[TaskFuture] = set()
        self._by_task: dict[str, set[TaskFuture]] = {}
        self._lock = threading.Lock()
        self._shutdown = False
        self._all_done = threading.Condition(self._lock)

    # -- submitting -----------------------------------------------------------------------
    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> TaskFuture:
        return self._submit_chunks(fn, [[(args, kwargs)]])[0]

    def _submit_chunks(self, fn: Callable, chunks: list[list]) -> list[TaskFuture]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        fid = self.client.register_function(fn)   # an unserializable function fails here
        states = self.client.submit_tasks(self.endpoint, fid, chunks, self.task_timeout, wait_sent=False,
                                          user_endpoint_config=self.user_endpoint_config)
        out: list[TaskFuture] = []
        for st, calls in zip(states, chunks):
            futures = [TaskFuture(st.task_id, self._cancel_hook(st)) for _ in calls]
            with self._lock:
                self._futures.update(futures)
                self._by_task[st.task_id] = set(futures)
            st.on_change(self._resolver(futures))
            out.extend(futures)
        return out

    def _cancel_hook(self, st: TaskState) -> Callable[[TaskFuture], None]:
        def hook(future: TaskFuture) -> None:
            self._forget(future)
            # The task is cancelled remotely once every call it carries is cancelled.
            if st.task_id not in self._by_task and st.status == "pending":
                self.client.cancel(st.task_id)
        return hook

    def _resolver(self, futures: list[TaskFuture]) -> Callable[[TaskState], None]:
        def resolve_(st: TaskState) -> None:
            if st.status == "running":
                for f in futures:
                    if not f.set_running_or_notify_cancel():
                        self._forget(f)
                return
            outcomes = None
            error: BaseException | None = st.error
            if st.status == "cancelled" and error is None:
                error = TaskCancelled(f"task {st.task_id} was cancelled")
            if error is None:
                try:
                    _, outcomes = decode_result(st.data, st.task_id)
                except BaseException as e:  # noqa: BLE001
                    error = e
            # The futures hold the outcome now: the client need not keep the task (nor, after a
            # cancel or a failure, would it drop it), and a done future needs no cancel hook.
            self.client._tasks.pop(st.task_id, None)
            for i, f in enumerate(futures):
                f._on_cancel = _done_hook
                if f.done() or (not f.running() and not f.set_running_or_notify_cancel()):
                    self._forget(f)
                    continue
                if error is not None:
                    f.set_exception(error)
                else:
                    try:
                        f.set_result(outcome_value(outcomes[i] if i < len(outcomes) else outcomes[-1],
                                                   st.task_id))
                    except BaseException as e:  # noqa: BLE001 - the call's own exception
                        f.set_exception(e)
                self._forget(f)
        return resolve_

    def _forget(self, f: TaskFuture) -> None:
        with self._lock:
            self._futures.discard(f)
            siblings = self._by_task.get(f.task_id)
            if siblings is not None:
                siblings.discard(f)
                if not siblings:
                    del self._by_task[f.task_id]
            if not self._futures:
                self._all_done.notify_all()

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None,
            chunksize: int = 1) -> Iterator:
        """Like ``Executor.map``; ``chunksize`` calls travel in one task message."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        calls = ((args, {}) for args in zip(*iterables))
        chunks = []
        while True:
            chunk = list(itertools.islice(calls, chunksize))
            if not chunk:
                break
            chunks.append(chunk)
        fs = self._submit_chunks(fn, chunks) if chunks else []

        def result_iterator():
            try:
                fs.reverse()
                while fs:
                    if end_time is None:
                        yield _result_or_cancel(fs.pop())
                    else:
                        yield _result_or_cancel(fs.pop(), end_time - time.monotonic())
            finally:
                for f in reversed(fs):   # the next to run first
                    f.cancel()
        return result_iterator()

    # -- ending ------------------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            pending = list(self._futures)
        if cancel_futures:
            for f in pending:
                f.cancel()
        if wait:
            self.client.flush()
            with self._lock:
                while self._futures:
                    self._all_done.wait(1.0)
            if self._own_client:
                self.client.close()
        elif self._own_client:
            threading.Thread(target=self._close_when_done, daemon=True).start()

    def _close_when_done(self) -> None:
        with self._lock:
            while self._futures:
                self._all_done.wait(1.0)
        self.client.close()


__all__ = ["Executor", "TaskFuture", "FuturesTimeout"]
