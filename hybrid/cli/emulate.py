"""``hybrid emulate slt``: an ensemble of the zonal jets from a trained stochastic latent
transformer, started from a recorded state (the work is in :mod:`hybrid.emulate`).

    hybrid emulate slt --model NAME|PATH --init FILE [--at T] [--member I] --members M
                       --t-end T --out DIR [--param NAME=VALUE ...] [--seed S] [--batch B]
                       [--threads N] [--[no-]reencode] [--noise-memory RHO]
                       [--spread-gain G] [--compile] [--overwrite]

Writes ``DIR/emulation.nc`` (the format of ``hybrid dns --record zonal-mean``), ``hovmoller.png``,
``statistics.png`` and ``emulation.json``. A model conditioned on parameters (``hybrid train
slt-conditioned``) runs at the values of ``--param`` (one per parameter, e.g. ``--param beta=5.66
--param mu=3e-3``), recorded in both files. Bad input exits 2 before anything is written: a
``--param`` that is not NAME=NUMBER, repeated, unknown to the model or missing, or given to an
unconditioned model. ``--noise-memory`` and ``--spread-gain`` are the online settings of
:class:`closures.slt.Emulator` (default: the model card's, else 0 and 1: the trained model);
``--compile`` compiles its transformer (torch.compile; a C++ compiler is needed on the CPU).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import (UsageError, fail, fraction, nonnegative_float, nonnegative_int,
                        number, parameter_value, parameters, positive_int, run_emulator)

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
    p.add_argument("--param", dest="params", type=parameter_value, action="append", default=[],
                   metavar="NAME=VALUE",
                   help="a parameter of a conditioned model (hybrid train slt-conditioned), "
                        "e.g. --param beta=5.66; one per parameter the model is conditioned on")
    p.add_argument("--noise-memory", type=fraction, default=None, metavar="RHO",
                   help="AR(1) coefficient of each member's noise token from save to save, in "
                        "[0, 1) (default: the model card's online value, else 0)")
    p.add_argument("--spread-gain", type=nonnegative_float, default=None, metavar="G",
                   help="move each new latent G times as far from the zero-noise latent "
                        "(default: the model card's online value, else 1)")
    p.add_argument("--compile", action="store_true",
                   help="compile the transformer with torch.compile (about 30 s once, then "
                        "1.8x faster steps for the point-token model on one CPU thread; "
                        "needs a C++ compiler on the CPU)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def load_conditioned(model, params: dict | None, threads: int | None, flag: str = "--param",
                     online: dict | None = None, compile: bool = False):
    """The emulator of ``model`` at ``params``; UsageError naming ``flag`` when the model is
    conditioned and a parameter is missing, or a name is unknown, or the model is not
    conditioned and ``params`` are given (the checks of :func:`closures.slt.load_emulator`).
    ``online``: the emulator's ``noise_memory`` and ``spread_gain`` (None: the card's);
    ``compile``: compile its transformer (UsageError naming --compile without a compiler)."""
    from closures.slt import Emulator, check_compiler, load_emulator
    if compile:
        try:
            check_compiler(what="--compile")
        except ValueError as e:
            raise UsageError(str(e)) from None
    online = dict(online or {})
    em = load_emulator(model, threads=threads, **online)
    names = em.parameter_names
    if not names and params is not None:
        raise UsageError(f"{flag}: the model {model} is not conditioned on parameters (an SLT "
                         f"of one parameter value): leave out {flag}")
    if names and params is None:
        raise UsageError(f"{flag}: the model {model} is conditioned on {', '.join(names)}: give "
                         f"{' '.join(f'{flag} {n}=VALUE' for n in names)}")
    try:
        return Emulator(em.model, threads=threads, params=params, compile=compile, **online)
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from None


def handler(args: argparse.Namespace) -> int:
    """Validate, then emulate; exit code 0, 2 (bad input) or 130 (interrupted)."""
    from hybrid.emulate import OUTPUTS, emulate_slt

    try:
        params = parameters(args.params)
    except UsageError as e:
        return fail(str(e), "emulate")

    def load():
        return load_conditioned(args.model, params, args.threads, online={
            "noise_memory": args.noise_memory, "spread_gain": args.spread_gain},
            compile=args.compile)

    def emulate(em, out: Path) -> dict:
        return emulate_slt(em, args.init, out, members=args.members, t_end=args.t_end,
                           at=args.at, member=args.member, seed=args.seed, batch=args.batch,
                           overwrite=args.overwrite, reencode=args.reencode)

    return run_emulator("emulate", args, OUTPUTS, load, emulate,
                        lambda summary: f"{summary['steps']} saves")
