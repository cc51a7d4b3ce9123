"""Every figure of the package (matplotlib, Agg backend: no display needed): fields, Hovmöller
diagrams and energy of runs; the figures of a comparison; the cost-vs-error figure and the snapshot
panels of ``hybrid bench``.

Each function draws one figure, writes it to ``path`` and returns the path (a comparison's
function writes its four figures into a folder and returns their paths).
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


def plot_comparison(m: dict, out) -> list[Path]:
    """The figures of a comparison (:func:`hybrid.compare.compare_runs`'s metrics ``m``) in the
    folder ``out``: error.png (relative L2 error against lead time), energy.png (energy and
    enstrophy against time), spectra.png and pdf.png (vorticity PDFs). Returns their paths."""
    out = Path(out)

    def save(fig, name):
        return _save(fig, out / name)

    made = []
    lead = np.asarray(m["times"]["lead_time"], float)
    e = m["errors"]
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    members = np.asarray(e["relative_l2_members"], float)
    if 1 < len(members) <= 16:
        for row in members:
            ax.plot(lead, row, color="0.7", lw=0.7)
    ax.plot(lead, e["relative_l2_member_mean"], "o-", ms=3, lw=1.5, label="member mean")
    ax.plot(lead, e["relative_l2_ensemble_mean"], "s--", ms=3, lw=1.2, label="ensemble mean")
    ax.set_xlabel("lead time")
    ax.set_ylabel("‖ω − ω_ref‖ / ‖ω_ref‖")
    ax.set_title("relative L2 error of vorticity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    made.append(save(fig, "error.png"))

    t = np.asarray(m["times"]["time"], float)
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6))
    for ax, name, label in ((axes[0], "energy", "E = ½⟨|u|²⟩"),
                            (axes[1], "enstrophy", "Z = ½⟨ω²⟩")):
        s = m[name]
        ax.plot(t, s["run"], "o-", ms=3, label="run")
        ax.plot(t, s["reference"], "s--", ms=3, label="reference (on run grid)")
        if s.get("reference_dns") is not None:
            ax.plot(t, s["reference_dns"], ":", color="k", label="reference DNS (full)")
        ax.set_xlabel("t")
        ax.set_ylabel(label)
        ax.set_title(f"{name} (member mean)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    made.append(save(fig, "energy.png"))

    sp = m["spectra"]
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for kk, ee, style, label in ((sp["k"], sp["run"], "o-", "run"),
                                 (sp["k"], sp["reference"], "s--", "reference (on run grid)"),
                                 (sp.get("k_reference_dns"), sp.get("reference_dns"), ":",
                                  "reference DNS (full)")):
        if kk is None or ee is None:
            continue
        kk, ee = np.asarray(kk, float), np.asarray(ee, float)
        keep = ee > 0
        if keep.any():
            ax.loglog(kk[keep], ee[keep], style, ms=3, label=label)
    ax.axvline(sp["cutoff_k"], color="0.5", lw=0.8, ls="-.", label="run dealiasing cutoff")
    ax.set_xlabel("k")
    ax.set_ylabel("E(k)")
    ax.set_title("energy spectra (steady records, member mean)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    made.append(save(fig, "spectra.png"))

    pdf = m["pdf"]
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    edges = np.asarray(pdf["bin_edges"], float)
    if edges.size > 1:
        centres = 0.5 * (edges[1:] + edges[:-1])
        for dens, style, label in ((pdf["run"], "-", "run"),
                                   (pdf["reference"], "--", "reference (on run grid)")):
            dens = np.asarray(dens, float)
            keep = dens > 0
            ax.semilogy(centres[keep], dens[keep], style, label=label)
        ax.legend(fontsize="small")
    ax.set_xlabel("ω")
    ax.set_ylabel("PDF")
    H, W = pdf["hellinger"], pdf["wasserstein1"]
    ax.set_title("vorticity PDF" + ("" if H is None else f": Hellinger {H:.3g}, W1 {W:.3g}"))
    ax.grid(alpha=0.3)
    made.append(save(fig, "pdf.png"))
    return made


def plot_cost_vs_error(report: dict, path) -> Path:
    """Cost against error of every LES row of a ``hybrid bench`` report (:mod:`hybrid.report`),
    the DNS costs as vertical lines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in report["les"]:
        x, y = r["cost"], r["metrics"]["error_member_mean_time_mean"]
        ax.scatter(x, y)
        ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for r in report["dns"]:
        ax.axvline(r["cost"], color="grey", ls="--", lw=0.8)
        ax.annotate(f"DNS {r['grid']}²", (r["cost"], 0.03), xycoords=ax.get_xaxis_transform(),
                    textcoords="offset points", xytext=(3, 0), fontsize=8, rotation=90,
                    color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("wall s per simulated time unit per member")
    ax.set_ylabel("relative L2 error (member mean, time mean)")
    ax.set_title(f"cost vs error, {report['config']['preset']}")
    fig.tight_layout()
    return _save(fig, path)


def plot_panels(panels, path, L: float, title: str) -> Path:
    """Fields side by side on the colour scale of the first: ``panels`` is a list of (title,
    field (n, n)); axes span the box [0, L]²."""
    vmax = float(np.abs(panels[0][1]).max()) or 1.0
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9))
    for ax, (name, f) in zip(np.atleast_1d(axes), panels):
        ax.imshow(f, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=(0, L, 0, L))
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
