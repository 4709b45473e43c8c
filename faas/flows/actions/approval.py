"""The approval action (``faas://approval``): a person in the loop.

``run`` records a pending approval and returns INACTIVE (``display_status`` says who must
approve; the body may carry ``message`` and ``approvers``, a list of user names). The run waits
until someone decides: :func:`decide` (``faas flows approve|reject RUN_ID``) writes a *decision*
for each pending approval of the run, and the runner, the next time it asks for the approval's
``status``, accepts the first decision whose writer may decide and marks the approval SUCCEEDED
(details ``{approved, approved_by, comment}``) or FAILED. Give the Action state a ``WaitTime``
long enough for a person (the default is 300 s).

Who decided is checked by the runner, not by the client
--------------------------------------------------------
``faas flows approve`` refuses a user who may not decide, but that is a courtesy: whoever can
write the store can skip the client. So the runner checks every decision itself. Its writer
must be among the approval's ``approvers`` or, when it lists none, a manager of the run (the
run's user, its ``managers``, the flow's administrators: :func:`faas.flows.access.can_manage`).

* The writer, on a ``file://`` store, is the owner of the decision file, read together with the
  bytes from one descriptor (:func:`faas.flows.access.read_owned`: no symbolic link, regular
  files only, none that others may write into); any name written inside is ignored. On other
  stores (``s3://``, ``memory://``) nothing says who wrote an object, so the runner can only
  check the name the decision claims: **on S3, anyone with write access to the bucket's
  ``flows/`` prefix is trusted** to decide any approval (by claiming an approver's name), as
  they are to write any command. Where that matters, IAM must keep ``flows/`` writable only by
  people trusted with every approval of the bucket.
* A decision lives at a key of its own, ``flows/actions/approval-decisions/<action id>.<unique
  name>.json``, and names the approval and the run it decides (it cannot be moved to another);
  deciding never rewrites the approval's own document, which only the runner writes.
* The approval's document is trusted only if the runner wrote it (on a file store: owned by the
  runner's account). One replaced by someone else is logged, set aside, and written again from
  what the runner asked (the action's parameters, from the runner's own run state).
* A decision whose writer may not decide is ignored: the approval stays pending, a warning
  naming the writer is logged, and the approval's ``details.ignored`` lists it.

A file store shared by several accounts must let approvers create files in
``flows/actions/approval-decisions/`` (mode 1777, or 1770 with a group holding the approvers and
the runner's account: sticky, so that nobody removes another's decision) and, for ``faas flows
approve`` to find what waits, read ``flows/actions/approval-runs/`` and
``flows/actions/approval/`` (and ``flows/runs/``, which the client reads to check the manager
role). A decision file is made readable by all (0644) when it is written, so the runner's
account can read it whatever mode the store gives new files.
"""
from __future__ import annotations

import copy
import errno
import json
import logging
import os
import time
import uuid
from typing import Any

from faas.flows import access, store_layout
from faas.store import KeyNotFound, Store

from .base import (
    DONE,
    FAILED,
    INACTIVE,
    PREFIX,
    SUCCEEDED,
    ActionConflict,
    ActionContext,
    ActionError,
    ActionNotFound,
    ActionUnableToRun,
    Docs,
    action_id_for,
    finish,
    new_doc,
    public,
    store_for,
)

log = logging.getLogger("faas.flows.actions.approval")

DECISIONS = f"{PREFIX}approval-decisions/"
MAX_DECISION = 64 * 1024        # bytes: a decision is a handful of fields
MAX_DOC = 64 * 1024 * 1024      # bytes: a run or approval document read to check its writer
MAX_IGNORED = 20                # ignored decisions an approval's details list


class NotAnApprover(ActionError, PermissionError):
    """The user deciding is not among the approval's ``approvers``."""

    code = "NotAnApprover"


class _Untrusted(Exception):
    """An object whose writer cannot be told, or that is not what it claims to be."""

    def __init__(self, why: str, writer: str | None = None):
        super().__init__(why)
        self.writer = writer


_docs = Docs("approval")


def _index_key(run_id: str, action_id: str) -> str:
    return f"{PREFIX}approval-runs/{run_id}/{action_id}"


def _decisions(action_id: str) -> str:
    return f"{DECISIONS}{action_id}."


class ApprovalProvider:
    kind = "approval"
    docs = _docs

    def __init__(self) -> None:
        #: (store, action id) -> the pending document this process made in run(): what the
        #: runner asked, from its own run state, so a document written over can be put back
        self._asked: dict[tuple[str, str], dict] = {}
        #: (store, decision key) already logged as unreadable or ignored
        self._reported: set[tuple[str, str]] = set()

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise ActionUnableToRun(f"the approval body must be an object, got {type(body).__name__}")
        approvers = body.get("approvers")
        if approvers is not None and (not isinstance(approvers, list)
                                      or not all(isinstance(a, str) for a in approvers)):
            raise ActionUnableToRun(f"approvers: expected a list of user names, got {approvers!r}")
        who = ", ".join(approvers) if approvers else "a manager of the run"
        aid = action_id_for(self.kind, request_id)
        asked = self._asked.setdefault((ctx.store_url, aid), new_doc(
            self.kind, aid, request_id, ctx, status=INACTIVE,
            display_status=f"Waiting for approval by {who} "
                           f"(faas flows approve|reject {ctx.run_id})",
            details={"message": body.get("message"), "approvers": approvers}))
        doc, created = _docs.create(ctx, request_id, lambda _: copy.deepcopy(asked))
        if created:
            store_for(ctx.store_url).put(_index_key(ctx.run_id, aid), b"")
            return public(doc)
        return public(self._settle(ctx, aid))

    def status(self, action_id: str, ctx: ActionContext) -> dict:
        return public(self._settle(ctx, action_id))

    def cancel(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self._settle(ctx, action_id)
        if doc["status"] not in DONE:
            finish(doc, FAILED, {"error": "Canceled", "message": "the approval was canceled"}, "Canceled")
            _docs.put(ctx, doc)
        return public(doc)

    def release(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self._settle(ctx, action_id)
        if doc["status"] not in DONE:
            raise ActionConflict(f"approval {action_id} is still pending: approve, reject or "
                                 "cancel it before releasing it")
        store = store_for(ctx.store_url)
        _docs.delete(ctx, action_id)
        store.delete(_index_key(doc["run_id"], action_id))
        for key in list(store.list(_decisions(action_id))):
            try:
                store.delete(key)
            except Exception:  # noqa: BLE001 - another's file in a sticky folder: it stays, unread
                pass
        self._asked.pop((ctx.store_url, action_id), None)
        return public(doc)

    # -- what the runner may trust --------------------------------------------------------------
    def _settle(self, ctx: ActionContext, action_id: str) -> dict:
        """The approval's document as the runner may trust it, decided if a valid decision came."""
        store = store_for(ctx.store_url)
        doc = self._trusted_doc(store, ctx, action_id)
        if doc["status"] in DONE:
            return doc
        return self._apply_decisions(store, ctx, doc)

    def _trusted_doc(self, store: Store, ctx: ActionContext, action_id: str) -> dict:
        """The approval's document if this runner's account wrote it; else what was asked,
        written back (a document someone else wrote could say anything: SUCCEEDED, other
        approvers)."""
        try:
            doc, writer = _read_as_written(store, _docs.key(action_id), MAX_DOC)
            if writer is not None and writer != _me():
                why = f"written by {writer}, not by the runner ({_me()})"
            elif not _is_approval(doc, action_id):
                why = "not an approval document"
            else:
                return doc
        except KeyNotFound:
            raise ActionNotFound(f"no approval action {action_id!r} in store {ctx.store_url} "
                                 "(never started, or released)") from None
        except _Untrusted as e:
            why = str(e)
        log.warning("run %s: the document of approval %s was %s; ignored", ctx.run_id,
                    action_id, why)
        asked = self._asked.get((ctx.store_url, action_id))
        if asked is None:
            raise ActionError(f"approval {action_id}: its document was {why}, and this runner did "
                              "not start it, so it cannot tell what was asked")
        doc = copy.deepcopy(asked)
        _docs.put(ctx, doc)
        return doc

    def _apply_decisions(self, store: Store, ctx: ActionContext, doc: dict) -> dict:
        """Accept the first decision whose writer may decide; note and skip the others."""
        aid = doc["action_id"]
        noted = {i.get("key") for i in doc["details"].get("ignored") or ()}
        for key in sorted(store.list(_decisions(aid))):
            if key in noted or (ctx.store_url, key) in self._reported:
                continue
            try:
                decision, writer = _read_as_written(store, key, MAX_DECISION)
                who = _check_decision(decision, doc, writer)
            except KeyNotFound:
                continue
            except PermissionError as e:   # not readable by the runner's account: a set-up error
                self._report(ctx, key, "run %s: cannot read the decision %s on approval %s (%s): "
                             "decision files must be readable by the runner's account",
                             ctx.run_id, key, aid, e)
                continue
            except _Untrusted as e:
                doc = self._ignore(ctx, doc, key, e.writer or "someone", str(e))
                continue
            if self._may_decide(store, ctx, doc, who):
                return self._accept(ctx, doc, decision, who)
            doc = self._ignore(ctx, doc, key, who, _why_not(doc))
        return doc

    def _may_decide(self, store: Store, ctx: ActionContext, doc: dict, who: str) -> bool:
        approvers = doc["details"].get("approvers")
        if approvers:
            return access.is_among(who, approvers)
        run, flow = _run_and_flow(store, ctx)
        return access.can_manage(run, who, flow)

    def _accept(self, ctx: ActionContext, doc: dict, decision: dict, who: str) -> dict:
        name = access.username(who)
        details = doc["details"]
        common = {"comment": decision.get("comment"), "message": details.get("message")}
        if details.get("ignored"):
            common["ignored"] = details["ignored"]
        if decision["approved"]:
            finish(doc, SUCCEEDED, {"approved": True, "approved_by": name, **common},
                   f"Approved by {name}")
        else:
            finish(doc, FAILED, {"error": "Rejected", "approved": False, "rejected_by": name,
                                 **common}, f"Rejected by {name}")
        _docs.put(ctx, doc)
        log.info("run %s: approval %s %s by %s", ctx.run_id, doc["action_id"],
                 "approved" if decision["approved"] else "rejected", who)
        return doc

    def _ignore(self, ctx: ActionContext, doc: dict, key: str, who: str, why: str) -> dict:
        self._report(ctx, key, "run %s: ignored the decision %s on approval %s by %s: %s; the "
                     "approval still waits", ctx.run_id, key, doc["action_id"], who, why)
        ignored = doc["details"].setdefault("ignored", [])
        if len(ignored) < MAX_IGNORED:
            ignored.append({"key": key, "by": who, "why": why})
            _docs.put(ctx, doc)
        return doc

    def _report(self, ctx: ActionContext, key: str, msg: str, *args: Any) -> None:
        """Log once per decision: the runner asks for the status again and again."""
        if (ctx.store_url, key) not in self._reported:
            self._reported.add((ctx.store_url, key))
            log.warning(msg, *args)


def _me() -> str:
    return access.identity_of_uid(os.geteuid())


def _file_root(store: Store) -> str | None:
    """The folder of a ``file://`` store (where the kernel tells who wrote a file); else None."""
    from faas.store.file import FileStore
    return store.root if isinstance(store, FileStore) else None


def _read_as_written(store: Store, key: str, limit: int) -> tuple[Any, str | None]:
    """``(JSON value, its writer's identity)``; the writer is None where the store cannot tell.
    Raises KeyNotFound, PermissionError (not readable here), :class:`_Untrusted`."""
    try:
        data, uid = access.read_with_writer(store, key, limit)
    except access.UntrustedFile as e:
        raise _Untrusted(str(e.strerror) if e.errno == errno.EFBIG else
                         f"{e.strerror}, so its writer cannot be told") from None
    writer = None if uid is None else access.identity_of_uid(uid)
    try:
        return json.loads(data), writer
    except ValueError:
        raise _Untrusted("not JSON", writer) from None


def _is_approval(doc: Any, action_id: str) -> bool:
    return (isinstance(doc, dict) and doc.get("action_id") == action_id
            and isinstance(doc.get("run_id"), str) and isinstance(doc.get("details"), dict)
            and doc.get("status") in (INACTIVE, SUCCEEDED, FAILED))


def _check_decision(decision: Any, doc: dict, writer: str | None) -> str:
    """Who decides (the writer; where the store cannot tell, the name the decision claims),
    once the decision says which approval of which run it decides, and how."""
    if not isinstance(decision, dict):
        raise _Untrusted("not a decision object", writer)
    if decision.get("action_id") != doc["action_id"] or decision.get("run_id") != doc["run_id"]:
        raise _Untrusted(f"it decides another approval ({decision.get('action_id')!r} of run "
                         f"{decision.get('run_id')!r})", writer)
    if not isinstance(decision.get("approved"), bool) or not isinstance(
            decision.get("comment"), (str, type(None))):
        raise _Untrusted("'approved' must be true or false, 'comment' a string", writer)
    if writer is not None:
        return writer
    if not isinstance(decision.get("by"), str) or not decision["by"].strip():
        raise _Untrusted("it names nobody as its writer")
    return access.normalize(decision["by"])


def _why_not(doc: dict) -> str:
    approvers = doc["details"].get("approvers")
    if approvers:
        return f"not among the approvers ({', '.join(approvers)})"
    return "not a manager of the run"


def _run_and_flow(store: Store, ctx: ActionContext) -> tuple[dict, dict | None]:
    """The run document (its user and managers) and its flow (administrators), to tell a
    manager. The run document counts only as written by the runner or the run's user (who may
    name managers); without one (``faas.flows.run`` in-process) the run's user alone manages."""
    user = access.normalize(ctx.username)
    bare = {"user": user}
    try:
        run, writer = _read_as_written(store, store_layout.run_key(ctx.run_id), MAX_DOC)
    except (KeyNotFound, PermissionError, _Untrusted):
        return bare, None
    if not isinstance(run, dict) or writer not in (None, _me(), user):
        return bare, None
    run = dict(run, user=user)
    flow = store_layout.get_json(store, store_layout.flow_key(run.get("flow_id") or ctx.flow_id), None)
    return run, flow if isinstance(flow, dict) else None


def pending(store_url: str, run_id: str) -> list[dict]:
    """The run's approvals still waiting for a decision (as their documents say: the runner
    settles them when it next looks)."""
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
    PermissionError), deciding nothing, if ``by`` is not among an approval's ``approvers``. The
    runner applies the decisions when it next looks, after checking who wrote them."""
    waiting = pending(store_url, run_id)
    for doc in waiting:
        approvers = (doc.get("details") or {}).get("approvers")
        if approvers and not access.is_among(by, approvers):
            raise NotAnApprover(f"{by!r} may not decide approval {doc['action_id']} of run "
                                f"{run_id}: its approvers are {', '.join(approvers)}")
    for doc in waiting:
        write_decision(store_url, run_id, doc["action_id"], approved, by, comment)
    return [doc["action_id"] for doc in waiting]


def write_decision(store_url: str, run_id: str, action_id: str, approved: bool, by: str,
                   comment: str | None = None) -> str:
    """Write one decision on approval ``action_id`` of run ``run_id`` for the runner to check
    (``by`` counts only on stores that cannot tell who wrote an object); return its key."""
    store = store_for(store_url)
    key = f"{_decisions(action_id)}{time.time():017.6f}-{uuid.uuid4().hex[:16]}.json"
    store.put(key, json.dumps({"action_id": action_id, "run_id": run_id, "approved": bool(approved),
                               "by": by, "comment": comment, "time": time.time()}).encode())
    root = _file_root(store)
    if root is not None:
        _readable_by_all(os.path.join(root, key))
    return key


def _readable_by_all(path: str) -> None:
    """Make a decision file 0644 (the store may create files 0600), so the runner's account can
    read it; only our own regular file, never through a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and (st.st_mode & 0o7777) != 0o644:
            os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
