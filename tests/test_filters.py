"""Coarse-graining and the exact subgrid term."""
import numpy as np
import pytest

from fields import smooth_random_field
from solvers import KolmogorovFlow, PseudoSpectralSolver
from solvers import filters
from solvers.grid import Grid

FINE, COARSE = Grid(128), Grid(32)


def band_limited(grid: Grid, kmax: int, seed: int) -> np.ndarray:
    """A random spectrum with modes |m_x|, |m_y| ≤ kmax only."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft2(rng.standard_normal(grid.shape))
    my = np.abs(np.fft.fftfreq(grid.n, 1 / grid.n))[:, None]
    mx = np.arange(grid.nk)[None, :]
    spec[(my > kmax) | (mx > kmax)] = 0
    spec[0, 0] = 0
    return spec


def test_truncation_is_exact_on_band_limited_fields():
    spec = band_limited(FINE, 10, 0)                      # inside the 32² grid's 2/3 modes
    coarse = filters.truncate(FINE, COARSE, spec)
    fine_phys = np.fft.irfft2(spec, s=FINE.shape)
    # the coarse field takes the fine field's values at the coarse points, to round-off
    coarse_phys = np.fft.irfft2(coarse, s=COARSE.shape)
    np.testing.assert_allclose(coarse_phys, fine_phys[::4, ::4],
                               atol=1e-13 * np.abs(fine_phys).max())
    # and padding back recovers the fine spectrum exactly
    np.testing.assert_allclose(filters.pad(COARSE, FINE, coarse), spec, atol=1e-10)


def test_gaussian_filter_transfer_and_moment():
    delta = 0.3
    g = filters.gaussian_transfer(FINE, delta)
    assert g[0, 0] == 1.0
    # Ĝ = exp(−Δ²k²/24): a Gaussian kernel of second moment Δ²/12
    k = 2 * np.pi / FINE.L
    assert -24 * np.log(g[0, 1]) / k**2 == pytest.approx(delta**2, rel=1e-12)
    # applying it twice is the filter of width √2 Δ
    spec = band_limited(FINE, 30, 1)
    twice = filters.gaussian_filter(FINE, filters.gaussian_filter(FINE, spec, delta), delta)
    np.testing.assert_allclose(twice, filters.gaussian_filter(FINE, spec, np.sqrt(2) * delta),
                               rtol=1e-12, atol=1e-12)


def test_sharp_cutoff_keeps_exactly_the_modes_inside_kc():
    spec = band_limited(FINE, 40, 5)
    kc = 10.5
    cut = filters.sharp_cutoff(FINE, spec, kc)
    inside = FINE.kmag <= kc
    assert np.array_equal(cut[inside], spec[inside])
    assert not cut[~inside].any() and spec[~inside].any()


def test_subgrid_term_vanishes_for_a_field_resolved_on_the_les_grid():
    # a field with modes ≤ 5 is resolved by the 32² LES (2/3 modes ≤ 10), its advection (≤ 10) too;
    # without filtering (Δ = 0) the subgrid term is zero to round-off
    spec = band_limited(FINE, 5, 2)
    w_bar, pi = filters.subgrid_term(FINE, COARSE, spec, delta=0.0)
    n = filters.advection(COARSE, w_bar)
    assert np.abs(pi).max() < 1e-12 * np.abs(n).max()


def test_subgrid_term_is_large_for_an_unresolved_field():
    spec = band_limited(FINE, 40, 3)
    w_bar, pi = filters.subgrid_term(FINE, COARSE, spec)
    n = filters.advection(COARSE, w_bar)
    assert np.abs(pi).max() > 0.05 * np.abs(n).max()


def test_advection_flux_and_advective_forms_agree_to_roundoff():
    spec = np.fft.rfft2(smooth_random_field(FINE, 4, peak=20.0))
    a = filters.advection(FINE, spec, "flux")
    b = filters.advection(FINE, spec, "advective")
    assert np.abs(a - b).max() < 1e-12 * np.abs(a).max()
    w1, pi1 = filters.subgrid_term(FINE, COARSE, spec, form="flux")
    w2, pi2 = filters.subgrid_term(FINE, COARSE, spec, form="advective")
    assert np.abs(pi1 - pi2).max() < 1e-11 * np.abs(pi1).max()


def test_advection_matches_the_solver_rhs():
    s = PseudoSpectralSolver(64, dt=0.01)
    s.set_vorticity(smooth_random_field(s.grid, 5, peak=10.0))
    n = filters.advection(s.grid, np.asarray(s.vorticity_hat[0]))
    np.testing.assert_allclose(-s.rhs()[0], n, atol=1e-11 * np.abs(n).max())


def test_missing_physics_target_reproduces_the_dns_tendency():
    # coarse points of the DNS: ∂t ω = H + F − μω + ν∇²ω, with H = −u·∇ω of the DNS
    s = KolmogorovFlow(n=64, dt=1e-3, nu=1e-2, mu=0.1)
    s.set_vorticity(smooth_random_field(s.grid, 6, peak=6.0))
    c = Grid(16)
    w, h = filters.missing_physics_target(s.grid, c, np.asarray(s.vorticity_hat))
    full = np.fft.irfft2(s.rhs(), s=s.grid.shape)          # −u·∇ω + F on the DNS grid
    forcing = np.fft.irfft2(s._forcing_hat, s=s.grid.shape)
    np.testing.assert_allclose(h, (full - forcing)[:, ::4, ::4], atol=1e-12)
    np.testing.assert_allclose(w, s.vorticity[:, ::4, ::4], atol=1e-12)


def test_grid_pairs_are_checked():
    with pytest.raises(ValueError, match="must divide"):
        filters.truncate(Grid(64), Grid(48), np.zeros((64, 33), complex))
    with pytest.raises(ValueError, match="share the box"):
        filters.truncate(Grid(64), Grid(32, L=1.0), np.zeros((64, 33), complex))
