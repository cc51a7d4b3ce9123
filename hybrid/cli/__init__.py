"""The ``hybrid`` command line: ``hybrid dns | run | generate | train | calibrate | compare |
jets | emulate | ensemble | bench``.

This module is the command registry: each command is a module of this package with ``NAME``,
``HELP``, ``configure(parser)`` (adds its arguments) and ``handler(args) -> exit code``; the
helpers they share (exit codes, argument types, the output-folder check) are in
:mod:`hybrid.cli.arguments`. To add a command, write its module and list it in ``_MODULES`` (or
call :func:`register`). Exit codes: 0 success, 2 bad input (nothing was written), 3 the
simulation blew up (a restart file holds the last finite state), 130 interrupted.

``main(argv=None)`` parses ``argv`` (default ``sys.argv[1:]``) and returns the exit code.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

from . import bench, calibrate, compare, dns, emulate, ensemble, generate, jets, run, train
from .arguments import EXIT_USAGE, UsageError, fail


@dataclass
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, configure, handler) -> Command:
    """Add (or replace) a command."""
    cmd = Command(name, help, configure, handler)
    COMMANDS[name] = cmd
    return cmd


_MODULES = (dns, run, compare, jets, train, emulate, ensemble, calibrate, generate, bench)
for _m in _MODULES:
    register(_m.NAME, _m.HELP, _m.configure, _m.handler)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every registered command."""
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
