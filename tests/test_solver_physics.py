"""Physics of the solvers against exact answers: steady laminar Kolmogorov flow, Rossby waves,
fourth-order convergence, conservation by the dealiased advection, exact stochastic injection."""
import numpy as np
import pytest

from solvers import BetaPlane, KolmogorovFlow, PseudoSpectralSolver
from fields import smooth_random_field

STEPPERS = ["etdrk4", "rk4"]


@pytest.mark.parametrize("stepper,dt", [("etdrk4", 0.1), ("rk4", 0.005)])
def test_laminar_kolmogorov_converges_to_exact_steady_state(stepper, dt):
    # Re small enough that the laminar flow is stable: a random perturbation must decay onto
    # ω = −F k_f cos(k_f y)/(ν k_f² + μ). ETDRK4's fixed point is exact for any dt; the
    # integrating-factor RK4's is off by O((dt(ν k_f² + μ))⁴), hence its smaller dt.
    s = KolmogorovFlow(n=32, nu=0.2, mu=0.1, kf=4, amplitude=1.0, dt=dt, stepper=stepper)
    s.set_vorticity(smooth_random_field(s.grid, 1, amplitude=2.0))
    s.step(round(150 / dt))
    exact = s.laminar_vorticity()
    err = np.abs(s.vorticity[0] - exact).max() / np.abs(exact).max()
    assert err < 1e-8


@pytest.mark.parametrize("stepper", STEPPERS)
def test_rossby_wave_has_exact_frequency_and_decay(stepper):
    beta, mu, nu, p, kx, ky = 0.9, 1e-3, 1e-9, 4, 1, 2
    s = BetaPlane(n=32, beta=beta, mu=mu, nu=nu, hyper_order=p, epsilon=0.0, dt=0.25,
                  stepper=stepper)
    X, Y = s.grid.meshgrid()
    # small amplitude: a finite-amplitude Rossby wave is an exact solution but triad-unstable
    s.set_vorticity(1e-3 * np.cos(kx * X + ky * Y))
    z0 = s.vorticity_hat.copy()
    s.step(4000)                                      # t = 1000: 28.6 wave periods
    k2 = kx**2 + ky**2
    omega = -beta * kx / k2                            # ζ ∝ exp(i(k·x − ωt))
    exact = z0 * np.exp((-mu - nu * k2**p) * s.t - 1j * omega * s.t)
    assert s.t * abs(omega) / (2 * np.pi) > 25
    assert np.abs(s.vorticity_hat - exact).max() / np.abs(z0).max() < 1e-10


@pytest.mark.parametrize("stepper", STEPPERS)
def test_eddy_drag_damps_the_eddies_exactly_and_leaves_the_zonal_flow(stepper):
    # a Rossby wave (kx ≠ 0) decays at μ + μₑ + ν|k|^{2p}; a zonal jet cos(k y) (kx = 0, also an
    # exact solution) at μ + ν|k|^{2p} only, untouched by the eddy drag μₑ
    beta, mu, mu_e, nu, p = 0.9, 1e-3, 2e-2, 1e-9, 4
    for kx, ky, rate in ((1, 2, mu + mu_e), (0, 3, mu)):
        s = BetaPlane(n=32, beta=beta, mu=mu, eddy_drag=mu_e, nu=nu, hyper_order=p, epsilon=0.0,
                      dt=0.25, stepper=stepper)
        X, Y = s.grid.meshgrid()
        s.set_vorticity(1e-3 * np.cos(kx * X + ky * Y))
        z0 = s.vorticity_hat.copy()
        s.step(400)                                   # t = 100: μₑ t = 2
        k2 = kx**2 + ky**2
        exact = z0 * np.exp((-rate - nu * k2**p) * s.t + 1j * beta * kx / k2 * s.t)
        assert np.abs(s.vorticity_hat - exact).max() < 1e-10 * np.abs(z0).max()


def test_energy_budget_closes_with_eddy_drag():
    # the drag column holds −2μE − 2μₑE' (E' the eddy energy): with it the budget closes as
    # without, and the eddy drag takes energy out (a run without it dissipates less by drag)
    drag = []
    for mu_e in (0.0, 0.5):
        s = BetaPlane(n=32, beta=2.0, mu=0.05, eddy_drag=mu_e, nu=1e-6, hyper_order=2,
                      kf=6, kf_width=1.0, epsilon=0.1, dt=2e-3, seed=3)
        s.set_vorticity(smooth_random_field(s.grid, 8))
        e0 = s.energy()[0]
        s.step(1000)
        b = s.budget_summary()
        dE = sum(b[f"energy_{k}"][0] for k in ("forcing", "noise", "closure", "drag",
                                                "viscosity"))
        assert abs((s.energy()[0] - e0) - dE) < 2e-3 * abs(b["energy_noise"][0])
        drag.append(-b["energy_drag"][0] / s.t)
    assert drag[1] > 2 * drag[0]


def _nonlinear_final_state(nsteps, stepper, T=1.0):
    s = KolmogorovFlow(n=32, nu=1e-2, mu=0.1, dt=T / nsteps, stepper=stepper)
    s.set_vorticity(smooth_random_field(s.grid, 3))
    s.step(nsteps)
    return s.vorticity_hat[0].copy()


@pytest.mark.parametrize("stepper", STEPPERS)
def test_fourth_order_convergence_on_nonlinear_run(stepper):
    ref = _nonlinear_final_state(1024, stepper)
    errs = np.array([np.abs(_nonlinear_final_state(n, stepper) - ref).max()
                     for n in (16, 32, 64)])
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all((orders > 3.5) & (orders < 4.5)), orders


def test_dealiased_advection_conserves_energy_and_enstrophy_to_roundoff():
    s = PseudoSpectralSolver(32, dt=0.01, members=3)
    z = np.stack([smooth_random_field(s.grid, k, peak=6.0) for k in range(3)])
    s.set_vorticity(z)
    zh = s.vorticity_hat
    N = s.rhs()                                  # −J(ψ, ζ) only: no forcing, no closure
    g = s.grid
    dE = (g.weight * (zh * N.conj()).real * g.inv_k2).sum(axis=(-2, -1))
    dZ = (g.weight * (zh * N.conj()).real).sum(axis=(-2, -1))
    scaleE = (g.weight * np.abs(zh) * np.abs(N) * g.inv_k2).sum(axis=(-2, -1))
    scaleZ = (g.weight * np.abs(zh) * np.abs(N)).sum(axis=(-2, -1))
    assert np.all(np.abs(dE) < 1e-13 * scaleE)
    assert np.all(np.abs(dZ) < 1e-13 * scaleZ)


@pytest.mark.parametrize("stepper", STEPPERS)
def test_inviscid_run_conserves_energy_and_enstrophy_to_stepper_accuracy(stepper):
    def drift(dt):
        s = PseudoSpectralSolver(32, dt=dt, stepper=stepper)
        s.set_vorticity(smooth_random_field(s.grid, 5, peak=4.0, amplitude=6.0))
        e0, z0 = s.energy()[0], s.enstrophy()[0]
        s.step(round(4.0 / dt))
        return abs(s.energy()[0] / e0 - 1), abs(s.enstrophy()[0] / z0 - 1)
    coarse, fine = drift(0.08), drift(0.04)
    assert 1e-9 < max(coarse) < 1e-3
    # the drift is time-stepping error: it falls with dt at (at least) fourth order
    assert fine[0] < coarse[0] / 8 and fine[1] < coarse[1] / 8


@pytest.mark.parametrize("dt", [0.01, 0.04])
def test_ring_forcing_injects_exactly_epsilon(dt):
    eps, T, members = 1e-3, 2.0, 400
    s = BetaPlane(n=32, beta=0.0, mu=0.0, nu=0.0, kf=6, kf_width=1.5, epsilon=eps, dt=dt,
                  members=members, seed=11)
    s.step(round(T / dt))
    rate = s.energy() / s.t
    mean, se = rate.mean(), rate.std(ddof=1) / np.sqrt(members)
    assert abs(mean - eps) < 3 * se
    assert se < 0.1 * eps                       # the test has power to see a 30% error
    # the midpoint-rule budget measures the same injection
    inj = s.budget_summary()["energy_noise"] / s.t
    assert abs(inj.mean() - eps) < 3 * inj.std(ddof=1) / np.sqrt(members)


def test_energy_budget_closes_for_forced_dissipative_run():
    s = KolmogorovFlow(n=32, nu=2e-2, mu=0.1, dt=2e-3)
    s.set_vorticity(smooth_random_field(s.grid, 8))
    e0, z0 = s.energy()[0], s.enstrophy()[0]
    s.step(1000)
    b = s.budget_summary()
    dE = sum(b[f"energy_{k}"][0] for k in ("forcing", "noise", "closure", "drag", "viscosity"))
    dZ = sum(b[f"enstrophy_{k}"][0] for k in ("forcing", "noise", "closure", "drag", "viscosity"))
    assert abs((s.energy()[0] - e0) - dE) < 1e-5 * abs(b["energy_forcing"][0])
    assert abs((s.enstrophy()[0] - z0) - dZ) < 1e-5 * abs(b["enstrophy_forcing"][0])


def test_float32_tracks_float64():
    runs = []
    for dtype in ("float64", "float32"):
        s = KolmogorovFlow(n=32, nu=1e-2, mu=0.1, dt=0.01, dtype=dtype)
        s.set_vorticity(smooth_random_field(s.grid, 2))
        s.step(50)
        assert s.vorticity.dtype == np.dtype(dtype)
        runs.append(s.vorticity[0].astype(np.float64))
    err = np.abs(runs[0] - runs[1]).max() / np.abs(runs[0]).max()
    assert 1e-9 < err < 1e-4                     # single precision: not identical, but close


def test_cfl_chosen_dt_respects_the_courant_number():
    s = KolmogorovFlow(n=32, nu=1e-2, mu=0.1, dt=None, cfl=0.4)
    s.set_vorticity(smooth_random_field(s.grid, 4, amplitude=20.0))
    from solvers.diagnostics import cfl_number
    for _ in range(20):
        s.step(1)
        assert s.dt <= s.dt_max
        assert cfl_number(s.grid, s.vorticity_hat, s.dt)[0] < 0.4 * 1.2
    assert s.dt < s.dt_max                       # the strong initial field forced a smaller step


@pytest.mark.parametrize("stepper", STEPPERS)
def test_without_advection_every_mode_decays_exactly(stepper):
    # advection=False leaves ∂t ζ̂ = L ζ̂ + F̂: each mode relaxes exactly to −F̂/L, even for a field
    # whose advection is far from zero
    s = KolmogorovFlow(n=32, nu=1e-2, mu=0.1, dt=0.05, stepper=stepper, advection=False)
    s.set_vorticity(smooth_random_field(s.grid, 9, peak=6.0))
    z0 = s.vorticity_hat.copy()
    s.step(40)
    lin = s.linear
    f = s._forcing_hat[0]
    steady = np.where(lin != 0, -f / np.where(lin != 0, lin, 1), 0)
    exact = (z0 - steady) * np.exp(lin * s.t) + steady
    scale = np.abs(z0).max()
    if stepper == "etdrk4":                           # exact for a constant source
        assert np.abs(s.vorticity_hat - exact).max() < 1e-12 * scale
    else:                                             # RK4's φ1 is a 4th-order approximation
        assert np.abs(s.vorticity_hat - exact).max() < 1e-5 * scale
    assert s.config()["advection"] is False
