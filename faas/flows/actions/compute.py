"""The compute action (``faas://compute``; Globus's compute ActionUrls are aliases): run
registered functions on faas endpoints through faas's own client.

Body: ``endpoint`` (an endpoint name, or an id mapped to a name by the site config's
``compute.endpoints``), ``function`` (an id from ``faas.client().register_function``), ``args``,
``kwargs``; or ``tasks: [{endpoint, function, args, kwargs}, ...]``. Globus's older spellings
(``endpoint_id``, ``function_id``, ``payload`` as kwargs) are accepted too.

``run`` sends the tasks and returns ACTIVE; ``status`` reads the results from the store (any
process can: results are objects there). SUCCEEDED details are the return value (a list for
``tasks``); a remote exception fails the action with its type, message and remote traceback.
"""
from __future__ import annotations

import json
import threading

from faas.api import Client
from faas.exceptions import FaasError, TaskTimeout
from faas.messages import function_key

from .base import (DONE, FAILED, SUCCEEDED, ActionConflict, ActionContext, ActionUnableToRun,
                   Docs, finish, new_doc, public)

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


def _tasks(body, ctx: ActionContext) -> tuple[list[dict], bool]:
    """``([{endpoint, function, args, kwargs}], is_list)``, checked."""
    if not isinstance(body, dict):
        raise ActionUnableToRun(f"the compute body must be an object, got {type(body).__name__}")
    if "tasks" in body:
        tasks, many = body["tasks"], True
        if not isinstance(tasks, list) or not tasks:
            raise ActionUnableToRun("tasks: expected a non-empty list of {endpoint, function, args, kwargs}")
    else:
        tasks, many = [body], False
    names = (ctx.config.get("compute") or {}).get("endpoints") or {}
    out = []
    for i, t in enumerate(tasks):
        where = f"tasks[{i}]." if many else ""
        if not isinstance(t, dict):
            raise ActionUnableToRun(f"tasks[{i}]: expected an object, got {t!r}")
        ep = t.get("endpoint", t.get("endpoint_id", body.get("endpoint", body.get("endpoint_id"))))
        fn = t.get("function", t.get("function_id"))
        if not isinstance(ep, str) or not ep:
            raise ActionUnableToRun(f"{where}endpoint: expected an endpoint name, got {ep!r}")
        if not isinstance(fn, str) or not fn:
            raise ActionUnableToRun(f"{where}function: expected a function id (from "
                                    f"faas.client().register_function), got {fn!r}")
        args = t.get("args", [])
        kwargs = t.get("kwargs", t.get("payload", {})) or {}
        if not isinstance(args, list):
            raise ActionUnableToRun(f"{where}args: expected a list, got {args!r}")
        if not isinstance(kwargs, dict):
            raise ActionUnableToRun(f"{where}kwargs: expected an object, got {kwargs!r}")
        out.append({"endpoint": names.get(ep, ep), "function": fn, "args": args, "kwargs": kwargs})
    return out, many


class ComputeProvider:
    kind = "compute"

    def __init__(self):
        self.docs = Docs(self.kind)

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        tasks, many = _tasks(body, ctx)

        def make(aid):
            doc = new_doc(self.kind, aid, request_id, ctx, display_status="Submitting")
            doc.update(_tasks=tasks, _many=many, _task_ids=None)
            return doc
        doc, created = self.docs.create(ctx, request_id, make)
        if not created:
            return self.status(doc["action_id"], ctx)
        client = _client(ctx)
        try:
            for i, t in enumerate(tasks):
                try:
                    key = function_key(t["function"], client.client_id)
                except ValueError as e:
                    raise ActionUnableToRun(f"{'tasks[%d].' % i if many else ''}function: {e}") from None
                if not client.store.exists(key):
                    raise ActionUnableToRun(f"{'tasks[%d].' % i if many else ''}function "
                                            f"{t['function']!r} is not registered in store "
                                            f"{client.store.url}: register it with "
                                            f"faas.client().register_function")
            for ep in sorted({t["endpoint"] for t in tasks}):   # all known before any is sent
                embedded = ep == "local" and client.settings.is_embedded and client.settings.autostart
                if not embedded:
                    client.describe_endpoint(ep)
            ids = [client.run(t["function"], endpoint=t["endpoint"], args=t["args"], kwargs=t["kwargs"])
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
        values, pending = [], 0
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
            values.append(outcome[1])
        if pending:
            doc["display_status"] = f"{len(ids) - pending} of {len(ids)} task(s) done"
            return self._public(doc)
        result = values if doc["_many"] else values[0]
        try:
            result = json.loads(json.dumps(result))
        except (TypeError, ValueError) as e:
            finish(doc, FAILED, {"error": "ResultNotJSON", "task_ids": ids,
                                 "message": f"the function returned a value a flow cannot hold "
                                            f"(flow state is JSON: {e}); return lists, dicts, "
                                            f"strings, numbers, booleans or None"})
            return self._public(self.docs.put(ctx, doc))
        finish(doc, SUCCEEDED, result)
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
