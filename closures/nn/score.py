"""Conditional score network: two Fourier-operator branches, merged (latent score-based closure).

:class:`ConditionalFNOScore` estimates the score ∇ₓ log p_t(x | c) of a noised target x_t
(B, channels, H, W) at diffusion time t given a condition c (B, cond_channels, H, W):

* target branch: 1×1 lift ``channels → width``; ``layers`` Fourier layers, and before each one the
  time embedding is added per channel (a learned shift: GaussianFourierEmbedding(time_dim) →
  Linear(time_dim, time_dim) → SiLU, shared, then Linear(time_dim, width) per layer);
* condition branch: 1×1 lift ``cond_channels → width``; ``layers`` Fourier layers (absent when
  ``cond_channels = 0``: an unconditional score);
* merge: concatenation (2·width channels) → 1×1 conv to ``width`` → GELU → 1×1 conv to
  ``proj_hidden`` → GELU → 1×1 conv to ``channels``.

With ``sigma`` set (default 30, the VE SDE's σ) the output is divided by std(t) of that SDE, so
the network body predicts −z (order one at every t) and the score gets the right 1/std scale;
``sigma=None`` returns the body's output as the score. Every part is periodic and equivariant
under whole-cell shifts of x and c together.

Parameter counts (``time_dim=256``, ``proj_hidden=128``, 1 channel each, as built here; real
numbers, complex weights count twice):

* P-CDM size, 64² physical fields, ``width=40, modes=6, layers=4``: 1,818,409 (paper ≈ 2.2M);
* L-CDM size, 16² latents, ``width=20, modes=4, layers=4``: 272,629 (paper ≈ 0.3M).

Most of it is the spectral weights, 2·layers·width²·(2·modes−1)·modes·2: 1,689,600 and 179,200.
The paper's FNO keeps 2·modes rows in ky where this one keeps 2·modes−1 (symmetric, no −modes
row; see :mod:`closures.nn.fourier`), which accounts for most of the difference in the P-CDM size.
"""
from __future__ import annotations

import torch
from torch import nn

from ..losses import SIGMA, ve_marginal_std
from .embedding import GaussianFourierEmbedding, as_time
from .fourier import Conv1x1, FourierLayer, _positive_int, activation, check_modes

__all__ = ["ConditionalFNOScore", "count_parameters"]


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (real) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class ConditionalFNOScore(nn.Module):
    """Score s(x_t, t, c) of the conditional VE diffusion (module docstring).

    ``forward(x, t, cond)``: x (B, channels, H, W), t a float or (B,) tensor in (0, 1], cond
    (B, cond_channels, H, W) (None when ``cond_channels == 0``) → (B, channels, H, W).
    ``forward(x, t, features=condition_features(cond))`` gives the same result, bit for bit: a
    sampler that calls the network many times with one condition computes its branch once.
    ``config`` holds the constructor arguments (for model cards and rebuilding).
    """

    def __init__(self, channels: int = 1, cond_channels: int = 1, width: int = 20,
                 modes: int = 4, layers: int = 4, time_dim: int = 256, proj_hidden: int = 128,
                 sigma: float | None = SIGMA, embedding_scale: float = 30.0,
                 activation_name: str = "gelu"):
        super().__init__()
        self.channels = _positive_int("channels", channels)
        if isinstance(cond_channels, bool) or not isinstance(cond_channels, int) \
                or cond_channels < 0:
            raise ValueError(f"cond_channels must be an integer ≥ 0, got {cond_channels!r}")
        self.cond_channels = cond_channels
        self.width = _positive_int("width", width)
        self.modes = _positive_int("modes", modes)
        self.n_layers = _positive_int("layers", layers)
        _positive_int("proj_hidden", proj_hidden)
        if sigma is not None:
            sigma = float(sigma)
            ve_marginal_std(0.5, sigma)                      # validates sigma
        self.sigma = sigma
        self.config = dict(channels=channels, cond_channels=cond_channels, width=width,
                           modes=modes, layers=layers, time_dim=time_dim,
                           proj_hidden=proj_hidden, sigma=sigma,
                           embedding_scale=embedding_scale, activation_name=activation_name)

        def branch():
            return nn.ModuleList(
                FourierLayer(width, modes,
                             activation_name=activation_name if i < layers - 1 else None)
                for i in range(layers))

        self.embed = nn.Sequential(GaussianFourierEmbedding(time_dim, scale=embedding_scale),
                                   nn.Linear(time_dim, time_dim), nn.SiLU())
        self.time_shift = nn.ModuleList(nn.Linear(time_dim, width) for _ in range(layers))
        self.lift_x = Conv1x1(self.channels, width)
        self.branch_x = branch()
        if cond_channels > 0:
            self.lift_c = Conv1x1(cond_channels, width)
            self.branch_c = branch()
        else:
            self.lift_c = None
            self.branch_c = None
        merged = 2 * width if cond_channels > 0 else width
        self.merge = nn.Sequential(Conv1x1(merged, width), activation(activation_name),
                                   Conv1x1(width, proj_hidden), activation(activation_name),
                                   Conv1x1(proj_hidden, self.channels))

    def condition_features(self, cond: torch.Tensor, B: int | None = None, H: int | None = None,
                           W: int | None = None) -> torch.Tensor:
        """The condition branch's output (B, width, H, W) for ``cond`` (shape-checked against
        (B, cond_channels, H, W) where those are given)."""
        if cond is None:
            raise ValueError("ConditionalFNOScore: cond is required (cond_channels = "
                             f"{self.cond_channels})")
        want = (cond.shape[0] if B is None else B, self.cond_channels,
                cond.shape[-2] if H is None else H, cond.shape[-1] if W is None else W)
        if cond.ndim != 4 or tuple(cond.shape) != want:
            raise ValueError(f"ConditionalFNOScore expects cond of shape {want}, got "
                             f"{tuple(cond.shape)}")
        c = self.lift_c(cond)
        for layer in self.branch_c:
            c = layer(c)
        return c

    def forward(self, x: torch.Tensor, t, cond: torch.Tensor | None = None, *,
                features: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"ConditionalFNOScore expects x of shape (B, {self.channels}, H, W), "
                             f"got {tuple(x.shape)}")
        B, _, H, W = x.shape
        check_modes(self.modes, H, W, "ConditionalFNOScore")
        t = as_time(t, batch=B, device=x.device, dtype=x.dtype)
        emb = self.embed(t)                                           # (B, time_dim)
        h = self.lift_x(x)
        for layer, shift in zip(self.branch_x, self.time_shift):
            h = layer(h + shift(emb)[:, :, None, None])
        if self.branch_c is not None:
            if features is None:
                features = self.condition_features(cond, B, H, W)
            h = torch.cat([h, features], dim=1)
        out = self.merge(h)
        if self.sigma is not None:
            out = out / ve_marginal_std(t, self.sigma).to(out.dtype)[:, None, None, None]
        return out
