"""A noise-prediction network over a window of time steps of latent profiles, with attention over
time: :class:`SequenceDenoiser`.

The window holds K = ``context`` known steps followed by H = ``horizon`` steps being denoised,
each step a latent profile of m values. Inputs: the noisy steps x_τ (B, H, m) at diffusion time
t = τ/T ∈ (0, 1], the known steps c (B, K, m) and a conditioning sequence y (B, K + H, m) over the
whole window. Output: the predicted noise ε̂ (B, H, m) of the H noisy steps.

1. alignment (``align=True``): every profile of the window is rolled by the same whole number of
   latent points, s = round(−φ m/2π) with φ the phase of Fourier mode 1 of y at the last known
   step (K − 1), so that that profile's mode 1 has a phase within ±π/m of 0; the output is rolled
   back. Rolling moves every Fourier mode, the Nyquist mode included, so the network commutes
   exactly with rolls of its inputs by whole latent points (any shift of a profile of n points by
   a multiple of n/m points, through an equivariant encoder), and approximately with other shifts;
2. tokens, one per step: Linear(2m + 1 → D) of [value, y, known flag], value = c for the known
   steps and x_τ for the others, plus the sinusoidal encoding of the position 0 … K + H − 1
   (:func:`closures.nn.attention.sinusoidal_positions`) and the embedding of t
   (:class:`closures.nn.embedding.SinusoidalEmbedding` → Linear → SiLU → Linear(→ D)) on every
   token;
3. ``layers`` pre-LayerNorm transformer blocks (:class:`closures.nn.attention.TransformerBlock`,
   no noise token): every step attends to every other, over the whole window;
4. output from the H noisy steps' tokens: LayerNorm → Linear(D → hidden) → GELU →
   Linear(hidden → m).

With H = 1 this predicts one step from the K before it (an autoregressive sequence model); with
a larger H, a whole window at once.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from solvers.validate import integer

from .attention import TransformerBlock, check_heads, sinusoidal_positions
from .embedding import SinusoidalEmbedding, as_time
from .tepc import mode1_phase

__all__ = ["SequenceDenoiser", "roll_points", "alignment_shift"]


def alignment_shift(profiles: torch.Tensor) -> torch.Tensor:
    """s = round(−φ m/2π) (B,), long, for profiles (B, m) whose mode 1 has phase φ: rolling a
    profile by −s points (``roll_points(p, s)``) brings that phase within ±π/m of 0."""
    m = profiles.shape[-1]
    phi = mode1_phase(torch.fft.rfft(profiles))
    return torch.round(-phi * (m / (2 * math.pi))).long()


def roll_points(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """out[b, …, j] = u[b, …, (j + s_b) mod m] for u (B, …, m) and whole shifts s (B,)."""
    m = u.shape[-1]
    idx = (torch.arange(m, device=u.device) + s.to(u.device).reshape(-1, *([1] * (u.ndim - 1))))
    return torch.gather(u, -1, (idx % m).expand(u.shape))


class SequenceDenoiser(nn.Module):
    """ε̂(x_τ, t | known steps, conditioning) over a window of ``context`` + ``horizon`` steps of
    ``latent_points`` values (module docstring). ``width`` D, ``heads``, ``layers``, ``hidden``
    size the transformer, ``time_dim`` the diffusion-time embedding."""

    def __init__(self, latent_points: int, context: int = 4, horizon: int = 1, width: int = 64,
                 heads: int = 4, layers: int = 3, hidden: int = 128, time_dim: int = 64,
                 align: bool = True):
        super().__init__()
        self.latent_points = integer("latent_points", latent_points, 2)
        self.context = integer("context", context, 1)
        self.horizon = integer("horizon", horizon, 1)
        self.width = integer("width", width, 1)
        check_heads(heads, width)
        integer("layers", layers, 1)
        integer("hidden", hidden, 1)
        self.align = bool(align)
        m, D, W = self.latent_points, self.width, self.context + self.horizon
        self.embed = nn.Linear(2 * m + 1, D)
        self.register_buffer("positions", sinusoidal_positions(W, D), persistent=False)
        known = torch.zeros(W)
        known[:self.context] = 1.0
        self.register_buffer("known", known, persistent=False)
        self.time = nn.Sequential(SinusoidalEmbedding(integer("time_dim", time_dim, 2)),
                                  nn.Linear(time_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.blocks = nn.ModuleList(TransformerBlock(D, heads, hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(D)
        self.head = nn.Sequential(nn.Linear(D, hidden), nn.GELU(), nn.Linear(hidden, m))

    def forward(self, x: torch.Tensor, t, context: torch.Tensor,
                cond: torch.Tensor) -> torch.Tensor:
        """x (B, H, m) noisy steps, t diffusion time(s) in (0, 1] (a float or (B,)), context
        (B, K, m) known steps, cond (B, K + H, m) → ε̂ (B, H, m)."""
        K, H, m = self.context, self.horizon, self.latent_points
        B = x.shape[0]
        for name, v, want in (("x", x, (B, H, m)), ("context", context, (B, K, m)),
                              ("cond", cond, (B, K + H, m))):
            if tuple(v.shape) != want:
                raise ValueError(f"the denoiser expects {name} of shape {want}, got "
                                 f"{tuple(v.shape)}")
        seq = torch.cat([context.to(x.dtype), x], dim=1)                   # (B, K+H, m)
        cond = cond.to(x.dtype)
        if self.align:
            s = alignment_shift(cond[:, K - 1])
            seq, cond = roll_points(seq, s), roll_points(cond, s)
        flag = self.known.to(x.dtype).expand(B, K + H)[..., None]
        tok = self.embed(torch.cat([seq, cond, flag], dim=-1)) + self.positions.to(x.dtype)
        tt = as_time(t, batch=B, device=x.device, dtype=x.dtype)
        tok = tok + self.time(tt)[:, None, :]
        for block in self.blocks:
            tok = block(tok)
        out = self.head(self.norm(tok[:, K:]))                              # (B, H, m)
        return roll_points(out, -s) if self.align else out
