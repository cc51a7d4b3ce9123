"""The two sides of a comparison: a run folder or trajectory file each, checked and described
(:class:`Source`), their common record times (:func:`match_times`) and whether they can be put side
by side at all (:func:`check_pair`).

Both must describe the same box (L) and the same number of ensemble members; the reference grid
must be the run's or a multiple of it. Records are matched by time: a run record and a reference
record are the same instant when their times differ by at most ``TIME_RTOL`` × the smallest record
interval of the two files. Trajectories are read with :func:`solvers.io.open_trajectory`
(complete records only).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from solvers.files import check_output_folder

from ..simulation import TRAJECTORY

__all__ = ["CompareError", "Source", "match_times", "check_pair", "check_out", "TIME_RTOL"]

TIME_RTOL = 1e-6                 # common times: |t_run − t_ref| ≤ TIME_RTOL × record interval


class CompareError(ValueError):
    """Bad input to a comparison (missing or unreadable file, incompatible runs, bad option); the
    message names the argument and the file."""


class Source:
    """One side of the comparison: where its files are and what its trajectory holds."""

    def __init__(self, role: str, path):
        self.role = role
        try:
            given = Path(os.fspath(path)).expanduser()
        except TypeError:
            raise CompareError(f"{role} must be a path to a run folder or a trajectory file, got "
                               f"{path!r}") from None
        if not given.exists():
            raise CompareError(f"{role} {given} does not exist (expected a run folder holding "
                               f"trajectory.nc, or a trajectory file)")
        if given.is_dir():
            self.folder, self.trajectory = given, given / TRAJECTORY
            if not self.trajectory.is_file():
                raise CompareError(f"{role} folder {given} has no trajectory.nc (expected a run "
                                   f"folder written by 'hybrid dns' or 'hybrid run', or the path "
                                   f"of a trajectory file)")
        else:
            self.folder, self.trajectory = given.parent, given
        self.given = given
        self._inspect()

    def open(self):
        from solvers.io import TrajectoryFileError, open_trajectory
        try:
            return open_trajectory(self.trajectory, need="vorticity")
        except (OSError, TrajectoryFileError, ValueError) as e:
            raise CompareError(f"{self.role}: cannot read trajectory {self.trajectory}: {e}") \
                from None

    def _inspect(self) -> None:
        where = f"{self.role} trajectory {self.trajectory}"
        with self.open() as ds:
            v = ds["vorticity"]
            if v.dims != ("member", "time", "y", "x"):
                raise CompareError(f"{where}: vorticity has dimensions {v.dims}; expected "
                                   f"('member', 'time', 'y', 'x')")
            self.members, self.records, ny, nx = (int(s) for s in v.shape)
            if ny != nx:
                raise CompareError(f"{where}: the grid is {ny}×{nx}; expected a square grid")
            self.n = nx
            if self.records == 0:
                raise CompareError(f"{where} holds no records")
            if "time" not in ds.variables:
                raise CompareError(f"{where} has no 'time' variable")
            self.times = np.asarray(ds["time"].values, dtype=np.float64).ravel()
            if self.times.size != self.records or not np.isfinite(self.times).all():
                raise CompareError(f"{where}: its time variable is damaged (non-finite values "
                                   f"or the wrong length)")
            if self.records > 1 and not (np.diff(self.times) > 0).all():
                raise CompareError(f"{where}: record times are not strictly increasing")
            attrs = dict(ds.attrs)
            self.attrs = attrs
            try:
                self.config = json.loads(attrs.get("config", "{}"))
            except ValueError:
                self.config = {}
            self.L = self._box(attrs, ds)
            self.kind = str(attrs.get("kind", "unknown"))
            self.has_energy = "energy" in ds.variables and ds["energy"].dims == ("member", "time")
            self.has_enstrophy = ("enstrophy" in ds.variables
                                  and ds["enstrophy"].dims == ("member", "time"))
        from solvers.grid import Grid
        try:
            self.grid = Grid(self.n, self.L)
        except ValueError as e:
            raise CompareError(f"{where}: unusable grid ({e})") from None

    def _box(self, attrs, ds) -> float:
        for value in (attrs.get("L"), self.config.get("L") if isinstance(self.config, dict)
                      else None):
            try:
                L = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(L) and L > 0:
                return L
        if "x" in ds.variables and ds["x"].size > 1:
            x = np.asarray(ds["x"].values, dtype=np.float64)
            return float((x[1] - x[0]) * self.n)
        raise CompareError(f"{self.role} trajectory {self.trajectory}: no box size L (neither "
                           f"the 'L' attribute, the config nor an 'x' coordinate)")

    def describe(self) -> dict:
        return {"path": str(self.given), "trajectory": str(self.trajectory),
                "n": self.n, "L": self.L, "members": self.members, "records": self.records,
                "kind": self.kind, "closure": str(self.attrs.get("closure", "unknown"))}


def match_times(run: Source, ref: Source) -> tuple[np.ndarray, np.ndarray, float]:
    """Indices (i_run, i_ref) of the records at common times, and the tolerance used."""
    gaps = [np.diff(s.times) for s in (run, ref) if s.records > 1]
    interval = min(float(g.min()) for g in gaps) if gaps else 1.0
    tol = TIME_RTOL * interval
    tr = ref.times
    i_run, i_ref = [], []
    for i, t in enumerate(run.times):
        j = int(np.searchsorted(tr, t))
        best = min((k for k in (j - 1, j) if 0 <= k < tr.size), key=lambda k: abs(tr[k] - t))
        if abs(tr[best] - t) <= tol:
            i_run.append(i)
            i_ref.append(best)
    if not i_run:
        raise CompareError(
            f"RUN {run.trajectory} (times {run.times[0]:.6g} … {run.times[-1]:.6g}, "
            f"{run.records} records) and REFERENCE {ref.trajectory} (times {ref.times[0]:.6g} … "
            f"{ref.times[-1]:.6g}, {ref.records} records) have no common record times (tolerance "
            f"{tol:.3g}); record both at the same times")
    return np.array(i_run), np.array(i_ref), tol


def check_pair(run: Source, ref: Source, delta) -> float | None:
    if not math.isclose(run.L, ref.L, rel_tol=1e-9):
        raise CompareError(f"the runs are in different boxes: RUN {run.trajectory} has "
                           f"L={run.L:.9g}, REFERENCE {ref.trajectory} has L={ref.L:.9g}")
    if run.members != ref.members:
        raise CompareError(f"member counts differ: RUN {run.trajectory} has {run.members} "
                           f"member(s), REFERENCE {ref.trajectory} has {ref.members} "
                           f"member(s); compare ensembles started from the same initial "
                           f"conditions")
    if ref.n < run.n:
        raise CompareError(f"REFERENCE {ref.trajectory} is on a {ref.n}² grid, coarser than RUN "
                           f"{run.trajectory} ({run.n}²); the reference must be on the same or "
                           f"a finer grid")
    if ref.n % run.n:
        raise CompareError(f"grids do not divide: REFERENCE {ref.trajectory} is {ref.n}², RUN "
                           f"{run.trajectory} is {run.n}²; the reference grid must be a "
                           f"multiple of the run grid")
    if delta is not None:
        try:
            d = float(delta)
        except (TypeError, ValueError):
            raise CompareError(f"delta (filter width) must be a number ≥ 0, got {delta!r}") \
                from None
        if not (math.isfinite(d) and d >= 0) or isinstance(delta, bool):
            raise CompareError(f"delta (filter width) must be a finite number ≥ 0, got {delta!r}")
        return d
    return None


def check_out(out: Path) -> Path:
    try:
        return check_output_folder(out, what="--out")
    except (TypeError, OSError) as e:
        raise CompareError(str(e)) from None
