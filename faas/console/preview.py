"""Previews of arguments and results without running anyone's code.

A pickle can run code when loaded, and the console must never run user code: it loads payloads
with an unpickler that knows only plain built-in types (what faas pickles with the C pickler
for plain data). Anything else is described (its size and the first class it needs), not loaded.

The arguments object is anyone's who may write the store, so loading and showing it is bounded
too, not only its size (``tasks.ARGS_PREVIEW_BYTES``): the few constructors a plain pickle calls
(``bytearray``, ``set``, ``frozenset``, ``deque``, ``OrderedDict``, ``Decimal``,
``_codecs.encode``, ...) take only the arguments CPython's own pickles give them (``bytearray``
from bytes or text, never from a count; a ``set`` from a list, never from a ``range``), and
together may build at most :data:`BUILD_LIMIT` bytes per preview, however often a pickle's memo
hands them the same big object. The text shown is cut before it is built: bytes and big numbers
are sliced first, sets and dicts are not sorted, and one preview visits at most
:data:`MAX_NODES` values and stops at about :data:`MAX_CHARS` characters, so an object shared
many times over (a pickle's memo makes a deep tree of one small list) costs no more than a
small one.
"""
from __future__ import annotations

import builtins
import collections
import datetime
import decimal
import io
import itertools
import pickle
import reprlib
import uuid
from collections.abc import Callable
from typing import Any

from .. import serialize

#: what the constructors a pickle calls may build together, per preview (bytes, roughly)
BUILD_LIMIT = 16 << 20
#: the most values one preview's text visits, and about the most characters it holds
MAX_NODES, MAX_CHARS = 4000, 20_000
#: an int over this many bits is shown by its size (its decimal text would be huge or refused)
MAX_INT_BITS = 4096
#: the most characters of a Decimal's or a timezone name's text a pickle may give
MAX_TEXT = 4096
_ITEM = 64   # bytes charged per item of a built set, deque or dict

_compat = {("__builtin__", "xrange"): ("builtins", "range"), ("copy_reg", "_reconstructor"):
           ("copyreg", "_reconstructor")}


class NotPlain(Exception):
    pass


class TooLarge(Exception):
    pass


class _Budget:
    def __init__(self, limit: int):
        self.left = limit

    def charge(self, n: int, what: str) -> None:
        self.left -= n
        if self.left < 0:
            raise TooLarge(f"loading it would build over {BUILD_LIMIT >> 20} MiB ({what})")


def _sequence(what: str, it: Any) -> list | tuple:
    if not isinstance(it, (list, tuple)):
        raise NotPlain(f"{what} of a {type(it).__name__}")
    return it


def _constructors(budget: _Budget) -> dict[tuple[str, str], Callable[..., Any]]:
    """The callables a plain pickle may name, each taking what CPython's pickles give it."""
    def bytearray_(*args: Any) -> bytearray:
        if not args:
            return bytearray()
        if isinstance(args[0], bytes) and len(args) == 1:
            budget.charge(len(args[0]), "bytearray")
            return bytearray(args[0])
        if isinstance(args[0], str) and len(args) == 2 and args[1] in ("latin-1", "latin1"):
            budget.charge(len(args[0]), "bytearray")
            return bytearray(args[0], "latin-1")
        raise NotPlain(f"builtins.bytearray of {', '.join(type(a).__name__ for a in args)}")

    def collection(cls: Callable[..., Any], name: str) -> Callable[..., Any]:
        def make(*args: Any) -> Any:
            if not args:
                return cls()
            if len(args) > 1:
                raise NotPlain(f"{name} of {len(args)} arguments")
            items = _sequence(name, args[0])
            budget.charge(_ITEM * len(items), name)
            return cls(items)
        return make

    def deque_(*args: Any) -> collections.deque:
        if len(args) > 2 or len(args) == 2 and not (args[1] is None or type(args[1]) is int):
            raise NotPlain("collections.deque of these arguments")
        items = _sequence("collections.deque", args[0]) if args else ()
        budget.charge(_ITEM * len(items), "collections.deque")
        return collections.deque(items, *args[1:])

    def encode(text: Any, encoding: Any = "utf-8") -> bytes:
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise NotPlain("_codecs.encode other than of text to latin1")
        budget.charge(len(text), "_codecs.encode")
        return text.encode("latin-1")

    def decimal_(value: Any = "0", *args: Any) -> decimal.Decimal:
        if args or not isinstance(value, str) or len(value) > MAX_TEXT:
            raise NotPlain("decimal.Decimal of other than a short text")
        return decimal.Decimal(value)

    def timezone_(offset: Any, *name: Any) -> datetime.timezone:
        if any(not isinstance(n, str) or len(n) > MAX_TEXT for n in name):
            raise NotPlain("datetime.timezone with other than a short name")
        return datetime.timezone(offset, *name)

    def range_(*args: Any) -> range:
        if not all(type(a) is int for a in args):
            raise NotPlain("builtins.range of other than ints")
        return range(*args)

    def complex_(*args: Any) -> complex:
        if not all(type(a) in (int, float) for a in args):
            raise NotPlain("builtins.complex of other than numbers")
        return complex(*args)

    return {
        ("builtins", "bytearray"): bytearray_,
        ("builtins", "set"): collection(set, "builtins.set"),
        ("builtins", "frozenset"): collection(frozenset, "builtins.frozenset"),
        ("collections", "OrderedDict"): collection(collections.OrderedDict, "collections.OrderedDict"),
        ("collections", "deque"): deque_,
        ("_codecs", "encode"): encode,
        ("decimal", "Decimal"): decimal_,
        ("datetime", "timezone"): timezone_,
        ("builtins", "range"): range_,
        ("builtins", "complex"): complex_,
        ("builtins", "slice"): slice,
        # classes that build nothing big from their arguments (their state is fixed-size bytes)
        ("datetime", "datetime"): datetime.datetime, ("datetime", "date"): datetime.date,
        ("datetime", "time"): datetime.time, ("datetime", "timedelta"): datetime.timedelta,
        ("uuid", "UUID"): uuid.UUID,    # made with NEWOBJ (a class, then its state): shown checked
    }


class _PlainUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO):
        super().__init__(file)
        self._allowed = _constructors(_Budget(BUILD_LIMIT))

    def find_class(self, module: str, name: str) -> Any:
        module, name = _compat.get((module, name), (module.replace("__builtin__", "builtins"), name))
        found = self._allowed.get((module, name))
        if found is None:
            raise NotPlain(f"{module}.{name}")
        return found


def safe_loads(payload: bytes) -> Any:
    """Load a pickle of plain data; raise :class:`NotPlain` naming the first other class, and
    :class:`TooLarge` when loading it would build more than :data:`BUILD_LIMIT` bytes."""
    return _PlainUnpickler(io.BytesIO(payload)).load()


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
