"""The comparison itself: :func:`compare_runs` puts a run and a reference side by side record by
record and returns (and writes to ``metrics.json``) errors, energetics, spectra, PDF distances and
cost; the definitions of every number are written with them (:data:`DEFINITIONS`)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from solvers.files import json_finite, write_json

from .cost import run_cost
from .distances import hellinger_from_probabilities, histogram_pair, wasserstein1
from .sources import CompareError, Source, check_out, check_pair, match_times

__all__ = ["compare_runs", "DEFINITIONS", "OUTPUTS"]

OUTPUTS = ("metrics.json", "error.png", "energy.png", "spectra.png", "pdf.png")
INITIAL_ERROR_WARNING = 0.5      # warn when the first common record differs by more than this

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
    "cost.wall_per_time": "wall-clock seconds per simulated time unit (whole ensemble): "
                         "run.json's timings.wall_s / simulated_time",
    "cost.wall_per_time_per_member": "wall_per_time / members (seconds per time unit per member)",
    "cost.closure_per_time_per_member": "the closure's share of it: run.json's timings.closure_s "
                                        "/ simulated_time / members",
    "cost.solver_per_time_per_member": "the solver's share: timings.solver_s (its steps without "
                                       "the closure) / simulated_time / members",
    "cost.speedup_per_time_per_member": "reference wall_per_time_per_member / run "
                                        "wall_per_time_per_member (> 1: the run is cheaper)",
}


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
    src = Source("RUN", run)
    ref = Source("REFERENCE", reference)
    cost_run, cost_ref = run_cost(src.trajectory, src.role), run_cost(ref.trajectory, ref.role)
    d = check_pair(src, ref, delta)
    i_run, i_ref, tol = match_times(src, ref)
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
        out = check_out(out)

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
        "run": dict(src.describe(), run_json=cost_run["run_json"]),
        "reference": dict(ref.describe(), run_json=cost_ref["run_json"]),
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
        from ..plots import plot_comparison      # matplotlib only when figures are drawn
        made = plot_comparison(metrics, out) if figures else []
        metrics["figures"] = [p.name for p in made]
        metrics["out"] = str(out)
        _write_json(out / "metrics.json", metrics)
    return json_finite(metrics)


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


def _write_json(path: Path, data: dict) -> None:
    write_json(path, json_finite(data), indent=1, allow_nan=False)

