"""``hybrid train ensemble-ldm``: train the latent diffusion ensemble generator
(:func:`closures.ensemble_ldm.train_ensemble_ldm`) on DNS ensembles from common states;
``hybrid train ensemble-mean``: fit the ensemble mean its members can be centred on
(:func:`closures.ensemble_ldm.fit_ensemble_mean`) on the same data.

    hybrid train ensemble-ldm --data FILE [FILE ...] --out STEM
                              [--mode autoregressive|window] [--epochs N] [--vae-epochs N]
                              [--batch B] [--lr LR] [--gamma G] [--kl-weight W]
                              [--latent-points P] [--channels C] [--phase common|channel]
                              [--context K] [--horizon H] [--width W] [--heads H] [--layers L]
                              [--hidden D] [--time-dim E] [--diffusion-steps T]
                              [--eval-steps S] [--eval-starts N] [--samples-eval K]
                              [--val-fraction F] [--device DEV] [--threads T] [--seed S]
                              [--resume] [--overwrite] [--checkpoint-every N] [--no-progress]
    hybrid train ensemble-ldm --distil-from NAME|PATH --data FILE [FILE ...] --out STEM
                              [--distil-factor K] [--epochs N] [--batch B] [--lr LR]
                              [--gamma G] [run options as above]
    hybrid train ensemble-mean --data FILE [FILE ...] --out STEM [--lags J] [--ridge R]
                               [--pool P] [--linear | --width W --layers L --epochs N]
                               [--val-fraction F] [--threads T] [--seed S] [--overwrite]

``--data``: one run per start (a file or a run folder with ``zonal_mean_u``), each an ensemble
from one state (``hybrid dns PRESET --record zonal-mean --init FILE --at T --members M``); member
0 of each is the conditioning run. The last ``--val-fraction`` of the starts validate.

The flags shared with the other models (``--data``, ``--out``, ``--epochs``, ``--batch``,
``--lr``, ``--gamma``, ``--mode``, the architecture and the run options) are the ``hybrid train``
parser's; :func:`add_arguments` adds the ones of this model, and :func:`handler` runs when the
model is ``ensemble-ldm``, after the checks every model shares (the flags it takes and their
defaults: :data:`hybrid.cli.training.MODEL_FLAGS`). Every argument is checked before any work: a
missing or unusable data file, bad numbers or an output that exists (without ``--overwrite`` or
``--resume``) exit with code 2 and a message naming the flag.

With ``--distil-from`` it distils a trained generator instead (progressive distillation,
:mod:`closures.ensemble_ldm.distil`): the student samples in 1/K of the teacher's DDIM steps;
the architecture flags, ``--vae-epochs``, ``--kl-weight`` and ``--eval-steps`` come from the
teacher and exit 2 if given.

``ensemble-mean`` fits a linear filter in closed form, then a convolutional correction of it
(``--width`` channels, ``--layers`` convolutions, ``--epochs`` of Adam, the epoch with the
smallest distance on the ``--val-fraction`` held-out starts kept; under a minute on one core
for 40 starts of 51 records); ``--linear`` stops after the filter. It writes ``STEM.pt`` and
``STEM.json`` only, with the distance of its estimate to the DNS ensembles' means on the fitted
and the held-out starts in the card, and takes no batches or ``--resume``.
"""
from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys

from .arguments import EXIT_OK, nonnegative_float, nonnegative_int, positive_int
from .arguments import fail as cli_fail
from .training import (add_model_flags, check_ensemble_options, data_files, error_flag, read_data,
                       run_training)

__all__ = ["add_arguments", "handler", "mean_handler"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``hybrid train ensemble-ldm`` that the other models do not have."""
    add_model_flags(p.add_argument_group("ensemble-ldm only"), {
        "--vae-epochs": dict(
            type=positive_int,
            help="epochs of the VAE phase, before the diffusion phase (default half)"),
        "--kl-weight": dict(
            type=nonnegative_float, help="weight of the VAE's KL term (default 1e-3)"),
        "--context": dict(
            type=positive_int,
            help="known residual steps before each generated block (default 4)"),
        "--horizon": dict(
            type=positive_int,
            help="steps generated at once (default: 1 autoregressive, 32 window)"),
        "--diffusion-steps": dict(type=positive_int, help="DDPM steps T (default 1000)"),
        "--eval-steps": dict(
            type=positive_int,
            help="DDIM steps of the offline evaluation and the card's sampler (default 50)"),
        "--eval-starts": dict(
            type=positive_int,
            help="held-out starts of the offline ensemble evaluation (default 2)"),
        "--distil-from": dict(
            metavar="NAME|PATH",
            help="distil this trained generator into one that samples in 1/--distil-factor of "
                 "its DDIM steps (progressive distillation; the architecture, VAE and "
                 "normalisation are the teacher's; --lr defaults to 2e-4)"),
        "--distil-factor": dict(
            type=positive_int, help="teacher steps per student step (default 2)")})
    add_model_flags(p.add_argument_group("ensemble-mean only"), {
        "--lags": dict(type=nonnegative_int,
                       help="records of the conditioning run before each lead used (default 10)"),
        "--ridge": dict(type=nonnegative_float,
                        help="ridge weight, relative to the features' mean power (default 0.01)"),
        "--pool": dict(type=nonnegative_int,
                       help="leads either side pooled in each lead's fit (default 5)"),
        "--linear": dict(action="store_const", const=True,
                         help="the linear filter alone, without the convolutional correction "
                              "(--width 32, --layers 8, --epochs 40 by default)")})


# the arguments an architecture error may name, in the order they are looked for
ARCHITECTURE = ("latent_points", "heads", "width", "context", "horizon", "hidden", "time_dim",
                "channels", "layers", "steps")


def handler(args: argparse.Namespace, given: frozenset[str]) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted). Called after
    :func:`hybrid.cli.training.prepare`, which returns ``given`` (the flags given); the steps
    every model shares are :mod:`hybrid.cli.training`'s."""
    fail = functools.partial(cli_fail, command="train")
    if args.distil_from is not None:
        return _distil(args, given, fail)
    if "distil_factor" in given:
        return fail("--distil-factor needs --distil-from (the generator to distil)")
    if args.epochs < 2:
        return fail(f"--epochs must be ≥ 2 (a VAE phase and a diffusion phase), got "
                    f"{args.epochs}")
    vae_epochs = max(1, args.epochs // 2) if args.vae_epochs is None else args.vae_epochs
    if vae_epochs >= args.epochs:
        return fail(f"--vae-epochs must be below --epochs ({vae_epochs} ≥ {args.epochs})")
    code = check_ensemble_options(args, fail)
    if code is not None:
        return code
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


# the flags a distillation takes from its teacher
TEACHER_FLAGS = ("mode", "latent_points", "channels", "phase", "context", "horizon", "width",
                 "heads", "layers", "hidden", "time_dim", "diffusion_steps", "vae_epochs",
                 "kl_weight", "eval_steps")
DISTIL_LR = 2e-4                 # --lr of a distillation when not given


def _distil(args: argparse.Namespace, given: frozenset[str], fail) -> int:
    """``hybrid train ensemble-ldm --distil-from TEACHER``: checks, then
    :func:`closures.ensemble_ldm.distil.distil_ensemble_ldm`."""
    from closures.ensemble_ldm import load_ensemble_ldm
    from closures.ensemble_ldm.distil import (distil_ensemble_ldm, student_timesteps,
                                              teacher_timesteps)
    from closures.ldm.files import ModelFileError
    fixed = [k for k in TEACHER_FLAGS if k in given]
    if fixed:
        flag = "--" + fixed[0].replace("_", "-")
        return fail(f"{flag}: a distilled generator takes it from its teacher (--distil-from); "
                    f"leave {flag} out")
    code = check_ensemble_options(args, fail)
    if code is not None:
        return code
    try:
        teacher = load_ensemble_ldm(args.distil_from)
        student_timesteps(teacher_timesteps(teacher), args.distil_factor)
    except (ModelFileError, OSError) as e:
        return fail(f"--distil-from: {e}")
    except ValueError as e:
        return fail(f"--distil-factor: {e}")
    files = data_files(args.data, fail)
    if isinstance(files, int):
        return files
    if "lr" not in given:
        args.lr = DISTIL_LR
    return run_training(
        lambda data, out, **kw: distil_ensemble_ldm(teacher, data, out, **kw), files, args,
        fail, _summary, factor=args.distil_factor, gamma=args.gamma,
        eval_starts=args.eval_starts)


def _summary(metrics: dict) -> tuple[str, dict]:
    off = metrics.get("offline") or {}
    ratio = off.get("spread_ratio")
    return (f"offline spread generated/DNS {ratio if ratio is not None else float('nan'):.3g}, "
            f"reconstruction error {off.get('rec_rmse', float('nan')):.3g}",
            {"final_train": metrics.get("final_train"), "final_val": metrics.get("final_val"),
             "offline": off})


def mean_handler(args: argparse.Namespace, given: frozenset[str]) -> int:
    """``hybrid train ensemble-mean``: checks, then the fit, then the report (``hybrid train:
    fitted … → WEIGHTS, CARD`` on stderr, the JSON of the paths and metrics on stdout); exit
    code 0 or 2 (bad input)."""
    from solvers.files import check_output_file
    fail = functools.partial(cli_fail, command="train")
    if args.resume:
        return fail("--resume: ensemble-mean is fitted in under a minute; there is nothing to "
                    "resume")
    if args.linear and given & {"width", "layers", "epochs"}:
        return fail("--linear: the linear filter takes no --width, --layers or --epochs (those "
                    "of the correction)")
    files = data_files(args.data, fail)
    if isinstance(files, int):
        return files
    from closures.ensemble_ldm import fit_ensemble_mean, save_ensemble_mean
    from closures.ldm.files import model_paths
    paths = model_paths(args.out)
    try:
        for p in paths:
            check_output_file(p, "--out", overwrite=args.overwrite)
    except (TypeError, ValueError, OSError) as e:
        return fail(str(e))
    from closures.ldm import torch_threads
    with torch_threads(args.threads):
        model = read_data("cpu", fail, lambda: fit_ensemble_mean(
            files, lags=args.lags, ridge=args.ridge, pool=args.pool,
            val_fraction=args.val_fraction, width=0 if args.linear else args.width,
            layers=args.layers, epochs=args.epochs, seed=args.seed,
            command=shlex.join(args.argv)))
    if isinstance(model, int):
        return model
    save_ensemble_mean(model, args.out)
    m = model.card["metrics"]
    val = m.get("val_distance")
    print(f"hybrid train: fitted in {model.card['fit']['time_s']:.1f} s; distance to the "
          f"ensemble mean / the conditioning run's: {m['train_distance']:.3g} fitted, "
          f"{'none held out' if val is None else f'{val:.3g} held out'} → {paths[0]}, "
          f"{paths[1]}", file=sys.stderr)
    print(json.dumps({"weights": str(paths[0]), "card": str(paths[1]), "metrics": m}))
    return EXIT_OK
