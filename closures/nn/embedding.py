"""Embeddings of the diffusion time t ∈ (0, 1] as feature vectors (B, dim).

* :class:`GaussianFourierEmbedding` — random Fourier features [sin 2πωt, cos 2πωt] with fixed
  frequencies ω ~ N(0, scale²) (Song et al.'s choice for continuous-time score models). The
  frequencies are a buffer drawn from a ``torch.Generator`` seeded with ``seed``, so two models
  built with the same arguments embed identically, and the buffer is saved in ``state_dict``.
* :class:`SinusoidalEmbedding` — deterministic geometric frequencies ω_k = max_frequency^(k/(h−1)),
  k = 0…h−1 (h = dim/2), features [sin ω t, cos ω t]: resolves t from O(1) down to 1/max_frequency.

Both take t as a float, a 0-d tensor or a (B,) tensor and return float32 (B, dim) (B = 1 for a
scalar). :func:`time_embedding` builds one by name.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GaussianFourierEmbedding", "SinusoidalEmbedding", "time_embedding", "as_time"]


def as_time(t, batch: int | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """t (float, 0-d or (B,) tensor) as a (B,) tensor; a scalar is repeated ``batch`` times."""
    t = torch.as_tensor(t, dtype=dtype, device=device)
    if t.ndim == 0:
        t = t.reshape(1).expand(1 if batch is None else batch)
    elif t.ndim != 1:
        raise ValueError(f"diffusion time t must be a scalar or a (B,) tensor, got shape "
                         f"{tuple(t.shape)}")
    elif batch is not None and t.shape[0] not in (1, batch):
        raise ValueError(f"diffusion time t has {t.shape[0]} entries for a batch of {batch}")
    elif batch is not None and t.shape[0] == 1:
        t = t.expand(batch)
    return t


def _even_dim(dim) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"time embedding dim must be an even integer ≥ 2, got {dim!r}")
    return int(dim)


class GaussianFourierEmbedding(nn.Module):
    """[sin(2π ω t), cos(2π ω t)] with ω (dim/2,) ~ N(0, scale²), fixed (module docstring)."""

    def __init__(self, dim: int, scale: float = 30.0, seed: int = 0):
        super().__init__()
        self.dim = _even_dim(dim)
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer("frequencies", scale * torch.randn(self.dim // 2, generator=g))

    def forward(self, t) -> torch.Tensor:
        t = as_time(t, device=self.frequencies.device, dtype=self.frequencies.dtype)
        arg = 2 * math.pi * t[:, None] * self.frequencies[None, :]
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


class SinusoidalEmbedding(nn.Module):
    """[sin(ω_k t), cos(ω_k t)] with ω_k = max_frequency^(k/(dim/2 − 1)) (module docstring)."""

    def __init__(self, dim: int, max_frequency: float = 1000.0):
        super().__init__()
        self.dim = _even_dim(dim)
        if not (isinstance(max_frequency, (int, float)) and max_frequency >= 1):
            raise ValueError(f"max_frequency must be a number ≥ 1, got {max_frequency!r}")
        h = self.dim // 2
        k = torch.arange(h, dtype=torch.float64) / max(h - 1, 1)
        self.register_buffer("frequencies", (float(max_frequency) ** k).to(torch.float32))

    def forward(self, t) -> torch.Tensor:
        t = as_time(t, device=self.frequencies.device, dtype=self.frequencies.dtype)
        arg = t[:, None] * self.frequencies[None, :]
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


def time_embedding(kind: str, dim: int, **kwargs) -> nn.Module:
    """A time embedding by name: 'gaussian' (:class:`GaussianFourierEmbedding`) or 'sinusoidal'
    (:class:`SinusoidalEmbedding`), built with ``dim`` and ``kwargs``."""
    kinds = {"gaussian": GaussianFourierEmbedding, "sinusoidal": SinusoidalEmbedding}
    try:
        cls = kinds[str(kind).lower()]
    except KeyError:
        raise ValueError(f"time embedding kind must be one of {', '.join(kinds)}, "
                         f"got {kind!r}") from None
    return cls(dim, **kwargs)
