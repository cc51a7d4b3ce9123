"""A variational autoencoder of periodic 1D profiles, translation-equivariant: :class:`TEPCVAE`,
with its KL term (:func:`gaussian_kl`) and the reparameterisation (:func:`reparameterise`).

Posterior. The encoder maps a profile u (n points, normalised, dimensionless) to a diagonal
Gaussian q(z | u) = N(μ(u), diag σ²(u)) over a latent profile z of m points. It is the encoder
of :class:`closures.nn.tepc.TEPCAutoencoder` with a second output channel:
TEPC(1→C, n→n) → GELU → TEPC(C→2, n→m), channel 0 the mean μ, channel 1 the log-variance
ln σ², clamped to [:data:`LOGVAR_MIN`, :data:`LOGVAR_MAX`]. Like the autoencoder's halves it runs
in the frame in which the input's Fourier mode 1 has phase 0 and shifts both outputs back, so μ
and ln σ² shift with the input, sub-grid shifts included: a shift of u by s grid points shifts
them by s·m/n latent points (to round-off; the Nyquist modes are dropped). The decoder is the
autoencoder's: TEPC(1→C, m→n) → GELU → TEPC(C→1, n→n).

KL term, against the prior p(z) = N(0, I), per latent value (nats):

    KL_j = ½ (μ_j² + σ_j² − 1 − ln σ_j²),

summed over the m values for the KL of one profile; :func:`gaussian_kl` returns their mean by
default (the loss is per value, like the reconstruction's mean squared error).

Reparameterisation: z = μ + σ ⊙ ε with ε ~ N(0, I) drawn from the caller's ``torch.Generator``,
so z is a differentiable function of (μ, ln σ²): ∂z/∂μ = 1, ∂z/∂(ln σ²) = ½ σ ε.

Training objective (:meth:`TEPCVAE.loss_terms`): ``rec`` = mean of (D(z) − u)² over profiles and
points with z drawn by reparameterisation, and ``kl`` = the mean KL per latent value; the caller
weights them (β-VAE: rec + β·kl). :meth:`TEPCVAE.encode` returns the posterior mean μ, the
deterministic latent of a profile.
"""
from __future__ import annotations

import torch

from .tepc import TEPC, TEPCAutoencoder, align, restore

__all__ = ["TEPCVAE", "gaussian_kl", "reparameterise", "LOGVAR_MIN", "LOGVAR_MAX", "REDUCTIONS"]

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0       # ln σ² clamp: σ from 3e-7 to 2e4
REDUCTIONS = ("mean", "sum", "none")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½ (μ² + σ² − 1 − ln σ²) per value, in nats (module docstring).
    ``reduction``: 'mean' over all values, 'sum' over all values, or 'none' (the values)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got "
                         f"{reduction!r}")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have one shape, got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    kl = 0.5 * (mu * mu + torch.exp(logvar) - 1.0 - logvar)
    if reduction == "mean":
        return kl.mean()
    return kl.sum() if reduction == "sum" else kl


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None,
                   noise: torch.Tensor | None = None) -> torch.Tensor:
    """z = μ + exp(½ ln σ²) ⊙ ε, ε ~ N(0, I) from ``generator`` (drawn on its device, then moved
    to μ's), or the given ``noise`` of μ's shape."""
    if noise is None:
        dev = mu.device if generator is None else generator.device
        noise = torch.randn(mu.shape, generator=generator, device=dev, dtype=mu.dtype)
    elif noise.shape != mu.shape:
        raise ValueError(f"noise must have the shape of mu {tuple(mu.shape)}, got "
                         f"{tuple(noise.shape)}")
    return mu + torch.exp(0.5 * logvar) * noise.to(device=mu.device, dtype=mu.dtype)


class TEPCVAE(TEPCAutoencoder):
    """The translation-equivariant VAE of profiles of ``points`` values (module docstring):
    latent profiles of ``latent_points`` values (default n/4), ``channels`` hidden channels,
    ``phase`` of the TEPC layers. ``posterior`` (…, n) → (μ, ln σ²), each (…, m); ``encode`` →
    μ; ``decode`` (…, m) → (…, n) (the autoencoder's); ``forward`` = decode(encode(u))."""

    def __init__(self, points: int, latent_points: int | None = None, channels: int = 4,
                 phase: str = "common"):
        super().__init__(points, latent_points, channels, phase)
        self.enc2 = TEPC(self.channels, 2, self.points, self.latent_points, phase=phase)

    def posterior(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, ln σ²) of q(z | u) for profiles u (…, n), each (…, m)."""
        if u.shape[-1] != self.points:
            raise ValueError(f"encode expects profiles of {self.points} points, got "
                             f"{tuple(u.shape)}")
        lead, m = u.shape[:-1], self.latent_points
        a, phi = align(u.reshape(-1, 1, self.points))                     # phi (B, 1)
        v = restore(self.enc2(self.act(self.enc1(a))), phi)               # (B, 2, m)
        mu = v[:, 0].reshape(lead + (m,))
        logvar = v[:, 1].clamp(LOGVAR_MIN, LOGVAR_MAX).reshape(lead + (m,))
        return mu, logvar

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """The posterior mean μ(u) (…, m): the deterministic latent of profiles u (…, n)."""
        return self.posterior(u)[0]

    def loss_terms(self, u: torch.Tensor,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``rec``: mean (D(z) − u)² with z = μ + σ ε (reparameterised); ``kl``: mean KL per
        latent value (module docstring), for profiles u (…, n)."""
        mu, logvar = self.posterior(u)
        z = reparameterise(mu, logvar, generator)
        return {"rec": ((self.decode(z) - u) ** 2).mean(), "kl": gaussian_kl(mu, logvar)}
