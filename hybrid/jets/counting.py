"""Counting jets in profiles U(y) and what the count does over time: episodes, merging and
nucleation events, the fraction of time in each jet number and residence times.

The jet count of one profile (resolution independent):

1. U(y) is smoothed spectrally, Û_m → Û_m exp(−m²/(2 k_s²)) with m the mode number (wavenumber in
   units of 2π/L), and evaluated on a fixed grid of :func:`eval_points` (k_s) points, whatever the
   resolution of the data (modes m ≥ n_y/2 of the data are dropped; the smoothing leaves them at
   most exp(−(n_y/2)²/(2k_s²)) of their size).
2. Peaks are the periodic local maxima of the smoothed profile. Peaks of small prominence are
   removed by the one-dimensional persistence rule: while some pair of neighbouring extrema
   (a maximum and the minimum beside it) differs by less than h = ``prominence`` × rms of the
   smoothed profile, the pair with the smallest difference is removed. The peaks left are those
   whose prominence is at least h.
3. A jet is a peak left with U > 0 (an eastward maximum).

Events follow a persistence rule on each member's count series (:func:`episodes`): a run of
constant count shorter than ``persist`` time units is absorbed into the episode before it; the
first run is the initial state whatever its length; a last run shorter than ``persist`` is not
confirmed and is absorbed too. An event is the start of an episode with another count than the one
before: a drop is a merging, a rise a nucleation.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["eval_points", "smooth_profiles", "count_jets", "jet_positions", "episodes",
           "events", "fractions", "residence_times", "bootstrap_mean", "first_events",
           "time_to_event"]


def eval_points(k_s: float) -> int:
    """Points of the fixed grid on which smoothed profiles are evaluated: 16·k_s rounded up to an
    even number, at least 64."""
    return max(64, 2 * math.ceil(8 * float(k_s)))


def smooth_profiles(U, L: float, k_s: float, n_eval: int | None = None) -> np.ndarray:
    """Profiles U[..., y] smoothed with the spectral Gaussian exp(−m²/(2 k_s²)) and evaluated on
    ``n_eval`` (default :func:`eval_points`) equally spaced points y_j = j L / n_eval."""
    U = np.asarray(U, dtype=np.float64)
    if not k_s > 0:
        raise ValueError(f"k_s must be a number > 0, got {k_s!r}")
    n = U.shape[-1]
    n_eval = eval_points(k_s) if n_eval is None else int(n_eval)
    K = min((n + 1) // 2, n_eval // 2)                    # modes kept: m < n/2 and < n_eval/2
    m = np.arange(K)
    coef = np.fft.rfft(U, axis=-1)[..., :K] / n * np.exp(-0.5 * (m / k_s) ** 2)
    full = np.zeros(U.shape[:-1] + (n_eval // 2 + 1,), dtype=complex)
    full[..., :K] = coef
    return np.fft.irfft(full * n_eval, n=n_eval, axis=-1)


def _extrema(Us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    left, right = np.roll(Us, 1, axis=-1), np.roll(Us, -1, axis=-1)
    return (Us > left) & (Us >= right), (Us < left) & (Us <= right)


def _simplify(values: list[float], h: float) -> list[int]:
    """Persistence simplification of a circular sequence of alternating extrema: remove the
    neighbouring (max, min) pair of smallest difference while it is below ``h``; returns the
    kept indices into the sequence."""
    idx = list(range(len(values)))
    while len(idx) > 2:
        n = len(idx)
        diffs = [abs(values[idx[i]] - values[idx[(i + 1) % n]]) for i in range(n)]
        i = int(np.argmin(diffs))
        if diffs[i] >= h:
            break
        drop = {i, (i + 1) % n}
        idx = [j for k, j in enumerate(idx) if k not in drop]
    return idx


def _peaks_of_row(row: np.ndarray, h: float) -> list[int]:
    """Indices of the maxima of one smoothed periodic profile left by the persistence rule."""
    mx, mn = _extrema(row)
    pos = np.flatnonzero(mx | mn)
    if pos.size == 0:
        return []
    keep = _simplify(row[pos].tolist(), h)
    return [int(pos[k]) for k in keep if mx[pos[k]]]


CHUNK = 1 << 16             # profiles counted at a time


def count_jets(U, L: float, k_s: float, prominence: float = 0.1) -> np.ndarray:
    """Number of jets in every profile of ``U`` (..., y) by the rule of this module: an integer
    array of shape ``U.shape[:-1]``."""
    U = np.asarray(U)
    flat = U.reshape(-1, U.shape[-1])
    counts = np.concatenate([_count_rows(flat[i:i + CHUNK], L, k_s, prominence)
                             for i in range(0, max(flat.shape[0], 1), CHUNK)])
    return counts.reshape(U.shape[:-1])


def _count_rows(rows: np.ndarray, L: float, k_s: float, prominence: float) -> np.ndarray:
    Us = smooth_profiles(np.asarray(rows, dtype=np.float64), L, k_s)
    h = prominence * np.sqrt(np.mean(Us ** 2, axis=-1))
    mx, mn = _extrema(Us)
    counts = (mx & (Us > 0)).sum(axis=-1)
    # profiles with a neighbouring (max, min) pair closer than h need the simplification
    rows, cols = np.nonzero(mx | mn)
    if rows.size:
        v = Us[rows, cols]
        first = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
        nxt = np.arange(1, rows.size + 1)
        last = np.r_[first[1:], rows.size] - 1
        nxt[last] = first                                     # circular neighbour
        close = np.abs(v - v[nxt]) < h[rows]
        for r in np.unique(rows[close]):
            counts[r] = sum(1 for j in _peaks_of_row(Us[r], h[r]) if Us[r, j] > 0)
    return counts


def jet_positions(profile, L: float, k_s: float, prominence: float = 0.1) -> np.ndarray:
    """y positions of the jets of one profile U(y) (on the fixed evaluation grid)."""
    Us = smooth_profiles(np.asarray(profile, dtype=np.float64), L, k_s)
    h = prominence * float(np.sqrt(np.mean(Us ** 2)))
    n_eval = Us.size
    return np.array([j * L / n_eval for j in _peaks_of_row(Us, h) if Us[j] > 0])


def episodes(counts, dt: float, persist: float) -> list[tuple[int, int, int]]:
    """Episodes of one count series (record interval ``dt``) under the persistence rule of this
    module: a list of (count, first record, one past the last record)."""
    c = np.asarray(counts).astype(int).ravel()
    if c.size == 0:
        return []
    edges = np.flatnonzero(np.diff(c)) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, c.size]
    out: list[list[int]] = []
    for s, e in zip(starts, ends):
        v = int(c[s])
        if not out:
            out.append([v, int(s), int(e)])
        elif (e - s) * dt < persist or v == out[-1][0]:
            out[-1][2] = int(e)                          # absorbed: the episode before goes on
        else:
            out.append([v, int(s), int(e)])
    return [tuple(x) for x in out]


def events(counts, t, persist: float) -> list[dict]:
    """Merging and nucleation events of count series ``counts`` (member, time) or (time,) at
    record times ``t``: dicts with member, t (first record of the new episode), before, after and
    kind ('merging' for a drop, 'nucleation' for a rise)."""
    c = np.atleast_2d(np.asarray(counts))
    t = np.asarray(t, dtype=np.float64)
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0      # the save interval
    out = []
    for m, row in enumerate(c):
        eps = episodes(row, dt, persist)
        for (v0, _, _), (v1, s, _) in zip(eps[:-1], eps[1:]):
            out.append(dict(member=m, t=float(t[s]), before=v0, after=v1,
                            kind="merging" if v1 < v0 else "nucleation"))
    return out


def bootstrap_mean(x, resamples: int, rng: np.random.Generator) -> list[float] | None:
    """Percentile 95 % interval of the mean of ``x`` from ``resamples`` bootstrap resamples
    (None for fewer than two values)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return None
    means = x[rng.integers(0, x.size, size=(int(resamples), x.size))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def fractions(counts, t, persist: float, resamples: int = 2000, seed: int = 0) -> dict:
    """Fraction of time in each jet number: of the records (raw counts, pooled over members), and
    of the episodes' time (:func:`episodes`) with a bootstrap 95 % interval (episodes resampled
    with replacement, ``resamples`` times, generator seeded with ``seed``)."""
    c = np.atleast_2d(np.asarray(counts)).astype(int)
    t = np.asarray(t, dtype=np.float64)
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0      # the save interval
    eps = [(v, e - s) for row in c for v, s, e in episodes(row, dt, persist)]
    vals = np.array([v for v, _ in eps])
    lens = np.array([n for _, n in eps], dtype=np.float64)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(eps), size=(int(resamples), len(eps))) if len(eps) > 1 else None
    out = {}
    for v in sorted(set(np.unique(c).tolist()) | set(vals.tolist())):
        share = lens * (vals == v)
        frac = float(share.sum() / lens.sum())
        ci = None
        if pick is not None:
            boot = share[pick].sum(axis=1) / lens[pick].sum(axis=1)
            ci = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
        out[str(v)] = {"records": float(np.mean(c == v)), "episodes": frac,
                       "episodes_interval_95": ci}
    return out


def residence_times(counts, t, persist: float, resamples: int = 2000, seed: int = 0) -> dict:
    """Residence time in each jet number: durations (records × save interval) of the episodes
    that begin and end inside the record (each member's first and last episode are cut by the
    record and left out), their mean with a bootstrap 95 % interval (seeded), and their number."""
    c = np.atleast_2d(np.asarray(counts)).astype(int)
    t = np.asarray(t, dtype=np.float64)
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0      # the save interval
    durations: dict[int, list[float]] = {}
    for row in c:
        for v, s, e in episodes(row, dt, persist)[1:-1]:
            durations.setdefault(v, []).append((e - s) * dt)
    rng = np.random.default_rng(seed)
    out = {}
    for v in sorted(durations):
        d = np.asarray(durations[v])
        out[str(v)] = {"episodes": int(d.size), "mean": float(d.mean()),
                       "interval_95": bootstrap_mean(d, resamples, rng),
                       "min": float(d.min()), "max": float(d.max())}
    return out


def first_events(counts, t, persist: float, kind: str | None = None) -> np.ndarray:
    """Time from the first record to each member's first event (of ``kind``, 'merging' or
    'nucleation', or either with None) under the persistence rule; NaN for a member without
    one. ``counts`` (member, time) at record times ``t``."""
    if kind not in (None, "merging", "nucleation"):
        raise ValueError(f"kind must be None, 'merging' or 'nucleation', got {kind!r}")
    c = np.atleast_2d(np.asarray(counts))
    t = np.asarray(t, dtype=np.float64)
    out = np.full(c.shape[0], np.nan)
    for e in events(c, t, persist):
        if (kind is None or e["kind"] == kind) and np.isnan(out[e["member"]]):
            out[e["member"]] = e["t"] - t[0]
    return out


def time_to_event(times, quantiles=(0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
    """Summary of first-event times (NaN: no event within the record): members, how many saw an
    event, and the quantiles of the times of those that did."""
    x = np.asarray(times, dtype=np.float64)
    seen = x[np.isfinite(x)]
    return {"members": int(x.size), "with_event": int(seen.size),
            "quantiles": {f"{q:g}": float(np.quantile(seen, q)) for q in quantiles}
            if seen.size else None,
            "mean": float(seen.mean()) if seen.size else None}
