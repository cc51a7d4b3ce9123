"""closures.losses: the VE schedule, denoising score matching against a Gaussian target with a
known score, the reverse-SDE sampler (variance, convergence, reproducibility), the energy score
and CRPS (exact values, fairness, propriety), the spectral amplitude loss and the moment penalty."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from closures.losses import (crps_ensemble, dsm_loss, energy_score, karras_times,
                             moment_penalty, sample_ve, spectral_amplitude_loss,
                             ve_diffusion_coeff, ve_marginal_std, ve_time_of_std)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gaussian_score(s: float, sigma: float = 30.0):
    """Exact score of x_t when x0 ~ N(0, s² I): −x_t/(s² + std(t)²)."""
    def score(x, t, cond=None):
        v = ve_marginal_std(t.double(), sigma) ** 2
        return (-x.double() / (s * s + v.reshape(-1, *[1] * (x.ndim - 1)))).to(x.dtype)
    return score


# ------------------------------------------------------------------ schedule
def test_marginal_std_and_diffusion_coefficient():
    assert float(ve_marginal_std(0.0)) == 0.0
    np.testing.assert_allclose(float(ve_marginal_std(torch.tensor(1.0, dtype=torch.float64))),
                               math.sqrt((30.0**2 - 1) / (2 * math.log(30.0))), rtol=1e-12)
    np.testing.assert_allclose(float(ve_marginal_std(1.0, sigma=5.0)),
                               math.sqrt(24 / (2 * math.log(5.0))), rtol=1e-6)
    # small t: std ≈ sqrt(t), accurately (expm1)
    t = torch.tensor([1e-5, 1e-3], dtype=torch.float64)
    np.testing.assert_allclose(ve_marginal_std(t).numpy(),
                               np.sqrt(np.expm1(2 * t.numpy() * math.log(30)) / (2 * math.log(30))),
                               rtol=1e-12)
    np.testing.assert_allclose(float(ve_marginal_std(torch.tensor(1e-5))), math.sqrt(1e-5),
                               rtol=1e-4)
    # g² = d std²/dt, by central differences; and the inverse map
    tt = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    h = 1e-6
    dvar = (ve_marginal_std(tt + h) ** 2 - ve_marginal_std(tt - h) ** 2) / (2 * h)
    torch.testing.assert_close(dvar, ve_diffusion_coeff(tt) ** 2, rtol=1e-6, atol=0)
    torch.testing.assert_close(ve_time_of_std(ve_marginal_std(tt)), tt)
    with pytest.raises(ValueError, match="sigma"):
        ve_marginal_std(0.5, sigma=1.0)


def test_karras_times():
    t = karras_times(10, t_start=0.4, eps=1e-5, rho=7)
    assert t.shape == (11,) and float(t[0]) == 0.4 and float(t[-1]) == 1e-5
    assert torch.all(t[1:] < t[:-1])
    steps = t[:-1] - t[1:]
    assert torch.all(steps[1:] < steps[:-1])          # ρ = 7 crowds the steps toward eps
    np.testing.assert_allclose(float(t[5]), (0.5 * 0.4 ** (1 / 7) + 0.5 * 1e-5 ** (1 / 7)) ** 7,
                               rtol=1e-12)
    with pytest.raises(ValueError):
        karras_times(0)
    with pytest.raises(ValueError):
        karras_times(5, t_start=1e-6)


# ------------------------------------------------------------------ denoising score matching
def analytic_dsm(s: float, eps: float = 1e-5, sigma: float = 30.0) -> float:
    """Per-element DSM loss of the exact score of N(0, s²): E_t[s²/(s² + std(t)²)], t ~ U(eps, 1)
    (std·score + z = (s² z − std x0)/(s² + std²), whose mean square is s²/(s² + std²))."""
    t = np.linspace(eps, 1.0, 400_001)
    v = np.expm1(2 * t * math.log(sigma)) / (2 * math.log(sigma))
    f = s * s / (s * s + v)
    return float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(t)) / (1.0 - eps))


def test_dsm_loss_of_the_exact_gaussian_score():
    s = 0.7
    g = torch.Generator().manual_seed(0)
    x0 = s * torch.randn(8000, 1, 2, 2, generator=g)
    exact = gaussian_score(s)
    losses = []
    for seed in range(3):
        g = torch.Generator().manual_seed(100 + seed)
        losses.append(dsm_loss(exact, x0, None, generator=g, reduction="mean").item())
    expected = analytic_dsm(s)
    # standard error of one estimate: per-element values are s²/(s²+v)·(χ²-like), so their
    # spread is below ~1.5 × their mean; 32,000 elements → SE < 1.5·0.2/√32000·… ≈ 0.003
    for v in losses:
        assert abs(v - expected) < 0.01, (losses, expected)
    # 'sum' reduction: the per-sample squared norm, i.e. 4 elements
    g = torch.Generator().manual_seed(100)
    total = dsm_loss(exact, x0, None, generator=g).item()
    np.testing.assert_allclose(total, 4 * losses[0], rtol=1e-5)


@pytest.mark.parametrize("wrong", ["scaled", "wrong variance", "zero"])
def test_dsm_loss_is_lower_for_the_exact_score(wrong):
    s = 0.7
    x0 = s * torch.randn(4000, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    bad = {"scaled": lambda x, t, c: 1.3 * gaussian_score(s)(x, t, c),
           "wrong variance": gaussian_score(2 * s),
           "zero": lambda x, t, c: torch.zeros_like(x)}[wrong]
    # same t and z for both (common random numbers): the comparison is paired
    good_loss = dsm_loss(gaussian_score(s), x0, None, generator=torch.Generator().manual_seed(2))
    bad_loss = dsm_loss(bad, x0, None, generator=torch.Generator().manual_seed(2))
    assert good_loss < 0.95 * bad_loss


def test_dsm_loss_reaches_the_network_and_checks_shapes():
    from closures.nn import ConditionalFNOScore
    torch.manual_seed(0)
    net = ConditionalFNOScore(1, 1, width=4, modes=2, layers=1, time_dim=8, proj_hidden=8)
    x0 = torch.randn(4, 1, 8, 8, requires_grad=True)
    loss = dsm_loss(net, x0, torch.randn(4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert x0.grad is not None and net.lift_x.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="returned shape"):
        dsm_loss(lambda x, t, c: x[:, :, :4], torch.randn(2, 1, 8, 8), None)
    # fixed t: reproducible and deterministic given the generator
    a = dsm_loss(net, x0.detach(), torch.ones(4, 1, 8, 8), t=torch.full((4,), 0.5),
                 generator=torch.Generator().manual_seed(3))
    b = dsm_loss(net, x0.detach(), torch.ones(4, 1, 8, 8), t=0.5,
                 generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


# ------------------------------------------------------------------ sampler
def em_variance(s: float, v0: float, steps: int, t_start: float, rho: float = 7.0) -> float:
    """Exact variance of sample_ve's output for the exact score of N(0, s²), by the recursion of
    its linear update x ← (1 − g²Δ/(s² + std(t)²)) x + g√Δ z (no noise on the last step),
    started from variance v0: the number the sampler's draws must reproduce."""
    t = karras_times(steps, t_start, rho=rho).double()
    v = v0
    for i in range(steps):
        g2dt = float(ve_diffusion_coeff(t[i]) ** 2 * (t[i] - t[i + 1]))
        a = 1.0 - g2dt / (s * s + float(ve_marginal_std(t[i])) ** 2)
        v = a * a * v + (g2dt if i < steps - 1 else 0.0)
    return v


def assert_variance(x: torch.Tensor, expected: float):
    """Sample variance of x within 3 standard errors (√(2/(N−1))·σ²) of ``expected``."""
    n = x.numel()
    assert abs(x.double().var().item() - expected) < 3 * expected * math.sqrt(2 / (n - 1)), (
        x.var().item(), expected)


def test_sampler_with_the_exact_score_draws_the_target_variance():
    """From the VE prior at t = 1, many steps reach the data variance s² (the discretisation's
    variance is within 1 % of it at 400 steps), few steps miss it (first order)."""
    s = 0.5
    score = gaussian_score(s)
    v0 = float(ve_marginal_std(1.0)) ** 2
    exact = {n: em_variance(s, v0, n, 1.0) for n in (25, 400)}
    assert abs(exact[400] / s**2 - 1) < 0.01 and abs(exact[25] / s**2 - 1) > 0.05, exact
    for steps in (25, 400):
        x = sample_ve(score, (4000, 4), steps=steps, t_start=1.0,
                      generator=torch.Generator().manual_seed(0))
        assert_variance(x, exact[steps])
    assert x.shape == (4000, 4) and x.dtype == torch.float32
    assert abs(x.mean().item()) < 3 * s / math.sqrt(x.numel())


def test_sampler_default_schedule_from_the_exact_marginal():
    """The paper's sampler (10 steps, ρ = 7, t from 0.4), started from the exact marginal
    N(0, s² + std(0.4)²): its variance error is the discretisation's, ×1.36 for s = 1 with
    10 steps and ×1.03 with 40, and the draws reproduce the exact recursion's numbers."""
    s = 1.0
    v0 = s**2 + float(ve_marginal_std(0.4)) ** 2
    v10, v40 = em_variance(s, v0, 10, 0.4), em_variance(s, v0, 40, 0.4)
    assert 1.3 < v10 < 1.4 and abs(v40 - 1) < 0.05
    g = torch.Generator().manual_seed(1)
    x_init = math.sqrt(v0) * torch.randn(8000, 2, generator=g)
    assert_variance(sample_ve(gaussian_score(s), (8000, 2), x_init=x_init, generator=g), v10)
    assert_variance(sample_ve(gaussian_score(s), (8000, 2), steps=40, x_init=x_init,
                              generator=torch.Generator().manual_seed(2)), v40)


def test_sampler_is_deterministic_given_the_generator_and_passes_cond():
    calls = []

    def score(x, t, cond):
        calls.append((t.clone(), cond))
        return -x / (1 + ve_marginal_std(t)[:, None] ** 2) + 0.1 * cond

    cond = torch.ones(3, 2)
    a = sample_ve(score, (3, 2), cond, generator=torch.Generator().manual_seed(5))
    b = sample_ve(score, (3, 2), cond, generator=torch.Generator().manual_seed(5))
    c = sample_ve(score, (3, 2), cond, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(calls) == 30 and all(cc is cond for _, cc in calls)     # 10 evaluations per call
    times = karras_times(10, 0.4, 1e-5, 7.0)
    for i, (t, _) in enumerate(calls[:10]):
        assert t.shape == (3,) and torch.allclose(t.double(), times[i].expand(3), rtol=1e-6)
    # no noise on the last step: with a zero score and one step, x is the initial draw exactly
    x = sample_ve(lambda x, t, c: torch.zeros_like(x), (5,), steps=1,
                  generator=torch.Generator().manual_seed(7))
    x0 = torch.randn(5, generator=torch.Generator().manual_seed(7)) * ve_marginal_std(0.4)
    assert torch.equal(x, x0)
    # and with three steps, the variance is std(0.4)² plus the noise of the first two steps only
    tk = karras_times(3, 0.4)
    x = sample_ve(lambda x, t, c: torch.zeros_like(x), (20000,), steps=3,
                  generator=torch.Generator().manual_seed(8))
    expected = float(ve_marginal_std(0.4)) ** 2 + sum(
        float(ve_diffusion_coeff(tk[i]) ** 2 * (tk[i] - tk[i + 1])) for i in range(2))
    assert abs(x.var().item() / expected - 1) < 0.05


# ------------------------------------------------------------------ energy score and CRPS
def test_energy_score_exact_values():
    y = torch.zeros(1, 1)
    # samples {0, 1, 2}, target 0: E|X−y| = 1; the six ordered pairs average 4/3 → 1 − 2/3
    np.testing.assert_allclose(energy_score(torch.tensor([[[0.0]], [[1.0]], [[2.0]]]), y).item(),
                               1 / 3, rtol=1e-6)
    # samples {0, 1}, target 0: 0.5 − ½·1 = 0 (the fair estimator of a two-point ensemble)
    np.testing.assert_allclose(energy_score(torch.tensor([[[0.0]], [[1.0]]]), y).item(), 0.0,
                               atol=1e-7)
    # vectors: {(3,4), (3,4)} against (0,0) → 5 − 0; {(0,0), (3,4)} → 2.5 − 2.5
    y2 = torch.zeros(1, 2)
    np.testing.assert_allclose(energy_score(torch.tensor([[[3.0, 4.0]], [[3.0, 4.0]]]), y2)
                               .item(), 5.0, rtol=1e-6)
    np.testing.assert_allclose(energy_score(torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]]), y2)
                               .item(), 0.0, atol=1e-6)
    # zero spread and an exact match: 0, with finite (zero) gradients
    x = torch.ones(4, 3, 2, 5, requires_grad=True)
    es = energy_score(x, torch.ones(3, 2, 5))
    es.backward()
    assert es.item() == 0.0 and torch.isfinite(x.grad).all()
    # one member: the error norm
    np.testing.assert_allclose(energy_score(torch.tensor([[[3.0, 4.0]]]), y2).item(), 5.0)
    per = energy_score(torch.randn(3, 4, 2, 2), torch.randn(4, 2, 2), reduction="none")
    assert per.shape == (4,)
    with pytest.raises(ValueError, match="samples must have shape"):
        energy_score(torch.randn(3, 4, 2), torch.randn(5, 2))


def brute_energy(samples, target):
    m = samples.shape[0]
    X = samples.reshape(m, samples.shape[1], -1).double()
    y = target.reshape(target.shape[0], -1).double()
    skill = sum((X[i] - y).norm(dim=-1) for i in range(m)) / m
    spread = sum((X[i] - X[j]).norm(dim=-1) for i in range(m) for j in range(m) if i != j)
    return (skill - spread / (2 * m * (m - 1))).mean()


def test_energy_score_matches_the_definition_and_crps_in_one_dimension():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(5, 6, 3, 4, generator=g), torch.randn(6, 3, 4, generator=g)
    torch.testing.assert_close(energy_score(X, y).double(), brute_energy(X, y), rtol=1e-5,
                               atol=1e-6)
    Xs, ys = torch.randn(7, 10, generator=g), torch.randn(10, generator=g)
    torch.testing.assert_close(crps_ensemble(Xs, ys, reduction="none"),
                               energy_score(Xs[..., None], ys[..., None], reduction="none"),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(crps_ensemble(Xs, ys).double(),
                               brute_energy(Xs[..., None], ys[..., None]), rtol=1e-5, atol=1e-6)
    # CRPS of m = 1 is the absolute error
    torch.testing.assert_close(crps_ensemble(Xs[:1], ys, reduction="none"), (Xs[0] - ys).abs())


def test_crps_of_a_large_gaussian_ensemble_matches_the_closed_form():
    """CRPS(N(0,1), y) = y(2Φ(y) − 1) + 2φ(y) − 1/√π; the fair estimator is unbiased."""
    g = torch.Generator().manual_seed(3)
    y = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)
    X = torch.randn(40000, 9, generator=g, dtype=torch.float64)
    phi = torch.exp(-y**2 / 2) / math.sqrt(2 * math.pi)
    Phi = 0.5 * (1 + torch.erf(y / math.sqrt(2)))
    exact = y * (2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi)
    torch.testing.assert_close(crps_ensemble(X, y, reduction="none"), exact, atol=0.02, rtol=0)


def test_energy_score_is_proper():
    """In expectation the true distribution scores best against shifted, wider or narrower ones."""
    g = torch.Generator().manual_seed(7)
    B, m, d = 3000, 8, 3
    y = torch.randn(B, d, generator=g)
    z = torch.randn(m, B, d, generator=g)                       # shared draws: paired comparison
    true = energy_score(z, y).item()
    for name, X in (("shifted", z + 0.5), ("wider", 2.0 * z), ("narrower", 0.5 * z)):
        assert true < energy_score(X, y).item() - 0.02, name
    # CRPS likewise, for scalars
    assert crps_ensemble(z[..., 0], y[:, 0]) < crps_ensemble(z[..., 0] + 0.5, y[:, 0])


# ------------------------------------------------------------------ spectral loss, moments
def test_spectral_amplitude_loss():
    n = 8
    xx = np.arange(n)[None, :] * np.ones((n, 1))
    a = torch.from_numpy(3.0 * np.cos(2 * np.pi * 2 * xx / n)).float()[None, None]
    # one mode of |â| = 3/2 out of n·(n/2+1) half-plane coefficients
    np.testing.assert_allclose(spectral_amplitude_loss(a, torch.zeros_like(a)).item(),
                               1.5 / (n * (n // 2 + 1)), rtol=1e-6)
    # blind to shifts (phases), not to amplitudes
    b = torch.randn(2, 3, n, n)
    assert spectral_amplitude_loss(b, torch.roll(b, (3, 5), dims=(-2, -1))).item() < 1e-6
    assert spectral_amplitude_loss(b, 1.1 * b).item() > 1e-3
    with pytest.raises(ValueError, match="shapes differ"):
        spectral_amplitude_loss(b, b[..., :4])


def test_moment_penalty():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 2, 8, 8, generator=g)
    assert moment_penalty(z).item() < 1e-3
    assert moment_penalty(z, kind="kl").item() < 1e-3
    shifted = 2.0 + 3.0 * z                                     # μ = 2, s = 3 → 4 + 4
    np.testing.assert_allclose(moment_penalty(shifted).item(), 8.0, rtol=0.02)
    np.testing.assert_allclose(moment_penalty(shifted, kind="kl").item(),
                               0.5 * (4 + 9 - 1 - math.log(9)), rtol=0.02)
    # per channel: a good channel and a bad one average
    mixed = torch.cat([z[:, :1], 2.0 + z[:, 1:]], dim=1)
    np.testing.assert_allclose(moment_penalty(mixed).item(), 2.0, rtol=0.02)
    zz = z.clone().requires_grad_(True)
    (moment_penalty(3 * zz)).backward()
    assert torch.isfinite(zz.grad).all() and zz.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="kind"):
        moment_penalty(z, kind="other")
