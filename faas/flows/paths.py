"""JSONPath as the Amazon States Language (and Globus Flows) use it, and the data plumbing built
on it: InputPath / ResultPath / OutputPath and ``.$`` selection.

Step Functions evaluates paths with Jayway JsonPath; this module follows its rules for the forms
it supports: ``$``, ``$.a.b``, ``$.a[0]``, ``$.a[-1]``, ``$['k']`` / ``$["k"]`` (with Jayway's
escapes ``\\'`` ``\\"`` ``\\\\`` ``\\n`` ``\\t`` ``\\uXXXX``...), wildcards ``$.a[*].b`` /
``$.a.*``, slices ``$.a[1:]`` ``$.a[:2]`` ``$.a[1:5]`` ``$.a[-2:]`` and filters
``$.a[?(@.size > 10 && @.name != 'x')]`` (``== != < <= > >=``, ``&&``, ``||``, ``!``,
parentheses, ``[?(@.key)]`` for "has key"; ``@`` matches objects only, as AWS documents).

A *definite* path (names and single indexes only) names one value and raises PathNotFound when
it is missing (States.Runtime). Any other path is *indefinite*: it returns the list of its
matches, possibly empty; a missing part before the first wildcard/slice/filter still raises,
as Jayway does. A ResultPath, SecondsPath or TimestampPath must be definite (a *reference
path*).

``$$`` (ASL's context object) and ``$._context`` (Globus's) both read the run context
(``flow_id``, ``run_id``, ``username``, and inside a Map ``Map.Item.Value/Index``); the context
is read-only: a ResultPath into it is an error.

Refused with a clear message: what AWS documents as unsupported (functions such as
``length()``; in filters ``$``-rooted operands, regular expressions ``=~`` and the lexical
operators ``in``, ``nin``, ``subsetof``, ``anyof``, ``noneof``, ``size``, ``empty``), slice steps
``[0:4:2]`` (Jayway ignores the step without a word), and what faas does not implement yet
although Jayway has it: recursive descent ``..`` and unions ``[0,1]``.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from faas.flows.errors import PathError, PathNotFound, PathWriteError

CONTEXT_KEY = "_context"
PRIVATE_KEY = "__Private_Parameters"

# Tokens: ("key", str) | ("index", int) | ("wild", None) | ("slice", (from, to)) |
#         ("filter", expression); an expression is ("or"|"and", [expr...]) | ("not", expr) |
#         ("exists", rel_path) | ("cmp", op, operand, operand), an operand ("path", rel_path)
#         or ("lit", value), a rel_path a tuple of tokens applied to ``@``.
Token = tuple
DEFINITE = ("key", "index")
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_LEXICAL = ("in", "nin", "subsetof", "anyof", "noneof", "size", "empty", "contains")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "/": "/", "b": "\b", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}
_NAME_END = ".[]'\" \t\n"
_FILTER_NAME_END = _NAME_END + "()=!<>&|,"


@lru_cache(maxsize=4096)
def parse(path: str) -> tuple[str, tuple[Token, ...]]:
    """Parse ``path`` into ``(root, tokens)`` where root is ``"$"`` or ``"$$"``.

    Raises PathError with the position of the first bad character."""
    if not isinstance(path, str):
        raise PathError(f"a JSONPath must be a string, not {type(path).__name__}")
    if not path.startswith("$"):
        raise PathError(f"{path!r}: a JSONPath starts with '$'")
    root = "$$" if path.startswith("$$") else "$"
    p = _Parser(path, len(root))
    try:
        tokens = p.tokens(_NAME_END)
    except RecursionError:
        raise PathError(f"{path[:80]!r}...: filters nested too deeply") from None
    if p.i < p.n:
        raise p.bad(f"unexpected character {path[p.i]!r}")
    return root, tokens


class _Parser:
    """A cursor over one path string; filters parse their ``@`` paths with the same code."""

    def __init__(self, text: str, i: int):
        self.text, self.i, self.n = text, i, len(text)

    def bad(self, msg: str) -> PathError:
        return PathError(f"{self.text!r}: {msg} at position {self.i}")

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def skip_space(self) -> None:
        while self.i < self.n and self.text[self.i] in " \t\n":
            self.i += 1

    def tokens(self, name_end: str) -> tuple[Token, ...]:
        """Tokens up to the end of the text or the first character no token starts with."""
        out: list[Token] = []
        while self.i < self.n:
            c = self.text[self.i]
            if c == ".":
                out.append(self.dot(name_end))
            elif c == "[":
                out.append(self.bracket())
            else:
                break
        return tuple(out)

    def dot(self, name_end: str) -> Token:
        self.i += 1
        if self.peek("."):
            raise self.bad("recursive descent '..' is not supported")
        if self.peek("*"):
            self.i += 1
            return ("wild", None)
        j = self.i
        while j < self.n and self.text[j] not in name_end:
            j += 1
        if j == self.i:
            raise self.bad("expected a field name after '.'")
        name, self.i = self.text[self.i:j], j
        if self.peek("(") or "(" in name:
            raise self.bad(f"functions such as {name.split('(')[0]}() are not supported")
        return ("key", name)

    def bracket(self) -> Token:
        self.i += 1
        self.skip_space()
        if self.i < self.n and self.text[self.i] in "'\"":
            tok: Token = ("key", self.quoted())
        elif self.peek("*"):
            self.i += 1
            tok = ("wild", None)
        elif self.peek("?"):
            self.i += 1
            self.skip_space()
            if not self.peek("("):
                raise self.bad("a filter is written [?(...)]")
            self.i += 1
            tok = ("filter", self.filter_or())
            self.skip_space()
            if not self.peek(")"):
                raise self.bad("expected ')' closing the filter")
            self.i += 1
        else:
            tok = self.index_or_slice()
        self.skip_space()
        if self.peek(","):
            raise self.bad("unions ([a,b]) are not supported")
        if not self.peek("]"):
            raise self.bad("expected ']'")
        self.i += 1
        return tok

    def quoted(self) -> str:
        quote = self.text[self.i]
        self.i += 1
        buf = []
        while self.i < self.n and self.text[self.i] != quote:
            c = self.text[self.i]
            if c == "\\" and self.i + 1 < self.n:
                self.i += 1
                e = self.text[self.i]
                if e == "u":
                    hexa = self.text[self.i + 1:self.i + 5]
                    if len(hexa) != 4 or any(h not in "0123456789abcdefABCDEF" for h in hexa):
                        raise self.bad("\\u takes four hex digits")
                    buf.append(chr(int(hexa, 16)))
                    self.i += 5
                    continue
                buf.append(_ESCAPES.get(e, e))
            else:
                buf.append(c)
            self.i += 1
        if self.i >= self.n:
            raise self.bad("unterminated quoted name")
        self.i += 1
        return "".join(buf)

    def integer(self) -> int | None:
        j = self.i
        if j < self.n and self.text[j] == "-":
            j += 1
        while j < self.n and self.text[j].isdigit():
            j += 1
        if j == self.i or self.text[self.i:j] == "-":
            return None
        v, self.i = int(self.text[self.i:j]), j
        self.skip_space()
        return v

    def index_or_slice(self) -> Token:
        start = self.integer()
        if not self.peek(":"):
            if start is None:
                raise self.bad("expected an index, a slice, a quoted name, '*' or a filter "
                               "inside '[ ]'")
            return ("index", start)
        self.i += 1
        self.skip_space()
        end = self.integer()
        if self.peek(":"):
            raise self.bad("slice steps ([a:b:step]) are not supported")
        if start is None and end is None:
            raise self.bad("a slice needs a start or an end ([1:], [:2], [1:3])")
        return ("slice", (start, end))

    # -- filter expressions ---------------------------------------------------------------
    def filter_or(self) -> tuple:
        parts = [self.filter_and()]
        while True:
            self.skip_space()
            if not self.peek("||"):
                break
            self.i += 2
            parts.append(self.filter_and())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def filter_and(self) -> tuple:
        parts = [self.filter_unary()]
        while True:
            self.skip_space()
            if not self.peek("&&"):
                break
            self.i += 2
            parts.append(self.filter_unary())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def filter_unary(self) -> tuple:
        self.skip_space()
        if self.peek("!") and not self.peek("!="):
            self.i += 1
            return ("not", self.filter_unary())
        if self.peek("("):
            self.i += 1
            inner = self.filter_or()
            self.skip_space()
            if not self.peek(")"):
                raise self.bad("expected ')'")
            self.i += 1
            return inner
        left = self.operand()
        self.skip_space()
        op = next((o for o in _COMPARISONS if self.peek(o)), None)
        if op is None:
            if self.peek("=~"):
                raise self.bad("regular expressions (=~) are not supported in filters")
            word = self.text[self.i:].split(None, 1)[0] if self.i < self.n else ""
            if word in _LEXICAL:
                raise self.bad(f"the operator {word!r} is not supported in filters "
                               "(== != < <= > >= only)")
            if left[0] != "path":
                raise self.bad("a filter term is a comparison or an @ path")
            return ("exists", left[1])
        if self.peek("==="):
            raise self.bad("'===' is not supported in filters; use '=='")
        self.i += len(op)
        right = self.operand()
        return ("cmp", op, left, right)

    def operand(self) -> tuple:
        self.skip_space()
        if self.peek("@"):
            self.i += 1
            return ("path", self.tokens(_FILTER_NAME_END))
        if self.peek("$"):
            raise self.bad("filters may compare with literals only, not another value of "
                           "the document ($...)")
        if self.i < self.n and self.text[self.i] in "'\"":
            return ("lit", self.quoted())
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.peek(word):
                self.i += len(word)
                return ("lit", value)
        j = self.i
        while j < self.n and self.text[j] in "+-0123456789.eE":
            j += 1
        try:
            text = self.text[self.i:j]
            number = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise self.bad("expected @..., a number, a 'string', true, false or null") from None
        self.i = j
        return ("lit", number)


def is_definite(tokens: tuple[Token, ...]) -> bool:
    """True if ``tokens`` name at most one value (names and single indexes only)."""
    return all(t[0] in DEFINITE for t in tokens)


def is_valid(path: str, *, reference: bool = False) -> str | None:
    """Return None if ``path`` is a valid path (a reference path if ``reference``), else why not."""
    try:
        _root, tokens = parse(path)
    except PathError as e:
        return str(e)
    if reference and not is_definite(tokens):
        return (f"{path!r}: a reference path names one value: no wildcards, slices or filters "
                "(they select a list)")
    return None


def is_context_path(path: str) -> bool:
    root, tokens = parse(path)
    return root == "$$" or (bool(tokens) and tokens[0] == ("key", CONTEXT_KEY))


def _fmt(tokens) -> str:
    out = "$"
    for kind, v in tokens:
        if kind == "key":
            simple = v and not any(c in v for c in _FILTER_NAME_END)
            out += f".{v}" if simple else "['" + v.replace("\\", "\\\\").replace("'", "\\'") + "']"
        elif kind == "index":
            out += f"[{v}]"
        elif kind == "wild":
            out += "[*]"
        elif kind == "slice":
            out += f"[{'' if v[0] is None else v[0]}:{'' if v[1] is None else v[1]}]"
        else:
            out += "[?(...)]"
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


def _start(data: Any, root: str, tokens: tuple, context: dict | None) -> tuple[Any, tuple]:
    """The document a path reads (``$$`` and ``$._context``: the run context) and its tokens."""
    if root == "$$":
        return (context if context is not None else {}), tokens
    if tokens and tokens[0] == ("key", CONTEXT_KEY):
        return (context if context is not None else {}), tokens[1:]
    return data, tokens


def get(data: Any, path: str, context: dict | None = None) -> Any:
    """The value at ``path`` in ``data`` (``$$`` / ``$._context`` read ``context``).

    An indefinite path (wildcard, slice, filter) returns the list of its matches (possibly
    empty). A missing value of a definite path raises PathNotFound naming the first part that
    is missing."""
    root, tokens = parse(path)
    cur, tokens = _start(data, root, tokens, context)
    if not is_definite(tokens):
        return _select_all(cur, tokens, path)
    for k, (kind, v) in enumerate(tokens):
        if kind == "key" and isinstance(cur, dict) and v in cur:
            cur = cur[v]
        elif kind == "index" and isinstance(cur, list) and -len(cur) <= v < len(cur):
            cur = cur[v]
        else:
            raise PathNotFound(f"{path}: no value at {_fmt(tokens[:k + 1])}")
    return cur


# What each kind of token applies to (a wildcard applies to anything: it matches nothing in a
# number or string).
# (the isinstance class info, typed Any so a match checked against it stays Any, not object)
_APPLIES_TO: dict[str, tuple[Any, str]] = {"key": (dict, "an object"), "index": (list, "an array"),
               "slice": (list, "an array"), "filter": ((list, dict), "an array or object")}


def _select_all(doc: Any, tokens: tuple, path: str) -> list:
    """Every match of an indefinite path, by Jayway's rules: while the path so far names one
    value, a missing name or a value of the wrong type raises; after the first wildcard,
    slice or filter, such branches are skipped."""
    matches = [doc]
    upstream_definite = True
    for k, (kind, v) in enumerate(tokens):
        nxt: list = []
        for m in matches:
            if kind == "wild":
                if isinstance(m, list):
                    nxt.extend(m)
                elif isinstance(m, dict):
                    nxt.extend(m.values())
                continue
            types, want = _APPLIES_TO[kind]
            if not isinstance(m, types):
                if upstream_definite:
                    raise PathNotFound(f"{path}: {_fmt(tokens[:k])} is {_json_type(m)}, not "
                                       f"{want} ({_fmt(tokens[:k + 1])})")
                continue
            if kind == "key":
                if v in m:
                    nxt.append(m[v])
                elif upstream_definite:
                    raise PathNotFound(f"{path}: no value at {_fmt(tokens[:k + 1])}")
            elif kind == "index":
                if -len(m) <= v < len(m):
                    nxt.append(m[v])
            elif kind == "slice":
                nxt.extend(_slice(m, *v))
            elif isinstance(m, dict):   # a filter on an object tests the object itself
                if _accept(v, m):
                    nxt.append(m)
            else:
                nxt.extend(x for x in m if _accept(v, x))
        matches = nxt
        upstream_definite = upstream_definite and kind in DEFINITE
    return matches


def _slice(items: list, start: int | None, end: int | None) -> list:
    """Jayway's ArraySliceToken: ``[a:]`` and ``[:b]`` count a negative bound from the end;
    ``[a:b]`` clamps ``b`` to the length and takes nothing when ``a >= b`` (so ``[1:-1]`` is
    empty, unlike Python)."""
    n = len(items)
    if end is None:
        assert start is not None   # index_or_slice refuses [:]
        start = max(0, n + start if start < 0 else start)
        return items[start:]
    if start is None:
        end = min(n, n + end if end < 0 else end)
        return items[:max(end, 0)]
    end = min(n, end)
    return [items[i] for i in range(start, end) if -n <= i < n]


_UNDEFINED = object()


def _accept(expr: tuple, item: Any) -> bool:
    """Does ``item`` pass the filter? ``@`` matches objects only (AWS's rule)."""
    return isinstance(item, dict) and _test(expr, item)


def _test(expr: tuple, item: Any) -> bool:
    kind = expr[0]
    if kind == "or":
        return any(_test(e, item) for e in expr[1])
    if kind == "and":
        return all(_test(e, item) for e in expr[1])
    if kind == "not":
        return not _test(expr[1], item)
    if kind == "exists":
        return _operand(("path", expr[1]), item) is not _UNDEFINED
    _cmp, op, left, right = expr
    a, b = _operand(left, item), _operand(right, item)
    if a is _UNDEFINED or b is _UNDEFINED:
        return op == "!="   # Jayway: != is "not ==", and nothing equals a missing value
    if op in ("==", "!="):
        return _equal(a, b) == (op == "==")
    if _is_num(a) and _is_num(b) or isinstance(a, str) and isinstance(b, str):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    return False


def _operand(operand: tuple, item: Any) -> Any:
    if operand[0] == "lit":
        return operand[1]
    tokens = operand[1]
    try:
        if not is_definite(tokens):
            return _select_all(item, tokens, "@")
        cur = item
        for kind, v in tokens:
            if kind == "key" and isinstance(cur, dict) and v in cur or \
                    kind == "index" and isinstance(cur, list) and -len(cur) <= v < len(cur):
                cur = cur[v]
            else:
                return _UNDEFINED
        return cur
    except PathNotFound:
        return _UNDEFINED


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _equal(a: Any, b: Any) -> bool:
    """Jayway's ``==``: booleans and null equal only themselves; a number equals a string that
    reads as the same number; objects and arrays compare as JSON."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if _is_num(a) and isinstance(b, str) or isinstance(a, str) and _is_num(b):
        num, text = (a, b) if _is_num(a) else (b, a)
        try:
            return float(text) == num
        except ValueError:
            return False
    if _is_num(a) and _is_num(b):
        return a == b
    if type(a) is not type(b):
        return False
    return a == b


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
    if not is_definite(tokens):
        raise PathWriteError(f"{path}: a ResultPath cannot contain wildcards, slices or filters")
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
