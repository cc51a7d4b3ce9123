"""``hybrid bench``: the cost-vs-DNS report (the work is in :mod:`hybrid.report`)."""
from __future__ import annotations

from .arguments import delegate

NAME = "bench"
HELP = "write the cost-vs-DNS report: DNS vs LES with each closure"
configure, handler = delegate("hybrid.report")
