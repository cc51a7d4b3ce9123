"""``hybrid train slt-closure``: train the SLT closure (:func:`closures.slt.train_slt_closure`)
on a closure dataset.

    hybrid train slt-closure --data FILE --out STEM [--window L] [--epochs N] [--batch B]
                             [--lr LR] [--gamma G] [--members M] [--latent-channels C]
                             [--ae-channels C0,C1,C2] [--width W] [--heads H] [--layers K]
                             [--hidden D] [--mean-width W | --no-mean-network]
                             [--mean-blocks B] [--no-cold-start] [--samples-eval K]
                             [--eval-windows N] [--init-mean STEM] [--val-fraction F]
                             [--device DEV] [--threads T]
                             [--seed S] [--resume] [--overwrite] [--checkpoint-every N]
                             [--no-progress]

``--data``: a closure dataset of ``hybrid generate``, best with ``--consecutive K`` (K ≥ L) so
that it holds histories at the LES refresh interval. Defaults: 50 epochs, batch 32, lr 1e-3,
γ 0.9825, L = 10, 4 members, token width 64, 2 blocks, a mean network of 16 channels.

The flags shared with the other models are the ``hybrid train`` parser's; :func:`add_arguments`
adds the ones of this model, and :func:`handler` runs when the model is ``slt-closure``, after the
checks every model shares (the flags it takes and their defaults:
:data:`hybrid.cli.training.MODEL_FLAGS`). The data is read once, here, and passed on to the
training. Every argument is checked before any work: a missing or unusable data file, a window
the data cannot fill, bad numbers or an output that exists (without ``--overwrite`` or
``--resume``) exit with code 2 and a message naming the flag, with nothing written.
"""
from __future__ import annotations

import argparse
import functools

from .arguments import positive_int
from .arguments import fail as cli_fail
from .training import (add_model_flags, check_ensemble_options, data_files, error_flag, read_data,
                       run_training)

__all__ = ["add_arguments", "handler", "MEAN_WIDTH"]

MEAN_WIDTH = 16           # channels of the mean network when --mean-width is left at 0
# the arguments an architecture error may name, in the order they are looked for
ARCHITECTURE = ("heads", "hidden", "width", "window", "latent_channels", "mean_blocks",
                "mean_width")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``hybrid train slt-closure`` that the other models do not have."""
    add_model_flags(p.add_argument_group("slt-closure only"), {
        "--no-mean-network": dict(
            action="store_true",
            help="no mean network μ(ω̄): the transformer draws the whole term (default: a mean "
                 f"network of --mean-width channels, {MEAN_WIDTH} when left at 0)"),
        "--no-cold-start": dict(
            action="store_true",
            help="train on complete windows only, not also on the padded windows at the start "
                 "of each sequence (the closure's cold start)"),
        "--eval-windows": dict(
            type=positive_int, help="validation windows of the offline metrics (default 512)"),
        "--init-mean": dict(
            metavar="STEM", help="start the mean network from that of a trained L-CDM or SLT "
                                 "closure (stem or shipped name, e.g. ldm-kolmogorov; same "
                                 "--mean-width and --mean-blocks), converted to this data's "
                                 "normalisation")})


def handler(args: argparse.Namespace, given: frozenset[str]) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted). Called after
    :func:`hybrid.cli.training.prepare`, which returns ``given`` (the flags given); the steps
    every model shares are :mod:`hybrid.cli.training`'s."""
    fail = functools.partial(cli_fail, command="train")
    code = check_ensemble_options(args, fail)
    if code is not None:
        return code
    files = data_files(args.data, fail, folders=False)
    if isinstance(files, int):
        return files
    data = files[0]
    from closures.data import ClosureDataset
    from closures.slt import SLTClosureModel, train_slt_closure
    ds = read_data(args.device, fail,
                   lambda: ClosureDataset(data, "train", val_fraction=args.val_fraction))
    if isinstance(ds, int):
        return ds
    if ds.n % 4:
        return fail(f"--data: the SLT closure's autoencoders need a grid divisible by 4; {data} "
                    f"is {ds.n}²")
    cold_start = not args.no_cold_start
    if not len(ds.windows(args.window, pad=cold_start)):
        return fail(f"--window {args.window}: the training block of {data} holds no window of "
                    f"{args.window} consecutive pairs (sequences of {ds.consecutive}); generate "
                    f"it with --consecutive K ≥ {args.window}, or leave out --no-cold-start")
    arch = dict(window=args.window, latent_channels=args.latent_channels,
                ae_channels=args.ae_channels, width=args.width, heads=args.heads,
                layers=args.layers, hidden=args.hidden,
                mean_width=0 if args.no_mean_network else (args.mean_width or MEAN_WIDTH),
                mean_blocks=args.mean_blocks)
    try:
        model = SLTClosureModel(ds.n, ds.L, **arch)
    except ValueError as e:
        return fail(f"{error_flag(str(e), ARCHITECTURE)}: {e}")
    if args.init_mean is not None:
        from closures.ldm import ModelFileError
        from closures.slt.train_closure import copy_mean_network, load_mean_source
        try:
            copy_mean_network(model, load_mean_source(args.init_mean))
        except (ModelFileError, ValueError) as e:
            return fail(f"--init-mean: {e}")
    return run_training(train_slt_closure, ds, args, fail, _summary, gamma=args.gamma,
                        members=args.members, cold_start=cold_start,
                        eval_windows=args.eval_windows, init_mean=args.init_mean, **arch)


def _summary(metrics: dict) -> tuple[str, dict]:
    off = metrics.get("offline") or {}
    ratio = off.get("spread_to_error")
    return (f"held-out relative error {off.get('rel_error', float('nan')):.4g} (mean of "
            f"{off.get('samples')} draws; μ alone {off.get('rel_error_mean', float('nan')):.4g}),"
            f" spread/error {ratio if ratio is not None else float('nan'):.3g}",
            {"final_train": metrics.get("final_train"), "final_val": metrics.get("final_val"),
             "offline": off})
