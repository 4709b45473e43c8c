"""The approval action (``faas://approval``): a person in the loop.

``run`` records a pending approval and returns INACTIVE (``display_status`` says who must
approve; the body may carry ``message`` and ``approvers``, a list of user names). The run waits
until :func:`decide` (``faas flows approve|reject RUN_ID``) marks the run's pending approvals
SUCCEEDED (details ``{approved, approved_by, comment}``) or FAILED. Give the Action state a
``WaitTime`` long enough for a person (the default is 300 s).
"""
from __future__ import annotations

import json

from faas.store import KeyNotFound

from .base import (DONE, FAILED, INACTIVE, PREFIX, SUCCEEDED, ActionConflict, ActionContext,
                   ActionError, ActionUnableToRun, Docs, finish, new_doc, public, store_for)


class NotAnApprover(ActionError, PermissionError):
    """The user deciding is not among the approval's ``approvers``."""

    code = "NotAnApprover"

_docs = Docs("approval")


def _index_key(run_id: str, action_id: str) -> str:
    return f"{PREFIX}approval-runs/{run_id}/{action_id}"


class ApprovalProvider:
    kind = "approval"
    docs = _docs

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise ActionUnableToRun(f"the approval body must be an object, got {type(body).__name__}")
        approvers = body.get("approvers")
        if approvers is not None and (not isinstance(approvers, list)
                                      or not all(isinstance(a, str) for a in approvers)):
            raise ActionUnableToRun(f"approvers: expected a list of user names, got {approvers!r}")
        message = body.get("message")
        who = ", ".join(approvers) if approvers else "a manager of the run"
        run_id = ctx.run_id

        def make(aid):
            return new_doc(self.kind, aid, request_id, ctx, status=INACTIVE,
                           display_status=f"Waiting for approval by {who} "
                                          f"(faas flows approve|reject {run_id})",
                           details={"message": message, "approvers": approvers})
        doc, created = _docs.create(ctx, request_id, make)
        if created:
            store_for(ctx.store_url).put(_index_key(run_id, doc["action_id"]), b"")
        return public(doc)

    def status(self, action_id: str, ctx: ActionContext) -> dict:
        return public(_docs.get(ctx, action_id))

    def cancel(self, action_id: str, ctx: ActionContext) -> dict:
        doc = _docs.get(ctx, action_id)
        if doc["status"] not in DONE:
            finish(doc, FAILED, {"error": "Canceled", "message": "the approval was canceled"}, "Canceled")
            _docs.put(ctx, doc)
        return public(doc)

    def release(self, action_id: str, ctx: ActionContext) -> dict:
        doc = _docs.get(ctx, action_id)
        if doc["status"] not in DONE:
            raise ActionConflict(f"approval {action_id} is still pending: approve, reject or "
                                 "cancel it before releasing it")
        _docs.delete(ctx, action_id)
        store_for(ctx.store_url).delete(_index_key(doc["run_id"], action_id))
        return public(doc)


def pending(store_url: str, run_id: str) -> list[dict]:
    """The run's approvals still waiting for a decision."""
    store = store_for(store_url)
    prefix = f"{PREFIX}approval-runs/{run_id}/"
    out = []
    for key in sorted(store.list(prefix)):
        try:
            doc = json.loads(store.get(_docs.key(key[len(prefix):])))
        except KeyNotFound:
            continue
        if doc["status"] not in DONE:
            out.append(doc)
    return out


def decide(store_url: str, run_id: str, approved: bool, by: str, comment: str | None = None) -> list[str]:
    """Approve (or reject) every pending approval of run ``run_id`` as user ``by``; return the
    action ids decided (empty if nothing waits). Raises :class:`NotAnApprover` (a
    PermissionError), deciding nothing, if ``by`` is not among an approval's ``approvers``."""
    waiting = pending(store_url, run_id)
    for doc in waiting:
        approvers = (doc.get("details") or {}).get("approvers")
        if approvers and by not in approvers:
            raise NotAnApprover(f"{by!r} may not decide approval {doc['action_id']} of run "
                                  f"{run_id}: its approvers are {', '.join(approvers)}")
    store = store_for(store_url)
    decided = []
    for doc in waiting:
        message = (doc.get("details") or {}).get("message")
        if approved:
            finish(doc, SUCCEEDED, {"approved": True, "approved_by": by, "comment": comment,
                                    "message": message}, f"Approved by {by}")
        else:
            finish(doc, FAILED, {"error": "Rejected", "approved": False, "rejected_by": by,
                                 "comment": comment, "message": message}, f"Rejected by {by}")
        store.put(_docs.key(doc["action_id"]), json.dumps(doc).encode())
        decided.append(doc["action_id"])
    return decided
