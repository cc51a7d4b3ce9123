"""Reading closure dataset files through their one reader, :func:`open_dataset` (complete samples
only; from :mod:`closures.dataset_file`): :func:`read_header` for a generator about to continue
a file, and :func:`check_dataset_matches` for trainers."""
from __future__ import annotations

import os

from closures.dataset_file import open_dataset

from .schema import HEADER_ATTRS, VARIABLES, DatasetFileError, DatasetMismatchError

__all__ = ["open_dataset", "read_header", "check_dataset_matches"]


def read_header(path) -> dict:
    """The global attributes of a closure dataset that a generator continues
    (:func:`open_dataset`'s checks, and every variable and attribute the generator needs); errors
    name the file."""
    with open_dataset(path) as ds:
        attrs = dict(ds.attrs)
        missing = [v for v in VARIABLES if v not in ds.variables]
    missing += [f"attribute {a}" for a in HEADER_ATTRS if a not in attrs]
    if missing:
        raise DatasetFileError(f"closure dataset {path} is incomplete: it lacks {missing}")
    return attrs


def check_dataset_matches(ds, preset, les_n: int | None = None) -> None:
    """Raise :class:`DatasetMismatchError` unless ``ds`` (a dataset from :func:`open_dataset`, or
    a path) was generated from preset ``preset`` (a name or Preset) with LES grid ``les_n``
    (if given). For trainers: a model must be trained on data of the configuration it will run."""
    name = getattr(preset, "name", preset)
    if isinstance(ds, (str, os.PathLike)):
        with open_dataset(ds) as opened:
            return check_dataset_matches(opened, name, les_n)
    src = ds.encoding.get("source", "<in memory>")
    have = ds.attrs.get("preset")
    if have != name:
        raise DatasetMismatchError(f"closure dataset {src} is a dataset from another preset: "
                                   f"{have!r}, expected {name!r}")
    if les_n is not None and int(ds.attrs.get("n_les", -1)) != int(les_n):
        raise DatasetMismatchError(f"closure dataset {src} is on an LES grid of "
                                   f"{ds.attrs.get('n_les')}², expected {les_n}²")
