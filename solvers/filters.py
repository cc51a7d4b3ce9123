"""Filters, coarse-graining DNS → LES, and the exact subgrid term.

All functions take spectral fields in the solver's layout, ``(..., n, n//2+1)`` unnormalised rfft2,
on a :class:`~solvers.grid.Grid`. For an LES on the coarse grid with the same box:

* ω̄ = T(G ω): Gaussian filter G, ``Ĝ(k) = exp(−Δ²|k|²/24)`` (the filter of width Δ whose second
  moment is Δ²/12, as in Pope's "Turbulent Flows" §13.2), then spectral truncation T to the LES
  grid's dealiased modes (what the LES solver can hold);
* N(ω) = u·∇ω, computed dealiased on the grid it lives on;
* Π = T(G N(ω)) − N(ω̄): the exact subgrid term. The filtered equation reads
  ∂t ω̄ + N(ω̄) = (filtered sources) − Π, so the closure term an LES needs is C = −Π.
"""
from __future__ import annotations

import numpy as np

from .grid import Grid
from .validate import number


def gaussian_transfer(grid: Grid, delta: float) -> np.ndarray:
    """Ĝ(k) = exp(−Δ²|k|²/24) on the grid's spectral layout."""
    delta = number("delta (filter width)", delta, at_least=0)
    return np.exp(-(delta**2) * grid.k2 / 24.0)


def gaussian_filter(grid: Grid, field_hat: np.ndarray, delta: float) -> np.ndarray:
    """Gaussian filter of width Δ = ``delta`` (length units) applied spectrally."""
    return field_hat * gaussian_transfer(grid, delta)


def sharp_cutoff(grid: Grid, field_hat: np.ndarray, kc: float) -> np.ndarray:
    """Keep the modes with |k| ≤ kc (rad per unit length), zero the rest."""
    return field_hat * (grid.kmag <= kc)


def _check_pair(fine: Grid, coarse: Grid) -> int:
    if not np.isclose(fine.L, coarse.L, rtol=1e-12):
        raise ValueError(f"grids must share the box: fine L={fine.L:g}, coarse L={coarse.L:g}")
    if coarse.n > fine.n or fine.n % coarse.n:
        raise ValueError(f"coarse n={coarse.n} must divide fine n={fine.n}")
    return fine.n // coarse.n


def truncate(fine: Grid, coarse: Grid, field_hat: np.ndarray, dealias: bool = True) -> np.ndarray:
    """Spectral truncation of a fine-grid spectrum to the coarse grid (same physical field on the
    modes both grids hold; × (n_c/n_f)² for the unnormalised transforms). With ``dealias`` only
    the coarse grid's 2/3-rule modes are kept (the LES state); otherwise all but the Nyquist ones."""
    _check_pair(fine, coarse)
    nc, nkc = coarse.n, coarse.nk
    out = np.zeros(field_hat.shape[:-2] + (nc, nkc), dtype=np.result_type(field_hat, np.complex64))
    half = nc // 2
    out[..., :half, :nkc] = field_hat[..., :half, :nkc]
    out[..., nc - half + 1:, :nkc] = field_hat[..., fine.n - half + 1:, :nkc]
    out *= (nc / fine.n) ** 2
    if dealias:
        out *= coarse.dealias
    else:
        out[..., half, :] = 0
        out[..., :, nkc - 1] = 0
    return out


def pad(coarse: Grid, fine: Grid, field_hat: np.ndarray) -> np.ndarray:
    """Inverse of :func:`truncate` for band-limited fields: the coarse spectrum on the fine grid."""
    _check_pair(fine, coarse)
    nc, nkc = coarse.n, coarse.nk
    half = nc // 2
    out = np.zeros(field_hat.shape[:-2] + (fine.n, fine.nk), dtype=np.result_type(field_hat,
                                                                                 np.complex64))
    out[..., :half, :nkc - 1] = field_hat[..., :half, :nkc - 1]
    out[..., fine.n - half + 1:, :nkc - 1] = field_hat[..., nc - half + 1:, :nkc - 1]
    return out * (fine.n / nc) ** 2


def coarse_grain(fine: Grid, coarse: Grid, field_hat: np.ndarray, delta: float | None = None,
                 dealias: bool = True) -> np.ndarray:
    """ω̄ = T(G ω): Gaussian filter of width ``delta`` (default: twice the coarse spacing, the
    usual LES choice Δ = 2Δx) then truncation to the coarse grid."""
    delta = 2 * coarse.dx if delta is None else delta
    return truncate(fine, coarse, gaussian_filter(fine, field_hat, delta), dealias=dealias)


def velocity_hat(grid: Grid, zeta_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(û, v̂) from ζ̂: ψ̂ = −ζ̂/|k|², u = −∂yψ, v = ∂xψ."""
    psi = -zeta_hat * grid.inv_k2
    return -1j * grid.ky * psi, 1j * grid.kx * psi


def advection(grid: Grid, zeta_hat: np.ndarray, form: str = "flux") -> np.ndarray:
    """N̂(ω) = (u·∇ω)^ with the 2/3 rule (input and output restricted to the dealiased modes).

    ``form='flux'``: ∂x(uω) + ∂y(vω) (three inverse, two forward transforms, as the solver);
    ``form='advective'``: u ∂xω + v ∂yω. For dealiased fields both are the exact Galerkin
    projection of u·∇ω, so they agree to round-off (a check on both).
    """
    z = zeta_hat * grid.dealias
    u_hat, v_hat = velocity_hat(grid, z)
    s = grid.shape
    u, v = np.fft.irfft2(u_hat, s=s), np.fft.irfft2(v_hat, s=s)
    if form == "flux":
        w = np.fft.irfft2(z, s=s)
        n_hat = 1j * grid.kx * np.fft.rfft2(u * w) + 1j * grid.ky * np.fft.rfft2(v * w)
    elif form == "advective":
        wx = np.fft.irfft2(1j * grid.kx * z, s=s)
        wy = np.fft.irfft2(1j * grid.ky * z, s=s)
        n_hat = np.fft.rfft2(u * wx + v * wy)
    else:
        raise ValueError(f"form must be 'flux' or 'advective', got {form!r}")
    return n_hat * grid.dealias


def subgrid_term(fine: Grid, coarse: Grid, zeta_hat: np.ndarray, delta: float | None = None,
                 form: str = "flux") -> tuple[np.ndarray, np.ndarray]:
    """(ω̄, Π) on the coarse grid from a DNS spectrum: Π = T(G N(ω)) − N(ω̄).

    Returns spectra on the coarse grid's layout. The LES closure term is C = −Π.
    """
    delta = 2 * coarse.dx if delta is None else delta
    w_bar = coarse_grain(fine, coarse, zeta_hat, delta)
    n_bar = coarse_grain(fine, coarse, advection(fine, zeta_hat, form), delta)
    return w_bar, n_bar - advection(coarse, w_bar, form)


def missing_physics_target(fine: Grid, coarse: Grid, zeta_hat: np.ndarray,
                           method: str = "subsample") -> tuple[np.ndarray, np.ndarray]:
    """(ω_c, H) for the latent score-based closure paper's setting, physical (…, n_c, n_c):
    the coarse vorticity and the whole advection term H = −u·∇ω of the DNS, both taken to the
    coarse grid by ``method`` 'subsample' (every r-th point, as in the paper) or 'spectral'
    (truncation). A coarse solver run with its own advection switched off and H as the closure
    term reproduces the DNS on the coarse points."""
    r = _check_pair(fine, coarse)
    n_hat = advection(fine, zeta_hat)
    if method == "subsample":
        w = np.fft.irfft2(zeta_hat, s=fine.shape)[..., ::r, ::r]
        h = -np.fft.irfft2(n_hat, s=fine.shape)[..., ::r, ::r]
    elif method == "spectral":
        w = np.fft.irfft2(truncate(fine, coarse, zeta_hat, dealias=False), s=coarse.shape)
        h = -np.fft.irfft2(truncate(fine, coarse, n_hat, dealias=False), s=coarse.shape)
    else:
        raise ValueError(f"method must be 'subsample' or 'spectral', got {method!r}")
    return w, h
