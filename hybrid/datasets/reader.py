"""The one reader of closure dataset files: :func:`open_dataset` (complete samples only) for
everyone, :func:`read_header` for a generator about to continue a file, and
:func:`check_dataset_matches` for trainers."""
from __future__ import annotations

import os

from .schema import (DATASET_FORMAT, FORMAT_VERSION, HEADER_ATTRS, VARIABLES, DatasetFileError,
                     DatasetMismatchError)

__all__ = ["open_dataset", "read_header", "check_dataset_matches"]


def open_dataset(path, **kwargs):
    """Open a closure dataset as an ``xarray.Dataset`` holding its complete samples only (records
    a killed run left beyond ``samples_complete`` are dropped). ``kwargs`` go to
    ``xarray.open_dataset``. A missing, corrupt or non-closure-dataset file raises
    FileNotFoundError / :class:`DatasetFileError` naming the file. The closure term is
    ``ds.attrs['closure_sign'] * ds['subgrid']``."""
    from solvers.io import open_netcdf
    p, ds = open_netcdf(path, "closure dataset", DatasetFileError, **kwargs)
    problem = None
    if ds.attrs.get("dataset_format") != DATASET_FORMAT:
        problem = f"no dataset_format={DATASET_FORMAT!r} attribute"
    elif int(ds.attrs.get("format_version", 0)) > FORMAT_VERSION:
        problem = (f"format version {ds.attrs['format_version']}; this package reads up to "
                   f"{FORMAT_VERSION}")
    else:
        missing = [v for v in VARIABLES[:4] if v not in ds.variables]
        if missing:
            problem = f"it lacks the variable(s) {missing}"
    if problem is not None:
        ds.close()
        raise DatasetFileError(f"{p} is a netCDF file but not a closure dataset: {problem}")
    complete = int(ds.attrs.get("samples_complete", 0))
    if complete < ds.sizes["sample"]:
        ds = ds.isel(sample=slice(0, complete))
    return ds


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
