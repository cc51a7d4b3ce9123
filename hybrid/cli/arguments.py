"""Shared helpers of the ``hybrid`` commands: exit codes, usage errors, argument types and the
output-folder check. Every command module imports these; nothing here imports a command."""
from __future__ import annotations

import argparse
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


def time_step(text: str):
    """A positive dt, or 'cfl' for a CFL-chosen step."""
    return "cfl" if text.strip().lower() == "cfl" else positive_float(text)


# ------------------------------------------------------------------ output folder
DNS_OUTPUTS = ("trajectory.nc", "run.json", "final_vorticity.png", "energy.png", "hovmoller.png")


def check_output_dir(out: Path, overwrite: bool, outputs=DNS_OUTPUTS, flag: str = "--out") -> Path:
    """Check, touching nothing, that ``out`` is (or can be created as) a writable folder that does
    not already hold our outputs (unless ``overwrite``). Raises UsageError naming ``flag``."""
    try:
        return check_output_folder(out, overwrite, outputs, overwrite_hint="--overwrite")
    except (TypeError, FileExistsError, NotADirectoryError, PermissionError) as e:
        raise UsageError(f"{flag}: {e}") from None
