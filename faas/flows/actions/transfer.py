"""The transfer action (``faas://transfer``) and the delete action (``faas://transfer/delete``),
taking Globus Transfer's action bodies, on fsspec URLs (``file://``, ``s3://``, ``memory://``).

An endpoint id is a base URL, or the name of a collection in the site's flows config
(``collections: {name: base URL}``; a Globus collection UUID can be such a name, so a
definition written for Globus runs unchanged). A site whose runner reaches files its users
should not (a shared service account) sets ``transfer: {allow_urls: false}``: collections only. Paths are inside the collection (``/~/`` is its
root, ``..`` is refused).

``sync_level`` as Globus: 0 copy only files missing at the destination, 1 also those of another
size, 2 also those older at the destination, 3 also those with another checksum; absent: copy
everything. Every file copied is checked afterwards (SHA-256 of the bytes read against the bytes
written back) unless ``verify_checksum`` is false. ``delete_source`` removes each source after
all items are copied and checked: a move.

The copy runs in a small pool of threads (:mod:`.jobs`), holding a lease in the action's
document; if the process dies, the next ``status`` anywhere resumes it, skipping files already
at the destination with the same checksum, so nothing is lost or copied wrong.
"""
from __future__ import annotations

import hashlib
import posixpath

from . import jobs
from .base import (DONE, ActionConflict, ActionContext, ActionUnableToRun, Docs, new_doc, public)
from .files import CHUNK, join, open_url

POLL_AFTER = 2


def endpoint_url(ident, ctx: ActionContext, key: str) -> str:
    """A collection name from the site config, or a base URL."""
    if not isinstance(ident, str) or not ident.strip():
        raise ActionUnableToRun(f"{key}: expected a collection name or a URL such as "
                                f"file:///data or s3://bucket/prefix, got {ident!r}")
    collections = ctx.config.get("collections") or {}
    if ident in collections:
        return str(collections[ident])
    known = ", ".join(sorted(collections)) or "none defined"
    if "://" in ident:
        if (ctx.config.get("transfer") or {}).get("allow_urls", True) is False:
            raise ActionUnableToRun(f"{key}: {ident!r}: this site allows only its collections "
                                    f"({known}), not URLs (transfer.allow_urls is false)")
        return ident
    raise ActionUnableToRun(f"{key}: {ident!r} is neither a URL (file:///..., s3://bucket/prefix, "
                            f"memory://...) nor a collection of the site's flows config "
                            f"(collections: {known})")


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


def _plan_transfer(body, ctx: ActionContext) -> dict:
    if not isinstance(body, dict):
        raise ActionUnableToRun(f"the transfer body must be an object, got {type(body).__name__}")
    src = endpoint_url(body.get("source_endpoint_id", body.get("source_endpoint")), ctx, "source_endpoint_id")
    dst = endpoint_url(body.get("destination_endpoint_id", body.get("destination_endpoint")), ctx,
                       "destination_endpoint_id")
    items = body.get("transfer_items", body.get("DATA"))
    if not isinstance(items, list) or not items:
        raise ActionUnableToRun("transfer_items: expected a non-empty list of "
                                "{source_path, destination_path, recursive}")
    sync = body.get("sync_level")
    if sync is not None and (isinstance(sync, bool) or sync not in (0, 1, 2, 3)):
        raise ActionUnableToRun(f"sync_level: expected 0 (exists), 1 (size), 2 (mtime) or 3 "
                                f"(checksum), got {sync!r}")
    out = []
    for i, it in enumerate(items):
        where = f"transfer_items[{i}]"
        if not isinstance(it, dict):
            raise ActionUnableToRun(f"{where}: expected an object, got {it!r}")
        rec = it.get("recursive", False)
        if rec is not None and not isinstance(rec, bool):
            raise ActionUnableToRun(f"{where}.recursive: expected true or false, got {rec!r}")
        out.append({"source": _path(src, it.get("source_path"), f"{where}.source_path"),
                    "destination": _path(dst, it.get("destination_path"), f"{where}.destination_path"),
                    "recursive": bool(rec)})
    return {"items": out, "sync_level": sync,
            "verify_checksum": _flag(body, "verify_checksum", True),
            "delete_source": _flag(body, "delete_source", False),
            "label": body.get("label"),
            "source_endpoint_id": body.get("source_endpoint_id"),
            "destination_endpoint_id": body.get("destination_endpoint_id")}


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


def _files_of(item: dict) -> list[tuple]:
    """``(src files, src path, dst files, dst path, size, mtime)`` for each file of an item."""
    sf, sp = open_url(item["source"])
    df, dp = open_url(item["destination"])
    info = sf.info(sp)
    if info is None:
        raise FileNotFoundError(f"source {item['source']} does not exist")
    if info["type"] == "directory":
        if not item["recursive"]:
            raise IsADirectoryError(f"source {item['source']} is a folder: set recursive: true "
                                    f"to copy it")
        return [(sf, posixpath.join(sp.rstrip("/"), rel), df, posixpath.join(dp.rstrip("/"), rel))
                for rel, _ in sf.walk(sp)]
    if item["recursive"]:
        raise NotADirectoryError(f"source {item['source']} is a file, but recursive is true")
    if item["destination"].endswith("/"):
        dp = posixpath.join(dp, posixpath.basename(sp))
    return [(sf, sp, df, dp)]


def _copy(job: jobs.Job) -> dict:
    plan = job.doc["_plan"]
    job.beat(force=True, display_status="Transferring")
    p = job.progress
    for k in ("files", "files_transferred", "files_skipped", "bytes_transferred", "bytes_checksummed"):
        p.setdefault(k, 0)
    if job.doc.get("_phase") != "deleting":
        # A resumed copy re-checks every file: those already there whole (same checksum) stay.
        level = plan["sync_level"] if plan["sync_level"] is not None else (3 if job.resumed else None)
        files = [f for item in plan["items"] for f in _files_of(item)]
        p.update(files=len(files), files_transferred=0, files_skipped=0, bytes_transferred=0)
        for sf, sp, df, dp in files:
            s_info = sf.info(sp)
            if s_info is None:
                raise FileNotFoundError(f"source file {sp} vanished during the transfer")
            if not _needs_copy(level, s_info, sf, sp, df, dp, job):
                p["files_skipped"] += 1
                continue
            for attempt in (1, 2):    # a checksum mismatch is retried once, as Globus does
                with sf.reader(sp) as f:
                    r = _Reader(f, job)
                    df.write(dp, r)
                if not plan["verify_checksum"] or _sha256(df, dp, job) == r.h.hexdigest():
                    break
                if attempt == 2:
                    raise IOError(f"checksum mismatch after copying {sp} to {dp} twice")
            p["files_transferred"] += 1
            p["bytes_transferred"] += r.n
            job.beat()
    if plan["delete_source"]:
        job.beat(force=True, _phase="deleting")
        for item in plan["items"]:
            sf, sp = open_url(item["source"])
            if item["recursive"]:
                sf.delete_tree(sp)
            else:
                sf.delete(sp)
    return {"task_id": job.doc["action_id"], "status": "SUCCEEDED", "label": plan["label"],
            "source_endpoint_id": plan["source_endpoint_id"],
            "destination_endpoint_id": plan["destination_endpoint_id"],
            "sync_level": plan["sync_level"], "verify_checksum": plan["verify_checksum"],
            "delete_source": plan["delete_source"], **p}


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
    return {"urls": urls, "recursive": _flag(body, "recursive", False),
            "ignore_missing": _flag(body, "ignore_missing", False), "label": body.get("label")}


def _delete(job: jobs.Job) -> dict:
    plan = job.doc["_plan"]
    job.beat(force=True, display_status="Deleting")
    deleted = 0
    for url in plan["urls"]:
        files, path = open_url(url)
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
    return {"task_id": job.doc["action_id"], "status": "SUCCEEDED", "label": plan["label"],
            "items_deleted": deleted}


class _JobProvider:
    """A provider whose work is one :mod:`.jobs` job."""

    kind = ""
    what = ""

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
        if created:
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
