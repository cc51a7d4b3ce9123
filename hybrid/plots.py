"""Small PNG figures of runs (matplotlib, Agg backend: no display needed).

Each function draws one figure, writes it to ``path`` and returns the path.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402


def _symmetric_limit(a: np.ndarray) -> float:
    """Colour limit for a diverging map centred on 0 (robust to a few extreme values)."""
    finite = np.abs(a[np.isfinite(a)])
    if finite.size == 0:
        return 1.0
    v = float(np.percentile(finite, 99.5))
    return v if v > 0 else (float(finite.max()) or 1.0)


def _save(fig, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_vorticity(zeta, path, title: str = "vorticity", L: float | None = None) -> Path:
    """Image of one physical vorticity field ζ (n, n), indexed [y, x], diverging colours centred
    on 0; axes in box units when the box side ``L`` is given, else in grid points."""
    z = np.asarray(zeta, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"zeta must be a 2D field (n, n), got shape {z.shape}")
    lim = _symmetric_limit(z)
    extent = None if L is None else (0.0, L, 0.0, L)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    im = ax.imshow(z, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent,
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, label="ζ")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    return _save(fig, path)


def plot_hovmoller(t, y, U, path, title: str = "zonal-mean zonal velocity U(y, t)") -> Path:
    """Hovmöller diagram of U(y, t): ``U`` has shape (time, y); time on the x axis, y on the y axis,
    diverging colours centred on 0 (eastward jets red, westward blue)."""
    t, y, U = np.asarray(t, float), np.asarray(y, float), np.asarray(U, float)
    if U.shape != (t.size, y.size):
        raise ValueError(f"U must have shape (len(t), len(y)) = ({t.size}, {y.size}), "
                         f"got {U.shape}")
    lim = _symmetric_limit(U)
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    if t.size > 1:
        pm = ax.pcolormesh(t, y, U.T, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
    else:                                                  # one record: a single column
        pm = ax.imshow(U.T, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                       extent=(t[0] - 0.5, t[0] + 0.5, y[0], y[-1]))
    fig.colorbar(pm, ax=ax, label="U")
    ax.set_xlabel("t")
    ax.set_ylabel("y")
    ax.set_title(title)
    return _save(fig, path)


def plot_energy(t, E, path, title: str = "kinetic energy") -> Path:
    """Kinetic energy against time; ``E`` is (time,) or (members, time), one line per member."""
    t, E = np.asarray(t, float), np.atleast_2d(np.asarray(E, float))
    if E.shape[-1] != t.size:
        raise ValueError(f"E must have len(t) = {t.size} values per member, got shape {E.shape}")
    fig, ax = plt.subplots(figsize=(6.0, 3.5))
    for m, e in enumerate(E):
        ax.plot(t, e, lw=1.0, label=f"member {m}" if 1 < len(E) <= 8 else None)
    if 1 < len(E) <= 8:
        ax.legend(fontsize="small")
    ax.set_xlabel("t")
    ax.set_ylabel("E = ½⟨|u|²⟩")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)
