"""``FlowsClient``: deploy flows, start and watch runs. Everything lives in the store (see
:mod:`faas.flows.store_layout`); the runner (``faas flows serve``) drives runs from there.

The client checks access and input itself (fast, clear errors) and the runner checks both again
when it takes a command, so a client that skips the checks starts nothing it may not.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from faas.config import resolve
from faas.exceptions import FaasError
from faas.flows import access, schema
from faas.flows import store_layout as L
from faas.flows.control import RUNNER_CHECK_EVERY, ensure_runner
from faas.flows.definition import DefinitionError, Problem, load, validate
from faas.flows.interpreter import ACTIVE, ENDED, FAILED, INACTIVE, SUCCEEDED
from faas.flows.times import iso  # noqa: F401 - also imported from here (runner, timers)
from faas.store import open_store

#: a run's statuses (the interpreter's), and those it ends in: the one definition faas uses
STATUSES = (ACTIVE, INACTIVE, SUCCEEDED, FAILED, ENDED)
DONE = (SUCCEEDED, FAILED, ENDED)
_FLOW_FIELDS = ("definition", "input_schema", "title", "subtitle", "description", "keywords",
                "viewers", "starters", "administrators")


class FlowNotFound(FaasError, LookupError):
    code = "FlowNotFound"


class RunNotFound(FaasError, LookupError):
    code = "RunNotFound"


class NothingToApprove(FaasError, LookupError):
    code = "NothingToApprove"


def parse_time(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 / RFC 3339 string."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    s = str(value).strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{value!r} is not a time: expected ISO 8601 like 2026-01-31T12:00:00Z "
                         "or epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _principals(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [access.normalize(v) for v in values]


def problems_of(definition: Any, input_schema: Any = None) -> list[dict]:
    """Every problem of a definition and its input schema: ``[{location, message}]``; schema
    problems are located under ``input_schema``."""
    try:
        d = load(definition)
    except DefinitionError as e:
        return [{"location": "$", "message": str(e)}]
    out = [{"location": p.location, "message": p.message} for p in validate(d)]
    for p in schema.check_schema(input_schema):
        out.append({"location": "input_schema" + p["location"][1:], "message": p["message"]})
    return out


def create_run(store, flow: dict, input: Any, label: str | None, tags: Iterable[str],
               managers: Iterable[str], monitors: Iterable[str], run_id: str | None, user: str,
               extra: dict | None = None) -> dict:
    """Check ``input`` against the flow's schema and write the run's records (request, run
    document, active marker); the runner picks it up from there. A ``run_id`` that exists for
    the same flow returns that run (``_existing``: a retried start)."""
    input = {} if input is None else input
    schema.require_valid(flow.get("input_schema"), input)
    run_id = run_id or L.new_id()
    if store.exists(L.run_key(run_id)):
        existing = L.get_json(store, L.run_key(run_id))
        if existing.get("flow_id") != flow["id"]:
            raise ValueError(f"run id {run_id} is already used by a run of flow "
                             f"{existing.get('flow_id')}")
        return dict(existing, _existing=True)
    doc = {"run_id": run_id, "flow_id": flow["id"], "flow_version": flow["version"],
           "flow_title": flow.get("title"), "status": "ACTIVE", "label": label,
           "tags": list(tags), "start_time": iso(time.time()), "completion_time": None,
           "output": None, "error": None, "cause": None, "user": access.normalize(user),
           "managers": _principals(managers), "monitors": _principals(monitors), **(extra or {})}
    request = {"run_id": run_id, "flow_id": flow["id"], "flow_version": flow["version"],
               "input": input, "user": doc["user"]}
    if flow.get("inline"):   # a timer's one-action flow: the definition travels with the run
        request["definition"] = flow["definition"]
    L.put_json(store, L.run_key(run_id, "request"), request)
    L.put_json(store, L.run_key(run_id), L.redact_private(doc))
    store.put(L.active_key(run_id), b"")
    return doc


class FlowsClient:
    """Flows and runs in one store: ``store`` URL, else the profile's, else the embedded one."""

    def __init__(self, store: str | None = None, profile: str | None = None, *,
                 identity: str | None = None):
        self.settings = resolve(profile, store=store)
        self.store_url = self.settings.store_url
        self.store = open_store(self.store_url)
        self.identity = access.normalize(identity) if identity else access.current_identity()
        self._queue = None
        self._runner_checked = -RUNNER_CHECK_EVERY

    # -- flows -------------------------------------------------------------------------------
    def validate(self, definition: Any, input_schema: Any = None) -> list[dict]:
        return problems_of(definition, input_schema)

    def _checked(self, definition: Any, input_schema: Any) -> dict:
        found = problems_of(definition, input_schema)
        if found:
            raise DefinitionError("invalid flow definition:\n" + "\n".join(
                f"  {p['location']}: {p['message']}" for p in found),
                [Problem(p["location"], p["message"]) for p in found])
        return load(definition)

    def deploy(self, definition: Any, input_schema: dict | None = None, title: str | None = None,
               subtitle: str | None = None, description: str | None = None,
               keywords: Iterable[str] = (), viewers: Iterable[str] = (),
               starters: Iterable[str] = (), administrators: Iterable[str] = ()) -> dict:
        d = self._checked(definition, input_schema)
        now = iso(time.time())
        flow = {"id": L.new_id(), "version": 1, "title": title or d.get("Comment") or "untitled",
                "subtitle": subtitle or "", "description": description or "",
                "keywords": list(keywords), "definition": d, "input_schema": input_schema,
                "created_at": now, "updated_at": now, "viewers": _principals(viewers),
                "starters": _principals(starters), "administrators": _principals(administrators),
                "owner": self.identity}
        self._write_flow(flow)
        return copy.deepcopy(flow)

    def _write_flow(self, flow: dict) -> None:
        L.put_json(self.store, L.flow_version_key(flow["id"], flow["version"]), flow)
        L.put_json(self.store, L.flow_key(flow["id"]), flow)

    def _flow(self, flow_id: str, version: int | None = None) -> dict:
        try:
            latest = L.get_json(self.store, L.flow_key(flow_id))
        except (L.KeyNotFound, ValueError):
            raise FlowNotFound(f"no flow {flow_id!r} in {self.store_url}") from None
        if version is None or int(version) == latest["version"]:
            return latest
        try:
            return L.get_json(self.store, L.flow_version_key(flow_id, int(version)))
        except L.KeyNotFound:
            raise FlowNotFound(f"flow {flow_id!r} has no version {version} (latest: "
                               f"{latest['version']})") from None

    def list_flows(self) -> list[dict]:
        out = []
        for key in self.store.list(L.FLOWS):
            if key.endswith("/flow.json"):
                try:
                    flow = L.get_json(self.store, key)
                except L.KeyNotFound:
                    continue
                if access.can_view_flow(flow, self.identity):
                    out.append(flow)
        return sorted(out, key=lambda f: f["created_at"])

    def get_flow(self, flow_id: str, version: int | None = None) -> dict:
        flow = self._flow(flow_id, version)
        access.require(access.can_view_flow(flow, self.identity), self.identity,
                       f"view flow {flow_id}")
        return flow

    def update_flow(self, flow_id: str, **changes: Any) -> dict:
        unknown = sorted(set(changes) - set(_FLOW_FIELDS))
        if unknown:
            raise ValueError(f"update_flow: unknown field(s) {', '.join(unknown)}; expected some "
                             f"of {', '.join(_FLOW_FIELDS)}")
        flow = self._flow(flow_id)
        access.require(access.can_admin(flow, self.identity), self.identity,
                       f"update flow {flow_id} (only its owner and administrators may)")
        changes = {k: v for k, v in changes.items() if v is not None}
        new = dict(flow, **changes)
        new["definition"] = self._checked(new["definition"], new.get("input_schema"))
        for role in ("viewers", "starters", "administrators"):
            new[role] = _principals(new[role])
        new["keywords"] = list(new.get("keywords") or ())
        new["version"] = flow["version"] + 1
        new["updated_at"] = iso(time.time())
        self._write_flow(new)
        return copy.deepcopy(new)

    def delete_flow(self, flow_id: str) -> None:
        """Remove the flow (its versions stay, so runs in progress finish)."""
        flow = self._flow(flow_id)
        access.require(access.can_admin(flow, self.identity), self.identity,
                       f"delete flow {flow_id} (only its owner and administrators may)")
        self.store.delete(L.flow_key(flow_id))

    # -- runs ---------------------------------------------------------------------------------
    def start(self, flow_id: str, input: Any = None, label: str | None = None,
              tags: Iterable[str] = (), managers: Iterable[str] = (),
              monitors: Iterable[str] = (), run_id: str | None = None) -> dict:
        flow = self._flow(flow_id)
        access.require(access.can_start(flow, self.identity), self.identity,
                       f"start flow {flow_id} (not its owner, an administrator or a starter)")
        return self._start(flow, input, label, tags, managers, monitors, run_id)

    def _start(self, flow: dict, input: Any, label: str | None, tags: Iterable[str],
               managers: Iterable[str], monitors: Iterable[str], run_id: str | None,
               user: str | None = None, extra: dict | None = None) -> dict:
        doc = create_run(self.store, flow, input, label, tags, managers, monitors, run_id,
                         user or self.identity, extra)
        if doc.pop("_existing", False):
            return doc
        run_id = doc["run_id"]
        L.send_command(self.store, "start", run_id, self.identity, self._q())
        return doc

    def _q(self):
        """What opens the runner's command queue (once), for :func:`store_layout.send_command`
        to ring it within its patience; on the embedded store, a runner is started if none runs."""
        ensure_runner(self.settings)
        return self._open_queue

    def _open_queue(self):
        if self._queue is None:
            self._queue = L.open_command_queue(self.store)
        return self._queue

    def _run(self, run_id: str) -> dict:
        try:
            return L.get_json(self.store, L.run_key(run_id))
        except L.KeyNotFound:
            raise RunNotFound(f"no run {run_id!r} in {self.store_url}") from None

    def _flow_quiet(self, flow_id: str) -> dict | None:
        try:
            return L.get_json(self.store, L.flow_key(flow_id))
        except L.KeyNotFound:
            return None

    def get_run(self, run_id: str) -> dict:
        run = self._run(run_id)
        access.require(access.can_monitor(run, self.identity, self._flow_quiet(run["flow_id"])),
                       self.identity, f"see run {run_id} (not its user, a manager or a monitor)")
        if run.get("status") not in DONE:
            self._runner_for_active()
        return run

    def _runner_for_active(self) -> None:
        """A run still to finish needs a runner: on the embedded store, looking at it starts one if
        none holds the store (a runner killed, a reboot), at most every few seconds per client."""
        now = time.monotonic()
        if now - self._runner_checked >= RUNNER_CHECK_EVERY:
            self._runner_checked = now
            ensure_runner(self.settings, wait=0)

    def list_runs(self, flow_id: str | None = None, status: str | Iterable[str] | None = None,
                  label: str | None = None, since: Any = None) -> list[dict]:
        statuses = {status} if isinstance(status, str) else set(status or ())
        bad = statuses - set(STATUSES)
        if bad:
            raise ValueError(f"unknown run status(es) {', '.join(sorted(bad))}; expected "
                             f"{', '.join(STATUSES)}")
        since_t = parse_time(since) if since is not None else None
        flows: dict = {}
        out = []
        for key in self.store.list(L.RUNS):
            if not key.endswith("/run.json"):
                continue
            try:
                run = L.get_json(self.store, key)
            except L.KeyNotFound:
                continue
            if flow_id and run.get("flow_id") != flow_id:
                continue
            if statuses and run.get("status") not in statuses:
                continue
            if label is not None and run.get("label") != label:
                continue
            if since_t is not None and parse_time(run["start_time"]) < since_t:
                continue
            fid = run.get("flow_id")
            if fid not in flows:
                flows[fid] = self._flow_quiet(fid)
            if access.can_monitor(run, self.identity, flows[fid]):
                out.append(run)
        if any(r.get("status") not in DONE for r in out):
            self._runner_for_active()
        return sorted(out, key=lambda r: r["start_time"])

    def get_log(self, run_id: str, after: int | None = None) -> list[dict]:
        """The run's event log; ``after`` a ``seq`` returns only later entries."""
        self.get_run(run_id)
        state = L.get_json(self.store, L.run_key(run_id, "state"), None)
        if not state:
            return []
        entries = state["run_state"].get("log", [])
        start = int(after or 0)
        return [dict(seq=i, **L.redact_private(e)) for i, e in enumerate(entries, 1) if i > start]

    def _manage(self, run_id: str, what: str) -> dict:
        run = self._run(run_id)
        access.require(access.can_manage(run, self.identity, self._flow_quiet(run["flow_id"])),
                       self.identity, f"{what} run {run_id} (not its user, a manager or an "
                                      "administrator of its flow)")
        return run

    def cancel_run(self, run_id: str) -> dict:
        run = self._manage(run_id, "cancel")
        if run["status"] not in DONE:
            L.send_command(self.store, "cancel", run_id, self.identity, self._q())
        return run

    def resume_run(self, run_id: str) -> dict:
        """Ask the runner to check the run's waiting actions now (after an approval, a fixed
        credential, ...)."""
        run = self._manage(run_id, "resume")
        if run["status"] not in DONE:
            L.send_command(self.store, "resume", run_id, self.identity, self._q())
        return run

    def _decide(self, run_id: str, approved: bool, comment: str | None) -> list[str]:
        self._manage(run_id, "approve or reject")
        try:
            from faas.flows.actions.approval import decide
        except ImportError as e:  # pragma: no cover - the actions package ships with faas
            raise FaasError(f"the approval action is not available: {e}") from None
        decided = decide(self.store_url, run_id, approved, access.username(self.identity),
                         comment)
        if not decided:
            raise NothingToApprove(f"run {run_id} has no approval waiting for a decision")
        L.send_command(self.store, "resume", run_id, self.identity, self._q())
        return decided

    def approve(self, run_id: str, comment: str | None = None) -> list[str]:
        return self._decide(run_id, True, comment)

    def reject(self, run_id: str, comment: str | None = None) -> list[str]:
        return self._decide(run_id, False, comment)

    def wait(self, run_id: str, timeout: float | None = None, interval: float = 0.2) -> dict:
        """Poll the run document until the run ends (or ``timeout`` seconds pass)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get_run(run_id)
            if run["status"] in DONE:
                return run
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout} s")
            time.sleep(interval)
