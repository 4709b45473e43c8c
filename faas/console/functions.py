"""The functions view: this user's functions (``functions/<client id>/``), named by each frame's
header."""
from __future__ import annotations

from .. import serialize
from ..exceptions import SerializationError, SignatureError
from .context import Console


def _info(c: Console, function_id: str) -> dict | None:
    """``{name, size}``, read once: a function's bytes never change (its id is their hash)."""
    info = c.functions.get(function_id)
    if info is None:
        try:   # bounded and checked against its id: never a planted object read whole
            data = c.client.stored_function(function_id)
        except (SignatureError, ValueError):
            return None
        if data is None:
            return None
        try:
            name = serialize.unframe(data)[0].get("name")
        except SerializationError:
            name = None
        info = c.functions[function_id] = {"name": name, "size": len(data)}
    return info


def function_name(c: Console, function_id: str | None) -> str | None:
    if not function_id:
        return None
    info = _info(c, function_id)
    return info["name"] if info else None


def list_functions(c: Console) -> list[dict]:
    """Every stored function with its name, size, and first and last run and run count in the
    journal window (the store keeps no creation time that every backend offers)."""
    runs: dict[str | None, list] = {}   # a record without a function id counts under None
    for r in c.journal.records():     # newest first
        fid = r.get("function_id")
        s = runs.get(fid)
        if s is None:
            runs[fid] = [r.get("sent") or r.get("finished"), r.get("finished"), 1]
        else:
            s[0] = r.get("sent") or r.get("finished")
            s[2] += 1
    out = []
    prefix = f"functions/{c.client.client_id}/"
    for key in c.store.list(prefix):
        fid = key[len(prefix):]
        info = _info(c, fid)
        if info is None:
            continue
        first, last, count = runs.get(fid, (None, None, 0))
        out.append({"function_id": fid, "name": info["name"], "size": info["size"],
                    "first_seen": first, "last_run": last, "runs": count})
    out.sort(key=lambda f: (-(f["last_run"] or 0), f["name"] or ""))
    return out
