"""JSONPath as the Amazon States Language (and Globus Flows) use it, and the data plumbing built
on it: InputPath / Parameters / ResultPath / OutputPath.

Supported path forms: ``$``, ``$.a.b``, ``$.a[0]``, ``$.a[-1]``, ``$['k']``, ``$["k"]``, and the
wildcards ``$.a[*].b`` / ``$.a.*`` (only in *paths*, never in a ResultPath, which must be a
*reference path*). ``$$`` (ASL's context object) and ``$._context`` (Globus's) both read the run
context (``flow_id``, ``run_id``, ``username``, and inside a Map ``Map.Item.Value/Index``);
the context is read-only: a ResultPath into it is an error.

Recursive descent (``..``), filters (``[?(...)]``) and slices are not ASL reference paths and are
refused with a clear message.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from faas.flows.errors import PathError, PathNotFound, PathWriteError

CONTEXT_KEY = "_context"
PRIVATE_KEY = "__Private_Parameters"

# Tokens: ("key", str) | ("index", int) | ("wild", None)
Token = tuple


@lru_cache(maxsize=4096)
def parse(path: str) -> tuple[str, tuple[Token, ...]]:
    """Parse ``path`` into ``(root, tokens)`` where root is ``"$"`` or ``"$$"``.

    Raises PathError with the position of the first bad character."""
    if not isinstance(path, str):
        raise PathError(f"a JSONPath must be a string, not {type(path).__name__}")
    if not path.startswith("$"):
        raise PathError(f"{path!r}: a JSONPath starts with '$'")
    root = "$$" if path.startswith("$$") else "$"
    i = len(root)
    n = len(path)
    tokens: list[Token] = []

    def bad(msg: str) -> PathError:
        return PathError(f"{path!r}: {msg} at position {i}")

    while i < n:
        c = path[i]
        if c == ".":
            i += 1
            if i < n and path[i] == ".":
                raise bad("recursive descent '..' is not supported")
            if i < n and path[i] == "*":
                tokens.append(("wild", None))
                i += 1
                continue
            j = i
            while j < n and path[j] not in ".[]'\" \t\n":
                j += 1
            if j == i:
                raise bad("expected a field name after '.'")
            tokens.append(("key", path[i:j]))
            i = j
        elif c == "[":
            i += 1
            if i < n and path[i] in "'\"":
                quote = path[i]
                i += 1
                buf = []
                while i < n and path[i] != quote:
                    if path[i] == "\\" and i + 1 < n:
                        i += 1
                    buf.append(path[i])
                    i += 1
                if i >= n:
                    raise bad("unterminated quoted name")
                i += 1
                tokens.append(("key", "".join(buf)))
            elif i < n and path[i] == "*":
                i += 1
                tokens.append(("wild", None))
            elif i < n and path[i] == "?":
                raise bad("filter expressions '[?(...)]' are not supported")
            else:
                j = i
                if j < n and path[j] == "-":
                    j += 1
                while j < n and path[j].isdigit():
                    j += 1
                if j == i or path[i:j] == "-":
                    raise bad("expected an index, a quoted name or '*' inside '[ ]'")
                if j < n and path[j] in ":,":
                    raise bad("slices and unions are not supported")
                tokens.append(("index", int(path[i:j])))
                i = j
            if i >= n or path[i] != "]":
                raise bad("expected ']'")
            i += 1
        else:
            raise bad(f"unexpected character {c!r}")
    return root, tuple(tokens)


def is_valid(path: str, *, reference: bool = False) -> str | None:
    """Return None if ``path`` is a valid path (a reference path if ``reference``), else why not."""
    try:
        _root, tokens = parse(path)
    except PathError as e:
        return str(e)
    if reference and any(t[0] == "wild" for t in tokens):
        return f"{path!r}: wildcards are not allowed in a reference path"
    return None


def is_context_path(path: str) -> bool:
    root, tokens = parse(path)
    return root == "$$" or (bool(tokens) and tokens[0] == ("key", CONTEXT_KEY))


def _fmt(tokens) -> str:
    out = "$"
    for kind, v in tokens:
        out += f".{v}" if kind == "key" else ("[*]" if kind == "wild" else f"[{v}]")
    return out


def get(data: Any, path: str, context: dict | None = None) -> Any:
    """The value at ``path`` in ``data`` (``$$`` / ``$._context`` read ``context``).

    A path with a wildcard returns the list of its matches (possibly empty). A missing value
    raises PathNotFound naming the first part that is missing."""
    root, tokens = parse(path)
    if root == "$$":
        cur = context if context is not None else {}
    elif tokens and tokens[0] == ("key", CONTEXT_KEY):
        cur, tokens = (context if context is not None else {}), tokens[1:]
    else:
        cur = data
    if any(t[0] == "wild" for t in tokens):
        return _get_wild(cur, list(tokens), path)
    for k, (kind, v) in enumerate(tokens):
        if kind == "key" and isinstance(cur, dict) and v in cur:
            cur = cur[v]
        elif kind == "index" and isinstance(cur, list) and -len(cur) <= v < len(cur):
            cur = cur[v]
        else:
            raise PathNotFound(f"{path}: no value at {_fmt(tokens[:k + 1])}")
    return cur


def _get_wild(cur: Any, tokens: list, path: str) -> list:
    matches = [cur]
    for kind, v in tokens:
        nxt = []
        for m in matches:
            if kind == "wild":
                if isinstance(m, list):
                    nxt.extend(m)
                elif isinstance(m, dict):
                    nxt.extend(m.values())
            elif kind == "key" and isinstance(m, dict) and v in m:
                nxt.append(m[v])
            elif kind == "index" and isinstance(m, list) and -len(m) <= v < len(m):
                nxt.append(m[v])
        matches = nxt
    return matches


def exists(data: Any, path: str, context: dict | None = None) -> bool:
    try:
        get(data, path, context)
        return True
    except PathNotFound:
        return False


def select(data: Any, path: str | None, context: dict | None = None) -> Any:
    """InputPath / OutputPath: ``None`` (JSON null) gives ``{}``; otherwise the value at path."""
    if path is None:
        return {}
    return get(data, path, context)


def put(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath: a new document with ``value`` placed at ``path`` in ``data``.

    ``None`` discards the result (returns ``data``); ``$`` replaces the whole document. Missing
    objects on the way are created; a ResultPath into ``$._context`` / ``$$`` or through a
    non-object raises PathWriteError. ``data`` itself is never modified."""
    if path is None:
        return data
    root, tokens = parse(path)
    if root == "$$" or (tokens and tokens[0] == ("key", CONTEXT_KEY)):
        raise PathWriteError(f"{path}: the run context ($._context) is read-only")
    if any(t[0] == "wild" for t in tokens):
        raise PathWriteError(f"{path}: a ResultPath cannot contain wildcards")
    if not tokens:
        return value
    if not isinstance(data, (dict, list)):
        raise PathWriteError(f"{path}: cannot place a result inside a {_json_type(data)}")
    out = copy.deepcopy(data)
    cur = out
    for k, (kind, v) in enumerate(tokens):
        last = k == len(tokens) - 1
        where = _fmt(tokens[:k + 1])
        if kind == "key":
            if not isinstance(cur, dict):
                raise PathWriteError(f"{path}: {_fmt(tokens[:k])} is a {_json_type(cur)}, not an object")
            if last:
                cur[v] = value
            else:
                if v not in cur:
                    cur[v] = {}
                elif not isinstance(cur[v], (dict, list)):
                    raise PathWriteError(f"{path}: {where} is a {_json_type(cur[v])}, not an object")
                cur = cur[v]
        else:
            if not isinstance(cur, list) or not -len(cur) <= v < len(cur):
                raise PathWriteError(f"{path}: no list element at {where}")
            if last:
                cur[v] = value
            else:
                cur = cur[v]
    return out


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def render(template: Any, data: Any, context: dict | None = None) -> Any:
    """Parameters / ResultSelector / ItemSelector templating.

    Recursively through dicts and lists: a key ending ``.$`` takes the value at the JSONPath it
    holds (the key loses its ``.$``); a key ending ``.=`` takes the value of the expression it
    holds, evaluated with the top-level names of ``data`` and ``_context``; other values are
    copied (and templated inside)."""
    from faas.flows import expressions  # local import: expressions uses paths too

    if isinstance(template, list):
        return [render(v, data, context) for v in template]
    if not isinstance(template, dict):
        return copy.deepcopy(template)
    out: dict = {}
    for key, val in template.items():
        if isinstance(key, str) and key.endswith(".$"):
            if not isinstance(val, str):
                raise PathError(f"{key}: the value of a '.$' key must be a JSONPath string")
            out[key[:-2]] = copy.deepcopy(get(data, val, context))
        elif isinstance(key, str) and key.endswith(".="):
            if not isinstance(val, str):
                raise PathError(f"{key}: the value of a '.=' key must be an expression string")
            out[key[:-2]] = expressions.evaluate(val, expression_names(data, context))
        else:
            out[key] = render(val, data, context)
    return out


def expression_names(data: Any, context: dict | None) -> dict:
    """Names visible to an expression: the state's top-level keys plus ``_context``."""
    names = dict(data) if isinstance(data, dict) else {}
    names[CONTEXT_KEY] = dict(context or {})
    return names


def split_private(params: Any) -> tuple[Any, list[str]]:
    """Remove ``__Private_Parameters`` from rendered parameters: ``(params, private_names)``."""
    if not isinstance(params, dict) or PRIVATE_KEY not in params:
        return params, []
    params = dict(params)
    private = params.pop(PRIVATE_KEY)
    if isinstance(private, str):
        private = [private]
    return params, [str(p) for p in (private or [])]


def redact(params: Any, private: list[str]) -> Any:
    """``params`` with the private names hidden, for status and log."""
    if not private or not isinstance(params, dict):
        return params
    return {k: v for k, v in params.items() if k not in private}
