"""Named configurations (presets) and user TOML files describing a DNS/LES pair of runs.

A preset is a TOML file (``hybrid/presets/<name>.toml``, or any path given by the user)::

    name = "kolmogorov"                 # optional for user files (default: the file's stem)
    description = "..."                 # optional
    source = "..."                      # where the numbers come from (optional)

    [dns]                               # the fine, reference simulation
    solver = "KolmogorovFlow"           # or "BetaPlane"
    n = 512                             # ... any constructor keyword of that solver,
    nu = 1e-3                           #     except members / seed / first_member / blowup_dir
    dt = 1e-3                           # a number, or "cfl" for a CFL-chosen step (dt=None)

    [les]                               # optional: overrides of [dns] for the coarse grid
    n = 64
    dt = 5e-3
    forcing_filter = "gaussian"         # the LES is forced like the filtered DNS: Ĝ·F with the
                                        # data's filter, Δ = 2 LES spacings ("none", or a width)

    [initial]
    kind = "random"                     # seeded Gaussian field (solvers.initial.random_vorticity)
    k_peak = 4.0                        # spectral peak, units of 2π/L
    energy = 1.0                        # kinetic energy ½⟨|u|²⟩ of every member
    # or: kind = "rest"

    [run]
    spinup = 10.0                       # time run before the first record (default 0)
    t_end = 30.0                        # time recorded after the spin-up
    output_every = 0.5                  # time between records

For ``BetaPlane``, ``nu = "default"`` (or leaving nu out) picks ν = (n/3)^(−2p) for the grid in
use, so an LES grid gets its own hyperviscosity. Files are read with :mod:`tomllib` and checked
when loaded: unknown keys and wrong types raise :class:`PresetError` (a ValueError) naming the file
and the key. Values are range-checked by the solver constructors in :meth:`Preset.make_solver`.

``preset.with_settings({"beta": 4, "run.t_end": 100})`` (the command line's ``--set KEY=VALUE``,
read by :func:`parse_setting`) returns a copy with values replaced: a bare KEY is a setting of
``[dns]`` (which the LES inherits unless ``[les]`` sets it too), ``SECTION.KEY`` one of ``dns``,
``les``, ``initial`` or ``run``; the same checks as a file's apply.
"""
from __future__ import annotations

import inspect
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from solvers import BetaPlane, KolmogorovFlow, validate
from solvers.initial import random_vorticity, rest

PRESET_DIR = Path(__file__).resolve().parent / "presets"

SOLVERS: dict[str, type] = {"KolmogorovFlow": KolmogorovFlow, "BetaPlane": BetaPlane}

# constructor keywords that belong to a run, not to a configuration
RUNTIME_KEYS = ("members", "seed", "first_member", "blowup_dir")

# value kinds: "int", "number", "str", "bool", "dt" (number or "cfl"), "nu" (number or "default")
_COMMON = {"n": "int", "L": "number", "mu": "number", "dt": "dt", "cfl": "number",
           "dt_max": "number", "stepper": "str", "threads": "int", "dtype": "str",
           "forcing_filter": "filter", "forcing_grid": "int"}
FILTER_WORDS = ("gaussian", "none")     # forcing_filter: Δ = 2 LES spacings (the data's), or none
SOLVER_KEYS: dict[str, dict[str, str]] = {
    "KolmogorovFlow": {**_COMMON, "nu": "number", "kf": "int", "amplitude": "number",
                       "forcing": "str", "advection": "bool"},
    "BetaPlane": {**_COMMON, "beta": "number", "nu": "nu", "hyper_order": "int", "kf": "number",
                  "kf_width": "number", "epsilon": "number", "eddy_drag": "number"},
}

TOP_KEYS = {"name": "str", "description": "str", "source": "str", "dns": "table", "les": "table",
            "initial": "table", "run": "table"}
INITIAL_KEYS = {"random": {"k_peak": "number", "energy": "number"}, "rest": {}}
RUN_KEYS = {"spinup": "number", "t_end": "number", "output_every": "number"}

_KIND_WORDS = {"int": "an integer", "number": "a number", "str": "a string", "table": "a table",
               "dt": 'a number or "cfl"', "nu": 'a number or "default"',
               "filter": 'a width ≥ 0 or "gaussian" or "none"'}


class PresetError(ValueError):
    """A preset cannot be found or its file is invalid; the message names the file and the key."""


def list_presets() -> list[str]:
    """Names of the presets shipped in ``hybrid/presets``, sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _passes(check, v) -> bool:
    """Whether ``check`` of :mod:`solvers.validate` accepts ``v``."""
    try:
        check("value", v)
    except ValueError:
        return False
    return True


def _is_int(v) -> bool:
    return _passes(lambda name, x: validate.integer(name, x, None), v)


def _is_number(v) -> bool:
    return _passes(validate.number, v)


def _type_ok(kind: str, v) -> bool:
    if kind == "int":
        return _is_int(v)
    if kind == "number":
        return _is_number(v)
    if kind == "str":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "table":
        return isinstance(v, dict)
    if kind == "dt":
        return _is_number(v) or v == "cfl"
    if kind == "nu":
        return _is_number(v) or v == "default"
    if kind == "filter":
        return (_is_number(v) and v >= 0) or v in FILTER_WORDS
    raise AssertionError(kind)


def _check_table(where: str, table: dict, allowed: dict[str, str]) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise PresetError(f"{where}: unknown key {key!r}; allowed keys: "
                              f"{', '.join(sorted(allowed))}")
        if not _type_ok(allowed[key], value):
            raise PresetError(f"{where}.{key} must be {_KIND_WORDS[allowed[key]]}, got {value!r}")


def _to_solver_value(kind: str, value):
    """A TOML value as a constructor argument ("cfl" and "default" mean None)."""
    if kind in ("dt", "nu") and isinstance(value, str):
        return None
    return value


@dataclass(frozen=True)
class Preset:
    """A validated configuration: the DNS solver and its keyword arguments, LES overrides, the
    initial condition and the run lengths. Build solvers with :meth:`make_solver`."""
    name: str
    description: str
    source: str
    solver: str
    dns: dict[str, Any]
    les: dict[str, Any]
    initial: dict[str, Any]
    run: dict[str, float]
    path: Path | None = field(default=None, compare=False)

    @property
    def solver_class(self) -> type:
        return SOLVERS[self.solver]

    @property
    def where(self) -> str:
        return f"preset {self.name!r} ({self.path})" if self.path else f"preset {self.name!r}"

    def solver_kwargs(self, grid: str = "dns", **overrides) -> dict[str, Any]:
        """Constructor keywords for the ``grid`` ('dns' or 'les') solver, with ``overrides``
        (TOML-style values: dt="cfl" and nu="default" mean None; None passes through)."""
        if grid not in ("dns", "les"):
            raise ValueError(f"grid must be 'dns' or 'les', got {grid!r}")
        allowed = SOLVER_KEYS[self.solver]
        kw = dict(self.dns)
        if grid == "les":
            if not self.les:
                raise PresetError(f"{self.where} has no [les] section")
            kw.update(self.les)
        if grid == "les":
            kw.setdefault("forcing_filter", "gaussian")
        for key, value in overrides.items():
            if key not in allowed:
                raise ValueError(f"unknown {self.solver} setting {key!r}; allowed: "
                                 f"{', '.join(sorted(allowed))}")
            if value is not None and not _type_ok(allowed[key], value):
                raise ValueError(f"{key} must be {_KIND_WORDS[allowed[key]]}, got {value!r}")
            kw[key] = value
        width = kw.get("forcing_filter", 0.0)
        if isinstance(width, str):
            width = 2 * kw.get("L", 2 * math.pi) / kw["n"] if width == "gaussian" else 0.0
        kw["forcing_filter"] = float(width)
        if grid == "les" and width > 0:
            kw.setdefault("forcing_grid", self.dns["n"])
        return {k: _to_solver_value(allowed[k], v) for k, v in kw.items()}

    def les_filter_width(self, **overrides) -> float:
        """The Gaussian filter width Δ (length units) with which the LES is forced, 0 for none:
        closure data for this LES must be filtered with the same Δ (``[les] forcing_filter``:
        "gaussian" (the default) is Δ = 2 LES grid spacings, "none" is 0, or a width)."""
        return self.solver_kwargs("les", **overrides)["forcing_filter"]

    def make_solver(self, grid: str = "dns", members: int = 1, seed: int | None = 0,
                    first_member: int = 0, blowup_dir=None, **overrides):
        """Build the DNS (``grid='dns'``) or coarse LES (``grid='les'``) solver of this preset.

        ``overrides`` replace preset values (e.g. ``n=128, dt=2e-3, threads=2``). A bad value
        raises ValueError naming the preset, the grid and the argument, before any work.
        """
        kw = self.solver_kwargs(grid, **overrides)
        try:
            return self.solver_class(members=members, seed=seed, first_member=first_member,
                                     blowup_dir=blowup_dir, **kw)
        except ValueError as e:
            raise ValueError(f"{self.where}, {grid} solver: {e}") from None

    def initial_vorticity(self, solver) -> np.ndarray:
        """The preset's initial physical vorticity (members, n, n) for ``solver`` (its grid,
        members, seed and first member)."""
        init = dict(self.initial)
        kind = init.pop("kind")
        if kind == "rest":
            return rest(solver.grid, solver.members)
        return random_vorticity(solver.grid, solver.members, solver.seed,
                                first_member=getattr(solver, "first_member", 0), **init)

    def with_settings(self, settings: dict[str, Any]) -> "Preset":
        """A copy with ``settings`` ({KEY or SECTION.KEY: value}) replaced; see the module
        docstring. Unknown keys and wrong types raise :class:`PresetError` naming the key."""
        data = {"name": self.name, "description": self.description, "source": self.source,
                "dns": {"solver": self.solver, **self.dns}, "les": dict(self.les),
                "initial": dict(self.initial), "run": dict(self.run)}
        if not data["les"]:
            del data["les"]
        for key, value in settings.items():
            section, dot, name = str(key).rpartition(".")
            section = section if dot else "dns"
            tables = {"dns": SOLVER_KEYS[self.solver], "les": SOLVER_KEYS[self.solver],
                      "initial": INITIAL_KEYS[self.initial["kind"]], "run": RUN_KEYS}
            if section not in tables:
                raise PresetError(f"setting {key!r}: unknown section {section!r}; use KEY for a "
                                  f"[dns] setting or SECTION.KEY with SECTION one of "
                                  f"{', '.join(tables)}")
            allowed = dict(tables[section])
            if section == "dns":
                for k in ("forcing_filter", "forcing_grid"):
                    allowed.pop(k)
            _check_table(section, {name: value}, allowed)
            data.setdefault(section, {})[name] = value
        return parse_preset(data, self.path, default_name=self.name)

    def to_dict(self) -> dict[str, Any]:
        """The preset as plain data (JSON-serialisable), as it would be written to TOML."""
        return {"name": self.name, "description": self.description, "source": self.source,
                "path": None if self.path is None else str(self.path),
                "dns": {"solver": self.solver, **self.dns}, "les": dict(self.les),
                "initial": dict(self.initial), "run": dict(self.run)}


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as ``(KEY, value)``: VALUE read as a TOML value (4, 2e-3, true, "cfl") if it
    is one, else kept as text (cfl, etdrk4). ValueError if there is no '=' or no KEY."""
    key, sep, value = str(text).partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not all(part.isidentifier() for part in key.split(".")):
        raise ValueError(f"expected KEY=VALUE (e.g. beta=4 or run.t_end=100), got {text!r}")
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value


def _resolve(name_or_path) -> Path:
    s = os.fspath(name_or_path)
    p = Path(s).expanduser()
    looks_like_path = s.endswith(".toml") or os.sep in s or (os.altsep or os.sep) in s
    if looks_like_path or p.is_file():
        if not p.exists():
            raise PresetError(f"preset file {p} does not exist")
        if not p.is_file():
            raise PresetError(f"preset path {p} is not a file")
        return p
    builtin = PRESET_DIR / f"{s}.toml"
    if not builtin.is_file():
        raise PresetError(f"unknown preset {s!r}; available presets: "
                          f"{', '.join(list_presets())} (or give the path of a .toml file)")
    return builtin


def parse_preset(data: dict, path: Path | None = None, default_name: str = "custom") -> Preset:
    """Validate a preset given as a dict (the parsed TOML) and return it."""
    where = str(path) if path is not None else "preset"
    _check_table(where, data, TOP_KEYS)
    for section in ("dns", "initial", "run"):
        if section not in data:
            raise PresetError(f"{where}: missing section [{section}]")

    dns = dict(data["dns"])
    solver = dns.pop("solver", None)
    if solver is None:
        raise PresetError(f"{where}: [dns] needs solver = one of {', '.join(SOLVERS)}")
    if solver not in SOLVERS:
        raise PresetError(f"{where}: dns.solver must be one of {', '.join(SOLVERS)}, "
                          f"got {solver!r}")
    allowed = SOLVER_KEYS[solver]
    for key in RUNTIME_KEYS:
        for sec, table in (("dns", dns), ("les", data.get("les", {}))):
            if key in table:
                raise PresetError(f"{where}: {sec}.{key} is set per run (command line or "
                                  f"make_solver), not in a preset")
    _check_table(f"{where}: dns", dns, allowed)
    for key in ("forcing_filter", "forcing_grid"):
        if key in dns:
            raise PresetError(f"{where}: dns.{key}: the DNS is not filtered; set {key} in [les]")
    les = dict(data.get("les", {}))
    _check_table(f"{where}: les", les, allowed)

    initial = dict(data["initial"])
    kind = initial.get("kind")
    if kind not in INITIAL_KEYS:
        raise PresetError(f"{where}: initial.kind must be one of "
                          f"{', '.join(repr(k) for k in INITIAL_KEYS)}, got {kind!r}")
    rest_keys = {k: v for k, v in initial.items() if k != "kind"}
    _check_table(f"{where}: initial", rest_keys, INITIAL_KEYS[kind])
    for key in INITIAL_KEYS[kind]:
        if key not in rest_keys:
            raise PresetError(f"{where}: initial.{key} is required for kind = {kind!r}")
    if kind == "random":
        if initial["k_peak"] <= 0:
            raise PresetError(f"{where}: initial.k_peak must be > 0, got {initial['k_peak']!r}")
        if initial["energy"] < 0:
            raise PresetError(f"{where}: initial.energy must be ≥ 0, got {initial['energy']!r}")

    run = dict(data["run"])
    _check_table(f"{where}: run", run, RUN_KEYS)
    for key in ("t_end", "output_every"):
        if key not in run:
            raise PresetError(f"{where}: run.{key} is required")
        if run[key] <= 0:
            raise PresetError(f"{where}: run.{key} must be > 0, got {run[key]!r}")
    run.setdefault("spinup", 0.0)
    if run["spinup"] < 0:
        raise PresetError(f"{where}: run.spinup must be ≥ 0, got {run['spinup']!r}")
    run = {k: float(v) for k, v in run.items()}

    return Preset(name=data.get("name", default_name), description=data.get("description", ""),
                  source=data.get("source", ""), solver=solver, dns=dns, les=les,
                  initial=initial, run=run, path=path)


def load_preset(name_or_path) -> Preset:
    """Load a shipped preset by name (see :func:`list_presets`) or a user TOML file by path.

    Unknown names raise :class:`PresetError` listing the available presets; syntax errors, unknown
    keys and wrong types raise it naming the file and the key.
    """
    path = _resolve(name_or_path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"{path} is not valid TOML: {e}") from None
    except OSError as e:
        raise PresetError(f"cannot read preset file {path}: {e.strerror or e}") from None
    return parse_preset(data, path, default_name=path.stem)


def _check_solver_keys() -> None:
    """Every setting a preset may hold is a constructor keyword of its solver (import-time check
    that the tables above follow the solvers' signatures)."""
    for name, cls in SOLVERS.items():
        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        extra = set(SOLVER_KEYS[name]) - params
        if extra:
            raise AssertionError(f"hybrid.config knows {name} settings {sorted(extra)} that "
                                 f"its constructor does not take")


_check_solver_keys()
