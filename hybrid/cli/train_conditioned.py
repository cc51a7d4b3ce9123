"""``hybrid train slt-conditioned``: train the parameter-conditioned stochastic latent
transformer (:func:`closures.slt.train_conditioned_slt`) on runs at several parameter values.

    hybrid train slt-conditioned --data RUN [RUN ...] --params NAME[,NAME] --out STEM
                                 [--pretrained MODEL] [--freeze] [--conditioning adaln|concat]
                                 [--lr-factor F] [--epochs N] [--batch B] [--lr LR]
                                 [--gamma G] [--window L] [--members M] [--unroll K]
                                 [--reencode] [architecture: --latent-points --channels --width
                                 --heads --layers --hidden --phase] [--kind latent|local]
                                 [--span S] [--noise-channels K] [--dealias] [--val-fraction F]
                                 [--samples-eval K] [--device DEV] [--threads T] [--seed S]
                                 [--resume] [--overwrite] [--checkpoint-every N] [--no-progress]

``--data``: zonal-mean runs (``hybrid dns PRESET --record zonal-mean --set beta=…``; folders or
files), each at its own parameter values, which are read from the run's solver configuration.
``--params``: the names the model is conditioned on, comma-separated (``beta`` or ``beta,mu``).
``--pretrained``: fine-tune that model (a shipped name such as ``slt-betaplane-small`` or the
stem of a trained SLT or conditioned SLT) at ``--lr`` × ``--lr-factor`` (default 5e-4/50), with
its architecture and normalisation of U; an architecture flag given with it must equal the
model's.
``--freeze``: the conditioning fixed at the identity (pre-training at one parameter value).
``--kind local``: the point-token model
(:class:`closures.slt.local_conditioned.ConditionedLocalSLT`, ``hybrid train slt --kind local``
with adaptive LayerNorms), which runs on profiles of any length (the runs may differ in length
at one grid spacing: boxes of several sizes); the TEPC flags (``--latent-points``,
``--channels``, ``--phase``, ``--reencode``) do not apply.
Defaults are ``hybrid train slt``'s (400 epochs, batch 200, lr 5e-4, γ 0.9825, L = 10,
4 members).

The flags shared with the other models are the ``hybrid train`` parser's; :func:`add_arguments`
adds the ones of this model, and :func:`handler` runs when the model is ``slt-conditioned``,
after the checks every model shares (the flags it takes and their defaults:
:data:`hybrid.cli.training.MODEL_FLAGS`). Every argument is checked before any work: a missing
run, a parameter a run does not record, an unreadable pretrained model, bad numbers or an output
that exists (without ``--overwrite`` or ``--resume``) exit with code 2 and a message naming the
flag, with nothing written.
"""
from __future__ import annotations

import argparse
import functools

from .arguments import positive_float
from .arguments import fail as cli_fail
from .training import (SLT_ARCHITECTURE, add_model_flags, check_ensemble_options,
                       check_kind_flags, check_pretrained_architecture, data_files, error_flag,
                       flag_name, run_training)

__all__ = ["add_arguments", "handler", "LR_FACTOR"]

LR_FACTOR = 1 / 50
LOCAL_FLAGS = ("span", "noise_channels", "dealias", "kind")
# what the head of an error message of train_conditioned_slt names → its flag
FLAGS = {"datasets": "--data", "parameters": "--params", "conditioning": "--conditioning",
         "pretrained": "--pretrained", "lr_factor": "--lr-factor", "unroll": "--unroll"}


def parameter_names(text: str) -> list[str]:
    """``--params``: comma-separated parameter names (``beta`` or ``beta,mu``)."""
    from closures.slt.conditioned import check_parameter_names
    try:
        return list(check_parameter_names([n.strip() for n in text.split(",")]))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e} (from {text!r})") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``hybrid train slt-conditioned`` that the other models do not have."""
    add_model_flags(p.add_argument_group("slt-conditioned only"), {
        "--params": dict(
            type=parameter_names, metavar="NAME[,NAME]",
            help="the parameters the model is conditioned on, as named in the runs' "
                 "configuration (e.g. beta or beta,mu); their values are read from every --data "
                 "run"),
        "--pretrained": dict(
            metavar="MODEL",
            help="fine-tune this model (a shipped name or a trained model's stem: an SLT or a "
                 "conditioned SLT) at --lr × --lr-factor, its architecture kept: an "
                 "architecture flag given with it must equal the model's"),
        "--freeze": dict(
            action="store_true",
            help="keep the conditioning fixed at the identity (pre-training at one parameter "
                 "value)"),
        "--conditioning": dict(
            choices=("adaln", "concat"),
            help="adaln: adaptive LayerNorm (default); concat: the parameters appended to the "
                 "attention inputs (a pretrained conditioned model keeps its own)"),
        "--lr-factor": dict(
            type=positive_float, metavar="F",
            help="with --pretrained: learning rate --lr × F, F in (0, 1] (default 1/50)")})


def handler(args: argparse.Namespace, given: frozenset[str]) -> int:
    """Validate, then train; exit code 0, 2 (bad input) or 130 (interrupted). Called after
    :func:`hybrid.cli.training.prepare`, which returns ``given`` (the flags given); the steps
    every model shares are :mod:`hybrid.cli.training`'s."""
    fail = functools.partial(cli_fail, command="train")
    if args.params is None:
        return fail("--params is required for slt-conditioned (e.g. --params beta,mu)")
    code = check_ensemble_options(args, fail)
    if code is not None:
        return code
    if args.lr_factor is not None:
        if args.pretrained is None:
            return fail("--lr-factor scales the learning rate of fine-tuning: give it with "
                        "--pretrained")
        if args.lr_factor > 1:
            return fail(f"--lr-factor must be in (0, 1], got {args.lr_factor:g}")
    files = data_files(args.data, fail)
    if isinstance(files, int):
        return files
    code = _check_inputs(args, given, files, fail)
    if code is not None:
        return code
    # None: train_conditioned_slt's default, or with --pretrained the model's (equal if given)
    arch = {k: None if args.pretrained else getattr(args, k) for k in SLT_ARCHITECTURE}
    code = check_kind_flags(args.kind, given, fail)
    if code is not None:
        return code
    if args.kind == "local":
        for k in ("latent_points", "channels", "phase"):
            del arch[k]
        arch.update(kind="local", span=None if args.pretrained else args.span,
                    noise_channels=None if args.pretrained else args.noise_channels,
                    dealias=bool(args.dealias) and not args.pretrained)
    from closures.slt import train_conditioned_slt

    def train(datasets, out, **kwargs) -> dict:
        try:
            return train_conditioned_slt(datasets, out, **kwargs)
        except ValueError as e:                       # named by its flag
            msg = str(e)
            flag = error_flag(msg.split(':')[0], (*FLAGS, *SLT_ARCHITECTURE, *LOCAL_FLAGS),
                              FLAGS)
            raise ValueError(f"{flag}: {msg}") from None

    return run_training(
        train, files, args, fail, _summary, params=args.params, pretrained=args.pretrained,
        lr_factor=LR_FACTOR if args.lr_factor is None else args.lr_factor,
        conditioning=args.conditioning, freeze=args.freeze, gamma=args.gamma,
        members=args.members, unroll=args.unroll, reencode=args.reencode, **arch)


def _check_inputs(args: argparse.Namespace, given: frozenset[str], files, fail) -> int | None:
    """Every run records the parameters; the device and the pretrained model are usable, and
    the architecture flags ``given`` equal the pretrained model's. The exit code of the first
    that fails, else None."""
    import torch

    from closures.slt import ModelFileError, read_parameters, read_slt_card
    try:
        torch.device(args.device)
    except (RuntimeError, ValueError) as e:
        return fail(f"--device: {e}")
    for f in files:
        try:
            read_parameters(f, args.params)
        except (OSError, ValueError) as e:
            flag = "--params" if "records no parameter" in str(e) else "--data"
            return fail(f"{flag}: {e}")
    if args.pretrained is not None:
        try:
            config = read_slt_card(args.pretrained)["config"]
        except (ModelFileError, OSError) as e:
            return fail(f"--pretrained: {e}")
        names = config.get("parameters")
        if names is not None and list(names) != list(args.params):
            return fail(f"--params {','.join(args.params)}: the pretrained model "
                        f"{args.pretrained} is conditioned on {','.join(names)}")
        kind = config.get("conditioning")
        if names is not None and args.conditioning not in (None, kind):
            return fail(f"--conditioning {args.conditioning}: the pretrained model "
                        f"{args.pretrained} uses {kind}")
        model_kind = "local" if config.get("kind") == "local" else "latent"
        if args.kind != model_kind:
            return fail(f"--kind {args.kind}: the pretrained model {args.pretrained} is a "
                        f"{model_kind} model; give --kind {model_kind}")
        for k in ("span", "noise_channels", "dealias"):
            if k in given and getattr(args, k) != config.get(k):
                return fail(f"{flag_name(k)}: the architecture comes from --pretrained "
                            f"{args.pretrained}, whose {k} is {config.get(k)}")
        return check_pretrained_architecture(args, given, config,
                                             f"--pretrained {args.pretrained}", fail)
    return None


def _summary(metrics: dict) -> tuple[str, dict]:
    one = metrics.get("one_step") or []
    skill = "; ".join(
        f"{', '.join(f'{k}={v:g}' for k, v in r['parameters'].items())}: "
        f"{r.get('spread_to_error') or float('nan'):.3g}" for r in one)
    return (f"one-step spread/error per run ({skill})",
            {"final_train": metrics.get("final_train"), "final_val": metrics.get("final_val"),
             "one_step": one})
