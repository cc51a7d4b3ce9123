"""Scores of an ensemble of profiles started from one state against one true trajectory: the
fair CRPS split into its error and spread parts, the spread–error ratio and the rank histogram
with a chi-square flatness p-value, and its flatness within sampling over several starts
(:func:`rank_flatness`); the two-sample Kolmogorov–Smirnov test (times to an event in
two ensembles). Arrays: ensemble X (member, lead, y), truth (lead, y)."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["crps_parts", "spread_error", "rank_histogram", "chi2_sf", "ensemble_scores",
           "pool_scores", "rank_flatness", "ks_two_sample"]


def _check(X, truth) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if X.ndim != y.ndim + 1 or X.shape[1:] != y.shape:
        raise ValueError(f"the ensemble must have shape (members, *truth.shape), got "
                         f"{X.shape} for a truth of shape {y.shape}")
    return X, y


def crps_parts(X, truth) -> tuple[np.ndarray, np.ndarray]:
    """The fair CRPS = error − spread at every element, as its two parts:
    error = (1/m) Σ_i |X_i − y| and spread = 1/(2 m (m−1)) Σ_{i≠j} |X_i − X_j| (0 for m = 1),
    the latter from the sorted members, Σ_{i<j} |X_i − X_j| = Σ_k (2k − m − 1) X_(k).
    Returns (error, spread), each of the truth's shape."""
    X, y = _check(X, truth)
    m = X.shape[0]
    error = np.mean(np.abs(X - y[None]), axis=0)
    if m < 2:
        return error, np.zeros_like(error)
    k = np.arange(1, m + 1, dtype=np.float64).reshape((m,) + (1,) * y.ndim)
    pair_sum = np.sum((2 * k - m - 1) * np.sort(X, axis=0), axis=0)
    return error, np.maximum(pair_sum, 0.0) / (m * (m - 1))      # ≥ 0 despite round-off


def spread_error(X, truth) -> tuple[np.ndarray, np.ndarray]:
    """Per lead (axis 0 of the truth): the spread sqrt(mean_y var_m X) (unbiased variance over
    members) and the error of the ensemble mean sqrt(mean_y (⟨X⟩ − y)²)."""
    X, y = _check(X, truth)
    axes = tuple(range(1, y.ndim))
    spread = (np.sqrt(np.mean(X.var(axis=0, ddof=1), axis=axes)) if X.shape[0] > 1
              else np.zeros(y.shape[0]))
    error = np.sqrt(np.mean((X.mean(axis=0) - y) ** 2, axis=axes))
    return spread, error


def rank_histogram(X, truth, rng: np.random.Generator) -> np.ndarray:
    """Counts of the rank of the truth among the m members (m + 1 bins) over all elements;
    ties between the truth and members are broken at random (``rng``)."""
    X, y = _check(X, truth)
    m = X.shape[0]
    below = np.sum(X < y[None], axis=0).ravel()
    ties = np.sum(X == y[None], axis=0).ravel()
    rank = below + np.floor(rng.random(below.size) * (ties + 1)).astype(int)
    return np.bincount(rank, minlength=m + 1)


def _gammaincc(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x): series for x < a + 1, continued fraction
    (modified Lentz) otherwise."""
    if x <= 0:
        return 1.0
    lg = math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - lg))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    f = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        f *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - lg) * f


def chi2_sf(x: float, df: int) -> float:
    """P(χ²_df > x), the chi-square survival function."""
    return _gammaincc(0.5 * df, 0.5 * float(x))


def ensemble_scores(X, truth, lead, seed: int = 0) -> dict:
    """Scores of an ensemble X (member, lead, y) started from one state against the truth
    (lead, y) at lead times ``lead``: per lead, CRPS = error − spread (:func:`crps_parts`, mean
    over y), the spread and ensemble-mean error (:func:`spread_error`) and their ratio
    sqrt((m+1)/m)·spread/error (1 for an ensemble drawn like the truth; None while the error is
    round-off); over all leads after the
    first (where the members still agree) the same ratio from the mean squares, and the rank
    histogram of the truth with the chi-square p-value of flatness, χ² = Σ (O − E)²/E with m
    degrees of freedom (it assumes independent ranks; neighbouring points and leads are
    correlated, which makes p too small for real flows)."""
    X, y = _check(X, truth)
    m = X.shape[0]
    error, spread = crps_parts(X, y)
    s, e = spread_error(X, y)
    c = math.sqrt((m + 1) / m) if m > 1 else float("nan")
    tiny = 1e-9 * float(np.sqrt(np.mean(y ** 2)))         # members and truth still agree
    ratio = [c * a / b if m > 1 and b > tiny else None for a, b in zip(s, e)]
    use = np.flatnonzero(np.asarray(lead, dtype=np.float64) > 0)
    later = X[:, use]
    hist = rank_histogram(later, y[use], np.random.default_rng(seed)) if use.size else None
    out = {"members": m, "lead_time": np.asarray(lead, dtype=np.float64),
           "crps": (error - spread).mean(axis=-1), "crps_error": error.mean(axis=-1),
           "crps_spread": spread.mean(axis=-1), "spread": s, "error_ensemble_mean": e,
           "spread_error_ratio": ratio,
           "spread_error_ratio_all": (c * math.sqrt(np.mean(s[use] ** 2) / np.mean(e[use] ** 2))
                                      if m > 1 and use.size and np.mean(e[use] ** 2) > 0
                                      else None),
           "rank_histogram": hist, "rank_histogram_p": None}
    if hist is not None and m > 1:
        expected = hist.sum() / (m + 1)
        out["rank_histogram_p"] = chi2_sf(float(np.sum((hist - expected) ** 2) / expected), m)
    return out


def ks_two_sample(a, b) -> tuple[float, float | None]:
    """Two-sample Kolmogorov–Smirnov test: the largest distance D between the empirical CDFs of
    ``a`` and ``b`` (NaNs dropped) and the asymptotic p-value Q_KS(λ), λ = (√n + 0.12 +
    0.11/√n) D with n = n_a n_b/(n_a + n_b) and Q_KS(λ) = 2 Σ_k (−1)^(k−1) exp(−2k²λ²)
    (None when a sample has fewer than two values)."""
    a = np.sort(np.asarray(a, dtype=np.float64)[np.isfinite(a)])
    b = np.sort(np.asarray(b, dtype=np.float64)[np.isfinite(b)])
    if a.size < 2 or b.size < 2:
        return float("nan"), None
    x = np.concatenate([a, b])
    D = float(np.max(np.abs(np.searchsorted(a, x, side="right") / a.size
                            - np.searchsorted(b, x, side="right") / b.size)))
    n = a.size * b.size / (a.size + b.size)
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * D
    if lam < 0.2:
        return D, 1.0
    k = np.arange(1, 101)
    p = float(2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * k ** 2 * lam ** 2)))
    return D, min(max(p, 0.0), 1.0)


def rank_flatness(hists, resamples: int = 2000, seed: int = 0) -> dict | None:
    """Whether rank histograms of the truth are flat within sampling, from one histogram per
    start (``hists``: starts × (m + 1) counts). Ranks within a start are correlated (neighbouring
    points and leads), so the starts are resampled as blocks (``resamples`` bootstrap draws,
    seeded) and two statistics of the summed histogram h (mean bin h̄) get percentile 95 %
    intervals:

    * ``ends_excess`` = (h_0 + h_m)/(2 h̄) − 1: > 0 when the truth falls outside the members too
      often (under-dispersed, U-shaped), < 0 when too rarely (over-dispersed, humped);
    * ``mean_rank`` = Σ_j j h_j / (m Σ h) − ½: > 0 when the truth lies above the members too
      often (the members biased low), < 0 when below.

    ``flat``: both intervals hold 0. None for fewer than two starts or members."""
    H = np.asarray(hists, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] < 2 or H.shape[1] < 3:
        return None
    m = H.shape[1] - 1

    def stats(h):                                    # (..., m + 1) -> two (...) arrays
        mean = h.mean(axis=-1)
        return ((h[..., 0] + h[..., -1]) / (2 * mean) - 1,
                (h @ np.arange(m + 1)) / (m * h.sum(axis=-1)) - 0.5)

    pick = np.random.default_rng(seed).integers(0, H.shape[0], size=(int(resamples), H.shape[0]))
    boot = stats(H[pick].sum(axis=1))
    out = {}
    for name, value, draws in zip(("ends_excess", "mean_rank"), stats(H.sum(axis=0)), boot):
        lo, hi = np.percentile(draws, [2.5, 97.5])
        out[name] = {"value": float(value), "interval_95": [float(lo), float(hi)]}
    out["flat"] = all(v["interval_95"][0] <= 0 <= v["interval_95"][1] for v in out.values())
    return out


def pool_scores(results) -> dict:
    """Scores of several starts pooled: ``results`` is a list of :func:`ensemble_scores` dicts
    with the same members and lead times. Per lead, the CRPS and its parts averaged over starts,
    the spread–error ratio from the mean squares of spread and error over starts; over all leads
    after the first, the same ratio; the rank histograms summed, with their χ² p-value and
    :func:`rank_flatness` (starts resampled as blocks)."""
    results = list(results)
    if not results:
        raise ValueError("pool_scores needs at least one result")
    m, lead = results[0]["members"], np.asarray(results[0]["lead_time"], dtype=np.float64)
    for r in results[1:]:
        other = np.asarray(r["lead_time"], dtype=np.float64)
        if r["members"] != m or other.shape != lead.shape or not np.allclose(other, lead):
            raise ValueError("pool_scores: every result needs the same members and lead times")

    def stack(key):
        return np.array([np.asarray(r[key], dtype=np.float64) for r in results])

    s2, e2 = np.mean(stack("spread") ** 2, axis=0), np.mean(stack("error_ensemble_mean") ** 2,
                                                           axis=0)
    c = math.sqrt((m + 1) / m) if m > 1 else float("nan")
    use = lead > 0
    hists = [r["rank_histogram"] for r in results if r["rank_histogram"] is not None]
    hist = np.sum(hists, axis=0) if hists else None
    out = {"starts": len(results), "members": m, "lead_time": lead,
           "crps": stack("crps").mean(axis=0), "crps_error": stack("crps_error").mean(axis=0),
           "crps_spread": stack("crps_spread").mean(axis=0), "spread": np.sqrt(s2),
           "error_ensemble_mean": np.sqrt(e2),
           "spread_error_ratio": [c * math.sqrt(a / b) if m > 1 and b > 0 else None
                                  for a, b in zip(s2, e2)],
           "spread_error_ratio_all": (c * math.sqrt(s2[use].mean() / e2[use].mean())
                                      if m > 1 and use.any() and e2[use].mean() > 0 else None),
           "rank_histogram": hist, "rank_histogram_p": None,
           "rank_flatness": rank_flatness(hists) if len(hists) > 1 else None}
    if hist is not None and m > 1:
        expected = hist.sum() / (m + 1)
        out["rank_histogram_p"] = chi2_sf(float(np.sum((hist - expected) ** 2) / expected), m)
    return out
