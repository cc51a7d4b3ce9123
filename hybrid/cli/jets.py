"""``hybrid jets RUN REFERENCE``: jet diagnostics of a run against a reference; ``hybrid jets
--sweep MODEL``: a conditioned emulator's jets across a parameter range (the work is in
:mod:`hybrid.jets` and :mod:`hybrid.jets.sweep`, imported when the command runs)."""
from __future__ import annotations

import argparse

NAME = "jets"
HELP = ("jets of a run against a reference: PDFs and Hellinger, spectra, jet events, CRPS; "
        "--sweep: jet number and event rates of a conditioned emulator across a parameter")


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid jets`` and of ``hybrid jets --sweep``."""
    from hybrid.jets import configure_parser
    from hybrid.jets.sweep import add_arguments
    configure_parser(p)
    add_arguments(p)


def handler(args: argparse.Namespace) -> int:
    """``hybrid jets --sweep`` when --sweep is given, else ``hybrid jets RUN REFERENCE``."""
    if args.sweep is not None:
        from hybrid.jets.sweep import run_sweep_cli
        return run_sweep_cli(args)
    from hybrid.jets import run_cli
    return run_cli(args)
