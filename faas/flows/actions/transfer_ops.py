"""Globus Transfer's file operations as actions, on any fsspec collection: ``ls``, ``stat``,
``mkdir``, ``rename``, and ``set_permission`` / ``manage_permission`` where the collection can
express it (``file://``: POSIX ACLs through :mod:`.posix_acl`).

Bodies and results are Globus's (docs.globus.org/api/transfer/action-providers/): ``ls`` gives a
``file_list`` (``details.DATA[]`` of ``file`` documents), ``stat`` one ``file`` document,
``mkdir`` a ``mkdir_result``, ``rename`` a ``result`` with code ``FileRenamed``, and the
permission action ``access_create_result`` (``access_id``) / ``result`` (Updated, Deleted).
They are synchronous, as Globus's are: ``run`` returns the finished action. Like every faas
action they are idempotent by request id, and one killed midway is finished by ``status``.
"""
from __future__ import annotations

import fnmatch
import grp
import json
import posixpath
import pwd
import uuid
from datetime import datetime, timezone
from typing import Any

from . import jobs, posix_acl
from .base import ActionContext, ActionUnableToRun, read_own, store_for
from .files import LocalFiles, local_path, open_url
from .transfer import _flag, _JobProvider, _path, endpoint_url

MAX_LS = 100_000     # Globus's limit and default for one listing


class NotFound(FileNotFoundError):
    """Nothing at the path (Globus's ``NotFound``)."""


def _stamp(t) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00:00")


def file_doc(e: dict) -> dict:
    """A listing entry as Globus's ``file`` document."""
    return {"DATA_TYPE": "file", "group": e.get("group"), "last_modified": _stamp(e.get("mtime")),
            "link_group": None, "link_last_modified": None, "link_size": None,
            "link_target": e.get("link_target"), "link_user": None, "name": e["name"],
            "permissions": e.get("permissions"), "size": e.get("size", 0), "type": e["type"],
            "user": e.get("user")}


def _entry(files, path: str) -> dict:
    name = posixpath.basename(path.rstrip("/")) or "/"
    if isinstance(files, LocalFiles):
        try:
            return files.entry(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{path} does not exist") from None
    info = files.info(path)
    if info is None:
        raise NotFound(f"{path} does not exist")
    return {"name": name, "type": "dir" if info["type"] == "directory" else "file",
            "size": info["size"], "mtime": info["mtime"], "permissions": None, "user": None,
            "group": None, "link_target": None}


def _body(body, what: str) -> dict:
    if not isinstance(body, dict):
        raise ActionUnableToRun(f"the {what} body must be an object, got {type(body).__name__}")
    return body


def _endpoint(body: dict, ctx: ActionContext) -> tuple[str, str]:
    ident = body.get("endpoint_id", body.get("endpoint"))
    return endpoint_url(ident, ctx, "endpoint_id"), str(ident)   # endpoint_url: a non-empty str


def _one_path(body, ctx: ActionContext, op: str, what: str) -> tuple[str, str, str]:
    """``(URL of path, endpoint id, the collection's base URL)`` of a body that names one
    required ``path``."""
    body = _body(body, op)
    base, ident = _endpoint(body, ctx)
    if "path" not in body:
        raise ActionUnableToRun(f"path: required ({what})")
    return _path(base, body["path"], "path"), ident, base


def _display(path: str) -> str:
    return path if path.endswith("/") else path + "/"


# -- ls ------------------------------------------------------------------------------------------
_LS_FILTER_FIELDS = ("name", "type")


def ls_filter(value: Any) -> list[tuple[str, str, str]]:
    """Globus's listing filter (``name:~*.txt/type:file``, or a list of such strings) as
    ``(field, op, value)`` clauses, all of which must hold."""
    if value is None:
        return []
    texts = value if isinstance(value, list) else [value]
    out = []
    for t in texts:
        if not isinstance(t, str):
            raise ActionUnableToRun(f"filter: expected a string such as \"name:~*.txt/type:file\" "
                                    f"(or a list of them), got {t!r}")
        for clause in filter(None, t.split("/")):
            fld, sep, v = clause.partition(":")
            if not sep or fld not in _LS_FILTER_FIELDS:
                raise ActionUnableToRun(f"filter: clause {clause!r}: expected name:<op><value> "
                                        f"(op =, !=, ~ glob, !~) or type:file,dir")
            if fld == "type":
                kinds = v.split(",")
                if not kinds or any(k not in ("file", "dir", "symlink") for k in kinds):
                    raise ActionUnableToRun(f"filter: clause {clause!r}: type takes file, dir, "
                                            f"symlink (comma-separated)")
                out.append(("type", "in", v))
                continue
            for op in ("!~", "!=", "~", "="):
                if v.startswith(op):
                    out.append(("name", op, v[len(op):]))
                    break
            else:
                out.append(("name", "=", v))
    return out


def _passes(e: dict, clauses) -> bool:
    for fld, op, v in clauses:
        if fld == "type":
            kinds = v.split(",")
            if e["type"] not in kinds and not ("symlink" in kinds and e.get("link_target")):
                return False
            continue
        name = e["name"]
        ok = {"=": name == v, "!=": name != v, "~": fnmatch.fnmatchcase(name, v),
              "!~": not fnmatch.fnmatchcase(name, v)}[op]
        if not ok:
            return False
    return True


def _orderby(value) -> list[tuple[str, bool]]:
    if value is None:
        return [("name", False)]
    texts = value if isinstance(value, list) else str(value).split(",")
    out = []
    for t in texts:
        parts = str(t).split()
        if not parts or parts[0] not in ("name", "type", "size", "last_modified") or \
                len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise ActionUnableToRun(f"orderby: {t!r}: expected a field (name, type, size, "
                                    f"last_modified) and optionally ASC or DESC")
        out.append((parts[0], len(parts) == 2 and parts[1].upper() == "DESC"))
    return out


def _int(body: dict, key: str, default: int, lo: int, hi: int) -> int:
    v = body.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ActionUnableToRun(f"{key}: expected a whole number from {lo} to {hi}, got {v!r}")
    return v


class LsProvider(_JobProvider):
    """``ls``: ``endpoint_id``, ``path`` (default ``/~/``), ``show_hidden`` (default true),
    ``limit`` (default and most 100000), ``offset``, ``filter``, ``orderby``."""

    kind, what, synchronous = "ls", "List", True

    def _plan(self, body, ctx):
        body = _body(body, "ls")
        if body.get("path_only"):
            raise ActionUnableToRun(
                "path_only: an addition of Globus's ls provider at actions.globus.org/transfer/ls "
                "(with is_folder in its result), which Globus retired on 2025-01-22; faas's ls "
                "lists a folder's contents as the Transfer API does. To learn whether a path is a "
                "file or a folder, use the stat action (https://transfer.actions.globus.org/stat: "
                "details.type is \"file\" or \"dir\")")
        base, ident = _endpoint(body, ctx)
        path = body.get("path", "/~/")
        return {"url": _path(base, path, "path"), "root": base, "endpoint": ident, "path": _display(path),
                "show_hidden": _flag(body, "show_hidden", True),
                "limit": _int(body, "limit", MAX_LS, 0, MAX_LS),
                "offset": _int(body, "offset", 0, 0, 2 ** 31),
                "filter": ls_filter(body.get("filter")), "orderby": _orderby(body.get("orderby"))}

    def _work(self, job: jobs.Job) -> dict:
        plan = job.doc["_plan"]
        files, path = open_url(plan["url"], plan.get("root"))
        try:
            entries = files.listdir(path)
        except FileNotFoundError:
            raise NotFound(f"{plan['path']} does not exist") from None
        if not plan["show_hidden"]:
            entries = [e for e in entries if not e["name"].startswith(".")]
        entries = [e for e in entries if _passes(e, plan["filter"])]
        for fld, desc in reversed(plan["orderby"]):    # stable sorts: the first key wins
            key = "mtime" if fld == "last_modified" else fld
            if key in ("size", "mtime"):
                entries.sort(key=lambda e: (e.get(key) is None, e.get(key) or 0), reverse=desc)
            else:
                entries.sort(key=lambda e: e.get(key) or "", reverse=desc)
        page = entries[plan["offset"]:plan["offset"] + plan["limit"]]
        return {"DATA_TYPE": "file_list", "DATA": [file_doc(e) for e in page],
                "absolute_path": None, "endpoint": plan["endpoint"], "length": len(page),
                "path": plan["path"], "rename_supported": True, "symlink_supported": False,
                "total": len(entries)}


class StatProvider(_JobProvider):
    """``stat``: ``endpoint_id``, ``path`` (both required); a ``file`` document."""

    kind, what, synchronous = "stat", "Stat", True

    def _plan(self, body, ctx):
        url, _, base = _one_path(body, ctx, "stat", "the file or folder to describe")
        return {"url": url, "root": base}

    def _work(self, job: jobs.Job) -> dict:
        files, path = open_url(job.doc["_plan"]["url"], job.doc["_plan"].get("root"))
        return file_doc(_entry(files, path))


class MkdirProvider(_JobProvider):
    """``mkdir``: ``endpoint_id``, ``path``; a ``mkdir_result``."""

    kind, what, synchronous = "mkdir", "Make directory", True

    def _plan(self, body, ctx):
        url, ident, base = _one_path(body, ctx, "mkdir", "the folder to make")
        return {"url": url, "endpoint": ident, "root": base}

    def _work(self, job: jobs.Job) -> dict:
        plan = job.doc["_plan"]
        files, path = open_url(plan["url"], plan.get("root"))
        try:
            files.mkdir(path)
        except FileExistsError:
            info = files.info(path)
            if not (job.resumed and info is not None and info["type"] == "directory"):
                raise          # made by this action before its process died: done
        return {"DATA_TYPE": "mkdir_result", "code": "DirectoryCreated",
                "message": "The directory was created successfully",
                "request_id": job.doc["action_id"],
                "resource": f"/operation/endpoint/{plan['endpoint']}/mkdir"}


class RenameProvider(_JobProvider):
    """``rename``: ``endpoint_id``, ``old_path``, ``new_path`` (Transfer's rename operation)."""

    kind, what, synchronous = "rename", "Rename", True

    def _plan(self, body, ctx):
        body = _body(body, "rename")
        base, ident = _endpoint(body, ctx)
        for k in ("old_path", "new_path"):
            if k not in body:
                raise ActionUnableToRun(f"{k}: required (rename takes old_path and new_path)")
        return {"old": _path(base, body["old_path"], "old_path"),
                "new": _path(base, body["new_path"], "new_path"), "endpoint": ident, "root": base}

    def _work(self, job: jobs.Job) -> dict:
        plan = job.doc["_plan"]
        files, old = open_url(plan["old"], plan.get("root"))
        _, new = open_url(plan["new"], plan.get("root"))
        try:
            files.rename(old, new)
        except FileNotFoundError:
            if not (job.resumed and files.info(new) is not None):
                raise NotFound(f"{plan['old']} does not exist") from None
        return {"DATA_TYPE": "result", "code": "FileRenamed",
                "message": "File or directory renamed successfully",
                "request_id": job.doc["action_id"],
                "resource": f"/operation/endpoint/{plan['endpoint']}/rename"}


# -- set_permission / manage_permission ---------------------------------------------------------
RULES = "flows/acl/"


def _principal(body: dict, ctx: ActionContext) -> tuple[str, int, str]:
    """``("u"|"g", numeric id, local name)`` for Globus's principal_type / principal."""
    ptype, principal = body.get("principal_type"), body.get("principal")
    if ptype not in ("identity", "group"):
        raise ActionUnableToRun(f"principal_type: {ptype!r} cannot be expressed on a POSIX "
                                f"collection; accepted: \"identity\" (a local user) or \"group\" "
                                f"(a local group)")
    if not isinstance(principal, str) or not principal.strip():
        raise ActionUnableToRun(f"principal: expected the {ptype} to grant to, got {principal!r}")
    principal = principal.strip()
    if ptype == "identity":
        mapping = ctx.config.get("identity_mapping")
        if mapping:
            from faas.endpoint.multiuser.mapping import IdentityMapper
            m = IdentityMapper(mapping).map(principal)
            if m.user is None:
                raise ActionUnableToRun(f"principal: {m.why}")
            name = m.user
        else:
            name = principal[len("local:"):] if principal.startswith("local:") else principal
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise ActionUnableToRun(f"principal: {principal!r} is no local account (the site has "
                                    f"{'an identity mapping' if mapping else 'no identity mapping'})"
                                    ) from None
        if pw.pw_uid == 0:
            raise ActionUnableToRun(f"principal: {principal!r} maps to root; refused")
        return "u", pw.pw_uid, name
    name = (ctx.config.get("groups") or {}).get(principal, principal)
    try:
        gr = grp.getgrnam(name)
    except KeyError:
        raise ActionUnableToRun(f"principal: {principal!r} is no local group") from None
    if gr.gr_gid == 0:
        raise ActionUnableToRun(f"principal: group {name!r} is root's group; refused")
    return "g", gr.gr_gid, name


def _collection_root(body: dict, ctx: ActionContext) -> tuple[str, str, str]:
    """``(base URL, local root folder, endpoint id)``: set_permission acts on the site's named
    collections only (a bare URL would let a flow name any folder of the machine), for the
    identities the site lists as that collection's ``permission_managers`` (Globus: the
    collection's access managers) only: the runner may be root, and a grant opens files."""
    ident = body.get("endpoint_id", body.get("endpoint"))
    collections = ctx.config.get("collections") or {}
    if not isinstance(ident, str) or ident not in collections:
        known = ", ".join(sorted(collections)) or "none defined"
        raise ActionUnableToRun(f"endpoint_id: {ident!r}: set_permission acts only on a "
                                f"collection of the site's flows config (collections: {known})")
    from faas.flows.access import normalize
    managers = (ctx.config.get("permission_managers") or {}).get(ident) or []
    # the run's user, whom the runner checked (the owner of the start command's file); never the
    # state's RunAs, a name the flow's author wrote, which nothing here verifies
    who = ctx.username
    if normalize(who) not in {normalize(m) for m in managers}:
        raise ActionUnableToRun(f"endpoint_id: {ident!r}: {who!r} may not manage permissions on "
                                f"this collection; the site's flows config lists who may "
                                f"(permission_managers: {{{ident}: [...]}}; now: "
                                f"{', '.join(managers) or 'nobody'})")
    base = str(collections[ident])
    root = local_path(base)
    if root is None:
        raise ActionUnableToRun(f"endpoint_id: {ident!r} ({base}): set_permission is not "
                                f"supported on this collection: only file:// (POSIX) "
                                f"collections can express permissions (POSIX ACLs)")
    return base, root, ident


def _rule_key(rule_id: str) -> str:
    return f"{RULES}{rule_id}.json"


class PermissionProvider(_JobProvider):
    """``set_permission`` (and its new name, ``manage_permission``): ``operation`` CREATE
    (``endpoint_id``, ``path``, ``principal_type``, ``principal``, ``permissions`` "r"|"rw"),
    UPDATE (``endpoint_id``, ``rule_id``, ``permissions``) or DELETE (``endpoint_id``,
    ``rule_id``)."""

    kind, what, synchronous = "set_permission", "Set permission", True

    def _plan(self, body, ctx):
        body = _body(body, "set_permission")
        op = body.get("operation", "CREATE")
        if op not in ("CREATE", "UPDATE", "DELETE"):
            raise ActionUnableToRun(f"operation: expected \"CREATE\", \"UPDATE\" or \"DELETE\", "
                                    f"got {op!r}")
        base, root, ident = _collection_root(body, ctx)
        perms = body.get("permissions")
        if op != "DELETE" and perms not in posix_acl.PERMISSIONS:
            raise ActionUnableToRun(f"permissions: expected \"r\" or \"rw\", got {perms!r}")
        if op == "CREATE":
            if "path" not in body:
                raise ActionUnableToRun("path: required (the file or folder to share)")
            url = _path(base, body["path"], "path")
            rel = posixpath.relpath(local_path(url), root.rstrip("/") or "/")
            tag, pid, name = _principal(body, ctx)
            return {"op": op, "endpoint": ident, "rel": rel, "root": root, "tag": tag, "id": pid,
                    "name": name, "permissions": perms, "path": body["path"],
                    "principal_type": body["principal_type"], "principal": body["principal"]}
        rule_id = body.get("rule_id")
        rule = None
        if isinstance(rule_id, str) and "/" not in rule_id:
            try:   # on a file store, a rule this account wrote: none planted or rewritten
                rule = json.loads(read_own(store_for(ctx.store_url), _rule_key(rule_id)))
            except Exception:  # noqa: BLE001 - absent, unreadable or untrusted: no such rule
                rule = None
        if rule is None or rule.get("endpoint") != ident or rule.get("tag") not in ("u", "g"):
            raise ActionUnableToRun(f"rule_id: {rule_id!r}: no permission rule with this id on "
                                    f"collection {ident!r}")
        # the store is shared ground: the account comes from the principal again, never from
        # the stored number
        tag, pid, name = _principal(rule, ctx)
        rule = dict(rule, tag=tag, id=pid, name=name)
        return {**rule, "op": op, "rule_id": rule_id, "root": root,
                "permissions": perms if op == "UPDATE" else rule["permissions"]}

    def _work(self, job: jobs.Job) -> dict:
        plan = job.doc["_plan"]
        store = store_for(job.ctx.store_url)
        resource = f"/endpoint/{plan['endpoint']}/access"
        if plan["op"] == "DELETE":
            res = posix_acl.revoke(plan["root"], plan["rel"], plan["tag"], plan["id"])
            store.delete(_rule_key(plan["rule_id"]))
            return {"DATA_TYPE": "result", "code": "Deleted", "resource": resource,
                    "message": f"Access rule '{plan['rule_id']}' deleted successfully",
                    "request_id": job.doc["action_id"], "files": res.files, "skipped": res.skipped}
        res = posix_acl.grant(plan["root"], plan["rel"], plan["tag"], plan["id"], plan["permissions"])
        rule_id = plan.get("rule_id") or str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                        f"faas-acl:{job.doc['action_id']}"))
        rule = {k: plan[k] for k in ("endpoint", "rel", "tag", "id", "name", "permissions", "path",
                                     "principal_type", "principal")}
        store.put(_rule_key(rule_id), json.dumps(dict(rule, rule_id=rule_id)).encode())
        if plan["op"] == "UPDATE":
            return {"DATA_TYPE": "result", "code": "Updated", "resource": resource,
                    "message": f"Access rule '{rule_id}' permissions updated successfully",
                    "request_id": job.doc["action_id"], "files": res.files, "skipped": res.skipped}
        return {"DATA_TYPE": "access_create_result", "code": "Created", "resource": resource,
                "message": "Access rule created successfully.", "access_id": rule_id,
                "request_id": job.doc["action_id"], "files": res.files, "skipped": res.skipped}
