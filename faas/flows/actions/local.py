"""Real action providers inside ``faas.flows.run`` (an in-process run, no runner).

``faas.flows.run(defn, input, actions="site", store_url=..., config=...)`` resolves each
ActionUrl with :func:`faas.flows.actions.resolve`; a dict of ``actions`` may also map URLs to
providers, beside plain callables. Each action is started and then polled (sleeping
``poll_after``, real time) until it ends or its state's ``WaitTime`` passes, when it is
canceled and the run sees ``ActionTimeout``. Actions run one after another, also in Parallel
and Map states: a durable runner is the way to overlap them.
"""
from __future__ import annotations

import time
import traceback
from typing import Any

from faas.flows import interpreter as it

from . import ActionContext, ActionError, ActionProvider, ActionUnableToRun, resolve
from .base import DONE, SUCCEEDED

MAX_POLL = 1.0


class SiteActions:
    """A mapping-like view ``ActionUrl -> provider`` over :func:`resolve`, with overrides."""

    def __init__(self, overrides: dict | None = None) -> None:
        self.overrides = dict(overrides or {})

    def get(self, url: str, default: Any = None) -> Any:
        if url in self.overrides:
            return self.overrides[url]
        try:
            return resolve(url)
        except ActionUnableToRun:
            return default


def is_provider(obj: object) -> bool:
    return isinstance(obj, ActionProvider)


def drive(provider: ActionProvider, eff: it.StartAction, now: float,
          ctx: ActionContext) -> tuple[float, it.Event]:
    """Start ``eff``'s action and poll it to its end: ``(event time, event)`` for ``local.run``.
    The event time is ``now`` plus the real seconds it took, so a WaitTime shorter than that
    loses to the timeout timer on local.run's clock."""
    actx = ActionContext(ctx.store_url, ctx.run_id, ctx.flow_id, ctx.username,
                         eff.run_as, ctx.config)
    t0 = time.monotonic()

    def at() -> float:
        return now + (time.monotonic() - t0)
    try:
        doc = provider.run(eff.parameters, eff.request_id, actx)
    except ActionUnableToRun as e:
        return now, it.ActionUnableToRun(eff.request_id, str(e), now)
    except Exception as e:  # noqa: BLE001 - any provider error means it could not start
        return now, it.ActionUnableToRun(eff.request_id, f"{type(e).__name__}: {e}\n"
                                                         f"{traceback.format_exc()}", now)
    delay = 0.05
    while doc.get("status") not in DONE:
        if time.monotonic() - t0 > eff.wait_time:
            try:
                provider.cancel(doc["action_id"], actx)
            except ActionError:
                pass
            return at(), it.ActionFailed(eff.request_id, {"error": "ActionTimeout"}, "timed out", at())
        time.sleep(min(delay, float(doc.get("poll_after") or MAX_POLL), MAX_POLL))
        delay = min(delay * 2, MAX_POLL)
        try:
            doc = provider.status(doc["action_id"], actx)
        except ActionError:
            continue      # transient (an unreachable HTTP provider): ask again until WaitTime
    t = at()
    if doc["status"] == SUCCEEDED:
        return t, it.ActionCompleted(eff.request_id, doc.get("details"), t)
    details = doc.get("details")
    cause = None
    if isinstance(details, dict):
        cause = ": ".join(str(details[k]) for k in ("error", "message") if details.get(k)) or None
    return t, it.ActionFailed(eff.request_id, details, cause or doc.get("display_status"), t)
