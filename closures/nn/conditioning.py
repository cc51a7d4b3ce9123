"""Blocks that condition a transformer on a vector of PDE parameters, and local attention on
periodic profiles.

Conditioning vector. c ∈ R^P is the *normalised* parameter vector (e.g. c = (β − β₀)/s for one
parameter; the caller normalises, :class:`closures.slt.conditioned.ConditionedSLT` does it with
the normalisation stored in the model). A batch carries one c per sample, shape (B, P), or one
for all, shape (1, P).

:class:`AdaptiveLayerNorm` (AdaLN) — a LayerNorm whose output is scaled and shifted by a small
network of c:

    y = LN(x) ⊙ (1 + γ(c)) + δ(c),     [γ, δ] = W₂ SiLU(W₁ c + b₁) + b₂   (each of width D),

with LN(x) = w ⊙ (x − mean x)/√(var x + eps) + b the plain LayerNorm (its own elementwise affine
w, b, the same tensors and names as ``nn.LayerNorm``). W₂ and b₂ start at zero, so at
initialisation γ = δ = 0 and y = LN(x) exactly: an AdaLN that replaces a trained LayerNorm (its
w, b copied) computes the same values, bit for bit, whatever c. A gradient step moves W₂ first;
γ, δ then depend on c through the hidden layer. ``frozen = True`` fixes the modulation at the
identity (γ = δ = 0: the output is LN(x), c is ignored), e.g. while pre-training at one
parameter value.

:class:`LocalAttention` — multi-head attention among the N tokens of a periodic profile (token i
at point y_i = i·Δy) in which token i attends only to the ``window`` = 2r + 1 points
i − r … i + r (indices mod N), with a learned bias per head per relative offset o ∈ [−r, r]
added to the scores (a relative position encoding; zero at initialisation):

    out_i = Σ_o softmax_o(q_i·k_{i+o}/√w + b_{h,o}) v_{i+o}.

The weights do not depend on N, so the same module runs on profiles of another length (a longer
box at the same resolution), and a cyclic shift of the tokens shifts the output the same way.
When the window covers the profile (2r + 1 ≥ N) every point is attended exactly once, at the
offsets −⌊(N−1)/2⌋ … ⌊N/2⌋; with zero bias this is then the full attention of
:class:`closures.nn.attention.MultiHeadAttention` with the same weights. Extra tokens (the
Stochastic Latent Transformer's noise token) are attended by every query with bias 0.

:class:`ConcatConditionedAttention` — the earlier design of parameter conditioning: c is
concatenated to the inputs of the query, key and value projections, q = W_q [x; c] + b_q (and
the same for k, v), written as the plain projection plus U_q c with U_q (bias-free) zero at
initialisation, so the block starts equal to the unconditioned one.

:class:`ConditionedBlock` — the pre-LN transformer block of :mod:`closures.nn.attention` with
these parts: ``conditioning='adaln'`` (both LayerNorms AdaLN) or ``'concat'`` (the attention
above), and ``window`` (None: full attention over the tokens; an odd integer: local attention,
for tokens that are the points of a periodic profile).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from solvers.validate import integer

from .attention import MultiHeadAttention, TransformerBlock, softmax_last

__all__ = ["AdaptiveLayerNorm", "LocalAttention", "ConcatConditionedAttention",
           "ConditionedBlock", "CONDITIONINGS", "check_conditioning", "local_offsets",
           "ConditioningSwitch", "member_conditions"]

CONDITIONINGS = ("adaln", "concat")


def check_conditioning(conditioning) -> str:
    """``conditioning``, one of :data:`CONDITIONINGS`, or ValueError naming them."""
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got "
                         f"{conditioning!r}")
    return conditioning


class ConditioningSwitch:
    """What a conditioned transformer (an ``nn.Module`` mixing this in first) shares:
    ``frozen``, :meth:`conditioning_parameters` and :meth:`freeze_conditioning`."""

    frozen = False

    def conditioning_parameters(self) -> list[nn.Parameter]:
        """The weights that act on the conditioning vector only (every AdaLN's MLP, every
        concatenation attention's weights on c)."""
        out = []
        for mod in self.modules():
            if isinstance(mod, AdaptiveLayerNorm):
                out += list(mod.modulation.parameters())
            elif isinstance(mod, ConcatConditionedAttention):
                out += [mod.q_cond.weight, mod.kv_cond.weight]
        return out

    def freeze_conditioning(self, frozen: bool = True) -> None:
        """Fix every AdaLN at the identity (``frozen``) or let it act and learn, and stop or
        restart the gradient of :meth:`conditioning_parameters`. (A concatenation attention is
        frozen by its caller, which passes c = 0 while ``frozen``.)"""
        self.frozen = bool(frozen)
        for mod in self.modules():
            if isinstance(mod, AdaptiveLayerNorm):
                mod.frozen = self.frozen
        for p in self.conditioning_parameters():
            p.requires_grad_(not self.frozen)


def member_conditions(cond, batch: int, cond_dim: int, members: int, frozen: bool,
                      dtype: torch.dtype) -> torch.Tensor:
    """The conditioning vectors of a stochastic step of ``members`` draws of ``batch`` windows:
    ``cond`` (batch or 1, cond_dim) checked (ValueError naming the shape expected), as
    ``dtype``, repeated member-major to (members·batch, cond_dim) when it has a row per window;
    zeros (1, cond_dim) when ``frozen`` (the identity conditioning)."""
    if not torch.is_tensor(cond) or cond.ndim != 2 or cond.shape[0] not in (1, batch) \
            or cond.shape[1] != cond_dim:
        shape = tuple(cond.shape) if torch.is_tensor(cond) else type(cond).__name__
        raise ValueError(f"the normalised parameters must have shape ({batch} or 1, "
                         f"{cond_dim}), got {shape}")
    cond = cond.to(dtype)
    if frozen:
        return torch.zeros_like(cond[:1])
    return cond.repeat(members, 1) if cond.shape[0] > 1 else cond


def _cond_rows(cond: torch.Tensor, batch: int, cond_dim: int, what: str) -> torch.Tensor:
    """``cond`` checked as (batch or 1, cond_dim)."""
    if not torch.is_tensor(cond) or cond.ndim != 2 or cond.shape[1] != cond_dim \
            or cond.shape[0] not in (1, batch):
        shape = tuple(cond.shape) if torch.is_tensor(cond) else type(cond).__name__
        raise ValueError(f"{what}: the conditioning vector must have shape ({batch} or 1, "
                         f"{cond_dim}), got {shape}")
    return cond


class AdaptiveLayerNorm(nn.LayerNorm):
    """LayerNorm of the last axis (width ``dim``) scaled and shifted by an MLP of the conditioning
    vector (``cond_dim`` values, hidden width ``hidden``): module docstring. ``forward(x, cond)``
    with x (B, …, dim) and cond (B or 1, cond_dim)."""

    def __init__(self, dim: int, cond_dim: int, hidden: int = 32, eps: float = 1e-5):
        super().__init__(integer("dim", dim, 1), eps=eps)
        self.cond_dim = integer("cond_dim", cond_dim, 1)
        self.hidden = integer("hidden", hidden, 1)
        self.modulation = nn.Sequential(nn.Linear(cond_dim, hidden), nn.SiLU(),
                                        nn.Linear(hidden, 2 * dim))
        nn.init.zeros_(self.modulation[-1].weight)
        nn.init.zeros_(self.modulation[-1].bias)
        self.frozen = False

    def scale_shift(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ(c), δ(c)), each (B or 1, dim)."""
        return self.modulation(cond).chunk(2, dim=-1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        y = super().forward(x)
        if self.frozen:
            return y
        if cond is None:
            raise ValueError("AdaptiveLayerNorm needs the conditioning vector cond (or "
                             "frozen=True: the plain LayerNorm)")
        cond = _cond_rows(cond, x.shape[0], self.cond_dim, "AdaptiveLayerNorm")
        scale, shift = self.scale_shift(cond.to(x.dtype))
        view = (scale.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
        return y * (1 + scale.reshape(view)) + shift.reshape(view)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, cond_dim={self.cond_dim}, hidden={self.hidden}"


def local_offsets(n: int, window: int) -> torch.Tensor:
    """The relative offsets a point attends to on a periodic profile of n points with a window
    of ``window`` = 2r + 1 points: −r … r when 2r + 1 ≤ n, else every point once,
    −⌊(n−1)/2⌋ … ⌊n/2⌋ (all within [−r, r])."""
    n, window = integer("n", n, 1), integer("window", window, 1)
    r = window // 2
    if window <= n:
        return torch.arange(-r, r + 1)
    return torch.arange(-((n - 1) // 2), n // 2 + 1)


class LocalAttention(MultiHeadAttention):
    """Windowed multi-head attention on the tokens (B, N, D) of a periodic profile, with a learned
    bias per head per relative offset (module docstring). ``window``: an odd number of points.
    ``forward(x, extra=None)``: ``extra`` (B, E, D) tokens attended by every query (bias 0)."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__(dim, heads)
        self.window = integer("window", window, 1)
        if window % 2 == 0:
            raise ValueError(f"window must be an odd integer ≥ 1 (the point and r neighbours "
                             f"on each side), got {window}")
        self.bias = nn.Parameter(torch.zeros(heads, window))

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        src = x if extra is None else torch.cat([extra.to(x.dtype), x], dim=1)
        q, k, v = self.split_heads(self.q(x), self.kv(src))                  # (B, h, ·, w)
        E = src.shape[1] - x.shape[1]
        return self.merge_heads(self.attend_band(q, k[:, :, E:], v[:, :, E:], k[:, :, :E],
                                                 v[:, :, :E]))

    def attend_band(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    k_extra: torch.Tensor, v_extra: torch.Tensor) -> torch.Tensor:
        """Queries, keys and values (B, h, n, w) of the profile's points and the ``extra``
        tokens' keys and values (B, h, E, w) → the outputs (B, h, n, w) (module docstring).

        The K = 2r + 1 scores of each point are formed from K shifted slices of the keys padded
        periodically to n + K − 1 points, and the output as a sum of K shifted slices of the
        values: O(n K w) work, against O(n² w) for dense scores with a −inf band (the module,
        projections included, at n = 64, K = 9, w = 12 on one CPU thread: 1.6× faster forward,
        1.7× forward and backward; ``benchmarks.local_emulator_cost``)."""
        n, w = q.shape[2], q.shape[3]
        offsets = local_offsets(n, self.window).to(q.device)
        K, E = offsets.numel(), k_extra.shape[2]
        pad = (torch.arange(n + K - 1, device=q.device) + offsets[0]) % n
        # contiguous copies: the slices below then run over contiguous memory (1.6× faster)
        kp, vp = k[:, :, pad].contiguous(), v[:, :, pad].contiguous()       # (B, h, n+K−1, w)
        qs = (q * (1.0 / math.sqrt(w))).contiguous()
        s = torch.stack([(qs * kp[:, :, j:j + n]).sum(-1) for j in range(K)], dim=-1)
        s = s + self.bias[:, offsets + self.window // 2].to(q.dtype)[:, None]  # (B, h, n, K)
        if E:
            s = torch.cat([qs @ k_extra.transpose(-1, -2), s], dim=-1)
        p = softmax_last(s)
        out = p[..., E:E + 1] * vp[:, :, :n]
        for j in range(1, K):
            out = out + p[..., E + j:E + j + 1] * vp[:, :, j:j + n]
        return out + p[..., :E] @ v_extra if E else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, window={self.window}"


class ConcatConditionedAttention(MultiHeadAttention):
    """:class:`MultiHeadAttention` whose query, key and value projections also take the
    conditioning vector (module docstring). ``forward(x, cond, extra=None)``: cond (B or 1,
    cond_dim) is appended to every token, the extra tokens included."""

    def __init__(self, dim: int, heads: int, cond_dim: int):
        super().__init__(dim, heads)
        self.cond_dim = integer("cond_dim", cond_dim, 1)
        self.q_cond = nn.Linear(cond_dim, dim, bias=False)
        self.kv_cond = nn.Linear(cond_dim, 2 * dim, bias=False)
        nn.init.zeros_(self.q_cond.weight)
        nn.init.zeros_(self.kv_cond.weight)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        if cond is None:
            raise ValueError("ConcatConditionedAttention needs the conditioning vector cond")
        cond = _cond_rows(cond, x.shape[0], self.cond_dim, "ConcatConditionedAttention")
        cond = cond.to(x.dtype)[:, None]                                     # (B, 1, P)
        src = x if extra is None else torch.cat([extra.to(x.dtype), x], dim=1)
        return self.combine(self.q(x) + self.q_cond(cond), self.kv(src) + self.kv_cond(cond))


class ConditionedBlock(TransformerBlock):
    """A pre-LN transformer block conditioned on a vector of ``cond_dim`` parameters (module
    docstring):

        x ← x + Attn(N₁(x, c), extra),   x ← x + MLP(N₂(x, c)),

    N₁, N₂ AdaLN (``conditioning='adaln'``, hidden width ``cond_hidden``) or plain LayerNorms
    with the concatenation attention (``'concat'``). ``window``: local attention over that many
    points of a periodic profile (AdaLN only). The parameter names of an unconditioned
    :class:`~closures.nn.attention.TransformerBlock` of the same sizes are a subset of this
    block's, with the same shapes, so its weights load into this block (``strict=False``), which
    then computes the same values. ``forward(x, cond, generator=None, noise=None)``."""

    def __init__(self, dim: int, heads: int, hidden: int, cond_dim: int,
                 noise_token: bool = False, conditioning: str = "adaln", cond_hidden: int = 32,
                 window: int | None = None):
        super().__init__(dim, heads, hidden, noise_token)
        self.conditioning = check_conditioning(conditioning)
        self.cond_dim = integer("cond_dim", cond_dim, 1)
        window = integer("window", window, 1, allow_none=True)
        if window is not None and conditioning != "adaln":
            raise ValueError("window (local attention) works with conditioning='adaln' only")
        if conditioning == "adaln":
            self.norm1 = AdaptiveLayerNorm(dim, cond_dim, cond_hidden)
            self.norm2 = AdaptiveLayerNorm(dim, cond_dim, cond_hidden)
            if window is not None:
                self.attn = LocalAttention(dim, heads, window)
        else:
            self.attn = ConcatConditionedAttention(dim, heads, cond_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                generator: torch.Generator | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D), cond (B or 1, cond_dim) → (B, T, D). A noise-token block draws its token
        from ``generator`` unless ``noise`` (B, 1, D) is given."""
        extra = None
        if self.noise_token:
            extra = self.draw_noise(x, generator) if noise is None else noise
        if self.conditioning == "adaln":
            x = x + self.attn(self.norm1(x, cond), extra)
            return x + self.mlp(self.norm2(x, cond))
        x = x + self.attn(self.norm1(x), cond, extra)
        return x + self.mlp(self.norm2(x))
