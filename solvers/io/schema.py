"""What the files of ``solvers.io`` are: format names and versions, attribute names, errors, and
the checks every reader makes (input paths, opening a netCDF file of ours); output paths are
checked by :func:`solvers.files.check_output_file`.

Trajectory (netCDF4, ``format`` = :data:`TRAJECTORY_FORMAT`), in one of two records
(attribute ``record``, :data:`RECORDS`)::

    dims       member, time (unlimited), y, x
    vorticity  (member, time, y, x)   float32 (float64 on request), physical space; "full" only
    energy     (member, time)         float64, ½⟨|u|²⟩
    enstrophy  (member, time)         float64, ½⟨ζ²⟩
    zonal_mean_u (member, time, y)    float32 (float64 on request), U(y) = mean over x of u:
                                      "full" records of beta-plane runs, every "zonal-mean" record
    time, step (time); x (x); y (y); member (member)
    attributes: config (JSON of solver.config()), solver, kind, package_version, seed, created,
                Conventions/conventions, n, L, members, closure, closure_every, closure_config,
                t_start, step_start, record, records_complete

``record = "full"`` (the default) stores the vorticity; ``record = "zonal-mean"`` stores only
U(y), energy and enstrophy: 4·n bytes per member and record instead of 4·n², so 10⁶ profiles of
a 64-point grid take 256 MB. Files without the attribute are "full".

``records_complete`` (:data:`COMPLETE`) counts the records written in full; it is raised after
each record is on disk, so records beyond it (a process killed inside a write) are ignored by
the readers. Files of format version 1 have no count: all their records are read.

Restart (netCDF4, ``restart_format`` = :data:`RESTART_FORMAT`): the solver state (arrays as
variables, complex ones split into real and imaginary parts; the rest, RNG states included, as
exact JSON), the solver's class and configuration, the closure's configuration (``closure_config``,
JSON: class, constructor arguments, a hash of its weights), its refresh period and state, and
the FFTW wisdom of the writing process.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import json
import os
from pathlib import Path

from ..files import json_text

TRAJECTORY_FORMAT = "solvers-trajectory"
RESTART_FORMAT = "solvers-restart"
FORMAT_VERSION = 2          # 2: trajectories count their complete records; restarts hold
                            # the closure's configuration
COMPLETE = "records_complete"
RECORD = "record"                       # attribute: what a trajectory records, one of RECORDS
RECORDS = ("full", "zonal-mean")
CONVENTIONS = "CF-1.8"
LOCK_HINT = (". If another process is still writing the file, HDF5 file locking refuses to "
             "open it: set HDF5_USE_FILE_LOCKING=FALSE in the environment to read it meanwhile")


class TrajectoryFileError(ValueError):
    """A file that should be a trajectory cannot be read as one (corrupt, truncated, other kind)."""


def trajectory_record(variables, attrs: dict | None = None) -> str | None:
    """What a trajectory records, from its variable names (and attributes): 'full' with a
    vorticity, 'zonal-mean' with only U(y) (``zonal_mean_u``), None if neither."""
    names = set(variables)
    if "vorticity" in names:
        return "full"
    if "zonal_mean_u" in names:
        return "zonal-mean"
    return None


def check_record(record, what: str = "record") -> str:
    """``record`` if it is one of :data:`RECORDS`, else ValueError naming ``what``."""
    if record not in RECORDS:
        raise ValueError(f"{what} must be one of {', '.join(repr(r) for r in RECORDS)}, got "
                         f"{record!r}")
    return record


class RestartFileError(ValueError):
    """A file that should be a restart cannot be read as one (corrupt, truncated, other kind)."""


class RestartWriteError(OSError):
    """A restart file could not be written (an OSError, so blow-up handlers that catch OSError
    still raise their own error). The previous file at that path, if any, is untouched."""


def package_version() -> str:
    """The installed version of the package, or 'unknown'."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("hybrid-turbulence")
    except PackageNotFoundError:                             # pragma: no cover
        return "unknown"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def config_json(solver) -> str:
    """``solver.config()`` as JSON (sorted keys); ValueError if it cannot be stored."""
    try:
        return json_text(solver.config())
    except (TypeError, ValueError) as e:
        raise ValueError(f"the configuration of {type(solver).__name__} cannot be stored as "
                         f"JSON: {e}") from None


def closure_config(solver) -> dict | None:
    """The configuration of the solver's closure as stored in files, or None without one: the
    closure's own ``config()`` (class, constructor arguments, weights hash) where it has one,
    else its class; plus ``every``, the solver's refresh period. Round-tripped through JSON, so
    it compares equal to what a file holds."""
    closure = getattr(solver, "closure", None)
    if closure is None:
        return None
    own = getattr(closure, "config", None)
    cfg = dict(own()) if callable(own) else {}
    cfg.setdefault("class", f"{type(closure).__module__}.{type(closure).__qualname__}")
    cfg["every"] = closure_every(solver)
    try:
        return json.loads(json_text(cfg))
    except (TypeError, ValueError) as e:
        raise ValueError(f"the configuration of closure {type(closure).__name__} cannot be "
                         f"stored as JSON: {e}") from None


def closure_every(solver) -> int:
    """The solver's closure refresh period in steps (0 without a closure)."""
    if getattr(solver, "closure", None) is None:
        return 0
    every = getattr(solver, "closure_every", None)
    return int(every if every is not None else getattr(solver.closure, "every", 0) or 0)


def differing_keys(a: dict, b: dict, prefix: str = "",
                   defaults: dict | None = None) -> list[str]:
    """Dotted keys whose values differ between two nested dicts (a key present in one only
    counts), except a dotted key absent from ``a`` (a saved configuration) whose value in ``b``
    is its entry in ``defaults``: an argument added to a class since the file was written, given
    its default, computes what the file's run computed."""
    out, defaults = [], defaults or {}
    for k in sorted(set(a) | set(b), key=str):
        va, vb = a.get(k, KeyError), b.get(k, KeyError)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differing_keys(va, vb, f"{prefix}{k}.", defaults)
        elif va is KeyError and f"{prefix}{k}" in defaults and defaults[f"{prefix}{k}"] == vb:
            continue
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


def constructor_defaults(cls: type, prefix: str = "") -> dict:
    """{prefix + argument: default} of ``cls``'s constructor arguments that have one."""
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {f"{prefix}{p.name}": p.default for p in params
            if p.default is not inspect.Parameter.empty}


def check_input_path(path, what: str) -> Path:
    """``path`` as a Path, or FileNotFoundError / IsADirectoryError naming it."""
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} {p} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"{what} path {p} is a directory; expected a netCDF file")
    return p


def make_folder(p: Path, what: str) -> None:
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(e.errno, f"cannot create the folder {p.parent} of {what} {p}: "
                               f"{e.strerror}") from None


def open_netcdf(path, what: str, error: type, **kwargs):
    """``xarray.open_dataset`` of a netCDF4 file of ours, ``what`` naming its kind in the errors:
    FileNotFoundError / IsADirectoryError, or ``error`` for a corrupt or foreign file. Returns
    ``(path, dataset)``."""
    p = check_input_path(path, what)
    import xarray as xr
    try:
        return p, xr.open_dataset(p, engine="netcdf4", **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, IndexError) as e:
        raise error(f"{p} is not a readable netCDF4 {what} (corrupt, truncated or another "
                    f"format): {e}{LOCK_HINT}") from e
