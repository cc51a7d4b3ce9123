"""Output files, one way for every layer: where an output may go (:func:`check_output_file`,
:func:`check_output_folder`, both touching nothing) and the atomic JSON writer
(:func:`write_json`: a temporary file in the same folder, then ``os.replace``, so a reader sees the
old file or the new one, never half of one), and the JSON of numpy values and paths
(:func:`json_value`, :func:`json_default`, :func:`json_text`, :func:`json_finite`)."""
from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import numpy as np


def json_value(o):
    """``json.dumps`` fallback for data that must read back as it was (configurations): numpy
    scalars and arrays (and other arrays with ``tolist``, such as torch tensors) as plain values,
    paths as strings; TypeError for anything else."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray) or callable(getattr(o, "tolist", None)):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def json_default(o):
    """``json.dumps`` fallback for reports (run.json, model cards): :func:`json_value`, and
    anything else as its ``str``."""
    try:
        return json_value(o)
    except TypeError:
        return str(o)


def json_finite(o):
    """A plain-JSON copy of a report: dicts (keys as strings), lists and tuples as lists, numpy
    arrays and scalars as Python values, paths as strings, and NaN or ±inf as None (so that
    ``allow_nan=False`` holds)."""
    if isinstance(o, dict):
        return {str(k): json_finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return json_finite(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    return o


def json_text(data) -> str:
    """``data`` as canonical JSON (sorted keys, :func:`json_value` for numpy and paths), as
    files store configurations; TypeError or ValueError if it cannot be stored exactly."""
    return json.dumps(data, default=json_value, sort_keys=True)


def write_json(path, data, *, indent: int | None = 2, allow_nan: bool = True,
               default=json_default) -> Path:
    """Write ``data`` to ``path`` as JSON (ending in a newline), atomically; returns the path.
    With ``allow_nan=False`` a NaN or infinity raises ValueError and nothing is written."""
    path = Path(os.fspath(path)).expanduser()
    text = json.dumps(data, indent=indent, allow_nan=allow_nan, default=default) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def nearest_existing(path) -> Path:
    """``path`` or its nearest ancestor that exists, stopping early at a broken symbolic link
    (returned as is, so callers see a non-directory): the folder whose write permission decides
    whether ``path`` can be created."""
    existing = Path(path)
    while not existing.exists() and not existing.is_symlink() and existing.parent != existing:
        existing = existing.parent
    return existing


def _creatable(folder: Path, what: str) -> None:
    """Raise unless ``folder`` exists as a writable directory or can be created in one."""
    existing = nearest_existing(folder)
    if not existing.exists() and existing.is_symlink():
        raise NotADirectoryError(f"cannot create {what}: {existing} is a broken symbolic link; "
                                 f"expected {folder} to be a directory or creatable")
    if not existing.is_dir():
        raise NotADirectoryError(f"cannot create {what}: {existing} is not a directory; "
                                 f"expected {folder} to be a directory or creatable")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot create {what}: directory {existing} is not writable; "
                              f"expected a writable output directory")


def check_output_file(path, what: str, overwrite: bool = False,
                      overwrite_hint: str = "overwrite=True") -> Path:
    """Validate, touching nothing, where a file will go: ``path`` names a file (not a folder),
    does not exist unless ``overwrite``, and its folder exists or can be created in a writable
    one. Errors name ``what`` (e.g. 'trajectory' or 'out (--out)')."""
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise TypeError(f"{what} path must be a str or os.PathLike, got {path!r}") from None
    if p.name in ("", ".", ".."):
        raise ValueError(f"{what} path {str(path)!r} names no file; expected a file path such as "
                         f"'run/out.nc'")
    if p.is_dir():
        raise IsADirectoryError(f"{what} path {p} is a directory; expected a file path")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise FileExistsError(f"{what} {p} already exists; expected a new path (or pass "
                              f"{overwrite_hint} to replace it)")
    _creatable(p.parent, f"{what} {p}")
    return p


def check_output_folder(out, overwrite: bool = False, outputs=(),
                        overwrite_hint: str = "overwrite=True", what: str = "output folder") -> Path:
    """Validate, touching nothing, an output folder: ``out`` is a writable folder, or can be
    created in one, that holds none of ``outputs`` unless ``overwrite``. Raises TypeError,
    FileExistsError, NotADirectoryError or PermissionError naming ``what``."""
    try:
        out = Path(os.fspath(out)).expanduser()
    except TypeError:
        raise TypeError(f"{what} must be a str or os.PathLike, got {out!r}") from None
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{what} {out} exists and is not a directory")
    if out.is_dir():
        present = [name for name in outputs if (out / name).exists()]
        if present and not overwrite:
            raise FileExistsError(f"{what} {out} already holds {', '.join(present)}; "
                                  f"choose another folder or pass {overwrite_hint}")
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"{what} {out} is not writable")
        return out
    _creatable(out, f"{what} {out}")
    return out
