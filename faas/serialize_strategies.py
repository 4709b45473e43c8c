"""Globus Compute's serialization strategies and ``ComputeSerializer``
(``globus_compute_sdk.serialize``), so Globus code that names them runs with its import changed
(``from faas.serialize import ComputeSerializer, JSONData``).

They are Globus's own (globus-compute-sdk 4.x, serialize/base.py, concretes.py, facade.py): the
same identifiers, payloads and errors, and ``check_strategies`` round-trips a call through them
as Globus does. faas itself sends functions and arguments with dill (faas/serialize.py), so an
Executor's ``serializer`` and ``result_serializers`` are checked as Globus checks them and then
have no effect on the wire (docs/from-globus.md).

``SourceCode`` is what ``register_source_code`` registers: Globus sends source text with its
``PureSourceTextInspect`` strategy; here the source travels inside a small callable that runs it
on the worker the way that strategy's ``deserialize`` does.
"""
from __future__ import annotations

import ast
import codecs
import importlib
import inspect
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, ClassVar

import dill

from .exceptions import SerializationError

log = logging.getLogger("faas.serialize")

DeserializationError = SerializationError   # faas has one error for both directions (faas.errors)
IDENTIFIER_LENGTH = 3                        # 2 unique characters and a newline


class SerializationStrategy(ABC):
    """Converts function code or arguments to a string and back; each concrete strategy is
    registered (one shared instance) under its 3-character ``identifier``."""

    _CACHE: ClassVar[dict[str, SerializationStrategy]] = {}
    identifier: ClassVar[str]
    for_code: ClassVar[bool]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if not hasattr(cls, "identifier"):
            return
        if len(cls.identifier) != IDENTIFIER_LENGTH:
            raise ValueError(f"Identifiers must be {IDENTIFIER_LENGTH} characters long")
        if cls.identifier[-1] != "\n":
            raise ValueError("Identifiers must end with a newline character")
        existing = SerializationStrategy._CACHE.get(cls.identifier)
        if existing:
            raise ValueError(f"Identifier {cls.identifier!r} is already used by {type(existing).__name__}")
        SerializationStrategy._CACHE[cls.identifier] = cls()

    @classmethod
    def get_cached_by_id(cls, identifier: str) -> SerializationStrategy | None:
        return cls._CACHE.get(identifier)

    @classmethod
    def get_cached_by_class(cls, type_: type[SerializationStrategy]) -> SerializationStrategy:
        return cls._CACHE[type_.identifier]

    @abstractmethod
    def serialize(self, data: Any) -> str:
        """``data`` as a string this strategy can ``deserialize``."""

    @abstractmethod
    def deserialize(self, payload: str) -> Any:
        """The object ``payload`` represents (the inverse of ``serialize``)."""

    def chomp(self, payload: str) -> str:
        """``payload`` without this strategy's header; DeserializationError if it lacks it."""
        s_id, payload = payload.split("\n", 1)
        if (s_id + "\n") != self.identifier:
            raise DeserializationError(f"Buffer does not start with identifier:{self.identifier}")
        return payload


def _exec_named(body: str, name: str) -> Any:
    """Run ``body`` (a function's source) in a fresh namespace and return ``name`` from it, as
    Globus's source strategies do on the endpoint."""
    exec_ns: dict = {}
    exec(body, exec_ns)   # noqa: S102 - the source strategies' documented meaning
    return exec_ns[name]


class DillDataBase64(SerializationStrategy):
    """Data: ``dill.dumps``, then base 64."""

    identifier = "00\n"
    for_code = False

    def serialize(self, data: Any) -> str:
        return self.identifier + codecs.encode(dill.dumps(data), "base64").decode()

    def deserialize(self, payload: str) -> Any:
        return dill.loads(codecs.decode(self.chomp(payload).encode(), "base64"))


class JSONData(SerializationStrategy):
    """Data: ``json.dumps``."""

    identifier = "11\n"
    for_code = False

    def serialize(self, data: Any) -> str:
        return self.identifier + json.dumps(data)

    def deserialize(self, payload: str) -> Any:
        return json.loads(self.chomp(payload))


class DillCodeSource(SerializationStrategy):
    """Code: the function's source by ``dill.source.getsource``, dill-dumped, base 64
    (deprecated by Globus in 4.0 for PureSourceDill)."""

    identifier = "04\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        body = dill.source.getsource(data, lstrip=True)
        return self.identifier + codecs.encode(dill.dumps((data.__name__, body)), "base64").decode()

    def deserialize(self, payload: str) -> Any:
        name, body = dill.loads(codecs.decode(self.chomp(payload).encode(), "base64"))
        return _exec_named(body, name)


class DillCodeTextInspect(SerializationStrategy):
    """Code: the function's source by ``inspect.getsource``, dill-dumped, base 64 (deprecated
    by Globus in 4.0 for PureSourceTextInspect)."""

    identifier = "03\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        body = inspect.getsource(data)
        return self.identifier + codecs.encode(dill.dumps((data.__name__, body)), "base64").decode()

    def deserialize(self, payload: str) -> Any:
        name, body = dill.loads(codecs.decode(self.chomp(payload).encode(), "base64"))
        return _exec_named(body, name)


class DillCode(SerializationStrategy):
    """Code: the function itself, ``dill.dumps``, then base 64 (Globus's default)."""

    identifier = "01\n"
    for_code = True

    def serialize(self, data: Any) -> str:
        return self.identifier + codecs.encode(dill.dumps(data), "base64").decode()

    def deserialize(self, payload: str) -> Any:
        return dill.loads(codecs.decode(self.chomp(payload).encode(), "base64"))


class PureSourceTextInspect(SerializationStrategy):
    """Code: ``name:source`` with the source from ``inspect.getsource``."""

    identifier = "st\n"
    for_code = True
    _separator = ":"

    def serialize(self, data: Any) -> str:
        return self.identifier + data.__name__ + self._separator + inspect.getsource(data)

    def deserialize(self, payload: str) -> Any:
        name, body = self.chomp(payload).split(self._separator, 1)
        return _exec_named(body, name)


class PureSourceDill(SerializationStrategy):
    """Code: ``name:source`` with the source from ``dill.source.getsource``."""

    identifier = "sd\n"
    for_code = True
    _separator = ":"

    def serialize(self, data: Any) -> str:
        return self.identifier + data.__name__ + self._separator + dill.source.getsource(data, lstrip=True)

    def deserialize(self, payload: str) -> Any:
        name, body = self.chomp(payload).split(self._separator, 1)
        return _exec_named(body, name)


def pack_buffers(buffers: list[str]) -> str:
    """Buffers joined, each after its length and a newline (Globus's format)."""
    return "".join(f"{len(b)}\n{b}" for b in buffers)


def unpack_buffers(packed_buffer: str) -> list[str]:
    """The buffers ``pack_buffers`` joined; ValueError naming what is malformed."""
    unpacked = []
    while packed_buffer:
        try:
            delimiter, buffer = packed_buffer.split("\n", 1)
        except ValueError as e:
            raise ValueError("Missing newline delimiter") from e
        try:
            buf_len = int(delimiter)
        except ValueError as e:
            raise ValueError(f"Invalid length delimiter: {delimiter}") from e
        if buf_len < 0:
            raise ValueError(f"Length delimiter must be non-negative: {buf_len}")
        if len(buffer) < buf_len:
            raise ValueError(f"Truncated buffer: expected {buf_len} characters, but only {len(buffer)} "
                             f"characters remain")
        current, packed_buffer = buffer[:buf_len], buffer[buf_len:]
        unpacked.append(current)
    return unpacked


class ComboSerializationStrategy(SerializationStrategy, ABC):
    """Every sub-strategy's payload in one; deserializing takes the first that loads."""

    strategies: ClassVar[list[type[SerializationStrategy]]]

    def serialize(self, data: Any) -> str:
        buffers, errors = [], []
        for strategy_cls in self.strategies:
            try:
                buffers.append(self.get_cached_by_class(strategy_cls).serialize(data))
            except Exception as e:  # noqa: BLE001 - Globus's: try the next strategy, report all
                errors.append(f"{strategy_cls.__name__}: {e}")
        if not buffers:
            raise SerializationError("\n\nSerialization errors:\n* " + ("\n* ".join(errors) or "unknown"))
        return self.identifier + pack_buffers(buffers)

    def deserialize(self, payload: str) -> Any:
        errors = []
        for buff in unpack_buffers(self.chomp(payload)):
            s_id = buff[:IDENTIFIER_LENGTH]
            strategy = self.get_cached_by_id(s_id)
            if strategy is None or type(strategy) not in self.strategies:
                errors.append(f"Invalid strategy identifier {s_id!r}")
                continue
            try:
                return strategy.deserialize(buff)
            except Exception as e:  # noqa: BLE001 - Globus's: try the next part, report all
                errors.append(f"{type(strategy).__name__}: {e}")
        raise DeserializationError("\n\nDeserialization errors:\n* " + ("\n* ".join(errors) or "unknown"))


class CombinedCode(SerializationStrategy):
    """Code: DillCodeSource, DillCode, DillCodeTextInspect, PureSourceDill and
    PureSourceTextInspect payloads in one, joined by ``:``; deserializing takes the first that
    loads (deprecated by Globus in 4.0 for AllCodeStrategies)."""

    identifier = "10\n"
    for_code = True
    _chunk_strategies: ClassVar[dict[str, type[SerializationStrategy]]] = {
        s.identifier: s for s in (DillCodeSource, DillCode, DillCodeTextInspect, PureSourceDill,
                                  PureSourceTextInspect)}
    _separator = ":"

    def get_multiple_payloads(self, payload: str) -> tuple[tuple[str, str], ...]:
        parts = iter(self.chomp(payload).split(self._separator))
        return tuple(zip(parts, parts, strict=False))   # pairs: (identifier, payload)

    def serialize(self, data: Any) -> str:
        chunks = []
        for id_, cls in self._chunk_strategies.items():
            try:
                serialized = cls().serialize(data)
            except Exception:  # noqa: BLE001, S112 - Globus's: a strategy that cannot is left out
                continue
            chunks += [serialized[:len(id_)], serialized[len(id_):]]
        if not chunks:
            raise SerializationError("No serialization methods were successful")
        return self.identifier + self._separator.join(chunks)

    def deserialize(self, payload: str, variation: int = 0) -> Any:
        """The first part that loads; with ``variation`` (1-based), that part only."""
        count = 0
        for serial_id, encoded in self.get_multiple_payloads(payload):
            count += 1
            if variation not in (0, count):
                continue
            if serial_id not in self._chunk_strategies:
                raise DeserializationError(f"Invalid serialization id {serial_id}")
            try:
                return self._chunk_strategies[serial_id]().deserialize(serial_id + encoded)
            except Exception as e:  # noqa: BLE001 - Globus's: try the next part
                if variation > 0:
                    raise DeserializationError(f"Failed to deserialize using variation #{count}") from e
        raise DeserializationError(f"Deserialization failed after {count} tries")


class AllCodeStrategies(ComboSerializationStrategy):
    """Code: PureSourceTextInspect, PureSourceDill and DillCode, all in one payload."""

    identifier = "12\n"
    for_code = True
    strategies = [PureSourceTextInspect, PureSourceDill, DillCode]


class AllDataStrategies(ComboSerializationStrategy):
    """Data: JSONData and DillDataBase64, all in one payload."""

    identifier = "13\n"
    for_code = False
    strategies = [JSONData, DillDataBase64]


SELECTABLE_STRATEGIES = [type(s) for s in SerializationStrategy._CACHE.values()]
DEFAULT_STRATEGY_CODE = SerializationStrategy.get_cached_by_class(DillCode)
DEFAULT_STRATEGY_DATA = SerializationStrategy.get_cached_by_class(DillDataBase64)

#: a strategy instance, its class, or the import path of either
Strategylike = SerializationStrategy | type[SerializationStrategy] | str


class AllowlistWildcard(str, Enum):
    """Allowlist values that allow every code (or data) strategy (Globus's strings, as endpoint
    ``allowed_serializers`` lists carry them)."""

    CODE = "globus_compute_sdk.*Code"
    DATA = "globus_compute_sdk.*Data"


def validate_strategylike(value: Strategylike, *, for_code: bool | None = None) -> SerializationStrategy:
    """The registered instance for ``value``; SerializationError (Globus's SerdeError) when it is
    no known strategy or of the other kind (code for data, or data for code)."""
    bad_type_error = SerializationError(
        f"Invalid strategy-like '{value}'. Expected either a SerializationStrategy instance, a subclass "
        f"of SerializationStrategy, or an import path to one.")
    if isinstance(value, str):
        try:
            mod_name, _sep, obj_name = value.rpartition(".")
            value = getattr(importlib.import_module(mod_name), obj_name)
        except Exception as e:  # noqa: BLE001 - any failure to import is a bad strategy path
            raise bad_type_error from e
    class_ = value if inspect.isclass(value) else type(value)
    if not issubclass(class_, SerializationStrategy):
        raise bad_type_error
    if for_code is not None and class_.for_code != for_code:
        etype, gtype = ("code", "data") if for_code else ("data", "code")
        raise SerializationError(f"{class_.__name__} is a {gtype} serialization strategy, expected a "
                                 f"{etype} strategy.")
    instance = SerializationStrategy.get_cached_by_id(class_.identifier)
    if not instance or class_ not in SELECTABLE_STRATEGIES:
        raise SerializationError(f"{class_.__name__} is not a known serialization strategy.")
    return instance


def _parse_allowlist(unvalidated: Iterable[Strategylike | AllowlistWildcard] | None,
                     ) -> set[type[SerializationStrategy]]:
    if not unvalidated:
        return set()
    validated: set[type[SerializationStrategy]] = set()
    wildcards: set[AllowlistWildcard] = set()
    for value in unvalidated:
        try:
            wildcards.add(AllowlistWildcard(value))
        except ValueError:
            validated.add(type(validate_strategylike(value)))
    for wildcard in wildcards:
        code = wildcard == AllowlistWildcard.CODE
        if any(s.for_code == code for s in validated):
            raise SerializationError(f"Cannot mix '{wildcard.value}' with specific deserializers "
                                     f"(got {list(unvalidated)})")
        validated.update(s for s in SELECTABLE_STRATEGIES if s.for_code == code)
    if len({s.for_code for s in validated}) != 2:
        raise SerializationError("Deserialization allowlists must contain at least one code and one data "
                                 f"deserializer/wildcard (got: {list(unvalidated)})")
    return validated


class ComputeSerializer:
    """Globus's serializer facade: one code strategy (default DillCode), one data strategy
    (default DillDataBase64), and an optional allowlist of deserializers."""

    def __init__(self, strategy_code: Strategylike | None = None, strategy_data: Strategylike | None = None,
                 *, allowed_deserializer_types: Iterable[Strategylike | AllowlistWildcard] | None = None):
        self.code_serializer = DEFAULT_STRATEGY_CODE if strategy_code is None else \
            validate_strategylike(strategy_code, for_code=True)
        self.data_serializer = DEFAULT_STRATEGY_DATA if strategy_data is None else \
            validate_strategylike(strategy_data, for_code=False)
        self.allowed_deserializer_types = _parse_allowlist(allowed_deserializer_types)

    def __repr__(self) -> str:
        return (f"ComputeSerializer(strategy_code={type(self.code_serializer).__name__}(), "
                f"strategy_data={type(self.data_serializer).__name__}())")

    @staticmethod
    def serialize_from_list(data: Any, strategies: Iterable[Strategylike]) -> str:
        """The first of ``strategies`` (default: Globus's two) that serializes ``data``."""
        errors: list[Exception] = []
        for strategy in strategies or [DEFAULT_STRATEGY_DATA, DEFAULT_STRATEGY_CODE]:
            try:
                return validate_strategylike(strategy, for_code=callable(data)).serialize(data)
            except Exception as e:  # noqa: BLE001 - Globus's: try the next, report all
                errors.append(e)
        raise SerializationError("All strategies failed:\n* " + "\n* ".join(
            f"{type(e).__name__}: {e}" for e in errors)) from (errors[-1] if errors else None)

    def serialize(self, data: Any) -> str:
        """``data`` as a string: with the code strategy if it is callable, else the data one."""
        stype, strategy = ("Code", self.code_serializer) if callable(data) else ("Data", self.data_serializer)
        try:
            return strategy.serialize(data)
        except Exception as e:
            raise SerializationError(f"{stype} serialization strategy {type(strategy).__name__} failed") from e

    def deserialize(self, payload: str) -> Any:
        """The object a ``serialize`` payload represents, if its strategy is allowed."""
        header = payload[:IDENTIFIER_LENGTH]
        strategy = SerializationStrategy.get_cached_by_id(header)
        if not strategy:
            raise DeserializationError(f"Invalid header: {header} in data payload")
        self.assert_deserializer_allowed(strategy)
        return strategy.deserialize(payload)

    pack_buffers = staticmethod(pack_buffers)
    unpack_buffers = staticmethod(unpack_buffers)

    def unpack_and_deserialize(self, packed_buffer: str) -> list[Any]:
        """The function, args and kwargs of a packed submission."""
        unpacked = [self.deserialize(b) for b in unpack_buffers(packed_buffer)]
        assert len(unpacked) == 3, f"Unpack expects 3 buffers, got {len(unpacked)}"
        return unpacked

    def check_strategies(self, function: Callable, *args: Any, **kwargs: Any) -> list[Any]:
        """``[function, args, kwargs]`` after a round trip through this serializer's strategies,
        as ``submit`` would send them; SerializationError if either way fails."""
        try:
            packed = self.pack_buffers([self.serialize(function), self.serialize(args), self.serialize(kwargs)])
        except Exception as e:
            raise SerializationError("check_strategies failed to serialize") from e
        try:
            return self.unpack_and_deserialize(packed)
        except Exception as e:
            raise DeserializationError("check_strategies failed to deserialize") from e

    def assert_deserializer_allowed(self, strategy: SerializationStrategy) -> None:
        """DeserializationError if an allowlist is set and ``strategy`` is not on it."""
        if not self.allowed_deserializer_types or type(strategy) in self.allowed_deserializer_types:
            return
        stype = "Code" if strategy.for_code else "Data"
        payload_type = "function" if strategy.for_code else "arguments"
        allowed = ", ".join(sorted(t.__name__ for t in self.allowed_deserializer_types))
        raise DeserializationError(
            f"\n {stype} serializer {type(strategy).__name__} disabled by current configuration.\n The current "
            f"configuration requires the *{payload_type}* to be serialized with one of the allowed {stype} "
            f"classes:\n\n     Allowed serializers: {allowed}")


class SourceCode:
    """A function given as source text and the name of its entry point (Globus's
    ``register_source_code``): calling it runs the source in a fresh namespace, as Globus's
    PureSourceTextInspect does on the endpoint, and calls the named function. It pickles as its
    text (this class travels by reference: faas is on every worker)."""

    def __init__(self, source: str, function_name: str):
        if not isinstance(source, str):
            raise TypeError(f"register_source_code: source must be a str, got {type(source).__name__}")
        if not isinstance(function_name, str) or not function_name.isidentifier():
            raise TypeError(f"register_source_code: function_name must be a Python identifier, got "
                            f"{function_name!r}")
        try:
            tree = ast.parse(source, f"<source of {function_name}>")
        except SyntaxError as e:
            raise SerializationError(f"register_source_code: the source does not parse: {e}") from e
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        if function_name not in defined:
            raise SerializationError(f"register_source_code: the source defines no top-level {function_name!r} "
                                     f"(it defines: {', '.join(sorted(defined)) or 'nothing'})")
        self.source, self.function_name = source, function_name
        self.__name__ = self.__qualname__ = function_name
        self._fn: Callable | None = None

    def __getstate__(self) -> dict:
        return {"source": self.source, "function_name": self.function_name}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["source"], state["function_name"])   # type: ignore[misc]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._fn is None:
            self._fn = _exec_named(self.source, self.function_name)
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"SourceCode(function_name={self.function_name!r}, source=<{len(self.source)} characters>)"
