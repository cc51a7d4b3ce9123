"""``hybrid bench``: its arguments and its handler."""
from __future__ import annotations

from pathlib import Path

from .config import DEFAULT_ROWS, ReportConfig
from .runs import build_report
from .table import format_report

__all__ = ["configure", "handler"]


def configure(p) -> None:
    p.add_argument("--size", choices=("demo", "default"), default="default",
                   help="demo: DNS 256², 2 members, 2+2 time units (about two minutes); default: "
                        "DNS 256² and 512², 4 members, 5+5 time units")
    p.add_argument("--out", default="benchmarks/results",
                   help="folder for report.md, report.json, cost_vs_error.png and runs/")
    p.add_argument("--members", type=int, default=None, help="ensemble size (default: the size's)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the DNS initial fields (default 1; not the seed of a shipped "
                        "model's training data)")
    p.add_argument("--ensemble-members", type=int, default=None,
                   help="members of the one-start ensembles of the stochastic closures (default: "
                        "the size's, 16; demo 8)")
    p.add_argument("--rows", default=None, metavar="ROW,ROW,...",
                   help="LES rows, each 'closure[@every][/key=value...]' (default: the size's, "
                        f"for default {','.join(DEFAULT_ROWS)})")
    p.add_argument("--no-progress", action="store_true")


def handler(args) -> int:
    cfg = ReportConfig.size(args.size)
    if args.members is not None:
        if args.members < 1:
            print("hybrid bench: --members must be ≥ 1", flush=True)
            return 2
        cfg.members = args.members
    if args.seed is not None:
        cfg.seed = args.seed
    if args.ensemble_members is not None:
        cfg.ensemble_members = args.ensemble_members
    if args.rows is not None:
        cfg.closures = tuple(r for r in args.rows.split(",") if r)
    try:
        cfg.check()
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a folder")
    except ValueError as e:
        print(f"hybrid bench: {e}", flush=True)
        return 2
    report = build_report(cfg, out, progress=not args.no_progress)
    print(format_report(report))
    print(f"written: {out / 'report.md'}, {out / 'report.json'}, {out / 'cost_vs_error.png'}")
    return 0
