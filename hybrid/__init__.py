"""User-facing workflows of the hybrid 2D-turbulence package: presets and configuration, the
``hybrid`` command line, figures (and, as they are written, simulations with closures, ensembles,
datasets and comparisons). Imports ``solvers`` (and ``closures``); never imported by them."""
from .config import Preset, PresetError, list_presets, load_preset

__all__ = ["Preset", "PresetError", "list_presets", "load_preset"]
__version__ = "0.1.0"
