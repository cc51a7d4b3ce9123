"""``hybrid jets RUN REFERENCE``: jet diagnostics of a run against a reference (the work is in
:mod:`hybrid.jets`)."""
from __future__ import annotations

from .arguments import delegate

NAME = "jets"
HELP = "jets of a run against a reference: PDFs and Hellinger, spectra, jet events, CRPS"
configure, handler = delegate("hybrid.jets", "configure_parser", "run_cli")
