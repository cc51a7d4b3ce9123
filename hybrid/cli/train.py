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
                     [--kind latent|local] [--span S] [--noise-channels K] [--dealias]
                     [--val-fraction F] [--device DEV]
                     [--threads T] [--seed S] [--resume] [--overwrite] [--checkpoint-every N]
                     [--no-progress]

``slt`` (the stochastic latent transformer, :func:`closures.slt.train_slt`) trains on the
``zonal_mean_u`` of a beta-plane run (``hybrid dns PRESET --record zonal-mean``); its defaults
are the paper's (400 epochs, batch 200, lr 5e-4, γ 0.9825, L = 10, 4 members, 2 blocks).
``--kind local`` trains the point-token model instead (:class:`closures.slt.local.LocalSLT`:
tokens are the profile's points, local attention over ``--span`` points, a noise field of
``--noise-channels`` values per point), which runs on profiles of any length.
``ensemble-ldm`` (the latent diffusion ensemble generator) and ``ensemble-mean`` (the ensemble
mean its members can be centred on) are :mod:`hybrid.cli.train_ensemble`,
``slt-closure`` (the SLT closure) :mod:`hybrid.cli.train_slt_closure`, ``slt-conditioned`` (the
SLT conditioned on the PDE's parameters) :mod:`hybrid.cli.train_conditioned`.

Writes ``STEM.pt`` and ``STEM.json`` (the model and its card), ``STEM.ckpt.pt`` (checkpoint) and
``STEM.log.jsonl`` (metrics per epoch); see :mod:`closures.train`. Everything is checked before
any work: a flag the model does not take (given at all, even at its default value; the flags of
each model and their defaults are :data:`hybrid.cli.training.MODEL_FLAGS`, listed at the end of
``hybrid train --help``), a missing or unusable data file, bad numbers or an output that exists
(without ``--overwrite`` or ``--resume``) exit with code 2 and a message naming the argument.
"""
from __future__ import annotations

import argparse
import functools
import textwrap
from pathlib import Path

from . import train_conditioned, train_ensemble, train_slt_closure
from .arguments import fraction, nonnegative_int, positive_float, positive_int
from .arguments import fail as cli_fail
from .training import (SLT_ARCHITECTURE, add_model_flags, check_ensemble_options,
                       check_kind_flags, check_pretrained_architecture, data_files, error_flag,
                       models_epilog, prepare, read_data, run_training)

NAME = "train"
HELP = ("train a closure model (ldm: latent conditional diffusion) on a closure dataset, or the "
        "jet emulator (slt: stochastic latent transformer) on U(y, t)")


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
    """The arguments of ``hybrid train``. The flags that not every model takes have the default
    None (their values are :data:`hybrid.cli.training.MODEL_FLAGS`'s), so that a flag given is
    told from one left out."""
    p.add_argument("model", choices=("ldm", "slt", "ensemble-ldm", "ensemble-mean",
                                     "slt-closure", "slt-conditioned"),
                   help="what to train: ldm (latent conditional diffusion; --space physical for "
                        "P-CDM), slt (stochastic latent transformer emulator of U(y, t)), "
                        "ensemble-ldm (latent diffusion ensemble generator of U(y, t) around "
                        "one run), ensemble-mean (the ensemble mean from the conditioning run, "
                        "which its members can be centred on), slt-closure (the "
                        "history-dependent SLT closure, on a "
                        "closure dataset) or slt-conditioned (the SLT conditioned on PDE "
                        "parameters, on runs at several values)")
    p.add_argument("--data", type=Path, required=True, nargs="+",
                   help="ldm: closure dataset (hybrid generate); slt: a beta-plane run (folder "
                        "or file) with zonal_mean_u (hybrid dns --record zonal-mean); "
                        "ensemble-ldm, ensemble-mean: one such run per start; slt-conditioned: "
                        "one such run "
                        "per parameter value")
    p.add_argument("--out", type=Path, required=True, metavar="STEM",
                   help="output stem: writes STEM.pt, STEM.json, STEM.ckpt.pt, STEM.log.jsonl")
    p.add_argument("--epochs", type=positive_int,
                   help="epochs (default: ldm 50, slt 400, ensemble-mean 40)")
    p.add_argument("--batch", type=positive_int,
                   help="batch size (default: ldm 32, slt 200)")
    p.add_argument("--lr", type=positive_float,
                   help="Adam learning rate (default: ldm 1e-3, slt 5e-4)")
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_flags(p.add_argument_group("ldm, some also other models (the list at the end)"), {
        "--lr-halving-every": dict(
            type=positive_int, help="halve the learning rate every N epochs (default 100)"),
        "--space": dict(choices=("latent", "physical"),
                        help="latent (L-CDM, default) or physical (P-CDM)"),
        "--mode": dict(
            choices=("joint", "two-phase", "autoregressive", "window"),
            help="ldm: joint AE+score training (default) or two-phase (AE first, then score); "
                 "ensemble-ldm: autoregressive (default) or window"),
        "--ae-epochs": dict(
            type=nonnegative_int,
            help="two-phase: epochs of the autoencoder phase (default half)"),
        "--latent-channels": dict(
            type=positive_int, help="channels of the latent fields (default 1)"),
        "--ae-channels": dict(
            type=_channels, metavar="C0,C1,C2",
            help="channels of the autoencoder's three levels (default 16,32,32)"),
        "--width": dict(
            type=positive_int,
            help="ldm: FNO width (default 20); slt: token width (default: latent size); "
                 "ensemble-mean: channels of the correction (default 32)"),
        "--modes": dict(type=positive_int, help="Fourier modes of the FNO layers (default 4)"),
        "--layers": dict(
            type=positive_int,
            help="ldm: Fourier layers (default 4); slt: transformer blocks (default 2); "
                 "ensemble-mean: convolutions of the correction (default 8)"),
        "--time-dim": dict(
            type=positive_int, help="size of the diffusion time embedding (default 64)"),
        "--proj-hidden": dict(
            type=positive_int, help="hidden width of the FNO's output projection (default 64)"),
        "--mean-width": dict(
            type=nonnegative_int,
            help="channels of the mean network μ(ω̄) (residual conditioning; default 0: none)"),
        "--mean-blocks": dict(
            type=nonnegative_int, help="residual blocks of the mean network (default 2)")})
    add_model_flags(p.add_argument_group("slt, some also other models (the list at the end)"), {
        "--gamma": dict(
            type=positive_float,
            help="learning rate factor per epoch (ExponentialLR; default 0.9825)"),
        "--window": dict(type=positive_int, help="profiles per input window L (default 10)"),
        "--members": dict(
            type=positive_int,
            help="ensemble members per input in the energy score (≥ 2; default 4)"),
        "--latent-points": dict(
            type=positive_int,
            help="points of the latent profile (default: a quarter of the data's)"),
        "--channels": dict(
            type=positive_int, help="hidden channels of the TEPC autoencoder (default 4)"),
        "--phase": dict(
            choices=("common", "channel"),
            help="TEPC alignment: common (all channels by channel 0's mode-1 phase; default) "
                 "or channel (each by its own, the paper's)"),
        "--heads": dict(type=positive_int, help="attention heads (default: heads of width 4)"),
        "--hidden": dict(
            type=positive_int, help="MLP width of the blocks (default: twice the token width)"),
        "--unroll": dict(
            type=positive_int,
            help="train on K-step free rollouts, each member fed its own draws (default 1: "
                 "one-step targets)"),
        "--reencode": dict(
            action="store_true",
            help="with --unroll: feed each draw back decoded and encoded again, as hybrid "
                 "emulate --reencode (then the model's default)"),
        "--init-from": dict(
            metavar="MODEL",
            help="fine-tune a saved SLT (path or shipped name): its architecture and "
                 "normalisation are kept, and an architecture flag given with it must equal "
                 "the model's"),
        "--kind": dict(
            choices=("latent", "local"),
            help="latent (the SLT: one latent token per save; default) or local (tokens are "
                 "the profile's points, local attention: runs on profiles of any length)"),
        "--span": dict(
            type=positive_int,
            help="--kind local: points each point attends to, odd (default 9)"),
        "--noise-channels": dict(
            type=positive_int,
            help="--kind local: N(0, 1) noise values per point and step (default 4)"),
        "--dealias": dict(
            action="store_true",
            help="--kind local: cut each increment to the modes a dealiased DNS resolves, "
                 "|k| ≤ n/3")})
    train_ensemble.add_arguments(p)
    train_slt_closure.add_arguments(p)
    train_conditioned.add_arguments(p)
    p.formatter_class = argparse.RawDescriptionHelpFormatter     # the epilog's lines kept
    p.description = textwrap.fill(p.description or HELP, 79)
    p.epilog = models_epilog()


def handler(args: argparse.Namespace) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted). The checks every
    model shares come first (:func:`hybrid.cli.training.prepare`), then the model's handler."""
    fail = functools.partial(cli_fail, command="train")
    given = prepare(args, fail)
    if isinstance(given, int):
        return given
    return HANDLERS[args.model](args, given)


def _train_ldm(args: argparse.Namespace, given: frozenset[str]) -> int:
    """``hybrid train ldm``: checks, then :func:`closures.train.train_ldm`."""
    fail = functools.partial(cli_fail, command="train")
    files = data_files(args.data, fail, folders=False)
    if isinstance(files, int):
        return files
    data = files[0]
    if args.ae_epochs is not None and args.mode == "two-phase" and args.ae_epochs >= args.epochs:
        return fail(f"--ae-epochs must be below --epochs ({args.ae_epochs} ≥ {args.epochs})")
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


def _train_slt(args: argparse.Namespace, given: frozenset[str]) -> int:
    """``hybrid train slt``: checks, then :func:`closures.slt.train_slt` (with ``--init-from``,
    the model loaded here once and passed on)."""
    fail = functools.partial(cli_fail, command="train")
    code = check_ensemble_options(args, fail)
    if code is not None:
        return code
    files = data_files(args.data, fail)                    # a run folder too
    if isinstance(files, int):
        return files
    data = files[0]
    from closures.slt import SLT, read_profiles, train_slt
    read = read_data(args.device, fail, lambda: read_profiles(data))
    if isinstance(read, int):
        return read
    u, _ = read
    code = check_kind_flags(args.kind, given, fail)
    if code is not None:
        return code
    if args.kind == "local":
        return _train_local(args, given, data, u, fail)
    arch = {k: getattr(args, k) for k in SLT_ARCHITECTURE}
    init_model = None
    if args.init_from is not None:
        init_model = _init_model(args, given, dict(points=u.shape[2], **arch), fail)
        if isinstance(init_model, int):
            return init_model
        args.window = arch["window"] = init_model.window
    code = _check_windows(args, u, data, fail)
    if code is not None:
        return code
    if init_model is None:
        try:
            SLT(u.shape[2], **arch)
        except ValueError as e:
            flag = error_flag(str(e), ("latent_points", "heads", "width", "points", "window"))
            return fail(f"{flag}: {e}")
    return run_training(
        train_slt, data, args, fail, _slt_summary, gamma=args.gamma, members=args.members,
        unroll=args.unroll, reencode=args.reencode, init_from=args.init_from,
        init_model=init_model, **arch)


def _check_windows(args: argparse.Namespace, u, data, fail) -> int | None:
    """The exit code when the training saves per member of ``u`` (members, times, n) hold no
    window of ``--window`` + ``--unroll`` profiles, else None."""
    per = int(round((1 - args.val_fraction) * u.shape[1]))
    if per < args.window + args.unroll:
        return fail(f"--window {args.window}, --unroll {args.unroll}: the {per} training saves "
                    f"per member of {data} hold no window of {args.window + args.unroll} "
                    f"profiles")
    return None


def _train_local(args: argparse.Namespace, given: frozenset[str], data, u, fail) -> int:
    """``hybrid train slt --kind local``: :func:`closures.slt.train_slt` with ``kind='local'``;
    the TEPC flags are refused before (:func:`~hybrid.cli.training.check_kind_flags`), the sizes
    left out take the point-token model's defaults."""
    from closures.slt import train_slt
    from closures.slt.local import LocalSLT
    from closures.slt.train import LOCAL_DEFAULTS
    sizes = {k: getattr(args, k) if k in given else None for k in LOCAL_DEFAULTS}
    resolved = {k: LOCAL_DEFAULTS[k] if v is None else v for k, v in sizes.items()}
    init_model = None
    if args.init_from is not None:
        arch = dict(points=u.shape[2], window=args.window, dealias=args.dealias, **resolved)
        init_model = _init_model(args, given, arch, fail)
        if isinstance(init_model, int):
            return init_model
        args.window = init_model.window
    code = _check_windows(args, u, data, fail)
    if code is not None:
        return code
    if init_model is None:
        try:
            LocalSLT(u.shape[2], args.window, **resolved)
        except ValueError as e:
            flag = error_flag(str(e), ("span", "heads", "width", "window", "noise_channels"))
            return fail(f"{flag}: {e}")
    return run_training(
        train_slt, data, args, fail, _slt_summary, gamma=args.gamma, members=args.members,
        unroll=args.unroll, reencode=False, kind="local", window=args.window,
        dealias=args.dealias, init_from=args.init_from, init_model=init_model, **sizes)


def _init_model(args: argparse.Namespace, given: frozenset[str], arch: dict, fail):
    """The SLT of ``--init-from``, loaded once and checked against ``arch`` (the data's points
    and the architecture flags), or the exit code of a failed check."""
    from closures.slt import load_slt
    from closures.slt.train import pretrained_slt
    try:
        model = load_slt(args.init_from)
    except (OSError, ValueError) as e:
        return fail(f"--init-from: {e}")
    code = check_pretrained_architecture(args, given, model.config,
                                         f"--init-from {args.init_from}", fail)
    if code is not None:
        return code
    try:
        return pretrained_slt(args.init_from, dict(arch, residual=True), model=model)
    except ValueError as e:
        return fail(f"--init-from: {e}")


def _slt_summary(metrics: dict) -> tuple[str, dict]:
    val = metrics.get("final_val") or {}
    one = metrics.get("one_step") or {}
    return (f"validation energy score of U {val.get('es_u', float('nan')):.4g}, one-step "
            f"spread/error {one.get('spread_to_error') or float('nan'):.3g}",
            {"final_train": metrics.get("final_train"), "final_val": val, "one_step": one})


# the handler of each model, called with the arguments and the flags given
HANDLERS = {"ldm": _train_ldm, "slt": _train_slt, "ensemble-ldm": train_ensemble.handler,
            "ensemble-mean": train_ensemble.mean_handler,
            "slt-closure": train_slt_closure.handler, "slt-conditioned": train_conditioned.handler}
