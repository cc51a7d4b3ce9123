"""``hybrid emulate slt``: an ensemble of the zonal jets from a trained stochastic latent
transformer, started from a recorded state (the work is in :mod:`hybrid.emulate`).

    hybrid emulate slt --model NAME|PATH --init FILE [--at T] [--member I] --members M
                       --t-end T --out DIR [--seed S] [--batch B] [--threads N] [--[no-]reencode]
                       [--overwrite]

Writes ``DIR/emulation.nc`` (the format of ``hybrid dns --record zonal-mean``), ``hovmoller.png``,
``statistics.png`` and ``emulation.json``. Bad input exits 2 before anything is written.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from .arguments import EXIT_INTERRUPTED, EXIT_OK, UsageError, check_output_dir, nonnegative_int
from .arguments import fail as cli_fail
from .arguments import number, positive_int

NAME = "emulate"
HELP = "emulate the zonal jets U(y, t) with a trained stochastic latent transformer (slt)"


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid emulate``."""
    p.add_argument("model_kind", choices=("slt",), metavar="slt",
                   help="the emulator: slt (stochastic latent transformer)")
    p.add_argument("--model", required=True, metavar="NAME|PATH",
                   help="a shipped model's name or the stem of a trained model (hybrid train slt)")
    p.add_argument("--init", type=Path, required=True, metavar="FILE",
                   help="a run with zonal_mean_u (hybrid dns --record zonal-mean, or a run "
                        "folder): the start state and the records before it")
    p.add_argument("--at", type=number, default=None, metavar="T",
                   help="start at the record at time T (default: the last record)")
    p.add_argument("--member", type=nonnegative_int, default=0,
                   help="the member of --init to start from (default 0)")
    p.add_argument("--members", type=positive_int, required=True, help="ensemble members")
    p.add_argument("--t-end", type=number, required=True, metavar="T",
                   help="emulate up to time T (at the run's save interval)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="members stepped together (default all)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    p.add_argument("--reencode", action=argparse.BooleanOptionalAction, default=None,
                   help="decode and encode every new latent before it joins the window, or "
                        "not (default: as the model was trained to be rolled out, its card's "
                        "training.reencode)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def handler(args: argparse.Namespace) -> int:
    """Validate, then emulate; exit code 0, 2 (bad input) or 130 (interrupted)."""
    fail = functools.partial(cli_fail, command="emulate")
    from hybrid.emulate import OUTPUTS, emulate_slt
    try:
        out = check_output_dir(args.out, args.overwrite, OUTPUTS)
    except UsageError as e:
        return fail(str(e))
    from closures.slt import ModelFileError, load_emulator
    try:
        em = load_emulator(args.model, threads=args.threads)
    except (ModelFileError, OSError) as e:
        return fail(f"--model: {e}")
    try:
        summary = emulate_slt(em, args.init, out, members=args.members, t_end=args.t_end,
                              at=args.at, member=args.member, seed=args.seed,
                              batch=args.batch, overwrite=args.overwrite,
                              reencode=args.reencode)
    except KeyboardInterrupt:
        print("hybrid emulate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as e:
        return fail(str(e))
    print(f"hybrid emulate: {summary['members']} members × {summary['steps']} saves in "
          f"{summary['wall_s']:.2f} s ({summary['s_per_member_per_time_unit']:.3g} s per member "
          f"per time unit) → {out}", file=sys.stderr)
    print(json.dumps(summary, default=str))
    return EXIT_OK
