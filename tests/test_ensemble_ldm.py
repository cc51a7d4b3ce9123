"""The latent diffusion ensemble generator: the VAE's KL term and reparameterisation against
closed forms, the DDPM's cosine schedule and one training step against closed forms, DDIM with
every step against ancestral sampling on a Gaussian toy, the order of DDIM and DPM-Solver++(2M)
against the exact flow map of a Gaussian, a tiny generator learning Gaussian
residuals of known spread, seeded ensembles, the ensemble mean's least-squares fit against the
Gaussian conditional mean and the members centred on it, and both modes end to end through
``hybrid train ensemble-ldm``, ``hybrid train ensemble-mean``, ``hybrid ensemble`` and ``hybrid
jets``. Tiny sizes, one CPU thread."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from closures.ensemble_ldm import (EnsembleGenerator, EnsembleLDM, EnsembleMean, ModelFileError,
                                   fit_ensemble_mean, load_ensemble_ldm, load_ensemble_mean,
                                   load_generator, mean_distance, save_ensemble_ldm,
                                   save_ensemble_mean, train_ensemble_ldm)
from closures.ensemble_ldm.data import ResidualWindows
from closures.ensemble_ldm.mean import lead_weights
from closures.nn.diffusion import DDPM, cosine_alpha_bar, ddim_timesteps, log_snr_timesteps
from closures.nn.vae import TEPCVAE, gaussian_kl, reparameterise

torch.set_num_threads(1)

N = 16                    # points of the tiny profiles; latents of N/4 = 4 points


# --- the VAE: KL term and reparameterisation ----------------------------------------------

def test_vae_kl_of_a_known_gaussian_posterior_and_reparameterisation_statistics():
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − ln σ²) per value; z = μ + σ ε has mean μ,
    variance σ², and E[(z − μ)²] has the derivative σ² with respect to ln σ²."""
    mu = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    var = torch.tensor([1.0, 0.25, 4.0], dtype=torch.float64)
    exact = [0.0, 0.5 * (1 + 0.25 - 1 - math.log(0.25)), 0.5 * (4 + 4 - 1 - math.log(4))]
    kl = gaussian_kl(mu, var.log(), reduction="none")
    np.testing.assert_allclose(kl.numpy(), exact, rtol=1e-14, atol=1e-15)
    assert float(gaussian_kl(mu, var.log())) == pytest.approx(np.mean(exact), rel=1e-14)
    assert float(gaussian_kl(mu, var.log(), "sum")) == pytest.approx(np.sum(exact), rel=1e-14)
    # reparameterised samples: their statistics and a Monte Carlo KL = E_q[ln q(z) − ln p(z)]
    B = 200_000
    g = torch.Generator().manual_seed(0)
    logvar = var.log().clone().requires_grad_(True)
    m = mu.clone().requires_grad_(True)
    z = reparameterise(m.expand(B, 3), logvar.expand(B, 3), g)
    se = (var / B).sqrt()
    assert torch.all((z.mean(0) - mu).abs() < 4 * se)
    assert torch.all((z.var(0) / var - 1).abs() < 4 * math.sqrt(2 / B))
    d = z.detach()
    log_q = -0.5 * ((d - mu) ** 2 / var + var.log() + math.log(2 * math.pi))
    log_p = -0.5 * (d ** 2 + math.log(2 * math.pi))
    mc = log_q - log_p
    assert torch.all((mc.mean(0) - kl).abs() <= 4 * mc.std(0) / math.sqrt(B) + 1e-12)
    gm, glv = torch.autograd.grad(((z - m) ** 2).mean(0).sum() + z.mean(0).sum(), (m, logvar))
    np.testing.assert_allclose(gm.numpy(), 1.0, atol=1e-12)           # ∂E[z]/∂μ = 1
    assert torch.all((glv / var - 1).abs() < 4 * math.sqrt(2 / B))     # ∂E[(z−μ)²]/∂ln σ² = σ²
    # the VAE with a known posterior: weights zero, the mode-0 biases give μ = 0.7, ln σ² = −1
    torch.manual_seed(0)
    vae = TEPCVAE(N).double()
    with torch.no_grad():
        vae.enc2.weight.zero_()
        vae.enc2.bias.zero_()
        vae.enc2.bias[0, 0, 0], vae.enc2.bias[1, 0, 0] = 0.7, -1.0
    u = torch.randn(64, N, dtype=torch.float64)
    post_mu, post_lv = vae.posterior(u)
    np.testing.assert_allclose(post_mu.detach().numpy(), 0.7, atol=1e-13)
    np.testing.assert_allclose(post_lv.detach().numpy(), -1.0, atol=1e-13)
    terms = vae.loss_terms(u, torch.Generator().manual_seed(1))
    assert terms["kl"].item() == pytest.approx(0.5 * (0.49 + math.exp(-1) - 1 + 1), rel=1e-12)
    assert terms["rec"].item() > 0


# --- the DDPM: schedule and one training step ---------------------------------------------

def test_ddpm_cosine_schedule_and_one_training_step_match_closed_forms():
    T = 1000
    d = DDPM(T).double()
    t = torch.arange(T + 1)
    f = torch.cos((t.double() / T + 0.008) / 1.008 * math.pi / 2) ** 2
    ab = d.alpha_bar
    np.testing.assert_allclose(ab[:T].numpy(), (f / f[0])[:T].numpy(), rtol=1e-10)
    np.testing.assert_allclose(ab[:T].numpy(), cosine_alpha_bar(t[:T], T).numpy(), rtol=1e-10)
    assert float(d.betas[T]) == 0.999 and float(d.betas[:T].max()) < 0.999
    assert ab[0] == 1 and torch.all(ab[1:] < ab[:-1]) and 0 < float(ab[T]) < 1e-8
    beta_tilde = d.betas[1:] * (1 - ab[:-1]) / (1 - ab[1:])
    np.testing.assert_allclose(d.posterior_variance(t[1:]).numpy(), beta_tilde.numpy())
    assert ddim_timesteps(T, T) == list(range(T, 0, -1))
    assert ddim_timesteps(T, 4) == [751, 501, 251, 1]
    # q(x_t | x_0) = N(√ᾱ x_0, 1 − ᾱ)
    x0 = torch.full((100_000, 1), 0.8, dtype=torch.float64)
    tt = torch.full((100_000,), 300)
    xt = d.q_sample(x0, tt, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0),
                                        dtype=torch.float64))
    a = float(ab[300])
    assert abs(float(xt.mean()) - math.sqrt(a) * 0.8) < 4 * math.sqrt((1 - a) / 1e5)
    assert abs(float(xt.var()) / (1 - a) - 1) < 4 * math.sqrt(2 / 1e5)
    # one SGD step of the scalar denoiser ε̂ = w·x_t: the loss, its gradient and the update
    s, B, lr = 1.5, 4096, 0.1
    x0 = s * torch.randn(B, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=lr)
    loss = d.loss(lambda x, t: w * x, x0, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)                    # the same draws, in the same order
    t_ = torch.randint(1, T + 1, (B,), generator=g)
    eps = torch.randn(B, 3, generator=g, dtype=torch.float64)
    ab_t = ab[t_][:, None]
    x_t = ab_t.sqrt() * x0 + (1 - ab_t).sqrt() * eps
    w0 = 0.3
    assert loss.item() == pytest.approx(float(((w0 * x_t - eps) ** 2).mean()), rel=1e-12)
    opt.zero_grad()
    loss.backward()
    grad = float((2 * (w0 * x_t - eps) * x_t).mean())
    assert float(w.grad) == pytest.approx(grad, rel=1e-10)
    opt.step()
    assert w.item() == pytest.approx(w0 - lr * grad, rel=1e-12)
    # at a fixed t the expected loss is w²(ᾱ s² + 1 − ᾱ) − 2w√(1 − ᾱ) + 1
    x0 = s * torch.randn(200_000, 1, generator=torch.Generator().manual_seed(3),
                         dtype=torch.float64)
    for t_fix in (50, 500, 950):
        a = float(ab[t_fix])
        per = d.loss(lambda x, t: w0 * x, x0, torch.Generator().manual_seed(4),
                     t=torch.full((len(x0),), t_fix))
        exact = w0 ** 2 * (a * s * s + 1 - a) - 2 * w0 * math.sqrt(1 - a) + 1
        assert per.item() == pytest.approx(exact, rel=0.02)


# --- DDIM against ancestral sampling on a Gaussian toy ------------------------------------

def test_ddim_with_every_step_reproduces_the_ancestral_mean_on_a_gaussian_toy():
    """Data N(μ, s²) per value, the exact noise predictor
    E[ε | x_t] = √(1 − ᾱ)(x_t − √ᾱ μ)/(ᾱ s² + 1 − ᾱ)."""
    T, B = 200, 20_000
    d = DDPM(T).double()
    mu = torch.tensor([1.0, -0.5, 0.0], dtype=torch.float64)
    s = torch.tensor([0.5, 1.0, 1.2], dtype=torch.float64)

    def eps_fn(x, t):
        a = d.alpha_bar[t][:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s * s + 1 - a)

    anc = d.sample(eps_fn, (B, 3), torch.Generator().manual_seed(0), method="ancestral",
                   dtype=torch.float64)
    ddim = d.sample(eps_fn, (B, 3), torch.Generator().manual_seed(1), method="ddim",
                    sample_steps=T, dtype=torch.float64)
    se = s / math.sqrt(B)
    assert torch.all((anc.mean(0) - ddim.mean(0)).abs() < 4 * math.sqrt(2) * se)
    for x in (anc, ddim):
        assert torch.all((x.mean(0) - mu).abs() < 4 * se)
        assert torch.all((x.std(0) / s - 1).abs() < 0.03)
    # fewer steps: DDIM starts from N(0, I) at τ_S = 196 (√ᾱ ≈ 0.03) and integrates coarsely;
    # with 50 steps the mean is within 0.05 s and the spread 1-3 % low (measured), 10 steps
    # about 10 % low
    few = d.sample(eps_fn, (B, 3), torch.Generator().manual_seed(2), method="ddim",
                   sample_steps=50, dtype=torch.float64)
    assert torch.all((few.mean(0) - mu).abs() < 0.05 * s)
    assert torch.all((few.std(0) / s - 1).abs() < 0.05)
    # DDIM is deterministic given its start; with η = 1 and every step it is the ancestral
    # sampler, step for step, on the same noise
    z = torch.randn(T, 64, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(d.ddim(eps_fn, z[0], T), d.ddim(eps_fn, z[0].clone(), T))
    np.testing.assert_allclose(d.ddim(eps_fn, z[0], T, eta=1.0, noise=z[1:]).numpy(),
                               d.ancestral(eps_fn, z[0], z[1:]).numpy(), rtol=0, atol=1e-10)
    assert not torch.allclose(d.ddim(eps_fn, z[0], T), d.ancestral(eps_fn, z[0], z[1:]))


def gaussian_toy(T: int):
    """(a float64 DDPM of T steps, μ, s, the exact noise predictor ε̂(x, t) of data N(μ, s²) per
    value) for four values."""
    d = DDPM(T).double()
    mu = torch.tensor([1.0, -0.5, 0.0, 0.3], dtype=torch.float64)
    s = torch.tensor([0.5, 1.0, 1.2, 0.1], dtype=torch.float64)

    def eps_fn(x, t):
        a = d.alpha_bar[t][:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s * s + 1 - a)

    return d, mu, s, eps_fn


def test_dpm_solver_2m_is_second_order_where_ddim_is_first_on_a_gaussian_flow_map():
    """Data N(μ, s²) per value and the exact noise predictor: the probability-flow ODE maps a start
    x at τ to μ + s (x − √ᾱ μ)/√(ᾱ s² + 1 − ᾱ) (it keeps every quantile of the marginal), so the
    samplers' integration error is known exactly, start by start."""
    T = 1000
    d, mu, s, eps_fn = gaussian_toy(T)
    z = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    err, spread = {}, {}
    for S in (10, 20, 40, 80):
        taus = log_snr_timesteps(d.alpha_bar, S)
        assert taus[0] == ddim_timesteps(T, S)[0] and taus[-1] == 1 and len(taus) == S
        assert all(a > b for a, b in zip(taus, taus[1:]))
        a = d.alpha_bar[taus[0]]
        exact = mu + s * (z - a.sqrt() * mu) / (a * s * s + 1 - a).sqrt()
        for method in ("ddim", "dpm2m"):
            x = getattr(d, method)(eps_fn, z, S)
            err[method, S] = float((x - exact).abs().max())
            spread[method, S] = (x.std(0) / exact.std(0)).numpy()
    for S in (20, 40):          # halving the step: DDIM's error halves, 2M's drops ≈ 4× (3.3–3.5)
        assert 1.8 < err["ddim", S] / err["ddim", 2 * S] < 2.2
        assert 3.0 < err["dpm2m", S] / err["dpm2m", 2 * S] < 4.5
    assert np.all(np.abs(spread["dpm2m", 10] - 1) < 0.03)
    assert np.all(spread["ddim", 10] < 0.91)                 # DDIM is 10–46 % low at 10 steps
    assert err["dpm2m", 10] < 0.25 * err["ddim", 10]
    # λ-even steps: the gaps in λ are equal up to rounding to whole steps
    lam = 0.5 * (d.alpha_bar.log() - torch.log1p(-d.alpha_bar))
    gaps = np.diff(lam[log_snr_timesteps(d.alpha_bar, 20)].numpy())
    assert np.all(np.abs(gaps / gaps.mean() - 1) < 0.15)
    assert log_snr_timesteps(d.alpha_bar, 1) == [1]
    assert log_snr_timesteps(d.alpha_bar, T) == list(range(T, 0, -1))


def test_distillation_makes_one_student_step_of_two_teacher_steps_on_a_gaussian():
    """Data N(μ, s²) and the exact noise predictor as teacher (8 DDIM steps): a student whose
    noise prediction is the teacher's times (1 + a) plus b, one (a, b) per value and student
    step, can do each pair of teacher steps in one exactly (DDIM steps are affine in x here), so
    training it on :func:`distillation_loss` must drive its 4-step map onto the teacher's 8-step
    map from the same starts; before, the 4 steps miss it by about 0.08 (10 % of the spread).
    DDIM on given steps is DDIM on the 'leading' steps when they are those."""
    from closures.ensemble_ldm.distil import distillation_loss, student_timesteps
    T = 1000
    d, mu, s, teacher = gaussian_toy(T)
    taus = ddim_timesteps(T, 8)
    steps = student_timesteps(taus, 2)
    assert steps == taus[::2] and len(steps) == 4
    index = {t: k for k, t in enumerate(steps)}
    a = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)

    def student(x, t):
        k = torch.tensor([index[int(v)] for v in t])
        return teacher(x, t) * (1 + a[k]) + b[k]

    z = torch.randn(2000, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = d.ddim(teacher, z, 8)
    np.testing.assert_array_equal(d.ddim(teacher, z, 8, taus=taus).numpy(), ref.numpy())

    def miss():
        with torch.no_grad():
            return float((d.ddim(student, z, 4, taus=steps) - ref).pow(2).mean().sqrt())

    before = miss()
    assert 0.05 < before < 0.12
    opt = torch.optim.Adam([a, b], lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        loss = distillation_loss(d, student, teacher, taus, 2,
                                 mu + s * torch.randn(256, 4, generator=g, dtype=torch.float64),
                                 g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert miss() < 1e-4 * before
    with pytest.raises(ValueError, match="does not divide"):
        student_timesteps(taus, 3)
    with pytest.raises(ValueError, match="descending distinct steps"):
        d.ddim(teacher, z, 2, taus=[5, 5])
    with pytest.raises(ValueError, match="DDIM schedule"):
        d.sample(teacher, (2, 4), method="dpm2m", taus=[5, 1])


# --- a tiny generator learns residuals of known spread ------------------------------------

def test_a_tiny_generator_learns_gaussian_residuals_of_known_spread():
    """Members z = z_c + σ ε around a conditioning signal z_c(t) = A cos(2πj/m + 0.3t + φ) with
    amplitude A ∈ {1, 2} and σ = 0.3 A: the learned residuals have the right spread for both
    amplitudes (so the spread follows the conditioning) and zero mean."""
    torch.manual_seed(0)
    model = EnsembleLDM(N, mode="autoregressive", context=1, width=32, heads=4, layers=1,
                        hidden=64, time_dim=16, diffusion_steps=100)
    S, M, T, m = 8, 9, 24, model.latent_points
    g = torch.Generator().manual_seed(1)
    A = torch.tensor([1.0, 2.0]).repeat(S // 2)
    j, t = torch.arange(m), torch.arange(T)
    phase = 2 * math.pi * torch.rand(S, generator=g)
    zc = A[:, None, None] * torch.cos(2 * math.pi * j / m + 0.3 * t[:, None]
                                      + phase[:, None, None])
    eps = 0.3 * A[:, None, None, None] * torch.randn(S, M, T, m, generator=g)
    eps[:, 0], eps[:, :, 0] = 0, 0                      # the conditioning run; the common start
    z = zc[:, None] + eps
    w = ResidualWindows(z, model.context, model.horizon)
    model.set_scales(z, w.residuals())
    opt = torch.optim.Adam(model.denoiser.parameters(), lr=3e-3)
    gn = torch.Generator().manual_seed(2)
    for it in range(1200):
        if it == 840:
            opt.param_groups[0]["lr"] = 1e-3
        ctx, tgt, cond = w.batch(torch.randint(0, len(w), (256,), generator=gn))
        loss = model.diffusion_terms(ctx, tgt, cond, gn)["noise"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for start, amplitude in ((0, 1.0), (1, 2.0)):
            idx = torch.tensor([start * (M - 1) * (T - 1) + 5])
            ctx, _, cond = (v.expand(4000, -1, -1) for v in w.batch(idx))
            x = model.sample_residuals(ctx, cond, torch.Generator().manual_seed(3),
                                       sample_steps=20)
            assert abs(float(x.std()) / (0.3 * amplitude) - 1) < 0.15, x.std()   # 0.99–1.05
            assert abs(float(x.mean())) < 0.1 * 0.3 * amplitude
            # ancestral sampling (every step) learns the same spread
            if amplitude == 2.0:
                x = model.sample_residuals(ctx[:1000], cond[:1000],
                                           torch.Generator().manual_seed(4), method="ancestral")
                assert abs(float(x.std()) / (0.3 * amplitude) - 1) < 0.15, x.std()


# --- seeded ensembles ---------------------------------------------------------------------

def tiny_model(mode: str, seed: int = 0) -> EnsembleLDM:
    torch.manual_seed(seed)
    model = EnsembleLDM(N, mode=mode, context=2, horizon=None if mode == "autoregressive"
                        else 4, width=16, heads=2, layers=1, hidden=16, time_dim=8,
                        diffusion_steps=50, stats={"mean": 0.1, "std": 0.5})
    model.latent_scale.fill_(0.8)
    model.residual_scale.fill_(0.3)
    return model.eval()


@pytest.mark.parametrize("mode", ["autoregressive", "window"])
def test_same_seed_same_ensemble(mode):
    gen = EnsembleGenerator(tiny_model(mode))
    y = np.arange(N) * 2 * np.pi / N
    Uc = np.cos(2 * y)[None] + 0.1 * np.sin(0.2 * np.arange(11))[:, None]       # (T = 11, n)
    a = gen.generate(Uc, 5, seed=3, steps=10)
    b = gen.generate(Uc, 5, seed=3, steps=10)
    assert a.shape == (5, 11, N) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)                                  # bit for bit
    c = gen.generate(Uc, 5, seed=4, steps=10)
    assert float(np.abs(a[:, 1:] - c[:, 1:]).min()) > 0                   # another seed
    assert float(np.abs(a[0, 1:] - a[1, 1:]).min()) > 0                   # members differ
    np.testing.assert_array_equal(a[:, 0], np.broadcast_to(Uc[0].astype(np.float32), (5, N)))
    # member k's draws are its own: batches of 2 and a smaller ensemble give the same members
    np.testing.assert_allclose(gen.generate(Uc, 5, seed=3, steps=10, batch=2), a, atol=1e-5)
    np.testing.assert_allclose(gen.generate(Uc, 3, seed=3, steps=10), a[:3], atol=1e-5)
    anc = gen.generate(Uc, 2, seed=3, method="ancestral")
    np.testing.assert_array_equal(anc, gen.generate(Uc, 2, seed=3, method="ancestral"))
    with pytest.raises(ValueError, match="conditioning_U must have shape"):
        gen.generate(Uc[:, :8], 2)
    with pytest.raises(ValueError, match="steps must be an integer in"):
        gen.generate(Uc, 2, steps=51)
    # residual gain: 1 is the default draw bit for bit; 0 puts every member on the decoded
    # conditioning run; the card's online value is the default; a negative gain is refused
    np.testing.assert_array_equal(gen.generate(Uc, 5, seed=3, steps=10, residual_gain=1.0), a)
    flat = gen.generate(Uc, 3, seed=3, steps=10, residual_gain=0.0)
    m = gen.model
    with torch.no_grad():
        zc = m.encode(m.normalise(torch.as_tensor(Uc, dtype=torch.float32)))
        centre = m.denormalise(m.decode(zc[None, 1:]))[0].detach().numpy()
    np.testing.assert_allclose(flat[:, 1:], np.broadcast_to(centre, (3, 10, N)), atol=1e-6)
    gen.model.card = {"online": {"residual_gain": 0.0}}
    np.testing.assert_array_equal(gen.generate(Uc, 3, seed=3, steps=10), flat)
    with pytest.raises(ValueError, match="residual_gain"):
        gen.generate(Uc, 2, residual_gain=-0.5)
    # the default batch: ⌊4096/(K + H)⌋ members, at most the ensemble, and the members it makes
    # are those of one batch; the sampler comes from the card unless given
    K, H = m.context, m.horizon
    assert gen.default_batch(10_000) == 4096 // (K + H) and gen.default_batch(3) == 3
    gen.model.card = {"sampler": {"method": "dpm2m", "steps": 10}}
    two_m = gen.generate(Uc, 5, seed=3)
    np.testing.assert_array_equal(two_m, gen.generate(Uc, 5, seed=3, method="dpm2m", steps=10))
    np.testing.assert_allclose(gen.generate(Uc, 5, seed=3, batch=5), two_m, atol=1e-5)
    assert float(np.abs(two_m[:, 1:] - a[:, 1:]).max()) > 1e-4            # not DDIM's
    with pytest.raises(ValueError, match="method must be one of"):
        gen.generate(Uc, 2, method="euler")


# --- the ensemble mean, and members centred on it ----------------------------------------

def gaussian_starts(starts: int, seed: int, members: int = 5, times: int = 6,
                    var_shared: float = 0.5) -> np.ndarray:
    """(starts, members, times, N): every member starts from x0 ~ N(0, 1) (white in y), then
    x_k(t) = d(t)·x0 + η(t) + e_k(t), d(t) = exp(−0.3 t), η ~ N(0, var_shared) shared by the
    members, e_k ~ N(0, 1) their own; η and e white in t and y."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((starts, 1, 1, N))
    d = np.exp(-0.3 * np.arange(times))[None, None, :, None]
    eta = math.sqrt(var_shared) * rng.standard_normal((starts, 1, times, N))
    X = d * x0 + eta + rng.standard_normal((starts, members, times, N))
    X[:, :, 0] = x0[:, :, 0]
    return X


def assert_shift_and_reflection_commute(model, uc, atol: float) -> np.ndarray:
    """m̂ of ``uc``, after checking that shifting y by 3 points and reflecting y → −y
    (y_j → y_{−j}) commute with it to ``atol``."""
    m_hat = model.predict(uc)
    np.testing.assert_allclose(model.predict(np.roll(uc, 3, axis=1)), np.roll(m_hat, 3, axis=1),
                               atol=atol)
    flip = lambda u: np.roll(u[..., ::-1], 1, axis=-1)
    np.testing.assert_allclose(model.predict(flip(uc)), flip(m_hat), atol=atol)
    return m_hat


def test_the_ensemble_mean_fit_is_the_gaussian_conditional_mean():
    """With members d·x0 + η + e_k, the ensemble mean given the conditioning run x_c and x0 is
    E[d·x0 + η | x_c, x0] = d·x0 + s·(x_c − d·x0), s = var η/(var η + var e) = 1/3: the fitted
    a_0(t) → s and b(t) → d(t)(1 − s) for every mode, the older records of x_c carry nothing
    (a_j → 0; at leads t ≤ j, where x_c(t − j) is x0, they share b's weight), and on new
    starts m̂ lies at the predicted distance from the mean of the other 4 members m̄:
    E|m̂ − m̄|² / E|x_c − m̄|² = (1/3 + 1/4)/(1 + 1/4)."""
    U = gaussian_starts(400, seed=0)
    model = fit_ensemble_mean(U, lags=2, ridge=0.0, pool=0, width=0)
    c = model.coef.numpy()                                            # (leads, K, 4)
    d = np.exp(-0.3 * np.arange(1, 6))[:, None]
    s = 0.5 / 1.5
    assert np.abs(c[1:, :, 0] - s).max() < 0.1                        # a_0: SE ≈ 0.025
    assert np.abs(c[3:, :, 3] - d[2:] * (1 - s)).max() < 0.1         # b
    assert np.abs(c[3:, :, 1:3]).max() < 0.1                          # a_1, a_2
    x0_weight = [c[1, :, 1:].sum(-1), c[2, :, 2:].sum(-1)]           # t = 1, 2
    assert np.abs(np.stack(x0_weight) - d[:2] * (1 - s)).max() < 0.1
    test = gaussian_starts(400, seed=1)
    assert mean_distance(model, test) == pytest.approx(math.sqrt((1 / 3 + 1 / 4) / 1.25),
                                                       abs=0.02)
    assert model.card["metrics"]["train_distance"] < 0.72
    # the shift of y and the reflection y → −y commute with m̂; leads past the fitted ones use
    # the last fitted lead's coefficients
    uc = test[0, 0]
    m_hat = assert_shift_and_reflection_commute(model, uc, atol=1e-12)
    longer = np.concatenate([uc, uc[-1:] + 1.0])
    np.testing.assert_allclose(model.predict(longer)[:6], m_hat, atol=1e-12)
    A = model.features(longer)[6]
    np.testing.assert_allclose(model.predict(longer)[6],
                               np.fft.irfft(np.sum(A * c[5], axis=-1), n=N), atol=1e-12)
    with pytest.raises(ValueError, match="at least one more member"):
        fit_ensemble_mean(U[:, :1])
    with pytest.raises(ValueError, match="conditioning_U must have shape"):
        model.predict(uc[:, :8])


def squared_mean_starts(starts: int, seed: int, members: int = 5, times: int = 4) -> np.ndarray:
    """(starts, members, times, N): x0 ~ N(0, 1) white in y at record 0, then every member is
    x_k(t) = x0² − 1 + e_k(t), e_k ~ N(0, 1) white in t and y: the ensemble mean x0² − 1 is a
    pointwise nonlinear function of the common state, uncorrelated with x0."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((starts, 1, 1, N))
    X = x0 ** 2 - 1 + rng.standard_normal((starts, members, times, N))
    X[:, :, 0] = x0[:, :, 0]
    return X


def test_the_convolutional_correction_learns_a_nonlinear_ensemble_mean(tmp_path):
    """With members x0² − 1 + e_k, the best linear estimate from x_c(t) and x0 is s·x_c(t),
    s = var(x0²)/(var(x0²) + 1) = 2/3, at the distance √((2/9 + 4/9 + 1/4)/(1 + 1/4)) = 0.856
    from the mean of the other 4 members; the exact mean x0² − 1 is at √((1/4)/(1 + 1/4)) =
    0.447 (that mean's own noise). The linear part lands on the first, the corrected estimate
    close to the second. The correction keeps the shift and reflection symmetries and the
    linear part's y-mean, starts at zero, is the same for the same seed, and saves and loads
    bit for bit; its loss weights are 1/s²(t) of the members' spread s(t)."""
    U = squared_mean_starts(300, seed=0)
    linear = fit_ensemble_mean(U, lags=0, ridge=0.0, pool=2, width=0)
    test = squared_mean_starts(300, seed=1)
    assert mean_distance(linear, test) == pytest.approx(math.sqrt((2 / 9 + 4 / 9 + 0.25) / 1.25),
                                                        abs=0.03)
    model = fit_ensemble_mean(U, lags=0, ridge=0.0, pool=2, width=16, layers=3, epochs=40,
                              val_fraction=0.2, seed=4)
    assert mean_distance(model, test, linear=True) == pytest.approx(
        mean_distance(linear, test), abs=0.03)                        # 4/5 of the same starts
    floor = math.sqrt(0.25 / 1.25)
    assert floor < mean_distance(model, test) < floor + 0.05
    log = model.card["metrics"]["epochs"]
    assert model.card["metrics"]["val_distance"] == min(e["val_distance"] for e in log)
    uc = test[0, 0]
    m_hat = assert_shift_and_reflection_commute(model, uc, atol=1e-5)      # float32 network
    np.testing.assert_allclose(m_hat.mean(-1), model.linear(uc).mean(-1), atol=1e-6)  # y-mean
    fresh = EnsembleMean(N, lags=0, leads=4, width=16, layers=3)
    fresh.coef.copy_(model.coef)
    np.testing.assert_array_equal(fresh.predict(uc), model.linear(uc))   # starts at zero
    short = [fit_ensemble_mean(U, lags=0, ridge=0.0, pool=2, width=16, layers=3, epochs=2,
                               val_fraction=0.2, seed=4).predict(uc) for _ in range(2)]
    np.testing.assert_array_equal(short[0], short[1])                 # same seed, same model
    # the loss weights 1/s²(t): members spread by 1, 2, 4 at leads 1, 2, 3
    rng = np.random.default_rng(2)
    spread = rng.standard_normal((50, 9, 4, N)) * np.array([0.0, 1.0, 2.0, 4.0])[:, None]
    w = 1 / np.array([1.0, 4.0, 16.0])
    np.testing.assert_allclose(lead_weights(spread), w / w.mean(), rtol=0.05)
    np.testing.assert_array_equal(lead_weights(spread[:, :2]), np.ones(3))    # one member
    save_ensemble_mean(model, tmp_path / "m")
    loaded = load_ensemble_mean(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(uc), m_hat)
    assert loaded.config == {"points": N, "lags": 0, "leads": 4, "width": 16, "layers": 3}


def test_members_centred_on_the_ensemble_mean(tmp_path):
    """Centred members have m̂ as their mean at every record after the first and keep their
    deviations from their mean; uncentred generation is unchanged; a saved mean loads bit for
    bit (weights_only), and the generator card's online.centre attaches it."""
    mean = EnsembleMean(N, lags=1, leads=4)
    torch.manual_seed(1)
    mean.coef.copy_(0.5 * torch.rand_like(mean.coef))
    stem = tmp_path / "mean"
    save_ensemble_mean(mean, stem, {"data": {"interval": 1.0}})
    loaded = load_ensemble_mean(stem)
    assert torch.equal(loaded.coef, mean.coef) and loaded.interval == 1.0
    y = np.arange(N) * 2 * np.pi / N
    Uc = np.cos(2 * y)[None] + 0.1 * np.sin(0.2 * np.arange(11))[:, None]
    plain = EnsembleGenerator(tiny_model("window"))
    gen = EnsembleGenerator(tiny_model("window"), mean=loaded)
    a = plain.generate(Uc, 5, seed=3, steps=10)
    np.testing.assert_array_equal(gen.generate(Uc, 5, seed=3, steps=10, centre=False), a)
    X = gen.generate(Uc, 5, seed=3, steps=10)
    np.testing.assert_array_equal(X[:, 0], a[:, 0])
    np.testing.assert_allclose(X[:, 1:].mean(axis=0), loaded.predict(Uc)[1:], atol=1e-5)
    np.testing.assert_allclose(X - X.mean(axis=0), a - a.mean(axis=0), atol=1e-5)
    with pytest.raises(ValueError, match="members must be ≥ 2"):
        gen.generate(Uc, 1)
    with pytest.raises(ValueError, match="has no ensemble mean"):
        plain.generate(Uc, 2, centre=True)
    with pytest.raises(ValueError, match="8-point profiles for a generator of 16"):
        EnsembleGenerator(tiny_model("window"), mean=EnsembleMean(8))
    save_ensemble_ldm(tiny_model("window"), tmp_path / "g", {"online": {"centre": str(stem)}})
    assert load_generator(tmp_path / "g").mean.name == str(stem)
    assert load_generator(tmp_path / "g", mean=None).mean is None
    with pytest.raises(ModelFileError, match="is not a 'hybrid-ensemble-mean-card' card"):
        load_ensemble_mean(tmp_path / "g")


def test_a_spread_scale_keeps_the_mean_and_is_fitted_back_from_known_data():
    """generate(spread_scale=s) multiplies every member's deviation from the ensemble mean at
    record t by s(t) (the last value beyond the list) and keeps the mean; fitted on starts whose
    DNS members are the generator's own members spread by a known c(t) = 0.6 + 0.02 t, the scale
    comes back as c within 10 % (the variance ratio of 6 starts × 7 members, 16 points)."""
    from closures.ensemble_ldm.spread import fit_spread_scale, smooth_ratio
    gen = EnsembleGenerator(tiny_model("window"))
    y = np.arange(N) * 2 * np.pi / N
    Uc = np.cos(2 * y)[None] + 0.1 * np.sin(0.2 * np.arange(11))[:, None]
    a = gen.generate(Uc, 5, seed=3, steps=10)
    s = [0.5, 2.0, 1.5]
    b = gen.generate(Uc, 5, seed=3, steps=10, spread_scale=s)
    np.testing.assert_allclose(b.mean(axis=0), a.mean(axis=0), atol=1e-5)
    full = np.array(s + [1.5] * 7)[:, None]
    np.testing.assert_allclose(b[:, 1:] - b[:, 1:].mean(axis=0),
                               full * (a[:, 1:] - a[:, 1:].mean(axis=0)), atol=1e-5)
    np.testing.assert_array_equal(gen.generate(Uc, 5, seed=3, steps=10, spread_scale=[]), a)
    with pytest.raises(ValueError, match="members must be ≥ 2"):
        gen.generate(Uc, 1, spread_scale=[1.0])
    with pytest.raises(ValueError, match="spread_scale"):
        gen.generate(Uc, 2, spread_scale=[0.0])
    gen.model.card = {"online": {"spread_scale": s}}
    np.testing.assert_array_equal(gen.generate(Uc, 5, seed=3, steps=10), b)
    gen.model.card = {}
    c = (0.6 + 0.02 * np.arange(1, 11))[:, None]
    starts = []
    for k in range(6):
        uc = np.cos(2 * y + k)[None] + 0.1 * np.sin(0.2 * np.arange(11) + k)[:, None]
        X = gen.generate(uc, 7, seed=50 + k, steps=10).astype(np.float64)
        X[:, 1:] = X[:, 1:].mean(axis=0) + c * (X[:, 1:] - X[:, 1:].mean(axis=0))
        starts.append(np.concatenate([uc[None], X]))
    scale, raw = fit_spread_scale(gen, np.stack(starts), members=8, steps=10)
    assert len(scale) == len(raw) == 10
    np.testing.assert_allclose(scale, c[:, 0], rtol=0.1)
    np.testing.assert_allclose(smooth_ratio([1.0, 4.0, 9.0, 16.0], 2), [1, 4, 9, 16], atol=1e-9)


# --- both modes end to end ----------------------------------------------------------------

@pytest.fixture(scope="module")
def starts(tmp_path_factory):
    """Three ensembles of a tiny beta-plane run from common states: 3 members each, 12 saves
    of 16 points, every member from the start state with its own forcing noise."""
    from solvers import BetaPlane
    from solvers.io import TrajectoryWriter
    kw = dict(n=N, dt=0.5, epsilon=1e-3, kf=4, kf_width=1.0)
    spin = BetaPlane(members=1, seed=0, **kw)
    folder = tmp_path_factory.mktemp("starts")
    paths = []
    for k in range(3):
        spin.step(20)
        s = BetaPlane(members=3, seed=10 + k, **kw)
        s.set_vorticity(spin.vorticity[0])
        s.t = spin.t
        path = folder / f"start{k}.nc"
        with TrajectoryWriter(path, s, record="zonal-mean") as w:
            w.write()
            for _ in range(11):
                s.step(2)
                w.write()
        paths.append(path)
    return paths


@pytest.mark.parametrize("mode", ["autoregressive", "window"])
def test_both_modes_end_to_end_through_hybrid_ensemble_and_hybrid_jets(tmp_path, starts, mode,
                                                                      capsys):
    from hybrid.cli import main
    from hybrid.jets import read_profiles
    stem = tmp_path / "m"
    small = ["--mode", mode, "--epochs", "2", "--batch", "64", "--width", "16", "--heads", "2",
             "--layers", "1", "--hidden", "16", "--time-dim", "8", "--context", "2",
             "--diffusion-steps", "50", "--eval-steps", "10", "--samples-eval", "4",
             "--val-fraction", "0.34", "--threads", "1", "--no-progress"]
    if mode == "window":
        small += ["--horizon", "4"]
    argv = ["train", "ensemble-ldm", "--data", *map(str, starts[:2]), "--out", str(stem), *small]
    assert main(argv) == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    assert printed["offline"]["split"] == "val" and printed["offline"]["spread_dns"] > 0
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["format"] == "hybrid-ensemble-ldm-card" and card["config"]["mode"] == mode
    assert card["data"]["train_starts"] == 1 and card["data"]["val_starts"] == 1
    assert card["command"].startswith("hybrid train ensemble-ldm --data")
    log = [json.loads(s) for s in (tmp_path / "m.log.jsonl").read_text().splitlines()]
    assert [r.get("phase") for r in log[:2]] == ["vae", "diffusion"] and log[-1]["final"]
    # stopped after the VAE phase and resumed: the same weights as the command's, bit for bit
    kw = dict(mode=mode, epochs=2, batch=64, width=16, heads=2, layers=1, hidden=16,
              time_dim=8, context=2, horizon=4 if mode == "window" else None,
              diffusion_steps=50, eval_steps=10, samples_eval=4, val_fraction=0.34, threads=1,
              progress=False)
    assert train_ensemble_ldm(starts[:2], tmp_path / "cut", stop_after=1, **kw)["stopped"]
    assert not (tmp_path / "cut.pt").exists()
    train_ensemble_ldm(starts[:2], tmp_path / "cut", resume=True, **kw)
    a, b = load_ensemble_ldm(stem), load_ensemble_ldm(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    # generate around member 0 of the held-out start and score it with hybrid jets
    test = starts[2]
    out = tmp_path / "ens"
    args = ["ensemble", str(test), "--model", str(stem), "--members", "4", "--out", str(out),
            "--seed", "2", "--steps", "10", "--threads", "1"]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["members"] == 4 and summary["records"] == 12 and summary["mode"] == mode
    src, emu = read_profiles(test), read_profiles(out)                  # the run folder
    assert emu["U"].shape == (4, 12, N) and np.allclose(emu["t"], src["t"])
    np.testing.assert_array_equal(emu["U"][:, 0], np.broadcast_to(src["U"][0, 0], (4, N)))
    ref = load_generator(stem).generate(src["U"][0], 4, seed=2, steps=10)
    np.testing.assert_array_equal(emu["U"], ref)                          # the seeded ensemble
    assert emu["config"]["emulator"]["model"] == "ensemble-ldm"
    assert all((out / f).is_file() for f in ("hovmoller.png", "statistics.png",
                                             "emulation.json"))
    jets = tmp_path / "jets"
    assert main(["jets", str(out), str(test), "--truth-member", "1", "--out", str(jets),
                 "--bootstrap", "50"]) == 0, capsys.readouterr().err
    rep = json.loads((jets / "jets.json").read_text())
    assert rep["ensemble"] is not None and rep["ensemble"]["truth_member"] == 1
    assert rep["pdfs"]["U"]["hellinger"] is not None
    capsys.readouterr()
    # the ensemble mean, fitted on the training starts, and the members centred on it
    mean = tmp_path / "mean"
    fit = ["train", "ensemble-mean", "--data", *map(str, starts[:2]), "--out", str(mean),
           "--lags", "1", "--pool", "1", "--val-fraction", "0.34", "--width", "4", "--layers",
           "2", "--epochs", "2", "--threads", "1"]
    assert main([*fit, "--linear"]) == 2 and "--linear" in capsys.readouterr().err
    assert main(fit) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["metrics"]["val_distance"] > 0
    card = json.loads((tmp_path / "mean.json").read_text())
    assert card["format"] == "hybrid-ensemble-mean-card" and card["fit"]["lags"] == 1
    assert card["config"]["width"] == 4 and len(card["metrics"]["epochs"]) == 2
    assert card["data"]["train_starts"] == 1 and card["command"].startswith("hybrid train")
    assert main([*fit, "--resume"]) == 2 and "--resume" in capsys.readouterr().err
    assert main(fit) == 2 and "--out" in capsys.readouterr().err            # outputs exist
    centred = tmp_path / "centred"
    assert main([*args[:7], str(centred), *args[8:], "--centre", str(mean)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["centre"] == str(mean) and printed["spread_scale"] == []
    X = read_profiles(centred)["U"]
    np.testing.assert_allclose(X[:, 1:].mean(axis=0),
                               load_ensemble_mean(mean).predict(src["U"][0])[1:], atol=1e-5)
    np.testing.assert_allclose(X - X.mean(axis=0), ref - ref.mean(axis=0), atol=1e-5)
    # distilled: the student samples on every other of the teacher's 10 DDIM steps
    student = tmp_path / "student"
    distil = ["train", "ensemble-ldm", "--data", *map(str, starts[:2]), "--out", str(student),
              "--distil-from", str(stem), "--epochs", "1", "--batch", "64",
              "--samples-eval", "4", "--val-fraction", "0.34", "--threads", "1",
              "--no-progress"]
    assert main(distil) == 0, capsys.readouterr().err
    capsys.readouterr()
    card = json.loads((tmp_path / "student.json").read_text())
    teacher_steps = [1 + (i * 50) // 10 for i in range(9, -1, -1)]
    assert card["sampler"]["timesteps"] == teacher_steps[::2] and card["sampler"]["steps"] == 5
    assert card["distillation"]["factor"] == 2 and card["config"] == load_ensemble_ldm(
        stem).config
    gen = load_generator(student)
    assert gen.sample_steps() == 5 and gen.timesteps("ddim", 5) == teacher_steps[::2]
    assert gen.timesteps("ddim", 4) is None and gen.timesteps("dpm2m", 5) is None
    for extra, flag in [(["--width", "8"], "--width"), (["--distil-factor", "3"],
                                                        "--distil-factor"),
                        (["--distil-from", str(tmp_path / "none")], "--distil-from")]:
        assert main([*distil[:6], str(tmp_path / "bad3"), *distil[7:], *extra]) == 2
        assert flag in capsys.readouterr().err
    assert main([*train_bad_stub(starts, tmp_path), "--distil-factor", "2"]) == 2
    assert "needs --distil-from" in capsys.readouterr().err
    assert not (tmp_path / "bad3").exists()
    for extra, flag in [(["--centre", str(tmp_path / "none")], "--centre"),
                        (["--centre", str(mean), "--members", "1"], "--members")]:
        assert main([*args[:7], str(tmp_path / "bad2"), *args[8:], *extra]) == 2
        assert flag in capsys.readouterr().err
    assert not (tmp_path / "bad2").exists()
    # bad input exits 2 naming the flag, and writes nothing
    bad = tmp_path / "bad"
    gen_bad = ["ensemble", str(test), "--model", str(stem), "--members", "2", "--out", str(bad)]
    for extra, flag in [(["--member", "7"], "--member"), (["--at", "999"], "--at"),
                        (["--steps", "51"], "--steps"),
                        (["--t-end", str(src["t"][0])], "--t-end")]:
        assert main([*gen_bad, *extra]) == 2
        assert flag in capsys.readouterr().err
    gen_bad[3] = str(tmp_path / "none")
    assert main(gen_bad) == 2 and "--model" in capsys.readouterr().err
    assert main(args) == 2 and "--out" in capsys.readouterr().err          # outputs exist
    train_bad = ["train", "ensemble-ldm", "--data", *map(str, starts[:2]), "--out",
                 str(bad / "m"), *small]
    for extra, flag in [(["--vae-epochs", "2"], "--vae-epochs"), (["--horizon", "12"],
                                                                  "--horizon"),
                        (["--heads", "3"], "--heads"), (["--mode", "joint"], "--mode"),
                        (["--eval-steps", "60"], "--eval-steps")]:
        assert main([*train_bad, *extra]) == 2
        assert flag in capsys.readouterr().err
    assert main(["train", "ensemble-ldm", "--data", str(tmp_path / "no.nc"), "--out",
                 str(bad / "m"), *small]) == 2
    assert "--data" in capsys.readouterr().err
    assert not bad.exists()
    # a corrupt weights file is refused, naming it
    (tmp_path / "m.pt").write_bytes(b"not a state dict")
    with pytest.raises(ModelFileError, match=r"m\.pt.*not a readable"):
        load_generator(stem)


def train_bad_stub(starts, tmp_path) -> list[str]:
    """A ``hybrid train ensemble-ldm`` command line that the flag checks refuse before work."""
    return ["train", "ensemble-ldm", "--data", *map(str, starts[:2]), "--out",
            str(tmp_path / "bad3" / "m"), "--epochs", "2"]


def test_both_emulators_read_their_start_through_one_reader(starts):
    """hybrid emulate (read_history) and hybrid ensemble (read_conditioning) read the run, check
    --member and find the --at record with the same helpers of hybrid.emulate: the same
    messages; the model checks name each command's own argument."""
    from hybrid.emulate import check_source, read_history, read_source
    from hybrid.ldm_ensemble import read_conditioning
    for flag, bad in [("--at", dict(at=999.0)), ("--member", dict(member=5))]:
        messages = []
        for read in (lambda **kw: read_history(starts[0], 2, **kw),
                     lambda **kw: read_conditioning(starts[0], **kw)):
            with pytest.raises(ValueError) as e:
                read(**bad)
            messages.append(str(e.value))
        assert messages[0] == messages[1] and messages[0].startswith(flag)
    src, interval = read_source(starts[0], "RUN", 0)
    assert interval == pytest.approx(1.0) and src["U"].shape == (3, 12, N)
    check_source({**src, "interval": interval}, N, interval, "RUN", "generates")
    with pytest.raises(ValueError, match=r"^RUN: .* 16 points; the model generates 32$"):
        check_source({**src, "interval": interval}, 32, None, "RUN", "generates")
    with pytest.raises(ValueError, match=r"^--init: .* saved every 1; .* every 2$"):
        check_source({**src, "interval": interval}, N, 2.0, "--init", "emulates")
