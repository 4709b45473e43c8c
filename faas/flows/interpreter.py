"""The pure flow interpreter: definition + run state + event -> new run state + effects.

No I/O and no clock: time arrives in events (every event carries ``time``, seconds since the
epoch), so the same definition, input and events always give the same run state. Drivers
(``faas.flows.local.run``, the durable runner) carry out the *effects*:

* :class:`StartAction` - start an action; its ``request_id`` is derived from the run id, the
  state's path, its visit number and the attempt, so a restarted runner that re-issues the
  outstanding actions (:func:`outstanding`) never starts one twice at an idempotent provider.
* :class:`SetTimer` - deliver ``Timer(timer_id)`` at ``at`` (Wait states, Retry delays, and each
  action's WaitTime deadline, which becomes ``ActionTimeout``).
* :class:`CancelAction` - the action is no longer wanted (timed out, run canceled, sibling
  branch failed).

Events: :class:`ActionCompleted`, :class:`ActionFailed`, :class:`ActionInactive`, :class:`ActionProgress`,
:class:`ActionTimeout`, :class:`ActionUnableToRun`, :class:`Timer`, :class:`Cancel`. Events
for nothing pending (stale timers, duplicate completions) are ignored.

Errors follow ASL: a state error is matched against the state's Retry then Catch;
``States.ALL`` matches every error except ``States.Runtime`` (bad paths, failing expressions,
runaway loops) and ``States.DataLimitExceeded`` (a state's input or output over
:data:`MAX_PAYLOAD_BYTES`), as Step Functions documents; a retrier or catcher naming them does
match them. Action errors are Globus's: ``ActionUnableToRun``, ``ActionFailedException``,
``ActionTimeout``.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from faas.flows import parameters, paths
from faas.flows.definition import check, parse_timestamp
from faas.flows.errors import ExpressionError, PathError, PathNotFound, PathWriteError
from faas.flows.times import iso

ACTIVE, INACTIVE, SUCCEEDED, FAILED, ENDED = "ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED", "ENDED"
DONE = (SUCCEEDED, FAILED, ENDED)
DEFAULT_WAIT_TIME = 300
MAX_TRANSITIONS = 10_000  # per event: more without waiting is a runaway loop
MAX_PAYLOAD_BYTES = 256 * 1024  # Step Functions' quota: a state's input or output as UTF-8 JSON
NOT_CAUGHT_BY_ALL = ("States.Runtime", "States.DataLimitExceeded")
NOT_STARTED = "NOT_STARTED"


# --- events --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActionCompleted:
    request_id: str
    details: Any = None
    time: float = 0.0


@dataclass(frozen=True)
class ActionFailed:
    request_id: str
    details: Any = None
    cause: str | None = None
    time: float = 0.0


@dataclass(frozen=True)
class ActionInactive:
    request_id: str
    details: Any = None
    time: float = 0.0


@dataclass(frozen=True)
class ActionProgress:
    """A running action says how far it got (its ``display_status`` changed): logged only."""
    request_id: str
    display_status: str = ""
    details: Any = None
    time: float = 0.0


@dataclass(frozen=True)
class ActionTimeout:
    request_id: str
    time: float = 0.0


@dataclass(frozen=True)
class ActionUnableToRun:
    request_id: str
    cause: str | None = None
    time: float = 0.0


@dataclass(frozen=True)
class Timer:
    timer_id: str
    time: float = 0.0


@dataclass(frozen=True)
class Cancel:
    time: float = 0.0
    reason: str | None = None


# --- effects -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartAction:
    request_id: str
    action_url: str
    parameters: Any
    wait_time: float
    state: str
    run_as: str | None = None
    private: tuple = ()


@dataclass(frozen=True)
class SetTimer:
    timer_id: str
    at: float


@dataclass(frozen=True)
class CancelAction:
    request_id: str
    action_url: str


#: what :func:`step` takes
Event = (ActionCompleted | ActionFailed | ActionInactive | ActionProgress | ActionTimeout
         | ActionUnableToRun | Timer | Cancel)
#: what :func:`step` asks its caller to do
Effect = StartAction | SetTimer | CancelAction

_EVENTS = {c.__name__: c for c in (ActionCompleted, ActionFailed, ActionInactive, ActionProgress,
                                   ActionTimeout,
                                   ActionUnableToRun, Timer, Cancel)}
_EFFECTS = {c.__name__: c for c in (StartAction, SetTimer, CancelAction)}


def to_dict(obj: Event | Effect) -> dict:
    """An event or effect as a JSON-able dict with its ``type``."""
    d = asdict(obj)
    if "private" in d:
        d["private"] = list(d["private"])
    return {"type": type(obj).__name__, **d}


def from_dict(d: dict) -> Event | Effect:
    """The event or effect ``to_dict`` made."""
    d = dict(d)
    cls = {**_EVENTS, **_EFFECTS}[d.pop("type")]
    if "private" in d:
        d["private"] = tuple(d["private"])
    return cls(**d)


# --- run state -----------------------------------------------------------------------------------
@dataclass
class RunState:
    """The state of a run (or of a Parallel branch / Map item inside one).

    ``current`` is the state being executed and ``input`` its raw input; ``phase`` is ``ready``
    (to execute), ``waiting`` (on ``action``, ``timer`` or ``children``) or ``done``. ``log`` and
    ``context`` are kept on the top-level run only."""

    run_id: str
    machine: list = field(default_factory=list)  # where this machine is in the definition
    status: str = ACTIVE
    current: str | None = None
    phase: str = "ready"
    input: Any = None
    seq: int = 0          # states entered so far (distinguishes visits in loops)
    attempt: int = 0      # retry attempt of the current state
    retries: dict = field(default_factory=dict)   # retrier index (str) -> attempts used
    action: dict | None = None    # the pending action
    timer: dict | None = None     # the pending timer
    children: list = field(default_factory=list)  # Parallel branches / Map items
    map_max: int = 0
    output: Any = None
    error: str | None = None
    cause: str | None = None
    context: dict = field(default_factory=dict)
    log: list = field(default_factory=list)
    ended_at: float | None = None

    def to_dict(self) -> dict:
        d = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "children"}
        d["children"] = [c.to_dict() for c in self.children]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunState:
        d = dict(d)
        children = [cls.from_dict(c) for c in d.pop("children", [])]
        rs = cls(**copy.deepcopy(d))
        rs.children = children
        return rs

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunState:
        return cls.from_dict(json.loads(text))

    def document(self) -> dict:
        """The run document: ``{status, output, error, cause, log}`` (+ ids from the context)."""
        return {"run_id": self.context.get("run_id", self.run_id),
                "flow_id": self.context.get("flow_id"),
                "status": self.status, "output": copy.deepcopy(self.output),
                "error": self.error, "cause": self.cause, "log": copy.deepcopy(self.log)}


class StateError(Exception):
    """An error raised by a state; it goes through Retry and Catch."""

    def __init__(self, error: str, cause: str | None = None):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class _Runaway(Exception):
    pass


def _runtime(e: Exception) -> StateError:
    if isinstance(e, PathWriteError):
        return StateError("States.ResultPathMatchFailure", str(e))
    return StateError("States.Runtime", str(e))


def payload_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, the way Step Functions counts its 256 KiB."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode("utf-8"))


def _check_size(value: Any, what: str, state: str | None) -> None:
    """Raise States.DataLimitExceeded when ``value`` is over :data:`MAX_PAYLOAD_BYTES`."""
    size = payload_size(value)
    if size > MAX_PAYLOAD_BYTES:
        raise StateError("States.DataLimitExceeded",
                         f"the {what} of state {state} is {size} bytes, over the "
                         f"{MAX_PAYLOAD_BYTES}-byte (256 KiB) quota; pass a reference (a path or "
                         "URL) to large data instead")


class _Ctx:
    """What one call to start/step carries around."""

    def __init__(self, definition: dict, root: RunState, now: float):
        self.definition = definition
        self.root = root
        self.now = now
        self.effects: list = []
        self.transitions = 0

    def log(self, code: str, description: str, **details) -> None:
        self.root.log.append({"time": iso(self.now), "code": code, "description": description,
                              "details": details})


def _machine(ctx: _Ctx, r: RunState) -> dict:
    m = ctx.definition
    for p in r.machine:
        m = m[p]
    return m


def _sdef(ctx: _Ctx, r: RunState) -> dict:
    return _machine(ctx, r)["States"][r.current]


def _where(r: RunState, ctx: _Ctx) -> str | None:
    """The state's name, prefixed by the branch path inside the run for nested machines (None
    between states)."""
    prefix = r.run_id[len(ctx.root.run_id):].lstrip("/")
    return f"{prefix}/{r.current}" if prefix else r.current


# --- public API ------------------------------------------------------------------------------------
def start(definition: Any, input: Any = None, context: dict | None = None, *,
          time: float = 0.0) -> RunState:
    """A new run of ``definition`` with ``input``, advanced as far as it goes without events.

    ``context`` holds ``flow_id``, ``run_id``, ``username`` (read as ``$._context``). The actions
    and timers the run now waits on are :func:`outstanding` (the driver starts them)."""
    definition = check(definition)
    context = dict(context or {})
    run_id = str(context.setdefault("run_id", "run"))
    rs = RunState(run_id=run_id, context=context, input=copy.deepcopy(input if input is not None else {}))
    ctx = _Ctx(definition, rs, time)
    ctx.log("FlowStarted", "The flow run started", input=copy.deepcopy(rs.input))
    _enter(rs, definition["StartAt"], rs.input, ctx)
    _drive_root(rs, ctx)
    return rs


def step(definition: Any, run_state: RunState, event: Event) -> tuple[RunState, list[Effect]]:
    """Apply ``event``: the new run state (``run_state`` is not modified) and the new effects."""
    definition = check(definition) if not isinstance(definition, dict) else definition
    rs = RunState.from_dict(run_state.to_dict())
    if rs.status in DONE:
        return rs, []
    ctx = _Ctx(definition, rs, float(getattr(event, "time", 0.0)))
    if isinstance(event, Cancel):
        _cancel_tree(rs, ctx)
        rs.status, rs.phase = ENDED, "done"
        rs.error, rs.cause = "FlowCanceled", event.reason or "the run was canceled"
        rs.output = rs.input
        ctx.log("FlowCanceled", "The flow run was canceled", reason=event.reason)
        return rs, ctx.effects
    if isinstance(event, ActionInactive):
        found = _find_action(rs, event.request_id)
        if found is not None and rs.status == ACTIVE:
            rs.status = INACTIVE
            ctx.log("ActionInactive", "An action is waiting for input",
                    state_name=_where(found, ctx), request_id=event.request_id,
                    details=copy.deepcopy(event.details))
        return rs, ctx.effects
    if isinstance(event, ActionProgress):
        found = _find_action(rs, event.request_id)
        if found is not None:
            ctx.log("ActionProgress", event.display_status or "The action is running",
                    state_name=_where(found, ctx), request_id=event.request_id,
                    details=copy.deepcopy(event.details))
        return rs, ctx.effects
    try:
        handled = _deliver(rs, event, ctx)
        if handled:
            if rs.status == INACTIVE:
                rs.status = ACTIVE
            _drive_root(rs, ctx)
    except _Runaway as e:
        _cancel_tree(rs, ctx)
        _finish_root_failed(rs, ctx, "States.Runtime", str(e))
    return rs, ctx.effects


def outstanding(run_state: RunState) -> list:
    """Every StartAction and SetTimer the run is waiting on (for a driver starting or restarting:
    re-issuing them is safe, request ids and timer ids are stable)."""
    out: list = []

    def walk(r: RunState):
        if r.status not in (ACTIVE, INACTIVE):
            return
        if r.action:
            a = r.action
            out.append(StartAction(a["request_id"], a["action_url"], a["parameters"],
                                   a["wait_time"], a["state"], a.get("run_as"),
                                   tuple(a.get("private", ()))))
            out.append(SetTimer(a["request_id"] + ":timeout", a["deadline"]))
        if r.timer:
            out.append(SetTimer(r.timer["id"], r.timer["at"]))
        for c in r.children:
            walk(c)

    walk(run_state)
    return out


# --- driving ---------------------------------------------------------------------------------------
def _drive_root(rs: RunState, ctx: _Ctx) -> None:
    try:
        _drive(rs, ctx)
    except _Runaway as e:
        _cancel_tree(rs, ctx)
        _finish_root_failed(rs, ctx, "States.Runtime", str(e))
        return
    if rs.status == SUCCEEDED:
        ctx.log("FlowSucceeded", "The flow run succeeded", output=copy.deepcopy(rs.output))
    elif rs.status == FAILED:
        ctx.log("FlowFailed", "The flow run failed", error=rs.error, cause=rs.cause)


def _finish_root_failed(rs, ctx, error, cause):
    rs.status, rs.phase, rs.error, rs.cause = FAILED, "done", error, cause
    rs.output = rs.input
    ctx.log("FlowFailed", "The flow run failed", error=error, cause=cause)


def _drive(r: RunState, ctx: _Ctx) -> None:
    """Execute states until the machine waits or ends."""
    while r.status in (ACTIVE, INACTIVE) and r.phase == "ready":
        ctx.transitions += 1
        if ctx.transitions > MAX_TRANSITIONS:
            raise _Runaway(f"more than {MAX_TRANSITIONS} state transitions without waiting "
                           "(an endless loop?)")
        s = _sdef(ctx, r)
        t = s["Type"]
        if t != "Action":  # Action logs ActionStarted itself, with its parameters
            ctx.log(f"{t}Started", f"State {r.current} ({t}) started",
                    state_name=_where(r, ctx), state_type=t, input=copy.deepcopy(r.input))
        try:
            _check_size(r.input, "input", r.current)
            getattr(_Exec, t)(r, s, ctx)
        except StateError as e:
            _on_error(r, s, e.error, e.cause, ctx)
        except (PathError, PathNotFound, PathWriteError, ExpressionError) as e:
            _on_error(r, s, _runtime(e).error, str(e), ctx)


def _enter(r: RunState, name: str, data: Any, ctx: _Ctx) -> None:
    r.current, r.input, r.phase = name, data, "ready"
    r.seq += 1
    r.attempt, r.retries = 0, {}
    r.action = r.timer = None
    r.children = []


def _complete(r: RunState, s: dict, output: Any, ctx: _Ctx, **details) -> None:
    """The current state finished with ``output`` (before OutputPath): go on or end."""
    try:
        output = paths.select(output, s.get("OutputPath", "$"), ctx.root.context)
    except (PathError, PathNotFound) as e:
        _on_error(r, s, "States.Runtime", str(e), ctx)
        return
    try:
        _check_size(output, "output", r.current)
    except StateError as e:
        _on_error(r, s, e.error, e.cause, ctx)
        return
    t = s["Type"]
    ctx.log(f"{t}Completed", f"State {r.current} ({t}) completed", state_name=_where(r, ctx),
            state_type=t, output=copy.deepcopy(output), **details)
    if s.get("End") is True or t == "Succeed":
        r.status, r.phase, r.output = SUCCEEDED, "done", output
        return
    _enter(r, s["Next"], output, ctx)


def _on_error(r: RunState, s: dict, error: str, cause: str | None, ctx: _Ctx) -> None:
    """Route a state's error through its Retry, then its Catch, else fail the machine."""
    r.action = r.timer = None
    _cancel_children(r, ctx)
    t = s.get("Type")

    def matches(names: list[str]) -> bool:
        return error in names or ("States.ALL" in names and error not in NOT_CAUGHT_BY_ALL)

    for i, retrier in enumerate(s.get("Retry", [])):
        if not matches(retrier["ErrorEquals"]):
            continue
        used = r.retries.get(str(i), 0)
        if used >= retrier.get("MaxAttempts", 3):
            break
        delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** used
        if "MaxDelaySeconds" in retrier:
            delay = min(delay, retrier["MaxDelaySeconds"])
        r.retries[str(i)] = used + 1
        r.attempt += 1
        ctx.log(f"{t}Failed", f"State {r.current} ({t}) failed; retrying in {delay:g} s",
                state_name=_where(r, ctx), error=error, cause=cause, retry_in=delay,
                attempt=r.attempt)
        r.timer = {"id": f"{_rid(r)}:retry", "at": ctx.now + delay, "kind": "retry"}
        r.phase = "waiting"
        ctx.effects.append(SetTimer(r.timer["id"], r.timer["at"]))
        return
    for catcher in s.get("Catch", []):
        if not matches(catcher["ErrorEquals"]):
            continue
        ctx.log(f"{t}Failed", f"State {r.current} ({t}) failed; caught, going to "
                f"{catcher['Next']}", state_name=_where(r, ctx), error=error, cause=cause)
        try:
            data = paths.put(r.input, catcher.get("ResultPath", "$"),
                             {"Error": error, "Cause": cause})
        except PathWriteError as e:
            _fail(r, "States.ResultPathMatchFailure", str(e), ctx)
            return
        _enter(r, catcher["Next"], data, ctx)
        return
    if t is not None and t != "Fail":
        ctx.log(f"{t}Failed", f"State {r.current} ({t}) failed", state_name=_where(r, ctx),
                error=error, cause=cause)
    _fail(r, error, cause, ctx)


def _fail(r: RunState, error: str | None, cause: str | None, ctx: _Ctx) -> None:
    r.status, r.phase, r.error, r.cause, r.output = FAILED, "done", error, cause, r.input


def _rid(r: RunState) -> str:
    return f"{r.run_id}/{r.current}/{r.seq}/{r.attempt}"


# --- state types ---------------------------------------------------------------------------------
def _effective_input(r: RunState, s: dict, ctx: _Ctx) -> Any:
    data = paths.select(r.input, s.get("InputPath", "$"), ctx.root.context)
    if "Parameters" in s:
        data = parameters.render(s["Parameters"], data, ctx.root.context)
    _check_size(data, "input (after InputPath and Parameters)", r.current)
    return data


class _Exec:
    @staticmethod
    def Pass(r, s, ctx):
        data = _effective_input(r, s, ctx)
        result = copy.deepcopy(s["Result"]) if "Result" in s else data
        _complete(r, s, paths.put(r.input, s.get("ResultPath", "$"), result), ctx)

    @staticmethod
    def ExpressionEval(r, s, ctx):
        result = parameters.render(s["Parameters"], r.input, ctx.root.context)
        _complete(r, s, paths.put(r.input, s.get("ResultPath", "$"), result), ctx)

    @staticmethod
    def Succeed(r, s, ctx):
        _complete(r, s, paths.select(r.input, s.get("InputPath", "$"), ctx.root.context), ctx)

    @staticmethod
    def Fail(r, s, ctx):
        ctxd = ctx.root.context
        # ASL (both dialects): Error and Cause are optional; without them the run fails with
        # no error name, as Step Functions records it.
        error = (s["Error"] if "Error" in s else
                 _str(paths.get(r.input, s["ErrorPath"], ctxd)) if "ErrorPath" in s else None)
        cause = (s["Cause"] if "Cause" in s else
                 _str(paths.get(r.input, s["CausePath"], ctxd)) if "CausePath" in s else None)
        ctx.log("FailCompleted", f"State {r.current} (Fail) failed the flow",
                state_name=_where(r, ctx), state_type="Fail", error=error, cause=cause)
        _fail(r, error, cause, ctx)

    @staticmethod
    def Choice(r, s, ctx):
        data = paths.select(r.input, s.get("InputPath", "$"), ctx.root.context)
        for rule in s["Choices"]:
            if _rule(rule, data, ctx.root.context):
                target = rule["Next"]
                break
        else:
            if "Default" not in s:
                raise StateError("States.NoChoiceMatched",
                                 f"no choice rule of {r.current} matched and it has no Default")
            target = s["Default"]
        s = dict(s, Next=target)
        _complete(r, s, data, ctx, next=target)

    @staticmethod
    def Wait(r, s, ctx):
        ctxd = ctx.root.context
        if "Seconds" in s:
            at = ctx.now + s["Seconds"]
        elif "SecondsPath" in s:
            secs = paths.get(r.input, s["SecondsPath"], ctxd)
            # ASL (both dialects): SecondsPath must select a non-negative integer (AWS: "an
            # integer value"); 1.5 fails the run as Step Functions does.
            if isinstance(secs, bool) or not isinstance(secs, int) or secs < 0:
                raise StateError("States.Runtime",
                                 f"SecondsPath {s['SecondsPath']} is {secs!r}, not an integer "
                                 ">= 0 (seconds)")
            at = ctx.now + secs
        else:
            ts = s["Timestamp"] if "Timestamp" in s else paths.get(r.input, s["TimestampPath"], ctxd)
            t = parse_timestamp(ts)
            if t is None:
                raise StateError("States.Runtime", f"{ts!r} is not an RFC 3339 timestamp")
            at = t.timestamp()
        if at <= ctx.now:
            _finish_wait(r, s, ctx)
            return
        r.timer = {"id": f"{_rid(r)}:wait", "at": at, "kind": "wait"}
        r.phase = "waiting"
        ctx.effects.append(SetTimer(r.timer["id"], at))

    @staticmethod
    def Action(r, s, ctx):
        params = _effective_input(r, s, ctx)
        params, private = paths.split_private(params)
        rid = _rid(r)
        wait = s.get("WaitTime", DEFAULT_WAIT_TIME)
        r.action = {"request_id": rid, "action_url": s["ActionUrl"], "parameters": params,
                    "private": private, "wait_time": wait, "state": _where(r, ctx),
                    "run_as": s.get("RunAs"), "deadline": ctx.now + wait,
                    "started_at": ctx.now}
        r.phase = "waiting"
        ctx.log("ActionStarted", f"Action {r.current} started", state_name=_where(r, ctx),
                state_type="Action", action_url=s["ActionUrl"], request_id=rid,
                parameters=paths.redact(copy.deepcopy(params), private), run_as=s.get("RunAs"))
        ctx.effects.append(StartAction(rid, s["ActionUrl"], copy.deepcopy(params), wait,
                                       _where(r, ctx), s.get("RunAs"), tuple(private)))
        ctx.effects.append(SetTimer(rid + ":timeout", ctx.now + wait))

    @staticmethod
    def Parallel(r, s, ctx):
        data = _effective_input(r, s, ctx)
        base = r.machine + ["States", r.current]
        r.children = [
            RunState(run_id=f"{r.run_id}/{r.current}.{r.seq}.{r.attempt}/{i}",
                     machine=base + ["Branches", i], input=copy.deepcopy(data), current=None)
            for i in range(len(s["Branches"]))]
        r.map_max = 0
        _start_children(r, s, ctx)

    @staticmethod
    def Map(r, s, ctx):
        data = paths.select(r.input, s.get("InputPath", "$"), ctx.root.context)
        items = paths.get(data, s.get("ItemsPath", "$"), ctx.root.context)
        if not isinstance(items, list):
            raise StateError("States.Runtime",
                             f"ItemsPath {s.get('ItemsPath', '$')} is not an array")
        selector = s.get("ItemSelector", s.get("Parameters"))
        proc = "ItemProcessor" if "ItemProcessor" in s else "Iterator"
        base = r.machine + ["States", r.current, proc]
        r.children = []
        for i, item in enumerate(items):
            if selector is not None:
                mctx = dict(ctx.root.context, Map={"Item": {"Index": i, "Value": item}})
                item = parameters.render(selector, data, mctx)
            r.children.append(RunState(run_id=f"{r.run_id}/{r.current}.{r.seq}.{r.attempt}/{i}",
                                       machine=base, input=copy.deepcopy(item), current=None,
                                       status=NOT_STARTED))
        r.map_max = s.get("MaxConcurrency", 0)
        _start_children(r, s, ctx)


def _str(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _finish_wait(r, s, ctx):
    r.timer = None
    _complete(r, s, paths.select(r.input, s.get("InputPath", "$"), ctx.root.context), ctx)


def _finish_action(r: RunState, s: dict, result: Any, ctx: _Ctx, **details) -> None:
    r.action = None
    try:
        if "ResultSelector" in s:
            result = parameters.render(s["ResultSelector"], result, ctx.root.context)
        out = paths.put(r.input, s.get("ResultPath", "$"), result)
    except (PathError, PathNotFound, PathWriteError, ExpressionError) as e:
        _on_error(r, s, _runtime(e).error, str(e), ctx)
        return
    _complete(r, s, out, ctx, **details)


# --- children (Parallel, Map) ----------------------------------------------------------------------
def _start_children(r: RunState, s: dict, ctx: _Ctx) -> None:
    r.phase = "waiting"
    running = sum(1 for c in r.children if c.status in (ACTIVE, INACTIVE) and c.current)
    for c in r.children:
        if c.current is not None or c.status in DONE:
            continue
        if r.map_max and running >= r.map_max:
            break
        c.status = ACTIVE
        _enter(c, _machine(ctx, c)["StartAt"], c.input, ctx)
        _drive(c, ctx)
        if c.status in (ACTIVE, INACTIVE):
            running += 1
        if c.status == FAILED:
            break
    _check_children(r, s, ctx)


def _check_children(r: RunState, s: dict, ctx: _Ctx) -> None:
    failed = next((c for c in r.children if c.status == FAILED), None)
    if failed is not None:
        _on_error(r, s, failed.error, failed.cause, ctx)
        return
    if all(c.status == SUCCEEDED for c in r.children):
        results = [c.output for c in r.children]
        r.children = []
        _finish_action(r, s, results, ctx)
        return
    if any(c.status == NOT_STARTED for c in r.children) and not any(
            c.status in (ACTIVE, INACTIVE) for c in r.children):
        _start_children(r, s, ctx)
    elif any(c.status == NOT_STARTED for c in r.children):
        running = sum(1 for c in r.children if c.status in (ACTIVE, INACTIVE))
        if not r.map_max or running < r.map_max:
            _start_children(r, s, ctx)


def _cancel_children(r: RunState, ctx: _Ctx) -> None:
    for c in r.children:
        _cancel_tree(c, ctx)
    r.children = []


def _cancel_tree(r: RunState, ctx: _Ctx) -> None:
    if r.action:
        ctx.effects.append(CancelAction(r.action["request_id"], r.action["action_url"]))
        r.action = None
    r.timer = None
    for c in r.children:
        _cancel_tree(c, ctx)
    if r.status not in DONE:
        r.status = ENDED
        r.phase = "done"


# --- events ----------------------------------------------------------------------------------------
def _find_action(r: RunState, request_id: str) -> RunState | None:
    if r.action and r.action["request_id"] == request_id:
        return r
    for c in r.children:
        f = _find_action(c, request_id)
        if f is not None:
            return f
    return None


def _deliver(r: RunState, event, ctx: _Ctx) -> bool:
    """Hand ``event`` to the (sub)run waiting for it; True if one was."""
    if r.status not in (ACTIVE, INACTIVE) or r.phase != "waiting":
        return False
    s = _sdef(ctx, r)
    a = r.action
    if a is not None:
        rid = a["request_id"]
        if isinstance(event, Timer) and event.timer_id == rid + ":timeout":
            event = ActionTimeout(rid, event.time)
        if getattr(event, "request_id", None) == rid:
            _action_event(r, s, a, event, ctx)
            _drive(r, ctx)
            return True
    if r.timer is not None and isinstance(event, Timer) and event.timer_id == r.timer["id"]:
        kind = r.timer["kind"]
        r.timer = None
        if kind == "wait":
            _finish_wait(r, s, ctx)
        else:  # retry: run the state again
            r.phase = "ready"
        _drive(r, ctx)
        return True
    for c in r.children:
        if _deliver(c, event, ctx):
            _check_children(r, s, ctx)
            _drive(r, ctx)
            return True
    return False


def _action_event(r: RunState, s: dict, a: dict, event, ctx: _Ctx) -> None:
    """``event`` for the action ``a`` that ``r`` waits on."""
    where = _where(r, ctx)
    if isinstance(event, ActionCompleted):
        result = {"action_id": a["request_id"], "status": SUCCEEDED,
                  "details": copy.deepcopy(event.details)}
        _finish_action(r, s, result, ctx, request_id=a["request_id"])
    elif isinstance(event, ActionFailed):
        ctx.log("ActionFailed", f"Action {r.current} failed", state_name=where,
                request_id=a["request_id"], details=copy.deepcopy(event.details),
                cause=event.cause)
        if s.get("ExceptionOnActionFailure", True):
            cause = event.cause or _str(event.details)
            _on_error(r, s, "ActionFailedException", cause, ctx)
        else:
            result = {"action_id": a["request_id"], "status": FAILED,
                      "details": copy.deepcopy(event.details)}
            _finish_action(r, s, result, ctx, request_id=a["request_id"])
    elif isinstance(event, ActionTimeout):
        ctx.effects.append(CancelAction(a["request_id"], a["action_url"]))
        _on_error(r, s, "ActionTimeout",
                  f"the action did not finish within WaitTime ({a['wait_time']} s)", ctx)
    elif isinstance(event, ActionUnableToRun):
        _on_error(r, s, "ActionUnableToRun", event.cause or "the action could not be started", ctx)


# --- Choice rules ----------------------------------------------------------------------------------
def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _string_matches(value: str, pattern: str) -> bool:
    rx, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            rx += re.escape(pattern[i + 1])
            i += 2
            continue
        rx += ".*" if c == "*" else re.escape(c)
        i += 1
    return re.fullmatch(rx, value, re.S) is not None


_CMP = {"Equals": lambda a, b: a == b, "LessThan": lambda a, b: a < b,
        "GreaterThan": lambda a, b: a > b, "LessThanEquals": lambda a, b: a <= b,
        "GreaterThanEquals": lambda a, b: a >= b}


def _rule(rule: dict, data: Any, context: dict) -> bool:
    if "And" in rule:
        return all(_rule(x, data, context) for x in rule["And"])
    if "Or" in rule:
        return any(_rule(x, data, context) for x in rule["Or"])
    if "Not" in rule:
        return not _rule(rule["Not"], data, context)
    op = next(k for k in rule if k not in ("Variable", "Next", "Comment"))
    operand = rule[op]
    var = rule["Variable"]
    if op == "IsPresent":
        return paths.exists(data, var, context) == operand
    try:
        value = paths.get(data, var, context)
    except PathNotFound as e:
        raise StateError("States.Runtime", f"choice rule Variable: {e}") from None
    if op.startswith("Is"):
        test = {"IsNull": value is None, "IsNumeric": _num(value),
                "IsString": isinstance(value, str), "IsBoolean": isinstance(value, bool),
                "IsTimestamp": parse_timestamp(value) is not None}[op]
        return test == operand
    if op.endswith("Path"):
        op = op[:-4]
        try:
            operand = paths.get(data, operand, context)
        except PathNotFound as e:
            raise StateError("States.Runtime", f"choice rule {op}Path: {e}") from None
    if op == "StringMatches":
        return isinstance(value, str) and _string_matches(value, operand)
    for kind in ("String", "Numeric", "Boolean", "Timestamp"):
        if op.startswith(kind):
            cmp = _CMP[op[len(kind):]]
            if kind == "String":
                return isinstance(value, str) and isinstance(operand, str) and cmp(value, operand)
            if kind == "Numeric":
                return _num(value) and _num(operand) and cmp(value, operand)
            if kind == "Boolean":
                return isinstance(value, bool) and isinstance(operand, bool) and value == operand
            a, b = parse_timestamp(value), parse_timestamp(operand)
            return a is not None and b is not None and cmp(a, b)
    raise StateError("States.Runtime", f"unknown choice operator {op}")  # validate() prevents it
