"""The transfer action (``faas://transfer``) and the delete action (``faas://transfer/delete``),
taking Globus Transfer's action bodies, on fsspec URLs (``file://``, ``s3://``, ``memory://``).
Globus's other file operations (ls, stat, mkdir, rename, set_permission) are in
:mod:`.transfer_ops`.

An endpoint id is a base URL, or the name of a collection in the site's flows config
(``collections: {name: base URL}``; a Globus collection UUID can be such a name, so a
definition written for Globus runs unchanged). A raw URL is honoured where the runner acts for
the run's own account; a runner serving other users (root, a service account) takes
collections only unless its config says ``transfer: {allow_urls: true}`` (:func:`urls_allowed`).
Paths are inside the collection (``/~/`` is its root, ``..`` is refused).

Globus's options, with their meaning on files: ``sync_level`` 0/"exists" copy only files
missing at the destination, 1/"size" also those of another size, 2/"mtime" also those older at
the destination, 3/"checksum" also those with another checksum; absent: copy everything. Every
file copied is checked afterwards (SHA-256 of the bytes read against the bytes written back)
unless ``verify_checksum`` is false. ``preserve_timestamp`` gives copies their source's mtime
where the file system can set one; ``delete_destination_extra`` removes what a recursive item's
destination has and its source lacks; ``skip_source_errors`` records and skips a source that is
missing or unreadable; ``filter_rules`` are Globus's (first match decides, no match includes, an
excluded folder excludes its contents); past ``deadline`` the action fails. ``delete_source``
removes each source after all items are copied and checked: a move.

The copy runs in a small pool of threads (:mod:`.jobs`), holding a lease in the action's
document; if the process dies, the next ``status`` anywhere resumes it, skipping files already
at the destination with the same checksum, so nothing is lost or copied twice. A progress line
goes to the log every :data:`PROGRESS_FILES` files or :data:`PROGRESS_SECONDS` seconds.
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import posixpath
import time
from datetime import datetime, timezone
from typing import Any

from .. import access
from . import jobs
from .base import DONE, ActionConflict, ActionContext, ActionUnableToRun, Docs, for_runner_account, iso, new_doc, public
from .files import CHUNK, LocalFiles, inside, join, open_url

log = logging.getLogger("faas.flows.actions.transfer")

POLL_AFTER = 2
PROGRESS_FILES = 100      # a progress line every this many files...
PROGRESS_SECONDS = 10.0   # ...or this many seconds, whichever comes first


def endpoint_url(ident: Any, ctx: ActionContext, key: str) -> str:
    """A collection name from the site config, or a base URL."""
    if not isinstance(ident, str) or not ident.strip():
        raise ActionUnableToRun(f"{key}: expected a collection name or a URL such as "
                                f"file:///data or s3://bucket/prefix, got {ident!r}")
    collections = ctx.config.get("collections") or {}
    if ident in collections:
        return str(collections[ident])
    known = ", ".join(sorted(collections)) or "none defined"
    if "://" in ident:
        if not urls_allowed(ctx):
            raise ActionUnableToRun(
                f"{key}: {ident!r}: this site allows only its collections ({known}), not URLs: "
                + ("transfer.allow_urls is false" if _allow_urls(ctx) is False else
                   f"the runner's account ({access.identity_of_uid(os.geteuid())}) is not the run's "
                   f"user ({access.normalize(ctx.username)}), and would lend its rights to any URL; the site may "
                   f"name collections, or set transfer: {{allow_urls: true}} in the runner's config"))
        return ident
    raise ActionUnableToRun(f"{key}: {ident!r} is neither a URL (file:///..., s3://bucket/prefix, "
                            f"memory://...) nor a collection of the site's flows config "
                            f"(collections: {known})")


def _allow_urls(ctx: ActionContext) -> bool | None:
    value = (ctx.config.get("transfer") or {}).get("allow_urls")
    if value is not None and not isinstance(value, bool):
        raise ActionUnableToRun(f"transfer.allow_urls in the site's flows config: expected true or false, "
                                f"got {value!r}")
    return value


def urls_allowed(ctx: ActionContext) -> bool:
    """Whether a run may name a raw URL rather than a collection: as the site's config says
    (``transfer: {allow_urls: ...}``); unset, only where the runner acts for its own account (a
    user's own runner). A runner serving other users (root, a service account) would otherwise
    lend them its rights on every file and bucket it can reach."""
    value = _allow_urls(ctx)
    if value is not None:
        return value
    return for_runner_account(ctx)


def _path(base: str, path, key: str) -> str:
    if not isinstance(path, str) or not path:
        raise ActionUnableToRun(f"{key}: expected a path string, got {path!r}")
    try:
        return join(base, path)
    except ValueError as e:
        raise ActionUnableToRun(f"{key}: {e}") from None


def _flag(body: dict, key: str, default: bool) -> bool:
    v = body.get(key, default)
    if not isinstance(v, bool):
        raise ActionUnableToRun(f"{key}: expected true or false, got {v!r}")
    return v


SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}
_FILTER_KEYS = {"DATA_TYPE", "method", "type", "name"}


def sync_level(value: Any, key: str = "sync_level") -> int | None:
    """Globus's sync levels: 0-3, or the names the Globus SDK maps to them."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in SYNC_LEVELS:
        return SYNC_LEVELS[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2, 3):
        return value
    raise ActionUnableToRun(f"{key}: expected 0 (exists), 1 (size), 2 (mtime), 3 (checksum) or one "
                            f"of \"exists\", \"size\", \"mtime\", \"checksum\", got {value!r}")


def filter_rules(rules: Any, key: str = "filter_rules") -> list[dict]:
    """Globus's filter rules: ``[{"method": "include"|"exclude", "type": "file"|"dir" (both if
    absent), "name": glob}]``."""
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise ActionUnableToRun(f"{key}: expected a list of {{method, type, name}} rules, got {rules!r}")
    out = []
    for i, r in enumerate(rules):
        where = f"{key}[{i}]"
        if not isinstance(r, dict):
            raise ActionUnableToRun(f"{where}: expected an object {{method, type, name}}, got {r!r}")
        extra = set(r) - _FILTER_KEYS
        if extra:
            raise ActionUnableToRun(f"{where}: unknown key(s) {sorted(extra)}; a filter rule has "
                                    f"method, type and name")
        if r.get("DATA_TYPE", "filter_rule") != "filter_rule":
            raise ActionUnableToRun(f"{where}.DATA_TYPE: expected \"filter_rule\", got {r['DATA_TYPE']!r}")
        method = r.get("method", "exclude")
        if method not in ("include", "exclude"):
            raise ActionUnableToRun(f"{where}.method: expected \"include\" or \"exclude\", got {method!r}")
        kind = r.get("type")
        if kind not in (None, "file", "dir"):
            raise ActionUnableToRun(f"{where}.type: expected \"file\" or \"dir\" (or no type: both), "
                                    f"got {kind!r}")
        name = r.get("name")
        if not isinstance(name, str) or not name:
            raise ActionUnableToRun(f"{where}.name: expected a name pattern such as \"*.tmp\", got {name!r}")
        out.append({"DATA_TYPE": "filter_rule", "method": method, "type": kind, "name": name})
    return out


def _rule_says(rules: list[dict], name: str, kind: str) -> bool:
    """Globus: the first rule that matches the item decides; no match: included."""
    for r in rules:
        if r["type"] in (None, kind) and fnmatch.fnmatchcase(name, r["name"]):
            return r["method"] == "include"
    return True


def included(rel: str, rules: list[dict]) -> bool:
    """Whether the file at ``rel`` (relative to a recursive item's source) is transferred: every
    folder on its way must be included (an excluded folder excludes all within it), then the
    file itself."""
    if not rules:
        return True
    parts = rel.split("/")
    return (all(_rule_says(rules, d, "dir") for d in parts[:-1])
            and _rule_says(rules, parts[-1], "file"))


def _label(v):
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > 128 or "\n" in v or "\r" in v or v != v.strip():
        raise ActionUnableToRun(f"label: expected a string of at most 128 characters, without "
                                f"newlines or leading/trailing spaces, got {v!r}")
    return v


def deadline(v: Any) -> float | None:
    """An ISO 8601 time (``2030-01-01T00:00:00Z``, ``2030-01-01 12:00+02:00``, ``2030-01-01``;
    UTC when it names no zone) as epoch seconds."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            t = None
        if t is not None:
            if t.tzinfo is None:
                t = t.replace(tzinfo=timezone.utc)
            return t.timestamp()
    raise ActionUnableToRun(f"deadline: expected an ISO 8601 time such as \"2030-01-01T00:00:00Z\", "
                            f"got {v!r}")


def _plan_transfer(body, ctx: ActionContext) -> dict:
    if not isinstance(body, dict):
        raise ActionUnableToRun(f"the transfer body must be an object, got {type(body).__name__}")
    src = endpoint_url(body.get("source_endpoint_id", body.get("source_endpoint")), ctx, "source_endpoint_id")
    dst = endpoint_url(body.get("destination_endpoint_id", body.get("destination_endpoint")), ctx,
                       "destination_endpoint_id")
    items = body.get("transfer_items", body.get("DATA"))
    if not isinstance(items, list) or not items:
        raise ActionUnableToRun("transfer_items (or DATA): expected a non-empty list of "
                                "{source_path, destination_path, recursive}")
    level = sync_level(body.get("sync_level"))
    out = []
    for i, it in enumerate(items):
        where = f"transfer_items[{i}]"
        if not isinstance(it, dict):
            raise ActionUnableToRun(f"{where}: expected an object, got {it!r}")
        rec = it.get("recursive")   # absent or null: the source's type decides, as Transfer does
        if rec is not None and not isinstance(rec, bool):
            raise ActionUnableToRun(f"{where}.recursive: expected true or false, got {rec!r}")
        out.append({"source": _path(src, it.get("source_path"), f"{where}.source_path"),
                    "destination": _path(dst, it.get("destination_path"), f"{where}.destination_path"),
                    "recursive": rec, "source_root": src, "destination_root": dst})
    for k in ("encrypt_data", "notify_on_succeeded", "notify_on_failed", "notify_on_inactive",
              "fail_on_quota_errors"):   # accepted as Globus does; nothing to do on files
        _flag(body, k, False)
    return {"items": out, "sync_level": level,
            "verify_checksum": _flag(body, "verify_checksum", True),
            "delete_source": _flag(body, "delete_source", False),
            "preserve_timestamp": _flag(body, "preserve_timestamp", False),
            "delete_destination_extra": _flag(body, "delete_destination_extra", False),
            "skip_source_errors": _flag(body, "skip_source_errors", False),
            "filter_rules": filter_rules(body.get("filter_rules")),
            "deadline": deadline(body.get("deadline")),
            "label": _label(body.get("label")),
            "source_endpoint_id": body.get("source_endpoint_id", body.get("source_endpoint")),
            "destination_endpoint_id": body.get("destination_endpoint_id",
                                                body.get("destination_endpoint"))}


class _Reader:
    """Reads a source, hashing what passes and keeping the job's lease alive."""

    def __init__(self, f, job: jobs.Job):
        self.f, self.job, self.h, self.n = f, job, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n if n is not None and n >= 0 else CHUNK)
        self.h.update(data)
        self.n += len(data)
        self.job.beat()
        return data


def _sha256(files, path, job: jobs.Job) -> str:
    h = hashlib.sha256()
    with files.reader(path) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            job.progress["bytes_checksummed"] = job.progress.get("bytes_checksummed", 0) + len(chunk)
            job.beat()
    return h.hexdigest()


def _needs_copy(level, s_info, sf, sp, df, dp, job) -> bool:
    d_info = df.info(dp)
    if d_info is None or d_info["type"] != "file":
        return True
    if level is None:
        return True
    if level == 0:
        return False
    if s_info["size"] != d_info["size"]:
        return True
    if level == 1:
        return False
    if level == 2:
        if s_info["mtime"] is None or d_info["mtime"] is None:
            return True
        return s_info["mtime"] > d_info["mtime"]
    return _sha256(sf, sp, job) != _sha256(df, dp, job)


def _escapes(files, path: str, root_url: str) -> bool:
    """A local path that leaves its collection through a symlink (checked before each file is
    read or written: a recursive item's folders could change while it is copied)."""
    return isinstance(files, LocalFiles) and not inside(root_url, "file://" + path)


class DeadlineExceeded(Exception):
    """The transfer's ``deadline`` passed before it was done (Globus cancels it then)."""


_SOURCE_ERRORS = (FileNotFoundError, PermissionError, NotADirectoryError)


def _files_of(item: dict, plan: dict, skipped: list, rels_of: dict) -> list[tuple]:
    """``(src files, src path, dst files, dst path)`` of each file of an item that the filter
    rules let through; a source that cannot be read is recorded in ``skipped`` and left out when
    ``skip_source_errors`` is set."""
    sf, sp = open_url(item["source"], item.get("source_root"))
    df, dp = open_url(item["destination"], item.get("destination_root"))
    try:
        info = sf.info(sp)
        if info is None:
            raise FileNotFoundError(f"source {item['source']} does not exist")
        if info["type"] == "directory":
            if item["recursive"] is False:
                raise IsADirectoryError(f"source {item['source']} is a folder, but recursive is "
                                        f"false: set it true (or leave it out) to copy it")
            rels = [rel for rel, _ in sf.walk(sp)]
        else:
            rels = None
    except _SOURCE_ERRORS as e:
        if not plan["skip_source_errors"]:
            raise
        skipped.append({"source_path": item["source"], "error": type(e).__name__, "message": str(e)})
        return []
    if rels is not None:
        rels_of[item["destination"]] = rels   # delete_destination_extra: what the source has
        return [(sf, posixpath.join(sp.rstrip("/"), rel), df, posixpath.join(dp.rstrip("/"), rel))
                for rel in rels if included(rel, plan["filter_rules"])]
    if item["recursive"] is True:
        raise NotADirectoryError(f"source {item['source']} is a file, but recursive is true")
    if item["destination"].endswith("/"):
        dp = posixpath.join(dp, posixpath.basename(sp))
    return [(sf, sp, df, dp)]


def _is_folder_item(item: dict, files, path: str) -> bool:
    """Whether an item is a folder: as its ``recursive`` says, or its source's type when unset."""
    if item["recursive"] is not None:
        return bool(item["recursive"])
    info = files.info(path)
    return info is not None and info["type"] == "directory"


def _delete_extra(item: dict, rels: list | None, job: jobs.Job) -> int:
    """delete_destination_extra: remove the files under a recursive item's destination that its
    source does not have."""
    if rels is None:
        return 0
    df, dp = open_url(item["destination"], item.get("destination_root"))
    if df.info(dp) is None:
        return 0
    keep, n = set(rels), 0
    for rel, _ in list(df.walk(dp)):
        if rel not in keep:
            df.delete(posixpath.join(dp.rstrip("/"), rel))
            n += 1
            job.beat()
    return n


def task_details(job: jobs.Job, plan: dict, status: str) -> dict:
    """Globus's task document shape (the fields with a meaning here), with the progress."""
    p = job.progress
    return {"DATA_TYPE": "task", "type": "TRANSFER", "task_id": job.doc["action_id"],
            "status": status, "nice_status": "OK" if status != "FAILED" else None,
            "is_ok": status != "FAILED", "label": plan["label"],
            "source_endpoint_id": plan["source_endpoint_id"],
            "destination_endpoint_id": plan["destination_endpoint_id"],
            "sync_level": plan["sync_level"], "verify_checksum": plan["verify_checksum"],
            "preserve_timestamp": plan["preserve_timestamp"],
            "delete_destination_extra": plan["delete_destination_extra"],
            "skip_source_errors": plan["skip_source_errors"],
            "filter_rules": plan["filter_rules"] or None,
            "deadline": iso(plan["deadline"]), "encrypt_data": False,
            "delete_source": plan["delete_source"], "request_time": job.doc.get("start_time"),
            "completion_time": iso(time.time()) if status in DONE else None,
            "fatal_error": None, "files": p.get("files", 0), "directories": 0,
            "files_transferred": p.get("files_transferred", 0),
            "files_skipped": p.get("files_skipped", 0),
            "bytes_transferred": p.get("bytes_transferred", 0),
            "bytes_checksummed": p.get("bytes_checksummed", 0),
            "files_deleted": p.get("files_deleted", 0),
            "skipped_errors": list(p.get("skipped_errors", []))}


class _Progress:
    """A line in the runner's log (and the action's display_status) every PROGRESS_FILES files
    or PROGRESS_SECONDS seconds, so a long copy shows where it is."""

    def __init__(self, job: jobs.Job):
        self.job, self.last_t, self.last_n = job, time.monotonic(), 0

    def step(self, final: bool = False) -> None:
        p, job = self.job.progress, self.job
        done = p["files_transferred"] + p["files_skipped"]
        now = time.monotonic()
        if not final and done - self.last_n < PROGRESS_FILES and now - self.last_t < PROGRESS_SECONDS:
            return
        self.last_t, self.last_n = now, done
        text = (f"{done} of {p['files']} files ({p['files_transferred']} copied, "
                f"{p['files_skipped']} skipped, {p['bytes_transferred']} bytes)")
        log.info("flow run %s: transfer %s: %s", job.ctx.run_id, job.doc["action_id"], text)
        job.beat(force=True, display_status=f"Transferring: {text}")   # the run's log shows it


def _copy(job: jobs.Job) -> dict:
    plan = job.doc["_plan"]
    job.beat(force=True, display_status="Transferring")
    p = job.progress
    for k in ("files", "files_transferred", "files_skipped", "bytes_transferred", "bytes_checksummed"):
        p.setdefault(k, 0)

    def check_deadline():
        if plan["deadline"] is not None and time.time() > plan["deadline"]:
            raise DeadlineExceeded(f"the transfer's deadline ({iso(plan['deadline'])}) passed "
                                   f"before it was done")
    check_deadline()
    if job.doc.get("_phase") != "deleting":
        # A resumed copy re-checks every file: those already there whole (same checksum) stay.
        level = plan["sync_level"] if plan["sync_level"] is not None else (3 if job.resumed else None)
        skipped: list = []
        rels_of: dict = {}
        files, roots, src_roots = [], {}, {}
        for item in plan["items"]:
            for f in _files_of(item, plan, skipped, rels_of):
                files.append(f)
                roots[id(f[0])] = item.get("destination_root", item["destination"])
                src_roots[id(f[0])] = item.get("source_root", item["source"])
        p.update(files=len(files), files_transferred=0, files_skipped=0, bytes_transferred=0,
                 skipped_errors=skipped)
        progress = _Progress(job)
        for sf, sp, df, dp in files:
            check_deadline()
            if _escapes(df, dp, roots[id(sf)]):
                raise PermissionError(f"destination {dp} leaves its collection through a symbolic "
                                      f"link; nothing is written there")
            try:                           # the source side: what skip_source_errors covers
                if _escapes(sf, sp, src_roots[id(sf)]):
                    raise PermissionError(f"source {sp} leaves its collection through a symbolic link")
                s_info = sf.info(sp)
                if s_info is None:
                    raise FileNotFoundError(f"source file {sp} vanished during the transfer")
                if not _needs_copy(level, s_info, sf, sp, df, dp, job):
                    p["files_skipped"] += 1
                    progress.step()
                    continue
                src = sf.reader(sp)
            except _SOURCE_ERRORS as e:
                if not plan["skip_source_errors"]:
                    raise
                skipped.append({"source_path": sp, "error": type(e).__name__, "message": str(e)})
                continue
            with src:
                r = _Reader(src, job)
                df.write(dp, r)
            if plan["verify_checksum"] and _sha256(df, dp, job) != r.h.hexdigest():
                with sf.reader(sp) as f:   # a mismatch is retried once, as Globus does
                    r = _Reader(f, job)
                    df.write(dp, r)
                if _sha256(df, dp, job) != r.h.hexdigest():
                    raise OSError(f"checksum mismatch after copying {sp} to {dp} twice")
            if plan["preserve_timestamp"] and s_info.get("mtime") is not None:
                df.set_mtime(dp, s_info["mtime"])
            p["files_transferred"] += 1
            p["bytes_transferred"] += r.n
            progress.step()
        if files:
            progress.step(final=True)
        if plan["delete_destination_extra"]:
            p["files_deleted"] = sum(_delete_extra(item, rels_of.get(item["destination"]), job)
                                     for item in plan["items"])
    if plan["delete_source"]:
        job.beat(force=True, _phase="deleting")
        for item in plan["items"]:
            sf, sp = open_url(item["source"], item.get("source_root"))
            if _is_folder_item(item, sf, sp):
                sf.delete_tree(sp)
            else:
                sf.delete(sp)
    return task_details(job, plan, "SUCCEEDED")


def _plan_delete(body, ctx: ActionContext) -> dict:
    if not isinstance(body, dict):
        raise ActionUnableToRun(f"the delete body must be an object, got {type(body).__name__}")
    base = endpoint_url(body.get("endpoint_id", body.get("endpoint")), ctx, "endpoint_id")
    items = body.get("items", body.get("DATA"))
    if not isinstance(items, list) or not items:
        raise ActionUnableToRun("items: expected a non-empty list of paths")
    urls = []
    for i, it in enumerate(items):
        path = it.get("path") if isinstance(it, dict) else it
        urls.append(_path(base, path, f"items[{i}]"))
    return {"urls": urls, "root": base, "recursive": _flag(body, "recursive", False),
            "ignore_missing": _flag(body, "ignore_missing", False), "label": body.get("label")}


def _delete(job: jobs.Job) -> dict:
    plan = job.doc["_plan"]
    job.beat(force=True, display_status="Deleting")
    deleted = 0
    for url in plan["urls"]:
        files, path = open_url(url, plan.get("root"))
        info = files.info(path)
        if info is None:
            if not plan["ignore_missing"] and not job.resumed:
                raise FileNotFoundError(f"{url} does not exist (set ignore_missing: true to allow)")
            continue
        if info["type"] == "directory":
            if not plan["recursive"]:
                raise IsADirectoryError(f"{url} is a folder: set recursive: true to delete it")
            files.delete_tree(path)
        else:
            files.delete(path)
        deleted += 1
        job.beat()
    return {"DATA_TYPE": "task", "type": "DELETE", "task_id": job.doc["action_id"],
            "status": "SUCCEEDED", "label": plan["label"], "items_deleted": deleted}


def _run_here(docs: Docs, ctx: ActionContext, doc: dict, work) -> dict:
    """Take the job's lease and run it in this thread (the pool's own steps, without the pool)."""
    token = jobs._take(doc)
    docs.put(ctx, doc)
    jobs._execute(docs, ctx, dict(doc), token, work)
    return docs.get(ctx, doc["action_id"])


class _JobProvider:
    """A provider whose work is one :mod:`.jobs` job."""

    kind = ""
    what = ""
    #: Globus's file operations (ls, mkdir, stat...) answer at once: ``run`` does the work in
    #: the calling thread and returns the finished document (a crash midway: ``status`` resumes)
    synchronous = False

    def __init__(self):
        self.docs = Docs(self.kind)

    def _plan(self, body, ctx):
        raise NotImplementedError

    def _work(self, job):
        raise NotImplementedError

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        plan = self._plan(body, ctx)    # a bad body starts nothing and writes nothing

        def make(aid):
            doc = new_doc(self.kind, aid, request_id, ctx, display_status=f"{self.what} queued")
            doc["_plan"] = plan
            return doc
        doc, created = self.docs.create(ctx, request_id, make)
        if created and self.synchronous:
            doc = _run_here(self.docs, ctx, doc, self._work)
        elif created:
            doc = jobs.start(self.docs, ctx, doc, self._work)
        else:
            doc = jobs.check(self.docs, ctx, doc, self._work)
        return self._public(doc)

    def _public(self, doc: dict) -> dict:
        out = public(doc)
        if out["status"] not in DONE:
            out["details"] = dict(doc.get("_progress") or {})
            out["poll_after"] = POLL_AFTER
        return out

    def status(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self.docs.get(ctx, action_id)
        return self._public(jobs.check(self.docs, ctx, doc, self._work))

    def cancel(self, action_id: str, ctx: ActionContext) -> dict:
        return self._public(jobs.request_cancel(self.docs, ctx, self.docs.get(ctx, action_id)))

    def release(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self.docs.get(ctx, action_id)
        if doc["status"] not in DONE:
            raise ActionConflict(f"{self.kind} action {action_id} is still {doc['status']}: "
                                 "cancel it or wait for its end before releasing it")
        jobs.forget(self.docs, ctx, action_id)
        return self._public(doc)


class TransferProvider(_JobProvider):
    kind, what = "transfer", "Transfer"

    def _plan(self, body, ctx):
        return _plan_transfer(body, ctx)

    def _work(self, job):
        return _copy(job)


class DeleteProvider(_JobProvider):
    kind, what = "delete", "Delete"

    def _plan(self, body, ctx):
        return _plan_delete(body, ctx)

    def _work(self, job):
        return _delete(job)
