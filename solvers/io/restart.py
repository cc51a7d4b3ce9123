"""Restart files: :func:`write_restart`, :func:`load_restart` and :func:`read_restart`.

Everything of ``solver.get_state()`` is stored exactly (arrays as variables, complex ones split into
real and imaginary parts; everything else as exact JSON, including the 128-bit PCG64 RNG states),
with the solver's constructor configuration and class, the closure's configuration and refresh
period, and the process's FFTW wisdom. Reading imports the wisdom before the solver plans its
transforms, so a restarted run, in this process or another, rounds exactly like the run that saved
it and continues bit for bit. Restarts are written to a temporary file in the target folder and
moved into place with ``os.replace``: a half-written restart never replaces a good one.

Solver classes are found through :mod:`solvers.registry` (each solver module registers its class);
this module registers :func:`write_restart` there, which is how a solver that blows up, or whose
closure fails, writes its restart without importing this module.
"""
from __future__ import annotations

import base64
import inspect
import json
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from .. import fft, registry
from ..files import check_output_file, json_text
from .schema import (CONVENTIONS, FORMAT_VERSION, LOCK_HINT, RESTART_FORMAT, RestartFileError,
                     RestartWriteError, check_input_path, closure_config,
                     closure_every, config_json, constructor_defaults, differing_keys,
                     make_folder, now,
                     package_version)

_WISDOM_NAMES = ("fftw_wisdom_double", "fftw_wisdom_single", "fftw_wisdom_longdouble")


# ---------------------------------------------------------------------------------- exact JSON
def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _jsonable(o: Any) -> Any:
    """Recursively turn ``o`` into JSON values that :func:`_from_json` turns back exactly:
    arrays and numpy scalars as base64 bytes with dtype and shape, tuples, complex numbers,
    bytes and dicts with non-string keys tagged. Raises TypeError for anything else."""
    if o is None or isinstance(o, (bool, str)):
        return o
    if isinstance(o, np.ndarray):
        if o.dtype.hasobject:
            raise TypeError("object arrays cannot be stored exactly")
        a = np.ascontiguousarray(o)
        return {"__ndarray__": _b64(a.tobytes()), "dtype": a.dtype.str, "shape": list(a.shape)}
    if isinstance(o, np.generic):
        if isinstance(o, np.object_):
            raise TypeError("numpy object scalars cannot be stored exactly")
        return {"__npscalar__": _b64(o.tobytes()), "dtype": o.dtype.str}
    if isinstance(o, (int, float)):                     # exact: JSON ints are unbounded and
        return o                                         # Python floats print round-trip
    if isinstance(o, complex):
        return {"__complex__": [o.real, o.imag]}
    if isinstance(o, (bytes, bytearray)):
        return {"__bytes__": _b64(bytes(o))}
    if isinstance(o, tuple):
        return {"__tuple__": [_jsonable(v) for v in o]}
    if isinstance(o, list):
        return [_jsonable(v) for v in o]
    if isinstance(o, dict):
        if all(isinstance(k, str) for k in o):
            return {k: _jsonable(v) for k, v in o.items()}
        return {"__items__": [[_jsonable(k), _jsonable(v)] for k, v in o.items()]}
    raise TypeError(f"{type(o).__name__} cannot be stored as exact JSON")


def _hook(d: dict) -> Any:
    if "__ndarray__" in d:
        raw = base64.b64decode(d["__ndarray__"])
        return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()
    if "__npscalar__" in d:
        raw = base64.b64decode(d["__npscalar__"])
        return np.frombuffer(raw, dtype=np.dtype(d["dtype"]))[0]
    if "__complex__" in d:
        re, im = d["__complex__"]
        return complex(re, im)
    if "__bytes__" in d:
        return base64.b64decode(d["__bytes__"])
    if "__tuple__" in d:
        return tuple(d["__tuple__"])
    if "__items__" in d:
        return {(tuple(k) if isinstance(k, list) else k): v for k, v in d["__items__"]}
    return d


def _to_json(o: Any) -> str:
    return json.dumps(_jsonable(o), allow_nan=True)


def _from_json(s: str) -> Any:
    return json.loads(s, object_hook=_hook)


# ---------------------------------------------------------------------------------- restart
def _put_blob(ds, name: str, data: bytes) -> None:
    ds.createDimension(f"{name}_bytes", max(len(data), 1))
    v = ds.createVariable(name, "u1", (f"{name}_bytes",), fill_value=False)
    v.length = np.int64(len(data))
    buf = np.zeros(max(len(data), 1), np.uint8)
    buf[:len(data)] = np.frombuffer(data, np.uint8)
    v[:] = buf


def _get_blob(ds, name: str) -> bytes:
    v = ds.variables[name]
    return np.asarray(v[:], dtype=np.uint8).tobytes()[:int(v.length)]


def _array_storable(a) -> bool:
    return (isinstance(a, np.ndarray) and a.ndim >= 1 and a.size > 0
            and a.dtype.kind in "biufc" and a.dtype.byteorder in "=|<>" and a.dtype.itemsize <= 16
            and not (a.dtype.kind == "f" and a.dtype.itemsize > 8)
            and not (a.dtype.kind == "c" and a.dtype.itemsize > 16))


def _put_array(ds, key: str, a: np.ndarray, spectral_shape) -> dict:
    """Store a state array as variable(s) ``state_<key>`` (complex: ``_real`` and ``_imag``)."""
    a = np.ascontiguousarray(a)
    if a.shape == spectral_shape:
        dims = ("member", "ky", "kx")
    else:
        dims = tuple(f"{key}_dim{i}" for i in range(a.ndim))
        for d, size in zip(dims, a.shape):
            ds.createDimension(d, size)
    base = f"state_{key}"
    info = {"dtype": a.dtype.str, "shape": list(a.shape)}
    if a.dtype.kind == "c":
        part = a.real.dtype.newbyteorder("=")
        for suffix, values in (("real", a.real), ("imag", a.imag)):
            v = ds.createVariable(f"{base}_{suffix}", part, dims, fill_value=False)
            v.long_name = f"{suffix} part of solver state {key!r}"
            v[...] = values
        info["vars"] = [f"{base}_real", f"{base}_imag"]
    else:
        stored = np.dtype(np.uint8) if a.dtype.kind == "b" else a.dtype.newbyteorder("=")
        v = ds.createVariable(base, stored, dims, fill_value=False)
        v.long_name = f"solver state {key!r}"
        v[...] = a.astype(stored)
        info["vars"] = [base]
    return info


def _get_array(ds, info: dict) -> np.ndarray:
    dt = np.dtype(info["dtype"])
    out = np.empty(info["shape"], dt)
    if dt.kind == "c":
        re, im = (np.asarray(ds.variables[name][...]) for name in info["vars"])
        out.real = re
        out.imag = im
    else:
        out[...] = np.asarray(ds.variables[info["vars"][0]][...])
    return out


def write_restart(solver, path) -> Path:
    """Write a restart file of ``solver`` at ``path`` (replacing it atomically) and return the path.

    Stores ``solver.get_state()`` exactly, the configuration and class of the solver, its closure's
    configuration (:func:`solvers.io.schema.closure_config`) and refresh period, and the FFTW
    wisdom of this process. A closure state that exact JSON cannot
    hold (see :func:`_jsonable`) is pickled, with a warning; :func:`read_restart` then needs
    ``allow_pickle=True``. Failures raise OSError subclasses (:class:`RestartWriteError`) naming
    the path, and leave any previous file there untouched.
    """
    for attr in ("get_state", "config", "grid", "members"):
        if not hasattr(solver, attr):
            raise TypeError(f"solver must be a PseudoSpectralSolver (it lacks {attr!r}), got "
                            f"{type(solver).__name__}")
    p = check_output_file(path, "restart file", overwrite=True)
    try:
        config = config_json(solver)
        ccfg = json_text(closure_config(solver))
    except ValueError as e:                           # an OSError, for blow-up handlers
        raise RestartWriteError(f"cannot write restart file {p}: {e}") from None
    state = dict(solver.get_state())
    wisdom = fft.export_wisdom()
    make_folder(p, "restart file")
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise RestartWriteError(e.errno, f"cannot write restart file {p}: {e.strerror}") from None
    os.close(fd)
    try:
        with netCDF4.Dataset(tmp, "w", clobber=True, format="NETCDF4") as ds:
            _fill_restart(ds, solver, state, config, ccfg, wisdom)
        mode = p.stat().st_mode & 0o777 if p.exists() else 0o644
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:                     # on disk before it replaces the old one
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if not isinstance(e, Exception):
            raise
        raise RestartWriteError(f"cannot write restart file {p}: {type(e).__name__}: {e}") from e
    return p


def _fill_restart(ds, solver, state: dict, config: str, ccfg: str, wisdom) -> None:
    g = solver.grid
    M = int(solver.members)
    spectral_shape = (M, g.n, g.nk)
    ds.createDimension("member", M)
    ds.createDimension("ky", g.n)
    ds.createDimension("kx", g.nk)

    has_closure_state = "closure_state" in state
    closure_state = state.pop("closure_state", None)
    arrays, scalars = {}, {}
    for key, val in state.items():
        if _array_storable(val):
            arrays[key] = _put_array(ds, key, val, spectral_shape)
        else:
            scalars[key] = val
    _put_blob(ds, "state_json", _to_json(scalars).encode("utf-8"))

    closure_format = "none"
    if has_closure_state:
        try:
            blob = _to_json(closure_state).encode("utf-8")
            closure_format = "json"
        except (TypeError, ValueError) as e:
            warnings.warn(f"the state of closure {type(solver.closure).__name__} is not exact "
                          f"JSON ({e}); pickling it: read_restart will need allow_pickle=True",
                          stacklevel=3)
            blob = pickle.dumps(closure_state, protocol=pickle.HIGHEST_PROTOCOL)
            closure_format = "pickle"
        _put_blob(ds, "closure_state", blob)

    for name, w in zip(_WISDOM_NAMES, wisdom):
        _put_blob(ds, name, bytes(w))

    closure = getattr(solver, "closure", None)
    seed = getattr(solver, "seed", None)
    blowup_dir = getattr(solver, "blowup_dir", None)
    extras = {"blowup_dir": None if blowup_dir is None else os.fspath(blowup_dir)}
    if hasattr(solver, "track_budget"):
        extras["track_budget"] = bool(solver.track_budget)
    ds.setncatts({
        "title": f"{type(solver).__name__} restart",
        "Conventions": CONVENTIONS,
        "conventions": CONVENTIONS,
        "restart_format": RESTART_FORMAT,
        "format_version": np.int32(FORMAT_VERSION),
        "solver": type(solver).__name__,
        "kind": str(getattr(solver, "kind", "unknown")),
        "config": config,
        "package_version": package_version(),
        "created": now(),
        "seed": "none" if seed is None else np.int64(seed),
        "n": np.int32(g.n),
        "L": float(g.L),
        "members": np.int32(M),
        "step": np.int64(state.get("step", -1)),
        "t": float(state.get("t", np.nan)),
        "closure": "none" if closure is None else type(closure).__name__,
        "closure_every": np.int32(closure_every(solver)),
        "closure_config": ccfg,
        "closure_state_format": closure_format,
        "state_arrays": json.dumps(arrays),
        "solver_extras": json.dumps(extras),
    })


def load_restart(path, allow_pickle: bool = False) -> dict:
    """Read a restart file without building a solver: a dict with ``state`` (as from
    ``get_state``), ``config``, ``solver`` (class name), ``kind``, ``wisdom``, ``closure``,
    ``closure_every``, ``closure_config`` (None without a closure or in files of format 1),
    ``extras`` and ``attrs``. Errors name the file."""
    p = check_input_path(path, "restart file")
    try:
        ds = netCDF4.Dataset(p, "r")
    except (OSError, RuntimeError, ValueError) as e:
        raise RestartFileError(f"{p} is not a readable netCDF4 restart file (corrupt, truncated or "
                               f"another format): {e}{LOCK_HINT}") from e
    try:
        ds.set_auto_maskandscale(False)
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        if attrs.get("restart_format") != RESTART_FORMAT:
            raise RestartFileError(f"{p} is a netCDF file but not a solver restart file (no "
                                   f"restart_format={RESTART_FORMAT!r} attribute)")
        if int(attrs.get("format_version", 0)) > FORMAT_VERSION:
            raise RestartFileError(f"restart file {p} has format version "
                                   f"{attrs['format_version']}; this package reads up to "
                                   f"{FORMAT_VERSION}")
        try:
            state = _from_json(_get_blob(ds, "state_json").decode("utf-8"))
            for key, info in json.loads(attrs["state_arrays"]).items():
                state[key] = _get_array(ds, info)
            fmt = attrs.get("closure_state_format", "none")
            if fmt == "json":
                state["closure_state"] = _from_json(_get_blob(ds, "closure_state").decode("utf-8"))
            elif fmt == "pickle":
                if not allow_pickle:
                    raise RestartFileError(
                        f"restart file {p} holds a pickled closure state; pickles can run code, so "
                        f"pass allow_pickle=True if you trust this file")
                state["closure_state"] = pickle.loads(_get_blob(ds, "closure_state"))
            wisdom = tuple(_get_blob(ds, name) for name in _WISDOM_NAMES)
            config = json.loads(attrs["config"])
            ccfg = json.loads(attrs.get("closure_config", "null"))
            extras = json.loads(attrs.get("solver_extras", "{}"))
        except RestartFileError:
            raise
        except (KeyError, ValueError, TypeError, OSError, RuntimeError, IndexError) as e:
            raise RestartFileError(f"restart file {p} is incomplete or damaged: "
                                   f"{type(e).__name__}: {e}") from e
    finally:
        ds.close()
    for key in ("zeta_hat", "step", "t"):
        if key not in state:
            raise RestartFileError(f"restart file {p} is incomplete: it has no {key!r}")
    return {"state": state, "config": config, "solver": str(attrs["solver"]),
            "kind": str(attrs.get("kind", "")), "wisdom": wisdom,
            "closure": str(attrs.get("closure", "none")),
            "closure_every": int(attrs.get("closure_every", 0)), "closure_config": ccfg,
            "extras": extras,
            "attrs": attrs, "path": p}




def check_closure(data: dict, solver) -> None:
    """Raise ValueError unless the closure attached to ``solver`` (with its refresh period) has
    the configuration saved in the restart ``data`` (from :func:`load_restart`), naming the
    differing keys. A restart saved without a closure accepts none; files of format 1 hold no
    closure configuration and are not checked beyond the closure's presence."""
    p, saved = data["path"], data["closure_config"]
    has_closure = getattr(solver, "closure", None) is not None
    if "closure_hat" in data["state"] and not has_closure:
        raise ValueError(f"restart file {p} was written with closure {data['closure']} attached "
                         f"(every {data['closure_every']} steps); pass that closure: "
                         f"read_restart(path, closure=...)")
    if saved is None and int(data["attrs"].get("format_version", 1)) < 2:
        return
    given = closure_config(solver)
    if saved is None and given is None:
        return
    if saved is None or given is None:
        what = "no closure" if saved is None else f"closure {data['closure']}"
        raise ValueError(f"restart file {p} was written with {what}; continuing it with "
                         f"{'no closure' if given is None else type(solver.closure).__name__} "
                         f"would be another run")
    diff = (["class"] if saved.get("class") != given.get("class")   # arguments then differ too
            else differing_keys(saved, given, defaults=constructor_defaults(
                type(solver.closure), "arguments.")))
    if diff:
        shown = "; ".join(f"{k}: saved {_lookup(saved, k)!r}, given {_lookup(given, k)!r}"
                          for k in diff)
        raise ValueError(f"restart file {p} was written with another closure configuration "
                         f"(differing: {shown}); build the closure as in the saved run")


def _lookup(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return "<absent>"
        d = d[part]
    return d


def read_restart(path, closure=None, *, every: int | None = None, allow_pickle: bool = False,
                 **overrides):
    """Rebuild the solver saved by :func:`write_restart` and return it, ready to continue.

    The FFTW wisdom of the saving process is imported first (after this machine's), so the new
    solver plans the same transforms and continues bit for bit. ``overrides`` replace constructor
    arguments of the saved configuration (e.g. ``blowup_dir=...``, ``threads=...``; changing
    ``dt`` or the physics makes a different run). ``closure`` is attached with ``every`` (default:
    the saved refresh period) before the state is restored; it must have the saved closure's
    configuration (class, constructor arguments, weights; see :func:`check_closure`), and a
    restart saved with a closure needs one. ``allow_pickle`` permits a pickled closure state.
    """
    data = load_restart(path, allow_pickle=allow_pickle)
    p, name = data["path"], data["solver"]
    classes = registry.solver_classes()
    cls = classes.get(name)
    if cls is None:
        raise RestartFileError(f"restart file {p} holds a {name!r} solver; known solver classes: "
                               f"{sorted(classes)} (see solvers.registry.register_solver)")
    params = inspect.signature(cls).parameters
    takes_any = any(q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values())
    unknown = [k for k in overrides if k not in params and not takes_any]
    if unknown:
        raise ValueError(f"read_restart: {name} has no argument(s) {unknown}; allowed overrides: "
                         f"{sorted(k for k in params if k != 'self')}")
    if closure is None and every is not None:
        raise ValueError("read_restart: every was given but no closure")
    kwargs = dict(data["config"])
    extras = data["extras"]
    if extras.get("blowup_dir") is not None and ("blowup_dir" in params or takes_any):
        kwargs["blowup_dir"] = extras["blowup_dir"]
    kwargs.update(overrides)
    state = data["state"]
    if every is None and closure is not None:
        every = data["closure_every"] or None
    check_closure(data, _Attached(closure, every))     # before any work

    fft.import_wisdom(data["wisdom"])                 # before the solver plans its transforms
    solver = cls(**kwargs)
    if "track_budget" in extras and hasattr(solver, "track_budget"):
        solver.track_budget = bool(extras["track_budget"])
    if closure is not None:
        solver.set_closure(closure, every)
    try:
        solver.set_state(state)
    except ValueError as e:
        raise ValueError(f"restart file {p} does not fit the rebuilt solver: {e}") from e
    return solver


class _Attached:
    """A closure as a solver would hold it, for :func:`check_closure` before the solver exists."""

    def __init__(self, closure, every):
        self.closure = closure
        self.closure_every = every


registry.register_restart_writer(write_restart)
