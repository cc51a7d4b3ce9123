"""``hybrid generate PRESET``: a closure dataset (the work is in :mod:`hybrid.datasets`)."""
from __future__ import annotations

import argparse

NAME = "generate"
HELP = "generate a closure dataset: filtered DNS and the exact subgrid term"


def configure(p: argparse.ArgumentParser) -> None:
    """The arguments of ``hybrid generate``."""
    from ..datasets import configure as configure_generate
    configure_generate(p)


def handler(args: argparse.Namespace) -> int:
    """Generate the dataset; returns the exit code."""
    from ..datasets import handler as generate
    return generate(args)
