"""The tasks view: recent tasks from the journal, one task from the client and the store."""
from __future__ import annotations

import json

from .. import serialize
from ..exceptions import ResultForged
from ..messages import args_key, running_key
from ..store import KeyNotFound
from .context import Console
from .functions import function_name
from .preview import args_preview, result_preview

TERMINAL = ("success", "failed", "cancelled", "timeout")
ARGS_PREVIEW_BYTES = 8 << 20   # the task page shows arguments up to this size


def list_tasks(c: Console, *, endpoint: str | None = None, status: str | None = None,
               function: str | None = None, limit: int = 100, offset: int = 0) -> dict:
    """Running tasks (from the pools' markers), then finished ones (the journal), newest first.
    ``function`` matches a function id prefix or its name (running tasks carry no function)."""
    recs = c.journal.records()
    if not function and status in (None, "", "running"):
        recs = c.running.tasks() + list(recs)
    fn_ids = None
    if function:
        fn_ids = {fid for fid in {r.get("function_id") for r in recs}
                  if fid and (fid.startswith(function) or function_name(c, fid) == function)}
    out, total = [], 0
    for r in recs:
        if endpoint and r.get("endpoint") != endpoint or status and r.get("status") != status \
                or fn_ids is not None and r.get("function_id") not in fn_ids:
            continue
        total += 1
        if offset < total <= offset + limit:
            out.append(_row(c, r))
    return {"tasks": out, "total": total, "limit": limit, "offset": offset}


def _row(c: Console, r: dict) -> dict:
    return {"task_id": r["task_id"], "status": r.get("status"), "endpoint": r.get("endpoint"),
            "function_id": r.get("function_id"), "function_name": function_name(c, r.get("function_id")),
            "n": r.get("n"), "sent": r.get("sent"), "started": r.get("started"),
            "finished": r.get("finished"), "host": r.get("host"), "block": r.get("block"),
            "error": r.get("error")}


def get_task(c: Console, task_id: str) -> dict:
    """Status (the client's ``get_task``), timings and where it ran (result header, journal,
    running marker), the arguments summary and the result preview or remote traceback."""
    info = c.client.get_task(task_id)
    rec = c.journal.get(task_id) or {}
    fid = rec.get("function_id") or info.get("function_id")   # the result header names it too
    out = {"task_id": task_id, "status": info["status"], "function_id": fid,
           "function_name": function_name(c, fid), "n": rec.get("n") or info.get("calls"),
           "sent": rec.get("sent"), "started": info.get("started_t") or rec.get("started"),
           "finished": info.get("completion_t") or rec.get("finished"),
           "endpoint": info.get("endpoint") or rec.get("endpoint"), "block": info.get("block") or rec.get("block"),
           "host": info.get("host") or rec.get("host"), "error": info.get("error"), "result": None,
           "args": None, "in_journal": bool(rec)}
    if rec.get("status") in ("timeout",) and out["status"] != "success":
        out["status"] = rec["status"]
    if out["status"] == "running":
        try:
            where = json.loads(c.store.get(running_key(task_id, c.client.client_id)))
            out.update({k: where.get(k) for k in ("endpoint", "block", "host") if where.get(k)})
            out["started"] = out["started"] or where.get("started")
        except (KeyNotFound, ValueError):
            pass
    if out["status"] in ("success", "failed"):
        try:
            found = c.client.stored_result(task_id)   # never a planted one
            if found is not None:
                prev = result_preview(found[0])
                out["result"] = {"values": prev["values"], "note": prev.get("note")}
        except ResultForged as e:
            out["result"] = {"values": None, "note": str(e)}
    try:   # a head only: anyone who can write the bucket could plant a huge object here
        data = c.store.get_head(args_key(task_id, c.client.client_id), ARGS_PREVIEW_BYTES + 1)
        out["args"] = (args_preview(serialize.open_args(data, task_id, c.client.task_secret(task_id)))
                       if len(data) <= ARGS_PREVIEW_BYTES else
                       {"n": out["n"], "note": f"over {ARGS_PREVIEW_BYTES >> 20} MiB: not previewed"})
    except KeyNotFound:
        out["args"] = {"n": out["n"], "note": "sent inline in the task message (not kept in the store)"}
    except Exception as e:  # noqa: BLE001 - any store or decode failure: the page shows it, not a 500
        out["args"] = {"note": f"not readable: {e}"}
    return out


def cancel_task(c: Console, task_id: str) -> dict:
    return c.client.cancel(task_id)
