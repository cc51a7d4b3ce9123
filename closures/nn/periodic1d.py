"""A convolutional network of periodic 1D profiles: :class:`PeriodicConvNet1d`.

g: (B, C_in, n) → (B, C_out, n) is a stack of 1D convolutions of odd kernel k with circular
padding (``torch.nn.Conv1d(padding_mode='circular')``), GELU between them, the hidden layers
dilated by a repeating cycle (default 1, 2, 4, 8: with k = 5 and eight layers the receptive
field covers 125 points, every point of a 64-point profile). Circular convolutions commute with
every shift of the n points by whole grid spacings.

With ``symmetric=True`` the network is f(x) = ½(g(x) + F g(F x)), F the flip of the points
(x_j → x_{n−1−j}), which makes f commute with F too. The reflection y → −y about a grid point,
R x_j = x_{−j mod n}, is F followed by a shift of one point, so f commutes with R as well: for
profiles of a flow symmetric under y → −y (the forced beta-plane's U(y)).

The last layer starts at zero (f = 0 at initialisation), so a network added to an estimate as a
correction starts as that estimate.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["PeriodicConvNet1d", "DILATIONS"]

DILATIONS = (1, 2, 4, 8)


class PeriodicConvNet1d(nn.Module):
    """f: (B, ``channels_in``, n) → (B, ``channels_out``, n) (module docstring): ``layers`` ≥ 2
    circular convolutions of kernel ``kernel`` (odd), ``width`` hidden channels, the hidden
    ones dilated by ``dilations`` in turn."""

    def __init__(self, channels_in: int, width: int, channels_out: int = 1, layers: int = 8,
                 kernel: int = 5, dilations: tuple[int, ...] = DILATIONS,
                 symmetric: bool = True):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and ≥ 1, got {kernel}")
        if layers < 2:
            raise ValueError(f"layers must be ≥ 2, got {layers}")
        sizes = [channels_in] + [width] * (layers - 1) + [channels_out]
        rates = [1] + [dilations[i % len(dilations)] for i in range(layers - 2)] + [1]
        convs = []
        for c_in, c_out, d in zip(sizes[:-1], sizes[1:], rates):
            convs.append(nn.Conv1d(c_in, c_out, kernel, padding=d * (kernel // 2), dilation=d,
                                   padding_mode="circular"))
        nn.init.zeros_(convs[-1].weight)
        nn.init.zeros_(convs[-1].bias)
        self.convs = nn.ModuleList(convs)
        self.symmetric = symmetric

    def _g(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = nn.functional.gelu(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            return self._g(x)
        return 0.5 * (self._g(x) + self._g(x.flip(-1)).flip(-1))
