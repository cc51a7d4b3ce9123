"""Shared helpers of the ``hybrid`` commands: exit codes, usage errors, argument types and the
output-folder check. Every command module imports these; nothing here imports a command."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_BLOWUP, EXIT_INTERRUPTED = 0, 2, 3, 130


class UsageError(Exception):
    """Bad command-line input found after parsing; ``main`` prints it and exits with code 2."""


def fail(msg: str, command: str | None = None) -> int:
    """Print ``hybrid[ COMMAND]: error: MSG`` to stderr and return EXIT_USAGE (bad input)."""
    print(f"hybrid{' ' + command if command else ''}: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


# ------------------------------------------------------------------ argument types
def number(text: str) -> float:
    """A finite number."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return x


def positive_float(text: str) -> float:
    x = number(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return x


def nonnegative_float(text: str) -> float:
    x = number(text)
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
    from ..simulation import check_out_folder
    try:
        return check_out_folder(out, overwrite, outputs, overwrite_hint="--overwrite")
    except (FileExistsError, NotADirectoryError, PermissionError) as e:
        raise UsageError(f"{flag}: {e}") from None
