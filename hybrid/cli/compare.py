"""``hybrid compare RUN REFERENCE``: a run against a reference DNS (the work is in
:mod:`hybrid.compare`)."""
from __future__ import annotations

import argparse

NAME = "compare"
HELP = "compare a run with a reference DNS: errors, spectra, PDFs, cost"


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid compare``."""
    from ..compare import configure_parser
    configure_parser(p)


def handler(args: argparse.Namespace) -> int:
    """Run the comparison; returns the exit code."""
    from ..compare import run_cli
    return run_cli(args)
