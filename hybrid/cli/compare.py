"""``hybrid compare RUN REFERENCE``: a run against a reference DNS (the work is in
:mod:`hybrid.compare`)."""
from __future__ import annotations

from .arguments import delegate

NAME = "compare"
HELP = "compare a run with a reference DNS: errors, spectra, PDFs, cost"
configure, handler = delegate("hybrid.compare", "configure_parser", "run_cli")
