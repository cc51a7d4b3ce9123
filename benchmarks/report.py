"""Ratio table from the newest pytest-benchmark JSON: rhs and step time over the FFT floor.

    python -m benchmarks.report [path/to/benchmark.json]

Writes benchmarks/results/solver_cost.md and prints it. Medians; ratios are within one run.
"""
from __future__ import annotations

import json
import platform
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def newest_json() -> Path:
    files = sorted((ROOT / ".benchmarks").glob("**/*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise SystemExit("no pytest-benchmark JSON under .benchmarks/: run `make bench` first")
    return files[-1]


def solver_table(data: dict) -> str:
    rows = {}
    for b in data["benchmarks"]:
        x = b.get("extra_info", {})
        if "step_over_floor" in x:
            rows[(x["n"], x["members"], x["dtype"])] = x
    cpu = data.get("machine_info", {}).get("cpu", {}).get("brand_raw", platform.processor())
    when = data.get("datetime", str(date.today()))[:10]
    lines = [f"Solver cost vs its FFT floor — {when}, {cpu}, 1 thread; medians of interleaved "
             f"rounds (`make bench`)", "",
             "| n | members | dtype | floor (5 FFTs/member) | rhs | step | rhs / floor | step / floor |",
             "|---|---|---|---|---|---|---|---|"]
    for (n, m, d), r in sorted(rows.items()):
        lines.append(f"| {n} | {m} | {d} | {r['floor']*1e3:.3f} ms | {r['rhs']*1e3:.3f} ms | "
                     f"{r['step']*1e3:.3f} ms | {r['rhs_over_floor']:.2f} | "
                     f"{r['step_over_floor']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else newest_json()
    data = json.loads(path.read_text())
    text = solver_table(data)
    out = ROOT / "benchmarks" / "results" / "solver_cost.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"(from {path}; written to {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
