"""Flow definitions: loading (JSON or YAML) and validation.

``validate(definition)`` returns *every* problem it finds, each with the JSON location it is
about (``$.States.Step2.Next: no such state "Step3"``); ``check(definition)`` raises
DefinitionError listing them. Definitions stay plain dicts (what users wrote, what the store
keeps); the interpreter reads them after ``check``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from faas.flows import expressions, paths
from faas.flows.errors import DefinitionError, ExpressionError

STATE_TYPES = ("Action", "Pass", "Choice", "Wait", "Fail", "Succeed", "ExpressionEval",
               "Parallel", "Map")
ACTION_ERRORS = ("ActionUnableToRun", "ActionFailedException", "ActionTimeout")

_COMMON = {"Type", "Comment", "QueryLanguage"}
QUERY_LANGUAGES = ("JSONPath",)  # Step Functions' other one, JSONata, is not supported
_IO = {"InputPath", "OutputPath"}
_FIELDS: dict[str, set[str]] = {
    "Action": _COMMON | {"ActionUrl", "ActionScope", "Parameters", "InputPath", "ResultPath",
                         "ResultSelector", "OutputPath", "WaitTime", "ExceptionOnActionFailure",
                         "RunAs", "Retry", "Catch", "Next", "End"},
    "Pass": _COMMON | _IO | {"Parameters", "Result", "ResultPath", "Next", "End"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _IO | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Next", "End"},
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Succeed": _COMMON | _IO,
    "ExpressionEval": _COMMON | {"Parameters", "ResultPath", "OutputPath", "Next", "End"},
    "Parallel": _COMMON | _IO | {"Branches", "Parameters", "ResultPath", "ResultSelector",
                                 "Retry", "Catch", "Next", "End"},
    "Map": _COMMON | _IO | {"Iterator", "ItemProcessor", "ItemsPath", "ItemSelector",
                            "Parameters", "MaxConcurrency", "ResultPath", "ResultSelector",
                            "Retry", "Catch", "Next", "End"},
}
_TERMINAL_TYPES = {"Choice", "Succeed", "Fail"}  # no Next / End

COMPARISONS: dict[str, str] = {  # operator -> kind of its operand
    "StringEquals": "string", "StringLessThan": "string", "StringGreaterThan": "string",
    "StringLessThanEquals": "string", "StringGreaterThanEquals": "string",
    "StringMatches": "string",
    "NumericEquals": "number", "NumericLessThan": "number", "NumericGreaterThan": "number",
    "NumericLessThanEquals": "number", "NumericGreaterThanEquals": "number",
    "BooleanEquals": "boolean",
    "TimestampEquals": "timestamp", "TimestampLessThan": "timestamp",
    "TimestampGreaterThan": "timestamp", "TimestampLessThanEquals": "timestamp",
    "TimestampGreaterThanEquals": "timestamp",
    "IsNull": "boolean", "IsPresent": "boolean", "IsNumeric": "boolean", "IsString": "boolean",
    "IsBoolean": "boolean", "IsTimestamp": "boolean",
}
for _op, _kind in list(COMPARISONS.items()):
    if not _op.startswith("Is") and _op != "StringMatches":
        COMPARISONS[_op + "Path"] = "path"
del _op, _kind


@dataclass(frozen=True)
class Problem:
    """One validation error: where (a JSONPath into the definition) and what."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def load(source: Any) -> dict:
    """A definition from a dict, JSON or YAML text (str/bytes), or a ``pathlib.Path``."""
    if isinstance(source, Path):
        source = source.read_text()
    if isinstance(source, bytes):
        source = source.decode()
    if isinstance(source, dict):
        return source
    if not isinstance(source, str):
        raise DefinitionError(f"a definition is a dict or JSON/YAML text, not {type(source).__name__}")
    try:
        return _expect_dict(json.loads(source))
    except json.JSONDecodeError:
        pass
    import yaml

    try:
        return _expect_dict(yaml.safe_load(source))
    except yaml.YAMLError as e:
        raise DefinitionError(f"the definition is neither JSON nor YAML: {e}") from None


def _expect_dict(v: Any) -> dict:
    if not isinstance(v, dict):
        raise DefinitionError(f"a definition is a JSON object, not {type(v).__name__}")
    return v


def check(definition: Any) -> dict:
    """Load and validate; return the definition or raise DefinitionError listing every problem."""
    d = load(definition)
    problems = validate(d)
    if problems:
        raise DefinitionError(
            "invalid flow definition:\n" + "\n".join(f"  {p}" for p in problems), problems)
    return d


def loc(base: str, *parts: Any) -> str:
    """``loc("$", "States", "Step 2", 0) -> "$.States['Step 2'][0]"``."""
    out = base
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
            out += f".{p}"
        else:
            out += "['" + p.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def validate(definition: Any) -> list[Problem]:
    """Every problem in ``definition`` (an empty list means valid)."""
    if not isinstance(definition, dict):
        try:
            definition = load(definition)
        except DefinitionError as e:
            return [Problem("$", str(e))]
    v = _Validator()
    v.machine(definition, "$", top=True)
    return v.problems


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2024-01-02T03:04:05Z``), or None if ``value`` is not one."""
    if not isinstance(value, str) or not re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Validator:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, location: str, message: str) -> None:
        self.problems.append(Problem(location, message))

    # -- a state machine (the flow, a Parallel branch, a Map iterator) ---------------------------
    def machine(self, m: Any, at: str, *, top: bool = False) -> None:
        if not isinstance(m, dict):
            self.add(at, "must be an object with StartAt and States")
            return
        allowed = {"Comment", "StartAt", "States"} | (
            {"Version", "TimeoutSeconds", "QueryLanguage"} if top else {"ProcessorConfig"})
        for k in m:
            if k not in allowed:
                self.add(loc(at, k), "unknown field")
        if top and "QueryLanguage" in m:
            self.query_language(m["QueryLanguage"], loc(at, "QueryLanguage"))
        states = m.get("States")
        if "States" not in m:
            self.add(at, "missing field States")
            states = {}
        elif not isinstance(states, dict) or not states:
            self.add(loc(at, "States"), "must be a non-empty object of states")
            states = {}
        start = m.get("StartAt")
        if "StartAt" not in m:
            self.add(at, "missing field StartAt")
        elif not isinstance(start, str):
            self.add(loc(at, "StartAt"), "must be a state name (a string)")
        elif states and start not in states:
            self.add(loc(at, "StartAt"), f"no such state {json.dumps(start)}")
        if "Comment" in m and not isinstance(m["Comment"], str):
            self.add(loc(at, "Comment"), "must be a string")
        edges: dict[str, list[str]] = {}
        for name, s in states.items():
            sat = loc(at, "States", name)
            if len(name) > 128:
                self.add(sat, "state names are at most 128 characters")
            edges[name] = self.state(s, sat, states)
        # reachability
        if isinstance(start, str) and start in states:
            seen, todo = {start}, [start]
            while todo:
                for nxt in edges.get(todo.pop(), []):
                    if nxt in states and nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            for name in states:
                if name not in seen:
                    self.add(loc(at, "States", name),
                             f"unreachable: no path from StartAt ({json.dumps(start)}) leads here")

    def next_ref(self, value: Any, at: str, states: dict) -> list[str]:
        if not isinstance(value, str):
            self.add(at, "must be a state name (a string)")
            return []
        if value not in states:
            self.add(at, f"no such state {json.dumps(value)}")
            return []
        return [value]

    # -- one state ---------------------------------------------------------------------------------
    def state(self, s: Any, at: str, states: dict) -> list[str]:
        if not isinstance(s, dict):
            self.add(at, "a state must be an object")
            return []
        t = s.get("Type")
        if "Type" not in s:
            self.add(at, "missing field Type")
            return []
        if t == "Task":
            self.add(loc(at, "Type"), 'Task is not supported: use "Action" with an ActionUrl '
                                      "(Parameters, ResultPath, Retry and Catch work the same)")
            return self._nexts(s, at, states, check_end=False)
        if t not in STATE_TYPES:
            self.add(loc(at, "Type"), f"unknown state type {json.dumps(t)} "
                                      f"(one of {', '.join(STATE_TYPES)})")
            return self._nexts(s, at, states, check_end=False)
        for k in s:
            if k not in _FIELDS[t]:
                hint = ""
                if k == "Resource":
                    hint = ' (use "ActionUrl" in an Action state)'
                self.add(loc(at, k), f"unknown field for a {t} state{hint}")
        if "Comment" in s and not isinstance(s["Comment"], str):
            self.add(loc(at, "Comment"), "must be a string")
        if "QueryLanguage" in s:
            self.query_language(s["QueryLanguage"], loc(at, "QueryLanguage"))
        for k in ("InputPath", "OutputPath"):
            if k in s and s[k] is not None:
                self.path(s[k], loc(at, k))
        if "ResultPath" in s and s["ResultPath"] is not None:
            self.result_path(s["ResultPath"], loc(at, "ResultPath"))
        for k in ("Parameters", "ResultSelector", "ItemSelector"):
            if k in s:
                self.template(s[k], loc(at, k))
        out = getattr(self, "_" + t)(s, at, states)
        if t in _TERMINAL_TYPES:
            for k in ("Next", "End"):
                if k in s:
                    self.add(loc(at, k), f"a {t} state cannot have {k}")
        else:
            out += self._nexts(s, at, states, check_end=True)
        if "Retry" in s:
            self.retry(s["Retry"], loc(at, "Retry"))
        if "Catch" in s:
            out += self.catch(s["Catch"], loc(at, "Catch"), states)
        return out

    def _nexts(self, s, at, states, *, check_end) -> list[str]:
        has_next, end = "Next" in s, s.get("End")
        if "End" in s and end is not True:
            self.add(loc(at, "End"), "End must be true (or left out)")
        if check_end:
            if has_next and end is True:
                self.add(at, "has both Next and End: a state either goes on or ends")
            elif not has_next and end is not True:
                self.add(at, 'has neither Next nor "End": true')
        return self.next_ref(s["Next"], loc(at, "Next"), states) if has_next else []

    # -- fields ------------------------------------------------------------------------------------
    def query_language(self, value: Any, at: str) -> None:
        """Step Functions' ``QueryLanguage`` (top level or per state): JSONPath, its default, is
        accepted; JSONata is refused by name (the Globus dialect has no such field and no
        JSONata)."""
        if value == "JSONata":
            self.add(at, 'faas supports "JSONPath" only: JSONata expressions ({% ... %}), '
                         "Arguments, Output and Assign are not implemented; write the flow "
                         'with JSONPath (InputPath, Parameters, ResultPath, OutputPath) or drop '
                         "QueryLanguage")
        elif value not in QUERY_LANGUAGES:
            self.add(at, f'must be "JSONPath" (got {json.dumps(value)})')

    def path(self, value: Any, at: str, *, reference: bool = False) -> None:
        if not isinstance(value, str):
            self.add(at, "must be a JSONPath string" + (" or null" if not reference else ""))
            return
        why = paths.is_valid(value, reference=reference)
        if why:
            self.add(at, f"bad JSONPath: {why}")

    def result_path(self, value: Any, at: str) -> None:
        self.path(value, at, reference=True)
        if isinstance(value, str) and not paths.is_valid(value):
            if paths.is_context_path(value):
                self.add(at, "the run context ($._context) is read-only")

    def template(self, value: Any, at: str) -> None:
        if isinstance(value, list):
            for i, v in enumerate(value):
                self.template(v, loc(at, i))
            return
        if not isinstance(value, dict):
            return
        for k, v in value.items():
            kat = loc(at, k)
            if k == paths.PRIVATE_KEY:
                if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                    self.add(kat, "must be a list of parameter names")
            elif isinstance(k, str) and k.endswith(".$"):
                self.path(v, kat)
            elif isinstance(k, str) and k.endswith(".="):
                if not isinstance(v, str):
                    self.add(kat, "must be an expression string")
                else:
                    try:
                        expressions.check(v)
                    except ExpressionError as e:
                        self.add(kat, f"bad expression: {e}")
            else:
                self.template(v, kat)

    def retry(self, value: Any, at: str) -> None:
        if not isinstance(value, list):
            self.add(at, "must be a list of retriers")
            return
        for i, r in enumerate(value):
            rat = loc(at, i)
            if not isinstance(r, dict):
                self.add(rat, "a retrier must be an object")
                continue
            for k in r:
                if k not in ("ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate",
                             "MaxDelaySeconds", "JitterStrategy", "Comment"):
                    self.add(loc(rat, k), "unknown field for a retrier")
            self.error_equals(r, rat, last=i == len(value) - 1)
            if "IntervalSeconds" in r and not (_is_int(r["IntervalSeconds"]) and r["IntervalSeconds"] >= 1):
                self.add(loc(rat, "IntervalSeconds"), "must be a positive integer")
            if "MaxAttempts" in r and not (_is_int(r["MaxAttempts"]) and r["MaxAttempts"] >= 0):
                self.add(loc(rat, "MaxAttempts"), "must be a non-negative integer")
            if "BackoffRate" in r and not (_is_num(r["BackoffRate"]) and r["BackoffRate"] >= 1.0):
                self.add(loc(rat, "BackoffRate"), "must be a number >= 1.0")
            if "MaxDelaySeconds" in r and not (_is_int(r["MaxDelaySeconds"]) and r["MaxDelaySeconds"] >= 1):
                self.add(loc(rat, "MaxDelaySeconds"), "must be a positive integer")
            if "JitterStrategy" in r and r["JitterStrategy"] not in ("FULL", "NONE"):
                self.add(loc(rat, "JitterStrategy"), 'must be "FULL" or "NONE"')

    def catch(self, value: Any, at: str, states: dict) -> list[str]:
        if not isinstance(value, list):
            self.add(at, "must be a list of catchers")
            return []
        out = []
        for i, c in enumerate(value):
            cat = loc(at, i)
            if not isinstance(c, dict):
                self.add(cat, "a catcher must be an object")
                continue
            for k in c:
                if k not in ("ErrorEquals", "Next", "ResultPath", "Comment"):
                    self.add(loc(cat, k), "unknown field for a catcher")
            self.error_equals(c, cat, last=i == len(value) - 1)
            if "Next" not in c:
                self.add(cat, "missing field Next")
            else:
                out += self.next_ref(c["Next"], loc(cat, "Next"), states)
            if "ResultPath" in c and c["ResultPath"] is not None:
                self.result_path(c["ResultPath"], loc(cat, "ResultPath"))
        return out

    def error_equals(self, r: dict, at: str, *, last: bool) -> None:
        ee = r.get("ErrorEquals")
        if "ErrorEquals" not in r:
            self.add(at, "missing field ErrorEquals")
        elif not (isinstance(ee, list) and ee and all(isinstance(e, str) for e in ee)):
            self.add(loc(at, "ErrorEquals"), "must be a non-empty list of error names")
        elif "States.ALL" in ee and (len(ee) > 1 or not last):
            self.add(loc(at, "ErrorEquals"),
                     "States.ALL must appear alone, in the last retrier or catcher")

    # -- per type ----------------------------------------------------------------------------------
    def _Action(self, s, at, states):
        url = s.get("ActionUrl")
        if "ActionUrl" not in s:
            self.add(at, "missing field ActionUrl")
        elif not isinstance(url, str) or not url:
            self.add(loc(at, "ActionUrl"), "must be a non-empty string")
        if "Parameters" in s and "InputPath" in s:
            self.add(at, "has both Parameters and InputPath: an Action takes one or the other")
        if "WaitTime" in s and not (_is_int(s["WaitTime"]) and s["WaitTime"] > 0):
            self.add(loc(at, "WaitTime"), "must be a positive integer (seconds)")
        if "ExceptionOnActionFailure" in s and not isinstance(s["ExceptionOnActionFailure"], bool):
            self.add(loc(at, "ExceptionOnActionFailure"), "must be true or false")
        if "RunAs" in s and not isinstance(s["RunAs"], str):
            self.add(loc(at, "RunAs"), "must be a string")
        return []

    def _Pass(self, s, at, states):
        return []

    def _Succeed(self, s, at, states):
        return []

    def _ExpressionEval(self, s, at, states):
        if "Parameters" not in s:
            self.add(at, "missing field Parameters")
        return []

    def _Fail(self, s, at, states):
        for f in ("Error", "Cause"):
            if f in s and f + "Path" in s:
                self.add(at, f"has both {f} and {f}Path")
            if f in s and not isinstance(s[f], str):
                self.add(loc(at, f), "must be a string")
            if f + "Path" in s:
                self.path(s[f + "Path"], loc(at, f + "Path"))
        return []

    def _Wait(self, s, at, states):
        given = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in s]
        if len(given) != 1:
            self.add(at, "needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath"
                     + (f" (has {', '.join(given)})" if given else ""))
        if "Seconds" in s and not (_is_int(s["Seconds"]) and s["Seconds"] >= 0):
            self.add(loc(at, "Seconds"), "must be a non-negative integer")
        if "Timestamp" in s and parse_timestamp(s["Timestamp"]) is None:
            self.add(loc(at, "Timestamp"), "must be an RFC 3339 timestamp like 2024-01-31T12:00:00Z")
        for k in ("SecondsPath", "TimestampPath"):
            if k in s:
                self.path(s[k], loc(at, k), reference=True)
        return []

    def _Choice(self, s: dict, at: str, states: dict) -> list[str]:
        out: list[str] = []
        choices = s.get("Choices")
        if "Choices" not in s:
            self.add(at, "missing field Choices")
        elif not isinstance(choices, list) or not choices:
            self.add(loc(at, "Choices"), "must be a non-empty list of rules")
        else:
            for i, rule in enumerate(choices):
                rat = loc(at, "Choices", i)
                self.rule(rule, rat, top=True)
                if isinstance(rule, dict):
                    if "Next" not in rule:
                        self.add(rat, "missing field Next")
                    else:
                        out += self.next_ref(rule["Next"], loc(rat, "Next"), states)
        if "Default" in s:
            out += self.next_ref(s["Default"], loc(at, "Default"), states)
        return out

    def rule(self, rule: Any, at: str, *, top: bool) -> None:
        if not isinstance(rule, dict):
            self.add(at, "a choice rule must be an object")
            return
        if not top and "Next" in rule:
            self.add(loc(at, "Next"), "only top-level choice rules have Next")
        bools = [k for k in ("And", "Or", "Not") if k in rule]
        ops = [k for k in rule if k in COMPARISONS]
        unknown = [k for k in rule if k not in COMPARISONS and k not in
                   ("And", "Or", "Not", "Variable", "Next", "Comment")]
        for k in unknown:
            self.add(loc(at, k), "unknown comparison operator" +
                     (f" (did you mean {k[:-4]}?)" if k == "StringMatchesPath" else ""))
        if len(bools) + len(ops) != 1:
            if not unknown:
                self.add(at, "a choice rule needs exactly one operator "
                             f"(has {', '.join(bools + ops) or 'none'})")
            return
        if bools:
            b = bools[0]
            if "Variable" in rule:
                self.add(loc(at, "Variable"), f"a {b} rule has no Variable")
            v = rule[b]
            if b == "Not":
                self.rule(v, loc(at, "Not"), top=False)
            elif not isinstance(v, list) or not v:
                self.add(loc(at, b), "must be a non-empty list of rules")
            else:
                for i, sub in enumerate(v):
                    self.rule(sub, loc(at, b, i), top=False)
            return
        op = ops[0]
        if "Variable" not in rule:
            self.add(at, f"missing field Variable (the path {op} tests)")
        else:
            self.path(rule["Variable"], loc(at, "Variable"))
        v, kind, oat = rule[op], COMPARISONS[op], loc(at, op)
        if kind == "path":
            self.path(v, oat)
        elif kind == "string" and not isinstance(v, str):
            self.add(oat, "must be a string")
        elif kind == "number" and not _is_num(v):
            self.add(oat, "must be a number")
        elif kind == "boolean" and not isinstance(v, bool):
            self.add(oat, "must be true or false")
        elif kind == "timestamp" and parse_timestamp(v) is None:
            self.add(oat, "must be an RFC 3339 timestamp like 2024-01-31T12:00:00Z")

    def _Parallel(self, s, at, states):
        br = s.get("Branches")
        if "Branches" not in s:
            self.add(at, "missing field Branches")
        elif not isinstance(br, list) or not br:
            self.add(loc(at, "Branches"), "must be a non-empty list of state machines")
        else:
            for i, b in enumerate(br):
                self.machine(b, loc(at, "Branches", i))
        return []

    def _Map(self, s, at, states):
        has = [k for k in ("Iterator", "ItemProcessor") if k in s]
        if len(has) != 1:
            self.add(at, "needs exactly one of Iterator or ItemProcessor")
        for k in has:
            self.machine(s[k], loc(at, k))
        if "ItemsPath" in s:   # a slice or filter selects the array too (Step Functions)
            self.path(s["ItemsPath"], loc(at, "ItemsPath"))
        if "ItemSelector" in s and "Parameters" in s:
            self.add(at, "has both ItemSelector and Parameters")
        if "MaxConcurrency" in s and not (_is_int(s["MaxConcurrency"]) and s["MaxConcurrency"] >= 0):
            self.add(loc(at, "MaxConcurrency"), "must be a non-negative integer (0: no limit)")
        return []
