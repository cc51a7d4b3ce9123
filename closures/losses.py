"""Losses and the diffusion machinery of the learned closures.

VE SDE (variance exploding; Song et al. 2021), as in the latent score-based closure paper:
``dx = g(t) dW`` on t ∈ [0, 1] with g(t) = σ^t, σ = ``sigma`` (30 by default). The perturbation
kernel is x_t = x_0 + std(t)·z, z ~ N(0, I), with

    std(t)² = ∫₀ᵗ σ^{2s} ds = (σ^{2t} − 1) / (2 ln σ),        g(t)² = d std²/dt = σ^{2t},

so std(0) = 0 and std(1) = sqrt((σ² − 1)/(2 ln σ)) (≈ 11.5 for σ = 30).

* :func:`ve_marginal_std`, :func:`ve_diffusion_coeff`, :func:`ve_time_of_std` — the schedule.
* :func:`dsm_loss` — denoising score matching, t ~ U(eps, 1), weighting λ(t) = std(t)².
* :func:`sample_ve` — reverse-SDE Euler–Maruyama sampler on a Karras ρ-schedule of t.
* :func:`energy_score`, :func:`crps_ensemble` — proper scores of an ensemble (fair estimators).
* :func:`spectral_amplitude_loss` — distance of Fourier amplitudes (of 2D fields or 1D profiles).
* :func:`moment_penalty` — pulls a latent toward zero mean and unit standard deviation.

Everything is torch, batch-first, and differentiable where it is a loss.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from solvers.validate import integer, number

__all__ = ["SIGMA", "EPS", "ve_marginal_std", "ve_diffusion_coeff", "ve_time_of_std",
           "dsm_loss", "karras_times", "sample_ve", "energy_score", "crps_ensemble",
           "spectral_amplitude_loss", "moment_penalty"]

SIGMA = 30.0        # σ of the VE SDE (latent score-based closure paper)
EPS = 1e-5          # smallest diffusion time, in training and at the end of sampling


def _check_sigma(sigma) -> float:
    s = float(sigma)
    if not math.isfinite(s) or s <= 1:
        raise ValueError(f"sigma of the VE SDE must be a finite number > 1, got {sigma!r}")
    return s


def ve_marginal_std(t, sigma: float = SIGMA) -> torch.Tensor:
    """std(t) = sqrt((σ^{2t} − 1)/(2 ln σ)) (float or tensor t; computed with expm1, so it is
    accurate for small t, where std(t) ≈ sqrt(t))."""
    log_s = math.log(_check_sigma(sigma))
    t = torch.as_tensor(t, dtype=torch.get_default_dtype() if not torch.is_tensor(t) else None)
    return torch.sqrt(torch.expm1(2.0 * t * log_s) / (2.0 * log_s))


def ve_diffusion_coeff(t, sigma: float = SIGMA) -> torch.Tensor:
    """g(t) = σ^t, so that g² = d std²/dt."""
    s = _check_sigma(sigma)
    t = torch.as_tensor(t, dtype=torch.get_default_dtype() if not torch.is_tensor(t) else None)
    return torch.exp(t * math.log(s))


def ve_time_of_std(std, sigma: float = SIGMA) -> torch.Tensor:
    """The inverse of :func:`ve_marginal_std`: t = ln(1 + 2 ln σ · std²)/(2 ln σ)."""
    log_s = math.log(_check_sigma(sigma))
    std = torch.as_tensor(std, dtype=torch.get_default_dtype() if not torch.is_tensor(std)
                          else None)
    return torch.log1p(2.0 * log_s * std**2) / (2.0 * log_s)


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) → (B, 1, 1, …) broadcastable against ``like``."""
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))


def dsm_loss(score_net: Callable, x0: torch.Tensor, cond=None, eps: float = EPS,
             sigma: float = SIGMA, generator: torch.Generator | None = None,
             reduction: str = "sum", t: torch.Tensor | None = None) -> torch.Tensor:
    """Denoising score matching for the VE SDE, weighted by λ(t) = std(t)².

    For each sample b: t_b ~ U(eps, 1) (or the given ``t``, shape (B,)), z_b ~ N(0, I),
    x_t = x0 + std(t_b)·z_b, and the loss is the batch mean of ``‖std(t_b)·s(x_t, t_b, c) + z_b‖²``
    where s = ``score_net(x_t, t, cond)`` (t passed as a (B,) tensor). Since the score of the
    kernel is −z/std, the minimiser over s is the score of the noised data distribution, and the
    weighting makes every t contribute O(1).

    ``reduction='sum'`` (default, Song et al.'s convention): ‖·‖² sums over all non-batch
    dimensions; ``'mean'``: averages over them instead (per element, independent of field size).
    ``generator`` makes t and z reproducible. Returns a 0-d tensor, differentiable in the net's
    parameters (and in ``x0``, for joint training through an encoder).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
    B = x0.shape[0]
    if t is None:
        u = torch.rand(B, generator=generator, device=x0.device, dtype=x0.dtype)
        t = eps + (1.0 - eps) * u
    else:
        t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device).reshape(-1).expand(B)
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    std = _expand(ve_marginal_std(t, sigma), x0)
    score = score_net(x0 + std * z, t, cond)
    if score.shape != x0.shape:
        raise ValueError(f"the score network returned shape {tuple(score.shape)} for a target of "
                         f"shape {tuple(x0.shape)}")
    r = (std * score + z).reshape(B, -1) ** 2
    per_sample = r.sum(dim=1) if reduction == "sum" else r.mean(dim=1)
    return per_sample.mean()


def karras_times(steps: int, t_start: float = 0.4, eps: float = EPS,
                 rho: float = 7.0) -> torch.Tensor:
    """``steps + 1`` diffusion times from ``t_start`` down to ``eps`` (float64), spaced by the
    Karras et al. (2022) rule applied to t: t_i = (t_start^{1/ρ} + i/steps·(eps^{1/ρ} −
    t_start^{1/ρ}))^ρ, i = 0…steps; ρ = 7 crowds the steps toward eps, where the score changes
    fastest."""
    integer("steps", steps, 1)
    if not 0 < eps < t_start <= 1:
        raise ValueError(f"need 0 < eps < t_start ≤ 1, got eps={eps!r}, t_start={t_start!r}")
    number("rho", rho, above=0)
    ramp = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    a, b = t_start ** (1.0 / rho), eps ** (1.0 / rho)
    times = (a + ramp * (b - a)) ** rho
    times[0], times[-1] = t_start, eps            # exact end points
    return times


@torch.no_grad()
def sample_ve(score_fn: Callable, shape, cond=None, steps: int = 10, t_start: float = 0.4,
              rho: float = 7.0, eps: float = EPS, sigma: float = SIGMA,
              generator: torch.Generator | None = None, x_init: torch.Tensor | None = None,
              device=None, dtype=torch.float32) -> torch.Tensor:
    """Samples of the VE SDE's reverse process, x ~ p_eps(x | cond), shape ``shape`` (B, …).

    Discretisation: the times t_0 = t_start > t_1 > … > t_N = eps of :func:`karras_times`
    (N = ``steps``). Start from x = ``x_init`` or, by default, x = std(t_start)·z (the VE prior,
    which neglects the data's own variance against std(t_start)). Then for i = 0…N−1, with
    Δ = t_i − t_{i+1} > 0 and g² = g(t_i)² = σ^{2 t_i}, one Euler–Maruyama step of the reverse SDE
    dx = −g² ∇log p_t(x) dt + g dW̄ (integrated backward in t):

        x ← x + g² · s(x, t_i, cond) · Δ + g · sqrt(Δ) · z,    z ~ N(0, I),

    with no noise on the last step (i = N−1), so the result is the denoised mean at eps.
    ``score_fn(x, t, cond)`` gets t as a (B,) tensor. N score evaluations in all. All draws come
    from ``generator``: a generator in the same state gives the same samples, bit for bit.
    Runs under ``torch.no_grad()``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 1 or shape[0] < 1:
        raise ValueError(f"shape must start with a batch size ≥ 1, got {shape}")
    times = karras_times(steps, t_start, eps, rho)
    if x_init is not None:
        if tuple(x_init.shape) != shape:
            raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {shape}")
        x = x_init.to(device=device or x_init.device, dtype=dtype).clone()
    else:
        x = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        x = x * float(ve_marginal_std(float(times[0]), sigma))
    B = shape[0]
    log_s = math.log(_check_sigma(sigma))
    for i in range(steps):
        ti, dt = float(times[i]), float(times[i] - times[i + 1])
        g2 = math.exp(2.0 * ti * log_s)
        t_vec = torch.full((B,), ti, device=x.device, dtype=dtype)
        s = score_fn(x, t_vec, cond)
        if s.shape != x.shape:
            raise ValueError(f"score_fn returned shape {tuple(s.shape)} for x of shape "
                             f"{tuple(x.shape)}")
        x = x + (g2 * dt) * s
        if i < steps - 1:
            z = torch.randn(shape, generator=generator, device=x.device, dtype=dtype)
            x = x + math.sqrt(g2 * dt) * z
    return x


def _reduce(v: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "none":
        return v
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _check_ensemble(samples: torch.Tensor, target: torch.Tensor, what: str) -> None:
    if samples.ndim < 2 or tuple(samples.shape[1:]) != tuple(target.shape):
        raise ValueError(f"{what}: samples must have shape (m, *target.shape) = "
                         f"(m, {', '.join(map(str, target.shape))}), got {tuple(samples.shape)}")


def energy_score(samples: torch.Tensor, target: torch.Tensor,
                 reduction: str = "mean") -> torch.Tensor:
    """Energy score of an m-member ensemble, the multivariate CRPS (lower is better).

    ``samples`` (m, B, …), ``target`` (B, …); norms are Euclidean over all trailing dimensions.
    Per batch entry b:  ES_b = (1/m) Σ_i ‖X_i − y‖ − 1/(2 m(m−1)) Σ_{i≠j} ‖X_i − X_j‖,
    the fair (unbiased) estimator of E‖X − y‖ − ½ E‖X − X'‖; with m = 1 the spread term is
    dropped (ES = ‖X − y‖). Returns the mean over b (``reduction='mean'``) or (B,) ('none').
    """
    _check_ensemble(samples, target, "energy_score")
    m, B = samples.shape[0], samples.shape[1]
    X = samples.reshape(m, B, -1).transpose(0, 1)                 # (B, m, D)
    y = target.reshape(B, 1, -1)
    skill = torch.linalg.vector_norm(X - y, dim=-1).mean(dim=1)
    if m > 1:
        d = torch.cdist(X, X, compute_mode="donot_use_mm_for_euclid_dist")     # (B, m, m), 0 diag
        spread = d.sum(dim=(1, 2)) / (2.0 * m * (m - 1))
    else:
        spread = torch.zeros_like(skill)
    return _reduce(skill - spread, reduction)


def crps_ensemble(samples: torch.Tensor, target: torch.Tensor,
                  reduction: str = "mean") -> torch.Tensor:
    """Fair CRPS of scalar ensembles, elementwise: ``samples`` (m, …), ``target`` (…).

    CRPS = (1/m) Σ_i |X_i − y| − 1/(2 m(m−1)) Σ_{i≠j} |X_i − X_j| at every element (the energy
    score in one dimension), computed in O(m log m) per element from the sorted members:
    Σ_{i<j} |X_i − X_j| = Σ_k (2k − m − 1) X_(k). m = 1 gives the absolute error. Returns the
    mean over all elements (``'mean'``) or the per-element values (``'none'``, shape of target).
    """
    if samples.ndim < 1 or tuple(samples.shape[1:]) != tuple(target.shape):
        raise ValueError(f"crps_ensemble: samples must have shape (m, *target.shape), got "
                         f"{tuple(samples.shape)} for a target of shape {tuple(target.shape)}")
    m = samples.shape[0]
    skill = (samples - target.unsqueeze(0)).abs().mean(dim=0)
    if m > 1:
        xs, _ = torch.sort(samples, dim=0)
        k = torch.arange(1, m + 1, device=samples.device, dtype=samples.dtype)
        coef = (2 * k - m - 1).reshape((m,) + (1,) * (samples.ndim - 1))
        pair_sum = (coef * xs).sum(dim=0)                          # Σ_{i<j} |X_i − X_j|
        crps = skill - pair_sum / (m * (m - 1))
    else:
        crps = skill
    return _reduce(crps, reduction)


def spectral_amplitude_loss(a: torch.Tensor, b: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """mean |(|â| − |b̂|)| over the real-FFT half-space of the last ``dims`` axes (2: fields
    (…, H, W); 1: profiles (…, n)) and all leading ones, with â = rfftn(a, norm='forward')
    (divided by the number of points, so a mode cos(k·x) of amplitude A has |â| = A/2 and the
    loss does not grow with the grid). Invariant under shifts of either field; blind to phases
    by design."""
    if dims not in (1, 2):
        raise ValueError(f"spectral_amplitude_loss: dims must be 1 or 2, got {dims!r}")
    if a.shape != b.shape:
        raise ValueError(f"spectral_amplitude_loss: shapes differ, {tuple(a.shape)} vs "
                         f"{tuple(b.shape)}")
    if a.ndim < dims:
        raise ValueError(f"spectral_amplitude_loss needs "
                         f"{'fields (…, H, W)' if dims == 2 else 'profiles (…, n)'}, got "
                         f"{tuple(a.shape)}")
    axes = tuple(range(-dims, 0))
    fa = torch.fft.rfftn(a, dim=axes, norm="forward").abs()
    fb = torch.fft.rfftn(b, dim=axes, norm="forward").abs()
    return (fa - fb).abs().mean()


def moment_penalty(z: torch.Tensor, kind: str = "moments") -> torch.Tensor:
    """A penalty pulling a latent (B, C, …) toward zero mean and unit standard deviation.

    Per channel c, with μ_c and s_c the mean and (biased) standard deviation over the batch and
    all positions: ``'moments'`` (default) μ_c² + (s_c − 1)²; ``'kl'`` the KL divergence of
    N(μ_c, s_c²) from N(0, 1), ½(μ_c² + s_c² − 1 − ln s_c²). Averaged over channels; 0 exactly
    when every channel has mean 0 and std 1.
    """
    if z.ndim < 2:
        raise ValueError(f"moment_penalty needs a latent (B, C, …), got {tuple(z.shape)}")
    zc = z.transpose(0, 1).reshape(z.shape[1], -1)
    mu = zc.mean(dim=1)
    var = zc.var(dim=1, unbiased=False)
    if kind == "moments":
        pen = mu**2 + (torch.sqrt(var + 1e-12) - 1.0) ** 2
    elif kind == "kl":
        pen = 0.5 * (mu**2 + var - 1.0 - torch.log(var + 1e-12))
    else:
        raise ValueError(f"moment_penalty kind must be 'moments' or 'kl', got {kind!r}")
    return pen.mean()
