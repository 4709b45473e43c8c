"""Previews of arguments and results without running anyone's code.

A pickle can run code when loaded, and the console must never run user code: it loads payloads
as plain data only (:mod:`faas.plain_data`: plain built-in types, constructors that take only
what CPython's pickles give them, at most ``BUILD_LIMIT`` bytes built per preview). Anything
else is described (its size and the first class it needs), not loaded.

The arguments object is anyone's who may write the store, so showing it is bounded too, not
only its size (``tasks.ARGS_PREVIEW_BYTES``): the text is cut before it is built (bytes and big
numbers are sliced first, sets and dicts are not sorted), and one preview visits at most
:data:`MAX_NODES` values and stops at about :data:`MAX_CHARS` characters, so an object shared
many times over (a pickle's memo makes a deep tree of one small list) costs no more than a
small one.
"""
from __future__ import annotations

import builtins
import collections
import itertools
import reprlib
import uuid
from typing import Any

from .. import serialize
from ..plain_data import NotPlain, TooLarge
from ..plain_data import loads as safe_loads

#: the most values one preview's text visits, and about the most characters it holds
MAX_NODES, MAX_CHARS = 4000, 20_000
#: an int over this many bits is shown by its size (its decimal text would be huge or refused)
MAX_INT_BITS = 4096


class _Repr(reprlib.Repr):
    """reprlib, bounded for any input: nothing is rendered whole and then cut."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 200
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 12
        self.maxdeque = 12
        self.maxlevel = 4
        self.visits = self.chars = 0

    def repr1(self, x: Any, level: int) -> str:
        self.visits += 1
        if self.visits > MAX_NODES or self.chars > MAX_CHARS:
            return "..."
        try:
            s = super().repr1(x, level)
        except Exception:  # noqa: BLE001 - a value that cannot show itself is named, not raised
            s = f"<{type(x).__name__}>"
        self.chars += len(s)   # a container counts its items' text again: a bound, not a tally
        return s

    def _items(self, items: Any, total: int, level: int, left: str, right: str, n: int) -> str:
        if level <= 0 and total:
            return f"{left}...{right}"
        shown = [self.repr1(i, level - 1) for i in itertools.islice(items, n)]
        if total > n:
            shown.append("...")
        return left + ", ".join(shown) + right

    def repr_set(self, x: set, level: int) -> str:
        return self._items(x, len(x), level, "{", "}", self.maxset) if x else "set()"

    def repr_frozenset(self, x: frozenset, level: int) -> str:
        return self._items(x, len(x), level, "frozenset({", "})", self.maxfrozenset) if x else "frozenset()"

    def _pairs(self, x: dict, level: int, left: str, right: str) -> str:
        if level <= 0 and x:
            return f"{left}...{right}"
        shown = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
                 for k, v in itertools.islice(x.items(), self.maxdict)]
        if len(x) > self.maxdict:
            shown.append("...")
        return left + ", ".join(shown) + right

    def repr_dict(self, x: dict, level: int) -> str:
        return self._pairs(x, level, "{", "}")

    def repr_OrderedDict(self, x: collections.OrderedDict, level: int) -> str:
        return self._pairs(x, level, "OrderedDict({", "})")

    def repr_bytes(self, x: bytes, level: int) -> str:
        if len(x) <= self.maxstring:
            return builtins.repr(x)
        return f"{builtins.repr(x[:self.maxstring])}... ({len(x):,} bytes)"

    def repr_bytearray(self, x: bytearray, level: int) -> str:
        head = builtins.repr(bytes(x[:self.maxstring]))
        return f"bytearray({head})" if len(x) <= self.maxstring else \
            f"bytearray({head}...) ({len(x):,} bytes)"

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > MAX_INT_BITS:
            return f"<int of {x.bit_length():,} bits>"
        return super().repr_int(x, level)

    def repr_range(self, x: range, level: int) -> str:
        return f"range({', '.join(self.repr1(v, level) for v in (x.start, x.stop, x.step))})"

    def repr_slice(self, x: slice, level: int) -> str:
        if level <= 0:
            return "slice(...)"
        parts = (self.repr1(v, level - 1) for v in (x.start, x.stop, x.step))
        return f"slice({', '.join(parts)})"

    def repr_UUID(self, x: uuid.UUID, level: int) -> str:
        value = getattr(x, "int", None)
        if type(value) is not int or not 0 <= value < 1 << 128:
            return "<UUID: not valid>"
        return builtins.repr(x)


def show(value: Any) -> str:
    """Bounded text of a loaded value."""
    return _Repr().repr(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else show(value)


def _describe(payload: bytes) -> str:
    try:
        return show(safe_loads(payload))
    except NotPlain as e:
        return f"({len(payload):,} bytes; not shown: it needs {e}, and the console loads only plain data)"
    except TooLarge as e:
        return f"({len(payload):,} bytes; not shown: {e})"
    except Exception as e:  # noqa: BLE001 - a corrupt or foreign payload is described, not raised
        return f"({len(payload):,} bytes; not readable: {type(e).__name__})"


def result_preview(data: bytes) -> dict:
    """``{"header": ..., "values": [repr text per call]}`` for a result frame."""
    header, payload = serialize.unframe(data)
    try:
        outcomes = safe_loads(payload)
    except NotPlain as e:
        return {"header": header, "values": None,
                "note": f"{len(payload):,} bytes; not shown: the result needs {e}, and the console "
                        f"loads only plain data (use faas.client().get_result)"}
    except TooLarge as e:
        return {"header": header, "values": None,
                "note": f"{len(payload):,} bytes; not shown: {e} (use faas.client().get_result)"}
    except Exception as e:  # noqa: BLE001 - unpickling untrusted bytes can raise anything; a preview reports it
        return {"header": header, "values": None, "note": f"not readable: {type(e).__name__}: {e}"}
    values = []
    for o in outcomes if isinstance(outcomes, list) else []:
        if isinstance(o, tuple) and o and o[0] is True and len(o) > 1:
            values.append(show(o[1]))
        elif isinstance(o, tuple) and len(o) == 5:
            values.append(f"raised {_text(o[2])}: {_text(o[3])}")
    return {"header": header, "values": values}


#: calls, and arguments of a call, shown in an arguments preview
SHOWN_CALLS, SHOWN_ARGS = 5, 12


def args_preview(data: bytes) -> dict:
    """``{"n": calls, "calls": [repr text of (args, kwargs)], "size": bytes}``."""
    header, payload = serialize.unframe(data)
    out = {"n": header.get("n"), "size": len(data)}
    try:
        calls = safe_loads(payload)
    except NotPlain as e:
        out["note"] = f"not shown: the arguments need {e}, and the console loads only plain data"
        return out
    except TooLarge as e:
        out["note"] = f"not shown: {e}"
        return out
    except Exception as e:  # noqa: BLE001 - unpickling untrusted bytes can raise anything; a preview reports it
        out["note"] = f"not readable: {type(e).__name__}"
        return out
    if not isinstance(calls, list) or not all(
            isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], tuple) and isinstance(c[1], dict)
            for c in calls[:SHOWN_CALLS]):
        out["note"] = "not readable: not a list of calls"
        return out
    r = _Repr()          # one budget of visits for the whole preview
    shown = []
    for args, kwargs in calls[:SHOWN_CALLS]:
        parts = [r.repr(a) for a in args[:SHOWN_ARGS]] + \
                [f"{k[:200] if isinstance(k, str) else r.repr(k)}={r.repr(v)}"
                 for k, v in itertools.islice(kwargs.items(), SHOWN_ARGS)]
        if len(args) > SHOWN_ARGS or len(kwargs) > SHOWN_ARGS:
            parts.append("...")
        shown.append("(" + ", ".join(parts) + ")")
    out["calls"] = shown
    return out
