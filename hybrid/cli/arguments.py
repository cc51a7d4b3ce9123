"""Shared helpers of the ``hybrid`` commands: exit codes, usage errors, argument types, the
arguments every simulating command takes (:func:`add_solver_arguments`,
:func:`add_restart_arguments`), the output-folder check, continuing a run from its restart file
(:func:`restart_simulation`), running with the exit codes of a blow-up or an interrupt
(:func:`run_to_exit`), the handler of an emulating command (:func:`run_emulator`) and the
``NAME=VALUE`` parameters of a conditioned emulator (:func:`parameter_value`,
:func:`parameters`). Every
command module imports these; nothing here imports a command."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from solvers import validate
from solvers.files import check_output_folder

EXIT_OK, EXIT_USAGE, EXIT_BLOWUP, EXIT_INTERRUPTED = 0, 2, 3, 130


class UsageError(Exception):
    """Bad command-line input found after parsing; ``main`` prints it and exits with code 2."""


def fail(msg: str, command: str | None = None) -> int:
    """Print ``hybrid[ COMMAND]: error: MSG`` to stderr and return EXIT_USAGE (bad input)."""
    print(f"hybrid{' ' + command if command else ''}: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def delegate(module: str, configure: str = "configure", handler: str = "handler"):
    """``(configure, handler)`` of a command whose work lives in the package ``module`` (its
    functions ``configure`` and ``handler``, by these names), imported when the command's parser
    is built or the command runs rather than when the registry is."""
    import importlib

    def configure_command(p: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(module), configure)(p)

    def handle_command(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), handler)(args)

    return configure_command, handle_command


# ------------------------------------------------------------------ argument types
def _argument_type(parse, check):
    """An argparse ``type``: ``parse`` the text, then ``check(name, value)`` from
    :mod:`solvers.validate`; argparse names the flag, so the message starts at 'must be'."""
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            value = text
        try:
            return check("", value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).strip().replace(f"got {value!r}",
                                                                    f"got {text!r}")) from None
    return convert


def _float(text: str) -> float:
    return float(text)


def _int(text: str) -> int:
    return int(text)


number = _argument_type(_float, lambda name, v: validate.number(name, v))
number.__doc__ = "A finite number."
positive_float = _argument_type(_float, lambda name, v: validate.number(name, v, above=0))
nonnegative_float = _argument_type(_float, lambda name, v: validate.number(name, v, at_least=0))
fraction = _argument_type(_float, lambda name, v: validate.number(name, v, at_least=0, below=1))
positive_int = _argument_type(_int, lambda name, v: validate.integer(name, v, 1))
nonnegative_int = _argument_type(_int, lambda name, v: validate.integer(name, v, 0))
grid_size = _argument_type(_int, lambda name, v: validate.integer(name, v, 8, even=True))


def parameter_value(text: str) -> tuple[str, float]:
    """``--param NAME=VALUE``: (NAME, VALUE), NAME an identifier, VALUE a finite number."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. beta=5.66), got {text!r}")
    try:
        return name, number(value)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{name}: {e}") from None


def parameters(pairs: list[tuple[str, float]], flag: str = "--param") -> dict[str, float] | None:
    """The ``(NAME, VALUE)`` pairs of a repeatable parameter flag as a dict (None for none);
    UsageError naming ``flag`` for a name given twice."""
    out: dict[str, float] = {}
    for name, value in pairs:
        if name in out:
            raise UsageError(f"{flag} {name} is given twice ({out[name]:g} and {value:g})")
        out[name] = value
    return out or None


def time_step(text: str):
    """A positive dt, or 'cfl' for a CFL-chosen step."""
    return "cfl" if text.strip().lower() == "cfl" else positive_float(text)


# ------------------------------------------------------------------ shared arguments
def add_output_arguments(p: argparse.ArgumentParser, t_end_help: str, every_flag: str,
                         out_default: str) -> None:
    """--t-end (``t_end_help``), the time between records (``every_flag``, read as
    ``args.output_every``) and --out (default ``out_default``); see :func:`run_times`."""
    p.add_argument("--t-end", type=positive_float, default=None, help=t_end_help)
    p.add_argument(every_flag, dest="output_every", type=positive_float, default=None,
                   metavar="DT_OUT", help="time between trajectory records; the final state is "
                                          "recorded too (default: the preset's output_every)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default {out_default})")


def run_times(args: argparse.Namespace, preset) -> tuple[float, float]:
    """``(t_end, output_every)``: the command line's, else the preset's [run] values."""
    run = dict(preset.run)
    return (args.t_end if args.t_end is not None else run["t_end"],
            args.output_every if args.output_every is not None else run["output_every"])


def add_solver_arguments(p: argparse.ArgumentParser, grid: str) -> None:
    """The solver settings of a simulating command (``grid`` 'dns' or 'les', the preset's grid
    they default to): --members, --seed, --n, --dt, --threads, --dtype and --overwrite."""
    where = {"dns": "the preset's DNS grid", "les": "the preset's [les] grid"}[grid]
    step = {"dns": "the preset's DNS dt", "les": "the preset's LES dt"}[grid]
    p.add_argument("--members", type=positive_int, default=None,
                   help="ensemble members (default 1)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="random seed (default 0)")
    p.add_argument("--n", type=grid_size, default=None,
                   help=f"grid points per side (default: {where})")
    p.add_argument("--dt", type=time_step, default=None,
                   help=f"time step, or 'cfl' for a CFL-chosen step (default: {step})")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="FFTW threads; large ensembles split their members between them "
                        "(same bits as one thread; README, Performance)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="working precision of the solver (the trajectory is stored as float32)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in --out")


def add_restart_arguments(p: argparse.ArgumentParser, span: str = "", note: str = "") -> None:
    """--restart-every (every DT time units ``span``, and at the end ``note``) and --restart."""
    p.add_argument("--restart-every", type=positive_float, default=None, metavar="DT_RESTART",
                   help=f"write restart.nc every DT_RESTART time units{span} and at the "
                        f"end{note}")
    p.add_argument("--restart", type=Path, default=None, metavar="FILE",
                   help="continue the run saved in this restart file for --t-end more time "
                        "units, appending to its trajectory in --out (default: FILE's folder)")


def add_set_argument(p: argparse.ArgumentParser) -> None:
    """--set KEY=VALUE (repeatable): replace a value of the preset; see :func:`apply_settings`."""
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="replace a value of the preset, e.g. --set beta=4 --set mu=2e-3: KEY a "
                        "[dns] setting (the LES inherits it) or SECTION.KEY (dns, les, initial, "
                        "run, e.g. run.output_every=5); VALUE read as in TOML; repeatable, "
                        "recorded in the run's configuration")


def apply_settings(preset, texts: list[str]):
    """``(preset with the --set values, {KEY: value})``; UsageError naming the --set that fails
    (no '=', unknown key, wrong type: :meth:`hybrid.config.Preset.with_settings`)."""
    from ..config import parse_setting
    settings = {}
    for text in texts:
        try:
            key, value = parse_setting(text)
            preset = preset.with_settings({key: value})
        except ValueError as e:
            raise UsageError(f"--set {text}: {e}") from None
        settings[key] = value
    return preset, settings


def add_dask_arguments(p: argparse.ArgumentParser) -> None:
    """--workers N | --scheduler ADDRESS, --batch-size and --connect-timeout (see
    :mod:`hybrid.ensemble`)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="run batches of members on a local Dask cluster of N worker "
                            "processes (the same file as one process, bit for bit)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run batches of members on the Dask cluster at ADDRESS "
                            "(e.g. tcp://127.0.0.1:8786)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                   help="members per Dask task (default: members spread evenly over the workers)")
    p.add_argument("--connect-timeout", type=positive_float, default=10.0, metavar="SECONDS",
                   help="how long to try to reach --scheduler (default 10)")


def solver_overrides(args: argparse.Namespace) -> dict:
    """The solver settings given on the command line (--n, --dt, --threads, --dtype)."""
    return {k: v for k, v in (("n", args.n), ("dt", args.dt), ("threads", args.threads),
                               ("dtype", args.dtype)) if v is not None}


# ------------------------------------------------------------------ output folder
DNS_OUTPUTS = ("trajectory.nc", "run.json", "final_vorticity.png", "energy.png", "hovmoller.png")


def check_output_dir(out: Path, overwrite: bool, outputs=DNS_OUTPUTS, flag: str = "--out") -> Path:
    """Check, touching nothing, that ``out`` is (or can be created as) a writable folder that does
    not already hold our outputs (unless ``overwrite``). Raises UsageError naming ``flag``."""
    try:
        return check_output_folder(out, overwrite, outputs, overwrite_hint="--overwrite")
    except (TypeError, FileExistsError, NotADirectoryError, PermissionError) as e:
        raise UsageError(f"{flag}: {e}") from None


# ------------------------------------------------------------------ continuing and running
def restart_simulation(args: argparse.Namespace, preset, fixed: list[str], metadata: dict,
                       closure=None, every: int | None = None,
                       closure_kwargs: dict | None = None, what: str = ""):
    """The simulation saved in ``args.restart``, to continue its trajectory in ``--out``
    (default: the restart's folder): ``(simulation, out)``. Raises UsageError, before anything
    is written, when any of ``fixed`` (flags given that the restart fixes) or --overwrite is
    given, the file is not a restart of ``preset``'s solver, the closure (``closure``, its
    ``every`` and ``closure_kwargs``) is not the saved one, or the trajectory cannot be
    appended to. ``what`` adds to the messages (e.g. the --closure given)."""
    from solvers.io import RestartFileError, TrajectoryFileError, TrajectoryWriter, load_restart

    from ..simulation import TRAJECTORY, Simulation

    fixed = fixed + (["--overwrite"] if args.overwrite else [])
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
    overrides = {} if args.threads is None else {"threads": args.threads}
    try:
        sim = Simulation.from_restart(args.restart, closure, every,
                                      closure_kwargs=closure_kwargs, metadata=metadata,
                                      **overrides)
        TrajectoryWriter(traj, sim.solver, append=True).close()    # appendable: checked now
    except (ValueError, TypeError, OSError, TrajectoryFileError) as e:
        raise UsageError(f"--restart {args.restart} ({what}trajectory {traj}): {e}") from None
    return sim, out


def run_to_exit(command: str, run, on_stop=None):
    """``(run(), None)``; or, when the run blows up or is interrupted, the message on stderr,
    ``on_stop(error)`` if given, and ``(None, exit code)``."""
    from solvers import BlowUpError
    try:
        return run(), None
    except (BlowUpError, KeyboardInterrupt) as e:
        blew_up = isinstance(e, BlowUpError)
        print(f"hybrid {command}: {e}" if blew_up else f"hybrid {command}: interrupted; the "
              f"trajectory keeps the records written so far", file=sys.stderr)
        if on_stop is not None:
            on_stop(e)
        return None, EXIT_BLOWUP if blew_up else EXIT_INTERRUPTED


def run_emulator(command: str, args: argparse.Namespace, outputs, load, run, size) -> int:
    """The handler of a command that writes an emulated ensemble (``hybrid emulate``,
    ``hybrid ensemble``): ``--out`` checked against ``outputs``; the model ``load()``-ed (a bad
    model file or path exits 2 naming ``--model``); ``run(model, out)`` → the summary it wrote (a
    ValueError exits 2 with its message, an interrupt 130); then ``hybrid COMMAND: M members ×
    SIZE in W s (C s per member per time unit) → OUT`` on stderr, ``SIZE = size(summary)``, and
    the summary's JSON on stdout; a UsageError of ``load()`` (e.g. the model's parameters)
    exits 2 with its message. Returns the exit code."""
    try:
        out = check_output_dir(args.out, args.overwrite, outputs)
    except UsageError as e:
        return fail(str(e), command)
    from closures.ldm.files import ModelFileError
    try:
        model = load()
    except (ModelFileError, OSError) as e:
        return fail(f"--model: {e}", command)
    except UsageError as e:
        return fail(str(e), command)
    try:
        summary = run(model, out)
    except KeyboardInterrupt:
        print(f"hybrid {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as e:
        return fail(str(e), command)
    print(f"hybrid {command}: {summary['members']} members × {size(summary)} in "
          f"{summary['wall_s']:.2f} s ({summary['s_per_member_per_time_unit']:.3g} s per member "
          f"per time unit) → {out}", file=sys.stderr)
    print(json.dumps(summary, default=str))
    return EXIT_OK
