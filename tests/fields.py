"""Test fields shared by the test modules."""
import numpy as np

from solvers.grid import Grid


def smooth_random_field(grid: Grid, seed: int, peak: float = 3.0, amplitude: float = 3.0):
    """A band-limited random vorticity field with max |ζ| = amplitude."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft2(rng.standard_normal(grid.shape)) * grid.dealias
    spec *= np.exp(-grid.k2 / (2 * (peak * 2 * np.pi / grid.L) ** 2))
    spec[0, 0] = 0
    z = np.fft.irfft2(spec, s=grid.shape)
    return amplitude * z / np.abs(z).max()
