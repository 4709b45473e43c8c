"""The pure interpreter driven event by event: Retry/Catch, Parallel/Map, timers, determinism,
stable request ids across a simulated restart, cancel and INACTIVE."""
import json

import pytest

from faas.flows import interpreter as it
from faas.flows import run
from faas.flows.interpreter import (
    ActionCompleted,
    ActionFailed,
    ActionInactive,
    ActionTimeout,
    ActionUnableToRun,
    Cancel,
    CancelAction,
    RunState,
    SetTimer,
    StartAction,
    Timer,
)

CTX = {"flow_id": "F", "run_id": "R", "username": "alice"}


def act_flow(**extra):
    s = {"Type": "Action", "ActionUrl": "u", "Parameters": {"x.$": "$.x"}, "ResultPath": "$.r",
         "Next": "Done"}
    s.update(extra)
    states = {"A": s, "Done": {"Type": "Succeed"}}
    if "Catch" in s:
        states["Handler"] = {"Type": "Pass", "End": True}
    return {"StartAt": "A", "States": states}


def starts(effects):
    return [e for e in effects if isinstance(e, StartAction)]


def test_start_outstanding_and_complete():
    d = act_flow()
    rs = it.start(d, {"x": 1}, CTX, time=100)
    out = it.outstanding(rs)
    assert out == [StartAction("R/A/1/0", "u", {"x": 1}, 300, "A", None, ()),
                   SetTimer("R/A/1/0:timeout", 400)]
    rs2, eff = it.step(d, rs, ActionCompleted("R/A/1/0", {"ok": True}, 105))
    assert rs.status == "ACTIVE" and rs.action  # the input state is untouched
    assert rs2.status == "SUCCEEDED" and eff == []
    assert rs2.output["r"]["details"] == {"ok": True}


def test_stale_and_unknown_events_are_ignored():
    d = act_flow()
    rs = it.start(d, {"x": 1}, CTX)
    rs2, eff = it.step(d, rs, ActionCompleted("R/Other/1/0", {}, 1))
    assert eff == [] and rs2.to_dict() == rs.to_dict()
    rs3, _ = it.step(d, rs, ActionCompleted("R/A/1/0", {}, 1))
    rs4, eff = it.step(d, rs3, ActionCompleted("R/A/1/0", {}, 2))  # duplicate after the end
    assert eff == [] and rs4.to_dict() == rs3.to_dict()
    rs5, eff = it.step(d, rs3, Timer("R/A/1/0:timeout", 500))  # the timeout timer, now stale
    assert eff == [] and rs5.status == "SUCCEEDED"


def test_retry_with_backoff_timers_then_success():
    d = act_flow(Retry=[{"ErrorEquals": ["ActionFailedException"], "IntervalSeconds": 2,
                         "MaxAttempts": 3, "BackoffRate": 3}])
    rs = it.start(d, {"x": 1}, CTX, time=0)
    rid = starts(it.outstanding(rs))[0].request_id
    delays = []
    now = 0.0
    for attempt in range(3):
        rs, eff = it.step(d, rs, ActionFailed(rid, {"e": 1}, "nope", now))
        (timer,) = [e for e in eff if isinstance(e, SetTimer)]
        delays.append(timer.at - now)
        now = timer.at
        rs, eff = it.step(d, rs, Timer(timer.timer_id, now))
        new = starts(eff)
        assert len(new) == 1 and new[0].request_id != rid
        assert new[0].request_id == f"R/A/1/{attempt + 1}"
        rid = new[0].request_id
    assert delays == [2, 6, 18]
    rs, _ = it.step(d, rs, ActionCompleted(rid, "fine", now))
    assert rs.status == "SUCCEEDED"
    assert [e["code"] for e in rs.log].count("ActionFailed") == 6  # the report + the retry note


def test_retry_exhausted_then_catch():
    d = act_flow(Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
                 Catch=[{"ErrorEquals": ["ActionFailedException"], "Next": "Handler",
                         "ResultPath": "$.err"}])
    doc = run(d, {"x": 1}, actions={"u": lambda p: 1 / 0}, context=CTX, start_time=0)
    assert doc["status"] == "SUCCEEDED"
    assert doc["output"]["x"] == 1
    assert doc["output"]["err"]["Error"] == "ActionFailedException"
    assert "ZeroDivisionError" in doc["output"]["err"]["Cause"]
    assert [e["details"].get("request_id") for e in doc["log"] if e["code"] == "ActionStarted"] \
        == ["R/A/1/0", "R/A/1/1"]


def test_max_attempts_zero_and_retry_order():
    d = act_flow(Retry=[{"ErrorEquals": ["ActionTimeout"], "MaxAttempts": 0},
                        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}])
    rs = it.start(d, {"x": 1}, CTX)
    rs, eff = it.step(d, rs, ActionTimeout("R/A/1/0", 300))
    assert rs.status == "FAILED" and rs.error == "ActionTimeout"
    assert CancelAction("R/A/1/0", "u") in eff


@pytest.mark.parametrize("event,error", [
    (ActionUnableToRun("R/A/1/0", "no such provider", 1), "ActionUnableToRun"),
    (ActionFailed("R/A/1/0", {"why": 1}, None, 1), "ActionFailedException"),
    (ActionTimeout("R/A/1/0", 1), "ActionTimeout"),
    (Timer("R/A/1/0:timeout", 300), "ActionTimeout"),
])
def test_catch_each_action_error(event, error):
    d = act_flow(Catch=[{"ErrorEquals": [error], "Next": "Handler"}])
    rs = it.start(d, {"x": 1}, CTX)
    rs, _ = it.step(d, rs, event)
    assert rs.status == "SUCCEEDED"
    assert rs.output["Error"] == error  # default Catch ResultPath is $


def test_states_all_does_not_catch_states_runtime():
    d = act_flow(Parameters={"x.$": "$.missing"},
                 Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler"}])
    doc = run(d, {}, context=CTX)
    assert doc["error"] == "States.Runtime"


def test_parallel_branches_and_failure_cancels_siblings():
    d = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "ResultPath": "$.res", "End": True,
         "Branches": [
             {"StartAt": "A1", "States": {"A1": {"Type": "Action", "ActionUrl": "u",
                                                 "Parameters": {"b": 1}, "End": True}}},
             {"StartAt": "A2", "States": {"A2": {"Type": "Action", "ActionUrl": "u",
                                                 "Parameters": {"b": 2}, "End": True}}},
             {"StartAt": "P3", "States": {"P3": {"Type": "Pass", "Result": "three",
                                                 "End": True}}}]}}}
    rs = it.start(d, {"in": 0}, CTX)
    ids = [a.request_id for a in starts(it.outstanding(rs))]
    assert ids == ["R/P.1.0/0/A1/1/0", "R/P.1.0/1/A2/1/0"]
    rs2, _ = it.step(d, rs, ActionCompleted(ids[1], "two", 1))
    rs2, _ = it.step(d, rs2, ActionCompleted(ids[0], "one", 2))
    assert rs2.status == "SUCCEEDED"
    assert [r["details"] if isinstance(r, dict) else r for r in rs2.output["res"]] == \
        ["one", "two", "three"]
    rs3, eff = it.step(d, rs, ActionFailed(ids[0], None, "bad", 1))
    assert rs3.status == "FAILED" and rs3.error == "ActionFailedException"
    assert CancelAction(ids[1], "u") in eff
    assert it.outstanding(rs3) == []


def test_map_with_max_concurrency_and_item_selector():
    d = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.files", "MaxConcurrency": 2, "ResultPath": "$.out",
        "ItemSelector": {"file.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index",
                         "dest.$": "$.dest"},
        "ItemProcessor": {"StartAt": "Do", "States": {"Do": {
            "Type": "Action", "ActionUrl": "u", "ResultSelector": {"v.$": "$.details"},
            "OutputPath": "$.v", "End": True}}},
        "End": True}}}
    rs = it.start(d, {"files": ["a", "b", "c", "d", "e"], "dest": "/d"}, CTX)
    running = starts(it.outstanding(rs))
    assert [a.parameters for a in running] == [{"file": "a", "i": 0, "dest": "/d"},
                                               {"file": "b", "i": 1, "dest": "/d"}]
    t = 0
    while rs.status == "ACTIVE":
        t += 1
        a = starts(it.outstanding(rs))
        assert len(a) <= 2
        rs, eff = it.step(d, rs, ActionCompleted(a[-1].request_id, a[-1].parameters["file"].upper(), t))
    assert rs.output["out"] == ["A", "B", "C", "D", "E"]


def test_map_over_pass_iterator_and_empty_list():
    d = {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.n", "End": True,
         "Iterator": {"StartAt": "Sq", "States": {"Sq": {
             "Type": "ExpressionEval", "Parameters": {"sq.=": "v * v"}, "End": True}}},
         "Parameters": {"v.$": "$$.Map.Item.Value"}}}}
    assert run(d, {"n": [1, 2, 3]}, context=CTX)["output"] == [{"sq": 1}, {"sq": 4}, {"sq": 9}]
    assert run(d, {"n": []}, context=CTX)["output"] == []
    assert run(d, {"n": 5}, context=CTX)["error"] == "States.Runtime"


def test_map_item_failure_is_caught_on_map():
    d = {"StartAt": "M", "States": {
        "M": {"Type": "Map", "End": True, "Catch": [{"ErrorEquals": ["Odd"], "Next": "H",
                                                      "ResultPath": "$.e"}],
              "Iterator": {"StartAt": "C", "States": {
                  "C": {"Type": "Choice", "Choices": [
                      {"Variable": "$", "NumericEquals": 3, "Next": "F"}], "Default": "OK"},
                  "F": {"Type": "Fail", "Error": "Odd", "Cause": "three"},
                  "OK": {"Type": "Succeed"}}}},
        "H": {"Type": "Pass", "End": True}}}
    doc = run(d, [1, 2, 3, 4], context=CTX)
    assert doc["status"] == "FAILED"  # ResultPath $.e on an array input
    assert doc["error"] == "States.ResultPathMatchFailure"
    d["States"]["M"]["ItemsPath"] = "$.items"
    doc = run(d, {"items": [1, 2, 3, 4]}, context=CTX)
    assert doc["status"] == "SUCCEEDED"
    assert doc["output"]["e"] == {"Error": "Odd", "Cause": "three"}


def _drive_with_restarts(d, input, results):
    """Drive start/step, serializing the run state to JSON between every step, like a runner
    that is killed after each event and restarted from the store; return (state, started ids)."""
    rs = it.start(d, input, CTX, time=0)
    stored = rs.to_json()
    started = []
    for a in starts(it.outstanding(rs)):
        started.append(a.request_id)
    now = 0.0
    while True:
        rs = RunState.from_json(stored)  # "restart"
        if rs.status in it.DONE:
            return rs, started
        pending = it.outstanding(rs)
        timers = sorted((e for e in pending if isinstance(e, SetTimer)), key=lambda e: e.at)
        actions = starts(pending)
        now += 1
        if actions:
            a = actions[0]
            ev = results(a, now)
        else:
            now = max(now, timers[0].at)
            ev = Timer(timers[0].timer_id, now)
        rs, eff = it.step(d, rs, ev)
        for a in starts(eff):
            assert a.request_id not in started, "an action was started twice"
            started.append(a.request_id)
        stored = rs.to_json()


def test_request_ids_stable_across_restarts():
    d = {"StartAt": "T", "States": {
        "T": {"Type": "Action", "ActionUrl": "transfer", "ResultPath": "$.t", "Next": "W",
              "Retry": [{"ErrorEquals": ["ActionFailedException"], "MaxAttempts": 2}]},
        "W": {"Type": "Wait", "Seconds": 5, "Next": "C"},
        "C": {"Type": "Action", "ActionUrl": "compute", "ResultPath": "$.c", "End": True}}}
    fails = {"n": 0}

    def results(a, now):
        if a.action_url == "transfer" and fails["n"] < 1:
            fails["n"] += 1
            return ActionFailed(a.request_id, None, "flaky", now)
        return ActionCompleted(a.request_id, a.action_url, now)
    rs, started = _drive_with_restarts(d, {"x": 1}, results)
    assert rs.status == "SUCCEEDED"
    assert started == ["R/T/1/0", "R/T/1/1", "R/C/3/0"]
    # re-issuing outstanding work after a restart gives the same ids
    rs0 = it.start(d, {"x": 1}, CTX)
    assert it.outstanding(RunState.from_json(rs0.to_json())) == it.outstanding(rs0)


def test_determinism_same_events_same_state():
    d = pm_flow()

    def drive():
        rs = it.start(d, {"items": [1, 2, 3]}, CTX, time=10)
        t = 10
        while rs.status == "ACTIVE":
            t += 1
            a = starts(it.outstanding(rs))
            rs, _ = it.step(d, rs, ActionCompleted(a[0].request_id, {"n": t}, t))
        return rs.to_json()
    first = drive()
    assert first == drive()
    assert json.loads(first)["status"] == "SUCCEEDED"


def pm_flow():
    return {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.r", "End": True,
        "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True,
            "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Action", "ActionUrl": "u",
                                                           "End": True}}},
                         {"StartAt": "Y", "States": {"Y": {"Type": "Action", "ActionUrl": "u",
                                                           "End": True}}}]}}}}}}


def test_run_state_json_round_trip_mid_parallel():
    d = pm_flow()
    rs = it.start(d, {"items": [1, 2]}, CTX)
    back = RunState.from_json(rs.to_json())
    assert back.to_dict() == rs.to_dict()
    assert len(starts(it.outstanding(back))) == 4
    json.dumps(rs.to_dict())


def test_cancel_ends_run_and_cancels_actions():
    d = pm_flow()
    rs = it.start(d, {"items": [1]}, CTX)
    rs2, eff = it.step(d, rs, Cancel(5, "user asked"))
    assert rs2.status == "ENDED" and rs2.log[-1]["code"] == "FlowCanceled"
    assert sorted(e.request_id for e in eff) == sorted(a.request_id for a in starts(it.outstanding(rs)))
    assert it.step(d, rs2, Timer("x", 6))[1] == []


def test_inactive_then_active():
    d = act_flow()
    rs = it.start(d, {"x": 1}, CTX)
    rs, _ = it.step(d, rs, ActionInactive("R/A/1/0", {"reason": "needs approval"}, 1))
    assert rs.status == "INACTIVE"
    rs, _ = it.step(d, rs, ActionCompleted("R/A/1/0", "approved", 2))
    assert rs.status == "SUCCEEDED"


def test_event_and_effect_dicts_round_trip():
    for obj in (ActionCompleted("r", {"a": 1}, 1.0), Timer("t", 2.0), Cancel(3.0, "x"),
                StartAction("r", "u", {"p": 1}, 300, "S", "me", ("pw",)), SetTimer("t", 1.0)):
        assert it.from_dict(json.loads(json.dumps(it.to_dict(obj)))) == obj
