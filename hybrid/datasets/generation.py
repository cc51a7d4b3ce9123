"""Generating a closure dataset: the DNS run, the (ω̄, Π) pairs of every sampling time written and
marked complete, a restart after each (:func:`generate_dataset`).

Incremental writing and ``--resume``. Each sampling time is written, then the file is synced
(HDF5 flush and ``fsync``), then ``samples_complete`` is raised, synced again, and only then is a
restart of the DNS written atomically (``solvers.io.write_restart`` to a side file, tagged with the
dataset's ``run_id`` and the number of complete sampling times c, then ``os.replace``) to
``<FILE>.restart.nc``. During the spin-up (:func:`spin_up`, one ``solver.run`` with a
:class:`solvers.Every` of period ``interval``) a restart tagged c = 0 is written at the first
multiple of ``interval`` after each ``SPINUP_CHECKPOINT_S`` seconds of wall time, and at its end.
Invariant: the restart's c is the dataset's complete count or one less. On resume the DNS
continues from the restart (its FFTW wisdom imported before anything is planned, so it rounds
exactly as the interrupted run did) and sampling time c is (re)written at indices c·members…,
overwriting whatever a killed write left there.
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

import time as _time
from pathlib import Path
from typing import Callable

import numpy as np

from solvers.io.schema import now

from .files import create_file, remove_stale, write_restart
from .plan import Plan, make_plan
from .schema import fsync_path

__all__ = ["generate_dataset", "execute", "spin_up", "SPINUP_CHECKPOINT_S"]

SPINUP_CHECKPOINT_S = 60.0          # wall seconds between restarts during the spin-up


def pairs(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """(omega_bar, subgrid) of every member now, physical on the LES grid, float64."""
    from solvers import filters
    zh = np.asarray(plan.solver.vorticity_hat)
    if plan.target == "subgrid":
        w_hat, pi_hat = filters.subgrid_term(plan.fine, plan.coarse, zh, plan.delta)
        s = plan.coarse.shape
        return np.fft.irfft2(w_hat, s=s), np.fft.irfft2(pi_hat, s=s)
    return filters.missing_physics_target(plan.fine, plan.coarse, zh)


def write_pairs(plan: Plan, ds, i0: int, k: int, j: int) -> None:
    """Write the pairs of every member now at samples i0 … i0 + members − 1 of the open file
    ``ds``: the fields, member, time and step, and with consecutive samples their sequence k and
    position j."""
    M = plan.members
    w, s = pairs(plan)
    ds["omega_bar"][i0:i0 + M] = w.astype(np.float32)
    ds["subgrid"][i0:i0 + M] = s.astype(np.float32)
    ds["member"][i0:i0 + M] = np.arange(M, dtype=np.int32)
    ds["time"][i0:i0 + M] = np.full(M, plan.solver.t)
    ds["step"][i0:i0 + M] = np.full(M, plan.solver.step_count, dtype=np.int64)
    if plan.consecutive > 1:
        ds["sequence"][i0:i0 + M] = np.full(M, k, dtype=np.int64)
        ds["position"][i0:i0 + M] = np.full(M, j, dtype=np.int32)


def spin_up(plan: Plan, progress: bool, hook: Callable[[str, int], None]) -> None:
    """Run the DNS to the end of the spin-up, in the one run loop: every ``interval`` of time
    from t = 0 and at the end, ``hook('spinup', 0)`` and, once ``SPINUP_CHECKPOINT_S`` seconds of
    wall time have passed since the last, a restart tagged 0 (the steps do not depend on them)."""
    from solvers import Every
    last = _time.perf_counter()

    def checkpoint(solver) -> None:
        nonlocal last
        hook("spinup", 0)
        if _time.perf_counter() - last >= SPINUP_CHECKPOINT_S:
            write_restart(plan, 0)
            last = _time.perf_counter()

    plan.solver.run(plan.spinup, progress=progress,
                    schedules=[Every(plan.interval, checkpoint, origin=0.0, start=False,
                                     end=True)])


def execute(plan: Plan, progress: bool, hook: Callable[[str, int], None] | None = None) -> None:
    """Run the DNS and write the samples; ``hook(event, k)`` (tests) is called at the crash
    windows: 'spinup', 'stepped', 'samples_written', 'marked', 'restart_written'."""
    import netCDF4
    from tqdm.auto import tqdm

    hook = hook or (lambda event, k: None)
    solver, M = plan.solver, plan.members
    out = plan.out
    if not plan.resume:
        remove_stale(plan, restart_too=True)
        create_file(plan)
    ds = netCDF4.Dataset(out, "a")
    bar = None
    try:
        remove_stale(plan, restart_too=False)
        ds.setncatts({"samples_requested": np.int64(max(plan.samples_requested,
                                                        int(ds.samples_complete))),
                      "sampling_times_requested": np.int64(max(plan.times,
                                                               int(ds.sampling_times_complete))),
                      "updated": now()})
        ds.sync()
        if plan.start >= plan.times:
            return
        if plan.fresh_restart:
            solver.set_vorticity(plan.preset.initial_vorticity(solver))

        if plan.start == 0 and solver.t < plan.spinup - 0.5 * solver.dt:
            spin_up(plan, progress, hook)
        if plan.start == 0:
            write_restart(plan, 0)

        K, P = plan.consecutive, plan.per_time
        bar = tqdm(total=plan.samples, initial=plan.start * P, unit="sample",
                   desc=f"generate {plan.preset.name}", disable=not progress, dynamic_ncols=True)
        wall0, steps0 = _time.perf_counter(), solver.step_count
        for k in range(plan.start, plan.times):
            t_k = plan.spinup + k * plan.interval
            for j in range(K):
                t = t_k + j * plan.refresh_interval if j else t_k
                if t > solver.t:
                    solver.run(t)
                if j == 0:
                    hook("stepped", k)
                write_pairs(plan, ds, (k * K + j) * M, k, j)
            ds.sync()
            fsync_path(out)
            hook("samples_written", k)
            ds.setncatts({"samples_complete": np.int64((k + 1) * P),
                          "sampling_times_complete": np.int64(k + 1), "updated": now()})
            ds.sync()
            fsync_path(out)
            hook("marked", k)
            write_restart(plan, k + 1)
            hook("restart_written", k)
            rate = (solver.step_count - steps0) / max(_time.perf_counter() - wall0, 1e-9)
            bar.set_postfix_str(f"t={solver.t:.4g}, {rate:.1f} steps/s", refresh=False)
            bar.update(P)
    finally:
        if bar is not None:
            bar.close()
        ds.close()


def generate_dataset(preset, out, samples: int, members: int | None = None,
                     interval: float | None = None, spinup: float | None = None,
                     seed: int | None = None, n_dns: int | None = None, n_les: int | None = None,
                     delta: float | None = None, target: str | None = None, resume: bool = False,
                     overwrite: bool = False, dt_dns: float | None = None, progress: bool = True,
                     split=None, consecutive: int | None = None,
                     refresh_every: int | None = None,
                     _hook: Callable[[str, int], None] | None = None) -> Path:
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
    (default 0.7, 0.15, 0.15; module docstring); ``consecutive`` K (default 1): K samples per
    member and sampling time, ``refresh_every`` LES steps apart (default 5, the closures' refresh
    period; the LES and DNS steps must be fixed, the interval a whole number of DNS steps and
    (K − 1) intervals shorter than ``interval``), so that the data hold histories of the LES's
    refreshes. See the module docstring for the file layout.

    ``resume=True`` continues an interrupted (or extends a finished) file: settings left as None
    are taken from the file, given ones must match it, and so must the preset's configuration.
    ``overwrite=True`` replaces an existing file. Everything is checked before any file is written;
    bad input raises ValueError (or FileExistsError, FileNotFoundError, NotADirectoryError,
    PermissionError, :class:`DatasetFileError`, :class:`DatasetMismatchError`) naming the
    argument or file. ``progress`` shows tqdm bars on stderr.
    """
    plan = make_plan(preset, out, samples, members, interval, spinup, seed, n_dns, n_les, delta,
                 target, resume, overwrite, dt_dns, split, consecutive, refresh_every)
    execute(plan, progress, _hook)
    return plan.out

