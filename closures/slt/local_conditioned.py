"""The point-token emulator conditioned on PDE parameters: :class:`ConditionedLocalSLT`, one
model of U(y, t) for a range of parameter values (β, μ, …) that runs on profiles of any length.

It is :class:`closures.slt.local.LocalSLT` (tokens are the profile's points, local attention
over ``span`` points, a noise field of k values per point, increments of zero mean) with every
LayerNorm of its transformer (two per block and the output one) an adaptive LayerNorm of the
normalised parameters ĉ (:class:`closures.nn.conditioning.AdaptiveLayerNorm`):

    y = LN(x) ⊙ (1 + γ(ĉ)) + δ(ĉ),     γ = δ = 0 at initialisation,

the blocks :class:`closures.nn.conditioning.ConditionedBlock` with ``window=span``. The
parameters, their normalisation, ``params``/``conditioned_on`` and freezing are those of the
conditioned SLT (:class:`closures.slt.conditioned.ParameterConditioned`). A model built from a
trained LocalSLT (:meth:`ConditionedLocalSLT.from_local`) computes exactly what it computes,
for every parameter value, until its conditioning weights are trained.

Files: an SLT card of version 4 (``config`` of the LocalSLT plus ``parameters``,
``conditioning``, ``cond_hidden``, ``frozen``; ``stats`` adds the parameters' normalisation).
"""
from __future__ import annotations

import torch
from torch import nn

from solvers.validate import integer

from ..nn.conditioning import (AdaptiveLayerNorm, ConditionedBlock, ConditioningSwitch,
                               member_conditions)
from .conditioned import ParameterConditioned, check_parameter_names
from .local import LocalSLT, LocalTransformer

__all__ = ["ConditionedLocalTransformer", "ConditionedLocalSLT"]


class ConditionedLocalTransformer(ConditioningSwitch, LocalTransformer):
    """:class:`~closures.slt.local.LocalTransformer` with AdaLN conditioning on ``cond_dim``
    normalised parameters (hidden width ``cond_hidden``); ``forward(u, cond, generator,
    members, noise)`` with cond (B or 1, P)."""

    def __init__(self, cond_dim: int, window: int = 10, width: int = 24, heads: int = 2,
                 layers: int = 3, hidden: int = 48, span: int = 9, noise_channels: int = 4,
                 residual: bool = True, conserve_mean: bool = True, dealias: bool = False,
                 cond_hidden: int = 32):
        super().__init__(window, width, heads, layers, hidden, span, noise_channels, residual,
                         conserve_mean, dealias)
        self.cond_dim = integer("cond_dim", cond_dim, 1)
        self.cond_hidden = integer("cond_hidden", cond_hidden, 1)
        self.blocks = nn.ModuleList(
            ConditionedBlock(width, heads, hidden, cond_dim, cond_hidden=cond_hidden,
                             window=span) for _ in range(self.layers))
        self.norm = AdaptiveLayerNorm(width, cond_dim, cond_hidden)

    def forward(self, u: torch.Tensor, cond: torch.Tensor,
                generator: torch.Generator | None = None, members: int = 1,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """u (B, L, n), cond (B or 1, P) → (members, B, n); ``noise`` as in
        :meth:`LocalTransformer.forward`."""
        members = integer("members", members, 1)
        B = u.shape[0] if u.ndim else 0                      # u itself is checked by the base
        cond = member_conditions(cond, B, self.cond_dim, members, self.frozen, u.dtype)
        return super().forward(u, generator, members, noise, context=cond)

    def trunk(self, x: torch.Tensor, context=None) -> torch.Tensor:
        """The conditioned blocks and output norm, ĉ = ``context`` (m·B or 1, P)."""
        for block in self.blocks:
            x = block(x, context)
        return self.norm(x, context)


class ConditionedLocalSLT(ParameterConditioned, LocalSLT):
    """The point-token emulator conditioned on the PDE parameters ``parameters`` (module
    docstring). ``cond_hidden``: the hidden width of the AdaLN MLPs; ``frozen``: conditioning
    fixed at the identity; ``stats``: ``mean``, ``std`` of U and ``parameters`` (name →
    ``centre``, ``scale``; default 0 and 1); the other arguments are :class:`LocalSLT`'s."""

    def __init__(self, points: int, *, parameters, conditioning: str = "adaln",
                 cond_hidden: int = 32, frozen: bool = False, stats: dict | None = None,
                 **local_args):
        names = check_parameter_names(parameters)
        if conditioning != "adaln":
            raise ValueError(f"conditioning: the point-token model is conditioned by adaptive "
                             f"LayerNorms ('adaln'), got {conditioning!r}")
        stats = dict(stats) if stats is not None else {"mean": 0.0, "std": 1.0}
        pstats = stats.pop("parameters", {n: {"centre": 0.0, "scale": 1.0} for n in names})
        super().__init__(points, **local_args, stats=stats)
        c = self.config
        self.transformer = ConditionedLocalTransformer(
            len(names), c["window"], c["width"], c["heads"], c["layers"], c["hidden"],
            c["span"], c["noise_channels"], c["residual"], c["conserve_mean"], c["dealias"],
            cond_hidden)
        self._set_parameters(names, pstats, conditioning, cond_hidden, frozen)

    @classmethod
    def from_local(cls, local: LocalSLT, parameters, cond_hidden: int = 32,
                   parameter_stats: dict | None = None,
                   frozen: bool = False) -> "ConditionedLocalSLT":
        """A conditioned model with the architecture, normalisation of U and weights of the
        unconditioned ``local``; it computes what ``local`` computes (bit for bit) until its
        conditioning weights are trained."""
        if type(local) is not LocalSLT:
            raise ValueError(f"from_local takes an unconditioned LocalSLT, got "
                             f"{type(local).__name__}")
        names = check_parameter_names(parameters)
        stats = dict(local.stats)
        if parameter_stats is not None:
            stats["parameters"] = parameter_stats
        config = {k: v for k, v in local.config.items() if k != "kind"}
        with torch.random.fork_rng(devices=[]):
            model = cls(**config, parameters=names, cond_hidden=cond_hidden, frozen=frozen,
                        stats=stats)
        model = model.to(next(local.parameters()).dtype)
        model._load_unconditioned(local)
        return model.to(next(local.parameters()).device)
