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
from pathlib import Path

from .arguments import nonnegative_int, number, positive_int, run_emulator

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
    from hybrid.emulate import OUTPUTS, emulate_slt

    def load():
        from closures.slt import load_emulator
        return load_emulator(args.model, threads=args.threads)

    def emulate(em, out: Path) -> dict:
        return emulate_slt(em, args.init, out, members=args.members, t_end=args.t_end,
                           at=args.at, member=args.member, seed=args.seed, batch=args.batch,
                           overwrite=args.overwrite, reencode=args.reencode)

    return run_emulator("emulate", args, OUTPUTS, load, emulate,
                        lambda summary: f"{summary['steps']} saves")
