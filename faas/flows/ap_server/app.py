"""The Action Provider API over faas's actions, one path prefix per action (``/compute``,
``/transfer/transfer``, ``/transfer/delete``, ``/notify``, ...), with the routes of Globus's
action-provider-tools (old and new spellings both):

=====================================  ==============================================  ======
``GET  {prefix}/``                     introspect: the provider's description            200
``POST {prefix}/run``, ``/actions``    ``{"request_id", "body", ...}`` -> status doc     202
``GET  {prefix}/{id}/status``,         status document                                  200
``GET  {prefix}/actions/{id}``
``POST {prefix}/{id}/cancel``,         cancel; the status document                      200
``POST {prefix}/actions/{id}/cancel``
``POST {prefix}/{id}/release``,        forget a finished action; its last document      200
``DELETE {prefix}/actions/{id}``
=====================================  ==============================================  ======

Errors are ``{"code", "description"}``: 400 ``BadActionRequest`` (a bad request or body: the
provider's ActionUnableToRun, naming the key), 401 no or unknown token, 403 a token whose role
may not do this, 404 ``ActionNotFound`` (unknown, released, or another caller's), 409
``ActionConflict`` (release of an action still running).

``run`` is idempotent per caller and request id: the provider sees the request id prefixed by
the caller's identity, so the same request id from the same caller is the same action (nothing
starts twice) and another caller's equal request id is another action. Which caller started an
action is kept beside it in the store (``flows/actions/ap-server/<prefix>/<id>.json``); an
action the server did not start (a runner's) cannot be reached through it.
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from faas.flows import actions, site_config
from faas.flows.actions.base import (
    PREFIX,
    ActionConflict,
    ActionContext,
    ActionError,
    ActionNotFound,
    ActionUnableToRun,
    read_own,
    store_for,
)
from faas.store import KeyNotFound

from .auth import ActionTokens, APError, Caller, caller, require_run
from .schemas import describe

API_VERSION = "1.0"
INDEX = f"{PREFIX}ap-server/"
_ACTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
#: what a status document shows a caller: Globus's ActionStatus keys (and the poll hint)
STATUS_KEYS = ("action_id", "status", "display_status", "details", "creator_id", "start_time",
               "completion_time", "release_after", "label", "monitor_by", "manage_by", "poll_after")
NOT_SERVED = {actions.APPROVAL}   # a person's decision belongs to a run on this site, not to a caller
#: the most bytes of one run request read (4 times a state's 256 KiB limit: no flow sends more),
#: and the deepest nesting of its JSON: a caller's request must not cost the server its memory
MAX_REQUEST_BYTES = 1 << 20
MAX_JSON_DEPTH = 64


def mounts() -> dict[str, str]:
    """``{path prefix: faas ActionUrl}`` of every action faas serves itself (the faas:// URLs
    the Globus aliases point to, and the built-in ones), approval excepted."""
    urls = {actions.COMPUTE, actions.TRANSFER, actions.DELETE, *actions.ALIASES.values()} - NOT_SERVED
    out = {}
    for url in sorted(u for u in urls if u.startswith("faas://")):
        try:
            actions.resolve(url)
        except ActionUnableToRun:
            continue
        p = urlsplit(url)
        host, path = p.netloc, p.path.rstrip("/")
        if not path and any(urlsplit(o).netloc == host and urlsplit(o).path.strip("/")
                            for o in urls):
            path = f"/{host}"       # faas://transfer beside faas://transfer/delete: Globus's /transfer/transfer
        out[f"/{host}{path}"] = url
    return out


def _duration(seconds) -> str | None:
    """Seconds as an ISO 8601 duration, as Globus writes ``release_after`` (30 days: ``P30D``)."""
    if not isinstance(seconds, (int, float)):
        return seconds
    s = int(seconds)
    return f"P{s // 86400}D" if s % 86400 == 0 else f"PT{s}S"


def _out(doc: dict) -> dict:
    out = {k: doc[k] for k in STATUS_KEYS if k in doc}
    out["release_after"] = _duration(out.get("release_after"))
    if isinstance(out.get("display_status"), str):
        out["display_status"] = out["display_status"][:64]
    return out


def _depth(value) -> int:
    """How deeply ``value`` nests lists and objects (without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if d <= MAX_JSON_DEPTH:
                todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


async def _read_json(request: Request):
    """The request's JSON, read up to :data:`MAX_REQUEST_BYTES` (413 beyond) and nested at most
    :data:`MAX_JSON_DEPTH` deep (400 beyond)."""
    too_big = APError(413, "RequestTooLarge", f"the request is over {MAX_REQUEST_BYTES} bytes; "
                                              f"a run request carries one action's body")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise too_big
        chunks.append(chunk)
    try:
        req = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise APError(400, "BadActionRequest", "the request is not JSON; expected "
                                               "{\"request_id\": ..., \"body\": {...}}") from None
    if _depth(req) > MAX_JSON_DEPTH:
        raise APError(400, "BadActionRequest", f"the request nests deeper than {MAX_JSON_DEPTH} "
                                               f"levels of lists and objects")
    return req


def _error(status: int, code: str, description: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "description": description}, status_code=status, headers=headers)


def create_app(*, tokens: ActionTokens, store_url: str, config: dict | None = None,
               only: list[str] | None = None) -> FastAPI:
    """The server's app over the site store ``store_url`` (where action documents live), with the
    site flows ``config`` handed to every action (collections, compute, notify); ``only`` limits
    it to some path prefixes."""
    if not isinstance(tokens, ActionTokens):
        raise TypeError("create_app needs tokens=ActionTokens(...): there is no open mode")
    served = mounts()
    if only is not None:
        unknown = sorted(set(only) - set(served))
        if unknown:
            raise ValueError(f"no action at {unknown[0]}; this server has {', '.join(served)}")
        served = {k: v for k, v in served.items() if k in only}
    app = FastAPI(title="faas actions", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.tokens = tokens
    # Remote callers get the site's collections only unless its config says otherwise: with URLs
    # allowed, a token with the run role could copy any file this server's account can read.
    config = site_config.check(config, "the action server's site config")
    config = {**config, "transfer": {"allow_urls": False, **(config.get("transfer") or {})}}
    # A token with the run role runs this account's functions on its endpoints: the token is the
    # account's own grant (the runner, by contrast, lists what other users' runs may reach).
    config["compute"] = {"allowed_endpoints": ["*"], **(config.get("compute") or {})}

    @app.exception_handler(APError)
    async def _ap_error(request: Request, e: APError):
        return _error(e.status, e.code, e.description, e.headers)

    def ctx(c: Caller) -> ActionContext:
        return ActionContext(store_url, f"actions-serve:{c.identity}", "faas-actions-serve",
                             c.identity, config=config)

    @app.get("/")
    def index(request: Request):
        caller(request)
        return {"api_version": API_VERSION, "actions": {m: {"action_url": u} for m, u in served.items()}}

    for prefix, url in served.items():
        _mount(app, prefix, url, actions.resolve(url), ctx, store_url)
    return app


def _mount(app: FastAPI, prefix: str, url: str, provider, ctx, store_url: str) -> None:
    description = describe(prefix, url, provider)
    index_dir = f"{INDEX}{prefix.strip('/').replace('/', '_')}/"

    def owner_key(action_id: str) -> str:
        return f"{index_dir}{action_id}.json"

    def owned(c: Caller, action_id: str) -> None:
        """404 unless ``action_id`` was started here by ``c`` (or ``c`` may see every action)."""
        if not _ACTION_ID.match(action_id):
            raise APError(404, "ActionNotFound", f"no action {action_id!r} at {prefix}")
        try:   # on a file store, a record this server wrote (none planted by the store's users)
            creator = json.loads(read_own(store_for(store_url), owner_key(action_id))).get("creator")
        except (KeyNotFound, ValueError, AttributeError):
            creator = None
        if creator is None or (creator != c.identity and c.role not in ("manage", "read")):
            raise APError(404, "ActionNotFound", f"no action {action_id!r} at {prefix} (never "
                                                 "started, released, or another caller's)")

    def call(fn, *args):
        try:
            return fn(*args)
        except ActionUnableToRun as e:
            raise APError(400, "BadActionRequest", str(e)) from None
        except ActionNotFound as e:
            raise APError(404, "ActionNotFound", str(e)) from None
        except ActionConflict as e:
            raise APError(409, "ActionConflict", str(e)) from None
        except ActionError as e:
            raise APError(500, "ActionProviderError", str(e)) from None

    def introspect(request: Request):
        caller(request)
        return description

    async def run(request: Request):
        c = caller(request)
        require_run(c)
        req = await _read_json(request)
        if not isinstance(req, dict):
            raise APError(400, "BadActionRequest", "expected an object {\"request_id\", \"body\"}")
        rid, body = req.get("request_id"), req.get("body")
        if not isinstance(rid, str) or not rid or len(rid) > 512:
            raise APError(400, "BadActionRequest", f"request_id: expected a string (1-512 "
                                                   f"characters), got {rid!r}")
        if not isinstance(body, dict):
            raise APError(400, "BadActionRequest", f"body: expected an object (the action's "
                                                   f"input), got {type(body).__name__}")
        return await run_in_threadpool(start, c, rid, body)   # providers block (SMTP, the store)

    def start(c: Caller, rid: str, body: dict):
        doc = call(provider.run, body, f"{c.identity}/{rid}", ctx(c))
        store_for(store_url).put(owner_key(doc["action_id"]),
                                 json.dumps({"creator": c.identity, "action_url": url}).encode())
        return JSONResponse(_out(doc), status_code=202)

    def status(action_id: str, request: Request):
        c = caller(request)
        owned(c, action_id)
        return _out(call(provider.status, action_id, ctx(c)))

    def cancel(action_id: str, request: Request):
        c = caller(request)
        require_run(c)
        owned(c, action_id)
        return _out(call(provider.cancel, action_id, ctx(c)))

    def release(action_id: str, request: Request):
        c = caller(request)
        require_run(c)
        owned(c, action_id)
        doc = call(provider.release, action_id, ctx(c))
        store_for(store_url).delete(owner_key(action_id))
        return _out(doc)

    add = app.add_api_route
    add(f"{prefix}", introspect, methods=["GET"])
    add(f"{prefix}/", introspect, methods=["GET"])
    add(f"{prefix}/run", run, methods=["POST"])
    add(f"{prefix}/actions", run, methods=["POST"])
    add(f"{prefix}/actions/{{action_id}}", status, methods=["GET"])
    add(f"{prefix}/actions/{{action_id}}/cancel", cancel, methods=["POST"])
    add(f"{prefix}/actions/{{action_id}}", release, methods=["DELETE"])
    add(f"{prefix}/{{action_id}}/status", status, methods=["GET"])
    add(f"{prefix}/{{action_id}}/cancel", cancel, methods=["POST"])
    add(f"{prefix}/{{action_id}}/release", release, methods=["POST"])
