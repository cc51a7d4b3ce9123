"""Compare a coarse (hybrid / LES) run with a reference DNS: errors, energetics, spectra, PDFs and
cost.

``compare_runs(run, reference, out=None, delta=None)`` (and ``hybrid compare RUN REFERENCE``) reads
two trajectories written by :class:`solvers.io.TrajectoryWriter` — a run folder (``trajectory.nc``
and ``run.json`` as ``hybrid dns`` / ``hybrid run`` write them) or a trajectory file — and returns
(and writes to ``out/metrics.json``) a dictionary of metrics, with PNG figures beside it.

How the two are put side by side
--------------------------------
* Both must describe the same box (L), the same number of ensemble members and — not checked,
  but warned about when the first common record already differs a lot — the same initial
  conditions. Records are matched by time: a run record and a reference record are the same
  instant when their times differ by at most 1e-6 × the smallest record interval of the two files.
* The comparison lives on the run's grid. A reference on the same grid is compared as it is; a
  reference on a finer grid (n_ref a multiple of n_run) is coarse-grained record by record with
  :func:`solvers.filters.coarse_grain`: Gaussian filter exp(−Δ²|k|²/24) of width Δ (default twice
  the run's grid spacing) then truncation to the run grid's 2/3-rule modes — the field an LES
  on that grid is meant to carry. "Reference" below means this coarse-grained field; "reference
  DNS" means the reference at its own resolution.

Metrics (definitions are also written into ``metrics.json["definitions"]``)
-------------------------------------------------------------------------
* relative L2 error per member and lead time, ‖ω − ω_ref‖₂ / ‖ω_ref‖₂ over the grid points; the
  member mean of it; and the error of the ensemble mean, ‖⟨ω⟩ − ⟨ω_ref⟩‖₂ / ‖⟨ω_ref⟩‖₂ with ⟨·⟩ the
  mean over members (lead time = time − first common time).
* energy E = ½⟨|u|²⟩ and enstrophy Z = ½⟨ω²⟩ (box means, :mod:`solvers.diagnostics`) against time,
  member means, for run and reference (plus the values the reference file stores at its own
  resolution when present).
* isotropic energy spectra (shells Δk = 2π/L) averaged over members and the steady records (the
  last half of the common records, or those at t ≥ ``steady_from``); on the shells k_j = jΔk with
  j ≤ the run grid's dealiasing cutoff (n−1)//3: the signed relative error per shell
  (E − E_ref)/E_ref, its root mean square, and the RMS difference of log10 E (decades).
* one-point PDFs of vorticity pooled over members, grid points and steady records, histogrammed on
  a common binning; squared Hellinger distance H² = 1 − Σ_b √(p_b q_b) (computed as the equal
  ½ Σ_b (√p_b − √q_b)², which is exactly 0 for identical histograms and never negative), and the
  1-Wasserstein distance W1 = ∫ |F(x) − G(x)| dx of the two empirical CDFs.
* cost from each folder's ``run.json``: wall seconds per simulated time unit and per member, split
  into solver and closure where the file says how the time was spent; the speed-up is the
  reference's wall time per simulated time unit per member over the run's.

W1 is computed here from the sorted samples with numpy rather than with
``scipy.stats.wasserstein_distance`` because scipy is not a dependency of the package; for two
empirical distributions the integral of |F − G| between consecutive pooled sample values is exact.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from solvers.files import check_output_folder, write_json

__all__ = ["CompareError", "compare_runs", "ensemble_scores", "format_table", "hellinger",
           "wasserstein1", "histogram_pair", "OUTPUTS"]

OUTPUTS = ("metrics.json", "error.png", "energy.png", "spectra.png", "pdf.png")
TIME_RTOL = 1e-6                 # common times: |t_run − t_ref| ≤ TIME_RTOL × record interval
INITIAL_ERROR_WARNING = 0.5      # warn when the first common record differs by more than this
MAX_BINS = 200

DEFINITIONS = {
    "time": "simulated time of the common records (nondimensional, the solver's time unit)",
    "lead_time": "time − time of the first common record",
    "reference": "the REFERENCE vorticity on the RUN grid: unchanged when both grids are the same; "
                 "otherwise coarse-grained with solvers.filters.coarse_grain (Gaussian filter "
                 "exp(-delta^2 |k|^2/24), then truncation to the RUN grid's 2/3-rule modes)",
    "reference_dns": "the REFERENCE at its own resolution (values stored in its file, or its "
                     "spectrum on its own grid)",
    "relative_l2_members": "per member m and lead time: ||w_m - w_ref,m||_2 / ||w_ref,m||_2 over "
                           "the grid points (dimensionless); null where ||w_ref,m|| = 0",
    "relative_l2_member_mean": "mean over members of relative_l2_members (dimensionless)",
    "relative_l2_ensemble_mean": "||<w> - <w_ref>||_2 / ||<w_ref>||_2, <.> = mean over members "
                                 "(dimensionless)",
    "energy": "kinetic energy E = 1/2 <|u|^2> (box mean), member mean per time; units of "
              "velocity^2 (nondimensional)",
    "enstrophy": "enstrophy Z = 1/2 <w^2> (box mean), member mean per time; units of 1/time^2",
    "energy.relative_error": "(E_run - E_ref)/E_ref per time, member means (dimensionless)",
    "steady_records": "records used for spectra and PDFs: the last half of the common records "
                      "(indices from floor(T/2)), or those with time >= steady_from",
    "spectra": "isotropic energy spectrum E(k) in shells of width dk = 2 pi/L centred on k_j = j dk"
               " (sum_j E(k_j) dk = E), averaged over members and steady records; k in rad per "
               "unit length",
    "spectra.relative_error_per_shell": "(E_run(k_j) - E_ref(k_j))/E_ref(k_j) for the shells "
                                        "j = 1 .. (n_run - 1)//3 (below the RUN grid's "
                                        "dealiasing cutoff); null where E_ref = 0",
    "spectra.relative_rmse": "sqrt(mean_j ((E_run - E_ref)/E_ref)^2) over those shells "
                             "(dimensionless)",
    "spectra.log_rmse_decades": "sqrt(mean_j (log10 E_run - log10 E_ref)^2) over those shells "
                                "where both are > 0 (decades)",
    "pdf": "histograms of vorticity pooled over members, grid points and steady records, on one "
           "common set of equal-width bins spanning both samples; density = count/(N width)",
    "pdf.hellinger": "Hellinger distance H in [0, 1], H^2 = 1 - sum_b sqrt(p_b q_b) = "
                     "1/2 sum_b (sqrt(p_b) - sqrt(q_b))^2 with p_b, q_b the bin probabilities",
    "pdf.wasserstein1": "1-Wasserstein distance W1 = integral |F_run(x) - F_ref(x)| dx of the "
                        "empirical CDFs of the pooled samples, exact for the samples (units of "
                        "vorticity); computed with numpy from the sorted samples because scipy is"
                        " not a dependency",
    "pdf.wasserstein1_over_std": "W1 / standard deviation of the reference sample "
                                 "(dimensionless)",
    "cost.wall_per_time": "wall-clock seconds per simulated time unit (whole ensemble)",
    "cost.wall_per_time_per_member": "wall_per_time / members (seconds per time unit per member)",
    "cost.closure_per_time_per_member": "the closure's share of it, where run.json reports it",
    "cost.solver_per_time_per_member": "the solver's share (reported, or wall - closure)",
    "cost.speedup_per_time_per_member": "reference wall_per_time_per_member / run "
                                        "wall_per_time_per_member (> 1: the run is cheaper)",
}


class CompareError(ValueError):
    """Bad input to a comparison (missing or unreadable file, incompatible runs, bad option); the
    message names the argument and the file."""


# ---------------------------------------------------------------------------------- distances
def histogram_pair(a, b, bins: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of two samples on one common set of equal-width bins: (edges, p, q) with p, q the
    bin probabilities (each sums to 1). The bins span both samples; their number is ``bins`` or,
    by default, the Freedman–Diaconis width 2·IQR·N^(−1/3) of the pooled samples, clipped to
    [10, 200] bins."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one finite value")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    if bins is None:
        both = np.concatenate([a, b])
        q75, q25 = np.percentile(both, [75, 25])
        width = 2.0 * (q75 - q25) * both.size ** (-1.0 / 3.0)
        bins = int(np.clip(math.ceil((hi - lo) / width), 10, MAX_BINS)) if width > 0 else 10
    elif isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    edges = np.linspace(lo, hi, int(bins) + 1)
    p = np.histogram(a, bins=edges)[0] / a.size
    q = np.histogram(b, bins=edges)[0] / b.size
    return edges, p, q


def hellinger(a, b, bins: int | None = None) -> float:
    """Hellinger distance between the PDFs of samples ``a`` and ``b`` on a common binning
    (:func:`histogram_pair`): H = sqrt(½ Σ (√p − √q)²) = sqrt(1 − Σ √(p q)), in [0, 1]."""
    _, p, q = histogram_pair(a, b, bins)
    return hellinger_from_probabilities(p, q)


def hellinger_from_probabilities(p, q) -> float:
    """H from two probability vectors on the same bins (½ Σ (√p − √q)² form: exact 0 for p = q)."""
    h2 = 0.5 * float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))
    return math.sqrt(min(max(h2, 0.0), 1.0))


def wasserstein1(a, b) -> float:
    """1-Wasserstein distance between the empirical distributions of samples ``a`` and ``b``
    (any sizes): W1 = ∫ |F_a(x) − F_b(x)| dx, summed exactly over the intervals between
    consecutive pooled sample values. Equal sizes reduce to mean |sort(a) − sort(b)|."""
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("samples must be finite")
    if a.size == b.size:
        return float(np.mean(np.abs(a - b)))
    pooled = np.sort(np.concatenate([a, b]))
    gaps = np.diff(pooled)
    fa = np.searchsorted(a, pooled[:-1], side="right") / a.size
    fb = np.searchsorted(b, pooled[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * gaps))


# ---------------------------------------------------------------------------------- inputs
class _Source:
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
            self.folder, self.trajectory = given, given / "trajectory.nc"
            if not self.trajectory.is_file():
                raise CompareError(f"{role} folder {given} has no trajectory.nc (expected a run "
                                   f"folder written by 'hybrid dns' or 'hybrid run', or the path "
                                   f"of a trajectory file)")
        else:
            self.folder, self.trajectory = given.parent, given
        self.given = given
        self.run_json, self.info = self._read_run_json()
        self._inspect()

    def _read_run_json(self):
        p = self.folder / "run.json"
        if not p.is_file():
            return None, None
        try:
            info = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise CompareError(f"{self.role}: {p} is not readable JSON ({e})") from None
        if not isinstance(info, dict):
            raise CompareError(f"{self.role}: {p} does not hold a JSON object")
        named = info.get("trajectory")
        if isinstance(named, str) and Path(named).name != self.trajectory.name:
            return None, None              # that run.json describes another file of the folder
        return p, info

    def open(self):
        from solvers.io import TrajectoryFileError, open_trajectory
        try:
            return open_trajectory(self.trajectory)
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
                "run_json": None if self.run_json is None else str(self.run_json),
                "n": self.n, "L": self.L, "members": self.members, "records": self.records,
                "kind": self.kind, "closure": str(self.attrs.get("closure", "unknown"))}


def _match_times(run: _Source, ref: _Source) -> tuple[np.ndarray, np.ndarray, float]:
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


def _check_pair(run: _Source, ref: _Source, delta) -> float | None:
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


def _check_out(out: Path) -> Path:
    try:
        return check_output_folder(out, what="--out")
    except (TypeError, OSError) as e:
        raise CompareError(str(e)) from None


# ---------------------------------------------------------------------------------- cost
_WALL = ("wall_seconds", "wall_time_s", "wall_s", "wall_time", "wall", "elapsed_seconds",
         "elapsed_s", "total_seconds", "total_s", "total")
_SIM = ("simulated_time", "sim_time", "t_simulated", "simulated", "simulated_time_units")
_CLOSURE = ("closure_seconds", "closure_wall_s", "closure_time_s", "closure_s",
            "closure_wall_seconds", "closure_wall_time_s", "closure_time", "closure")
_SOLVER = ("solver_seconds", "solver_wall_s", "solver_time_s", "solver_s", "solver_wall_seconds",
           "solver_wall_time_s", "solver_time", "solver")
_TIMING_GROUPS = ("timing", "timings", "cost", "costs", "wall", "profile", "seconds")


def _number_or_none(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) and v >= 0 else None


def _flatten(info: dict, depth: int = 3, prefix: str = "") -> dict:
    flat = {}
    for k, v in info.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and depth > 1:
            flat.update(_flatten(v, depth - 1, name + "."))
        else:
            flat[name] = v
    return flat


def _lookup(flat: dict, names, fuzzy: str | None = None):
    """The first numeric entry whose key is one of ``names`` at the top level, then inside a timing
    group ({"timings": {...}}); then (``fuzzy``) any key containing that word and naming seconds.
    Returns (value, key) or (None, None). Bare names ("closure", "wall") count only in groups."""
    bare = {"wall", "total", "closure", "solver", "simulated"}
    for name in names:
        if name not in bare:
            v = _number_or_none(flat.get(name))
            if v is not None:
                return v, name
    for name in names:
        for key, value in flat.items():
            parts = key.split(".")
            if len(parts) > 1 and parts[-1] == name and any(
                    g in p.lower() for p in parts[:-1] for g in _TIMING_GROUPS):
                v = _number_or_none(value)
                if v is not None:
                    return v, key
    if fuzzy is not None:
        for key, value in flat.items():
            last = key.split(".")[-1].lower()
            if fuzzy in last and ("second" in last or last.endswith("_s")):
                v = _number_or_none(value)
                if v is not None:
                    return v, key
    return None, None


def _cost(src: _Source) -> dict:
    """Wall time per simulated time unit (and per member) from ``src``'s run.json, defensively:
    the keys used are reported under "sources"."""
    out = {"run_json": None if src.run_json is None else str(src.run_json), "wall_s": None,
           "simulated_time": None, "members": src.members, "closure_s": None, "solver_s": None,
           "wall_per_time": None, "wall_per_time_per_member": None,
           "closure_per_time_per_member": None, "solver_per_time_per_member": None,
           "closure_fraction": None, "sources": {}}
    if src.info is None:
        out["note"] = "no run.json beside the trajectory: cost unknown"
        return out
    flat = _flatten(src.info)
    src_keys = out["sources"]
    wall, key = _lookup(flat, _WALL, fuzzy="wall")
    out["wall_s"], src_keys["wall_s"] = wall, key
    members = src.info.get("members")
    if isinstance(members, int) and not isinstance(members, bool) and members > 0:
        out["members"] = members
    # simulated time covered by the wall time
    sim, key = _lookup(flat, _SIM)
    if sim is None:
        t_final = _number_or_none(flat.get("t_final"))
        t_start = _number_or_none(flat.get("t_start"))
        if t_final is not None:
            if t_start is not None:
                sim, key = t_final - t_start, "t_final - t_start"
            else:
                a = _number_or_none(src.attrs.get("t_start"))
                sim, key = ((t_final - a, "t_final - trajectory attribute t_start") if a is not None
                            else (t_final, "t_final (run started at t = 0)"))
    if sim is None:
        steps, dt = _number_or_none(flat.get("steps")), _number_or_none(flat.get("dt"))
        if steps is not None and dt is not None:
            sim, key = steps * dt, "steps * dt"
    if sim is None:
        t_end, spin = _number_or_none(flat.get("t_end")), _number_or_none(flat.get("spinup"))
        if t_end is not None:
            sim, key = t_end + (spin or 0.0), "spinup + t_end" if spin else "t_end"
    if sim is not None and sim <= 0:
        sim = None
    out["simulated_time"], src_keys["simulated_time"] = sim, key
    closure, key = _lookup(flat, _CLOSURE, fuzzy="closure")
    out["closure_s"], src_keys["closure_s"] = closure, key
    solver, key = _lookup(flat, _SOLVER, fuzzy="solver")
    if solver is None and wall is not None and closure is not None:
        solver, key = max(wall - closure, 0.0), "wall - closure"
    out["solver_s"], src_keys["solver_s"] = solver, key
    if wall is not None and sim is not None:
        m = out["members"]
        out["wall_per_time"] = wall / sim
        out["wall_per_time_per_member"] = wall / sim / m
        if closure is not None:
            out["closure_per_time_per_member"] = closure / sim / m
            out["closure_fraction"] = closure / wall if wall > 0 else None
        if solver is not None:
            out["solver_per_time_per_member"] = solver / sim / m
    else:
        missing = [w for w, v in (("wall time", wall), ("simulated time", sim)) if v is None]
        out["note"] = f"{src.run_json} gives no {' or '.join(missing)}: cost unknown"
    return out


# ---------------------------------------------------------------------------------- the work
def _relative(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _steady_mask(times: np.ndarray, steady_from, tol: float) -> np.ndarray:
    mask = np.zeros(times.size, dtype=bool)
    if steady_from is None:
        mask[times.size // 2:] = True
    else:
        mask[times >= steady_from - tol] = True
    return mask


def compare_runs(run, reference, out=None, delta=None, *, steady_from=None, bins=None,
                 write: bool = True, figures: bool = True) -> dict:
    """Compare ``run`` (run folder or trajectory file) with ``reference`` (DNS run folder or
    trajectory, same box and members, same or finer grid); see the module docstring for the
    metrics. Writes ``metrics.json`` and, with ``figures``, error.png, energy.png, spectra.png and
    pdf.png to ``out`` (default ``RUN/compare``, or ``compare`` beside a trajectory file) unless
    ``write=False``. ``delta``: filter width of the coarse-graining (default 2·dx of the run grid);
    ``steady_from``: first time of the records averaged for spectra and PDFs (default: the last
    half of the common records); ``bins``: number of PDF bins (default: Freedman–Diaconis).
    Returns the metrics dictionary. Bad input raises :class:`CompareError` naming the argument or
    file, before anything is written."""
    # --- everything is checked before any work or output
    src = _Source("RUN", run)
    ref = _Source("REFERENCE", reference)
    d = _check_pair(src, ref, delta)
    i_run, i_ref, tol = _match_times(src, ref)
    times = src.times[i_run]
    if steady_from is not None:
        try:
            steady_from = float(steady_from)
        except (TypeError, ValueError):
            raise CompareError(f"steady_from must be a number, got {steady_from!r}") from None
        if not math.isfinite(steady_from):
            raise CompareError(f"steady_from must be finite, got {steady_from!r}")
    steady = _steady_mask(times, steady_from, tol)
    if not steady.any():
        raise CompareError(f"--steady-from {steady_from:g} leaves no common record (the common "
                           f"times run from {times[0]:.6g} to {times[-1]:.6g})")
    if bins is not None and (isinstance(bins, bool) or not isinstance(bins, (int, np.integer))
                             or bins < 1):
        raise CompareError(f"bins must be a positive integer, got {bins!r}")
    if write:
        out = Path(out) if out is not None else (src.folder / "compare" if src.given.is_dir()
                                                 else src.given.parent / "compare")
        out = _check_out(out)
    cost_run, cost_ref = _cost(src), _cost(ref)

    from solvers import diagnostics, filters

    g, gf = src.grid, ref.grid
    coarse = ref.n > src.n
    delta_used = (2 * g.dx if d is None else d) if coarse else None
    warnings_list = []
    if d is not None and not coarse:
        warnings_list.append(f"delta={d:g} ignored: RUN and REFERENCE share the {g.n}² grid and "
                             f"are compared directly")
    if src.kind != ref.kind:
        warnings_list.append(f"RUN is a {src.kind!r} trajectory, REFERENCE a {ref.kind!r} one")

    M, T = src.members, times.size
    err_members = np.full((M, T), np.nan)
    err_ensemble = np.full(T, np.nan)
    energy = {"run": np.zeros((M, T)), "reference": np.zeros((M, T))}
    enstrophy = {"run": np.zeros((M, T)), "reference": np.zeros((M, T))}
    nshell, nshell_f = g.n // 2, gf.n // 2
    spec_run, spec_ref, spec_dns = np.zeros(nshell), np.zeros(nshell), np.zeros(nshell_f)
    samples_run, samples_ref = [], []
    nonfinite = []
    with src.open() as ds_run, ref.open() as ds_ref:
        v_run, v_ref = ds_run["vorticity"], ds_ref["vorticity"]
        stored = {}
        for name in ("energy", "enstrophy"):
            if name in ds_ref.variables and ds_ref[name].dims == ("member", "time"):
                stored[name] = np.asarray(ds_ref[name].values, dtype=np.float64)[:, i_ref]
        for r, (ir, jf) in enumerate(zip(i_run, i_ref)):
            try:
                w = np.asarray(v_run[:, ir].values, dtype=np.float64)
                wf = np.asarray(v_ref[:, jf].values, dtype=np.float64)
            except (OSError, RuntimeError, ValueError) as e:
                raise CompareError(f"cannot read record {r} (t={times[r]:.6g}) of RUN "
                                   f"{src.trajectory} or REFERENCE {ref.trajectory}: {e}") \
                    from None
            wh = np.fft.rfft2(w)
            if coarse:
                wfh = np.fft.rfft2(wf)
                wrh = filters.coarse_grain(gf, g, wfh, delta_used)
                wr = np.fft.irfft2(wrh, s=g.shape)
            else:
                wfh, wrh, wr = None, np.fft.rfft2(wf), wf
            if not (np.isfinite(w).all() and np.isfinite(wr).all()):
                nonfinite.append(float(times[r]))
            diff = (w - wr).reshape(M, -1)
            norm_ref = np.sqrt(np.sum(wr.reshape(M, -1) ** 2, axis=1))
            err_members[:, r] = _relative(np.sqrt(np.sum(diff**2, axis=1)), norm_ref)
            mean_diff, mean_ref = diff.mean(axis=0), wr.reshape(M, -1).mean(axis=0)
            err_ensemble[r] = _relative(np.sqrt(np.sum(mean_diff**2)),
                                        np.sqrt(np.sum(mean_ref**2)))
            energy["run"][:, r] = diagnostics.energy(g, wh)
            energy["reference"][:, r] = diagnostics.energy(g, wrh)
            enstrophy["run"][:, r] = diagnostics.enstrophy(g, wh)
            enstrophy["reference"][:, r] = diagnostics.enstrophy(g, wrh)
            if steady[r]:
                spec_run += diagnostics.energy_spectrum(g, wh)[1].mean(axis=0)
                spec_ref += diagnostics.energy_spectrum(g, wrh)[1].mean(axis=0)
                if coarse:
                    spec_dns += diagnostics.energy_spectrum(gf, wfh)[1].mean(axis=0)
                samples_run.append(w.ravel())
                samples_ref.append(wr.ravel())
    ns = int(steady.sum())
    spec_run, spec_ref, spec_dns = spec_run / ns, spec_ref / ns, spec_dns / ns
    k = 2 * np.pi / g.L * np.arange(1, nshell + 1)
    k_dns = 2 * np.pi / gf.L * np.arange(1, nshell_f + 1)
    kc = g.kmax_dealias
    e_run, e_ref = spec_run[:kc], spec_ref[:kc]
    shell_err = _relative(e_run - e_ref, e_ref)
    ok = np.isfinite(shell_err)
    rel_rmse = float(np.sqrt(np.mean(shell_err[ok] ** 2))) if ok.any() else None
    pos = (e_run > 0) & (e_ref > 0)
    log_rmse = (float(np.sqrt(np.mean((np.log10(e_run[pos]) - np.log10(e_ref[pos])) ** 2)))
                if pos.any() else None)

    a, b = np.concatenate(samples_run), np.concatenate(samples_ref)
    fin = np.isfinite(a) & np.isfinite(b)
    a, b = a[fin], b[fin]
    if a.size:
        edges, p, q = histogram_pair(a, b, bins)
        H, W1 = hellinger_from_probabilities(p, q), wasserstein1(a, b)
        std_ref = float(np.std(b))
        width = np.diff(edges)
        pdf = {"bin_edges": edges, "run": p / width, "reference": q / width, "hellinger": H,
               "wasserstein1": W1, "wasserstein1_over_std": W1 / std_ref if std_ref > 0 else None,
               "reference_std": std_ref, "run_std": float(np.std(a)), "samples": int(a.size)}
    else:
        pdf = {"bin_edges": [], "run": [], "reference": [], "hellinger": None,
               "wasserstein1": None, "wasserstein1_over_std": None, "samples": 0}

    def _series(d_: dict, stored_name: str) -> dict:
        run_m, ref_m = d_["run"].mean(axis=0), d_["reference"].mean(axis=0)
        res = {"run": run_m, "reference": ref_m, "run_members": d_["run"],
               "reference_members": d_["reference"], "relative_error": _relative(run_m - ref_m,
                                                                                 ref_m),
               "steady_relative_error": float(_relative(run_m[steady].mean() - ref_m[steady]
                                                        .mean(), ref_m[steady].mean())),
               "reference_dns": (stored[stored_name].mean(axis=0) if stored_name in stored
                                 else None)}
        return res

    if nonfinite:
        warnings_list.append(f"non-finite vorticity at times {nonfinite[:5]}"
                             f"{' …' if len(nonfinite) > 5 else ''}")
    counted0 = np.isfinite(err_members[:, 0])
    first = err_members[counted0, 0].mean() if counted0.any() else np.nan
    if np.isfinite(first) and first > INITIAL_ERROR_WARNING:
        warnings_list.append(f"the relative error at the first common record (t={times[0]:.6g}) "
                             f"is already {first:.3g}: the runs may not start from the same "
                             f"initial conditions")

    speedup = None
    a_run, a_ref = cost_run["wall_per_time_per_member"], cost_ref["wall_per_time_per_member"]
    if a_run and a_ref:
        speedup = a_ref / a_run
    counted = np.isfinite(err_members).sum(axis=0)
    member_mean = _relative(np.where(np.isfinite(err_members), err_members, 0.0).sum(axis=0),
                            counted.astype(float))
    lead = times - times[0]
    metrics = {
        "run": src.describe(),
        "reference": ref.describe(),
        "coarse_graining": {
            "applied": coarse,
            "factor": ref.n // src.n,
            "delta": delta_used,
            "method": ("gaussian filter exp(-delta^2 k^2/24) + truncation to the run grid's 2/3 "
                       "modes (solvers.filters.coarse_grain)") if coarse else
                      "none: same grid, compared directly"},
        "times": {"time": times, "lead_time": lead, "tolerance": tol,
                  "run_indices": i_run, "reference_indices": i_ref,
                  "unmatched_run_records": src.records - int(i_run.size),
                  "steady_from": steady_from, "steady_records": ns,
                  "steady_time_range": [float(times[steady][0]), float(times[steady][-1])]},
        "errors": {"relative_l2_members": err_members, "relative_l2_member_mean": member_mean,
                   "relative_l2_ensemble_mean": err_ensemble},
        "energy": _series(energy, "energy"),
        "enstrophy": _series(enstrophy, "enstrophy"),
        "spectra": {"k": k, "run": spec_run, "reference": spec_ref,
                    "k_reference_dns": k_dns if coarse else None,
                    "reference_dns": spec_dns if coarse else None,
                    "cutoff_k": 2 * np.pi / g.L * kc, "shells_compared": kc,
                    "relative_error_per_shell": shell_err, "relative_rmse": rel_rmse,
                    "log_rmse_decades": log_rmse},
        "pdf": pdf,
        "cost": {"run": cost_run, "reference": cost_ref,
                 "speedup_per_time_per_member": speedup},
        "warnings": warnings_list,
        "definitions": DEFINITIONS,
    }
    metrics["headline"] = _headline(metrics)
    if write:
        out.mkdir(parents=True, exist_ok=True)
        made = _figures(metrics, out) if figures else []
        metrics["figures"] = [p.name for p in made]
        metrics["out"] = str(out)
        _write_json(out / "metrics.json", metrics)
    return _clean(metrics)


def _headline(m: dict) -> dict:
    e = m["errors"]
    t = m["times"]["lead_time"]

    def last(x):
        return float(x[-1])

    return {
        "final_lead_time": float(t[-1]),
        "records_compared": int(len(t)),
        "relative_l2_final_member_mean": last(e["relative_l2_member_mean"]),
        "relative_l2_final_ensemble_mean": last(e["relative_l2_ensemble_mean"]),
        "relative_l2_time_mean_member_mean": float(np.nanmean(e["relative_l2_member_mean"]))
        if np.isfinite(e["relative_l2_member_mean"]).any() else None,
        "energy_steady_relative_error": m["energy"]["steady_relative_error"],
        "enstrophy_steady_relative_error": m["enstrophy"]["steady_relative_error"],
        "spectrum_relative_rmse": m["spectra"]["relative_rmse"],
        "spectrum_log_rmse_decades": m["spectra"]["log_rmse_decades"],
        "pdf_hellinger": m["pdf"]["hellinger"],
        "pdf_wasserstein1": m["pdf"]["wasserstein1"],
        "run_wall_per_time_per_member_s": m["cost"]["run"]["wall_per_time_per_member"],
        "reference_wall_per_time_per_member_s":
            m["cost"]["reference"]["wall_per_time_per_member"],
        "speedup_per_time_per_member": m["cost"]["speedup_per_time_per_member"],
    }


def _clean(o):
    """Plain JSON values: arrays as lists, numpy scalars as Python numbers, NaN/inf as None."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    return o


def _write_json(path: Path, data: dict) -> None:
    write_json(path, _clean(data), indent=1, allow_nan=False)


# ---------------------------------------------------------------------------------- ensembles
def ensemble_scores(run, reference, reference_member: int = 0, delta=None,
                    run_members=None) -> dict:
    """Scores of a real ensemble: all members of ``run`` (a run folder or trajectory) started from
    one state, against member ``reference_member`` of ``reference`` (coarse-grained as in
    :func:`compare_runs`), at the common record times. Per lead time: the relative L2 error of
    every member and of the ensemble mean, ‖⟨ω⟩ − ω_ref‖/‖ω_ref‖; the spread
    s = sqrt(⟨var_m ω⟩_x) (unbiased member variance, box mean) and the spread–error ratio
    sqrt((M+1)/M)·s / ‖⟨ω⟩ − ω_ref‖_rms (1 for a calibrated ensemble; None for M = 1); the fair
    CRPS of the members at every grid point, box mean (:func:`closures.losses.crps_ensemble`; for
    one member it is the mean absolute error), also divided by ⟨|ω_ref|⟩ ('crps_relative').
    ``run_members``: indices of the run's members to score (default all; ``[0]`` scores member 0
    alone, e.g. a deterministic run started like the ensemble).
    Returns a dict of lists (JSON-able) with 'lead_time' and 'members'."""
    import torch

    from closures.losses import crps_ensemble
    from solvers import filters

    src, ref = _Source("RUN", run), _Source("REFERENCE", reference)
    if not math.isclose(src.L, ref.L, rel_tol=1e-9) or ref.n % src.n:
        raise CompareError(f"RUN {src.trajectory} ({src.n}², L={src.L:g}) and REFERENCE "
                           f"{ref.trajectory} ({ref.n}², L={ref.L:g}) need the same box and a "
                           f"reference grid that is a multiple of the run grid")
    if isinstance(reference_member, bool) or not 0 <= int(reference_member) < ref.members:
        raise CompareError(f"reference_member must be in [0, {ref.members}), got "
                           f"{reference_member!r}")
    i_run, i_ref, _ = _match_times(src, ref)
    pick = list(range(src.members)) if run_members is None else [int(m) for m in run_members]
    if not pick or not all(0 <= m < src.members for m in pick):
        raise CompareError(f"run_members must be indices in [0, {src.members}), got "
                           f"{run_members!r}")
    g, gf, M = src.grid, ref.grid, len(pick)
    d = 2 * g.dx if delta is None else float(delta)
    out = {k: [] for k in ("error_members", "error_ensemble_mean", "spread",
                           "spread_error_ratio", "crps", "crps_relative")}
    with src.open() as ds_run, ref.open() as ds_ref:
        for ir, jf in zip(i_run, i_ref):
            w = np.asarray(ds_run["vorticity"][pick, ir].values, dtype=np.float64)
            wf = np.asarray(ds_ref["vorticity"][int(reference_member), jf].values, np.float64)
            wr = (np.fft.irfft2(filters.coarse_grain(gf, g, np.fft.rfft2(wf), d), s=g.shape)
                  if ref.n > src.n else wf)
            norm = float(np.sqrt(np.mean(wr ** 2)))
            err_mean = float(np.sqrt(np.mean((w.mean(axis=0) - wr) ** 2)))
            out["error_members"].append((np.sqrt(np.mean((w - wr) ** 2, axis=(1, 2)))
                                         / norm).tolist())
            out["error_ensemble_mean"].append(err_mean / norm)
            spread = float(np.sqrt(np.mean(w.var(axis=0, ddof=1)))) if M > 1 else 0.0
            out["spread"].append(spread)
            out["spread_error_ratio"].append(math.sqrt((M + 1) / M) * spread / err_mean
                                             if M > 1 and err_mean > 0 else None)
            crps = float(crps_ensemble(torch.from_numpy(w), torch.from_numpy(wr)).mean())
            out["crps"].append(crps)
            out["crps_relative"].append(crps / float(np.mean(np.abs(wr))))
    times = src.times[i_run]
    out.update(lead_time=(times - times[0]).tolist(), time=times.tolist(), members=M,
               reference_member=int(reference_member))
    return out


# ---------------------------------------------------------------------------------- figures
def _figures(m: dict, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name):
        path = out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path

    made = []
    lead = np.asarray(m["times"]["lead_time"], float)
    e = m["errors"]
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    members = np.asarray(e["relative_l2_members"], float)
    if 1 < len(members) <= 16:
        for row in members:
            ax.plot(lead, row, color="0.7", lw=0.7)
    ax.plot(lead, e["relative_l2_member_mean"], "o-", ms=3, lw=1.5, label="member mean")
    ax.plot(lead, e["relative_l2_ensemble_mean"], "s--", ms=3, lw=1.2, label="ensemble mean")
    ax.set_xlabel("lead time")
    ax.set_ylabel("‖ω − ω_ref‖ / ‖ω_ref‖")
    ax.set_title("relative L2 error of vorticity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    made.append(save(fig, "error.png"))

    t = np.asarray(m["times"]["time"], float)
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6))
    for ax, name, label in ((axes[0], "energy", "E = ½⟨|u|²⟩"),
                            (axes[1], "enstrophy", "Z = ½⟨ω²⟩")):
        s = m[name]
        ax.plot(t, s["run"], "o-", ms=3, label="run")
        ax.plot(t, s["reference"], "s--", ms=3, label="reference (on run grid)")
        if s.get("reference_dns") is not None:
            ax.plot(t, s["reference_dns"], ":", color="k", label="reference DNS (full)")
        ax.set_xlabel("t")
        ax.set_ylabel(label)
        ax.set_title(f"{name} (member mean)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    made.append(save(fig, "energy.png"))

    sp = m["spectra"]
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for kk, ee, style, label in ((sp["k"], sp["run"], "o-", "run"),
                                 (sp["k"], sp["reference"], "s--", "reference (on run grid)"),
                                 (sp.get("k_reference_dns"), sp.get("reference_dns"), ":",
                                  "reference DNS (full)")):
        if kk is None or ee is None:
            continue
        kk, ee = np.asarray(kk, float), np.asarray(ee, float)
        keep = ee > 0
        if keep.any():
            ax.loglog(kk[keep], ee[keep], style, ms=3, label=label)
    ax.axvline(sp["cutoff_k"], color="0.5", lw=0.8, ls="-.", label="run dealiasing cutoff")
    ax.set_xlabel("k")
    ax.set_ylabel("E(k)")
    ax.set_title("energy spectra (steady records, member mean)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    made.append(save(fig, "spectra.png"))

    pdf = m["pdf"]
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    edges = np.asarray(pdf["bin_edges"], float)
    if edges.size > 1:
        centres = 0.5 * (edges[1:] + edges[:-1])
        for dens, style, label in ((pdf["run"], "-", "run"),
                                   (pdf["reference"], "--", "reference (on run grid)")):
            dens = np.asarray(dens, float)
            keep = dens > 0
            ax.semilogy(centres[keep], dens[keep], style, label=label)
        ax.legend(fontsize="small")
    ax.set_xlabel("ω")
    ax.set_ylabel("PDF")
    H, W = pdf["hellinger"], pdf["wasserstein1"]
    ax.set_title("vorticity PDF" + ("" if H is None else f": Hellinger {H:.3g}, W1 {W:.3g}"))
    ax.grid(alpha=0.3)
    made.append(save(fig, "pdf.png"))
    return made


# ---------------------------------------------------------------------------------- table
def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.4g}"


def format_table(metrics: dict) -> str:
    """The headline numbers as a markdown table."""
    h = metrics["headline"]
    rows = [
        ("records compared", h["records_compared"]),
        ("final lead time", h["final_lead_time"]),
        ("relative L2 error of ω at the final lead time, member mean",
         h["relative_l2_final_member_mean"]),
        ("relative L2 error of the ensemble-mean ω at the final lead time",
         h["relative_l2_final_ensemble_mean"]),
        ("relative L2 error of ω, mean over lead times (member mean)",
         h["relative_l2_time_mean_member_mean"]),
        ("energy relative error (steady records)", h["energy_steady_relative_error"]),
        ("enstrophy relative error (steady records)", h["enstrophy_steady_relative_error"]),
        ("spectrum relative RMSE (k below the run's cutoff)", h["spectrum_relative_rmse"]),
        ("spectrum RMSE of log10 E(k) [decades]", h["spectrum_log_rmse_decades"]),
        ("vorticity PDF Hellinger distance", h["pdf_hellinger"]),
        ("vorticity PDF 1-Wasserstein distance", h["pdf_wasserstein1"]),
        ("run wall s per time unit per member", h["run_wall_per_time_per_member_s"]),
        ("reference wall s per time unit per member",
         h["reference_wall_per_time_per_member_s"]),
        ("speed-up per time unit per member (reference / run)",
         h["speedup_per_time_per_member"]),
    ]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {_fmt(v)} |" for name, v in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- CLI
def configure_parser(p) -> None:
    """Arguments of ``hybrid compare``."""
    from .cli.arguments import nonnegative_float, number, positive_int
    p.add_argument("run", type=Path, metavar="RUN",
                   help="the run to judge: a run folder (trajectory.nc, run.json) or a trajectory")
    p.add_argument("reference", type=Path, metavar="REFERENCE",
                   help="the reference DNS: run folder or trajectory on the same or a finer grid "
                        "(same box, members and initial conditions)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder for metrics.json and figures (default RUN/compare)")
    p.add_argument("--delta", type=nonnegative_float, default=None,
                   help="width of the Gaussian filter used to coarse-grain the reference "
                        "(default 2·dx of the run grid)")
    p.add_argument("--steady-from", type=number, default=None, metavar="T",
                   help="average spectra and PDFs over records at t ≥ T (default: the last half "
                        "of the common records)")
    p.add_argument("--bins", type=positive_int, default=None,
                   help="number of PDF bins (default: Freedman–Diaconis, 10 … 200)")


def run_cli(args) -> int:
    """Handler of ``hybrid compare``: 0 on success, 2 on bad input (message on stderr)."""
    try:
        metrics = compare_runs(args.run, args.reference, out=args.out, delta=args.delta,
                               steady_from=args.steady_from, bins=args.bins)
    except CompareError as e:
        print(f"hybrid compare: error: {e}", file=sys.stderr)
        return 2
    print(format_table(metrics))
    for w in metrics["warnings"]:
        print(f"hybrid compare: warning: {w}", file=sys.stderr)
    print(f"hybrid compare: wrote metrics.json and {len(metrics['figures'])} figure(s) to "
          f"{metrics['out']}", file=sys.stderr)
    return 0
