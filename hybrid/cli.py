"""The ``hybrid`` command line: ``hybrid dns | run | generate | train | compare | bench``.

Every subcommand is a :class:`Command` in :data:`COMMANDS`: a name, a help line, a function that
adds its arguments to its subparser, and a handler ``handler(args) -> exit code``. To add one,
write the two functions and call :func:`register`. Exit codes: 0 success, 2 bad input (nothing
was written), 3 the simulation blew up (a restart file holds the last finite state), 130
interrupted.

``main(argv=None)`` parses ``argv`` (default ``sys.argv[1:]``) and returns the exit code.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

EXIT_OK, EXIT_USAGE, EXIT_BLOWUP, EXIT_INTERRUPTED = 0, 2, 3, 130


@dataclass
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, configure, handler) -> Command:
    """Add (or replace) a subcommand."""
    cmd = Command(name, help, configure, handler)
    COMMANDS[name] = cmd
    return cmd


class UsageError(Exception):
    """Bad command-line input found after parsing; main prints it and exits with code 2."""


def fail(msg: str, command: str | None = None) -> int:
    """Print ``hybrid[ COMMAND]: error: MSG`` to stderr and return EXIT_USAGE (bad input); the
    subcommand handlers report their errors through it."""
    print(f"hybrid{' ' + command if command else ''}: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


# ------------------------------------------------------------------ argument types
def _number(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return x


def positive_float(text: str) -> float:
    x = _number(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return x


def nonnegative_float(text: str) -> float:
    x = _number(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text!r}")
    return x


def _integer(text: str, minimum: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ {minimum}, got {text!r}") from None
    if v < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ {minimum}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    return _integer(text, 1)


def nonnegative_int(text: str) -> int:
    return _integer(text, 0)


def grid_size(text: str) -> int:
    v = _integer(text, 8)
    if v % 2:
        raise argparse.ArgumentTypeError(f"must be an even integer ≥ 8, got {text!r}")
    return v


def time_step(text: str):
    """A positive dt, or 'cfl' for a CFL-chosen step."""
    return "cfl" if text.strip().lower() == "cfl" else positive_float(text)


# ------------------------------------------------------------------ output folder
DNS_OUTPUTS = ("trajectory.nc", "run.json", "final_vorticity.png", "energy.png", "hovmoller.png")


def check_output_dir(out: Path, overwrite: bool, outputs=DNS_OUTPUTS, flag: str = "--out") -> Path:
    """Check, touching nothing, that ``out`` is (or can be created as) a writable folder that does
    not already hold our outputs (unless ``overwrite``). Raises UsageError naming ``flag``."""
    from .simulation import check_out_folder
    try:
        return check_out_folder(out, overwrite, outputs, overwrite_hint="--overwrite")
    except (FileExistsError, NotADirectoryError, PermissionError) as e:
        raise UsageError(f"{flag}: {e}") from None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)


def _plain(o):
    """JSON fallback for numpy scalars/arrays and paths."""
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


# ------------------------------------------------------------------ hybrid dns
def _configure_dns(p: argparse.ArgumentParser) -> None:
    from .config import list_presets
    p.add_argument("preset", help=f"preset name ({', '.join(list_presets())}) or path of a TOML "
                                  f"file")
    p.add_argument("--members", type=positive_int, default=1, help="ensemble members (default 1)")
    p.add_argument("--t-end", type=positive_float, default=None,
                   help="simulated time recorded after the spin-up (default: the preset's)")
    p.add_argument("--spinup", type=nonnegative_float, default=None,
                   help="simulated time run before the first record (default: the preset's)")
    p.add_argument("--every", type=positive_float, default=None, metavar="DT_OUT",
                   help="time between trajectory records; the final state is recorded too "
                        "(default: the preset's output_every)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/dns-<preset>)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--n", type=grid_size, default=None, help="grid points per side (default: "
                                                              "the preset's DNS grid)")
    p.add_argument("--dt", type=time_step, default=None,
                   help="time step, or 'cfl' for a CFL-chosen step (default: the preset's)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="FFTW threads; large ensembles split their members between them "
                        "(same bits as one thread; README, Performance)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="working precision of the solver (the trajectory is stored as float32)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in --out")


def _dns(args: argparse.Namespace) -> int:
    from solvers import BlowUpError
    from solvers.io import TrajectoryWriter

    from .config import PresetError, load_preset

    # --- everything is checked before anything is written
    try:
        preset = load_preset(args.preset)
    except PresetError as e:
        return fail(str(e))
    run_cfg = dict(preset.run)
    t_end = args.t_end if args.t_end is not None else run_cfg["t_end"]
    spinup = args.spinup if args.spinup is not None else run_cfg.get("spinup", 0.0)
    every = args.every if args.every is not None else run_cfg["output_every"]
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

    # --- the run
    out.mkdir(parents=True, exist_ok=True)
    if args.overwrite:
        for name in DNS_OUTPUTS[1:]:
            (out / name).unlink(missing_ok=True)
        for old in out.glob("blowup-restart-step*.nc"):
            old.unlink()
    solver.set_vorticity(zeta0)
    traj_path = out / "trajectory.nc"
    info = {
        "command": "dns",
        "argv": getattr(args, "argv", None),
        "preset": preset.to_dict(),
        "solver": type(solver).__name__,
        "solver_config": solver.config(),
        "members": solver.members,
        "seed": args.seed,
        "spinup": spinup,
        "t_end": t_end,
        "output_every": every,
        "trajectory": str(traj_path),
        "python": platform.python_version(),
        "host": platform.node(),
    }
    print(f"hybrid dns: {preset.name} ({type(solver).__name__}, {solver.grid.n}², "
          f"{solver.members} member(s), dt={solver.dt:g}"
          f"{'' if solver.fixed_dt else ' (CFL-chosen)'}) → {out}",
          file=sys.stderr)
    wall0, steps0 = time.perf_counter(), solver.step_count
    status, code, writer = "ok", EXIT_OK, None
    try:
        writer = TrajectoryWriter(traj_path, solver, overwrite=args.overwrite)
        if spinup > 0:
            print(f"spin-up to t={spinup:g} (not recorded)", file=sys.stderr)
            solver.run(spinup, progress=True)
        print(f"recording every {every:g} until t={solver.t + t_end:g}", file=sys.stderr)
        last = [None]

        def record(s):
            writer.write(s)
            last[0] = s.step_count

        solver.run(solver.t + t_end, every=every, callback=record, progress=True)
        if last[0] != solver.step_count:                 # the final state is always recorded
            record(solver)
    except BlowUpError as e:
        print(f"hybrid dns: {e}", file=sys.stderr)
        status, code = "blew up", EXIT_BLOWUP
        info["blowup"] = {"step": e.step, "t": e.t, "members": e.members,
                          "restart": None if e.restart_path is None else str(e.restart_path),
                          "message": str(e)}
    except KeyboardInterrupt:
        print("hybrid dns: interrupted; the trajectory keeps the records written so far",
              file=sys.stderr)
        status, code = "interrupted", EXIT_INTERRUPTED
    finally:
        records = 0 if writer is None else writer.records
        if writer is not None:
            writer.close()
    wall = time.perf_counter() - wall0
    steps = solver.step_count - steps0
    info.update(status=status, records=records, steps=steps, t_final=solver.t, dt=solver.dt,
                simulated_time=solver.t, wall_time_s=wall,
                wall_per_time_unit_per_member_s=wall / solver.t / solver.members
                if solver.t > 0 else None,
                steps_per_s=steps / wall if wall > 0 else None,
                energy_final=solver.energy().tolist() if code == EXIT_OK else None)
    if code == EXIT_OK:
        info["figures"] = _dns_figures(solver, traj_path, out)
    _write_json(out / "run.json", info)
    if code == EXIT_OK:
        print(f"hybrid dns: {records} records in {traj_path}; {steps} steps in {wall:.1f} s "
              f"({info['steps_per_s']:.1f} steps/s)", file=sys.stderr)
    return code


def _dns_figures(solver, traj_path: Path, out: Path) -> list[str]:
    """final_vorticity.png, energy.png and, on the beta-plane, hovmoller.png (member 0)."""
    from solvers.io import open_trajectory

    from . import plots

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


register("dns", "run a DNS from a preset and write its trajectory and figures", _configure_dns,
         _dns)
from .run_command import HELP as _run_help, configure_run as _configure_run  # noqa: E402
from .run_command import run_main as _run  # noqa: E402
register("run", _run_help, _configure_run, _run)


def _configure_compare(p: argparse.ArgumentParser) -> None:
    from .compare import configure_parser
    configure_parser(p)


def _compare(args: argparse.Namespace) -> int:
    from .compare import run_cli
    return run_cli(args)


register("compare", "compare a run with a reference DNS: errors, spectra, PDFs, cost (issue 3)",
         _configure_compare, _compare)
from .train_command import HELP as _train_help, configure as _configure_train  # noqa: E402
from .train_command import handler as _train  # noqa: E402
register("train", _train_help, _configure_train, _train)
from .calibrate_command import HELP as _calibrate_help, configure as _configure_calibrate  # noqa: E402,E501
from .calibrate_command import handler as _calibrate  # noqa: E402
register("calibrate", _calibrate_help, _configure_calibrate, _calibrate)
from .datasets import configure as _configure_generate, handler as _generate  # noqa: E402
register("generate", "generate a closure dataset: filtered DNS and the exact subgrid term "
         "(issue 3)", _configure_generate, _generate)


def _configure_bench(p: argparse.ArgumentParser) -> None:
    from .report import configure
    configure(p)


def _bench(args: argparse.Namespace) -> int:
    from .report import handler
    return handler(args)


register("bench", "write the cost-vs-DNS report: DNS vs LES with each closure (issue 3)",
         _configure_bench, _bench)

# ------------------------------------------------------------------ entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybrid", description="Hybrid simulation of 2D turbulence: DNS, coarse solvers with "
                                   "closures, datasets, training, comparison and benchmarks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(handler=cmd.handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:                      # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    args.argv = ["hybrid", *(sys.argv[1:] if argv is None else argv)]
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except UsageError as e:
        return fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
