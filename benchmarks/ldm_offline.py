"""Offline skill of saved diffusion closures under several sampler settings (steps, ρ, t_start).

    python -m benchmarks.ldm_offline --data data/kolmogorov.nc \
        --models ldm-kolmogorov,pcdm-kolmogorov,runs/train/ldm-two-phase --update-cards

For each model, on the held-out pairs of its own card's split (the last ``val_fraction`` of the
sampling times), :func:`closures.train.offline_metrics` with each sampler setting of
``--settings`` (``steps:rho:t_start``, comma-separated; the first setting should be the closure's
default): the relative error of the mean of ``--samples`` draws, of one draw, of μ(ω̄) alone, and
the spread/error ratio (≈ 0.94 is calibrated for 8 draws: a draw from the right distribution has
error² = spread²·(1 + 1/8) against the mean of 8). The sampler has no trained weights, so this
table is how its settings were chosen (``closures/ldm.py``, "Why ρ = 1 and t_start = 0.3").

``--split val`` (default) scores the validation block: the block sampler settings are chosen on.
``--split test`` scores the test block of ``--data`` (the split the file records, e.g. a file
made by ``hybrid generate --seed 1 --split 0,0,1`` from a DNS no model saw): the numbers to
report. ``--update-cards`` writes the metrics of the default sampler (:data:`closures.ldm.STEPS`,
``T_START``, ``RHO``) into each card and the card's ``sampler``: as ``metrics.offline`` for the
validation block (the metrics measured at the end of training move to
``metrics.offline_at_training``, once), as ``metrics.test`` for the test block.
Writes ``offline.json`` and ``offline.md`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .provenance import run_header

DEFAULT_SETTINGS = "10:1:0.3,10:7:0.4,40:7:0.4,10:1:0.4,5:1:0.3,10:0.5:0.4"


def parse_settings(text: str, flag: str = "--settings") -> list[tuple[int, float, float]]:
    """Comma-separated ``steps:rho:t_start`` items as (steps, ρ, t_start) tuples; SystemExit
    naming ``flag`` for an item that is not one."""
    out = []
    for item in text.split(","):
        try:
            steps, rho, t_start = item.split(":")
            out.append((int(steps), float(rho), float(t_start)))
        except ValueError:
            raise SystemExit(f"{flag}: expected steps:rho:t_start items, got {item!r}")
    return out


def evaluate(stem, data_path: Path, settings, samples: int, seed: int,
             split_name: str = "val") -> dict:
    import torch

    from closures.data import ClosureDataset
    from closures.ldm import load_model, resolve_model_path
    from closures.train import offline_metrics

    path = resolve_model_path(stem)
    model = load_model(path)
    split = model.card["data"]["split"]
    val = ClosureDataset(data_path, split=split_name, val_fraction=split["val_fraction"],
                         gap=split.get("gap", 0), stats=model.stats)
    if split_name == "test" and val.split_source != "file":
        raise SystemExit(f"--split test: {data_path} records no training/validation/test split; "
                         f"make test data with hybrid generate (e.g. another --seed, --split "
                         f"0,0,1)")
    rows = []
    for steps, rho, t_start in settings:
        r = offline_metrics(model, val, samples=samples, steps=steps, t_start=t_start, rho=rho,
                            generator=torch.Generator().manual_seed(seed))
        rows.append(r)
        print(f"  {path.name} steps {steps} ρ {rho:g} t_start {t_start:g}: error "
              f"{r['rel_error']:.3f}, one sample {r['rel_error_single']:.3f}, spread/error "
              f"{r['spread_to_error']:.3f}", flush=True)
    return {"path": str(path), "rows": rows}


def update_card(path: str, metrics: dict, split: str = "val", data: str | None = None) -> None:
    """Write the default sampler's metrics into the card: ``metrics.offline`` for the validation
    block (where sampler settings are chosen), ``metrics.test`` for a test block (with its data)."""
    from closures import ldm
    m = dict(ldm.read_card(path).get("metrics", {}))
    if split == "test":
        m["test"] = dict(metrics, split="test", data=data, note="measured by "
                         "benchmarks/ldm_offline.py --split test with the closure's default "
                         "sampler, on data no choice of the model saw")
    else:
        m.setdefault("offline_at_training", m.get("offline"))
        m["offline"] = dict(metrics, split="val", note="re-measured by benchmarks/ldm_offline.py "
                            "with the closure's default sampler")
    ldm.update_card(path, metrics=m,
                    sampler={"steps": ldm.STEPS, "t_start": ldm.T_START, "rho": ldm.RHO,
                             "start": "sqrt(1 + std(t_start)^2) z"})


def markdown(result: dict) -> str:
    lines = [f"# Offline skill vs sampler settings ({result['date']}, {result['machine']})", "",
             f"`{result['command']}`", ""] + table(result)
    return "\n".join(lines) + "\n"


def table(result: dict) -> list[str]:
    """The markdown table of ``result['models']`` (each model's rows, one per sampler setting):
    relative errors ‖C − Ĉ‖/‖C‖ of the mean of ``result['samples']`` draws, of one draw and of
    μ(ω̄) alone, and the spread/error ratio."""
    lines = ["| model | steps | ρ | t_start | rel. error (mean of "
             f"{result['samples']}) | one sample | μ(ω̄) alone | spread / error |",
             "|---|---|---|---|---|---|---|---|"]
    for name, ev in result["models"].items():
        for r in ev["rows"]:
            mu = r.get("mean_rel_error")
            lines.append(f"| {name} | {r['steps']} | {r['rho']:g} | {r['t_start']:g} | "
                         f"{r['rel_error']:.3f} | {r['rel_error_single']:.3f} | "
                         + ("–" if mu is None else f"{mu:.3f}")
                         + f" | {r['spread_to_error']:.3f} |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="closure dataset (hybrid generate)")
    p.add_argument("--models", default="ldm-kolmogorov,pcdm-kolmogorov",
                   help="comma-separated shipped names or weight stems")
    p.add_argument("--settings", default=DEFAULT_SETTINGS,
                   help=f"steps:rho:t_start items (default {DEFAULT_SETTINGS})")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="block of --data to score: val (choosing settings) or test (reporting)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ldm_offline"))
    p.add_argument("--update-cards", action="store_true",
                   help="write the default sampler's metrics into each model's card")
    args = p.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"--data: no closure dataset at {args.data}")
    settings = parse_settings(args.settings)
    import torch

    from closures.ldm import RHO, STEPS, T_START
    torch.set_num_threads(args.threads)
    if args.update_cards and settings[0] != (STEPS, RHO, T_START):
        raise SystemExit(f"--update-cards: the first setting must be the default "
                         f"{STEPS}:{RHO:g}:{T_START:g}")
    result = {**run_header("benchmarks.ldm_offline", argv),
              "data": str(args.data), "samples": args.samples, "models": {}}
    for stem in [m for m in args.models.split(",") if m]:
        ev = evaluate(stem, args.data, settings, args.samples, args.seed, args.split)
        result["models"][Path(stem).name] = ev
        if args.update_cards:
            update_card(ev["path"], ev["rows"][0], args.split, str(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "offline.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.out / "offline.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
