"""Attention blocks of the stochastic latent transformer: multi-head attention whose keys and
values may be extended by extra tokens (the noise token), and pre-LayerNorm transformer blocks.

:class:`MultiHeadAttention` — queries from the data tokens x (B, T, D); keys and values from
``[extra; x]`` where ``extra`` (B, E, D) are tokens prepended to the keys and values only (none by
default). With E = 1 and extra ~ N(0, I) drawn afresh per call this is the Stochastic Latent
Transformer's noise injection: every output token may attend to the noise, so the block's output
is a random function of the window. No mask: every token sees the whole window.

:class:`TransformerBlock` — pre-LN: x ← x + Attn(LN(x), extra), x ← x + MLP(LN(x)),
MLP = Linear(D, H) → GELU → Linear(H, D). ``noise_token=True`` makes the block draw its own
N(0, I) token from the ``generator`` passed to ``forward`` (the caller's ``torch.Generator``: the
same generator state gives the same output, bit for bit).

The attention and the norms are separate attributes (``attn``, ``norm1``, ``norm2``) so that a
local (windowed) attention or an adaptive LayerNorm (AdaLN: scale and shift from a conditioning
vector) can replace them (:mod:`closures.nn.conditioning`). The pieces they share:
:func:`attend` (softmax(q·kᵀ/√w + bias) v), :func:`softmax_last`, and the head splitting and
output projection of :class:`MultiHeadAttention` (``split_heads``, ``kv_heads``,
``merge_heads``, ``combine``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from solvers.validate import integer

from .diffusion import draw_noise

__all__ = ["MultiHeadAttention", "TransformerBlock", "attend", "softmax_last",
           "sinusoidal_positions", "check_heads", "FUSED_KEYS"]

FUSED_KEYS = 32     # from this many keys on (and without a bias) attend() calls torch's kernel


def check_heads(heads: int, width: int) -> int:
    """``heads`` for tokens of ``width``, checked when a model is built (so the error names the
    model's arguments): an integer in [1, width] that divides ``width``; ValueError naming
    heads."""
    integer("heads", heads, 1, width)
    if width % heads:
        raise ValueError(f"heads must divide width ({width}), got {heads}")
    return heads


def sinusoidal_positions(steps: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The sinusoidal encoding (Vaswani et al.) of positions 0 … steps−1, shape (steps, dim):
    sin(p ω_j) in the even columns, cos(p ω_j) in the odd ones, ω_j = 10000^{−2j/dim}."""
    steps, dim = integer("steps", steps, 1), integer("dim", dim, 1)
    p = torch.arange(steps, device=device, dtype=torch.float64)[:, None]
    j = torch.arange((dim + 1) // 2, device=device, dtype=torch.float64)
    ang = p * torch.exp(-math.log(10000.0) * 2 * j / dim)
    out = torch.zeros(steps, dim, device=device, dtype=torch.float64)
    out[:, 0::2] = torch.sin(ang)
    out[:, 1::2] = torch.cos(ang[:, :dim // 2])
    return out.to(dtype)


def softmax_last(s: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis, exp(s − max s) / Σ exp(s − max s), written out: about 4× faster
    on the CPU than ``torch.softmax`` for short rows. Entries −inf get weight 0."""
    e = torch.exp(s - s.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
           bias: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention of queries q (…, T, w) on keys k and values v (…, S, w):
    softmax_S(q·kᵀ/√w + bias) v, shape (…, T, w). ``bias`` (broadcast to (…, T, S)) is added to
    the scores, −inf masking a key out.

    Written out (:func:`softmax_last`) for short rows; with S ≥ :data:`FUSED_KEYS` keys and no
    bias, torch's fused ``scaled_dot_product_attention`` (equal to round-off). Measured on one CPU
    thread, 1000 samples × 4 heads of width 16: the written-out form is 2–3× faster forward at
    S = 5–11 keys, the fused kernel 2.3× faster at S = 33 and 68 (and in a whole denoiser pass on
    strided heads, S = 36, 1.8×)."""
    if bias is None and k.shape[-2] >= FUSED_KEYS:
        return F.scaled_dot_product_attention(q, k, v)
    s = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        s = s + bias
    return softmax_last(s) @ v


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention, ``heads`` heads of width ``dim // heads``;
    ``forward(x, extra=None)``: queries from x (B, T, D), keys and values from [extra; x]."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.dim = integer("dim", dim, 1)
        self.heads = integer("heads", heads, 1)
        if dim % heads:
            raise ValueError(f"heads must divide dim (the token width {dim}), got {heads}")
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        src = x if extra is None else torch.cat([extra.to(x.dtype), x], dim=1)
        return self.combine(self.q(x), self.kv(src))

    def split_heads(self, q: torch.Tensor, kv: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Projected queries (B, T, D) and keys|values (B, S, 2D) → q, k, v per head:
        (B, h, T, w), (B, h, S, w), (B, h, S, w)."""
        B, T, D = q.shape
        return (q.reshape(B, T, self.heads, D // self.heads).transpose(1, 2),
                *self.kv_heads(kv))

    def kv_heads(self, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected keys|values (B, S, 2D) → k, v per head, each (B, h, S, w)."""
        B, S, D2 = kv.shape
        h = self.heads
        k, v = kv.reshape(B, S, 2, h, D2 // (2 * h)).permute(2, 0, 3, 1, 4)
        return k, v

    def merge_heads(self, o: torch.Tensor) -> torch.Tensor:
        """Per-head outputs (B, h, T, w) → the output projection of their concatenation
        (B, T, D)."""
        B, h, T, w = o.shape
        return self.out(o.transpose(1, 2).reshape(B, T, h * w))

    def combine(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """The attention of projected queries (B, T, D) on projected keys|values (B, S, 2D)
        (:func:`attend` per head), through the output projection: (B, T, D)."""
        return self.merge_heads(attend(*self.split_heads(q, kv)))


class TransformerBlock(nn.Module):
    """A pre-LayerNorm transformer block (module docstring); ``noise_token``: the attention's keys
    and values get a fresh N(0, I) token of width ``dim`` per sample."""

    def __init__(self, dim: int, heads: int, hidden: int, noise_token: bool = False):
        super().__init__()
        self.noise_token = bool(noise_token)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, integer("hidden", hidden, 1)), nn.GELU(),
                                 nn.Linear(hidden, dim))

    def draw_noise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """A fresh N(0, I) token (B, 1, D) for every sample of x, from ``generator``
        (:func:`closures.nn.diffusion.draw_noise`: drawn on the generator's device, then moved
        to x's)."""
        return draw_noise((x.shape[0], 1, x.shape[2]), generator, x.device, x.dtype)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D) → (B, T, D). A noise-token block draws its token from ``generator``
        unless ``noise`` (B, 1, D) is given."""
        extra = None
        if self.noise_token:
            extra = self.draw_noise(x, generator) if noise is None else noise
        x = x + self.attn(self.norm1(x), extra)
        return x + self.mlp(self.norm2(x))
