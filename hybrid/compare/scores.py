"""Scores of a real ensemble (many members from one start) against one reference member:
ensemble-mean error, spread, spread–error ratio and the fair CRPS, per lead time."""
from __future__ import annotations

import math

import numpy as np

from .sources import CompareError, Source, match_times

__all__ = ["ensemble_scores"]


def ensemble_scores(run, reference, reference_member: int = 0, delta=None,
                    run_members=None) -> dict:
    """Scores of a real ensemble: all members of ``run`` (a run folder or trajectory) started from
    one state, against member ``reference_member`` of ``reference`` (coarse-grained as in
    :func:`hybrid.compare.compare_runs`), at the common record times. Per lead time: the relative L2 error of
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

    src, ref = Source("RUN", run), Source("REFERENCE", reference)
    if not math.isclose(src.L, ref.L, rel_tol=1e-9) or ref.n % src.n:
        raise CompareError(f"RUN {src.trajectory} ({src.n}², L={src.L:g}) and REFERENCE "
                           f"{ref.trajectory} ({ref.n}², L={ref.L:g}) need the same box and a "
                           f"reference grid that is a multiple of the run grid")
    if isinstance(reference_member, bool) or not 0 <= int(reference_member) < ref.members:
        raise CompareError(f"reference_member must be in [0, {ref.members}), got "
                           f"{reference_member!r}")
    i_run, i_ref, _ = match_times(src, ref)
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

