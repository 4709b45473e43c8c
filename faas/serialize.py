"""dill serialization in a small frame that says who wrote it.

A frame is ``b"FAAS1" + u32 header length + JSON header + payload``. The header records the
writer's Python and dill versions (a worker on another Python minor version refuses the payload
with both versions named, rather than crashing on a bytecode mismatch) and whatever the reader
needs without unpickling (a result's status, its error text).

What the store keeps for a client (results, spilled arguments, functions) is a *sealed* frame
(:func:`seal`): a frame whose header holds only what others may see (the kind, the task id, a
result's status and timings) and whose payload is the whole plain frame, encrypted under a
secret of the client's (:mod:`faas.sealing`) with that header as associated data. Whoever holds
neither the secret nor the task's message learns sizes, never contents, and cannot make one that
opens.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import sysconfig
import traceback
import types
from collections.abc import Callable, Sequence
from typing import Any

import dill
from tblib import pickling_support

from . import plain_data, sealing
from .exceptions import ResultForged, SerializationError, SignatureError

# globus_compute_sdk.serialize's names, so Globus code runs with its import changed
# (``from faas.serialize import ComputeSerializer, JSONData``): faas/serialize_strategies.py
from .serialize_strategies import DEFAULT_STRATEGY_CODE as DEFAULT_STRATEGY_CODE
from .serialize_strategies import DEFAULT_STRATEGY_DATA as DEFAULT_STRATEGY_DATA
from .serialize_strategies import AllCodeStrategies as AllCodeStrategies
from .serialize_strategies import AllDataStrategies as AllDataStrategies
from .serialize_strategies import AllowlistWildcard as AllowlistWildcard
from .serialize_strategies import CombinedCode as CombinedCode
from .serialize_strategies import ComboSerializationStrategy as ComboSerializationStrategy
from .serialize_strategies import ComputeSerializer as ComputeSerializer
from .serialize_strategies import DillCode as DillCode
from .serialize_strategies import DillCodeSource as DillCodeSource
from .serialize_strategies import DillCodeTextInspect as DillCodeTextInspect
from .serialize_strategies import DillDataBase64 as DillDataBase64
from .serialize_strategies import JSONData as JSONData
from .serialize_strategies import PureSourceDill as PureSourceDill
from .serialize_strategies import PureSourceTextInspect as PureSourceTextInspect
from .serialize_strategies import SerializationStrategy as SerializationStrategy

MAGIC = b"FAAS1"
_JSON = json.JSONDecoder()
PY_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
PY_MINOR = "{}.{}".format(*sys.version_info[:2])
DILL_VERSION = dill.__version__

pickling_support.install()   # tracebacks of remote exceptions survive pickling


def frame(header: dict, payload: bytes) -> bytes:
    head = json.dumps({"py": PY_VERSION, "dill": DILL_VERSION, "ser": "dill", **header},
                      separators=(",", ":")).encode()
    return MAGIC + struct.pack(">I", len(head)) + head + payload


def unframe(data: bytes) -> tuple[dict, bytes]:
    if not data.startswith(MAGIC) or len(data) < 9:
        raise SerializationError("not a faas object (bad magic): it was not written by faas or is corrupt")
    (n,) = struct.unpack(">I", data[5:9])
    try:
        text = data[9:9 + n].decode()
        header, end = _JSON.raw_decode(text)   # json.loads without its checks for other encodings
        if end != len(text) or not isinstance(header, dict):
            raise ValueError("not one JSON object")
    except (ValueError, RecursionError) as e:   # RecursionError: arrays nested thousands deep
        raise SerializationError(f"corrupt faas object header: {e or type(e).__name__}") from None
    return header, data[9 + n:]


def seal(plain: bytes, public: dict, secret: str, purpose: str) -> bytes:
    """``plain`` (a frame) encrypted under ``secret`` in a frame whose header is ``public``
    (what anyone who reads the store may see), authenticated with it."""
    head = json.dumps({**public, "seal": sealing.SEAL}, separators=(",", ":")).encode()
    prefix = MAGIC + struct.pack(">I", len(head)) + head
    return prefix + sealing.encrypt(plain, secret, purpose, prefix)


def unseal(data: bytes, secret: str, purpose: str) -> tuple[dict, bytes]:
    """``(public header, plain frame)`` of what :func:`seal` made with ``secret`` for
    ``purpose``; else :class:`SerializationError` saying why (nothing of it is used)."""
    public, sealed = unframe(data)
    if public.get("seal") != sealing.SEAL:
        raise SerializationError(f"it is not sealed ({sealing.SEAL})")
    plain = sealing.decrypt(sealed, secret, purpose, data[:len(data) - len(sealed)])
    if plain is None:
        raise SerializationError("it does not open under its secret")
    return public, plain


#: the fields of a result's header that anyone who reads the store sees (the router reads them
#: for its audit log); the rest (errors, tracebacks, where it ran) is sealed with the payload
RESULT_PUBLIC = ("task_id", "kind", "status", "n", "started", "finished")


def unseal_for(data: bytes, secret: str, purpose: str, field: str, expected: str) -> bytes:
    """The plain frame of what :func:`seal` made for ``purpose`` with ``secret``, its public
    header's ``field`` (authenticated with it) naming ``expected``: sealed for this task or
    function, not copied from another; else :class:`SerializationError` saying why."""
    public, plain = unseal(data, secret, purpose)
    if public.get(field) != expected:
        raise SerializationError(f"it names {field.partition('_')[0]} {public.get(field)!r}")
    return plain


def open_result(data: bytes, task_id: str, rk: str) -> tuple[dict, bytes]:
    """``(header, plain frame)`` of a sealed result frame, once it opens under the secret of
    ``task_id`` (so the endpoint that ran that task wrote it, unaltered); else
    :class:`ResultForged` (nothing is unpickled). The one check of a stored result: a client
    before it loads one, a pool before it tells a client of one its dead worker stored."""
    try:
        plain = unseal_for(data, rk, "result", "task_id", task_id)
        header, _ = unframe(plain)
    except SerializationError as e:
        raise ResultForged(f"the result found for task {task_id} was not written by the endpoint that ran "
                           f"it ({e}): forged, planted first or altered in the store; it was not loaded",
                           task_id=task_id) from None
    return header, plain


def check_serializer(header: dict, allowed: list[str], what: str) -> None:
    ser = header.get("ser", "dill")
    if ser not in allowed:
        raise SerializationError(f"{what} was serialized with {ser!r}, which this endpoint does not "
                                 f"load (allowed_serializers: {', '.join(allowed)})")


def check_python(header: dict, what: str) -> None:
    """Refuse a payload pickled by another Python minor version (bytecode differs)."""
    theirs = ".".join(str(header.get("py", "?")).split(".")[:2])
    if theirs != PY_MINOR:
        raise SerializationError(
            f"{what} was serialized by Python {header.get('py')} (dill {header.get('dill')}) but this "
            f"worker runs Python {PY_VERSION} (dill {DILL_VERSION}); run the client and the endpoint "
            f"on the same Python minor version")


_PLAIN_TYPES = frozenset((int, float, complex, str, bytes, bool, type(None),
                          list, tuple, dict, set, frozenset))


class _NotPlain(Exception):
    pass


class _PlainPickler(pickle.Pickler):
    """The C pickler, refusing anything but built-in scalars and containers (exact types): for
    those it writes exactly what dill would, about 50x faster (dill's pickler is pure Python).
    The C pickler asks ``reducer_override`` of every object it does not write itself (a class,
    a function, an instance, a subclass of a built-in), so the check costs no walk of its own."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in _PLAIN_TYPES or obj is complex:   # a complex pickles as a call of its type
            return NotImplemented
        raise _NotPlain


def _plain_pickle(obj: Any) -> bytes | None:
    """``obj`` pickled by the C pickler if it holds only built-in scalars and containers; else None."""
    f = io.BytesIO()
    try:
        _PlainPickler(f, protocol=5).dump(obj)
    except (_NotPlain, RecursionError):
        return None
    return f.getvalue()


def dumps(obj: Any, what: str, fallback: Callable[[], Any] | None = None) -> bytes:
    """``fallback``: what to pickle instead (without dill's ``recurse``) when ``recurse`` never ends."""
    try:
        plain = _plain_pickle(obj)
        if plain is not None:
            return plain
        try:
            return dill.dumps(obj, protocol=5, recurse=True)
        except RecursionError:
            # dill's recurse=True follows closures with no memo, so a function that calls itself
            # through its closure (a nested recursive def) never ends; without it dill's pickler
            # memo ties the knot. The fallback gives such functions only the globals they use.
            return dill.dumps(obj if fallback is None else fallback(), protocol=5, recurse=False)
    except Exception as e:
        raise SerializationError(f"cannot serialize {what}: {type(e).__name__}: {e}") from e


def loads(payload: bytes, what: str) -> Any:
    try:
        return dill.loads(payload)
    except Exception as e:
        raise SerializationError(f"cannot deserialize {what}: {type(e).__name__}: {e}") from e


# -- functions ---------------------------------------------------------------------------

def _installed(module_name: str | None) -> bool:
    """True for modules of the standard library or site-packages: the endpoint has them too."""
    mod = sys.modules.get(module_name or "")
    path = getattr(mod, "__file__", None)
    if mod is None or path is None:
        return module_name in sys.builtin_module_names
    path = os.path.realpath(path)
    return any(path.startswith(os.path.realpath(p) + os.sep) for p in _LIB_DIRS)


_LIB_DIRS = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}


def _by_value(fn: Callable, memo: dict | None = None) -> Callable:
    """A copy of a function from the user's own module (a script beside it, a repo checkout), so
    dill ships its code instead of a reference the endpoint could not import. The functions of
    that module it calls are copied too (classes and other modules still go by reference)."""
    if not isinstance(fn, types.FunctionType) or fn.__module__ in (None, "__main__") or _installed(fn.__module__):
        return fn
    memo = {} if memo is None else memo
    if id(fn) in memo:
        return memo[id(fn)]
    glob = {"__builtins__": fn.__globals__.get("__builtins__"), "__name__": fn.__module__}
    copy = types.FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__, copy.__qualname__, copy.__doc__ = fn.__kwdefaults__, fn.__qualname__, fn.__doc__
    copy.__dict__.update(fn.__dict__)
    memo[id(fn)] = copy
    for name in _global_names(fn.__code__):
        if name in fn.__globals__:
            value = fn.__globals__[name]
            glob[name] = _by_value(value, memo) if isinstance(value, types.FunctionType) else value
    return copy


def _detached(fn: Any, memo: dict) -> Any:
    """For dill without ``recurse`` (see :func:`dumps`): a copy of a function of the user's code
    (``__main__`` or their own modules) whose globals hold only the names it uses, and whose
    closure cells hold such copies too, so dill ships it whole (a module's whole ``__dict__``
    would go by reference, to a module the endpoint may not have). ``memo`` (by id) keeps
    self-references, and cells shared between closures, as they are."""
    if isinstance(fn, types.CellType):
        if id(fn) not in memo:
            memo[id(fn)] = cell = types.CellType()
            try:
                cell.cell_contents = _detached(fn.cell_contents, memo)
            except ValueError:   # an empty cell
                pass
        return memo[id(fn)]
    if not isinstance(fn, types.FunctionType) or (
            fn.__module__ not in (None, "__main__") and _installed(fn.__module__)):
        return fn
    if id(fn) in memo:
        return memo[id(fn)]
    closure = tuple(_detached(c, memo) for c in fn.__closure__) if fn.__closure__ else None
    if id(fn) in memo:   # made meanwhile, reached through its own closure
        return memo[id(fn)]
    glob = {"__builtins__": fn.__globals__.get("__builtins__"), "__name__": fn.__module__}
    copy = types.FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__, closure)
    copy.__kwdefaults__, copy.__qualname__, copy.__doc__ = fn.__kwdefaults__, fn.__qualname__, fn.__doc__
    copy.__dict__.update(fn.__dict__)
    memo[id(fn)] = copy
    for name in sorted(_global_names(fn.__code__)):
        if name in fn.__globals__:
            glob[name] = _detached(fn.__globals__[name], memo)
    return copy


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def function_bytes(fn: Callable) -> tuple[str, bytes]:
    """``(function_id, framed bytes)``. The id is the SHA-256 of the frame, so the same function
    from the same Python gives the same id and is stored once."""
    if not callable(fn):
        raise SerializationError(f"expected a callable, got {type(fn).__name__}")
    payload = dumps(_by_value(fn), f"function {_name(fn)!r}", fallback=lambda: _detached(fn, {}))
    data = frame({"kind": "function", "name": _name(fn)}, payload)
    return hashlib.sha256(data).hexdigest(), data


def _name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def seal_function(data: bytes, function_id: str, fk: str) -> bytes:
    """A function's frame as the store keeps it: sealed with the function's secret ``fk``
    (:func:`faas.sealing.function_secret`: one per function, since one stored copy serves all
    its tasks; each task message carries it), so only its client and the endpoints it sends
    the function to read it. Its id stays the SHA-256 of the plain frame (what
    ``allowed_functions`` names), checked once it is opened."""
    return seal(data, {"kind": "function", "function_id": function_id}, fk, "function")


def open_function(data: bytes, function_id: str, fk: str | None) -> bytes:
    """The plain frame of what :func:`seal_function` made for ``function_id``, its hash checked
    against the id; else :class:`SignatureError` (nothing of it is loaded)."""
    try:
        if fk is None:
            raise SerializationError("the task's message carries no function secret (fk): send it "
                                     "again from a current faas client")
        plain = unseal_for(data, fk, "function", "function_id", function_id)
    except SerializationError as e:
        raise SignatureError(f"the object stored for function {function_id} is not the one its client "
                             f"sealed ({e}): planted or corrupted in the store; not loaded") from None
    if hashlib.sha256(plain).hexdigest() != function_id:
        raise SignatureError(f"the bytes stored for function {function_id} do not hash to its id: "
                             f"the object was swapped or corrupted in the store; not loaded")
    return plain


def load_function(data: bytes, function_id: str, allowed: Sequence[str] = ("dill",)) -> Callable:
    """The function of a plain frame :func:`open_function` gave (it checked the frame hashes to
    ``function_id``: not hashed again here, a function may be 64 MiB)."""
    header, payload = unframe(data)
    check_serializer(header, list(allowed), f"function {header.get('name', function_id)}")
    check_python(header, f"function {header.get('name', function_id)}")
    return loads(payload, f"function {header.get('name')} ({function_id})")


# -- arguments ---------------------------------------------------------------------------

def calls_bytes(calls: list[tuple[tuple, dict]]) -> bytes:
    """Arguments of one task: a list of ``(args, kwargs)``, one per call (``map`` chunks > 1)."""
    return frame({"kind": "args", "n": len(calls)}, dumps(calls, "the arguments"))


def seal_args(data: bytes, task_id: str, rk: str) -> bytes:
    """Arguments too large for the message, as the store keeps them: sealed with the task's
    secret (the worker has it from the message), so only the client and its endpoint read them."""
    return seal(data, {"kind": "args", "task_id": task_id}, rk, "args")


def open_args(data: bytes, task_id: str, rk: str) -> bytes:
    """The plain frame of what :func:`seal_args` made for ``task_id``; else
    :class:`SignatureError` (nothing of it is loaded)."""
    try:
        plain = unseal_for(data, rk, "args", "task_id", task_id)
    except SerializationError as e:
        raise SignatureError(f"the arguments stored for task {task_id} are not the ones its client "
                             f"sealed ({e}): swapped or corrupted; not loaded") from None
    return plain


#: what dill's own loaders in a refused payload stand for, in the sender's words
_DILL_KINDS = {"_create_array": "a numpy array", "_create_type": "a class of the sender's",
               "_create_function": "a function", "_create_code": "code",
               "_eval_repr": "a range, slice or the like, as dill writes it",
               "_create_namedtuple": "a namedtuple", "_load_type": "a type"}


def load_calls(data: bytes, allowed: Sequence[str] = ("dill",),
               plain_only: bool = False) -> list[tuple[tuple, dict]]:
    """The calls of a task. ``plain_only`` (an endpoint that runs only its allowed_functions):
    loaded as plain data only, since unpickling anything else runs what its sender chose."""
    header, payload = unframe(data)
    check_serializer(header, list(allowed), "the arguments")
    check_python(header, "the arguments")
    if not plain_only:
        return loads(payload, "the arguments")
    try:
        calls = plain_data.loads(payload, max(plain_data.BUILD_LIMIT, 4 * len(payload)))
    except plain_data.NotPlain as e:
        what = next((f"{e} ({kind})" for name, kind in _DILL_KINDS.items() if name in str(e)), str(e))
        raise SerializationError(
            f"the arguments hold {what}, which is not plain data: this endpoint runs only its "
            f"allowed_functions, so it loads arguments of plain data only (numbers, text, bytes, "
            f"lists, tuples, dicts, sets, datetimes, decimals, UUIDs), never an object whose "
            f"loading could run code") from None
    except (plain_data.TooLarge, pickle.UnpicklingError, ValueError, TypeError, EOFError) as e:
        raise SerializationError(f"cannot load the arguments as plain data: {e}") from None
    if not isinstance(calls, list) or not all(
            isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], tuple) and isinstance(c[1], dict)
            and all(isinstance(k, str) for k in c[1]) for c in calls):
        raise SerializationError("the arguments are not a list of (args, kwargs) calls")
    return calls


# -- results -----------------------------------------------------------------------------

class RemoteTraceback(Exception):
    """Set as ``__cause__`` of a re-raised remote exception, like ProcessPoolExecutor does."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


def type_name(kind: type) -> str:
    """An exception type as results and ``TaskFailed.remote_type`` name it: ``module.QualName``."""
    return f"{kind.__module__}.{kind.__qualname__}"


def error_outcome(exc: BaseException) -> tuple:
    """``(False, pickled exception or None, type name, message, traceback text)``."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    blob = None
    # With its traceback first (tblib); a very deep one (RecursionError) or an unpicklable
    # frame falls back to the bare exception: the text above carries the traceback anyway.
    for candidate in (exc, _bare(exc)):
        try:
            blob = dill.dumps(candidate, protocol=5, recurse=True)
            dill.loads(blob)  # a type that pickles but cannot be rebuilt goes as text only
            break
        except BaseException:  # noqa: BLE001 - RecursionError too
            blob = None
    return (False, blob, type_name(type(exc)), str(exc), text)


def _bare(exc: BaseException) -> BaseException:
    try:
        bare = copy.copy(exc)
        bare.__traceback__ = bare.__cause__ = bare.__context__ = None
        return bare
    except Exception:  # noqa: BLE001 - any exception type's copy may fail its own way: keep the original
        return exc


def _picklable(outcome: tuple) -> tuple:
    """``outcome``, or an error outcome saying why its value cannot be pickled."""
    if outcome[0]:
        try:
            dumps(outcome[1], "a result")
        except SerializationError as e:
            why = e.__cause__ or e
            return error_outcome(SerializationError(
                f"the function returned a {type(outcome[1]).__name__} that cannot be serialized: "
                f"{type(why).__name__}: {why}"))
    return outcome


def result_bytes(header: dict, outcomes: list[tuple], rk: str | None) -> bytes:
    """A task's result: header (status, timings, first error as text) + pickled outcomes,
    sealed with the task's secret ``rk`` (:func:`seal`) so that only its client reads it and
    can tell it from a planted one. ``header`` must name the ``task_id``.

    Each outcome is ``(True, value)`` or an :func:`error_outcome`. Values that cannot be
    pickled become error outcomes here, on the worker, with a message that says so."""
    try:
        payload = dumps(outcomes, "the results")
    except SerializationError:
        outcomes = [_picklable(o) for o in outcomes]
        payload = dumps(outcomes, "the results")
    failed = [o for o in outcomes if not o[0]]
    header = dict(header)
    header.setdefault("status", "failed" if failed else "success")
    header["kind"] = "result"
    header["n"] = len(outcomes)
    if failed:
        header["error"] = {"type": failed[0][2], "message": failed[0][3], "traceback": failed[0][4]}
    plain = frame(header, payload)
    if rk is None:
        return plain
    return seal(plain, {k: header[k] for k in RESULT_PUBLIC if k in header}, rk, "result")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)
