"""The oracle closure: replays a stored closure term, e.g. the exact subgrid term of a filtered DNS.

It answers "how good can a closure be on this grid?" (the exact term, fed back online) and checks
the coupling (a hybrid run with the oracle should track the filtered DNS for a while).

Sign. ``solvers.filters`` defines Π = T(G N(ω)) − N(ω̄) with N(ω) = u·∇ω; the filtered equation
reads ∂t ω̄ + N(ω̄) = … − Π, so the tendency a closure returns is C = −Π. :class:`OracleClosure`
and :meth:`OracleClosure.from_arrays` replay the tendency C they are given, exactly;
:meth:`OracleClosure.from_subgrid` and :meth:`OracleClosure.from_dataset` take Π and store
``sign·Π`` (default sign −1).
"""
from __future__ import annotations

import numpy as np

from solvers.base import ClosureState
from solvers.grid import Grid

from .base import Closure

INTERPOLATIONS = ("nearest", "linear")


def _values(x) -> np.ndarray:
    return np.asarray(getattr(x, "values", x))


def _has(ds, name: str) -> bool:
    try:
        return name in ds or name in getattr(ds, "coords", {})
    except TypeError:
        return False


class OracleClosure(Closure):
    """Replays stored tendencies C(t): ``terms`` (ntime, members, n, n) at ``times`` (ntime,).

    At call time t it returns, for ``interpolation='nearest'`` (default), a copy of the stored term
    at the stored time nearest to t (the earlier one on a tie), so a stored term comes back bit
    for bit; for ``'linear'``, the linear interpolation between the two stored times around t
    (the stored term itself when t is a stored time; the end term within ``tolerance`` beyond the
    ends). A time more than ``tolerance`` outside [times[0], times[-1]] raises ValueError;
    ``tolerance`` defaults to half the smallest sample interval (1e-9·max(1, |t|) for one sample).

    ``L`` (optional) is the box side the terms belong to: with it, the grid check compares n and
    L, without it n only. The number of members must equal the solver's. ``every`` as for any
    closure (default 5); the solver's step times need not coincide with the stored times.
    """

    name = "oracle"

    def __init__(self, times, terms, *, every: int | None = None, interpolation: str = "nearest",
                 L: float | None = None, tolerance: float | None = None):
        super().__init__(every=every)
        t = np.asarray(times, dtype=np.float64)
        c = np.asarray(terms)
        if t.ndim != 1 or t.size < 1:
            raise ValueError(f"times must be a non-empty 1D array, got shape {t.shape}")
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise ValueError("times must be finite and strictly increasing")
        if c.ndim != 4 or c.shape[0] != t.size or c.shape[2] != c.shape[3]:
            raise ValueError(f"terms must have shape (ntime={t.size}, members, n, n), got "
                             f"{c.shape}")
        if c.dtype.kind not in "fiu":
            raise ValueError(f"terms must be real, got dtype {c.dtype}")
        c = np.ascontiguousarray(c, dtype=np.float64)
        if not np.all(np.isfinite(c)):
            raise ValueError("terms must be finite (they contain NaN or inf)")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got "
                             f"{interpolation!r}")
        if tolerance is None:
            tol = 0.5 * float(np.min(np.diff(t))) if t.size > 1 else None
        else:
            tol = float(tolerance)
            if not np.isfinite(tol) or tol < 0:
                raise ValueError(f"tolerance must be finite and ≥ 0, got {tolerance!r}")
        self.times, self.terms = t, c
        self.interpolation, self.tolerance = interpolation, tol
        self.built_for = (int(c.shape[2]), None if L is None else float(L))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(cls, times, terms, **kwargs) -> "OracleClosure":
        """Same as the constructor: ``terms`` are the tendencies C to replay."""
        return cls(times, terms, **kwargs)

    @classmethod
    def from_subgrid(cls, times, subgrid, *, sign: float = -1.0, **kwargs) -> "OracleClosure":
        """From the subgrid term Π (ntime, members, n, n): replays C = sign·Π (default −Π)."""
        return cls(times, sign * np.asarray(subgrid, dtype=np.float64), **kwargs)

    @classmethod
    def from_dataset(cls, ds, *, variable: str = "subgrid", sign: float = -1.0,
                     members=None, **kwargs) -> "OracleClosure":
        """From a dataset (xarray.Dataset or any mapping of arrays with ``.values``/``.dims``).

        ``ds[variable]`` (physical Π, default 'subgrid') is either ``(time, member, y, x)`` with
        coordinates ``time`` (and ``member``), or the closure-dataset layout ``(sample, y, x)`` with
        per-sample variables ``time`` and ``member``; samples are grouped by time and member, and
        every (time, member) pair must occur exactly once. ``members`` selects member ids (default:
        all, in increasing order). The replayed term is C = sign·Π. ``L`` defaults to the
        dataset attribute ``L`` when there is one.
        """
        var = ds[variable]
        dims = tuple(getattr(var, "dims", ()))
        data = _values(var).astype(np.float64, copy=False)
        if len(dims) != data.ndim:
            raise ValueError(f"dataset variable {variable!r} needs named dimensions, got {dims}")
        if data.ndim == 4 and dims[0] == "time":
            t = _values(ds["time"]).astype(np.float64)
            ids = _values(ds["member"]) if _has(ds, "member") else np.arange(data.shape[1])
            if members is not None:
                pos = []
                for m in np.atleast_1d(members):
                    hit = np.flatnonzero(ids == m)
                    if not hit.size:
                        raise ValueError(f"member {m!r} is not in the dataset's {list(ids)}")
                    pos.append(int(hit[0]))
                data = data[:, pos]
            stacked = data
        elif data.ndim == 3:
            t_s = _values(ds["time"]).astype(np.float64)
            m_s = _values(ds["member"])
            if t_s.shape != (data.shape[0],) or m_s.shape != (data.shape[0],):
                raise ValueError(f"{variable!r} (sample, y, x) needs per-sample 'time' and "
                                 f"'member' of length {data.shape[0]}")
            t = np.unique(t_s)
            ids = np.unique(m_s) if members is None else np.atleast_1d(members)
            stacked = np.empty((t.size, ids.size) + data.shape[1:])
            filled = np.zeros((t.size, ids.size), dtype=int)
            ti = np.searchsorted(t, t_s)
            for s in range(data.shape[0]):
                hit = np.flatnonzero(ids == m_s[s])
                if hit.size:
                    stacked[ti[s], hit[0]] = data[s]
                    filled[ti[s], hit[0]] += 1
            if np.any(filled != 1):
                bad = np.argwhere(filled != 1)[0]
                raise ValueError(f"dataset has {filled[tuple(bad)]} samples for time "
                                 f"{t[bad[0]]:g}, member {ids[bad[1]]}; need exactly one each")
        else:
            raise ValueError(f"{variable!r} must be (time, member, y, x) or (sample, y, x), got "
                             f"{dims}")
        if "L" not in kwargs:
            L = getattr(ds, "attrs", {}).get("L")
            if L is not None:
                kwargs["L"] = float(L)
        return cls.from_subgrid(np.asarray(t, dtype=np.float64), stacked, sign=sign, **kwargs)

    # ------------------------------------------------------------------ hook
    def reset(self, grid: Grid, members: int, params: dict, seed) -> None:
        super().reset(grid, members, params, seed)
        if self.terms.shape[1] != self.members:
            raise ValueError(f"closure {self.describe()} holds {self.terms.shape[1]} members; "
                             f"the solver has {self.members}")

    def _tol(self, t: float) -> float:
        return self.tolerance if self.tolerance is not None else 1e-9 * max(1.0, abs(t))

    def term_at(self, t: float) -> np.ndarray:
        """The replayed term at time t (members, n, n), a new array; see the class docstring."""
        t = float(t)
        ts, tol = self.times, self._tol(t)
        if not (ts[0] - tol <= t <= ts[-1] + tol):
            raise ValueError(f"closure {self.describe()}: t={t:g} is outside the stored times "
                             f"[{ts[0]:g}, {ts[-1]:g}] (tolerance {tol:g})")
        if self.interpolation == "nearest" or ts.size == 1:
            i = int(np.searchsorted(ts, t))          # ts[i-1] < t <= ts[i]
            if i == ts.size or (i > 0 and t - ts[i - 1] <= ts[i] - t):
                i -= 1
            return self.terms[i].copy()
        if t <= ts[0]:
            return self.terms[0].copy()
        if t >= ts[-1]:
            return self.terms[-1].copy()
        i = int(np.searchsorted(ts, t, side="right"))   # ts[i-1] <= t < ts[i]
        w = (t - ts[i - 1]) / (ts[i] - ts[i - 1])
        if w == 0.0:
            return self.terms[i - 1].copy()
        return (1.0 - w) * self.terms[i - 1] + w * self.terms[i]

    def compute(self, state: ClosureState) -> np.ndarray:
        return self.term_at(state.t)

    def __repr__(self) -> str:
        return (f"OracleClosure(ntime={self.times.size}, members={self.terms.shape[1]}, "
                f"n={self.terms.shape[2]}, t=[{self.times[0]:g}, {self.times[-1]:g}], "
                f"interpolation={self.interpolation!r}, every={self.every})")
