"""Arguments and results made only of built-in scalars and containers go through the C pickler
(dill's pure-Python pickler is ~50x slower on them); anything else goes through dill, as before."""
from __future__ import annotations

import collections
import enum
import pickle

import dill
import pytest

from faas import serialize


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def double(x):
    return 2 * x


PLAIN = [
    [((i,), {}) for i in range(100)],                     # a map chunk's calls
    {"a": [1, 2.5, 3j, b"x", None, True], (1, "k"): frozenset({1, 2}), "s": {3}},
    complex,                                              # the type itself: a global of builtins
    list(range(200_000)),                                 # past the old walk's budget of 100,000
]
NOT_PLAIN = [
    [Colour.RED], [Name("x")], collections.OrderedDict(a=1), [double], ({"f": len},), [object()],
]


@pytest.mark.parametrize("obj", PLAIN, ids=range(len(PLAIN)))
def test_plain_data_is_written_by_the_c_pickler(obj):
    data = serialize.dumps(obj, "a test value")
    assert data == pickle.dumps(obj, protocol=5)
    assert serialize.loads(data, "a test value") == obj


@pytest.mark.parametrize("obj", NOT_PLAIN, ids=range(len(NOT_PLAIN)))
def test_anything_else_is_written_by_dill(obj):
    data = serialize.dumps(obj, "a test value")
    assert data == dill.dumps(obj, protocol=5, recurse=True)
    back = serialize.loads(data, "a test value")
    assert type(back) is type(obj) and len(back) == len(obj)


def test_a_list_that_holds_itself_still_pickles():
    loop: list = [1]
    loop.append(loop)
    back = serialize.loads(serialize.dumps(loop, "a test value"), "a test value")
    assert back[0] == 1 and back[1] is back


def test_results_take_the_same_path():
    plain = serialize.result_bytes({"task_id": "t"}, [(True, [1, 2, 3])], None)
    _, payload = serialize.unframe(plain)
    assert payload == pickle.dumps([(True, [1, 2, 3])], protocol=5)
    odd = serialize.result_bytes({"task_id": "t"}, [(True, Colour.RED)], None)
    _, payload = serialize.unframe(odd)
    assert dill.loads(payload) == [(True, Colour.RED)]


def test_an_unpicklable_value_becomes_its_own_error_outcome():
    """One value dill cannot pickle fails only its own call, with a message that says why."""
    data = serialize.result_bytes({"task_id": "t"}, [(True, 1), (True, (x for x in [])), (True, Colour.RED)], None)
    header, payload = serialize.unframe(data)
    outcomes = serialize.loads(payload, "results")
    assert outcomes[0] == (True, 1) and outcomes[2] == (True, Colour.RED)
    assert outcomes[1][0] is False and "returned a generator that cannot be serialized: TypeError" in outcomes[1][3]
    assert header["status"] == "failed" and header["n"] == 3


@pytest.mark.parametrize("head", [b'{"a":1} x', b'[1]', b'{"a":', b'\xff{}', b'"s"'])
def test_a_frame_header_must_be_one_json_object(head):
    data = serialize.MAGIC + len(head).to_bytes(4, "big") + head + b"payload"
    with pytest.raises(serialize.SerializationError, match="corrupt faas object header"):
        serialize.unframe(data)
