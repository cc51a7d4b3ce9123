"""Ensembles around one run with a trained generator: :class:`EnsembleGenerator`,
:func:`load_generator`.

``generate(conditioning_U, members, seed)``: the conditioning run's profiles U_c (T, n) (physical
units, records at the training data's save interval, record 0 the state the ensemble starts
from) are normalised and encoded once, z_c = μ(u_c). The residuals r(t) of all members are then
made together, block after block of H steps (:mod:`closures.ensemble_ldm.model`): r(0) = 0, and
each block is drawn by the DDPM given the K residuals before it and z_c over the block (steps
past the end hold z_c(T − 1); their draws are discarded). The members are
x̂(t) = denormalise(D(z_c(t) + r(t))) for t ≥ 1 and U_c(0) at t = 0: array (members, T, n),
float32, in the data's units.

Noise and seeds. Member k draws all its noise from its own ``torch.Generator``, seeded from
(``seed``, k) through ``numpy.random.SeedSequence``, one call per block; so the same seed gives
the same ensemble bit for bit (same batch size, device and thread count), and member k's draws do
not depend on ``members`` or ``batch`` (its values then agree to round-off).

Sampler (default: the card's ``sampler``, else DDIM with :data:`SAMPLE_STEPS` steps):
deterministic DDIM with ``steps`` steps (on a distilled model's own steps, its card's
``timesteps``, when ``steps`` is their number: :mod:`closures.ensemble_ldm.distil`),
deterministic DPM-Solver++(2M) (``method='dpm2m'``, second order: on a Gaussian toy about the
accuracy of DDIM with five times the steps, at the same cost per step;
:mod:`closures.nn.diffusion`), or ``method='ancestral'`` (all T diffusion steps).

Batches. Members are generated ``batch`` at a time, by default as many as make about
:data:`BATCH_TOKENS` (4096) tokens per denoiser pass, ⌊4096/(K + H)⌋: 113 members for the window
mode (K + H = 36), 819 for the autoregressive mode (K + H = 5). Larger passes spill out of the
CPU's caches, smaller ones pay Python's overhead per call: on one thread, 1000 members with 10
DPM-Solver++(2M) steps took 4.6 s in batches of 100 and 7.0 s in one for the window model, and
19 s in batches of 100 and 15 s in batches of 500 or 1000 for the autoregressive one.

Residual gain. ``residual_gain`` g ≥ 0 makes the members x̂(t) = denormalise(D(z_c(t) + g r(t)))
from the same draws r (the blocks are drawn given the unscaled residuals, as in training): g = 1
is the trained model, g < 1 pulls every member towards the conditioning run and shrinks the
spread, an online setting chosen on validation starts (default: the card's
``online.residual_gain``, else 1).

Centring. With an ensemble mean m̂ (:class:`~closures.ensemble_ldm.mean.EnsembleMean`, from the
conditioning run alone), the members are moved together so that their mean is m̂ at every
record t ≥ 1: x̂_k ← x̂_k − ⟨x̂⟩ + m̂, ⟨x̂⟩ the mean over the ``members`` generated. Each keeps its
deviation from the ensemble's mean, and they no longer share the conditioning run's deviation
from the ensemble mean, only m̂'s error. A member then depends on the others through ⟨x̂⟩ (still
not on ``batch``), and an ensemble needs at least two. :func:`load_generator` attaches the
card's ``online.centre`` (a model name or path) unless told otherwise.

Spread scale. With ``spread_scale`` s(t) (default: the card's ``online.spread_scale``), the
members' deviations from their mean at record t ≥ 1 are multiplied by s(t) after the centring,
which keeps the mean (:mod:`closures.ensemble_ldm.spread` fits s on training starts).
"""
from __future__ import annotations

import numpy as np
import torch

from solvers.validate import integer, number

from ..base import online_setting
from ..fit import seeded_generator
from ..ldm.closure import torch_threads
from ..nn.diffusion import METHODS
from .data import conditioning_array
from .files import load_ensemble_ldm
from .mean import EnsembleMean, load_ensemble_mean
from .model import EnsembleLDM

__all__ = ["EnsembleGenerator", "load_generator", "member_generators", "SAMPLE_STEPS",
           "BATCH_TOKENS"]

SAMPLE_STEPS = 50               # default DDIM steps
BATCH_TOKENS = 4096             # default tokens per denoiser pass (module docstring)


def member_generators(seed: int, first: int, count: int, device="cpu") -> list[torch.Generator]:
    """The torch generators of members ``first`` … ``first + count − 1`` of the ensemble of
    ``seed``: member k's seeded with SeedSequence([seed, k])."""
    return [seeded_generator(seed, k, device=device) for k in range(first, first + count)]


class EnsembleGenerator:
    """A trained :class:`~closures.ensemble_ldm.model.EnsembleLDM` as a generator of ensembles
    around one run (module docstring). ``threads``: torch's thread count while generating
    (None: torch's setting); ``mean``: the ensemble mean the members are centred on (None: they
    are not)."""

    def __init__(self, model: EnsembleLDM, device="cpu", threads: int | None = None,
                 mean: EnsembleMean | None = None):
        if not isinstance(model, EnsembleLDM):
            raise ValueError(f"model must be an EnsembleLDM, got {type(model).__name__}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.threads = integer("threads", threads, 1, allow_none=True)
        if mean is not None:
            if not isinstance(mean, EnsembleMean):
                raise ValueError(f"mean must be an EnsembleMean or None, got "
                                 f"{type(mean).__name__}")
            if mean.points != self.points:
                raise ValueError(f"mean: an ensemble mean of {mean.points}-point profiles for "
                                 f"a generator of {self.points}")
            a, b = mean.interval, self.interval
            if a is not None and b is not None and not np.isclose(a, b, rtol=1e-6):
                raise ValueError(f"mean: fitted at save interval {a:g}, the generator at {b:g}")
        self.mean = mean

    @property
    def points(self) -> int:
        return self.model.points

    @property
    def mode(self) -> str:
        return self.model.mode

    @property
    def card(self) -> dict:
        return getattr(self.model, "card", {})

    @property
    def interval(self) -> float | None:
        """The save interval of the training data (None if unknown)."""
        return (self.card.get("data") or {}).get("interval")

    def _conditioning(self, U) -> torch.Tensor:
        return torch.as_tensor(conditioning_array(U, self.points, 2), dtype=torch.float32,
                               device=self.device)

    def method(self, method: str | None = None) -> str:
        """The sampler of a generation: ``method``, else the card's, else 'ddim'."""
        if method is None:
            method = (self.card.get("sampler") or {}).get("method") or "ddim"
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        return method

    def sample_steps(self, steps: int | None = None, method: str | None = None) -> int:
        """The diffusion steps a sample takes: ``steps`` (default the card's sampler steps, else
        :data:`SAMPLE_STEPS`), at most T, for 'ddim' and 'dpm2m'; T for 'ancestral'."""
        method = self.method(method)
        T = self.model.ddpm.steps
        if method == "ancestral":
            return T
        if steps is None:
            steps = min((self.card.get("sampler") or {}).get("steps") or SAMPLE_STEPS, T)
        return integer("steps", steps, 1, T)

    def timesteps(self, method: str, steps: int) -> list[int] | None:
        """The DDIM steps of a distilled model (its card's sampler ``timesteps``), when a
        generation uses DDIM with as many steps; else None (DDIM's 'leading' steps)."""
        taus = (self.card.get("sampler") or {}).get("timesteps")
        return list(taus) if taus and method == "ddim" and steps == len(taus) else None

    def residual_gain(self, gain: float | None = None) -> float:
        """The residual gain of a generation: ``gain``, else the card's
        ``online.residual_gain``, else 1 (module docstring)."""
        return number("residual_gain", online_setting(self.card, "residual_gain", gain, 1.0),
                      at_least=0)

    def spread_scale(self, scale=None) -> list[float]:
        """The per-lead spread scale of a generation: ``scale``, else the card's
        ``online.spread_scale``, else none ([]); each a finite number > 0."""
        return [number("spread_scale", v, above=0)
                for v in online_setting(self.card, "spread_scale", scale, [])]

    def default_batch(self, members: int) -> int:
        """Members per denoiser pass by default: ⌊:data:`BATCH_TOKENS`/(K + H)⌋, at least 1, at
        most ``members`` (module docstring)."""
        return max(1, min(members, BATCH_TOKENS // (self.model.context + self.model.horizon)))

    @torch.no_grad()
    def generate(self, conditioning_U, members: int, seed: int = 0, *, batch: int | None = None,
                 method: str | None = None, steps: int | None = None,
                 residual_gain: float | None = None, centre: bool | None = None,
                 spread_scale=None) -> np.ndarray:
        """``members`` members around the conditioning run U_c (T, n): float32 (members, T, n)
        in the data's units (module docstring). ``batch``: members generated together (default
        about :data:`BATCH_TOKENS` tokens per pass); ``method``: 'ddim' or 'dpm2m' (``steps``
        steps) or 'ancestral' (default: the card's); ``residual_gain``: g; ``centre``: move the
        members' mean to the ensemble mean m̂ (default: whenever the generator has one);
        ``spread_scale``: s(t) for t = 1, 2, … (the last one beyond), the members' deviations
        from their mean scaled by it (default: the card's ``online.spread_scale``; [] for none;
        module docstring)."""
        members = integer("members", members, 1)
        scale = self.spread_scale(spread_scale)
        centre = self.mean is not None if centre is None else bool(centre)
        if centre and self.mean is None:
            raise ValueError("centre: this generator has no ensemble mean (load_generator(..., "
                             "mean=NAME|PATH))")
        if (centre or scale) and members < 2:
            raise ValueError(f"members must be ≥ 2 to centre an ensemble on its mean or scale "
                             f"its spread, got {members}")
        seed = integer("seed", seed, 0)
        batch = integer("batch", self.default_batch(members) if batch is None else batch, 1)
        gain = self.residual_gain(residual_gain)
        m = self.model
        method = self.method(method)
        steps = self.sample_steps(steps, method)
        taus = self.timesteps(method, steps)
        uc = self._conditioning(conditioning_U)
        T, K, H = uc.shape[0], m.context, m.horizon
        with torch_threads(self.threads):
            zc = m.encode(m.normalise(uc))                                   # (T, m)
            out = np.empty((members, T, self.points), dtype=np.float32)
            out[:, 0] = uc[0].cpu().numpy()
            for b0 in range(0, members, batch):
                nb = min(batch, members - b0)
                gens = member_generators(seed, b0, nb, self.device)
                r = torch.zeros(nb, T, zc.shape[-1], device=self.device)
                t = 1
                while t < T:
                    steps_ = torch.arange(t - K, t + H, device=self.device).clamp(0, T - 1)
                    ctx = r[:, steps_[:K]]
                    cond = zc[steps_].expand(nb, -1, -1)
                    x = m.sample_residuals(ctx, cond, gens, method=method, sample_steps=steps,
                                           taus=taus)
                    h = min(H, T - t)
                    r[:, t:t + h] = x[:, :h]
                    t += h
                z = zc[None, 1:] + (r[:, 1:] if gain == 1 else gain * r[:, 1:])
                u = m.denormalise(m.decode(z))                                 # (nb, T−1, n)
                out[b0:b0 + nb, 1:] = u.cpu().numpy()
        if centre:
            m_hat = self.mean.predict(uc.cpu().numpy())[1:]
            out[:, 1:] += (m_hat - out[:, 1:].mean(axis=0, dtype=np.float64)).astype(np.float32)
        if scale:
            s = np.asarray(scale + scale[-1:] * max(0, T - 1 - len(scale)))[:T - 1, None]
            mean = out[:, 1:].mean(axis=0, dtype=np.float64)
            out[:, 1:] = (mean + s * (out[:, 1:] - mean)).astype(np.float32)
        return out


def load_generator(name_or_path, device="cpu", threads: int | None = None,
                   mean="card") -> EnsembleGenerator:
    """The :class:`EnsembleGenerator` of a saved model: a shipped model's name
    (``closures/weights``) or the path of a model saved by ``train_ensemble_ldm``. ``mean``: the
    ensemble mean its members are centred on: 'card' (the card's ``online.centre``, a model
    name or path, if it has one), None or 'none' (not centred), a name or path
    (:func:`~closures.ensemble_ldm.mean.load_ensemble_mean`), or an :class:`EnsembleMean`."""
    model = load_ensemble_ldm(name_or_path, device=device)
    if isinstance(mean, str) and mean == "card":
        mean = online_setting(getattr(model, "card", {}), "centre", None, None)
    if mean is None or (isinstance(mean, str) and mean == "none"):
        mean = None
    elif not isinstance(mean, EnsembleMean):
        mean = load_ensemble_mean(mean)
    return EnsembleGenerator(model, device=device, threads=threads, mean=mean)

