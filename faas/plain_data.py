"""Plain data out of a pickle, without running anyone's code.

A pickle can run code when loaded. Where its bytes are someone else's word (a task's arguments on
an endpoint that runs only its ``allowed_functions``; the console's preview of what anyone who
may write the store put there), it is loaded with an unpickler that knows only plain built-in
types: what faas pickles with the C pickler for plain data, and the few stdlib value types a
pickle builds by calling them. Anything else is :class:`NotPlain`, naming the first other class.

Loading is bounded too, not only the payload's size: the constructors a plain pickle calls
(``bytearray``, ``set``, ``frozenset``, ``deque``, ``OrderedDict``, ``Decimal``,
``_codecs.encode``, ...) take only the arguments CPython's own pickles give them (``bytearray``
from bytes or text, never from a count; a ``set`` from a list, never from a ``range``), and
together may build at most ``build_limit`` bytes, however often a pickle's memo hands them the
same big object (:class:`TooLarge`).
"""
from __future__ import annotations

import collections
import datetime
import decimal
import io
import pickle
import uuid
from collections.abc import Callable
from typing import Any

#: what the constructors a pickle calls may build together by default (bytes, roughly)
BUILD_LIMIT = 16 << 20
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
        self.limit = self.left = limit

    def charge(self, n: int, what: str) -> None:
        self.left -= n
        if self.left < 0:
            raise TooLarge(f"loading it would build over {self.limit >> 20} MiB ({what})")


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

    table: dict[tuple[str, str], Callable[..., Any]] = {
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

    def dill_type(name: Any) -> Callable[..., Any]:
        """dill names a built-in type it pickles by a call (``complex``) through its own loader."""
        found = table.get(("builtins", name)) if isinstance(name, str) else None
        if found is None:
            raise NotPlain(f"dill._dill._load_type of {str(name)[:80]!r}")
        return found

    table[("dill._dill", "_load_type")] = dill_type
    return table


class _PlainUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, build_limit: int):
        super().__init__(file)
        self._allowed = _constructors(_Budget(build_limit))

    def find_class(self, module: str, name: str) -> Any:
        module, name = _compat.get((module, name), (module.replace("__builtin__", "builtins"), name))
        found = self._allowed.get((module, name))
        if found is None:
            raise NotPlain(f"{module}.{name}")
        return found


def loads(payload: bytes, build_limit: int = BUILD_LIMIT) -> Any:
    """Load a pickle of plain data; raise :class:`NotPlain` naming the first other class, and
    :class:`TooLarge` when loading it would build more than ``build_limit`` bytes."""
    return _PlainUnpickler(io.BytesIO(payload), build_limit).load()
