"""Doubly periodic grid and its spectral bookkeeping.

Physical arrays are ``(..., n, n)`` indexed ``[y, x]``; spectral arrays are the real-to-complex
transforms over the last two axes, ``(..., n, n//2 + 1)`` indexed ``[ky, kx]``. Transforms are
unnormalised (numpy's convention): ``f̂ = Σ f e^{-i k·x}``, so ``mean(f g) = Σ_full f̂ ĝ* / n⁴``.
"""
from __future__ import annotations

import numpy as np

from .validate import integer, number


def check_grid_size(n: int, minimum: int = 8) -> int:
    """Return ``n`` as an int, or raise ValueError unless it is an even integer ≥ ``minimum``."""
    return integer("n", n, minimum, even=True)


class Grid:
    """Wavenumbers, |k|², inverse Laplacian, 2/3 dealias mask and coordinates of an n×n box of side L.

    Attributes (spectral arrays have shape ``(n, n//2+1)``):
      kx, ky     wavenumbers in rad per unit length (broadcastable rows/columns)
      k2         |k|²;  inv_k2 = 1/|k|² with 0 at k = 0 (so ψ̂ = −ζ̂·inv_k2)
      dealias    boolean 2/3-rule mask: |m_x|, |m_y| ≤ (n−1)//3 (aliasing-free quadratic products)
      weight     Hermitian weight of each rfft column (1 for kx = 0 and Nyquist, 2 otherwise), so that
                 Σ_full |f̂|² = Σ_half weight·|f̂|²
      x, y       physical cell-corner coordinates, 1D, length n
    """

    def __init__(self, n: int, L: float = 2 * np.pi):
        self.n = check_grid_size(n)
        self.L = number("L", L, above=0)
        self.nk = self.n // 2 + 1
        self.dx = self.L / self.n
        m_y = np.fft.fftfreq(self.n, d=1.0 / self.n)             # integer mode numbers
        m_x = np.arange(self.nk, dtype=float)
        k0 = 2 * np.pi / self.L
        self.ky = (k0 * m_y)[:, None]
        self.kx = (k0 * m_x)[None, :]
        self.k2 = self.kx**2 + self.ky**2
        self.inv_k2 = np.zeros_like(self.k2)
        np.divide(1.0, self.k2, out=self.inv_k2, where=self.k2 > 0)
        self.kmax_dealias = (self.n - 1) // 3
        self.dealias = (np.abs(m_y)[:, None] <= self.kmax_dealias) & (m_x[None, :] <= self.kmax_dealias)
        w = np.full(self.nk, 2.0)
        w[0] = 1.0
        w[-1] = 1.0                                               # n even: last column is Nyquist
        self.weight = np.broadcast_to(w[None, :], (self.n, self.nk)).copy()
        self.x = np.arange(self.n) * self.dx
        self.y = np.arange(self.n) * self.dx
        self.kmag = np.sqrt(self.k2)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    @property
    def spectral_shape(self) -> tuple[int, int]:
        return (self.n, self.nk)

    def meshgrid(self) -> tuple[np.ndarray, np.ndarray]:
        """Physical coordinates ``X, Y`` of shape (n, n), indexed [y, x]."""
        X, Y = np.meshgrid(self.x, self.y, indexing="xy")
        return X, Y

    def mean_product(self, a_hat: np.ndarray, b_hat: np.ndarray) -> np.ndarray:
        """Box mean of the product of two real fields from their spectra: mean(a b), per leading index."""
        s = (self.weight * (a_hat * np.conj(b_hat)).real).sum(axis=(-2, -1))
        return s / self.n**4

    def __repr__(self) -> str:
        return f"Grid(n={self.n}, L={self.L:g})"
