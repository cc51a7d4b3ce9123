"""``hybrid dns PRESET``: a DNS from a preset; writes its trajectory, run.json and figures.

``--restart-every DT`` also writes ``restart.nc`` every DT time units of the recorded part and at
the end; ``hybrid dns PRESET --restart FILE [--t-end T]`` continues that run for T more time
units, appending to the trajectory in ``--out`` (default: FILE's folder) as if it had never
stopped.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from solvers.files import write_json

from .arguments import (DNS_OUTPUTS, EXIT_BLOWUP, EXIT_INTERRUPTED, EXIT_OK, UsageError,
                        check_output_dir, fail, grid_size, nonnegative_float, nonnegative_int,
                        positive_float, positive_int, time_step)

NAME = "dns"
HELP = "run a DNS from a preset and write its trajectory and figures"


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid dns``."""
    from ..config import list_presets
    p.add_argument("preset", help=f"preset name ({', '.join(list_presets())}) or path of a TOML "
                                  f"file")
    p.add_argument("--members", type=positive_int, default=None,
                   help="ensemble members (default 1)")
    p.add_argument("--t-end", type=positive_float, default=None,
                   help="simulated time recorded after the spin-up (default: the preset's)")
    p.add_argument("--spinup", type=nonnegative_float, default=None,
                   help="simulated time run before the first record (default: the preset's)")
    p.add_argument("--every", type=positive_float, default=None, metavar="DT_OUT",
                   help="time between trajectory records; the final state is recorded too "
                        "(default: the preset's output_every)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/dns-<preset>)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="random seed (default 0)")
    p.add_argument("--n", type=grid_size, default=None, help="grid points per side (default: "
                                                              "the preset's DNS grid)")
    p.add_argument("--dt", type=time_step, default=None,
                   help="time step, or 'cfl' for a CFL-chosen step (default: the preset's)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="FFTW threads; large ensembles split their members between them "
                        "(same bits as one thread; README, Performance)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="working precision of the solver (the trajectory is stored as float32)")
    p.add_argument("--restart-every", type=positive_float, default=None, metavar="DT_RESTART",
                   help="write restart.nc every DT_RESTART time units of the recorded part and "
                        "at the end")
    p.add_argument("--restart", type=Path, default=None, metavar="FILE",
                   help="continue the run saved in this restart file for --t-end more time "
                        "units, appending to its trajectory in --out (default: FILE's folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in --out")


def handler(args: argparse.Namespace) -> int:
    """Check everything, then run the DNS; returns the exit code."""
    from solvers import BlowUpError

    from ..config import PresetError, load_preset

    # --- everything is checked before anything is written
    try:
        preset = load_preset(args.preset)
    except PresetError as e:
        return fail(str(e))
    run_cfg = dict(preset.run)
    t_end = args.t_end if args.t_end is not None else run_cfg["t_end"]
    spinup = args.spinup if args.spinup is not None else run_cfg.get("spinup", 0.0)
    every = args.every if args.every is not None else run_cfg["output_every"]
    if args.restart is not None:
        try:
            return _continue(args, preset, t_end, every)
        except UsageError as e:
            return fail(str(e))
    args.members = 1 if args.members is None else args.members
    args.seed = 0 if args.seed is None else args.seed
    out = args.out if args.out is not None else Path("runs") / f"dns-{preset.name}"
    try:
        out = check_output_dir(out, args.overwrite)
    except UsageError as e:
        return fail(str(e))
    overrides = {k: v for k, v in (("n", args.n), ("dt", args.dt), ("threads", args.threads),
                                   ("dtype", args.dtype)) if v is not None}
    try:
        solver = preset.make_solver("dns", members=args.members, seed=args.seed,
                                    blowup_dir=out, **overrides)
        zeta0 = preset.initial_vorticity(solver)
    except ValueError as e:
        flags = ", ".join(f"--{k}" for k in overrides)
        return fail(f"{e}" + (f" (command-line settings: {flags})" if flags else ""))

    # --- the run: the one run loop of hybrid.simulation (trajectory, run.json, timings)
    from ..simulation import RUN_JSON, Simulation, base_info

    out.mkdir(parents=True, exist_ok=True)
    if args.overwrite:
        for name in DNS_OUTPUTS[1:]:
            (out / name).unlink(missing_ok=True)
        for old in out.glob("blowup-restart-step*.nc"):
            old.unlink()
    solver.set_vorticity(zeta0)
    metadata = {"command": "dns", "argv": getattr(args, "argv", None),
                "preset": preset.to_dict(), "spinup": spinup}
    sim = Simulation(solver, metadata=metadata)
    print(f"hybrid dns: {preset.name} ({type(solver).__name__}, {solver.grid.n}², "
          f"{solver.members} member(s), dt={solver.dt:g}"
          f"{'' if solver.fixed_dt else ' (CFL-chosen)'}) → {out}",
          file=sys.stderr)
    try:
        if spinup > 0:
            print(f"spin-up to t={spinup:g} (not recorded)", file=sys.stderr)
            sim.run(spinup, progress=True)
        print(f"recording every {every:g} until t={solver.t + t_end:g}", file=sys.stderr)
        res = sim.run(solver.t + t_end, out=out, output_every=every, progress=True,
                      overwrite=args.overwrite, restart_every=args.restart_every)
    except (BlowUpError, KeyboardInterrupt) as e:
        blew_up = isinstance(e, BlowUpError)
        print(f"hybrid dns: {e}" if blew_up else "hybrid dns: interrupted; the trajectory keeps "
              "the records written so far", file=sys.stderr)
        if not (out / RUN_JSON).exists():             # stopped in the spin-up: nothing recorded
            info = base_info(solver, None, metadata)
            info.update(status="blew up" if blew_up else "interrupted", records=0,
                        t_final=solver.t, trajectory=None)
            if blew_up:
                info["blowup"] = {"step": e.step, "t": e.t, "members": e.members,
                                  "restart": None if e.restart_path is None
                                  else str(e.restart_path), "message": str(e)}
            write_json(out / RUN_JSON, info)
        return EXIT_BLOWUP if blew_up else EXIT_INTERRUPTED
    return _finish(solver, out, res)


def _finish(solver, out: Path, res) -> int:
    """Figures into run.json, the summary line; the exit code of a finished run."""
    from ..simulation import RUN_JSON, TRAJECTORY
    info = json.loads((out / RUN_JSON).read_text())
    info["figures"] = _dns_figures(solver, out / TRAJECTORY, out)
    write_json(out / RUN_JSON, info)
    print(f"hybrid dns: {res.records} records in {res.trajectory}; {res.steps} steps in "
          f"{res.wall_s:.1f} s ({res.steps / max(res.wall_s, 1e-9):.1f} steps/s)",
          file=sys.stderr)
    return EXIT_OK


def _continue(args: argparse.Namespace, preset, t_end: float, every: float) -> int:
    """``hybrid dns --restart FILE``: continue the saved run, appending to its trajectory."""
    from solvers import BlowUpError
    from solvers.io import RestartFileError, TrajectoryFileError, TrajectoryWriter, load_restart

    from ..simulation import TRAJECTORY, Simulation

    fixed = [flag for flag, v in (("--members", args.members), ("--seed", args.seed),
                                  ("--n", args.n), ("--dt", args.dt), ("--dtype", args.dtype),
                                  ("--spinup", args.spinup)) if v is not None]
    if args.overwrite:
        fixed.append("--overwrite")
    if fixed:
        raise UsageError(f"--restart continues the saved run as it was (its grid, members, seed "
                         f"and time step): {', '.join(fixed)} cannot be given with it")
    try:
        saved = load_restart(args.restart)
    except (OSError, RestartFileError) as e:
        raise UsageError(f"--restart {args.restart}: {e}") from None
    if saved["solver"] != preset.solver:
        raise UsageError(f"--restart {args.restart} holds a {saved['solver']} run; preset "
                         f"{preset.name!r} runs {preset.solver}")
    out = check_output_dir(args.out if args.out is not None else saved["path"].parent, True,
                           outputs=())
    traj = out / TRAJECTORY
    metadata = {"command": "dns", "argv": getattr(args, "argv", None),
                "preset": preset.to_dict()}
    overrides = {} if args.threads is None else {"threads": args.threads}
    try:
        sim = Simulation.from_restart(args.restart, metadata=metadata, **overrides)
        TrajectoryWriter(traj, sim.solver, append=True).close()    # appendable: checked now
    except (ValueError, TypeError, OSError, TrajectoryFileError) as e:
        raise UsageError(f"--restart {args.restart} (trajectory {traj}): {e}") from None
    s = sim.solver
    print(f"hybrid dns: continuing {args.restart} (t={s.t:g}, step {s.step_count}) to "
          f"t={s.t + t_end:g} → {traj}", file=sys.stderr)
    try:
        res = sim.run(s.t + t_end, out=out, output_every=every, progress=True,
                      restart_every=args.restart_every, append=True)
    except BlowUpError as e:
        print(f"hybrid dns: {e}", file=sys.stderr)
        return EXIT_BLOWUP
    except KeyboardInterrupt:
        print("hybrid dns: interrupted; the trajectory keeps the records written so far",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return _finish(s, out, res)


def _dns_figures(solver, traj_path: Path, out: Path) -> list[str]:
    """final_vorticity.png, energy.png and, on the beta-plane, hovmoller.png (member 0)."""
    from solvers.io import open_trajectory

    from .. import plots

    made = [plots.plot_vorticity(solver.vorticity[0], out / "final_vorticity.png",
                                 title=f"{type(solver).__name__} vorticity, t = {solver.t:.4g}",
                                 L=solver.grid.L)]
    with open_trajectory(traj_path) as ds:
        t = ds["time"].values
        made.append(plots.plot_energy(t, ds["energy"].values, out / "energy.png"))
        if "zonal_mean_u" in ds.variables:
            made.append(plots.plot_hovmoller(t, ds["y"].values,
                                             ds["zonal_mean_u"].isel(member=0).values,
                                             out / "hovmoller.png"))
    return [p.name for p in made]
