"""The boto-style client (`faas.client()` returns one): keyword arguments in, plain values out, typed errors.

It writes functions (and large arguments) to the store, sends task messages to the endpoint's
queue, and learns of completions from notices on its own reply queue (a listener thread); any
process can also read a result from the store later by task id.
"""
from __future__ import annotations

import atexit
import collections
import inspect
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any, cast

from . import private_files, random_ids, sealing, serialize, signing
from .config import Settings, resolve
from .exceptions import (
    ConfigError,
    EndpointNotFound,
    FaasError,
    FunctionNotFound,
    QueueError,
    ResultForged,
    SerializationError,
    SignatureError,
    TaskCancelled,
    TaskFailed,
    TaskTimeout,
)
from .messages import (
    Notice,
    args_key,
    cancel_epoch_key,
    cancel_key,
    check_task_id,
    client_prefixes,
    function_key,
    inline_limit,
    result_key,
    running_key,
    task_group_key,
)
from .proctree import name_os_thread
from .store import KeyNotFound, Queue, create_queue, open_queue, open_store

log = logging.getLogger("faas.client")
DONE_KEPT = 10_000   # finished run() tasks whose results stay in memory until read
NOTICE_SWEEP_LOOKUPS = 8    # store lookups one sweep for lost notices makes at most
NOTICE_SWEEP_MAX = 120.0    # the longest pause between two such sweeps that found nothing
NOTICE_REFUSED_FIRST = 600.0   # a task whose stored object did not open is looked at again after
NOTICE_REFUSED_MAX = 7200.0    # this, doubling up to this
STORING_GRACE = 30.0   # seconds after a done notice that carried a result a read waits for the store's copy


class TaskState:
    """What this client knows of one task it sent; callbacks fire once, from the listener."""

    __slots__ = ("task_id", "n", "status", "where", "data", "error", "finished", "sent", "_event",
                 "_callbacks", "_lock")

    def __init__(self, task_id: str, n: int):
        self.task_id, self.n = task_id, n
        self.sent = time.monotonic()             # about when it was sent (its state is made then)
        self.status = "pending"
        self.where: dict | None = None
        self.data: bytes | None = None          # the result frame, once done and opened
        self.error: BaseException | None = None  # or why there is none (send failed, ...)
        self.finished = False
        self._event: threading.Event | None = None   # made only for a waiter: Executor futures never wait here
        self._callbacks: list[Callable[[TaskState], None]] = []
        self._lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task is finished; False on timeout."""
        with self._lock:
            if self.finished:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def on_change(self, fn: Callable[[TaskState], None]) -> None:
        with self._lock:
            if not self.finished:   # a finished task's callbacks are dropped: they fired
                self._callbacks.append(fn)
            fire = self.status != "pending"
        if fire:
            fn(self)

    def _set(self, status: str, data: bytes | None = None, error: BaseException | None = None,
             where: dict | None = None) -> None:
        with self._lock:
            if self.finished or (status == "running" and self.status != "pending"):
                return
            self.status, self.data, self.error = status, data, error
            if where:
                self.where = where
            callbacks = list(self._callbacks)
            if status != "running":
                self.finished = True
                self._callbacks = []   # the last call: what they hold (futures, results) is not kept here
                if self._event is not None:
                    self._event.set()
        for fn in callbacks:
            try:
                fn(self)
            except Exception:  # noqa: BLE001 - a user's callback must not stop the listener
                log.exception("task callback failed")


def decode_result(data: bytes, task_id: str) -> tuple[dict, list]:
    """Unpickle a result frame that :func:`serialize.open_result` has checked."""
    header, payload = serialize.unframe(data)
    try:
        return header, serialize.loads(payload, f"the result of task {task_id}")
    except SerializationError as e:
        raise SerializationError(
            f"{e} (status {header.get('status')}; written by Python {header.get('py')}; the client "
            f"needs every module the result's objects come from)") from None


def outcome_value(outcome: tuple, task_id: str) -> Any:
    """The value of one call, or raise its exception as the original type with the remote
    traceback as ``__cause__`` (as ProcessPoolExecutor does)."""
    if outcome[0]:
        return outcome[1]
    _, blob, type_name, message, tb = outcome
    exc = None
    if blob is not None:
        try:
            exc = serialize.loads(blob, "the exception")
        except SerializationError:
            exc = None
    if not isinstance(exc, BaseException):
        exc = TaskFailed(f"task {task_id} failed remotely with {type_name}: {message}", task_id=task_id,
                         remote_type=type_name, remote_traceback=tb)
    exc.__cause__ = serialize.RemoteTraceback(tb)
    raise exc


def _json_dict(value: dict | None, name: str, expected: str) -> dict | None:
    """``value`` as plain JSON (it travels in a message), or a ConfigError naming ``name``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be {expected}, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be JSON-able: {e}") from None


class SendSpec:
    """What the tasks of one ``submit_tasks`` call share on their way out: their task group, the
    most tasks one send round carries (the Executor's ``batch_size``), and a callback told how many
    were sent (once recorded in their group, for tasks of a group)."""

    __slots__ = ("tg", "limit", "on_sent")

    def __init__(self, tg: str | None, limit: int | None, on_sent: Callable[[int], None] | None):
        self.tg, self.limit, self.on_sent = tg, limit, on_sent


#: seconds a sent task may wait for its task group record (records are written per round of
#: ``batch_size`` tasks, or after this long, or at flush/close)
GROUP_RECORD_EVERY = 0.5


def _tell_sent(sent: list) -> None:
    """Call each spec's ``on_sent`` with how many of ``sent`` ([(task id, spec)]) are its."""
    counts: dict[int, list] = {}
    for _, spec in sent:
        if spec is not None and spec.on_sent is not None:
            counts.setdefault(id(spec), [spec, 0])[1] += 1
    for spec, n in counts.values():
        try:
            spec.on_sent(n)
        except Exception:  # noqa: BLE001 - a caller's callback must not stop the sender
            log.exception("on_sent callback failed")


def _close_at_exit(client: Client) -> None:
    """Delete the reply queue when the interpreter exits, for clients nobody closed."""
    ref = weakref.ref(client)

    def close() -> None:
        c = ref()
        if c is not None:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
    atexit.register(close)


# Globus Compute SDK's Client methods: on this (boto-style) client they are an AttributeError
# that points to ``faas.Client``, which has them.
_GLOBUS_ONLY = frozenset({
    "create_batch", "batch_run", "get_batch_result", "get_endpoint_status", "get_endpoint_metadata",
    "get_endpoints", "get_function", "get_allowed_functions", "stop_endpoint", "version_check", "logout",
    "register_source_code", "delete_function", "get_worker_hardware_details", "fx_serializer"})
_GLOBUS_RUN = ("run(*args, endpoint_id=..., function_id=...) is Globus Compute's Client.run: use "
               "faas.Client() for it. This is the boto-style client of faas.client(): "
               "run(function_id=..., endpoint=..., args=(...), kwargs={...})")


def _run_signature(function_id: str, endpoint: str | None = None, args: Iterable = (),
                   kwargs: dict | None = None, timeout: float | None = None,
                   user_endpoint_config: dict | None = None) -> str:
    """What ``Client.run`` takes (it binds its arguments here to tell a Globus-style call apart)."""
    raise NotImplementedError


_RUN_SIGNATURE = inspect.signature(_run_signature)


class Client:
    """The boto-style client: keyword arguments in, plain values out (:func:`faas.client` or
    ``faas.Session(...).client()``). Globus Compute's Client API is ``faas.Client()``, which
    wraps one of these (its ``boto_client``)."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or resolve()
        self.store = open_store(self.settings.store_url)
        self._fn_ids: dict[int, tuple[weakref.ref, str]] = {}
        self._stored_fns: set[str] = set()
        self._fn_secrets: dict[str, str] = {}
        self._endpoints: dict[str, Queue] = {}
        self._records: dict[str, dict] = {}     # endpoint name -> its published record
        self._keys: dict[str, signing.Key | None] = {}
        self._tasks: dict[str, TaskState] = {}
        self._done_ids: collections.deque[str] = collections.deque()
        # the checked headers of the results done notices carried, newest last (DONE_KEPT at
        # most): get_task's answer in the moment between a notice and the store's copy (the
        # worker stores a result right after the notice that carries it), whether or not the
        # task's own record is still kept
        self._notified: collections.OrderedDict[str, tuple[float, dict]] = collections.OrderedDict()
        self._lock = threading.RLock()
        self._out: collections.deque = collections.deque()
        self._out_cv = threading.Condition()
        self._sender: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._reply: Queue | None = None
        self._closed = threading.Event()
        self._in_flight = 0      # tasks the sender has taken from _out and not yet sent
        self._checked_tg: str | None = None   # the last task group id submit_tasks checked
        self._recording = threading.Lock()   # held while records are taken and written
        self._groups_waiting: dict[str, list] = {}   # task group -> [(task id, SendSpec)] sent, not yet recorded
        self._groups_due: float | None = None         # when the oldest of those must be recorded
        self._groups_lock = threading.Lock()
        self._user_key: bytes | None = None
        self._sweep_at = 0.0                     # when the listener next looks for lost notices
        self._sweep_every = 0.0                  # and the pause after that (doubles while none is found)
        self._sweep_from: str | None = None      # the task the next sweep goes on from
        # tasks whose stored object did not open (planted, or the store failing): when the sweep
        # may look again, and how long it waited last (each refusal doubles it)
        self._sweep_refused: dict[str, tuple[float, float]] = {}

    def __repr__(self) -> str:
        return (f"<faas boto-style client (faas.client()): store={self.settings.store_url!r}, "
                f"endpoint={self.settings.endpoint!r}>")

    def __getattr__(self, name: str) -> Any:
        if name in _GLOBUS_ONLY:
            raise AttributeError(
                f"{name} is Globus Compute's Client API, which this boto-style client (faas.client()) "
                f"does not have: use faas.Client() (from faas import Client), or its keyword "
                f"equivalents here (submit_batch, get_results, describe_endpoint, list_endpoints)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- who this client is: its result key ---------------------------------------------------
    @property
    def user_key(self) -> bytes:
        """This user's result key (``FAAS_RESULT_KEY`` or ``$FAAS_HOME/result.key``)."""
        if self._user_key is None:
            private_files.ensure_home(self.settings.home)
            key = sealing.load_user_key(self.settings.home, self.settings.result_key)
            cid = sealing.client_id(key)
            for prefix in client_prefixes(cid):   # ours before any task id exists to plant at
                self.store.claim(prefix)
            self._cid, self._user_key = cid, key
        return self._user_key

    @property
    def client_id(self) -> str:
        """Names this user's functions folder and cancel epoch in the store."""
        _ = self.user_key   # read for its effect: it loads or makes the key, which sets _cid
        return self._cid

    def task_secret(self, task_id: str) -> str:
        return sealing.task_secret(self.user_key, task_id)

    def function_secret(self, function_id: str) -> str:
        """Kept per function: each task message carries it, and a burst sends one function."""
        fk = self._fn_secrets.get(function_id)
        if fk is None:
            fk = self._fn_secrets[function_id] = sealing.function_secret(self.user_key, function_id)
        return fk

    # -- functions --------------------------------------------------------------------
    def register_function(self, function: Callable, **ignored: Any) -> str:
        """Serialize and store ``function`` (once: its id is the hash of its bytes). Other
        keywords (Globus's description=, public=, ...) have no effect here; faas.Client keeps a
        description."""
        if ignored:
            log.debug("register_function(%s): no effect on the boto-style client", ", ".join(sorted(ignored)))
        cached = self._fn_ids.get(id(function))
        if cached is not None and cached[0]() is function:
            return cached[1]
        fid, plain = serialize.function_bytes(function)
        data = serialize.seal_function(plain, fid, self.function_secret(fid))
        if len(data) > self.settings.max_function_bytes:   # as stored: what the worker reads at most
            raise SerializationError(
                f"function {getattr(function, '__qualname__', function)!r} serializes to {len(data)} "
                f"bytes, over max_function_bytes ({self.settings.max_function_bytes}; "
                f"FAAS_MAX_FUNCTION_BYTES, on the endpoint too): pass large data as an argument "
                f"instead of capturing it, or raise the limit")
        if fid not in self._stored_fns:
            try:
                present = self.stored_function(fid) is not None
            except SignatureError:   # someone planted other bytes at our key first: ours replace them
                log.warning("function %s: the object at its key was not its bytes; storing them again", fid)
                present = False
            if not present:
                key = function_key(fid, self.client_id)
                try:
                    self.store.put(key, data)
                except FaasError:   # another process of ours stored the same bytes first
                    if not self.store.exists(key):
                        raise
            self._stored_fns.add(fid)
        try:   # weakly: a cached function (a bound method, a partial) must not keep what it holds alive
            fns, fn_key = self._fn_ids, id(function)
            ref = weakref.ref(function, lambda r: fns.get(fn_key, (None,))[0] is r and fns.pop(fn_key, None))
        except TypeError:   # not weakly referenceable: not cached
            return fid
        self._fn_ids[fn_key] = (ref, fid)
        return fid

    # -- endpoints --------------------------------------------------------------------
    def list_endpoints(self) -> list[dict]:
        """The records of every endpoint in the store (each with its ``name`` and ``endpoint_id``)."""
        from .endpoint import registry
        return registry.list_all(self.store, self._signing_key(None))

    def describe_endpoint(self, name: str) -> dict:
        """An endpoint's record, by name or UUID, with its queue's depth."""
        from .endpoint import registry
        record = registry.resolve(self.store, name, self._signing_key(name))
        try:
            record["queue_depth"] = self._endpoint_queue(name).depth()
        except FaasError:
            pass
        return record

    def _endpoint_queue(self, name: str | None) -> Queue:
        """The queue of the endpoint ``name`` names (its name or its UUID, resolved through the
        records in the store; the embedded ``local`` endpoint is started on demand)."""
        name = name or self.settings.endpoint
        q = self._endpoints.get(name)
        if q is not None:
            return q
        from .endpoint import config as ep_config
        from .endpoint import registry
        with self._lock:
            if name in self._endpoints:
                return self._endpoints[name]
            target = name
            if self.settings.is_embedded and self.settings.autostart and ep_config.is_uuid(name):
                try:   # the embedded endpoint's id, before it ever published a record
                    if ep_config.endpoint_id(ep_config.endpoint_dir("local", self.settings.home)) == name.lower():
                        target = "local"
                except FaasError:
                    pass
            embedded = (self.settings.is_embedded and target == "local" and self.settings.autostart)
            if embedded:
                url = self._ensure_local()
            else:
                record = registry.resolve(self.store, name, self._signing_key(name))
                target = record["name"] if ep_config.is_uuid(name) else name
                self._records[name] = self._records[target] = record
                url = record["queue"]
            if target != name:   # a UUID: signed with the key file of the endpoint configured here
                try:                 # under that name, only if that endpoint has this very id
                    same = ep_config.endpoint_id(ep_config.endpoint_dir(target, self.settings.home)) == name.lower()
                except FaasError:
                    same = False
                if same:
                    self._keys[name] = self._signing_key(target)
            try:
                q = open_queue(url)   # spool:// (a multi-user endpoint: the file's owner is the identity) too
            except QueueError as e:
                raise EndpointNotFound(f"endpoint {name!r} is registered with queue {url}, which "
                                       f"cannot be opened: {e}") from None
            self._endpoints[name] = self._endpoints[target] = q
            return q

    def _ensure_local(self) -> str:
        """The embedded default: configure and start the ``local`` endpoint on demand (detached,
        so the next script reuses it). Its queue is created here, so tasks can be sent at once."""
        from .endpoint import config as ep_config
        from .endpoint import control
        from .locks import is_running
        home = self.settings.home
        d = ep_config.endpoint_dir("local", home)
        path = d / "config.yaml"
        if not path.exists():
            control.ensure_key_file(d)
            ep_config.write(path, control.default_local_config(home))
        cfg = ep_config.load(path)
        url = cfg.queue_url("local", home)
        create_queue(url, max_receives=cfg.max_receives, visibility_timeout=cfg.visibility_timeout)
        if not is_running(d):
            control.start_detached("local", home, wait=30.0)
        return url

    # -- submitting ---------------------------------------------------------------------
    def _message(self, queue: Queue, function_id: str, calls: list, timeout: float | None,
                 key: signing.Key | None = None, uec: dict | None = None, res: dict | None = None,
                 tg: str | None = None) -> tuple[str, str]:
        task_id = str(random_ids.uuid4())
        data = serialize.calls_bytes(calls)
        now = time.time()
        msg: dict[str, Any] = {
            "v": 1, "id": task_id, "fn": function_id, "n": len(calls), "reply": self._reply_queue().url,
            "timeout": timeout, "sent": now, "expires": now + self.settings.task_ttl, "uec": uec,
            "rk": self.task_secret(task_id), "cid": self.client_id, "res": res, "tg": tg,
            "fk": self.function_secret(function_id)}
        if len(data) <= inline_limit(queue.max_message_bytes):
            msg["args"] = serialize.b64(data)
        else:   # too big for a message: spill to the store, sealed with the task's secret; no other limit
            sealed = serialize.seal_args(data, task_id, msg["rk"])
            msg["args_key"] = args_key(task_id, self.client_id)
            # the digest and size of the sealed bytes, the ones the worker reads: it checks them
            # before it decrypts a byte (the AEAD then proves them sealed for this task)
            msg["args_sha256"] = signing.sha256(sealed)
            msg["args_size"] = len(sealed)   # signed: the worker reads no more of the store
            self.store.put(msg["args_key"], sealed)
        msg = {k: v for k, v in msg.items() if v is not None}
        if key is not None:
            msg["sig"] = signing.sign(msg, key)
        return task_id, json.dumps(msg, separators=(",", ":"))

    def _check_key(self, name: str, key: signing.Key | None) -> None:
        """Fail at submit, not after a wait, when the endpoint runs only signed tasks and this
        client holds no key it accepts (its record names the key ids it accepts)."""
        record = self._records.get(name) or {}
        if not record.get("signed_tasks"):
            return
        ids = record.get("signing_key_ids") or []
        if key is None:
            raise SignatureError(
                f"endpoint {name!r} runs only signed tasks and this client holds no signing key: "
                f"set FAAS_SIGNING_KEY=ID:SECRET to one of the endpoint's keys (ids: {', '.join(ids)}; "
                f"the lines of signing.key in its folder on the site)")
        if ids and key.id not in ids:
            raise SignatureError(
                f"endpoint {name!r} does not accept signing key {key.id!r} (it accepts {', '.join(ids)}): "
                f"set FAAS_SIGNING_KEY to one of those keys")

    def _check_function(self, function_id: str) -> None:
        """Fail at submit, not on the endpoint, for a function this user never registered."""
        if function_id in self._stored_fns:
            return
        try:
            key = function_key(function_id, self.client_id)
        except ValueError as e:
            raise FunctionNotFound(str(e)) from None
        if not self.store.exists(key):
            raise FunctionNotFound(
                f"function {function_id} is not registered in store {self.store.url} by this user: "
                f"call register_function(fn) first (function ids are private to the result key, "
                f"$FAAS_HOME/result.key or FAAS_RESULT_KEY, that registered them)")
        self._stored_fns.add(function_id)

    def _signing_key(self, endpoint: str | None) -> signing.Key | None:
        """The key for ``endpoint``: the client's ``signing_key``, else the key file of an
        endpoint of that name configured in this FAAS_HOME (same machine, same user: the
        embedded default, or a login node), newest key last in the file."""
        name = endpoint or self.settings.endpoint
        if name not in self._keys:
            key = None
            if self.settings.signing_key:
                key = signing.parse_key(self.settings.signing_key, "signing_key (FAAS_SIGNING_KEY)")
            else:
                from .endpoint import config as ep_config
                path = ep_config.endpoint_dir(name, self.settings.home) / "signing.key"
                if os.access(path, os.R_OK):
                    keys = list(signing.read_key_file(path).values())
                    key = keys[-1] if keys else None
            self._keys[name] = key
        return self._keys[name]

    def submit_tasks(self, endpoint: str | None, function_id: str, call_groups: Iterable[list],
                     timeout: float | None = None, wait_sent: bool = True,
                     user_endpoint_config: dict | None = None,
                     resource_specification: dict | None = None,
                     task_group_id: str | None = None, batch_size: int | None = None,
                     on_sent: Callable[[int], None] | None = None) -> list[TaskState]:
        """Send one task per group of calls. With ``wait_sent=False`` the messages go out from a
        background thread in batches (the Executor's fast path). ``user_endpoint_config``: the
        variables of a multi-user endpoint's template (JSON-able dict); ``resource_specification``:
        what one task needs (Globus's MPI keys: num_nodes, ranks_per_node, num_ranks);
        ``task_group_id``: a UUID naming the group the tasks belong to (recorded in the store
        once they are sent: :meth:`group_tasks`); ``batch_size``: the most of these tasks one
        send round carries; ``on_sent(n)``: called once ``n`` of them are sent (and recorded)."""
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        user_endpoint_config = _json_dict(user_endpoint_config, "user_endpoint_config", "a dict of variables")
        resource_specification = _json_dict(resource_specification, "resource_specification",
                                            "a dict such as {'num_nodes': 2, 'ranks_per_node': 4}")
        if task_group_id is not None and task_group_id != self._checked_tg:   # once per group, not per submit
            try:
                task_group_id = self._checked_tg = check_task_id(str(task_group_id).lower())
            except ValueError as e:
                raise ConfigError(f"task_group_id: {e}") from None
        self._check_function(function_id)
        queue = self._endpoint_queue(endpoint)
        key = self._signing_key(endpoint)
        self._check_key(endpoint or self.settings.endpoint, key)
        spec = SendSpec(task_group_id, batch_size, on_sent) if task_group_id or batch_size or on_sent else None
        states, bodies = [], []
        for calls in call_groups:
            task_id, body = self._message(queue, function_id, list(calls), timeout, key, user_endpoint_config,
                                          resource_specification or None, task_group_id)
            st = TaskState(task_id, len(calls))
            self._tasks[task_id] = st
            states.append(st)
            bodies.append((queue, body, st, spec))
        self._ensure_listener()
        if wait_sent:
            self._send(bodies)
        else:
            self._ensure_sender()
            with self._out_cv:
                self._out.extend(bodies)
                self._out_cv.notify_all()   # the sender, not only a flush() that waits too
        return states

    def run(self, *args: Any, **kw: Any) -> str:
        """Run one call; return its task id: ``run(function_id, endpoint=None, args=(),
        kwargs=None, timeout=None, user_endpoint_config=None)``."""
        if "endpoint_id" in kw:
            raise TypeError(_GLOBUS_RUN)
        try:
            bound = _RUN_SIGNATURE.bind(*args, **kw)
        except TypeError as e:
            raise TypeError(f"run(): {e} (signature: run{_RUN_SIGNATURE})") from None
        return self._run(*bound.args, **bound.kwargs)

    def _run(self, function_id: str, endpoint: str | None = None, args: Iterable = (),
             kwargs: dict | None = None, timeout: float | None = None,
             user_endpoint_config: dict | None = None) -> str:
        return self.submit_tasks(endpoint, function_id, [[(tuple(args), dict(kwargs or {}))]],
                                 timeout, user_endpoint_config=user_endpoint_config)[0].task_id

    def submit_batch(self, endpoint: str | None = None, tasks: Iterable[dict] = (),
                     timeout: float | None = None, user_endpoint_config: dict | None = None) -> list[str]:
        """``tasks``: dicts with ``function_id`` and optional ``args``/``kwargs``; returns task ids."""
        by_fn: dict[str, list] = collections.defaultdict(list)
        order = []
        for i, t in enumerate(tasks):
            if "function_id" not in t:
                raise ValueError(f"tasks[{i}]: missing 'function_id'")
            by_fn[t["function_id"]].append((i, (tuple(t.get("args", ())), dict(t.get("kwargs", {})))))
            order.append(i)
        ids: dict[int, str] = {}
        for fid, items in by_fn.items():
            states = self.submit_tasks(endpoint, fid, [[call] for _, call in items], timeout,
                                       user_endpoint_config=user_endpoint_config)
            for (i, _), st in zip(items, states, strict=True):   # one state per call sent
                ids[i] = st.task_id
        return [ids[i] for i in order]

    def _send(self, items: list, record_now: bool = True) -> None:
        """Send ``(queue, body, state, spec)`` items: per queue and task group, in rounds of at
        most the spec's ``limit``. Sent tasks of a task group are recorded in the store after
        they are sent (a record never names a task that was not), at once with ``record_now``,
        else by the sender within ``GROUP_RECORD_EVERY`` s or once ``limit`` of them wait
        (sequential submits must not pay a store write each). ``on_sent`` hears of tasks once
        recorded. A round that fails to send fails its tasks; the others are still sent; the
        first error is raised."""
        rounds: dict[tuple, list] = {}
        for item in items:
            spec = item[3]
            rounds.setdefault((id(item[0]), spec.tg if spec else None), []).append(item)
        first_error: Exception | None = None
        for (_, tg), group in rounds.items():
            limit = (group[0][3].limit if group[0][3] else None) or len(group)
            for i in range(0, len(group), limit):
                chunk = group[i:i + limit]
                try:
                    chunk[0][0].send([body for _, body, _, _ in chunk])
                except Exception as e:  # noqa: BLE001 - the caller's futures must learn it
                    for _, _, st, _ in chunk:
                        st._set("failed", error=e)
                    first_error = first_error or e
                    continue
                sent = [(st.task_id, spec) for _, _, st, spec in chunk]
                if tg is None:
                    _tell_sent(sent)
                else:
                    with self._groups_lock:
                        waiting = self._groups_waiting.setdefault(tg, [])
                        waiting.extend(sent)
                        if self._groups_due is None:
                            self._groups_due = time.monotonic() + GROUP_RECORD_EVERY
        self._record_groups(force=record_now)
        if first_error is not None:
            raise first_error

    def _record_groups(self, force: bool = False) -> None:
        """Write the records of sent tasks waiting for one: all of them if ``force`` or once
        due, else the groups where a round's ``limit`` (default 128) of tasks wait. One writer at
        a time: ``flush`` (force) returns only after a record the sender took is in the store."""
        with self._recording:
            written = self._record_groups_now(force)
        for sent in written:   # outside the lock: callbacks may submit or flush
            _tell_sent(sent)

    def _record_groups_now(self, force: bool) -> list[list]:
        with self._groups_lock:
            if not self._groups_waiting:
                return []
            now_due = force or (self._groups_due is not None and time.monotonic() >= self._groups_due)
            ready = {tg: sent for tg, sent in self._groups_waiting.items()
                     if now_due or len(sent) >= ((sent[0][1].limit if sent[0][1] else None) or 128)}
            for tg in ready:
                del self._groups_waiting[tg]
            if not self._groups_waiting:
                self._groups_due = None
        for tg, sent in ready.items():
            ids = [tid for tid, _ in sent]
            try:
                self.store.put(task_group_key(tg, self.client_id, ids[0]), sealing.group_record(self.user_key, tg, ids))
            except Exception as e:  # noqa: BLE001 - they run; only a later reload_tasks misses them
                log.warning("task group %s: could not record %d sent task(s) in the store (%s); they run, but "
                            "reload_tasks will not find them: %s", tg, len(ids), e, ", ".join(ids[:5]))
        return list(ready.values())

    def group_tasks(self, task_group_id: str | None = None, skip: set[str] | None = None) -> dict[str, list]:
        """The task group records of this client's key (all of them, or of one group), as
        ``{record key: [task group id, time written, task ids]}``; keys in ``skip`` are not read
        again. Records another key wrote (or altered ones) are left out, with a warning."""
        prefix = f"groups/{self.client_id}/"
        if task_group_id is not None:
            prefix += check_task_id(task_group_id) + "/"
        out: dict[str, list] = {}
        for key in self.store.list(prefix):
            if skip is not None and key in skip:
                continue
            try:
                # bounded: a record planted at this key must not cost a whole object (issue 19)
                rec = sealing.read_group_record(self.user_key, self.store.get_head(key, self.settings.max_result_bytes))
            except KeyNotFound:
                continue
            if rec is None:
                log.warning("ignoring task group record %s: this client's key did not write it", key)
                continue
            out[key] = list(rec)
        return out

    def _ensure_sender(self) -> None:
        if self._sender is None:
            with self._lock:
                if self._sender is None:
                    self._sender = threading.Thread(target=self._send_loop, name="faas-sender", daemon=True)
                    self._sender.start()

    def _send_loop(self) -> None:
        name_os_thread("faas-sender")
        while True:
            with self._out_cv:
                while not self._out and not self._closed.is_set():
                    due = self._groups_due
                    if due is not None and time.monotonic() >= due:
                        break
                    self._out_cv.wait(None if due is None else max(0.0, due - time.monotonic()))
                closing = not self._out and self._closed.is_set()
                batch = [self._out.popleft() for _ in range(min(len(self._out), 2000))]
                self._in_flight = len(batch)
            if closing:
                self._record_groups(force=True)
                return
            try:
                if batch:
                    self._send(batch, record_now=False)
                else:
                    self._record_groups()
            except Exception as e:  # noqa: BLE001 - already reported on each task
                log.error("sending %d task(s) failed: %s", len(batch), e)
            del batch   # not held while waiting for the next: its tasks' arguments and states
            with self._out_cv:
                self._in_flight = 0
                if not self._out:
                    self._out_cv.notify_all()   # flush() waiters

    def flush(self) -> None:
        """Wait until every task handed to the background sender has been sent (or failed), and
        the sent tasks of task groups are recorded in the store."""
        with self._out_cv:
            while (self._out or self._in_flight) and self._sender is not None and self._sender.is_alive():
                self._out_cv.wait(0.05)
        self._record_groups(force=True)

    # -- notices --------------------------------------------------------------------------
    def _reply_queue(self) -> Queue:
        if self._reply is None:
            with self._lock:
                if self._reply is None:
                    private_files.ensure_home(self.settings.home)   # 700 before anything is made in it
                    self._reply = create_queue(self._reply_url(), max_receives=1000,
                                               visibility_timeout=30, dead_letter=False)
                    _close_at_exit(self)
        return self._reply

    def _reply_url(self) -> str:
        some = next(iter(self._endpoints.values()), None)
        name = f"{self.settings.reply_queue_prefix}{uuid.uuid4().hex}"
        if some is not None and some.url.startswith("spool://"):
            return f"local://{self.settings.home / 'queues'}/{name}"
        if some is not None and some.url.startswith("local://"):
            return some.url.rsplit("/", 1)[0] + "/" + name
        if some is not None and not some.url.startswith("sqs://"):
            return some.url.rsplit("/", 1)[0] + "/" + name   # same account and endpoint as the tasks
        return f"sqs://{name}" if some is not None else f"local://{self.settings.home / 'queues'}/{name}"

    def _ensure_listener(self) -> None:
        if self._listener is None:
            with self._lock:
                if self._listener is None:
                    self._listener = threading.Thread(target=self._listen, name="faas-listener", daemon=True)
                    self._listener.start()

    def _listen(self) -> None:
        name_os_thread("faas-listener")
        q = self._reply_queue()
        batch = getattr(q, "max_batch", 10)
        receipts: list[str] = []
        flush_at = 0.0
        while not self._closed.is_set():
            # Notices are deleted in whole batches, late (they stay invisible meanwhile, and a
            # notice seen twice is harmless): one request per batch, not one per task.
            if receipts and (len(receipts) >= batch or time.monotonic() >= flush_at):
                try:
                    q.delete(receipts)
                except Exception as e:  # noqa: BLE001 - the listener must live; undeleted notices come back, harmless
                    if not self._closed.is_set():
                        log.warning("deleting notices failed: %s", e)
                receipts = []
            try:
                msgs = q.receive(max_messages=batch,
                                 wait=max(0.0, min(2.0, flush_at - time.monotonic())) if receipts else 2.0)
            except Exception as e:  # noqa: BLE001 - any backend's failure: the listener retries
                # A close may be what broke it, and the flag can come just after: at exit the
                # queue's own finalizer (weakref.finalize, run before the atexit hook that closes
                # this client) closes its socket under this receive. Wait for it before reporting.
                if self._closed.wait(0.5):
                    return
                log.warning("reply queue receive failed: %s; retrying", e)
                continue
            for m in msgs:
                try:
                    self._on_notice(Notice.model_validate_json(m.body))
                except Exception as e:  # noqa: BLE001 - a bad notice must not stop the others
                    log.warning("ignoring a notice: %s", e)
            if msgs:
                if not receipts:
                    flush_at = time.monotonic() + 1.0
                receipts.extend(m.receipt for m in msgs)
            if time.monotonic() >= self._sweep_at:
                try:
                    self._sweep_unnotified()
                except Exception:  # noqa: BLE001 - the listener must live: notices come first
                    log.exception("looking for tasks whose done notice did not come failed")
                    self._sweep_at = time.monotonic() + NOTICE_SWEEP_MAX

    def _on_notice(self, n: Notice) -> None:
        st = self._tasks.get(n.id)
        if st is None:
            return
        rk = self.task_secret(n.id)
        # sealed like a done notice: "running" makes the future refuse a cancel, and its place is shown
        where = n.where if n.event == "started" else None
        if not sealing.check_notice(n.mac, rk, n.id, n.event, n.status, n.size, where):
            log.warning("ignoring a %s notice for task %s that its endpoint did not write "
                        "(forged, or from another client's reply queue)", n.event, n.id)
            return
        if n.event == "started":
            st._set("running", where=n.where)
            return
        if n.status == "cancelled":
            st._set("cancelled")
            return
        data = serialize.unb64(n.result) if n.result else None
        try:
            if data is None:
                data = self._read_result(n.id, n.size)
            header, plain = serialize.open_result(data, n.id, rk)
        except Exception as e:  # noqa: BLE001 - the future fails with the reason
            st._set("failed", error=e)
            return
        if n.result:
            self._notified[n.id] = time.time(), header
            if len(self._notified) > DONE_KEPT:
                self._notified.popitem(last=False)
        self._settle(st, plain, header.get("status") or n.status or "success")

    def _settle(self, st: TaskState, plain: bytes, status: str) -> None:
        """Finish ``st`` with its opened result frame ``plain``."""
        owned = bool(st._callbacks)   # an Executor's (read before _set, which drops them)
        st._set(status, data=plain)
        if owned:   # an Executor's future holds the outcome now; the store keeps the rest
            self._tasks.pop(st.task_id, None)
        else:               # run()/submit_batch(): kept for get_result, the oldest dropped (the store has them)
            self._done_ids.append(st.task_id)
            while len(self._done_ids) > DONE_KEPT:
                self._tasks.pop(self._done_ids.popleft(), None)

    def _sweep_unnotified(self) -> None:
        """Finish, from the store, tasks whose done notice never came. A notice can be lost: on
        SQS every holder of a shared client role may receive from every reply queue, and a notice
        it takes is gone. Tasks sent over ``notice_grace`` seconds ago are looked up in the order
        they were sent (the store is the record: the worker stores every result, after or before
        its notice), at most NOTICE_SWEEP_LOOKUPS not done yet per sweep, the next sweep going on
        from there (so a task behind many others still waiting on a slow endpoint is reached);
        sweeps that find nothing come less often, up to NOTICE_SWEEP_MAX seconds apart: a few
        store lookups a minute at most, not one per task. A task whose stored object does not
        open (planted there, as large as max_result_bytes) is read again only after
        NOTICE_REFUSED_FIRST seconds, doubling up to NOTICE_REFUSED_MAX."""
        grace = self.settings.notice_grace
        now = time.monotonic()
        tasks = list(self._tasks.values())      # in the order they were sent (dicts keep it)
        at = next((i for i, st in enumerate(tasks) if st.task_id == self._sweep_from), 0) if self._sweep_from else 0
        self._sweep_from = None                  # from the oldest again, unless stopped early below
        found = looked = 0
        for i in range(at, len(tasks)):
            st = tasks[i]
            if st.finished:
                continue
            if now - st.sent < grace or self._closed.is_set():
                break
            refused = self._sweep_refused.get(st.task_id)
            if refused is not None and refused[0] > now:
                continue
            if looked >= NOTICE_SWEEP_LOOKUPS:
                self._sweep_from = st.task_id
                break
            looked += 1
            try:
                data = self._read_result(st.task_id, None)
                header, plain = serialize.open_result(data, st.task_id, self.task_secret(st.task_id))
            except KeyNotFound:
                continue
            except Exception as e:  # noqa: BLE001 - planted, or the store failing: looked at again later
                # an object planted at the key may be as large as max_result_bytes: read it
                # again only after a wait that doubles each time, not on every sweep
                wait = min(NOTICE_REFUSED_MAX, max(NOTICE_REFUSED_FIRST, 2 * (refused or (0.0, 0.0))[1]))
                self._sweep_refused[st.task_id] = now + wait, wait
                log.warning("looking for the result of task %s, whose done notice did not come: %s "
                            "(looked at again in %.0f s)", st.task_id, e, wait)
                continue
            log.warning("task %s: its done notice never came (taken from the reply queue by another "
                        "principal, or lost); its result was found in the store", st.task_id)
            self._settle(st, plain, header.get("status") or "success")
            found += 1
        for task_id in list(self._sweep_refused):
            kept = self._tasks.get(task_id)
            if kept is None or kept.finished:
                self._sweep_refused.pop(task_id, None)
        base = max(1.0, grace / 4)
        self._sweep_every = (min(NOTICE_SWEEP_MAX, max(base, self._sweep_every * 2))
                             if looked and not found else base)
        self._sweep_at = time.monotonic() + self._sweep_every

    def stored_function(self, function_id: str) -> bytes | None:
        """The function's plain frame, read from the store bounded by ``max_function_bytes``,
        opened with its secret and checked against its id (their SHA-256); None if it is not
        there. Bytes someone planted at its key raise :class:`SignatureError`, unread past the
        limit and never unpickled."""
        limit = self.settings.max_function_bytes
        try:
            data = self.store.get_head(function_key(function_id, self.client_id), limit + 1)
        except KeyNotFound:
            return None
        if len(data) > limit:
            raise SignatureError(f"the object stored for function {function_id} is not its bytes "
                                 f"(over max_function_bytes: planted or corrupted in the store): "
                                 f"register the function again")
        return serialize.open_function(data, function_id, self.function_secret(function_id))

    # -- results ---------------------------------------------------------------------------
    def stored_result(self, task_id: str) -> tuple[bytes, dict] | None:
        """``(plain frame, header)`` of the task's result in the store, once it opens under the
        task's secret (so the endpoint that ran the task wrote it); None while there is none. A
        planted or altered one raises :class:`ResultForged` (nothing is unpickled). Every
        reader of a stored result (get_task, get_result, the Executor, the Globus Client, the
        console) goes through here."""
        try:
            data = self._read_result(task_id, None)
        except KeyNotFound:
            return None
        header, plain = serialize.open_result(data, task_id, self.task_secret(task_id))
        return plain, header

    def _read_result(self, task_id: str, size: int | None) -> bytes:
        """The stored result frame, never more read than ``size`` (from the task's sealed done
        notice) or, without one, ``max_result_bytes``: an object planted at the key, however
        large, costs one more byte than that, then :class:`ResultForged`."""
        limit = self.settings.max_result_bytes if size is None else size
        data = self.store.get_head(result_key(task_id, self.client_id), limit + 1)
        if len(data) > limit:
            why = (f"longer than the {size} bytes its endpoint's sealed notice announced" if size is not None
                   else f"larger than max_result_bytes ({limit} bytes; FAAS_MAX_RESULT_BYTES), which "
                        f"an endpoint with the same setting never stores")
            raise ResultForged(f"the result found for task {task_id} is {why}: planted or altered in "
                               f"the store; only its first {limit + 1} bytes were read, nothing was "
                               f"loaded", task_id=task_id)
        return data

    def get_task(self, task_id: str) -> dict:
        """``{"task_id", "status", ...}``; status is pending, running, success, failed or cancelled."""
        check_task_id(task_id)
        st = self._tasks.get(task_id)
        _, header = self._notified.get(task_id, (0.0, None))   # checked when its notice came
        if header is None:
            try:
                found = self.stored_result(task_id)
            except ResultForged as e:
                return {"task_id": task_id, "status": "failed",
                        "error": {"type": "ResultForged", "message": str(e), "traceback": ""}}
            header = found[1] if found is not None else None
        if header is not None:
            out = {"task_id": task_id, "status": header.get("status", "success"),
                   "completion_t": header.get("finished"), "started_t": header.get("started"),
                   "endpoint": header.get("endpoint"), "block": header.get("block"),
                   "host": header.get("host"), "calls": header.get("n"),
                   "function_id": header.get("function_id")}
            if header.get("error"):
                out["error"] = header["error"]
            return out
        if self._cancelled(task_id):
            return {"task_id": task_id, "status": "cancelled"}
        if st is not None and st.status == "running" or self.store.exists(running_key(task_id, self.client_id)):
            return {"task_id": task_id, "status": "running", **({"where": st.where} if st and st.where else {})}
        return {"task_id": task_id, "status": "pending"}

    def _cancelled(self, task_id: str) -> bool:
        """Did this user cancel the task? (A marker someone else wrote does not count.)"""
        try:
            marker = self.store.get_head(cancel_key(task_id, self.client_id), sealing.CANCEL_MARKER_MAX)
            return sealing.check_cancel(marker, self.task_secret(task_id), task_id)
        except KeyNotFound:
            return False

    def _result_data(self, task_id: str, timeout: float | None) -> bytes:
        check_task_id(task_id)
        st = self._tasks.get(task_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        if st is not None:
            if not st.wait(timeout):
                raise TaskTimeout(f"task {task_id}: no result within {timeout} s (status {st.status})")
            if st.status == "cancelled":
                raise TaskCancelled(f"task {task_id} was cancelled")
            if st.error is not None:
                raise st.error
            self._tasks.pop(task_id, None)   # read once from memory; again from the store
            # finished, not cancelled, no error: _on_notice set it with the result frame it read
            return cast(bytes, st.data)
        delay = 0.02
        forged: ResultForged | None = None
        while True:   # a task this client did not send: the store is the record
            try:
                found = self.stored_result(task_id)
                if found is not None:
                    return found[0]
            except ResultForged as e:   # the real one may still replace it (S3): wait for it
                forged = e
            if self._cancelled(task_id):
                raise TaskCancelled(f"task {task_id} was cancelled")
            if deadline is not None and time.monotonic() >= deadline and not self._storing(task_id):
                if forged is not None:
                    raise forged
                raise TaskTimeout(f"task {task_id}: no result within {timeout} s ({self.get_task(task_id)['status']})")
            left = None if deadline is None else deadline - time.monotonic()
            time.sleep(min(delay, left) if left is not None and left > 0 else delay)   # past it: storing
            delay = min(delay * 1.5, 1.0)

    def _storing(self, task_id: str) -> bool:
        """Is the task's result on its way to the store? Its done notice carried it (checked)
        and the worker stores it right after (over anything planted there first): a read that
        finds nothing yet, or a forgery, waits for it up to STORING_GRACE seconds after the
        notice, whatever its timeout (a known result is never "not there within 0 s")."""
        notified, _ = self._notified.get(task_id, (None, None))
        return notified is not None and time.time() < notified + STORING_GRACE

    def read_result(self, task_id: str, timeout: float | None = None) -> tuple[dict, list]:
        """``(header, outcomes)`` of a finished task, authenticated before it is unpickled."""
        return decode_result(self._result_data(task_id, timeout), task_id)

    def get_result(self, task_id: str, timeout: float | None = None) -> Any:
        """The task's return value (a list for a ``map`` chunk); raises the remote exception."""
        _, outcomes = self.read_result(task_id, timeout)
        values = [outcome_value(o, task_id) for o in outcomes]
        return values[0] if len(values) == 1 else values

    def get_results(self, task_ids: Iterable[str]) -> dict[str, dict]:
        """Non-blocking: ``{task_id: {"status", "result" | "error"}}`` (Globus's get_batch_result)."""
        out = {}
        for tid in task_ids:
            info = self.get_task(tid)
            if info["status"] == "success":
                info["result"] = self.get_result(tid, timeout=0)
            out[tid] = info
        return out

    def cancel(self, task_id: str) -> dict:
        """A task not yet started never runs; a running one is stopped (within about a second)."""
        info = self.get_task(task_id)
        if info["status"] in ("success", "failed", "cancelled"):
            return info
        marker = sealing.cancel_marker(self.task_secret(task_id), task_id, time.time())
        self.store.put(cancel_key(task_id, self.client_id), marker)
        # then this client's epoch, which tells pools to look for its task markers (messages.cancel_epoch_key)
        self.store.put(cancel_epoch_key(self.client_id), str(time.time()).encode())
        st = self._tasks.get(task_id)
        if st is not None and st.status == "pending":
            st._set("cancelled")
        return {"task_id": task_id, "status": "cancelled" if info["status"] == "pending" else "cancelling"}

    def close(self) -> None:
        """Send what is queued, stop the threads, and delete this client's reply queue."""
        if self._closed.is_set():
            return
        self.flush()
        self._closed.set()
        with self._out_cv:
            self._out_cv.notify_all()
        if self._reply is not None:
            try:
                self._reply.destroy()
            except Exception as e:  # noqa: BLE001 - closing: a queue not deleted is logged, not raised
                log.info("could not delete reply queue %s: %s", self._reply.url, e)
            self._reply.close()       # also wakes a receive blocked on the local queue
        if self._listener is not None and self._listener is not threading.current_thread():
            self._listener.join(0.5)  # an SQS long poll ends on its own; the thread is a daemon

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

