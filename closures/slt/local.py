"""The point-token Stochastic Transformer: an emulator of U(y, t) whose tokens are the points of
the profile, so that one trained model runs on profiles of any length at the training grid
spacing (a longer box at the same resolution) without retraining.

The SLT (:mod:`closures.slt.model`) compresses a profile of n points into one latent token per
save and attends over the L saves of its window; its autoencoder has weights per Fourier mode of
an n-point profile, so it models that n only. :class:`LocalTransformer` turns this around:

1. tokens: for every point y_i, the L values of its window U_{t−L+1…t}(y_i) and k fresh N(0, 1)
   values ξ_i (a noise field, white in y, drawn anew for every step and member), embedded by
   Linear(L + k → D);
2. blocks: pre-LayerNorm transformer blocks whose attention is local
   (:class:`closures.nn.conditioning.LocalAttention`): point i attends to the ``span`` = 2r + 1
   points i − r … i + r (periodic), with a learned bias per head and relative offset, then a
   pointwise MLP; B blocks see B·r points to each side;
3. output: LayerNorm → MLP(D → H → 1) per point, the increment added to U_t (``residual``);
   with ``conserve_mean`` its mean over the profile is removed first, so the profile's mean
   ⟨U⟩_y stays at its start value. In the beta-plane DNS ⟨U⟩_y obeys d⟨U⟩_y/dt = −μ⟨U⟩_y
   (the forcing has no k = 0 mode), so it stays 0 from rest; a model that sees only
   neighbourhoods cannot know the domain mean, and without this its free runs drift to one
   broad jet of mean ±0.2 (on betaplane-small, against the DNS's 5e-9). With ``dealias`` the
   increment is also cut to the modes a dealiased DNS of the same grid resolves,
   |k| ≤ n/3 (in units of 2π/L: the same physical wavenumber at the same spacing, for any n);
   the noise field is white in y, and without the cut its draws reach the grid scale.

Every weight acts on one point or on a relative offset (the mean removal treats all points
alike), so the model is equivariant to integer shifts of the profile, to round-off, and its
weights do not depend on n. The randomness is a field rather than the SLT's single noise
token: in a box twice as long, the two halves then get independent forcing, as in the DNS,
instead of sharing one random vector.

:class:`LocalSLT` — the model in the SLT's interface (normalisation of U by two scalars,
``encode``/``decode`` the identity: the "latent" is the normalised profile itself,
``step``, ``loss_terms``), so :func:`closures.slt.train_slt` (``kind='local'``), the
:class:`closures.slt.Emulator` and ``hybrid emulate slt`` run it. Its training objective is the
SLT's energy score on U and spectral loss (the latent energy score would repeat the first, and
there is no reconstruction: :data:`LOCAL_WEIGHTS`).
"""
from __future__ import annotations

import torch
from torch import nn

from solvers.validate import integer

from ..nn.attention import TransformerBlock, check_heads
from ..nn.conditioning import LocalAttention
from ..nn.diffusion import draw_noise
from .model import DEFAULT_WEIGHTS, SLT, check_stats

__all__ = ["LocalTransformer", "LocalSLT", "LOCAL_WEIGHTS", "is_local_config"]

LOCAL_WEIGHTS = {**DEFAULT_WEIGHTS, "es_latent": 0.0, "rec": 0.0}


def is_local_config(config) -> bool:
    """True for the architecture config of a :class:`LocalSLT`."""
    return isinstance(config, dict) and config.get("kind") == "local"


class LocalTransformer(nn.Module):
    """Window of profiles (B, L, n) → next profile (members, B, n) (module docstring).
    ``window`` L, ``width`` D, ``heads``, ``layers``, ``hidden`` H (MLPs), ``span`` 2r + 1
    points attended, ``noise_channels`` k, ``conserve_mean``: increments of zero mean,
    ``dealias``: increments cut to |k| ≤ n/3."""

    def __init__(self, window: int = 10, width: int = 24, heads: int = 2, layers: int = 3,
                 hidden: int = 48, span: int = 9, noise_channels: int = 4,
                 residual: bool = True, conserve_mean: bool = True, dealias: bool = False):
        super().__init__()
        self.window = integer("window", window, 1)
        self.width = integer("width", width, 1)
        check_heads(heads, width)
        self.layers = integer("layers", layers, 1)
        self.span = integer("span", span, 1)
        if span % 2 == 0:
            raise ValueError(f"span must be an odd number of points (the point and r neighbours "
                             f"on each side), got {span}")
        self.noise_channels = integer("noise_channels", noise_channels, 1)
        self.residual, self.conserve_mean = bool(residual), bool(conserve_mean)
        self.dealias = bool(dealias)
        if (self.conserve_mean or self.dealias) and not self.residual:
            raise ValueError("conserve_mean and dealias need residual=True (they act on the "
                             "increment)")
        self.embed = nn.Linear(window + noise_channels, width)
        self.blocks = nn.ModuleList()
        for _ in range(self.layers):
            block = TransformerBlock(width, heads, integer("hidden", hidden, 1))
            block.attn = LocalAttention(width, heads, span)
            self.blocks.append(block)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def trunk(self, x: torch.Tensor, context=None) -> torch.Tensor:
        """The blocks and the output LayerNorm on the tokens (m·B, n, D) (``context`` unused
        here: a conditioned subclass's parameters)."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def noise_shape(self, batch: int, points: int) -> tuple[int, int, int]:
        """The shape of the noise field of one step of ``batch`` windows of ``points`` points."""
        return (batch, points, self.noise_channels)

    def forward(self, u: torch.Tensor, generator: torch.Generator | None = None,
                members: int = 1, noise: torch.Tensor | None = None,
                context=None) -> torch.Tensor:
        """u (B, L, n) → (members, B, n); ``noise`` (members·B, n, k), member-major, replaces
        the draws from ``generator``; ``context``: passed to :meth:`trunk`."""
        if u.ndim != 3 or u.shape[1] != self.window:
            raise ValueError(f"the transformer expects windows (batch, {self.window}, points), "
                             f"got {tuple(u.shape)}")
        members = integer("members", members, 1)
        B, L, n = u.shape
        if noise is None:
            noise = draw_noise(self.noise_shape(members * B, n), generator, u.device, u.dtype)
        elif tuple(noise.shape) != self.noise_shape(members * B, n):
            raise ValueError(f"noise must have shape {self.noise_shape(members * B, n)}, got "
                             f"{tuple(noise.shape)}")
        x = torch.cat([u.transpose(1, 2).repeat(members, 1, 1), noise.to(u.dtype)], dim=-1)
        x = self.trunk(self.embed(x), context)                               # (m·B, n, D)
        out = self.head(x)[..., 0]                                           # (m·B, n)
        if self.dealias:
            spec = torch.fft.rfft(out)
            spec[..., n // 3 + 1:] = 0
            if self.conserve_mean:
                spec[..., 0] = 0
            out = torch.fft.irfft(spec, n=n)
        elif self.conserve_mean:
            out = out - out.mean(dim=-1, keepdim=True)
        if self.residual:
            out = out + u[:, -1].repeat(members, 1)
        return out.reshape(members, B, n)


class LocalSLT(SLT):
    """The point-token emulator in the SLT's interface (module docstring). ``points``: the
    profile length of the training data (recorded; the model runs on any length); the other
    arguments are :class:`LocalTransformer`'s; ``stats``: mean and std of U."""

    def __init__(self, points: int, window: int = 10, width: int = 24, heads: int = 2,
                 layers: int = 3, hidden: int = 48, span: int = 9, noise_channels: int = 4,
                 residual: bool = True, conserve_mean: bool = True, dealias: bool = False,
                 stats: dict | None = None, kind: str = "local"):
        nn.Module.__init__(self)
        if kind != "local":
            raise ValueError(f"kind must be 'local' for a LocalSLT, got {kind!r}")
        self.transformer = LocalTransformer(window, width, heads, layers, hidden, span,
                                            noise_channels, residual, conserve_mean,
                                            dealias)
        self.stats = check_stats(stats if stats is not None else {"mean": 0.0, "std": 1.0})
        self.config = dict(kind="local", points=integer("points", points, 1),
                           window=self.transformer.window, width=int(width), heads=int(heads),
                           layers=int(layers), hidden=int(hidden), span=int(span),
                           noise_channels=int(noise_channels), residual=bool(residual),
                           conserve_mean=bool(conserve_mean), dealias=bool(dealias))

    @property
    def points(self) -> int:
        return self.config["points"]

    any_length = True

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """The identity: the model steps normalised profiles."""
        return u

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The identity."""
        return z

    def noise_shape(self, batch: int, points: int) -> tuple[int, ...]:
        return self.transformer.noise_shape(batch, points)

    def step(self, z: torch.Tensor, generator: torch.Generator | None = None,
             members: int = 1, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised windows (B, L, n) → next profiles (members, B, n); ``noise`` (members·B,
        n, k), member-major, replaces the field drawn from ``generator``."""
        return self.transformer(z, generator, members, noise=noise)
