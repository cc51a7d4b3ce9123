"""Translation-equivariant layers of periodic 1D profiles (TEPC) and the autoencoder built of them.

A profile u(y) on n points of a periodic domain is stored by its real Fourier modes û_k,
k = 0 … n/2 (``torch.fft.rfft``). A shift by s grid spacings, u(y) → u(y − s·Δy), multiplies
û_k by e^{−2πi k s/n} — for every real s, not only integers, when u is band-limited below the
Nyquist mode. The **true wavenumbers** k = 0, 1, …, n/2 of the rfft are used throughout
(:func:`rfft_wavenumbers`); the Stochastic Latent Transformer's public code takes ``fftfreq`` of
the rfft length instead, which gives the modes above ~n/4 negative wavenumbers, so its layers
are only approximately equivariant there.

:class:`TEPC` (translation-equivariant phase-aligned channel mixing), for an input of C_in
channels on n_in points and an output of C_out channels on n_out points:

1. û_{c,k} = rfft(u_c), and φ_c = arg û_{c,1}, the phase of mode 1 of every channel;
2. align: ũ_{c,k} = û_{c,k} e^{−iφ_c k} (invariant under shifts of the input);
3. mix: v̂_{o,k} = Σ_c W_{o,c,k} ũ_{c,k} + b_{o,k}, complex weights and bias per mode;
4. restore: v̂_{o,k} ← v̂_{o,k} e^{iφ_0 k} with channel 0's phase; v_o = irfft(v̂_o, n_out).

``phase='channel'`` is this recipe (the paper's). ``phase='common'`` aligns every channel by
channel 0's phase instead, so the channels keep their relative positions; the layer is then
equally equivariant, and the autoencoder below learns much better with it (on betaplane-small
profiles, 64 → 32 points, 600 Adam steps: reconstruction error 0.08 of the profiles' standard
deviation against 0.25 with per-channel phases). The autoencoder uses 'common' by default.

Modes k < min(n_in, n_out)/2 are kept; the Nyquist mode of either grid is dropped (zero), so the
output is band-limited and the layer commutes with every shift: shifting the input by s·Δy_in
shifts the output by the same distance, to round-off. A layer's output changes the grid size
(n_in → n_out) but not the domain, so a distance is s·n_out/n_in grid spacings of the output.

:class:`TEPCAutoencoder` (the paper's sizes: n → n/4 with 4 hidden channels):
encoder TEPC(1→C, n→n) → GELU → TEPC(C→1, n→m), decoder TEPC(1→C, m→n) → GELU → TEPC(C→1, n→n).
A pointwise GELU on grid values commutes with grid shifts only, so each half runs in the frame in
which its input's mode 1 has phase 0 and shifts its output back by that phase: both halves are
then equivariant to every shift, sub-grid ones included (tested to round-off).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from solvers.validate import integer

PHASES = ("channel", "common")

__all__ = ["PHASES", "TEPC", "TEPCAutoencoder", "rfft_wavenumbers", "mode1_phase", "shift_phase",
           "shift_profile", "align", "kept_modes"]


def rfft_wavenumbers(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The true wavenumbers 0, 1, …, n//2 of ``torch.fft.rfft`` of n points (in units of 2π/L)."""
    return torch.arange(n // 2 + 1, device=device, dtype=dtype)


def kept_modes(n_in: int, n_out: int) -> int:
    """The number of modes a layer n_in → n_out keeps: k = 0 … K−1 with K = min(n_in, n_out)/2
    (both Nyquist modes dropped)."""
    return (min(n_in, n_out) + 1) // 2


def mode1_phase(uh: torch.Tensor) -> torch.Tensor:
    """arg û_1 of spectra ``uh`` (…, modes): the phase of Fourier mode 1 (0 where û_1 = 0, with a
    finite gradient there)."""
    re, im = uh[..., 1].real, uh[..., 1].imag
    zero = (re == 0) & (im == 0)
    return torch.atan2(im, torch.where(zero, torch.ones_like(re), re))


def shift_phase(uh: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """û_k e^{iφk}: spectra (…, K) times a phase ramp for phases φ of shape (…) — a shift of the
    profile by −φ/k₁ (φ = 2π s/n shifts by −s points)."""
    k = torch.arange(uh.shape[-1], device=uh.device, dtype=phi.dtype)
    return uh * torch.polar(torch.ones_like(phi)[..., None], phi[..., None] * k)


def shift_profile(u: torch.Tensor, s) -> torch.Tensor:
    """Profiles ``u`` (…, n) shifted by ``s`` grid points (any real s; a scalar or a tensor
    broadcast against u's leading dimensions): u(y − s·Δy), exactly for band-limited u (the
    Nyquist mode is dropped)."""
    n = u.shape[-1]
    s = torch.as_tensor(s, dtype=u.dtype, device=u.device)
    uh = torch.fft.rfft(u)
    if n % 2 == 0:
        uh = uh.clone()
        uh[..., -1] = 0
    phi = (-2 * math.pi / n) * s * torch.ones(u.shape[:-1], dtype=u.dtype, device=u.device)
    return torch.fft.irfft(shift_phase(uh, phi), n=n)


def align(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(profiles ``u`` (…, n) shifted so that their mode 1 has phase 0, that phase φ (…)):
    ``irfft(shift_phase(rfft(aligned), φ))`` gives ``u`` back (Nyquist mode dropped)."""
    n = u.shape[-1]
    uh = torch.fft.rfft(u)
    if n % 2 == 0:
        uh = uh.clone()
        uh[..., -1] = 0
    phi = mode1_phase(uh)
    return torch.fft.irfft(shift_phase(uh, -phi), n=n), phi


def restore(u: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`align`: profiles (…, n) shifted back by their phases φ (…)."""
    n = u.shape[-1]
    uh = torch.fft.rfft(u)
    if n % 2 == 0:
        uh = uh.clone()
        uh[..., -1] = 0
    return torch.fft.irfft(shift_phase(uh, phi), n=n)


class TEPC(nn.Module):
    """Translation-equivariant per-mode complex channel mixing (module docstring).

    Input (B, C_in, n_in) real, output (B, C_out, n_out). ``out_points`` defaults to
    ``in_points``; both ≥ 4. ``phase``: 'channel' (each channel aligned by its own mode-1
    phase) or 'common' (all by channel 0's). Weights: complex W (C_out, C_in, K) and bias (C_out, K), stored as
    real pairs; initialised with variance 1/C_in per mode, the bias at zero.
    """

    def __init__(self, in_channels: int, out_channels: int, in_points: int,
                 out_points: int | None = None, phase: str = "channel"):
        super().__init__()
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(map(repr, PHASES))}, got "
                             f"{phase!r}")
        self.phase = phase
        self.in_channels = integer("in_channels", in_channels, 1)
        self.out_channels = integer("out_channels", out_channels, 1)
        self.in_points = integer("in_points", in_points, 4)
        self.out_points = integer("out_points", in_points if out_points is None else out_points,
                                  4)
        self.modes = kept_modes(self.in_points, self.out_points)
        scale = 1.0 / math.sqrt(2 * self.in_channels)
        self.weight = nn.Parameter(scale * torch.randn(self.out_channels, self.in_channels,
                                                       self.modes, 2))
        self.bias = nn.Parameter(torch.zeros(self.out_channels, self.modes, 2))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}→{self.out_channels} channels, {self.in_points}→"
                f"{self.out_points} points, {self.modes} modes")

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if u.ndim != 3 or u.shape[1] != self.in_channels or u.shape[2] != self.in_points:
            raise ValueError(f"TEPC expects (batch, {self.in_channels}, {self.in_points}), got "
                             f"{tuple(u.shape)}")
        K = self.modes
        uh = torch.fft.rfft(u, norm="forward")[..., :K]                  # (B, C_in, K)
        phi = mode1_phase(uh)                                           # (B, C_in)
        if self.phase == "common":
            phi = phi[:, :1]                                            # channel 0's, for all
        uh = shift_phase(uh, -phi)
        w = torch.view_as_complex(self.weight.to(u.dtype))
        b = torch.view_as_complex(self.bias.to(u.dtype))
        vh = torch.einsum("bck,ock->bok", uh, w) + b                    # (B, C_out, K)
        vh = shift_phase(vh, phi[:, :1])                                 # broadcast
        full = vh.new_zeros(vh.shape[:-1] + (self.out_points // 2 + 1,))
        full[..., :K] = vh
        return torch.fft.irfft(full, n=self.out_points, norm="forward")


class TEPCAutoencoder(nn.Module):
    """U(y) on ``points`` values → latent profile on ``latent_points`` values → U (module
    docstring). ``encode`` (…, n) → (…, m), ``decode`` (…, m) → (…, n), any leading shape;
    ``forward`` = decode(encode(u)). ``phase``: that of its TEPC layers (default 'common')."""

    def __init__(self, points: int, latent_points: int | None = None, channels: int = 4,
                 phase: str = "common"):
        super().__init__()
        self.points = integer("points", points, 8)
        self.latent_points = integer("latent_points",
                                     points // 4 if latent_points is None else latent_points, 4,
                                     self.points)
        self.channels = integer("channels", channels, 1)
        n, m, c = self.points, self.latent_points, self.channels
        self.phase = phase
        self.enc1, self.enc2 = TEPC(1, c, n, n, phase=phase), TEPC(c, 1, n, m, phase=phase)
        self.dec1, self.dec2 = TEPC(1, c, m, n, phase=phase), TEPC(c, 1, n, n, phase=phase)
        self.act = nn.GELU()

    def _half(self, u, first, second, n_out):
        lead = u.shape[:-1]
        a, phi = align(u.reshape(-1, 1, u.shape[-1]))
        v = second(self.act(first(a)))
        return restore(v, phi).reshape(lead + (n_out,))

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        if u.shape[-1] != self.points:
            raise ValueError(f"encode expects profiles of {self.points} points, got "
                             f"{tuple(u.shape)}")
        return self._half(u, self.enc1, self.enc2, self.latent_points)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self.latent_points:
            raise ValueError(f"decode expects latents of {self.latent_points} points, got "
                             f"{tuple(z.shape)}")
        return self._half(z, self.dec1, self.dec2, self.points)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(u))
