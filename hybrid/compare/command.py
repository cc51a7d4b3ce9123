"""``hybrid compare RUN REFERENCE``: its arguments, its handler and the headline table it
prints."""
from __future__ import annotations

import math
import sys
from pathlib import Path

from .metrics import compare_runs
from .sources import CompareError

__all__ = ["format_table", "configure_parser", "run_cli"]


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.4g}"


def format_table(metrics: dict) -> str:
    """The headline numbers as a markdown table."""
    h = metrics["headline"]
    rows = [
        ("records compared", h["records_compared"]),
        ("final lead time", h["final_lead_time"]),
        ("relative L2 error of ω at the final lead time, member mean",
         h["relative_l2_final_member_mean"]),
        ("relative L2 error of the ensemble-mean ω at the final lead time",
         h["relative_l2_final_ensemble_mean"]),
        ("relative L2 error of ω, mean over lead times (member mean)",
         h["relative_l2_time_mean_member_mean"]),
        ("energy relative error (steady records)", h["energy_steady_relative_error"]),
        ("enstrophy relative error (steady records)", h["enstrophy_steady_relative_error"]),
        ("spectrum relative RMSE (k below the run's cutoff)", h["spectrum_relative_rmse"]),
        ("spectrum RMSE of log10 E(k) [decades]", h["spectrum_log_rmse_decades"]),
        ("vorticity PDF Hellinger distance", h["pdf_hellinger"]),
        ("vorticity PDF 1-Wasserstein distance", h["pdf_wasserstein1"]),
        ("run wall s per time unit per member", h["run_wall_per_time_per_member_s"]),
        ("reference wall s per time unit per member",
         h["reference_wall_per_time_per_member_s"]),
        ("speed-up per time unit per member (reference / run)",
         h["speedup_per_time_per_member"]),
    ]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {_fmt(v)} |" for name, v in rows]
    return "\n".join(lines)


def configure_parser(p) -> None:
    """Arguments of ``hybrid compare``."""
    from ..cli.arguments import nonnegative_float, number, positive_int
    p.add_argument("run", type=Path, metavar="RUN",
                   help="the run to judge: a run folder (trajectory.nc, run.json) or a trajectory")
    p.add_argument("reference", type=Path, metavar="REFERENCE",
                   help="the reference DNS: run folder or trajectory on the same or a finer grid "
                        "(same box, members and initial conditions)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder for metrics.json and figures (default RUN/compare)")
    p.add_argument("--delta", type=nonnegative_float, default=None,
                   help="width of the Gaussian filter used to coarse-grain the reference "
                        "(default 2·dx of the run grid)")
    p.add_argument("--steady-from", type=number, default=None, metavar="T",
                   help="average spectra and PDFs over records at t ≥ T (default: the last half "
                        "of the common records)")
    p.add_argument("--bins", type=positive_int, default=None,
                   help="number of PDF bins (default: Freedman–Diaconis, 10 … 200)")


def run_cli(args) -> int:
    """Handler of ``hybrid compare``: 0 on success, 2 on bad input (message on stderr)."""
    try:
        metrics = compare_runs(args.run, args.reference, out=args.out, delta=args.delta,
                               steady_from=args.steady_from, bins=args.bins)
    except CompareError as e:
        print(f"hybrid compare: error: {e}", file=sys.stderr)
        return 2
    print(format_table(metrics))
    for w in metrics["warnings"]:
        print(f"hybrid compare: warning: {w}", file=sys.stderr)
    print(f"hybrid compare: wrote metrics.json and {len(metrics['figures'])} figure(s) to "
          f"{metrics['out']}", file=sys.stderr)
    return 0
