"""One-point statistics of zonal-mean profiles U (member, time, y): the derivatives ∂yU
(spectral) and ∂tU (forward difference over the save interval), their PDFs on bins fixed from the
reference, Hellinger distances and the floor they cannot be seen below, the time-mean spectrum of
U(y) and the energy ½⟨U²⟩_y over time."""
from __future__ import annotations

import math

import numpy as np

from ..compare.distances import hellinger_from_probabilities

__all__ = ["VARIABLES", "as_profiles", "save_interval", "d_dy", "d_dt", "variable", "variables",
           "fixed_bins", "pdf", "split_halves", "pdf_distances", "spectrum", "zonal_energy",
           "mean_interval", "SPACING_RTOL", "SAME_RTOL", "VARIABLE_LABELS"]

VARIABLES = ("U", "dUdy", "dUdt")
VARIABLE_LABELS = {"U": "U", "dUdy": "∂yU", "dUdt": "∂tU"}      # for tables and figures
SPACING_RTOL = 0.1      # a record interval may differ from the median by this fraction (a run
                        # loop may land a record one step early or late)
SAME_RTOL = 0.01        # two files share a save interval when their medians differ by at most this


def as_profiles(U, name: str = "U") -> np.ndarray:
    """``U`` as a float64 array (member, time, y); a (time, y) array is one member."""
    U = np.asarray(U, dtype=np.float64)
    if U.ndim == 2:
        U = U[None]
    if U.ndim != 3 or min(U.shape) < 1:
        raise ValueError(f"{name} must be an array (member, time, y) or (time, y), got shape "
                         f"{U.shape}")
    if not np.isfinite(U).all():
        raise ValueError(f"{name} holds non-finite values")
    return U


def save_interval(t, name: str = "t") -> float:
    """The save interval of the record times ``t``: the median interval; ValueError if fewer than
    two, not increasing, or an interval differs from the median by more than SPACING_RTOL of it
    (a gap, or another cadence)."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"{name} needs at least two record times, got {t.size}")
    d = np.diff(t)
    dt = float(np.median(d))
    if not dt > 0 or np.max(np.abs(d - dt)) > SPACING_RTOL * dt:
        raise ValueError(f"{name}: the records are not evenly spaced in time (intervals from "
                         f"{d.min():g} to {d.max():g}, median {dt:g}); ∂tU needs one save "
                         f"interval")
    return dt


def d_dy(U, L: float) -> np.ndarray:
    """∂U/∂y along the last axis, spectrally (periodic box of side ``L``; the Nyquist mode of an
    even number of points is dropped, as its derivative is not defined)."""
    U = np.asarray(U, dtype=np.float64)
    n = U.shape[-1]
    k = 2 * np.pi / L * np.arange(n // 2 + 1)
    if n % 2 == 0:
        k[-1] = 0.0
    return np.fft.irfft(1j * k * np.fft.rfft(U, axis=-1), n=n, axis=-1)


def d_dt(U, t) -> np.ndarray:
    """∂U/∂t as the forward difference (U(t_{i+1}) − U(t_i))/(t_{i+1} − t_i) between consecutive
    records (the save interval, :func:`save_interval`), along axis 1 of (member, time, y): one
    record fewer."""
    U = as_profiles(U)
    t = np.asarray(t, dtype=np.float64)
    save_interval(t)
    return np.diff(U, axis=1) / np.diff(t)[None, :, None]


def variable(name: str, U, t, L: float) -> np.ndarray:
    """One of the variables whose PDFs are compared: 'U', 'dUdy' (∂yU) or 'dUdt' (∂tU)."""
    U = as_profiles(U)
    if name == "U":
        return U
    if name == "dUdy":
        return d_dy(U, L)
    if name == "dUdt":
        return d_dt(U, t)
    raise ValueError(f"name must be one of {VARIABLES}, got {name!r}")


def variables(U, t, L: float) -> dict[str, np.ndarray]:
    """The three variables whose PDFs are compared: U, ∂yU and ∂tU."""
    return {name: variable(name, U, t, L) for name in VARIABLES}


def fixed_bins(reference, bins: int = 100, margin: float = 0.1) -> np.ndarray:
    """``bins`` + 1 equal-width bin edges over the reference's range [min, max] widened by
    ``margin`` × (max − min) on each side (a range of 0 is widened by ±½ first)."""
    x = np.asarray(reference, dtype=np.float64)
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    w = hi - lo
    return np.linspace(lo - margin * w, hi + margin * w, int(bins) + 1)


def pdf(samples, edges) -> np.ndarray:
    """Bin probabilities (summing to 1) of ``samples`` on ``edges``; values outside the edges go
    to the end bins."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    nb = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, nb - 1)
    counts = np.bincount(idx, minlength=nb).astype(np.float64)
    return counts / max(x.size, 1)


def split_halves(U, t) -> tuple[tuple, tuple, str]:
    """Two independent samples of the same length from one set of profiles, for the floor of a
    distance: with two or more members, the first ⌊M/2⌋ members against the last ⌊M/2⌋ (the
    middle one dropped when M is odd); with one member, the first ⌊T/2⌋ records against the last
    ⌊T/2⌋. Returns ((U_a, t_a), (U_b, t_b), how)."""
    U = as_profiles(U)
    t = np.asarray(t, dtype=np.float64)
    M, T = U.shape[:2]
    if M >= 2:
        h = M // 2
        return (U[:h], t), (U[M - h:], t), f"members 0–{h - 1} against {M - h}–{M - 1}"
    h = T // 2
    return ((U[:, :h], t[:h]), (U[:, T - h:], t[T - h:]),
            f"one member: records 0–{h - 1} against {T - h}–{T - 1} (time halves)")


def pdf_distances(U_run, t_run, U_ref, t_ref, L: float, bins: int = 100,
                  margin: float = 0.1) -> dict:
    """PDFs of U, ∂yU, ∂tU of a run and a reference on bins fixed from the reference
    (:func:`fixed_bins`), the Hellinger distance H (H² = ½ Σ (√p − √q)²) of each, and the floor:
    H between the two halves of the reference (:func:`split_halves`) on the same bins."""
    (Ua, ta), (Ub, tb), how = split_halves(U_ref, t_ref)
    can_floor = min(Ua.shape[1], Ub.shape[1]) >= 2
    out = {"floor_from": how if can_floor else None}
    for name in VARIABLES:                     # one variable at a time: memory for long records
        run, ref = variable(name, U_run, t_run, L), variable(name, U_ref, t_ref, L)
        edges = fixed_bins(ref, bins, margin)
        p, q = pdf(run, edges), pdf(ref, edges)
        floor = (hellinger_from_probabilities(pdf(variable(name, Ua, ta, L), edges),
                                              pdf(variable(name, Ub, tb, L), edges))
                 if can_floor else None)
        out[name] = {"edges": edges, "run": p, "reference": q,
                     "hellinger": hellinger_from_probabilities(p, q), "floor": floor,
                     "outside_run": float(np.mean((run < edges[0]) | (run > edges[-1])))}
    return out


def spectrum(U) -> np.ndarray:
    """Time-mean spectrum of U(y): ⟨|Û_m|²⟩ over members and records, Û_m = rfft(U)/n_y the
    Fourier coefficient of mode m (wavenumber 2πm/L), so the values do not depend on n_y."""
    U = as_profiles(U)
    n = U.shape[-1]
    return np.mean(np.abs(np.fft.rfft(U, axis=-1) / n) ** 2, axis=(0, 1))


def zonal_energy(U) -> np.ndarray:
    """½⟨U²⟩_y, the energy of the zonal-mean flow, per member and record (member, time)."""
    return 0.5 * np.mean(as_profiles(U) ** 2, axis=-1)


def mean_interval(x, batches: int = 20) -> dict:
    """Mean of a series with a 95 % interval from batch means: the series cut into ``batches``
    consecutive batches, mean ± t(0.975, B−1)·s_B/√B, with s_B the standard deviation of the batch
    means (valid when a batch is much longer than the correlation time)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    B = min(int(batches), x.size)
    out = {"mean": float(x.mean()), "std": float(x.std()), "interval_95": None,
           "batches": B}
    if B >= 2:
        means = np.array([b.mean() for b in np.array_split(x, B)])
        half = _t975(B - 1) * float(means.std(ddof=1)) / math.sqrt(B)
        out["interval_95"] = [out["mean"] - half, out["mean"] + half]
    return out


def _t975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (Cornish–Fisher
    expansion about the normal quantile; below 0.2 % error for df ≥ 3, exact table below)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}
    if df in table:
        return table[df]
    z = 1.959963984540054
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))
