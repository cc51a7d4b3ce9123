"""netCDF4 files of the solvers: trajectories and restart files.

Trajectory (:class:`TrajectoryWriter`, read back with :func:`open_trajectory` or plain
``xarray.open_dataset``)::

    dims       member, time (unlimited), y, x
    vorticity  (member, time, y, x)   float32 (float64 on request), physical space
    energy     (member, time)         float64, ½⟨|u|²⟩
    enstrophy  (member, time)         float64, ½⟨ζ²⟩
    zonal_mean_u (member, time, y)    beta-plane runs only
    time, step (time); x (x); y (y); member (member)
    attributes: config (JSON of solver.config()), solver, kind, package_version, seed, created,
                Conventions/conventions, n, L, members, closure, ...

Every :meth:`TrajectoryWriter.write` appends one record and flushes the file (``Dataset.sync``),
so a run that is killed keeps every record it finished writing. HDF5 has no journal: a process
killed *inside* a write may leave that last record (rarely, the file) damaged.

Restart (:func:`write_restart` / :func:`read_restart`): everything of ``solver.get_state()``
(arrays as variables, complex ones split into exact real and imaginary parts; everything else as
exact JSON, including the 128-bit PCG64 RNG states), the solver's constructor configuration and
class, and the process's FFTW wisdom. Reading imports the wisdom before the solver plans its
transforms, so a restarted run, in this process or another, rounds exactly like the run that
saved it and continues bit for bit. Restarts are written to a temporary file in the target folder
and moved into place with ``os.replace``: a half-written restart never replaces a good one.

Readers run under HDF5 file locking: while a writer holds a trajectory open, another process may
need ``HDF5_USE_FILE_LOCKING=FALSE`` in its environment to read it.
"""
from __future__ import annotations

import base64
import datetime as _dt
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

from . import fft

TRAJECTORY_FORMAT = "solvers-trajectory"
RESTART_FORMAT = "solvers-restart"
FORMAT_VERSION = 1
CONVENTIONS = "CF-1.8"
_LOCK_HINT = (". If another process is still writing the file, HDF5 file locking refuses to "
              "open it: set HDF5_USE_FILE_LOCKING=FALSE in the environment to read it meanwhile")
_WISDOM_NAMES = ("fftw_wisdom_double", "fftw_wisdom_single", "fftw_wisdom_longdouble")

__all__ = ["TrajectoryWriter", "open_trajectory", "write_restart", "read_restart", "load_restart",
           "register_solver", "TrajectoryFileError", "RestartFileError", "RestartWriteError"]


class TrajectoryFileError(ValueError):
    """A file that should be a trajectory cannot be read as one (corrupt, truncated, other kind)."""


class RestartFileError(ValueError):
    """A file that should be a restart cannot be read as one (corrupt, truncated, other kind)."""


class RestartWriteError(OSError):
    """A restart file could not be written (an OSError, so blow-up handlers that catch OSError
    still raise their own error). The previous file at that path, if any, is untouched."""


# ---------------------------------------------------------------------------------- helpers
def _package_version() -> str:
    try:
        from . import __version__
    except ImportError:                                      # pragma: no cover
        return "unknown"
    return str(__version__)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _plain(o: Any) -> Any:
    """json.dumps ``default`` for configurations: numpy scalars and paths as plain values."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _config_json(solver) -> str:
    try:
        return json.dumps(solver.config(), default=_plain, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"the configuration of {type(solver).__name__} cannot be stored as "
                         f"JSON: {e}") from None


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists, stopping early at a broken symbolic link
    (returned as is, so callers see a non-directory): the folder whose write permission decides
    whether ``path`` can be created."""
    existing = Path(path)
    while not existing.exists() and not existing.is_symlink() and existing.parent != existing:
        existing = existing.parent
    return existing


def _check_output_path(path, what: str, overwrite: bool) -> Path:
    """Validate where a file will go, touching nothing: the path must not be a directory, must not
    exist unless ``overwrite``, and its folder must exist or be creatable inside a writable one."""
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise TypeError(f"{what} path must be a str or os.PathLike, got {path!r}") from None
    if p.name in ("", ".", ".."):
        raise ValueError(f"{what} path {str(path)!r} names no file; expected a file path such as "
                         f"'run/out.nc'")
    if p.is_dir():
        raise IsADirectoryError(f"{what} path {p} is a directory; expected a file path")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise FileExistsError(f"{what} {p} already exists; expected a new path (or pass "
                              f"overwrite=True to replace it)")
    folder = p.parent
    existing = nearest_existing(folder)
    if not existing.exists() and existing.is_symlink():
        raise NotADirectoryError(f"cannot create {what} {p}: {existing} is a broken symbolic "
                                 f"link; expected {folder} to be a directory or creatable")
    if not existing.is_dir():
        raise NotADirectoryError(f"cannot create {what} {p}: {existing} is not a directory; "
                                 f"expected {folder} to be a directory or creatable")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot create {what} {p}: directory {existing} is not writable; "
                              f"expected a writable output directory")
    return p


def _make_folder(p: Path, what: str) -> None:
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(e.errno, f"cannot create the folder {p.parent} of {what} {p}: "
                               f"{e.strerror}") from None


# ---------------------------------------------------------------------------------- trajectory
class TrajectoryWriter:
    """Append snapshots of a solver to a netCDF4 trajectory file, flushed after every record.

    ``TrajectoryWriter(path, solver, dtype="float32", overwrite=False, compress=False)`` checks the
    arguments and the path before creating anything; the file layout is in the module docstring.
    Use as a context manager, call :meth:`write` yourself or pass it as a run callback::

        with TrajectoryWriter("run/traj.nc", s) as w:
            s.run(t_end=10, every=0.5, callback=w.write)

    ``compress`` turns on zlib compression of the field variables.
    """

    def __init__(self, path, solver, dtype="float32", overwrite: bool = False,
                 compress: bool = False):
        for attr in ("grid", "members", "vorticity", "config", "t", "step_count", "energy",
                     "enstrophy"):
            if not hasattr(solver, attr):
                raise TypeError(f"solver must be a PseudoSpectralSolver (it lacks {attr!r}), got "
                                f"{type(solver).__name__}")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            dt = None
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        if not isinstance(overwrite, bool):
            raise ValueError(f"overwrite must be True or False, got {overwrite!r}")
        config = _config_json(solver)
        self.path = _check_output_path(path, "trajectory", overwrite)
        _make_folder(self.path, "trajectory")

        self.solver = solver
        self.dtype = dt
        self.n = int(solver.grid.n)
        self.members = int(solver.members)
        self.kind = str(getattr(solver, "kind", "unknown"))
        self.zonal = self.kind == "betaplane"
        self.records = 0
        try:
            self._ds = netCDF4.Dataset(self.path, "w", clobber=overwrite, format="NETCDF4")
        except OSError as e:
            raise type(e)(e.errno, f"cannot create trajectory {self.path}: {e.strerror or e}") \
                from None
        try:
            self._define(solver, config, bool(compress))
            self._ds.sync()
        except BaseException:
            self._ds.close()
            self._ds = None
            try:
                self.path.unlink()
            except OSError:
                pass
            raise

    def _define(self, solver, config: str, compress: bool) -> None:
        ds, n, M, g = self._ds, self.n, self.members, solver.grid
        ds.createDimension("member", M)
        ds.createDimension("time", None)
        ds.createDimension("y", n)
        ds.createDimension("x", n)

        v = ds.createVariable("member", "i4", ("member",))
        v.long_name = "ensemble member index"
        v[:] = np.arange(M, dtype=np.int32)
        v = ds.createVariable("time", "f8", ("time",), chunksizes=(1024,))
        v.units = "1"
        v.long_name = "simulated time (nondimensional)"
        v.axis = "T"
        v = ds.createVariable("step", "i8", ("time",), chunksizes=(1024,))
        v.long_name = "solver step count"
        v.units = "1"
        for name, axis, what in (("y", "Y", "meridional"), ("x", "X", "zonal")):
            v = ds.createVariable(name, "f8", (name,))
            v.units = "1"
            v.long_name = f"{what} coordinate {name} (nondimensional length; box side L={g.L:.17g})"
            v.axis = axis
            v[:] = np.asarray(getattr(g, name), dtype=np.float64)

        kw = dict(zlib=True, complevel=4, shuffle=True) if compress else {}
        v = ds.createVariable("vorticity", self.dtype, ("member", "time", "y", "x"),
                              chunksizes=(1, 1, n, n), **kw)
        v.units = "1"
        v.long_name = "relative vorticity zeta = dv/dx - du/dy"
        tchunk = min(256, max(1, (1 << 16) // M))
        v = ds.createVariable("energy", "f8", ("member", "time"), chunksizes=(M, tchunk))
        v.units = "1"
        v.long_name = "kinetic energy 1/2 <|u|^2> (box mean)"
        v = ds.createVariable("enstrophy", "f8", ("member", "time"), chunksizes=(M, tchunk))
        v.units = "1"
        v.long_name = "enstrophy 1/2 <zeta^2> (box mean)"
        if self.zonal:
            v = ds.createVariable("zonal_mean_u", self.dtype, ("member", "time", "y"),
                                  chunksizes=(M, 1, n), **kw)
            v.units = "1"
            v.long_name = "zonal-mean zonal velocity U(y) (mean over x of u)"

        closure = getattr(solver, "closure", None)
        seed = getattr(solver, "seed", None)
        ds.setncatts({
            "title": f"{type(solver).__name__} trajectory",
            "Conventions": CONVENTIONS,
            "conventions": CONVENTIONS,
            "format": TRAJECTORY_FORMAT,
            "format_version": np.int32(FORMAT_VERSION),
            "solver": type(solver).__name__,
            "kind": self.kind,
            "config": config,
            "package_version": _package_version(),
            "seed": "none" if seed is None else np.int64(seed),
            "created": _now(),
            "n": np.int32(n),
            "L": float(g.L),
            "members": np.int32(M),
            "closure": "none" if closure is None else type(closure).__name__,
            "closure_every": np.int32(getattr(closure, "every", 0) or 0),
            "t_start": float(solver.t),
            "step_start": np.int64(solver.step_count),
        })

    @property
    def closed(self) -> bool:
        return self._ds is None

    def write(self, solver=None) -> None:
        """Append the solver's current state (vorticity, time, step, energy, enstrophy and, on the
        beta-plane, U(y)) as one time record and flush the file. Default: the constructor's
        solver. Usable as ``solver.run(..., callback=writer.write)``."""
        if self._ds is None:
            raise ValueError(f"trajectory {self.path} is closed; cannot write to it")
        s = self.solver if solver is None else solver
        if int(s.grid.n) != self.n or int(s.members) != self.members:
            raise ValueError(f"trajectory {self.path} holds n={self.n}, members={self.members}; "
                             f"got a solver with n={s.grid.n}, members={s.members}")
        ds, i = self._ds, self.records
        ds["vorticity"][:, i, :, :] = np.asarray(s.vorticity).astype(self.dtype, copy=False)
        ds["energy"][:, i] = np.asarray(s.energy(), dtype=np.float64)
        ds["enstrophy"][:, i] = np.asarray(s.enstrophy(), dtype=np.float64)
        if self.zonal:
            ds["zonal_mean_u"][:, i, :] = np.asarray(s.zonal_mean_u()).astype(self.dtype,
                                                                                copy=False)
        ds["step"][i] = np.int64(s.step_count)
        ds["time"][i] = float(s.t)
        ds.sync()
        self.records += 1

    __call__ = write

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._ds is not None:
            ds, self._ds = self._ds, None
            ds.close()

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._ds is None else "open"
        return f"TrajectoryWriter({str(self.path)!r}, {self.records} records, {state})"


def open_netcdf(path, what: str, error: type, **kwargs):
    """``xarray.open_dataset`` of a netCDF4 file of ours, ``what`` naming its kind in the errors:
    FileNotFoundError / IsADirectoryError, or ``error`` for a corrupt or foreign file."""
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} {p} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"{what} path {p} is a directory; expected a netCDF file")
    import xarray as xr
    try:
        return p, xr.open_dataset(p, engine="netcdf4", **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, IndexError) as e:
        raise error(f"{p} is not a readable netCDF4 {what} (corrupt, truncated or another "
                    f"format): {e}{_LOCK_HINT}") from e


def open_trajectory(path, **kwargs):
    """Open a trajectory written by :class:`TrajectoryWriter` as an ``xarray.Dataset`` (lazily;
    ``kwargs`` go to ``xarray.open_dataset``). Missing, corrupt or non-trajectory files raise
    FileNotFoundError / :class:`TrajectoryFileError` naming the file. ``json.loads(ds.attrs
    ["config"])`` gives the solver configuration."""
    p, ds = open_netcdf(path, "trajectory", TrajectoryFileError, **kwargs)
    if "vorticity" not in ds.variables:
        names = sorted(ds.variables)
        ds.close()
        raise TrajectoryFileError(f"{p} is a netCDF file but not a trajectory: it has no "
                                  f"'vorticity' variable (it has {names})")
    return ds


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
    class and ``every``, and the FFTW wisdom of this process. A closure state that exact JSON cannot
    hold (see :func:`_jsonable`) is pickled, with a warning; :func:`read_restart` then needs
    ``allow_pickle=True``. Failures raise OSError subclasses (:class:`RestartWriteError`) naming
    the path, and leave any previous file there untouched.
    """
    for attr in ("get_state", "config", "grid", "members"):
        if not hasattr(solver, attr):
            raise TypeError(f"solver must be a PseudoSpectralSolver (it lacks {attr!r}), got "
                            f"{type(solver).__name__}")
    p = _check_output_path(path, "restart file", overwrite=True)
    try:
        config = _config_json(solver)
    except ValueError as e:                           # an OSError, for blow-up handlers
        raise RestartWriteError(f"cannot write restart file {p}: {e}") from None
    state = dict(solver.get_state())
    wisdom = fft.export_wisdom()
    _make_folder(p, "restart file")
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise RestartWriteError(e.errno, f"cannot write restart file {p}: {e.strerror}") from None
    os.close(fd)
    try:
        with netCDF4.Dataset(tmp, "w", clobber=True, format="NETCDF4") as ds:
            _fill_restart(ds, solver, state, config, wisdom)
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


def _fill_restart(ds, solver, state: dict, config: str, wisdom) -> None:
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
        "package_version": _package_version(),
        "created": _now(),
        "seed": "none" if seed is None else np.int64(seed),
        "n": np.int32(g.n),
        "L": float(g.L),
        "members": np.int32(M),
        "step": np.int64(state.get("step", -1)),
        "t": float(state.get("t", np.nan)),
        "closure": "none" if closure is None else type(closure).__name__,
        "closure_every": np.int32(getattr(closure, "every", 0) or 0),
        "closure_state_format": closure_format,
        "state_arrays": json.dumps(arrays),
        "solver_extras": json.dumps(extras),
    })


def load_restart(path, allow_pickle: bool = False) -> dict:
    """Read a restart file without building a solver: a dict with ``state`` (as from
    ``get_state``), ``config``, ``solver`` (class name), ``kind``, ``wisdom``, ``closure``,
    ``closure_every``, ``extras`` and ``attrs``. Errors name the file."""
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"restart file {p} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"restart path {p} is a directory; expected a restart file")
    try:
        ds = netCDF4.Dataset(p, "r")
    except (OSError, RuntimeError, ValueError) as e:
        raise RestartFileError(f"{p} is not a readable netCDF4 restart file (corrupt, truncated or "
                               f"another format): {e}{_LOCK_HINT}") from e
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
            "closure_every": int(attrs.get("closure_every", 0)), "extras": extras,
            "attrs": attrs, "path": p}


_EXTRA_SOLVERS: dict[str, type] = {}


def register_solver(cls: type) -> type:
    """Let :func:`read_restart` rebuild solvers of class ``cls`` (by its ``__name__``); usable as
    a class decorator. KolmogorovFlow and BetaPlane are known already."""
    _EXTRA_SOLVERS[cls.__name__] = cls
    return cls


def _solver_classes() -> dict[str, type]:
    from .betaplane import BetaPlane                 # lazily: base.py imports this module lazily
    from .kolmogorov import KolmogorovFlow
    return {"KolmogorovFlow": KolmogorovFlow, "BetaPlane": BetaPlane, **_EXTRA_SOLVERS}


def read_restart(path, closure=None, *, allow_pickle: bool = False, **overrides):
    """Rebuild the solver saved by :func:`write_restart` and return it, ready to continue.

    The FFTW wisdom of the saving process is imported first, so the new solver plans the same
    transforms and continues bit for bit. ``overrides`` replace constructor arguments of the saved
    configuration (e.g. ``blowup_dir=...``, ``threads=...``; changing ``dt`` or the physics makes
    a different run). ``closure`` is attached (``set_closure``) before the state is restored; a
    restart saved with a closure needs one. ``allow_pickle`` permits a pickled closure state.
    """
    data = load_restart(path, allow_pickle=allow_pickle)
    p, name = data["path"], data["solver"]
    classes = _solver_classes()
    cls = classes.get(name)
    if cls is None:
        raise RestartFileError(f"restart file {p} holds a {name!r} solver; known solver classes: "
                               f"{sorted(classes)} (see solvers.io.register_solver)")
    params = inspect.signature(cls).parameters
    takes_any = any(q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values())
    unknown = [k for k in overrides if k not in params and not takes_any]
    if unknown:
        raise ValueError(f"read_restart: {name} has no argument(s) {unknown}; allowed overrides: "
                         f"{sorted(k for k in params if k != 'self')}")
    kwargs = dict(data["config"])
    extras = data["extras"]
    if extras.get("blowup_dir") is not None and ("blowup_dir" in params or takes_any):
        kwargs["blowup_dir"] = extras["blowup_dir"]
    kwargs.update(overrides)
    state = data["state"]
    if closure is None and "closure_hat" in state:
        raise ValueError(f"restart file {p} was written with closure {data['closure']} attached "
                         f"(every {data['closure_every']} steps); pass that closure: "
                         f"read_restart(path, closure=...)")

    fft.import_wisdom(data["wisdom"])                 # before the solver plans its transforms
    solver = cls(**kwargs)
    if "track_budget" in extras and hasattr(solver, "track_budget"):
        solver.track_budget = bool(extras["track_budget"])
    if closure is not None:
        saved = data["closure_every"]
        if saved and getattr(closure, "every", saved) != saved:
            warnings.warn(f"restart file {p} was written with closure every={saved}; the closure "
                          f"given has every={closure.every}, so the run will not continue "
                          f"identically", stacklevel=2)
        solver.set_closure(closure)
    try:
        solver.set_state(state)
    except ValueError as e:
        raise ValueError(f"restart file {p} does not fit the rebuilt solver: {e}") from e
    return solver
