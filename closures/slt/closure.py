"""The SLT closure ('slt-closure'): a history-dependent stochastic closure of the solver's hook.

At every refresh (every ``every`` steps, t_k = k·every·dt) the closure

1. encodes the LES vorticity ω̄ of every member into a latent z_k ∈ R^d
   (:class:`~closures.slt.closure_model.SLTClosureModel`);
2. shifts its history, the latents of the last L refreshes (z_{k−L+1}, …, z_k), oldest first;
3. draws the term from one pass of the stochastic transformer over the history, one fresh noise
   token per member: C_k = std_C·[μ(ω̂_k) + D_R(T(z_{k−L+1}, …, z_k; ξ_k))] + mean_C, in
   physical units (1/time², a vorticity tendency), shape (members, n, n), float64; the solver
   holds it over the next ``every`` steps.

One network pass per refresh for all members (in member-aligned chunks of ``chunk`` members;
default None: all in one call).

Cold start. Before L refreshes have happened the history is shorter: it is padded at the front
by repeating the first latent, i.e. the first refresh sees (z_0, …, z_0), the second
(z_0, …, z_0, z_1), and from the L-th refresh on the history is all real. Training windows that
start a sequence of the data are padded the same way (:meth:`closures.data.ClosureDataset.windows`
with ``pad=True``), so the model has seen cold starts. ``filled`` counts the real latents (≤ L).

State. The history (members, L, d) float32 and ``filled`` are closure state:
:meth:`get_state` / :meth:`set_state` hold them with the member generators, so a run written to a
restart file mid-history continues bit for bit (the restart file stores arrays exactly).

Noise and seeds. Member m's noise token ξ ∈ R^D at a refresh is D standard normal draws of its
own numpy generator (``self.rng[m]``, :class:`closures.base.Closure`), cast to float32: a member's
noise depends only on the seed and its index in the whole ensemble, so members run as a part of
the ensemble (``first_member``, ``ensemble_members``) get the terms of the whole batch bit for
bit (:meth:`~closures.base.Closure.network_calls`).

Noise memory. ``noise_memory`` = ρ ∈ [0, 1) makes each member's token an AR(1) process over
refreshes, ξ_k = ρ ξ_{k−1} + √(1 − ρ²) η_k (η_k the fresh draws above, ξ_0 = η_0): every token is
still N(0, I), so one refresh is the trained model's draw, but successive draws are correlated
(lag-k correlation ρ^k, a memory of −every·dt/ln ρ time units), as the error of a closure is over
an eddy time. ρ = 0 is the trained setting; the previous tokens are closure state.

Spread gain. ``spread_gain`` = g ≥ 0 inflates (g > 1) or shrinks each draw about the draw of the
zero token, in latent space, or with ``spread_shells`` = K > 0 in shells 1 … K of the field only
(:meth:`SLTClosureModel.draw`); g = 1 is the trained model. These are online settings, chosen on
validation runs: where the model card has ``online`` values (``online.noise_memory``,
``online.spread_gain``, ``online.spread_shells``) they are the defaults, else ρ = 0, g = 1, K = 0.

The refresh period. ``every=None`` takes the period of the training data's consecutive samples
(the card's ``refresh.every``, ``hybrid generate --refresh-every``), else 5: the history only
means what it meant in training when the closure is refreshed at the data's interval
(``refresh.interval`` time units = every·dt of the LES).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from solvers.base import ClosureState
from solvers.grid import Grid
from solvers.validate import integer, number

from ..base import online_setting
from ..ldm.closure import _ModelClosure, torch_threads
from ..ldm.model import conv_precision
from ..nn.diffusion import remember_noise
from .closure_files import load_slt_closure
from .closure_model import SLTClosureModel

__all__ = ["SLTClosure", "DEFAULT_EVERY", "check_refresh"]

DEFAULT_EVERY = 5          # refresh period without one on the card (the Closure default)


def check_refresh(refresh: dict, every: int, dt: float | None) -> None:
    """ValueError unless ``every`` steps of ``dt`` make the training data's refresh interval
    (``refresh['interval']``, a card's ``refresh``) to 1e-6 of it; nothing to check without an
    interval or a fixed dt."""
    interval = (refresh or {}).get("interval")
    if interval and dt and abs(every * dt - interval) > 1e-6 * interval:
        raise ValueError(
            f"slt-closure: refreshed every {every} steps of dt {dt:g} = {every * dt:g} time "
            f"units, but its history was trained on samples {interval:g} apart; use every = "
            f"{interval / dt:g} or the data's dt")


class SLTClosure(_ModelClosure):
    """The SLT closure (module docstring).

    ``SLTClosure(model=None, every=None, threads=1, device='cpu', path=None, chunk=None,
    calibrate=True, noise_memory=None, spread_gain=None, spread_shells=None, gain=1,
    gain_shells=0, precision='float32', zonal_gain=None)``: ``model`` an
    :class:`SLTClosureModel`, or the stem (or ``.pt``/``.json`` path) of one saved by
    :func:`closures.slt.train_slt_closure`, or a shipped model's name;
    ``path=`` is the same, for ``hybrid run --closure slt-closure --closure-arg path=STEM``.
    ``threads``: torch threads of a refresh (restored after it); ``chunk``: members per network
    call (None: all); ``calibrate``: apply the card's shell gains if it has any
    (:mod:`closures.calibration`); ``noise_memory``: ρ of the tokens' AR(1), ``spread_gain``:
    g of the draws, ``spread_shells``: K, where g applies (module docstring; None: the card's
    ``online`` value, else 0, 1 and 0);
    ``gain``, ``gain_shells``, ``zonal_gain``: a factor on the term, on all shells or on shells
    1 … K, and another on its zonal mean;
    ``precision`` 'bfloat16': the encoder, μ and the decoder under bfloat16 autocast, the
    transformer float32 (:class:`closures.ldm.closure._ModelClosure`).
    Attributes: ``model``, ``history`` (torch (members, L, d) or None before the first refresh),
    ``filled``, ``calls`` (refreshes so far), ``token`` (the last tokens, (members, D) float64, or
    None).
    """

    name = "slt-closure"
    default_model = "slt-closure-kolmogorov"
    model_class = SLTClosureModel
    loader = staticmethod(load_slt_closure)

    def __init__(self, model=None, every: int | None = None, threads: int | None = 1,
                 device: str = "cpu", path=None, chunk: int | None = None,
                 calibrate: bool = True, noise_memory: float | None = None,
                 spread_gain: float | None = None, spread_shells: int | None = None,
                 gain: float = 1.0, gain_shells: int = 0, precision: str = "float32",
                 zonal_gain: float | None = None):
        super().__init__(model, every=every, threads=threads, device=device, path=path,
                         chunk=chunk, calibrate=calibrate, gain=gain, gain_shells=gain_shells,
                         precision=precision, zonal_gain=zonal_gain)
        card = getattr(self.model, "card", None)
        self.noise_memory = number("noise_memory", online_setting(
            card, "noise_memory", noise_memory, 0.0), at_least=0, below=1)
        self.spread_gain = number("spread_gain", online_setting(
            card, "spread_gain", spread_gain, 1.0), at_least=0)
        self.spread_shells = integer("spread_shells", online_setting(
            card, "spread_shells", spread_shells, 0), 0)
        self.token: np.ndarray | None = None
        if every is None:
            self.every = int(self._card_refresh.get("every") or DEFAULT_EVERY)
        self.history: torch.Tensor | None = None
        self.filled = 0

    @property
    def _card_refresh(self) -> dict:
        """The card's ``refresh`` (the training data's refresh period; empty without one)."""
        return (getattr(self.model, "card", None) or {}).get("refresh") or {}

    @property
    def window(self) -> int:
        """L, the refreshes of history."""
        return self.model.window

    def reset(self, grid: Grid, members: int, params: dict, seed: int | None) -> None:
        """As :meth:`closures.base.Closure.reset`, and an empty history (a cold start).
        ValueError if the solver has a fixed step dt and every·dt differs from the training
        data's refresh interval (the card's ``refresh.interval``), by more than 1e-6 of it."""
        check_refresh(self._card_refresh, self.every, (params or {}).get("dt"))
        super().reset(grid, members, params, seed)
        self.history, self.filled, self.token = None, 0, None

    def compute(self, state: ClosureState) -> np.ndarray:
        """The term C (members, n, n) of this refresh (module docstring, steps 1-3)."""
        m = self.model
        x = self._inputs(state)                                       # (M, 1, n, n)
        eta = self.normal(m.width)
        self.token = remember_noise(self.token, eta, self.noise_memory)
        noise = torch.from_numpy(self.token.astype(np.float32)).to(self.device)
        cold = self.history is None
        hist = x.new_zeros((x.shape[0], m.window, m.latent_dim)) if cold else self.history

        def refresh(inputs, _):
            xb, hb, eb = inputs
            with conv_precision(self.precision, self.device):
                z = m.encode(xb.contiguous(memory_format=torch.channels_last)).float()[:, None]
            hb = z.expand(-1, m.window, -1) if cold else torch.cat([hb[:, 1:], z], dim=1)
            c = m.draw(hb, xb, noise=eb[:, None], spread_gain=self.spread_gain,
                       spread_shells=self.spread_shells, precision=self.precision)
            return c[0, :, 0], hb

        with torch_threads(self.threads), torch.inference_mode():
            c, self.history = self.batched(refresh, (x, hist, noise), self.chunk)
        self.filled = min(self.filled + 1, m.window)
        return self._outputs(c)

    # ------------------------------------------------------------------ restarts
    def get_state(self) -> dict[str, Any]:
        """The base state (generators, ``calls``) plus ``history`` (float32 array (members, L,
        d), None before the first refresh) and ``filled``."""
        st = super().get_state()
        st["history"] = None if self.history is None else self.history.cpu().numpy().copy()
        st["filled"] = int(self.filled)
        st["token"] = None if self.token is None else self.token.copy()
        return st

    def set_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`get_state` (after ``reset``); ValueError for a history of another
        shape than (members, L, d)."""
        super().set_state(state)
        h = state.get("history")
        if h is None:
            self.history = None
        else:
            h = np.asarray(h, dtype=np.float32)
            want = (self.members, self.model.window, self.model.latent_dim)
            if h.shape != want:
                raise ValueError(f"closure state holds a history of shape {h.shape}; closure "
                                 f"{self.describe()} needs {want} (members, window, latent)")
            self.history = torch.from_numpy(h.copy()).to(self.device)
        self.filled = int(state.get("filled", 0 if h is None else self.model.window))
        tok = state.get("token")
        self.token = None if tok is None else np.array(tok, dtype=np.float64)

    def __repr__(self) -> str:
        return (f"SLTClosure(every={self.every}, window={self.model.window}, chunk={self.chunk}, "
                f"shell_gains={[round(g, 4) for g in self.shell_gains]}, "
                f"noise_memory={self.noise_memory:g}, spread_gain={self.spread_gain:g}, "
                f"spread_shells={self.spread_shells}, precision={self.precision!r})")
