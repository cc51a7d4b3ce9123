"""A per-lead spread scale for a generator: :func:`fit_spread_scale`.

A generator whose spread about its ensemble mean is right on average but has the wrong shape in
lead time (a distilled window generator is too dispersed at the first saves and not enough at
the last) can be corrected after the fact: ``EnsembleGenerator.generate(..., spread_scale=s)``
makes x̂_k(t) ← ⟨x̂⟩(t) + s(t)(x̂_k(t) − ⟨x̂⟩(t)) for t ≥ 1, which keeps the ensemble mean.

The scale is fitted on training starts (DNS ensembles from common states, member 0 the
conditioning run): the generator makes ``members`` members around each conditioning run, and
the ratio r(t) = √(Σ_starts var_DNS(t) / Σ_starts var_generated(t)) of the DNS members' variance
(members 1 … M − 1, mean over y) to the generated members' is smoothed by a least-squares
polynomial in t of degree ``degree`` (2 by default: a handful of numbers from many starts, not
one per lead), evaluated at every lead t = 1 … T − 1.
"""
from __future__ import annotations

import numpy as np

from solvers.validate import integer

from .data import CONDITIONING, other_members, read_starts

__all__ = ["fit_spread_scale", "smooth_ratio"]


def smooth_ratio(ratio, degree: int = 2) -> list[float]:
    """The least-squares polynomial of ``degree`` in t = 1 … len(ratio) through ``ratio``,
    evaluated there."""
    r = np.asarray(ratio, dtype=np.float64)
    t = np.arange(1, r.size + 1, dtype=np.float64)
    degree = integer("degree", degree, 0, max(r.size - 1, 0))
    return [float(v) for v in np.polyval(np.polyfit(t, r, degree), t)]


def fit_spread_scale(generator, data, members: int = 8, seed: int = 100, degree: int = 2,
                     **generate) -> tuple[list[float], list[float]]:
    """(the smoothed scale s(t), the raw ratio r(t)), t = 1 … T − 1, of ``generator`` (an
    :class:`~closures.ensemble_ldm.generate.EnsembleGenerator`, generating with the keywords
    ``generate`` and without a spread scale) on the starts ``data`` (paths or an array (starts,
    members, times, n); module docstring). Start i's members use seed ``seed + i``."""
    members = integer("members", members, 2)
    U, _ = read_starts(data)
    others = other_members(U.shape[1])
    if len(others) < 2:
        raise ValueError("data: a DNS spread needs at least 2 members besides the conditioning run")
    dns = np.zeros(U.shape[2])
    gen = np.zeros(U.shape[2])
    for i, u in enumerate(U):
        X = generator.generate(u[CONDITIONING], members, seed=seed + i, spread_scale=[],
                               **generate)
        dns += u[others].var(axis=0, ddof=1).mean(axis=-1)
        gen += X.astype(np.float64).var(axis=0, ddof=1).mean(axis=-1)
    ratio = np.sqrt(dns[1:] / gen[1:])
    return smooth_ratio(ratio, degree), [float(v) for v in ratio]
