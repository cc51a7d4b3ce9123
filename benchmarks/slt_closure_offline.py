"""Offline skill of saved SLT closures on the test block of a closure dataset.

    python -m benchmarks.slt_closure_offline --data data/betaplane-hybrid/test-k10.nc \\
        --models runs/bh/sltc --out benchmarks/results/betaplane-hybrid/slt-closure-offline

For each model, on the complete windows (the model's window L of consecutive pairs; with
``--cold-start`` also the padded ones at the start of each sequence) of ``--split`` (default
test) of ``--data``, read with the model's own normalisation:
:func:`closures.slt.train_closure.closure_metrics` with ``--samples`` draws per window on up to
``--max-windows`` evenly spaced windows: the relative error of the mean of the draws and of one
draw, of the mean network μ alone, the spread/error ratio and the pointwise CRPS (μ alone's mean
absolute error is its CRPS). ``--update-cards`` writes the numbers into each card as
``metrics.test`` (test split only). Writes ``offline.json`` and ``offline.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .provenance import run_header, write_results


def measure(args: argparse.Namespace) -> dict:
    import torch

    from closures.data import ClosureDataset
    from closures.slt.closure_files import load_slt_closure
    from closures.slt.train_closure import closure_metrics
    torch.set_num_threads(args.threads)
    out = {**run_header("benchmarks.slt_closure_offline", args.argv), "data": str(args.data),
           "split": args.split, "models": {}}
    for name in args.models:
        model = load_slt_closure(name)
        data = ClosureDataset(args.data, args.split, stats=model.stats)
        windows = data.windows(model.window, pad=args.cold_start)
        if len(windows) == 0:
            raise SystemExit(f"--data: {args.data} has no {args.split} windows of "
                             f"{model.window} consecutive pairs for {name} (--cold-start pads them)")
        m = closure_metrics(model, data, windows, samples=args.samples,
                            generator=torch.Generator().manual_seed(args.seed),
                            max_windows=args.max_windows)
        out["models"][name] = {"path": name, "window": model.window, **m}
    return out


def markdown(r: dict) -> str:
    lines = [f"`{r['command']}` ({r['date']}, {r['machine']})", "",
             f"{r['split']} windows of `{r['data']}`.", "",
             "| model | windows | rel. error (mean of draws) | one draw | μ alone | spread / error "
             "| CRPS | μ alone's MAE |", "|---|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        lines.append(f"| {name} | {m['windows']} | {m['rel_error']:.3f} | "
                     f"{m['rel_error_single']:.3f} | {m.get('rel_error_mean', float('nan')):.3f} | "
                     f"{m['spread_to_error']:.3f} | {m['crps']:.4g} | "
                     f"{m.get('mae_mean', float('nan')):.4g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="closure dataset (hybrid generate)")
    p.add_argument("--models", required=True, help="comma-separated model stems or names")
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--max-windows", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cold-start", action="store_true",
                   help="also the windows at the start of each sequence, padded as at a cold start")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--update-cards", action="store_true",
                   help="write the test numbers into each card as metrics.test")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.argv = argv
    if not args.data.is_file():
        p.error(f"--data: no closure dataset at {args.data}")
    args.models = [m for m in args.models.split(",") if m]
    r = measure(args)
    write_results(args.out, "offline", r, markdown(r))
    if args.update_cards and args.split == "test":
        from closures.ldm import resolve_model_path, update_card
        from closures.slt.closure_files import read_slt_closure_card
        for name, m in r["models"].items():
            stem = resolve_model_path(name)
            test = {**m, "split": "test", "data": r["data"], "command": r["command"],
                    "date": r["date"]}
            metrics = {**read_slt_closure_card(stem).get("metrics", {}), "test": test}
            update_card(stem, reader=read_slt_closure_card, metrics=metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
