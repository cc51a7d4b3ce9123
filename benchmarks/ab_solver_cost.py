"""A/B solver cost of two checkouts, in alternating processes (the machines here are shared and
drift within minutes, so one checkout measured after the other would compare two machines).

    python -m benchmarks.ab_solver_cost OLD_CHECKOUT [NEW_CHECKOUT] [--cases n256-M1-float64 ...]
                                        [--rounds 6]

Each round runs each checkout's own ``benchmarks/test_bench_solvers.py`` (its own floor, rhs and
step: the ratios are within one process) for the cases, old then new, alternating which goes
first; prints per case the medians over rounds of rhs/floor and step/floor, and each round's values.
``NEW_CHECKOUT`` defaults to this one. Both run with this interpreter and ``PYTHONPATH`` set to the
checkout, so each imports its own ``solvers``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def run_checkout(checkout: Path, cases: list[str]) -> dict[str, dict]:
    """extra_info per case id of one pytest-benchmark run of ``checkout``'s solver benchmark."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "benchmarks/test_bench_solvers.py", "-k", " or ".join(cases),
               f"--benchmark-json={out}"]
        env = dict(os.environ, PYTHONPATH=str(checkout))
        r = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"benchmark failed in {checkout}:\n{r.stdout[-3000:]}"
                             f"{r.stderr[-3000:]}")
        data = json.loads(out.read_text())
    return {b["name"].split("[", 1)[1].rstrip("]"): b["extra_info"] for b in data["benchmarks"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path, nargs="?", default=ROOT)
    ap.add_argument("--cases", nargs="+", default=["n256-M1-float64"])
    ap.add_argument("--rounds", type=int, default=6)
    a = ap.parse_args(argv)
    sides = {"old": a.old.resolve(), "new": a.new.resolve()}
    got: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(a.rounds):
        order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
        for side in order:
            got[side].append(run_checkout(sides[side], a.cases))
        last = {side: got[side][-1] for side in ("old", "new")}
        print(f"round {r + 1}: " + "; ".join(
            f"{side} {c} rhs/floor {last[side][c]['rhs_over_floor']:.3f} step/floor "
            f"{last[side][c]['step_over_floor']:.3f}" for c in a.cases for side in last),
            flush=True)
    for c in a.cases:
        for side in ("old", "new"):
            rows = [g[c] for g in got[side]]
            med = {k: float(np.median([x[k] for x in rows]))
                   for k in ("floor", "rhs", "step", "rhs_over_floor", "step_over_floor")}
            print(f"{c} {side} ({sides[side]}): floor {med['floor'] * 1e3:.3f} ms, rhs "
                  f"{med['rhs'] * 1e3:.3f} ms, step {med['step'] * 1e3:.3f} ms; rhs/floor "
                  f"{med['rhs_over_floor']:.3f}, step/floor {med['step_over_floor']:.3f} "
                  f"(medians of {len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
