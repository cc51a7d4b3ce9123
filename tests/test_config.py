"""Presets (hybrid.config) and initial conditions (solvers.initial)."""
import inspect

import numpy as np
import pytest

from hybrid.config import (RUNTIME_KEYS, SOLVER_KEYS, SOLVERS, Preset, PresetError, list_presets,
                           load_preset)
from solvers import BetaPlane, KolmogorovFlow
from solvers.diagnostics import energy, energy_spectrum
from solvers.grid import Grid
from solvers.initial import random_vorticity, rest


# ------------------------------------------------------------------ shipped presets
def test_shipped_presets_are_listed():
    names = list_presets()
    for name in ("kolmogorov", "ns-unitbox", "betaplane-paper", "betaplane-small"):
        assert name in names
    for name in names:
        p = load_preset(name)
        assert isinstance(p, Preset) and p.name == name
        assert p.description and p.source          # every preset says what it is and where from


# The presets' physics, checked by running them (on small grids: the grid is not the physics).
# Each number below is the one the preset's source states; the solver must produce its exact
# response, which a misread key, a unit mix-up (k in units of 2π/L, L ignored) or a sign fails.
def test_kolmogorov_preset_is_re_1000_kolmogorov_flow():
    """Kochkov et al. 2021: body force F sin(k_f y) x̂, F = 1, k_f = 4 on [0, 2π]², drag 0.1,
    ν = 1e-3. From rest the flow is the laminar response to curl F = −F k_f cos(k_f y)."""
    p = load_preset("kolmogorov")
    s = p.make_solver("dns", n=32, dt=0.05)
    s.set_vorticity(np.zeros((1, 32, 32)))
    s.step(40)                                                 # t = 2
    X, Y = s.grid.meshgrid()
    assert s.grid.L == pytest.approx(2 * np.pi)
    lam = 0.1 + 1e-3 * 16                                      # μ + ν k_f²
    expect = -1.0 * 4 * np.cos(4 * Y) * -np.expm1(-lam * 2.0) / lam
    np.testing.assert_allclose(s.vorticity[0], expect, atol=1e-10 * np.abs(expect).max())
    # the LES step is stable in the statistically steady state: Courant number ≈ 0.4 (the
    # preset's own measurement), so a 2-time-unit LES from the preset's initial field stays < 0.7
    from solvers.diagnostics import cfl_number
    les = p.make_solver("les", members=2, seed=1)
    les.set_vorticity(p.initial_vorticity(les))
    worst = 0.0
    for _ in range(8):
        les.step(50)
        worst = max(worst, float(np.max(cfl_number(les.grid, les.vorticity_hat, les.dt))))
    assert 0.1 < worst < 0.7, worst


def test_ns_unitbox_preset_is_the_papers_unit_box_flow():
    """Unit box, ν = 1e-3, no drag, vorticity source 0.1(sin 2π(x+y) + cos 2π(x+y))."""
    s = load_preset("ns-unitbox").make_solver("dns", n=32, dt=0.05)
    s.set_vorticity(np.zeros((1, 32, 32)))
    s.step(20)                                                 # t = 1
    X, Y = s.grid.meshgrid()
    assert X.max() < 1.0
    lam = 1e-3 * 8 * np.pi**2                                  # ν|k|², k = 2π(1, 1)
    src = 0.1 * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))
    np.testing.assert_allclose(s.vorticity[0], src * -np.expm1(-lam) / lam, atol=1e-12)


@pytest.mark.parametrize("name, beta, mu, epsilon, kf", [
    ("betaplane-paper", 0.9, 4e-4, 1e-6, 16),       # the SLT paper
    ("betaplane-small", 8.0, 4e-3, 4e-4, 8),        # docs/betaplane-small.md
    ("betaplane-hybrid", 8.0, 4e-3, 4e-4, 8),       # docs/betaplane-hybrid.md
])
def test_betaplane_presets_have_their_rossby_waves_damping_and_injection(name, beta, mu, epsilon,
                                                                         kf):
    """A small Rossby wave (k = (1, 2)) turns at ω = −β k_x/|k|² and decays at μ + ν|k|^16; a
    mode at the dealiasing cutoff k_c = n/3 is damped at rate ≈ 1 by the default ν = k_c^−16 (the
    preset's ν where it sets one: betaplane-hybrid's is its DNS grid's default); and from rest
    one step of the ring forcing injects ε·dt on average (64 members)."""
    p = load_preset(name)
    s = p.make_solver("dns", n=32, epsilon=0.0)
    X, Y = s.grid.meshgrid()
    s.set_vorticity(1e-6 * np.cos(X + 2 * Y))
    z0 = s.vorticity_hat.copy()
    s.step(round(40 / s.dt))
    nu = p.dns.get("nu", (32 / 3) ** -16)
    assert s.nu == pytest.approx(nu, rel=1e-12)
    t, k2 = s.t, 5.0
    exact = z0 * np.exp(-(mu + nu * k2 ** 8) * t + 1j * beta / k2 * t)
    assert abs(beta / k2 * t) > 2                               # the phase has turned
    np.testing.assert_allclose(s.vorticity_hat, exact, atol=1e-9 * np.abs(z0).max())
    s.set_vorticity(1e-6 * np.cos(10 * X))                      # |k| = 10, k_c = 32/3
    z0 = np.abs(s.vorticity_hat).max()
    s.step(1)
    rate = -np.log(np.abs(s.vorticity_hat).max() / z0) / s.dt
    np.testing.assert_allclose(rate, mu + nu * 10.0 ** 16, rtol=1e-9)
    # injection, on a grid that holds the forcing ring (k_f + 3 δ_f inside the 2/3 box)
    ring = p.make_solver("dns", n=4 * kf, members=64, seed=5)
    ring.step(1)
    rate = ring.energy() / ring.t
    se = rate.std(ddof=1) / np.sqrt(rate.size)
    assert abs(rate.mean() - epsilon) < 3 * se and se < 0.05 * epsilon


def test_make_solver_overrides_and_runtime_settings():
    p = load_preset("kolmogorov")
    s = p.make_solver("les", members=3, seed=7, n=32, dt=2e-3)
    assert isinstance(s, KolmogorovFlow)
    assert (s.grid.n, s.members, s.seed, s.dt) == (32, 3, 7, 2e-3)
    s = p.make_solver("dns", n=32, dt="cfl")
    assert not s.fixed_dt
    with pytest.raises(ValueError, match="unknown KolmogorovFlow setting 'beta'"):
        p.make_solver("dns", n=32, beta=1.0)
    with pytest.raises(ValueError, match=r"kolmogorov.*dns solver: n must be an even"):
        p.make_solver("dns", n=31)


def test_initial_vorticity_of_preset_has_the_preset_energy():
    p = load_preset("kolmogorov")
    s = p.make_solver("les", members=2, seed=3, n=32)
    z = p.initial_vorticity(s)
    assert z.shape == (2, 32, 32)
    s.set_vorticity(z)
    np.testing.assert_allclose(s.energy(), p.initial["energy"], rtol=1e-12)


def test_preset_tables_follow_the_solver_signatures():
    for name, cls in SOLVERS.items():
        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        assert set(SOLVER_KEYS[name]) == params - set(RUNTIME_KEYS)


# ------------------------------------------------------------------ user files and errors
USER = """
name = "mine"
description = "small Kolmogorov flow"
[dns]
solver = "KolmogorovFlow"
n = 32
nu = 2e-3
mu = 0.05
kf = 2
dt = "cfl"
[les]
n = 16
[initial]
kind = "random"
k_peak = 2.0
energy = 0.25
[run]
t_end = 1.0
output_every = 0.5
"""


def test_user_toml(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(USER)
    p = load_preset(str(f))
    assert p.name == "mine" and p.path == f
    assert p.run == {"t_end": 1.0, "output_every": 0.5, "spinup": 0.0}
    s = p.make_solver("dns", members=2, seed=1)
    assert s.nu == 2e-3 and s.mu == 0.05 and s.kf == 2 and not s.fixed_dt
    s.set_vorticity(p.initial_vorticity(s))
    np.testing.assert_allclose(s.energy(), 0.25, rtol=1e-12)
    assert p.make_solver("les").grid.n == 16


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ValueError, match="unknown preset 'no-such-flow'") as e:
        load_preset("no-such-flow")
    for name in list_presets():
        assert name in str(e.value)
    with pytest.raises(PresetError, match="does not exist"):
        load_preset("/nonexistent/dir/x.toml")


@pytest.mark.parametrize("old, new, match", [
    ("mu = 0.05", "mu = 0.05\nbeta = 1.0", r"mine\.toml: dns: unknown key 'beta'"),
    ("nu = 2e-3", 'nu = "small"', r"mine\.toml: dns\.nu must be a number, got 'small'"),
    ("n = 32", "n = 32.0", r"dns\.n must be an integer"),
    ("n = 16", "n = true", r"les\.n must be an integer"),
    ('kind = "random"', 'kind = "vortex"', r"initial\.kind must be one of"),
    ("energy = 0.25", "energy = 0.25\nwidth = 3", r"initial: unknown key 'width'"),
    ("t_end = 1.0", "t_end = -1.0", r"run\.t_end must be > 0"),
    ("output_every = 0.5", "", r"run\.output_every is required"),
    ('solver = "KolmogorovFlow"', 'solver = "Channel"', r"dns\.solver must be one of"),
    ('name = "mine"', 'name = "mine"\ncolour = "red"', r"mine\.toml: unknown key 'colour'"),
    ("n = 32", "n = 32\nseed = 3", r"dns\.seed is set per run"),
    ("[run]", "[run", r"mine\.toml is not valid TOML"),
])
def test_bad_user_toml_names_file_and_key(tmp_path, old, new, match):
    assert old in USER
    f = tmp_path / "mine.toml"
    f.write_text(USER.replace(old, new, 1))
    with pytest.raises(PresetError, match=match):
        load_preset(f)


# ------------------------------------------------------------------ initial conditions
def test_random_vorticity_energy_mean_and_shape():
    g = Grid(48, 2 * np.pi)
    z = random_vorticity(g, members=3, seed=5, k_peak=3.0, energy=0.7)
    assert z.shape == (3, 48, 48) and z.dtype == np.float64
    np.testing.assert_allclose(energy(g, np.fft.rfft2(z)), 0.7, rtol=1e-12)
    assert np.abs(z.mean(axis=(-2, -1))).max() < 1e-14 * np.abs(z).max()
    assert not np.allclose(z[0], z[1])                     # members differ
    zh = np.fft.rfft2(z)                                   # only dealiased modes
    assert np.abs(zh[:, ~g.dealias]).max() < 1e-10 * np.abs(zh).max()


def test_random_vorticity_energy_on_another_box():
    g = Grid(32, 1.0)
    z = random_vorticity(g, members=2, seed=0, k_peak=1.0, energy=6e-4)
    np.testing.assert_allclose(energy(g, np.fft.rfft2(z)), 6e-4, rtol=1e-12)


def test_random_vorticity_is_reproducible_and_member_independent():
    g = Grid(32)
    a = random_vorticity(g, members=2, seed=11, k_peak=4, energy=1.0)
    b = random_vorticity(g, members=2, seed=11, k_peak=4, energy=1.0)
    np.testing.assert_array_equal(a, b)
    c = random_vorticity(g, members=5, seed=11, k_peak=4, energy=1.0)
    np.testing.assert_array_equal(c[:2], a)                # member m ignores the ensemble size
    d = random_vorticity(g, members=2, seed=11, k_peak=4, energy=1.0, first_member=3)
    np.testing.assert_array_equal(d, c[3:5])               # and can be drawn on its own
    e = random_vorticity(g, members=2, seed=12, k_peak=4, energy=1.0)
    assert not np.allclose(e, a)


def test_random_vorticity_spectrum_peaks_near_k_peak():
    g = Grid(128)
    z = random_vorticity(g, members=8, seed=0, k_peak=6.0, energy=1.0)
    k, ek = energy_spectrum(g, np.fft.rfft2(z))
    peak = k[np.argmax(ek.mean(axis=0))]
    assert 5.0 <= peak <= 7.0


def test_random_vorticity_does_not_share_the_solver_noise_streams():
    g = Grid(32)
    z = random_vorticity(g, members=1, seed=0, k_peak=4, energy=1.0)
    solver_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(0).spawn(1)[0]))
    white = solver_rng.standard_normal(g.shape)
    zh = np.fft.rfft2(z[0])
    wh = np.fft.rfft2(white) * g.dealias
    wh[0, 0] = 0
    corr = np.abs(np.vdot(zh, wh)) / (np.linalg.norm(zh) * np.linalg.norm(wh))
    assert corr < 0.2


@pytest.mark.parametrize("kw, match", [
    (dict(members=0), "members"), (dict(k_peak=0.0), "k_peak"), (dict(k_peak=11.0), "k_peak"),
    (dict(energy=-1.0), "energy"), (dict(seed=-1), "seed"), (dict(first_member=-2), "first_member"),
])
def test_random_vorticity_bad_arguments(kw, match):
    args = dict(members=1, seed=0, k_peak=4.0, energy=1.0) | kw
    with pytest.raises(ValueError, match=match):
        random_vorticity(Grid(32), **args)


def test_rest():
    z = rest(Grid(16), 3)
    assert z.shape == (3, 16, 16) and not z.any()
    with pytest.raises(ValueError, match="members"):
        rest(Grid(16), 0)
