"""Cost of the SLT emulator against the DNS it emulates, per member and simulated time unit.

    python -m benchmarks.slt_cost --out benchmarks/results/slt-betaplane-small/cost

One process, one thread for torch and FFTW (``--threads``), medians of ``--repeats`` timings:

* **betaplane-small**: the shipped ``slt-betaplane-small`` rolling out ``--members`` (1000)
  members together for ``--steps`` saves (10 time units each), as drawn and with ``reencode``
  (decoded latents included), against the preset's DNS (64², dt 0.05) stepping 1 and 16 members
  together; wall seconds per member per time unit and their ratios.
* **betaplane-paper size**: an SLT of the paper's size (256-point U, latent 64, 2 blocks, 16 heads
  of width 4, MLP 128; untrained weights cost the same as trained ones) rolling out ``--members``
  members, against the ``betaplane-paper`` DNS (256², dt 0.04, one member) timed over
  ``--paper-steps`` steps: seconds per saved profile (2500 DNS steps, 100 time units).

Writes ``slt_cost.json`` and ``slt_cost.md``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from closures.slt import SLT, Emulator, load_emulator
from hybrid.config import load_preset
from solvers.files import write_json

from .provenance import run_header


def _median_time(fn, repeats: int) -> float:
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def dns_seconds_per_step(preset: str, members: int, steps: int, repeats: int, threads: int,
                         warm: float, **overrides) -> tuple[float, float]:
    """(median wall seconds per step of ``members`` members together, dt) for the preset's DNS
    after ``warm`` time units from its initial state; ``overrides``: the preset's numbers to
    change (e.g. ``beta=8.0``)."""
    p = load_preset(preset)
    s = p.make_solver("dns", members=members, seed=0, threads=threads, **overrides)
    s.step(max(1, int(round(warm / s.dt))))
    return _median_time(lambda: s.step(steps), repeats) / steps, float(s.dt)


def slt_seconds(em: Emulator, members: int, steps: int, repeats: int, reencode: bool) -> float:
    """Median wall seconds of a rollout of ``members`` members for ``steps`` saves."""
    hist = np.zeros((em.window, em.points)) + np.cos(np.arange(em.points) * 2 * np.pi /
                                                      em.points * 2)[None] * 0.1
    return _median_time(lambda: em.rollout(hist, steps, members, seed=0, reencode=reencode),
                        repeats)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--dns-steps", type=int, default=2000)
    ap.add_argument("--paper-steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    em = load_emulator("slt-betaplane-small", threads=args.threads)
    interval = float(em.card["data"]["interval"])
    r = dict(run_header("benchmarks.slt_cost", argv), threads=args.threads,
             members=args.members, steps=args.steps)
    small = {}
    for reencode in (False, True):
        w = slt_seconds(em, args.members, args.steps, args.repeats, reencode)
        small[f"slt{'_reencode' if reencode else ''}_s_per_member_time_unit"] = \
            w / (args.members * args.steps * interval)
    for m in (1, 16):
        sps, dt = dns_seconds_per_step("betaplane-small", m, args.dns_steps, args.repeats,
                                       args.threads, 100.0)
        small[f"dns_{m}_members_s_per_member_time_unit"] = sps / (m * dt)
    best_dns = min(small["dns_1_members_s_per_member_time_unit"],
                   small["dns_16_members_s_per_member_time_unit"])
    small["speedup"] = best_dns / small["slt_s_per_member_time_unit"]
    small["speedup_reencode"] = best_dns / small["slt_reencode_s_per_member_time_unit"]
    r["betaplane_small"] = small

    torch.manual_seed(0)
    paper = Emulator(SLT(256, latent_points=64, width=64, heads=16, layers=2, hidden=128).eval(),
                     threads=args.threads)
    w = slt_seconds(paper, args.members, args.steps, args.repeats, False)
    sps, dt = dns_seconds_per_step("betaplane-paper", 1, args.paper_steps, args.repeats,
                                   args.threads, 40.0)
    save_steps = int(round(100.0 / dt))
    r["paper_size"] = {"slt_s_per_member_profile": w / (args.members * args.steps),
                       "dns_s_per_profile": sps * save_steps, "dns_steps_per_profile": save_steps,
                       "parameters": int(sum(p.numel() for p in paper.model.parameters()))}
    r["paper_size"]["speedup"] = (r["paper_size"]["dns_s_per_profile"]
                                  / r["paper_size"]["slt_s_per_member_profile"])
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "slt_cost.json", r)
    s, p = r["betaplane_small"], r["paper_size"]
    md = "\n".join([
        f"# SLT cost against DNS ({r['date']}, {r['machine']}, {args.threads} thread)", "",
        f"Command: `{r['command']}`", "",
        "| betaplane-small | s per member per time unit | DNS / this |", "|---|---|---|",
        f"| SLT, {args.members} members, as drawn | {s['slt_s_per_member_time_unit']:.3g} | "
        f"{s['speedup']:.3g} |",
        f"| SLT, {args.members} members, reencode | {s['slt_reencode_s_per_member_time_unit']:.3g}"
        f" | {s['speedup_reencode']:.3g} |",
        f"| DNS 64², 1 member | {s['dns_1_members_s_per_member_time_unit']:.3g} | |",
        f"| DNS 64², 16 members together | {s['dns_16_members_s_per_member_time_unit']:.3g} | |",
        "", f"Paper size (256-point U, latent 64, {p['parameters']} parameters, untrained): "
        f"{p['slt_s_per_member_profile']:.3g} s per member per saved profile with "
        f"{args.members} members; `betaplane-paper` DNS 256²: {p['dns_s_per_profile']:.3g} s per "
        f"saved profile ({p['dns_steps_per_profile']} steps); ratio {p['speedup']:.3g}.", ""])
    (args.out / "slt_cost.md").write_text(md)
    print(md)
    return r


if __name__ == "__main__":
    main()
