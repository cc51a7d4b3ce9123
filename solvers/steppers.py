"""Time steppers for dζ̂/dt = L ζ̂ + N(ζ̂), with L diagonal and integrated exactly.

Both steppers evaluate N at t, t+h/2, t+h/2, t+h and are fourth order:

* ``ETDRK4`` (Cox & Matthews 2002), with the φ-function coefficients evaluated by the contour
  integral of Kassam & Trefethen (2005): the mean over ``M`` points on a unit circle around each
  z = hL, which avoids the cancellation of the direct formulas for small |z|.
* ``IFRK4``: classical RK4 applied to v = e^{−Lt} ζ̂ (integrating factor).

A stepper owns its stage buffers; ``step`` is given N(ζ̂ⁿ) already evaluated (the solver looks at
the first stage's velocities to choose dt) and a callable ``rhs(zeta_hat, out)`` for the others.
"""
from __future__ import annotations

import numpy as np

from . import kernels


def _phi_coefficients(z: np.ndarray, points: int) -> tuple[np.ndarray, ...]:
    """Contour means of Q(z)/h, f1/h, f2/h, f3/h for each z (Kassam & Trefethen 2005, eq. 2.5).

    The points go round the whole unit circle: z is complex when β ≠ 0, so the half-circle-and-real-
    part shortcut of the paper (valid for real z only) does not apply.
    """
    r = np.exp(2j * np.pi * (np.arange(1, points + 1) - 0.5) / points)
    q = np.empty_like(z)
    f1 = np.empty_like(z)
    f2 = np.empty_like(z)
    f3 = np.empty_like(z)
    rows = max(1, (1 << 20) // (z.shape[-1] * points))       # bound the temporary to ~16 MB
    for s in range(0, z.shape[0], rows):
        lr = z[s:s + rows, :, None] + r
        e = np.exp(lr)
        e2 = np.exp(lr / 2)
        lr3 = lr**3
        q[s:s + rows] = np.mean((e2 - 1) / lr, axis=-1)
        f1[s:s + rows] = np.mean((-4 - lr + e * (4 - 3 * lr + lr**2)) / lr3, axis=-1)
        f2[s:s + rows] = np.mean((2 + lr + e * (lr - 2)) / lr3, axis=-1)
        f3[s:s + rows] = np.mean((-4 - 3 * lr - lr**2 + e * (4 - lr)) / lr3, axis=-1)
    return q, f1, f2, f3


class Stepper:
    """Common buffers of the four-stage steppers."""

    name = ""

    def __init__(self, linear: np.ndarray, h: float, members: int, cdtype):
        if not (np.isfinite(h) and h > 0):
            raise ValueError(f"dt must be a positive finite time step, got {h!r}")
        self.h = float(h)
        self.cdtype = np.dtype(cdtype)
        shape = (members, *linear.shape)
        self.N = [np.zeros(shape, self.cdtype) for _ in range(4)]
        self.work = [np.zeros(shape, self.cdtype) for _ in range(2)]
        self.set_linear(linear, h)

    def _c(self, a) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, self.shape2), dtype=self.cdtype)


class ETDRK4(Stepper):
    """Exponential time differencing RK4 (Cox–Matthews) with contour-integral coefficients."""

    name = "etdrk4"

    def __init__(self, linear, h, members, cdtype, contour_points: int = 64):
        self.contour_points = contour_points
        super().__init__(linear, h, members, cdtype)

    def set_linear(self, linear: np.ndarray, h: float) -> None:
        self.h = float(h)
        self.shape2 = linear.shape
        z = np.asarray(linear, dtype=np.complex128) * h
        q, f1, f2, f3 = _phi_coefficients(z, self.contour_points)
        self.E = self._c(np.exp(z))
        self.E2 = self._c(np.exp(z / 2))
        self.Q = self._c(h * q)
        self.Q2 = self._c(2 * h * q)
        self.mQ = self._c(-h * q)
        self.f1 = self._c(h * f1)
        self.f2x2 = self._c(2 * h * f2)
        self.f3 = self._c(h * f3)

    def step(self, u, rhs, out) -> None:
        """ζ̂ⁿ⁺¹ into ``out``; ``self.N[0]`` must already hold N(ζ̂ⁿ)."""
        Nu, Na, Nb, Nc = self.N
        a, b = self.work
        kernels.lincomb2(self.E2, u, self.Q, Nu, a)               # a = E2 u + Q N(u)
        rhs(a, Na)
        kernels.lincomb2(self.E2, u, self.Q, Na, b)               # b = E2 u + Q N(a)
        rhs(b, Nb)
        kernels.lincomb3(self.E2, a, self.Q2, Nb, self.mQ, Nu, out)  # c = E2 a + Q (2N(b) − N(u))
        rhs(out, Nc)
        kernels.final_combination(self.E, u, self.f1, Nu, self.f2x2, Na, Nb, self.f3, Nc, out)


class IFRK4(Stepper):
    """Classical RK4 on the integrating-factor variable v = e^{−Lt} ζ̂."""

    name = "rk4"

    def set_linear(self, linear: np.ndarray, h: float) -> None:
        self.h = float(h)
        self.shape2 = linear.shape
        z = np.asarray(linear, dtype=np.complex128) * h
        E, E2 = np.exp(z), np.exp(z / 2)
        self.E = self._c(E)
        self.E2 = self._c(E2)
        self.hE2_2 = self._c(h / 2 * E2)
        self.h_2 = self._c(h / 2)
        self.hE2 = self._c(h * E2)
        self.hE_6 = self._c(h / 6 * E)
        self.hE2_3 = self._c(h / 3 * E2)
        self.h_6 = self._c(h / 6)

    def step(self, u, rhs, out) -> None:
        Nu, Na, Nb, Nc = self.N
        a, b = self.work
        kernels.lincomb2(self.E2, u, self.hE2_2, Nu, a)           # a = E2 (u + h/2 N(u))
        rhs(a, Na)
        kernels.lincomb2(self.E2, u, self.h_2, Na, b)             # b = E2 u + h/2 N(a)
        rhs(b, Nb)
        kernels.lincomb2(self.E, u, self.hE2, Nb, out)            # c = E u + h E2 N(b)
        rhs(out, Nc)
        # ζ̂ⁿ⁺¹ = E u + h/6 (E N(u) + 2 E2 (N(a) + N(b)) + N(c))
        kernels.final_combination(self.E, u, self.hE_6, Nu, self.hE2_3, Na, Nb, self.h_6, Nc, out)


STEPPERS = {"etdrk4": ETDRK4, "rk4": IFRK4}


def make_stepper(name: str, linear, h, members, cdtype) -> Stepper:
    try:
        cls = STEPPERS[name]
    except KeyError:
        raise ValueError(f"stepper must be one of {sorted(STEPPERS)}, got {name!r}") from None
    return cls(linear, h, members, cdtype)
