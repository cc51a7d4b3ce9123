"""Fit a per-lead spread scale for a trained ensemble generator on training starts
(closures.ensemble_ldm.spread) and write a copy of the model whose card carries it:

    python scripts/eldm_spread_scale.py --model runs/train/eldm-window-2step --gain 0.6 \
        --data data/betaplane-small/eldm/train/start-* --out runs/train/eldm-window-2step-scaled

The copy's card has ``online.residual_gain`` = --gain, ``online.spread_scale`` (the smoothed
scale, one value per lead) and ``online.spread_scale_fit`` (the raw ratio, the data, the
command); its weights are the model's, unchanged. With --out the model's own stem, its card is
updated in place.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from closures.ensemble_ldm import load_generator, read_ensemble_ldm_card
from closures.ensemble_ldm.spread import fit_spread_scale
from closures.ldm.files import model_paths, resolve_model_path, update_card


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", nargs="+", required=True, help="training starts (run folders)")
    ap.add_argument("--gain", type=float, default=None, help="residual gain (default: card's)")
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--degree", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    files = [Path(d) / "trajectory.nc" if Path(d).is_dir() else Path(d) for d in args.data]
    gen = load_generator(args.model, threads=1)
    gain = gen.residual_gain(args.gain)
    scale, raw = fit_spread_scale(gen, files, members=args.members, degree=args.degree,
                                  residual_gain=gain)
    src_pt, src_js = model_paths(resolve_model_path(args.model))
    dst_pt, dst_js = model_paths(args.out)
    dst_pt.parent.mkdir(parents=True, exist_ok=True)
    if dst_pt.resolve() != src_pt.resolve():                  # else: the model's own card
        shutil.copyfile(src_pt, dst_pt)
        shutil.copyfile(src_js, dst_js)
    card = read_ensemble_ldm_card(args.out)
    online = dict(card.get("online") or {})
    online.update(residual_gain=gain, spread_scale=scale, spread_scale_fit={
        "raw_ratio": raw, "degree": args.degree, "members": args.members,
        "data": [str(f) for f in files],
        "command": shlex.join(["python", "scripts/eldm_spread_scale.py",
                               *(sys.argv[1:] if argv is None else argv)])})
    update_card(args.out, reader=read_ensemble_ldm_card, name=args.out.name,
                weights_file=dst_pt.name, online=online)
    print(json.dumps({"out": str(dst_js), "scale_first_last": [scale[0], scale[-1]]}))


if __name__ == "__main__":
    main()
