"""Hello World: Globus's tutorial action provider (``https://actions.globus.org/hello_world``),
served here so the tutorials' flows run as written.

As Globus documents it: the result always holds ``"Hello": "World"``, plus ``"hello"`` with the
body's ``echo_string`` when given; with ``sleep_time`` (seconds) the action stays ACTIVE that long
and then SUCCEEDS, else it SUCCEEDS at once. ``required_dependent_scope`` asks Globus Auth for a
consent, which faas has no counterpart of: refused with ActionUnableToRun saying so.
Nothing sleeps: the deadline is kept in the action's document and checked on ``status``.
"""
from __future__ import annotations

import time
from typing import Any

from .base import (
    DONE,
    FAILED,
    SUCCEEDED,
    ActionConflict,
    ActionContext,
    ActionUnableToRun,
    Docs,
    finish,
    new_doc,
    public,
)

MAX_SLEEP = 7 * 24 * 3600   # seconds; a longer sleep_time is a mistake, not a test
_docs = Docs("hello_world")


def _result(body: dict) -> dict:
    details: dict[str, Any] = {"Hello": "World"}
    if "echo_string" in body:
        details["hello"] = body["echo_string"]
    return details


def _sleep_time(body: dict) -> float:
    sleep = body.get("sleep_time", 0)
    if isinstance(sleep, bool) or not isinstance(sleep, (int, float)) or not 0 <= sleep <= MAX_SLEEP:
        raise ActionUnableToRun(f"sleep_time: expected a number of seconds from 0 to {MAX_SLEEP}, "
                                f"got {sleep!r}")
    return float(sleep)


def _checked(body: Any) -> dict:
    if not isinstance(body, dict):
        raise ActionUnableToRun(f"the hello_world body must be an object, got {type(body).__name__}")
    if "required_dependent_scope" in body:
        raise ActionUnableToRun(
            "required_dependent_scope: Globus's Hello World asks Globus Auth for a consent to that "
            "scope (to test ConsentRequired handling); faas has no Globus Auth and no consents")
    return body


class HelloWorldProvider:
    """``faas://hello_world``, alias ``https://actions.globus.org/hello_world``."""

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        body = _checked(body)
        sleep = _sleep_time(body)

        def make(action_id: str) -> dict:
            doc = new_doc("hello_world", action_id, request_id, ctx)
            doc.update(_until=time.time() + sleep, _details=_result(body), poll_after=sleep)
            return doc

        doc, _ = _docs.create(ctx, request_id, make)
        return public(self._settle(ctx, doc))

    def _settle(self, ctx: ActionContext, doc: dict) -> dict:
        """SUCCEEDED once its sleep_time has passed (written back once)."""
        if doc["status"] not in DONE:
            left = doc["_until"] - time.time()
            if left <= 0:
                _docs.put(ctx, finish(doc, SUCCEEDED, doc["_details"]))
            else:
                doc["poll_after"] = left
        return doc

    def status(self, action_id: str, ctx: ActionContext) -> dict:
        return public(self._settle(ctx, _docs.get(ctx, action_id)))

    def cancel(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self._settle(ctx, _docs.get(ctx, action_id))
        if doc["status"] not in DONE:
            _docs.put(ctx, finish(doc, FAILED, {"error": "Canceled",
                                                "message": "the action was canceled"}, "Canceled"))
        return public(doc)

    def release(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self._settle(ctx, _docs.get(ctx, action_id))
        if doc["status"] not in DONE:
            raise ActionConflict(f"hello_world {action_id} is still running: cancel it first")
        _docs.delete(ctx, action_id)
        return public(doc)
