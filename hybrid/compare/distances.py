"""Distances between two samples of a field: the Hellinger distance of their histograms on one
common binning and the 1-Wasserstein distance of their empirical distributions.

W1 is computed from the sorted samples with numpy rather than with
``scipy.stats.wasserstein_distance`` because scipy is not a dependency of the package; for two
empirical distributions the integral of |F − G| between consecutive pooled sample values is exact.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["histogram_pair", "hellinger", "hellinger_from_probabilities", "wasserstein1"]

MAX_BINS = 200


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
