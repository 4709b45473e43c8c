"""``faas.Client``: Globus Compute SDK's Client (globus-compute-sdk 4.x: the same methods,
signatures and return shapes), on faas's store and queues, with no web service in between.

Code written for Globus Compute runs with only its import changed::

    from faas import Client            # from globus_compute_sdk import Client
    gcc = Client()
    fid = gcc.register_function(platform_func)
    tid = gcc.run(endpoint_id="local", function_id=fid)
    gcc.get_result(tid)                # raises faas.errors.TaskPending until it is done

Endpoint ids are an endpoint's name or its UUID; function ids are faas's (the SHA-256 of the
function's bytes, not a UUID); task and task group ids are UUIDs as in Globus. Each
``batch_run`` (and so each ``run``) makes a task group unless the batch names one; its tasks are
recorded under ``groups/<client id>/<group>/`` in the store, so ``Executor.reload_tasks`` finds
them from any process. There is no login: who you are is your result key
(``$FAAS_HOME/result.key``) and the store and queues your credentials reach.

The boto-style client (``faas.client()``, keyword arguments, ``cancel``, per-task ``timeout``)
is this one's ``boto_client``.
"""
from __future__ import annotations

import difflib
import inspect
import json
import logging
import socket
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from . import serialize
from .api import Client as BotoClient
from .api import decode_result, outcome_value
from .config import Settings, resolve
from .errors import TaskPending
from .exceptions import (
    EndpointNotFound,
    FunctionNotFound,
    ResultForged,
    SerializationError,
    TaskCancelled,
    TaskNotFound,
)
from .executor import _json_dict_or_none, _uuid_or_none, said_once
from .hardware import hardware_report
from .messages import check_function_id, check_task_id, function_key, running_key
from .serialize_strategies import SourceCode
from .store import KeyNotFound

log = logging.getLogger("faas.globus_client")

#: Globus Client constructor keywords that mean nothing here, and why
NO_EFFECT = {
    "environment": "there is no Globus web service to choose",
    "local_compute_services": "there is no Globus web service to choose",
    "code_serialization_strategy": "functions are always serialized with dill",
    "data_serialization_strategy": "arguments are always serialized with dill",
    "app": "there is no Globus Auth login: the result key and your store/queue credentials say who you are",
    "authorizer": "there is no Globus Auth login: the result key and your store/queue credentials say who you are",
}
_GLOBUS_KEYWORDS = ("environment", "local_compute_services", "do_version_check", "code_serialization_strategy",
                    "data_serialization_strategy", "app", "authorizer", "profile")

#: the boto-style client's methods: on this client they are an AttributeError pointing there
_BOTO_ONLY = frozenset({"submit_batch", "get_results", "cancel", "list_endpoints", "describe_endpoint",
                        "read_result", "submit_tasks", "flush", "task_secret"})
#: Globus Client methods not offered here, and what to do instead
_NOT_HERE = {
    "register_endpoint": "endpoints register themselves when they start: `faas endpoint configure NAME` "
                         "then `faas endpoint start NAME`",
    "delete_endpoint": "run `faas endpoint delete NAME` on the endpoint's host",
    "get_result_amqp_url": "results come on the client's own reply queue; there is no AMQP",
    "auth_client": "there is no Globus Auth: no auth client",
    "web_service_address": "there is no Globus web service",
}


def _task_id(value: Any, name: str = "task_id") -> str:
    if isinstance(value, uuid.UUID):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a task id (a UUID string, as run() returns), got {type(value).__name__}")
    try:
        return check_task_id(value.lower())
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _endpoint_name(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"endpoint_id must be an endpoint's name or UUID, got {type(value).__name__}")
    if not value:
        raise ValueError("endpoint_id is empty: give an endpoint's name or UUID (`faas endpoint list`)")
    return value


def _function_id(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"function_id must be a function id (as register_function returns), got "
                        f"{type(value).__name__}")
    try:
        return check_function_id(value)
    except ValueError as e:
        raise ValueError(f"function_id: {e}; faas's function ids are what register_function returns") from None


#: the most read of a function's metadata object (its name and docstring): one planted there,
#: however large, costs no more (and then does not open)
FUNCTION_META_MAX = 1 << 20


def _function_meta_key(function_id: str, client_id: str) -> str:
    """Beside a function's bytes: what register_function was told about it (name, description)."""
    return function_key(function_id, client_id) + ".json"


class Batch:
    """Globus's Batch: calls to send together with ``Client.batch_run`` (make one with
    ``Client.create_batch``). Arguments are serialized when the batch is sent, not when added."""

    def __init__(self, task_group_id: str | uuid.UUID | None, resource_specification: dict | None = None,
                 user_endpoint_config: dict | None = None, request_queue: bool = False,
                 serializer: Any = None, user_runtime: Any = None, result_serializers: list | None = None):
        self.task_group_id = task_group_id
        self.resource_specification = _json_dict_or_none(resource_specification, "resource_specification")
        self.user_endpoint_config = _json_dict_or_none(user_endpoint_config, "user_endpoint_config")
        self.request_queue = request_queue
        self.user_runtime = user_runtime
        self.result_serializers = result_serializers
        self.tasks: dict[str, list[tuple[tuple, dict]]] = defaultdict(list)

    @property
    def task_group_id(self) -> uuid.UUID | None:
        return self._task_group_id

    @task_group_id.setter
    def task_group_id(self, value: str | uuid.UUID | None) -> None:
        self._task_group_id = _uuid_or_none(value, "task_group_id")

    def __repr__(self) -> str:
        counts = {fid: len(calls) for fid, calls in self.tasks.items()}
        return f"faas.Batch(task_group_id={self.task_group_id}, tasks={counts})"

    def __bool__(self) -> bool:
        """True if every function in the batch has at least one task (Globus's rule)."""
        return all(bool(calls) for calls in self.tasks.values())

    def __len__(self) -> int:
        return sum(len(calls) for calls in self.tasks.values())

    def add(self, function_id: str, args: tuple | list | None = None, kwargs: dict | None = None) -> None:
        """Add a call of a registered function: ``function_id(*args, **kwargs)``."""
        if args is None:
            args = ()
        if not isinstance(args, (list, tuple)):
            raise TypeError(f"args: expected `tuple`, got: {type(args).__name__}")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs: expected dict, got: {type(kwargs).__name__}")
        bad = next((k for k in kwargs if not isinstance(k, str)), None)
        if bad is not None:
            raise TypeError(f"kwargs: expected kwargs with `str` keys, got: {type(bad).__name__}")
        self.tasks[_function_id(function_id)].append((tuple(args), dict(kwargs)))

    def prepare(self) -> dict:
        """What ``batch_run`` sends, in Globus's shape: ``{"create_queue", "tasks": {function id:
        [serialized call, ...]}, "task_group_id"?, "resource_specification"?, ...}``."""
        data: dict[str, Any] = {"create_queue": self.request_queue, "tasks": {
            fid: [serialize.b64(serialize.calls_bytes([call])) for call in calls] for fid, calls in self.tasks.items()}}
        if self.task_group_id:
            data["task_group_id"] = str(self.task_group_id)
        if self.resource_specification:
            data["resource_specification"] = self.resource_specification
        if self.user_endpoint_config:
            data["user_endpoint_config"] = self.user_endpoint_config
        if self.result_serializers:
            data["result_serializers"] = self.result_serializers
        return data


class Client:
    """Globus Compute SDK's Client on faas (``from faas import Client``): ``register_function``,
    ``run(*args, endpoint_id=, function_id=, **kwargs)``, ``create_batch``/``batch_run``,
    ``get_task``, ``get_result`` (raises ``faas.errors.TaskPending`` while pending),
    ``get_batch_result``, and the endpoint and function look-ups. Globus's constructor keywords are
    accepted (those with no meaning here are said once at DEBUG); faas's settings come from
    ``profile=``, ``store=`` and any other client setting (``home=``, ``endpoint=``, ...), then
    ``FAAS_*`` variables and ``$FAAS_HOME/config``, as for ``faas.client()``."""

    def __init__(self, environment: str | None = None, local_compute_services: bool = False,
                 do_version_check: bool = True, *, code_serialization_strategy: Any = None,
                 data_serialization_strategy: Any = None, app: Any = None, authorizer: Any = None,
                 profile: str | None = None, **kwargs: Any):
        settings = {k: kwargs.pop(k) for k in list(kwargs) if k in Settings.model_fields and k != "profile"}
        for name in kwargs:   # Globus warns of unknown keywords (removed ones); so do we, with a hint
            close = difflib.get_close_matches(name, [*_GLOBUS_KEYWORDS, *Settings.model_fields], n=1)
            warnings.warn(f"The '{name}' argument is unrecognized. (It might have been removed in a previous "
                          f"release.)" + (f" Did you mean '{close[0]}'?" if close else ""), stacklevel=2)
        if app and authorizer:
            raise ValueError("'app' and 'authorizer' are mutually exclusive.")
        for name, value in (("environment", environment), ("local_compute_services", local_compute_services),
                            ("code_serialization_strategy", code_serialization_strategy),
                            ("data_serialization_strategy", data_serialization_strategy),
                            ("app", app), ("authorizer", authorizer)):
            if value:
                said_once(f"Client.{name}", "Client(%s=...): no effect here: %s", name, NO_EFFECT[name])
        self._api = BotoClient(resolve(profile, **settings))
        self._task_status_table: dict[str, dict] = {}
        self._group_ids: set[str] = set()          # task ids seen in this client's task group records
        self._group_keys_read: set[str] = set()
        self._described: set[str] = set()           # function ids whose metadata this client wrote
        if do_version_check:
            self.version_check()

    @property
    def boto_client(self) -> BotoClient:
        """The boto-style client underneath (``faas.client()``'s kind): cancel, timeouts, keywords."""
        return self._api

    @property
    def settings(self) -> Settings:
        return self._api.settings

    def __repr__(self) -> str:
        return (f"<faas.Client (Globus Compute SDK-style; faas.client() is the boto-style one): "
                f"store={self._api.settings.store_url!r}, endpoint={self._api.settings.endpoint!r}>")

    def __getattr__(self, name: str) -> Any:
        if name in _BOTO_ONLY:
            raise AttributeError(
                f"{name} belongs to the boto-style client (faas.client()); this is faas.Client, Globus "
                f"Compute's API: call client.boto_client.{name}(...) or use faas.client()")
        if name in _NOT_HERE:
            raise AttributeError(f"faas.Client has no {name}: {_NOT_HERE[name]}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def close(self) -> None:
        """Stop the client's threads and delete its reply queue (also done at exit)."""
        self._api.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- service-side housekeeping with no service ------------------------------------------------
    def version_check(self, endpoint_version: str | None = None) -> None:
        """Globus checks this SDK against its web service's minimum; faas has no service to ask.
        Each task is checked instead: a client and worker on different Python minor versions fail
        it with an error naming both."""
        if endpoint_version is not None and not isinstance(endpoint_version, str):
            raise TypeError(f"endpoint_version must be a str, got {type(endpoint_version).__name__}")

    def logout(self) -> None:
        """Nothing to log out of: there is no Globus Auth login. (Your result key,
        ``$FAAS_HOME/result.key``, stays: it is what proves your results are yours.)"""
        log.info("faas.Client.logout: there is no login here; nothing was removed")

    # -- functions ----------------------------------------------------------------------------
    def register_function(self, function: Callable, description: str | None = None, metadata: dict | None = None,
                          public: bool = False, group: str | None = None,
                          ha_endpoint_id: str | uuid.UUID | None = None) -> str:
        """Store ``function`` (once: its id is the SHA-256 of its bytes) and return its id.
        ``description`` (default: its docstring) is kept for ``get_function``. ``public``,
        ``group``, ``ha_endpoint_id`` and ``metadata`` have no effect: a function is private to
        the result key that registered it."""
        if not callable(function):
            raise TypeError(f"register_function: expected a function, got {type(function).__name__}")
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a str, got {type(description).__name__}")
        if ha_endpoint_id and (public or group):
            raise ValueError("`ha_endpoint_id` is mutually exclusive with `public` and `group`")
        for name, value in (("public", public), ("group", group), ("ha_endpoint_id", ha_endpoint_id),
                            ("metadata", metadata)):
            if value:
                said_once(f"register_function.{name}", "register_function(%s=...): no effect here: a function "
                          "is private to the result key that registered it", name)
        fid = self._api.register_function(function)
        if description is None:
            description = inspect.getdoc(function)
        if description and fid not in self._described:
            name = getattr(function, "__name__", None) or type(function).__name__
            meta = json.dumps({"function_name": name[:1000], "description": description[:100_000]}).encode()
            self._api.store.put(_function_meta_key(fid, self._api.client_id),   # sealed as its function
                                serialize.seal(meta, {"kind": "function-meta", "function_id": fid},
                                               self._api.function_secret(fid), "function-meta"))
            self._described.add(fid)
        return fid

    def register_source_code(self, source: str, function_name: str, description: str | None = None,
                             metadata: dict | None = None, public: bool = False, group: str | None = None,
                             ha_endpoint_id: str | uuid.UUID | None = None) -> str:
        """Store Python source text whose ``function_name`` is the entry point, and return its
        id. As Globus's PureSourceTextInspect, the source runs on the worker in a fresh namespace
        (at the function's first call there); a source that does not parse, or defines no
        top-level ``function_name``, is a SerializationError here rather than a failed task."""
        return self.register_function(SourceCode(source, function_name), description=description or "",
                                      metadata=metadata, public=public, group=group, ha_endpoint_id=ha_endpoint_id)

    def get_function(self, function_id: str) -> dict:
        """``{"function_uuid", "function_name", "function_code", "description", "metadata"}``
        (``function_code``: the function's frame, base64, as opened from the store)."""
        fid = _function_id(function_id)
        cid = self._api.client_id
        data = self._api.stored_function(fid)   # bounded, and checked against its id
        if data is None:
            raise FunctionNotFound(f"function {fid} is not registered in store {self._api.store.url} by this "
                                   f"user (function ids are private to the result key that registered them)") from None
        header, _ = serialize.unframe(data)
        meta = self._function_meta(fid, cid)
        return {"function_uuid": fid, "function_name": meta.get("function_name") or header.get("name"),
                "function_code": serialize.b64(data), "description": meta.get("description"),
                "metadata": {"python_version": header.get("py"), "serde_identifier": header.get("ser"),
                             "dill_version": header.get("dill")}}

    def _function_meta(self, fid: str, cid: str) -> dict:
        """What register_function was told about the function; {} if none, or none that opens
        under its secret for it."""
        try:
            data = self._api.store.get_head(_function_meta_key(fid, cid), FUNCTION_META_MAX)
            found = json.loads(serialize.unseal_for(data, self._api.function_secret(fid), "function-meta",
                                                    "function_id", fid))
        except (KeyNotFound, ValueError, SerializationError):
            return {}
        return found if isinstance(found, dict) else {}

    def delete_function(self, function_id: str) -> dict:
        """Delete the function's bytes from the store: later runs of it fail with FunctionNotFound
        (tasks already queued that need it fail on the endpoint)."""
        fid = _function_id(function_id)
        cid = self._api.client_id
        self._api.store.delete(function_key(fid, cid))
        self._api.store.delete(_function_meta_key(fid, cid))
        self._api._stored_fns.discard(fid)
        for key, (_, cached) in list(self._api._fn_ids.items()):
            if cached == fid:
                self._api._fn_ids.pop(key, None)
        self._described.discard(fid)
        return {"function_uuid": fid, "deleted": True}

    # -- running --------------------------------------------------------------------------
    def create_batch(self, task_group_id: str | uuid.UUID | None = None, resource_specification: dict | None = None,
                     user_endpoint_config: dict | None = None, create_websocket_queue: bool = False,
                     result_serializers: list[str] | None = None) -> Batch:
        """A Batch for ``batch_run``; ``task_group_id`` joins an existing group (default: a new one)."""
        if result_serializers:
            said_once("create_batch.result_serializers", "create_batch(result_serializers=...): no effect "
                      "here: results are always serialized with dill")
        return Batch(task_group_id, resource_specification, user_endpoint_config, create_websocket_queue,
                     result_serializers=result_serializers)

    def batch_run(self, endpoint_id: str | uuid.UUID, batch: Batch) -> dict:
        """Send the batch's calls to the endpoint: ``{"tasks": {function id: [task id, ...]},
        "task_group_id", "endpoint_id", "request_id"}``. Returns once the tasks are on the
        endpoint's queue (and recorded in their task group)."""
        if not isinstance(batch, Batch):
            raise TypeError(f"batch must be a Batch (from create_batch()), got {type(batch).__name__}")
        if not len(batch):
            raise ValueError("No tasks specified for batch run")
        endpoint = _endpoint_name(endpoint_id)
        tg = str(batch.task_group_id or uuid.uuid4())
        for fid in batch.tasks:   # before anything is sent: all or nothing
            self._api._check_function(fid)
        tasks: dict[str, list[str]] = {}
        for fid, calls in batch.tasks.items():
            states = self._api.submit_tasks(endpoint, fid, [[call] for call in calls], None, wait_sent=True,
                                            user_endpoint_config=batch.user_endpoint_config,
                                            resource_specification=batch.resource_specification,
                                            task_group_id=tg)
            tasks[fid] = [st.task_id for st in states]
        return {"request_id": str(uuid.uuid4()), "task_group_id": tg, "endpoint_id": endpoint, "tasks": tasks}

    def run(self, *args: Any, endpoint_id: str | uuid.UUID, function_id: str, **kwargs: Any) -> str:
        """Run ``function_id(*args, **kwargs)`` on ``endpoint_id``; return the task id."""
        batch = self.create_batch()
        batch.add(function_id, args, kwargs)
        return self.batch_run(endpoint_id, batch)["tasks"][function_id][0]

    def get_worker_hardware_details(self, endpoint_id: str | uuid.UUID) -> str:
        """Run a report of the worker node's hardware; returns its task id (``get_result`` it)."""
        return self.run(endpoint_id=endpoint_id, function_id=self.register_function(hardware_report))

    # -- results ---------------------------------------------------------------------------
    def get_task(self, task_id: str | uuid.UUID) -> dict:
        """``{"task_id", "pending", "status", ...}``: a finished task adds ``completion_t`` and
        ``result`` (success) or ``exception`` (the task's own exception, with the remote
        traceback as its ``__cause__``; or TaskCancelled). Status is pending, running, success,
        failed or cancelled. A task id this user never sent is a TaskNotFound."""
        tid = _task_id(task_id)
        cached = self._task_status_table.get(tid)
        if cached is not None:
            return cached
        info = self._look_up(tid)
        if not info["pending"]:
            self._task_status_table[tid] = info
        return info

    def get_result(self, task_id: str | uuid.UUID) -> Any:
        """The task's return value; raises ``faas.errors.TaskPending`` while it has none, and the
        task's exception if it failed."""
        task = self.get_task(task_id)
        if task["pending"]:
            raise TaskPending(task["status"])
        if "result" in task:
            return task["result"]
        raise task["exception"]

    def get_batch_result(self, task_id_list: Iterable[str | uuid.UUID]) -> dict[str, dict]:
        """``{task id: get_task(task id)}`` for many tasks. Ids this user never sent are left out
        (with a warning naming them), as the Globus service leaves them out."""
        if isinstance(task_id_list, (str, uuid.UUID)) or not isinstance(task_id_list, Iterable):
            raise TypeError(f"task_id_list must be a list of task ids, got {type(task_id_list).__name__} "
                            f"(for one task: get_task or get_result)")
        out, unknown = {}, []
        for tid in dict.fromkeys(_task_id(t, "task_id_list item") for t in task_id_list):
            try:
                out[tid] = self.get_task(tid)
            except TaskNotFound:
                unknown.append(tid)
        if unknown:
            log.warning("get_batch_result: %d task id(s) unknown to this user's store, left out: %s",
                        len(unknown), ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""))
        return out

    def _look_up(self, tid: str) -> dict:
        api = self._api
        st = api._tasks.get(tid)
        data = None
        if st is not None and st.finished:
            if st.status == "cancelled":
                return self._cancelled(tid)
            if st.error is not None:
                return self._failed(tid, st.error, None)
            data = st.data
        if data is None:
            try:
                found = api.stored_result(tid)
            except ResultForged as e:
                return self._failed(tid, e, None)
            data = found[0] if found is not None else None
        if data is not None:
            header, outcomes = decode_result(data, tid)
            api._tasks.pop(tid, None)
            completion = header.get("finished")
            completion_t = str(completion) if completion is not None else None
            try:
                values = [outcome_value(o, tid) for o in outcomes]
            except BaseException as e:  # noqa: BLE001 - the task's own exception
                return self._failed(tid, e, completion_t, header)
            return {"task_id": tid, "pending": False, "status": "success",
                    "result": values[0] if len(values) == 1 else values, "completion_t": completion_t,
                    "details": _details(header)}
        if st is not None:   # sent by this client: its notices say whether it started (or was cancelled)
            return {"task_id": tid, "pending": True, "status": "running" if st.status == "running" else "pending"}
        if api._cancelled(tid):
            return self._cancelled(tid)
        if api.store.exists(running_key(tid, api.client_id)):
            return {"task_id": tid, "pending": True, "status": "running"}
        if self._in_a_group(tid):
            return {"task_id": tid, "pending": True, "status": "pending"}
        raise TaskNotFound(
            f"task {tid} is unknown to this user's store {api.store.url}: this client did not send it, no task "
            f"group of this user's lists it, and it has no result, cancel or start there. Check the id, and "
            f"that FAAS_HOME / the result key and the store are the ones that sent it")

    def _in_a_group(self, tid: str) -> bool:
        """Is ``tid`` in one of this user's task group records? (Every task faas.Client and
        faas.Executor send is.) Records already read are not read again."""
        if tid not in self._group_ids:
            found = self._api.group_tasks(skip=self._group_keys_read)
            self._group_keys_read.update(found)
            for _, _, ids in found.values():
                self._group_ids.update(ids)
        return tid in self._group_ids

    @staticmethod
    def _failed(tid: str, exc: BaseException, completion_t: str | None, header: dict | None = None) -> dict:
        out = {"task_id": tid, "pending": False, "status": "failed", "exception": exc, "completion_t": completion_t}
        if header is not None:
            out["details"] = _details(header)
        return out

    @staticmethod
    def _cancelled(tid: str) -> dict:
        return {"task_id": tid, "pending": False, "status": "cancelled",
                "exception": TaskCancelled(f"task {tid} was cancelled"), "completion_t": None}

    # -- endpoints -------------------------------------------------------------------------
    def get_endpoints(self, role: str | None = None) -> list[dict]:
        """Every endpoint registered in the store: ``[{"uuid", "name", "display_name",
        "status"}]``. ``role`` (owner, any) changes nothing: whoever reaches the store sees them."""
        if role is not None and role not in ("owner", "any"):
            raise ValueError(f"role must be 'owner', 'any' or None, got {role!r}")
        return [{"uuid": _uuid_of(r), "name": r.get("name"), "display_name": r.get("display_name"),
                 "status": _online(r)} for r in self._api.list_endpoints()]

    def get_endpoint_status(self, endpoint_uuid: str | uuid.UUID) -> dict:
        """``{"status": "online" | "offline", "details": {"total_workers", "idle_workers",
        "pending_tasks", "outstanding_tasks", "managers"}}`` from the endpoint's record and queue
        (pending: waiting on the queue; outstanding: those and the ones pools hold). Workers are as
        of the endpoint's last heartbeat (``as_of``; every 30 s); the queue's depth is read now."""
        record = self._api.describe_endpoint(_endpoint_name(endpoint_uuid))
        blocks = record.get("block_detail") or []
        workers = sum(b.get("workers") or 0 for b in blocks)
        busy = sum(b.get("busy") or 0 for b in blocks)
        depth = record.get("queue_depth") or {}   # {"visible", "in_flight"}; absent if unreachable
        visible, in_flight = depth.get("visible"), depth.get("in_flight")
        details = {"total_workers": workers, "idle_workers": max(0, workers - busy), "pending_tasks": visible,
                   "outstanding_tasks": None if visible is None else visible + (in_flight or 0),
                   "managers": sum(b.get("pools") or 0 for b in blocks), "blocks": record.get("blocks"),
                   "faas_status": record.get("status"), "as_of": record.get("heartbeat_at")}
        return {"status": _online(record), "details": details}

    def get_endpoint_metadata(self, endpoint_uuid: str | uuid.UUID) -> dict:
        """The endpoint's record with Globus's names beside faas's: ``uuid``, ``name``,
        ``display_name``, ``hostname``, ``endpoint_version``, ``multi_user``, ``queue``, ..."""
        record = self._api.describe_endpoint(_endpoint_name(endpoint_uuid))
        return {**record, "uuid": _uuid_of(record), "hostname": record.get("host"),
                "endpoint_version": record.get("version"),
                "multi_user": str(record.get("queue", "")).startswith("spool://"), "public": False}

    def get_allowed_functions(self, endpoint_id: str | uuid.UUID) -> dict:
        """``{"endpoint_id", "restricted", "functions"}``: the endpoint's ``allowed_functions``, from
        its record, or from its config.yaml when it is configured in this FAAS_HOME."""
        name = _endpoint_name(endpoint_id)
        record = self._api.describe_endpoint(name)
        if "allowed_functions" in record:
            allowed = record["allowed_functions"]
        else:
            cfg = self._local_config(record.get("name", name))
            if cfg is None:
                raise EndpointNotFound(
                    f"endpoint {name!r} does not publish its allowed_functions and is not configured in "
                    f"{self._api.settings.home}: ask its administrator (it is in its config.yaml)")
            allowed = cfg.allowed_functions
        return {"endpoint_id": str(endpoint_id), "restricted": allowed is not None, "functions": list(allowed or [])}

    def stop_endpoint(self, endpoint_id: str | uuid.UUID) -> dict:
        """Stop the endpoint's daemon, as ``faas endpoint stop`` does (its pools finish or hand
        back what they hold: nothing is lost). Only an endpoint configured in this FAAS_HOME on this
        host can be stopped from here. The embedded ``local`` endpoint starts again on the next
        submit."""
        from .endpoint import control
        name = _endpoint_name(endpoint_id)
        record = self._api.describe_endpoint(name)
        name = record.get("name", name)
        here = socket.gethostname()
        if self._local_config(name) is None or (record.get("host") and record.get("host") != here):
            raise EndpointNotFound(
                f"endpoint {name!r} runs on {record.get('host') or 'another host'}, not configured in "
                f"{self._api.settings.home} on {here}: stop it there with `faas endpoint stop {name}`")
        stopped = control.stop(name, self._api.settings.home)
        return {"endpoint_id": str(endpoint_id), "name": name, "stopped": stopped}

    def _local_config(self, name: str):
        from .endpoint import config as ep_config
        try:
            path = ep_config.endpoint_dir(name, self._api.settings.home) / "config.yaml"
        except Exception:  # noqa: BLE001 - a name that cannot be a folder is not configured here
            return None
        return ep_config.load(path) if path.exists() else None


def _details(header: dict) -> dict:
    return {"endpoint": header.get("endpoint"), "host": header.get("host"), "block": header.get("block"),
            "python_version": header.get("py"), "dill_version": header.get("dill"),
            "task_transitions": {"execution-start": header.get("started"), "execution-end": header.get("finished")}}


def _uuid_of(record: dict) -> str | None:
    return record.get("endpoint_id") or record.get("uuid")


def _online(record: dict) -> str:
    return "online" if record.get("status") == "running" else "offline"


__all__ = ["Client", "Batch", "hardware_report"]
