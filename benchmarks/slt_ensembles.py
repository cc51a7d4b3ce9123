"""Ensembles from one state: an SLT against DNS ensembles of ``betaplane-small``, and the time to
the next jet merging or nucleation.

    python -m benchmarks.slt_ensembles dns   --source data/betaplane-small/starts \\
        --out data/betaplane-small/ensembles
    python -m benchmarks.slt_ensembles score --dns data/betaplane-small/ensembles \\
        --model slt-betaplane-small [--reencode | --no-reencode] [--noise-memory RHO] \\
        [--spread-gain G] [--no-events] \\
        --out benchmarks/results/slt-betaplane-small/ensembles

The source is a DNS recorded in full (``hybrid dns betaplane-small --record full --every 10
--seed 13 --t-end 30000``), never used to train or choose a model. From it:

* **short range**: ``--starts`` (16) states evenly spaced in time; from each a DNS ensemble of
  ``--members`` (16) members with new forcing noise (``hybrid dns --init --at --members --seed``)
  and an SLT ensemble of as many members from the L records ending at the start, both for
  ``--horizon`` (50) saves. The truth is the source run itself (a draw from the same law as the
  DNS members). Scores per lead pooled over starts (:func:`hybrid.jets.pool_scores`): CRPS and
  its parts, spread–error ratio, rank histogram.
* **events**: for every merging and nucleation of the source run (jet count and persistence rule
  of :mod:`hybrid.jets.counting`, defaults of ``hybrid jets``), the state ``--lead`` time units
  before it; a DNS ensemble of ``--event-members`` (64) and an SLT ensemble of
  ``--slt-event-members`` (10 000) run ``--event-horizon`` time units; per member the time from
  the start to its first event of the same kind (:func:`hybrid.jets.first_events`), compared by
  quantiles, the fraction with an event in the horizon and the two-sample Kolmogorov–Smirnov test.

The SLT is rolled out as its card says (``training.reencode``) unless ``--reencode`` or
``--no-reencode`` is given. ``dns`` skips ensembles whose folder already holds a finished run,
so it resumes. Writes
``plan.json`` (with the DNS) and ``ensembles.json`` / ``ensembles.md`` (with the scores).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hybrid.jets import (count_jets, events, first_events, ks_two_sample, pool_scores,
                         read_profiles, time_to_event)
from hybrid.jets.scores import ensemble_scores
from solvers.files import write_json

from .provenance import run_header

K_S, PERSIST, PROMINENCE = 4.0, 125.0, 0.1        # hybrid jets' defaults for betaplane-small


def plan(source: Path, starts: int, horizon: int, lead: float, event_horizon: float) -> dict:
    """Start times of the short-range and event ensembles in the source run."""
    d = read_profiles(source / "trajectory.nc")
    t, U, L = d["t"], d["U"], d["L"]
    dt = float(np.median(np.diff(t)))
    first, last = t[0] + 20 * dt, t[-1] - horizon * dt
    short = [float(t[np.argmin(np.abs(t - x))]) for x in np.linspace(first, last, starts)]
    ev = events(count_jets(U, L, K_S, PROMINENCE), t, PERSIST)
    ev_starts = []
    for e in ev:
        at = float(t[np.argmin(np.abs(t - (e["t"] - lead)))])
        if at - t[0] >= 20 * dt:
            ev_starts.append(dict(kind=e["kind"], event_t=e["t"], at=at,
                                  before=e["before"], after=e["after"]))
    return dict(source=str(source), save_interval=dt, horizon_saves=horizon, lead=lead,
                event_horizon=event_horizon, short=short, events=ev_starts)


def run_dns(source: Path, out: Path, at: float, members: int, seed: int, t_end: float) -> None:
    """One ``hybrid dns`` ensemble from the source's state at ``at`` (skipped when done)."""
    if (out / "run.json").is_file() and (out / "trajectory.nc").is_file():
        return
    cmd = [str(Path(sys.executable).with_name("hybrid")), "dns", "betaplane-small",
           "--init", str(source / "trajectory.nc"), "--at", repr(at), "--members", str(members),
           "--seed", str(seed), "--t-end", repr(t_end), "--record", "zonal-mean", "--every",
           "10", "--threads", "1", "--overwrite", "--out", str(out)]
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def dns_stage(args) -> None:
    p = plan(args.source, args.starts, args.horizon, args.lead, args.event_horizon)
    p.update(members=args.members, event_members=args.event_members)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "plan.json", p)
    for i, at in enumerate(p["short"]):
        run_dns(args.source, args.out / f"short-{i:02d}", at, args.members, 1000 + i,
                p["horizon_saves"] * p["save_interval"])
    for i, e in enumerate(p["events"]):
        run_dns(args.source, args.out / f"event-{i:02d}", e["at"], args.event_members, 2000 + i,
                args.event_horizon)


def _history(src: dict, at: float, window: int) -> np.ndarray:
    i = int(np.argmin(np.abs(src["t"] - at)))
    return src["U"][0, i - window + 1:i + 1]


def _truth(src: dict, at: float, steps: int) -> np.ndarray:
    i = int(np.argmin(np.abs(src["t"] - at)))
    return src["U"][0, i:i + steps + 1]


def _slt(em, hist, steps, members, seed, reencode, batch=2000) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    U = em.rollout(hist, steps, members, seed=seed, batch=min(batch, members), reencode=reencode)
    wall = time.perf_counter() - t0
    return np.concatenate([np.broadcast_to(hist[-1], (members, 1, hist.shape[1])), U], 1), wall


def flatness_interval(v: dict) -> str:
    """One statistic of :func:`hybrid.jets.rank_flatness` as '+0.018 [−0.243, +0.301]'."""
    return f"{v['value']:+.3f} [{v['interval_95'][0]:+.3f}, {v['interval_95'][1]:+.3f}]"


def _flat(pooled: dict) -> str:
    f = pooled.get("rank_flatness")
    if not f:
        return "n/a"
    cell = "; ".join(f"{k} {flatness_interval(v)}" for k, v in f.items() if k != "flat")
    return f"{'yes' if f['flat'] else 'no'} ({cell})"


def _lists(d: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def score_stage(args) -> None:
    from closures.slt import load_emulator
    import json
    p = json.loads((args.dns / "plan.json").read_text())
    src = read_profiles(Path(p["source"]) / "trajectory.nc")
    L = src["L"]
    em = load_emulator(args.model, threads=args.threads, noise_memory=args.noise_memory,
                       spread_gain=args.spread_gain)
    steps = p["horizon_saves"]
    res_slt, res_dns, walls = [], [], []
    for i, at in enumerate(p["short"]):
        truth = _truth(src, at, steps)
        dns = read_profiles(args.dns / f"short-{i:02d}" / "trajectory.nc")["U"][:, :steps + 1]
        slt, w = _slt(em, _history(src, at, em.window), steps, dns.shape[0], 3000 + i,
                      args.reencode)
        walls.append(w)
        lead = np.arange(steps + 1) * p["save_interval"]
        res_dns.append(ensemble_scores(dns, truth, lead, seed=i))
        res_slt.append(ensemble_scores(slt, truth, lead, seed=i))
    pooled = {"dns": _lists(pool_scores(res_dns)), "slt": _lists(pool_scores(res_slt))}
    ratio = np.asarray(pooled["slt"]["crps"][1:]) / np.asarray(pooled["dns"]["crps"][1:])
    short = dict(starts=len(p["short"]), members=p["members"], pooled=pooled,
                 crps_ratio_slt_to_dns=ratio.tolist(), crps_ratio_max=float(ratio.max()),
                 crps_ratio_mean=float(ratio.mean()))

    ev_out = []
    ev_steps = int(round(p["event_horizon"] / p["save_interval"]))
    for i, e in enumerate(p["events"] if args.events else []):
        dns = read_profiles(args.dns / f"event-{i:02d}" / "trajectory.nc")
        Ud, td = dns["U"], dns["t"]
        slt, w = _slt(em, _history(src, e["at"], em.window), ev_steps, args.slt_event_members,
                      4000 + i, args.reencode)
        ts = e["at"] + np.arange(ev_steps + 1) * p["save_interval"]
        fd = first_events(count_jets(Ud, L, K_S, PROMINENCE), td, PERSIST, e["kind"])
        fs = first_events(count_jets(slt, L, K_S, PROMINENCE), ts, PERSIST, e["kind"])
        D, pval = ks_two_sample(fd, fs)
        ev_out.append(dict(e, dns=time_to_event(fd), slt=time_to_event(fs),
                           dns_fraction=float(np.isfinite(fd).mean()),
                           slt_fraction=float(np.isfinite(fs).mean()),
                           ks_D=D, ks_p=pval, slt_wall_s=w,
                           source_time_to_event=e["event_t"] - e["at"]))
    out = dict(run_header("benchmarks.slt_ensembles", None), model=args.model,
               reencode=em.reencode if args.reencode is None else args.reencode, plan=p, short_range=short, events=ev_out,
               slt_short_wall_s=float(np.sum(walls)))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "ensembles.json", out)
    (args.out / "ensembles.md").write_text(markdown(out))
    print(markdown(out))


def markdown(r: dict) -> str:
    s = r["short_range"]
    d, m = s["pooled"]["dns"], s["pooled"]["slt"]
    lead = d["lead_time"]
    rows = ["| lead | CRPS DNS | CRPS SLT | SLT/DNS | spread/error DNS | spread/error SLT |",
            "|---|---|---|---|---|---|"]
    for j in [1, 2, 5, 10, 20, 30, 40, len(lead) - 1]:
        if j < len(lead):
            rows.append(f"| {lead[j]:g} | {d['crps'][j]:.4g} | {m['crps'][j]:.4g} | "
                        f"{m['crps'][j] / d['crps'][j]:.3g} | {d['spread_error_ratio'][j]:.3g} |"
                        f" {m['spread_error_ratio'][j]:.3g} |")
    text = [f"# SLT `{r['model']}`{' (reencode)' if r['reencode'] else ''} against DNS "
            f"ensembles", "", f"Command: `{r['command']}`", "",
            f"## Short range: {s['starts']} starts × {s['members']} members", "", *rows, "",
            f"CRPS ratio SLT/DNS over leads: mean {s['crps_ratio_mean']:.3g}, max "
            f"{s['crps_ratio_max']:.3g}. Spread/error over all leads: DNS "
            f"{d['spread_error_ratio_all']:.3g}, SLT {m['spread_error_ratio_all']:.3g}. "
            f"Rank histogram χ² p: DNS {d['rank_histogram_p']:.3g}, SLT "
            f"{m['rank_histogram_p']:.3g} (ranks are correlated across y and lead, so p is "
            f"too small for both). Flat within sampling (hybrid.jets.rank_flatness, starts "
            f"resampled): DNS {_flat(d)}, SLT {_flat(m)}.", "",
            "## Time to the next event", "",
            "| kind | start | source's time | DNS: with event | DNS median | SLT: with event "
            "| SLT median | KS D | KS p |", "|---|---|---|---|---|---|---|---|---|"]
    for e in r["events"]:
        def med(x):
            return f"{x['quantiles']['0.5']:.0f}" if x["quantiles"] else "–"
        text.append(f"| {e['kind']} | {e['at']:.0f} | {e['source_time_to_event']:.0f} | "
                    f"{e['dns_fraction']:.2f} of {e['dns']['members']} | {med(e['dns'])} | "
                    f"{e['slt_fraction']:.2f} of {e['slt']['members']} | {med(e['slt'])} | "
                    f"{e['ks_D']:.2f} | {_g(e['ks_p'])} |")
    return "\n".join(text) + "\n"


def _g(p) -> str:
    return "–" if p is None else format(p, ".2g")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    a = sub.add_parser("dns")
    a.add_argument("--source", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--starts", type=int, default=16)
    a.add_argument("--members", type=int, default=16)
    a.add_argument("--horizon", type=int, default=50)
    a.add_argument("--lead", type=float, default=100.0)
    a.add_argument("--event-members", type=int, default=64)
    a.add_argument("--event-horizon", type=float, default=1000.0)
    b = sub.add_parser("score")
    b.add_argument("--dns", type=Path, required=True)
    b.add_argument("--model", required=True)
    b.add_argument("--reencode", action=argparse.BooleanOptionalAction, default=None,
                   help="decode and encode every new latent (default: the model card's)")
    b.add_argument("--events", action=argparse.BooleanOptionalAction, default=True,
                   help="score the times to the next event too (--no-events: short range only)")
    b.add_argument("--slt-event-members", type=int, default=10000)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--noise-memory", type=float, default=None,
                   help="the emulator's noise memory ρ (default: the card's, else 0)")
    b.add_argument("--spread-gain", type=float, default=None,
                   help="the emulator's spread gain g (default: the card's, else 1)")
    b.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    (dns_stage if args.stage == "dns" else score_stage)(args)


if __name__ == "__main__":
    main()
