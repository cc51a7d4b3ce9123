"""The conditional diffusion model of the closure term (L-CDM and P-CDM).

The model (:class:`LatentDiffusionModel`) learns p(C | ω̄), the distribution of the closure term
C = closure_sign · subgrid given the resolved vorticity ω̄, as in the latent score-based closure
paper (``../shared/REFERENCES.md``, "Latent score-based closure"):

* ``space='latent'`` (L-CDM): two periodic conv autoencoders, one for ω̄ and one for C
  (:class:`~closures.nn.ConvAutoencoder`, n² → (n/4)² × ``latent_channels``), and a conditional
  FNO score network (:class:`~closures.nn.ConditionalFNOScore`) acting on the latent of C with the
  latent of ω̄ as its condition. Sampling: encode ω̄ → reverse VE SDE in latent space → decode.
* ``space='physical'`` (P-CDM): no autoencoders; the score network acts on the (n, n) fields
  directly, conditioned on ω̄.

Both work on normalised fields: (x − mean)/std with the training statistics of the dataset
(``model.stats``, the same dict as :attr:`closures.data.ClosureDataset.stats`).

Mean network (``mean_width > 0``; our addition, off by default). A small periodic CNN μ(ω̄)
(:class:`~closures.nn.MeanNet`: ``mean_blocks`` residual blocks of ``mean_width`` channels at
full resolution) predicts the conditional mean of C and is trained by MSE (loss term ``mse_mean``);
the autoencoder of C, the reconstruction term and the diffusion then work on the residual
r = C − μ(ω̄) (μ's output detached there), and a sample is μ(ω̄) + D(z). This is the residual
conditioning of latent diffusion for climate ensembles (REFERENCES.md). Why: on the ``kolmogorov``
subgrid term Π (84 % of its energy at |k| > 16 of the LES cutoff 21), pure conditional diffusion
models learnt no conditional mean in our pilot runs (held-out relative error of the sample mean
≥ 1.0 after 20 epochs on 144 pairs, latent or physical) while a plain CNN regression reached 0.67
in two minutes; with the mean network the diffusion only has to learn the residual's spread.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from ..losses import EPS, SIGMA, dsm_loss, moment_penalty
from ..nn import ConditionalFNOScore, ConvAutoencoder, MeanNet
from .sampler import RHO, STEPS, T_START, sample_per_member

__all__ = ["LatentDiffusionModel", "FieldNormalisation", "conv_precision", "PRECISIONS", "SPACES",
           "DEFAULT_WEIGHTS",
           "check_stats"]

SPACES = ("latent", "physical")
# loss weights of the joint objective (REFERENCES.md): 10·MSE_H + 0.1·MSE_ω + 0.1·DSM + 0.01·moment
DEFAULT_WEIGHTS = {"mse_h": 10.0, "mse_omega": 0.1, "dsm": 0.1, "moment": 0.01,
                   "mse_mean": 10.0}             # the last: the mean network's, ours (as mse_h)


def _default_stats() -> dict:
    return {"omega_bar": {"mean": 0.0, "std": 1.0}, "closure": {"mean": 0.0, "std": 1.0}}


def check_stats(stats) -> dict:
    try:
        out = {f: {"mean": float(stats[f]["mean"]), "std": float(stats[f]["std"])}
               for f in ("omega_bar", "closure")}
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"stats must look like {{'omega_bar': {{'mean': …, 'std': …}}, "
                         f"'closure': {{'mean': …, 'std': …}}}}, got {stats!r}") from None
    for f, s in out.items():
        if not (math.isfinite(s["mean"]) and math.isfinite(s["std"]) and s["std"] > 0):
            raise ValueError(f"stats of {f} need a finite mean and a positive std, got {s}")
    return out


class FieldNormalisation:
    """The normalisation of a closure model's fields by its ``stats`` ({'omega_bar': {'mean',
    'std'}, 'closure': {...}}, :func:`check_stats`): (x − mean)/std and back, for numpy arrays
    and tensors alike."""

    stats: dict

    def normalise(self, x, field: str):
        """(x − mean)/std of ``field`` ('omega_bar' or 'closure')."""
        s = self.stats[field]
        return (x - s["mean"]) / s["std"]

    def denormalise(self, x, field: str):
        """x·std + mean of ``field``: the inverse of :meth:`normalise`."""
        s = self.stats[field]
        return x * s["std"] + s["mean"]


class LatentDiffusionModel(FieldNormalisation, nn.Module):
    """The conditional diffusion model of the closure term (module docstring).

    Parameters: ``n`` (grid points per side; divisible by 4 in latent space), ``space``
    ('latent' or 'physical'), ``L`` (box side, for the grid check; None: not checked),
    ``latent_channels`` and ``ae_channels`` (autoencoders), ``width``, ``modes``, ``layers``,
    ``time_dim``, ``proj_hidden``, ``sigma`` (score network and VE SDE), ``mean_width`` and
    ``mean_blocks`` (the mean network; 0 = none), ``stats`` (normalisation statistics; default
    mean 0, std 1). ``config`` holds everything but the stats
    (JSON-able); :meth:`from_config` rebuilds the model from it.

    Submodules: ``ae_omega``, ``ae_closure`` (None in physical space), ``score_net`` and
    ``mean_net`` (None without one).
    """

    def __init__(self, n: int, space: str = "latent", L: float | None = None,
                 latent_channels: int = 1, ae_channels=(16, 32, 32), width: int = 20,
                 modes: int = 4, layers: int = 4, time_dim: int = 64, proj_hidden: int = 64,
                 sigma: float = SIGMA, mean_width: int = 0, mean_blocks: int = 2,
                 stats: dict | None = None):
        super().__init__()
        if space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4:
            raise ValueError(f"n must be an integer ≥ 4, got {n!r}")
        n = int(n)
        if space == "latent" and n % 4:
            raise ValueError(f"latent space needs n divisible by 4 (two stride-2 stages), got {n}")
        if L is not None:
            L = float(L)
            if not (math.isfinite(L) and L > 0):
                raise ValueError(f"L must be a positive number or None, got {L!r}")
        side = n // 4 if space == "latent" else n
        if isinstance(modes, int) and not isinstance(modes, bool) and modes > side // 2:
            raise ValueError(f"modes={modes} is too many for the {space} fields of {side}×{side} "
                             f"points (modes ≤ {side // 2})")
        self.space = space
        self.n = n
        self.L = L
        self.config = dict(n=n, space=space, L=L, latent_channels=int(latent_channels),
                           ae_channels=[int(c) for c in ae_channels], width=int(width),
                           modes=int(modes), layers=int(layers), time_dim=int(time_dim),
                           proj_hidden=int(proj_hidden), sigma=float(sigma))
        if mean_width:                  # absent from configs without a mean network (old cards)
            self.config.update(mean_width=int(mean_width), mean_blocks=int(mean_blocks))
        self.stats = check_stats(stats if stats is not None else _default_stats())
        if space == "latent":
            self.ae_omega = ConvAutoencoder(1, latent_channels, tuple(ae_channels))
            self.ae_closure = ConvAutoencoder(1, latent_channels, tuple(ae_channels))
            ch = int(latent_channels)
        else:
            self.ae_omega = None
            self.ae_closure = None
            ch = 1
        self.score_net = ConditionalFNOScore(ch, ch, width=width, modes=modes, layers=layers,
                                             time_dim=time_dim, proj_hidden=proj_hidden,
                                             sigma=sigma)
        self.sigma = float(sigma)
        self.mean_net = MeanNet(int(mean_width), int(mean_blocks)) if mean_width else None

    @classmethod
    def from_config(cls, config: dict, stats: dict | None = None) -> "LatentDiffusionModel":
        """A new model (fresh weights) with the architecture ``config`` (``model.config``)."""
        if not isinstance(config, dict):
            raise ValueError(f"config must be a dict, got {type(config).__name__}")
        known = {"n", "space", "L", "latent_channels", "ae_channels", "width", "modes",
                 "layers", "time_dim", "proj_hidden", "sigma", "mean_width", "mean_blocks"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}")
        if "n" not in config:
            raise ValueError("model config lacks n")
        return cls(**config, stats=stats)

    # ------------------------------------------------------------------ shapes and maps
    @property
    def target_shape(self) -> tuple[int, int, int]:
        """Shape (C, h, w) of one diffused target: the latent of C, or C itself."""
        if self.space == "latent":
            s = self.n // 4
            return (self.config["latent_channels"], s, s)
        return (1, self.n, self.n)

    @property
    def grid(self) -> tuple[int, float | None]:
        return (self.n, self.L)

    def conv_channels_last(self) -> "LatentDiffusionModel":
        """Store the weights of the convolutional networks (autoencoders, mean network)
        channels-last, in place; :meth:`sample` feeds them channels-last fields. Same values;
        oneDNN's 3×3 convolutions skip a layout conversion per call (measured 2026-11-22, 16
        members, float32, one thread: encoder + mean network + decoder 13.5 → 9.7 ms per member,
        bfloat16 8.2 → 5.5). Returns the model."""
        for net in (self.ae_omega, self.ae_closure, self.mean_net):
            if net is not None:
                net.to(memory_format=torch.channels_last)
        return self

    def encode_omega(self, omega: torch.Tensor) -> torch.Tensor:
        """Normalised ω̄ (B, 1, n, n) → the condition of the score network."""
        return omega if self.ae_omega is None else self.ae_omega.encode(omega)

    def mean(self, omega: torch.Tensor) -> torch.Tensor | None:
        """μ(ω̄), the mean network's normalised C (None without a mean network)."""
        return None if self.mean_net is None else self.mean_net(omega)

    def reconstruct(self, omega: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Normalised C through the autoencoder (of the residual, plus μ(ω̄)): D(E(C − μ)) + μ."""
        mu = self.mean(omega)
        r = c if mu is None else c - mu
        rec = self.decode_closure(self.encode_closure(r))
        return rec if mu is None else rec + mu

    def encode_closure(self, c: torch.Tensor) -> torch.Tensor:
        """Normalised C (B, 1, n, n) → the diffused target."""
        return c if self.ae_closure is None else self.ae_closure.encode(c)

    def decode_closure(self, z: torch.Tensor) -> torch.Tensor:
        """The diffused target → normalised C (B, 1, n, n)."""
        return z if self.ae_closure is None else self.ae_closure.decode(z)

    def forward(self, x: torch.Tensor, t, cond: torch.Tensor) -> torch.Tensor:
        """The score s(x_t, t | cond) in the diffused space."""
        return self.score_net(x, t, cond)

    # ------------------------------------------------------------------ training objective
    def loss_terms(self, omega: torch.Tensor, closure: torch.Tensor, *, phase: str = "joint",
                   generator: torch.Generator | None = None,
                   dsm_reduction: str = "mean") -> dict[str, torch.Tensor]:
        """The terms of the training objective on a batch of normalised pairs (B, 1, n, n).

        ``phase``: 'joint' (every term, DSM gradients reach the encoders), 'ae' (reconstruction
        and moment terms only: the first phase of two-phase training), 'score' (DSM only, on the
        latents of frozen autoencoders, computed without their graph). In physical space only
        the DSM term exists. With a mean network, ``mse_mean`` (its MSE against C; trained in the
        'joint' and 'ae' phases, and always in physical space) is added and every other term sees
        the residual C − μ(ω̄) in place of C. Returns a dict of 0-d tensors: ``mse_h`` and
        ``mse_omega`` (mean squared reconstruction errors of the normalised fields), ``dsm``
        (:func:`closures.losses.dsm_loss`, reduction ``dsm_reduction``) and ``moment`` (the
        moment penalty of the latents of C and ω̄, averaged); absent terms are omitted.
        """
        if phase not in ("joint", "ae", "score"):
            raise ValueError(f"phase must be 'joint', 'ae' or 'score', got {phase!r}")
        terms: dict[str, torch.Tensor] = {}
        if self.mean_net is not None:           # residual conditioning (module docstring)
            if phase != "score" or self.space == "physical":
                mu = self.mean_net(omega)
                terms["mse_mean"] = torch.mean((mu - closure) ** 2)
                closure = closure - mu.detach()
            else:
                with torch.no_grad():
                    closure = closure - self.mean_net(omega)
        if self.space == "physical":
            if phase != "ae":
                terms["dsm"] = dsm_loss(self.score_net, closure, omega, sigma=self.sigma,
                                        generator=generator, reduction=dsm_reduction)
            return terms
        if phase == "score":
            with torch.no_grad():
                z_h, z_w = self.ae_closure.encode(closure), self.ae_omega.encode(omega)
        else:
            z_h, z_w = self.ae_closure.encode(closure), self.ae_omega.encode(omega)
            terms["mse_h"] = torch.mean((self.ae_closure.decode(z_h) - closure) ** 2)
            terms["mse_omega"] = torch.mean((self.ae_omega.decode(z_w) - omega) ** 2)
            terms["moment"] = 0.5 * (moment_penalty(z_h) + moment_penalty(z_w))
        if phase != "ae":
            terms["dsm"] = dsm_loss(self.score_net, z_h, z_w, sigma=self.sigma,
                                    generator=generator, reduction=dsm_reduction)
        return terms

    # ------------------------------------------------------------------ sampling
    def sample(self, omega: torch.Tensor, generators, samples: int = 1, steps: int = STEPS,
               t_start: float = T_START, rho: float = RHO, eps: float = EPS,
               precision: str = "float32") -> torch.Tensor:
        """Samples of normalised C given normalised ω̄ (B, 1, n, n): (B, samples, 1, n, n).

        One encoder pass for the whole batch (and one of the mean network), one pass of the score
        network's condition branch, ``steps`` passes of its target branch on B·samples targets,
        one decoder pass. ``generators``: one torch.Generator per batch entry (entry b's noise
        comes from generators[b] only), or a single generator for all. No gradients are kept.
        ``precision='bfloat16'`` runs the convolutional parts (autoencoders, mean network) under
        bfloat16 autocast (:func:`conv_precision`); the score network and the sampler stay float32.
        """
        B = omega.shape[0]
        conv = conv_precision(precision, omega.device)
        omega = omega.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            with conv:
                cond = self.encode_omega(omega).float().contiguous()
                mu = None if self.mean_net is None else self.mean_net(omega).float()
            cond = cond.repeat_interleave(samples, dim=0)
            feats = self.score_net.condition_features(cond)

            def score(x, t, _cond):
                return self.score_net(x, t, features=feats)

            z = sample_per_member(score, cond, generators, samples, self.target_shape,
                                  steps=steps, t_start=t_start, rho=rho, eps=eps,
                                  sigma=self.sigma)
            with conv:
                c = self.decode_closure(z.contiguous(memory_format=torch.channels_last)).float()
            if mu is not None:
                c = c + mu.repeat_interleave(samples, dim=0)
        return c.reshape(B, samples, *c.shape[1:])


PRECISIONS = ("float32", "bfloat16")


def conv_precision(precision: str, device) -> contextlib.AbstractContextManager:
    """The context the convolutional networks run in when sampling: nothing for 'float32',
    ``torch.autocast(device, bfloat16)`` for 'bfloat16'.

    Why offer bfloat16: the 3×3 convolutions at 64² and 32² are more than half of a refresh in
    float32 (8–9 of 13–17 ms per member, 2026-11-22), and CPUs with AMX or AVX-512 BF16 run
    them about twice as fast in bfloat16 (``benchmarks/ldm_cost.py``). A closure term changes
    by ~0.5 % of its norm, far below the model's own error (~70 %). Without such hardware
    bfloat16 is emulated and slower.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)

