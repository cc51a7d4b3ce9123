"""``hybrid train``: train a closure model on a closure dataset, or an emulator on U(y, t) data.

    hybrid train ldm --data FILE --out STEM [--epochs N] [--batch B] [--lr LR]
                     [--space latent|physical] [--mode joint|two-phase] [--device DEV]
                     [--threads T] [--seed S] [--resume] [--samples-eval K] [--overwrite]
                     [architecture: --latent-channels --ae-channels C0,C1,C2 --width --modes
                      --layers --time-dim --proj-hidden --mean-width --mean-blocks]
                     [--val-fraction F] [--ae-epochs N]
                     [--lr-halving-every N] [--checkpoint-every N] [--no-progress]

    hybrid train slt --data FILE --out STEM [--epochs N] [--batch B] [--lr LR] [--gamma G]
                     [--window L] [--members M] [--latent-points P] [--channels C] [--width W]
                     [--heads H] [--layers K] [--hidden D] [--phase common|channel]
                     [--val-fraction F] [--device DEV]
                     [--threads T] [--seed S] [--resume] [--overwrite] [--checkpoint-every N]
                     [--no-progress]

``slt`` (the stochastic latent transformer, :func:`closures.slt.train_slt`) trains on the
``zonal_mean_u`` of a beta-plane run (``hybrid dns PRESET --record zonal-mean``); its defaults
are the paper's (400 epochs, batch 200, lr 5e-4, γ 0.9825, L = 10, 4 members, 2 blocks).
``ensemble-ldm`` (the latent diffusion ensemble generator) is :mod:`hybrid.cli.train_ensemble`,
``slt-closure`` (the SLT closure) :mod:`hybrid.cli.train_slt_closure`, ``slt-conditioned`` (the
SLT conditioned on the PDE's parameters) :mod:`hybrid.cli.train_conditioned`.

Writes ``STEM.pt`` and ``STEM.json`` (the model and its card), ``STEM.ckpt.pt`` (checkpoint) and
``STEM.log.jsonl`` (metrics per epoch); see :mod:`closures.train`. Everything is checked before
any work: a missing or unusable data file, bad numbers or an output that exists (without
``--overwrite`` or ``--resume``) exit with code 2 and a message naming the argument.
"""
from __future__ import annotations

import argparse
import functools
from pathlib import Path

from . import train_conditioned, train_ensemble, train_slt_closure
from .arguments import fraction, nonnegative_int, positive_float, positive_int
from .arguments import fail as cli_fail
from .training import (check_ensemble_options, data_files, error_flag, fill_defaults, read_data,
                       run_training)

NAME = "train"
HELP = ("train a closure model (ldm: latent conditional diffusion) on a closure dataset, or the "
        "jet emulator (slt: stochastic latent transformer) on U(y, t)")

# defaults that differ between the models (the arguments' own default is None)
DEFAULTS = {"ldm": {"epochs": 50, "batch": 32, "lr": 1e-3, "width": 20, "layers": 4},
            "slt": {"epochs": 400, "batch": 200, "lr": 5e-4, "width": None, "layers": 2}}


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
    p.add_argument("model", choices=("ldm", "slt", "ensemble-ldm", "slt-closure",
                                     "slt-conditioned"),
                   help="what to train: ldm (latent conditional diffusion; --space physical for "
                        "P-CDM), slt (stochastic latent transformer emulator of U(y, t)), "
                        "ensemble-ldm (latent diffusion ensemble generator of U(y, t) around "
                        "one run), slt-closure (the history-dependent SLT closure, on a "
                        "closure dataset) or slt-conditioned (the SLT conditioned on PDE "
                        "parameters, on runs at several values)")
    p.add_argument("--data", type=Path, required=True, nargs="+",
                   help="ldm: closure dataset (hybrid generate); slt: a beta-plane run (folder "
                        "or file) with zonal_mean_u (hybrid dns --record zonal-mean); "
                        "ensemble-ldm: one such run per start; slt-conditioned: one such run "
                        "per parameter value")
    p.add_argument("--out", type=Path, required=True, metavar="STEM",
                   help="output stem: writes STEM.pt, STEM.json, STEM.ckpt.pt, STEM.log.jsonl")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs (default: ldm 50, slt 400)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="batch size (default: ldm 32, slt 200)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="Adam learning rate (default: ldm 1e-3, slt 5e-4)")
    p.add_argument("--lr-halving-every", type=positive_int, default=100,
                   help="halve the learning rate every N epochs (default 100)")
    p.add_argument("--space", choices=("latent", "physical"), default="latent",
                   help="latent (L-CDM, default) or physical (P-CDM)")
    p.add_argument("--mode", choices=("joint", "two-phase", "autoregressive", "window"),
                   default=None,
                   help="ldm: joint AE+score training (default) or two-phase (AE first, then "
                        "score); ensemble-ldm: autoregressive (default) or window")
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
    p.add_argument("--width", type=positive_int, default=None,
                   help="ldm: FNO width (default 20); slt: token width (default: latent size)")
    p.add_argument("--modes", type=positive_int, default=4)
    p.add_argument("--layers", type=positive_int, default=None,
                   help="ldm: Fourier layers (default 4); slt: transformer blocks (default 2)")
    p.add_argument("--time-dim", type=positive_int, default=64)
    p.add_argument("--proj-hidden", type=positive_int, default=64)
    p.add_argument("--mean-width", type=nonnegative_int, default=0,
                   help="channels of the mean network μ(ω̄) (residual conditioning; default 0: "
                        "none)")
    p.add_argument("--mean-blocks", type=nonnegative_int, default=2,
                   help="residual blocks of the mean network (default 2)")
    slt = p.add_argument_group("slt only")
    slt.add_argument("--gamma", type=positive_float, default=0.9825,
                     help="learning rate factor per epoch (ExponentialLR; default 0.9825)")
    slt.add_argument("--window", type=positive_int, default=10,
                     help="profiles per input window L (default 10)")
    slt.add_argument("--members", type=positive_int, default=4,
                     help="ensemble members per input in the energy score (≥ 2; default 4)")
    slt.add_argument("--latent-points", type=positive_int, default=None,
                     help="points of the latent profile (default: a quarter of the data's)")
    slt.add_argument("--channels", type=positive_int, default=4,
                     help="hidden channels of the TEPC autoencoder (default 4)")
    slt.add_argument("--phase", choices=("common", "channel"), default="common",
                     help="TEPC alignment: common (all channels by channel 0's mode-1 phase; "
                          "default) or channel (each by its own, the paper's)")
    slt.add_argument("--heads", type=positive_int, default=None,
                     help="attention heads (default: heads of width 4)")
    slt.add_argument("--hidden", type=positive_int, default=None,
                     help="MLP width of the blocks (default: twice the token width)")
    slt.add_argument("--unroll", type=positive_int, default=1,
                     help="train on K-step free rollouts, each member fed its own draws "
                          "(default 1: one-step targets)")
    slt.add_argument("--reencode", action="store_true",
                     help="with --unroll: feed each draw back decoded and encoded again, as "
                          "hybrid emulate --reencode (then the model's default)")
    slt.add_argument("--init-from", default=None, metavar="MODEL",
                     help="fine-tune a saved SLT (path or shipped name): its architecture and "
                          "normalisation are kept")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    train_ensemble.add_arguments(p)
    train_slt_closure.add_arguments(p)
    train_conditioned.add_arguments(p)


def handler(args: argparse.Namespace) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted)."""
    fail = functools.partial(cli_fail, command="train")
    if args.model == "ensemble-ldm":
        return train_ensemble.handler(args)
    if args.model == "slt-closure":
        return train_slt_closure.handler(args)
    if args.model == "slt-conditioned":
        return train_conditioned.handler(args)
    if len(args.data) > 1 or args.mode in train_ensemble.MODES:
        return fail(f"--data takes one file and --mode joint or two-phase for {args.model}")
    args.mode = args.mode or "joint"
    fill_defaults(args, DEFAULTS[args.model])
    files = data_files(args.data, fail, folders=args.model == "slt")   # slt: a run folder too
    if isinstance(files, int):
        return files
    data = files[0]
    if args.model == "slt":
        return _train_slt(args, data, fail)
    if args.ae_epochs is not None and args.mode == "two-phase" and args.ae_epochs >= args.epochs:
        return fail(f"--ae-epochs must be below --epochs ({args.ae_epochs} ≥ {args.epochs})")
    if args.resume and args.overwrite:
        return fail("--resume and --overwrite exclude each other")
    from closures.data import ClosureDataset
    from closures.train import train_ldm
    ds = read_data(args.device, fail,
                   lambda: ClosureDataset(data, "train", val_fraction=args.val_fraction))
    if isinstance(ds, int):
        return ds
    side = ds.n // 4 if args.space == "latent" else ds.n
    if args.space == "latent" and ds.n % 4:
        return fail(f"--space latent needs a grid divisible by 4; {data} is {ds.n}²")
    if args.modes > side // 2:
        return fail(f"--modes {args.modes} is too many for {side}² {args.space} fields "
                     f"(at most {side // 2})")
    return run_training(
        train_ldm, data, args, fail, _ldm_summary, space=args.space, mode=args.mode,
        lr_halving_every=args.lr_halving_every, ae_epochs=args.ae_epochs,
        latent_channels=args.latent_channels, ae_channels=args.ae_channels, width=args.width,
        modes=args.modes, layers=args.layers, time_dim=args.time_dim,
        proj_hidden=args.proj_hidden, mean_width=args.mean_width, mean_blocks=args.mean_blocks)


def _ldm_summary(metrics: dict) -> tuple[str, dict]:
    off = metrics.get("offline", {})
    return (f"held-out relative error {off.get('rel_error', float('nan')):.4g} (mean of "
            f"{off.get('samples')} samples)", {"offline": off})


def _train_slt(args: argparse.Namespace, data: Path, fail) -> int:
    """``hybrid train slt``: checks, then :func:`closures.slt.train_slt`."""
    bad = check_ensemble_options(args, fail)
    if bad is not None:
        return bad
    from closures.slt import SLT, read_profiles, train_slt
    from closures.slt.train import pretrained_slt
    read = read_data(args.device, fail, lambda: read_profiles(data))
    if isinstance(read, int):
        return read
    u, _ = read
    if args.init_from is not None:
        try:
            args.window = pretrained_slt(args.init_from, dict(
                points=u.shape[2], latent_points=args.latent_points, channels=args.channels,
                window=args.window, width=args.width, heads=args.heads, layers=args.layers,
                hidden=args.hidden, residual=True, phase=args.phase)).window
        except ValueError as e:
            return fail(f"--init-from: {e}")
    per = int(round((1 - args.val_fraction) * u.shape[1]))
    if per < args.window + args.unroll:
        return fail(f"--window {args.window}, --unroll {args.unroll}: the {per} training saves "
                    f"per member of {data} hold no window of {args.window + args.unroll} "
                    f"profiles")
    try:
        if args.init_from is None:
            SLT(u.shape[2], latent_points=args.latent_points, channels=args.channels,
                window=args.window, width=args.width, heads=args.heads, layers=args.layers,
                hidden=args.hidden)
    except ValueError as e:
        flag = error_flag(str(e), ("latent_points", "heads", "width", "points", "window"))
        return fail(f"{flag}: {e}")
    return run_training(
        train_slt, data, args, fail, _slt_summary, window=args.window, gamma=args.gamma,
        members=args.members, latent_points=args.latent_points, channels=args.channels,
        width=args.width, heads=args.heads, layers=args.layers, hidden=args.hidden,
        phase=args.phase, unroll=args.unroll, reencode=args.reencode, init_from=args.init_from)


def _slt_summary(metrics: dict) -> tuple[str, dict]:
    val = metrics.get("final_val") or {}
    one = metrics.get("one_step") or {}
    return (f"validation energy score of U {val.get('es_u', float('nan')):.4g}, one-step "
            f"spread/error {one.get('spread_to_error') or float('nan'):.3g}",
            {"final_train": metrics.get("final_train"), "final_val": val, "one_step": one})

