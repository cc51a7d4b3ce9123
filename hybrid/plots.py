"""Every figure of the package (matplotlib, Agg backend: no display needed): fields, Hovmöller
diagrams and energy of runs; the figures of a comparison; the cost-vs-error figure and the snapshot
panels of ``hybrid bench``; the jet figures of ``hybrid jets`` (Hovmöller side by side, PDFs,
spectra, jet numbers, ensemble scores).

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


# ------------------------------------------------------------------ jets (hybrid.jets)
MAX_COLUMNS = 2000          # Hovmöller panels show at most this many records (every k-th)


def plot_jet_hovmoller(panels, path, title: str = "") -> Path:
    """Hovmöller diagrams of U(y, t) side by side on one colour scale, each above its jet count:
    ``panels`` is a list of (title, t (time,), y (y,), U (time, y), counts (time,)). Long records
    are thinned to every k-th record, at most MAX_COLUMNS (said in the panel title)."""
    lim = max(_symmetric_limit(np.asarray(p[3], float)) for p in panels)
    top = max(int(np.max(p[4])) for p in panels) if panels else 1
    fig, axes = plt.subplots(2, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False,
                             sharey="row", gridspec_kw=dict(height_ratios=[4, 1], hspace=0.08))
    pm = None
    for j, (name, t, y, U, counts) in enumerate(panels):
        t, U, counts = np.asarray(t, float), np.asarray(U, float), np.asarray(counts)
        k = max(1, -(-t.size // MAX_COLUMNS))
        ax, axc = axes[0, j], axes[1, j]
        pm = ax.pcolormesh(t[::k], np.asarray(y, float), U[::k].T, cmap="RdBu_r", vmin=-lim,
                           vmax=lim, shading="nearest", rasterized=True)
        ax.set_title(name + (f" (one record in {k})" if k > 1 else ""), fontsize=9)
        ax.tick_params(labelbottom=False)
        axc.step(t, counts, where="post", color="k", lw=0.7)
        axc.set_ylim(-0.5, top + 0.5)
        axc.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axc.set_xlabel("t")
        axc.sharex(ax)
    axes[0, 0].set_ylabel("y")
    axes[1, 0].set_ylabel("jets")
    if pm is not None:
        fig.colorbar(pm, ax=axes[0].tolist(), pad=0.015, fraction=0.03, label="U")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_jet_pdfs(pdfs: dict, path) -> Path:
    """PDFs of U, ∂yU and ∂tU of a run and its reference on the reference's bins
    (:func:`hybrid.jets.pdf_distances`), the Hellinger distance and floor in each title."""
    from .jets.statistics import VARIABLE_LABELS
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8))
    for ax, (name, label) in zip(axes, VARIABLE_LABELS.items()):
        p = pdfs[name]
        edges = np.asarray(p["edges"], float)
        centres, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
        for prob, style, what in ((p["reference"], "-", "reference"), (p["run"], "--", "run")):
            dens = np.asarray(prob, float) / width
            keep = dens > 0
            ax.semilogy(centres[keep], dens[keep], style, label=what)
        floor = p["floor"]
        ax.set_title(f"{label}: H = {p['hellinger']:.3g}"
                     + ("" if floor is None else f" (floor {floor:.3g})"), fontsize=9)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PDF")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_jet_spectra(spectrum: dict, series: dict, path) -> Path:
    """Time-mean spectrum ⟨|Û_m|²⟩ of U(y) against mode m, and the energy ½⟨U²⟩ over time
    (member mean) of a run and its reference; ``series`` maps role → {'t', 'energy'}."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.0, 3.8))
    m = np.asarray(spectrum["mode"], float)
    for role, style in (("reference", "-"), ("run", "--")):
        s = np.asarray(spectrum[role], float)
        keep = (m > 0) & (s > 0)
        a.loglog(m[keep], s[keep], style, marker="o", ms=3, label=role)
        t, E = np.asarray(series[role]["t"], float), np.asarray(series[role]["energy"], float)
        k = max(1, -(-t.size // (4 * MAX_COLUMNS)))
        b.plot(t[::k], E[::k], style, lw=0.8, label=role)
    a.set_xlabel("mode m (wavenumber 2πm/L)")
    a.set_ylabel("⟨|Û_m|²⟩")
    a.set_title("time-mean spectrum of U(y)", fontsize=9)
    b.set_xlabel("t")
    b.set_ylabel("½⟨U²⟩")
    b.set_title("energy of the zonal mean (member mean)", fontsize=9)
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_jet_numbers(jets: dict, path) -> Path:
    """Fraction of time in each jet number and the mean residence time in it, run beside
    reference, with their 95 % intervals; ``jets`` maps role → the 'fraction' and
    'residence_time' of :func:`hybrid.jets.jet_statistics`."""
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 3.8))
    for ax, key, value, ci, ylabel in (
            (axes[0], "fraction", "episodes", "episodes_interval_95", "fraction of time"),
            (axes[1], "residence_time", "mean", "interval_95", "mean residence time")):
        numbers = sorted({int(n) for r in jets.values() for n in r[key]})
        roles = sorted(jets, key=lambda role: role != "reference")      # reference first
        for i, role in enumerate(roles):
            r = jets[role]
            x = np.array(numbers, float) + (i - 0.5) * 0.35
            v = [r[key].get(str(n), {}).get(value, np.nan) for n in numbers]
            lo = [(r[key].get(str(n)) or {}).get(ci) for n in numbers]
            err = np.array([[vv - c[0], c[1] - vv] if c else [0, 0] for vv, c in zip(v, lo)]).T
            ax.bar(x, v, width=0.35, label=role, color=f"C{i}",
                   yerr=err if err.size else None, capsize=3)
        if not numbers:
            ax.text(0.5, 0.5, "no complete episodes", ha="center", transform=ax.transAxes)
        ax.set_xticks(numbers)
        ax.set_xlabel("number of jets")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_jet_ensemble(scores: dict, path) -> Path:
    """Scores of an ensemble from one state (:func:`hybrid.jets.ensemble_scores`): CRPS with its
    error and spread parts against lead, the spread–error ratio, and the rank histogram."""
    fig, axes = plt.subplots(1, 3, figsize=(14.0, 3.8))
    lead = np.asarray(scores["lead_time"], float)
    a, b, c = axes
    a.plot(lead, scores["crps"], "-", label="CRPS")
    a.plot(lead, scores["crps_error"], "--", label="error part")
    a.plot(lead, scores["crps_spread"], ":", label="spread part")
    a.set_xlabel("lead time")
    a.set_title("fair CRPS of U (mean over y)", fontsize=9)
    a.legend(fontsize="small")
    ratio = np.array([np.nan if r is None else r for r in scores["spread_error_ratio"]], float)
    b.plot(lead, ratio, "o-", ms=2)
    b.axhline(1.0, color="0.5", lw=0.8)
    b.set_xlabel("lead time")
    b.set_title("spread–error ratio", fontsize=9)
    hist = scores.get("rank_histogram")
    if hist is not None:
        hist = np.asarray(hist, float)
        c.bar(np.arange(hist.size), hist / hist.sum(), width=0.9)
        c.axhline(1.0 / hist.size, color="k", lw=0.8)
        p = scores.get("rank_histogram_p")
        c.set_title("rank histogram" + ("" if p is None else f" (χ² p = {p:.3g})"), fontsize=9)
    c.set_xlabel("rank of the truth")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_jet_sweep(rep: dict, path) -> Path:
    """The mean jet number and the merging and nucleation rates (per member per 10³ time units)
    against the swept parameter, from a :func:`hybrid.jets.sweep.sweep_files` report: the
    emulator as a line with its 95 % band, the DNS runs as points with 95 % error bars."""
    fig, axes = plt.subplots(1, 3, figsize=(14.0, 3.8))
    emu, dns = rep["values"], rep["dns"]
    for ax, key, scale, label in ((axes[0], "mean_jets", 1.0, "mean jet number"),
                                  (axes[1], "merging_rate", 1e3, "mergings per member per 10³"),
                                  (axes[2], "nucleation_rate", 1e3,
                                   "nucleations per member per 10³")):
        x = np.array([e["value"] for e in emu], float)
        v = np.array([e[key]["value"] for e in emu], float) * scale
        ci = [e[key]["interval_95"] for e in emu]
        ax.plot(x, v, "-o" if x.size < 20 else "-", ms=3, color="C0", label="emulator")
        if all(c is not None for c in ci) and ci:
            ax.fill_between(x, [c[0] * scale for c in ci], [c[1] * scale for c in ci],
                            color="C0", alpha=0.25, lw=0)
        if dns:
            xd = np.array([d["value"] for d in dns], float)
            vd = np.array([d[key]["value"] for d in dns], float) * scale
            err = np.array([[vv - c[0] * scale, c[1] * scale - vv] if c else [0.0, 0.0]
                            for vv, c in zip(vd, (d[key]["interval_95"] for d in dns))]).T
            ax.errorbar(xd, vd, yerr=np.maximum(err, 0.0), fmt="s", color="C1", capsize=3,
                        label="DNS")
        if rep.get("spacing") == "log":
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(rep["parameter"])
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fixed = ", ".join(f"{k} = {v:g}" for k, v in (rep.get("fixed") or {}).items())
    fig.suptitle(f"{rep['members']} emulated members per value"
                 + (f"; {fixed}" if fixed else ""), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
