"""Each state type, Choice operator and data-flow field, run through faas.flows.run."""
import pytest

from faas.flows import ActionResult, run

CTX = {"flow_id": "F", "run_id": "R", "username": "alice"}


def one(state, input=None, **kw):
    state = dict(state)
    if state["Type"] not in ("Choice", "Succeed", "Fail"):
        state.setdefault("End", True)
    return run({"StartAt": "S", "States": {"S": state}}, input, context=CTX, start_time=0, **kw)


def codes(doc):
    return [e["code"] for e in doc["log"]]


def test_pass_inputpath_parameters_result_resultpath_outputpath():
    assert one({"Type": "Pass"}, {"a": 1})["output"] == {"a": 1}
    assert one({"Type": "Pass", "Result": {"r": 1}}, {"a": 1})["output"] == {"r": 1}
    assert one({"Type": "Pass", "Result": 5, "ResultPath": "$.x.y"}, {"a": 1})["output"] == \
        {"a": 1, "x": {"y": 5}}
    assert one({"Type": "Pass", "Result": 5, "ResultPath": None}, {"a": 1})["output"] == {"a": 1}
    assert one({"Type": "Pass", "InputPath": "$.a", "ResultPath": "$.copy"},
               {"a": {"b": 2}})["output"] == {"a": {"b": 2}, "copy": {"b": 2}}
    assert one({"Type": "Pass", "InputPath": None}, {"a": 1})["output"] == {}
    assert one({"Type": "Pass", "Parameters": {"v.$": "$.a", "w.=": "a * 2", "k": "lit"},
                "ResultPath": "$.p", "OutputPath": "$.p"}, {"a": 3})["output"] == \
        {"v": 3, "w": 6, "k": "lit"}
    assert one({"Type": "Pass", "OutputPath": None}, {"a": 1})["output"] == {}
    doc = one({"Type": "Pass", "Parameters": {"r.$": "$._context.run_id", "u.=": "_context.username"}})
    assert doc["output"] == {"r": "R", "u": "alice"}
    assert codes(doc) == ["FlowStarted", "PassStarted", "PassCompleted", "FlowSucceeded"]


def test_resultpath_into_context_fails_at_validation():
    with pytest.raises(Exception, match="read-only"):
        one({"Type": "Pass", "ResultPath": "$._context.x"})


def test_missing_path_is_states_runtime_and_not_caught_by_all():
    doc = one({"Type": "Pass", "InputPath": "$.nope"}, {"a": 1})
    assert (doc["status"], doc["error"]) == ("FAILED", "States.Runtime")
    assert "$.nope" in doc["cause"]
    assert codes(doc)[-2:] == ["PassFailed", "FlowFailed"]


def test_resultpath_mismatch_error():
    doc = one({"Type": "Pass", "Result": 1, "ResultPath": "$.a.b"}, {"a": 3})
    assert doc["error"] == "States.ResultPathMatchFailure"


def test_expression_eval():
    doc = one({"Type": "ExpressionEval", "Parameters": {"total.=": "sum(xs)",
               "name.=": "pathsplit(p)[1]"}, "ResultPath": "$.r"}, {"xs": [1, 2], "p": "/a/b.txt"})
    assert doc["output"] == {"xs": [1, 2], "p": "/a/b.txt", "r": {"total": 3, "name": "b.txt"}}
    doc = one({"Type": "ExpressionEval", "Parameters": {"x.=": "1 / 0"}})
    assert doc["error"] == "States.Runtime" and "ZeroDivisionError" in doc["cause"]


def test_succeed_and_fail():
    assert one({"Type": "Succeed", "InputPath": "$.a"}, {"a": [1]})["output"] == [1]
    doc = one({"Type": "Fail", "Error": "MyError", "Cause": "because"}, {"a": 1})
    assert (doc["status"], doc["error"], doc["cause"]) == ("FAILED", "MyError", "because")
    assert doc["output"] == {"a": 1}
    doc = one({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}, {"e": "E2", "c": "C2"})
    assert (doc["error"], doc["cause"]) == ("E2", "C2")
    assert codes(doc) == ["FlowStarted", "FailStarted", "FailCompleted", "FlowFailed"]


@pytest.mark.parametrize("wait,input,elapsed", [
    ({"Seconds": 30}, {}, 30),
    ({"SecondsPath": "$.s"}, {"s": 12}, 12),
    ({"Timestamp": "1970-01-01T01:00:00Z"}, {}, 3600),
    ({"TimestampPath": "$.t"}, {"t": "1970-01-01T00:00:05+00:00"}, 5),
    ({"Timestamp": "1960-01-01T00:00:00Z"}, {}, 0),  # in the past: no wait
    ({"Seconds": 0}, {}, 0),
])
def test_wait_forms_fast_forwarded(wait, input, elapsed):
    doc = one({"Type": "Wait", **wait}, input)
    assert doc["status"] == "SUCCEEDED" and doc["output"] == input
    times = [e["time"] for e in doc["log"]]
    from faas.flows.interpreter import iso
    assert times[-1] == iso(elapsed)


def test_wait_bad_path_value():
    assert one({"Type": "Wait", "SecondsPath": "$.s"}, {"s": "x"})["error"] == "States.Runtime"
    assert one({"Type": "Wait", "TimestampPath": "$.t"}, {"t": "soon"})["error"] == "States.Runtime"


# -- Choice -------------------------------------------------------------------------------------
def choose(rule, input):
    defn = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [dict(rule, Next="Yes")], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": True},
        "No": {"Type": "Pass", "Result": "no", "End": True}}}
    doc = run(defn, input, context=CTX, start_time=0)
    assert doc["status"] == "SUCCEEDED", doc
    return doc["output"] == "yes"


T1, T2 = "2024-01-01T00:00:00Z", "2024-06-01T12:00:00+02:00"
CASES = [
    ("StringEquals", "b", "b", "a"), ("StringLessThan", "b", "c", "a"),
    ("StringGreaterThan", "b", "a", "c"), ("StringLessThanEquals", "b", "b", "a"),
    ("StringGreaterThanEquals", "b", "b", "c"),
    ("NumericEquals", 2, 2.0, 3), ("NumericLessThan", 2, 3, 1), ("NumericGreaterThan", 2, 1, 3),
    ("NumericLessThanEquals", 2, 2, 1), ("NumericGreaterThanEquals", 2, 2, 3),
    ("BooleanEquals", True, True, False),
    ("TimestampEquals", T1, T1, T2), ("TimestampLessThan", T1, T2, T1),
    ("TimestampGreaterThan", T2, T1, T2), ("TimestampLessThanEquals", T1, T1, "2023-01-01T00:00:00Z"),
    ("TimestampGreaterThanEquals", T1, T1, T2),
]


@pytest.mark.parametrize("op,value,yes,no", CASES)
def test_choice_operator_and_path_form(op, value, yes, no):
    assert choose({"Variable": "$.v", op: yes}, {"v": value})
    assert not choose({"Variable": "$.v", op: no}, {"v": value})
    assert choose({"Variable": "$.v", op + "Path": "$.o"}, {"v": value, "o": yes})
    assert not choose({"Variable": "$.v", op + "Path": "$.o"}, {"v": value, "o": no})


def test_choice_type_mismatch_is_false_not_error():
    assert not choose({"Variable": "$.v", "NumericEquals": 1}, {"v": "1"})
    assert not choose({"Variable": "$.v", "StringEquals": "1"}, {"v": 1})
    assert not choose({"Variable": "$.v", "BooleanEquals": True}, {"v": 1})
    assert not choose({"Variable": "$.v", "TimestampEquals": T1}, {"v": "nope"})


def test_string_matches():
    assert choose({"Variable": "$.v", "StringMatches": "*.txt"}, {"v": "a.txt"})
    assert choose({"Variable": "$.v", "StringMatches": "a*b*c"}, {"v": "aXXbYc"})
    assert not choose({"Variable": "$.v", "StringMatches": "*.txt"}, {"v": "a.csv"})
    assert choose({"Variable": "$.v", "StringMatches": r"lit\*"}, {"v": "lit*"})
    assert not choose({"Variable": "$.v", "StringMatches": r"lit\*"}, {"v": "litX"})


@pytest.mark.parametrize("op,yes,no", [
    ("IsNull", None, 1), ("IsNumeric", 1.5, "1"), ("IsString", "s", 1),
    ("IsBoolean", False, 0), ("IsTimestamp", T1, "2024-01-01"),
])
def test_type_tests(op, yes, no):
    assert choose({"Variable": "$.v", op: True}, {"v": yes})
    assert not choose({"Variable": "$.v", op: True}, {"v": no})
    assert choose({"Variable": "$.v", op: False}, {"v": no})


def test_is_present_and_missing_variable():
    assert choose({"Variable": "$.v", "IsPresent": True}, {"v": None})
    assert choose({"Variable": "$.v", "IsPresent": False}, {})
    defn = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "Y"}]},
        "Y": {"Type": "Succeed"}}}
    assert run(defn, {}, context=CTX)["error"] == "States.Runtime"


def test_and_or_not_and_no_match():
    rule = {"And": [{"Variable": "$.a", "NumericGreaterThan": 1},
                    {"Or": [{"Variable": "$.b", "StringEquals": "x"},
                            {"Not": {"Variable": "$.c", "IsPresent": True}}]}]}
    assert choose(rule, {"a": 2, "b": "x", "c": 1})
    assert choose(rule, {"a": 2, "b": "y"})
    assert not choose(rule, {"a": 2, "b": "y", "c": 1})
    assert not choose(rule, {"a": 0, "b": "x"})
    defn = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "IsNull": True, "Next": "Y"}]},
        "Y": {"Type": "Succeed"}}}
    doc = run(defn, {"v": 1}, context=CTX)
    assert (doc["status"], doc["error"]) == ("FAILED", "States.NoChoiceMatched")


def test_choice_inputpath_outputpath_and_loop():
    defn = {"StartAt": "Inc", "States": {
        "Inc": {"Type": "ExpressionEval", "Parameters": {"n.=": "n + 1"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericLessThan": 5, "Next": "Inc"}], "Default": "Done"},
        "Done": {"Type": "Succeed", "OutputPath": "$.n"}}}
    assert run(defn, {"n": 0}, context=CTX)["output"] == 5


def test_endless_loop_fails_with_states_runtime():
    defn = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
                                       "B": {"Type": "Pass", "Next": "A"}}}
    doc = run(defn, {}, context=CTX)
    assert doc["status"] == "FAILED" and doc["error"] == "States.Runtime"
    assert "endless loop" in doc["cause"]


# -- Action ---------------------------------------------------------------------------------------
def test_action_parameters_result_and_log():
    seen = []

    def act(p):
        seen.append(p)
        return {"sum": p["a"] + p["b"]}
    doc = one({"Type": "Action", "ActionUrl": "add", "RunAs": "svc",
               "Parameters": {"a.$": "$.x", "b": 2, "pw": "secret",
                              "__Private_Parameters": ["pw"]}, "ResultPath": "$.res"},
              {"x": 1}, actions={"add": act})
    assert seen == [{"a": 1, "b": 2, "pw": "secret"}]
    assert doc["output"] == {"x": 1, "res": {"action_id": "R/S/1/0", "status": "SUCCEEDED",
                                             "details": {"sum": 3}}}
    assert codes(doc) == ["FlowStarted", "ActionStarted", "ActionCompleted", "FlowSucceeded"]
    started = doc["log"][1]["details"]
    assert started["parameters"] == {"a": 1, "b": 2} and started["run_as"] == "svc"
    assert "secret" not in repr(doc["log"])


def test_action_inputpath_and_default_resultpath():
    doc = one({"Type": "Action", "ActionUrl": "echo", "InputPath": "$.p"}, {"p": {"k": 1}},
              actions={"echo": lambda p: p})
    assert doc["output"]["details"] == {"k": 1}


def test_action_failure_and_exception_on_action_failure_false():
    def boom(p):
        raise ValueError("bad input")
    doc = one({"Type": "Action", "ActionUrl": "boom"}, {}, actions={"boom": boom})
    assert (doc["error"], doc["cause"]) == ("ActionFailedException", "ValueError: bad input")
    assert codes(doc)[-2:] == ["ActionFailed", "FlowFailed"]
    doc = one({"Type": "Action", "ActionUrl": "boom", "ExceptionOnActionFailure": False,
               "ResultPath": "$.r"}, {}, actions={"boom": boom})
    assert doc["status"] == "SUCCEEDED"
    assert doc["output"]["r"]["status"] == "FAILED"
    assert doc["output"]["r"]["details"]["error"] == "ValueError"


def test_action_unable_to_run_and_timeout():
    doc = one({"Type": "Action", "ActionUrl": "missing"}, {})
    assert doc["error"] == "ActionUnableToRun"
    doc = one({"Type": "Action", "ActionUrl": "slow", "WaitTime": 10}, {},
              actions={"slow": lambda p: ActionResult({"x": 1}, seconds=11)})
    assert doc["error"] == "ActionTimeout"
    doc = one({"Type": "Action", "ActionUrl": "slow"}, {},
              actions={"slow": lambda p: ActionResult({"x": 1}, seconds=299)})
    assert doc["status"] == "SUCCEEDED"
    doc = one({"Type": "Action", "ActionUrl": "slow"}, {},
              actions={"slow": lambda p: ActionResult({"x": 1}, seconds=301)})
    assert doc["error"] == "ActionTimeout"


def test_action_result_selector_and_outputpath():
    doc = one({"Type": "Action", "ActionUrl": "e", "Parameters": {"v": 7},
               "ResultSelector": {"val.$": "$.details.v"}, "ResultPath": "$.r",
               "OutputPath": "$.r.val"}, {}, actions={"e": lambda p: p})
    assert doc["output"] == 7
