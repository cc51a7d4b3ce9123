"""Stochastically forced beta-plane turbulence (zonal jets), as in the SLT paper:

    ∂t ζ + J(ψ, ζ) + β ∂x ψ = ξ − μ ζ − μₑ ζ' − ν (−∇²)^p ζ   (+ C from a closure)

with ξ the white-in-time ring forcing of injection rate ε (:class:`~solvers.forcing.RingForcing`)
and ζ' = ζ − ⟨ζ⟩ₓ the eddies (μₑ, the eddy drag, 0 unless set: an LES setting, a sink of eddy
energy that leaves the jets alone).
"""
from __future__ import annotations

import numpy as np

from .base import PseudoSpectralSolver, positive_number
from .validate import integer
from .grid import Grid
from .registry import register_solver


def default_hyperviscosity(n: int, L: float, p: int) -> float:
    """ν = k_c^(−2p) with k_c = (n/3)(2π/L): damping rate 1 at the dealiasing cutoff
    ((n/3)^(−2p) on L = 2π, the SLT paper's choice)."""
    return float((n / 3 * 2 * np.pi / L) ** (-2 * p))


@register_solver
class BetaPlane(PseudoSpectralSolver):
    """Beta-plane turbulence forced on the ring |k| ≈ ``kf`` (width ``kf_width``, both in units of
    2π/L) at mean energy injection rate ``epsilon``; linear drag ``mu`` and ``eddy_drag`` μₑ on the
    eddies (the modes kx ≠ 0) only; hyperviscosity of order
    ``hyper_order`` with coefficient ``nu`` (None: :func:`default_hyperviscosity`).
    ``dt=None`` picks dt from ``cfl`` with cap ``dt_max`` (default cfl·dx/√(ε/μ)).
    ``forcing_filter`` and ``forcing_grid``: the LES of a filtered DNS (see
    :class:`~solvers.base.PseudoSpectralSolver`; the ring is then normalised on the
    ``forcing_grid`` and cut, not renormalised, so it injects less than ε).
    """

    kind = "betaplane"

    def __init__(self, n: int = 256, L: float = 2 * np.pi, beta: float = 0.9, mu: float = 4e-4,
                 eddy_drag: float = 0.0, nu: float | None = None, hyper_order: int = 8,
                 kf: float = 16, kf_width: float = 1.5, epsilon: float = 1e-6,
                 dt: float | None = 0.04, cfl: float = 0.5, members: int = 1,
                 seed: int | None = 0, first_member: int = 0,
                 threads: int = 1, dtype: str = "float64", stepper: str = "etdrk4",
                 dt_max: float | None = None, blowup_dir=None, forcing_filter: float = 0.0,
                 forcing_grid: int | None = None):
        grid = Grid(n, L)
        hyper_order = integer("hyper_order", hyper_order)
        mu = positive_number("mu", mu, allow_zero=True)
        if nu is None:
            nu = default_hyperviscosity(grid.n, grid.L, hyper_order)
        nu = positive_number("nu", nu, allow_zero=True)
        for name, v in (("kf", kf), ("kf_width", kf_width)):
            positive_number(name, v)
        epsilon = positive_number("epsilon", epsilon, allow_zero=True)
        # the ring is cut to the resolved (dealiased) modes and renormalised to inject exactly ε;
        # a ring almost wholly outside them is refused
        if epsilon > 0 and kf - 2 * kf_width > grid.kmax_dealias:
            raise ValueError(f"kf={kf} lies beyond the dealiased modes of n={n} "
                             f"(kf − 2·kf_width must be ≤ {grid.kmax_dealias} in units of 2π/L)")
        if dt is None and dt_max is None:
            u_ref = np.sqrt(epsilon / mu) if mu > 0 and epsilon > 0 else 1.0
            dt_max = positive_number("cfl", cfl) * grid.dx / u_ref
        eddy_drag = positive_number("eddy_drag", eddy_drag, allow_zero=True)
        config = dict(n=int(n), L=float(L), beta=float(beta), mu=mu, eddy_drag=eddy_drag, nu=nu,
                      hyper_order=hyper_order, kf=float(kf), kf_width=float(kf_width),
                      epsilon=float(epsilon), dt=None if dt is None else float(dt), cfl=float(cfl),
                      members=members, seed=seed, first_member=first_member, threads=threads,
                      dtype=str(np.dtype(dtype)), stepper=stepper, dt_max=None if dt_max is None else float(dt_max),
                      forcing_filter=float(forcing_filter), forcing_grid=forcing_grid)
        super().__init__(n, L, mu=mu, eddy_drag=eddy_drag, nu=nu, hyper_order=hyper_order,
                         beta=beta, forcing=None,
                         ring=dict(kf=kf, width=kf_width, epsilon=epsilon) if epsilon > 0 else None,
                         dt=dt, cfl=cfl, dt_max=dt_max, members=members, seed=seed,
                         first_member=first_member, threads=threads, dtype=dtype, stepper=stepper,
                         blowup_dir=blowup_dir, forcing_filter=forcing_filter,
                         forcing_grid=forcing_grid, config=config)
        self.kf, self.kf_width, self.epsilon = float(kf), float(kf_width), float(epsilon)
