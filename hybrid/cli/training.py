"""The steps every model of ``hybrid train`` shares (:mod:`hybrid.cli.train`: ldm, slt;
:mod:`hybrid.cli.train_ensemble`: ensemble-ldm; :mod:`hybrid.cli.train_slt_closure`:
slt-closure; :mod:`hybrid.cli.train_conditioned`: slt-conditioned): the flags each model takes
and their defaults (:data:`MODEL_FLAGS`; added to the parser by :func:`add_model_flags`, listed
in the help by :func:`models_epilog`), checked and filled in by :func:`prepare`, the
``--data`` files (:func:`data_files`), the ``--device`` and the data read (:func:`read_data`),
the options of the ensemble models (:func:`check_ensemble_options`), the flags of one ``--kind``
(:func:`check_kind_flags`), the architecture flags
given with a pretrained model (:func:`check_pretrained_architecture`), the flag an architecture
error is about (:func:`error_flag`), and the output checks, the training call and its report
(:func:`run_training`).

A step that fails prints ``hybrid train: error: …`` through the caller's ``fail`` and returns
its exit code (an ``int``) in place of its result.
"""
from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import textwrap
from pathlib import Path

from solvers.files import check_output_file

from .arguments import EXIT_INTERRUPTED, EXIT_OK

__all__ = ["MODEL_FLAGS", "MODES", "SLT_ARCHITECTURE", "flag_name", "models_epilog",
           "add_model_flags", "prepare", "fill_defaults", "data_files", "read_data",
           "check_ensemble_options", "check_pretrained_architecture", "check_kind_flags",
           "error_flag",
           "run_training"]

# the architecture flags of an SLT (those of its config), with slt's defaults
_SLT_ARCH = {"latent_points": None, "channels": 4, "window": 10, "width": None, "heads": None,
             "layers": 2, "hidden": None, "phase": "common"}
SLT_ARCHITECTURE = tuple(_SLT_ARCH)
_ENERGY_SCORE = {"gamma": 0.9825, "members": 4}
_UNROLL = {"unroll": 1, "reencode": False}
# model → the flags it takes besides --data, --out and the run options (those every model takes
# with one default), by destination, each with the value it has when not given. The parser's
# default of each is None: a flag that is not None was given, and one a model does not take
# exits 2.
MODEL_FLAGS: dict[str, dict] = {
    "ldm": {"epochs": 50, "batch": 32, "lr": 1e-3, "lr_halving_every": 100,
            "space": "latent", "mode": "joint", "ae_epochs": None, "latent_channels": 1,
            "ae_channels": [16, 32, 32], "width": 20, "modes": 4, "layers": 4, "time_dim": 64,
            "proj_hidden": 64, "mean_width": 0, "mean_blocks": 2},
    "slt": {"epochs": 400, "batch": 200, "lr": 5e-4, **_ENERGY_SCORE, **_SLT_ARCH, **_UNROLL,
            "init_from": None, "kind": "latent", "span": None, "noise_channels": None,
            "dealias": False},
    "ensemble-ldm": {"epochs": 100, "batch": 200, "lr": 1e-3, "gamma": 0.9825,
                     "mode": "autoregressive", "latent_points": None, "channels": 4,
                     "phase": "common", "width": 64, "heads": 4, "layers": 3, "hidden": 128,
                     "time_dim": 64, "vae_epochs": None, "kl_weight": 1e-3, "context": 4,
                     "horizon": None, "diffusion_steps": 1000, "eval_steps": 50,
                     "eval_starts": 2, "distil_from": None, "distil_factor": 2},
    "ensemble-mean": {"lags": 10, "ridge": 0.01, "pool": 5, "linear": False, "width": 32,
                      "layers": 8, "epochs": 40},
    "slt-closure": {"epochs": 50, "batch": 32, "lr": 1e-3, **_ENERGY_SCORE, "window": 10,
                    "latent_channels": 1, "ae_channels": [16, 32, 32], "width": 64,
                    "heads": None, "layers": 2, "hidden": None, "mean_width": 0,
                    "mean_blocks": 2, "no_mean_network": False, "no_cold_start": False,
                    "eval_windows": 512, "init_mean": None},
    # the architecture left at None: train_conditioned_slt's defaults, or the pretrained model's
    "slt-conditioned": {"epochs": 400, "batch": 200, "lr": 5e-4, **_ENERGY_SCORE,
                        **dict.fromkeys(SLT_ARCHITECTURE), **_UNROLL, "params": None,
                        "pretrained": None, "freeze": False, "conditioning": None,
                        "lr_factor": None, "kind": "latent", "span": None,
                        "noise_channels": None, "dealias": False},
}
# the values --mode takes, for the models that take it
MODES = {"ldm": ("joint", "two-phase"), "ensemble-ldm": ("autoregressive", "window")}
# the models whose --data is one file
_ONE_FILE = ("ldm", "slt", "slt-closure")
_ALL_FLAGS = tuple(dict.fromkeys(k for flags in MODEL_FLAGS.values() for k in flags))


def flag_name(dest: str) -> str:
    """The command-line flag of the argument ``dest`` (``init_from`` → ``--init-from``)."""
    return "--" + dest.replace("_", "-")


def models_epilog() -> str:
    """The help's list of the flags each model takes beyond those every model takes, a line
    each (wrapped without splitting a flag)."""
    common = set.intersection(*(set(f) for f in MODEL_FLAGS.values()))
    lines = [textwrap.fill(f"{model}: {' '.join(flag_name(k) for k in flags if k not in common)}",
                           79, initial_indent="  ", subsequent_indent="      ",
                           break_on_hyphens=False) for model, flags in MODEL_FLAGS.items()]
    return "\n".join(["flags by model, beyond those every model takes (any other exits 2, even "
                      "at its\ndefault value):", *lines])


def add_model_flags(group: argparse._ActionsContainer, flags: dict[str, dict]) -> None:
    """Add flags that not every model takes (flag → the keywords of ``add_argument``), each
    with the parser default None: a flag given is one that is not None (:func:`prepare`)."""
    for flag, keywords in flags.items():
        group.add_argument(flag, default=None, **keywords)


def prepare(args: argparse.Namespace, fail) -> frozenset[str] | int:
    """The checks every model shares, made before any work: no flag that the model does not
    take (:data:`MODEL_FLAGS`), one ``--data`` file where the model reads one, ``--resume``
    without ``--overwrite``, then the model's defaults filled in and ``--mode`` checked.
    Returns the destinations of the flags given, or the exit code of the first check that
    fails."""
    flags = MODEL_FLAGS[args.model]
    given = frozenset(k for k in _ALL_FLAGS if getattr(args, k) is not None)
    foreign = [k for k in _ALL_FLAGS if k in given and k not in flags]
    if foreign:
        owners = ", ".join(m for m, f in MODEL_FLAGS.items() if foreign[0] in f)
        return fail(f"{flag_name(foreign[0])} is not an option of {args.model} (only of "
                    f"{owners})")
    if args.model in _ONE_FILE and len(args.data) > 1:
        return fail(f"--data takes one file for {args.model}")
    if args.resume and args.overwrite:
        return fail("--resume and --overwrite exclude each other")
    fill_defaults(args, flags)
    modes = MODES.get(args.model)
    if modes is not None and args.mode not in modes:
        return fail(f"--mode must be one of {', '.join(modes)} for {args.model}, got "
                    f"{args.mode!r}")
    return given


def fill_defaults(args: argparse.Namespace, defaults: dict) -> None:
    """Set the arguments left at None to their value in ``defaults``."""
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, copy.copy(v))


def data_files(paths: list[Path], fail, folders: bool = True):
    """The files of ``--data`` (with ``folders``, a run folder stands for its trajectory.nc or
    emulation.nc, as ``hybrid jets`` reads it), or the exit code of a failed check."""
    from hybrid.jets.report import FILES, run_file
    files = []
    for data in (p.expanduser() for p in paths):
        if not data.exists():
            return fail(f"--data: {data} does not exist")
        if folders and data.is_dir():
            found = run_file(data)
            if found is None:
                return fail(f"--data: folder {data} holds none of {', '.join(FILES)}")
            data = found
        if not data.is_file():
            return fail(f"--data: {data} is not a file")
        files.append(data)
    return files


def read_data(device: str, fail, read):
    """``--device`` checked, then ``read()`` (the model's reader of ``--data``): its result, or
    the exit code of a bad device or unreadable data."""
    import torch
    try:
        torch.device(device)
    except (RuntimeError, ValueError) as e:
        return fail(f"--device: {e}")
    try:
        return read()
    except (OSError, ValueError) as e:
        return fail(f"--data: {e}")


def check_ensemble_options(args: argparse.Namespace, fail) -> int | None:
    """The options of the models that train or score an ensemble (every model but ldm):
    ``--members`` ≥ 2 where the model takes it (the energy score's spread term), ``--gamma`` in
    (0, 1] and ``--samples-eval`` ≥ 2 (an ensemble spread). The exit code of the first that
    fails, else None."""
    if "members" in MODEL_FLAGS[args.model] and args.members < 2:
        return fail(f"--members must be ≥ 2 (the energy score's spread term), got {args.members}")
    if not 0 < args.gamma <= 1:
        return fail(f"--gamma must lie in (0, 1], got {args.gamma}")
    if args.samples_eval < 2:
        return fail(f"--samples-eval must be ≥ 2 (an ensemble spread), got {args.samples_eval}")
    return None


def check_pretrained_architecture(args: argparse.Namespace, given: frozenset[str],
                                  config: dict, source: str, fail) -> int | None:
    """With a pretrained SLT (``source``: its flag and value), each architecture flag given
    must equal the model's ``config``: the exit code of the first that does not, else None."""
    for k in SLT_ARCHITECTURE:
        if k in given and getattr(args, k) != config.get(k):
            return fail(f"{flag_name(k)}: the architecture comes from {source}, whose {k} is "
                        f"{config.get(k)}; leave {flag_name(k)} out or give that value")
    return None


def check_kind_flags(kind: str, given: frozenset[str], fail) -> int | None:
    """The flags ``given`` fit ``--kind``: with ``local`` none of the TEPC autoencoder's, with
    ``latent`` none of the point-token model's. The exit code of ``fail`` naming the first that
    does not, else None."""
    if kind == "local":
        tepc = sorted(given & {"latent_points", "channels", "phase", "reencode"})
        if tepc:
            return fail(f"{flag_name(tepc[0])} is about the TEPC autoencoder, which --kind local "
                        f"does not have")
        return None
    local = sorted(given & {"span", "noise_channels", "dealias"})
    if local:
        return fail(f"{flag_name(local[0])} is an option of the point-token model: give "
                    f"--kind local")
    return None


def error_flag(message: str, names, flags: dict | None = None) -> str:
    """The flag an architecture error ``message`` is about: the first argument of ``names`` it
    mentions, as its flag (``flags``: name → another flag), else ``--data``."""
    for name in names:
        if name in message:
            return (flags or {}).get(name, flag_name(name))
    return "--data"


def run_training(train, data, args: argparse.Namespace, fail, summary, **model_kwargs) -> int:
    """The outputs in ``--out`` checked (``--resume`` needs the checkpoint), then ``train(data,
    args.out, ...)`` with the options every model shares and ``model_kwargs``, then the report:
    ``hybrid train: E epochs in T s; TEXT → WEIGHTS, CARD`` on stderr and the JSON of the
    weights, the card and FIELDS on stdout, where ``(TEXT, FIELDS) = summary(metrics)``. Returns
    the exit code: 0, or that of a failed check, an error or an interrupt."""
    from closures.train import train_paths
    paths = train_paths(args.out)
    if args.resume and not paths["checkpoint"].is_file():
        return fail(f"--resume: no checkpoint {paths['checkpoint']}")
    try:
        for p in paths.values():
            check_output_file(p, "--out", overwrite=args.overwrite or args.resume,
                              overwrite_hint="--overwrite or --resume")
    except (TypeError, ValueError, OSError) as e:
        return fail(str(e))
    try:
        metrics = train(
            data, args.out, epochs=args.epochs, batch=args.batch, lr=args.lr,
            val_fraction=args.val_fraction, seed=args.seed, device=args.device,
            threads=args.threads, resume=args.resume, progress=not args.no_progress,
            checkpoint_every=args.checkpoint_every, samples_eval=args.samples_eval,
            command=shlex.join(args.argv), **model_kwargs)
    except KeyboardInterrupt:
        print(f"hybrid train: interrupted; continue with --resume from {paths['checkpoint']}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, ValueError) as e:
        return fail(str(e))
    text, fields = summary(metrics)
    print(f"hybrid train: {metrics['epochs']} epochs in {metrics['training_time_s']:.1f} s; "
          f"{text} → {paths['weights']}, {paths['card']}", file=sys.stderr)
    print(json.dumps({"weights": str(paths["weights"]), "card": str(paths["card"]), **fields},
                     default=str))
    return EXIT_OK
