"""Classical eddy-viscosity closures for the LES vorticity equation: Smagorinsky, Leith and the
dynamic Smagorinsky model (Germano–Lilly).

Both return the physical tendency C that the solver adds to ∂t ω, computed on the LES grid from the
resolved vorticity ω = ζ (u = −∂yψ, v = ∂xψ, ψ̂ = −ζ̂/|k|²) with spectral derivatives and numpy
FFTs. Products are formed on the grid points (no padding); the solver's 2/3 mask then removes C's
unresolvable modes. Derivatives zero the Nyquist row and column (whose i·k multiples irfft2 would
drop anyway), so each discrete derivative D is a real operator, skew-adjoint on grid functions
(⟨a Db⟩ = −⟨(Da) b⟩ to round-off), and the budgets below hold exactly on the grid, not only in the
continuum limit.

Two forms of the eddy-viscous term, chosen per closure with ``form``:

``form='stress'`` (momentum form). S_ij = ½(∂_j u_i + ∂_i u_j), |S| = sqrt(2 S_ij S_ij),
    τ_ij = −2 ν_t S_ij, force f_i = −∂_j τ_ij, and C = ∂x f_y − ∂y f_x (the curl of the force).
    Energy input, exact:      −⟨ψ C⟩ = ⟨u·f⟩ = −⟨2 ν_t S_ij S_ij⟩ = −⟨ν_t |S|²⟩ ≤ 0.
    Enstrophy input ⟨ω C⟩ has no sign-definite closed form (it is reported, not guaranteed).

``form='vorticity'`` (vorticity-diffusion form). C = ∇·(ν_t ∇ω).
    Enstrophy input, exact:   ⟨ω C⟩ = −⟨ν_t |∇ω|²⟩ ≤ 0.
    Energy input, exact:      −⟨ψ C⟩ = ⟨ν_t ∇ψ·∇ω⟩ (usually negative, not sign-definite).

(⟨·⟩ is the box mean; E = ½⟨|u|²⟩ and Z = ½⟨ω²⟩ as in ``solvers.diagnostics``.)

Eddy viscosities (Δ = ``delta``, default the grid spacing L/n):

* Smagorinsky: ν_t = (C_s Δ)² |S|, default C_s = 0.17 — Lilly's (1967) value from matching the
  model's dissipation to a Kolmogorov inertial range (Pope, *Turbulent Flows*, §13.4, gives
  C_s ≈ 0.17 for a Kolmogorov constant of 1.5). Default form 'stress', Smagorinsky's (1963).
* Leith: ν_t = (C_L Δ/π)³ |∇ω|, default C_L = 1.0 — the convention of MITgcm's ``viscC2leith``
  (harmonic viscosity (viscC2leith/π)³ L³ |∇ω|, Fox-Kemper & Menemenlis 2008), where Λ = C_L of
  order one is the theoretical value for the 2D enstrophy cascade (Leith 1968, 1996). In the
  convention without π, ν_t = (C Δ)³|∇ω|, this is C = 1/π ≈ 0.32 (Oceananigans'
  ``TwoDimensionalLeith`` default is C = 0.3). Default form 'vorticity', Leith's enstrophy
  diffusion, whose enstrophy dissipation is sign-definite.

* Dynamic Smagorinsky: ν_t = C Δ² |S| with C = C_s² computed at every refresh, per member, by the
  Germano identity with Lilly's least squares (:class:`DynamicSmagorinsky`); vorticity form.

With Δ = L/n the spectral cutoff π/Δ is the Nyquist wavenumber; the solver keeps modes up to 2/3 of
it, so a filter width matched to the dealiased cutoff would be Δ = 1.5 L/n (pass ``delta``).
"""
from __future__ import annotations

import numpy as np

from solvers.base import ClosureState, positive_number
from solvers.filters import gaussian_filter
from solvers.grid import Grid

from .base import Closure

FORMS = ("stress", "vorticity")


class _Ops:
    """Spectral derivative multipliers i·kx, i·ky on a grid's rfft layout, Nyquist zeroed."""

    def __init__(self, grid: Grid):
        self.grid = grid
        dx = 1j * grid.kx.astype(np.complex128)
        dy = 1j * grid.ky.astype(np.complex128)
        dx[:, -1] = 0.0                       # kx Nyquist column
        dy[grid.n // 2, :] = 0.0              # ky Nyquist row
        self.dx, self.dy = dx, dy             # shapes (1, nk) and (n, 1)
        self.inv_k2 = grid.inv_k2

    def phys(self, a_hat: np.ndarray) -> np.ndarray:
        return np.fft.irfft2(a_hat, s=self.grid.shape)

    def spec(self, a: np.ndarray) -> np.ndarray:
        return np.fft.rfft2(a)


class EddyViscosityClosure(Closure):
    """Common machinery of eddy-viscosity closures (see the module docstring for the forms and
    their exact budgets). Subclasses implement :meth:`eddy_viscosity` from the resolved fields.

    Besides the hook (``__call__(state)``), the methods below take a spectral vorticity
    ``zeta_hat`` (members, n, n//2+1), unnormalised rfft2 as in the solver, and an optional grid
    (default: the one given to ``reset``), for offline use.
    """

    default_form = "stress"

    def __init__(self, *, delta: float | None = None, form: str | None = None,
                 every: int | None = None):
        super().__init__(every=every)
        self.delta = None if delta is None else positive_number("delta", delta)
        form = self.default_form if form is None else form
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        self.form = form
        self._ops: _Ops | None = None

    # ------------------------------------------------------------------ building blocks
    def _get_ops(self, grid: Grid | None) -> _Ops:
        grid = self.grid if grid is None else grid
        if grid is None:
            raise RuntimeError(f"closure {self.describe()} has no grid: pass grid= or call reset")
        if self._ops is None or self._ops.grid is not grid:
            self._ops = _Ops(grid)
        return self._ops

    def filter_width(self, grid: Grid) -> float:
        """Δ: ``delta`` if given, else the grid spacing L/n."""
        return grid.dx if self.delta is None else self.delta

    def fields(self, zeta_hat: np.ndarray, grid: Grid | None = None) -> dict[str, np.ndarray]:
        """Resolved physical fields (members, n, n): ψ, u, v, ω, their first derivatives
        (``ux``, ``uy``, ``vx``, ``vy``, ``wx``, ``wy``, ``psix``, ``psiy``), the strain components
        ``S11``, ``S12``, ``S22`` and the magnitudes ``Smag`` = |S| and ``gradw`` = |∇ω|."""
        o = self._get_ops(grid)
        zh = np.asarray(zeta_hat).astype(np.complex128, copy=False)
        if zh.ndim == 2:
            zh = zh[None]
        if zh.shape[-2:] != o.grid.spectral_shape:
            raise ValueError(f"zeta_hat must have trailing shape {o.grid.spectral_shape} for "
                             f"{o.grid!r}, got {zh.shape}")
        psi_h = -zh * o.inv_k2
        u_h, v_h = -o.dy * psi_h, o.dx * psi_h
        f = {"psi": o.phys(psi_h), "u": o.phys(u_h), "v": o.phys(v_h), "w": o.phys(zh),
             "ux": o.phys(o.dx * u_h), "uy": o.phys(o.dy * u_h),
             "vx": o.phys(o.dx * v_h), "vy": o.phys(o.dy * v_h),
             "wx": o.phys(o.dx * zh), "wy": o.phys(o.dy * zh),
             "psix": o.phys(o.dx * psi_h), "psiy": o.phys(o.dy * psi_h)}
        f["S11"], f["S22"] = f["ux"], f["vy"]
        f["S12"] = 0.5 * (f["uy"] + f["vx"])
        f["Smag"] = np.sqrt(2.0 * (f["S11"] ** 2 + f["S22"] ** 2 + 2.0 * f["S12"] ** 2))
        f["gradw"] = np.sqrt(f["wx"] ** 2 + f["wy"] ** 2)
        return f

    def eddy_viscosity(self, f: dict[str, np.ndarray], grid: Grid) -> np.ndarray:
        """ν_t (members, n, n) from the resolved fields of :meth:`fields`."""
        raise NotImplementedError

    def _tendency(self, f: dict[str, np.ndarray], nu_t: np.ndarray, o: _Ops) -> np.ndarray:
        if self.form == "stress":
            s11 = o.spec(2.0 * nu_t * f["S11"])
            s22 = o.spec(2.0 * nu_t * f["S22"])
            s12 = o.spec(2.0 * nu_t * f["S12"])
            fx = o.dx * s11 + o.dy * s12          # f_i = ∂_j (2 ν_t S_ij) = −∂_j τ_ij
            fy = o.dx * s12 + o.dy * s22
            c_hat = o.dx * fy - o.dy * fx
        else:
            qx = o.spec(nu_t * f["wx"])
            qy = o.spec(nu_t * f["wy"])
            c_hat = o.dx * qx + o.dy * qy         # ∇·(ν_t ∇ω)
        return o.phys(c_hat)

    # ------------------------------------------------------------------ public
    def tendency(self, zeta_hat: np.ndarray, grid: Grid | None = None) -> np.ndarray:
        """C (members, n, n), float64, for the spectral vorticity ``zeta_hat``."""
        o = self._get_ops(grid)
        f = self.fields(zeta_hat, o.grid)
        return self._tendency(f, self.eddy_viscosity(f, o.grid), o)

    def compute(self, state: ClosureState) -> np.ndarray:
        return self.tendency(state.vorticity_hat, state.grid)

    def rates(self, zeta_hat: np.ndarray, grid: Grid | None = None) -> dict[str, np.ndarray]:
        """Energy and enstrophy input of C per member, from the physical-space formulas of the
        module docstring: 'energy' = −⟨ν_t|S|²⟩ (stress) or ⟨ν_t ∇ψ·∇ω⟩ (vorticity); 'enstrophy'
        = −⟨ν_t|∇ω|²⟩ (vorticity) or ⟨ω C⟩ computed from C (stress). Also 'nu_t_mean' = ⟨ν_t⟩."""
        o = self._get_ops(grid)
        f = self.fields(zeta_hat, o.grid)
        nu_t = self.eddy_viscosity(f, o.grid)
        ax = (-2, -1)
        if self.form == "stress":
            energy = -np.mean(nu_t * f["Smag"] ** 2, axis=ax)
            enstrophy = np.mean(f["w"] * self._tendency(f, nu_t, o), axis=ax)
        else:
            energy = np.mean(nu_t * (f["psix"] * f["wx"] + f["psiy"] * f["wy"]), axis=ax)
            enstrophy = -np.mean(nu_t * f["gradw"] ** 2, axis=ax)
        return {"energy": energy, "enstrophy": enstrophy, "nu_t_mean": np.mean(nu_t, axis=ax)}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self._coef_repr()}, delta={self.delta}, "
                f"form={self.form!r}, every={self.every})")

    def _coef_repr(self) -> str:
        return ""


class Smagorinsky(EddyViscosityClosure):
    """Smagorinsky eddy viscosity ν_t = (C_s Δ)² |S|, |S| = sqrt(2 S_ij S_ij).

    ``cs`` C_s (default 0.17, Lilly 1967), ``delta`` Δ (default L/n), ``form`` 'stress' (default)
    or 'vorticity', ``every`` refresh period. Energy input in the stress form: −⟨ν_t |S|²⟩.
    """

    name = "smagorinsky"
    default_form = "stress"

    def __init__(self, cs: float = 0.17, *, delta: float | None = None, form: str | None = None,
                 every: int | None = None):
        super().__init__(delta=delta, form=form, every=every)
        self.cs = positive_number("cs", cs)

    def eddy_viscosity(self, f, grid):
        return (self.cs * self.filter_width(grid)) ** 2 * f["Smag"]

    def _coef_repr(self):
        return f"cs={self.cs:g}"


class Leith(EddyViscosityClosure):
    """Leith eddy viscosity ν_t = (C_L Δ/π)³ |∇ω| (MITgcm's ``viscC2leith`` convention).

    ``cl`` C_L (default 1.0), ``delta`` Δ (default L/n), ``form`` 'vorticity' (default:
    C = ∇·(ν_t∇ω), enstrophy input −⟨ν_t|∇ω|²⟩) or 'stress', ``every`` refresh period.
    """

    name = "leith"
    default_form = "vorticity"

    def __init__(self, cl: float = 1.0, *, delta: float | None = None, form: str | None = None,
                 every: int | None = None):
        super().__init__(delta=delta, form=form, every=every)
        self.cl = positive_number("cl", cl)

    def eddy_viscosity(self, f, grid):
        return (self.cl * self.filter_width(grid) / np.pi) ** 3 * f["gradw"]

    def _coef_repr(self):
        return f"cl={self.cl:g}"


class DynamicSmagorinsky(EddyViscosityClosure):
    """Dynamic Smagorinsky model (Germano et al. 1991, Lilly 1992) in vorticity form:
    C = ∇·(ν_t ∇ω), ν_t = c Δ² |S|, with c = C_s² recomputed from the resolved field at every
    refresh, one value per member (averaged over the domain), clipped to c ≥ 0.

    The coefficient. The subgrid vorticity flux σ_j = (u_j ω)‾ − ū_j ω̄ is modelled as
    σ_j = −c Δ²|S|∂_j ω. A test filter ^ of width Δ̂ = ``ratio``·Δ (Gaussian exp(−Δ̂²|k|²/24),
    :func:`solvers.filters.gaussian_filter`) applied to the resolved field gives the resolved
    flux L_j = (ū_j ω̄)^ − û_j ω̂, which by Germano's identity equals the model's difference
    between the two levels, L_j = c M_j with
        M_j = Δ² [ (|S| ∂_j ω)^ − ratio² |Ŝ| ∂_j ω̂ ]
    (|Ŝ| from the test-filtered velocity). Lilly's least squares over the domain:
        c = ⟨L_j M_j⟩ / ⟨M_j M_j⟩,   then c ← max(c, 0).
    c has no units. Δ is the width of the filter that made the resolved field: default 2·L/n, the
    width with which :func:`solvers.filters.coarse_grain` makes the LES data and initial states.
    Given Δ̂/Δ, ν_t = c Δ²|S| does not depend on Δ (c scales as 1/Δ²), but the test filter does.
    ``last_coefficient`` holds the clipped c of the last call per member, ``last_coefficient_raw``
    the unclipped one.

    Measured (``kolmogorov`` DNS 256² at t = 5–15 coarse-grained to 64², 6 member-snapshots): c is
    0.65–0.89 of the least-squares optimum of the subgrid flux σ and 0.32–0.79 of the least-squares
    optimal static coefficient of the subgrid term itself; the test checks the same on 128² → 32².

    ``delta`` Δ (default 2·L/n), ``ratio`` Δ̂/Δ (default 2, > 1), ``every``.
    """

    name = "dynamic-smagorinsky"
    default_form = "vorticity"

    def __init__(self, *, delta: float | None = None, ratio: float = 2.0,
                 form: str | None = None, every: int | None = None):
        if form not in (None, "vorticity"):
            raise ValueError(f"form of the dynamic Smagorinsky model must be 'vorticity' (its "
                             f"coefficient comes from the vorticity flux), got {form!r}")
        super().__init__(delta=delta, form="vorticity", every=every)
        self.ratio = positive_number("ratio", ratio)
        if self.ratio <= 1:
            raise ValueError(f"ratio (test filter width / grid filter width) must be > 1, "
                             f"got {ratio!r}")
        self.last_coefficient: np.ndarray | None = None
        self.last_coefficient_raw: np.ndarray | None = None

    def coefficient(self, f: dict[str, np.ndarray], grid: Grid) -> np.ndarray:
        """c = ⟨L_j M_j⟩/⟨M_j M_j⟩ per member (members,), unclipped, from the resolved fields of
        :meth:`fields`; 0 where ⟨M_j M_j⟩ = 0."""
        o = self._get_ops(grid)
        d = self.filter_width(grid)
        width = self.ratio * d

        def hat(a):
            return o.phys(gaussian_filter(grid, o.spec(a), width))

        u, v, w = (hat(f[k]) for k in ("u", "v", "w"))
        ux, uy, vx, vy = (hat(f[k]) for k in ("ux", "uy", "vx", "vy"))
        s_hat = np.sqrt(2.0 * (ux ** 2 + vy ** 2) + (uy + vx) ** 2)
        lx = hat(f["u"] * f["w"]) - u * w
        ly = hat(f["v"] * f["w"]) - v * w
        a2 = self.ratio ** 2
        mx = d ** 2 * (hat(f["Smag"] * f["wx"]) - a2 * s_hat * hat(f["wx"]))
        my = d ** 2 * (hat(f["Smag"] * f["wy"]) - a2 * s_hat * hat(f["wy"]))
        ax = (-2, -1)
        num = np.mean(lx * mx + ly * my, axis=ax)
        den = np.mean(mx ** 2 + my ** 2, axis=ax)
        out = np.zeros_like(num)
        np.divide(num, den, out=out, where=den > 0)
        return out

    def eddy_viscosity(self, f, grid):
        c = self.coefficient(f, grid)
        self.last_coefficient_raw = c
        self.last_coefficient = np.maximum(c, 0.0)
        return (self.last_coefficient[:, None, None] * self.filter_width(grid) ** 2) * f["Smag"]

    def filter_width(self, grid: Grid) -> float:
        """Δ: ``delta`` if given, else 2·L/n (the width of the package's coarse-graining)."""
        return 2.0 * grid.dx if self.delta is None else self.delta

    def _coef_repr(self):
        return f"ratio={self.ratio:g}"

