"""A small Globus Action Provider served over HTTP by the tests (FastAPI + uvicorn, 127.0.0.1).

Actions (picked by ``body["op"]``): ``echo`` succeeds at once with the body; ``slow`` stays
ACTIVE until ``body["polls"]`` status calls were made; ``fail`` fails with a message; ``bad``
is refused at run (400). Every request must carry ``Authorization: Bearer <token>``. ``run``
dedupes by request id. ``app.state.runs`` counts real starts, for the idempotency tests.
"""
from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import datetime, timezone

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request


def make_app(token: str) -> FastAPI:
    app = FastAPI()
    actions: dict[str, dict] = {}
    by_request: dict[str, str] = {}
    app.state.runs = 0
    app.state.flaky = 0          # answer this many next requests with 503 first

    def auth(authorization: str | None):
        if authorization != f"Bearer {token}":
            raise HTTPException(401, "missing or wrong bearer token")

    def now():
        return datetime.now(timezone.utc).isoformat()

    @app.middleware("http")
    async def flaky(request: Request, call_next):
        if app.state.flaky > 0:
            app.state.flaky -= 1
            from fastapi.responses import JSONResponse
            return JSONResponse({"detail": "try again"}, status_code=503)
        return await call_next(request)

    @app.post("/run")
    async def run(request: Request, authorization: str | None = Header(None)):
        auth(authorization)
        req = await request.json()
        rid, body = req.get("request_id"), req.get("body") or {}
        if rid in by_request:
            return actions[by_request[rid]]["doc"]
        if body.get("op") not in ("echo", "slow", "fail"):
            raise HTTPException(400, f"unknown op {body.get('op')!r}")
        app.state.runs += 1
        aid = uuid.uuid4().hex
        doc = {"action_id": aid, "status": "ACTIVE", "display_status": "running", "details": None,
               "creator_id": "tester", "start_time": now(), "completion_time": None,
               "release_after": 3600}
        if body["op"] == "echo":
            doc.update(status="SUCCEEDED", details={"echo": body}, completion_time=now())
        elif body["op"] == "fail":
            doc.update(status="FAILED", details={"error": "Boom", "message": body.get("message", "boom")},
                       completion_time=now())
        actions[aid] = {"doc": doc, "body": body, "polls": 0}
        by_request[rid] = aid
        return doc

    def get(aid):
        if aid not in actions:
            raise HTTPException(404, f"no action {aid}")
        return actions[aid]

    @app.get("/{aid}/status")
    async def status(aid: str, authorization: str | None = Header(None)):
        auth(authorization)
        a = get(aid)
        doc = a["doc"]
        if doc["status"] == "ACTIVE":
            a["polls"] += 1
            if a["polls"] >= a["body"].get("polls", 1):
                doc.update(status="SUCCEEDED", details={"polled": a["polls"]}, completion_time=now())
            else:
                doc["poll_after"] = 0.05
        return doc

    @app.post("/{aid}/cancel")
    async def cancel(aid: str, authorization: str | None = Header(None)):
        auth(authorization)
        doc = get(aid)["doc"]
        if doc["status"] in ("ACTIVE", "INACTIVE"):
            doc.update(status="FAILED", details={"error": "Canceled"}, completion_time=now())
        return doc

    @app.post("/{aid}/release")
    async def release(aid: str, authorization: str | None = Header(None)):
        auth(authorization)
        doc = get(aid)["doc"]
        if doc["status"] in ("ACTIVE", "INACTIVE"):
            raise HTTPException(409, "action still running")
        del actions[aid]
        return doc

    return app


class Served:
    """``with Served(token) as s: s.url`` - the provider on a free loopback port, in a thread."""

    def __init__(self, token: str = "secret-token"):
        self.app = make_app(token)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test action provider did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
