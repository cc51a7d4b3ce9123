"""Emulation with a trained SLT: :class:`Emulator` and :func:`load_emulator`.

``Emulator.rollout(history, steps, members, seed)``: the L = ``window`` profiles of ``history``
(physical units, (L, n)) are normalised and encoded once; all members then advance together in
latent space, one batched transformer call per step (in batches of ``batch`` members), and the
latents are decoded at the end in chunks of ``chunk`` profiles, so memory holds the latents and
the output only. The noise comes from one ``torch.Generator`` seeded with ``seed``: the same
seed (and ``batch``) gives the same rollout, bit for bit. ``Emulator.rollout_batches`` yields
the same members one batch at a time, each decoded when it is stepped, for ensembles whose
profiles do not fit in memory at once.

A parameter-conditioned model (:class:`~closures.slt.conditioned.ConditionedSLT`) runs at the
parameters ``params`` (e.g. ``{'beta': 8.0}``), given to :func:`load_emulator` /
:class:`Emulator` (the default of every rollout) or to :meth:`Emulator.rollout` (that rollout
only). A conditioned model without them, unknown or missing names, and parameters given to an
unconditioned model raise ValueError saying which.

Online settings (the SLT closure's, :mod:`closures.slt.closure`): ``noise_memory`` ρ ∈ [0, 1)
makes each member's noise token an AR(1) process over saves, ξ_t = ρ ξ_{t−1} + √(1 − ρ²) η_t
(η_t the fresh draws, ξ_0 = η_0; every token is still N(0, I), successive ones correlated with
lag-k correlation ρ^k), and ``spread_gain`` g ≥ 0 moves each new latent about the latent of the
zero token, z = z₀ + g (z(ξ) − z₀) (one more transformer pass per step). ρ = 0 and g = 1 are the
trained model, draw for draw; the defaults are the card's ``online`` values where it has them.
They are chosen on free runs from validation data, like a closure's coefficient.

Compilation. ``compile=True`` compiles the model's transformer in place with
``torch.compile`` (``nn.Module.compile``; on the CPU, inductor writes and builds C++, so a C++
compiler must be on the PATH or named by ``CXX``: checked when the emulator is made). The first
step of each batch size pays the compilation (about 30 s for the shipped point-token model);
after that a step of the point-token emulator is 1.8× faster on one CPU thread. A compiled
rollout repeats bit for bit with the same seed and batch; it agrees with the eager one to
round-off (about 1e-6 of U's scale), not bit for bit. The parameters of a conditioned model
enter as a tensor argument, so other values reuse the compiled code.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from typing import Iterator

import numpy as np
import torch

from solvers.validate import integer, number

from ..base import online_setting
from ..ldm.closure import torch_threads
from ..nn.diffusion import draw_noise, remember_noise
from .conditioned import ParameterConditioned
from .files import load_slt
from .model import SLT

__all__ = ["Emulator", "load_emulator", "check_compiler"]


def check_compiler(device="cpu", what: str = "compile=True") -> None:
    """ValueError starting with ``what`` unless torch.compile can build code for ``device``: on
    the CPU a C++ compiler (``$CXX``, else g++, clang++ or c++ on the PATH)."""
    if torch.device(device).type != "cpu":
        return
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++", "c++"]
    if not any(shutil.which(n) for n in names):
        raise ValueError(f"{what}: torch.compile on the CPU builds C++ and none of "
                         f"{', '.join(names)} is on the PATH; install one (e.g. g++), set CXX, "
                         f"or run without compiling")


class Emulator:
    """A trained :class:`~closures.slt.model.SLT` as an emulator of U(y, t) at the data's save
    interval. ``threads``: torch's thread count during a rollout (None: torch's setting);
    ``params``: the parameters of a conditioned model; ``noise_memory``, ``spread_gain``: the
    online settings (module docstring; None: the card's, else 0 and 1); ``compile``: compile
    the model's transformer in place (module docstring)."""

    def __init__(self, model: SLT, device="cpu", threads: int | None = None,
                 params: dict | None = None, noise_memory: float | None = None,
                 spread_gain: float | None = None, compile: bool = False):
        if not isinstance(model, SLT):
            raise ValueError(f"model must be an SLT, got {type(model).__name__}")
        if compile:
            check_compiler(device)
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.threads = integer("threads", threads, 1, allow_none=True)
        self.params = None if params is None else self._check_params(params)
        self.noise_memory = number("noise_memory", online_setting(
            self.card, "noise_memory", noise_memory, 0.0), at_least=0, below=1)
        self.spread_gain = number("spread_gain", online_setting(
            self.card, "spread_gain", spread_gain, 1.0), at_least=0)
        self.compiled = bool(compile)
        if self.compiled:
            self.model.transformer.compile()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The names of the parameters the model is conditioned on (none: an SLT)."""
        return getattr(self.model, "parameter_names", ())

    def _check_params(self, params) -> dict[str, float]:
        if not isinstance(self.model, ParameterConditioned):
            raise ValueError(f"params={params!r}: this emulator's model is not conditioned on "
                             f"parameters (an SLT trained at one parameter value); give no "
                             f"params")
        return self.model.check_params(params)

    def _conditioning(self, params):
        """The context of a rollout at ``params`` (or the emulator's own)."""
        p = self.params if params is None else self._check_params(params)
        if not isinstance(self.model, ParameterConditioned):
            return contextlib.nullcontext()
        if p is None:
            names = self.parameter_names
            raise ValueError(f"this emulator's model is conditioned on {', '.join(names)}: give "
                             f"params (e.g. params={{{names[0]!r}: 8.0}})")
        return self.model.conditioned_on(p)

    @property
    def window(self) -> int:
        return self.model.window

    @property
    def points(self) -> int:
        return self.model.points

    @property
    def card(self) -> dict:
        return getattr(self.model, "card", {})

    def _data_value(self, key: str) -> float | None:
        """``key`` of the model's training data as its card records it (``data``: one run, or
        the runs of a conditioned model, which share it); None when the card records none."""
        data = self.card.get("data")
        runs = data if isinstance(data, list) else [data]
        found = [r[key] for r in runs if isinstance(r, dict) and r.get(key)]
        return float(found[0]) if found else None

    @property
    def interval(self) -> float | None:
        """The save interval of the model's training data, the time of one step."""
        return self._data_value("interval")

    @property
    def spacing(self) -> float | None:
        """The grid spacing L/n of the model's training data, at which a model of any length
        runs."""
        return self._data_value("spacing")

    @property
    def reencode(self) -> bool:
        """The rollout feed the model was trained for: True (draws decoded and encoded again)
        when its card's training unrolled steps that way, else False (draws fed back as drawn,
        the paper's rollout)."""
        return bool((self.card.get("training") or {}).get("reencode", False))

    @property
    def any_length(self) -> bool:
        """True when the model runs on profiles of any length (a point-token model, at its
        training grid spacing); else profiles of :attr:`points` values only."""
        return bool(getattr(self.model, "any_length", False))

    def _history(self, history) -> torch.Tensor:
        h = np.asarray(history, dtype=np.float64)
        L, n = self.window, self.points
        if self.any_length and h.ndim == 2 and h.shape[0] == L and h.shape[1] >= 1:
            n = h.shape[1]
        if h.shape != (L, n):
            what = "any number of points" if self.any_length else n
            raise ValueError(f"history must have shape (window, points) = ({L}, {what}), got "
                             f"{h.shape}")
        if not np.isfinite(h).all():
            raise ValueError("history must be finite")
        return torch.as_tensor(h, dtype=torch.float32, device=self.device)

    def _start(self, history, steps, members, seed, batch, chunk, reencode) -> tuple:
        """The checked arguments of a rollout: (history tensor, steps, members, seed, batch,
        chunk, reencode)."""
        steps = integer("steps", steps, 1)
        members = integer("members", members, 1)
        seed = integer("seed", seed, 0)
        reencode = self.reencode if reencode is None else bool(reencode)
        batch = integer("batch", members if batch is None else batch, 1)
        chunk = integer("chunk", chunk, 1)
        return self._history(history), steps, members, seed, batch, chunk, reencode

    def _latents(self, h: torch.Tensor, steps: int, members: int, g: torch.Generator,
                 batch: int, reencode: bool):
        """Yields (first member, latents (nb, steps, d)) batch after batch: the members stepped
        together, one transformer call per step (two with a spread gain), the noise of each
        step (the model's ``noise_shape``) drawn from ``g`` in this order, with the online
        settings (module docstring)."""
        m = self.model
        gain = self.spread_gain
        z0 = m.encode(m.normalise(h))                                       # (L, d)
        for b0 in range(0, members, batch):
            nb = min(batch, members - b0)
            lat = torch.empty(nb, steps, z0.shape[-1], device=self.device)
            win = z0.expand(nb, -1, -1).contiguous()
            token = None
            for t in range(steps):
                eta = draw_noise(m.noise_shape(nb, z0.shape[-1]), g, self.device)
                token = remember_noise(token, eta, self.noise_memory)
                z = m.step(win, None, 1, noise=token)[0]                    # (nb, d)
                if gain != 1:
                    centre = m.step(win, None, 1, noise=torch.zeros_like(token))[0]
                    z = centre + gain * (z - centre)
                lat[:, t] = z
                if reencode:
                    z = m.encode(m.decode(z))
                win = torch.cat([win[:, 1:], z[:, None]], dim=1)
            yield b0, lat

    def _decode(self, lat: torch.Tensor, chunk: int, points: int) -> np.ndarray:
        """Latents (..., d) decoded to profiles (..., ``points``) float32 in the data's units,
        ``chunk`` profiles at a time."""
        m = self.model
        flat = lat.reshape(-1, lat.shape[-1])
        out = np.empty((flat.shape[0], points), dtype=np.float32)
        for c0 in range(0, flat.shape[0], chunk):
            out[c0:c0 + chunk] = m.denormalise(m.decode(flat[c0:c0 + chunk])).cpu().numpy()
        return out.reshape(*lat.shape[:-1], points)

    @torch.no_grad()
    def rollout(self, history, steps: int, members: int = 1, seed: int = 0,
                batch: int | None = None, chunk: int = 65536,
                reencode: bool | None = None, params: dict | None = None) -> np.ndarray:
        """``members`` emulated continuations of ``history`` (L, n; any n for a model with
        :attr:`any_length`), ``steps`` saves each:
        float32 array (members, steps, n) in the units of the data (module docstring).
        ``batch``: members stepped together (default all); ``chunk``: profiles decoded at
        once. ``reencode``: every new latent is decoded and encoded again before it joins the
        window (the paper feeds the latents back as drawn), which keeps the window on the
        latents of profiles the autoencoder can represent; default (None) :attr:`reencode`,
        the way the model was trained to be rolled out.
        ``params``: the parameters of a conditioned model for this rollout (default: the
        emulator's)."""
        h, steps, members, seed, batch, chunk, reencode = self._start(
            history, steps, members, seed, batch, chunk, reencode)
        with torch_threads(self.threads), self._conditioning(params):
            g = torch.Generator(device=self.device)
            g.manual_seed(seed)
            lat = torch.cat([z for _, z in self._latents(h, steps, members, g, batch,
                                                         reencode)])
            return self._decode(lat, chunk, h.shape[-1])

    def rollout_batches(self, history, steps: int, members: int = 1, seed: int = 0,
                        batch: int | None = None, chunk: int = 65536,
                        reencode: bool | None = None,
                        params: dict | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """The members of :meth:`rollout` with the same arguments, ``batch`` at a time: yields
        (index of the batch's first member, profiles (nb, steps, n) float32), each batch
        decoded as soon as it is stepped, so memory holds one batch of profiles (the latents
        are those of ``rollout``, draw for draw)."""
        h, steps, members, seed, batch, chunk, reencode = self._start(
            history, steps, members, seed, batch, chunk, reencode)
        g = torch.Generator(device=self.device)
        g.manual_seed(seed)
        batches = self._latents(h, steps, members, g, batch, reencode)
        while True:              # the settings hold while a batch runs, not between yields
            with torch.no_grad(), torch_threads(self.threads), self._conditioning(params):
                b0, lat = next(batches, (None, None))
                if lat is None:
                    return
                U = self._decode(lat, chunk, h.shape[-1])
            yield b0, U


def load_emulator(name_or_path, device="cpu", threads: int | None = None,
                  params: dict | None = None, noise_memory: float | None = None,
                  spread_gain: float | None = None, compile: bool = False) -> Emulator:
    """The :class:`Emulator` of a saved SLT or ConditionedSLT: a shipped model's name
    (``closures/weights``) or the path of a model saved by :func:`closures.slt.save_slt`,
    ``train_slt`` or ``train_conditioned_slt``; ``params``: the parameters of a conditioned
    model (e.g. ``{'beta': 8.0}``), checked here; ``noise_memory``, ``spread_gain``: the
    online settings; ``compile``: compile the transformer (module docstring)."""
    return Emulator(load_slt(name_or_path, device=device), device=device, threads=threads,
                    params=params, noise_memory=noise_memory, spread_gain=spread_gain,
                    compile=compile)
