"""Forcings of the vorticity equation, as vorticity sources (the curl of a body force).

Deterministic forcings are physical (n, n) arrays built once; the stochastic ring forcing draws a new
spectral field every step.
"""
from __future__ import annotations

import numpy as np

from .grid import Grid
from .validate import number


def kolmogorov_forcing(grid: Grid, amplitude: float = 1.0, kf: int = 4) -> np.ndarray:
    """Curl of the body force F sin(k_f y) x̂: the vorticity source −F k_f cos(k_f y), with k_f in
    units of 2π/L (k_f = 4 on L = 2π is sin(4y))."""
    X, Y = grid.meshgrid()
    k = 2 * np.pi / grid.L * kf
    return -amplitude * k * np.cos(k * Y)


def unitbox_forcing(grid: Grid, amplitude: float = 0.1) -> np.ndarray:
    """The forcing of the latent score-based closure paper on the unit box,
    F = A (sin 2π(x+y) + cos 2π(x+y)), applied directly as a vorticity source (as in that paper)."""
    X, Y = grid.meshgrid()
    ph = 2 * np.pi / grid.L * (X + Y)
    return amplitude * (np.sin(ph) + np.cos(ph))


class RingForcing:
    """White-in-time Gaussian forcing on a ring of wavenumbers, with exact mean injection rate ε.

    Spectrum Q̂(k) ∝ exp(−(|k| − k_f)²/(2δ_f²)) on the dealiased modes, k = 0 removed, normalised so
    that ε = Σ_full Q̂(k)/(2|k|²) (Q̂ the covariance rate of the Fourier-series coefficients ζ̂/n²),
    which makes the mean injection dE/dt = ε exactly, E = ½⟨|u|²⟩ (units: length² time⁻³).
    Each step draws ξ̂ = n² √Q̂ η /√dt with η complex standard normal (E|η|² = 1), Hermitian on the
    kx = 0 column, from the member's own generator; the stepper holds ξ across its stages.
    ``kf`` and ``width`` are in units of 2π/L.

    For the LES of a filtered DNS: ``reference_n`` is the grid on which the ring is normalised to ε
    (the DNS's; the ring is then cut to this grid's modes, not renormalised), and ``transfer`` a
    filter Ĝ(k) on this grid, applied to ξ̂ (Q̂ → Ĝ² Q̂). ``injection`` is the resulting mean
    injection rate of this grid (ε without either).
    """

    def __init__(self, grid: Grid, kf: float, width: float, epsilon: float, cutoff: float = 1e-12,
                 transfer: np.ndarray | None = None, reference_n: int | None = None):
        for name, v in (("kf", kf), ("kf_width", width), ("epsilon", epsilon)):
            number(name, v, above=0)
        ref = grid if reference_n is None else Grid(reference_n, grid.L)
        shape = self._shape(grid, kf, width)
        ref_shape = shape if ref is grid else self._shape(ref, kf, width)
        cut = cutoff * ref_shape.max()
        shape[shape < cut] = 0.0
        ref_shape[ref_shape < cut] = 0.0
        if transfer is not None:
            shape = shape * np.asarray(transfer, dtype=np.float64) ** 2
        if not shape.any():
            raise ValueError(f"kf={kf} with kf_width={width} forces no resolved mode of the {grid.n}² "
                             f"grid (dealiased |k| ≤ {grid.kmax_dealias})")
        # Σ_full shape/(2|k|²) over the half plane with Hermitian weights, on the reference grid
        e0 = 0.5 * np.sum(ref.weight * ref_shape * ref.inv_k2)
        self.grid = grid
        self.epsilon = float(epsilon)
        self.spectrum = shape * (epsilon / e0)                    # Q̂(k)
        # the mean injection of this grid's modes: ε, less what the filter and the cut remove
        self.injection = float(0.5 * np.sum(grid.weight * self.spectrum * grid.inv_k2))
        amp = grid.n**2 * np.sqrt(self.spectrum)
        ky_index = np.fft.fftfreq(grid.n, 1.0 / grid.n)
        # independent modes: kx > 0, or kx = 0 and ky > 0; kx = 0, ky < 0 are their conjugates
        free = (amp > 0) & ((np.arange(grid.nk)[None, :] > 0) | (ky_index[:, None] > 0))
        self.free_index = np.flatnonzero(free)
        self.amp_free = amp.ravel()[self.free_index]
        jj, ii = np.unravel_index(self.free_index, amp.shape)
        on_axis = ii == 0
        self.mirror_src = self.free_index[on_axis]
        self.mirror_dst = np.ravel_multi_index(((-jj[on_axis]) % grid.n, ii[on_axis]), amp.shape)

    @staticmethod
    def _shape(grid: Grid, kf: float, width: float) -> np.ndarray:
        """The ring exp(−(|k| − k_f)²/(2δ_f²)) on the grid's dealiased modes, k = 0 removed."""
        k0 = 2 * np.pi / grid.L
        shape = np.exp(-((grid.kmag / k0 - kf) ** 2) / (2 * width**2))
        return np.where(grid.dealias & (grid.k2 > 0), shape, 0.0)

    def scale(self, dt: float, gain: np.ndarray | None = None) -> np.ndarray:
        """Standard deviation of the real and imaginary parts of each free mode of ξ̂ for step
        ``dt``, times the per-mode ``gain`` (n, nk) if given (see ``steppers.noise_gain``)."""
        scale = self.amp_free / np.sqrt(2.0 * dt)
        if gain is not None:
            scale = scale * np.asarray(gain).ravel()[self.free_index]
        return scale

    def draw(self, rngs, dt: float, out: np.ndarray, scale: np.ndarray | None = None) -> None:
        """Fill ``out`` (members, n, nk), C-contiguous, with this step's ξ̂, one generator a member
        (``scale``: per-free-mode standard deviations from :meth:`scale`, default ungained)."""
        if scale is None:
            scale = self.scale(dt)
        flat = out.reshape(len(rngs), -1)                        # a view: out is contiguous
        for m, rng in enumerate(rngs):
            g = rng.standard_normal((2, self.free_index.size))
            flat[m, self.free_index] = (g[0] + 1j * g[1]) * scale
            flat[m, self.mirror_dst] = np.conj(flat[m, self.mirror_src])
