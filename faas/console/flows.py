"""The flows, runs and timers views: thin over ``faas.flows.FlowsClient`` / ``TimersClient``."""
from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from ..exceptions import FaasError
from ..flows.client import DONE as RUN_DONE  # noqa: F401 - pages use both
from ..flows.client import STATUSES as RUN_STATUSES
from .context import Console
from .schema_form import parse, validate


class FlowsUnavailable(FaasError):
    code = "FlowsUnavailable"


def flows_client(c: Console):
    if c.flows is None:
        raise FlowsUnavailable("flows are not available in this installation (faas.flows.FlowsClient)")
    return c.flows


def timers_client(c: Console):
    if c.timers is None:
        raise FlowsUnavailable("timers are not available in this installation (faas.flows.TimersClient)")
    return c.timers


def list_flows(c: Console) -> list[dict]:
    flows = flows_client(c).list_flows()
    counts: dict[str, dict[str, int]] = {}
    for r in c.runs.list_runs():
        counts.setdefault(r.get("flow_id"), {}).setdefault(r.get("status"), 0)
        counts[r.get("flow_id")][r.get("status")] += 1
    return [dict(f, run_counts=counts.get(f["id"], {})) for f in flows]


def get_flow(c: Console, flow_id: str, version: int | None = None) -> dict:
    return flows_client(c).get_flow(flow_id, version)


def _since(value: str | None) -> float | None:
    """``since`` as epoch seconds: a date (``2026-11-25``), an ISO time, or hours ago (``6h``)."""
    if not value:
        return None
    value = value.strip()
    if value.endswith("h") and value[:-1].replace(".", "", 1).isdigit():
        return _dt.datetime.now(_dt.timezone.utc).timestamp() - float(value[:-1]) * 3600
    try:
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since={value!r}: expected a date (2026-11-25), an ISO time, or hours "
                         f"ago (6h)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp()


def list_runs(c: Console, *, flow_id: str | None = None, status: str | None = None,
              label: str | None = None, since: str | None = None, limit: int = 100,
              offset: int = 0) -> dict:
    if status and status not in RUN_STATUSES:
        raise ValueError(f"status={status!r}: expected one of {', '.join(RUN_STATUSES)}")
    flows_client(c)
    runs = c.runs.list_runs(flow_id=flow_id or None, status=status or None, label=label or None,
                            since=_since(since))
    return {"runs": runs[offset:offset + limit], "total": len(runs), "limit": limit, "offset": offset}


def get_run(c: Console, run_id: str) -> dict:
    return flows_client(c).get_run(run_id)


def get_log(c: Console, run_id: str, after: int | None = None) -> list[dict]:
    return flows_client(c).get_log(run_id, after=after)


def start_from_form(c: Console, flow_id: str, form: dict[str, str]) -> tuple[dict | None, dict, dict]:
    """``(run or None, input as typed, {field: message})``: a run starts only when the input
    passes the flow's input schema."""
    flow = get_flow(c, flow_id)
    fields = {k: v for k, v in form.items() if not k.startswith("_")}
    data, errors = parse(flow.get("input_schema"), fields)
    if errors:
        return None, data, errors
    run = flows_client(c).start(flow_id, data, label=form.get("_label") or None,
                                tags=[t.strip() for t in (form.get("_tags") or "").split(",") if t.strip()])
    return run, data, {}


def start(c: Console, flow_id: str, input: Any, label: str | None = None, tags: Iterable[str] = ()) -> dict:
    flow = get_flow(c, flow_id)
    errors = validate(flow.get("input_schema") or {}, input)
    if errors:
        raise InputErrors(errors)
    return flows_client(c).start(flow_id, input, label=label, tags=tags)


class InputErrors(FaasError, ValueError):
    code = "InputInvalid"

    def __init__(self, errors: dict[str, str]):
        super().__init__("the input does not match the flow's input schema: " +
                         "; ".join(f"{k or 'input'}: {v}" for k, v in errors.items()))
        self.errors = errors


def run_action(c: Console, run_id: str, action: str, comment: str | None = None) -> Any:
    fc = flows_client(c)
    if action == "cancel":
        return fc.cancel_run(run_id)
    if action == "resume":
        return fc.resume_run(run_id)
    if action == "approve":
        return fc.approve(run_id, comment)
    if action == "reject":
        return fc.reject(run_id, comment)
    raise ValueError(f"unknown run action {action!r}")


def waiting_approval(run: dict, log: list[dict]) -> bool:
    """Whether the run waits on an approval action in its current state (approve/reject apply)."""
    if run.get("status") != "INACTIVE":
        return False
    for e in reversed(log):
        d = e.get("details") or {}
        if e.get("code") == "ActionStarted" and d.get("state_name") == run.get("current_state"):
            return "approval" in str(d.get("action_url", ""))
    return False


# -- timers ---------------------------------------------------------------------------------

def list_timers(c: Console) -> list[dict]:
    return sorted(timers_client(c).list(), key=lambda t: t.get("name") or t.get("id"))


def get_timer(c: Console, timer_id: str) -> dict:
    return timers_client(c).get(timer_id)


def timer_action(c: Console, timer_id: str, action: str) -> Any:
    tc = timers_client(c)
    if action not in ("pause", "resume", "delete"):
        raise ValueError(f"unknown timer action {action!r}")
    return getattr(tc, action)(timer_id)
