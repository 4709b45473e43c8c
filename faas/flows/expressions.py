"""The safe evaluator for ``.=`` parameters and ExpressionEval states.

An expression is parsed with :mod:`ast` and walked against a whitelist; nothing is ever handed
to ``eval``/``exec``/``compile``. Allowed: constants; names from the state (its top-level keys,
and ``_context``); attribute (``a.b``) and subscript (``a["b"]``, ``a[0]``, ``a[1:3]``) access on
objects, arrays and strings; arithmetic; ``+`` on strings and lists; comparisons (``in`` too);
``and``/``or``/``not``; ``x if c else y``; list, tuple and dict literals; list comprehensions
(``[f(x) for x in xs if c]``, as Globus's own Looping Batched Move example writes them); calls to
the functions in :data:`FUNCTIONS` and to the string methods in :data:`STR_METHODS` (``s.rstrip('/')``,
the same example's). Refused: dunder names and attributes, every other call, lambdas, set, dict
and generator comprehensions, f-strings, walrus, starred arguments.

Bounds: expression length (:data:`MAX_LENGTH`), syntax-tree depth (:data:`MAX_DEPTH`), evaluation
steps (:data:`MAX_STEPS`), and the size of every intermediate string/list/dict
(:data:`MAX_SIZE`), checked *before* a repetition or concatenation is built, and integers by bit
length (so ``'a' * 10**9`` and ``9**9**9`` fail at once instead of eating memory).

Work done in C is charged too, before it is done: Python compares lists and objects item by item
all the way down, ``in`` compares with every item, ``min``/``max`` compare the items, and ``str()``
prints every part. ``[[0] * 10**4] * 10**4`` holds 10**4 numbers in memory but stands for 10**8
(its rows are one shared list), so sizes are measured by walks that stop as soon as they pass
what is left of the budget: comparisons cost the size of the smaller operand, ``str()`` refuses
a result over :data:`MAX_SIZE` characters before building it, and the value an expression
returns (which the runner stores as JSON) may not stand for more than :data:`MAX_SIZE` parts.
"""
from __future__ import annotations

import ast
import operator
import posixpath
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from faas.flows import paths
from faas.flows.errors import ExpressionError, PathError

MAX_LENGTH = 10_000      # characters of source
MAX_DEPTH = 60           # syntax-tree depth
MAX_STEPS = 100_000      # node evaluations (plus items touched by builtins)
MAX_SIZE = 1_000_000     # elements of any string / list / dict produced
MAX_INT_BITS = 4_096     # integers beyond this many bits are refused
CHARS_PER_STEP = 100     # comparing or scanning this many characters costs about one step
PARTS_PER_STEP = 4       # parts str() measures and prints for one step (C prints them fast)

_BINOPS: dict[type, Callable] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Slice,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.List, ast.Tuple, ast.Dict,
    ast.Call, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.ListComp, ast.comprehension,
    ast.Store, *_BINOPS, *_CMPOPS,
)

_MISSING = object()


# --- measuring values without being fooled by shared items ----------------------------------
def work(value: Any, cap: int) -> int:
    """About how many elementary steps comparing ``value`` with an equal value takes: 1 per part
    (number, string, list item, object key and value) and 1 more per :data:`CHARS_PER_STEP`
    characters of a string. Counted up to just past ``cap``, then the walk stops: a list repeated
    by ``*`` shares its items, so a value can stand for far more parts than it holds in memory."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        n += 1
        if isinstance(v, str):
            n += len(v) // CHARS_PER_STEP
        elif isinstance(v, (list, tuple)):
            if n + len(v) > cap:   # every item is one part at least
                return cap + 1
            kinds = set(map(type, v))
            if kinds <= _FLAT:   # no list or object inside: counted at the speed of C
                n += len(v)
                if str in kinds:
                    n += sum(len(x) for x in v if type(x) is str) // CHARS_PER_STEP
            else:
                stack.extend(v)
        elif isinstance(v, dict):
            if n + 2 * len(v) > cap:
                return cap + 1
            stack.extend(v)
            stack.extend(v.values())
        if n > cap:
            return n
    return n


_FLAT = {int, float, bool, type(None), str}


def least_work(values: list, cap: int, weights: list[int] | None = None) -> int:
    """``min(weight * work(value))`` over ``values``, or more than ``cap``, in time proportional
    to the answer however big the other values are: each is measured up to a bound that grows
    fourfold until one of them fits under it."""
    weights = weights or [1] * len(values)
    bound = 64
    while True:
        sizes = [work(v, bound) for v in values]
        fits = [n * k for n, k in zip(sizes, weights, strict=True) if n <= bound]
        if fits:
            best = min(min(fits), cap + 1)
            for v, n, k in zip(values, sizes, weights, strict=True):   # one that did not fit may still be less
                if n > bound and k:
                    best = min(best, work(v, best // k) * k)
            return best
        if bound > cap:
            return cap + 1
        bound *= 4


def _text_of(part: Any, cap: int) -> int:
    """At most how many characters ``part`` adds to ``str()`` of a structure holding it: its
    ``repr`` and a ``, `` after it (a list, tuple or object: its brackets and separators; its
    items count as parts of their own)."""
    if isinstance(part, str):
        if len(part) > cap:
            return len(part)
        if part.isprintable():   # repr escapes only backslashes and, at worst, quotes
            return len(part) + 4 + part.count("\\") + part.count("'")
        return 10 * len(part) + 4   # \U0010ffff is the longest escape
    if isinstance(part, bool) or part is None:
        return 7
    if isinstance(part, int):
        return part.bit_length() * 30103 // 100_000 + 4   # decimal digits, sign, separator
    if isinstance(part, float):
        return 26
    if isinstance(part, dict):
        return 4 + 2 * len(part)   # "{}", and ": " in every entry
    return 4


def text_length(value: Any, max_chars: int, max_parts: int) -> tuple[int, int]:
    """``(an upper bound on len(str(value)), the parts visited to find it)``, by a walk that
    stops once the bound passes ``max_chars`` or the parts pass ``max_parts``: ``str()`` refuses
    before it builds anything, and the walk itself is paid for."""
    chars, parts, stack = 0, 0, [value]
    while stack and chars <= max_chars and parts <= max_parts:
        v = stack.pop()
        parts += 1
        chars += _text_of(v, max_chars)
        if isinstance(v, (list, tuple, dict)):
            if chars + 4 * len(v) > max_chars:   # every item adds 4 characters at least
                return chars + 4 * len(v), parts
            stack.extend(v.values() if isinstance(v, dict) else v)
            if isinstance(v, dict):
                stack.extend(v)
    return chars, parts


def _fn_pathsplit(path):
    """``pathsplit("/a/b/c.txt") -> ["/a/b", "c.txt"]`` (like os.path.split, as a list). Globus
    Transfer's home root ``/~/`` is never split: ``pathsplit("/~/path") -> ["/~/", "path"]``, as
    Globus's expression docs give it."""
    if not isinstance(path, str):
        raise ExpressionError("pathsplit() takes a string")
    head, tail = posixpath.split(path)
    return ["/~/" if head == "/~" else head, tail]


def _fn_getattr(obj, name, default=_MISSING):
    """``getattr(obj, "key", default)``: an object's member, or ``default`` when it is missing.
    (Globus's own form, ``getattr('path', default)``, is :meth:`_Evaluator.getattr_path`.)"""
    if not isinstance(name, str):
        raise ExpressionError("getattr(): the name must be a string")
    if name.startswith("__"):
        raise ExpressionError(f"getattr(): access to {name!r} is not allowed")
    if isinstance(obj, dict) and name in obj:
        return obj[name]
    if default is _MISSING:
        raise ExpressionError(f"getattr(): no member {name!r}")
    return default


def _numbers(values, fname):
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ExpressionError(f"{fname}() takes numbers")
    return values


def _fn_sum(values, start=0):
    if not isinstance(values, list):
        raise ExpressionError("sum() takes a list of numbers")
    _numbers(values + [start], "sum")
    return sum(values, start)


def _fn_int(v, *base):
    if base and not isinstance(v, str):
        raise ExpressionError("int() with a base takes a string")
    if isinstance(v, str) and len(v) > 1000:
        raise ExpressionError("int(): string too long")
    return int(v, *base)


def _fn_str(v):
    """``str(v)``; the evaluator calls :meth:`_Evaluator.to_str`, which bounds the size first."""
    return v if isinstance(v, str) else str(v)


def _fn_minmax(f, name):
    def fn(*args):
        if len(args) == 1:
            if not isinstance(args[0], list) or not args[0]:
                raise ExpressionError(f"{name}() takes a non-empty list or several values")
            return f(args[0])
        return f(args)
    return fn


def _fn_round(v, ndigits=None):
    _numbers([v], "round")
    if ndigits is not None and (isinstance(ndigits, bool) or not isinstance(ndigits, int)):
        raise ExpressionError("round(): ndigits must be an integer")
    return round(v) if ndigits is None else round(v, ndigits)


FUNCTIONS: dict[str, Callable | None] = {
    "pathsplit": _fn_pathsplit,
    "getattr": _fn_getattr,
    "len": len,
    "str": _fn_str,
    "int": _fn_int,
    "float": float,
    "abs": lambda v: abs(_numbers([v], "abs")[0]),
    "min": _fn_minmax(min, "min"),
    "max": _fn_minmax(max, "max"),
    "sum": _fn_sum,
    "round": _fn_round,
    # is_present is bound per evaluation (it needs the names): see _Evaluator.
    "is_present": None,
}

# Methods a string may call: each makes at most a copy of the string, so the cost is its length.
STR_METHODS = frozenset({"strip", "lstrip", "rstrip", "lower", "upper", "startswith", "endswith",
                         "split", "rsplit"})


def _depth(node: ast.AST) -> int:
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        if best > MAX_DEPTH:
            return best
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(n))
    return best


def _check_comprehension(node: ast.comprehension) -> None:
    """A comprehension binds plain names (``for x in`` or ``for k, v in``), synchronously."""
    if node.is_async:
        raise ExpressionError("async comprehensions are not allowed in an expression")
    targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
    if not all(isinstance(t, ast.Name) for t in targets):
        raise ExpressionError("a comprehension's 'for' binds names only")


@lru_cache(maxsize=1024)
def check(source: str) -> ast.Expression:
    """Parse ``source`` and check it against the whitelist; raise ExpressionError if refused."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression too long ({len(source)} > {MAX_LENGTH} characters)")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"syntax error in expression {source!r}: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("expression too deeply nested") from None
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"expression too deeply nested (more than {MAX_DEPTH} levels)")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise ExpressionError(f"name {node.id!r} is not allowed")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.comprehension):
            _check_comprehension(node)
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in STR_METHODS:
                pass
            elif not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                what = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ExpressionError(
                    f"call to {what!r} is not allowed (allowed: {', '.join(sorted(FUNCTIONS))}, "
                    f"and the string methods {', '.join(sorted(STR_METHODS))})")
            if node.keywords:
                raise ExpressionError("keyword arguments are not allowed in an expression")
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise ExpressionError("starred arguments are not allowed in an expression")
        if isinstance(node, ast.Constant) and not isinstance(
                node.value, (str, int, float, bool, type(None))):
            raise ExpressionError(f"constant {node.value!r} is not allowed")
    return tree


def evaluate(source: str, names: dict | None = None, *, max_steps: int = MAX_STEPS,
             max_size: int = MAX_SIZE) -> Any:
    """Evaluate ``source`` with ``names`` (JSON-like values); raise ExpressionError if refused or
    if it fails (the message names the expression)."""
    tree = check(source)
    ev = _Evaluator(names or {}, max_steps, max_size)
    try:
        return ev.result(ev.eval(tree.body))
    except ExpressionError as e:
        raise ExpressionError(f"{source!r}: {e}") from None
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError,
            AttributeError) as e:
        raise ExpressionError(f"{source!r}: {type(e).__name__}: {e}") from None
    except RecursionError:
        raise ExpressionError(f"{source!r}: too deeply nested") from None


class _Evaluator:
    def __init__(self, names: dict, max_steps: int, max_size: int):
        self.names = names
        self.steps = 0
        self.max_steps = max_steps
        self.max_size = max_size

    def tick(self, n: int = 1, why: str = "") -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise ExpressionError(f"expression takes too many steps (> {self.max_steps})"
                                  + (f": {why}" if why else ""))

    def left(self) -> int:
        """Steps left in the budget: how far a measuring walk may go."""
        return max(self.max_steps - self.steps, 0)

    def result(self, v: Any) -> Any:
        """The value returned, refused if it stands for more than ``max_size`` parts: the runner
        stores it as JSON, which writes shared items out once per use."""
        if isinstance(v, (list, dict)) and work(v, self.max_size + 1) > self.max_size + 1:
            raise ExpressionError(f"result too large (more than {self.max_size} parts, counting "
                                  "the items of nested lists and objects)")
        return v

    def charge_comparison(self, op: ast.cmpop, left: Any, right: Any) -> None:
        """Pay before comparing: ``==``, ``<``... go through both operands item by item (at most
        the smaller one's size); ``in`` compares ``left`` with every item of a list."""
        if isinstance(op, (ast.Is, ast.IsNot)):
            return
        if isinstance(op, (ast.In, ast.NotIn)):
            if isinstance(right, str):
                cost = len(right)
            elif isinstance(right, list):
                cost = len(right) + least_work([left, right], self.left(), [len(right), 1])
            else:   # a lookup in an object: hashing a string key
                cost = 1 + (len(left) // CHARS_PER_STEP if isinstance(left, str) else 0)
        else:
            cost = least_work([left, right], self.left())
        self.tick(cost, "comparing large values (charged by their size)")

    def to_str(self, v: Any) -> str:
        """``str(v)``, refused before it is built when it would pass ``max_size`` characters."""
        if isinstance(v, str):
            return v
        chars, cost = text_length(v, self.max_size, self.left() * PARTS_PER_STEP)
        self.tick(cost // PARTS_PER_STEP, "str() of a large value (charged by its size)")
        if chars > self.max_size:
            raise ExpressionError(f"str() would make more than {self.max_size} characters "
                                  "(refused before building it)")
        return str(v)

    def sized(self, v: Any) -> Any:
        if isinstance(v, (str, list, dict, tuple)) and len(v) > self.max_size:
            raise ExpressionError(f"result too large ({len(v)} > {self.max_size} elements)")
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > MAX_INT_BITS:
            raise ExpressionError(f"integer too large (more than {MAX_INT_BITS} bits)")
        if isinstance(v, tuple):
            return list(v)
        return v

    def is_present(self, path: Any) -> bool:
        """``is_present("a.b")`` / ``is_present("$.a.b")``: is there a value at that path?"""
        if not isinstance(path, str):
            raise ExpressionError("is_present() takes a name or path string")
        jp = path if path.startswith("$") else "$." + path
        try:
            return paths.exists(self.names, jp, self.names.get(paths.CONTEXT_KEY))
        except PathError as e:
            raise ExpressionError(f"is_present(): {e}") from None

    def getattr_path(self, path: str, default: Any = None, *extra: Any) -> Any:
        """Globus's ``getattr('a.b[0]', default)``: the state's value at that path (as
        ``is_present`` reads it), else ``default`` (null when not given)."""
        if extra:
            raise ExpressionError("getattr('path', default) takes at most two arguments")
        if not self.is_present(path):
            return default
        jp = path if path.startswith("$") else "$." + path
        return paths.get(self.names, jp, self.names.get(paths.CONTEXT_KEY))

    def eval(self, node: ast.AST) -> Any:
        self.tick()
        method = getattr(self, "_" + type(node).__name__)
        return self.sized(method(node))

    def _Constant(self, node):
        return node.value

    def _Name(self, node):
        if node.id in self.names:
            return self.names[node.id]
        if node.id in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[node.id]
        raise ExpressionError(f"name {node.id!r} is not defined")

    def _Attribute(self, node):
        obj = self.eval(node.value)
        if isinstance(obj, dict):
            if node.attr in obj:
                return obj[node.attr]
            raise ExpressionError(f"no member {node.attr!r} in {ast.unparse(node.value)}")
        raise ExpressionError(
            f"{ast.unparse(node.value)} is a {type(obj).__name__}; '.' works on objects only")

    def _Subscript(self, node):
        obj = self.eval(node.value)
        if isinstance(node.slice, ast.Slice):
            bounds = [None if p is None else self.eval(p)
                      for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            if any(b is not None and (isinstance(b, bool) or not isinstance(b, int)) for b in bounds):
                raise ExpressionError("slice bounds must be integers")
            if not isinstance(obj, (list, str)):
                raise ExpressionError("only lists and strings can be sliced")
            self.tick(min(len(obj), self.max_steps))
            return obj[slice(*bounds)]
        key = self.eval(node.slice)
        if isinstance(obj, dict):
            if key in obj:
                return obj[key]
            raise ExpressionError(f"no member {key!r} in {ast.unparse(node.value)}")
        if isinstance(obj, (list, str)):
            if isinstance(key, bool) or not isinstance(key, int):
                raise ExpressionError(f"index of {ast.unparse(node.value)} must be an integer")
            if not -len(obj) <= key < len(obj):
                raise ExpressionError(f"index {key} out of range in {ast.unparse(node.value)}")
            return obj[key]
        raise ExpressionError(f"{ast.unparse(node.value)} ({type(obj).__name__}) cannot be indexed")

    def _BinOp(self, node):
        a = self.eval(node.left)
        b = self.eval(node.right)
        op = type(node.op)
        if op is ast.Mult:
            seq, n = (a, b) if isinstance(a, (str, list)) else (b, a)
            if isinstance(seq, (str, list)):
                if isinstance(n, bool) or not isinstance(n, int):
                    raise ExpressionError("a string or list can only be repeated an integer number of times")
                if len(seq) * max(n, 0) > self.max_size:
                    raise ExpressionError(
                        f"result too large ({len(seq)} * {n} > {self.max_size} elements)")
                self.tick(min(len(seq) * max(n, 0) // 1000, self.max_steps))
        elif op is ast.Add and isinstance(a, (str, list)) and isinstance(b, type(a)):
            if len(a) + len(b) > self.max_size:
                raise ExpressionError(f"result too large (> {self.max_size} elements)")
            self.tick((len(a) + len(b)) // 1000)   # the copy, priced like a repetition
        elif op is ast.Pow and isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
            if b > 0 and abs(a) > 1 and b * abs(a).bit_length() > MAX_INT_BITS:
                raise ExpressionError(f"integer too large (more than {MAX_INT_BITS} bits)")
        elif op is ast.Mod and isinstance(a, str):
            raise ExpressionError("'%' formatting of strings is not allowed; use + and str()")
        for v in (a, b):
            if isinstance(v, dict) or v is None:
                raise ExpressionError(
                    f"unsupported operand {type(v).__name__} for {type(node.op).__name__}")
        return _BINOPS[op](a, b)

    def _UnaryOp(self, node):
        v = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ExpressionError("unary + and - take a number")
        return -v if isinstance(node.op, ast.USub) else +v

    def _BoolOp(self, node):
        is_and = isinstance(node.op, ast.And)
        v = None
        for expr in node.values:
            v = self.eval(expr)
            if is_and and not v:
                return v
            if not is_and and v:
                return v
        return v

    def _Compare(self, node):
        left = self.eval(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comp)
            self.charge_comparison(op, left, right)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node):
        return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)

    def _List(self, node):
        return [self.eval(e) for e in node.elts]

    _Tuple = _List

    def _Dict(self, node):
        out = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:
                raise ExpressionError("'**' in a dict literal is not allowed")
            key = self.eval(k)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise ExpressionError("dict keys must be strings or numbers")
            out[key] = self.eval(v)
        return out

    def _ListComp(self, node):
        """``[elt for x in xs if c ...]``: the names it binds hide the state's while it runs."""
        saved = self.names
        self.names = dict(saved)
        try:
            out: list = []
            self._comprehend(node, 0, out)
            return out
        finally:
            self.names = saved

    def _comprehend(self, node: ast.ListComp, level: int, out: list) -> None:
        if level == len(node.generators):
            item = self.eval(node.elt)
            self.tick(work(item, self.left()), "a comprehension building large items")
            out.append(item)
            if len(out) > self.max_size:
                raise ExpressionError(f"result too large (> {self.max_size} elements)")
            return
        gen = node.generators[level]
        items = self.eval(gen.iter)
        if isinstance(items, dict):
            items = list(items)
        if not isinstance(items, (list, str)):
            raise ExpressionError(f"cannot loop over a {type(items).__name__}")
        for item in items:
            self.tick()
            self._bind(gen.target, item)
            if all(self.eval(c) for c in gen.ifs):
                self._comprehend(node, level + 1, out)

    def _bind(self, target: ast.expr, item: Any) -> None:
        if isinstance(target, ast.Name):
            self.names[target.id] = item
            return
        assert isinstance(target, ast.Tuple)
        if not isinstance(item, list) or len(item) != len(target.elts):
            raise ExpressionError(f"cannot unpack {type(item).__name__} into "
                                  f"{len(target.elts)} names")
        for t, v in zip(target.elts, item, strict=True):
            self._bind(t, v)

    def _method(self, node: ast.Call) -> Any:
        """A string method of :data:`STR_METHODS`, charged by the string's length."""
        assert isinstance(node.func, ast.Attribute)
        obj = self.eval(node.func.value)
        if not isinstance(obj, str):
            raise ExpressionError(f"{ast.unparse(node.func.value)} is a {type(obj).__name__}; "
                                  f".{node.func.attr}() works on strings only")
        args = [self.eval(a) for a in node.args]
        if any(not isinstance(a, (str, int)) or isinstance(a, bool) for a in args if a is not None):
            raise ExpressionError(f".{node.func.attr}() takes strings (and split's maxsplit)")
        self.tick(len(obj) // CHARS_PER_STEP)
        return getattr(obj, node.func.attr)(*args)

    def _Call(self, node):
        if isinstance(node.func, ast.Attribute):
            return self._method(node)
        name = node.func.id
        args = [self.eval(a) for a in node.args]
        for a in args:
            if isinstance(a, (list, str, dict)):
                self.tick(min(len(a) // 100, self.max_steps))
        if name == "is_present":
            if len(args) != 1:
                raise ExpressionError("is_present() takes one argument")
            return self.is_present(args[0])
        if name == "getattr" and args and isinstance(args[0], str):
            return self.getattr_path(*args)
        if name == "str" and len(args) == 1:
            return self.to_str(args[0])
        if name in ("min", "max"):   # they compare the items: as costly as comparing them
            self.tick(work(args, self.left()), f"{name}() of large values (charged by their size)")
        return FUNCTIONS[name](*args)
