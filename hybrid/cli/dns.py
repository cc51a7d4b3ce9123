"""``hybrid dns PRESET``: a DNS from a preset; writes its trajectory, run.json and figures.

::

    hybrid dns PRESET [--t-end T] [--every DT] [--spinup T0] [--members M] [--seed S] [--out DIR]
               [--record full|zonal-mean] [--set KEY=VALUE ...] [--init FILE [--at T]]
               [--workers N | --scheduler ADDRESS] [--restart-every DT] ...
    hybrid dns PRESET --restart FILE [--t-end T] [--out DIR]

``--record zonal-mean`` stores only the zonal-mean velocity U(y) (``zonal_mean_u``, float32),
energy and enstrophy instead of the vorticity: long U(y, t) data for the jet diagnostics and the
emulators. ``--set KEY=VALUE`` replaces a value of the preset (recorded in the trajectory's
configuration and in run.json). ``--init FILE --at T`` starts every member from one saved state,
member ``--init-member`` of FILE at time T (a restart file: its exact state, T optional; or a
trajectory recorded in full: its stored record at T), with no spin-up unless ``--spinup`` is
given; the members then differ only by their forcing noise (seeded by ``--seed``), and the run's
times continue from T. ``--workers N`` / ``--scheduler ADDRESS`` run batches of members on Dask
(:mod:`hybrid.ensemble`); the file is the one-process file, bit for bit.

``--restart-every DT`` also writes ``restart.nc`` every DT time units of the recorded part and at
the end (one-process runs); ``hybrid dns PRESET --restart FILE [--t-end T]`` continues that run for
T more time units, appending to the trajectory in ``--out`` (default: FILE's folder) as if it had
never stopped, in the trajectory's own record.

Everything is checked before anything is written: bad input exits with code 2 and a message
naming the argument.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from solvers.files import write_json

from .arguments import (DNS_OUTPUTS, EXIT_OK, UsageError, add_dask_arguments,
                        add_output_arguments, add_restart_arguments, add_set_argument,
                        add_solver_arguments, apply_settings, check_output_dir, fail,
                        nonnegative_float, nonnegative_int, number, restart_simulation,
                        run_times, run_to_exit, solver_overrides)

NAME = "dns"
HELP = "run a DNS from a preset and write its trajectory and figures"
FIGURES = DNS_OUTPUTS[2:]
HOVMOLLER_TIMES = 4000          # at most this many records in the Hovmöller figure (strided)


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid dns``."""
    from ..config import list_presets
    p.add_argument("preset", help=f"preset name ({', '.join(list_presets())}) or path of a TOML "
                                  f"file")
    add_output_arguments(p, "simulated time recorded after the spin-up (default: the preset's)",
                         "--every", "runs/dns-<preset>")
    p.add_argument("--spinup", type=nonnegative_float, default=None,
                   help="simulated time run before the first record (default: the preset's; 0 "
                        "with --init)")
    p.add_argument("--record", choices=("full", "zonal-mean"), default=None,
                   help="what the trajectory stores: full (default: the vorticity, and U(y) on "
                        "the beta-plane) or zonal-mean (only U(y) = mean over x of u, float32, "
                        "with energy and enstrophy: 4n bytes per member and record)")
    add_set_argument(p)
    add_solver_arguments(p, "dns")
    p.add_argument("--init", type=Path, default=None, metavar="FILE",
                   help="start every member from one state of FILE: a restart file, or a "
                        "trajectory recorded in full (the record at --at); new forcing noise per "
                        "member")
    p.add_argument("--at", type=number, default=None, metavar="T",
                   help="time of the --init state (a trajectory record's time; optional for a "
                        "restart file); the run continues from T")
    p.add_argument("--init-member", type=nonnegative_int, default=None, metavar="K",
                   help="member of --init to start from (default 0)")
    add_restart_arguments(p, span=" of the recorded part", note=" (one-process runs only)")
    add_dask_arguments(p)


def handler(args: argparse.Namespace) -> int:
    """Check everything, then run the DNS; returns the exit code."""
    try:
        return _handle(args)
    except UsageError as e:
        return fail(str(e))


def _handle(args: argparse.Namespace) -> int:
    from solvers import BlowUpError

    from ..config import PresetError, load_preset
    from ..ensemble import Ensemble, SchedulerUnreachable, state_from_file

    # --- everything is checked before anything is written
    try:
        preset = load_preset(args.preset)
    except PresetError as e:
        raise UsageError(str(e)) from None
    if args.restart is not None:
        return _continue(args, preset)
    preset, settings = apply_settings(preset, args.settings)
    t_end, every = run_times(args, preset)
    dask = args.workers is not None or args.scheduler is not None
    for flag, v in (("--at", args.at), ("--init-member", args.init_member)):
        if v is not None and args.init is None:
            raise UsageError(f"{flag} needs --init (the file of the state to start from)")
    if args.restart_every is not None and dask:
        raise UsageError("--restart-every works for one-process runs only, not with --workers "
                         "or --scheduler")
    if args.batch_size is not None and not dask:
        raise UsageError("--batch-size needs --workers or --scheduler")
    spinup = (args.spinup if args.spinup is not None
              else 0.0 if args.init is not None else preset.run.get("spinup", 0.0))
    record = args.record or "full"
    args.members = 1 if args.members is None else args.members
    args.seed = 0 if args.seed is None else args.seed
    out = check_output_dir(args.out if args.out is not None
                           else Path("runs") / f"dns-{preset.name}", args.overwrite)
    overrides = solver_overrides(args)
    flags = [f"--{k}" for k in overrides] + [f"--set {k}" for k in settings]
    where = f" (command-line settings: {', '.join(flags)})" if flags else ""
    initial_hat, t0, init_info = None, 0.0, None
    try:
        if args.init is not None:
            probe = preset.make_solver("dns", members=1, seed=args.seed, **overrides)
            try:
                initial_hat, t0, init_info = state_from_file(
                    args.init, probe, at=args.at, member=args.init_member or 0)
            except (ValueError, OSError) as e:
                what = f"--init {args.init}" + ("" if args.at is None else f" --at {args.at:g}")
                raise UsageError(f"{what}: {e}") from None
        ens = Ensemble(preset, None, members=args.members, seed=args.seed, overrides=overrides,
                       initial_hat=initial_hat, t0=t0, grid="dns", spinup=spinup)
    except ValueError as e:
        raise UsageError(f"{e}{where}") from None
    s = ens.template
    if dask and ens.members > 1 and not s.fixed_dt and args.batch_size != ens.members:
        raise UsageError("--workers/--scheduler split the members into batches, which need a "
                         "fixed time step: give --dt (a CFL-chosen dt depends on the members of "
                         "a batch)")

    # --- the run: hybrid.ensemble, in this process or on Dask (one trajectory, run.json)
    from ..simulation import RUN_JSON, base_info, blowup_info

    if not dask:            # on Dask, nothing is touched before the results are in (a cluster
        out.mkdir(parents=True, exist_ok=True)              # that cannot be reached: exit 2)
        if args.overwrite:
            for name in DNS_OUTPUTS[1:]:
                (out / name).unlink(missing_ok=True)
            for old in out.glob("blowup-restart-step*.nc"):
                old.unlink()
    metadata = {"command": "dns", "argv": getattr(args, "argv", None), "spinup": spinup,
                "record": record, "settings": settings, "init": init_info}
    execution = (f"Dask scheduler {args.scheduler}" if args.scheduler else
                 f"a local Dask cluster of {args.workers} worker(s)" if args.workers else
                 "one process")
    start = (f"{args.init} (member {args.init_member or 0}) at t={t0:g}" if args.init is not None
             else "the preset's initial field")
    print(f"hybrid dns: {preset.name} ({type(s).__name__}, {s.grid.n}², {ens.members} "
          f"member(s), dt={s.dt:g}{'' if s.fixed_dt else ' (CFL-chosen)'}) from {start}, "
          f"{record} records, on {execution} → {out}", file=sys.stderr)
    t_stop = t0 + spinup + t_end

    def run():
        if spinup > 0:
            print(f"spin-up to t={t0 + spinup:g} (not recorded)", file=sys.stderr)
        print(f"recording every {every:g} until t={t_stop:g}", file=sys.stderr)
        return ens.run(t_stop, out, every, workers=args.workers, scheduler=args.scheduler,
                       batch_size=args.batch_size, progress=True, overwrite=args.overwrite,
                       restart_every=args.restart_every, metadata=metadata,
                       connect_timeout=args.connect_timeout, record=record)

    def stopped_in_the_spinup(e):
        if (out / RUN_JSON).exists() or ens.simulation is None:   # written by the run already
            return
        solver = ens.simulation.solver
        blew_up = isinstance(e, BlowUpError)
        info = base_info(solver, None, ens.simulation.metadata)
        info.update(status="blew up" if blew_up else "interrupted", records=0,
                    t_final=solver.t, trajectory=None)
        if blew_up:
            info["blowup"] = blowup_info(e)
        write_json(out / RUN_JSON, info)

    try:
        res, code = run_to_exit("dns", run, stopped_in_the_spinup)
    except SchedulerUnreachable as e:
        raise UsageError(f"--scheduler {args.scheduler}: {e}") from None
    if code is not None:
        return code
    return _finish(out, res)


def _finish(out: Path, res) -> int:
    """Figures into run.json, the summary line; the exit code of a finished run."""
    from ..simulation import RUN_JSON, TRAJECTORY
    info = json.loads((out / RUN_JSON).read_text())
    info["figures"] = _dns_figures(out / TRAJECTORY, out)
    for name in set(FIGURES) - set(info["figures"]):
        (out / name).unlink(missing_ok=True)                  # stale ones of an earlier run
    write_json(out / RUN_JSON, info)
    print(f"hybrid dns: {res.records} records in {res.trajectory}; {res.steps} steps in "
          f"{res.wall_s:.1f} s ({res.steps / max(res.wall_s, 1e-9):.1f} steps/s)",
          file=sys.stderr)
    return EXIT_OK


def _continue(args: argparse.Namespace, preset) -> int:
    """``hybrid dns --restart FILE``: continue the saved run, appending to its trajectory."""
    fixed = [flag for flag, v in (("--members", args.members), ("--seed", args.seed),
                                  ("--n", args.n), ("--dt", args.dt), ("--dtype", args.dtype),
                                  ("--spinup", args.spinup), ("--record", args.record),
                                  ("--set", args.settings or None), ("--init", args.init),
                                  ("--at", args.at), ("--init-member", args.init_member),
                                  ("--workers", args.workers), ("--scheduler", args.scheduler),
                                  ("--batch-size", args.batch_size)) if v is not None]
    t_end, every = run_times(args, preset)
    metadata = {"command": "dns", "argv": getattr(args, "argv", None),
                "preset": preset.to_dict()}
    sim, out = restart_simulation(args, preset, fixed, metadata)
    s = sim.solver
    print(f"hybrid dns: continuing {args.restart} (t={s.t:g}, step {s.step_count}) to "
          f"t={s.t + t_end:g} → {out}", file=sys.stderr)
    res, code = run_to_exit("dns", lambda: sim.run(s.t + t_end, out=out, output_every=every,
                                                   progress=True, append=True,
                                                   restart_every=args.restart_every))
    return code if code is not None else _finish(out, res)


def _dns_figures(traj_path: Path, out: Path) -> list[str]:
    """From the trajectory: final_vorticity.png (member 0, full records), energy.png and, with
    U(y) recorded, hovmoller.png (member 0, at most HOVMOLLER_TIMES records, strided)."""
    from solvers.io import open_trajectory

    from .. import plots

    made = []
    with open_trajectory(traj_path) as ds:
        t = ds["time"].values
        if "vorticity" in ds.variables and t.size:
            made.append(plots.plot_vorticity(
                ds["vorticity"].isel(member=0, time=-1).values.astype(float),
                out / "final_vorticity.png",
                title=f"{ds.attrs.get('solver', 'DNS')} vorticity, t = {t[-1]:.4g}",
                L=float(ds.attrs.get("L"))))
        made.append(plots.plot_energy(t, ds["energy"].values, out / "energy.png"))
        if "zonal_mean_u" in ds.variables:
            stride = max(1, -(-t.size // HOVMOLLER_TIMES))
            made.append(plots.plot_hovmoller(
                t[::stride], ds["y"].values,
                ds["zonal_mean_u"].isel(member=0, time=slice(None, None, stride)).values,
                out / "hovmoller.png"))
    return [p.name for p in made]
