"""Hybrid simulations: a (coarse) solver plus a closure, run with output, timings and restarts.

::

    from hybrid.config import load_preset
    from hybrid.simulation import Simulation

    preset = load_preset("kolmogorov")
    solver = preset.make_solver("les", members=8, seed=0)
    solver.set_vorticity(preset.initial_vorticity(solver))
    sim = Simulation(solver, "smagorinsky", every=2)          # or a Closure instance
    result = sim.run(t_end=20, out="runs/demo", output_every=0.5, restart_every=5)
    result.wall_per_time_unit()    # {'total': ..., 'solver': ..., 'closure': ...} seconds per t.u.

    sim = Simulation.from_restart("runs/demo/restart.nc", "smagorinsky")
    sim.run(t_end=40, out="runs/demo-continued")              # bit-identical continuation

``run(t_end, out=...)`` writes into the folder ``out``:

* ``trajectory.nc`` — :class:`solvers.io.TrajectoryWriter` records at the start, at the first step
  on or after every ``output_every`` time units and at the end (its attributes hold the solver
  configuration, the closure's class and ``every``); ``record='zonal-mean'`` stores only U(y),
  energy and enstrophy instead of the vorticity;
* ``run.json`` — status, solver configuration, closure (name, class, every), caller's
  ``metadata`` (e.g. the preset), steps, records and timings: wall seconds in total, in the
  solver's steps (closure excluded), in the closure (``solver.timers['closure']``) and in output;
  closure calls; wall seconds per simulated time unit split into solver and closure. Written at the
  end, also when the run blows up (status "blew up", the error re-raised) or is interrupted;
* ``restart.nc`` — with ``restart_every``, :func:`solvers.io.write_restart` (atomic) at the first
  step on or after every ``restart_every`` time units and at the end.

Every random draw comes from generators seeded by the solver's and the closure's seeds, so the same
seeds give the same run, bit for bit, and a run continued from a restart file is bit-identical to
one that never stopped (the restart holds the state, RNG states, held closure term, closure state
and FFTW wisdom).
"""
from __future__ import annotations

import datetime as _dt
import inspect
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from solvers import BlowUpError, Every
from solvers.files import check_output_folder, write_json
from solvers.io import TrajectoryWriter, check_record, read_restart, write_restart
from solvers.validate import integer, positive_number

TRAJECTORY, RUN_JSON, RESTART = "trajectory.nc", "run.json", "restart.nc"
OUTPUTS = (TRAJECTORY, RUN_JSON, RESTART)


@dataclass
class RunResult:
    """What a run did and what it cost.

    ``wall_s`` is the wall time of the whole run; ``solver_s`` the time in the solver's steps
    without the closure, ``closure_s`` the time in the closure (``solver.timers['closure']``),
    ``io_s`` the time writing trajectory records and restarts. For an ensemble run on a Dask
    cluster (see :mod:`hybrid.ensemble`), ``solver_s``, ``closure_s`` and ``task_wall_s`` are summed
    over the tasks (worker seconds) while ``wall_s`` is the client's wall time, and ``batches``
    lists the tasks.
    """
    status: str
    trajectory: Path | None
    run_json: Path | None
    restart: Path | None
    members: int
    steps: int
    records: int
    t_start: float
    t_end: float
    simulated_time: float
    wall_s: float
    solver_s: float
    closure_s: float
    io_s: float
    closure_calls: int
    task_wall_s: float | None = None
    batches: list[dict] | None = None
    extra: dict = field(default_factory=dict)

    def wall_per_time_unit(self) -> dict[str, float | None]:
        """Wall seconds per simulated time unit: 'total', 'solver' and 'closure'."""
        T = self.simulated_time
        if not T > 0:
            return {"total": None, "solver": None, "closure": None}
        return {"total": self.wall_s / T, "solver": self.solver_s / T,
                "closure": self.closure_s / T}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("trajectory", "run_json", "restart"):
            d[key] = None if d[key] is None else str(d[key])
        d["wall_per_time_unit"] = self.wall_per_time_unit()
        return d


# ------------------------------------------------------------------------------------- helpers
def closure_info(closure, name: str | None = None, every: int | None = None) -> dict[str, Any]:
    """How a closure is described in run.json: registry name, class, every (the solver's
    refresh period, default the closure's own), repr."""
    if closure is None:
        return {"name": "none", "class": None, "every": None, "repr": None}
    return {"name": name or getattr(closure, "name", None) or type(closure).__name__,
            "class": f"{type(closure).__module__}.{type(closure).__qualname__}",
            "every": int(every or getattr(closure, "every", 0) or 0), "repr": repr(closure)}


def base_info(solver, closure_name: str | None, metadata: dict | None) -> dict[str, Any]:
    """The run.json fields that describe the configuration (caller's metadata first)."""
    info = dict(metadata or {})
    info.update({
        "solver": type(solver).__name__,
        "kind": getattr(solver, "kind", None),
        "solver_config": solver.config(),
        "n": solver.grid.n,
        "L": solver.grid.L,
        "members": solver.members,
        "first_member": getattr(solver, "first_member", 0),
        "seed": solver.seed,
        "dt": solver.dt,
        "fixed_dt": getattr(solver, "fixed_dt", True),
        "closure": closure_info(solver.closure, closure_name,
                                getattr(solver, "closure_every", None)),
        "python": platform.python_version(),
        "host": platform.node(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    return info


def timing_info(result: RunResult) -> dict[str, Any]:
    """The 'timings' block of run.json."""
    wall = result.wall_s
    return {
        "wall_s": wall,
        "solver_s": result.solver_s,
        "closure_s": result.closure_s,
        "io_s": result.io_s,
        "other_s": None if result.task_wall_s is not None
        else wall - result.solver_s - result.closure_s - result.io_s,
        "task_wall_s": result.task_wall_s,
        "closure_calls": result.closure_calls,
        "closure_fraction": (result.closure_s / (result.closure_s + result.solver_s)
                             if result.closure_s + result.solver_s > 0 else None),
        "steps_per_s": result.steps / wall if wall > 0 else None,
        "simulated_time_per_wall_s": result.simulated_time / wall if wall > 0 else None,
        "member_time_units_per_wall_s": (result.members * result.simulated_time / wall
                                         if wall > 0 else None),
        "wall_per_time_unit": result.wall_per_time_unit(),
    }


def blowup_info(e: BlowUpError, first_member: int = 0) -> dict[str, Any]:
    """How run.json describes a blow-up: step, time, members (numbered from ``first_member``),
    the restart file of the last finite state and the message."""
    return {"step": e.step, "t": e.t, "members": [int(m) + first_member for m in e.members],
            "restart": None if e.restart_path is None else str(e.restart_path),
            "message": str(e)}


def build_closure(closure, closure_kwargs: dict | None = None) -> tuple[Any, str | None]:
    """``(closure instance, registry name or None)`` from an instance (or None) or a registry name
    (``closures.registry``, built with ``closure_kwargs``)."""
    if isinstance(closure, str):
        from closures.registry import get_closure
        return get_closure(closure, **(closure_kwargs or {})), closure
    if closure_kwargs:
        raise ValueError("closure_kwargs are only used with a closure name, not an instance")
    return closure, None


def _trained_preset(closure) -> str | None:
    """The preset of the data a learned closure was trained on (its model card's
    ``data.preset``), None for a closure without a card or a card that does not say."""
    card = getattr(getattr(closure, "model", None), "card", None)
    data = card.get("data") if isinstance(card, dict) else None
    preset = data.get("preset") if isinstance(data, dict) else None
    return preset if isinstance(preset, str) else None


def closure_solver_overrides(preset, grid: str, closure, overrides: dict | None) -> dict:
    """The settings to build ``preset``'s ``grid`` ('les' or 'dns') solver with for ``closure``:
    ``overrides`` plus the settings the closure needs (``closure.solver_settings()``, e.g.
    advection=False for a model trained on 'missing-physics' data, whose term H = −u·∇ω replaces
    the solver's own advection) where neither the preset nor ``overrides`` sets them and the
    solver's default differs. Before any solver is built, raises ValueError naming the setting
    and where it was set when a learned closure was trained on another preset's data (its card's
    ``data.preset``), when the grid (n, L) is not the closure's or a setting given in
    ``overrides`` or the preset does not suit it. The one place where a solver is adapted to its
    closure (:func:`hybrid.ensemble.make_simulation` calls it)."""
    out = dict(overrides or {})
    if closure is None or not hasattr(closure, "solver_settings"):
        return out
    given = {k: v for k, v in out.items() if v is not None}
    grid_given = ", ".join(f"{k}={given[k]!r}" for k in ("n", "L") if k in given)
    source = f"{preset.where}, {grid} solver" + (f" with {grid_given}" if grid_given else "")
    defaults = {k: p.default for k, p in
                inspect.signature(preset.solver_class.__init__).parameters.items()}
    kw = preset.solver_kwargs(grid, **out)
    n, L = (kw[k] if kw.get(k) is not None else defaults.get(k) for k in ("n", "L"))
    if hasattr(closure, "check_grid") and n is not None and L is not None:
        from solvers.grid import Grid
        closure.check_grid(Grid(int(n), float(L)), where=f"{source}, has")
    trained = _trained_preset(closure)
    if trained is not None and trained != preset.name:
        raise ValueError(f"closure {closure.describe()} was trained on data of preset {trained!r} "
                         f"(its card's data.preset); {preset.where} is another flow: train a "
                         f"model on this preset's data (hybrid generate {preset.name})")
    in_preset = preset.solver_kwargs(grid)
    for key, want in closure.solver_settings().items():
        if given.get(key) is not None:
            closure.check_solver_settings({key: given[key]}, where="the solver settings given set")
        elif in_preset.get(key) is not None:
            closure.check_solver_settings({key: in_preset[key]},
                                          where=f"{preset.where} sets for its {grid} solver")
        elif key in defaults and defaults[key] != want:
            out[key] = want
    return out


# ------------------------------------------------------------------------------------- simulation
class Simulation:
    """A solver with a closure attached, run with output, timings and restart files.

    ``Simulation(solver, closure=None, every=None, *, closure_kwargs=None, metadata=None)``:
    ``closure`` is a closure instance (see ``closures.base.Closure``), a registry name such as
    'smagorinsky' or 'package.module:Class' (built with ``closure_kwargs``), or None to keep the
    closure already attached to ``solver`` (none for a fresh solver). ``every`` overrides the
    closure's refresh period. The closure is attached with ``solver.set_closure(closure, every)``,
    which resets it for the solver's grid, members and seed. ``metadata`` (e.g. the preset as a
    dict) is copied into run.json.
    """

    def __init__(self, solver, closure=None, every: int | None = None, *,
                 closure_kwargs: dict | None = None, metadata: dict | None = None):
        for attr in ("set_closure", "step", "get_state", "timers", "config"):
            if not hasattr(solver, attr):
                raise TypeError(f"solver must be a PseudoSpectralSolver (it lacks {attr!r}), got "
                                f"{type(solver).__name__}")
        every = integer("every (steps between closure calls)", every, 1, allow_none=True)
        self.solver = solver
        closure, name = build_closure(closure, closure_kwargs)
        if closure is not None:
            solver.set_closure(closure, every)
            self.closure_name = name or getattr(closure, "name", None) or type(closure).__name__
        else:
            if every is not None:
                if solver.closure is None:
                    raise ValueError("every was given but there is no closure to call")
                solver.closure_every = int(every)
            c = solver.closure
            self.closure_name = None if c is None else (getattr(c, "name", None)
                                                        or type(c).__name__)
        self.metadata = dict(metadata or {})

    @property
    def closure(self):
        return self.solver.closure

    # ------------------------------------------------------------------ restarts
    @classmethod
    def from_restart(cls, path, closure=None, every: int | None = None, *,
                     closure_kwargs: dict | None = None, metadata: dict | None = None,
                     **overrides) -> "Simulation":
        """Rebuild a simulation from a restart file (written by :meth:`run` or
        :meth:`save_restart`) so that it continues bit-identically.

        ``closure`` must be configured as in the saved run: restarts store its configuration
        (class, constructor arguments, a hash of its weights) and refuse another, naming the
        differing keys. An instance, or a registry name built with ``closure_kwargs``. ``every``
        defaults to the saved one. ``overrides`` go to :func:`solvers.io.read_restart` (e.g.
        ``blowup_dir=``). Continue the run's trajectory with ``run(..., append=True)``.
        """
        closure, name = build_closure(closure, closure_kwargs)
        solver = read_restart(path, closure, every=every, **overrides)
        sim = cls(solver, None, metadata=metadata)
        if name is not None:
            sim.closure_name = name
        sim.metadata.setdefault("restarted_from", str(Path(path)))
        return sim

    def save_restart(self, path) -> Path:
        """Write a restart file of the current state (atomic replace); returns its path."""
        return write_restart(self.solver, path)

    # ------------------------------------------------------------------ running
    def run(self, t_end: float, out=None, output_every: float | None = None,
            progress: bool = True, restart_every: float | None = None, overwrite: bool = False,
            callback: Callable[[Any], None] | None = None, append: bool = False,
            record: str | None = None) -> RunResult:
        """Step the solver until its time reaches ``t_end`` (an absolute time, within dt/2).

        ``out``: folder for trajectory.nc, run.json and restart.nc (None: write nothing).
        ``output_every``: time between trajectory records (None: the start and the end only);
        the first and the final state are always recorded. ``restart_every``: time between restart
        files (needs ``out``; the end state is saved too). ``overwrite``: replace the outputs of an
        earlier run in ``out`` (else FileExistsError before any work). ``callback(solver)`` is
        called at every record (also without ``out``). ``progress``: a tqdm bar.
        ``append``: continue the trajectory in ``out`` (a run restarted from its restart file,
        :meth:`from_restart`): records after the current step are replaced, the current state is
        not recorded twice, records and restarts keep the trajectory's schedule (multiples of
        ``output_every`` and ``restart_every`` after its start), run.json and restart.nc are
        replaced. With the same ``output_every``, a run continued from a restart at time T writes
        the file a run that never stopped writes. ``record``: what the trajectory holds, 'full'
        (the default: vorticity) or 'zonal-mean' (U(y), energy, enstrophy); appending keeps the
        file's (a different one given is refused).

        On :class:`~solvers.BlowUpError` (and KeyboardInterrupt) the trajectory keeps its records,
        run.json is written with the status, and the error is re-raised.
        """
        s = self.solver
        t_end = end_time(t_end, s.t, "the current time")
        output_every = positive_number("output_every", output_every, allow_none=True)
        restart_every = positive_number("restart_every", restart_every, allow_none=True)
        for flag, v in (("overwrite", overwrite), ("append", append)):
            if not isinstance(v, bool):
                raise ValueError(f"{flag} must be True or False, got {v!r}")
        if append and (out is None or overwrite):
            raise ValueError("append needs out, the folder of the trajectory to continue, and "
                             "no overwrite")
        if restart_every is not None and out is None:
            raise ValueError("restart_every needs out, the folder for restart.nc")
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        if record is not None:
            check_record(record)

        traj = run_json = restart_path = None
        writer = None
        t_origin = s.t
        if out is not None:
            out = check_output_folder(out, overwrite or append, () if append else OUTPUTS)
            traj, run_json, restart_path = out / TRAJECTORY, out / RUN_JSON, out / RESTART
            if append:                          # checked (and opened) before any other work
                writer = TrajectoryWriter(traj, s, append=True, record=record)
                t_origin = float(writer.t_start)
                record = writer.record
        info = base_info(s, self.closure_name, self.metadata)
        info.update(t_start=s.t, t_end=t_end, output_every=output_every,
                    restart_every=restart_every,
                    trajectory=None if traj is None else TRAJECTORY,
                    record=None if traj is None else (record or "full"),
                    restart=None if restart_every is None else RESTART)

        t_start, step0 = s.t, s.step_count
        calls0, clo0 = s.closure_calls, s.timers["closure"]
        steps0 = s.timers["steps"]
        io_s = 0.0
        status, error = "running", None
        wall0 = time.perf_counter()

        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            if overwrite:
                for name in (RUN_JSON, RESTART):
                    (out / name).unlink(missing_ok=True)
            if getattr(s, "blowup_dir", "") is None:
                s.blowup_dir = out

        def write_record(solver):
            nonlocal io_s
            t0 = time.perf_counter()
            if writer is not None:
                writer.write(solver)
            if callback is not None:
                callback(solver)
            io_s += time.perf_counter() - t0

        def save(solver):
            nonlocal io_s
            t0 = time.perf_counter()
            write_restart(solver, restart_path)
            io_s += time.perf_counter() - t0

        # the solver's run loop makes the calls: records at the start (unless a continued
        # trajectory holds it already), on the trajectory's schedule and at the end; restarts on
        # theirs and at the end
        records = Every(output_every, write_record, origin=t_origin, end=True)
        restarts = Every(restart_every, save, origin=t_origin, start=False, end=True)
        try:
            if traj is not None and writer is None:
                t0 = time.perf_counter()
                writer = TrajectoryWriter(traj, s, overwrite=overwrite, record=record)
                io_s += time.perf_counter() - t0
            records.last_step = None if writer is None else writer.last_step
            schedules = [records] if writer is not None or callback is not None else []
            if restart_every is not None:
                schedules.append(restarts)
            s.run(t_end, progress=progress, schedules=schedules)
            status = "ok"
        except BlowUpError as e:
            status, error = "blew up", e
            info["blowup"] = blowup_info(e)
            raise
        except KeyboardInterrupt as e:
            status, error = "interrupted", e
            raise
        except Exception as e:
            status, error = "failed", e
            info["error"] = f"{type(e).__name__}: {e}"
            raise
        finally:
            if writer is not None:
                writer.close()
            wall = time.perf_counter() - wall0
            closure_s = s.timers["closure"] - clo0
            solver_s = s.timers["steps"] - steps0
            result = RunResult(
                status=status, trajectory=traj, run_json=run_json,
                restart=restart_path if restarts.calls else None,
                members=s.members, steps=s.step_count - step0, records=records.calls,
                t_start=t_start, t_end=s.t, simulated_time=s.t - t_start, wall_s=wall,
                solver_s=max(solver_s - closure_s, 0.0), closure_s=closure_s, io_s=io_s,
                closure_calls=s.closure_calls - calls0)
            self.last_result = result
            if run_json is not None:
                info.update(status=status, steps=result.steps, records=result.records,
                            t_final=s.t, simulated_time=result.simulated_time,
                            timings=timing_info(result))
                if status == "ok":
                    info["energy_final"] = s.energy()
                try:
                    write_json(run_json, info)
                except OSError:
                    if error is None:
                        raise
        return result


def end_time(t_end, start: float, what: str) -> float:
    """``t_end`` as a float, or ValueError unless it is a finite number ≥ ``start`` (``what``
    names the start in the message)."""
    try:
        t = float(t_end)
    except (TypeError, ValueError):
        raise ValueError(f"t_end must be a number, got {t_end!r}") from None
    if not math.isfinite(t) or t < start:
        raise ValueError(f"t_end must be finite and ≥ {what} {start:g}, got {t_end!r}")
    return t


def expected_closure_calls(step0: int, steps: int, every: int) -> int:
    """Closure calls in steps ``step0 … step0+steps−1``: those whose number is a multiple of
    ``every`` (the solver refreshes at the start of such steps)."""
    if steps <= 0:
        return 0
    return (step0 + steps - 1) // every - (step0 - 1) // every
