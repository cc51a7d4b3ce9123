"""``hybrid calibrate``: fit the large-scale shell gains of a trained learned closure (an L-CDM, a
P-CDM or an SLT closure, whose history comes from windows of consecutive pairs).

    hybrid calibrate --model STEM --data FILE [--shells 2] [--samples 4] [--seed 0]
                     [--threads 1]

Fits g_1 … g_shells on the training split of ``--data`` (the split recorded in the model's card)
and writes them into the card (``STEM.json``, key ``calibration``) together with the per-shell
errors on the held-out split before and after; the weights are not touched. The closure applies
them unless ``calibrate=False``. Method and reasons: :mod:`closures.calibration`.
"""
from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from pathlib import Path

from .arguments import EXIT_OK, nonnegative_int, positive_int
from .arguments import fail as cli_fail

NAME = "calibrate"
HELP = ("fit the large-scale shell gains of a trained learned closure, diffusion or SLT (writes "
        "its card)")


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid calibrate``."""
    p.add_argument("--model", required=True, metavar="STEM",
                   help="the model: a stem (STEM.pt + STEM.json) or a shipped model's name")
    p.add_argument("--data", type=Path, required=True,
                   help="the closure dataset the model was trained on (hybrid generate)")
    p.add_argument("--shells", type=positive_int, default=2,
                   help="calibrate shells 1 … N (default 2: |k| < 2.5)")
    p.add_argument("--samples", type=positive_int, default=4,
                   help="draws averaged per pair (default 4)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")


def handler(args: argparse.Namespace) -> int:
    """Validate, fit, write the card; exit code 0 or 2 (bad input)."""
    fail = functools.partial(cli_fail, command="calibrate")
    data = args.data.expanduser()
    if not data.is_file():
        return fail(f"--data: {data} is not a file")
    import torch

    from closures.calibration import fit_calibration
    from closures.data import ClosureDataset
    from closures.ldm import resolve_model_path, update_card
    from closures.slt.closure_files import load_closure_model, read_closure_card
    stem = resolve_model_path(args.model)
    try:
        model = load_closure_model(stem)
    except (OSError, ValueError) as e:
        return fail(f"--model: {e}")
    split = model.card.get("data", {}).get("split", {})
    try:
        kw = dict(val_fraction=split.get("val_fraction", 0.1), gap=split.get("gap", 0),
                  stats=model.stats)
        train = ClosureDataset(data, "train", **kw)
        val = ClosureDataset(data, "val", **kw)
    except (OSError, ValueError) as e:
        return fail(f"--data: {e}")
    if train.n != model.n:
        return fail(f"--data: {data} holds {train.n}² fields; the model is for {model.n}²")
    if args.shells >= model.n // 2:
        return fail(f"--shells {args.shells} reaches the Nyquist wavenumber of {model.n}² "
                     f"(at most {model.n // 2 - 1})")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cal = fit_calibration(model, train, shells=args.shells, samples=args.samples,
                          seed=args.seed, val=val)
    cal.update(command=shlex.join(args.argv), data=str(args.data),
               seconds=round(time.perf_counter() - t0, 1), date=time.strftime("%Y-%m-%d"))
    card_path = update_card(stem, reader=read_closure_card, calibration=cal)
    raw, new = cal.get("val_shell_error_raw"), cal.get("val_shell_error_calibrated")
    print(f"hybrid calibrate: gains {', '.join(f'{g:.3f}' for g in cal['shell_gains'])} for "
          f"shells 1-{args.shells} → {card_path}", file=sys.stderr)
    if raw:
        for s in range(args.shells):
            print(f"  shell {s + 1}: held-out error/power {raw[s]:.3f} → {new[s]:.3f}",
                  file=sys.stderr)
    print(json.dumps({"card": str(card_path), "calibration": cal}, default=str))
    return EXIT_OK
