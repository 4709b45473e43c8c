"""Previews of arguments and results without running anyone's code.

A pickle can run code when loaded, and the console must never run user code: it loads payloads
with an unpickler that knows only plain built-in types (what faas pickles with the C pickler
for plain data). Anything else is described (its size and the first class it needs), not loaded.
"""
from __future__ import annotations

import io
import pickle
import reprlib
from typing import Any

from .. import serialize

_SAFE = {("builtins", n) for n in ("set", "frozenset", "complex", "bytearray", "slice", "range")} | {
    ("collections", "OrderedDict"), ("collections", "deque"), ("datetime", "datetime"),
    ("datetime", "date"), ("datetime", "time"), ("datetime", "timedelta"), ("datetime", "timezone"),
    ("decimal", "Decimal"), ("uuid", "UUID"), ("_codecs", "encode"),
}

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 12
_repr.maxlevel = 4


class NotPlain(Exception):
    pass


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _SAFE:
            return super().find_class(module, name)
        raise NotPlain(f"{module}.{name}")


def safe_loads(payload: bytes) -> Any:
    """Load a pickle of plain data; raise :class:`NotPlain` naming the first other class."""
    return _PlainUnpickler(io.BytesIO(payload)).load()


def _describe(payload: bytes) -> str:
    try:
        return _repr.repr(safe_loads(payload))
    except NotPlain as e:
        return f"({len(payload):,} bytes; not shown: it needs {e}, and the console loads only plain data)"
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
    except Exception as e:  # noqa: BLE001 - unpickling untrusted bytes can raise anything; a preview reports it
        return {"header": header, "values": None, "note": f"not readable: {type(e).__name__}: {e}"}
    values = []
    for o in outcomes if isinstance(outcomes, list) else []:
        if isinstance(o, tuple) and o and o[0] is True:
            values.append(_repr.repr(o[1]))
        elif isinstance(o, tuple) and len(o) == 5:
            values.append(f"raised {o[2]}: {o[3]}")
    return {"header": header, "values": values}


def args_preview(data: bytes) -> dict:
    """``{"n": calls, "calls": [repr text of (args, kwargs)], "size": bytes}``."""
    header, payload = serialize.unframe(data)
    out = {"n": header.get("n"), "size": len(data)}
    try:
        calls = safe_loads(payload)
    except NotPlain as e:
        out["note"] = f"not shown: the arguments need {e}, and the console loads only plain data"
        return out
    except Exception as e:  # noqa: BLE001 - unpickling untrusted bytes can raise anything; a preview reports it
        out["note"] = f"not readable: {type(e).__name__}"
        return out
    shown = []
    for args, kwargs in list(calls)[:5]:
        parts = [_repr.repr(a) for a in args] + [f"{k}={_repr.repr(v)}" for k, v in kwargs.items()]
        shown.append("(" + ", ".join(parts) + ")")
    out["calls"] = shown
    return out
