"""The diffusion model as closures of the solver's hook: the L-CDM ('ldm'), the P-CDM ('pcdm')
and the L-CDM's deterministic mean network μ(ω̄) alone ('ldm-mean').

Threads. ``threads`` (default 1) is the torch thread count of a refresh; it is set for the refresh
only and the caller's setting is restored after it (:func:`torch_threads`), so a closure in a
process does not change the thread count of the rest of the process.

Noise and seeds. The closure's randomness comes only from the per-member numpy generators of
:class:`closures.base.Closure` (``self.rng``, seeded from ``reset(..., seed)``). At every refresh
member m draws one integer ``seed_m = rng[m].integers(0, 2**63)`` and all torch noise of that
member for that refresh (its starting latent and the noise of every sampler step, for all
``samples`` draws of the member) comes from ``torch.Generator().manual_seed(seed_m)``, drawn in a
fixed order. So a member's noise depends only on the run's seed and the member's global index,
the same seed gives the same closure terms, and ``get_state``/``set_state`` (which save the numpy
generators) make restarts bit-exact: no torch generator state outlives a refresh.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import numpy as np
import torch

from solvers.validate import integer, number

from ..base import Closure
from ..calibration import apply_shell_gains
from ..losses import EPS
from .files import load_model, resolve_model_path
from .model import LatentDiffusionModel, conv_precision
from .sampler import RHO, STEPS, T_START

__all__ = ["LatentDiffusionClosure", "PhysicalDiffusionClosure", "MeanNetworkClosure",
           "card_target", "torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``torch.set_num_threads(threads)`` and restore the previous count after
    it (also on error); None leaves torch's setting alone."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def card_target(card: dict) -> str | None:
    """The target of the data a model was trained on (its card's ``data.generation.target``:
    'subgrid' or 'missing-physics', see ``hybrid generate --target``), None where the card does
    not record it."""
    data = card.get("data") if isinstance(card, dict) else None
    generation = data.get("generation") if isinstance(data, dict) else None
    target = generation.get("target") if isinstance(generation, dict) else None
    return target if isinstance(target, str) else None


class _ModelClosure(Closure):
    """What the model-backed closures share: the model (object, saved stem or shipped name),
    device, torch threads of a refresh, members per network call, the card's shell gains, and
    ``gain``: a factor on the whole term (default 1; an online setting to tune on validation
    runs, as a classical closure's coefficient is tuned), or only on its shells 1 … ``gain_shells``
    (round(|k|), :mod:`closures.calibration`) where ``gain_shells`` > 0 (default 0: all);
    ``zonal_gain`` (default None: ``gain``), the factor on the term's zonal mean ⟨C⟩_x (x the last
    axis: on the beta-plane the subgrid forcing of the jets, while C − ⟨C⟩_x forces the resolved
    eddies) in place of ``gain``; and ``precision``, 'float32' (default) or 'bfloat16' for the
    convolutional networks (:func:`conv_precision`; each model's attention and sampler stay
    float32). (A drag on the LES eddies is a solver setting, ``eddy_drag`` of
    :class:`solvers.BetaPlane`, integrated exactly; held over a refresh as part of the term it is
    unstable.)
    Subclasses of another model set ``model_class`` (the model's type) and ``loader`` (a function
    ``(path, device) -> model`` raising :class:`ModelFileError`); the model normalises with
    ``normalise(x, field)`` / ``denormalise(x, field)`` (fields 'omega_bar' and 'closure'), has
    ``grid`` = (n, L) and ``conv_channels_last()``."""

    default_model = "ldm-kolmogorov"
    model_class: type = LatentDiffusionModel
    loader = staticmethod(load_model)

    def __init__(self, model=None, every: int = 5, threads: int | None = 1,
                 device: str = "cpu", path=None, chunk: int | None = 16,
                 calibrate: bool = True, gain: float = 1.0, gain_shells: int = 0,
                 precision: str = "float32", zonal_gain: float | None = None):
        super().__init__(every)
        conv_precision(precision, "cpu")             # validates the name
        self.precision = precision
        self.gain = number("gain", gain, at_least=0)
        self.zonal_gain = number("zonal_gain", zonal_gain, at_least=0, allow_none=True)
        self.gain_shells = integer("gain_shells", gain_shells, 0)
        if self.zonal_gain is not None and self.gain_shells:
            raise ValueError("give zonal_gain or gain_shells, not both")
        if model is not None and path is not None:
            raise ValueError("give a model or a path, not both")
        self.chunk = integer("chunk", chunk, allow_none=True)
        self.threads = integer("threads", threads, allow_none=True)
        if not isinstance(calibrate, bool):
            raise ValueError(f"calibrate must be True or False, got {calibrate!r}")
        src = model if model is not None else path
        if src is None:
            src = self.default_model
        kind = self.model_class
        if not isinstance(src, (kind, str, os.PathLike)):
            raise ValueError(f"model must be a {kind.__name__} or a path, got "
                             f"{type(src).__name__}")
        self.device = torch.device(device)
        if isinstance(src, kind):
            self.model = src.to(self.device).eval()
            self.path = None
        else:
            self.path = str(resolve_model_path(src))
            self.model = self.loader(self.path, device=self.device)
        self.model.conv_channels_last()
        card = getattr(self.model, "card", None) or {}
        cal = card.get("calibration") or {}
        self.shell_gains = list(cal.get("shell_gains", [])) if calibrate else []
        self.built_for = self.model.grid
        self.target = card_target(card)
        self.calls = 0

    def _inputs(self, state) -> torch.Tensor:
        w = np.asarray(state.vorticity, dtype=np.float64)
        x = torch.from_numpy(self.model.normalise(w, "omega_bar").astype(np.float32))[:, None]
        return x.to(self.device)

    def _outputs(self, c: torch.Tensor) -> np.ndarray:
        """Normalised C (members, n, n) → physical units, float64, with the shell gains, times
        ``gain`` (in shells 1 … ``gain_shells`` only, where that is > 0; its zonal mean times
        ``zonal_gain`` where that is given)."""
        out = self.model.denormalise(c.detach().to("cpu").numpy().astype(np.float64), "closure")
        gains = list(self.shell_gains)
        by_shell = self.gain != 1 and self.gain_shells > 0
        if by_shell:                                   # the card's gains and α in one transform
            gains += [1.0] * (self.gain_shells - len(gains))
            gains = [g * self.gain if s < self.gain_shells else g for s, g in enumerate(gains)]
        if gains:
            out = apply_shell_gains(out, gains)
        if self.zonal_gain is not None:
            zonal = out.mean(axis=-1, keepdims=True)
            out = self.gain * (out - zonal) + self.zonal_gain * zonal
        elif self.gain != 1 and not by_shell:
            out *= self.gain
        self.calls += 1
        return out

    def get_state(self) -> dict[str, Any]:
        st = super().get_state()
        st["calls"] = self.calls
        return st

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.calls = int(state.get("calls", self.calls))

    def describe(self) -> str:
        space = getattr(self.model, "space", None)
        parts = ([] if space is None else [f"space={space!r}"]) + \
            ([] if self.target is None else [f"target={self.target!r}"]) + \
            ([f"path={self.path!r}"] if self.path else [])
        return f"{type(self).__name__}({', '.join(parts)})"



class LatentDiffusionClosure(_ModelClosure):
    """The diffusion model as a closure of the solver's hook (module docstring).

    ``LatentDiffusionClosure(model_or_path, every=5, steps=10, t_start=0.3, rho=1, threads=1,
    device='cpu', samples=1, precision='float32', chunk=16)``: ``model`` a
    :class:`LatentDiffusionModel` or the stem (or ``.pt``/``.json`` path) of saved weights, or
    the name of a shipped model (:func:`resolve_model_path`); ``path=`` is the same, for
    ``get_closure('ldm', path=...)``. Neither given: the shipped :attr:`default_model`
    ('ldm-kolmogorov', for the ``kolmogorov`` preset's LES 64²). Each refresh returns, per member,
    the mean of ``samples`` draws (1: a plain stochastic sample) of C in physical units, float64
    (members, n, n).
    ``threads``: torch threads of a refresh, restored after it (default 1: small networks called
    from a solver run fastest on one thread; None leaves torch's setting).
    ``precision``: 'float32' (default) or 'bfloat16' for the convolutional parts
    (:func:`conv_precision`). ``chunk``: members per network call (default 16; None: all members
    in one call). Why 16: a 16-channel activation of 16 members at 64² is 4 MB and stays in
    cache; at 64 members a refresh took 26 ms per member in one call and 16 ms in chunks of 16
    (float32, one thread, 2026-11-22). Chunks are aligned to the members' indices in the whole
    ensemble (:meth:`~closures.base.Closure.network_calls`), and a member's noise comes from its
    own generator, so an ensemble run in parts (Dask batches) gives the one-batch run's terms bit
    for bit.
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
                 calibrate: bool = True, gain: float = 1.0, gain_shells: int = 0,
                 zonal_gain: float | None = None):
        self.steps, self.samples = integer("steps", steps), integer("samples", samples)
        try:
            ts = float(t_start)
        except (TypeError, ValueError):
            ts = float("nan")
        if not EPS < ts <= 1:
            raise ValueError(f"t_start must lie in ({EPS:g}, 1], got {t_start!r}")
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho < math.inf:
            raise ValueError(f"rho must be a positive number, got {rho!r}")
        super().__init__(model, every=every, threads=threads, device=device, path=path,
                         chunk=chunk, calibrate=calibrate, gain=gain,
                         gain_shells=gain_shells, precision=precision, zonal_gain=zonal_gain)
        self.t_start, self.rho = ts, float(rho)
        self.last_seeds: list[int] | None = None

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
        x = self._inputs(state)
        gens = self.member_generators()
        m = self.model

        def draw(xb, gb):
            return m.sample(xb, gb, samples=self.samples, steps=self.steps, t_start=self.t_start,
                            rho=self.rho, precision=self.precision).mean(dim=1)[:, 0]

        with torch_threads(self.threads), torch.inference_mode():
            c = self.batched(draw, x, self.chunk, gens)
        return self._outputs(c)

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


class MeanNetworkClosure(_ModelClosure):
    """The L-CDM's mean network alone, a deterministic closure: C = μ(ω̄), in physical units
    C = std_C · μ((ω̄ − mean_ω)/std_ω) + mean_C with the model's normalisation statistics — the
    same μ that :meth:`LatentDiffusionModel.sample` adds to every diffusion draw, without the
    draws (one network pass per refresh, no random numbers).

    ``MeanNetworkClosure(model_or_path, every=5, threads=1, device='cpu', chunk=16,
    calibrate=False, gain=1, gain_shells=0, precision='float32', zonal_gain=None)``: the model
    as for :class:`LatentDiffusionClosure` (default the shipped 'ldm-kolmogorov'; it must have a
    mean network). ``calibrate`` (default False): the card's
    shell gains were fitted to the mean of the diffusion draws, not to μ alone, so they are not
    applied unless asked for.
    """

    name = "ldm-mean"

    def __init__(self, model=None, every: int = 5, threads: int | None = 1,
                 device: str = "cpu", path=None, chunk: int | None = 16,
                 calibrate: bool = False, gain: float = 1.0, gain_shells: int = 0,
                 precision: str = "float32", zonal_gain: float | None = None):
        super().__init__(model, every=every, threads=threads, device=device, path=path,
                         chunk=chunk, calibrate=calibrate, gain=gain, gain_shells=gain_shells,
                         precision=precision, zonal_gain=zonal_gain)
        if self.model.mean_net is None:
            raise ValueError(f"model {self.path or 'given'} has no mean network (mean_width = 0):"
                             f" the mean-network closure needs one")

    def compute(self, state) -> np.ndarray:
        x = self._inputs(state)

        def mean(xb, _):
            with conv_precision(self.precision, self.device):
                out = self.model.mean(xb.contiguous(memory_format=torch.channels_last))
            return out.float()[:, 0]

        with torch_threads(self.threads), torch.inference_mode():
            c = self.batched(mean, x, self.chunk)
        return self._outputs(c)

    def __repr__(self) -> str:
        return (f"MeanNetworkClosure(every={self.every}, chunk={self.chunk}, "
                f"precision={self.precision!r}, "
                f"shell_gains={[round(g, 4) for g in self.shell_gains]})")
