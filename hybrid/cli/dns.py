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

from .arguments import (DNS_OUTPUTS, EXIT_OK, UsageError, add_output_arguments,
                        add_restart_arguments, add_solver_arguments, check_output_dir, fail,
                        nonnegative_float, restart_simulation, run_times, run_to_exit,
                        solver_overrides)

NAME = "dns"
HELP = "run a DNS from a preset and write its trajectory and figures"


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid dns``."""
    from ..config import list_presets
    p.add_argument("preset", help=f"preset name ({', '.join(list_presets())}) or path of a TOML "
                                  f"file")
    add_output_arguments(p, "simulated time recorded after the spin-up (default: the preset's)",
                         "--every", "runs/dns-<preset>")
    p.add_argument("--spinup", type=nonnegative_float, default=None,
                   help="simulated time run before the first record (default: the preset's)")
    add_solver_arguments(p, "dns")
    add_restart_arguments(p, span=" of the recorded part")


def handler(args: argparse.Namespace) -> int:
    """Check everything, then run the DNS; returns the exit code."""
    from solvers import BlowUpError

    from ..config import PresetError, load_preset

    # --- everything is checked before anything is written
    try:
        preset = load_preset(args.preset)
    except PresetError as e:
        return fail(str(e))
    t_end, every = run_times(args, preset)
    spinup = args.spinup if args.spinup is not None else preset.run.get("spinup", 0.0)
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
    overrides = solver_overrides(args)
    try:
        solver = preset.make_solver("dns", members=args.members, seed=args.seed,
                                    blowup_dir=out, **overrides)
        zeta0 = preset.initial_vorticity(solver)
    except ValueError as e:
        flags = ", ".join(f"--{k}" for k in overrides)
        return fail(f"{e}" + (f" (command-line settings: {flags})" if flags else ""))

    # --- the run: the one run loop of hybrid.simulation (trajectory, run.json, timings)
    from ..simulation import RUN_JSON, Simulation, base_info, blowup_info

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

    def run():
        if spinup > 0:
            print(f"spin-up to t={spinup:g} (not recorded)", file=sys.stderr)
            sim.run(spinup, progress=True)
        print(f"recording every {every:g} until t={solver.t + t_end:g}", file=sys.stderr)
        return sim.run(solver.t + t_end, out=out, output_every=every, progress=True,
                       overwrite=args.overwrite, restart_every=args.restart_every)

    def stopped_in_the_spinup(e):
        if (out / RUN_JSON).exists():                 # hybrid.simulation wrote it
            return
        blew_up = isinstance(e, BlowUpError)
        info = base_info(solver, None, metadata)
        info.update(status="blew up" if blew_up else "interrupted", records=0,
                    t_final=solver.t, trajectory=None)
        if blew_up:
            info["blowup"] = blowup_info(e)
        write_json(out / RUN_JSON, info)

    res, code = run_to_exit("dns", run, stopped_in_the_spinup)
    if code is not None:
        return code
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
    fixed = [flag for flag, v in (("--members", args.members), ("--seed", args.seed),
                                  ("--n", args.n), ("--dt", args.dt), ("--dtype", args.dtype),
                                  ("--spinup", args.spinup)) if v is not None]
    metadata = {"command": "dns", "argv": getattr(args, "argv", None),
                "preset": preset.to_dict()}
    sim, out = restart_simulation(args, preset, fixed, metadata)
    s = sim.solver
    print(f"hybrid dns: continuing {args.restart} (t={s.t:g}, step {s.step_count}) to "
          f"t={s.t + t_end:g} → {out}", file=sys.stderr)
    res, code = run_to_exit("dns", lambda: sim.run(s.t + t_end, out=out, output_every=every,
                                                   progress=True, append=True,
                                                   restart_every=args.restart_every))
    return code if code is not None else _finish(s, out, res)


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
