"""Online skill and cost of the learned closures on ``kolmogorov`` LES 64², on test data only.

    hybrid generate kolmogorov --n-dns 256 --dt-dns 0.002 --members 8 --interval 0.5 \
        --spinup 5 --samples 320 --seed 1 --split 0,0,1 --out data/kolmogorov-test.nc
    python -m benchmarks.ldm_online --data data/kolmogorov-test.nc --starts 8 \
        --out benchmarks/results/ldm_online

The reference is the closure dataset itself (``hybrid generate``): its ω̄ records are the
filtered DNS (Gaussian Δ = 2·dx_LES, truncated to the LES grid) every ``interval`` time units, for
each DNS member. The runs start at the file's test block (``split_test_from``); a file from the
DNS the shipped L-CDM was trained and validated on (same seed, up to its last validation time) is
refused. The test file above is an independent DNS (seed 1) whose every record is test data.

1. **Short-term skill.** From the filtered DNS state of ``starts`` DNS members at the start time,
   an LES ensemble of ``ensemble`` members per start (stochastic closures; deterministic ones need
   one) runs with each closure (default: none, Smagorinsky, Leith, dynamic Smagorinsky, the
   mean network μ(ω̄) alone, the L-CDM, the SLT closure at its data's refresh of 10 steps),
   refreshed every ``every`` steps unless its row says ``@k``. The SLT closure starts cold (its
   history padded, :mod:`closures.slt.closure`). At every record time,
   against the filtered DNS (see :func:`ensemble_metrics`): the error of single members (every
   closure, ± its standard error over the independent starts), the error of the ensemble mean,
   the spread–error ratio and the CRPS (stochastic closures). The horizon is the decorrelation
   time t_d of the filtered DNS (its anomaly autocorrelation ⟨ω'(t)ω'(t+τ)⟩/⟨ω'²⟩, ω' = ω̄ minus
   its time and member mean, first drops below 1/e) plus one large-eddy turnover time
   T_e = (L/k_f)/u_rms, both measured from the dataset.
2. **Long run.** ``long_members`` members from the start states run ``long_t`` time units with
   each closure; blow-up (non-finite state) is reported. The isotropic energy spectrum averaged
   over t ≥ ``long_t``/5 and over members is compared shell by shell, for shells below the LES
   cutoff, with the spectrum of all the dataset's ω̄: max and RMS of |E/E_ref − 1|, and per
   shell E/E_ref − 1 with its standard error (from the spread of the members' time means, in
   the LES and in the dataset); the one-point PDF of ω likewise (:func:`pdf_scores`).
3. **Cost.** Wall seconds per simulated time unit per member of each LES ensemble, the closure's
   share, and its time per call per member; a DNS 256² of the same ensemble size is timed over
   ``dns_t`` time units at the dataset's DNS step (measured in the same process).

Writes ``online.json`` and ``online.md`` (tables) and ``online_error.png`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from closures import get_closure
from hybrid.config import load_preset
from hybrid.datasets import open_dataset
from hybrid.report.config import CLOSURES, STOCHASTIC
from solvers import diagnostics
from solvers.base import BlowUpError

from .provenance import run_header


def reference(path) -> dict:
    """The dataset's ω̄ as (times, members, n, n), its times and attributes."""
    with open_dataset(path) as ds:
        M = int(ds.attrs["members"])
        T = ds.sizes["sample"] // M
        w = ds["omega_bar"].values[:T * M].astype(np.float64)
        times = ds["time"].values[:T * M:M].astype(np.float64)
        attrs = dict(ds.attrs)
    return {"omega": w.reshape(T, M, *w.shape[1:]), "times": times, "attrs": attrs,
            "dns_config": json.loads(attrs["dns_config"])}


def time_scales(ref: dict, L: float, kf: float) -> dict:
    """Decorrelation time t_d (anomaly autocorrelation < 1/e) and T_e = (L/k_f)/u_rms."""
    w = ref["omega"]
    a = w - w.mean(axis=(0, 1))
    var = float((a * a).mean())
    dt = float(ref["times"][1] - ref["times"][0])
    corr = [1.0]
    for lag in range(1, w.shape[0] // 2):
        corr.append(float((a[lag:] * a[:-lag]).mean()) / var)
        if corr[-1] < math.exp(-1):
            break
    c = np.array(corr)
    j = int(np.argmax(c < math.exp(-1))) if (c < math.exp(-1)).any() else len(c) - 1
    t_d = dt * (j - 1 + (c[j - 1] - math.exp(-1)) / (c[j - 1] - c[j])) if j > 0 else 0.0
    n = w.shape[-1]
    k = np.fft.fftfreq(n, 1 / n) * 2 * np.pi / L
    kx, ky = np.meshgrid(k, k)
    k2 = kx ** 2 + ky ** 2
    k2[0, 0] = 1.0
    wh = np.fft.fft2(w[::4].reshape(-1, n, n))
    wh[:, 0, 0] = 0
    e = 0.5 * float((np.abs(wh) ** 2 / k2).sum(axis=(1, 2)).mean()) / n ** 4  # ½⟨|u|²⟩
    u_rms = math.sqrt(2 * e)
    return {"decorrelation_time": t_d, "autocorrelation": corr, "u_rms": u_rms,
            "eddy_turnover": (L / kf) / u_rms}


DIFFUSION = ("ldm", "pcdm")
# the STOCHASTIC closures run as ensembles, the rest one member a start; every closure of
# hybrid bench but the oracle (it needs the DNS recorded alongside)
NAMES = tuple(c for c in CLOSURES if c != "oracle")
DEFAULT_CLOSURES = "none,smagorinsky,leith,dynamic-smagorinsky,ldm-mean,ldm,slt-closure@10"


def parse_rows(text: str, every: int) -> dict:
    """``--closures`` → {row label: (name, every, options)}: comma-separated entries of
    :func:`hybrid.report.parse_entry` ('slt-closure@10/path=runs/m'). Rows of a shipped model
    that is not there are left out (with a message)."""
    from closures.ldm import WEIGHTS_DIR
    from hybrid.report.config import SHIPPED_MODELS, parse_entry, row_label
    entries = [e for e in text.split(",") if e]
    rows = {}
    for e in entries:
        name, k, options = parse_entry(e, every, names=NAMES)
        if name in STOCHASTIC and "path" not in dict(options) \
                and not (WEIGHTS_DIR / f"{SHIPPED_MODELS[name]}.json").exists():
            print(f"  {e}: no shipped {SHIPPED_MODELS[name]}; row left out", flush=True)
            continue
        rows[row_label(name, k, options, every, entries)] = (name, k, options)
    return rows


def model_names(rows, ldm_model: str | None = None) -> set:
    """The models (paths or shipped names) the learned rows (name, every, options) load;
    ``ldm_model``: the ldm closures' weights when a row gives no ``path=``."""
    from hybrid.report.config import SHIPPED_MODELS
    out = set()
    for name, _, options in rows:
        if name in SHIPPED_MODELS:
            default = SHIPPED_MODELS[name]
            if name in ("ldm", "ldm-mean") and ldm_model:
                default = ldm_model
            out.add(dict(options).get("path") or default)
    return out


def les_ensemble(preset, row: tuple, omega0: np.ndarray, ensemble: int, seed: int,
                 dt: float | None = None, diffusion_kw: dict | None = None):
    """A batched LES: each start state repeated ``ensemble`` times, the closure of ``row``
    (name, every, options) set (``diffusion_kw``: extra arguments of the diffusion closures,
    e.g. precision, chunk; the row's own options come on top)."""
    closure, every, options = row
    S = omega0.shape[0]
    s = preset.make_solver("les", members=S * ensemble, seed=seed,
                           **({} if dt is None else {"dt": dt}))
    s.set_vorticity(np.repeat(omega0, ensemble, axis=0))
    if closure != "none":
        kw = dict(diffusion_kw or {}) if closure in DIFFUSION + ("ldm-mean",) else {}
        if closure == "ldm-mean":
            kw = {k: v for k, v in kw.items() if k in ("model", "chunk")}
        if closure not in ("ldm", "ldm-mean"):
            kw.pop("model", None)                   # --ldm-model is for the ldm closures only
        kw.update(dict(options))
        s.set_closure(get_closure(closure, every=every, **kw), every=every)
    return s


def short_term(preset, ref, k0: int, horizon: float, starts: int, ensemble: int, rows: dict,
               seed: int, dt: float | None = None, diffusion_kw: dict | None = None) -> dict:
    times = ref["times"]
    interval = float(times[1] - times[0])
    leads = int(min(round(horizon / interval) + 1, len(times) - 1 - k0))
    truth = ref["omega"][k0:k0 + leads + 1, :starts]                # (lead, S, n, n)
    out = {"lead_time": [interval * j for j in range(leads + 1)], "closures": {}}
    for name, row in rows.items():
        E = ensemble if row[0] in STOCHASTIC else 1
        s = les_ensemble(preset, row, truth[0], E, seed, dt, diffusion_kw)
        per = round(interval / s.dt)
        err, spread, member, member_se, ratio, crps = [0.0], [0.0], [0.0], [0.0], [None], [0.0]
        wall0 = time.perf_counter()
        for j in range(1, leads + 1):
            s.step(per)
            w = np.asarray(s.vorticity, np.float64).reshape(starts, E, *truth.shape[-2:])
            sc = ensemble_metrics(w, truth[j])
            err.append(sc["error_ensemble_mean"])
            spread.append(sc["relative_spread"])
            member.append(sc["error_member"])
            member_se.append(sc["error_member_se"])
            ratio.append(sc["spread_error_ratio"])
            crps.append(sc["crps_relative"])
        wall = time.perf_counter() - wall0
        clo = s.timers["closure"]
        calls = getattr(s.closure, "calls", None) if s.closure is not None else None
        sim_t = leads * per * s.dt
        out["closures"][name] = {
            "ensemble": E, "every": row[1], "error_ensemble_mean": err,
            "error_member_mean": member,
            "error_member_se": member_se, "relative_spread": spread,
            "spread_error_ratio": ratio, "crps_relative": crps,
            "wall_s": wall, "cost_s_per_tu_per_member": wall / sim_t / (starts * E),
            "closure_share": clo / wall if wall > 0 else 0.0,
            "closure_s_per_call_per_member": (clo / calls / (starts * E)) if calls else None}
        print(f"  short-term {name}: error at the horizon {err[-1]:.3f}, "
              f"{wall:.0f} s", flush=True)
    return out


def ensemble_metrics(w: np.ndarray, truth: np.ndarray) -> dict:
    """Scores of ensembles ``w`` (starts, E, n, n) against ``truth`` (starts, n, n), each start an
    independent flow: the relative L2 error ‖ω − ω̄‖/‖ω̄‖ of single members (mean over starts
    and members, and its standard error from the spread over starts) and of the ensemble mean
    (mean over starts); the spread sqrt(Σ var_m ω/Σ ω̄²) (unbiased member variance); the
    spread–error ratio sqrt((E+1)/E · Σ var_m ω / Σ (⟨ω⟩ − ω̄)²), pooled over starts (1 for a
    calibrated ensemble, None for E = 1); the fair CRPS at every point, box and start mean, over
    ⟨|ω̄|⟩ (the mean absolute error for E = 1)."""
    import torch

    from closures.losses import crps_ensemble
    S, E = w.shape[:2]
    norm = (truth ** 2).sum(axis=(1, 2))
    mean = w.mean(axis=1)
    e_mean = np.sqrt(((mean - truth) ** 2).sum(axis=(1, 2)) / norm)
    e_mem = np.sqrt(((w - truth[:, None]) ** 2).sum(axis=(2, 3)) / norm[:, None]).mean(axis=1)
    out = {"error_ensemble_mean": float(e_mean.mean()), "error_member": float(e_mem.mean()),
           "error_member_se": float(e_mem.std(ddof=1) / np.sqrt(S)) if S > 1 else None,
           "relative_spread": 0.0, "spread_error_ratio": None}
    if E > 1:
        var = w.var(axis=1, ddof=1).sum(axis=(1, 2))
        out["relative_spread"] = float(np.sqrt(var / norm).mean())
        out["spread_error_ratio"] = float(np.sqrt((E + 1) / E * var.sum()
                                                  / ((mean - truth) ** 2).sum()))
    samples = torch.from_numpy(np.moveaxis(w, 1, 0).copy())
    crps = float(crps_ensemble(samples, torch.from_numpy(truth)))
    out["crps_relative"] = crps / float(np.abs(truth).mean())
    return out


def member_mean_and_se(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectra (times, members, shells) → the mean over all, and its standard error from the
    spread of the members' time means (members are independent; times within one are not)."""
    per_member = e.mean(axis=0)
    M = per_member.shape[0]
    se = per_member.std(axis=0, ddof=1) / np.sqrt(M) if M > 1 else np.full(e.shape[-1], np.nan)
    return per_member.mean(axis=0), se


def shells_below_cutoff(n: int) -> int:
    return (n - 1) // 3


def long_run(preset, ref, k0: int, members: int, t_end: float, rows: dict, seed: int, grid,
             dt: float | None = None, diffusion_kw: dict | None = None) -> dict:
    """Long LES runs: blow-up, and the steady spectrum against the dataset's."""
    kmax = shells_below_cutoff(grid.n)
    T, M = ref["omega"].shape[:2]
    wh_ref = np.fft.rfft2(ref["omega"].reshape(-1, grid.n, grid.n))
    k, e_ref = diagnostics.energy_spectrum(grid, wh_ref)
    e_ref, se_ref = member_mean_and_se(e_ref[:, :kmax].reshape(T, M, kmax))
    out = {"k": k[:kmax].tolist(), "spectrum_reference": e_ref.tolist(),
           "spectrum_reference_rel_se": (se_ref / e_ref).tolist(), "closures": {}}
    for name, row in rows.items():
        s = les_ensemble(preset, row, ref["omega"][k0, :members], 1, seed, dt, diffusion_kw)
        chunk = round(0.5 / s.dt)
        specs, fields, blew, t_blow = [], [], False, None
        wall0 = time.perf_counter()
        try:
            while s.t < t_end - 0.5 * s.dt:
                s.step(chunk)                  # raises BlowUpError on a non-finite state
                if s.t >= t_end / 5:
                    specs.append(diagnostics.energy_spectrum(
                        grid, np.asarray(s.vorticity_hat))[1][:, :kmax])
                    fields.append(np.asarray(s.vorticity, np.float64))
        except BlowUpError:
            blew, t_blow = True, float(s.t)
        wall = time.perf_counter() - wall0
        rec = {"blew_up": blew, "blow_up_time": t_blow, "simulated": float(s.t), "wall_s": wall}
        if specs:
            e, se = member_mean_and_se(np.asarray(specs))
            rel = e / e_ref - 1
            # standard error of E/E_ref − 1 from both ensembles (members independent)
            rel_se = (e / e_ref) * np.sqrt((se / e) ** 2 + (se_ref / e_ref) ** 2)
            rec.update(spectrum=e.tolist(), spectrum_rel_error=rel.tolist(),
                       spectrum_rel_error_se=rel_se.tolist(),
                       spectrum_max_abs_rel_error=float(np.abs(rel).max()),
                       spectrum_rms_rel_error=float(np.sqrt((rel ** 2).mean())),
                       **pdf_scores(np.moveaxis(np.asarray(fields), 1, 0), ref["omega"]))
        out["closures"][name] = rec
        print(f"  long {name}: blew up {blew}, max spectrum error "
              f"{rec.get('spectrum_max_abs_rel_error', float('nan')):.3f}, {wall:.0f} s",
              flush=True)
    return out


def pdf_scores(w: np.ndarray, w_ref: np.ndarray, bins: int = 60) -> dict:
    """The one-point PDF of ω of a long run ``w`` (members, times, n, n) against the reference's
    (times, members, n, n), on bins fixed from the reference (±5 of its standard deviations):
    the standard deviation and kurtosis relative to the reference's, each ± the standard error
    from the spread of the members' values (members independent, times within one are not), and
    the Hellinger distance H² = ½Σ(√p − √q)² of the pooled PDFs."""
    ref = np.moveaxis(w_ref, 1, 0)                            # (members, times, n, n)

    def stats(x):
        a = x.reshape(x.shape[0], -1)
        a = a - a.mean(axis=1, keepdims=True)
        sd = np.sqrt((a ** 2).mean(axis=1))
        return sd, (a ** 4).mean(axis=1) / sd ** 4

    def mean_se(v):
        return v.mean(), (v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else math.nan)

    sd, ku = stats(w)
    sd_r, ku_r = stats(ref)
    (m_sd, se_sd), (m_sdr, se_sdr) = mean_se(sd), mean_se(sd_r)
    (m_ku, se_ku), (m_kur, se_kur) = mean_se(ku), mean_se(ku_r)
    edges = np.linspace(-5 * m_sdr, 5 * m_sdr, bins + 1)
    p = np.histogram(np.clip(w, edges[0], edges[-1]), edges)[0].astype(float)
    q = np.histogram(np.clip(ref, edges[0], edges[-1]), edges)[0].astype(float)
    h2 = 0.5 * ((np.sqrt(p / p.sum()) - np.sqrt(q / q.sum())) ** 2).sum()
    return {"vorticity_std_ratio": float(m_sd / m_sdr),
            "vorticity_std_ratio_se": float(m_sd / m_sdr * np.hypot(se_sd / m_sd,
                                                                     se_sdr / m_sdr)),
            "vorticity_kurtosis": float(m_ku), "vorticity_kurtosis_se": float(se_ku),
            "vorticity_kurtosis_reference": float(m_kur),
            "vorticity_kurtosis_reference_se": float(se_kur),
            "vorticity_pdf_hellinger": float(np.sqrt(h2))}


def dns_cost(preset, ref, members: int, t: float, seed: int) -> dict:
    cfg = ref["dns_config"]
    s = preset.make_solver("dns", members=members, seed=seed, n=int(cfg["n"]), dt=cfg["dt"])
    s.set_vorticity(preset.initial_vorticity(s))
    s.step(max(1, round(0.05 / s.dt)))
    t0, w0 = s.t, time.perf_counter()
    s.step(max(1, round(t / s.dt)))
    wall = time.perf_counter() - w0
    return {"n": int(cfg["n"]), "dt": float(s.dt), "members": members,
            "cost_s_per_tu_per_member": wall / (s.t - t0) / members}


def figure(short: dict, scales: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in short["closures"].items():
        ax.plot(short["lead_time"], r["error_ensemble_mean"], "o-", ms=3,
                label=f"{name} ({r['ensemble']} member{'s' * (r['ensemble'] > 1)} per start)")
    ax.axvline(scales["decorrelation_time"], color="grey", ls=":", lw=1)
    ax.annotate("t_d", (scales["decorrelation_time"], 0.02), xycoords=("data", "axes fraction"))
    ax.set_xlabel("lead time")
    ax.set_ylabel("relative L2 error of the ensemble mean")
    ax.set_title("kolmogorov LES 64² from held-out filtered-DNS states")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(r: dict) -> str:
    s, lg, sc = r["short_term"], r["long"], r["time_scales"]
    lines = [f"# Online skill of the learned closures ({r['date']}, {r['machine']})", "",
             f"`{r['command']}`", "",
             f"Data: {r['data']} (test block only). "
             f"Starts: {r['starts']} independent filtered-DNS states at t = {r['start_time']:g}; "
             f"decorrelation time t_d = {sc['decorrelation_time']:.2f}, eddy turnover "
             f"T_e = {sc['eddy_turnover']:.2f}, horizon {r['horizon']:.2f}. Closures "
             f"refreshed every {r['every']} steps (rows 'every k': k steps), LES dt "
             f"{r.get('les_dt', 0.005):g}; diffusion closures "
             f"{r.get('diffusion', {})}.", "",
             "Relative L2 error of the ensemble-mean vorticity (mean over starts):", "",
             "| lead | " + " | ".join(s["closures"]) + " |",
             "|---|" + "---|" * len(s["closures"])]
    for j, t in enumerate(s["lead_time"]):
        lines.append(f"| {t:g} | " + " | ".join(f"{c['error_ensemble_mean'][j]:.3f}"
                                               for c in s["closures"].values()) + " |")
    lines += ["", "Relative L2 error of single members, mean over starts and members ± its "
              "standard error over the starts:", "",
              "| lead | " + " | ".join(s["closures"]) + " |",
              "|---|" + "---|" * len(s["closures"])]
    for j, t in enumerate(s["lead_time"][1:], 1):
        lines.append(f"| {t:g} | " + " | ".join(
            f"{c['error_member_mean'][j]:.3f} ± {c['error_member_se'][j] or 0:.3f}"
            for c in s["closures"].values()) + " |")
    lines += ["", "CRPS at every point over ⟨|ω̄|⟩ (for one member: the mean absolute error), and "
              "the spread–error ratio of the ensembles (1 is calibrated):", "",
              "| lead | " + " | ".join(f"CRPS {n}" for n in s["closures"]) + " | "
              + " | ".join(f"spread/error {n}" for n, c in s["closures"].items()
                           if c["ensemble"] > 1) + " |",
              "|---|" + "---|" * (len(s["closures"])
                                  + sum(c["ensemble"] > 1 for c in s["closures"].values()))]
    for j, t in enumerate(s["lead_time"][1:], 1):
        lines.append(f"| {t:g} | " + " | ".join(f"{c['crps_relative'][j]:.3f}"
                                               for c in s["closures"].values()) + " | "
                     + " | ".join(f"{c['spread_error_ratio'][j]:.2f}"
                                  for c in s["closures"].values() if c["ensemble"] > 1) + " |")
    lines += ["", f"Long runs ({r['long_members']} members, {r['long_t']:g} time units) and "
              f"cost (DNS {r['dns']['n']}², dt {r['dns']['dt']:g}: "
              f"{r['dns']['cost_s_per_tu_per_member']:.3g} s per time unit per member):", "",
              "| closure | blew up | spectrum max rel. error | spectrum RMS rel. error | "
              "cost (s / t.u. / member) | speed-up vs DNS | closure share | "
              "closure ms / call / member |", "|---|---|---|---|---|---|---|---|"]
    for name, c in s["closures"].items():
        L = lg["closures"].get(name, {"blew_up": "not run"})
        per_call = c["closure_s_per_call_per_member"]
        lines.append(
            f"| {name} | {L['blew_up']} | {L.get('spectrum_max_abs_rel_error', math.nan):.3f} "
            f"| {L.get('spectrum_rms_rel_error', math.nan):.3f} | "
            f"{c['cost_s_per_tu_per_member']:.3g} | "
            f"{r['dns']['cost_s_per_tu_per_member'] / c['cost_s_per_tu_per_member']:.1f} | "
            f"{c['closure_share']:.0%} | "
            + ("–" if per_call is None else f"{1e3 * per_call:.2f}") + " |")
    names = [n for n, c in lg["closures"].items() if "spectrum_rel_error_se" in c]
    if names:
        lines += ["", "Vorticity PDF of the long runs against the test DNS (filtered): standard "
                  "deviation ratio and kurtosis ± standard errors over members, Hellinger "
                  "distance of the pooled PDFs (60 bins over ±5 reference standard deviations):",
                  "", "| closure | σ/σ_ref | kurtosis (reference "
                  f"{lg['closures'][names[0]]['vorticity_kurtosis_reference']:.2f} ± "
                  f"{lg['closures'][names[0]]['vorticity_kurtosis_reference_se']:.2f}) | "
                  "Hellinger |", "|---|---|---|---|"]
        for n in names:
            c = lg["closures"][n]
            lines.append(f"| {n} | {c['vorticity_std_ratio']:.3f} ± "
                         f"{c['vorticity_std_ratio_se']:.3f} | {c['vorticity_kurtosis']:.2f} ± "
                         f"{c['vorticity_kurtosis_se']:.2f} | {c['vorticity_pdf_hellinger']:.3f} |")
    if names:
        lines += ["", "Energy spectrum by shell, E/E_ref − 1 ± its standard error (from the "
                  "members' time means of both ensembles):", "",
                  "| k | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for j, k in enumerate(lg["k"]):
            lines.append(f"| {k:g} | " + " | ".join(
                f"{lg['closures'][n]['spectrum_rel_error'][j]:+.3f} ± "
                f"{lg['closures'][n]['spectrum_rel_error_se'][j]:.3f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="closure dataset (hybrid generate)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ldm_online"))
    p.add_argument("--closures", default=DEFAULT_CLOSURES,
                   help="comma-separated rows, 'name[@every][/key=value…]' (e.g. "
                        "'slt-closure@10/path=runs/m'); ldm, pcdm, slt-closure without path= use "
                        "the shipped models (skipped if absent; "
                        "pcdm costs ~10× ldm per call)")
    p.add_argument("--long-closures", default=None,
                   help="closures of the long runs (default: --closures)")
    p.add_argument("--start-time", type=float, default=None,
                   help="default: the first held-out time of the shipped L-CDM's card")
    p.add_argument("--starts", type=int, default=4)
    p.add_argument("--ensemble", type=int, default=16)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--long-members", type=int, default=4)
    p.add_argument("--long-t", type=float, default=100.0)
    p.add_argument("--dns-t", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the closures")
    p.add_argument("--les-dt", type=float, default=None,
                   help="LES time step (default: the preset's); e.g. 0.008 runs the LES at the "
                        "Courant number of the dataset's DNS 256² at dt 0.002")
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                   help="precision of the diffusion closures' convolutions")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps of the diffusion closures (default: theirs, 10)")
    p.add_argument("--chunk", type=int, default=None,
                   help="members per network call of the diffusion closures (default: theirs)")
    p.add_argument("--ldm-model", default=None, metavar="STEM",
                   help="weights of the ldm closure (default: the shipped ldm-kolmogorov)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="diffusion closures without their cards' shell gains")
    args = p.parse_args(argv)
    import torch

    from closures.slt.closure_files import read_closure_card
    torch.set_num_threads(args.threads)
    preset = load_preset("kolmogorov")
    ref = reference(args.data)
    try:
        rows = parse_rows(args.closures, args.every)
        long_rows = rows if args.long_closures is None else parse_rows(args.long_closures,
                                                                       args.every)
    except ValueError as e:
        raise SystemExit(str(e))
    if args.start_time is None:                 # the test block: never used for any choice
        if "split_test_from" not in ref["attrs"]:
            raise SystemExit(f"--data {args.data} records no test block (hybrid generate "
                             f"--split); give --start-time")
        args.start_time = float(ref["attrs"]["split_test_from"])
    # no run starts inside the DNS a model was trained or validated on
    for m in sorted(model_names([*rows.values(), *long_rows.values()], args.ldm_model)):
        card_data = read_closure_card(m)["data"]
        if (int(ref["attrs"].get("seed", -1)) == int(card_data["generation"]["seed"])
                and args.start_time <= float(card_data["split"]["val_times"]["last"])):
            raise SystemExit(f"--data {args.data} at t = {args.start_time:g} is inside the DNS "
                             f"model {m} was trained and validated on (seed "
                             f"{card_data['generation']['seed']}); use test data")
    k0 = int(np.argmin(np.abs(ref["times"] - args.start_time)))
    diffusion_kw = {"precision": args.precision}
    for key in ("chunk", "steps"):
        if getattr(args, key) is not None:
            diffusion_kw[key] = getattr(args, key)
    if args.ldm_model is not None:
        diffusion_kw["model"] = args.ldm_model
    if args.no_calibrate:
        diffusion_kw["calibrate"] = False
    les = preset.make_solver("les")
    L = les.grid.L
    scales = time_scales(ref, L, float(preset.dns.get("kf", 4)))
    horizon = scales["decorrelation_time"] + scales["eddy_turnover"]
    print(f"t_d = {scales['decorrelation_time']:.2f}, T_e = {scales['eddy_turnover']:.2f}; "
          f"start t = {ref['times'][k0]:g}", flush=True)
    result = {**run_header("benchmarks.ldm_online", argv),
              "data": str(args.data), "start_time": float(ref["times"][k0]),
              "starts": args.starts, "ensemble": args.ensemble, "every": args.every,
              "long_members": args.long_members, "long_t": args.long_t, "threads": args.threads,
              "les_dt": float(les.dt if args.les_dt is None else args.les_dt),
              "diffusion": diffusion_kw, "time_scales": scales, "horizon": horizon}
    result["short_term"] = short_term(preset, ref, k0, horizon, args.starts, args.ensemble,
                                      rows, args.seed, args.les_dt, diffusion_kw)
    result["long"] = long_run(preset, ref, k0, args.long_members, args.long_t, long_rows,
                              args.seed, les.grid, args.les_dt, diffusion_kw)
    result["dns"] = dns_cost(preset, ref, args.starts * args.ensemble, args.dns_t, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "online.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.out / "online.md").write_text(text)
    figure(result["short_term"], scales, args.out / "online_error.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
