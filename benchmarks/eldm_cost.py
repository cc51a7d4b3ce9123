"""Cost of the latent diffusion ensemble generator against the DNS it replaces, per member and
simulated time unit, timed in one process.

    python -m benchmarks.eldm_cost --conditioning data/betaplane-small/eldm/val/start-1000 \\
        --model ensemble-ldm-betaplane-small-window@steps=10@sampler=dpm2m ... \\
        --out benchmarks/results/ensemble-ldm/cost

One thread for torch and FFTW (``--threads``), medians of ``--repeats`` timings, in this order:
every generator (``NAME[@G][@steps=S][@sampler=M][@centre=none|MEAN]``, as in
:mod:`benchmarks.eldm_ensembles`; centred on its card's ensemble mean by default)
making ``--members`` (1000) members, in its default batches, around member 0 of the
conditioning run (all its records: 51 records, 500 time units for the validation starts), then
the ``betaplane-small`` DNS (64², dt 0.05) stepping 1 and 16 members together
(:func:`benchmarks.slt_cost.dns_seconds_per_step`). The ratio is the faster DNS over the
generator.

Writes ``eldm_cost.json`` and ``eldm_cost.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hybrid.jets import read_profiles

from .eldm_ensembles import generator_for, model_spec
from .provenance import run_header, write_results
from .slt_cost import _median_time, dns_seconds_per_step


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conditioning", type=Path, required=True,
                    help="a run with zonal_mean_u (file or folder); member 0 conditions")
    ap.add_argument("--model", action="append", required=True,
                    help="NAME[@G][@steps=S][@sampler=M]; repeat for more")
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dns-steps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = args.conditioning
    d = read_profiles(path / "trajectory.nc" if path.is_dir() else path)
    U_c, span = d["U"][0], float(d["t"][-1] - d["t"][0])
    r = dict(run_header("benchmarks.eldm_cost", argv), threads=args.threads,
             members=args.members, records=int(U_c.shape[0]), time_units=span, models={})
    for spec in args.model:
        gen, kw, _ = generator_for(*model_spec(spec), args.threads)
        gen.generate(U_c, 8, seed=0, **kw)                                   # warm up
        wall = _median_time(lambda: gen.generate(U_c, args.members, seed=1, **kw),
                            args.repeats)
        r["models"][spec] = {"method": gen.method(kw.get("method")),
                             "batch": gen.default_batch(args.members),
                             "steps": gen.sample_steps(kw.get("steps"), kw.get("method")),
                             "centre": None if gen.mean is None else gen.mean.name,
                             "wall_s": wall,
                             "s_per_member_time_unit": wall / (args.members * span)}
    dns = {}
    for m in (1, 16):
        sps, dt = dns_seconds_per_step("betaplane-small", m, args.dns_steps, args.repeats,
                                       args.threads, 100.0)
        dns[m] = sps / (m * dt)
    r["dns_s_per_member_time_unit"] = {str(m): v for m, v in dns.items()}
    best = min(dns.values())
    for v in r["models"].values():
        v["dns_over_this"] = best / v["s_per_member_time_unit"]
    lines = [f"# Ensemble generator cost against DNS ({r['date']}, {r['machine']}, "
             f"{args.threads} thread)", "", f"Command: `{r['command']}`", "",
             f"{args.members} members in the generator's default batches, {r['records']} records "
             f"({span:g} time units); medians of {args.repeats} timings.", "",
             "| generator | sampler, steps | batch | s per member per time unit | DNS / this |",
             "|---|---|---|---|---|"]
    for spec, v in r["models"].items():
        lines.append(f"| `{spec}` | {v['method']}, {v['steps']} | {v['batch']} | "
                     f"{v['s_per_member_time_unit']:.3g} | {v['dns_over_this']:.0f} |")
    lines += ["", "| DNS betaplane-small 64² | s per member per time unit |", "|---|---|"]
    lines += [f"| {m} member{'s' if m > 1 else ''} together | {v:.3g} |"
              for m, v in dns.items()]
    write_results(args.out, "eldm_cost", r, "\n".join(lines) + "\n")
    return r


if __name__ == "__main__":
    main()
