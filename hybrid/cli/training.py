"""The steps every model of ``hybrid train`` shares (:mod:`hybrid.cli.train`: ldm, slt;
:mod:`hybrid.cli.train_ensemble`: ensemble-ldm): the model's defaults (:func:`fill_defaults`),
the ``--data`` files (:func:`data_files`), the ``--device`` and the data read
(:func:`read_data`), the options of the models trained with the energy score
(:func:`check_ensemble_options`), the flag an architecture error is about (:func:`error_flag`),
and the output checks, the training call and its report (:func:`run_training`).

A step that fails prints ``hybrid train: error: …`` through the caller's ``fail`` and returns
its exit code (an ``int``) in place of its result.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from solvers.files import check_output_file

from .arguments import EXIT_INTERRUPTED, EXIT_OK

__all__ = ["fill_defaults", "data_files", "read_data", "check_ensemble_options", "error_flag",
           "run_training"]


def fill_defaults(args: argparse.Namespace, defaults: dict) -> None:
    """Set the arguments left at None (the shared flags whose default depends on the model) to
    the model's ``defaults``."""
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)


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
    """The options of a model trained with the energy score of an ensemble (``slt``,
    ``slt-closure``): ``--resume`` without ``--overwrite``, ``--members`` ≥ 2 (the score's
    spread term), ``--gamma`` in (0, 1] and ``--samples-eval`` ≥ 2 (an ensemble spread). The
    exit code of the first that fails, else None."""
    if args.resume and args.overwrite:
        return fail("--resume and --overwrite exclude each other")
    if args.members < 2:
        return fail(f"--members must be ≥ 2 (the energy score's spread term), got {args.members}")
    if not 0 < args.gamma <= 1:
        return fail(f"--gamma must lie in (0, 1], got {args.gamma}")
    if args.samples_eval < 2:
        return fail(f"--samples-eval must be ≥ 2 (an ensemble spread), got {args.samples_eval}")
    return None


def error_flag(message: str, names, flags: dict | None = None) -> str:
    """The flag an architecture error ``message`` is about: the first argument of ``names`` it
    mentions, as its flag (``flags``: name → another flag), else ``--data``."""
    for name in names:
        if name in message:
            return (flags or {}).get(name, f"--{name.replace('_', '-')}")
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
