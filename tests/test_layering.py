"""Layering: every faas module imports alone, and no two modules import each other at module level.

An import cycle works until someone changes the order of imports (or a module is run with
``python -m``), then fails with a half-initialized module; and a cycle means two layers that
cannot be read, tested or replaced apart. The graph is the static one: the ``import`` statements
a module runs when it is imported (module level, including under ``if``/``try`` and in class
bodies), not those inside functions (which run later, when the lower layer may call up on purpose)
nor under ``if TYPE_CHECKING:`` or ``if __name__ == "__main__":``. ``python tests/test_layering.py``
prints the cycles it finds.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "faas"

#: cycles another change removes, each with who removes it (none today; faas/flows/paths.py and
#: expressions.py import each other only inside functions, and that goes with issue 19 item 1)
KNOWN_CYCLES: set[frozenset[str]] = set()
#: the same, counting imports inside functions (none today: the Globus key translation reads the
#: provider models from faas/endpoint/provider_config.py, below the endpoint config model)
KNOWN_DEFERRED_CYCLES: set[frozenset[str]] = set()


def module_names() -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package's name -> its __init__.py)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_skipped_block(node: ast.If) -> bool:
    """``if TYPE_CHECKING:`` and ``if __name__ == "__main__":`` do not run on import."""
    test = node.test
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def _statements(body: list[ast.stmt], deferred: bool):
    """The statements of ``body`` that run when the module is imported; with ``deferred``, those
    in function bodies too (they run when the function is called)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not deferred:
            continue
        if isinstance(node, ast.If) and _is_skipped_block(node):
            yield from _statements(node.orelse, deferred)
            continue
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _statements([child], deferred)
            elif isinstance(child, ast.ExceptHandler):
                yield from _statements(child.body, deferred)


def imports_of(name: str, path: Path, modules: dict[str, Path], deferred: bool = False) -> set[str]:
    """The faas modules that importing ``name`` imports directly (parents included: importing
    ``faas.a.b`` runs ``faas/a/__init__.py`` first); with ``deferred``, also those its functions
    import when called."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _statements(ast.parse(path.read_text(), str(path)).body, deferred):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for a in node.names:   # a submodule, or a name defined in the module ``origin``
                targets.add(f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin)
    out = set()
    for explicit in targets & modules.keys():   # others: not faas's (or not written yet)
        t = explicit
        while t:                        # the module and every package above it
            if t != name and (t == explicit or not name.startswith(t + ".")):
                out.add(t)              # (a module's own parents already run; a name taken from one counts)
            t = t.rpartition(".")[0]
    return out


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules, deferred) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module, as one cycle through it
    (Tarjan's algorithm, then a shortest path back to the start)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:   # iterative would be longer; the package is a few hundred modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for comp in components:
        start = min(comp)
        paths = {start: [start]}
        frontier = [start]
        found = None
        while frontier and found is None:   # breadth first, inside the component
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & comp):
                    if w == start:
                        found = paths[v] + [start]
                        break
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if found:
                    break
            frontier = nxt
        out.append(found or sorted(comp))
    return out


def test_the_graph_sees_imports():
    """The checker itself: it finds a module's direct imports, relative ones included, and
    a cycle in a graph that has one (so a pass below means something)."""
    graph = import_graph()
    assert "faas.config" in graph["faas"]
    assert "faas.endpoint.config" in graph["faas.endpoint.daemon"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_at_module_level():
    found = [c for c in cycles(import_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not found, "import cycles (module level):\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_new_import_cycle_inside_functions():
    """An import inside a function hides a cycle from the interpreter, not from the reader:
    two modules that call each other are one layer. None but the known ones."""
    found = [c for c in cycles(import_graph(deferred=True)) if frozenset(c) not in KNOWN_DEFERRED_CYCLES]
    assert not found, "import cycles (counting imports inside functions):\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_manager_imports_the_user_endpoint_side_never_the_reverse():
    """The multi-user router (root) starts and watches user endpoints, which are ordinary
    single-user daemons: the daemon and the pool know nothing of multi-user (Globus's
    endpoint_manager.py is one-way the same way)."""
    graph = import_graph()
    for low in ("faas.endpoint.daemon", "faas.endpoint.pool", "faas.endpoint.worker", "faas.endpoint.server"):
        up = sorted(t for t in graph.get(low, ()) if t.startswith("faas.endpoint.multiuser"))
        assert not up, f"{low} imports {up} at module level"
    deferred = import_graph(deferred=True)["faas.endpoint.daemon"]
    up = sorted(t for t in deferred if t.startswith(("faas.endpoint.multiuser", "faas.flows")))
    assert not up, f"faas/endpoint/daemon.py imports {up} (inside a function): the entry point " \
                   f"(faas/endpoint/__main__.py) hands the daemon what those layers need"


def test_each_module_imports_alone():
    """In one fresh interpreter, each module imported first with nothing of faas loaded before
    it (what `python -m faas.x` or a test that imports only it does): an order-dependent cycle
    fails here as the ImportError a user would see."""
    names = [n for n in module_names() if not n.endswith("__main__")]
    script = (
        "import importlib, sys, traceback\n"
        f"names = {names!r}\n"
        "bad = []\n"
        "for n in names:\n"
        "    for m in [m for m in sys.modules if m == 'faas' or m.startswith('faas.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except ImportError as e:\n"
        "        if 'faas' in str(e) or 'partially initialized' in str(e):\n"
        "            bad.append(f'{n}: {type(e).__name__}: {e}')\n"
        "for b in bad:\n"
        "    print(b)\n"
        "sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"modules that do not import alone:\n{proc.stdout}{proc.stderr[-3000:]}"


if __name__ == "__main__":
    for deferred in (False, True):
        found = cycles(import_graph(deferred))
        print(f"{len(found)} cycle(s) {'counting imports inside functions too' if deferred else 'at module level'}")
        for c in found:
            known = KNOWN_DEFERRED_CYCLES if deferred else KNOWN_CYCLES
            print("  " + " -> ".join(c) + ("   (known)" if frozenset(c) in known else ""))
