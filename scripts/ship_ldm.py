"""Ship a trained closure: copy STEM.{pt,json,log.jsonl} to closures/weights/NAME.*.

    python scripts/ship_ldm.py runs/unitbox/ldm-joint ldm-unitbox \
        --test benchmarks/results/unitbox/offline/offline.json
    python scripts/ship_ldm.py runs/bh/sltc slt-closure-betaplane --kind slt-closure

``--kind``: ``ldm`` (default; the diffusion closures) or ``slt-closure`` (its card keeps the
``metrics.test`` that ``python -m benchmarks.slt_closure_offline --update-cards`` wrote).

The card keeps the training ``command`` as it was run and gains ``name`` = NAME, ``trained_as``
(the stem it was trained to) and, with ``--test``, ``metrics.test``: the rows of that model in the
JSON written by ``python -m benchmarks.unitbox offline`` (or ``benchmarks.ldm_offline``), with
the command that measured them. The copy is loaded back (``weights_only=True``) before the script
reports success.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from closures.ldm import WEIGHTS_DIR, load_model, model_paths, read_card
from closures.ldm.files import write_model_files
from closures.slt.closure_files import load_slt_closure, read_slt_closure_card

KINDS = {"ldm": (read_card, load_model), "slt-closure": (read_slt_closure_card, load_slt_closure)}


def test_rows(path: Path, stem: Path) -> dict:
    """``metrics.test`` for ``stem`` from an offline benchmark JSON (``models`` keyed by name,
    each with its ``path`` and ``rows``); SystemExit naming ``--test`` if it is not there."""
    results = json.loads(path.read_text())
    for name, entry in results.get("models", {}).items():
        if Path(entry.get("path", name)) == stem:
            return {"split": "test", "data": results.get("data"), "rows": entry["rows"],
                    "command": results.get("command"), "date": results.get("date")}
    raise SystemExit(f"--test: {path} has no results for {stem}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stem", type=Path, help="trained model stem (STEM.pt, STEM.json)")
    p.add_argument("name", help="shipped name (closures/weights/NAME.*)")
    p.add_argument("--test", type=Path, default=None, help="offline benchmark JSON (test split)")
    p.add_argument("--kind", choices=sorted(KINDS), default="ldm")
    args = p.parse_args(argv)
    read, load = KINDS[args.kind]
    card = read(args.stem)                           # checked before anything is written
    metrics = dict(card.get("metrics", {}))
    if args.test is not None:
        metrics["test"] = test_rows(args.test, args.stem)
    import torch
    pt, _ = model_paths(args.stem)
    state = torch.load(pt, map_location="cpu", weights_only=True)
    out = WEIGHTS_DIR / args.name
    card.update(name=args.name, trained_as=str(args.stem), metrics=metrics)
    write_model_files(state, out, card)
    log = args.stem.with_name(args.stem.name + ".log.jsonl")
    if log.is_file():
        shutil.copyfile(log, out.with_name(out.name + ".log.jsonl"))
    model = load(out)
    print(f"shipped {args.stem} as {out} ({args.kind}, "
          f"{sum(q.numel() for q in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
