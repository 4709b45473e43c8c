"""Loading and validating definitions: every problem, with its JSON location."""
import json

import pytest

from faas.flows import DefinitionError, check, load, validate

GOOD = {
    "Comment": "ok",
    "StartAt": "Step1",
    "States": {
        "Step1": {"Type": "Pass", "Next": "Step2"},
        "Step2": {"Type": "Action", "ActionUrl": "https://x/y", "Parameters": {"a.$": "$.a"},
                  "ResultPath": "$.r", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Bad"}],
                  "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "Bad": {"Type": "Fail", "Error": "E", "Cause": "c"},
    },
}


def msgs(defn):
    return [str(p) for p in validate(defn)]


def test_good_definition_has_no_problems():
    assert validate(GOOD) == []
    assert check(GOOD) is GOOD


def test_load_json_yaml_dict():
    assert load(json.dumps(GOOD)) == GOOD
    yml = "StartAt: A\nStates:\n  A:\n    Type: Succeed\n"
    assert load(yml) == {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    assert load(yml.encode()) == load(yml)
    with pytest.raises(DefinitionError):
        load("[1, 2]")
    with pytest.raises(DefinitionError):
        load("a: [unclosed")


def test_load_path(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("StartAt: A\nStates: {A: {Type: Succeed}}\n")
    from pathlib import Path
    assert load(Path(p))["StartAt"] == "A"


def test_missing_next_state_named():
    d = {"StartAt": "Step1", "States": {
        "Step1": {"Type": "Pass", "Next": "Step2"},
        "Step2": {"Type": "Pass", "Next": "Step3"}}}
    assert msgs(d) == ['$.States.Step2.Next: no such state "Step3"']


def test_every_problem_is_reported():
    d = {"StartAt": "Nope", "Bogus": 1, "States": {
        "A": {"Type": "Pass", "Next": "B", "End": True},
        "B": {"Type": "Pass"},
        "C": {"Type": "Task", "Resource": "arn:x", "End": True},
        "D": {"Type": "Wat", "End": True},
        "E": {"Type": "Pass", "InputPath": "a.b", "End": True},
    }}
    m = msgs(d)
    assert "$.Bogus: unknown field" in m
    assert '$.StartAt: no such state "Nope"' in m
    assert "$.States.A: has both Next and End: a state either goes on or ends" in m
    assert '$.States.B: has neither Next nor "End": true' in m
    assert any(x.startswith("$.States.C.Type: Task is not supported: use \"Action\"") for x in m)
    assert any(x.startswith('$.States.D.Type: unknown state type "Wat"') for x in m)
    assert any(x.startswith("$.States.E.InputPath: bad JSONPath") for x in m)


def test_unreachable_states():
    d = {"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "Lost": {"Type": "Succeed"},
                                    "Also lost": {"Type": "Pass", "Next": "Lost"}}}
    m = msgs(d)
    assert any(x.startswith("$.States.Lost: unreachable") for x in m)
    assert any(x.startswith("$.States['Also lost']: unreachable") for x in m)


def test_catch_and_choice_targets_count_as_reachable():
    assert validate(GOOD) == []
    d = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Y"}],
              "Default": "N"},
        "Y": {"Type": "Succeed"}, "N": {"Type": "Succeed"}}}
    assert validate(d) == []


def test_action_rules():
    d = {"StartAt": "A", "States": {"A": {
        "Type": "Action", "Parameters": {"x": 1}, "InputPath": "$.y", "WaitTime": -1,
        "ExceptionOnActionFailure": "yes", "RunAs": 3, "ResultPath": "$._context.x",
        "End": True}}}
    m = msgs(d)
    assert "$.States.A: missing field ActionUrl" in m
    assert "$.States.A: has both Parameters and InputPath: an Action takes one or the other" in m
    assert "$.States.A.WaitTime: must be a positive integer (seconds)" in m
    assert "$.States.A.ExceptionOnActionFailure: must be true or false" in m
    assert "$.States.A.RunAs: must be a string" in m
    assert "$.States.A.ResultPath: the run context ($._context) is read-only" in m


def test_parameters_paths_and_expressions_checked():
    d = {"StartAt": "A", "States": {"A": {
        "Type": "Pass", "End": True,
        "Parameters": {"ok.$": "$.a", "bad.$": "a.b", "nested": [{"e.=": "__import__('os')"}],
                       "x.=": "1 +", "__Private_Parameters": "nope"}}}}
    m = msgs(d)
    assert any(x.startswith("$.States.A.Parameters['bad.$']: bad JSONPath") for x in m)
    assert any(x.startswith("$.States.A.Parameters.nested[0]['e.=']: bad expression") for x in m)
    assert any(x.startswith("$.States.A.Parameters['x.=']: bad expression") for x in m)
    assert "$.States.A.Parameters.__Private_Parameters: must be a list of parameter names" in m
    assert len(m) == 4


def test_choice_operators_checked():
    d = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Next": "Y", "Choices": [
            {"Variable": "$.x", "NumericEquals": "3", "Next": "Y"},
            {"Variable": "$.x", "StringEqual": "a", "Next": "Y"},
            {"Variable": "$.x", "StringEquals": "a", "NumericEquals": 1, "Next": "Y"},
            {"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "Y"},
            {"Variable": "$.x", "NumericEqualsPath": "x", "Next": "Y"},
            {"Not": {"Variable": "$.x", "IsNull": "no", "Next": "Y"}, "Next": "Y"},
            {"And": [], "Next": "Y"},
            {"NumericEquals": 1, "Next": "Y"},
            {"Variable": "$.x", "BooleanEquals": True},
        ]},
        "Y": {"Type": "Succeed"}}}
    m = msgs(d)
    assert "$.States.C.Next: a Choice state cannot have Next" in m
    assert "$.States.C.Choices[0].NumericEquals: must be a number" in m
    assert "$.States.C.Choices[1].StringEqual: unknown comparison operator" in m
    assert any(x.startswith("$.States.C.Choices[2]: a choice rule needs exactly one operator")
               for x in m)
    assert "$.States.C.Choices[3].TimestampEquals: must be an RFC 3339 timestamp like " \
           "2024-01-31T12:00:00Z" in m
    assert any(x.startswith("$.States.C.Choices[4].NumericEqualsPath: bad JSONPath") for x in m)
    assert "$.States.C.Choices[5].Not.IsNull: must be true or false" in m
    assert "$.States.C.Choices[5].Not.Next: only top-level choice rules have Next" in m
    assert "$.States.C.Choices[6].And: must be a non-empty list of rules" in m
    assert any(x.startswith("$.States.C.Choices[7]: missing field Variable") for x in m)
    assert "$.States.C.Choices[8]: missing field Next" in m


def test_retry_and_catch_shapes():
    d = {"StartAt": "A", "States": {
        "A": {"Type": "Action", "ActionUrl": "u", "End": True,
              "Retry": [{"ErrorEquals": ["States.ALL", "X"], "IntervalSeconds": 0,
                         "MaxAttempts": -1, "BackoffRate": 0.5, "Foo": 1},
                        {"ErrorEquals": []}],
              "Catch": [{"ErrorEquals": ["ActionTimeout"], "Next": "Nope", "ResultPath": "$[*]"},
                        {"Next": "A"}]},
        "P": {"Type": "Pass", "Retry": [], "End": True}}}
    m = msgs(d)
    for want in [
        "$.States.A.Retry[0].ErrorEquals: States.ALL must appear alone, in the last retrier or catcher",
        "$.States.A.Retry[0].IntervalSeconds: must be a positive integer",
        "$.States.A.Retry[0].MaxAttempts: must be a non-negative integer",
        "$.States.A.Retry[0].BackoffRate: must be a number >= 1.0",
        "$.States.A.Retry[0].Foo: unknown field for a retrier",
        "$.States.A.Retry[1].ErrorEquals: must be a non-empty list of error names",
        '$.States.A.Catch[0].Next: no such state "Nope"',
        "$.States.A.Catch[1]: missing field ErrorEquals",
        "$.States.P.Retry: unknown field for a Pass state",
    ]:
        assert want in m, (want, m)
    assert any(x.startswith("$.States.A.Catch[0].ResultPath: bad JSONPath") for x in m)


def test_wait_fail_map_parallel_rules():
    d = {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2024-01-01T00:00:00Z", "Next": "W2"},
        "W2": {"Type": "Wait", "Next": "F"},
        "F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e", "End": True},
        "M": {"Type": "Map", "End": True, "MaxConcurrency": -1,
              "Iterator": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}},
        "P": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}}, {"States": {}}]},
    }}
    m = msgs(d)
    for want in [
        "$.States.W: needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath "
        "(has Seconds, Timestamp)",
        "$.States.W2: needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath",
        "$.States.F: has both Error and ErrorPath",
        "$.States.F.End: a Fail state cannot have End",
        "$.States.M.MaxConcurrency: must be a non-negative integer (0: no limit)",
        '$.States.M.Iterator.States.X.Next: no such state "Y"',
        "$.States.P.Branches[1]: missing field StartAt",
        "$.States.P.Branches[1].States: must be a non-empty object of states",
    ]:
        assert want in m, (want, m)


def test_check_raises_with_all_problems():
    with pytest.raises(DefinitionError) as ei:
        check({"StartAt": "A", "States": {"A": {"Type": "Pass"}, "B": {"Type": "Succeed"}}})
    assert len(ei.value.problems) == 2
    assert "$.States.A" in str(ei.value)


def test_not_a_definition():
    assert [str(p) for p in validate("[]")][0].startswith("$: a definition is a JSON object")
    assert msgs({}) == ["$: missing field States", "$: missing field StartAt"]
