"""Diagnostics of the spectral vorticity ζ̂ (…, n, n//2+1) on a :class:`~solvers.grid.Grid`.

Conventions: E = ½⟨|u|²⟩ (box mean), Z = ½⟨ζ²⟩; transforms unnormalised, so ⟨f²⟩ = Σ_full |f̂|²/n⁴.
"""
from __future__ import annotations

import numpy as np

from .grid import Grid


def _sum_half(grid: Grid, a: np.ndarray) -> np.ndarray:
    return (grid.weight * a).sum(axis=(-2, -1)) / grid.n**4


def energy(grid: Grid, zeta_hat: np.ndarray) -> np.ndarray:
    """Kinetic energy E = ½⟨|u|²⟩ = ½ Σ |ζ̂|²/|k|² / n⁴, one value per leading index."""
    return 0.5 * _sum_half(grid, np.abs(zeta_hat) ** 2 * grid.inv_k2)


def enstrophy(grid: Grid, zeta_hat: np.ndarray) -> np.ndarray:
    """Enstrophy Z = ½⟨ζ²⟩."""
    return 0.5 * _sum_half(grid, np.abs(zeta_hat) ** 2)


def energy_spectrum(grid: Grid, zeta_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic energy spectrum in shells of width Δk = 2π/L centred on k_j = j Δk, j = 1 … n/2.

    Returns (k, E_k) with E_k of shape (…, n/2) and Σ_j E_k[j] Δk = energy (modes with
    |k| > (n/2 + ½)Δk, the corners, are left out of the shells).
    """
    dk = 2 * np.pi / grid.L
    shell = np.rint(grid.kmag / dk).astype(int)
    nshell = grid.n // 2
    e = 0.5 * grid.weight * np.abs(zeta_hat) ** 2 * grid.inv_k2 / grid.n**4
    lead = e.shape[:-2]
    e = e.reshape(-1, grid.n * grid.nk)
    out = np.zeros((e.shape[0], nshell + 1))
    idx = shell.ravel()
    keep = idx <= nshell
    for r in range(e.shape[0]):
        out[r] = np.bincount(idx[keep], weights=e[r, keep], minlength=nshell + 1)
    k = dk * np.arange(1, nshell + 1)
    return k, out[:, 1:].reshape(*lead, nshell) / dk


def zonal_mean_u(grid: Grid, zeta_hat: np.ndarray) -> np.ndarray:
    """U(y) = mean over x of u = −∂yψ; from the kx = 0 column: Û(ky) = i ky ζ̂/|k|² / n."""
    col = zeta_hat[..., :, 0] * (1j * grid.ky[:, 0] * grid.inv_k2[:, 0]) / grid.n
    return np.fft.ifft(col, axis=-1).real


def velocity(grid: Grid, zeta_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Physical velocity (u, v), each (…, n, n), from ζ̂ (numpy transforms; not for hot loops)."""
    psi = -zeta_hat * grid.inv_k2
    u = np.fft.irfft2(-1j * grid.ky * psi, s=grid.shape)
    v = np.fft.irfft2(1j * grid.kx * psi, s=grid.shape)
    return u, v


def cfl_number(grid: Grid, zeta_hat: np.ndarray, dt: float) -> np.ndarray:
    """dt (max|u| + max|v|)/dx per leading index."""
    u, v = velocity(grid, zeta_hat)
    return dt * (np.abs(u).max(axis=(-2, -1)) + np.abs(v).max(axis=(-2, -1))) / grid.dx
