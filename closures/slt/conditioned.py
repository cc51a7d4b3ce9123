"""The Stochastic Latent Transformer conditioned on PDE parameters: one emulator of U(y, t) for a
range of parameter values (β, μ, …), after the parameter-conditioning paper (arXiv 2509.09599).

Parameters. A model is conditioned on P named parameters (``parameters=['beta', 'mu']``, the
names of the solver's configuration, in the units of the run: β in 1/(length·time), μ in
1/time). They enter normalised, ĉ_j = (p_j − centre_j)/scale_j, with ``centre`` and ``scale``
per parameter stored with the model (``stats['parameters']``, in the model card); the training
functions set them to the centre and half-width of the training values, so that the training
range maps to [−1, 1] (:func:`parameter_normalisation`).

:class:`ConditionedTransformer` — the stochastic transformer of :mod:`closures.slt.model` (phase
alignment on mode 1 of the last step, tokens Linear(d → D) plus the sinusoidal time encoding, a
fresh N(0, I) noise token in the first block's keys and values, output LayerNorm → MLP on the
last token, residual) with :class:`closures.nn.conditioning.ConditionedBlock` blocks:

* ``conditioning='adaln'``: every LayerNorm (both of every block and the output one) is an
  :class:`~closures.nn.conditioning.AdaptiveLayerNorm` of ĉ: y = LN(x) ⊙ (1 + γ(ĉ)) + δ(ĉ),
  γ = δ = 0 at initialisation;
* ``conditioning='concat'``: the earlier design, ĉ concatenated to the inputs of the query, key
  and value projections of every block (its weights on ĉ zero at initialisation).

Either way a freshly built conditioned model given the weights of an unconditioned SLT of the
same sizes (:meth:`ConditionedSLT.from_slt`) computes exactly what that SLT computes, for every
parameter value. ``frozen=True`` fixes the conditioning at the identity (AdaLN: γ = δ = 0;
concat: ĉ replaced by 0), and its weights get no gradient: pre-training at one parameter value.
Fine-tuning then unfreezes it (:meth:`ConditionedSLT.freeze_conditioning`).

:class:`ConditionedSLT` — :class:`closures.slt.model.SLT` (the same TEPC autoencoder, training
objective and normalisation of U) with that transformer. The parameters of a call are given as
``params``: a mapping name → value for all windows of the call, or raw values of shape (P,) or
(B, P) in the order of ``parameter_names`` (one row per window). ``model.step(z, generator,
members, params=...)`` draws next latents; ``with model.conditioned_on(params): ...`` sets them
for every step inside (the SLT's own ``loss_terms`` and rollout loops then run unchanged). A
call with B rows on a batch of k·B windows (the members of a multi-step unroll, stacked
member-major as the SLT stacks them) uses row b for windows b, B + b, 2B + b, ….

:class:`ParameterConditioned` holds what this model shares with the conditioned point-token
emulator (:class:`closures.slt.local_conditioned.ConditionedLocalSLT`): the names, their
normalisation, the checks of ``params``, ``conditioned_on`` and the freezing.

Files: :func:`closures.slt.save_slt` / :func:`~closures.slt.load_slt` write and read it as an
SLT card of version 2 (``config`` adds ``parameters``, ``conditioning``, ``cond_hidden``,
``frozen``; ``stats`` adds ``parameters``: the normalisation).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from solvers.validate import integer, number

from ..nn.conditioning import (AdaptiveLayerNorm, ConditionedBlock, check_conditioning,
                                ConditioningSwitch, member_conditions)
from .model import SLT, StochasticTransformer, check_stats

__all__ = ["ConditionedSLT", "ConditionedTransformer", "ParameterConditioned",
           "check_parameter_names", "check_parameter_stats", "check_conditioned_stats",
           "parameter_normalisation", "is_conditioned_config"]


# --------------------------------------------------------------------- parameters and their norm

def check_parameter_names(parameters) -> tuple[str, ...]:
    """A non-empty sequence of distinct identifiers (a single name is one parameter), or
    ValueError naming the problem."""
    names = (parameters,) if isinstance(parameters, str) else parameters
    if not isinstance(names, (list, tuple)) or not names or not all(
            isinstance(n, str) and n.isidentifier() for n in names):
        raise ValueError(f"parameters must be a non-empty list of parameter names (e.g. "
                         f"['beta', 'mu']), got {parameters!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"parameters must be distinct, got {list(names)}")
    return tuple(names)


def check_parameter_stats(stats, names: Sequence[str]) -> dict:
    """``{name: {'centre': float, 'scale': float > 0}}`` for exactly ``names``, or ValueError."""
    if not isinstance(stats, Mapping) or set(stats) != set(names):
        got = sorted(stats) if isinstance(stats, Mapping) else stats
        raise ValueError(f"stats['parameters'] must give the normalisation of exactly the "
                         f"parameters {', '.join(names)}, got {got!r}")
    out = {}
    for n in names:
        s = stats[n]
        if not isinstance(s, Mapping) or set(s) != {"centre", "scale"}:
            raise ValueError(f"stats['parameters'][{n!r}] must be a dict with keys 'centre' and "
                             f"'scale', got {s!r}")
        out[n] = {"centre": number(f"stats['parameters'][{n!r}]['centre']", s["centre"]),
                  "scale": number(f"stats['parameters'][{n!r}]['scale']", s["scale"], above=0)}
    return out


def check_conditioned_stats(stats, names) -> dict:
    """The stats of a conditioned model: ``mean``, ``std`` of U
    (:func:`closures.slt.model.check_stats`) and ``parameters`` (:func:`check_parameter_stats`)."""
    names = check_parameter_names(names)
    if not isinstance(stats, Mapping) or "parameters" not in stats:
        raise ValueError(f"stats must hold 'mean', 'std' and 'parameters' (the normalisation of "
                         f"{', '.join(names)}), got {stats!r}")
    u = check_stats({k: v for k, v in stats.items() if k != "parameters"})
    return {**u, "parameters": check_parameter_stats(stats["parameters"], names)}


def is_conditioned_config(config) -> bool:
    """True for the architecture config of a :class:`ConditionedSLT` (it names parameters)."""
    return isinstance(config, Mapping) and "parameters" in config


def parameter_normalisation(values: Mapping[str, Sequence[float]]) -> dict:
    """The normalisation that maps the range of ``values`` (name → the values seen) to [−1, 1]:
    centre = (max + min)/2, scale = (max − min)/2; a parameter seen at one value only gets
    scale = |value| (1 if the value is 0)."""
    out = {}
    for name, vals in values.items():
        v = np.asarray([number(f"values of {name!r}", x) for x in np.ravel(vals)])
        if v.size == 0:
            raise ValueError(f"no values of the parameter {name!r}")
        lo, hi = float(v.min()), float(v.max())
        centre = 0.5 * (lo + hi)
        scale = 0.5 * (hi - lo) if hi > lo else (abs(centre) if centre != 0 else 1.0)
        out[name] = {"centre": centre, "scale": scale}
    return out


# ------------------------------------------------------------------------------ the transformer

class ConditionedTransformer(ConditioningSwitch, StochasticTransformer):
    """Window of latents (B, L, d) and normalised parameters ĉ (B or 1, P) → next latent,
    ``members`` draws (module docstring). ``cond_dim`` = P; ``conditioning``: 'adaln' or
    'concat'; ``cond_hidden``: the hidden width of every AdaLN's MLP."""

    def __init__(self, latent_dim: int, cond_dim: int, window: int = 10, width: int = 64,
                 heads: int = 16, layers: int = 2, hidden: int = 128, align: bool = True,
                 residual: bool = True, conditioning: str = "adaln", cond_hidden: int = 32):
        super().__init__(latent_dim, window, width, heads, layers, hidden, align, residual)
        self.conditioning = check_conditioning(conditioning)
        self.cond_dim = integer("cond_dim", cond_dim, 1)
        self.cond_hidden = integer("cond_hidden", cond_hidden, 1)
        self.blocks = nn.ModuleList(
            ConditionedBlock(width, heads, hidden, cond_dim, noise_token=(i == 0),
                             conditioning=conditioning, cond_hidden=cond_hidden)
            for i in range(self.layers))
        if conditioning == "adaln":
            self.norm = AdaptiveLayerNorm(width, cond_dim, cond_hidden)

    def forward(self, z: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None,
                members: int = 1, noise: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, L, d), cond (B or 1, P) → (members, B, d). ``noise`` (members·B, 1, width),
        member-major, replaces the draws from ``generator``."""
        members = integer("members", members, 1)
        B = z.shape[0] if z.ndim else 0                     # z itself is checked by the base
        cond = member_conditions(cond, B, self.cond_dim, members, self.frozen, z.dtype)
        return super().forward(z, generator, members, noise, context=cond)

    def trunk(self, x: torch.Tensor, generator: torch.Generator | None,
              noise: torch.Tensor | None, context=None) -> torch.Tensor:
        """The conditioned blocks and final norm, ĉ = ``context`` (m·B or 1, P)."""
        for i, block in enumerate(self.blocks):
            x = block(x, context, generator, noise=noise if i == 0 else None)
        last = x[:, -1]
        return self.norm(last, context) if self.conditioning == "adaln" else self.norm(last)


# ------------------------------------------------------------------- parameters of a model

class ParameterConditioned:
    """What every model conditioned on named PDE parameters shares (mixed into a model class
    before it): the names (``parameter_names``), their normalisation (``stats['parameters']``),
    the checks of a call's ``params``, the normalised vector ĉ, :meth:`conditioned_on`, and the
    freezing of the conditioning. The model's ``transformer`` has ``embed`` (its first layer:
    the device and dtype of ĉ), ``frozen``, ``freeze_conditioning`` and
    ``conditioning_parameters``; its ``forward`` takes ĉ as the second argument."""

    parameter_names: tuple[str, ...]
    _cond: torch.Tensor | None = None

    def _set_parameters(self, names: tuple[str, ...], pstats: dict, conditioning: str,
                        cond_hidden: int, frozen: bool) -> None:
        self.parameter_names = names
        self.stats = {**self.stats, "parameters": check_parameter_stats(pstats, names)}
        self.config.update(parameters=list(names), conditioning=conditioning,
                           cond_hidden=int(cond_hidden), frozen=bool(frozen))
        self.freeze_conditioning(frozen)
        self._cond = None

    def _load_unconditioned(self, base: nn.Module) -> None:
        """Load the weights of the unconditioned ``base`` (``strict=False``); ValueError unless
        the only weights left out are the conditioning's."""
        res = self.load_state_dict(base.state_dict(), strict=False)
        ids = {id(p) for p in self.conditioning_parameters()}
        cond = {n for n, p in self.named_parameters() if id(p) in ids}
        if res.unexpected_keys or set(res.missing_keys) - cond:
            raise ValueError(f"the {type(base).__name__}'s weights do not fit the conditioned "
                             f"model (missing {sorted(set(res.missing_keys) - cond)}, "
                             f"unexpected {res.unexpected_keys})")

    # --- conditioning state
    @property
    def frozen(self) -> bool:
        return self.transformer.frozen

    def freeze_conditioning(self, frozen: bool = True) -> None:
        """Fix the conditioning at the identity (``frozen=True``, pre-training: its weights get
        no gradient) or let it act and learn (``False``, fine-tuning); recorded in ``config``."""
        self.transformer.freeze_conditioning(frozen)
        self.config["frozen"] = bool(frozen)

    def conditioning_parameters(self) -> list[nn.Parameter]:
        """The weights that act on the parameters only."""
        return self.transformer.conditioning_parameters()

    def set_parameter_normalisation(self, parameter_stats: dict) -> None:
        """Replace the normalisation of the parameters (name → ``centre``, ``scale``). It changes
        what a model with learned conditioning computes; a frozen or untrained conditioning
        does not notice."""
        self.stats = {**self.stats, "parameters": check_parameter_stats(parameter_stats,
                                                                        self.parameter_names)}

    # --- parameters of a call
    def check_params(self, params) -> dict[str, float]:
        """``params`` (a mapping name → value) checked: exactly this model's parameters, finite
        numbers; ValueError naming what is unknown, missing or bad."""
        names = self.parameter_names
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a dict of the parameters {', '.join(names)} "
                             f"(e.g. {{{names[0]!r}: 8.0}}), got {params!r}")
        unknown = [k for k in params if k not in names]
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))}: this model "
                             f"is conditioned on {', '.join(names)}")
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"missing parameter(s) {', '.join(map(repr, missing))}: this model "
                             f"is conditioned on {', '.join(names)}")
        return {n: number(f"params[{n!r}]", params[n]) for n in names}

    def condition_vector(self, params) -> torch.Tensor:
        """The normalised parameters ĉ as a tensor (rows, P) on the model's device: ``params``
        a mapping (one row) or raw values (P,) or (B, P) in the order of
        ``parameter_names``."""
        w = self.transformer.embed.weight
        if isinstance(params, Mapping):
            p = torch.tensor([list(self.check_params(params).values())], dtype=torch.float64)
        else:
            p = torch.as_tensor(params if torch.is_tensor(params) else np.asarray(params),
                                dtype=torch.float64)
            P = len(self.parameter_names)
            if p.ndim == 1:
                p = p[None]
            if p.ndim != 2 or p.shape[1] != P:
                raise ValueError(f"params must be a dict of {', '.join(self.parameter_names)} or "
                                 f"values of shape ({P},) or (batch, {P}), got shape "
                                 f"{tuple(p.shape)}")
            if not torch.isfinite(p).all():
                raise ValueError("params must be finite")
        ps = self.stats["parameters"]
        centre = torch.tensor([ps[n]["centre"] for n in self.parameter_names],
                              dtype=torch.float64)
        scale = torch.tensor([ps[n]["scale"] for n in self.parameter_names], dtype=torch.float64)
        return ((p.cpu() - centre) / scale).to(device=w.device, dtype=w.dtype)

    @contextlib.contextmanager
    def conditioned_on(self, params) -> Iterator["ParameterConditioned"]:
        """Every step inside uses ``params`` (module docstring); the previous ones are restored
        after."""
        cond = self.condition_vector(params)
        before, self._cond = self._cond, cond
        try:
            yield self
        finally:
            self._cond = before

    def _cond_rows(self, batch: int, params) -> torch.Tensor:
        cond = self.condition_vector(params) if params is not None else self._cond
        if cond is None:
            raise ValueError(f"this model is conditioned on {', '.join(self.parameter_names)}: "
                             f"give params (e.g. {{{self.parameter_names[0]!r}: 8.0}})")
        rows = cond.shape[0]
        if rows in (1, batch):
            return cond
        if batch % rows == 0:
            return cond.repeat(batch // rows, 1)                               # member-major
        raise ValueError(f"params give {rows} rows for a batch of {batch} windows (need 1, "
                         f"{batch} or a divisor of it)")

    def step(self, z: torch.Tensor, generator: torch.Generator | None = None,
             members: int = 1, noise: torch.Tensor | None = None, params=None) -> torch.Tensor:
        """Windows (B, L, ·) → next states (members, B, ·) at the parameters ``params`` (or
        those of :meth:`conditioned_on`); ``noise`` as in the unconditioned model's ``step``."""
        return self.transformer(z, self._cond_rows(z.shape[0], params), generator, members,
                                noise=noise)

    def loss_terms(self, *args, params=None, **kwargs) -> dict:
        """The unconditioned model's ``loss_terms`` at the parameters ``params`` (one row per
        window, or a mapping for all)."""
        if params is None:
            return super().loss_terms(*args, **kwargs)
        with self.conditioned_on(params):
            return super().loss_terms(*args, **kwargs)


# ------------------------------------------------------------------------------------ the model

class ConditionedSLT(ParameterConditioned, SLT):
    """The SLT conditioned on the PDE parameters ``parameters`` (module docstring).

    ``parameters``: the names (required); ``conditioning`` ('adaln' or 'concat'),
    ``cond_hidden`` (hidden width of the AdaLN MLPs, 32), ``frozen`` (conditioning fixed at the
    identity); ``stats``: ``mean``, ``std`` of U and ``parameters`` (name → ``centre``,
    ``scale``; default 0 and 1); every other argument is the :class:`SLT`'s. ``config`` holds
    every argument (the model card's architecture)."""

    def __init__(self, points: int, *, parameters, conditioning: str = "adaln",
                 cond_hidden: int = 32, frozen: bool = False, stats: dict | None = None,
                 **slt_args):
        names = check_parameter_names(parameters)
        stats = dict(stats) if stats is not None else {"mean": 0.0, "std": 1.0}
        pstats = stats.pop("parameters", {n: {"centre": 0.0, "scale": 1.0} for n in names})
        super().__init__(points, **slt_args, stats=stats)
        t, c = self.transformer, self.config
        self.transformer = ConditionedTransformer(
            t.latent_dim, len(names), t.window, t.width, c["heads"], t.layers, c["hidden"],
            align=t.align, residual=t.residual, conditioning=conditioning,
            cond_hidden=cond_hidden)
        self._set_parameters(names, pstats, conditioning, cond_hidden, frozen)

    @classmethod
    def from_slt(cls, slt: SLT, parameters, conditioning: str = "adaln", cond_hidden: int = 32,
                 parameter_stats: dict | None = None, frozen: bool = False) -> "ConditionedSLT":
        """A conditioned model with the architecture, normalisation of U and weights of the
        unconditioned ``slt``; its conditioning starts at the identity, so it computes what
        ``slt`` computes (bit for bit) until the conditioning weights are trained."""
        if type(slt) is not SLT:
            raise ValueError(f"from_slt takes an unconditioned SLT, got {type(slt).__name__}")
        names = check_parameter_names(parameters)
        stats = dict(slt.stats)
        if parameter_stats is not None:
            stats["parameters"] = parameter_stats
        with torch.random.fork_rng(devices=[]):
            model = cls(**slt.config, parameters=names, conditioning=conditioning,
                        cond_hidden=cond_hidden, frozen=frozen, stats=stats)
        model = model.to(next(slt.parameters()).dtype)
        model._load_unconditioned(slt)
        return model.to(next(slt.parameters()).device)
