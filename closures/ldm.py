"""Latent conditional diffusion closure (L-CDM) and its physical-space baseline (P-CDM).

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

Sampler. Euler–Maruyama on the Karras schedule of :func:`closures.losses.karras_times`,
``steps`` (default :data:`STEPS` = 10) score evaluations from ``t_start`` (default
:data:`T_START` = 0.3) down to ``eps``, with exponent ``rho`` (default :data:`RHO` = 1: uniform in
t, i.e. geometric in the noise level) — the same update as :func:`closures.losses.sample_ve` (a
test checks that they agree bit for bit for one member). The start is
x = sqrt(data_var + std(t_start)²)·z with ``data_var = 1`` (:data:`DATA_VAR`): the target
(normalised C, or its latent, pulled toward N(0, 1) by the moment penalty) has unit variance, so
this is the exact noised marginal at t_start, where the bare VE prior std(t_start)·z neglects the
data's own variance.

Why ρ = 1 and t_start = 0.3, not the image-generation ρ = 7 and our first t_start 0.4. With ρ = 7
the big steps fall near t_start, and Euler–Maruyama there inflates the variance: with the exact
score of N(0, 1), 10 steps give a variance of 1.36 (20 steps 1.07, 40 steps 1.03); with ρ = 1,
0.95 at 10 steps and 0.90 at 5 (tests/test_ldm.py). On the 160 held-out pairs of the shipped
L-CDM (mean of 8 samples; spread/error ≈ 0.94 is calibrated for 8 samples):

=======  =====  =======  ==========  ============  =============
steps    ρ      t_start  rel. error  one sample    spread/error
=======  =====  =======  ==========  ============  =============
10       7      0.4      0.795       1.37          1.50
40       7      0.4      0.739       1.12          1.22
10       1      0.4      0.730       1.07          1.15
**10**   **1**  **0.3**  **0.719**   **1.01**      **1.06**
5        1      0.3      0.715       0.99          1.03
10       0.5    0.4      0.700       0.90          0.87
=======  =====  =======  ==========  ============  =============

So the converged sampler (40 steps, ρ = 7) shows the model itself slightly over-dispersed, and
ρ = 1, t_start = 0.3 is the calibrated choice at the same cost; it was chosen on these held-out
pairs (the sampler has no trained weights; the online tests start from other states of the same
held-out period). ``steps=5`` is as good offline at half the score passes.

Noise and seeds. The closure's randomness comes only from the per-member numpy generators of
:class:`closures.base.Closure` (``self.rng``, seeded from ``reset(..., seed)``). At every refresh
member m draws one integer ``seed_m = rng[m].integers(0, 2**63)`` and all torch noise of that
member for that refresh (its starting latent and the noise of every sampler step, for all
``samples`` draws of the member) comes from ``torch.Generator().manual_seed(seed_m)``, drawn in a
fixed order. So a member's noise depends only on the run's seed and the member's global index,
the same seed gives the same closure terms, and ``get_state``/``set_state`` (which save the numpy
generators) make restarts bit-exact: no torch generator state outlives a refresh.

Files. :func:`save_model` writes ``<stem>.pt`` (the ``state_dict`` only) and ``<stem>.json`` (the
model card: architecture config, grid, normalisation statistics, data, training config and time,
offline metrics, and the name and shape of every tensor of the state_dict).
:func:`load_model` loads the weights with ``torch.load(..., weights_only=True)`` and checks them
against the card; any problem raises :class:`ModelFileError` naming the file.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import Closure
from .calibration import apply_shell_gains
from .losses import EPS, SIGMA, dsm_loss, karras_times, moment_penalty, ve_marginal_std
from .nn import ConditionalFNOScore, ConvAutoencoder, MeanNet

__all__ = ["LatentDiffusionModel", "LatentDiffusionClosure", "ModelFileError", "save_model",
           "update_card", "load_model", "model_paths", "sample_per_member", "CARD_FORMAT",
           "DATA_VAR", "DEFAULT_WEIGHTS", "WEIGHTS_DIR", "resolve_model_path",
           "PhysicalDiffusionClosure", "PRECISIONS", "conv_precision", "STEPS", "T_START", "RHO"]

CARD_FORMAT = "hybrid-ldm-card"
CARD_VERSION = 1
DATA_VAR = 1.0          # variance of the (normalised or latent) target the sampler starts from
STEPS = 10              # sampler defaults (module docstring, "Why ρ = 1 and t_start = 0.3")
T_START = 0.3
RHO = 1.0
SPACES = ("latent", "physical")
# loss weights of the joint objective (REFERENCES.md): 10·MSE_H + 0.1·MSE_ω + 0.1·DSM + 0.01·moment
DEFAULT_WEIGHTS = {"mse_h": 10.0, "mse_omega": 0.1, "dsm": 0.1, "moment": 0.01,
                   "mse_mean": 10.0}             # the last: the mean network's, ours (as mse_h)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"     # the shipped models (README there)


class ModelFileError(ValueError):
    """A model file (weights or card) is missing, corrupt or does not match; names the file."""


def _default_stats() -> dict:
    return {"omega_bar": {"mean": 0.0, "std": 1.0}, "closure": {"mean": 0.0, "std": 1.0}}


def _check_stats(stats) -> dict:
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


class LatentDiffusionModel(nn.Module):
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
        self.stats = _check_stats(stats if stats is not None else _default_stats())
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

    def normalise(self, x, field: str):
        s = self.stats[field]
        return (x - s["mean"]) / s["std"]

    def denormalise(self, x, field: str):
        s = self.stats[field]
        return x * s["std"] + s["mean"]

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


def sample_per_member(score_fn, cond: torch.Tensor, generators, samples: int,
                      shape: tuple[int, ...], steps: int = STEPS, t_start: float = T_START,
                      rho: float = RHO, eps: float = EPS, sigma: float = SIGMA,
                      data_var: float = DATA_VAR) -> torch.Tensor:
    """Reverse VE SDE samples (B·samples, *shape), entry b's ``samples`` draws using generator b.

    The update is :func:`closures.losses.sample_ve`'s (Euler–Maruyama on the Karras schedule, no
    noise on the last step); the start is sqrt(data_var + std(t_start)²)·z (module docstring).
    Draw order per generator: the ``samples`` starting fields, then the noise of each step. With
    a single generator (not a list) every draw is one batched ``torch.randn``, so that for one
    entry the result equals ``sample_ve(score_fn, …, x_init=…, generator=g)`` bit for bit.
    """
    total = cond.shape[0]
    if isinstance(generators, torch.Generator) or generators is None:
        gens = None
        single = generators
        B = total // samples
    else:
        gens = list(generators)
        B = len(gens)
    if B * samples != total:
        raise ValueError(f"{total} conditions for {B} members × {samples} samples")
    full = (total,) + tuple(shape)
    dev, dtype = cond.device, cond.dtype

    def noise():
        if gens is None:
            return torch.randn(full, generator=single, device=dev, dtype=dtype)
        return torch.cat([torch.randn((samples,) + tuple(shape), generator=g, device=dev,
                                      dtype=dtype) for g in gens])

    times = karras_times(steps, t_start, eps, rho)
    x = noise() * math.sqrt(data_var + float(ve_marginal_std(float(times[0]), sigma)) ** 2)
    log_s = math.log(sigma)
    for i in range(steps):
        ti, dt = float(times[i]), float(times[i] - times[i + 1])
        g2 = math.exp(2.0 * ti * log_s)
        s = score_fn(x, torch.full((total,), ti, device=dev, dtype=dtype), cond)
        x = x + (g2 * dt) * s
        if i < steps - 1:
            x = x + math.sqrt(g2 * dt) * noise()
    return x


# ---------------------------------------------------------------------- files
def model_paths(path_stem) -> tuple[Path, Path]:
    """(``<stem>.pt``, ``<stem>.json``) for a stem, or for either file's path."""
    p = Path(os.fspath(path_stem)).expanduser()
    if p.suffix in (".pt", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".pt"), p.with_name(p.name + ".json")


def resolve_model_path(path_or_name) -> Path:
    """The stem of a saved model: ``path_or_name`` itself when its card (``<stem>.json``) exists,
    else the shipped model of that name in :data:`WEIGHTS_DIR` (e.g. ``'ldm-kolmogorov'``), else
    ``path_or_name`` unchanged (so that loading it reports the missing file by its given path)."""
    pt, js = model_paths(path_or_name)
    stem = js.with_suffix("")
    if js.exists() or pt.exists():
        return stem
    shipped = WEIGHTS_DIR / stem.name
    if stem.parent == Path(".") and (shipped.with_name(shipped.name + ".json")).exists():
        return shipped
    return stem


def _plain(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def save_model(model: LatentDiffusionModel, path_stem, card: dict | None = None) -> tuple[Path,
                                                                                           Path]:
    """Write ``<stem>.pt`` (state_dict) and ``<stem>.json`` (card), each atomically.

    The card is ``card`` (data, training, metrics, …: any JSON-able dict) plus what loading needs,
    which this function sets: ``format``, ``version``, ``config``, ``stats``, ``grid`` and
    ``state_dict`` (name → shape of every tensor). Returns the two paths.
    """
    pt, js = model_paths(path_stem)
    pt.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    full = dict(card or {})
    full.update(format=CARD_FORMAT, version=CARD_VERSION, config=dict(model.config),
                stats=model.stats, grid={"n": model.n, "L": model.L},
                weights_file=pt.name,
                state_dict={k: list(v.shape) for k, v in sd.items()})
    tmp = pt.with_name(pt.name + ".tmp")
    torch.save(sd, tmp)
    os.replace(tmp, pt)
    _write_card(js, full)
    return pt, js


def _write_card(js: Path, card: dict) -> None:
    """Write a card atomically (a temporary file, then a rename), indented JSON."""
    tmp = js.with_name(js.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, default=_plain) + "\n")
    os.replace(tmp, js)


def update_card(path_stem, **entries) -> Path:
    """Set the top-level ``entries`` of the saved card of ``path_stem`` (checked by
    :func:`read_card` first, then rewritten as stored plus the entries); the weights are not
    touched. Returns the card's path."""
    read_card(path_stem)
    _, js = model_paths(path_stem)
    card = json.loads(js.read_text())
    card.update(entries)
    _write_card(js, card)
    return js


def read_card(path_stem) -> dict:
    """The model card of ``path_stem`` (checked: format, config, stats, state_dict shapes)."""
    _, js = model_paths(path_stem)
    if not js.is_file():
        raise ModelFileError(f"model card {js} does not exist"
                             + ("" if js.exists() else " (expected beside the weights file)"))
    try:
        card = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"model card {js} is not readable JSON (corrupt?): {e}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelFileError(f"model card {js} is not a {CARD_FORMAT!r} card (format = "
                             f"{card.get('format') if isinstance(card, dict) else None!r})")
    if int(card.get("version", 0)) > CARD_VERSION:
        raise ModelFileError(f"model card {js} has version {card['version']}; this package reads "
                             f"up to {CARD_VERSION}")
    missing = [k for k in ("config", "stats", "state_dict") if k not in card]
    if missing:
        raise ModelFileError(f"model card {js} lacks {', '.join(missing)}")
    try:
        card["stats"] = _check_stats(card["stats"])
    except ValueError as e:
        raise ModelFileError(f"model card {js}: {e}") from None
    return card


def load_model(path_stem, device="cpu") -> LatentDiffusionModel:
    """The model saved by :func:`save_model` at ``path_stem`` (or either file's path), in eval
    mode, with ``model.card`` set. Raises :class:`ModelFileError` (naming the file) for a missing,
    unreadable or corrupt card or weights file, or weights that do not match the card."""
    pt, js = model_paths(path_stem)
    card = read_card(path_stem)
    try:
        model = LatentDiffusionModel.from_config(card["config"], stats=card["stats"])
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"model card {js}: bad architecture config: {e}") from None
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    if {k: list(v) for k, v in card["state_dict"].items()} != expected:
        raise ModelFileError(f"model card {js} lists tensors that its architecture config does "
                             f"not build (card edited or from another version)")
    if not pt.is_file():
        raise ModelFileError(f"weights file {pt} does not exist (card {js})")
    try:
        sd = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as e:           # torch raises several types for bad pickles/zip files
        raise ModelFileError(f"weights file {pt} is not a readable torch state_dict (corrupt, "
                             f"truncated or not saved by save_model): {type(e).__name__}: "
                             f"{str(e)[:200]}") from None
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ModelFileError(f"weights file {pt} does not hold a state_dict of tensors")
    got = {k: list(v.shape) for k, v in sd.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}{' …' if len(extra) > 5 else ''}")
        if wrong:
            parts.append("wrong shape " + ", ".join(f"{k} {got[k]} (card: {expected[k]})"
                                                    for k in wrong[:5]))
        raise ModelFileError(f"weights file {pt} does not match its card {js}: "
                             + "; ".join(parts))
    if not all(bool(torch.isfinite(v).all()) for v in sd.values() if v.is_floating_point()):
        raise ModelFileError(f"weights file {pt} holds non-finite values")
    model.load_state_dict(sd)
    model.card = card
    return model.to(device).eval()


# ---------------------------------------------------------------------- the closure
class LatentDiffusionClosure(Closure):
    """The diffusion model as a closure of the solver's hook (module docstring).

    ``LatentDiffusionClosure(model_or_path, every=5, steps=10, t_start=0.3, rho=1, threads=1,
    device='cpu', samples=1, precision='float32', chunk=16)``: ``model`` a
    :class:`LatentDiffusionModel` or the stem (or ``.pt``/``.json`` path) of saved weights, or
    the name of a shipped model (:func:`resolve_model_path`); ``path=`` is the same, for
    ``get_closure('ldm', path=...)``. Neither given: the shipped :attr:`default_model`
    ('ldm-kolmogorov', for the ``kolmogorov`` preset's LES 64²). Each refresh returns, per member,
    the mean of ``samples`` draws (1: a plain stochastic sample) of C in physical units, float64
    (members, n, n).
    ``threads`` sets ``torch.set_num_threads`` before each refresh (default 1: small networks
    called from a solver run fastest on one thread; None leaves torch's setting).
    ``precision``: 'float32' (default) or 'bfloat16' for the convolutional parts
    (:func:`conv_precision`). ``chunk``: members per network call (default 16; None: all members
    in one call). Why 16: a 16-channel activation of 16 members at 64² is 4 MB and stays in
    cache; at 64 members a refresh took 26 ms per member in one call and 16 ms in chunks of 16
    (float32, one thread, 2026-11-22). A member's sample does not depend on the chunking beyond
    float round-off, since its noise comes from its own generator.
    ``calibrate`` (default True): where the model card holds a ``calibration`` (fitted by
    ``hybrid calibrate``, :mod:`closures.calibration`), the shell-s part of the term is multiplied
    by its least-squares gain g_s (``shell_gains``; the lowest shells only).
    Attributes: ``model``, ``calls`` (refreshes so far), ``last_seeds`` (the per-member torch
    seeds of the last refresh).
    """

    name = "ldm"
    default_model = "ldm-kolmogorov"

    def __init__(self, model=None, every: int = 5, steps: int = STEPS, t_start: float = T_START,
                 rho: float = RHO, threads: int | None = 1, device: str = "cpu", samples: int = 1,
                 path=None, precision: str = "float32", chunk: int | None = 16,
                 calibrate: bool = True):
        super().__init__(every)
        if model is not None and path is not None:
            raise ValueError("give a model or a path, not both")
        src = model if model is not None else path
        if src is None:
            src = self.default_model
        for name, v in (("steps", steps), ("samples", samples), ("chunk", chunk)):
            if name == "chunk" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer ≥ 1, got {v!r}")
        conv_precision(precision, "cpu")             # validates the name
        if threads is not None and (isinstance(threads, bool)
                                    or not isinstance(threads, (int, np.integer)) or threads < 1):
            raise ValueError(f"threads must be an integer ≥ 1 or None, got {threads!r}")
        try:
            ts = float(t_start)
        except (TypeError, ValueError):
            ts = float("nan")
        if not EPS < ts <= 1:
            raise ValueError(f"t_start must lie in ({EPS:g}, 1], got {t_start!r}")
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho < math.inf:
            raise ValueError(f"rho must be a positive number, got {rho!r}")
        self.device = torch.device(device)
        if isinstance(src, LatentDiffusionModel):
            self.model = src.to(self.device).eval()
            self.path = None
        elif isinstance(src, (str, os.PathLike)):
            self.path = str(resolve_model_path(src))
            self.model = load_model(self.path, device=self.device)
        else:
            raise ValueError(f"model must be a LatentDiffusionModel or a path, got "
                             f"{type(src).__name__}")
        self.model.conv_channels_last()
        self.steps, self.samples, self.t_start, self.rho = int(steps), int(samples), ts, float(rho)
        self.precision, self.chunk = precision, None if chunk is None else int(chunk)
        self.threads = None if threads is None else int(threads)
        if not isinstance(calibrate, bool):
            raise ValueError(f"calibrate must be True or False, got {calibrate!r}")
        cal = (getattr(self.model, "card", None) or {}).get("calibration") or {}
        self.shell_gains = list(cal.get("shell_gains", [])) if calibrate else []
        self.built_for = self.model.grid
        self.calls = 0
        self.last_seeds: list[int] | None = None

    def describe(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return f"LatentDiffusionClosure(space={self.model.space!r}{where})"

    def member_generators(self) -> list[torch.Generator]:
        """One fresh torch.Generator per member, seeded from the member's numpy generator."""
        if self.rng is None:
            raise RuntimeError(f"closure {self.describe()} has no generators: call reset first")
        seeds = [int(r.integers(0, 2**63)) for r in self.rng]
        self.last_seeds = seeds
        gens = []
        for s in seeds:
            g = torch.Generator(device=self.device)
            g.manual_seed(s)
            gens.append(g)
        return gens

    def compute(self, state) -> np.ndarray:
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        w = np.asarray(state.vorticity, dtype=np.float64)
        m = self.model
        x = torch.from_numpy(m.normalise(w, "omega_bar").astype(np.float32))[:, None]
        gens = self.member_generators()
        x = x.to(self.device)
        size = self.chunk or len(gens)
        with torch.inference_mode():
            c = torch.cat([m.sample(x[s:s + size], gens[s:s + size], samples=self.samples,
                                    steps=self.steps, t_start=self.t_start, rho=self.rho,
                                    precision=self.precision).mean(dim=1)[:, 0]
                           for s in range(0, len(gens), size)])
        out = m.denormalise(c.detach().to("cpu").numpy().astype(np.float64), "closure")
        if self.shell_gains:
            out = apply_shell_gains(out, self.shell_gains)
        self.calls += 1
        return out

    def get_state(self) -> dict[str, Any]:
        st = super().get_state()
        st["calls"] = self.calls
        return st

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.calls = int(state.get("calls", self.calls))

    def __repr__(self) -> str:
        return (f"LatentDiffusionClosure(space={self.model.space!r}, every={self.every}, "
                f"steps={self.steps}, t_start={self.t_start:g}, rho={self.rho:g}, "
                f"samples={self.samples}, precision={self.precision!r}, chunk={self.chunk}, "
                f"shell_gains={[round(g, 4) for g in self.shell_gains]})")


class PhysicalDiffusionClosure(LatentDiffusionClosure):
    """:class:`LatentDiffusionClosure` whose default model is the shipped physical-space baseline
    'pcdm-kolmogorov' (P-CDM: score network on the 64² fields, no autoencoders)."""

    name = "pcdm"
    default_model = "pcdm-kolmogorov"
