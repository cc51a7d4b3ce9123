"""``hybrid generate PRESET``: a closure dataset (the work is in :mod:`hybrid.datasets`)."""
from __future__ import annotations

from .arguments import delegate

NAME = "generate"
HELP = "generate a closure dataset: filtered DNS and the exact subgrid term"
configure, handler = delegate("hybrid.datasets")
