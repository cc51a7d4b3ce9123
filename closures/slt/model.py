"""The Stochastic Latent Transformer: a translation-equivariant autoencoder of U(y) and a
stochastic transformer that draws the next latent step from a window of L latent steps.

:class:`StochasticTransformer` (latents z of width d; with ``align`` a latent is itself a periodic
profile of d points):

1. phase alignment (``align=True``): every step of the window is shifted by the phase φ of mode 1
   of the **last** step (:mod:`closures.nn.tepc`), so the window's last step has phase 0;
2. tokens: Linear(d → D) of each step plus the sinusoidal encoding of its position 0 … L−1;
3. pre-LayerNorm blocks (:class:`closures.nn.attention.TransformerBlock`); the **first** block's
   attention also attends to a fresh N(0, I) token of width D prepended to its keys and values
   (queries from the data tokens only) — the model's only source of randomness;
4. output from the last token: LayerNorm → MLP(D → H → d), added to the aligned last step
   (``residual=True``; the network predicts the increment), then shifted back by φ.

m members per input are m copies of the window with independent noise tokens. All noise comes
from the ``torch.Generator`` passed in: the same generator state gives the same draws, bit for
bit.

:class:`SLT`: :class:`closures.nn.tepc.TEPCAutoencoder` (n → m points) plus the transformer on
the m-point latents; profiles are normalised by fixed scalars (``stats`` = mean, std of the
training U). :meth:`SLT.loss_terms` gives the training objective's terms (weights 1 by default,
:data:`DEFAULT_WEIGHTS`):

* ``es_u``: energy score (fair, :func:`closures.losses.energy_score`) of the m decoded members
  against the normalised target U, divided by √n;
* ``es_latent``: the same in latent space against the encoded target (held fixed: no gradient
  flows into the target's encoding, so the encoder cannot shrink the latent to lower this term),
  divided by √m;
* ``rec``: mean squared reconstruction error of the autoencoder over the window and target;
* ``spectral``: mean distance of the Fourier amplitudes |rfft U| of the members and the target
  (:func:`closures.losses.spectral_amplitude_loss`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from solvers.validate import integer, number

from ..losses import energy_score, spectral_amplitude_loss
from ..nn.attention import TransformerBlock, check_heads, sinusoidal_positions
from ..nn.tepc import TEPCAutoencoder, mode1_phase, shift_phase

__all__ = ["SLT", "StochasticTransformer", "DEFAULT_WEIGHTS", "ensemble_loss", "check_stats"]

DEFAULT_WEIGHTS = {"es_u": 1.0, "es_latent": 1.0, "rec": 1.0, "spectral": 1.0}


def ensemble_loss(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Energy score of ``samples`` (m, B, D) against ``target`` (B, D), divided by √D: the fair
    CRPS per point in one dimension, comparable across sizes."""
    return energy_score(samples, target) / math.sqrt(target[0].numel())


def check_stats(stats) -> dict:
    """``{'mean': float, 'std': float > 0}`` or ValueError naming the problem."""
    if not isinstance(stats, dict) or set(stats) != {"mean", "std"}:
        raise ValueError(f"stats must be a dict with keys 'mean' and 'std', got {stats!r}")
    return {"mean": number("stats['mean']", stats["mean"]),
            "std": number("stats['std']", stats["std"], above=0)}


def _spectrum(z: torch.Tensor) -> torch.Tensor:
    zh = torch.fft.rfft(z)
    if z.shape[-1] % 2 == 0:
        zh = zh.clone()
        zh[..., -1] = 0
    return zh


class StochasticTransformer(nn.Module):
    """Window of latents (B, L, d) → next latent, ``members`` draws (module docstring)."""

    def __init__(self, latent_dim: int, window: int = 10, width: int = 64, heads: int = 16,
                 layers: int = 2, hidden: int = 128, align: bool = True, residual: bool = True):
        super().__init__()
        self.latent_dim = integer("latent_dim", latent_dim, 1)
        self.window = integer("window", window, 1)
        self.width = integer("width", width, 1)
        check_heads(heads, width)
        self.layers = integer("layers", layers, 1)
        self.align, self.residual = bool(align), bool(residual)
        if self.align and latent_dim < 4:
            raise ValueError(f"latent_dim must be ≥ 4 with align=True (a periodic latent "
                             f"profile), got {latent_dim}")
        self.embed = nn.Linear(latent_dim, width)
        self.register_buffer("positions", sinusoidal_positions(window, width), persistent=False)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, hidden, noise_token=(i == 0))
                                    for i in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(nn.Linear(width, integer("hidden", hidden, 1)), nn.GELU(),
                                  nn.Linear(hidden, latent_dim))

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None,
                members: int = 1, noise: torch.Tensor | None = None,
                context=None) -> torch.Tensor:
        """z (B, L, d) → (members, B, d). ``noise`` (members·B, 1, width), member-major, replaces
        the draws from ``generator`` (for tests); ``context`` is passed to :meth:`trunk`."""
        if z.ndim != 3 or z.shape[1] != self.window or z.shape[2] != self.latent_dim:
            raise ValueError(f"the transformer expects latents (batch, {self.window}, "
                             f"{self.latent_dim}), got {tuple(z.shape)}")
        members = integer("members", members, 1)
        B, L, d = z.shape
        if self.align:
            zh = _spectrum(z)
            phi = mode1_phase(zh[:, -1])                                      # (B,)
            z = torch.fft.irfft(shift_phase(zh, -phi[:, None].expand(B, L)), n=d)
        x = self.embed(z) + self.positions.to(z.dtype)
        x = x.repeat(members, 1, 1)                                           # (m·B, L, D)
        out = self.head(self.trunk(x, generator, noise, context))             # (m·B, d)
        if self.residual:
            out = out + z[:, -1].repeat(members, 1)
        if self.align:
            out = torch.fft.irfft(shift_phase(_spectrum(out), phi.repeat(members)), n=d)
        return out.reshape(members, B, d)

    def trunk(self, x: torch.Tensor, generator: torch.Generator | None,
              noise: torch.Tensor | None, context=None) -> torch.Tensor:
        """Tokens (m·B, L, D) → the normalised last token (m·B, D): the blocks (noise token in
        the first), then the final LayerNorm. Subclasses override it to use ``context``."""
        for i, block in enumerate(self.blocks):
            x = block(x, generator, noise=noise if i == 0 else None)
        return self.norm(x[:, -1])


class SLT(nn.Module):
    """The Stochastic Latent Transformer of profiles of ``points`` values (module docstring).

    ``latent_points`` (default n/4) and ``channels`` (4) size the autoencoder; ``window`` (L),
    ``width`` (default: the latent size), ``heads`` (default width/4: heads of width 4),
    ``layers`` (2), ``hidden`` (default 2·width), ``residual`` size the transformer; ``phase``
    the TEPC layers' alignment ('common', or the paper's 'channel': :mod:`closures.nn.tepc`);
    ``stats`` the normalisation of U. ``config`` holds every argument (the model card's architecture)."""

    def __init__(self, points: int, latent_points: int | None = None, channels: int = 4,
                 window: int = 10, width: int | None = None, heads: int | None = None,
                 layers: int = 2, hidden: int | None = None, residual: bool = True,
                 phase: str = "common", stats: dict | None = None):
        super().__init__()
        self.ae = TEPCAutoencoder(points, latent_points, channels, phase=phase)
        m = self.ae.latent_points
        width = m if width is None else integer("width", width, 1)
        heads = max(1, width // 4) if heads is None else heads
        hidden = 2 * width if hidden is None else hidden
        self.transformer = StochasticTransformer(m, window, width, heads, layers, hidden,
                                                 align=True, residual=residual)
        self.stats = check_stats(stats if stats is not None else {"mean": 0.0, "std": 1.0})
        self.config = dict(points=self.ae.points, latent_points=m, channels=self.ae.channels,
                           window=self.transformer.window, width=width, heads=int(heads),
                           layers=int(layers), hidden=int(hidden), residual=bool(residual),
                           phase=phase)

    @classmethod
    def from_config(cls, config: dict, stats: dict | None = None) -> "SLT":
        return cls(**config, stats=stats)

    @property
    def points(self) -> int:
        return self.ae.points

    @property
    def window(self) -> int:
        return self.transformer.window

    def normalise(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.stats["mean"]) / self.stats["std"]

    def denormalise(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.stats["std"] + self.stats["mean"]

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """Normalised profiles (…, n) → latents (…, m)."""
        return self.ae.encode(u)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (…, m) → normalised profiles (…, n)."""
        return self.ae.decode(z)

    any_length = False            # runs on profiles of ``points`` values only

    def noise_shape(self, batch: int, points: int) -> tuple[int, ...]:
        """The shape of the noise of one step of ``batch`` windows (the noise tokens; ``points``,
        the profile length, does not change it)."""
        return (batch, 1, self.transformer.width)

    def step(self, z: torch.Tensor, generator: torch.Generator | None = None,
             members: int = 1, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Latent windows (B, L, m) → next latents (members, B, m); ``noise`` (members·B, 1,
        width), member-major, replaces the tokens drawn from ``generator``."""
        return self.transformer(z, generator, members, noise=noise)

    def loss_terms(self, window: torch.Tensor, target: torch.Tensor,
                   generator: torch.Generator | None = None, members: int = 4,
                   reencode: bool = False) -> dict:
        """The training objective's terms (module docstring) for normalised windows (B, L, n) and
        targets (B, n), ``members`` draws per input.

        Targets (B, K, n) unroll the model K steps: each member continues from its own draws
        (fed back as drawn, or decoded and encoded again with ``reencode``, as in a rollout),
        gradients flow through all K steps, and the energy scores are the means over the K
        steps of the one-step terms; ``rec`` covers the window and all targets, ``spectral`` all
        members and steps."""
        members = integer("members", members, 2)
        if target.ndim == 2:
            target = target[:, None]                                          # K = 1
        B, L, K = window.shape[0], window.shape[1], target.shape[1]
        seq = torch.cat([window, target], dim=1)                              # (B, L+K, n)
        z = self.encode(seq)
        d = z.shape[-1]
        draws = [self.step(z[:, :L], generator, members)]                     # (k, B, m)
        win = z[:, :L].repeat(members, 1, 1)                                  # member-major
        for _ in range(1, K):
            fed = self.encode(self.decode(draws[-1])) if reencode else draws[-1]
            win = torch.cat([win[:, 1:], fed.reshape(members * B, 1, d)], dim=1)
            draws.append(self.step(win, generator, 1)[0].reshape(members, B, d))
        lat = torch.stack(draws, dim=2)                                       # (k, B, K, m)
        u = self.decode(lat)                                                  # (k, B, K, n)
        zt = z[:, L:].detach()
        return {"es_u": sum(ensemble_loss(u[:, :, j], target[:, j]) for j in range(K)) / K,
                "es_latent": sum(ensemble_loss(lat[:, :, j], zt[:, j]) for j in range(K)) / K,
                "rec": ((self.decode(z) - seq) ** 2).mean(),
                "spectral": spectral_amplitude_loss(u, target.expand_as(u), dims=1)}
