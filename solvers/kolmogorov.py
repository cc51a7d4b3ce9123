"""Forced 2D Navier–Stokes with a deterministic large-scale forcing: Kolmogorov flow and the
unit-box flow of the latent score-based closure paper.

    ∂t ζ + J(ψ, ζ) = F − μ ζ + ν ∇²ζ   (+ C from a closure)
"""
from __future__ import annotations

import numpy as np

from .base import PseudoSpectralSolver, positive_number
from .forcing import kolmogorov_forcing, unitbox_forcing
from .grid import Grid
from .registry import register_solver
from .validate import integer, number

FORCINGS = ("kolmogorov", "unitbox")


@register_solver
class KolmogorovFlow(PseudoSpectralSolver):
    """Kolmogorov flow: body force ``amplitude``·sin(k_f y) x̂ (k_f in units of 2π/L), drag ``mu``,
    viscosity ``nu`` (Laplacian, p = 1). ``forcing='unitbox'`` uses instead the vorticity source
    ``amplitude``·(sin 2π(x+y)/L + cos 2π(x+y)/L) of the latent score-based closure paper.

    ``forcing_filter`` and ``forcing_grid``: the LES of a filtered DNS (see
    :class:`~solvers.base.PseudoSpectralSolver`). ``advection=False`` drops J(ψ, ζ): the coarse solver of the missing-physics setting (a
    closure supplies the whole advection term; see ``solvers.filters.missing_physics_target``).

    ``dt=None`` chooses dt from the CFL number ``cfl``, never above ``dt_max`` (default
    cfl·dx/U with U = amplitude/(μ + ν k_f²), the laminar velocity, or 1 if that is not finite).
    """

    kind = "kolmogorov"

    def __init__(self, n: int = 256, L: float = 2 * np.pi, nu: float = 1e-3, mu: float = 0.1,
                 kf: int = 4, amplitude: float = 1.0, dt: float | None = None, cfl: float = 0.5,
                 members: int = 1, seed: int | None = 0, first_member: int = 0,
                 threads: int = 1, dtype: str = "float64",
                 stepper: str = "etdrk4", forcing: str = "kolmogorov", dt_max: float | None = None,
                 blowup_dir=None, advection: bool = True, forcing_filter: float = 0.0,
                 forcing_grid: int | None = None):
        grid = Grid(n, L)
        nu = positive_number("nu", nu, allow_zero=True)
        mu = positive_number("mu", mu, allow_zero=True)
        try:
            kf = integer("kf", kf, 1, grid.kmax_dealias)
        except ValueError as e:
            raise ValueError(f"{e} (the dealiased modes of n={n})") from None
        amplitude = number("amplitude", amplitude)
        if forcing not in FORCINGS:
            raise ValueError(f"forcing must be one of {FORCINGS}, got {forcing!r}")
        cfl = positive_number("cfl", cfl)
        if forcing == "kolmogorov":
            f = kolmogorov_forcing(grid, amplitude, int(kf))
            kf_eff = 2 * np.pi / grid.L * kf
        else:
            f = unitbox_forcing(grid, amplitude)
            kf_eff = 2 * np.pi / grid.L * np.sqrt(2)
        if dt is None and dt_max is None:
            damp = mu + nu * kf_eff**2
            u_ref = abs(amplitude) / damp if damp > 0 else np.inf
            if not np.isfinite(u_ref) or u_ref == 0:
                u_ref = 1.0
            dt_max = cfl * grid.dx / u_ref
        config = dict(n=int(n), L=float(L), nu=nu, mu=mu, kf=int(kf), amplitude=amplitude,
                      dt=None if dt is None else float(dt), cfl=cfl, members=members, seed=seed,
                      first_member=first_member, threads=threads, dtype=str(np.dtype(dtype)), stepper=stepper,
                      forcing=forcing, dt_max=None if dt_max is None else float(dt_max),
                      advection=bool(advection), forcing_filter=float(forcing_filter),
                      forcing_grid=forcing_grid)
        super().__init__(n, L, mu=mu, nu=nu, hyper_order=1, beta=0.0, forcing=f, dt=dt, cfl=cfl,
                         dt_max=dt_max, members=members, seed=seed, first_member=first_member,
                         threads=threads, dtype=dtype,
                         stepper=stepper, blowup_dir=blowup_dir, advection=advection,
                         forcing_filter=forcing_filter, forcing_grid=forcing_grid, config=config)
        self.kf, self.amplitude, self.forcing_kind = int(kf), amplitude, forcing

    def laminar_vorticity(self) -> np.ndarray:
        """The exact steady laminar solution for the Kolmogorov forcing, physical (n, n):
        ω = −F k_f cos(k_f y)/(ν k_f² + μ)."""
        if self.forcing_kind != "kolmogorov":
            raise ValueError("the laminar solution is only known here for forcing='kolmogorov'")
        k = 2 * np.pi / self.grid.L * self.kf
        X, Y = self.grid.meshgrid()
        return -self.amplitude * k * np.cos(k * Y) / (self.nu * k**2 + self.mu)
