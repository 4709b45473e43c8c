"""``faas.Executor``: a ``concurrent.futures.Executor`` whose calls run on an endpoint.

Semantics follow ``concurrent.futures`` (and ProcessPoolExecutor where it defines them): futures
move PENDING -> RUNNING -> FINISHED; ``cancel()`` succeeds until the call starts, and a cancelled
call never runs; ``map`` yields in order, its ``timeout`` counts from the call to ``map``;
``shutdown(wait, cancel_futures)``; submitting after shutdown raises RuntimeError.

It is also Globus Compute's Executor (globus-compute-sdk 4.x): the same constructor keywords, the
settable ``endpoint_id``, ``task_group_id``, ``resource_specification`` and
``user_endpoint_config``, ``register_function``, ``submit_to_registered_function`` and
``reload_tasks``. Every task belongs to a task group (a UUID), recorded in the store, so another
process gets the group's futures back from the results there.
"""
from __future__ import annotations

import difflib
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, cast

from .api import Client, TaskState, decode_result, outcome_value
from .config import Settings, resolve
from .exceptions import ConfigError, ResultForged, TaskCancelled
from .serialize_strategies import ComputeSerializer, SourceCode, validate_strategylike

log = logging.getLogger("faas.executor")

#: Globus Compute's Executor keywords that mean nothing here, and why (each said once, at DEBUG)
NO_EFFECT = {
    "amqp_port": "results come on the client's own reply queue, not over AMQP",
    "api_burst_limit": "there is no web service to rate-limit: sends are batched on the queue",
    "api_burst_window_s": "there is no web service to rate-limit: sends are batched on the queue",
    "serializer": "arguments and functions are always serialized with dill",
    "result_serializers": "results are always serialized with dill (pickle for plain data)",
}
_SAID: set[str] = set()


def said_once(key: str, message: str, *args: Any) -> None:
    """Log ``message`` at DEBUG the first time ``key`` is seen in this process."""
    if key not in _SAID:
        _SAID.add(key)
        log.debug(message, *args)


def _done_hook(future: TaskFuture) -> None:
    """The cancel hook of a future whose task is over (cancel() then fails anyway)."""


class TaskFuture(Future):
    """A Future with the ``task_id`` of the task that computes it (Globus's ComputeFuture)."""

    def __init__(self, task_id: str, on_cancel: Callable[[TaskFuture], None]):
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


def _uuid_or_none(value: Any, name: str) -> uuid.UUID | None:
    """Globus's ``as_optional_uuid``: a UUID, its string, or None; a clear error otherwise."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a UUID or a UUID string, got {type(value).__name__}")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a UUID (like '{uuid.UUID(int=1)}')") from None


def _uuid_if_one(ref: str) -> uuid.UUID | str:
    """``ref`` as a ``uuid.UUID`` when it is one in its canonical form, else ``ref``: a name
    stays a name, even one ``uuid.UUID`` would parse (32 hex digits), so it round-trips."""
    try:
        as_uuid = uuid.UUID(ref)
    except ValueError:
        return ref
    return as_uuid if str(as_uuid) == ref.lower() else ref


def _json_dict_or_none(value: Any, name: str) -> dict | None:
    """Globus's check for ``resource_specification`` and ``user_endpoint_config``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict (or None), not {type(value).__name__}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be JSON-serializable: {e}") from None
    return value


class Executor(_BaseExecutor):
    """Run calls on an endpoint: ``Executor(endpoint_id)`` (a name or an endpoint's UUID; default:
    the client's, ``local`` for the embedded default).

    Globus Compute's keywords: ``client`` (a ``faas.Client`` or the boto-style ``faas.client()``),
    ``task_group_id`` (default: the previous Executor's in this process, else one is made at the
    first submit), ``resource_specification`` (MPI: num_nodes, ranks_per_node, num_ranks),
    ``user_endpoint_config`` (a multi-user endpoint's template variables), ``label`` (in repr),
    ``batch_size`` (the most tasks one send round carries). ``amqp_port``, ``api_burst_limit``,
    ``api_burst_window_s``, ``serializer`` and ``result_serializers`` are accepted (the last two
    checked as Globus checks them) and have no effect here (said once at DEBUG). faas's own:
    ``task_timeout`` (seconds: a longer call is stopped with TaskTimeout), ``profile`` and any
    client setting (``store=``, ``home=``, ...) when no client is given. ``client`` is the one
    given (default: a boto-style one, which the Executor closes at shutdown).

    Each sent task is recorded in its task group in the store (one record per ``batch_size``
    tasks, within 0.5 s, at shutdown), for ``reload_tasks`` in another process;
    ``task_count_submitted`` counts the recorded ones.
    """

    _default_task_group_id: uuid.UUID | None = None
    _serializer: ComputeSerializer | None

    def __init__(self, endpoint_id: str | uuid.UUID | None = None, client: Any = None,
                 task_group_id: str | uuid.UUID | None = None,
                 resource_specification: dict | None = None, user_endpoint_config: dict | None = None,
                 label: str = "", batch_size: int = 128, amqp_port: int | None = None,
                 api_burst_limit: int = 4, api_burst_window_s: int = 16, serializer: Any = None,
                 result_serializers: Iterable | None = None, *, endpoint: str | None = None,
                 profile: str | None = None, task_timeout: float | None = None, **client_options: Any):
        unknown = sorted(set(client_options) - set(Settings.model_fields))
        if unknown:
            known = sorted(set(Settings.model_fields) | {
                "endpoint_id", "client", "task_group_id", "resource_specification", "user_endpoint_config",
                "label", "batch_size", "amqp_port", "api_burst_limit", "api_burst_window_s", "serializer",
                "result_serializers", "endpoint", "profile", "task_timeout"})
            hints = [f"{k!r}" + (f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(
                k, known, n=1)) else "") for k in unknown]
            raise TypeError(f"Executor() got unexpected keyword argument(s) {', '.join(hints)}; "
                            f"it takes {', '.join(known)}")
        if endpoint is not None and endpoint_id is not None and str(endpoint) != str(endpoint_id):
            raise TypeError(f"Executor(): endpoint={endpoint!r} and endpoint_id={endpoint_id!r} name two "
                            f"endpoints; give one")
        if client is not None and (profile is not None or client_options):
            raise TypeError("Executor(): give client settings (profile=, store=, ...) to the client, or no "
                            "client; not both")
        if client is not None and not isinstance(client, Client) and \
                not isinstance(getattr(client, "boto_client", None), Client):
            raise TypeError(f"client must be a faas.Client or a faas.client(), got {type(client).__name__}")
        if task_timeout is not None and not task_timeout > 0:
            raise ConfigError(f"task_timeout must be a number of seconds > 0, got {task_timeout!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        self.task_timeout = task_timeout
        self.endpoint_id = endpoint_id if endpoint_id is not None else endpoint
        self.resource_specification = resource_specification
        self.user_endpoint_config = user_endpoint_config
        self.task_group_id = task_group_id if task_group_id else Executor._default_task_group_id
        self.label = label
        self.batch_size = max(1, batch_size)
        self.serializer = serializer                   # checked as Globus does, before a client exists
        self.result_serializers = result_serializers
        self._own_client = client is None
        if client is None:
            self.client = self._api = Client(resolve(profile, **client_options))
        elif isinstance(client, Client):
            self.client = self._api = client
        else:   # faas.Client (Globus's): the boto-style client underneath does the work
            self.client, self._api = client, client.boto_client
        self.amqp_port = amqp_port
        self.api_burst_limit = min(8, max(1, api_burst_limit))
        self.api_burst_window_s = min(32, max(1, api_burst_window_s))
        for name, value, default in (("amqp_port", amqp_port, None), ("api_burst_limit", api_burst_limit, 4),
                                     ("api_burst_window_s", api_burst_window_s, 16)):
            if value != default:
                said_once(f"Executor.{name}", "Executor(%s=%r): no effect here: %s", name, value, NO_EFFECT[name])
        self.task_count_submitted = 0
        self._function_registry: dict[Any, str] = {}   # fn, or hash(source)
        self._futures: set[TaskFuture] = set()
        self._by_task: dict[str, set[TaskFuture]] = {}
        self._reloading: dict[str, TaskFuture] = {}   # task id -> future, polled in the store
        self._poller: threading.Thread | None = None
        self._stop_polling = threading.Event()
        self._lock = threading.Lock()
        self._shutdown = False
        self._all_done = threading.Condition(self._lock)

    def __repr__(self) -> str:
        label = f"{self.label}; " if self.label else ""
        return f"faas.Executor<{label}ep_id:{self.endpoint_id}; tg_id:{self.task_group_id}; bs:{self.batch_size}>"

    # -- Globus's settable properties ----------------------------------------------------------
    @property
    def endpoint_id(self) -> uuid.UUID | str:
        """Where later submits go (the client's endpoint if unset): a ``uuid.UUID`` when it is
        an endpoint's UUID, as Globus stores it (so ``ex.endpoint_id == uuid_given`` holds), else
        the endpoint's name."""
        return _uuid_if_one(self._endpoint_id or self._api.settings.endpoint)

    @endpoint_id.setter
    def endpoint_id(self, value: str | uuid.UUID | None) -> None:
        if value is not None and not isinstance(value, (str, uuid.UUID)):
            raise TypeError(f"endpoint_id must be an endpoint's name or UUID, got {type(value).__name__}")
        self._endpoint_id = str(value) if value else None

    @property
    def endpoint(self) -> str:
        """faas's name for :attr:`endpoint_id`, always a str."""
        return str(self.endpoint_id)

    @endpoint.setter
    def endpoint(self, value: str | None) -> None:
        self.endpoint_id = value

    @property
    def task_group_id(self) -> uuid.UUID | None:
        """The task group of later submits (a UUID; made at the first submit if unset). Later
        Executors of this process reuse it by default, as Globus's do."""
        return self._task_group_id

    @task_group_id.setter
    def task_group_id(self, value: str | uuid.UUID | None) -> None:
        tg = _uuid_or_none(value, "task_group_id")
        self._task_group_id = tg
        self._tg = str(tg) if tg else None
        if tg:
            Executor._default_task_group_id = tg

    @property
    def resource_specification(self) -> dict | None:
        """What each later task needs (MPI: num_nodes, ranks_per_node, num_ranks): JSON-able."""
        return self._resource_specification

    @resource_specification.setter
    def resource_specification(self, value: dict | None) -> None:
        self._resource_specification = _json_dict_or_none(value, "resource_specification")

    @property
    def user_endpoint_config(self) -> dict | None:
        """Variables for a multi-user endpoint's template, for later tasks: JSON-able."""
        return self._user_endpoint_config

    @user_endpoint_config.setter
    def user_endpoint_config(self, value: dict | None) -> None:
        self._user_endpoint_config = _json_dict_or_none(value, "user_endpoint_config")

    @property
    def serializer(self) -> ComputeSerializer:
        """Accepted for Globus code; faas always uses dill. Unset, it is Globus's default
        ``ComputeSerializer()`` (DillCode, DillDataBase64: what faas sends with), as Globus's
        Executor gives its client's, so ``ex.serializer.check_strategies(...)`` works."""
        if self._serializer is None:
            self._serializer = ComputeSerializer()
        return self._serializer

    @serializer.setter
    def serializer(self, value: Any) -> None:
        if value is not None:
            if not isinstance(value, ComputeSerializer):
                raise TypeError(f"Expected ComputeSerializer, got {type(value).__name__}")
            said_once("Executor.serializer", "Executor.serializer: no effect here: %s", NO_EFFECT["serializer"])
        self._serializer = value

    @property
    def result_serializers(self) -> Any:
        """Accepted for Globus code; results are always dill (or pickle) here."""
        return self._result_serializers

    @result_serializers.setter
    def result_serializers(self, value: Iterable | None) -> None:
        if value is not None:
            value = list(value)
            for strategy in value:   # Globus's check: each a known strategy (SerializationError)
                validate_strategylike(strategy)
        if value:
            said_once("Executor.result_serializers", "Executor.result_serializers: no effect here: %s",
                      NO_EFFECT["result_serializers"])
        self._result_serializers = value

    # -- registering ---------------------------------------------------------------------------
    def register_function(self, fn: Callable, function_id: str | None = None, **func_register_kwargs: Any) -> str:
        """Register ``fn`` (or, with ``function_id``, say which id it has) for later submits;
        registering one function twice is a ValueError, as in Globus. Other keywords go to the
        client's ``register_function`` (a ``faas.Client`` takes description=, public=, ...)."""
        if self._shutdown:
            raise RuntimeError(f"{self!r} is shutdown; refusing to register function")
        try:
            cached = self._function_registry.get(fn)
        except TypeError:
            raise TypeError(f"register_function: {type(fn).__name__} objects are not hashable, so they "
                            f"cannot be registered; submit() them instead") from None
        if cached is not None:
            msg = f"Function already registered as function id: {cached}"
            if function_id == cached:
                log.warning(msg)
                return cached
            raise ValueError(msg + (f" (attempted id: {function_id})" if function_id else ""))
        if function_id is not None:
            self._api._check_function(function_id)
            fid = function_id
        else:
            func_register_kwargs.pop("function", None)
            fid = self.client.register_function(fn, **func_register_kwargs)
        self._function_registry[fn] = fid
        return fid

    def register_source_code(self, source: str, function_name: str, **registration_kwargs: Any) -> str:
        """Register Python source text whose ``function_name`` is the entry point (Globus's
        ``register_source_code``); registering one source twice is a ValueError, as in Globus.
        The source runs on the worker, in a fresh namespace, at the function's first call."""
        if self._shutdown:
            raise RuntimeError(f"{self!r} is shutdown; refusing to register function")
        key = hash(source)
        if key in self._function_registry:
            raise ValueError(f"Function already registered as function id: {self._function_registry[key]}")
        registration_kwargs.pop("function", None)
        fid = self.client.register_function(SourceCode(source, function_name), **registration_kwargs)
        self._function_registry[key] = fid
        return fid

    # -- submitting -----------------------------------------------------------------------
    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> TaskFuture:
        return self._submit_chunks(fn, [[(args, kwargs)]])[0]

    def submit_to_registered_function(self, function_id: str, args: tuple | list | None = None,
                                      kwargs: dict | None = None) -> TaskFuture:
        """Run a function registered before (by id), as ``fn(*args, **kwargs)``."""
        if args is None:
            args = ()
        if not isinstance(args, (list, tuple)):
            raise TypeError(f"args: expected a tuple, got {type(args).__name__}")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs: expected a dict, got {type(kwargs).__name__}")
        if not all(isinstance(k, str) for k in kwargs):
            raise TypeError("kwargs: expected str keys")
        return self._submit_chunks(None, [[(tuple(args), kwargs)]], function_id=function_id)[0]

    def _submit_chunks(self, fn: Callable | None, chunks: list[list],
                       function_id: str | None = None, per_chunk: bool = False) -> list[TaskFuture]:
        """A future per call; with ``per_chunk`` (``map``), one per task whose result is the list
        of its calls' outcomes, unwrapped as the caller reads them (as ProcessPoolExecutor does)."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        if function_id is None:
            assert fn is not None, "either fn or function_id"   # every caller passes one of them
            function_id = self._registered_id(fn) if self._function_registry else None
            if function_id is None:
                function_id = self._api.register_function(fn)   # an unserializable function fails here
        if self._tg is None:
            self.task_group_id = uuid.uuid4()
        states = self._api.submit_tasks(self._endpoint_id, function_id, chunks, self.task_timeout, wait_sent=False,
                                        user_endpoint_config=self._user_endpoint_config,
                                        resource_specification=self._resource_specification,
                                        task_group_id=self._tg, batch_size=self.batch_size, on_sent=self._sent)
        out: list[TaskFuture] = []
        for st, calls in zip(states, chunks, strict=True):   # one state per chunk sent
            futures = [TaskFuture(st.task_id, self._cancel_hook(st)) for _ in ([0] if per_chunk else calls)]
            with self._lock:
                self._futures.update(futures)
                self._by_task[st.task_id] = set(futures)
            st.on_change(self._resolver(futures, len(calls) if per_chunk else None))
            out.extend(futures)
        return out

    def _registered_id(self, fn: Callable) -> str | None:
        try:
            return self._function_registry.get(fn)
        except TypeError:   # unhashable: never registered
            return None

    def _sent(self, n: int) -> None:
        with self._lock:   # the client's sender thread, or a flush() that records task groups
            self.task_count_submitted += n

    def _cancel_hook(self, st: TaskState) -> Callable[[TaskFuture], None]:
        def hook(future: TaskFuture) -> None:
            self._forget(future)
            # The task is cancelled remotely once every call it carries is cancelled.
            if st.task_id not in self._by_task and st.status == "pending":
                self._api.cancel(st.task_id)
        return hook

    def _resolver(self, futures: list[TaskFuture], chunk_calls: int | None = None) -> Callable[[TaskState], None]:
        """``chunk_calls``: ``futures`` is one future for a chunk of that many calls (``map``)."""
        def resolve_(st: TaskState) -> None:
            if st.status == "running":
                for f in futures:
                    if not f.set_running_or_notify_cancel():
                        self._forget(f)
                return
            outcomes: list = []   # read only when decoded (error is None)
            error: BaseException | None = st.error
            if st.status == "cancelled" and error is None:
                error = TaskCancelled(f"task {st.task_id} was cancelled")
            if error is None:
                try:
                    # not cancelled, no error: the notice listener set the result frame
                    _, outcomes = decode_result(cast(bytes, st.data), st.task_id)
                except BaseException as e:  # noqa: BLE001 - why the result does not load is every future's error
                    error = e
            # The futures hold the outcome now: the client need not keep the task (nor, after a
            # cancel or a failure, would it drop it), and a done future needs no cancel hook.
            self._api._tasks.pop(st.task_id, None)
            for i, f in enumerate(futures):
                f._on_cancel = _done_hook
                if f.done() or (not f.running() and not f.set_running_or_notify_cancel()):
                    self._forget(f)
                    continue
                if error is not None:
                    f.set_exception(error)
                elif chunk_calls is not None:   # a load failure is one outcome for every call
                    f.set_result(outcomes[:chunk_calls] + outcomes[-1:] * (chunk_calls - len(outcomes)))
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
            if self._reloading.get(f.task_id) is f:
                del self._reloading[f.task_id]
            if not self._futures:
                self._all_done.notify_all()

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None,
            chunksize: int = 1) -> Iterator:
        """Like ``Executor.map``; ``chunksize`` calls travel in one task message."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        # strict=False: like the builtin map, stop at the shortest iterable. One empty kwargs
        # dict for every call (pickled once per chunk; a call's ** copies it): no Python-level
        # step per call
        calls: Iterator[tuple[tuple, dict]] = zip(zip(*iterables, strict=False), itertools.repeat({}))
        chunks = []
        while True:
            chunk = list(itertools.islice(calls, chunksize))
            if not chunk:
                break
            chunks.append(chunk)
        fs = self._submit_chunks(fn, chunks, per_chunk=True) if chunks else []
        del chunks

        def result_iterator():
            try:
                fs.reverse()
                while fs:
                    task_id = fs[-1].task_id
                    if end_time is None:
                        outcomes = _result_or_cancel(fs.pop())
                    else:
                        outcomes = _result_or_cancel(fs.pop(), end_time - time.monotonic())
                    # popped as read (the future's own list: map's alone), so nothing here keeps
                    # a value the caller let go of; a call's exception raises here, in its place
                    outcomes.reverse()
                    while outcomes:
                        yield outcome_value(outcomes.pop(), task_id)
            finally:
                for f in reversed(fs):   # the next to run first
                    f.cancel()
        return result_iterator()

    def get_worker_hardware_details(self) -> str:
        """A text report of the hardware of a worker node of this Executor's endpoint."""
        from .hardware import hardware_report
        return self.submit(hardware_report).result()

    # -- reloading a task group ----------------------------------------------------------------
    def reload_tasks(self, task_group_id: str | uuid.UUID | None = None) -> list[TaskFuture]:
        """Futures for every task of this Executor's task group (or of ``task_group_id``, which
        then becomes this Executor's), from the group's records in the store: a new process (a
        restarted notebook) gets back what an earlier one submitted. Finished tasks complete at
        once from their results; pending ones complete when their result appears (the store is
        polled, from every 50 ms up to every 2 s, or less often for more than 200 tasks: about
        100 reads a second at most). Tasks with a pending future from this Executor are left
        out, as in Globus. A task is in its group's records once ``task_count_submitted``
        counts it: within 0.5 s of being sent, and at shutdown."""
        if task_group_id is not None:
            self.task_group_id = task_group_id
        if self._tg is None:
            raise ValueError("must specify a task_group_id in order to reload tasks")
        records = sorted(self._api.group_tasks(self._tg).values(), key=lambda r: r[1])
        ids = list(dict.fromkeys(tid for _, _, tids in records for tid in tids))
        if not ids:
            log.warning("Received no tasks for Task Group ID: %s", self._tg)
        out: list[TaskFuture] = []
        for tid in ids:
            with self._lock:
                if tid in self._by_task:
                    continue
                if self._shutdown:
                    raise RuntimeError(f"{self!r} is shutdown; refusing to reload tasks")
            f = TaskFuture(tid, self._reload_cancel_hook)
            if not self._complete_from_store(f):
                with self._lock:
                    self._futures.add(f)
                    self._by_task[tid] = {f}
                    self._reloading[tid] = f
            out.append(f)
        if self._reloading:
            self._ensure_poller()
        return out

    def _reload_cancel_hook(self, f: TaskFuture) -> None:
        self._forget(f)
        self._api.cancel(f.task_id)   # a reloaded task that has not started never runs

    def _complete_from_store(self, f: TaskFuture, check_cancel: bool = True) -> bool:
        """Complete ``f`` from its task's result (or cancel marker) if there is one; True if done."""
        api, tid = self._api, f.task_id
        try:
            found = api.stored_result(tid)
            data = found[0] if found is not None else None
        except ResultForged as e:   # the real one may still replace it (S3): keep waiting
            said_once(f"forged {tid}", "%s", e)
            data = None
        if data is None and not (check_cancel and api._cancelled(tid)):
            return False
        f._on_cancel = _done_hook
        if not f.set_running_or_notify_cancel():
            return True
        if data is None:   # no result, and its client's cancel marker
            f.set_exception(TaskCancelled(f"task {tid} was cancelled"))
            return True
        try:
            _, outcomes = decode_result(data, tid)
            values = [outcome_value(o, tid) for o in outcomes]
            f.set_result(values[0] if len(values) == 1 else values)
        except BaseException as e:  # noqa: BLE001 - the call's own exception, or why none loads
            f.set_exception(e)
        return True

    def _ensure_poller(self) -> None:
        with self._lock:
            if self._poller is None or not self._poller.is_alive():
                self._poller = threading.Thread(target=self._poll, name="faas-reload", daemon=True)
                self._poller.start()

    def _poll(self) -> None:
        delay, rounds = 0.05, 0
        while not self._stop_polling.wait(delay):
            with self._lock:
                pending = list(self._reloading.values())
            if not pending:
                return
            rounds += 1
            done = [f for f in pending if self._complete_from_store(f, check_cancel=rounds % 10 == 0)]
            for f in done:
                self._forget(f)
            # at most about 100 store reads a second, however many tasks wait (S3 bills each)
            delay = 0.05 if done else min(delay * 1.5, max(2.0, len(pending) / 100))

    # -- ending ------------------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            pending = list(self._futures)
        if cancel_futures:
            for f in pending:
                f.cancel()
        if wait:
            self._api.flush()
            with self._lock:
                while self._futures:
                    self._all_done.wait(1.0)
            self._stop_polling.set()
            if self._own_client:
                self._api.close()
        elif self._own_client:
            threading.Thread(target=self._close_when_done, daemon=True).start()

    def _close_when_done(self) -> None:
        with self._lock:
            while self._futures:
                self._all_done.wait(1.0)
        self._stop_polling.set()
        self._api.close()


__all__ = ["Executor", "TaskFuture", "FuturesTimeout"]
