"""Is one run closer to a reference than another? A paired block bootstrap of the difference and
the ratio of two runs' Hellinger distances to one reference, for the PDFs of U, ∂yU and ∂tU.

    python -m benchmarks.hellinger_difference RUN_A RUN_B REFERENCE --out DIR

H(X, R) is the distance of ``hybrid jets`` (bins fixed from the whole reference, H² =
½ Σ (√p − √q)²). The records of every member of each of the three runs are cut into
``--blocks`` consecutive blocks (per member; each much longer than the flow's memory, so the
blocks are nearly independent), and the histograms of the blocks are resampled with
replacement, the reference's blocks once per resample for both runs (paired: the reference's
own sampling noise is common to both distances). Reported: H(A, R), H(B, R), the difference
H(B) − H(A) and the ratio H(B)/H(A) with percentile 95 % intervals over ``--resamples``
resamples. When the ratio's interval holds both 1 and 1.1, a test of "B within 10 % of A"
cannot be decided with these records.

Writes ``hellinger_difference.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hybrid.jets import read_profiles
from hybrid.jets.statistics import (VARIABLE_LABELS, VARIABLES, fixed_bins,
                                    hellinger_from_probabilities, pdf, variable)

from .provenance import run_header, write_results


def block_histograms(x: np.ndarray, edges: np.ndarray, blocks: int) -> np.ndarray:
    """Counts (members·blocks, bins) of x (member, time, …) on ``edges``: each member's records
    cut into ``blocks`` consecutive blocks."""
    out = []
    for member in x:
        for blk in np.array_split(member, blocks, axis=0):
            out.append(pdf(blk, edges) * blk.size)
    return np.array(out)


def _h(a: np.ndarray, b: np.ndarray) -> float:
    return hellinger_from_probabilities(a.sum(0) / a.sum(), b.sum(0) / b.sum())


def paired_bootstrap(ha: np.ndarray, hb: np.ndarray, hr: np.ndarray, resamples: int = 2000,
                     seed: int = 0) -> dict:
    """H(A, R), H(B, R), H(B) − H(A) and H(B)/H(A) from block histograms (blocks, bins), with
    percentile 95 % intervals; the reference's blocks resampled once per draw for both."""
    rng = np.random.default_rng(seed)
    a, b = _h(ha, hr), _h(hb, hr)
    diff, ratio = [], []
    for _ in range(int(resamples)):
        r = hr[rng.integers(0, len(hr), len(hr))]
        da = _h(ha[rng.integers(0, len(ha), len(ha))], r)
        db = _h(hb[rng.integers(0, len(hb), len(hb))], r)
        diff.append(db - da)
        ratio.append(db / da if da > 0 else np.inf)
    return {"A": a, "B": b, "difference": b - a,
            "difference_95": [float(v) for v in np.percentile(diff, [2.5, 97.5])],
            "ratio": b / a if a > 0 else float("inf"),
            "ratio_95": [float(v) for v in np.percentile(ratio, [2.5, 97.5])]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path, metavar="RUN_A")
    ap.add_argument("run_b", type=Path, metavar="RUN_B")
    ap.add_argument("reference", type=Path, metavar="REFERENCE")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--blocks", type=int, default=5,
                    help="blocks per member of every run (default 5)")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    runs = [read_profiles(p, role) for p, role in ((args.run_a, "RUN_A"), (args.run_b, "RUN_B"),
                                                   (args.reference, "REFERENCE"))]
    r = dict(run_header("benchmarks.hellinger_difference", argv), blocks=args.blocks,
             resamples=args.resamples, runs=[str(p) for p in (args.run_a, args.run_b,
                                                              args.reference)])
    for name in VARIABLES:
        x = [variable(name, d["U"], d["t"], d["L"]) for d in runs]
        edges = fixed_bins(x[2])
        h = [block_histograms(v, edges, args.blocks) for v in x]
        r[name] = paired_bootstrap(*h, resamples=args.resamples, seed=args.seed)
    lines = [f"# Hellinger distances of two runs to one reference ({r['date']}, "
             f"{r['machine']})", "", f"Command: `{r['command']}`", "",
             f"A = `{args.run_a}`, B = `{args.run_b}`, reference `{args.reference}`; "
             f"{args.blocks} blocks per member, {args.resamples} paired resamples.", "",
             "| variable | H(A) | H(B) | H(B) − H(A) [95 %] | H(B)/H(A) [95 %] |",
             "|---|---|---|---|---|"]
    for name in VARIABLES:
        v = r[name]
        lines.append(f"| {VARIABLE_LABELS[name]} | {v['A']:.3f} | {v['B']:.3f} | "
                     f"{v['difference']:+.3f} "
                     f"[{v['difference_95'][0]:+.3f}, {v['difference_95'][1]:+.3f}] | "
                     f"{v['ratio']:.2f} [{v['ratio_95'][0]:.2f}, {v['ratio_95'][1]:.2f}] |")
    write_results(args.out, "hellinger_difference", r, "\n".join(lines) + "\n")
    return r


if __name__ == "__main__":
    main()
