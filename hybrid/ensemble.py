"""Ensembles of hybrid runs: all members batched in one process, or batches as Dask tasks.

::

    from hybrid.config import load_preset
    from hybrid.ensemble import Ensemble

    ens = Ensemble(load_preset("kolmogorov"), "smagorinsky", every=2, members=8, seed=0)
    ens.run(t_end=20, out="runs/demo", output_every=0.5)                 # one process
    ens.run(t_end=20, out="runs/demo", output_every=0.5, workers=2)      # LocalCluster, 2 workers
    ens.run(t_end=20, out="runs/demo", output_every=0.5, scheduler="tcp://127.0.0.1:8786")

Every member runs on the preset's LES grid (``preset.make_solver('les', ...)`` with ``overrides``
and the settings the closure needs: a model trained on 'missing-physics' data runs without the
solver's own advection, :func:`hybrid.simulation.closure_solver_overrides`) with the closure
attached, from the preset's initial field or from given spectral initial fields
(e.g. :func:`coarse_initial_from_trajectory`, the coarse-grained vorticity of a DNS trajectory,
or :func:`state_from_file`, one saved state for every member). ``grid='dns'`` runs the preset's
DNS instead (``hybrid dns``, no closure), ``spinup`` first runs the members that long without
records, and ``run(..., record='zonal-mean')`` records only U(y), energy and enstrophy.

In one process (the default) all members are one batched solver run by
:class:`~hybrid.simulation.Simulation`. On a Dask cluster the members are split into batches of
``batch_size`` (default: members spread evenly over the workers), and each batch is a task
(:func:`run_batch`) that builds its solver from the preset with ``members=batch,
first_member=m0, seed=seed``, runs it and returns its records as arrays. Member m's trajectory
does not depend on the batch it sits in (the solvers, the initial fields and the closures seed
member m from child m of their seed sequences, every FFT slot has its own plan from the same
FFTW wisdom, which the client ships to the tasks, and network closures call their networks in
chunks aligned to the members' indices in the whole ensemble,
:meth:`closures.base.Closure.network_calls`, since torch's round-off depends on the size of a
call), so the result is bit-identical to the one-process run. The client then writes ONE
trajectory with all members in order, through
:class:`solvers.io.TrajectoryWriter` (same variables and attributes as a one-process run). Tasks
are pure — the same spec gives the same arrays — so when Dask re-runs a batch whose worker was lost,
the file is still complete and identical.

Workers of your own cluster run faster with ``MALLOC_TRIM_THRESHOLD_`` unset (Dask sets it to
65536 by default, which makes glibc map and fault every large temporary array afresh: ~35% slower
here); :func:`connect` does this for the local clusters it starts.

The jobs around the runs live in their own modules and are re-exported here: connecting to Dask
(:mod:`hybrid.cluster`), writing the gathered batch records as one trajectory
(:mod:`hybrid.gathered`), and reading initial states from files for ``--init``
(:mod:`hybrid.initial_states`).

Limits of the Dask mode: a fixed dt is needed when there is more than one batch (a CFL-chosen dt
depends on the fastest member of the batch, so batches would step differently); restart files are
not written (tasks are short-lived and their workers may not share a file system); the client holds
the gathered records of the whole run in memory (the size of the trajectory file) before writing.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from solvers import BlowUpError, fft
from solvers.grid import Grid
from solvers.files import check_output_folder, write_json
from solvers.io import check_record
from solvers.validate import integer, positive_number

from .cluster import DEFAULT_CONNECT_TIMEOUT, SchedulerUnreachable, connect
from .config import Preset, load_preset
from .gathered import write_gathered_trajectory
from .initial_states import coarse_initial_from_trajectory, state_from_file
from .simulation import (OUTPUTS, RESTART, RUN_JSON, TRAJECTORY, RunResult, Simulation, base_info,
                         blowup_info, build_closure, closure_solver_overrides, end_time,
                         timing_info)

__all__ = ["BatchSpec", "DEFAULT_CONNECT_TIMEOUT", "Ensemble", "SchedulerUnreachable",
           "coarse_initial_from_trajectory", "connect", "make_simulation", "run_batch", "spin_up",
           "state_from_file", "write_gathered_trajectory"]


# ------------------------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class BatchSpec:
    """Everything a task needs to run members ``first_member … first_member+members−1``.

    ``closure`` is a registry name (built with ``closure_kwargs``) or a closure instance (each task
    gets its own copy: tasks receive it pickled). ``initial_hat`` is None (the preset's initial
    field) or this batch's spectral initial vorticity (members, n, n//2+1) on the LES grid.
    ``t_end`` is absolute; the run starts at ``t0``, runs unrecorded to ``spinup_to`` if that is
    later, then records. ``wisdom`` is FFTW wisdom to import first. ``grid``: the preset's 'les'
    or 'dns' solver; ``record``: 'full' or 'zonal-mean' (what the task returns).
    """
    preset: Preset
    closure: Any = "none"
    closure_kwargs: dict = field(default_factory=dict)
    every: int | None = None
    seed: int | None = 0
    first_member: int = 0
    members: int = 1
    overrides: dict = field(default_factory=dict)
    t0: float = 0.0
    t_end: float = 0.0
    output_every: float | None = None
    initial_hat: np.ndarray | None = None
    wisdom: tuple | None = None
    blowup_dir: str | None = None
    ensemble_members: int | None = None
    grid: str = "les"
    record: str = "full"
    spinup_to: float | None = None


def make_simulation(spec: BatchSpec, metadata: dict | None = None) -> Simulation:
    """The solver of ``spec`` (its grid; initial field set, time t0) with its closure attached.

    The closure is built first, and the solver with the settings it needs
    (:func:`~hybrid.simulation.closure_solver_overrides`: e.g. without its own advection for a
    model of the whole advection term)."""
    p = spec.preset
    kwargs = dict(spec.closure_kwargs) if isinstance(spec.closure, str) else None
    closure, name = build_closure(spec.closure, kwargs or None)
    overrides = closure_solver_overrides(p, spec.grid, closure, spec.overrides)
    solver = p.make_solver(spec.grid, members=spec.members, seed=spec.seed,
                           first_member=spec.first_member, blowup_dir=spec.blowup_dir,
                           **overrides)
    if spec.initial_hat is not None:
        solver.set_vorticity_hat(spec.initial_hat)
    else:
        solver.set_vorticity(p.initial_vorticity(solver))
    solver.t = float(spec.t0)
    sim = Simulation(solver, closure, spec.every, metadata=metadata)
    if name is not None:
        sim.closure_name = name
    if sim.closure is not None and hasattr(sim.closure, "ensemble_members"):
        sim.closure.ensemble_members = spec.ensemble_members    # network calls aligned to it
    return sim


def spin_up(sim: Simulation, spec: BatchSpec, progress: bool = False) -> None:
    """Run ``sim`` without records to ``spec.spinup_to`` (nothing if that is not later)."""
    if spec.spinup_to is not None and spec.spinup_to > sim.solver.t:
        sim.run(spec.spinup_to, progress=progress)


def run_batch(spec: BatchSpec) -> dict[str, Any]:
    """Run one batch and return its records (the Dask task; pure: same spec, same arrays).

    Returns a dict: ``first_member``, ``members``, ``time`` (T,), ``step`` (T,), ``vorticity``
    float32 (members, T, n, n) (None for ``record='zonal-mean'``), ``energy`` and ``enstrophy``
    float64 (members, T), ``zonal_mean_u`` float32 (members, T, n) on the beta-plane or with the
    zonal-mean record (else None), ``timings`` (the
    :class:`~hybrid.simulation.RunResult` as a dict), ``worker`` (host, pid) and ``blowup`` (None,
    or a dict when the batch blew up: the records then stop before the failing step). A blow-up is
    returned, not raised, because :class:`~solvers.BlowUpError` does not survive pickling.
    """
    if spec.wisdom is not None:
        fft.import_wisdom(spec.wisdom)
    sim = make_simulation(spec)
    s = sim.solver
    full = spec.record == "full"
    zonal = not full or getattr(s, "kind", "") == "betaplane"
    vort, energy, enstrophy, zmu, times, steps = [], [], [], [], [], []

    def collect(solver):
        if full:
            vort.append(np.asarray(solver.vorticity).astype(np.float32, copy=False))
        energy.append(np.asarray(solver.energy(), dtype=np.float64))
        enstrophy.append(np.asarray(solver.enstrophy(), dtype=np.float64))
        if zonal:
            zmu.append(np.asarray(solver.zonal_mean_u()).astype(np.float32, copy=False))
        times.append(float(solver.t))
        steps.append(int(solver.step_count))

    blowup = None
    try:
        spin_up(sim, spec)
        sim.run(spec.t_end, output_every=spec.output_every, progress=False, callback=collect)
    except BlowUpError as e:
        blowup = blowup_info(e, spec.first_member)
    M, n = spec.members, s.grid.n
    T = len(times)
    return {
        "first_member": spec.first_member,
        "members": M,
        "time": np.asarray(times, dtype=np.float64),
        "step": np.asarray(steps, dtype=np.int64),
        "vorticity": (np.stack(vort, axis=1) if T else np.zeros((M, 0, n, n), np.float32))
        if full else None,
        "energy": np.stack(energy, axis=1) if T else np.zeros((M, 0)),
        "enstrophy": np.stack(enstrophy, axis=1) if T else np.zeros((M, 0)),
        "zonal_mean_u": (np.stack(zmu, axis=1) if T else np.zeros((M, 0, n), np.float32))
        if zonal else None,
        "timings": sim.last_result.to_dict(),
        "worker": {"host": socket.gethostname(), "pid": os.getpid()},
        "blowup": blowup,
    }


# ------------------------------------------------------------------------------------ ensemble
class Ensemble:
    """``members`` LES runs of ``preset`` with a closure; see the module docstring.

    ``Ensemble(preset, closure='none', every=None, *, closure_kwargs=None, members=1, seed=0,
    overrides=None, initial_hat=None, t0=0.0, grid='les', spinup=0.0)``: ``preset`` a
    :class:`~hybrid.config.Preset` or a preset name/path; ``closure`` a registry name, a closure
    instance or None (no closure); ``overrides`` solver settings (e.g. ``{'n': 32, 'dt': 1e-2}``);
    ``initial_hat`` spectral initial vorticity of all members (members, n, n//2+1), or one field
    (n, n//2+1) for every member, on the run's grid, or None for the preset's initial field;
    ``t0`` the start time; ``grid`` the preset's 'les' (default) or 'dns' solver; ``spinup`` time
    run before the first record (the records then start near ``t0 + spinup``). Everything is
    checked here (a one-member solver is built and the closure reset on it): bad input raises
    ValueError/TypeError before any work. After an in-process :meth:`run`, ``simulation`` is the
    :class:`~hybrid.simulation.Simulation` that ran.
    """

    def __init__(self, preset, closure="none", every: int | None = None, *,
                 closure_kwargs: dict | None = None, members: int = 1, seed: int | None = 0,
                 overrides: dict | None = None, initial_hat: np.ndarray | None = None,
                 t0: float = 0.0, grid: str = "les", spinup: float = 0.0):
        self.preset = preset if isinstance(preset, Preset) else load_preset(preset)
        self.members = integer("members", members, 1)
        try:
            self.t0 = float(t0)
        except (TypeError, ValueError):
            raise ValueError(f"t0 must be a number, got {t0!r}") from None
        if not math.isfinite(self.t0):
            raise ValueError(f"t0 must be finite, got {t0!r}")
        if grid not in ("les", "dns"):
            raise ValueError(f"grid must be 'les' or 'dns', got {grid!r}")
        self.grid_name = grid
        self.spinup = float(positive_number("spinup", spinup, allow_none=True, allow_zero=True)
                            or 0.0)
        self.simulation = None
        self.closure = closure
        self.closure_kwargs = dict(closure_kwargs or {})
        self.every = every
        self.seed = seed
        self.overrides = dict(overrides or {})
        if initial_hat is not None:
            initial_hat = np.asarray(initial_hat)
            if not (initial_hat.ndim == 2 or (initial_hat.ndim == 3
                                              and initial_hat.shape[0] == self.members)):
                raise ValueError(f"initial_hat must have shape (members={self.members}, n, "
                                 f"n//2+1) or (n, n//2+1), got {initial_hat.shape}")
        self.initial_hat = initial_hat
        spec = self.spec(0, 1, t_end=self.t0)
        self.template = make_simulation(spec).solver     # checks preset, overrides, closure
        self.grid: Grid = self.template.grid
        self.closure_name = (closure if isinstance(closure, str)
                             else getattr(self.template.closure, "name", None))

    def spec(self, first_member: int, members: int, t_end: float,
             output_every: float | None = None, wisdom=None, blowup_dir=None,
             record: str = "full") -> BatchSpec:
        """The task spec of members ``first_member … first_member+members−1``."""
        init = None
        if self.initial_hat is not None and self.initial_hat.ndim == 2:
            init = np.broadcast_to(self.initial_hat, (members, *self.initial_hat.shape)).copy()
        elif self.initial_hat is not None:
            init = np.ascontiguousarray(self.initial_hat[first_member:first_member + members])
        return BatchSpec(preset=self.preset, closure=self.closure,
                         closure_kwargs=self.closure_kwargs, every=self.every, seed=self.seed,
                         first_member=first_member, members=members, overrides=self.overrides,
                         t0=self.t0, t_end=float(t_end), output_every=output_every,
                         initial_hat=init, wisdom=wisdom, ensemble_members=self.members,
                         blowup_dir=None if blowup_dir is None else os.fspath(blowup_dir),
                         grid=self.grid_name, record=record,
                         spinup_to=self.t0 + self.spinup if self.spinup > 0 else None)

    def batches(self, batch_size: int) -> list[tuple[int, int]]:
        """(first_member, members) of each batch of at most ``batch_size`` members."""
        b = integer("batch_size", batch_size, 1)
        return [(m0, min(b, self.members - m0)) for m0 in range(0, self.members, b)]

    def _metadata(self, metadata: dict | None, execution: dict) -> dict:
        meta = {"preset": self.preset.to_dict(), "closure_kwargs": self.closure_kwargs,
                "initial": "given (initial_hat)" if self.initial_hat is not None else "preset",
                "t0": self.t0, "grid": self.grid_name, "spinup": self.spinup}
        meta.update(metadata or {})
        meta["execution"] = execution
        return meta

    # ------------------------------------------------------------------ running
    def run(self, t_end: float, out=None, output_every: float | None = None, *,
            workers: int | None = None, scheduler: str | None = None, client=None,
            batch_size: int | None = None, progress: bool = True, overwrite: bool = False,
            restart_every: float | None = None, metadata: dict | None = None,
            connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
            task: Callable[[BatchSpec], dict] | None = None, record: str = "full") -> RunResult:
        """Run every member until time ``t_end`` (absolute; after the spin-up, if any) and write
        ``out``/trajectory.nc (``record``: 'full' or 'zonal-mean') and run.json (see
        :meth:`hybrid.simulation.Simulation.run`).

        With none of ``workers``, ``scheduler`` (an address) or ``client`` (a
        ``distributed.Client``), all members run batched in this process. Otherwise the batches
        (``batch_size`` members each) run as Dask tasks (``task``, default :func:`run_batch`);
        ``connect_timeout`` bounds the wait for ``scheduler``. A blow-up raises
        :class:`~solvers.BlowUpError` after run.json (status "blew up") and the records all
        batches have are written.
        """
        chosen = [k for k, v in (("workers", workers), ("scheduler", scheduler),
                                 ("client", client)) if v is not None]
        if len(chosen) > 1:
            raise ValueError(f"give at most one of workers, scheduler and client; got "
                             f"{', '.join(chosen)}")
        check_record(record)
        if not chosen:
            if batch_size is not None and batch_size < self.members:
                raise ValueError("batch_size splits members into Dask tasks: it needs workers, "
                                 "scheduler or client")
            spec = self.spec(0, self.members, t_end, output_every, blowup_dir=out)
            sim = make_simulation(spec, self._metadata(metadata, {"mode": "in-process"}))
            sim.closure_name = self.closure_name or sim.closure_name
            self.simulation = sim
            spin_up(sim, spec, progress)
            return sim.run(t_end, out=out, output_every=output_every, progress=progress,
                           restart_every=restart_every, overwrite=overwrite, record=record)
        return self._run_dask(t_end, out, output_every, workers=workers, scheduler=scheduler,
                              client=client, batch_size=batch_size, progress=progress,
                              overwrite=overwrite, restart_every=restart_every,
                              metadata=metadata, connect_timeout=connect_timeout,
                              task=task or run_batch, record=record)

    def _run_dask(self, t_end, out, output_every, *, workers, scheduler, client, batch_size,
                  progress, overwrite, restart_every, metadata, connect_timeout, task, record):
        # --- everything checked before connecting, nothing written before the results are in
        if restart_every is not None:
            raise ValueError("restart_every is not supported for Dask runs (the tasks write no "
                             "restart files); run in one process for restarts")
        if out is None:
            raise ValueError("a Dask run needs out, the folder for its trajectory")
        out = check_output_folder(out, overwrite, OUTPUTS)
        t_end = end_time(t_end, self.t0 + self.spinup, "t0 + spinup =")
        output_every = positive_number("output_every", output_every, allow_none=True)
        if batch_size is not None:
            integer("batch_size", batch_size, 1)
        if not isinstance(overwrite, bool):
            raise ValueError(f"overwrite must be True or False, got {overwrite!r}")

        wall0 = time.perf_counter()
        own_client = client is None
        cluster = None
        if own_client:
            client, cluster = connect(scheduler=scheduler, workers=workers,
                                      timeout=connect_timeout)
        connected = time.perf_counter()
        results: list[dict] = []
        try:
            nworkers = max(len(client.scheduler_info().get("workers", {})), 1)
            if batch_size is None:
                batch_size = -(-self.members // nworkers)
            batches = self.batches(batch_size)
            if len(batches) > 1 and not self.template.fixed_dt:
                raise ValueError("a CFL-chosen dt (dt='cfl') depends on the fastest member of a "
                                 "batch, so batches would step differently; give a fixed dt or "
                                 "run all members in one batch")
            wisdom = fft.export_wisdom()
            run_id = uuid.uuid4().hex[:10]
            specs = [self.spec(m0, b, t_end, output_every, wisdom=wisdom, blowup_dir=out,
                               record=record)
                     for m0, b in batches]
            futures = [client.submit(task, sp, key=f"hybrid-batch-{sp.first_member:06d}-{run_id}",
                                     pure=False) for sp in specs]
            results = self._gather(client, futures, progress)
        finally:
            if own_client:
                client.close()
                if cluster is not None:
                    cluster.close()
        gathered = time.perf_counter()

        # --- one trajectory with all members, and run.json
        out.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for name in (RUN_JSON, RESTART):
                (out / name).unlink(missing_ok=True)
        results.sort(key=lambda r: r["first_member"])
        blowups = [r["blowup"] for r in results if r["blowup"] is not None]
        traj = out / TRAJECTORY
        records = write_gathered_trajectory(traj, self.template, self.members, results,
                                            overwrite=overwrite, record=record)
        io_s = time.perf_counter() - gathered
        tim = [r["timings"] for r in results]
        t_rec = float(results[0]["time"][0]) if records else self.t0 + self.spinup
        result = RunResult(
            status="blew up" if blowups else "ok", trajectory=traj, run_json=out / RUN_JSON,
            restart=None, members=self.members,
            steps=max(int(t["steps"]) for t in tim), records=records, t_start=t_rec,
            t_end=min(float(t["t_end"]) for t in tim) if blowups else float(tim[0]["t_end"]),
            simulated_time=0.0, wall_s=time.perf_counter() - wall0,
            solver_s=sum(t["solver_s"] for t in tim), closure_s=sum(t["closure_s"] for t in tim),
            io_s=io_s + sum(t["io_s"] for t in tim),
            closure_calls=sum(int(t["closure_calls"]) for t in tim),
            task_wall_s=sum(t["wall_s"] for t in tim),
            batches=[{"first_member": r["first_member"], "members": r["members"],
                      "worker": r["worker"], "wall_s": r["timings"]["wall_s"],
                      "solver_s": r["timings"]["solver_s"],
                      "closure_s": r["timings"]["closure_s"],
                      "closure_calls": r["timings"]["closure_calls"],
                      "blowup": r["blowup"]} for r in results])
        result.simulated_time = result.t_end - t_rec
        address = getattr(client, "scheduler", None)
        execution = {"mode": "dask", "scheduler": scheduler,
                     "address": getattr(address, "address", None),
                     "workers": nworkers, "local_cluster": cluster is not None,
                     "batch_size": batch_size, "connect_s": connected - wall0,
                     "tasks_wall_s": gathered - connected, "write_s": io_s,
                     "batches": result.batches}
        info = base_info(self.template, self.closure_name, self._metadata(metadata, execution))
        info.update(members=self.members, first_member=0,
                    solver_config=dict(self.template.config(), members=self.members,
                                       first_member=0),
                    t_start=t_rec, t_end=t_end, output_every=output_every,
                    restart_every=None, trajectory=TRAJECTORY, record=record, restart=None,
                    status=result.status, steps=result.steps, records=records,
                    t_final=result.t_end, simulated_time=result.simulated_time,
                    timings=timing_info(result))
        if records:
            info["energy_final"] = np.concatenate([r["energy"][:, records - 1] for r in results])
        if blowups:
            info["blowup"] = blowups[0] if len(blowups) == 1 else blowups
        write_json(out / RUN_JSON, info)
        if blowups:
            b = min(blowups, key=lambda d: d["step"])
            members = sorted(m for d in blowups for m in d["members"])
            raise BlowUpError(f"{len(blowups)} batch(es) blew up; first: {b['message']} "
                              f"(member numbers in the whole ensemble: {members})", b["step"],
                              b["t"], None if b["restart"] is None else Path(b["restart"]),
                              members)
        return result

    @staticmethod
    def _gather(client, futures, progress: bool) -> list[dict]:
        from distributed import as_completed
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=sum(1 for _ in futures), unit="batch", dynamic_ncols=True)
        results = []
        try:
            for fut in as_completed(futures, loop=client.loop):
                results.append(fut.result())
                if bar is not None:
                    r = results[-1]
                    bar.set_postfix_str(f"members {r['first_member']}…"
                                        f"{r['first_member'] + r['members'] - 1} done",
                                        refresh=False)
                    bar.update(1)
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            if bar is not None:
                bar.close()
        return results
