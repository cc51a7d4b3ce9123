"""Zonal jets of two runs in boxes of different size at the same grid spacing: how far one box's
statistics are from another's, the floor against which an emulator run in a longer box than it
was trained on is judged (``hybrid jets`` compares runs of one box only).

    python -m benchmarks.jets_across_boxes data/betaplane-small/test data/betaplane-box2/test \
        --t-max 20750 --out benchmarks/results/slt-local/dns-64-as-model-of-128.json

For RUN (the records up to ``--t-max``) against REFERENCE: the Hellinger distances of the PDFs of
U, ∂yU and ∂tU on bins fixed from the reference (``hybrid.jets.statistics``, each run's
derivatives in its own box), the mean jet number per box length of each (``hybrid.jets``'s count,
k_s = k_f/2 of each run's configuration) and the zonal energy ½⟨U²⟩ of each.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hybrid.jets import counting, statistics
from hybrid.jets.report import read_profiles

from .provenance import run_header
from solvers.files import write_json


def summary(src: dict) -> dict:
    """Mean jet number, its count per 2π of box length, and the zonal energy of a run."""
    U = src["U"].reshape(-1, src["U"].shape[-1])
    cfg = src["config"]
    kf = cfg.get("kf", (cfg.get("source") or {}).get("kf"))   # a DNS's, or an emulation's source
    k_s = 0.5 * float(kf)                                      # k_f/2, in units of 2π/L
    jets = float(np.mean(counting.count_jets(U, src["L"], k_s)))
    return {"L": src["L"], "points": int(U.shape[-1]), "mean_jets": jets,
            "jets_per_2pi": jets * 2 * np.pi / src["L"],
            "energy": float(np.mean(statistics.zonal_energy(src["U"])))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("reference", type=Path)
    p.add_argument("--t-max", type=float, default=None, help="last time of RUN used")
    p.add_argument("--out", type=Path, required=True, help="the JSON written")
    args = p.parse_args(argv)
    run, ref = read_profiles(args.run), read_profiles(args.reference, "REFERENCE")
    if args.t_max is not None:
        keep = run["t"] <= args.t_max
        run = {**run, "U": run["U"][:, keep], "t": run["t"][keep]}
    dy_run, dy_ref = run["L"] / run["U"].shape[-1], ref["L"] / ref["U"].shape[-1]
    if not np.isclose(dy_run, dy_ref, rtol=1e-6):
        p.error(f"the runs have grid spacings {dy_run:g} and {dy_ref:g}; this compares boxes "
                f"at one spacing")
    hellinger = {}
    for name in statistics.VARIABLES:
        a = statistics.variable(name, run["U"], run["t"], run["L"])
        b = statistics.variable(name, ref["U"], ref["t"], ref["L"])
        edges = statistics.fixed_bins(b)
        hellinger[name] = statistics.hellinger_from_probabilities(statistics.pdf(a, edges),
                                                                  statistics.pdf(b, edges))
    out = {**run_header("benchmarks.jets_across_boxes", argv), "run": str(args.run),
           "reference": str(args.reference), "hellinger": hellinger,
           "run_summary": summary(run), "reference_summary": summary(ref)}
    write_json(args.out, out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
