"""The LES is the filtered equation; held sources have zero mean; the held ring noise is exact for
the linear part; the ETDRK4 coefficients survive a contour point at the removable singularity."""
import numpy as np
import pytest

from solvers import BetaPlane, KolmogorovFlow
from solvers.base import PseudoSpectralSolver
from solvers.filters import coarse_grain, gaussian_transfer, subgrid_term
from solvers.steppers import STEPPERS, _phi_coefficients, _phi_series

from fields import smooth_random_field


def _pair(filtered: bool, dt: float = 1e-2, nu: float = 2e-2):
    """A 32² Kolmogorov DNS and its 16² LES, Δ = 2 LES spacings; the LES forcing filtered or not."""
    dns = KolmogorovFlow(n=32, nu=nu, mu=0.1, dt=dt)
    delta = 2 * (dns.grid.L / 16)
    les = KolmogorovFlow(n=16, nu=nu, mu=0.1, dt=dt, forcing_filter=delta if filtered else 0.0,
                         forcing_grid=32)
    dns.set_vorticity(smooth_random_field(dns.grid, 3, peak=3.0, amplitude=2.0))
    return dns, les, delta


def _tendency(s, zh):
    """dζ̂/dt = L ζ̂ + N(ζ̂) (advection and the held sources) of solver ``s`` at ``zh``."""
    return s.linear * zh + s.rhs(zh)


def test_filtered_dns_tendency_is_the_les_tendency_with_minus_pi():
    dns, les, delta = _pair(filtered=True)
    zh = dns.vorticity_hat.copy()
    w_bar, pi = subgrid_term(dns.grid, les.grid, zh, delta)
    want = coarse_grain(dns.grid, les.grid, _tendency(dns, zh), delta)
    got = _tendency(les, w_bar) - pi
    scale = np.abs(want).max()
    assert np.abs(got - want).max() < 1e-12 * scale
    # without the forcing filter the LES is over-forced by (1 − Ĝ)F at the forcing mode
    _, raw, _ = _pair(filtered=False)
    miss = _tendency(raw, w_bar) - pi - want
    g = gaussian_transfer(les.grid, delta)
    assert np.allclose(miss, (1 - g) * raw._forcing_hat[0], rtol=0, atol=1e-12 * scale)
    assert np.abs(miss).max() > 1e-3 * scale


def test_les_ring_noise_is_the_filtered_dns_ring_noise():
    dns = BetaPlane(n=64, kf=8, kf_width=1.5, epsilon=1e-3)
    delta = 2 * dns.grid.L / 32
    les = BetaPlane(n=32, kf=8, kf_width=1.5, epsilon=1e-3, forcing_filter=delta, forcing_grid=64)
    # the covariance rate Q̂ of the Fourier-series coefficients: Ĝ² times the DNS's, on the LES modes
    g2 = gaussian_transfer(dns.grid, delta) ** 2
    want = coarse_grain(dns.grid, les.grid, dns.ring.spectrum * g2, 0.0) * (64 / 32) ** 2
    assert np.allclose(les.ring.spectrum, want.real, rtol=1e-12, atol=0)
    # less is injected on the LES grid than ε: the filter and the cut ring flank take their share
    alone = BetaPlane(n=32, kf=8, kf_width=1.5, epsilon=1e-3)
    assert alone.ring.injection == pytest.approx(1e-3, rel=1e-12)
    assert les.ring.injection < 0.9e-3


@pytest.mark.parametrize("every", [1])
def test_oracle_replay_converges_to_the_filtered_dns_only_with_the_filtered_forcing(every):
    """A closure replaying the exact −Π of a DNS run in lockstep: the LES error at t = 0.2 comes only
    from holding the term over a step, so it halves with dt; with the unfiltered forcing it stalls."""
    def error(filtered: bool, dt: float) -> float:
        dns, les, delta = _pair(filtered, dt=dt)
        les.set_vorticity_hat(coarse_grain(dns.grid, les.grid, dns.vorticity_hat, delta))

        class Replay:
            def __init__(self):
                self.every = every

            def reset(self, *a):
                pass

            def __call__(self, state):
                _, pi = subgrid_term(dns.grid, les.grid, dns.vorticity_hat, delta)
                return np.fft.irfft2(-pi, s=les.grid.shape)

        les.set_closure(Replay())
        for _ in range(round(0.2 / dt)):
            les.step(1)
            dns.step(1)
        ref = coarse_grain(dns.grid, les.grid, dns.vorticity_hat, delta)
        return float(np.abs(les.vorticity_hat - ref).max() / np.abs(ref).max())

    fixed = [error(True, dt) for dt in (1e-2, 5e-3, 2.5e-3)]
    assert 1.7 < fixed[0] / fixed[1] < 2.3 and 1.7 < fixed[1] / fixed[2] < 2.3   # first order
    raw = [error(False, dt) for dt in (1e-2, 2.5e-3)]
    assert raw[1] > 0.8 * raw[0]                 # the over-forcing does not go away with dt
    assert raw[1] > 10 * fixed[2]


class _Constant:
    """A closure that returns a fixed field (with a nonzero mean)."""

    def __init__(self, field, every=1):
        self.field, self.every = field, every

    def reset(self, *a):
        pass

    def __call__(self, state):
        return np.broadcast_to(self.field, state.vorticity.shape).copy()


def test_held_terms_have_zero_mean():
    s = KolmogorovFlow(n=16, nu=1e-2, mu=0.1, dt=1e-2, members=2)
    s.set_vorticity(smooth_random_field(s.grid, 1))
    x = np.linspace(0, 1, 16)
    s.set_closure(_Constant(3.0 + np.outer(x, x), every=2))
    s.step(20)
    assert np.abs(s.vorticity_hat[:, 0, 0]).max() == 0.0
    assert abs(s.vorticity.mean()) < 1e-12
    # a user forcing with a mean: only its fluctuating part acts
    f = 2.0 + np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))[None, :] * np.ones((16, 1))
    u = PseudoSpectralSolver(16, mu=0.1, nu=1e-2, forcing=f, dt=1e-2)
    u.step(10)
    assert u.vorticity_hat[0, 0, 0] == 0.0 and np.abs(u.vorticity_hat).max() > 0


@pytest.mark.parametrize("stepper", sorted(STEPPERS))
@pytest.mark.parametrize("h_mu", [0.1, 1.0])
def test_held_ring_noise_gives_the_exact_steady_energy_under_drag(stepper, h_mu):
    """Linear drag μ, no advection, ring noise of rate ε: the steady energy is ε/(2μ) exactly, for
    any step (a noise held over the step without the gain gives −7.6 % at hμ = 1)."""
    mu, eps, members = 1.0, 1e-3, 64
    h = h_mu / mu
    s = PseudoSpectralSolver(16, mu=mu, ring=dict(kf=3.0, width=1.0, epsilon=eps), dt=h,
                             members=members, seed=3, stepper=stepper, advection=False)
    s.track_budget = False
    s.step(round(8 / (mu * h)))                               # eight damping times of spin-up
    samples = []
    for _ in range(400):
        s.step(max(1, round(0.5 / (mu * h))))                 # about one correlation time apart
        samples.append(s.energy())
    e = np.array(samples).ravel() / (eps / (2 * mu))
    se = e.std(ddof=1) / np.sqrt(e.size)
    assert se < 0.01
    assert abs(e.mean() - 1) < 4 * se


def test_etdrk4_coefficients_at_a_contour_point_on_the_singularity():
    points = 64
    r0 = np.exp(2j * np.pi * 0.5 / points)                   # z = −r0 puts a contour point at 0
    z = np.array([[-r0, -1.0 + 0.04j, 1j]])
    got = _phi_coefficients(z, points)
    import solvers.steppers as st
    terms, st.SERIES_TERMS = st.SERIES_TERMS, 40              # the series converges fast at |z| = 1
    try:
        want = _phi_series(z.astype(complex))
    finally:
        st.SERIES_TERMS = terms
    for g, w in zip(got, want):
        assert np.all(np.isfinite(g))
        assert np.abs(g - w).max() < 1e-13


def test_preset_les_is_forced_with_the_data_filter(tmp_path):
    from hybrid.config import PresetError, load_preset
    p = load_preset("kolmogorov")
    les = p.make_solver("les", n=16, dt=1e-2)
    delta = 2 * les.grid.L / 16
    assert les.forcing_filter == pytest.approx(delta, rel=1e-15)
    # its forcing is Ĝ·F of the DNS forcing on the LES modes
    dns = p.make_solver("dns", n=32, dt=1e-2)
    want = coarse_grain(dns.grid, les.grid, dns._forcing_hat, delta)
    assert np.allclose(les._forcing_hat, want, rtol=0, atol=1e-12 * np.abs(want).max())
    # the missing-physics preset subsamples its data: no filter
    assert load_preset("ns-unitbox").les_filter_width() == 0.0
    bad = tmp_path / "bad.toml"
    text = open(p.path).read()
    bad.write_text(text.replace('forcing_filter = "gaussian"', 'forcing_filter = "box"'))
    with pytest.raises(PresetError, match="les.forcing_filter must be"):
        load_preset(bad)
    bad.write_text(text.replace('[dns]\n', '[dns]\nforcing_filter = 0.1\n'))
    with pytest.raises(PresetError, match="dns.forcing_filter"):
        load_preset(bad)


def test_betaplane_hybrid_les_is_the_filtered_dns_on_the_presets_grids():
    """128² → 32²: the preset's LES at ω̄ with C = −Π has the filtered DNS tendency (the DNS's ν
    is inherited, so drag, β and hyperviscosity commute with the filter), and its ring noise is
    Ĝ² times the DNS's on the LES modes. With each grid's own default ν it would not."""
    from hybrid.config import load_preset
    from solvers.betaplane import default_hyperviscosity
    p = load_preset("betaplane-hybrid")
    dns, les = p.make_solver("dns"), p.make_solver("les")
    assert (dns.grid.n, les.grid.n) == (128, 32) and les.nu == dns.nu
    assert dns.nu == pytest.approx(default_hyperviscosity(128, dns.grid.L, 8), rel=1e-12)
    delta = p.les_filter_width()
    assert delta == pytest.approx(2 * les.grid.L / 32, rel=1e-15)
    dns.set_vorticity(smooth_random_field(dns.grid, 4, peak=8.0, amplitude=2.0))
    zh = dns.vorticity_hat.copy()
    w_bar, pi = subgrid_term(dns.grid, les.grid, zh, delta)
    want = coarse_grain(dns.grid, les.grid, _tendency(dns, zh), delta)
    scale = np.abs(want).max()
    assert np.abs(_tendency(les, w_bar) - pi - want).max() < 1e-12 * scale
    g2 = gaussian_transfer(dns.grid, delta) ** 2
    ring = coarse_grain(dns.grid, les.grid, dns.ring.spectrum * g2, 0.0) * (128 / 32) ** 2
    assert np.allclose(les.ring.spectrum, ring.real, rtol=1e-12, atol=0)
    # the LES grid's own default ν damps the forcing ring: the equation would not be the same
    own = p.make_solver("les", nu=default_hyperviscosity(32, les.grid.L, 8))
    miss = np.abs(_tendency(own, w_bar) - pi - want).max()
    assert miss > 1e-3 * scale
