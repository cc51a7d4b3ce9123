"""The package layout: imports run one way (solvers ← closures ← hybrid), no module imports
itself through others (imports inside functions count), and ``import solvers`` loads no torch."""
from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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


# ------------------------------------------------------------------ the shared helpers
def test_validators_name_the_argument_and_the_range():
    from solvers.validate import integer, number

    assert integer("n", np.int64(16), 8, even=True) == 16
    assert integer("every", None, allow_none=True) is None
    for bad, words in [(7, "n must be an even integer ≥ 8, got 7"), (True, "got True"),
                       (16.0, "got 16.0"), ("16", "got '16'")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            integer("n", bad, 8, even=True)
    with pytest.raises(ValueError, match=re.escape("kf must be an integer in [1, 10], got 11")):
        integer("kf", 11, 1, 10)
    assert number("dt", np.float32(0.5), above=0) == 0.5
    assert number("val_fraction", 0, at_least=0, below=1) == 0.0
    for bad in (0, -1.0, math.nan, math.inf, "0.1", True, None):
        with pytest.raises(ValueError, match=r"^dt must be a finite number > 0, got "):
            number("dt", bad, above=0)
    with pytest.raises(ValueError, match=re.escape("val_fraction must be a number in [0, 1)")):
        number("val_fraction", 1.0, at_least=0, below=1)


def test_argument_types_share_the_validators():
    import argparse

    from hybrid.cli import arguments as a

    assert a.grid_size("16") == 16 and a.positive_float("1e-3") == 1e-3
    assert a.time_step("CFL") == "cfl" and a.fraction("0") == 0.0
    for conv, text, words in [(a.grid_size, "9", "must be an even integer ≥ 8, got '9'"),
                              (a.positive_int, "2.5", "must be an integer ≥ 1, got '2.5'"),
                              (a.positive_float, "0", "must be a finite number > 0, got '0'"),
                              (a.nonnegative_float, "nan", "got 'nan'"),
                              (a.fraction, "1", "must be a number in [0, 1), got '1'")]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(words)):
            conv(text)


def test_write_json_is_atomic_and_plain(tmp_path, monkeypatch):
    import json
    import os

    from solvers.files import write_json

    path = write_json(tmp_path / "run.json", {"a": np.float32(1.5), "b": np.arange(2),
                                               "p": tmp_path})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1], "p": str(tmp_path)}
    before = path.read_bytes()
    with pytest.raises(ValueError):                   # NaN refused: the old file stays
        write_json(path, {"a": math.nan}, allow_nan=False)

    def crash(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", crash)         # killed before the rename
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"a": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_output_checks_touch_nothing_and_name_what(tmp_path):
    from solvers.files import check_output_file, check_output_folder

    out = tmp_path / "new" / "deeper"
    assert check_output_folder(out, outputs=("run.json",)) == out
    assert check_output_file(out / "t.nc", "trajectory") == out / "t.nc"
    assert not (tmp_path / "new").exists()
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"output folder .* already holds run\.json; .* "
                                              r"--overwrite"):
        check_output_folder(tmp_path, outputs=("run.json",), overwrite_hint="--overwrite")
    assert check_output_folder(tmp_path, True, outputs=("run.json",)) == tmp_path
    with pytest.raises(FileExistsError, match=r"^trajectory .* already exists"):
        check_output_file(tmp_path / "run.json", "trajectory")
    with pytest.raises(IsADirectoryError, match="trajectory path"):
        check_output_file(tmp_path, "trajectory", overwrite=True)
    with pytest.raises(NotADirectoryError, match="not a directory"):
        check_output_folder(tmp_path / "run.json" / "sub")
    with pytest.raises(NotADirectoryError, match="exists and is not a directory"):
        check_output_folder(tmp_path / "run.json")


# ------------------------------------------------------------------ one run loop
# modules still stepping a solver in a loop of their own, each to move onto
# PseudoSpectralSolver.run (its schedules: solvers.Every); the list only shrinks
RUN_LOOP_TWINS: set[str] = set()


def _run_loops(module: str) -> list[str]:
    """Where ``module`` steps a solver itself: ``while <x>.t < …`` loops, ``_one_step`` calls."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.While) and isinstance(node.test, ast.Compare) \
                and isinstance(node.test.left, ast.Attribute) and node.test.left.attr == "t":
            found.append(f"{module}:{node.lineno} while {ast.unparse(node.test)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "_one_step":
            found.append(f"{module}:{node.lineno} {ast.unparse(node.func)}()")
    return found


def test_one_run_loop():
    assert _run_loops("solvers.base")                 # guards the search: the loop is found
    twins = [hit for m in MODULES if m != "solvers.base"
             and not any(m == t or m.startswith(t + ".") for t in RUN_LOOP_TWINS)
             for hit in _run_loops(m)]
    assert not twins, ("step solvers through PseudoSpectralSolver.run (schedules: solvers.Every), "
                       "not a loop of their own: " + "; ".join(twins))
