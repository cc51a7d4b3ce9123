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

from .arguments import nonnegative_float, positive_int
from .arguments import fail as cli_fail
from .training import data_files, error_flag, fill_defaults, read_data, run_training

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


# the arguments an architecture error may name, in the order they are looked for
ARCHITECTURE = ("latent_points", "heads", "width", "context", "horizon", "hidden", "time_dim",
                "channels", "layers", "steps")


def handler(args: argparse.Namespace) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted). The steps every
    model shares are :mod:`hybrid.cli.training`'s."""
    fail = functools.partial(cli_fail, command="train")
    fill_defaults(args, DEFAULTS)
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
    files = data_files(args.data, fail)
    if isinstance(files, int):
        return files
    from closures.ensemble_ldm import EnsembleLDM, read_starts, train_ensemble_ldm
    read = read_data(args.device, fail, lambda: read_starts(files))
    if isinstance(read, int):
        return read
    U, _ = read
    arch = dict(mode=args.mode, latent_points=args.latent_points, channels=args.channels,
                phase=args.phase, context=args.context, horizon=args.horizon, width=args.width,
                heads=args.heads, layers=args.layers, hidden=args.hidden,
                time_dim=args.time_dim, diffusion_steps=args.diffusion_steps)
    try:
        model = EnsembleLDM(U.shape[3], **arch)
    except ValueError as e:
        flag = error_flag(str(e), ARCHITECTURE, {"steps": "--diffusion-steps"})
        return fail(f"{flag}: {e}")
    if U.shape[2] - model.horizon < 1:
        return fail(f"--horizon {model.horizon}: the {U.shape[2]} records per start of --data "
                    f"hold no window of the start and {model.horizon} steps after it")
    return run_training(
        train_ensemble_ldm, files, args, fail, _summary, vae_epochs=vae_epochs,
        gamma=args.gamma, kl_weight=args.kl_weight, eval_steps=args.eval_steps,
        eval_starts=args.eval_starts, **arch)


def _summary(metrics: dict) -> tuple[str, dict]:
    off = metrics.get("offline") or {}
    ratio = off.get("spread_ratio")
    return (f"offline spread generated/DNS {ratio if ratio is not None else float('nan'):.3g}, "
            f"reconstruction error {off.get('rec_rmse', float('nan')):.3g}",
            {"final_train": metrics.get("final_train"), "final_val": metrics.get("final_val"),
             "offline": off})
