"""Fourier layers: periodic, translation-equivariant operators on batched fields (B, C, H, W).

:class:`SpectralConv2d` multiplies the lowest Fourier modes of each input channel by learned
complex weights and mixes channels mode by mode; everything else is dropped. Which modes, for
``modes = m`` (``torch.fft.rfft2`` layout: rows are ky = 0, 1, …, H/2−1, −H/2, …, −1, columns
kx = 0 … W/2):

* kx = 0, 1, …, m−1 (the first m columns), and
* ky = −(m−1), …, −1, 0, 1, …, m−1 (the first m rows and the last m−1 rows),

i.e. the box |ky| < m, 0 ≤ kx < m: 2m−1 rows by m columns, one weight matrix (in × out) per mode.
The box is symmetric in ky, so the operator treats +y and −y alike, and ``m ≤ min(H, W)//2``
keeps the Nyquist row and column out of it. A real input has a Hermitian spectrum; the weights
of the kx = 0 column at +ky and −ky are independent, and ``irfft2`` keeps the Hermitian part of
what they produce (it takes the real part of the inverse transform), a linear map that commutes
with shifts. Shifting the input by whole cells multiplies every mode by a phase, which the
per-mode products carry through unchanged: the layer is exactly equivariant under periodic
shifts (and so are the 1×1 convolutions and pointwise activations around it).

The weights are stored as real tensors (…, 2) holding real and imaginary parts, so optimisers,
gradient clipping, ``state_dict`` and ``torch.load(weights_only=True)`` see plain float tensors,
and parameter counts count real numbers.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from solvers.validate import integer

__all__ = ["SpectralConv2d", "Conv1x1", "FourierLayer", "FNO2d", "activation", "check_modes"]

ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh}


def activation(name: str | None) -> nn.Module:
    """A pointwise activation by name ('gelu', 'silu', 'relu', 'tanh'; None → identity)."""
    if name is None:
        return nn.Identity()
    try:
        return ACTIVATIONS[str(name).lower()]()
    except KeyError:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)} or None, "
                         f"got {name!r}") from None


def _positive_int(name: str, v) -> int:
    return integer(name, v, 1)


def check_modes(modes: int, height: int, width: int, where: str = "SpectralConv2d") -> None:
    """Raise ValueError unless ``modes`` ≤ min(height, width)//2 (see the module docstring)."""
    if modes > min(height, width) // 2:
        raise ValueError(f"{where}: modes={modes} needs fields of at least {2 * modes}×{2 * modes} "
                         f"points (modes ≤ min(H, W)//2), got {height}×{width}")


def _cached_from_weights(owner: nn.Module, slot: str, weights: tuple, extra: tuple, build):
    """``build()``, a tensor made from ``weights``, kept in ``owner.<slot>`` until a weight
    changes (``_version``, storage, device) or ``extra`` does (dtype, sizes); rebuilt at every
    call while gradients are wanted, and when the weights were made under inference mode (they
    have no version then)."""
    if torch.is_grad_enabled() and any(w.requires_grad for w in weights):
        return build()
    try:
        key = tuple((w._version, w.data_ptr(), w.device) for w in weights) + tuple(extra)
    except RuntimeError:
        return build()
    cached = getattr(owner, slot, None)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = (key, build())
        setattr(owner, slot, cached)
    return cached[1]


def _mode_matrices(weight: torch.Tensor) -> torch.Tensor:
    """Per-mode real matrices [[a, b], [−b, a]] (Y·X, 2·in, 2·out) of complex weights a + ib
    stored as (in, out, Y, X, 2); contiguous (``bmm`` is ~30× slower on strided operands)."""
    I, O, Y, X, _ = weight.shape
    a, b = weight[..., 0], weight[..., 1]                          # (I, O, Y, X)
    wm = torch.cat([torch.cat([a, b], dim=1), torch.cat([-b, a], dim=1)], dim=0)
    return wm.permute(2, 3, 0, 1).reshape(Y * X, 2 * I, 2 * O).contiguous()


def _mix_modes(xh: torch.Tensor, wm: torch.Tensor) -> torch.Tensor:
    """out[b, o, y, x] = Σ_i xh[b, i, y, x]·w[i, o, y, x] for complex xh and the mode matrices
    ``wm`` of w (:func:`_mode_matrices`): one real batched matmul [Re x, Im x] @ [[a, b], [−b, a]].

    It replaces a complex ``einsum``, which handed ``bmm`` strided operands that it multiplied
    mode by mode (measured 2026-11-22: 1.9 ms per layer for 2 members at 16², 70 of 114 ms of a
    2-member closure refresh; now ~0.2 ms)."""
    B, I, Y, X = xh.shape
    O = wm.shape[-1] // 2
    xm = torch.view_as_real(xh).permute(2, 3, 0, 4, 1).reshape(Y * X, B, 2 * I).contiguous()
    out = torch.bmm(xm, wm).reshape(Y, X, B, 2, O).permute(2, 4, 0, 1, 3)
    return torch.view_as_complex(out.contiguous())


class SpectralConv2d(nn.Module):
    """Learned per-mode channel mixing of the lowest ``modes`` Fourier modes (module docstring).

    ``forward(x)``: x (B, in_ch, H, W) real → (B, out_ch, H, W) real, for any H, W ≥ 2·modes.
    ``weight`` has shape (in_ch, out_ch, 2·modes−1, modes, 2): rows 0…modes−1 hold ky = 0…modes−1,
    rows modes…2·modes−2 hold ky = −(modes−1)…−1; the last axis is (real, imaginary).
    Initialisation: independent complex Gaussian entries with E|w|² = 1/in_ch.
    """

    def __init__(self, in_ch: int, out_ch: int, modes: int):
        super().__init__()
        self.in_ch = _positive_int("in_ch", in_ch)
        self.out_ch = _positive_int("out_ch", out_ch)
        self.modes = _positive_int("modes", modes)
        std = math.sqrt(1.0 / (2.0 * self.in_ch))          # per real/imaginary part
        self.weight = nn.Parameter(
            std * torch.randn(self.in_ch, self.out_ch, 2 * self.modes - 1, self.modes, 2))

    def mode_matrices(self, dtype: torch.dtype) -> torch.Tensor:
        """The weights as per-mode real matrices (:func:`_mode_matrices`). Without gradients
        (sampling) they are cached until the weights change (:func:`_cached_from_weights`)."""
        return _cached_from_weights(self, "_wm_cache", (self.weight,), (dtype,),
                                    lambda: _mode_matrices(self.weight.to(dtype)))

    def complex_weight(self) -> torch.Tensor:
        """The weights as a complex tensor (in_ch, out_ch, 2·modes−1, modes)."""
        return torch.view_as_complex(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"SpectralConv2d expects (B, {self.in_ch}, H, W), got "
                             f"{tuple(x.shape)}")
        H, W = x.shape[-2:]
        m = self.modes
        check_modes(m, H, W)
        # Only the first m columns (kx) of the spectrum are used and produced, so the transforms
        # are done one axis at a time on those columns: rfft along x, keep m columns, fft along
        # y; and back: ifft along y on m columns, irfft along x (zero-padding the other
        # columns). The same maps as rfft2/irfft2 with the other modes zero, 2-3× faster on the
        # small fields here (measured 2026-11-22: 16 × 20 channels at 64², 27.6 → 7.8 ms).
        xh = torch.fft.fft(torch.fft.rfft(x, dim=-1)[..., :m], dim=-2)     # (B, in, H, m)
        kept = torch.cat([xh[:, :, :m], xh[:, :, H - m + 1:]], dim=2) if m > 1 else xh[:, :, :1]
        mixed = _mix_modes(kept, self.mode_matrices(x.dtype))           # (B, out, 2m−1, m)
        out = xh.new_zeros(x.shape[0], self.out_ch, H, m)
        out[:, :, :m] = mixed[:, :, :m]
        if m > 1:
            out[:, :, H - m + 1:] = mixed[:, :, m:]
        return torch.fft.irfft(torch.fft.ifft(out, dim=-2), n=W, dim=-1)

    def extra_repr(self) -> str:
        return f"in_ch={self.in_ch}, out_ch={self.out_ch}, modes={self.modes}"


class Conv1x1(nn.Conv2d):
    """A 1×1 convolution (pointwise channel mixing) computed as a matmul W @ x over the flattened
    points: the same parameters and state_dict as ``nn.Conv2d(in_ch, out_ch, 1)``, 2–5× faster on
    CPU for the small fields and channel counts here (measured 2026-11-22, 20 channels at 16²:
    0.37 vs 0.99 ms for 64 members; oneDNN's convolution pays a layout conversion per call)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(in_ch, out_ch, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        w = self.weight[:, :, 0, 0]
        # bias + W @ x[b] for every b in one batched GEMM with a stride-0 weight: no copies
        # (``w @ x`` goes through x's transpose and copies it twice; measured 2026-11-22, 16
        # members, 20 channels at 16²: a score-network pass 1.05 → 0.80 ms per member, same
        # bits)
        y = torch.baddbmm(self.bias[:, None], w.expand(B, *w.shape), x.reshape(B, C, H * W))
        return y.view(B, -1, H, W)


def _whole_grid_matrices(spectral: torch.Tensor, skip: torch.Tensor, H: int, W: int,
                         dtype: torch.dtype) -> torch.Tensor:
    """Per-mode real matrices (H·(W/2+1), 2·in, 2·out) of W_k + S over the whole ``rfft2`` grid:
    W_k the spectral weights (in, out, 2m−1, m, 2) on the kept box, zero elsewhere, and S the
    1×1 skip weights (out, in)."""
    I, O, Y, m, _ = spectral.shape
    X = W // 2 + 1
    w = spectral.new_zeros(H, X, I, O, 2, dtype=dtype)
    box = spectral.to(dtype).permute(2, 3, 0, 1, 4)                 # (2m−1, m, I, O, 2)
    w[:m, :m] = box[:m]
    if m > 1:
        w[H - m + 1:, :m] = box[m:]
    a = w[..., 0] + skip.to(dtype).t()
    b = w[..., 1]
    wm = torch.cat([torch.cat([a, b], dim=-1), torch.cat([-b, a], dim=-1)], dim=-2)
    return wm.reshape(H * X, 2 * I, 2 * O).contiguous()


class FourierLayer(nn.Module):
    """``act(SpectralConv2d(x) + Conv1x1(x))``: the FNO layer (``activation=None`` for a linear
    last layer). Channels ``in_ch`` → ``out_ch`` (default ``out_ch = in_ch``).

    Where the kept box covers at least half of the ``rfft2`` grid (16² latents with 8 modes:
    120 of 144 modes), the two branches are one operator: the 1×1 skip S is the same matrix at
    every mode, so the layer is act(irfft2((W_k + S)·x̂_k) + bias) with W_k = 0 outside the box,
    one whole-grid transform pair and one batched matmul (:func:`_whole_grid_matrices`). Same map
    in exact arithmetic, same parameters; measured 2026-11-22, 20 channels at 16², 64 members:
    13.6 → 7.6 ms per layer (``SpectralConv2d`` slices, pads and transforms one axis at a time,
    a skip pass and a sum on top). Larger fields with a small box (P-CDM, 64² with 6 modes) keep
    the two-branch form.
    """

    def __init__(self, in_ch: int, modes: int, out_ch: int | None = None,
                 activation_name: str | None = "gelu"):
        super().__init__()
        out_ch = in_ch if out_ch is None else out_ch
        self.spectral = SpectralConv2d(in_ch, out_ch, modes)
        self.skip = Conv1x1(in_ch, out_ch)
        self.act = activation(activation_name)

    def whole_grid(self, H: int, W: int) -> bool:
        """Whether fields of H×W take the one-operator form (class docstring)."""
        m = self.spectral.modes
        return 2 * (2 * m - 1) * m >= H * (W // 2 + 1)

    def _matrices(self, H: int, W: int, dtype: torch.dtype) -> torch.Tensor:
        sw, kw = self.spectral.weight, self.skip.weight
        return _cached_from_weights(self, "_grid_cache", (sw, kw), (dtype, H, W),
                                    lambda: _whole_grid_matrices(sw, kw[:, :, 0, 0], H, W, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.spectral.in_ch or not self.whole_grid(*x.shape[2:]):
            return self.act(self.spectral(x) + self.skip(x))       # (checks shapes and modes)
        B, I, H, W = x.shape
        check_modes(self.spectral.modes, H, W)
        O, X = self.spectral.out_ch, W // 2 + 1
        xm = torch.view_as_real(torch.fft.rfft2(x)).permute(2, 3, 0, 4, 1).reshape(H * X, B,
                                                                                  2 * I)
        out = torch.bmm(xm, self._matrices(H, W, x.dtype)).reshape(H, X, B, 2, O)
        out = torch.view_as_complex(out.permute(2, 4, 0, 1, 3).contiguous())
        return self.act(torch.fft.irfft2(out, s=(H, W)) + self.skip.bias[:, None, None])


class FNO2d(nn.Module):
    """Fourier neural operator: lift (1×1 conv ``in_ch → width``), ``layers`` Fourier layers of
    ``width`` channels (GELU after all but the last), project (1×1 conv ``width → proj_hidden``,
    GELU, 1×1 conv ``proj_hidden → out_ch``).

    No coordinate channels are appended (unlike the original FNO), so the whole operator is
    periodic and equivariant under whole-cell shifts. ``forward(x)``: (B, in_ch, H, W) →
    (B, out_ch, H, W), H, W ≥ 2·modes.
    """

    def __init__(self, in_ch: int, out_ch: int, width: int, modes: int, layers: int,
                 proj_hidden: int = 128, activation_name: str = "gelu"):
        super().__init__()
        _positive_int("layers", layers)
        _positive_int("proj_hidden", proj_hidden)
        self.config = dict(in_ch=in_ch, out_ch=out_ch, width=width, modes=modes, layers=layers,
                           proj_hidden=proj_hidden, activation_name=activation_name)
        self.lift = Conv1x1(_positive_int("in_ch", in_ch), _positive_int("width", width))
        self.layers = nn.ModuleList(
            FourierLayer(width, modes, activation_name=activation_name if i < layers - 1 else None)
            for i in range(layers))
        self.project = nn.Sequential(Conv1x1(width, proj_hidden), activation(activation_name),
                                     Conv1x1(proj_hidden, _positive_int("out_ch", out_ch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lift(x)
        for layer in self.layers:
            h = layer(h)
        return self.project(h)
