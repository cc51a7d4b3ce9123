"""Online skill and cost of the diffusion closures on ``kolmogorov`` LES 64² (issue 4's targets).

    python -m benchmarks.ldm_online --data data/kolmogorov.nc --out benchmarks/results/ldm_online

The reference is the closure dataset itself (``hybrid generate``): its ω̄ records are the
filtered DNS (Gaussian Δ = 2·dx_LES, truncated to the LES grid) every ``interval`` time units, for
each DNS member. Nothing here was seen in training when the run starts at the first held-out
sampling time of the model's card (the default).

1. **Short-term skill.** From the filtered DNS state of ``starts`` DNS members at the start time,
   an LES ensemble of ``ensemble`` members per start (stochastic closures; deterministic ones need
   one) runs with each closure (none, Smagorinsky, the L-CDM, the P-CDM when shipped) refreshed
   every ``every`` steps. At every record time: the relative L2 error of the ensemble-mean
   vorticity against the filtered DNS, ‖⟨ω⟩ − ω̄_ref‖/‖ω̄_ref‖, averaged over the starts; also the
   mean over members of each member's own error, and the ensemble spread relative to ‖ω̄_ref‖.
   The horizon is the decorrelation time t_d of the filtered DNS (its anomaly autocorrelation
   ⟨ω'(t)ω'(t+τ)⟩/⟨ω'²⟩, ω' = ω̄ minus its time and member mean, first drops below 1/e) plus one
   large-eddy turnover time T_e = (L/k_f)/u_rms, both measured from the dataset.
2. **Long run.** ``long_members`` members from the start states run ``long_t`` time units with
   each closure; blow-up (non-finite state) is reported. The isotropic energy spectrum averaged
   over t ≥ ``long_t``/5 and over members is compared shell by shell, for shells below the LES
   cutoff, with the spectrum of all the dataset's ω̄: max and RMS of |E/E_ref − 1|, and per
   shell E/E_ref − 1 with its standard error (from the spread of the members' time means, in
   the LES and in the dataset).
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


def les_ensemble(preset, closure: str, omega0: np.ndarray, ensemble: int, every: int,
                 seed: int, dt: float | None = None, diffusion_kw: dict | None = None):
    """A batched LES: each start state repeated ``ensemble`` times, the closure set
    (``diffusion_kw``: extra arguments of the diffusion closures, e.g. precision, chunk)."""
    S = omega0.shape[0]
    s = preset.make_solver("les", members=S * ensemble, seed=seed,
                           **({} if dt is None else {"dt": dt}))
    s.set_vorticity(np.repeat(omega0, ensemble, axis=0))
    if closure != "none":
        kw = dict(diffusion_kw or {}) if closure in DIFFUSION else {}
        if closure != "ldm":
            kw.pop("model", None)                   # --ldm-model is for the ldm closure only
        s.set_closure(get_closure(closure, every=every, **kw), every=every)
    return s


def short_term(preset, ref, k0: int, horizon: float, starts: int, ensemble: int, every: int,
               closures, seed: int, dt: float | None = None,
               diffusion_kw: dict | None = None) -> dict:
    times = ref["times"]
    interval = float(times[1] - times[0])
    leads = int(min(round(horizon / interval) + 1, len(times) - 1 - k0))
    truth = ref["omega"][k0:k0 + leads + 1, :starts]                # (lead, S, n, n)
    out = {"lead_time": [interval * j for j in range(leads + 1)], "closures": {}}
    for name in closures:
        E = ensemble if name in DIFFUSION else 1
        s = les_ensemble(preset, name, truth[0], E, every, seed, dt, diffusion_kw)
        per = round(interval / s.dt)
        err, spread, member = [0.0], [0.0], [0.0]
        wall0 = time.perf_counter()
        for j in range(1, leads + 1):
            s.step(per)
            w = np.asarray(s.vorticity).reshape(starts, E, *truth.shape[-2:])
            mean = w.mean(axis=1)
            ref_j = truth[j]
            e = np.sqrt(((mean - ref_j) ** 2).sum(axis=(1, 2)) / (ref_j ** 2).sum(axis=(1, 2)))
            err.append(float(e.mean()))
            spread.append(float(np.sqrt(w.var(axis=1).sum(axis=(1, 2))
                                        / (ref_j ** 2).sum(axis=(1, 2))).mean()))
            member.append(float(np.sqrt(((w - ref_j[:, None]) ** 2).sum(axis=(2, 3))
                                        / (ref_j ** 2).sum(axis=(1, 2))[:, None]).mean()))
        wall = time.perf_counter() - wall0
        clo = s.timers["closure"]
        calls = getattr(s.closure, "calls", None) if s.closure is not None else None
        sim_t = leads * per * s.dt
        out["closures"][name] = {
            "ensemble": E, "error_ensemble_mean": err, "error_member_mean": member,
            "relative_spread": spread,
            "wall_s": wall, "cost_s_per_tu_per_member": wall / sim_t / (starts * E),
            "closure_share": clo / wall if wall > 0 else 0.0,
            "closure_s_per_call_per_member": (clo / calls / (starts * E)) if calls else None}
        print(f"  short-term {name}: error at the horizon {err[-1]:.3f}, "
              f"{wall:.0f} s", flush=True)
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


def long_run(preset, ref, k0: int, members: int, t_end: float, every: int, closures,
             seed: int, grid, dt: float | None = None, diffusion_kw: dict | None = None) -> dict:
    """Long LES runs: blow-up, and the steady spectrum against the dataset's."""
    kmax = shells_below_cutoff(grid.n)
    T, M = ref["omega"].shape[:2]
    wh_ref = np.fft.rfft2(ref["omega"].reshape(-1, grid.n, grid.n))
    k, e_ref = diagnostics.energy_spectrum(grid, wh_ref)
    e_ref, se_ref = member_mean_and_se(e_ref[:, :kmax].reshape(T, M, kmax))
    out = {"k": k[:kmax].tolist(), "spectrum_reference": e_ref.tolist(),
           "spectrum_reference_rel_se": (se_ref / e_ref).tolist(), "closures": {}}
    for name in closures:
        s = les_ensemble(preset, name, ref["omega"][k0, :members], 1, every, seed, dt,
                         diffusion_kw)
        chunk = round(0.5 / s.dt)
        specs, blew, t_blow = [], False, None
        wall0 = time.perf_counter()
        try:
            while s.t < t_end - 0.5 * s.dt:
                s.step(chunk)                  # raises BlowUpError on a non-finite state
                if s.t >= t_end / 5:
                    specs.append(diagnostics.energy_spectrum(
                        grid, np.asarray(s.vorticity_hat))[1][:, :kmax])
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
                       spectrum_rms_rel_error=float(np.sqrt((rel ** 2).mean())))
        out["closures"][name] = rec
        print(f"  long {name}: blew up {blew}, max spectrum error "
              f"{rec.get('spectrum_max_abs_rel_error', float('nan')):.3f}, {wall:.0f} s",
              flush=True)
    return out


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
    lines = [f"# Online skill of the diffusion closures ({r['date']}, {r['machine']})", "",
             f"`{r['command']}`", "",
             f"Starts: {r['starts']} held-out filtered-DNS states at t = {r['start_time']:g}; "
             f"decorrelation time t_d = {sc['decorrelation_time']:.2f}, eddy turnover "
             f"T_e = {sc['eddy_turnover']:.2f}, horizon {r['horizon']:.2f}. Every "
             f"{r['every']} steps, LES dt {r.get('les_dt', 0.005):g}; diffusion closures "
             f"{r.get('diffusion', {})}.", "",
             "Relative L2 error of the ensemble-mean vorticity (mean over starts):", "",
             "| lead | " + " | ".join(s["closures"]) + " |",
             "|---|" + "---|" * len(s["closures"])]
    for j, t in enumerate(s["lead_time"]):
        lines.append(f"| {t:g} | " + " | ".join(f"{c['error_ensemble_mean'][j]:.3f}"
                                               for c in s["closures"].values()) + " |")
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
    p.add_argument("--closures", default="none,smagorinsky,ldm",
                   help="comma-separated; ldm/pcdm use the shipped models (skipped if absent; "
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

    from closures.ldm import WEIGHTS_DIR, read_card
    torch.set_num_threads(args.threads)
    preset = load_preset("kolmogorov")
    ref = reference(args.data)
    names = [c for c in args.closures.split(",") if c]
    shipped = {"ldm": "ldm-kolmogorov", "pcdm": "pcdm-kolmogorov"}
    names = [c for c in names if c not in shipped
             or (WEIGHTS_DIR / f"{shipped[c]}.json").exists()]
    if args.start_time is None:
        card = read_card(WEIGHTS_DIR / shipped["ldm"])
        args.start_time = float(card["data"]["split"]["val_times"]["first"])
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
                                      args.every, names, args.seed, args.les_dt, diffusion_kw)
    long_names = names if args.long_closures is None else [
        c for c in args.long_closures.split(",") if c]
    result["long"] = long_run(preset, ref, k0, args.long_members, args.long_t, args.every,
                              long_names, args.seed, les.grid, args.les_dt, diffusion_kw)
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
