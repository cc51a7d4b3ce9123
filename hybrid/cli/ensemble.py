"""``hybrid ensemble``: many members of the zonal jets around one run, from a trained latent
diffusion ensemble generator (the work is in :mod:`hybrid.ldm_ensemble`).

    hybrid ensemble RUN --model NAME|PATH --members M --out DIR [--member I] [--at T]
                    [--t-end T] [--seed S] [--batch B] [--steps N]
                    [--sampler ddim|dpm2m|ancestral]
                    [--residual-gain G] [--centre NAME|PATH|none] [--threads N]
                    [--overwrite]

RUN is a run with ``zonal_mean_u`` (``hybrid dns PRESET --record zonal-mean``, a file or its
folder); member ``--member`` of it, from ``--at`` to ``--t-end``, is the conditioning run.
Writes ``DIR/emulation.nc`` (the format of ``hybrid dns --record zonal-mean``, read by ``hybrid
jets DIR REFERENCE``), ``hovmoller.png``, ``statistics.png`` and ``emulation.json``. Bad input
exits 2 before anything is written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import (UsageError, nonnegative_float, nonnegative_int, number, positive_int,
                        run_emulator)

NAME = "ensemble"
HELP = ("generate an ensemble of the zonal jets U(y, t) around one run with a trained latent "
        "diffusion ensemble generator (hybrid train ensemble-ldm)")


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid ensemble``."""
    p.add_argument("run", type=Path, metavar="RUN",
                   help="the conditioning run: a run folder or a file with zonal_mean_u "
                        "(hybrid dns --record zonal-mean); its first record used is the state "
                        "the ensemble starts from")
    p.add_argument("--model", required=True, metavar="NAME|PATH",
                   help="a shipped model's name or the stem of a trained model (hybrid train "
                        "ensemble-ldm)")
    p.add_argument("--members", type=positive_int, required=True, help="ensemble members")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--member", type=nonnegative_int, default=0,
                   help="the member of RUN that conditions the ensemble (default 0)")
    p.add_argument("--at", type=number, default=None, metavar="T",
                   help="start at RUN's record at time T (default: its first record)")
    p.add_argument("--t-end", type=number, default=None, metavar="T",
                   help="end at RUN's record at time T (default: its last record)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="members generated together (default: about 4096 tokens per denoiser "
                        "pass, 113 members in window mode, 819 autoregressive)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="sampler steps per sample, ddim or dpm2m (default: the model card's)")
    p.add_argument("--sampler", choices=("ddim", "dpm2m", "ancestral"), default=None,
                   help="ddim (deterministic, first order), dpm2m (DPM-Solver++(2M): "
                        "deterministic, second order, so fewer --steps) or ancestral (every "
                        "diffusion step); default: the model card's")
    p.add_argument("--residual-gain", type=nonnegative_float, default=None, metavar="G",
                   help="members z_c + G·r: G < 1 pulls them towards the conditioning run "
                        "(default: the model card's online value, else 1)")
    p.add_argument("--centre", default=None, metavar="NAME|PATH|none",
                   help="centre the members on the ensemble mean estimated from the "
                        "conditioning run by this model (hybrid train ensemble-mean), or none "
                        "(default: the model card's online value, else none)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def handler(args: argparse.Namespace) -> int:
    """Validate, then generate; exit code 0, 2 (bad input) or 130 (interrupted)."""
    from hybrid.ldm_ensemble import OUTPUTS, generate_ensemble

    def load():
        from closures.ensemble_ldm import load_ensemble_mean, load_generator
        from closures.ldm.files import ModelFileError
        mean = "card" if args.centre is None else None if args.centre == "none" else args.centre
        if mean not in ("card", None):
            try:
                mean = load_ensemble_mean(mean)
            except (ModelFileError, OSError) as e:
                raise UsageError(f"--centre: {e}") from None
        try:
            return load_generator(args.model, threads=args.threads, mean=mean)
        except ModelFileError:
            raise
        except ValueError as e:                     # the mean does not fit the generator
            raise UsageError(f"--centre: {e}") from None

    def generate(gen, out: Path) -> dict:
        T = gen.model.ddpm.steps
        if args.steps is not None and args.steps > T:
            raise ValueError(f"--steps must be at most the model's {T} diffusion steps, got "
                             f"{args.steps}")
        return generate_ensemble(gen, args.run, out, members=args.members, member=args.member,
                                 at=args.at, t_end=args.t_end, seed=args.seed, batch=args.batch,
                                 steps=args.steps, method=args.sampler,
                                 overwrite=args.overwrite, residual_gain=args.residual_gain)

    return run_emulator("ensemble", args, OUTPUTS, load, generate,
                        lambda summary: f"{summary['records']} records")
