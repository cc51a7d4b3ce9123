"""Closure datasets: coarse-grained DNS and the exact subgrid term, written to netCDF4.

``hybrid generate PRESET --samples N --out FILE`` (or :func:`generate_dataset`) runs the preset's
DNS ensemble (``members`` independent members, seeded by ``seed``), discards a spin-up, then at the
sampling times t_k = spinup + k·interval (k = 0, 1, …; the first one is the end of the spin-up)
stores, for every member, a pair of physical fields on the LES grid:

* ``target='subgrid'`` (default): ω̄ = T(G ω) and the exact subgrid term Π = T(G N(ω)) − N(ω̄),
  N(ω) = u·∇ω, from :func:`solvers.filters.subgrid_term` (Gaussian filter
  Ĝ = exp(−Δ²|k|²/24) of width Δ, default 2·(LES dx); truncation T to the LES grid's 2/3-rule
  modes). The filtered equation reads ∂t ω̄ + N(ω̄) = (filtered sources) − Π, so **the closure
  tendency an LES needs is C = −Π**: ``subgrid`` holds Π, ``closure_sign = -1``.
* ``target='missing-physics'`` (the latent score-based closure paper's setting, meant for
  ``ns-unitbox``): ``omega_bar`` holds the coarse vorticity and ``subgrid`` the whole advection
  term H = −u·∇ω of the DNS, both subsampled to the LES points
  (:func:`solvers.filters.missing_physics_target`). A coarse solver with its own advection switched
  off needs C = +H: ``closure_sign = +1``.

In both cases ``C = closure_sign · subgrid``; the file says so in its attributes.

Split. The sampling times are divided into three blocks in time order, training, validation and
test (``split``, fractions, default :data:`closures.data.DEFAULT_SPLIT` = 0.7, 0.15, 0.15;
block sizes from :func:`closures.data.time_split` over the requested sampling times), recorded
as ``split_fractions`` and the first time of the validation and test blocks
(``split_validation_from``, ``split_test_from``; times added by extending the file fall in the
test block). :class:`closures.data.ClosureDataset` reads them: training and calibration use the
first two blocks only, every reported number the test block. ``split=(0, 0, 1)`` makes a file
that is all test (e.g. an independent DNS with another seed for a shipped model).

File layout (netCDF4; read it with :func:`open_dataset`)::

    dims       sample (unlimited), y, x                      (the LES grid)
    omega_bar  (sample, y, x)  float32   filtered / coarse vorticity
    subgrid    (sample, y, x)  float32   Π (subgrid) or H (missing-physics); C = closure_sign·subgrid
    member     (sample)        int32     ensemble member the sample comes from
    time       (sample)        float64   DNS time of the sample
    step       (sample)        int64     DNS step count of the sample
    x, y       (x), (y)        float64   LES grid coordinates
    attributes dataset_format, format_version, preset, preset_json, dns_solver, dns_config,
               les_config (JSON), initial_json, filter, filter_width, filter_transfer, truncation,
               coarsening_factor, n_dns, n_les, L, target, closure_sign, closure_term, seed,
               members, interval, spinup, samples_requested, sampling_times_requested,
               samples_complete, sampling_times_complete, split_fractions,
               split_validation_from, split_test_from, run_id, restart_file,
               package_version, created, updated

Samples are ordered by sampling time, then member: sample i = k·members + m. The number of samples
is always a whole number of sampling times: ``samples`` that is not a multiple of ``members`` is
rounded up (``hybrid generate`` says so). ``les_config`` is the LES solver's ``config()`` without
the per-run keys (members, seed, first_member), i.e. what ``Preset.make_solver('les', n=n_les)``
rebuilds.

Incremental writing and ``--resume``. Each sampling time is written, then the file is synced
(HDF5 flush and ``fsync``), then ``samples_complete`` is raised, synced again, and only then is a
restart of the DNS written atomically (``solvers.io.write_restart`` to a side file, tagged with the
dataset's ``run_id`` and the number of complete sampling times c, then ``os.replace``) to
``<FILE>.restart.nc``. During the spin-up a restart tagged c = 0 is written at least every
``SPINUP_CHECKPOINT_S`` seconds of wall time and at its end. Invariant: the restart's c is the
dataset's complete count or one less. On resume the DNS continues from the restart (its FFTW wisdom
imported before anything is planned, so it rounds exactly as the interrupted run did) and sampling
time c is (re)written at indices c·members…, overwriting whatever a killed write left there.
Kill windows: during the spin-up (no restart yet: start again from t = 0; else from the last
spin-up restart); while stepping to t_c (resume from the restart at t_{c-1}); while writing the
samples of t_c (partial records beyond ``samples_complete``: readers ignore them, resume overwrites
them); after ``samples_complete`` was raised but before the new restart replaced the old one
(the dataset is one sampling time ahead: resume recomputes it bit for bit and overwrites it with the
same values); while writing the restart (atomic: the old one stays). A process killed inside an
HDF5 write can, rarely, leave the file unreadable; resume then refuses it, naming the file.
The restart file is kept after completion so that ``--resume`` with a larger ``--samples`` can
extend the dataset.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
import time as _time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

DATASET_FORMAT = "hybrid-closure-dataset"
FORMAT_VERSION = 1
TARGETS = ("subgrid", "missing-physics")
SPINUP_CHECKPOINT_S = 60.0          # wall seconds between restarts during the spin-up
_RUNTIME_KEYS = ("members", "seed", "first_member")
_HEADER_ATTRS = ("preset", "dns_solver", "dns_config", "les_config", "initial_json", "n_dns",
                 "n_les", "target", "filter", "filter_width", "seed", "members", "interval",
                 "spinup", "run_id", "created", "samples_complete", "sampling_times_complete")
_LOCK_HINT = (" (if another process is writing it, HDF5 file locking refuses to open it: set "
              "HDF5_USE_FILE_LOCKING=FALSE to read it meanwhile)")

__all__ = ["generate_dataset", "open_dataset", "check_dataset_matches", "restart_path",
           "DatasetFileError", "DatasetMismatchError", "DATASET_FORMAT", "TARGETS"]


class DatasetFileError(ValueError):
    """A file that should be a closure dataset (or its restart) cannot be used as one."""


class DatasetMismatchError(ValueError):
    """A closure dataset was made with another preset or configuration than the one asked for."""


def restart_path(out) -> Path:
    """The restart file that belongs to dataset ``out``: ``<out>.restart.nc``."""
    p = Path(os.fspath(out)).expanduser()
    return p.with_name(p.name + ".restart.nc")


def _pending_path(out: Path) -> Path:
    return out.with_name(out.name + ".restart.nc.pending")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _package_version() -> str:
    from . import __version__
    return str(__version__)


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _json(d: dict) -> str:
    return json.dumps(d, default=_plain, sort_keys=True)


def _differences(a: dict, b: dict) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k, '<absent>')!r} vs {b.get(k, '<absent>')!r}" for k in keys
            if a.get(k, "<absent>") != b.get(k, "<absent>")]


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        _fsync_path(folder)
    except OSError:                                   # some filesystems refuse directory fsync
        pass


# ------------------------------------------------------------------ argument checks
def _int_arg(name: str, flag: str, v, minimum: int) -> int:
    from solvers.validate import integer
    return integer(f"{name} ({flag})", v, minimum)


def _float_arg(name: str, flag: str, v, positive: bool) -> float:
    from solvers.validate import number
    return number(f"{name} ({flag})", v, **({"above": 0} if positive else {"at_least": 0}))


def _check_out_path(out) -> Path:
    """Where the dataset goes: a file path whose folder exists (or can be created) and is writable.
    Touches nothing."""
    from solvers.files import check_output_file
    return check_output_file(out, "out (--out)", overwrite=True)


def _read_header(path: Path) -> dict:
    """Global attributes and sample count of a closure dataset, read with netCDF4; errors name the
    file. Used on resume, before anything is written."""
    import netCDF4
    try:
        ds = netCDF4.Dataset(path, "r")
    except (OSError, RuntimeError, ValueError) as e:
        raise DatasetFileError(f"{path} is not a readable netCDF4 closure dataset (corrupt, "
                               f"truncated or another format): {e}{_LOCK_HINT}") from e
    try:
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        if attrs.get("dataset_format") != DATASET_FORMAT:
            raise DatasetFileError(f"{path} is a netCDF file but not a closure dataset (no "
                                   f"dataset_format={DATASET_FORMAT!r} attribute)")
        if int(attrs.get("format_version", 0)) > FORMAT_VERSION:
            raise DatasetFileError(f"closure dataset {path} has format version "
                                   f"{attrs['format_version']}; this package reads up to "
                                   f"{FORMAT_VERSION}")
        missing = [v for v in ("omega_bar", "subgrid", "member", "time", "step")
                   if v not in ds.variables]
        missing += [f"attribute {a}" for a in _HEADER_ATTRS if a not in attrs]
        if missing or "sample" not in ds.dimensions:
            raise DatasetFileError(f"closure dataset {path} is incomplete: it lacks "
                                   f"{missing or ['the sample dimension']}")
        attrs["_length"] = len(ds.dimensions["sample"])
    finally:
        ds.close()
    return attrs


# ------------------------------------------------------------------ the plan
@dataclass
class _Plan:
    """Everything checked and built before any file is touched."""
    preset: Any
    out: Path
    restart: Path
    members: int
    interval: float
    spinup: float
    seed: int
    n_dns: int
    n_les: int
    delta: float
    target: str
    times: int                      # sampling times requested (samples = times · members)
    samples_requested: int
    solver: Any                     # the DNS, at t = 0 or at the restart's state
    fine: Any
    coarse: Any
    attrs: dict                     # global attributes of a new file
    start: int = 0                  # sampling times already complete (from the restart)
    resume: bool = False
    overwrite: bool = False
    fresh_restart: bool = True      # resume without a restart: start again from t = 0
    notes: list = field(default_factory=list)

    @property
    def samples(self) -> int:
        return self.times * self.members


def _plan(preset, out, samples, members, interval, spinup, seed, n_dns, n_les, delta, target,
          resume, overwrite, dt_dns=None, split=None) -> _Plan:
    from closures.data import DEFAULT_SPLIT, time_split
    from solvers import fft
    from solvers import io as sio

    from .config import Preset, load_preset

    if not isinstance(resume, bool) or not isinstance(overwrite, bool):
        raise ValueError(f"resume and overwrite must be True or False, got {resume!r}, "
                         f"{overwrite!r}")
    if resume and overwrite:
        raise ValueError("resume (--resume) and overwrite (--overwrite) exclude each other: "
                         "--resume continues the file, --overwrite replaces it")
    samples = _int_arg("samples", "--samples", samples, 1)
    if split is not None:
        try:
            time_split(split, 1 if split[0] == 0 else 10**6)      # checks the fractions only
        except (ValueError, TypeError, IndexError) as e:
            raise ValueError(f"split (--split): {e}") from None
    p = preset if isinstance(preset, Preset) else load_preset(preset)
    out = _check_out_path(out)
    rpath = restart_path(out)

    header = None
    if resume:
        if not out.exists():
            raise FileNotFoundError(f"--resume: the dataset {out} (--out) does not exist; run "
                                    f"without --resume to start it")
        header = _read_header(out)
        if header.get("preset") != p.name:
            raise DatasetMismatchError(f"--resume: {out} is a dataset of preset "
                                       f"{header.get('preset')!r}, not {p.name!r}")
    elif out.exists() or out.is_symlink():
        if not overwrite:
            raise FileExistsError(f"the dataset {out} (--out) already exists; pass --resume to "
                                  f"continue it or --overwrite to replace it")
    if rpath.is_dir():
        raise IsADirectoryError(f"the restart path {rpath} of {out} is a directory")

    def stored(key, given, cast):
        """The value given, or on resume the file's value (which a given one must equal)."""
        if header is None:
            return given
        have = cast(header[key])
        if given is not None and cast(given) != have:
            raise DatasetMismatchError(f"--resume: {out} was generated with {key}={have!r}, "
                                       f"got {key}={given!r} (leave it out to use the file's)")
        return have

    members = stored("members", members, int)
    members = _int_arg("members", "--members", 1 if members is None else members, 1)
    seed = stored("seed", seed, int)
    seed = _int_arg("seed", "--seed", 0 if seed is None else seed, 0)
    target = stored("target", target, str)
    target = "subgrid" if target is None else target
    if target not in TARGETS:
        raise ValueError(f"target (--target) must be one of {', '.join(TARGETS)}, got {target!r}")
    interval = stored("interval", interval, float)
    interval = _float_arg("interval", "--interval",
                          p.run["output_every"] if interval is None else interval, True)
    spinup = stored("spinup", spinup, float)
    spinup = _float_arg("spinup", "--spinup",
                        p.run.get("spinup", 0.0) if spinup is None else spinup, False)
    n_dns = stored("n_dns", n_dns, int)
    n_les = stored("n_les", n_les, int)
    if header is not None:                  # the DNS step is part of the file's dns_config
        have_dt = json.loads(header.get("dns_config", "{}")).get("dt")
        if dt_dns is not None and have_dt is not None and float(dt_dns) != float(have_dt):
            raise DatasetMismatchError(f"--resume: {out} was generated with a DNS step "
                                       f"dt={have_dt!r}, got dt_dns={dt_dns!r} (leave it out "
                                       f"to use the file's)")
        dt_dns = have_dt if have_dt is not None else dt_dns
    if dt_dns is not None:
        dt_dns = _float_arg("dt_dns", "--dt-dns", dt_dns, True)
    if target == "missing-physics" and delta is not None and header is None:
        raise ValueError("delta (--delta) is the Gaussian filter width of target 'subgrid'; "
                         "target 'missing-physics' subsamples without a filter")
    if target == "subgrid":
        delta = stored("filter_width", delta, float)
    elif header is not None and delta is not None:
        raise DatasetMismatchError(f"--resume: {out} has target 'missing-physics', which takes "
                                   f"no delta (--delta)")

    # solvers: DNS (with the restart's FFTW wisdom imported first, on resume) and LES
    overrides_dns = {} if n_dns is None else {"n": n_dns}
    if dt_dns is not None:
        overrides_dns["dt"] = dt_dns
    overrides_les = {} if n_les is None else {"n": n_les}
    from solvers.validate import integer
    for name, flag, v in (("n_dns", "--n-dns", n_dns), ("n_les", "--n-les", n_les)):
        integer(f"{name} ({flag})", v, 8, even=True, allow_none=True)

    try:
        nf = int(n_dns if n_dns is not None else p.solver_kwargs("dns")["n"])
        nc = int(n_les if n_les is not None else p.solver_kwargs("les")["n"])
    except KeyError:
        raise ValueError(f"{p.where} sets no grid size n; give --n-dns and --n-les") from None
    if nc > nf or nf % nc:
        raise ValueError(f"the LES grid n={nc} (--n-les) must divide the DNS grid n={nf} "
                         f"(--n-dns)")
    # the LES is forced like the data: Ĝ of the data's filter on the forcing, ring normalised on
    # the DNS grid (target missing-physics subsamples: no filter)
    if target == "subgrid":
        delta = (p.les_filter_width(n=nc) if delta is None
                 else _float_arg("delta", "--delta", delta, False))
    else:
        delta = 0.0
    overrides_les.update(forcing_filter=delta, forcing_grid=nf)

    restart_data = None
    start, fresh_restart = 0, True
    if header is not None:
        times_done = int(header.get("sampling_times_complete", 0))
        if rpath.exists():
            restart_data = sio.load_restart(rpath)
            rattrs = restart_data["attrs"]
            if rattrs.get("generate_run_id") != header.get("run_id"):
                raise DatasetFileError(f"--resume: the restart file {rpath} belongs to another "
                                       f"dataset than {out} (run ids differ); delete it and pass "
                                       f"--overwrite to regenerate")
            start = int(rattrs["generate_sampling_times_done"])
            if not start <= times_done <= start + 1:
                raise DatasetFileError(f"--resume: {out} has {times_done} complete sampling "
                                       f"times but its restart {rpath} was saved after {start}; "
                                       f"they cannot both come from one run")
            fft.import_wisdom(restart_data["wisdom"])      # before anything plans transforms
            fresh_restart = False
        elif times_done > 0:
            raise DatasetFileError(f"--resume: the restart file {rpath} of {out} is missing, so "
                                   f"its {times_done} sampling time(s) cannot be continued "
                                   f"exactly; pass --overwrite to regenerate the dataset")

    def build(grid, over, n_members):
        try:                                # a blow-up leaves its restart beside the dataset
            return p.make_solver(grid, members=n_members, seed=seed, blowup_dir=out.parent,
                                 **over)
        except ValueError as e:
            flag = (" (--n-dns/--dt-dns)" if grid == "dns" and over else
                    (" (--n-les)" if over else ""))
            raise ValueError(f"{e}{flag}") from None

    solver = build("dns", overrides_dns, members)
    les = build("les", overrides_les, 1)
    fine, coarse = solver.grid, les.grid
    if fine.n % coarse.n or coarse.n > fine.n:
        raise ValueError(f"the LES grid n={coarse.n} (--n-les) must divide the DNS grid "
                         f"n={fine.n} (--n-dns)")
    if not math.isclose(fine.L, coarse.L, rel_tol=1e-12):
        raise ValueError(f"{p.where}: the LES box L={coarse.L:g} differs from the DNS box "
                         f"L={fine.L:g}")
    if solver.fixed_dt and interval < solver.dt * (1 - 1e-9):
        raise ValueError(f"interval (--interval) {interval:g} is shorter than the DNS time step "
                         f"dt={solver.dt:g}: samples would repeat")

    dns_config = solver.config()
    les_config = {k: v for k, v in les.config().items() if k not in _RUNTIME_KEYS}
    del les
    times = -(-samples // members)
    sign = -1 if target == "subgrid" else 1
    if header is not None and "split_fractions" in header:       # resume: the file's split
        have = [float(x) for x in json.loads(header["split_fractions"])]
        if split is not None and not np.allclose(have, [float(x) for x in split]):
            raise DatasetMismatchError(f"--resume: {out} was generated with split {have}, got "
                                       f"{list(split)} (leave it out to use the file's)")
        split_attrs = {k: header[k] for k in ("split_fractions", "split_validation_from",
                                               "split_test_from")}
        split_note = None
    else:
        fractions = [float(x) for x in (DEFAULT_SPLIT if split is None else split)]
        split_note = None
        if split is None and times < 3:
            fractions = [1.0, 0.0, 0.0]
            split_note = (f"{times} sampling time(s) cannot hold the default training/validation/"
                          f"test split: all in the training block (give --split to choose)")
        try:
            n_train, n_val, n_test = time_split(fractions, times)
        except ValueError as e:
            raise ValueError(f"split (--split) of --samples {samples}: {e}") from None
        split_attrs = {"split_fractions": _json(fractions),
                       "split_validation_from": float(spinup + n_train * interval),
                       "split_test_from": float(spinup + (n_train + n_val) * interval)}
    attrs = {
        "title": f"closure dataset of preset {p.name} ({target})",
        "Conventions": "CF-1.8",
        "dataset_format": DATASET_FORMAT,
        "format_version": np.int32(FORMAT_VERSION),
        "preset": p.name,
        "preset_json": _json(p.to_dict()),
        "initial_json": _json(p.initial),
        "dns_solver": type(solver).__name__,
        "dns_config": _json(dns_config),
        "les_config": _json(les_config),
        "n_dns": np.int32(fine.n),
        "n_les": np.int32(coarse.n),
        "L": float(fine.L),
        "coarsening_factor": np.int32(fine.n // coarse.n),
        "target": target,
        "closure_sign": np.int32(sign),
        "closure_term": ("C = -subgrid: subgrid holds Pi = T(G N(w)) - N(w_bar), N(w) = u.grad w; "
                         "the filtered equation is dw_bar/dt + N(w_bar) = filtered sources - Pi"
                         if target == "subgrid" else
                         "C = +subgrid: subgrid holds H = -u.grad w of the DNS at the coarse "
                         "points; a coarse solver with its advection switched off needs C = H"),
        "filter": "gaussian" if target == "subgrid" else "subsample",
        "filter_width": float(delta),
        "filter_transfer": ("exp(-filter_width^2 |k|^2 / 24)" if target == "subgrid" else
                            "none: every coarsening_factor-th DNS grid point"),
        "truncation": ("spectral truncation to the LES grid's 2/3-rule dealiased modes"
                       if target == "subgrid" else "none (physical subsampling)"),
        "seed": np.int64(seed),
        "members": np.int32(members),
        "interval": float(interval),
        "spinup": float(spinup),
        **split_attrs,
        "sample_order": "sample = k * members + member, k the sampling time index; "
                        "sampling times t_k = spinup + k * interval",
        "restart_file": rpath.name,
        "package_version": _package_version(),
    }

    plan = _Plan(preset=p, out=out, restart=rpath, members=members, interval=interval,
                 spinup=spinup, seed=seed, n_dns=fine.n, n_les=coarse.n, delta=float(delta),
                 target=target, times=times, samples_requested=samples, solver=solver, fine=fine,
                 coarse=coarse, attrs=attrs, resume=resume, overwrite=overwrite,
                 fresh_restart=fresh_restart, start=start)
    if header is None and split_note:
        plan.notes.append(split_note)
    if times * members != samples:
        plan.notes.append(f"--samples {samples} is not a multiple of --members {members}: "
                          f"writing {times * members} samples ({times} sampling times × "
                          f"{members} members)")

    if header is not None:                              # the file must describe this very run
        for key in ("dns_config", "les_config", "initial_json", "filter", "dns_solver"):
            mine = attrs[key]
            have = header.get(key)
            if key in ("dns_config", "les_config", "initial_json"):
                try:
                    diff = _differences(json.loads(have), json.loads(mine))
                except (TypeError, ValueError):
                    raise DatasetFileError(f"{out}: attribute {key} is not valid JSON") from None
            else:
                diff = [] if have == mine else [f"{have!r} vs {mine!r}"]
            if diff:
                raise DatasetMismatchError(f"--resume: {out} was generated with another {key} "
                                           f"(file vs now: {'; '.join(diff)}); was the preset "
                                           f"changed? Use --overwrite to regenerate")
        if target == "subgrid" and not math.isclose(float(header["filter_width"]), delta,
                                                    rel_tol=1e-12):
            raise DatasetMismatchError(f"--resume: {out} was generated with filter width "
                                       f"{header['filter_width']!r}, now {delta!r} (--delta)")
        for key in ("run_id", "created"):
            attrs[key] = header[key]
        if restart_data is not None:
            rconf = restart_data["config"]
            diff = _differences(rconf, dns_config)
            if diff:
                raise DatasetFileError(f"--resume: the restart file {rpath} holds another DNS "
                                       f"configuration than {out} ({'; '.join(diff)})")
            try:
                solver.set_state(restart_data["state"])
            except ValueError as e:
                raise DatasetFileError(f"--resume: the restart file {rpath} does not fit the "
                                       f"DNS: {e}") from None
        if start >= times:
            plan.notes.append(f"{out} already holds {times_done * members} samples "
                              f"(≥ {times * members} requested): nothing to do")
    else:
        attrs["run_id"] = uuid.uuid4().hex
        attrs["created"] = _now()
    return plan


# ------------------------------------------------------------------ writing
def _create_file(plan: _Plan) -> None:
    """Write the empty dataset (header, coordinates, no samples) to a temporary file and move it
    into place, so the path never holds a file without a complete header."""
    import netCDF4
    import tempfile
    out = plan.out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    n = plan.coarse.n
    try:
        with netCDF4.Dataset(tmp, "w", clobber=True, format="NETCDF4") as ds:
            ds.createDimension("sample", None)
            ds.createDimension("y", n)
            ds.createDimension("x", n)
            for name, values in (("x", plan.coarse.x), ("y", plan.coarse.y)):
                v = ds.createVariable(name, "f8", (name,))
                v.units = "solver length units"
                v.long_name = f"{name} coordinate of the LES grid (cell corners)"
                v.axis = name.upper()
                v[:] = values
            sign = plan.attrs["closure_sign"]
            chunks = (1, n, n)
            w = ds.createVariable("omega_bar", "f4", ("sample", "y", "x"), chunksizes=chunks)
            s = ds.createVariable("subgrid", "f4", ("sample", "y", "x"), chunksizes=chunks)
            if plan.target == "subgrid":
                w.long_name = "filtered vorticity w_bar = T(G w) on the LES grid"
                s.long_name = ("exact subgrid term Pi = T(G N(w)) - N(w_bar), N(w) = u.grad w; "
                               "the LES closure tendency is C = -Pi")
            else:
                w.long_name = "DNS vorticity subsampled to the coarse grid"
                s.long_name = ("missing physics H = -u.grad w of the DNS, subsampled to the "
                               "coarse grid; the closure tendency is C = +H")
            w.units = "1/time"
            s.units = "1/time^2"
            s.closure_sign = sign
            m = ds.createVariable("member", "i4", ("sample",))
            m.long_name = "ensemble member of the sample"
            t = ds.createVariable("time", "f8", ("sample",))
            t.long_name = "DNS time of the sample"
            t.units = "solver time units"
            st = ds.createVariable("step", "i8", ("sample",))
            st.long_name = "DNS step count of the sample"
            ds.setncatts({**plan.attrs, "samples_requested": np.int64(plan.samples_requested),
                          "sampling_times_requested": np.int64(plan.times),
                          "samples_complete": np.int64(0),
                          "sampling_times_complete": np.int64(0), "updated": _now()})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                  # mkstemp made it private
        _fsync_path(Path(tmp))
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_restart(plan: _Plan, done: int) -> None:
    """Atomically replace ``<out>.restart.nc`` with the DNS now, tagged with this dataset's run id
    and ``done`` complete sampling times."""
    import netCDF4
    from solvers import io as sio
    pending = _pending_path(plan.out)
    sio.write_restart(plan.solver, pending)
    with netCDF4.Dataset(pending, "a") as ds:
        ds.setncatts({"generate_run_id": plan.attrs["run_id"],
                      "generate_sampling_times_done": np.int64(done),
                      "generate_dataset": plan.out.name})
    _fsync_path(pending)
    os.replace(pending, plan.restart)
    _fsync_dir(plan.out.parent)


def _remove_stale(plan: _Plan, restart_too: bool) -> None:
    """Temporary files a killed run may have left (ours only), and on overwrite the old restart."""
    folder = plan.out.parent
    if not folder.is_dir():
        return
    for stale in folder.glob(f".{plan.out.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    _pending_path(plan.out).unlink(missing_ok=True)
    if restart_too:
        plan.restart.unlink(missing_ok=True)


def _pairs(plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    """(omega_bar, subgrid) of every member now, physical on the LES grid, float64."""
    from solvers import filters
    zh = np.asarray(plan.solver.vorticity_hat)
    if plan.target == "subgrid":
        w_hat, pi_hat = filters.subgrid_term(plan.fine, plan.coarse, zh, plan.delta)
        s = plan.coarse.shape
        return np.fft.irfft2(w_hat, s=s), np.fft.irfft2(pi_hat, s=s)
    return filters.missing_physics_target(plan.fine, plan.coarse, zh)


def _execute(plan: _Plan, progress: bool, hook: Callable[[str, int], None] | None = None) -> None:
    """Run the DNS and write the samples; ``hook(event, k)`` (tests) is called at the crash
    windows: 'spinup', 'stepped', 'samples_written', 'marked', 'restart_written'."""
    import netCDF4
    from tqdm.auto import tqdm

    hook = hook or (lambda event, k: None)
    solver, M = plan.solver, plan.members
    out = plan.out
    if not plan.resume:
        _remove_stale(plan, restart_too=True)
        _create_file(plan)
    ds = netCDF4.Dataset(out, "a")
    bar = None
    try:
        _remove_stale(plan, restart_too=False)
        ds.setncatts({"samples_requested": np.int64(max(plan.samples_requested,
                                                        int(ds.samples_complete))),
                      "sampling_times_requested": np.int64(max(plan.times,
                                                               int(ds.sampling_times_complete))),
                      "updated": _now()})
        ds.sync()
        if plan.start >= plan.times:
            return
        if plan.fresh_restart:
            solver.set_vorticity(plan.preset.initial_vorticity(solver))

        # spin-up, in chunks of `interval` (the stepping does not depend on the chunks)
        wall_ckpt = _time.perf_counter()
        if plan.start == 0 and solver.t < plan.spinup - 0.5 * solver.dt:
            sbar = tqdm(total=plan.spinup, initial=min(solver.t, plan.spinup), unit="t.u.",
                        desc="spin-up", disable=not progress, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.4g}/{total:.4g} [{elapsed}<{remaining}"
                                   "{postfix}]")
            try:
                j = math.floor(solver.t / plan.interval) + 1
                while solver.t < plan.spinup - 0.5 * solver.dt:
                    target = min(j * plan.interval, plan.spinup)
                    j += 1
                    if target <= solver.t:
                        continue
                    w0, s0 = _time.perf_counter(), solver.step_count
                    solver.run(target)
                    hook("spinup", 0)
                    now = _time.perf_counter()
                    sbar.n = min(solver.t, plan.spinup)
                    sbar.set_postfix_str(f"{(solver.step_count - s0) / max(now - w0, 1e-9):.1f} "
                                         f"steps/s", refresh=False)
                    sbar.refresh()
                    if now - wall_ckpt >= SPINUP_CHECKPOINT_S:
                        _write_restart(plan, 0)
                        wall_ckpt = _time.perf_counter()
            finally:
                sbar.close()
        if plan.start == 0:
            _write_restart(plan, 0)

        bar = tqdm(total=plan.samples, initial=plan.start * M, unit="sample",
                   desc=f"generate {plan.preset.name}", disable=not progress, dynamic_ncols=True)
        wall0, steps0 = _time.perf_counter(), solver.step_count
        for k in range(plan.start, plan.times):
            t_k = plan.spinup + k * plan.interval
            if t_k > solver.t:
                solver.run(t_k)
            hook("stepped", k)
            w, s = _pairs(plan)
            i0 = k * M
            ds["omega_bar"][i0:i0 + M] = w.astype(np.float32)
            ds["subgrid"][i0:i0 + M] = s.astype(np.float32)
            ds["member"][i0:i0 + M] = np.arange(M, dtype=np.int32)
            ds["time"][i0:i0 + M] = np.full(M, solver.t)
            ds["step"][i0:i0 + M] = np.full(M, solver.step_count, dtype=np.int64)
            ds.sync()
            _fsync_path(out)
            hook("samples_written", k)
            ds.setncatts({"samples_complete": np.int64((k + 1) * M),
                          "sampling_times_complete": np.int64(k + 1), "updated": _now()})
            ds.sync()
            _fsync_path(out)
            hook("marked", k)
            _write_restart(plan, k + 1)
            hook("restart_written", k)
            rate = (solver.step_count - steps0) / max(_time.perf_counter() - wall0, 1e-9)
            bar.set_postfix_str(f"t={solver.t:.4g}, {rate:.1f} steps/s", refresh=False)
            bar.update(M)
    finally:
        if bar is not None:
            bar.close()
        ds.close()


def generate_dataset(preset, out, samples: int, members: int | None = None,
                     interval: float | None = None, spinup: float | None = None,
                     seed: int | None = None, n_dns: int | None = None, n_les: int | None = None,
                     delta: float | None = None, target: str | None = None, resume: bool = False,
                     overwrite: bool = False, dt_dns: float | None = None, progress: bool = True,
                     split=None, _hook: Callable[[str, int], None] | None = None) -> Path:
    """Generate (or, with ``resume``, continue) a closure dataset and return its path.

    ``preset``: a preset name, TOML path or :class:`~hybrid.config.Preset`. ``samples``: the total
    wanted, rounded up to whole sampling times (``members`` samples each). ``members`` (default 1)
    DNS ensemble members run in one batch; ``interval`` (default: the preset's output_every) time
    between sampling times; ``spinup`` (default: the preset's) time discarded first; ``seed``
    (default 0); ``n_dns``/``n_les`` override the preset's grids (the LES n must divide the DNS
    n); ``dt_dns`` overrides the DNS time step (a coarser ``n_dns`` allows a longer one);
    ``delta`` the Gaussian filter width (default: the preset's LES forcing filter, 2·LES dx for
    "gaussian"; target 'subgrid' only; the LES of the file is forced with the same); ``target``
    'subgrid' (default; ``subgrid`` = Π, closure C = −Π) or 'missing-physics' (``subgrid`` = H,
    closure C = +H); ``split`` (training, validation, test) fractions of the sampling times
    (default 0.7, 0.15, 0.15; module docstring). See the module docstring for the file layout.

    ``resume=True`` continues an interrupted (or extends a finished) file: settings left as None
    are taken from the file, given ones must match it, and so must the preset's configuration.
    ``overwrite=True`` replaces an existing file. Everything is checked before any file is written;
    bad input raises ValueError (or FileExistsError, FileNotFoundError, NotADirectoryError,
    PermissionError, :class:`DatasetFileError`, :class:`DatasetMismatchError`) naming the
    argument or file. ``progress`` shows tqdm bars on stderr.
    """
    plan = _plan(preset, out, samples, members, interval, spinup, seed, n_dns, n_les, delta,
                 target, resume, overwrite, dt_dns, split)
    _execute(plan, progress, _hook)
    return plan.out


# ------------------------------------------------------------------ reading
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
    else:
        missing = [v for v in ("omega_bar", "subgrid", "member", "time") if v not in ds.variables]
        if missing:
            problem = f"it lacks the variable(s) {missing}"
    if problem is not None:
        ds.close()
        raise DatasetFileError(f"{p} is a netCDF file but not a closure dataset: {problem}")
    complete = int(ds.attrs.get("samples_complete", 0))
    if complete < ds.sizes["sample"]:
        ds = ds.isel(sample=slice(0, complete))
    return ds


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


# ------------------------------------------------------------------ command line
def _split_arg(text: str) -> tuple[float, float, float]:
    """'0.7,0.15,0.15' → (0.7, 0.15, 0.15), checked by :func:`closures.data.time_split`."""
    from closures.data import time_split
    try:
        f = tuple(float(x) for x in text.split(","))
        time_split(f, 1 if f and f[0] == 0 else 10**6)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return f


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``hybrid generate``."""
    from .cli.arguments import grid_size, nonnegative_float, nonnegative_int, positive_float, positive_int
    from .config import list_presets
    p.add_argument("preset", help=f"preset name ({', '.join(list_presets())}) or path of a TOML "
                                  f"file")
    p.add_argument("--samples", type=positive_int, required=True,
                   help="samples wanted (rounded up to a multiple of --members)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="the netCDF file to write (its restart goes to FILE.restart.nc)")
    p.add_argument("--members", type=positive_int, default=None,
                   help="DNS ensemble members run together (default 1)")
    p.add_argument("--interval", type=positive_float, default=None, metavar="DT",
                   help="time between sampling times (default: the preset's output_every)")
    p.add_argument("--spinup", type=nonnegative_float, default=None, metavar="T",
                   help="time discarded before the first sample (default: the preset's)")
    p.add_argument("--seed", type=nonnegative_int, default=None, help="random seed (default 0)")
    p.add_argument("--n-dns", type=grid_size, default=None, help="DNS grid points per side "
                                                                  "(default: the preset's)")
    p.add_argument("--n-les", type=grid_size, default=None, help="LES grid points per side; must "
                                                                  "divide the DNS n (default: "
                                                                  "the preset's)")
    p.add_argument("--dt-dns", type=positive_float, default=None, metavar="DT",
                   help="DNS time step (default: the preset's; a coarser --n-dns allows a "
                        "longer one)")
    p.add_argument("--delta", type=nonnegative_float, default=None,
                   help="Gaussian filter width (default: the preset's LES forcing filter, 2 LES "
                        "grid spacings; target subgrid); the LES is forced with the same filter")
    p.add_argument("--target", choices=TARGETS, default=None,
                   help="subgrid (default): w_bar and Pi, closure C = -Pi; missing-physics: "
                        "subsampled vorticity and H = -u.grad w, closure C = +H (ns-unitbox)")
    p.add_argument("--split", type=_split_arg, default=None, metavar="TRAIN,VAL,TEST",
                   help="fractions of the sampling times in the training, validation and test "
                        "blocks, in time order (default 0.7,0.15,0.15; 0,0,1: all test)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted FILE (or extend it to more --samples); settings "
                        "left out are taken from FILE, given ones must match it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")


def handler(args: argparse.Namespace) -> int:
    """``hybrid generate``: exit 0 done, 1 a write failed mid-run, 2 bad input (nothing written),
    3 the DNS blew up, 130 interrupted (1 and 130 keep the complete samples: --resume goes on)."""
    from solvers import BlowUpError

    from .cli.arguments import EXIT_BLOWUP, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

    try:
        plan = _plan(args.preset, args.out, args.samples, args.members, args.interval,
                     args.spinup, args.seed, args.n_dns, args.n_les, args.delta, args.target,
                     args.resume, args.overwrite, args.dt_dns, args.split)
    except (ValueError, OSError) as e:
        print(f"hybrid: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    for note in plan.notes:
        print(f"hybrid generate: {note}", file=sys.stderr)
    s = plan.solver
    print(f"hybrid generate: {plan.preset.name} DNS {plan.n_dns}² → LES {plan.n_les}², "
          f"{plan.members} member(s), target {plan.target}, every {plan.interval:g} after a "
          f"spin-up of {plan.spinup:g}, dt={s.dt:g} → {plan.out}"
          + (f" (resuming after {plan.start} sampling time(s))" if plan.resume else ""),
          file=sys.stderr)
    try:
        _execute(plan, progress=True)
    except BlowUpError as e:
        print(f"hybrid generate: {e}", file=sys.stderr)
        return EXIT_BLOWUP
    except OSError as e:
        print(f"hybrid generate: cannot write {plan.out} or its restart: {e}; the complete "
              f"samples are kept: continue with --resume once fixed", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hybrid generate: interrupted; {plan.out} keeps its complete samples: continue "
              f"with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"hybrid generate: {plan.samples} samples in {plan.out} (restart kept in "
          f"{plan.restart.name} for --resume)", file=sys.stderr)
    return EXIT_OK
