"""The package layout: imports run one way (solvers ← closures ← hybrid), no module imports
itself through others (imports inside functions count), and ``import solvers`` loads no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("solvers", "closures", "hybrid")


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the three packages."""
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules that ``name`` imports anywhere in its file (top level, functions,
    ``if TYPE_CHECKING`` blocks alike)."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` imports the module pkg.sub when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:          # ``import a.b.c`` where c is a name
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_packages():
    """Guards the parser: the graph knows known edges, so an empty result below means something."""
    assert {"solvers", "closures", "hybrid", "hybrid.cli", "hybrid.cli.arguments"} <= set(MODULES)
    assert "hybrid.cli.arguments" in GRAPH["hybrid.cli.dns"]
    assert "hybrid.cli.dns" in GRAPH["hybrid.cli"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles (imports inside functions count): " + "; ".join(
        " ↔ ".join(c) for c in cycles)


@pytest.mark.parametrize("lower, higher", [("solvers", "closures"), ("solvers", "hybrid"),
                                           ("closures", "hybrid")])
def test_imports_run_one_way(lower, higher):
    wrong = sorted(f"{m} imports {t}" for m, ts in GRAPH.items() if m.split(".")[0] == lower
                   for t in ts if t.split(".")[0] == higher)
    assert not wrong, f"{lower} must not import {higher}: " + "; ".join(wrong)


def _third_party(module: str) -> set[str]:
    """Top-level names that ``module`` imports anywhere in its file."""
    names = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_solvers_never_import_torch():
    wrong = sorted(m for m in MODULES if m.split(".")[0] == "solvers" and
                   "torch" in _third_party(m))
    assert not wrong, f"solvers modules importing torch: {wrong}"


def test_import_solvers_loads_no_torch():
    code = ("import sys, solvers\n"
            "from solvers import KolmogorovFlow, BetaPlane\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'closures', 'hybrid'))\n"
            "print(','.join(bad))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"import solvers loaded: {res.stdout.strip()}"
