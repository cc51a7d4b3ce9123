"""The plan of a closure dataset (:func:`make_plan`): every argument, the preset and, on resume,
the existing file and its restart checked, the DNS built and the new file's attributes made, before
anything is written."""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from solvers.files import json_text
from solvers.io.schema import now, package_version

from .reader import read_header
from .schema import (DATASET_FORMAT, FORMAT_VERSION, RUNTIME_KEYS, TARGETS, DatasetFileError,
                     DatasetMismatchError, differences, restart_path)

__all__ = ["Plan", "make_plan"]


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



@dataclass
class Plan:
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
    times: int                      # sampling times requested (samples = times·members·K)
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
    consecutive: int = 1            # K samples per member and sampling time, refresh apart
    refresh_interval: float | None = None     # time between them (K > 1)

    @property
    def per_time(self) -> int:
        """Samples per sampling time: members · K."""
        return self.members * self.consecutive

    @property
    def samples(self) -> int:
        return self.times * self.per_time


def make_plan(preset, out, samples, members, interval, spinup, seed, n_dns, n_les, delta, target,
          resume, overwrite, dt_dns=None, split=None, consecutive=None,
          refresh_every=None) -> Plan:
    from closures.dataset_file import DEFAULT_SPLIT, SPLIT_ATTRS, check_split, split_attributes
    from solvers import fft
    from solvers import io as sio

    from ..config import Preset, load_preset

    if not isinstance(resume, bool) or not isinstance(overwrite, bool):
        raise ValueError(f"resume and overwrite must be True or False, got {resume!r}, "
                         f"{overwrite!r}")
    if resume and overwrite:
        raise ValueError("resume (--resume) and overwrite (--overwrite) exclude each other: "
                         "--resume continues the file, --overwrite replaces it")
    samples = _int_arg("samples", "--samples", samples, 1)
    if split is not None:
        try:
            check_split(split)
        except ValueError as e:
            raise ValueError(f"split (--split): {e}") from None
    p = preset if isinstance(preset, Preset) else load_preset(preset)
    out = _check_out_path(out)
    rpath = restart_path(out)

    header = None
    if resume:
        if not out.exists():
            raise FileNotFoundError(f"--resume: the dataset {out} (--out) does not exist; run "
                                    f"without --resume to start it")
        header = read_header(out)
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
    consecutive, refresh_every = _consecutive(header, out, consecutive, refresh_every)
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
    les_config = {k: v for k, v in les.config().items() if k not in RUNTIME_KEYS}
    refresh = (_refresh_interval(consecutive, refresh_every, interval, les, solver)
               if consecutive > 1 else None)
    del les
    times = -(-samples // (members * consecutive))
    sign = -1 if target == "subgrid" else 1
    if header is not None and "split_fractions" in header:       # resume: the file's split
        have = [float(x) for x in json.loads(header["split_fractions"])]
        if split is not None and not np.allclose(have, [float(x) for x in split]):
            raise DatasetMismatchError(f"--resume: {out} was generated with split {have}, got "
                                       f"{list(split)} (leave it out to use the file's)")
        split_attrs = {k: header[k] for k in SPLIT_ATTRS}
        split_note = None
    else:
        fractions = [float(x) for x in (DEFAULT_SPLIT if split is None else split)]
        split_note = None
        if split is None and times < 3:
            fractions = [1.0, 0.0, 0.0]
            split_note = (f"{times} sampling time(s) cannot hold the default training/validation/"
                          f"test split: all in the training block (give --split to choose)")
        try:
            split_attrs = split_attributes(fractions, times, spinup, interval)
        except ValueError as e:
            raise ValueError(f"split (--split) of --samples {samples}: {e}") from None
    attrs = {
        "title": f"closure dataset of preset {p.name} ({target})",
        "Conventions": "CF-1.8",
        "dataset_format": DATASET_FORMAT,
        "format_version": np.int32(FORMAT_VERSION),
        "preset": p.name,
        "preset_json": json_text(p.to_dict()),
        "initial_json": json_text(p.initial),
        "dns_solver": type(solver).__name__,
        "dns_config": json_text(dns_config),
        "les_config": json_text(les_config),
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
        "sample_order": ("sample = k * members + member, k the sampling time index; "
                         "sampling times t_k = spinup + k * interval" if consecutive == 1 else
                         "sample = (k * consecutive + j) * members + member, k the sampling time "
                         "index (variable sequence), j = 0 ... consecutive - 1 (variable "
                         "position); sample times t_k + j * refresh_interval, t_k = spinup + k "
                         "* interval"),
        **({} if consecutive == 1 else {
            "consecutive": np.int32(consecutive), "refresh_every": np.int32(refresh_every),
            "refresh_interval": float(refresh), "les_dt": float(refresh / refresh_every)}),
        "restart_file": rpath.name,
        "package_version": package_version(),
    }

    plan = Plan(preset=p, out=out, restart=rpath, members=members, interval=interval,
                 spinup=spinup, seed=seed, n_dns=fine.n, n_les=coarse.n, delta=float(delta),
                 target=target, times=times, samples_requested=samples, solver=solver, fine=fine,
                 coarse=coarse, attrs=attrs, resume=resume, overwrite=overwrite,
                 fresh_restart=fresh_restart, start=start, consecutive=consecutive,
                 refresh_interval=refresh)
    if header is None and split_note:
        plan.notes.append(split_note)
    if plan.samples != samples:
        per = f"--members {members}" + (f" × --consecutive {consecutive}" if consecutive > 1
                                         else "")
        plan.notes.append(f"--samples {samples} is not a multiple of {per}: "
                          f"writing {plan.samples} samples ({times} sampling times × "
                          f"{plan.per_time} samples)")

    if header is not None:                              # the file must describe this very run
        for key in ("dns_config", "les_config", "initial_json", "filter", "dns_solver"):
            mine = attrs[key]
            have = header.get(key)
            if key in ("dns_config", "les_config", "initial_json"):
                try:
                    diff = differences(json.loads(have), json.loads(mine))
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
            diff = differences(rconf, dns_config)
            if diff:
                raise DatasetFileError(f"--resume: the restart file {rpath} holds another DNS "
                                       f"configuration than {out} ({'; '.join(diff)})")
            try:
                solver.set_state(restart_data["state"])
            except ValueError as e:
                raise DatasetFileError(f"--resume: the restart file {rpath} does not fit the "
                                       f"DNS: {e}") from None
        if start >= times:
            plan.notes.append(f"{out} already holds {times_done * plan.per_time} samples "
                              f"(≥ {plan.samples} requested): nothing to do")
    else:
        attrs["run_id"] = uuid.uuid4().hex
        attrs["created"] = now()
    return plan


def _consecutive(header: dict | None, out: Path, consecutive, refresh_every) -> tuple[int, int]:
    """(K, refresh_every): the given ones checked, or on resume the file's (a file without the
    attributes has K = 1), which given ones must equal. ``refresh_every`` (default
    :attr:`closures.base.Closure.every`) needs K > 1."""
    from closures.base import Closure
    if header is not None:
        have = (int(header.get("consecutive", 1)), int(header.get("refresh_every", 0)) or None)
        for key, flag, given, saved in (("consecutive", "--consecutive", consecutive, have[0]),
                                        ("refresh_every", "--refresh-every", refresh_every,
                                         have[1])):
            if given is not None and int(given) != saved:
                raise DatasetMismatchError(f"--resume: {out} was generated with {key}={saved!r}, "
                                           f"got {flag} {given!r} (leave it out to use the "
                                           f"file's)")
        consecutive, refresh_every = have
    consecutive = _int_arg("consecutive", "--consecutive", 1 if consecutive is None
                           else consecutive, 1)
    if consecutive == 1:
        if refresh_every is not None:
            raise ValueError("refresh_every (--refresh-every) sets the time between consecutive "
                             "samples: it needs --consecutive K > 1")
        return 1, 0
    return consecutive, _int_arg("refresh_every", "--refresh-every", Closure.every
                                 if refresh_every is None else refresh_every, 1)


def _refresh_interval(consecutive: int, refresh_every: int, interval: float, les,
                      dns) -> float:
    """The LES refresh interval Δ = refresh_every · dt_LES between consecutive samples, checked:
    fixed LES and DNS steps, Δ a whole number of DNS steps (so the samples lie exactly Δ apart)
    and (K − 1)·Δ shorter than the sampling interval (sequences do not overlap)."""
    if not les.fixed_dt or not dns.fixed_dt:
        which = "LES" if not les.fixed_dt else "DNS (--dt-dns)"
        raise ValueError(f"consecutive (--consecutive) samples lie refresh_every LES steps apart: "
                         f"the {which} needs a fixed time step, not a CFL-chosen one")
    refresh = refresh_every * float(les.dt)
    steps = refresh / float(dns.dt)
    if abs(steps - round(steps)) > 1e-9 * max(steps, 1.0) or round(steps) < 1:
        raise ValueError(f"refresh_every (--refresh-every) {refresh_every} LES steps of "
                         f"dt={les.dt:g} make {refresh:g} time units, not a whole number of DNS "
                         f"steps of dt={dns.dt:g} (--dt-dns)")
    if (consecutive - 1) * refresh >= interval * (1 - 1e-9):
        raise ValueError(f"consecutive (--consecutive) {consecutive} samples {refresh:g} apart "
                         f"span {(consecutive - 1) * refresh:g} time units, not shorter than the "
                         f"sampling interval {interval:g} (--interval)")
    return refresh
