"""The States Language's corners, table-driven: each case is a definition, an input and what
AWS Step Functions gives (its documentation's examples where it has one), run through
``faas.flows.run`` as a user would.

Every case id starts with the dialect its rule belongs to:

* ``asl``    - the Amazon States Language itself: both dialects (Step Functions and Globus
  Flows, which "starts from the core of the Amazon States Language") follow it;
* ``aws``    - Step Functions' own behaviour (Jayway JsonPath, its quotas, QueryLanguage), which
  faas applies to both dialects since Globus documents nothing different;
* ``globus`` - Globus Flows' additions (``$._context``, ``.=`` expressions, Action states).
"""
import json

import pytest

from faas.flows import DefinitionError, run

CTX = {"flow_id": "F", "run_id": "R", "username": "alice"}
LIMIT = 256 * 1024   # bytes of compact UTF-8 JSON


def machine(*states, **top):
    """A flow of the given states in a chain (names S0, S1, ...; the last one ends)."""
    names = [f"S{i}" for i in range(len(states))]
    out = {}
    for i, state in enumerate(states):
        state = dict(state)
        if state["Type"] not in ("Choice", "Succeed", "Fail"):
            if i + 1 < len(states):
                state.setdefault("Next", names[i + 1])
            else:
                state.setdefault("End", True)
        out[names[i]] = state
    return {"StartAt": "S0", "States": out, **top}


def ok(output):
    return {"status": "SUCCEEDED", "output": output}


def failed(error, cause=None):
    return {"status": "FAILED", "error": error, "cause_has": cause}


def sized(total_bytes, char="x"):
    """``{"s": "xx..."}`` whose compact UTF-8 JSON is exactly ``total_bytes`` bytes."""
    width = len(char.encode())
    n, rest = divmod(total_bytes - len('{"s":""}'), width)
    assert rest == 0
    return {"s": char * n}


# AWS's Paths page: "if state input data contains the following values ... the following
# reference paths would return the following."
AWS_PATHS_INPUT = {"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": True},
                   "jar": [{"a": 1}, {"a": 5}, {"a": 2}, {"a": 7}, {"a": 3}]}
ITEMS = {"items": [{"name": "a", "size": 5}, {"name": "x", "size": 20}, {"size": 11},
                   {"name": "x", "size": 3}],
         "a": {"items": [{"v": 0}, {"v": 1}, {"v": 2}, {"v": 3}, {"v": 4}, {"v": 5}, {"v": 6}]}}
ODD_KEYS = {"a.b": 1, "it's": 2, 'say "hi"': 3, "tab\there": 4, "café": 5, "a b": {"c": 6}}


def pass_input(path):
    return {"Type": "Pass", "InputPath": path}


def pass_param(path):
    return {"Type": "Pass", "Parameters": {"v.$": path}}


CASES = [
    # --- the 14 that differed from Step Functions ------------------------------------------
    pytest.param(machine(pass_input("$.items[1:]")), ITEMS, ok(ITEMS["items"][1:]),
                 id="aws-jsonpath-slice-from"),
    pytest.param(machine(pass_input("$.items[:1]")), ITEMS, ok(ITEMS["items"][:1]),
                 id="aws-jsonpath-slice-to"),
    pytest.param(machine(pass_param("$.a.items[1:5].v")), ITEMS, ok({"v": [1, 2, 3, 4]}),
                 id="aws-jsonpath-slice-between-then-name"),
    pytest.param(machine(pass_input("$.items[?(@.size > 10)]")), ITEMS,
                 ok([{"name": "x", "size": 20}, {"size": 11}]), id="aws-jsonpath-filter-number"),
    pytest.param(machine(pass_param("$.items[?(@.name == 'x')]")), ITEMS,
                 ok({"v": [{"name": "x", "size": 20}, {"name": "x", "size": 3}]}),
                 id="aws-jsonpath-filter-string"),
    pytest.param(machine({"Type": "Pass", "OutputPath": "$.jar[?(@.a >= 5)]"}), AWS_PATHS_INPUT,
                 ok([{"a": 5}, {"a": 7}]), id="aws-docs-paths-filter-example"),
    pytest.param(machine({"Type": "Map", "ItemsPath": "$.items[?(@.name)]",
                          "ItemProcessor": machine(pass_input("$.name"))}), ITEMS,
                 ok(["a", "x", "x"]), id="aws-jsonpath-filter-in-itemspath"),
    pytest.param(machine(pass_param("$['it\\'s']")), ODD_KEYS, ok({"v": 2}),
                 id="aws-jsonpath-escaped-quote-key"),
    pytest.param(machine(pass_param("$['tab\\there']")), ODD_KEYS, ok({"v": 4}),
                 id="aws-jsonpath-escape-tab-key"),
    pytest.param(machine(pass_param("$['caf\\u00e9']")), ODD_KEYS, ok({"v": 5}),
                 id="aws-jsonpath-escape-unicode-key"),
    pytest.param(machine({"Type": "Fail"}), {"a": 1},
                 {"status": "FAILED", "error": None, "cause": None}, id="asl-fail-without-error"),
    pytest.param(machine({"Type": "Wait", "SecondsPath": "$.s"}), {"s": 1.5},
                 failed("States.Runtime", "not an integer"), id="asl-wait-secondspath-fraction"),
    pytest.param(machine({"Type": "Pass"}), sized(LIMIT + 1),
                 failed("States.DataLimitExceeded", "262145 bytes"), id="aws-input-over-256KiB"),
    pytest.param(machine({"Type": "Pass", "Parameters": {"c.$": "$.s"}, "ResultPath": "$.copy"}),
                 sized(LIMIT // 2 + 100), failed("States.DataLimitExceeded", "output of state S0"),
                 id="aws-output-over-256KiB"),
    pytest.param(machine({"Type": "Pass"}, QueryLanguage="JSONPath"), {"a": 1}, ok({"a": 1}),
                 id="aws-querylanguage-jsonpath-top-level"),
    pytest.param(machine({"Type": "Pass", "QueryLanguage": "JSONPath", "InputPath": "$.a"}),
                 {"a": 1}, ok(1), id="aws-querylanguage-jsonpath-per-state"),

    # --- more corners, same rules -----------------------------------------------------------
    pytest.param(machine(pass_input("$.a[0:2]")), {"a": [1, 2, 3, 4]}, ok([1, 2]),
                 id="aws-docs-inputpath-slice-example"),
    pytest.param(machine(pass_input("$.bar[?(@ == 'a')]")), AWS_PATHS_INPUT, ok([]),
                 id="aws-filter-at-matches-objects-only"),
    pytest.param(machine(pass_input("$.a.items[-2:]")), ITEMS, ok([{"v": 5}, {"v": 6}]),
                 id="aws-jsonpath-slice-negative-start"),
    pytest.param(machine(pass_input("$.a.items[1:-1]")), ITEMS, ok([]),
                 id="aws-jsonpath-slice-between-negative-end-is-empty-as-jayway"),
    pytest.param(machine(pass_input("$.items[?(@.size < 10 && @.name == 'x')].size")), ITEMS,
                 ok([3]), id="aws-jsonpath-filter-and"),
    pytest.param(machine(pass_input("$.items[?(!@.name || @.size >= 20)]")), ITEMS,
                 ok([{"name": "x", "size": 20}, {"size": 11}]), id="aws-jsonpath-filter-not-or"),
    pytest.param(machine(pass_input("$.items[?(@.name != 'x')]")), ITEMS,
                 ok([{"name": "a", "size": 5}, {"size": 11}]),
                 id="aws-jsonpath-filter-missing-is-not-equal"),
    pytest.param(machine(pass_input("$.items[?(@.nope)]")), ITEMS, ok([]),
                 id="aws-jsonpath-filter-no-match-is-empty-list"),
    pytest.param(machine(pass_input("$.nope[1:]")), ITEMS,
                 failed("States.Runtime", "$.nope"), id="aws-jsonpath-missing-before-slice"),
    pytest.param(machine(pass_param("$['a.b']")), ODD_KEYS, ok({"v": 1}),
                 id="aws-jsonpath-bracket-key-with-dot"),
    pytest.param(machine(pass_param('$["say \\"hi\\""]')), ODD_KEYS, ok({"v": 3}),
                 id="aws-jsonpath-escaped-double-quote-key"),
    pytest.param(machine(pass_param("$[ 'a b' ].c")), ODD_KEYS, ok({"v": 6}),
                 id="aws-jsonpath-bracket-spaces"),
    pytest.param(machine({"Type": "Pass", "Result": 7, "ResultPath": "$['a.b']"}), {},
                 ok({"a.b": 7}), id="asl-resultpath-bracket-key"),
    pytest.param(machine({"Type": "Wait", "SecondsPath": "$.s"}), {"s": -1},
                 failed("States.Runtime", "not an integer >= 0"),
                 id="asl-wait-secondspath-negative"),
    pytest.param(machine({"Type": "Wait", "SecondsPath": "$.s"}), {"s": 3}, ok({"s": 3}),
                 id="asl-wait-secondspath-integer"),
    pytest.param(machine({"Type": "Wait", "SecondsPath": "$.s"}), {"s": "3"},
                 failed("States.Runtime", "'3'"), id="asl-wait-secondspath-string"),
    pytest.param(machine({"Type": "Pass"}), sized(LIMIT), ok(sized(LIMIT)),
                 id="aws-input-exactly-256KiB"),
    pytest.param(machine({"Type": "Pass"}), sized(LIMIT + 2, "é"),
                 failed("States.DataLimitExceeded"), id="aws-size-counts-utf8-bytes-not-chars"),
    pytest.param(machine({"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"},
                          "ResultPath": None}), sized(LIMIT // 2 + 100),
                 failed("States.DataLimitExceeded", "after InputPath and Parameters"),
                 id="aws-input-after-parameters-over-256KiB"),
    pytest.param(machine({"Type": "Parallel", "Branches": [machine({"Type": "Pass"})] * 2,
                          "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S1"}]},
                         {"Type": "Pass", "Result": "caught"}),
                 sized(LIMIT // 2), failed("States.DataLimitExceeded"),
                 id="aws-datalimitexceeded-not-caught-by-states-all"),
    pytest.param(machine({"Type": "Parallel", "Branches": [machine({"Type": "Pass"})] * 2,
                          "Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "S1",
                                     "ResultPath": None}]},
                         {"Type": "Pass", "InputPath": None, "Result": "caught"}),
                 sized(LIMIT // 2), ok("caught"), id="aws-datalimitexceeded-caught-by-name"),
    pytest.param(machine({"Type": "Fail", "Error": "ErrorA", "Cause": "Invalid response."}), {},
                 {"status": "FAILED", "error": "ErrorA", "cause": "Invalid response."},
                 id="asl-docs-fail-static"),
    pytest.param(machine({"Type": "Fail", "CausePath": "$.Cause", "ErrorPath": "$.Error"}),
                 {"Error": "E", "Cause": "C"}, {"status": "FAILED", "error": "E", "cause": "C"},
                 id="asl-docs-fail-paths"),
    pytest.param(machine({"Type": "Fail", "Cause": "only a cause"}), {},
                 {"status": "FAILED", "error": None, "cause": "only a cause"},
                 id="asl-fail-cause-without-error"),

    # --- regressions: what worked before keeps working --------------------------------------
    pytest.param(machine(pass_input("$.foo")), AWS_PATHS_INPUT, ok(123), id="asl-docs-path-foo"),
    pytest.param(machine(pass_input("$.bar")), AWS_PATHS_INPUT, ok(["a", "b", "c"]),
                 id="asl-docs-path-bar"),
    pytest.param(machine(pass_input("$.car.cdr")), AWS_PATHS_INPUT, ok(True),
                 id="asl-docs-path-car-cdr"),
    pytest.param(machine({"Type": "Pass", "InputPath": "$.lambda",
                          "Result": "Hello, AWS Step Functions!",
                          "ResultPath": "$.data.lambdaresult", "OutputPath": "$.data"}),
                 {"comment": "An input comment.", "data": {"val1": 23, "val2": 17},
                  "extra": "foo", "lambda": {"who": "AWS Step Functions"}},
                 ok({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}),
                 id="asl-docs-input-result-output-paths"),
    pytest.param(machine({"Type": "Parallel", "Branches": [
                     machine({"Type": "Pass", "Result": [1, 2, 3]}),
                     machine({"Type": "Pass", "Result": [4, 5, 6]})],
                     "ResultSelector": {"flattenArray.$": "$[*][*]"}}), {},
                 ok({"flattenArray": [1, 2, 3, 4, 5, 6]}), id="aws-docs-flatten-array-of-arrays"),
    pytest.param(machine(pass_input("$.items[*].name")), ITEMS, ok(["a", "x", "x"]),
                 id="asl-wildcard-skips-missing"),
    pytest.param(machine(pass_input("$.items[-1]")), ITEMS, ok({"name": "x", "size": 3}),
                 id="asl-negative-index"),
    pytest.param(machine(pass_input("$.items[9]")), ITEMS, failed("States.Runtime", "$.items[9]"),
                 id="asl-missing-definite-path-is-runtime"),
    pytest.param(machine({"Type": "Parallel", "InputPath": "$.nope",
                          "Branches": [machine({"Type": "Pass"})],
                          "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S1"}]},
                         {"Type": "Pass"}),
                 {}, failed("States.Runtime"), id="asl-runtime-not-caught-by-states-all"),
    pytest.param(machine(pass_param("$$.run_id")), {}, ok({"v": "R"}), id="aws-context-object"),
]


@pytest.mark.parametrize("definition,input,want", CASES)
def test_both_dialects_follow_step_functions(definition, input, want):
    check(run(definition, input, actions={}, context=CTX, start_time=0), want)


def check(doc, want):
    assert doc["status"] == want["status"], (doc["error"], doc["cause"])
    if "output" in want:
        assert doc["output"] == want["output"]
    if "error" in want:
        assert doc["error"] == want["error"]
    if "cause" in want:
        assert doc["cause"] == want["cause"]
    if want.get("cause_has"):
        assert want["cause_has"] in doc["cause"]


# --- Globus's dialect ------------------------------------------------------------------------
def echo(params):
    return params


GLOBUS_CASES = [
    pytest.param(machine({"Type": "Action", "ActionUrl": "echo",
                          "Parameters": {"big.$": "$.items[?(@.size > 10)].name",
                                         "first.$": "$.items[:1]"},
                          "ResultPath": "$.r", "OutputPath": "$.r.details"}), ITEMS,
                 ok({"big": ["x"], "first": [ITEMS["items"][0]]}),
                 id="globus-action-parameters-slice-and-filter"),
    pytest.param(machine({"Type": "Pass", "Parameters": {"u.$": "$._context.username",
                                                         "r.$": "$$.run_id"}}), {},
                 ok({"u": "alice", "r": "R"}), id="globus-context-and-aws-context-object"),
    pytest.param(machine({"Type": "ExpressionEval", "Parameters": {
                     "py.=": "xs[1:-1]", "jp.$": "$.xs[1:-1]"}, "ResultPath": "$.r",
                     "OutputPath": "$.r"}), {"xs": [1, 2, 3, 4]},
                 ok({"py": [2, 3], "jp": []}),
                 id="globus-expression-slices-are-python-jsonpath-slices-are-jayway"),
    pytest.param(machine({"Type": "Fail", "ErrorPath": "$._context.username"}), {},
                 {"status": "FAILED", "error": "alice", "cause": None},
                 id="globus-fail-errorpath-from-context"),
    pytest.param(machine({"Type": "Action", "ActionUrl": "echo", "Parameters": {"a.$": "$"},
                          "ResultPath": "$.r"}), sized(LIMIT - 200),
                 failed("States.DataLimitExceeded", "output"),
                 id="globus-action-result-counts-toward-256KiB"),
]


@pytest.mark.parametrize("definition,input,want", GLOBUS_CASES)
def test_globus_dialect(definition, input, want):
    check(run(definition, input, actions={"echo": echo}, context=CTX, start_time=0), want)


# --- definitions refused before any run ------------------------------------------------------
BAD_DEFINITIONS = [
    pytest.param(machine({"Type": "Pass"}, QueryLanguage="JSONata"), 'supports "JSONPath" only',
                 id="aws-querylanguage-jsonata-top-level"),
    pytest.param(machine({"Type": "Pass", "QueryLanguage": "JSONata"}), 'supports "JSONPath" only',
                 id="aws-querylanguage-jsonata-per-state"),
    pytest.param(machine({"Type": "Pass"}, QueryLanguage="XPath"), 'must be "JSONPath"',
                 id="aws-querylanguage-unknown"),
    pytest.param(machine(pass_input("$.a[?(@.x =~ /y/)]")), "regular expressions",
                 id="aws-filter-regex-refused"),
    pytest.param(machine(pass_input("$.a[?(@.x == $.y)]")), "literals only",
                 id="aws-filter-reference-to-document-refused"),
    pytest.param(machine(pass_input("$.a[?(@.x subsetof ['a'])]")), "'subsetof' is not supported",
                 id="aws-filter-lexical-operator-refused"),
    pytest.param(machine(pass_input("$.a.length()")), "functions such as length()",
                 id="aws-path-function-refused"),
    pytest.param(machine(pass_input("$.a[0:4:2]")), "slice steps",
                 id="aws-slice-step-refused-where-jayway-ignores-it"),
    pytest.param(machine({"Type": "Pass", "ResultPath": "$.a[1:]"}), "reference path",
                 id="asl-resultpath-slice-refused"),
    pytest.param(machine({"Type": "Wait", "SecondsPath": "$.a[?(@.s)]"}), "reference path",
                 id="asl-secondspath-filter-refused"),
]


@pytest.mark.parametrize("definition,message", BAD_DEFINITIONS)
def test_definitions_refused(definition, message):
    with pytest.raises(DefinitionError) as info:
        run(definition, {}, actions={}, context=CTX, start_time=0)
    assert message in str(info.value)


def test_sized_helper_counts_like_aws():
    """The cases above rely on it: compact JSON, UTF-8 bytes."""
    assert len(json.dumps(sized(1000), separators=(",", ":")).encode()) == 1000
    assert len(json.dumps(sized(1000, "é"), ensure_ascii=False,
                          separators=(",", ":")).encode()) == 1000
