"""Run a flow in-process, to its end, with no runner: for tests and notebooks.

By default every ActionUrl goes to the site's real action providers (compute on your endpoints,
transfer, approval, HTTP: :mod:`faas.flows.actions`), so a flow copied from Globus runs as is in
a notebook. A dict of ``actions`` replaces them (``actions={}``: no actions at all, for tests):
plain callables keyed by ActionUrl, ``fn(parameters) -> details``. A callable that raises fails
the action (``ActionFailedException`` unless the state says ``ExceptionOnActionFailure:
false``); one that returns :class:`ActionResult` can also say how long the action "took"
(``seconds``), which the fake clock honours, so WaitTime timeouts can be exercised. An
ActionUrl with no callable is ``ActionUnableToRun``. Wait states and Retry delays are
fast-forwarded on the same fake clock: nothing ever sleeps.
"""
from __future__ import annotations

import getpass
import heapq
import time as _time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from faas.flows import interpreter as it
from faas.flows.definition import check


@dataclass
class ActionResult:
    """What an action callable may return instead of bare details."""

    details: Any = None
    status: str = "SUCCEEDED"  # or FAILED, INACTIVE
    seconds: float = 0.0       # simulated duration on the fake clock
    cause: str | None = None


class ActionLookup(Protocol):
    """What ``run(actions=...)`` takes besides ``"site"``: a dict of ActionUrl -> callable or
    provider, or any object with ``.get(action_url)`` like it."""

    def get(self, action_url: str, /) -> Any: ...


def _username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry (KeyError <3.13, OSError after)
        return "unknown"


def run(definition: Any, input: Any = None, *, actions: ActionLookup | str | None = "site",
        context: dict | None = None, start_time: float | None = None,
        max_events: int = 100_000, return_state: bool = False,
        store_url: str | None = None, config: dict | None = None) -> dict:
    """Run ``definition`` on ``input`` to its end; return the run document
    ``{run_id, flow_id, status, output, error, cause, log}``.

    ``context`` defaults to ``{flow_id: "local", run_id: <uuid>, username: <you>}``;
    ``start_time`` (epoch seconds) starts the fake clock (default: now).

    ``actions="site"`` (the default) uses the real action providers (:mod:`faas.flows.actions`:
    compute, transfer, approval, HTTP), keeping their documents in ``store_url`` (default: the
    client's store) with the site flows ``config``. A dict maps ActionUrls to callables or
    providers and is all the run has (``actions={}`` opts out of every action); ``None`` means
    the site's, as the default."""
    definition = check(definition)
    if actions is None:
        actions = "site"
    if isinstance(actions, str):
        if actions != "site":
            raise ValueError(f"actions={actions!r}: expected 'site', a dict of ActionUrl -> "
                             "callable or provider, or an object with .get(action_url)")
        from faas.flows.actions.local import SiteActions
        actions = SiteActions()
    elif isinstance(actions, dict):
        actions = dict(actions)
    ctx = {"flow_id": "local", "run_id": str(uuid.uuid4()), "username": _username()}
    ctx.update(context or {})
    from faas.flows import site_config
    site = _site_context(ctx, store_url, site_config.check(config, "config="))
    now = _time.time() if start_time is None else float(start_time)
    queue: list = []
    seq = 0

    def push(at: float, event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (at, seq, event))

    def perform(effects, now: float) -> None:
        for eff in effects:
            if isinstance(eff, it.SetTimer):
                push(max(eff.at, now), it.Timer(eff.timer_id, max(eff.at, now)))
            elif isinstance(eff, it.StartAction):
                push(*_call(actions, eff, now, site))
            # CancelAction: the action already ran synchronously; its late events are stale.

    rs = it.start(definition, input, ctx, time=now)
    perform(it.outstanding(rs), now)
    n = 0
    while rs.status in (it.ACTIVE, it.INACTIVE) and queue:
        n += 1
        if n > max_events:
            raise RuntimeError(f"flow did not end within {max_events} events")
        at, _, event = heapq.heappop(queue)
        now = at
        rs, effects = it.step(definition, rs, event)
        perform(effects, now)
    doc = rs.document()
    if return_state:
        doc["run_state"] = rs
    return doc


def _site_context(ctx: dict, store_url: str | None, config: dict | None):
    """The ActionContext real providers get (built lazily: plain callables need none)."""
    def make():
        from faas.flows.actions import ActionContext
        url = store_url
        if url is None:
            from faas.config import resolve
            url = resolve().store_url
        return ActionContext(url, ctx["run_id"], ctx["flow_id"], ctx["username"],
                             config=dict(config or {}))
    return make


def _call(actions, eff: it.StartAction, now: float, site=None):
    fn = actions.get(eff.action_url)
    if fn is None:
        return now, it.ActionUnableToRun(eff.request_id,
                                         f"no action registered for {eff.action_url}", now)
    if hasattr(fn, "status") and hasattr(fn, "run") and site is not None:   # a real provider
        from faas.flows.actions.local import drive
        return drive(fn, eff, now, site())
    try:
        res = fn(eff.parameters)
    except Exception as e:  # noqa: BLE001 - the action failed: report it like an action provider would
        return now, it.ActionFailed(eff.request_id,
                                    {"error": type(e).__name__, "message": str(e),
                                     "traceback": traceback.format_exc()},
                                    f"{type(e).__name__}: {e}", now)
    if not isinstance(res, ActionResult):
        res = ActionResult(details=res)
    t = now + max(res.seconds, 0.0)
    ev: it.ActionCompleted | it.ActionInactive | it.ActionFailed
    if res.status == "SUCCEEDED":
        ev = it.ActionCompleted(eff.request_id, res.details, t)
    elif res.status == "INACTIVE":
        ev = it.ActionInactive(eff.request_id, res.details, t)
    else:
        ev = it.ActionFailed(eff.request_id, res.details, res.cause, t)
    # the queue orders by time: an action slower than its WaitTime loses to its timeout timer
    return t, ev
