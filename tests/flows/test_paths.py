"""JSONPath forms and the InputPath / Parameters / ResultPath / OutputPath plumbing."""
import pytest

from faas.flows import parameters, paths
from faas.flows.errors import ExpressionError, PathError, PathNotFound, PathWriteError

DATA = {"a": {"b": [10, {"c": "x"}], "k e y": 1}, "list": [{"n": 1}, {"n": 2}], "z": None}
CTX = {"flow_id": "F", "run_id": "R", "username": "u"}


@pytest.mark.parametrize("path,want", [
    ("$", DATA),
    ("$.a.b[0]", 10),
    ("$.a.b[1].c", "x"),
    ("$.a.b[-1].c", "x"),
    ("$['a']['k e y']", 1),
    ('$["a"].b[0]', 10),
    ("$.list[*].n", [1, 2]),
    ("$.list.*.n", [1, 2]),
    ("$.z", None),
    ("$._context.run_id", "R"),
    ("$$.username", "u"),
])
def test_get(path, want):
    assert paths.get(DATA, path, CTX) == want


@pytest.mark.parametrize("path", ["a.b", "$..a", "$.a[0,1]", "$.a[1:2:1]", "$.a[?(@.x =~ /y/)]",
                                  "$.a[?(@.x == $.y)]", "$.a[", "$.", "$a", "$['unterminated]", 5])
def test_bad_paths(path):
    with pytest.raises(PathError):
        paths.parse(path)


@pytest.mark.parametrize("path,want", [
    ("$.list[1:]", [{"n": 2}]),
    ("$.list[:1].n", [1]),
    ("$.list[-5:]", [{"n": 1}, {"n": 2}]),       # a start before the beginning is clamped
    ("$.list[0:9]", [{"n": 1}, {"n": 2}]),       # an end past the end is clamped
    ("$.list[?(@.n >= 2)]", [{"n": 2}]),
    ("$.list[?(@.n == '1')].n", [1]),            # Jayway: a number equals the same in a string
    ("$.list[?(@.n == true)]", []),              # booleans equal only booleans
    ("$.a[?(@.b)]", [DATA["a"]]),                # a filter on an object tests the object
    ("$.a.b[?(@.c)]", [{"c": "x"}]),             # 10 is no object: @ never matches it
    ("$.z[*]", []),                              # a wildcard on null matches nothing
])
def test_get_slices_and_filters(path, want):
    assert paths.get(DATA, path, CTX) == want


@pytest.mark.parametrize("path", ["$.nope[1:]", "$.z[1:]", "$.a.b[0][?(@.x)]"])
def test_indefinite_path_still_needs_its_definite_start(path):
    with pytest.raises(PathNotFound):
        paths.get(DATA, path)


def test_missing_path_names_the_part():
    with pytest.raises(PathNotFound, match=r"no value at \$\.a\.nope"):
        paths.get(DATA, "$.a.nope.deeper")
    with pytest.raises(PathNotFound):
        paths.get(DATA, "$.a.b[5]")


def test_wildcard_is_not_a_reference_path():
    assert paths.is_valid("$.a[*]") is None
    assert "wildcard" in paths.is_valid("$.a[*]", reference=True)


def test_select_inputpath_outputpath():
    assert paths.select(DATA, None) == {}
    assert paths.select(DATA, "$") is DATA
    assert paths.select(DATA, "$.a.b[0]") == 10


def test_put_resultpath_semantics():
    d = {"x": 1}
    assert paths.put(d, None, 5) == {"x": 1}           # null discards the result
    assert paths.put(d, "$", 5) == 5                   # $ replaces
    assert paths.put(d, "$.r", 5) == {"x": 1, "r": 5}  # placed, original untouched
    assert d == {"x": 1}
    assert paths.put(d, "$.a.b.c", 5) == {"x": 1, "a": {"b": {"c": 5}}}
    assert paths.put({"l": [1, 2]}, "$.l[1]", 9) == {"l": [1, 9]}
    assert paths.put(d, "$['odd key']", 1) == {"x": 1, "odd key": 1}


@pytest.mark.parametrize("path", ["$._context.x", "$._context", "$$.run_id"])
def test_put_into_context_is_refused(path):
    with pytest.raises(PathWriteError, match="read-only"):
        paths.put({}, path, 1)


def test_put_through_non_object_is_refused():
    with pytest.raises(PathWriteError):
        paths.put({"x": 1}, "$.x.y", 2)
    with pytest.raises(PathWriteError):
        paths.put({"l": []}, "$.l[3]", 2)
    with pytest.raises(PathWriteError):
        paths.put("a string", "$.y", 2)


def test_render_parameters_recursively():
    tmpl = {
        "plain": "$.not.a.path",
        "v.$": "$.a.b[0]",
        "nested": {"c.$": "$.a.b[1].c", "lst": [{"n.$": "$.list[1].n"}, 3]},
        "sum.=": "a.b[0] + list[0].n",
        "who.=": "_context.username + '@' + _context.flow_id",
        "run.$": "$._context.run_id",
        "all.$": "$.list[*].n",
    }
    assert parameters.render(tmpl, DATA, CTX) == {
        "plain": "$.not.a.path", "v": 10, "nested": {"c": "x", "lst": [{"n": 2}, 3]},
        "sum": 11, "who": "u@F", "run": "R", "all": [1, 2]}


def test_render_errors():
    with pytest.raises(PathNotFound):
        parameters.render({"v.$": "$.nope"}, DATA)
    with pytest.raises(ExpressionError):
        parameters.render({"v.=": "nope + 1"}, DATA)
    with pytest.raises(PathError):
        parameters.render({"v.$": 3}, DATA)


def test_render_does_not_alias_state():
    out = parameters.render({"v.$": "$.a"}, DATA)
    out["v"]["b"].append(1)
    assert DATA["a"]["b"] == [10, {"c": "x"}]


def test_private_parameters():
    p, private = paths.split_private({"user": "u", "password": "pw",
                                      "__Private_Parameters": ["password"]})
    assert p == {"user": "u", "password": "pw"} and private == ["password"]
    assert paths.redact(p, private) == {"user": "u"}
    assert paths.split_private({"a": 1}) == ({"a": 1}, [])


def _flows_imports(module: str) -> tuple[set, set]:
    """The faas.flows modules ``module`` imports at its top level, and those it imports inside
    functions."""
    import ast
    import pathlib

    import faas.flows

    tree = ast.parse((pathlib.Path(faas.flows.__file__).parent / f"{module}.py").read_text())
    top, nested = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("faas.flows"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("faas.flows")]
        found = {n.split(".")[2] for n in names if n.count(".") >= 2}
        (top if node in tree.body else nested).update(found)
    return top, nested


def test_paths_is_below_expressions_and_parameters_above_both():
    """No cycle between paths and expressions, and none dodged by an import inside a function
    (issue 19): paths -> (nothing of flows but errors) <- expressions <- parameters."""
    layers = {"paths": {"errors"}, "expressions": {"errors", "paths"},
              "parameters": {"errors", "paths", "expressions"}}
    for module, allowed in layers.items():
        top, nested = _flows_imports(module)
        assert top <= allowed, (module, top - allowed)
        assert not nested, (module, nested)
