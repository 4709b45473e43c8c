"""The compute action (``faas://compute``; Globus's compute ActionUrls are aliases): run
registered functions on faas endpoints through faas's own client.

Body, as Globus's compute action provider takes it (V2 and V3 spellings both): ``endpoint`` or
``endpoint_id`` (an endpoint name, or an id mapped to a name by the site config's
``compute.endpoints``), ``function`` or ``function_id`` (an id from
``faas.client().register_function``), ``args`` (a list; V2's single item is one argument),
``kwargs`` (``payload`` is V2's older name); and ``tasks: [{endpoint, function, args, kwargs},
...]`` after or instead of that single task, each task taking the top-level endpoint unless it
names its own. ``user_endpoint_config``, ``resource_specification`` and ``task_group_id`` go to
every task as with ``Client.submit_tasks``; V3's ``create_queue`` has no meaning here.

``run`` sends the tasks and returns ACTIVE; ``status`` reads the results from the store (any
process can: results are objects there). SUCCEEDED details are Globus's shape, the same for
every ActionUrl version: ``{"result": [output, ...], "results": [{"task_id", "output"}, ...]}``
in task order. A remote exception fails the action (FAILED, which a flow sees as
``ActionFailedException``) with its type, message, remote traceback and task id.
"""
from __future__ import annotations

import json
import threading

from faas.api import Client
from faas.exceptions import FaasError, TaskTimeout
from faas.messages import function_key

from .base import (
    DONE,
    FAILED,
    SUCCEEDED,
    ActionConflict,
    ActionContext,
    ActionUnableToRun,
    Docs,
    finish,
    for_runner_account,
    new_doc,
    public,
)

POLL_AFTER = 1
_clients: dict[tuple, Client] = {}
_clients_lock = threading.Lock()


def _client(ctx: ActionContext) -> Client:
    """One faas client per resolved compute settings per process (each has a reply queue and a
    listener thread). ``compute: {profile, store, home}`` in the site config pick them."""
    from faas.config import resolve
    cfg = ctx.config.get("compute") or {}
    settings = resolve(cfg.get("profile"), store=cfg.get("store"), home=cfg.get("home"))
    key = (settings.profile, settings.store_url, str(settings.home), settings.endpoint)
    with _clients_lock:
        c = _clients.get(key)
        if c is None:
            c = _clients[key] = Client(settings)
        return c


_OPTIONS = {"user_endpoint_config": "an object of the endpoint template's variables",
            "resource_specification": "an object such as {\"num_nodes\": 2, \"ranks_per_node\": 4}",
            "task_group_id": "a UUID string"}
_FUNCTION_HINT = "a function id (from faas.client().register_function)"


def _task(t: dict, where: str, default_ep, names: dict) -> dict:
    """One checked task ``{endpoint, function, args, kwargs}``; ``where`` prefixes error keys."""
    ep = t.get("endpoint", t.get("endpoint_id", default_ep))
    fn = t.get("function", t.get("function_id"))
    if not isinstance(ep, str) or not ep:
        raise ActionUnableToRun(f"{where}endpoint: expected an endpoint name or id (or endpoint_id), "
                                f"got {ep!r}")
    if fn is None:
        raise ActionUnableToRun(f"{where}function: missing; expected {_FUNCTION_HINT} under "
                                f"'function' or 'function_id'")
    if not isinstance(fn, str) or not fn:
        raise ActionUnableToRun(f"{where}function: expected {_FUNCTION_HINT}, got {fn!r}")
    args = t.get("args", [])
    args = args if isinstance(args, list) else [args]   # Globus V2: a single item is one argument
    kwargs = t.get("kwargs", t.get("payload"))
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise ActionUnableToRun(f"{where}kwargs: expected an object of keyword arguments, got {kwargs!r}")
    return {"endpoint": names.get(ep, ep), "function": fn, "args": args, "kwargs": kwargs,
            "where": where}


def _tasks(body, ctx: ActionContext) -> tuple[list[dict], dict]:
    """``([{endpoint, function, args, kwargs}], options)``, checked: the top-level task (if the
    body names a function) first, then ``tasks`` in order."""
    if not isinstance(body, dict):
        raise ActionUnableToRun(f"the compute body must be an object, got {type(body).__name__}")
    names = (ctx.config.get("compute") or {}).get("endpoints") or {}
    default_ep = body.get("endpoint", body.get("endpoint_id"))
    listed = body.get("tasks")
    if listed is not None and not isinstance(listed, list):
        raise ActionUnableToRun(f"tasks: expected a list of {{function, args, kwargs}} objects, got {listed!r}")
    out = []
    if "function" in body or "function_id" in body or not listed:
        out.append(_task(body, "", default_ep, names))
    for i, t in enumerate(listed or []):
        if not isinstance(t, dict):
            raise ActionUnableToRun(f"tasks[{i}]: expected an object, got {t!r}")
        out.append(_task(t, f"tasks[{i}].", default_ep, names))
    options = {}
    for key, expected in _OPTIONS.items():
        v = body.get(key)
        if v is None:
            continue
        if not isinstance(v, str if key == "task_group_id" else dict):
            raise ActionUnableToRun(f"{key}: expected {expected}, got {v!r}")
        options[key] = v
    return out, options


def _check_endpoints_allowed(tasks: list[dict], ctx: ActionContext) -> None:
    """A runner serving other users' runs (root, a service account) submits for them only to the
    endpoints its site config lists (``compute.allowed_endpoints``): else any run could have the
    runner's faas identity (its signing keys) run the functions registered in its store, with the
    run's arguments, on any endpoint that identity reaches, its own embedded one (as root) too."""
    if for_runner_account(ctx):
        return
    cfg = ctx.config.get("compute") or {}
    allowed = cfg.get("allowed_endpoints") or []
    if "*" in allowed:
        return
    names = cfg.get("endpoints") or {}
    allowed_names = {names.get(a, a) for a in allowed}
    for t in tasks:
        if t["endpoint"] not in allowed_names:
            raise ActionUnableToRun(
                f"{t['where']}endpoint: {t['endpoint']!r} is not one this runner sends tasks to for "
                f"{ctx.username}'s runs: a runner serving other users' runs submits only to the "
                f"endpoints its site config lists under compute.allowed_endpoints "
                f"({', '.join(sorted(allowed_names)) or 'none listed'})")


class ComputeProvider:
    kind = "compute"

    def __init__(self) -> None:
        self.docs = Docs(self.kind)

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        tasks, options = _tasks(body, ctx)
        _check_endpoints_allowed(tasks, ctx)   # before the action's document: a retry is refused again

        def make(aid):
            doc = new_doc(self.kind, aid, request_id, ctx, display_status="Submitting")
            doc.update(_tasks=tasks, _task_ids=None)
            return doc
        doc, created = self.docs.create(ctx, request_id, make)
        if not created:
            return self.status(doc["action_id"], ctx)
        client = _client(ctx)
        try:
            for t in tasks:
                try:
                    key = function_key(t["function"], client.client_id)
                except ValueError as e:
                    raise ActionUnableToRun(f"{t['where']}function: {e}") from None
                if not client.store.exists(key):
                    raise ActionUnableToRun(f"{t['where']}function "
                                            f"{t['function']!r} is not registered in store "
                                            f"{client.store.url}: register it with "
                                            f"faas.client().register_function")
            for ep in sorted({t["endpoint"] for t in tasks}):   # all known before any is sent
                embedded = ep == "local" and client.settings.is_embedded and client.settings.autostart
                if not embedded:
                    client.describe_endpoint(ep)
            ids = [client.submit_tasks(t["endpoint"], t["function"],
                                       [[(tuple(t["args"]), t["kwargs"])]], **options)[0].task_id
                   for t in tasks]
        except ActionUnableToRun:
            self.docs.delete(ctx, doc["action_id"])   # nothing started: a retry may start afresh
            raise
        except FaasError as e:
            self.docs.delete(ctx, doc["action_id"])
            raise ActionUnableToRun(f"{type(e).__name__}: {e}") from None
        doc.update(_task_ids=ids, display_status=f"{len(ids)} task(s) sent")
        doc["details"] = {"task_ids": ids}
        self.docs.put(ctx, doc)
        return self._public(doc)

    def _public(self, doc: dict) -> dict:
        out = public(doc)
        if out["status"] not in DONE:
            out["poll_after"] = POLL_AFTER
        return out

    def status(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self.docs.get(ctx, action_id)
        if doc["status"] in DONE:
            return self._public(doc)
        ids = doc.get("_task_ids")
        if ids is None:
            # The process that wrote the document died before it recorded the task ids: the
            # tasks may or may not have been sent. Sending again could run them twice.
            finish(doc, FAILED, {"error": "ActionInterrupted",
                                 "message": "the process starting this action died while sending "
                                            "its tasks; they were not re-sent, so none runs twice"})
            return self._public(self.docs.put(ctx, doc))
        client = _client(ctx)
        results, pending = [], 0
        for tid in ids:
            info = client.get_task(tid)
            st = info["status"]
            if st in ("pending", "running"):
                pending += 1
                continue
            if st == "cancelled":
                finish(doc, FAILED, {"error": "TaskCancelled", "message": f"task {tid} was cancelled",
                                     "task_id": tid}, "Canceled")
                return self._public(self.docs.put(ctx, doc))
            try:   # authenticated before anything is unpickled (faas.sealing)
                _, outcomes = client.read_result(tid, timeout=0)
            except TaskTimeout:
                pending += 1
                continue
            except FaasError as e:
                finish(doc, FAILED, {"error": type(e).__name__, "message": str(e), "task_id": tid})
                return self._public(self.docs.put(ctx, doc))
            outcome = outcomes[0]
            if not outcome[0]:
                _, _, type_name, message, tb = outcome
                type_name = str(type_name).removeprefix("builtins.")
                finish(doc, FAILED, {"error": type_name, "message": message, "traceback": tb,
                                     "task_id": tid}, f"{type_name}: {message}"[:200])
                return self._public(self.docs.put(ctx, doc))
            results.append({"task_id": tid, "output": outcome[1]})
        if pending:
            doc["display_status"] = f"{len(ids) - pending} of {len(ids)} task(s) done"
            return self._public(doc)
        try:
            results = json.loads(json.dumps(results))
        except (TypeError, ValueError) as e:
            finish(doc, FAILED, {"error": "ResultNotJSON", "task_ids": ids,
                                 "message": f"the function returned a value a flow cannot hold "
                                            f"(flow state is JSON: {e}); return lists, dicts, "
                                            f"strings, numbers, booleans or None"})
            return self._public(self.docs.put(ctx, doc))
        finish(doc, SUCCEEDED, {"result": [r["output"] for r in results], "results": results})
        return self._public(self.docs.put(ctx, doc))

    def cancel(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self.docs.get(ctx, action_id)
        if doc["status"] in DONE or not doc.get("_task_ids"):
            return self.status(action_id, ctx)
        client = _client(ctx)
        for tid in doc["_task_ids"]:
            client.cancel(tid)
        finish(doc, FAILED, {"error": "Canceled", "message": "the action was canceled",
                             "task_ids": doc["_task_ids"]}, "Canceled")
        return self._public(self.docs.put(ctx, doc))

    def release(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self.docs.get(ctx, action_id)
        if doc["status"] not in DONE:
            raise ActionConflict(f"compute action {action_id} is still {doc['status']}: cancel it "
                                 "or wait for its end before releasing it")
        self.docs.delete(ctx, action_id)
        return self._public(doc)
