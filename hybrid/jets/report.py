"""A run's jets against a reference's: :func:`jet_statistics` on arrays U (member, time, y),
:func:`read_profiles` for files, :func:`markdown_table` for the headline numbers."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from . import counting, scores, statistics

__all__ = ["JetsError", "read_profiles", "jet_statistics", "markdown_table", "common_times",
           "from_one_state", "run_file", "FILES"]

FILES = ("trajectory.nc", "emulation.nc")      # what a run folder may hold, looked for in order
ONE_STATE_RTOL = 1e-6


class JetsError(ValueError):
    """Bad input to the jet diagnostics; the message names the argument and the file."""


def run_file(folder: Path) -> Path | None:
    """The file a run folder stands for: the first of :data:`FILES` it holds, or None."""
    return next((folder / f for f in FILES if (folder / f).is_file()), None)


def read_profiles(path, role: str = "RUN") -> dict:
    """U (member, time, y), t, y, L and the solver configuration of a trajectory with
    ``zonal_mean_u``: a file, or a run folder holding one of :data:`FILES`. Read with
    :func:`solvers.io.open_trajectory` (complete records only)."""
    from solvers.io import TrajectoryFileError, open_trajectory
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise JetsError(f"{role} must be a path, got {path!r}") from None
    if p.is_dir():
        found = run_file(p)
        if found is None:
            raise JetsError(f"{role} folder {p} holds none of {', '.join(FILES)}")
        p = found
    elif not p.exists():
        raise JetsError(f"{role} {p} does not exist (expected a run folder or a trajectory file "
                        f"with zonal_mean_u)")
    try:
        ds = open_trajectory(p)
    except (OSError, TrajectoryFileError, ValueError) as e:
        raise JetsError(f"{role}: cannot read {p}: {e}") from None
    with ds:
        if "zonal_mean_u" not in ds.variables:
            raise JetsError(f"{role} {p} has no zonal_mean_u (member, time, y); record U(y) with "
                            f"a beta-plane run (hybrid dns PRESET --record zonal-mean)")
        v = ds["zonal_mean_u"]
        if tuple(v.dims) != ("member", "time", "y"):
            raise JetsError(f"{role} {p}: zonal_mean_u has dimensions {v.dims}; expected "
                            f"('member', 'time', 'y')")
        U = np.asarray(v.values, dtype=np.float64)
        t = np.asarray(ds["time"].values, dtype=np.float64)
        y = np.asarray(ds["y"].values, dtype=np.float64)
        try:
            config = json.loads(ds.attrs.get("config", "{}"))
        except (TypeError, ValueError):
            config = {}
        L = float(ds.attrs.get("L", config.get("L", 2 * np.pi)))
    if U.shape[1] < 2:
        raise JetsError(f"{role} {p} holds {U.shape[1]} record(s); at least two are needed")
    if not np.isfinite(U).all():
        raise JetsError(f"{role} {p}: zonal_mean_u holds non-finite values")
    return {"path": p, "U": U, "t": t, "y": y, "L": L, "config": config}


MATCH_RTOL = 1e-3       # records are at the same time when within this fraction of the interval


def common_times(t_run, t_ref) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i_run, i_ref) of the records at the same time (within MATCH_RTOL of the save
    interval)."""
    t_run, t_ref = np.asarray(t_run, float), np.asarray(t_ref, float)
    dt = float(np.min(np.diff(t_run))) if t_run.size > 1 else 1.0
    j = np.clip(np.searchsorted(t_ref, t_run), 0, t_ref.size - 1)
    j0 = np.clip(j - 1, 0, t_ref.size - 1)
    j = np.where(np.abs(t_ref[j0] - t_run) < np.abs(t_ref[j] - t_run), j0, j)
    ok = np.abs(t_ref[j] - t_run) <= MATCH_RTOL * dt
    return np.flatnonzero(ok), j[ok]


def from_one_state(U, i: int) -> bool:
    """Whether all members of U (member, time, y) agree at record ``i`` (to ONE_STATE_RTOL of its
    rms): an ensemble started from one state, seen at its start."""
    a = U[:, i]
    scale = float(np.sqrt(np.mean(a ** 2))) or 1.0
    return U.shape[0] >= 2 and float(np.max(np.abs(a - a[0]))) <= ONE_STATE_RTOL * scale


def jet_statistics(U_run, t_run, U_ref, t_ref, L: float, *, k_s: float, persist: float,
                   prominence: float = 0.1, bins: int = 100, margin: float = 0.1,
                   resamples: int = 2000, seed: int = 0, truth_member: int = 0,
                   ensemble: bool | None = None) -> dict:
    """Every jet diagnostic of a run against a reference, both (member, time, y) at record times
    t (evenly spaced, one save interval for both: :func:`statistics.save_interval`), in a box of
    side ``L``. Settings: the jet count's smoothing wavenumber ``k_s`` and ``prominence``
    (hybrid.jets.counting), the events' ``persist`` time, PDF ``bins`` and ``margin``
    (hybrid.jets.statistics), bootstrap ``resamples`` and ``seed``.

    Ensemble scores against reference member ``truth_member`` at the common times: with
    ``ensemble`` True, or by default (None) when the run has two or more members that agree at
    the first common time (started from one state). Unless ``ensemble`` is False, when the run's
    members agree at its first record: the time from it to each member's first merging,
    nucleation and either event within the run's span, for the run and for the reference's
    records in that span ('time_to_event': quantiles, two-sample Kolmogorov–Smirnov D and p).

    Returns a dict of numpy values and lists; its '_series' entry holds the jet counts and
    energies per record for the figures."""
    U_run, U_ref = statistics.as_profiles(U_run, "U_run"), statistics.as_profiles(U_ref, "U_ref")
    dt_run = statistics.save_interval(t_run, "t_run")
    dt_ref = statistics.save_interval(t_ref, "t_ref")
    if abs(dt_run - dt_ref) > statistics.SAME_RTOL * dt_ref:
        raise ValueError(f"the run saves every {dt_run:g} time units and the reference every "
                         f"{dt_ref:g}: ∂tU and the events need one save interval")
    settings = dict(L=L, smooth_k=k_s, smooth_points=counting.eval_points(k_s),
                    prominence=prominence, persist=persist, bins=bins, margin=margin,
                    save_interval=dt_ref, bootstrap_resamples=resamples, seed=seed)
    out = {"settings": settings, "pdfs": statistics.pdf_distances(U_run, t_run, U_ref, t_ref, L,
                                                                  bins, margin)}
    sr, sf = statistics.spectrum(U_run), statistics.spectrum(U_ref)
    K = min(sr.size, sf.size)
    out["spectrum"] = {"mode": np.arange(K), "run": sr[:K], "reference": sf[:K],
                       "relative_error": (sr[:K] - sf[:K]) / np.where(sf[:K] > 0, sf[:K], np.nan)}
    series = {}
    jets = {}
    for role, U, t in (("run", U_run, t_run), ("reference", U_ref, t_ref)):
        E = statistics.zonal_energy(U)
        counts = counting.count_jets(U, L, k_s, prominence)
        ev = counting.events(counts, t, persist)
        jets[role] = {
            "members": int(U.shape[0]), "records": int(U.shape[1]),
            "time_span": [float(t[0]), float(t[-1])],
            "fraction": counting.fractions(counts, t, persist, resamples, seed),
            "residence_time": counting.residence_times(counts, t, persist, resamples, seed),
            "events": ev,
            "mergings": sum(e["kind"] == "merging" for e in ev),
            "nucleations": sum(e["kind"] == "nucleation" for e in ev),
            "energy": statistics.mean_interval(E.mean(axis=0)),
        }
        series[role] = {"t": np.asarray(t, float), "counts": counts, "energy": E.mean(axis=0)}
    out["jets"] = jets
    i_run, i_ref = common_times(t_run, t_ref)
    auto = i_run.size >= 2 and from_one_state(U_run, int(i_run[0]))
    out["ensemble"] = None
    if (ensemble is None and auto) or (ensemble and i_run.size >= 2):
        if not 0 <= truth_member < U_ref.shape[0]:
            raise ValueError(f"truth_member must be in [0, {U_ref.shape[0]}), got {truth_member}")
        tt = np.asarray(t_run, float)[i_run]
        sc = scores.ensemble_scores(U_run[:, i_run], U_ref[truth_member, i_ref], tt - tt[0],
                                    seed)
        sc.update(truth_member=int(truth_member), start_time=float(tt[0]))
        out["ensemble"] = sc
    elif ensemble:
        raise ValueError("ensemble scores need at least two records at the same times in the "
                         "run and the reference")
    out["time_to_event"] = None
    t_run, t_ref = np.asarray(t_run, float), np.asarray(t_ref, float)
    tol = MATCH_RTOL * dt_ref
    window = (t_ref >= t_run[0] - tol) & (t_ref <= t_run[-1] + tol)   # the run's time span
    if ensemble is not False and from_one_state(U_run, 0) and window.sum() >= 2:
        out["time_to_event"] = tte = {"start_time": float(t_run[0]),
                                      "end_time": float(t_run[-1])}
        counts = {"run": (series["run"]["counts"], t_run),
                  "reference": (series["reference"]["counts"][:, window], t_ref[window])}
        for kind in ("merging", "nucleation", None):
            first = {role: counting.first_events(c, t, persist, kind) + (t[0] - t_run[0])
                     for role, (c, t) in counts.items()}
            D, p = scores.ks_two_sample(first["run"], first["reference"])
            tte[kind or "any"] = {role: counting.time_to_event(v) for role, v in first.items()}
            tte[kind or "any"]["ks"] = {"D": D, "p": p}
    out["_series"] = series
    return out


def _f(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}g}"


def _ci(c) -> str:
    return "n/a" if c is None else f"[{_f(c[0], 3)}, {_f(c[1], 3)}]"


def markdown_table(r: dict) -> str:
    """The headline numbers of :func:`jet_statistics` as markdown tables."""
    lines = ["| variable | Hellinger H (run vs reference) | floor (reference halves) |",
             "|---|---|---|"]
    for name, label in (("U", "U"), ("dUdy", "∂yU"), ("dUdt", "∂tU")):
        p = r["pdfs"][name]
        lines.append(f"| {label} | {_f(p['hellinger'], 3)} | {_f(p['floor'], 3)} |")
    run, ref = r["jets"]["run"], r["jets"]["reference"]
    lines += ["", "| | run | reference |", "|---|---|---|",
              f"| energy ½⟨U²⟩, time mean [95 %] | {_f(run['energy']['mean'])} "
              f"{_ci(run['energy']['interval_95'])} | {_f(ref['energy']['mean'])} "
              f"{_ci(ref['energy']['interval_95'])} |",
              f"| mergings / nucleations | {run['mergings']} / {run['nucleations']} | "
              f"{ref['mergings']} / {ref['nucleations']} |"]
    for n in sorted({*run["fraction"], *ref["fraction"]}, key=int):
        a, b = run["fraction"].get(n), ref["fraction"].get(n)
        cell = (lambda x: "n/a" if x is None else
                f"{_f(x['episodes'], 3)} {_ci(x['episodes_interval_95'])}")
        lines.append(f"| fraction of time with {n} jets [95 %] | {cell(a)} | {cell(b)} |")
    for n in sorted({*run["residence_time"], *ref["residence_time"]}, key=int):
        a, b = run["residence_time"].get(n), ref["residence_time"].get(n)
        cell = (lambda x: "n/a" if x is None else
                f"{_f(x['mean'])} {_ci(x['interval_95'])} ({x['episodes']})")
        lines.append(f"| residence time with {n} jets [95 %] (episodes) | {cell(a)} | "
                     f"{cell(b)} |")
    e = r.get("ensemble")
    if e is not None:
        lead = np.asarray(e["lead_time"])
        lines += ["", f"Ensemble of {e['members']} members against reference member "
                      f"{e['truth_member']}: spread–error ratio over all leads "
                      f"{_f(e['spread_error_ratio_all'], 3)}, rank histogram flatness "
                      f"p = {_f(e['rank_histogram_p'], 3)}.", "",
                  "| lead | CRPS | error part | spread part | spread–error |",
                  "|---|---|---|---|---|"]
        for i in np.unique(np.linspace(0, lead.size - 1, min(lead.size, 6)).astype(int)):
            lines.append(f"| {_f(lead[i])} | {_f(e['crps'][i], 3)} | {_f(e['crps_error'][i], 3)}"
                         f" | {_f(e['crps_spread'][i], 3)} | {_f(e['spread_error_ratio'][i], 3)} |")
    tte = r.get("time_to_event")
    if tte is not None:
        lines += ["", "| time to the first event (from the first record) | run: events / members, "
                      "median [10 %, 90 %] | reference: same | KS p |", "|---|---|---|---|"]
        for kind in ("merging", "nucleation", "any"):
            row = tte[kind]
            cell = (lambda x: f"{x['with_event']} / {x['members']}" + (
                "" if x["quantiles"] is None else f", {_f(x['quantiles']['0.5'])} "
                f"[{_f(x['quantiles']['0.1'])}, {_f(x['quantiles']['0.9'])}]"))
            lines.append(f"| {kind} | {cell(row['run'])} | {cell(row['reference'])} | "
                         f"{_f(row['ks']['p'], 3)} |")
    return "\n".join(lines)
