"""What a closure dataset file is made of, as its generator sees it: the targets, the attributes a
generator continues from, the errors of the files and small helpers shared by the modules that
write it. The format itself (name, version, variables, the file error) and its one reader are in
:mod:`closures.dataset_file`."""
from __future__ import annotations

import os
from pathlib import Path

from closures.dataset_file import DATASET_FORMAT, FORMAT_VERSION, VARIABLES, DatasetFileError

TARGETS = ("subgrid", "missing-physics")
RUNTIME_KEYS = ("members", "seed", "first_member")       # not part of the stored LES config
HEADER_ATTRS = ("preset", "dns_solver", "dns_config", "les_config", "initial_json", "n_dns",
                "n_les", "target", "filter", "filter_width", "seed", "members", "interval",
                "spinup", "run_id", "created", "samples_complete", "sampling_times_complete")

__all__ = ["DATASET_FORMAT", "FORMAT_VERSION", "TARGETS", "VARIABLES", "HEADER_ATTRS",
           "DatasetFileError", "DatasetMismatchError", "restart_path", "pending_path",
           "differences", "fsync_path", "fsync_dir"]


class DatasetMismatchError(ValueError):
    """A closure dataset was made with another preset or configuration than the one asked for."""


def restart_path(out) -> Path:
    """The restart file that belongs to dataset ``out``: ``<out>.restart.nc``."""
    p = Path(os.fspath(out)).expanduser()
    return p.with_name(p.name + ".restart.nc")


def pending_path(out: Path) -> Path:
    """Where the next restart is written before it replaces :func:`restart_path`."""
    return out.with_name(out.name + ".restart.nc.pending")


def differences(a: dict, b: dict) -> list[str]:
    """'key: a vs b' for every key whose value differs between ``a`` and ``b``."""
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k, '<absent>')!r} vs {b.get(k, '<absent>')!r}" for k in keys
            if a.get(k, "<absent>") != b.get(k, "<absent>")]


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    try:
        fsync_path(folder)
    except OSError:                                   # some filesystems refuse directory fsync
        pass

