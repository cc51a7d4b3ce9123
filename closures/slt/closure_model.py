"""The network of the SLT closure: a history-dependent stochastic model of the LES closure term.

Notation: n the LES grid points per side, s = n/4, c the latent channels, d = c·s² the size of a
latent, L the window (refreshes of history), ω̄ the LES vorticity (1/time), C the closure term, a
vorticity tendency (1/time²). Fields are normalised by fixed scalars (``stats``, the training
data's mean and standard deviation of ω̄ and of C, as :class:`closures.data.ClosureDataset`):
ω̂ = (ω̄ − mean_ω)/std_ω, Ĉ = (C − mean_C)/std_C.

:class:`SLTClosureModel`:

* encoder E_ω — the encoder of a periodic conv autoencoder of ω̂
  (:class:`closures.nn.ConvAutoencoder`, n² → c × s²), flattened: one latent z ∈ R^d, a token,
  per refresh; its decoder only serves the reconstruction term ``rec_omega``;
* mean network μ (optional, ``mean_width`` > 0; :class:`closures.nn.MeanNet`) — a local CNN,
  μ(ω̂) ≈ E[Ĉ | ω̂], trained by mean squared error; the stochastic part models the residual
  R = Ĉ − μ(ω̂) (μ detached there), as the L-CDM's residual conditioning;
* stochastic transformer T (:class:`closures.slt.model.StochasticTransformer`, ``align=False``:
  the latents are not profiles; ``residual=False``) — the latents of the last L refreshes
  (z_{t−L+1}, …, z_t), with sinusoidal positions, → a latent r ∈ R^d of the residual; its
  **first** block's keys and values get a fresh noise token ξ ~ N(0, I_D) (D the token width),
  the model's only randomness;
* decoder D_R — the decoder of a second conv autoencoder, of the residual: D_R(r) ∈ R^{n×n}.

A draw of the normalised term: Ĉ_t = μ(ω̂_t) + D_R(T(z_{t−L+1}, …, z_t; ξ)); one network pass
gives a draw for every entry of a batch (m draws per entry are m copies with independent tokens).

Training objective (:meth:`SLTClosureModel.loss_terms`, weights :data:`DEFAULT_WEIGHTS`) on
windows of L consecutive ω̂ (refresh interval apart) and the target Ĉ at the last one, m draws
per window:

* ``es``: energy score (fair; :func:`closures.slt.model.ensemble_loss`, divided by √(n²)) of the
  m draws of Ĉ against the target;
* ``es_latent``: the same in latent space against E_R(R) (held fixed: no gradient into the
  target's encoding), divided by √d;
* ``rec``: mean squared error of D_R(E_R(R)) against R (the autoencoder of the residual);
* ``rec_omega``: mean squared error of the ω̂ autoencoder over the window;
* ``mse_mean``: mean squared error of μ(ω̂_t) against Ĉ (with a mean network);
* ``spectral``: mean distance of the 2D Fourier amplitudes of the draws and the target
  (:func:`closures.losses.spectral_amplitude_loss`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from solvers.validate import integer, number

from ..calibration import mode_shells
from ..ldm.model import FieldNormalisation, check_stats, conv_precision
from ..losses import spectral_amplitude_loss
from ..nn import ConvAutoencoder, MeanNet
from ..nn.attention import check_heads
from ..nn.diffusion import draw_noise
from .model import StochasticTransformer, ensemble_loss

__all__ = ["SLTClosureModel", "DEFAULT_WEIGHTS"]

DEFAULT_WEIGHTS = {"es": 1.0, "es_latent": 1.0, "rec": 1.0, "rec_omega": 0.1, "mse_mean": 1.0,
                   "spectral": 1.0}


def _default_stats() -> dict:
    return {"omega_bar": {"mean": 0.0, "std": 1.0}, "closure": {"mean": 0.0, "std": 1.0}}


class SLTClosureModel(FieldNormalisation, nn.Module):
    """The SLT closure's network (module docstring).

    ``n`` LES grid points per side (divisible by 4), ``L`` the box side (for the grid check;
    None: not checked), ``window`` the refreshes of history, ``latent_channels`` and
    ``ae_channels`` the two autoencoders, ``width`` (token width D), ``heads`` (default: heads of
    width 4), ``layers`` and ``hidden`` (default 2·width) the transformer, ``mean_width`` and
    ``mean_blocks`` the mean network (0: none), ``stats`` the normalisation. ``config`` holds
    every argument but the stats (the model card's architecture); ``normalise`` and
    ``denormalise`` are :class:`closures.ldm.model.FieldNormalisation`'s."""

    def __init__(self, n: int, L: float | None = None, window: int = 10, latent_channels: int = 1,
                 ae_channels=(16, 32, 32), width: int = 64, heads: int | None = None,
                 layers: int = 2, hidden: int | None = None, mean_width: int = 16,
                 mean_blocks: int = 2, stats: dict | None = None):
        super().__init__()
        n = integer("n", n, 4)
        if n % 4:
            raise ValueError(f"n must be divisible by 4 (two stride-2 stages), got {n}")
        if L is not None:
            L = number("L", L, above=0)
        width = integer("width", width, 1)
        heads = max(1, width // 4) if heads is None else check_heads(heads, width)
        hidden = 2 * width if hidden is None else integer("hidden", hidden, 1)
        mean_width = integer("mean_width", mean_width, 0)
        mean_blocks = integer("mean_blocks", mean_blocks, 0)
        c = integer("latent_channels", latent_channels, 1)
        ae_channels = [int(x) for x in ae_channels]
        self.n, self.L, self.side = n, L, n // 4
        self.latent_dim = c * self.side ** 2
        self.stats = check_stats(stats if stats is not None else _default_stats())
        self.ae_omega = ConvAutoencoder(1, c, tuple(ae_channels))
        self.ae_residual = ConvAutoencoder(1, c, tuple(ae_channels))
        self.mean_net = MeanNet(mean_width, mean_blocks) if mean_width else None
        self.transformer = StochasticTransformer(self.latent_dim, window, width, heads, layers,
                                                 hidden, align=False, residual=False)
        self.config = dict(n=n, L=L, window=self.transformer.window, latent_channels=c,
                           ae_channels=ae_channels, width=width, heads=int(heads),
                           layers=int(layers), hidden=int(hidden), mean_width=mean_width,
                           mean_blocks=mean_blocks)

    @classmethod
    def from_config(cls, config: dict, stats: dict | None = None) -> "SLTClosureModel":
        """A new model (fresh weights) of the architecture ``config`` (``model.config``)."""
        return cls(**config, stats=stats)

    # ------------------------------------------------------------------ shapes and maps
    @property
    def window(self) -> int:
        return self.transformer.window

    @property
    def width(self) -> int:
        return self.transformer.width

    @property
    def grid(self) -> tuple[int, float | None]:
        return (self.n, self.L)

    def conv_channels_last(self) -> "SLTClosureModel":
        """The convolutional networks' weights stored channels-last, in place (same values;
        faster 3×3 convolutions on the CPU, as the L-CDM's). Returns the model."""
        for net in (self.ae_omega, self.ae_residual, self.mean_net):
            if net is not None:
                net.to(memory_format=torch.channels_last)
        return self

    def encode(self, omega: torch.Tensor) -> torch.Tensor:
        """Normalised ω̄ (B, 1, n, n) → latents z (B, d)."""
        return self.ae_omega.encode(omega).reshape(omega.shape[0], self.latent_dim)

    def mean(self, omega: torch.Tensor) -> torch.Tensor:
        """μ(ω̂) (B, 1, n, n); zeros without a mean network."""
        return torch.zeros_like(omega) if self.mean_net is None else self.mean_net(omega)

    def decode(self, r: torch.Tensor) -> torch.Tensor:
        """Residual latents (…, d) → residual fields (…, 1, n, n)."""
        lead = r.shape[:-1]
        c, s = self.config["latent_channels"], self.side
        out = self.ae_residual.decode(r.reshape(-1, c, s, s))
        return out.reshape(*lead, 1, self.n, self.n)

    def draw(self, history: torch.Tensor, omega: torch.Tensor,
             generator: torch.Generator | None = None, members: int = 1,
             noise: torch.Tensor | None = None, mean: torch.Tensor | None = None,
             spread_gain: float = 1.0, spread_shells: int = 0,
             precision: str = "float32") -> torch.Tensor:
        """Draws of the normalised term: latents of the last L refreshes ``history`` (B, L, d)
        and the latest normalised ω̄ ``omega`` (B, 1, n, n) → (members, B, 1, n, n). The noise
        tokens come from ``generator``, or are ``noise`` (members·B, 1, D), member-major.
        ``mean``: μ(ω̄) when the caller has it already (else computed from ``omega``).

        ``spread_gain`` g (default 1: the trained model) inflates the draws about the centre
        draw, the draw of the zero token r₀ = T(…; 0) (one more transformer pass):

        * ``spread_shells`` K = 0 (default): in latent space, r = r₀ + g·(T(…; ξ) − r₀), decoded
          once;
        * K > 0: in field space and in shells 1 … K (round |k|) only: with δ = D_R(T(…; ξ)) −
          D_R(r₀), the residual is D_R(r₀) + δ + (g − 1)·P_K δ, P_K the projection on those
          shells (the decoder runs on r₀ as well).

        ``precision`` 'bfloat16' runs the decoder and μ under bfloat16 autocast
        (:func:`closures.ldm.conv_precision`); the transformer stays float32."""
        def decode(r):
            with conv_precision(precision, r.device):
                return self.decode(r).float()

        if mean is None:
            with conv_precision(precision, history.device):
                mean = self.mean(omega).float()
        if spread_gain == 1:
            r = self.transformer(history, generator, members, noise=noise)    # (m, B, d)
            return mean + decode(r)
        B = history.shape[0]
        if noise is None:
            noise = draw_noise((members * B, 1, self.width), generator, history.device,
                               history.dtype)
        r = self.transformer(history, None, members, noise=noise)
        r0 = self.transformer(history, None, 1, noise=torch.zeros_like(noise[:B]))
        if spread_shells:
            both = decode(torch.cat([r, r0]))                                 # (m + 1, B, …)
            d0 = both[-1:]
            delta = both[:-1] - d0
            shells = torch.as_tensor(np.array(mode_shells(self.n)), device=delta.device)
            inside = ((shells >= 1) & (shells <= spread_shells)).to(delta.dtype)
            boost = torch.fft.irfft2(torch.fft.rfft2(delta) * inside, s=delta.shape[-2:])
            resid = d0 + delta + (spread_gain - 1) * boost
        else:
            resid = decode(r0 + spread_gain * (r - r0))
        return mean + resid

    def draw_windows(self, omega: torch.Tensor, generator: torch.Generator | None = None,
                     members: int = 1, mean: torch.Tensor | None = None,
                     spread_gain: float = 1.0, spread_shells: int = 0) -> torch.Tensor:
        """:meth:`draw` for normalised windows ``omega`` (B, L, 1, n, n) of L consecutive ω̂:
        the history encoded from the window, the term at its last pair → (members, B, 1, n, n)."""
        B, L = omega.shape[:2]
        history = self.encode(omega.reshape(B * L, *omega.shape[2:])).reshape(B, L, -1)
        return self.draw(history, omega[:, -1], generator, members, mean=mean,
                         spread_gain=spread_gain, spread_shells=spread_shells)

    # ------------------------------------------------------------------ training objective
    def loss_terms(self, omega: torch.Tensor, closure: torch.Tensor,
                   generator: torch.Generator | None = None, members: int = 4) -> dict:
        """The objective's terms (module docstring) for normalised windows ``omega``
        (B, L, 1, n, n) and targets ``closure`` (B, 1, n, n) at the windows' last refresh,
        ``members`` draws per window. Returns a dict of 0-d tensors."""
        members = integer("members", members, 2)
        B, L = omega.shape[:2]
        flat = omega.reshape(B * L, *omega.shape[2:])
        zw = self.ae_omega.encode(flat)
        z = zw.reshape(B, L, self.latent_dim)
        last = omega[:, -1]
        terms = {}
        mu = self.mean(last)
        if self.mean_net is not None:
            terms["mse_mean"] = ((mu - closure) ** 2).mean()
            mu = mu.detach()
        resid = closure - mu
        zr = self.ae_residual.encode(resid)
        draws = self.transformer(z, generator, members)                       # (m, B, d)
        c = mu + self.decode(draws)                                          # (m, B, 1, n, n)
        terms.update(
            es=ensemble_loss(c, closure),
            es_latent=ensemble_loss(draws, zr.reshape(B, -1).detach()),
            rec=((self.ae_residual.decode(zr) - resid) ** 2).mean(),
            rec_omega=((self.ae_omega.decode(zw) - flat) ** 2).mean(),
            spectral=spectral_amplitude_loss(c, closure.expand_as(c), dims=2))
        return terms

