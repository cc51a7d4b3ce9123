"""The latent diffusion ensemble generator: a translation-equivariant VAE of U(y) and a DDPM on the
latent residual z − z_c between an ensemble member and a conditioning run (:class:`EnsembleLDM`).

Units. Profiles are normalised by two scalars, u = (U − mean)/std (``stats``, the training
profiles' mean and standard deviation in the data's velocity units). The VAE
(:class:`closures.nn.vae.TEPCVAE`) maps u (n points) to latent profiles of m points; the latent
of a profile is its posterior mean z = μ(u). For a member with latents z(t) and the conditioning
run's z_c(t), the residual is r(t) = z(t) − z_c(t). The diffusion model works on r/ρ_r and is
conditioned on z_c/ρ_z, where ρ_r (``residual_scale``) and ρ_z (``latent_scale``) are the RMS of
the training residuals and latents (buffers, set once when the diffusion training starts, saved
with the weights).

Sequence. Records t = 0 … T − 1 of one start: at t = 0 every member is in the start state, so
r(0) = 0; before it r = 0 too and z_c is held at z_c(0). The residuals after the start are made
in blocks of H = ``horizon`` steps, each from the K = ``context`` residuals before it and z_c over
the K + H steps (:class:`closures.nn.denoiser.SequenceDenoiser`, noise prediction on the DDPM of
:class:`closures.nn.diffusion.DDPM`):

* ``mode='autoregressive'`` (H = 1 by default): the next residual from the previous K and z_c;
* ``mode='window'`` (H = :data:`WINDOW_HORIZON` by default): H residuals at once, with attention
  over the whole window; a sequence longer than H is continued block by block from the last K.

A member is x̂(t) = D(z_c(t) + r̂(t)) (the decoder D), and x̂(0) the start state itself.

Sampling bound. The samplers bound their estimate x̂_0 of the scaled residual to ±:data:`CLIP`
(10 RMS of the training residuals). The cosine schedule's last step has α_T = 1 − β_T = 10⁻³,
so the first ancestral step multiplies an error δ of ε̂ by up to 1/√α_T ≈ 32; an under-trained
denoiser then starts from far outside its training range (measured on a toy with a known
residual spread after 600 Adam steps: spread ×100 without the bound, within 7 % with it;
DDIM, which starts one block of steps lower, was right either way).

Training terms. VAE phase (:meth:`EnsembleLDM.vae_terms`): ``rec`` and ``kl`` of
:meth:`closures.nn.vae.TEPCVAE.loss_terms`. Diffusion phase (:meth:`EnsembleLDM.diffusion_terms`):
``noise``, the DDPM loss mean (ε̂ − ε)² of the H target residuals (:meth:`DDPM.loss`).
"""
from __future__ import annotations

import torch
from torch import nn

from solvers.validate import integer

from ..nn.denoiser import SequenceDenoiser
from ..nn.diffusion import DDPM
from ..nn.vae import TEPCVAE
from ..slt.model import check_stats

__all__ = ["EnsembleLDM", "MODES", "WINDOW_HORIZON", "CLIP"]

MODES = ("autoregressive", "window")
WINDOW_HORIZON = 32              # default H of mode 'window'
CLIP = 10.0                      # the samplers' bound on x̂_0, in units of ρ_r (module docstring)


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else ValueError naming it."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode


class EnsembleLDM(nn.Module):
    """VAE + latent residual DDPM (module docstring). Profiles of ``points`` values; the VAE's
    ``latent_points`` (default n/4), ``channels`` and TEPC ``phase``; the denoiser's ``context``
    K, ``horizon`` H (default by ``mode``), ``width``, ``heads``, ``layers``, ``hidden``,
    ``time_dim``; ``diffusion_steps`` T of the DDPM; ``stats`` the normalisation of U.
    ``config`` holds every architecture argument (the model card's)."""

    def __init__(self, points: int, mode: str = "autoregressive",
                 latent_points: int | None = None, channels: int = 4, phase: str = "common",
                 context: int = 4, horizon: int | None = None, width: int = 64, heads: int = 4,
                 layers: int = 3, hidden: int = 128, time_dim: int = 64,
                 diffusion_steps: int = 1000, stats: dict | None = None):
        super().__init__()
        self.mode = check_mode(mode)
        if horizon is None:
            horizon = 1 if mode == "autoregressive" else WINDOW_HORIZON
        horizon = integer("horizon", horizon, 1)
        self.vae = TEPCVAE(points, latent_points, channels, phase=phase)
        m = self.vae.latent_points
        self.denoiser = SequenceDenoiser(m, context, horizon, width, heads, layers, hidden,
                                         time_dim)
        self.ddpm = DDPM(diffusion_steps)
        self.register_buffer("latent_scale", torch.ones(()))
        self.register_buffer("residual_scale", torch.ones(()))
        self.stats = check_stats(stats if stats is not None else {"mean": 0.0, "std": 1.0})
        self.config = dict(points=self.vae.points, mode=mode, latent_points=m,
                           channels=self.vae.channels, phase=phase, context=int(context),
                           horizon=horizon, width=int(width), heads=int(heads),
                           layers=int(layers), hidden=int(hidden), time_dim=int(time_dim),
                           diffusion_steps=self.ddpm.steps)

    @classmethod
    def from_config(cls, config: dict, stats: dict | None = None) -> "EnsembleLDM":
        return cls(**config, stats=stats)

    @property
    def points(self) -> int:
        return self.vae.points

    @property
    def latent_points(self) -> int:
        return self.vae.latent_points

    @property
    def context(self) -> int:
        return self.denoiser.context

    @property
    def horizon(self) -> int:
        return self.denoiser.horizon

    def normalise(self, u: torch.Tensor) -> torch.Tensor:
        """(U − mean)/std."""
        return (u - self.stats["mean"]) / self.stats["std"]

    def denormalise(self, u: torch.Tensor) -> torch.Tensor:
        """u·std + mean."""
        return u * self.stats["std"] + self.stats["mean"]

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """Normalised profiles (…, n) → latents z = μ(u) (…, m)."""
        return self.vae.encode(u)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (…, m) → normalised profiles (…, n)."""
        return self.vae.decode(z)

    def set_scales(self, latents: torch.Tensor, residuals: torch.Tensor) -> None:
        """ρ_z and ρ_r: the RMS of ``latents`` and ``residuals`` (any shapes; module
        docstring)."""
        for name, v in (("latent_scale", latents), ("residual_scale", residuals)):
            rms = float(v.double().pow(2).mean().sqrt())
            if not rms > 0:
                raise ValueError(f"the training {name.split('_')[0]}s are all zero: the "
                                 f"ensemble members do not differ from the conditioning run"
                                 if name == "residual_scale" else
                                 "the training latents are all zero")
            getattr(self, name).fill_(rms)

    def vae_terms(self, u: torch.Tensor,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The VAE's ``rec`` and ``kl`` for normalised profiles u (…, n)."""
        return self.vae.loss_terms(u, generator)

    def _eps_fn(self, context: torch.Tensor, cond: torch.Tensor):
        """ε̂(x, t) of the scaled residuals given raw context residuals and raw z_c."""
        c = context / self.residual_scale
        y = cond / self.latent_scale
        T = self.ddpm.steps
        return lambda x, t: self.denoiser(x, t.to(x.dtype) / T, c, y)

    def diffusion_terms(self, context: torch.Tensor, target: torch.Tensor, cond: torch.Tensor,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``noise``: the DDPM loss of the target residuals (B, H, m) given the K residuals
        before them (B, K, m) and z_c (B, K + H, m), all raw latents."""
        x0 = target / self.residual_scale
        return {"noise": self.ddpm.loss(self._eps_fn(context, cond), x0, generator)}

    def sample_residuals(self, context: torch.Tensor, cond: torch.Tensor, generator=None, *,
                         method: str = "ddim", sample_steps: int | None = None,
                         eta: float = 0.0, clip: float | None = CLIP,
                         taus=None) -> torch.Tensor:
        """H residuals (B, H, m), raw latents, drawn given the K before them (B, K, m) and z_c
        (B, K + H, m); ``generator`` one ``torch.Generator`` or one per row
        (:meth:`DDPM.sample`); ``clip`` bounds the sampler's estimate of the scaled residual
        (default :data:`CLIP`; None: no bound); ``taus``: DDIM's steps (a distilled model's)."""
        B = context.shape[0]
        x = self.ddpm.sample(self._eps_fn(context, cond), (B, self.horizon, self.latent_points),
                             generator, method=method, sample_steps=sample_steps, eta=eta,
                             clip=clip, device=context.device, dtype=context.dtype, taus=taus)
        return x * self.residual_scale
