"""The closure dataset file (the netCDF4 files of ``hybrid generate``): its format and its one
reader, used by the generator (:mod:`hybrid.datasets`, which writes the files) and the trainers
(:class:`closures.data.ClosureDataset`). It lives in ``closures`` because both stand on it and
``closures`` never imports ``hybrid``; it loads no torch.

Layout (the full list of attributes is in :mod:`hybrid.datasets`)::

    dims       sample (unlimited), y, x                      (the LES grid)
    omega_bar  (sample, y, x)  float32   filtered / coarse vorticity
    subgrid    (sample, y, x)  float32   C = closure_sign · subgrid is the LES closure tendency
    member     (sample)        int32     ensemble member of the sample
    time       (sample)        float64   DNS time of the sample
    step       (sample)        int64     DNS step count of the sample
    sequence   (sample)        int64     only with consecutive > 1: the sampling time index k
    position   (sample)        int32     only with consecutive > 1: j = 0 … consecutive − 1
    attributes dataset_format, format_version, closure_sign (or on ``subgrid``),
               samples_complete, n_les, L, preset, split_fractions, split_validation_from,
               split_test_from, …; with consecutive > 1 also consecutive, refresh_every,
               refresh_interval, les_dt

Consecutive samples (``hybrid generate --consecutive K``, K > 1): every sampling time t_k holds,
per member, K samples at t_k + j·refresh_interval (j = 0 … K − 1, refresh_interval =
refresh_every · les_dt, the LES closure's refresh period), marked by ``sequence`` = k and
``position`` = j; a member's samples of one sequence are a history of the LES's refreshes. A
file without these variables (K = 1, the format before them) is read as sequences of one.

``samples_complete`` counts the samples written in full (a file without it: all records);
records beyond it are the debris of a killed writer and no reader shows them.

Split. Three blocks of sampling time, in this order: training, validation, test. A file records
its blocks as ``split_fractions`` and the first time of the validation and test blocks
(:func:`split_attributes`); :func:`split_blocks` reads them, and divides a file without them by
fractions (:func:`time_split`).

Errors name the file: FileNotFoundError / IsADirectoryError for a missing path,
:class:`DatasetFileError` (a ValueError) for a file that is not a usable closure dataset.
"""
from __future__ import annotations

import math

import numpy as np

from solvers.files import json_text
from solvers.validate import integer

__all__ = ["DATASET_FORMAT", "FORMAT_VERSION", "VARIABLES", "SEQUENCE_VARIABLES",
           "DEFAULT_SPLIT", "SPLIT_ATTRS",
           "DatasetFileError", "open_dataset", "closure_sign", "read_samples", "time_split",
           "check_split", "split_attributes", "split_blocks"]

DATASET_FORMAT = "hybrid-closure-dataset"
FORMAT_VERSION = 1
VARIABLES = ("omega_bar", "subgrid", "member", "time", "step")   # the first four are required
SEQUENCE_VARIABLES = ("sequence", "position")        # files of consecutive samples only
DEFAULT_SPLIT = (0.7, 0.15, 0.15)      # training, validation, test fractions of hybrid generate
SPLIT_ATTRS = ("split_fractions", "split_validation_from", "split_test_from")
_FILL = {"f4": 9.969209968386869e36, "f8": 9.969209968386869e36, "i4": -2147483647,
         "i8": -9223372036854775806}                # netCDF's default fill values: never written


class DatasetFileError(ValueError):
    """A file that should be a closure dataset (or, to its generator, the restart beside it)
    cannot be used as one; the message names the file."""


# ------------------------------------------------------------------ reading
def _problem(ds) -> str | None:
    """What makes an opened netCDF file no closure dataset, or None."""
    a = ds.attrs
    if a.get("dataset_format") != DATASET_FORMAT:
        return f"no dataset_format={DATASET_FORMAT!r} attribute"
    if int(a.get("format_version", 0)) > FORMAT_VERSION:
        return f"format version {a['format_version']}; this package reads up to {FORMAT_VERSION}"
    missing = [v for v in VARIABLES[:4] if v not in ds.variables]
    if missing:
        return f"it lacks the variable(s) {', '.join(missing)}"
    w, s = ds["omega_bar"], ds["subgrid"]
    if w.ndim != 3 or w.shape != s.shape or w.dims != s.dims:
        return (f"omega_bar and subgrid must both be (sample, y, x) of one shape, got "
                f"{tuple(w.shape)} and {tuple(s.shape)}")
    length, ny, nx = w.shape
    if ny != nx:
        return f"fields must be square, got {ny}×{nx}"
    sequence = [v for v in SEQUENCE_VARIABLES if v in ds.variables]
    if sequence and len(sequence) != len(SEQUENCE_VARIABLES):
        lacking = [v for v in SEQUENCE_VARIABLES if v not in sequence]
        return f"it has {sequence[0]} but not {lacking[0]} (consecutive samples need both)"
    for v in ("member", "time", *sequence):
        if ds[v].dims != w.dims[:1]:
            return f"{v} must be one value per sample ({length}), got shape {tuple(ds[v].shape)}"
    if "n_les" in a and int(a["n_les"]) != nx:
        return f"attribute n_les = {a['n_les']} but the fields are {ny}×{nx}"
    if closure_sign(ds) is None:
        return "it does not state closure_sign = ±1 (C = closure_sign · subgrid)"
    return None


def open_dataset(path, **kwargs):
    """Open a closure dataset as an ``xarray.Dataset`` (lazily) holding its complete samples
    only. ``kwargs`` go to ``xarray.open_dataset``. A missing, corrupt or non-closure-dataset file
    raises FileNotFoundError / IsADirectoryError / :class:`DatasetFileError` naming the file.
    The closure term is ``closure_sign(ds) * ds['subgrid']``."""
    from solvers.io import open_netcdf
    p, ds = open_netcdf(path, "closure dataset", DatasetFileError, **kwargs)
    try:
        problem = _problem(ds)
    except (TypeError, ValueError, KeyError) as e:
        problem = f"unreadable attributes ({e})"
    if problem is not None:
        ds.close()
        raise DatasetFileError(f"{p} is a netCDF file but not a closure dataset: {problem}")
    length = ds.sizes["sample"]
    complete = max(0, min(int(ds.attrs.get("samples_complete", length)), length))
    if complete < length:
        ds = ds.isel(sample=slice(0, complete))
    return ds


def closure_sign(ds) -> int | None:
    """The file's closure sign (C = closure_sign · subgrid): the global attribute, else that of
    ``subgrid``; None when neither states ±1."""
    sign = ds.attrs.get("closure_sign", ds["subgrid"].attrs.get("closure_sign"))
    try:
        sign = int(sign)
    except (TypeError, ValueError):
        return None
    return sign if sign in (-1, 1) else None


def read_samples(ds, name: str, start: int = 0, stop: int | None = None,
                 dtype=np.float32) -> np.ndarray:
    """Samples ``start:stop`` of variable ``name`` of an :func:`open_dataset` as ``dtype``;
    :class:`DatasetFileError` naming the file and the first bad sample if any value is missing
    (a fill value) or not finite."""
    src = ds.encoding.get("source", "<in memory>")
    var = ds[name]
    stop = ds.sizes["sample"] if stop is None else stop
    try:
        x = np.asarray(var[start:stop].values)
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        raise DatasetFileError(f"closure dataset {src}: cannot read {name}[{start}:{stop}]: "
                               f"{e}") from e
    rows = x.reshape(x.shape[0], -1) if x.size else x.reshape(0, 1)
    fill = _FILL.get(np.dtype(var.encoding.get("dtype", x.dtype)).str[1:])
    for bad, what in (((rows == fill) if fill is not None else np.zeros_like(rows, bool),
                       "missing (fill) values"),
                      (~np.isfinite(rows) if rows.dtype.kind == "f" else
                       np.zeros_like(rows, bool), "non-finite values")):
        hit = np.flatnonzero(bad.any(axis=1))
        if hit.size:
            raise DatasetFileError(f"closure dataset {src}: {name} has {what} at sample "
                                   f"{start + int(hit[0])}, within the complete samples")
    return x.astype(dtype, copy=False)


# ------------------------------------------------------------------ the split
def time_split(fractions, times: int, gap: int = 0) -> tuple[int, int, int]:
    """Numbers of sampling times (n_train, n_val, n_test) of T = ``times`` for the fractions
    (f_train, f_val, f_test) (non-negative, summing to 1): n_test = ceil(f_test·T),
    n_val = ceil(f_val·T) (0 for a zero fraction), n_train = T − n_val − n_test − ``gap`` per
    boundary crossed. Raises ValueError naming ``fractions`` or ``times`` when they cannot hold
    the blocks asked for."""
    try:
        f = tuple(float(x) for x in fractions)
    except (TypeError, ValueError):
        f = ()
    if len(f) != 3 or not all(math.isfinite(x) and x >= 0 for x in f) or \
            not math.isclose(sum(f), 1.0, abs_tol=1e-9):
        raise ValueError(f"split fractions must be three numbers ≥ 0 (training, validation, "
                         f"test) summing to 1, got {fractions!r}")
    times = integer("times", times, 1)
    n_test = math.ceil(f[2] * times - 1e-9) if f[2] > 0 else 0
    n_val = math.ceil(f[1] * times - 1e-9) if f[1] > 0 else 0
    n_train = times - n_val - n_test - gap * ((n_val > 0) + (n_test > 0))
    if f[0] > 0 and n_train < 1:
        raise ValueError(f"{times} sampling time(s) cannot be split as {list(f)} (gap {gap}): "
                         f"validation takes {n_val}, test {n_test}")
    return max(n_train, 0), n_val, n_test


def check_split(fractions) -> tuple[float, float, float]:
    """The fractions (training, validation, test) as floats, checked on their own (any number of
    sampling times large enough); ValueError as :func:`time_split`."""
    try:
        f = tuple(float(x) for x in fractions)
    except (TypeError, ValueError):
        f = None
    time_split(fractions if f is None or len(f) != 3 else f, 1 if f and f[0] == 0 else 10**6)
    return f


def split_attributes(fractions, times: int, first: float, interval: float) -> dict:
    """The attributes that record the split of ``times`` sampling times ``first + k·interval``:
    the fractions and the first time of the validation and test blocks."""
    n_train, n_val, _ = time_split(fractions, times)
    return {"split_fractions": json_text([float(x) for x in fractions]),
            "split_validation_from": float(first + n_train * interval),
            "split_test_from": float(first + (n_train + n_val) * interval)}


def split_blocks(times: np.ndarray, attrs: dict, fractions, gap: int = 0):
    """``((training, validation, test), source)``: the distinct sorted sampling ``times`` in the
    three blocks, from the file's recorded boundaries (source 'file'), else from ``fractions``
    (source 'fractions'); ``gap`` times dropped at the end of each block followed by another.
    ValueError when the fractions cannot split the times."""
    T, g = times.size, int(gap)
    if all(k in attrs for k in SPLIT_ATTRS[1:]):
        interval = float(attrs.get("interval", 0.0)) or (float(np.min(np.diff(times)))
                                                         if T > 1 else 1.0)
        tol = 1e-6 * interval
        v0, t0 = float(attrs["split_validation_from"]), float(attrs["split_test_from"])
        train = times[times < v0 - tol]
        val = times[(times >= v0 - tol) & (times < t0 - tol)]
        test = times[times >= t0 - tol]
        return ((train[:max(train.size - g, 0)] if val.size or test.size else train,
                 val[:max(val.size - g, 0)] if test.size else val, test), "file")
    n_train, n_val, n_test = time_split(fractions, T, g)
    g_val = g if n_val else 0
    return ((times[:n_train], times[n_train + g_val:n_train + g_val + n_val],
             times[T - n_test:] if n_test else times[:0]), "fractions")

