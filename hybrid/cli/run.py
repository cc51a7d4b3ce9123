"""``hybrid run``: an LES ensemble of a preset with a closure, in one process or on Dask.

::

    hybrid run PRESET --closure NAME [--every K] [--members M] [--t-end T] [--out DIR] [--seed S]
               [--n N] [--dt DT] [--set KEY=VALUE] [--init DNS_TRAJECTORY [--init-time T0]]
               [--workers N | --scheduler ADDRESS] [--batch-size B] [--overwrite] ...
    hybrid run PRESET --closure NAME --restart FILE [--t-end T] [--out DIR] ...

Runs on the preset's ``[les]`` grid, from the preset's initial field or, with ``--init``, from the
coarse-grained vorticity of a DNS trajectory (``hybrid dns``) at time T0 (default its first
record; the run then starts at T0, so its times line up with the DNS). Writes ``trajectory.nc``
and ``run.json`` (and ``restart.nc`` with ``--restart-every``) into ``--out``. Everything is
checked before any work: bad input exits with code 2 and a message naming the argument, with
nothing written; a blow-up exits with code 3.

A closure model trained on 'missing-physics' data (``hybrid generate --target missing-physics``,
recorded on its card) supplies the whole advection term H = −u·∇ω, so the LES runs without its
own advection; one trained on 'subgrid' data adds to it (see
:func:`hybrid.simulation.closure_solver_overrides`). A preset or grid that does not suit the
model (another n or L, advection asked for) is refused before any work. ``--set KEY=VALUE``
replaces a value of the preset as in ``hybrid dns`` (e.g. ``--set les.eddy_drag=0.01``, a drag on
the LES eddies: an online setting of the LES, tuned like a closure coefficient).

``--restart FILE`` continues the run saved in FILE (a ``restart.nc`` of ``--restart-every``) for
another ``--t-end`` time units, appending to the trajectory in ``--out`` (default: FILE's folder)
as if the run had never stopped. The closure must be the saved one (same name, arguments and
weights); the grid, members, seed and time step are the saved ones.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .arguments import (EXIT_OK, UsageError, add_dask_arguments, add_output_arguments,
                        add_restart_arguments, add_set_argument, add_solver_arguments,
                        apply_settings, check_output_dir, nonnegative_float, positive_int,
                        restart_simulation, run_times, run_to_exit, solver_overrides)

NAME = "run"
HELP = "run a hybrid simulation: coarse solver plus a closure"


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid run``."""
    p.add_argument("preset", help="preset name (see 'hybrid dns --help') or path of a TOML file")
    p.add_argument("--closure", required=True, metavar="NAME",
                   help="closure: a registered name (none, smagorinsky, leith, ldm, pcdm: the "
                        "last two the shipped diffusion models, or --closure-arg path=STEM) or "
                        "'package.module:ClassName'")
    p.add_argument("--closure-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the closure (VALUE read as JSON if it parses, else "
                        "as a string), e.g. --closure-arg cs=0.2; repeatable")
    p.add_argument("--every", type=positive_int, default=None, metavar="K",
                   help="steps between closure calls (default: the closure's own)")
    add_output_arguments(p, "simulated time to run (default: the preset's run.t_end)",
                         "--output-every", "runs/run-<preset>-<closure>")
    p.add_argument("--init", type=Path, default=None, metavar="DNS_TRAJECTORY",
                   help="start from the coarse-grained vorticity of this DNS trajectory (one DNS "
                        "member per run member)")
    p.add_argument("--init-time", type=nonnegative_float, default=None, metavar="T0",
                   help="time of the --init record to start from (default: its first record)")
    add_solver_arguments(p, "les")
    add_set_argument(p)
    add_restart_arguments(p, note=" (one-process runs only)")
    add_dask_arguments(p)


def _closure_kwargs(pairs: list[str]) -> dict:
    out = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--closure-arg expects KEY=VALUE with KEY a Python name, got "
                             f"{item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def handler(args: argparse.Namespace) -> int:
    """The handler of ``hybrid run``; returns the exit code."""
    from ..config import PresetError, load_preset
    from ..ensemble import Ensemble, SchedulerUnreachable, coarse_initial_from_trajectory
    from ..simulation import OUTPUTS

    # --- everything is checked before anything is written
    try:
        preset = load_preset(args.preset)
    except PresetError as e:
        raise UsageError(str(e)) from None
    if not preset.les:
        raise UsageError(f"preset {preset.name!r} has no [les] section, so it has no coarse grid "
                         f"for 'hybrid run'")
    if args.restart is not None:
        return _continue(args, preset)
    preset, settings = apply_settings(preset, args.settings)
    args.members = 1 if args.members is None else args.members
    args.seed = 0 if args.seed is None else args.seed
    dask = args.workers is not None or args.scheduler is not None
    if args.init_time is not None and args.init is None:
        raise UsageError("--init-time needs --init (the DNS trajectory to start from)")
    if args.restart_every is not None and dask:
        raise UsageError("--restart-every works for one-process runs only, not with --workers "
                         "or --scheduler")
    if args.batch_size is not None and not dask:
        raise UsageError("--batch-size needs --workers or --scheduler")
    kwargs = _closure_kwargs(args.closure_arg)
    try:
        from closures.registry import get_closure
        get_closure(args.closure, **kwargs)
    except (ValueError, TypeError) as e:
        flag = "--closure/--closure-arg" if kwargs else "--closure"
        raise UsageError(f"{flag} {args.closure}: {e}") from None

    t_end, output_every = run_times(args, preset)
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", args.closure).strip("-") or "closure"
    out = args.out if args.out is not None else Path("runs") / f"run-{preset.name}-{tag}"
    out = check_output_dir(out, args.overwrite, outputs=OUTPUTS)
    overrides = solver_overrides(args)
    flags = ", ".join([f"--{k}" for k in overrides] + [f"--set {k}" for k in settings])
    given = f" (command-line settings: {flags})" if flags else ""
    try:
        probe = preset.make_solver("les", members=1, seed=args.seed, **overrides)
    except ValueError as e:
        raise UsageError(f"{e}{given}") from None
    if dask and args.members > 1 and not probe.fixed_dt and \
            (args.batch_size is None or args.batch_size < args.members):
        raise UsageError("--dt cfl (a CFL-chosen step) would differ between Dask batches; give a "
                         "fixed --dt or --batch-size equal to --members")

    initial_hat, t0, init_info = None, 0.0, None
    if args.init is not None:
        try:
            initial_hat, t0, init_info = coarse_initial_from_trajectory(
                args.init, probe.grid, members=args.members, time=args.init_time,
                solver=preset.solver)
        except (ValueError, OSError) as e:
            what = f"--init {args.init}" + (f" --init-time {args.init_time:g}"
                                            if args.init_time is not None else "")
            raise UsageError(f"{what}: {e}") from None
    try:
        ens = Ensemble(preset, args.closure, args.every, closure_kwargs=kwargs,
                       members=args.members, seed=args.seed, overrides=overrides,
                       initial_hat=initial_hat, t0=t0)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--closure {args.closure}: {e}{given}") from None

    # --- the run
    s = ens.template
    where = (f"Dask scheduler {args.scheduler}" if args.scheduler else
             f"local Dask cluster of {args.workers} worker(s)" if args.workers else "one process")
    start = f"coarse-grained {args.init} at t={t0:g}" if args.init else "the preset's field"
    print(f"hybrid run: {preset.name} LES ({type(s).__name__}, {s.grid.n}², dt={s.dt:g}"
          f"{'' if s.fixed_dt else ' (CFL-chosen)'}"
          f"{'' if s.advection else ', no advection of its own'}), closure {args.closure} every "
          f"{s.closure_every} steps, {args.members} member(s) from {start}, on {where} → {out}",
          file=sys.stderr)
    metadata = {"command": "run", "argv": getattr(args, "argv", None), "settings": settings,
                "init": init_info}
    try:
        res, code = run_to_exit("run", lambda: ens.run(
            t0 + t_end, out, output_every, workers=args.workers, scheduler=args.scheduler,
            batch_size=args.batch_size, progress=True, overwrite=args.overwrite,
            restart_every=args.restart_every, metadata=metadata,
            connect_timeout=args.connect_timeout))
    except SchedulerUnreachable as e:
        raise UsageError(f"--scheduler {args.scheduler}: {e}") from None
    if code is not None:
        return code
    per = res.wall_per_time_unit()
    share = res.closure_s / (res.closure_s + res.solver_s) if res.closure_s + res.solver_s else 0
    print(f"hybrid run: {res.records} records in {res.trajectory}; {res.steps} steps, "
          f"{res.closure_calls} closure calls in {res.wall_s:.1f} s ({per['total']:.3g} s per "
          f"time unit; closure {100 * share:.0f}% of the compute)", file=sys.stderr)
    return EXIT_OK


def _continue(args: argparse.Namespace, preset) -> int:
    """``hybrid run --restart FILE``: continue the saved run, appending to its trajectory."""
    fixed = [flag for flag, v in (("--members", args.members), ("--seed", args.seed),
                                  ("--n", args.n), ("--dt", args.dt), ("--dtype", args.dtype),
                                  ("--init", args.init), ("--init-time", args.init_time),
                                  ("--workers", args.workers), ("--scheduler", args.scheduler),
                                  ("--batch-size", args.batch_size),
                                  ("--set", args.settings or None)) if v is not None]
    t_span, output_every = run_times(args, preset)
    kwargs = _closure_kwargs(args.closure_arg)
    metadata = {"command": "run", "argv": getattr(args, "argv", None),
                "preset": preset.to_dict(), "closure_kwargs": kwargs}
    sim, out = restart_simulation(args, preset, fixed, metadata, args.closure, args.every,
                                  kwargs, what=f"--closure {args.closure}, ")
    s = sim.solver
    print(f"hybrid run: continuing {args.restart} (t={s.t:g}, step {s.step_count}, "
          f"{s.members} member(s), closure {args.closure} every {s.closure_every} steps) to "
          f"t={s.t + t_span:g} → {out}", file=sys.stderr)
    res, code = run_to_exit("run", lambda: sim.run(s.t + t_span, out=out,
                                                   output_every=output_every, progress=True,
                                                   restart_every=args.restart_every,
                                                   append=True))
    if code is not None:
        return code
    print(f"hybrid run: {res.records} records appended to {res.trajectory}; {res.steps} steps in "
          f"{res.wall_s:.1f} s", file=sys.stderr)
    return EXIT_OK
