"""The batched pseudo-spectral solver of the 2D vorticity equation and the closure hook protocol.

    ∂t ζ + J(ψ, ζ) + β ∂x ψ = F + ξ + C − μ ζ − μₑ ζ' − ν (−∇²)^p ζ,   ζ = ∇²ψ, u = −∂yψ, v = ∂xψ

on a doubly periodic box of side L, with ζ' = ζ − ⟨ζ⟩ₓ the eddies (the departure from the zonal
mean; μₑ, the eddy drag, is 0 unless set). The state is ζ̂, shape (members, n, n//2+1); every
member is an independent ensemble member stepped through the same transforms. The linear operator
L(k) = −μ − μₑ[kx ≠ 0] − ν|k|^{2p} + iβ kx/|k|² is integrated exactly by the stepper; the
dealiased advection, the deterministic forcing F, the stochastic forcing ξ (one draw per step,
held across stages) and the closure term C (refreshed every ``closure.every`` steps, held in
between) make up N(ζ̂).
"""
from __future__ import annotations

import os
import tempfile
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from . import diagnostics, kernels, registry
from .fft import BatchedRealFFT, complex_dtype, real_dtype
from .forcing import RingForcing
from .grid import Grid
from .initial import member_generators
from .schedule import Every, ProgressBar  # noqa: F401 (Every: re-export)
from .steppers import STEPPERS, make_stepper, noise_gain
from .validate import integer, number, positive_number  # noqa: F401 (positive_number: re-export)

CFL_BLOWUP = 10.0        # a fixed-dt run whose CFL number passes this is declared blown up
DT_LADDER = 2.0 ** 0.25  # adaptive dt moves on the ladder dt_max·2^(−j/4)


class BlowUpError(RuntimeError):
    """The solution became non-finite (or hopelessly CFL-unstable).

    Attributes: ``step`` and ``t`` of the failing step, ``restart_path`` of the restart file holding
    the last finite state (before the failing step), ``members`` that failed.
    """

    def __init__(self, message: str, step: int, t: float, restart_path: Path | None, members):
        super().__init__(message)
        self.step, self.t, self.restart_path, self.members = step, t, restart_path, list(members)

    def __reduce__(self):                      # picklable (Dask ships exceptions between processes)
        return (BlowUpError, (str(self), self.step, self.t, self.restart_path, self.members))


class ClosureError(RuntimeError):
    """A closure raised, or returned a term of the wrong type, shape or dtype or with non-finite
    values. Attributes: ``step`` and ``t`` of the refresh, ``restart_path`` of the restart file
    holding the state at the start of that step (None if it could not be written)."""

    def __init__(self, message: str, step: int, t: float, restart_path: Path | None):
        super().__init__(message)
        self.step, self.t, self.restart_path = step, t, restart_path

    def __reduce__(self):                      # picklable, like BlowUpError
        return (ClosureError, (str(self), self.step, self.t, self.restart_path))


@dataclass
class ClosureState:
    """What a closure sees when it is called: time, step, dt, grid, parameters and the vorticity.

    ``vorticity`` is physical (members, n, n); ``vorticity_hat`` the spectral state (a copy).
    """
    t: float
    step: int
    dt: float
    grid: Grid
    params: dict
    vorticity: np.ndarray
    vorticity_hat: np.ndarray

    @property
    def members(self) -> int:
        return self.vorticity.shape[0]


class ClosureProtocol(Protocol):
    """The hook protocol: ``closures.base.Closure`` implements it; any object with these works."""
    every: int

    def reset(self, grid: Grid, members: int, params: dict, seed: int | None) -> None: ...

    def __call__(self, state: ClosureState) -> np.ndarray: ...


class PseudoSpectralSolver:
    """Batched pseudo-spectral solver; see the module docstring for the equation.

    Arguments: ``n`` grid points per side (even, ≥ 8), ``L`` box side, ``mu`` linear drag,
    ``eddy_drag`` μₑ a linear drag on the eddies only (the modes kx ≠ 0; 1/time, default 0: an
    exact, unconditionally stable sink of eddy energy that leaves the zonal mean flow alone),
    ``nu`` (hyper)viscosity of order ``hyper_order`` p, ``beta``, ``forcing`` a physical (n, n)
    vorticity source or None, ``ring`` a :class:`RingForcing` or None, ``dt`` fixed step or None for
    a CFL-chosen step (``cfl`` the target Courant number, ``dt_max`` its cap), ``members`` ensemble
    size, ``seed`` for every random draw: member m draws from child ``first_member + m`` of
    ``SeedSequence(seed)``, so members m0…m0+M−1 of a larger ensemble can be run on their own
    (bit-identical to the same members of the full batch when dt is fixed: a CFL-chosen dt follows
    the fastest member of the batch), ``threads`` FFTW threads,
    ``dtype`` 'float64' or 'float32', ``stepper`` 'etdrk4' or 'rk4'. ``advection=False`` drops
    J(ψ, ζ) (no FFTs at all): the coarse solver of the "missing physics" setting, in which a
    closure supplies the whole advection term.

    The LES of a filtered DNS is forced like the filtered DNS: ``forcing_filter`` Δ (length units,
    0 for none) multiplies the forcing and the ring noise by the Gaussian filter
    Ĝ(k) = exp(−Δ²|k|²/24) of ``solvers.filters``, and ``forcing_grid`` (the DNS's n) is the grid
    on which the ring is normalised to ε before it is cut to this grid's modes. With the data's
    filter width, the LES right-hand side with C = −Π equals the filtered DNS tendency.

    Every held source has zero mean: the k = 0 mode of the forcing and of a closure term is dropped,
    so the mean vorticity of the periodic box stays zero. The ring noise is scaled per mode so that
    each step draws the exact transition of the linear part (``steppers.noise_gain``): a damped
    forced mode has the exact stationary variance for any h·|L|.
    """

    kind = "base"

    def __init__(self, n: int, L: float = 2 * np.pi, *, mu: float = 0.0, eddy_drag: float = 0.0,
                 nu: float = 0.0, hyper_order: int = 1, beta: float = 0.0,
                 forcing: np.ndarray | None = None,
                 ring: dict | None = None, dt: float | None = None, cfl: float = 0.5,
                 dt_max: float | None = None, members: int = 1, seed: int | None = 0,
                 first_member: int = 0, threads: int = 1, dtype: str = "float64",
                 stepper: str = "etdrk4", blowup_dir: str | Path | None = None,
                 advection: bool = True, forcing_filter: float = 0.0,
                 forcing_grid: int | None = None, config: dict | None = None):
        self.grid = Grid(n, L)
        self.mu = positive_number("mu", mu, allow_zero=True)
        self.eddy_drag = positive_number("eddy_drag", eddy_drag, allow_zero=True)
        self.nu = positive_number("nu", nu, allow_zero=True)
        self.hyper_order = integer("hyper_order", hyper_order)
        self.beta = number("beta", beta)
        self.members = integer("members", members)
        self.first_member = integer("first_member", first_member, 0)
        self.rdtype = real_dtype(dtype)
        self.cdtype = complex_dtype(dtype)
        if stepper not in STEPPERS:
            raise ValueError(f"stepper must be one of {sorted(STEPPERS)}, got {stepper!r}")
        self.cfl = positive_number("cfl", cfl)
        self.fixed_dt = dt is not None
        if dt is not None:
            dt = positive_number("dt", dt)
        elif dt_max is None:
            raise ValueError("dt=None (CFL-chosen step) needs dt_max, the largest step allowed")
        else:
            dt_max = positive_number("dt_max", dt_max)
        integer("seed", seed, 0, allow_none=True)
        self.seed = seed
        self.threads = threads
        self.stepper_name = stepper
        self.blowup_dir = Path(blowup_dir) if blowup_dir is not None else None
        if not isinstance(advection, (bool, np.bool_)):
            raise ValueError(f"advection must be True or False, got {advection!r}")
        self.advection = bool(advection)
        self._config = dict(config or {})
        self.forcing_filter = positive_number("forcing_filter", forcing_filter, allow_zero=True)
        if forcing_grid is not None:
            forcing_grid = integer("forcing_grid", forcing_grid, 8)
        self.forcing_grid = forcing_grid

        g = self.grid
        M, shp = self.members, (self.members, g.n, g.nk)
        # linear operator L(k); the drag rate per mode, μ + μₑ[kx ≠ 0], for the budget
        drag = self.mu + self.eddy_drag * (g.kx != 0)
        self._drag = np.ascontiguousarray(np.broadcast_to(drag, g.spectral_shape),
                                          dtype=np.float64)
        lin = -self._drag - self.nu * g.k2**self.hyper_order + 1j * self.beta * g.kx * g.inv_k2
        lin = np.broadcast_to(lin, g.spectral_shape).astype(np.complex128)
        self.linear = lin
        self._visc = np.ascontiguousarray(self.nu * g.k2**self.hyper_order, dtype=np.float64)

        self.forcing_transfer = np.exp(-(self.forcing_filter**2) * g.k2 / 24.0)   # Ĝ(k)

        # constant arrays in working precision
        self._kx = np.ascontiguousarray(g.kx[0], dtype=self.rdtype)
        self._ky = np.ascontiguousarray(g.ky[:, 0], dtype=self.rdtype)
        self._inv_k2 = np.ascontiguousarray(g.inv_k2, dtype=self.rdtype)
        self._mask = np.ascontiguousarray(g.dealias)
        self._kmax = g.kmax_dealias              # the stage kernels compute the box |m| ≤ kmax only
        self._scale = self.rdtype.type(1.0 / g.n**2)

        # transforms: 2 inverse (u, v) per member; 2 forward (uv, v² − u²) reading the products
        # where the inverse left u and v (computed in place; see kernels._advection for why these
        # products); one more forward set for utility use. All
        # pruned to the dealiased box: every spectrum the solver transforms is dealiased, and
        # only the box of a forward transform is used.
        kmax = self._kmax
        self._inv = BatchedRealFFT(g.n, 2 * M, self.rdtype, inverse=True, threads=threads,
                                   kmax=kmax)
        self._fwd = BatchedRealFFT(g.n, 2 * M, self.rdtype, inverse=False, threads=threads,
                                   real_fields=list(self._inv.real), kmax=kmax)
        self._util = BatchedRealFFT(g.n, M, self.rdtype, inverse=False, threads=threads,
                                    kmax=kmax)
        self._stats = np.zeros((M, 3))
        self._stats_args = self._stats_arguments()

        # sources: deterministic F̂ (1, n, nk); per-step total g = F̂ + ξ̂ + Ĉ (M, n, nk)
        self._forcing_hat = np.zeros((1, g.n, g.nk), self.cdtype)
        if forcing is not None:
            f = np.asarray(forcing, dtype=np.float64)
            if f.shape != g.shape or not np.all(np.isfinite(f)):
                raise ValueError(f"forcing must be a finite array of shape {g.shape}, got "
                                 f"shape {f.shape}")
            self._forcing_hat[0] = self.forward(f[None])[0] * self.forcing_transfer
            self._forcing_hat[0, 0, 0] = 0.0                      # zero-mean source
        self._has_forcing = forcing is not None
        self._f_rows = np.any(self._forcing_hat[0] != 0, axis=1)      # rows the forcing touches
        self._all_rows = np.ones(g.n, bool)
        self._norm = 1.0 / g.n**4
        self.ring = (RingForcing(g, **ring, transfer=self.forcing_transfer,
                                 reference_n=forcing_grid) if ring else None)
        self._noise_hat = np.zeros(shp, self.cdtype) if self.ring else np.zeros((1, g.n, g.nk),
                                                                              self.cdtype)
        self._closure_hat = np.zeros((1, g.n, g.nk), self.cdtype)
        self._source = np.zeros(shp, self.cdtype)
        self._rhs_source, self._g_rows = self._forcing_hat, self._f_rows

        # state (double-buffered), stage buffers N(u) and N(a) (+ N(b), added there by the third
        # stage) and a, and time
        self._state = np.zeros(shp, self.cdtype)
        self._next = np.zeros(shp, self.cdtype)
        self._N = [np.zeros(shp, self.cdtype) for _ in range(2)]     # N_1; N_2 (+ N_3)
        self._a = np.zeros(shp, self.cdtype)
        self._prep_valid = False           # does _inv.spectral hold (û, v̂) of the state?
        self.t = 0.0
        self.step_count = 0
        self.rngs = self._spawn_rngs(seed)

        # time step
        if self.fixed_dt:
            self.dt_max, self.dt_level = float(dt), 0
        else:
            self.dt_max, self.dt_level = float(dt_max), 0
        self._steppers: dict[int, Any] = {}
        self.stepper = self._stepper_for(self.dt_level)

        # closure and diagnostics
        self.closure: ClosureProtocol | None = None
        self.closure_calls = 0
        self.budget = np.zeros((M, 10))          # time integrals of the budget rates (final_stage)
        self._budget_rates = np.zeros((M, 10))
        self.track_budget = True
        self._flags = np.zeros(M, np.int64)
        self.timers = {"steps": 0.0, "closure": 0.0}

    # ------------------------------------------------------------------ configuration
    @property
    def params(self) -> dict:
        """Physical and numerical parameters (what closures are conditioned on)."""
        return {"kind": self.kind, "n": self.grid.n, "L": self.grid.L, "mu": self.mu, "nu": self.nu,
                "hyper_order": self.hyper_order, "beta": self.beta, "dt": self.dt,
                "advection": self.advection, "members": self.members,
                "first_member": self.first_member, **self._config}

    def config(self) -> dict:
        """Constructor arguments that rebuild this solver (JSON-serialisable)."""
        return dict(self._config)

    def _spawn_rngs(self, seed):
        return member_generators(seed, self.members, self.first_member)     # noise: no stream word

    @property
    def dt(self) -> float:
        return self.stepper.h

    def _stepper_for(self, level: int):
        st = self._steppers.get(level)
        if st is None:
            h = self.dt_max * DT_LADDER ** (-level)
            st = make_stepper(self.stepper_name, self.linear, h, self.cdtype)
            if self.ring is not None:
                st.noise_scale = self.ring.scale(h, noise_gain(self.linear, h, st.held))
            if len(self._steppers) > 6:                       # keep a few levels cached
                self._steppers.pop(next(iter(self._steppers)))
            self._steppers[level] = st
        return st

    def _stats_arguments(self) -> tuple:
        """The arguments after ``phys`` of ``kernels.advective_fluxes_stats``: the inverse outputs
        as integers of their width, the sign-clearing mask, the bits of +inf, a one-element float
        buffer and its integer view, and the stats array."""
        ibits = np.dtype(np.int64 if self.rdtype.itemsize == 8 else np.int32)
        buf = np.zeros(1, self.rdtype)
        return (self._inv.real.view(ibits), ibits.type(np.iinfo(ibits).max),
                np.array([np.inf], self.rdtype).view(ibits)[0], buf, buf.view(ibits), self._stats)

    # ------------------------------------------------------------------ transforms
    def forward(self, phys: np.ndarray) -> np.ndarray:
        """Dealiased spectrum (k, n, nk) of k ≤ members physical fields (k, n, n)."""
        k = phys.shape[0]
        self._util.real[:k] = phys
        self._util.execute(k)
        return self._util.spectral[:k] * self._mask

    def inverse(self, spec: np.ndarray) -> np.ndarray:
        """Physical fields (k, n, n) of k ≤ 2·members spectra (k, n, nk), dealiased first (the
        transforms are pruned to the dealiased box)."""
        k = spec.shape[0]
        self._prep_valid = False
        np.multiply(spec, self._mask, out=self._inv.spectral[:k])
        self._inv.execute(k)
        return self._inv.real[:k] * (1.0 / self.grid.n**2)

    # ------------------------------------------------------------------ state
    @property
    def vorticity_hat(self) -> np.ndarray:
        """Spectral vorticity (members, n, n//2+1): a read-only view of the state."""
        v = self._state.view()
        v.flags.writeable = False
        return v

    @property
    def vorticity(self) -> np.ndarray:
        """Physical vorticity (members, n, n), a new array."""
        return self.inverse(self._state).astype(self.rdtype)

    def set_vorticity(self, zeta: np.ndarray) -> None:
        """Set the physical vorticity, (n, n) for every member or (members, n, n); it is dealiased."""
        z = np.asarray(zeta)
        n = self.grid.n
        if z.ndim == 2:
            z = np.broadcast_to(z, (self.members, n, n))
        if z.shape != (self.members, n, n):
            raise ValueError(f"zeta must have shape ({n}, {n}) or ({self.members}, {n}, {n}), "
                             f"got {np.shape(zeta)}")
        if not np.all(np.isfinite(z)):
            raise ValueError("zeta must be finite (it contains NaN or inf)")
        self._state[...] = self.forward(z)
        self._state[:, 0, 0] = 0.0                               # zero-mean vorticity
        self._prep_valid = False

    def set_vorticity_hat(self, zeta_hat: np.ndarray) -> None:
        """Set the spectral state directly (members, n, n//2+1); it is dealiased, mean removed."""
        zh = np.asarray(zeta_hat)
        want = (self.members, self.grid.n, self.grid.nk)
        if zh.shape != want:
            raise ValueError(f"zeta_hat must have shape {want}, got {zh.shape}")
        if not np.all(np.isfinite(zh)):
            raise ValueError("zeta_hat must be finite (it contains NaN or inf)")
        self._state[...] = zh * self._mask
        self._state[:, 0, 0] = 0.0
        self._prep_valid = False

    # ------------------------------------------------------------------ right-hand side
    def _rhs_into(self, zh: np.ndarray, out: np.ndarray) -> None:
        """out = N(ζ̂) = −∇·(uζ) (dealiased) + current sources; four FFTs per member. Only the
        dealiased box of ζ̂ is read (the solver's states have nothing outside it)."""
        if self.advection:
            kernels.velocity_vorticity_hat(zh, self._kx, self._ky, self._kmax, self._inv_k2,
                                           self._scale, self._inv.spectral)
            self._prep_valid = False
            self._inv.execute()
            kernels.advective_fluxes(self._inv.real)
            self._fwd.execute()
        kernels.assemble_rhs(self._fluxes_hat(), self._kx, self._ky, self._mask,
                             self._rhs_source, out)

    def _fluxes_hat(self) -> np.ndarray:
        """(uv)^, (v² − u²)^ of the last inverse/forward pass, or zeros without advection."""
        if self.advection:
            return self._fwd.spectral
        if getattr(self, "_no_fluxes", None) is None:
            self._no_fluxes = np.zeros_like(self._fwd.spectral)
        return self._no_fluxes

    def rhs(self, zeta_hat: np.ndarray | None = None) -> np.ndarray:
        """One right-hand-side evaluation N(ζ̂) (everything but the linear part), a new array.

        Uses the sources held for the current step. Without an argument, at the current state;
        ``zeta_hat`` is dealiased first (only its 2/3-rule box is read).
        """
        zh = self._state if zeta_hat is None else np.ascontiguousarray(zeta_hat, self.cdtype)
        out = np.empty((self.members, self.grid.n, self.grid.nk), self.cdtype)
        self._rhs_into(zh, out)
        return out

    # ------------------------------------------------------------------ closure
    def set_closure(self, closure: ClosureProtocol | None, every: int | None = None) -> None:
        """Attach a closure (or None to detach), refreshed every ``every`` steps (default
        ``closure.every``; the closure object is not changed: the period is ``closure_every``).

        The closure is reset with this solver's grid, members, params and seed; its term is first
        evaluated at the next step whose number is a multiple of ``every``.
        """
        if closure is None:
            self.closure = None
            self.closure_every = None
            self._closure_hat = np.zeros((1, self.grid.n, self.grid.nk), self.cdtype)
            return
        if every is not None:
            every = integer("every", every)
        else:
            every = integer(f"every of closure {type(closure).__name__}",
                           getattr(closure, "every", None))
        if not callable(closure):
            raise ValueError(f"closure {closure!r} is not callable")
        closure.reset(self.grid, self.members, self.params, self.seed)
        self.closure = closure
        self.closure_every = every
        self._closure_hat = np.zeros((self.members, self.grid.n, self.grid.nk), self.cdtype)

    def closure_state(self) -> ClosureState:
        # copies: the state buffers are swapped every step, and a closure may keep what it saw
        return ClosureState(t=self.t, step=self.step_count, dt=self.dt, grid=self.grid,
                            params=self.params, vorticity=self.vorticity,
                            vorticity_hat=self._state.copy())

    def _refresh_closure(self) -> None:
        """Call the closure and hold its term. A closure that raises or returns a bad term stops
        the run with :class:`ClosureError` after a restart of the state before this step."""
        c = self.closure
        t0 = _time.perf_counter()
        name = type(c).__name__
        want = (self.members, self.grid.n, self.grid.n)
        cause = None
        try:
            term = c(self.closure_state())
        except Exception as e:
            problem, cause = f"raised {type(e).__name__}: {e}", e
        else:
            if not isinstance(term, np.ndarray):
                problem = f"returned {type(term).__name__}; expected a numpy array of shape {want}"
            elif term.shape != want:
                problem = f"returned shape {term.shape}; expected {want}"
            elif term.dtype.kind != "f":
                problem = f"returned dtype {term.dtype}; expected a real floating dtype"
            elif not np.all(np.isfinite(term)):
                problem = "returned non-finite values"
            else:
                problem = None
        if problem is not None:
            path, failed = self._failure_restart("closure-error")
            where = f"the restart file {path}" if path is not None else "no restart file" + failed
            raise ClosureError(f"closure {name} {problem} at step {self.step_count} "
                               f"(t={self.t:.6g}); the state at the start of this step is in "
                               f"{where}", self.step_count, self.t, path) from cause
        self._closure_hat[...] = self.forward(term.astype(self.rdtype, copy=False))
        self._closure_hat[:, 0, 0] = 0.0            # zero mean: ⟨ζ⟩ of a periodic box stays 0
        self.closure_calls += 1
        self.timers["closure"] += _time.perf_counter() - t0

    # ------------------------------------------------------------------ stepping
    def _sum_sources(self) -> None:
        """The source held across this step's stages: F̂ + ξ̂ + Ĉ (only the parts present), and the
        rows on which it may be nonzero (those of F̂ alone: a few for a single-mode forcing)."""
        noise, clo = self.ring is not None, self.closure is not None
        if not noise and not clo:
            self._rhs_source, self._g_rows = self._forcing_hat, self._f_rows
            return
        self._g_rows = self._all_rows
        if noise and clo:
            kernels.add_sources(self._noise_hat, self._closure_hat, self._source)
            kernels.add_sources(self._forcing_hat, self._source, self._source)
        else:
            kernels.add_sources(self._forcing_hat, self._noise_hat if noise else self._closure_hat,
                                self._source)
        self._rhs_source = self._source

    def _max_speed(self) -> np.ndarray:
        """max|u| + max|v| per member at the start of the current step."""
        return self._stats[:, 0] + self._stats[:, 1]

    def _adapt_dt(self) -> None:
        """dt=None: the largest ladder step dt_max·2^(−j/4) whose CFL number is ≤ cfl, from the
        velocities of the current state (grown back only with a 20% margin, to avoid flapping)."""
        speed = float(np.max(self._max_speed())) / self.grid.dx
        level = 0
        while speed * self.dt_max * DT_LADDER ** (-level) > self.cfl and level < 400:
            level += 1
        if level < self.dt_level and speed * self.dt_max * DT_LADDER ** (-level) > 0.8 * self.cfl:
            level = self.dt_level
        if level != self.dt_level:
            self.dt_level = level
            self.stepper = self._stepper_for(level)

    def step(self, nsteps: int = 1) -> None:
        """Advance ``nsteps`` steps."""
        nsteps = integer("nsteps", nsteps, 0)
        t0 = _time.perf_counter()
        try:
            for _ in range(nsteps):
                self._one_step()
        finally:
            self.timers["steps"] += _time.perf_counter() - t0

    def _one_step(self) -> None:
        """One step: closure refresh if due; first stage's velocities → CFL check or adaptive dt;
        noise draw; then four fused stages (see ``steppers`` and ``kernels``)."""
        if self.closure is not None and self.step_count % self.closure_every == 0:
            self._refresh_closure()
        inv, fwd, adv = self._inv, self._fwd, self.advection
        u, out = self._state, self._next
        fastest, bad = 0.0, False
        if not adv:
            self._stats[:] = 0.0
        else:
            if not self._prep_valid:
                kernels.velocity_vorticity_hat(u, self._kx, self._ky, self._kmax, self._inv_k2,
                                               self._scale, inv.spectral)
            inv.execute()
            fastest, bad = kernels.advective_fluxes_stats(inv.real, *self._stats_args)
        self._prep_valid = False
        if bad:
            self._blowup("non-finite velocity", np.flatnonzero(self._stats[:, 2]))
        if not self.fixed_dt:
            self._adapt_dt()
        h = self.stepper.h
        if fastest * h > CFL_BLOWUP * self.grid.dx:               # only with a fixed dt
            cfl = self._max_speed() * h / self.grid.dx
            self._blowup(f"CFL number {cfl.max():.3g} > {CFL_BLOWUP:g} with fixed dt={h:g}",
                         np.flatnonzero(cfl > CFL_BLOWUP))
        ring, closure = self.ring, self.closure
        if ring is not None:
            ring.draw(self.rngs, h, self._noise_hat, self.stepper.noise_scale)
        self._sum_sources()
        st, N = self.stepper, self._N
        args = (self._kx, self._ky, self._kmax, self._rhs_source, self._g_rows)
        fl = self._fluxes_hat()
        for k, sg in enumerate(st.stages):
            if adv:
                if k:
                    inv.execute()
                    kernels.advective_fluxes(inv.real)
                fwd.execute()
            kernels.stage(fl, *args, self._a if sg.from_a else u, sg.A, sg.B,
                          sg.B if sg.C is None else sg.C, N[0], sg.C is not None,
                          N[min(k, 1)], k == 2, sg.store, self._a, self._inv_k2, self._scale,
                          inv.spectral)
        if adv:
            inv.execute()
            kernels.advective_fluxes(inv.real)
            fwd.execute()
        E, c1, c2, c3 = st.final
        bad = kernels.final_stage(
            fl, *args, u, E, c1, N[0], c2, N[1], c3, out, self._inv_k2, self._scale,
            inv.spectral, self._flags, self.track_budget, self._forcing_hat, self._f_rows,
            self._noise_hat, self._closure_hat, ring is not None, closure is not None,
            self._drag, self._visc, self._norm, h, self._budget_rates, self.budget)
        if bad:
            self._blowup("non-finite vorticity", np.flatnonzero(self._flags))
        self._state, self._next = out, u
        self._prep_valid = adv
        self.t += h
        self.step_count += 1

    def _blowup(self, why: str, members) -> None:
        """Stop: write a restart of the last finite state (still in self._state) and raise."""
        path, failed = self._failure_restart("blowup")
        why += failed
        raise BlowUpError(
            f"{type(self).__name__} blew up at step {self.step_count + 1} (t={self.t + self.dt:.6g},"
            f" dt={self.dt:g}): {why} in member(s) {[int(m) for m in members]}. The last finite state (step "
            f"{self.step_count}, t={self.t:.6g}) is in the restart file {path}; try a smaller dt.",
            self.step_count + 1, self.t + self.dt, path, members)

    def _failure_restart(self, kind: str) -> tuple[Path | None, str]:
        """Write a restart of the current state into ``blowup_dir`` (default: the temporary
        folder) through the registered writer (:mod:`solvers.registry`). Returns ``(path, '')``,
        or ``(None, why)`` if it could not be written: that must not hide the error at hand."""
        folder = self.blowup_dir or Path(tempfile.gettempdir())
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{kind}-restart-step{self.step_count:08d}-pid{os.getpid()}.nc"
            return Path(registry.write_restart(self, path)), ""
        except Exception as e:
            return None, f" (restart file could not be written: {e})"

    def run(self, t_end: float, every: float | None = None,
            callback: Callable[["PseudoSpectralSolver"], Any] | None = None,
            progress: bool = False, *, schedules=()) -> None:
        """Step until ``t`` reaches ``t_end`` (within dt/2): the one run loop of the package.

        ``callback(self)`` is called at the start and then each time another ``every`` time units
        have passed (at the first step on or after); without ``every`` it is not called.
        ``schedules``: more periodic calls, each an :class:`Every` (its own period, origin, and
        calls at the start and at the end), made after each step in the order given, after
        ``callback``. ``progress``: a tqdm bar (time, steps per second, the closure's share).
        The wall time of the steps is added to ``timers['steps']`` (the closure's included; it is
        also in ``timers['closure']``), that of the calls is not.
        """
        t_end = float(t_end)
        if not np.isfinite(t_end) or t_end < self.t:
            raise ValueError(f"t_end must be finite and ≥ the current time {self.t:g}, got {t_end!r}")
        calls = list(schedules)
        if callback is not None and every is not None:
            calls.insert(0, Every(every, callback))
        for c in calls:
            if not isinstance(c, Every):
                raise ValueError(f"schedules must be Every instances, got {c!r}")
        bar = ProgressBar(self, t_end) if progress else None
        timers = self.timers
        try:
            for c in calls:
                c.begin(self)
            while self.t < t_end - 0.5 * self.dt:
                t0 = _time.perf_counter()
                try:
                    self._one_step()
                finally:
                    timers["steps"] += _time.perf_counter() - t0
                for c in calls:
                    c.after_step(self)
                if bar is not None:
                    bar.draw()
            for c in calls:
                c.end(self)
            if bar is not None:
                bar.draw(force=True)
        finally:
            if bar is not None:
                bar.close()

    # ------------------------------------------------------------------ diagnostics
    def energy(self) -> np.ndarray:
        """Kinetic energy ½⟨|u|²⟩ per member (length² time⁻²)."""
        return diagnostics.energy(self.grid, self._state)

    def enstrophy(self) -> np.ndarray:
        """Enstrophy ½⟨ζ²⟩ per member (time⁻²)."""
        return diagnostics.enstrophy(self.grid, self._state)

    def spectrum(self):
        """Isotropic energy spectrum: (k, E(k)) with E of shape (members, len(k)), ΣE(k)Δk = energy."""
        return diagnostics.energy_spectrum(self.grid, self._state)

    def zonal_mean_u(self) -> np.ndarray:
        """Zonal-mean zonal velocity U(y) = mean over x of u, (members, n)."""
        return diagnostics.zonal_mean_u(self.grid, self._state)

    def budget_summary(self) -> dict:
        """Time-integrated energy and enstrophy budget since the start, per member (see
        ``kernels.final_stage``): keys like 'energy_forcing', 'enstrophy_viscosity'.

        Each rate is taken at the step's midpoint state (u + ζⁿ⁺¹)/2: second-order accurate, and
        biased low for stiff steps (linear drag μ with ring noise, no advection: the noise and drag
        columns read 0.998, 0.953 and 0.686 of ε and 2μE at hμ = 0.01, 0.1 and 1; the state
        itself has the exact steady energy). The columns still balance each other."""
        names = ["forcing", "noise", "closure", "drag", "viscosity"]
        out = {}
        for q, what in enumerate(("energy", "enstrophy")):
            for c, name in enumerate(names):
                out[f"{what}_{name}"] = self.budget[:, 5 * q + c].copy()
        return out

    # ------------------------------------------------------------------ restart support
    def get_state(self) -> dict:
        """Everything a restart needs: spectral state, step, time, dt level, RNG states, the held
        closure term and the closure's own state (if it has ``get_state``)."""
        st = {"zeta_hat": self._state.copy(), "step": self.step_count, "t": self.t,
              "dt_level": self.dt_level, "budget": self.budget.copy(),
              "closure_calls": self.closure_calls,
              "rng_states": [r.bit_generator.state for r in self.rngs]}
        if self.closure is not None:
            st["closure_hat"] = self._closure_hat.copy()
            if hasattr(self.closure, "get_state"):
                st["closure_state"] = self.closure.get_state()
        return st

    def set_state(self, st: dict) -> None:
        """Inverse of :meth:`get_state` (the closure, if any, must be attached first)."""
        zh = np.asarray(st["zeta_hat"])
        want = (self.members, self.grid.n, self.grid.nk)
        if zh.shape != want:
            raise ValueError(f"restart state has shape {zh.shape}, this solver needs {want}")
        self._state[...] = zh
        self._state[:, ~self._mask] = 0.0              # the solver carries the dealiased modes only
        self.step_count = int(st["step"])
        self.t = float(st["t"])
        self.dt_level = int(st.get("dt_level", 0))
        self.stepper = self._stepper_for(self.dt_level)
        self._prep_valid = False
        if "budget" in st:
            self.budget[...] = st["budget"]
        self.closure_calls = int(st.get("closure_calls", 0))
        states = st.get("rng_states")
        if states is not None:
            if len(states) != self.members:
                raise ValueError(f"restart has {len(states)} RNG states for {self.members} members")
            for r, s in zip(self.rngs, states):
                r.bit_generator.state = s
        if "closure_hat" in st:
            if self.closure is None:
                raise ValueError("the restart holds a closure term: attach the closure first")
            self._closure_hat[...] = st["closure_hat"]
            if "closure_state" in st and hasattr(self.closure, "set_state"):
                self.closure.set_state(st["closure_state"])
