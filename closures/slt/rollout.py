"""Emulation with a trained SLT: :class:`Emulator` and :func:`load_emulator`.

``Emulator.rollout(history, steps, members, seed)``: the L = ``window`` profiles of ``history``
(physical units, (L, n)) are normalised and encoded once; all members then advance together in
latent space, one batched transformer call per step (in batches of ``batch`` members), and the
latents are decoded at the end in chunks of ``chunk`` profiles, so memory holds the latents and
the output only. The noise comes from one ``torch.Generator`` seeded with ``seed``: the same
seed (and ``batch``) gives the same rollout, bit for bit.

A parameter-conditioned model (:class:`~closures.slt.conditioned.ConditionedSLT`) runs at the
parameters ``params`` (e.g. ``{'beta': 8.0}``), given to :func:`load_emulator` /
:class:`Emulator` (the default of every rollout) or to :meth:`Emulator.rollout` (that rollout
only). A conditioned model without them, unknown or missing names, and parameters given to an
unconditioned model raise ValueError saying which.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from solvers.validate import integer

from ..ldm.closure import torch_threads
from .conditioned import ConditionedSLT
from .files import load_slt
from .model import SLT

__all__ = ["Emulator", "load_emulator"]


class Emulator:
    """A trained :class:`~closures.slt.model.SLT` as an emulator of U(y, t) at the data's save
    interval. ``threads``: torch's thread count during a rollout (None: torch's setting);
    ``params``: the parameters of a conditioned model (module docstring)."""

    def __init__(self, model: SLT, device="cpu", threads: int | None = None,
                 params: dict | None = None):
        if not isinstance(model, SLT):
            raise ValueError(f"model must be an SLT, got {type(model).__name__}")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.threads = integer("threads", threads, 1, allow_none=True)
        self.params = None if params is None else self._check_params(params)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The names of the parameters the model is conditioned on (none: an SLT)."""
        return getattr(self.model, "parameter_names", ())

    def _check_params(self, params) -> dict[str, float]:
        if not isinstance(self.model, ConditionedSLT):
            raise ValueError(f"params={params!r}: this emulator's model is not conditioned on "
                             f"parameters (an SLT trained at one parameter value); give no "
                             f"params")
        return self.model.check_params(params)

    def _conditioning(self, params):
        """The context of a rollout at ``params`` (or the emulator's own)."""
        p = self.params if params is None else self._check_params(params)
        if not isinstance(self.model, ConditionedSLT):
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

    @property
    def reencode(self) -> bool:
        """The rollout feed the model was trained for: True (draws decoded and encoded again)
        when its card's training unrolled steps that way, else False (draws fed back as drawn,
        the paper's rollout)."""
        return bool((self.card.get("training") or {}).get("reencode", False))

    def _history(self, history) -> torch.Tensor:
        h = np.asarray(history, dtype=np.float64)
        L, n = self.window, self.points
        if h.shape != (L, n):
            raise ValueError(f"history must have shape (window, points) = ({L}, {n}), got "
                             f"{h.shape}")
        if not np.isfinite(h).all():
            raise ValueError("history must be finite")
        return torch.as_tensor(h, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def rollout(self, history, steps: int, members: int = 1, seed: int = 0,
                batch: int | None = None, chunk: int = 65536,
                reencode: bool | None = None, params: dict | None = None) -> np.ndarray:
        """``members`` emulated continuations of ``history`` (L, n), ``steps`` saves each:
        float32 array (members, steps, n) in the units of the data (module docstring).
        ``batch``: members stepped together (default all); ``chunk``: profiles decoded at
        once. ``reencode``: every new latent is decoded and encoded again before it joins the
        window (the paper feeds the latents back as drawn), which keeps the window on the
        latents of profiles the autoencoder can represent; default (None) :attr:`reencode`,
        the way the model was trained to be rolled out.
        ``params``: the parameters of a conditioned model for this rollout (default: the
        emulator's)."""
        steps = integer("steps", steps, 1)
        members = integer("members", members, 1)
        seed = integer("seed", seed, 0)
        reencode = self.reencode if reencode is None else bool(reencode)
        batch = integer("batch", members if batch is None else batch, 1)
        chunk = integer("chunk", chunk, 1)
        h = self._history(history)
        m = self.model
        with torch_threads(self.threads), self._conditioning(params):
            g = torch.Generator(device=self.device)
            g.manual_seed(seed)
            z0 = m.encode(m.normalise(h))                                   # (L, d)
            lat = torch.empty(members, steps, z0.shape[-1], device=self.device)
            for b0 in range(0, members, batch):
                nb = min(batch, members - b0)
                win = z0.expand(nb, -1, -1).contiguous()
                for t in range(steps):
                    z = m.step(win, g, 1)[0]                                # (nb, d)
                    lat[b0:b0 + nb, t] = z
                    if reencode:
                        z = m.encode(m.decode(z))
                    win = torch.cat([win[:, 1:], z[:, None]], dim=1)
            flat = lat.reshape(members * steps, -1)
            out = np.empty((members * steps, self.points), dtype=np.float32)
            for c0 in range(0, flat.shape[0], chunk):
                u = m.denormalise(m.decode(flat[c0:c0 + chunk]))
                out[c0:c0 + chunk] = u.cpu().numpy()
        return out.reshape(members, steps, self.points)


def load_emulator(name_or_path, device="cpu", threads: int | None = None,
                  params: dict | None = None) -> Emulator:
    """The :class:`Emulator` of a saved SLT or ConditionedSLT: a shipped model's name
    (``closures/weights``) or the path of a model saved by :func:`closures.slt.save_slt`,
    ``train_slt`` or ``train_conditioned_slt``; ``params``: the parameters of a conditioned
    model (e.g. ``{'beta': 8.0}``), checked here."""
    return Emulator(load_slt(name_or_path, device=device), device=device, threads=threads,
                    params=params)
