"""``python -m hybrid.cli``: the ``hybrid`` command."""
import sys

from . import main

sys.exit(main())
