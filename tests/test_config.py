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


def test_kolmogorov_numbers():
    p = load_preset("kolmogorov")
    assert p.solver == "KolmogorovFlow"
    assert p.dns["nu"] == 1e-3 and p.dns["mu"] == 0.1
    assert p.dns["kf"] == 4 and p.dns["amplitude"] == 1.0
    assert p.dns["L"] == pytest.approx(2 * np.pi, rel=1e-15)
    assert p.dns["n"] == 512 and p.les["n"] == 64
    kw_dns, kw_les = p.solver_kwargs("dns"), p.solver_kwargs("les")
    assert kw_dns["n"] == 512 and kw_les["n"] == 64
    assert kw_les["nu"] == 1e-3 and kw_les["mu"] == 0.1          # physics shared with the DNS
    assert 5e-4 <= kw_dns["dt"] <= 1e-3 and kw_les["dt"] == 5e-3


def test_ns_unitbox_numbers():
    p = load_preset("ns-unitbox")
    kw = p.solver_kwargs("dns")
    assert kw["L"] == 1.0 and kw["nu"] == 1e-3 and kw["mu"] == 0.0
    assert kw["forcing"] == "unitbox" and kw["amplitude"] == 0.1 and kw["dt"] == 1e-3
    assert kw["n"] == 256 and p.solver_kwargs("les")["n"] == 64


def test_betaplane_paper_numbers_and_default_hyperviscosity():
    p = load_preset("betaplane-paper")
    s = p.make_solver("dns")
    assert isinstance(s, BetaPlane)
    assert s.grid.n == 256 and s.grid.L == pytest.approx(2 * np.pi)
    assert s.beta == 0.9 and s.mu == 4e-4 and s.hyper_order == 8
    assert (s.kf, s.kf_width, s.epsilon, s.dt) == (16.0, 1.5, 1e-6, 0.04)
    assert s.nu == pytest.approx((256 / 3) ** -16, rel=1e-12)
    assert p.initial == {"kind": "rest"}
    np.testing.assert_array_equal(p.initial_vorticity(s), 0.0)
    les = p.make_solver("les")                   # the LES grid gets its own default ν
    assert les.grid.n == 64 and les.nu == pytest.approx((64 / 3) ** -16, rel=1e-12)


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
