"""Closures: exact budgets of the eddy viscosities, coupling to the solver, the oracle, the
registry, seeding and restarts of the closure's generators, grid checks."""
import json
import warnings

import numpy as np
import pytest

from fields import smooth_random_field
from closures import (Closure, Leith, NoClosure, OracleClosure, Smagorinsky, available_closures,
                      closure_state, get_closure, register_closure)
from closures import registry
from closures.base import closure_generators
from solvers import KolmogorovFlow, PseudoSpectralSolver
from solvers.grid import Grid


class MyClosure(Closure):
    """A user closure loaded by import path in the registry test: C = −a ζ."""
    name = "mine"

    def __init__(self, a=0.5, every=None):
        super().__init__(every=every)
        self.a = a

    def compute(self, state):
        return -self.a * np.asarray(state.vorticity, dtype=np.float64)


class NoiseClosure(Closure):
    """A stochastic closure: white noise of amplitude 1e-3 from the closure's own generators."""
    def compute(self, state):
        return 1e-3 * self.normal(state.grid.shape)


def random_spectrum(grid, members, seed0=0, peak=5.0):
    z = np.stack([smooth_random_field(grid, seed0 + m, peak=peak) for m in range(members)])
    return np.fft.rfft2(z) * grid.dealias


def full_derivatives(grid, f):
    """∂x f, ∂y f of physical fields (…, n, n) with complex full-plane FFTs (no rfft layout)."""
    k = 2 * np.pi / grid.L * np.fft.fftfreq(grid.n, 1.0 / grid.n)
    fh = np.fft.fft2(f)
    return (np.fft.ifft2(1j * k[None, :] * fh).real, np.fft.ifft2(1j * k[:, None] * fh).real)


def physical_formulas(grid, zeta, delta):
    """Independent evaluation: ψ, u, v, gradients and the two eddy viscosities' budget terms."""
    k = 2 * np.pi / grid.L * np.fft.fftfreq(grid.n, 1.0 / grid.n)
    k2 = k[None, :] ** 2 + k[:, None] ** 2
    k2[0, 0] = np.inf
    psi = np.fft.ifft2(-np.fft.fft2(zeta) / k2).real
    psix, psiy = full_derivatives(grid, psi)
    u, v = -psiy, psix
    ux, uy = full_derivatives(grid, u)
    vx, vy = full_derivatives(grid, v)
    wx, wy = full_derivatives(grid, zeta)
    s12 = 0.5 * (uy + vx)
    S2 = 2 * (ux**2 + vy**2 + 2 * s12**2)                 # |S|² = 2 S_ij S_ij
    gradw = np.sqrt(wx**2 + wy**2)
    return dict(S2=S2, Smag=np.sqrt(S2), gradw=gradw, psigradw=psix * wx + psiy * wy,
                gradw2=wx**2 + wy**2)


def spectral_rates(grid, zeta_hat, c):
    """Energy −⟨ψC⟩ and enstrophy ⟨ζC⟩ inputs of a physical term C, from the spectra."""
    c_hat = np.fft.rfft2(c)
    prod = grid.weight * (zeta_hat * np.conj(c_hat)).real
    return ((prod * grid.inv_k2).sum(axis=(-2, -1)) / grid.n**4,
            prod.sum(axis=(-2, -1)) / grid.n**4)


def attached(closure, grid, members, seed=0, first_member=0):
    closure.reset(grid, members, {"first_member": first_member}, seed)
    return closure


# ---------------------------------------------------------------- (a) exact budgets
@pytest.mark.parametrize("n,members", [(32, 3), (64, 2)])
@pytest.mark.parametrize("form", ["stress", "vorticity"])
def test_smagorinsky_budget_is_exact(n, members, form):
    g = Grid(n)
    zh = random_spectrum(g, members, seed0=n)
    clo = attached(Smagorinsky(cs=0.17, form=form), g, members)
    c = clo(closure_state(g, zh))
    assert c.shape == (members, n, n) and c.dtype == np.float64
    energy, enstrophy = spectral_rates(g, zh, c)
    f = physical_formulas(g, np.fft.irfft2(zh, s=g.shape), g.dx)
    nu_t = (0.17 * g.dx) ** 2 * f["Smag"]
    if form == "stress":
        expected = -np.mean(nu_t * f["S2"], axis=(-2, -1))          # −⟨ν_t |S|²⟩
        np.testing.assert_allclose(energy, expected, rtol=1e-10)
    else:
        expected = -np.mean(nu_t * f["gradw2"], axis=(-2, -1))      # −⟨ν_t |∇ω|²⟩
        np.testing.assert_allclose(enstrophy, expected, rtol=1e-10)
        np.testing.assert_allclose(energy, np.mean(nu_t * f["psigradw"], axis=(-2, -1)),
                                   rtol=1e-10)
    assert np.all(expected < 0)
    assert np.all(energy < 0)
    r = clo.rates(zh)                                                # the closure's own formulas
    np.testing.assert_allclose(r["energy"], energy, rtol=1e-10)
    np.testing.assert_allclose(r["enstrophy"], enstrophy, rtol=1e-10)


@pytest.mark.parametrize("n,members", [(32, 2), (64, 3)])
@pytest.mark.parametrize("form", ["vorticity", "stress"])
def test_leith_budget_is_exact(n, members, form):
    g = Grid(n)
    zh = random_spectrum(g, members, seed0=7 * n)
    clo = attached(Leith(cl=1.0, form=form), g, members)
    c = clo(closure_state(g, zh))
    energy, enstrophy = spectral_rates(g, zh, c)
    f = physical_formulas(g, np.fft.irfft2(zh, s=g.shape), g.dx)
    nu_t = (g.dx / np.pi) ** 3 * f["gradw"]
    if form == "vorticity":
        expected = -np.mean(nu_t * f["gradw2"], axis=(-2, -1))      # ⟨ζC⟩ = −⟨ν_t|∇ω|²⟩
        np.testing.assert_allclose(enstrophy, expected, rtol=1e-10)
        np.testing.assert_allclose(energy, np.mean(nu_t * f["psigradw"], axis=(-2, -1)),
                                   rtol=1e-10)                      # −⟨ψC⟩ = ⟨ν_t∇ψ·∇ω⟩
        assert np.all(enstrophy < 0)
    else:
        expected = -np.mean(nu_t * f["S2"], axis=(-2, -1))
        np.testing.assert_allclose(energy, expected, rtol=1e-10)
        assert np.all(energy < 0)
    r = clo.rates(zh)
    np.testing.assert_allclose(r["energy"], energy, rtol=1e-10)
    np.testing.assert_allclose(r["enstrophy"], enstrophy, rtol=1e-10)
    np.testing.assert_allclose(r["nu_t_mean"], nu_t.mean(axis=(-2, -1)), rtol=1e-10)


def test_eddy_viscosity_of_a_shear_flow_matches_the_analytic_value():
    # u = U sin(m y): ζ = −U m cos(m y), |S| = |u'| = U m |cos m y|, so for Smagorinsky (stress)
    # C = ∂x f_y − ∂y f_x with f_x = ∂y(ν_t u') and ν_t = (C_s Δ)² |u'|: C = −∂²y((C_sΔ)² u'|u'|)
    g = Grid(64)
    m, U = 3, 0.7
    X, Y = g.meshgrid()
    zh = np.fft.rfft2(-U * m * np.cos(m * Y))[None]
    clo = attached(Smagorinsky(cs=0.2), g, 1)
    du = U * m * np.cos(m * Y)
    q = (0.2 * g.dx) ** 2 * du * np.abs(du)
    ky = np.fft.fftfreq(g.n, 1 / g.n)[:, None]
    ky[g.n // 2] = 0
    expected = np.fft.irfft2((ky**2) * np.fft.rfft2(q), s=g.shape)     # −∂²y q
    np.testing.assert_allclose(clo.tendency(zh)[0], expected, atol=1e-12 * np.abs(expected).max())


# ---------------------------------------------------------------- (b) coefficient scaling
def test_smagorinsky_term_scales_as_cs_squared_and_leith_as_cl_cubed():
    g = Grid(32)
    zh = random_spectrum(g, 2)
    st = closure_state(g, zh)
    c1 = attached(Smagorinsky(cs=0.1), g, 2)(st)
    c2 = attached(Smagorinsky(cs=0.2), g, 2)(st)
    np.testing.assert_allclose(c2, 4 * c1, rtol=1e-13, atol=1e-16 * np.abs(c1).max())
    assert not np.allclose(c2, 2 * c1)
    l1 = attached(Leith(cl=0.5), g, 2)(st)
    l2 = attached(Leith(cl=1.0), g, 2)(st)
    np.testing.assert_allclose(l2, 8 * l1, rtol=1e-13, atol=1e-16 * np.abs(l1).max())
    # and Δ enters like C_s: doubling delta quadruples the Smagorinsky term too
    c3 = attached(Smagorinsky(cs=0.1, delta=2 * g.dx), g, 2)(st)
    np.testing.assert_allclose(c3, c2, rtol=1e-12, atol=1e-15 * np.abs(c2).max())


@pytest.mark.parametrize("make,match", [
    (lambda: Smagorinsky(cs=-0.1), "cs"), (lambda: Leith(cl=0), "cl"),
    (lambda: Smagorinsky(delta=np.nan), "delta"), (lambda: Leith(form="flux"), "form"),
    (lambda: NoClosure(every=0), "every"), (lambda: Smagorinsky(every=2.5), "every"),
])
def test_bad_closure_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------- (c) coupled to the solver
@pytest.mark.parametrize("closure", [Smagorinsky(cs=0.3), Leith(cl=2.0)], ids=["smag", "leith"])
def test_closure_in_solver_removes_energy_at_its_predicted_rate(closure):
    s = KolmogorovFlow(n=32, dt=0.01, members=2)
    g = s.grid
    s.set_vorticity(np.stack([smooth_random_field(g, k, peak=5) for k in (11, 12)]))
    s.set_closure(closure, every=1)
    predicted, midpoint = np.zeros(2), np.zeros(2)
    for _ in range(10):
        zh0 = s.vorticity_hat.copy()
        predicted += s.dt * closure.rates(zh0)["energy"]       # rate at the step's start
        c_hat = np.fft.rfft2(closure.tendency(zh0)) * g.dealias
        s.step()
        mid = 0.5 * (zh0 + s.vorticity_hat)                     # the solver books the midpoint
        midpoint += s.dt * g.mean_product(mid * g.inv_k2, c_hat)
    booked = s.budget_summary()["energy_closure"]
    assert np.all(booked < 0)
    np.testing.assert_allclose(booked, predicted, rtol=0.05)
    np.testing.assert_allclose(booked, midpoint, rtol=1e-9)
    assert s.closure_calls == 10
    if isinstance(closure, Leith):
        assert np.all(s.budget_summary()["enstrophy_closure"] < 0)


# ---------------------------------------------------------------- (d) the baseline
def test_no_closure_is_bit_identical_to_no_hook():
    runs = []
    for clo in (None, NoClosure()):
        s = KolmogorovFlow(n=32, dt=0.01, members=2)
        s.set_vorticity(np.stack([smooth_random_field(s.grid, k) for k in (3, 4)]))
        if clo is not None:
            s.set_closure(clo, every=1)
        s.step(15)
        runs.append(s)
    assert np.array_equal(runs[0].vorticity_hat, runs[1].vorticity_hat)
    assert runs[1].closure_calls == 15
    assert np.all(runs[1].budget_summary()["energy_closure"] == 0)


# ---------------------------------------------------------------- (e) the oracle
def oracle_data(ntime=11, members=2, n=32, dt=0.01, seed=5):
    rng = np.random.default_rng(seed)
    return dt * np.arange(ntime), rng.standard_normal((ntime, members, n, n))


def test_oracle_replays_the_stored_terms_exactly_in_a_solver():
    times, terms = oracle_data()
    returned = []

    class Recording(OracleClosure):
        def compute(self, state):
            out = super().compute(state)
            returned.append((state.step, out.copy()))
            return out

    s = PseudoSpectralSolver(32, dt=0.01, members=2)
    s.set_closure(Recording.from_arrays(times, terms, every=2))
    s.step(10)                                       # calls at steps 0, 2, …, 8 (t = 0.08)
    assert [k for k, _ in returned] == [0, 2, 4, 6, 8]
    for k, out in returned:
        assert np.array_equal(out, terms[k])
    s.step(2)                                        # t = 0.10: the last stored time
    assert np.array_equal(returned[-1][1], terms[10])
    from solvers.base import ClosureError
    with pytest.raises(ClosureError, match=r"outside the stored times") as e:
        s.step(2)                                    # step 12, t = 0.12 > 0.10 + 0.005
    assert "t=0.12" in str(e.value)


def test_oracle_nearest_and_linear_lookup_and_range():
    times, terms = oracle_data(ntime=4, members=1)
    g = Grid(32)
    near = attached(OracleClosure(times, terms), g, 1)
    lin = attached(OracleClosure(times, terms, interpolation="linear"), g, 1)
    zh = np.zeros((1, 32, 17), complex)
    for i, t in enumerate(times):
        for jitter in (-0.0049, 0.0, 0.0049):           # within half a sample interval
            assert np.array_equal(near(closure_state(g, zh, t=t + jitter)), terms[i])
        assert np.array_equal(lin(closure_state(g, zh, t=t)), terms[i])
    np.testing.assert_allclose(lin.term_at(0.015), 0.5 * (terms[1] + terms[2]), rtol=1e-12)
    np.testing.assert_allclose(lin.term_at(0.0125), 0.75 * terms[1] + 0.25 * terms[2],
                               rtol=1e-12, atol=1e-15)
    for bad_t in (-0.0051, 0.0351, 1.0):
        with pytest.raises(ValueError, match="outside the stored times"):
            near.term_at(bad_t)


def test_oracle_shape_and_grid_mismatch_errors():
    times, terms = oracle_data(members=3)
    with pytest.raises(ValueError, match="3 members.*solver has 2"):
        PseudoSpectralSolver(32, dt=0.01, members=2).set_closure(OracleClosure(times, terms))
    with pytest.raises(ValueError, match=r"built for n=32.*solver has n=64"):
        PseudoSpectralSolver(64, dt=0.01, members=3).set_closure(OracleClosure(times, terms))
    with pytest.raises(ValueError, match=r"L=1.*solver has n=32, L=6.28"):
        PseudoSpectralSolver(32, dt=0.01, members=3).set_closure(
            OracleClosure(times, terms, L=1.0))
    with pytest.raises(ValueError, match="shape"):
        OracleClosure(times, terms[:, 0])
    with pytest.raises(ValueError, match="ntime"):
        OracleClosure(times[:-1], terms)
    with pytest.raises(ValueError, match="increasing"):
        OracleClosure(times[::-1], terms)
    bad = terms.copy()
    bad[2, 1, 3, 4] = np.nan
    with pytest.raises(ValueError, match="finite"):
        OracleClosure(times, bad)


def test_oracle_from_dataset_groups_samples_and_negates_the_subgrid_term():
    xr = pytest.importorskip("xarray")
    times, pi = oracle_data(ntime=3, members=2, n=16)
    ids = np.array([4, 7])                                        # members 4 and 7 of an ensemble
    order = np.random.default_rng(0).permutation(6)               # samples in any order
    t_s = np.repeat(times, 2)[order]
    m_s = np.tile(ids, 3)[order]
    ds = xr.Dataset({"subgrid": (("sample", "y", "x"), pi.reshape(6, 16, 16)[order]),
                     "time": ("sample", t_s), "member": ("sample", m_s)}, attrs={"L": 2 * np.pi})
    clo = OracleClosure.from_dataset(ds)
    assert np.array_equal(clo.terms, -pi) and np.array_equal(clo.times, times)
    assert clo.built_for == (16, 2 * np.pi)
    one = OracleClosure.from_dataset(ds, members=[7], sign=1.0)
    assert np.array_equal(one.terms, pi[:, 1:])
    ds4 = xr.Dataset({"subgrid": (("time", "member", "y", "x"), pi)},
                     coords={"time": times, "member": ids})
    assert np.array_equal(OracleClosure.from_dataset(ds4, members=[7]).terms, -pi[:, 1:])
    with pytest.raises(ValueError, match="exactly one"):
        OracleClosure.from_dataset(ds.isel(sample=slice(0, 5)))


# ---------------------------------------------------------------- (f) registry
def test_registry_names_errors_and_import_paths(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert {"none", "smagorinsky", "leith"} <= set(available_closures())
    assert isinstance(get_closure("none"), NoClosure)
    smag = get_closure("Smagorinsky", cs=0.2, every=3)
    assert isinstance(smag, Smagorinsky) and smag.cs == 0.2 and smag.every == 3
    assert isinstance(get_closure("leith"), Leith)
    with pytest.raises(ValueError, match="unknown closure 'smagorinksy'") as e:
        get_closure("smagorinksy")
    for known in ("leith", "none", "smagorinsky"):
        assert known in str(e.value)
    mine = get_closure("test_closures:MyClosure", a=2.0, every=1)
    assert type(mine).__name__ == "MyClosure" and mine.a == 2.0 and mine.every == 1
    with pytest.raises(ValueError, match="has no attribute 'Nope'"):
        get_closure("test_closures:Nope")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        get_closure("no_such_module_xyz:Foo")
    with pytest.raises(TypeError, match="protocol"):
        get_closure("json:dumps", obj=1)                    # a callable, but not a closure

    @register_closure("My-Own")
    class Own(MyClosure):
        pass

    assert "my-own" in available_closures() and isinstance(get_closure("my-own"), Own)
    with pytest.raises(ValueError, match="already registered"):
        register_closure("leith")(Own)


def test_user_closure_by_import_path_runs_in_a_solver():
    s = KolmogorovFlow(n=32, dt=0.01)
    s.set_vorticity(smooth_random_field(s.grid, 2))
    s.set_closure(get_closure("test_closures:MyClosure", a=0.5), every=1)
    s.step(5)
    # C = −a ζ is a drag: its energy and enstrophy inputs are negative
    b = s.budget_summary()
    assert b["energy_closure"][0] < 0 and b["enstrophy_closure"][0] < 0


# ---------------------------------------------------------------- (g) seeding and restarts
def test_closure_rng_state_round_trip_gives_identical_draws():
    g = Grid(32)
    clo = attached(NoiseClosure(), g, 3, seed=42)
    clo.normal(5)
    st = clo.get_state()
    st = json.loads(json.dumps(st))                       # JSON-able, exactly
    a = clo.normal((4, 4))
    clo.set_state(st)
    assert np.array_equal(clo.normal((4, 4)), a)
    fresh = attached(NoiseClosure(), g, 3, seed=0)        # another seed, restored from the state
    fresh.set_state(st)
    assert np.array_equal(fresh.normal((4, 4)), a)
    with pytest.raises(ValueError, match="3 generator states"):
        attached(NoiseClosure(), g, 2).set_state(st)


def test_closure_seeding_per_member_and_apart_from_solver_noise():
    g = Grid(32)
    full = attached(NoiseClosure(), g, 4, seed=9).normal(6)
    part = attached(NoiseClosure(), g, 2, seed=9, first_member=2).normal(6)
    assert np.array_equal(full[2:], part)            # a sub-batch draws as in the full batch
    again = attached(NoiseClosure(), g, 4, seed=9).normal(6)
    assert np.array_equal(full, again)
    assert not np.array_equal(attached(NoiseClosure(), g, 4, seed=10).normal(6), full)
    solver_noise = [r.standard_normal(6) for r in
                    KolmogorovFlow(n=32, dt=0.01, members=4, seed=9).rngs]
    assert not any(np.allclose(full[m], solver_noise[m]) for m in range(4))
    gens = closure_generators(9, 2, first_member=2)
    assert np.array_equal(np.stack([r.standard_normal(6) for r in gens]), part)
    # the derivation itself: children 2 and 3 of SeedSequence([9, CLOSURE_STREAM = 2])
    pinned = [np.random.Generator(np.random.PCG64(c))
              for c in np.random.SeedSequence([9, 2]).spawn(4)[2:]]
    assert np.array_equal(np.stack([r.standard_normal(6) for r in pinned]), part)


def test_stochastic_closure_restarts_bit_identically_in_a_solver():
    def make():
        s = KolmogorovFlow(n=32, dt=0.01, members=2, seed=1)
        s.set_vorticity(np.stack([smooth_random_field(s.grid, k) for k in (5, 6)]))
        s.set_closure(NoiseClosure(every=2))
        return s

    ref = make()
    ref.step(12)
    s = make()
    s.step(5)
    st = s.get_state()
    other = make()                                          # a new run restored at step 5
    other.set_state(st)
    other.step(7)
    assert np.array_equal(other.vorticity_hat, ref.vorticity_hat)


def test_stochastic_closure_state_goes_into_restart_files_as_json(tmp_path):
    from solvers import io

    def make():
        s = KolmogorovFlow(n=32, dt=0.01, members=2, seed=3)
        s.set_vorticity(np.stack([smooth_random_field(s.grid, k) for k in (8, 9)]))
        s.set_closure(NoiseClosure(every=3))
        return s

    ref = make()
    ref.step(10)
    s = make()
    s.step(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # a pickled state would warn
        path = io.write_restart(s, tmp_path / "restart.nc")
        back = io.read_restart(path, closure=NoiseClosure(every=3))
    back.step(6)
    assert np.array_equal(back.vorticity_hat, ref.vorticity_hat)


# ---------------------------------------------------------------- (h) grid checks
def test_check_grid_names_both_grids():
    class Trained(NoClosure):
        def __init__(self):
            super().__init__()
            self.built_for = (64, 2 * np.pi)

    clo = Trained()
    clo.check_grid(Grid(64))                                # fine
    with pytest.raises(ValueError, match="closure grid mismatch") as e:
        clo.check_grid(Grid(128))
    assert "n=64, L=6.28319" in str(e.value) and "n=128, L=6.28319" in str(e.value)
    with pytest.raises(ValueError, match=r"built for n=64.*solver has n=64, L=1\b"):
        clo.check_grid(Grid(64, L=1.0))
    with pytest.raises(ValueError, match="n=128"):
        KolmogorovFlow(n=128, dt=0.01).set_closure(Trained())


def test_closure_called_before_reset_or_on_another_grid_raises():
    g = Grid(32)
    zh = random_spectrum(g, 1)
    with pytest.raises(RuntimeError, match="reset"):
        Smagorinsky()(closure_state(g, zh))
    clo = attached(Smagorinsky(), g, 1)
    g2 = Grid(64)
    with pytest.raises(ValueError, match="n=32.*n=64"):
        clo(closure_state(g2, random_spectrum(g2, 1)))
    with pytest.raises(ValueError, match="1 members"):
        clo(closure_state(g, random_spectrum(g, 2)))


# ---------------------------------------------------------------- dynamic Smagorinsky
def _dns_and_les(n_fine=128, n_les=32, t=5.0):
    """A Kolmogorov DNS state (2 members) and its coarse-grained field and subgrid flux/term."""
    from solvers import filters
    s = KolmogorovFlow(n=n_fine, members=2, seed=0, dt=5e-3, nu=1e-3, mu=0.1)
    s.set_vorticity(np.stack([smooth_random_field(s.grid, m, peak=6, amplitude=5)
                              for m in range(2)]))
    s.step(int(round(t / s.dt)))
    fine, les = s.grid, Grid(n_les, s.grid.L)
    zh = np.asarray(s.vorticity_hat)
    wbar_h, pi_h = filters.subgrid_term(fine, les, zh)
    uh, vh = filters.velocity_hat(fine, zh)
    u, v, w = (np.fft.irfft2(a, s=fine.shape) for a in (uh, vh, zh))

    def cg(a):
        return np.fft.irfft2(filters.coarse_grain(fine, les, np.fft.rfft2(a)), s=les.shape)
    return les, np.asarray(wbar_h), -np.fft.irfft2(pi_h, s=les.shape), (cg(u * w), cg(v * w))


def test_dynamic_smagorinsky_coefficient_near_the_least_squares_optimum_of_a_dns():
    """On a DNS coarse-grained with the package's filter, the Germano–Lilly coefficient lies
    within [0.3, 1.2] of the least-squares-optimal coefficient of the exact subgrid flux
    σ = (uω)‾ − ū ω̄ and within [0.1, 1.2] of the optimal static coefficient of the exact term
    −Π itself (member-pooled, measured at t = 5, 10, 15: 0.41, 0.90, 0.85 of the flux optimum
    and 0.25, 0.64, 0.61 of the term optimum)."""
    from closures.classical import DynamicSmagorinsky
    les, wbar_h, c_true, (uw, vw) = _dns_and_les()
    dyn = attached(DynamicSmagorinsky(), les, 2)
    term = dyn(closure_state(les, wbar_h))
    c_dyn = dyn.last_coefficient_raw
    d = 2 * les.dx
    f = dyn.fields(wbar_h, les)
    sx, sy = uw - f["u"] * f["w"], vw - f["v"] * f["w"]
    mx, my = -d**2 * f["Smag"] * f["wx"], -d**2 * f["Smag"] * f["wy"]
    c_flux = np.sum(sx * mx + sy * my) / np.sum(mx**2 + my**2)          # pooled over members
    unit = attached(Smagorinsky(cs=1.0, delta=d, form="vorticity"), les, 2)(
        closure_state(les, wbar_h))
    c_term = np.sum(c_true * unit) / np.sum(unit**2)
    c_pooled = np.sum(c_dyn * np.sum(mx**2 + my**2, axis=(1, 2))) / np.sum(mx**2 + my**2)
    assert c_flux > 0 and c_term > 0 and np.all(c_dyn > 0)
    assert 0.3 < c_pooled / c_flux < 1.2
    assert 0.1 < c_pooled / c_term < 1.2
    # the term is ∇·(c Δ²|S|∇ω) with the member's coefficient: c times the unit-coefficient term
    np.testing.assert_allclose(term, c_dyn[:, None, None] * unit, rtol=1e-10,
                               atol=1e-12 * np.abs(term).max())


def test_dynamic_smagorinsky_coefficient_is_scale_free_and_zero_for_one_mode():
    """c(aω) = c(ω) (L and M both scale as a²), so the term scales as a²; a single Fourier mode
    has u·∇ω = 0, an exact subgrid term of zero, and c = 0 (L_j M_j = 0 pointwise in the mean)."""
    from closures.classical import DynamicSmagorinsky
    from solvers import filters
    g = Grid(32, 2 * np.pi)
    zh = random_spectrum(g, 2, peak=6.0)
    dyn = attached(DynamicSmagorinsky(), g, 2)
    t1 = dyn(closure_state(g, zh))
    c1 = dyn.last_coefficient_raw.copy()
    t3 = dyn(closure_state(g, 3.0 * zh))
    np.testing.assert_allclose(dyn.last_coefficient_raw, c1, rtol=1e-10)
    np.testing.assert_allclose(t3, 9.0 * t1, rtol=1e-9, atol=1e-12 * np.abs(t3).max())
    x, y = g.meshgrid()
    one = np.stack([np.cos(3 * x + 2 * y), 2.0 * np.sin(5 * y)])
    dyn(closure_state(g, np.fft.rfft2(one)))
    assert np.all(np.abs(dyn.last_coefficient_raw) < 1e-12 * np.abs(c1).max())
    fine = Grid(64, g.L)
    xf, yf = fine.meshgrid()
    _, pi = filters.subgrid_term(fine, g, np.fft.rfft2(np.cos(3 * xf + 2 * yf))[None])
    assert np.abs(pi).max() < 1e-10


def test_dynamic_smagorinsky_registered_and_arguments_checked():
    from closures.classical import DynamicSmagorinsky
    assert isinstance(get_closure("dynamic-smagorinsky", every=2), DynamicSmagorinsky)
    for kw, match in (({"ratio": 1.0}, "ratio"), ({"form": "stress"}, "form"),
                      ({"delta": -1.0}, "delta")):
        with pytest.raises(ValueError, match=match):
            DynamicSmagorinsky(**kw)
