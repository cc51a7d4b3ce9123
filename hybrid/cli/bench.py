"""``hybrid bench``: the cost-vs-DNS report (the work is in :mod:`hybrid.report`)."""
from __future__ import annotations

import argparse

NAME = "bench"
HELP = "write the cost-vs-DNS report: DNS vs LES with each closure"


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid bench``."""
    from ..report import configure as configure_bench
    configure_bench(p)


def handler(args: argparse.Namespace) -> int:
    """Build the report; returns the exit code."""
    from ..report import handler as bench
    return bench(args)
