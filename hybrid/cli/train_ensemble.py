"""``hybrid train ensemble-ldm``: train the latent diffusion ensemble generator
(:func:`closures.ensemble_ldm.train_ensemble_ldm`) on DNS ensembles from common states.

    hybrid train ensemble-ldm --data FILE [FILE ...] --out STEM
                              [--mode autoregressive|window] [--epochs N] [--vae-epochs N]
                              [--batch B] [--lr LR] [--gamma G] [--kl-weight W]
                              [--latent-points P] [--channels C] [--phase common|channel]
                              [--context K] [--horizon H] [--width W] [--heads H] [--layers L]
                              [--hidden D] [--time-dim E] [--diffusion-steps T]
                              [--eval-steps S] [--eval-starts N] [--samples-eval K]
                              [--val-fraction F] [--device DEV] [--threads T] [--seed S]
                              [--resume] [--overwrite] [--checkpoint-every N] [--no-progress]

``--data``: one run per start (a file or a run folder with ``zonal_mean_u``), each an ensemble
from one state (``hybrid dns PRESET --record zonal-mean --init FILE --at T --members M``); member
0 of each is the conditioning run. The last ``--val-fraction`` of the starts validate.

The flags shared with the other models (``--data``, ``--out``, ``--epochs``, ``--batch``,
``--lr``, ``--gamma``, ``--mode``, the architecture and the run options) are the ``hybrid train``
parser's; :func:`add_arguments` adds the ones of this model, and :func:`handler` runs when the
model is ``ensemble-ldm``. Every argument is checked before any work: a missing or unusable data
file, bad numbers or an output that exists (without ``--overwrite`` or ``--resume``) exit with
code 2 and a message naming the flag.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from .arguments import EXIT_OK, nonnegative_float, positive_int
from .arguments import fail as cli_fail

__all__ = ["add_arguments", "handler", "MODES", "DEFAULTS"]

MODES = ("autoregressive", "window")
# the defaults of the shared flags whose parser default is None
DEFAULTS = {"epochs": 100, "batch": 200, "lr": 1e-3, "width": 64, "heads": 4, "layers": 3,
            "hidden": 128, "mode": "autoregressive"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``hybrid train ensemble-ldm`` that the other models do not have."""
    g = p.add_argument_group("ensemble-ldm only")
    g.add_argument("--vae-epochs", type=positive_int, default=None,
                   help="epochs of the VAE phase, before the diffusion phase (default half)")
    g.add_argument("--kl-weight", type=nonnegative_float, default=1e-3,
                   help="weight of the VAE's KL term (default 1e-3)")
    g.add_argument("--context", type=positive_int, default=4,
                   help="known residual steps before each generated block (default 4)")
    g.add_argument("--horizon", type=positive_int, default=None,
                   help="steps generated at once (default: 1 autoregressive, 32 window)")
    g.add_argument("--diffusion-steps", type=positive_int, default=1000,
                   help="DDPM steps T (default 1000)")
    g.add_argument("--eval-steps", type=positive_int, default=50,
                   help="DDIM steps of the offline evaluation and the card's sampler "
                        "(default 50)")
    g.add_argument("--eval-starts", type=positive_int, default=2,
                   help="held-out starts of the offline ensemble evaluation (default 2)")


def _data_files(paths: list[Path], fail):
    """The run files of ``--data`` (a folder: its trajectory.nc or emulation.nc), or the exit
    code of a failed check."""
    from hybrid.jets.report import FILES
    files = []
    for data in (p.expanduser() for p in paths):
        if not data.exists():
            return fail(f"--data: {data} does not exist")
        if data.is_dir():
            found = [data / f for f in FILES if (data / f).is_file()]
            if not found:
                return fail(f"--data: folder {data} holds none of {', '.join(FILES)}")
            data = found[0]
        if not data.is_file():
            return fail(f"--data: {data} is not a file")
        files.append(data)
    return files


def _flag(message: str) -> str:
    """The flag an architecture error is about."""
    for arg in ("latent_points", "heads", "width", "context", "horizon", "hidden", "time_dim",
                "channels", "layers", "steps"):
        if arg in message:
            return "--diffusion-steps" if arg == "steps" else f"--{arg.replace('_', '-')}"
    return "--data"


def handler(args: argparse.Namespace, run_training) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted).
    ``run_training``: ``hybrid train``'s output checks and training call (its
    ``_run_training``), shared by every model."""
    fail = functools.partial(cli_fail, command="train")
    for k, v in DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.mode not in MODES:
        return fail(f"--mode must be one of {', '.join(MODES)} for ensemble-ldm, got "
                    f"{args.mode!r}")
    if args.resume and args.overwrite:
        return fail("--resume and --overwrite exclude each other")
    if args.epochs < 2:
        return fail(f"--epochs must be ≥ 2 (a VAE phase and a diffusion phase), got "
                    f"{args.epochs}")
    vae_epochs = max(1, args.epochs // 2) if args.vae_epochs is None else args.vae_epochs
    if vae_epochs >= args.epochs:
        return fail(f"--vae-epochs must be below --epochs ({vae_epochs} ≥ {args.epochs})")
    if not 0 < args.gamma <= 1:
        return fail(f"--gamma must lie in (0, 1], got {args.gamma}")
    if args.samples_eval < 2:
        return fail(f"--samples-eval must be ≥ 2 (an ensemble spread), got {args.samples_eval}")
    if args.eval_steps > args.diffusion_steps:
        return fail(f"--eval-steps must be at most --diffusion-steps ({args.diffusion_steps}), "
                    f"got {args.eval_steps}")
    files = _data_files(args.data, fail)
    if isinstance(files, int):
        return files
    import torch

    from closures.ensemble_ldm import EnsembleLDM, read_starts, train_ensemble_ldm
    try:
        torch.device(args.device)
    except (RuntimeError, ValueError) as e:
        return fail(f"--device: {e}")
    try:
        U, _ = read_starts(files)
    except (OSError, ValueError) as e:
        return fail(f"--data: {e}")
    arch = dict(mode=args.mode, latent_points=args.latent_points, channels=args.channels,
                phase=args.phase, context=args.context, horizon=args.horizon, width=args.width,
                heads=args.heads, layers=args.layers, hidden=args.hidden,
                time_dim=args.time_dim, diffusion_steps=args.diffusion_steps)
    try:
        model = EnsembleLDM(U.shape[3], **arch)
    except ValueError as e:
        return fail(f"{_flag(str(e))}: {e}")
    if U.shape[2] - model.horizon < 1:
        return fail(f"--horizon {model.horizon}: the {U.shape[2]} records per start of --data "
                    f"hold no window of the start and {model.horizon} steps after it")
    done = run_training(
        train_ensemble_ldm, files, args, fail, vae_epochs=vae_epochs, gamma=args.gamma,
        kl_weight=args.kl_weight, eval_steps=args.eval_steps, eval_starts=args.eval_starts,
        **arch)
    if isinstance(done, int):
        return done
    paths, metrics = done
    off = metrics.get("offline") or {}
    ratio = off.get("spread_ratio")
    print(f"hybrid train: {metrics['epochs']} epochs in {metrics['training_time_s']:.1f} s; "
          f"offline spread generated/DNS {ratio if ratio is not None else float('nan'):.3g}, "
          f"reconstruction error {off.get('rec_rmse', float('nan')):.3g} → {paths['weights']}, "
          f"{paths['card']}", file=sys.stderr)
    print(json.dumps({"weights": str(paths["weights"]), "card": str(paths["card"]),
                      "final_train": metrics.get("final_train"),
                      "final_val": metrics.get("final_val"), "offline": off}, default=str))
    return EXIT_OK
