"""Numerics: batched pseudo-spectral solvers of 2D turbulence (numpy, pyFFTW, Numba only)."""
from .base import BlowUpError, ClosureProtocol, ClosureState, Every, PseudoSpectralSolver
from .betaplane import BetaPlane
from .grid import Grid
from .kolmogorov import KolmogorovFlow
from . import io            # registers the restart writer a blow-up uses (solvers.registry)

__all__ = ["BetaPlane", "BlowUpError", "ClosureProtocol", "ClosureState", "Every", "Grid",
           "KolmogorovFlow", "PseudoSpectralSolver"]
__version__ = "0.1.0"
