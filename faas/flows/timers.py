"""Timers: once or recurring runs of a flow, a function or a transfer (Globus Timers' shape).

A timer is a document in the store (``timers/<id>/timer.json``). The runner
(``faas flows serve``) fires it: every tick starts a run whose id is derived from the timer id
and the tick's scheduled time, so a tick fired twice (a runner killed between starting the run
and recording the tick) finds its run already there and starts nothing new: each tick fires at
most once. Function and transfer timers run a one-action flow (the compute or transfer action),
so every kind is watched the same way (``faas flows status``/``log``).

* A tick that comes while the timer's previous run is still going is skipped and recorded.
* Ticks missed while no runner was up are recorded as ``missed``; ``run_missed: once`` (the
  default) runs one of them (the latest) when the runner is back, ``skip`` runs none.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from faas.config import resolve
from faas.exceptions import FaasError
from faas.flows import access, store_layout
from faas.flows.client import DONE, FlowNotFound, iso, parse_time
from faas.store import KeyNotFound, open_store
from faas.store.base import Store

log = logging.getLogger("faas.flows.timers")

COMPUTE_URL = "https://compute.actions.globus.org/fxap"
TRANSFER_URL = "https://actions.automate.globus.org/transfer/transfer"
GRACE = 60.0          # a tick later than this (runner down) counts as missed
HISTORY = 50          # tick records kept on the timer document
TIMER_LIMIT = 16 << 20  # bytes of a timer document read on a file store


class TimerNotFound(FaasError, LookupError):
    code = "TimerNotFound"


def parse_interval(value: Any) -> float | None:
    """Seconds from ``3600``, ``"3600"``, ``"1h"``, ``"30m"``, ``"1h30m"``, ``"2d"``, ``"45s"``."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    else:
        s = str(value).strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", s):
            secs = float(s)
        else:
            parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", s)
            if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([dhms])", "", s).strip():
                raise ValueError(f"interval {value!r}: expected seconds or a duration like "
                                 "1h, 30m, 1h30m, 2d, 45s")
            unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}
            secs = sum(float(n) * unit[u] for n, u in parts)
    if secs <= 0:
        raise ValueError(f"interval {value!r}: must be more than 0 seconds")
    return secs


def scheduled_after(timer: dict, t: float, inclusive: bool = True) -> float | None:
    """The first scheduled time at or after ``t`` (or strictly after), within the schedule's
    end; None when there is none."""
    sch = timer["schedule"]
    start, interval = sch["start_epoch"], sch.get("interval")
    if interval is None:
        nxt = start if (start >= t if inclusive else start > t) else None
    elif t <= start:
        nxt = start if (inclusive or t < start) else start + interval
    else:
        k = int((t - start) // interval)
        nxt = start + k * interval
        while nxt < t or (not inclusive and nxt == t):
            nxt += interval
    stop = sch.get("stop_after_date_epoch")
    if nxt is not None and stop is not None and nxt > stop:
        return None
    return nxt


def tick_run_id(timer_id: str, at: float) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"faas-timer:{timer_id}:{at:.3f}"))


def inline_flow(timer: dict) -> dict:
    """The flow a timer starts: the named flow, or a one-action flow for function/transfer."""
    if timer["kind"] == "function":
        params = {"endpoint": timer["endpoint"], "function": timer["function_id"],
                  "args": timer.get("args") or [], "kwargs": timer.get("kwargs") or {}}
        url = COMPUTE_URL
    else:
        (src_base, src_path), (dst_base, dst_path) = (_split(timer["source"]),
                                                      _split(timer["destination"]))
        rec = timer.get("recursive")
        params = {"source_endpoint_id": src_base, "destination_endpoint_id": dst_base,
                  "transfer_items": [{"source_path": src_path, "destination_path": dst_path,
                                      "recursive": bool(timer["source"].endswith("/")
                                                        if rec is None else rec)}],
                  **(timer.get("transfer_options") or {})}
        url = TRANSFER_URL
    definition = {"Comment": f"timer {timer['id']}", "StartAt": "Run", "States": {
        "Run": {"Type": "Action", "ActionUrl": url, "Parameters": params, "ResultPath": "$.result",
                "WaitTime": int(timer.get("wait_time", 86400)), "End": True}}}
    return {"id": f"timer-{timer['id']}", "version": 1, "title": timer["name"], "inline": True,
            "definition": definition, "input_schema": None, "owner": timer["owner"]}


def transfer_options(**given: Any) -> dict:
    """The transfer action's options a transfer timer passes on (Globus Timers: "all transfer
    and sync options"): those given (not None), checked as the action checks them, so a bad one
    is a ValueError naming it when the timer is made, not a failed run at each tick."""
    from faas.flows.actions import transfer
    from faas.flows.actions.base import ActionUnableToRun
    out = {k: v for k, v in given.items() if v is not None}
    try:
        if "sync_level" in out:
            out["sync_level"] = transfer.sync_level(out["sync_level"])
        if "filter_rules" in out:
            out["filter_rules"] = [{k: v for k, v in r.items() if v is not None}
                                   for r in transfer.filter_rules(list(out["filter_rules"]))]
        if "deadline" in out:
            transfer.deadline(out["deadline"])
        transfer._label(out.get("label"))
    except ActionUnableToRun as e:
        raise ValueError(str(e)) from None
    for k in ("verify_checksum", "preserve_timestamp", "delete_destination_extra",
              "skip_source_errors", "encrypt_data", "delete_source"):
        if k in out and not isinstance(out[k], bool):
            raise ValueError(f"{k}: expected True or False, got {out[k]!r}")
    return out


def _split(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``s3://bucket``, ``/a/b``); ``file:///a/b`` -> (``file://``, ``/a/b``)."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/]*)(/.*)?$", url)
    if not m:
        raise ValueError(f"transfer location {url!r}: expected a URL like file:///path or "
                         "s3://bucket/path")
    return m.group(1), m.group(2) or "/"


class TimerFirer:
    """Fires due ticks (used by the runner). ``start_run(flow, input, user, run_id, label,
    timer_id)`` starts a run; ``run_status(run_id)`` says whether the last one is still going."""

    RESCAN = 5.0

    def __init__(self, store: Store, start_run: Callable,
                 run_status: Callable[[str], str | None]) -> None:
        self.store, self.start_run, self.run_status = store, start_run, run_status
        self.next: dict[str, float] = {}
        self._scanned = -1e18

    def _flow(self, flow_id: str) -> dict | None:
        return store_layout.get_json(self.store, store_layout.flow_key(flow_id), None)

    def _load(self, tid: str) -> dict | None:
        """The timer to fire. A timer's folder is its owner's, so on a file store its document
        counts only if the runner wrote it (after firing it) or the owner it names did: a user
        who writes ``"owner": "alice"`` into a timer must not start runs as alice."""
        key = store_layout.timer_key(tid)
        try:
            data, uid = access.read_with_writer(self.store, key, TIMER_LIMIT)
            timer = json.loads(data)
        except KeyNotFound:
            return None
        except (access.UntrustedFile, ValueError) as e:
            log.warning("timer %s is not fired: its document cannot be trusted (%s)", tid, e)
            return None
        if not isinstance(timer, dict) or timer.get("id") != tid:
            log.warning("timer %s is not fired: its document is not that timer's", tid)
            return None
        owner = timer.get("owner") or ""
        if not access.written_by_runner_or(uid, owner):
            log.warning("timer %s is not fired: it names owner %s but was written by %s", tid,
                        owner, access.identity_of_uid(uid or 0))
            return None
        return timer

    def fire_due(self, now: float) -> list[dict]:
        """Fire every tick due at ``now``; return the tick records made. Users write the timers'
        folders, so each timer is read, checked and fired on its own: one that cannot be (a
        document that is no timer, one that makes firing fail) is logged and never keeps the
        others from firing."""
        if now - self._scanned >= self.RESCAN or now < self._scanned:
            self._scanned = now
            self.next = {}
            for key in self.store.list(store_layout.TIMERS):
                tid = key[len(store_layout.TIMERS):-len("/timer.json")]
                if not key.endswith("/timer.json") or "/" in tid:
                    continue
                t = self._load(tid)
                at = t.get("next_run_epoch") if t else None
                if t and t.get("status") == "active" and isinstance(at, (int, float)):
                    self.next[tid] = float(at)
        out = []
        for tid, at in list(self.next.items()):
            if at > now:
                continue
            try:
                out.extend(self._fire(tid, now))
            except Exception:  # noqa: BLE001 - logged; the others fire, this one at the next scan
                log.exception("timer %s: firing failed", tid)
                self.next.pop(tid, None)
        return out

    def _fire(self, tid: str, now: float) -> list[dict]:
        timer = self._load(tid)
        if not timer or timer.get("status") != "active" or timer.get("next_run_epoch") is None:
            self.next.pop(tid, None)
            return []
        recs = fire(timer, now, self.start_run, self.run_status, self._flow)
        missed = sum(1 for r in recs if r["result"] == "missed")
        if missed:
            log.warning("timer %s (%s): %d tick(s) missed while no runner was up; "
                        "run_missed=%s", tid, timer.get("name"), missed,
                        timer.get("run_missed", "once"))
        store_layout.put_json(self.store, store_layout.timer_key(tid), timer)
        for r in recs:
            if r.get("fired"):
                self.store.put(store_layout.tick_key(tid, r["scheduled_epoch"]), r["run_id"].encode())
        if timer.get("status") == "active" and timer.get("next_run_epoch") is not None:
            self.next[tid] = timer["next_run_epoch"]
        else:
            self.next.pop(tid, None)
        return recs


def fire(timer: dict, now: float, start_run: Callable, run_status: Callable,
         load_flow: Callable[[str], dict | None]) -> list[dict]:
    """Apply the ticks due at ``now`` to ``timer`` (modified in place); return tick records."""
    due = []
    t = timer.get("next_run_epoch")
    while t is not None and t <= now:
        due.append(t)
        t = scheduled_after(timer, t, inclusive=False)
    if not due:
        return []
    records = []
    late = [d for d in due if now - d > GRACE]
    on_time = [d for d in due if now - d <= GRACE]
    for d in late:
        records.append({"scheduled": iso(d), "scheduled_epoch": d, "result": "missed",
                        "reason": "no runner was up at its time"})
        timer["missed"] = timer.get("missed", 0) + 1
    to_fire = on_time[-1:] or (late[-1:] if timer.get("run_missed", "once") == "once" else [])
    for d in to_fire:
        records.append(_fire_one(timer, d, now, start_run, run_status, load_flow))
    timer["next_run_epoch"] = t
    timer["next_run"] = iso(t) if t is not None else None
    stop_runs = timer["schedule"].get("stop_after_runs")
    if t is None or (stop_runs is not None and timer.get("runs", 0) >= stop_runs):
        timer["status"], timer["next_run"], timer["next_run_epoch"] = "ended", None, None
    timer["history"] = (timer.get("history", []) + [
        {k: v for k, v in r.items() if k != "scheduled_epoch"} for r in records])[-HISTORY:]
    return records


def _fire_one(timer: dict, at: float, now: float, start_run, run_status, load_flow) -> dict:
    rec = {"scheduled": iso(at), "scheduled_epoch": at, "time": iso(now)}
    last = timer.get("last_run_id")
    if last and run_status(last) not in (None, *DONE):
        timer["skipped"] = timer.get("skipped", 0) + 1
        return dict(rec, result="skipped", reason=f"the previous run {last} is still going")
    run_id = tick_run_id(timer["id"], at)
    try:
        flow = timer_flow(timer, load_flow)
        doc = start_run(flow, timer.get("input") or {}, timer["owner"], run_id,
                        timer.get("name"), timer["id"])
    except Exception as e:  # noqa: BLE001 - recorded on the timer; the next tick tries again
        timer["errors"] = timer.get("errors", 0) + 1
        timer["last_error"] = f"{type(e).__name__}: {e}"
        return dict(rec, result="error", error=timer["last_error"])
    timer["runs"] = timer.get("runs", 0) + 1
    timer["last_ran_at"] = iso(now)
    timer["last_run_id"] = doc["run_id"]
    return dict(rec, result="started", run_id=doc["run_id"], fired=True)


def timer_flow(timer: dict, load_flow: Callable[[str], dict | None]) -> dict:
    if timer["kind"] != "flow":
        return inline_flow(timer)
    flow = load_flow(timer["flow_id"])
    if flow is None:
        raise FlowNotFound(f"flow {timer['flow_id']} no longer exists")
    return flow


class TimersClient:
    """Create and manage timers in a store (the runner fires them)."""

    def __init__(self, store: str | None = None, profile: str | None = None, *,
                 identity: str | None = None, clock: Callable[[], float] = time.time):
        self.settings = resolve(profile, store=store)
        self.store = open_store(self.settings.store_url)
        self.identity = access.normalize(identity) if identity else access.current_identity()
        self.clock = clock

    def create(self, flow_id: str | None = None, input: Any = None, *,
               function_id: str | None = None, endpoint: str | None = None,
               args: Iterable = (), kwargs: dict | None = None,
               transfer: tuple[str, str] | None = None, name: str | None = None,
               start: Any = None, interval: Any = None, stop_after_date: Any = None,
               stop_after_runs: int | None = None, run_missed: str = "once",
               recursive: bool | None = None, sync_level: int | str | None = None,
               verify_checksum: bool | None = None, preserve_timestamp: bool | None = None,
               delete_destination_extra: bool | None = None,
               skip_source_errors: bool | None = None, filter_rules: list | None = None,
               label: str | None = None, deadline: str | None = None,
               encrypt_data: bool | None = None, delete_source: bool | None = None) -> dict:
        """A timer for a flow (``flow_id``, ``input``), a function (``function_id``,
        ``endpoint``, ``args``, ``kwargs``) or a transfer (``transfer=(src URL, dst URL)`` and
        the transfer action's options: ``recursive`` (default: the source ends with ``/``),
        ``sync_level`` (0-3 or exists/size/mtime/checksum), ``verify_checksum``,
        ``preserve_timestamp``, ``delete_destination_extra``, ``skip_source_errors``,
        ``filter_rules`` ([{method, type, name}]), ``label``, ``deadline``...)."""
        options = transfer_options(
            sync_level=sync_level, verify_checksum=verify_checksum,
            preserve_timestamp=preserve_timestamp, delete_destination_extra=delete_destination_extra,
            skip_source_errors=skip_source_errors, filter_rules=filter_rules, label=label,
            deadline=deadline, encrypt_data=encrypt_data, delete_source=delete_source)
        if (options or recursive is not None) and not transfer:
            raise ValueError(f"{', '.join(sorted(options) or ['recursive'])}: transfer options "
                             f"need transfer=(src, dst)")
        kinds = [k for k, v in (("flow", flow_id), ("function", function_id),
                                ("transfer", transfer)) if v]
        if len(kinds) != 1:
            raise ValueError("a timer runs exactly one of: a flow (flow_id), a function "
                             "(function_id + endpoint) or a transfer (transfer=(src, dst))")
        if run_missed not in ("once", "skip"):
            raise ValueError(f"run_missed {run_missed!r}: expected 'once' or 'skip'")
        kind = kinds[0]
        now = self.clock()
        start_t = parse_time(start) if start is not None else now
        secs = parse_interval(interval)
        stop_t = parse_time(stop_after_date) if stop_after_date is not None else None
        if stop_after_runs is not None and int(stop_after_runs) < 1:
            raise ValueError("stop_after_runs: must be at least 1")
        tid = store_layout.new_id()
        timer: dict[str, Any] = {"id": tid, "name": name or f"{kind} timer", "kind": kind, "owner": self.identity,
                 "schedule": {"start": iso(start_t), "start_epoch": start_t, "interval": secs,
                              "stop_after_date": iso(stop_t) if stop_t else None,
                              "stop_after_date_epoch": stop_t,
                              "stop_after_runs": int(stop_after_runs) if stop_after_runs else None},
                 "status": "active", "run_missed": run_missed, "created_at": iso(now),
                 "last_ran_at": None, "last_run_id": None, "runs": 0, "errors": 0, "skipped": 0,
                 "missed": 0, "history": []}
        if kind == "flow" and flow_id:
            flow = store_layout.get_json(self.store, store_layout.flow_key(flow_id), None)
            if flow is None:
                raise FlowNotFound(f"no flow {flow_id!r} in {self.store.url}")
            access.require(access.can_start(flow, self.identity), self.identity,
                           f"start flow {flow_id}")
            from faas.flows import schema
            schema.require_valid(flow.get("input_schema"), input if input is not None else {})
            timer.update(flow_id=flow_id, input=input if input is not None else {})
        elif kind == "function":
            if not endpoint:
                raise ValueError("a function timer needs endpoint= (the endpoint to run on)")
            timer.update(function_id=function_id, endpoint=endpoint, args=list(args),
                         kwargs=dict(kwargs or {}))
        elif transfer:   # the one kind left
            src, dst = transfer
            _split(src), _split(dst)
            if recursive is not None and not isinstance(recursive, bool):
                raise ValueError(f"recursive: expected True or False, got {recursive!r}")
            timer.update(source=src, destination=dst, recursive=recursive,
                         transfer_options=options)
        nxt = scheduled_after(timer, start_t)
        timer["next_run_epoch"], timer["next_run"] = nxt, iso(nxt) if nxt is not None else None
        if nxt is None:
            timer["status"] = "ended"
        store_layout.put_json(self.store, store_layout.timer_key(tid), timer)
        self._runner_up()
        return _public(timer)

    def _get(self, timer_id: str) -> dict:
        timer = store_layout.get_json(self.store, store_layout.timer_key(timer_id), None)
        if timer is None:
            raise TimerNotFound(f"no timer {timer_id!r} in {self.store.url}")
        access.require(access.normalize(timer["owner"]) == self.identity, self.identity,
                       f"see or change timer {timer_id} (it belongs to {timer['owner']})")
        return timer

    def list(self) -> list[dict]:
        out = []
        for key in self.store.list(store_layout.TIMERS):
            if key.endswith("/timer.json"):
                t = store_layout.get_json(self.store, key, None)
                if t and access.normalize(t["owner"]) == self.identity:
                    out.append(_public(t))
        return sorted(out, key=lambda t: t["created_at"])

    def get(self, timer_id: str) -> dict:
        return _public(self._get(timer_id))

    def pause(self, timer_id: str) -> dict:
        timer = self._get(timer_id)
        if timer["status"] == "active":
            timer["status"] = "paused"
            store_layout.put_json(self.store, store_layout.timer_key(timer_id), timer)
        return _public(timer)

    def resume(self, timer_id: str) -> dict:
        """Resume a paused timer from its next scheduled time (ticks during the pause are not
        run)."""
        timer = self._get(timer_id)
        if timer["status"] == "paused":
            nxt = scheduled_after(timer, max(self.clock(), timer.get("next_run_epoch") or 0))
            timer["next_run_epoch"], timer["next_run"] = nxt, iso(nxt) if nxt else None
            timer["status"] = "active" if nxt is not None else "ended"
            store_layout.put_json(self.store, store_layout.timer_key(timer_id), timer)
            self._runner_up()
        return _public(timer)

    def _runner_up(self) -> None:
        """The runner fires timers: on the embedded store, start one if none runs."""
        from faas.flows.control import ensure_runner
        ensure_runner(self.settings)

    def delete(self, timer_id: str) -> None:
        self._get(timer_id)
        for key in list(self.store.list(f"{store_layout.TIMERS}{timer_id}/")):
            self.store.delete(key)


def _public(timer: dict) -> dict:
    out = {k: v for k, v in timer.items() if not k.endswith("_epoch")}
    out["schedule"] = {k: v for k, v in timer["schedule"].items() if not k.endswith("_epoch")}
    return out
