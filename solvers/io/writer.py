"""Trajectory files: :class:`TrajectoryWriter` (new or appended) and :func:`open_trajectory`.

Every :meth:`TrajectoryWriter.write` appends one record, flushes the file (``Dataset.sync``) and
only then raises the file's count of complete records (``records_complete``), flushed again. A
process killed inside a write leaves a partial record beyond the count: every reader here ignores
it, and an appending writer overwrites it. The layout is in :mod:`solvers.io.schema`.
"""
from __future__ import annotations

import json

import netCDF4
import numpy as np

from ..files import check_output_file, json_text
from .schema import (COMPLETE, CONVENTIONS, FORMAT_VERSION, RECORD, TRAJECTORY_FORMAT,
                     TrajectoryFileError, check_input_path, check_record, closure_config,
                     closure_every, config_json, constructor_defaults, differing_keys,
                     make_folder, now, open_netcdf,
                     package_version, trajectory_record)

# configuration keys that change how a run is computed, not what it computes
_UNCOMPARED = ("threads",)


class TrajectoryWriter:
    """Append snapshots of a solver to a netCDF4 trajectory file, flushed after every record.

    ``TrajectoryWriter(path, solver, dtype="float32", overwrite=False, compress=False,
    append=False, record=None)`` checks the arguments and the path before creating anything. Use
    as a context manager, call :meth:`write` yourself or pass it as a run callback::

        with TrajectoryWriter("run/traj.nc", s) as w:
            s.run(t_end=10, every=0.5, callback=w.write)

    ``record``: 'full' (the default for a new file: the vorticity, and U(y) on the beta-plane)
    or 'zonal-mean' (only U(y) = mean over x of u, energy and enstrophy; any solver). ``dtype`` is
    the stored precision of the vorticity or U(y). ``compress`` turns on zlib compression of the
    field variables. ``append=True`` continues the
    existing trajectory at ``path`` (a restarted run): its solver class, grid, members and
    configuration must match ``solver`` and its record ``record`` (None: the file's); its
    complete records after the solver's step are
    dropped, and ``last_step`` is the step of the last record kept (None if none), so a
    continued run need not record its first state twice. ``t_start``: the time of the
    trajectory's first record.
    """

    def __init__(self, path, solver, dtype="float32", overwrite: bool = False,
                 compress: bool = False, append: bool = False, record: str | None = None):
        if record is not None:
            check_record(record)
        field = "zonal_mean_u" if record == "zonal-mean" else "vorticity"
        for attr in ("grid", "members", field, "config", "t", "step_count", "energy",
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
        for name, v in (("overwrite", overwrite), ("append", append)):
            if not isinstance(v, bool):
                raise ValueError(f"{name} must be True or False, got {v!r}")
        if overwrite and append:
            raise ValueError("give overwrite=True or append=True, not both")
        config = config_json(solver)
        self.solver = solver
        self.n = int(solver.grid.n)
        self.members = int(solver.members)
        self.kind = str(getattr(solver, "kind", "unknown"))
        self.last_step = None
        if append:
            self.path = check_input_path(path, "trajectory")
            self._open_existing(solver, config, record)
            return
        self.record = record or "full"
        self.path = check_output_file(path, "trajectory", overwrite)
        make_folder(self.path, "trajectory")
        self.dtype = dt
        self.full = self.record == "full"
        self.zonal = not self.full or self.kind == "betaplane"
        self.records = 0
        self.t_start = float(solver.t)
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

    def _open_existing(self, solver, config: str, record: str | None) -> None:
        p = self.path
        try:
            ds = netCDF4.Dataset(p, "a")
        except OSError as e:
            raise TrajectoryFileError(f"cannot open trajectory {p} to append to it: {e}") from e
        self._ds = ds
        try:
            ds.set_auto_mask(False)
            attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
            held = trajectory_record(ds.variables)
            if attrs.get("format") != TRAJECTORY_FORMAT or held is None:
                raise TrajectoryFileError(f"{p} is not a trajectory (no format="
                                          f"{TRAJECTORY_FORMAT!r} attribute, or neither "
                                          f"vorticity nor zonal_mean_u)")
            if record is not None and record != held:
                raise ValueError(f"trajectory {p} records {held!r}; cannot append {record!r} "
                                 f"records to it")
            self.record = held
            have = (str(attrs.get("solver")), int(attrs.get("n", -1)),
                    int(attrs.get("members", -1)))
            want = (type(solver).__name__, self.n, self.members)
            if have != want:
                raise ValueError(f"trajectory {p} holds a {have[0]} run with n={have[1]}, "
                                 f"members={have[2]}; cannot append a {want[0]} run with "
                                 f"n={want[1]}, members={want[2]}")
            saved, given = json.loads(attrs["config"]), json.loads(config)
            diff = [k for k in differing_keys(saved, given,
                                              defaults=constructor_defaults(type(solver)))
                    if k not in _UNCOMPARED]
            if diff:
                raise ValueError(f"trajectory {p} was written with another solver configuration "
                                 f"(differing: {', '.join(diff)}); cannot append to it")
            self.full = held == "full"
            self.dtype = ds["vorticity" if self.full else "zonal_mean_u"].dtype
            self.zonal = "zonal_mean_u" in ds.variables
            complete = int(attrs.get(COMPLETE, ds.dimensions["time"].size))
            steps = np.asarray(ds["step"][:complete], dtype=np.int64)
            keep = int(np.searchsorted(steps, int(solver.step_count), side="right"))
            self.records = keep
            self.last_step = int(steps[keep - 1]) if keep else None
            self.t_start = float(attrs.get("t_start", 0.0))
            ds.setncattr(COMPLETE, np.int64(keep))
            ds.sync()
        except BaseException:
            self.close()
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
        if self.full:
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
            # zonal-mean records: chunks of about 16 kB (several records each), so that long
            # runs of small profiles do not pay an HDF5 chunk per record
            zchunk = 1 if self.full else max(1, min(1024, 4096 // (M * n)))
            v = ds.createVariable("zonal_mean_u", self.dtype, ("member", "time", "y"),
                                  chunksizes=(M, zchunk, n), **kw)
            v.units = "1"
            v.long_name = "zonal-mean zonal velocity U(y) (mean over x of u)"

        closure = getattr(solver, "closure", None)
        seed = getattr(solver, "seed", None)
        ccfg = closure_config(solver)
        ds.setncatts({
            "title": f"{type(solver).__name__} trajectory",
            "Conventions": CONVENTIONS,
            "conventions": CONVENTIONS,
            "format": TRAJECTORY_FORMAT,
            "format_version": np.int32(FORMAT_VERSION),
            "solver": type(solver).__name__,
            "kind": self.kind,
            "config": config,
            "package_version": package_version(),
            "seed": "none" if seed is None else np.int64(seed),
            "created": now(),
            "n": np.int32(n),
            "L": float(g.L),
            "members": np.int32(M),
            "closure": "none" if closure is None else type(closure).__name__,
            "closure_every": np.int32(closure_every(solver)),
            "closure_config": json_text(ccfg),
            "t_start": float(solver.t),
            "step_start": np.int64(solver.step_count),
            RECORD: self.record,
            COMPLETE: np.int64(0),
        })

    @property
    def closed(self) -> bool:
        return self._ds is None

    def write(self, solver=None) -> None:
        """Append the solver's current state (vorticity, time, step, energy, enstrophy and, on the
        beta-plane, U(y); with the 'zonal-mean' record U(y), time, step, energy and enstrophy) as
        one time record, flush the file, then count the record complete.
        Default: the constructor's solver. Usable as ``solver.run(..., callback=writer.write)``."""
        if self._ds is None:
            raise ValueError(f"trajectory {self.path} is closed; cannot write to it")
        s = self.solver if solver is None else solver
        if int(s.grid.n) != self.n or int(s.members) != self.members:
            raise ValueError(f"trajectory {self.path} holds n={self.n}, members={self.members}; "
                             f"got a solver with n={s.grid.n}, members={s.members}")
        ds, i = self._ds, self.records
        if self.full:
            ds["vorticity"][:, i, :, :] = np.asarray(s.vorticity).astype(self.dtype, copy=False)
        ds["energy"][:, i] = np.asarray(s.energy(), dtype=np.float64)
        ds["enstrophy"][:, i] = np.asarray(s.enstrophy(), dtype=np.float64)
        if self.zonal:
            ds["zonal_mean_u"][:, i, :] = np.asarray(s.zonal_mean_u()).astype(self.dtype,
                                                                                copy=False)
        ds["step"][i] = np.int64(s.step_count)
        ds["time"][i] = float(s.t)
        ds.sync()                                    # the record is on disk ...
        ds.setncattr(COMPLETE, np.int64(i + 1))      # ... before it is counted complete
        ds.sync()
        self.records += 1
        self.last_step = int(s.step_count)

    __call__ = write

    def close(self) -> None:
        """Close the file (idempotent)."""
        if getattr(self, "_ds", None) is not None:
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


def open_trajectory(path, need: str | None = None, **kwargs):
    """Open a trajectory written by :class:`TrajectoryWriter` as an ``xarray.Dataset`` of its
    complete records (lazily; ``kwargs`` go to ``xarray.open_dataset``). Missing, corrupt or
    non-trajectory files raise FileNotFoundError / :class:`TrajectoryFileError` naming the file.
    ``json.loads(ds.attrs["config"])`` gives the solver configuration; ``ds.attrs["record"]``
    what it records ('full' or 'zonal-mean', set here for files without the attribute).

    ``need='vorticity'``: a reader that needs the 2D fields; a 'zonal-mean' file then raises
    :class:`TrajectoryFileError` saying so (``need`` may also name any other variable)."""
    p, ds = open_netcdf(path, "trajectory", TrajectoryFileError, **kwargs)
    record = trajectory_record(ds.variables)
    if record is None:
        names = sorted(ds.variables)
        ds.close()
        raise TrajectoryFileError(f"{p} is a netCDF file but not a trajectory: it has neither "
                                  f"'vorticity' nor 'zonal_mean_u' (it has {names})")
    if need is not None and need not in ds.variables:
        ds.close()
        if record == "zonal-mean" and need == "vorticity":
            raise TrajectoryFileError(
                f"{p} holds only zonal-mean profiles zonal_mean_u (a run recorded with --record "
                f"zonal-mean), no vorticity; this needs the 2D vorticity: record the run with "
                f"--record full (the default)")
        raise TrajectoryFileError(f"{p} is a {record!r} trajectory without {need!r}")
    ds.attrs.setdefault(RECORD, record)
    complete = ds.attrs.get(COMPLETE)
    if complete is not None and int(complete) < ds.sizes["time"]:
        ds = ds.isel(time=slice(0, int(complete)))
    return ds
