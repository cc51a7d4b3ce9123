"""``hybrid train``: train a closure model on a closure dataset.

    hybrid train ldm --data FILE --out STEM [--epochs N] [--batch B] [--lr LR]
                     [--space latent|physical] [--mode joint|two-phase] [--device DEV]
                     [--threads T] [--seed S] [--resume] [--samples-eval K] [--overwrite]
                     [architecture: --latent-channels --ae-channels C0,C1,C2 --width --modes
                      --layers --time-dim --proj-hidden --mean-width --mean-blocks]
                     [--val-fraction F] [--ae-epochs N]
                     [--lr-halving-every N] [--checkpoint-every N] [--no-progress]

Writes ``STEM.pt`` and ``STEM.json`` (the model and its card), ``STEM.ckpt.pt`` (checkpoint) and
``STEM.log.jsonl`` (metrics per epoch); see :mod:`closures.train`. Everything is checked before
any work: a missing or unusable data file, bad numbers or an output that exists (without
``--overwrite`` or ``--resume``) exit with code 2 and a message naming the argument.
"""
from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
from pathlib import Path

from solvers.files import check_output_file

from .arguments import (EXIT_INTERRUPTED, EXIT_OK, fraction, nonnegative_int, positive_float,
                        positive_int)
from .arguments import fail as cli_fail

NAME = "train"
HELP = "train a closure model (ldm: latent conditional diffusion) on a closure dataset"


def _channels(text: str) -> list[int]:
    parts = text.split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 3 or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive integers C0,C1,C2, got "
                                         f"{text!r}")
    return vals


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid train``."""
    p.add_argument("model", choices=("ldm",), help="what to train: ldm (latent conditional "
                                                   "diffusion; --space physical for P-CDM)")
    p.add_argument("--data", type=Path, required=True, help="closure dataset (hybrid generate)")
    p.add_argument("--out", type=Path, required=True, metavar="STEM",
                   help="output stem: writes STEM.pt, STEM.json, STEM.ckpt.pt, STEM.log.jsonl")
    p.add_argument("--epochs", type=positive_int, default=50, help="epochs (default 50)")
    p.add_argument("--batch", type=positive_int, default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate "
                                                                   "(default 1e-3)")
    p.add_argument("--lr-halving-every", type=positive_int, default=100,
                   help="halve the learning rate every N epochs (default 100)")
    p.add_argument("--space", choices=("latent", "physical"), default="latent",
                   help="latent (L-CDM, default) or physical (P-CDM)")
    p.add_argument("--mode", choices=("joint", "two-phase"), default="joint",
                   help="joint AE+score training (default) or two-phase (AE first, then score)")
    p.add_argument("--ae-epochs", type=nonnegative_int, default=None,
                   help="two-phase: epochs of the autoencoder phase (default half)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from STEM.ckpt.pt")
    p.add_argument("--overwrite", action="store_true", help="replace existing STEM.* outputs")
    p.add_argument("--samples-eval", type=positive_int, default=8,
                   help="samples per held-out input for the offline metrics (default 8)")
    p.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="last fraction of sampling times held out (default 0.1)")
    p.add_argument("--checkpoint-every", type=positive_int, default=1,
                   help="epochs between checkpoints (default 1)")
    p.add_argument("--latent-channels", type=positive_int, default=1)
    p.add_argument("--ae-channels", type=_channels, default=[16, 32, 32], metavar="C0,C1,C2")
    p.add_argument("--width", type=positive_int, default=20)
    p.add_argument("--modes", type=positive_int, default=4)
    p.add_argument("--layers", type=positive_int, default=4)
    p.add_argument("--time-dim", type=positive_int, default=64)
    p.add_argument("--proj-hidden", type=positive_int, default=64)
    p.add_argument("--mean-width", type=nonnegative_int, default=0,
                   help="channels of the mean network μ(ω̄) (residual conditioning; default 0: "
                        "none)")
    p.add_argument("--mean-blocks", type=nonnegative_int, default=2,
                   help="residual blocks of the mean network (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def handler(args: argparse.Namespace) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted)."""
    fail = functools.partial(cli_fail, command="train")
    data = args.data.expanduser()
    if not data.exists():
        return fail(f"--data: {data} does not exist")
    if not data.is_file():
        return fail(f"--data: {data} is not a file")
    if args.ae_epochs is not None and args.mode == "two-phase" and args.ae_epochs >= args.epochs:
        return fail(f"--ae-epochs must be below --epochs ({args.ae_epochs} ≥ {args.epochs})")
    if args.resume and args.overwrite:
        return fail("--resume and --overwrite exclude each other")
    import torch

    from closures.data import ClosureDataset
    from closures.train import train_paths, train_ldm
    try:
        torch.device(args.device)
    except (RuntimeError, ValueError) as e:
        return fail(f"--device: {e}")
    try:
        ds = ClosureDataset(data, "train", val_fraction=args.val_fraction)
    except (OSError, ValueError) as e:
        return fail(f"--data: {e}")
    side = ds.n // 4 if args.space == "latent" else ds.n
    if args.space == "latent" and ds.n % 4:
        return fail(f"--space latent needs a grid divisible by 4; {data} is {ds.n}²")
    if args.modes > side // 2:
        return fail(f"--modes {args.modes} is too many for {side}² {args.space} fields "
                     f"(at most {side // 2})")
    paths = train_paths(args.out)
    if args.resume:
        if not paths["checkpoint"].is_file():
            return fail(f"--resume: no checkpoint {paths['checkpoint']}")
    try:
        for p in paths.values():
            check_output_file(p, "--out", overwrite=args.overwrite or args.resume,
                              overwrite_hint="--overwrite or --resume")
    except (TypeError, ValueError, OSError) as e:
        return fail(str(e))
    try:
        metrics = train_ldm(
            data, args.out, space=args.space, mode=args.mode, epochs=args.epochs,
            batch=args.batch, lr=args.lr, lr_halving_every=args.lr_halving_every,
            ae_epochs=args.ae_epochs, latent_channels=args.latent_channels,
            ae_channels=args.ae_channels, width=args.width, modes=args.modes,
            layers=args.layers, time_dim=args.time_dim, proj_hidden=args.proj_hidden,
            mean_width=args.mean_width, mean_blocks=args.mean_blocks,
            val_fraction=args.val_fraction, seed=args.seed, device=args.device,
            threads=args.threads, resume=args.resume, progress=not args.no_progress,
            checkpoint_every=args.checkpoint_every, samples_eval=args.samples_eval,
            command=shlex.join(args.argv))
    except KeyboardInterrupt:
        print(f"hybrid train: interrupted; continue with --resume from {paths['checkpoint']}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, ValueError) as e:
        return fail(str(e))
    off = metrics.get("offline", {})
    print(f"hybrid train: {metrics['epochs']} epochs in {metrics['training_time_s']:.1f} s; "
          f"held-out relative error {off.get('rel_error', float('nan')):.4g} "
          f"(mean of {off.get('samples')} samples) → {paths['weights']}, {paths['card']}",
          file=sys.stderr)
    print(json.dumps({"weights": str(paths["weights"]), "card": str(paths["card"]),
                      "offline": off}, default=str))
    return EXIT_OK
