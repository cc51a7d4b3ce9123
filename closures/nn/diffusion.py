"""Denoising diffusion probabilistic model (DDPM) with noise prediction: the cosine schedule,
the training loss, ancestral sampling and deterministic DDIM sampling with fewer steps
(:class:`DDPM`). Dimensionless: x is whatever the caller diffuses (here normalised latents).

Forward process, t = 1 … T (T = ``steps``)::

    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I),   ᾱ_t = Π_{s ≤ t} (1 − β_s),   ᾱ_0 = 1.

Cosine schedule (Nichol & Dhariwal 2021): f(t) = cos²(((t/T + s)/(1 + s))·π/2), s = 0.008,
β_t = min(1 − f(t)/f(t − 1), β_max) with β_max = 0.999, so ᾱ_t = f(t)/f(0) wherever the cap is
not reached (every t < T at T = 1000) and ᾱ_T ≈ 2·10⁻⁹.

Training (:meth:`DDPM.loss`): t ~ U{1, …, T}, ε ~ N(0, I), x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, and
the loss is the mean of (ε̂(x_t, t) − ε)² over the batch and every value.

Ancestral sampling (:meth:`DDPM.ancestral`): x_T ~ N(0, I), then for t = T … 1::

    x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) · ε̂(x_t, t))/√α_t + σ_t z,   α_t = 1 − β_t,
    σ_t² = β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t),                    no noise at t = 1.

DDIM (Song, Meng & Ermon 2021; :meth:`DDPM.ddim`) on S of the T steps τ_S > … > τ_1, spaced
'leading': τ_i = 1 + ⌊(i − 1)·T/S⌋ (so S = T visits every step), from x ~ N(0, I) at τ_S::

    x̂_0 = (x − √(1 − ᾱ_τ) ε̂)/√ᾱ_τ,
    x ← √ᾱ_p x̂_0 + √(1 − ᾱ_p − σ²) ε̂ + σ z,   σ = η √((1 − ᾱ_p)/(1 − ᾱ_τ)) √(1 − ᾱ_τ/ᾱ_p),

with ᾱ_p that of the next (smaller) step and ᾱ_p = 1 after τ_1. η = 0 (default) is
deterministic given the start; η = 1 with S = T is the ancestral sampler, step for step. Why
'leading' and not a sub-sequence ending at τ_S = T: at T the cosine schedule has √ᾱ_T ≈ 5·10⁻⁵,
and a DDIM step from T to T − T/S multiplies an error δ of ε̂ by √(ᾱ_p/ᾱ_T) ≈ 600 (S = 50);
from τ_S = T − T/S + 1 the factor is about 2, and starting there from N(0, I) neglects a signal
of √ᾱ_{τ_S} ≈ 0.01–0.03 of the data's scale.

DPM-Solver++(2M) (Lu et al. 2022; :meth:`DDPM.dpm2m`), deterministic, from the same start τ_S
as DDIM down to τ = 1 on steps evenly spaced in λ = ln(α/σ), α = √ᾱ, σ = √(1 − ᾱ) (the nearest
whole steps; :func:`log_snr_timesteps`). With the data prediction x̂_0 as above and
h = λ_p − λ_τ::

    x ← (σ_p/σ_τ) x + α_p (1 − e^{−h}) D,   D = (1 + 1/2r) x̂_0 − (1/2r) x̂_0',

with x̂_0' the previous step's prediction and r = h'/h the ratio of the previous step to this
one; D = x̂_0 (first order) on the first step and on the last (to ᾱ_p = 1, where the update is
x = x̂_0). First order everywhere is DDIM exactly (on these steps); the two-step D makes the
error of the probability-flow integration second order in the step, for one network pass per step
like DDIM. On a Gaussian whose flow map is known in closed form (data N(μ, s²), s = 0.1 … 1.2) it
is: 10 steps give the spread within 3 % where DDIM on its 'leading' steps is 10–46 % low
(tested); on 'leading' steps the 2M update overshoots at few steps (spread up to 26 % high at 10
steps), which is why it takes λ-even steps.

``clip`` (optional, every sampler) bounds x̂_0 to [−clip, clip]; the ancestral step is then the
posterior mean of q(x_{t−1} | x_t, x̂_0) (equal to the ε form above without the bound), DDIM uses
the ε consistent with the bounded x̂_0.

Noise. The samplers take their start and their noise as tensors; :meth:`DDPM.sample` draws them
from a ``torch.Generator`` — or from one generator per batch row (a list), each row's draws in
one call, so that a row's sample does not depend on the other rows or on the batch size.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from solvers.validate import integer, number

__all__ = ["DDPM", "cosine_alpha_bar", "ddim_timesteps", "log_snr_timesteps", "draw_noise",
           "remember_noise", "METHODS"]

METHODS = ("ddim", "ancestral", "dpm2m")
COSINE_OFFSET = 0.008
MAX_BETA = 0.999

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cosine_alpha_bar(t, steps: int, s: float = COSINE_OFFSET) -> torch.Tensor:
    """f(t)/f(0) of the cosine schedule, f(t) = cos²(((t/T + s)/(1 + s))·π/2), float64."""
    t = torch.as_tensor(t, dtype=torch.float64)

    def f(x):
        return torch.cos((x / steps + s) / (1 + s) * (math.pi / 2)) ** 2
    return f(t) / f(torch.zeros((), dtype=torch.float64))


def ddim_timesteps(steps: int, sample_steps: int) -> list[int]:
    """The 'leading' DDIM sub-sequence τ_i = 1 + ⌊(i − 1)·T/S⌋, i = S … 1 (descending); every
    step 1 … T when S = T."""
    T = integer("steps", steps, 1)
    S = integer("sample_steps", sample_steps, 1, T)
    return [1 + (i * T) // S for i in range(S - 1, -1, -1)]


def log_snr_timesteps(alpha_bar: torch.Tensor, sample_steps: int) -> list[int]:
    """S descending steps from τ_S = 1 + ⌊(S − 1)·T/S⌋ (DDIM's start) to 1, spaced evenly in
    λ = ½ ln(ᾱ/(1 − ᾱ)) of ``alpha_bar`` (entries t = 0 … T) and rounded to the nearest whole
    step; where rounding makes two equal (near t = 1, where λ changes fastest), the later one is
    moved to the next free step, so there are always S distinct steps."""
    T = alpha_bar.shape[0] - 1
    S = integer("sample_steps", sample_steps, 1, T)
    start = ddim_timesteps(T, S)[0]
    if S == 1:
        return [start]
    ab = alpha_bar[1:start + 1].double()
    lam = 0.5 * (ab.log() - torch.log1p(-ab))                       # λ at t = 1 … start
    want = torch.linspace(float(lam[0]), float(lam[-1]), S, dtype=torch.float64)
    t = (torch.argmin((lam[None, :] - want[:, None]).abs(), dim=1) + 1).tolist()  # ascending
    for i in range(1, S):                                           # distinct, upwards …
        t[i] = max(t[i], t[i - 1] + 1)
    t[-1] = start
    for i in range(S - 2, -1, -1):                                  # … and below the start
        t[i] = min(t[i], t[i + 1] - 1)
    return t[::-1]


def remember_noise(previous, fresh, rho: float):
    """The next token of an AR(1) noise process, ρ·previous + √(1 − ρ²)·fresh (numpy arrays or
    tensors alike): N(0, I) when both are, lag-k correlation ρ^k; ``fresh`` itself when
    ``previous`` is None (the first token) or ρ = 0."""
    if previous is None or rho == 0:
        return fresh
    return rho * previous + math.sqrt(1 - rho * rho) * fresh


def draw_noise(shape: Sequence[int], generator, device=None,
               dtype=torch.float32) -> torch.Tensor:
    """N(0, I) of ``shape`` (B, …): from one ``torch.Generator`` (or None: torch's global one),
    or from a list of B generators, row b in one call to generator b. Drawn on the generator's
    device, then moved to ``device``."""
    shape = tuple(int(s) for s in shape)
    if generator is None or isinstance(generator, torch.Generator):
        dev = device if generator is None else generator.device
        return torch.randn(shape, generator=generator, device=dev, dtype=dtype).to(device)
    gens = list(generator)
    if len(gens) != shape[0]:
        raise ValueError(f"{len(gens)} generators for a batch of {shape[0]}")
    return torch.stack([torch.randn(shape[1:], generator=g, device=g.device, dtype=dtype)
                        .to(device) for g in gens])


def _log_snr(alpha_bar: float) -> float:
    """λ = ln(√ᾱ/√(1 − ᾱ))."""
    return 0.5 * (math.log(alpha_bar) - math.log1p(-alpha_bar))


class DDPM(nn.Module):
    """The diffusion process of ``steps`` steps on the cosine schedule (module docstring); no
    trainable weights. Buffers (float64, not saved): ``betas``, ``alphas`` and ``alpha_bar``
    indexed by t = 0 … T (entry 0: β = 0, ᾱ = 1)."""

    def __init__(self, steps: int = 1000, offset: float = COSINE_OFFSET,
                 max_beta: float = MAX_BETA):
        super().__init__()
        self.steps = integer("steps", steps, 1)
        self.offset = number("offset", offset, above=0)
        self.max_beta = number("max_beta", max_beta, above=0, below=1)
        t = torch.arange(self.steps + 1, dtype=torch.float64)
        f = cosine_alpha_bar(t, self.steps, self.offset)
        betas = torch.zeros(self.steps + 1, dtype=torch.float64)
        betas[1:] = (1 - f[1:] / f[:-1]).clamp(max=self.max_beta)
        alphas = 1 - betas
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alpha_bar", torch.cumprod(alphas, 0), persistent=False)

    def extra_repr(self) -> str:
        return f"steps={self.steps}, cosine offset {self.offset:g}, max beta {self.max_beta:g}"

    def _at(self, table: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """table[t] as x's dtype and device, shaped to broadcast against x (B, …)."""
        v = table.to(x.device)[t.to(x.device)].to(x.dtype)
        return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))

    def posterior_variance(self, t) -> torch.Tensor:
        """β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), float64, for t ≥ 1."""
        t = torch.as_tensor(t, dtype=torch.long)
        ab = self.alpha_bar
        return self.betas[t] * (1 - ab[t - 1]) / (1 - ab[t])

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε for steps t (B,) of x_0 (B, …)."""
        ab = self._at(self.alpha_bar, t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def loss(self, eps_fn: EpsFn, x0: torch.Tensor, generator: torch.Generator | None = None,
             t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """mean (ε̂(x_t, t) − ε)² with t ~ U{1 … T} and ε ~ N(0, I) drawn from ``generator`` in
        that order (or given), x_t from :meth:`q_sample`; ``eps_fn(x_t, t)`` → ε̂ of x_0's
        shape, t a long tensor (B,)."""
        B = x0.shape[0]
        dev = x0.device if generator is None else generator.device
        if t is None:
            t = torch.randint(1, self.steps + 1, (B,), generator=generator, device=dev)
        t = t.to(x0.device)
        if noise is None:
            noise = draw_noise(x0.shape, generator, x0.device, x0.dtype)
        return ((eps_fn(self.q_sample(x0, t, noise), t) - noise) ** 2).mean()

    def ancestral(self, eps_fn: EpsFn, x: torch.Tensor, noise: torch.Tensor,
                  clip: float | None = None) -> torch.Tensor:
        """Ancestral sampling from x = x_T (B, …) with ``noise`` (T − 1, B, …): the z of the
        steps t = T … 2, in that order (module docstring). The mean is computed as the
        posterior mean of q(x_{t−1} | x_t, x̂_0), c₀ x̂_0 + c_t x_t with c₀ = √ᾱ_{t−1} β_t/(1 − ᾱ_t)
        and c_t = √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) — the same as the ε form — so that ``clip`` can
        bound x̂_0."""
        T = self.steps
        if noise.shape[0] != T - 1:
            raise ValueError(f"ancestral sampling needs {T - 1} noise draws, got "
                             f"{noise.shape[0]}")
        ab_all = self.alpha_bar
        for i, t in enumerate(range(T, 0, -1)):
            tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            eps = eps_fn(x, tt)
            ab, ab_p = float(ab_all[t]), float(ab_all[t - 1])
            beta, alpha = float(self.betas[t]), float(self.alphas[t])
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if clip is not None:
                x0 = x0.clamp(-clip, clip)
            x = (math.sqrt(ab_p) * beta / (1 - ab)) * x0 \
                + (math.sqrt(alpha) * (1 - ab_p) / (1 - ab)) * x
            if t > 1:
                sigma = self.posterior_variance(t).sqrt().to(x.dtype)
                x = x + sigma * noise[i]
        return x

    def check_timesteps(self, taus: Sequence[int]) -> list[int]:
        """``taus`` as a list of descending distinct steps in [1, T], else ValueError."""
        taus = [int(t) for t in taus]
        if not taus or any(not 1 <= t <= self.steps for t in taus) or any(
                a <= b for a, b in zip(taus, taus[1:])):
            raise ValueError(f"timesteps must be descending distinct steps in [1, "
                             f"{self.steps}], got {taus}")
        return taus

    def ddim(self, eps_fn: EpsFn, x: torch.Tensor, sample_steps: int, eta: float = 0.0,
             noise: torch.Tensor | None = None, clip: float | None = None,
             taus: Sequence[int] | None = None) -> torch.Tensor:
        """DDIM from x (B, …) at τ_S over :func:`ddim_timesteps` (module docstring), or over the
        descending steps ``taus`` (a distilled model's); with ``eta`` > 0, ``noise`` (S − 1, B,
        …) holds the z of every step but the last."""
        eta = number("eta", eta, at_least=0)
        taus = (ddim_timesteps(self.steps, sample_steps) if taus is None
                else self.check_timesteps(taus))
        if eta > 0 and (noise is None or noise.shape[0] != len(taus) - 1):
            raise ValueError(f"DDIM with eta > 0 needs {len(taus) - 1} noise draws")
        ab_all = self.alpha_bar
        for i, tau in enumerate(taus):
            tt = torch.full((x.shape[0],), tau, dtype=torch.long, device=x.device)
            eps = eps_fn(x, tt)
            prev = taus[i + 1] if i + 1 < len(taus) else 0
            ab, ab_p = float(ab_all[tau]), float(ab_all[prev])
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if clip is not None:                      # ε consistent with the clipped x̂_0
                x0 = x0.clamp(-clip, clip)
                eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
            sigma = 0.0
            if eta > 0 and prev > 0:
                sigma = eta * math.sqrt((1 - ab_p) / (1 - ab) * (1 - ab / ab_p))
            x = math.sqrt(ab_p) * x0 + math.sqrt(max(1 - ab_p - sigma ** 2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * noise[i]
        return x

    def ddim_rows(self, eps_fn: EpsFn, x: torch.Tensor, tau: torch.Tensor, prev: torch.Tensor,
                  clip: float | None = None) -> torch.Tensor:
        """One deterministic DDIM step of every row of x (B, …) from its step ``tau`` (B,) to
        its step ``prev`` (B,; 0 gives x̂_0): x ← √ᾱ_p x̂_0 + √(1 − ᾱ_p) ε̂ (module docstring)."""
        ab, ab_p = self._at(self.alpha_bar, tau, x), self._at(self.alpha_bar, prev, x)
        eps = eps_fn(x, tau)
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        return ab_p.sqrt() * x0 + (1 - ab_p).sqrt() * eps

    def dpm2m(self, eps_fn: EpsFn, x: torch.Tensor, sample_steps: int,
              clip: float | None = None) -> torch.Tensor:
        """DPM-Solver++(2M) from x (B, …) at τ_S over :func:`log_snr_timesteps` (module
        docstring); deterministic, one call of ``eps_fn`` per step."""
        taus = log_snr_timesteps(self.alpha_bar, sample_steps)
        ab_all = self.alpha_bar
        x0_prev, h_prev = None, None
        for i, tau in enumerate(taus):
            tt = torch.full((x.shape[0],), tau, dtype=torch.long, device=x.device)
            eps = eps_fn(x, tt)
            ab = float(ab_all[tau])
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if clip is not None:
                x0 = x0.clamp(-clip, clip)
            if i + 1 == len(taus):                       # to ᾱ = 1: x = x̂_0
                return x0
            ab_p = float(ab_all[taus[i + 1]])
            lam, lam_p = _log_snr(ab), _log_snr(ab_p)
            h = lam_p - lam
            d = x0
            if x0_prev is not None:
                c = h / (2 * h_prev)                     # 1/(2r), r = h'/h
                d = (1 + c) * x0 - c * x0_prev
            x = (math.sqrt((1 - ab_p) / (1 - ab))) * x + math.sqrt(ab_p) * (-math.expm1(-h)) * d
            x0_prev, h_prev = x0, h
        return x

    def noise_draws(self, method: str, sample_steps: int | None = None,
                    eta: float = 0.0) -> int:
        """How many N(0, I) draws of the sample's shape a sampler uses, the start included."""
        if method == "ancestral":
            return self.steps
        if method == "dpm2m":
            return 1
        if method != "ddim":
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        S = self.steps if sample_steps is None else sample_steps
        return 1 + (S - 1 if eta > 0 else 0)

    def sample(self, eps_fn: EpsFn, shape: Sequence[int], generator=None, *,
               method: str = "ddim", sample_steps: int | None = None, eta: float = 0.0,
               clip: float | None = None, device=None, dtype=torch.float32,
               taus: Sequence[int] | None = None) -> torch.Tensor:
        """Samples of ``shape`` (B, …) by ``method`` ('ddim' or 'dpm2m': ``sample_steps`` steps,
        default T; 'ancestral': T steps; 'ddim' with ``taus``: on those steps), every draw from
        ``generator`` (one, or a list of B generators: :func:`draw_noise`), the start first."""
        shape = tuple(int(s) for s in shape)
        if taus is not None:
            if method != "ddim":
                raise ValueError(f"timesteps are a DDIM schedule; method is {method!r}")
            sample_steps = len(taus)
        count = self.noise_draws(method, sample_steps, eta)
        z = draw_noise((shape[0], count) + shape[1:], generator, device, dtype)
        z = z.transpose(0, 1)                                          # (count, B, …)
        if method == "ancestral":
            return self.ancestral(eps_fn, z[0], z[1:], clip)
        S = self.steps if sample_steps is None else sample_steps
        if method == "dpm2m":
            return self.dpm2m(eps_fn, z[0], S, clip)
        return self.ddim(eps_fn, z[0], S, eta, z[1:] if eta > 0 else None, clip, taus)
