"""Time steppers for dζ̂/dt = L ζ̂ + N(ζ̂), with L diagonal and integrated exactly.

Both steppers evaluate N at t, t+h/2, t+h/2, t+h and are fourth order:

* ``ETDRK4`` (Cox & Matthews 2002), with the φ-function coefficients evaluated by the contour
  integral of Kassam & Trefethen (2005), which avoids the cancellation of the direct formulas for
  small |hL|.
* ``IFRK4``: classical RK4 applied to v = e^{−Lt} ζ̂ (integrating factor).

Both are written in one form that the solver's fused kernels execute (``kernels.stage`` and
``kernels.final_stage``): stage s = 1, 2, 3 computes N_s = N(x_s) and
x_{s+1} = A_s·y_s + B_s·N_s (+ C_s·N_1), with y_s the state u or the first stage value a; the last
stage gives ζ̂ⁿ⁺¹ = E·u + c1·N_1 + c2·(N_2 + N_3) + c3·N_4 (the third stage adds N_3 to N_2 in
place).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    rows = max(1, (1 << 20) // (z.shape[-1] * points))       # bound the temporaries to ~16 MB
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


@dataclass
class Stage:
    """x_next = A·y + B·N (+ C·N_1); y is the state u (``from_a`` False) or the first stage value a;
    ``store`` keeps x_next as a (only the first stage of ETDRK4 needs it)."""
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray | None = None
    from_a: bool = False
    store: bool = False


class Stepper:
    """Coefficients of a four-stage exponential stepper for step ``h`` and linear operator L."""

    name = ""

    def __init__(self, linear: np.ndarray, h: float, cdtype):
        if not (np.isfinite(h) and h > 0):
            raise ValueError(f"dt must be a positive finite time step, got {h!r}")
        self.h = float(h)
        self.cdtype = np.dtype(cdtype)
        self.shape2 = linear.shape
        # a real L (no β term) gets real coefficient arrays: half the memory traffic in the stages
        self.real = not np.any(np.imag(linear))
        self.dtype = np.empty(0, self.cdtype).real.dtype if self.real else self.cdtype
        self.build(np.asarray(linear, dtype=np.complex128) * self.h)

    def _c(self, a) -> np.ndarray:
        a = np.broadcast_to(a, self.shape2)
        return np.ascontiguousarray(a.real if self.real else a, dtype=self.dtype)


class ETDRK4(Stepper):
    """Exponential time differencing RK4 (Cox–Matthews) with contour-integral coefficients:

        a = E2 u + Q N(u);  b = E2 u + Q N(a);  c = E2 a + Q (2N(b) − N(u))
        ζ̂ⁿ⁺¹ = E u + f1 N(u) + 2 f2 (N(a) + N(b)) + f3 N(c),   E = e^{hL}, E2 = e^{hL/2}.
    """

    name = "etdrk4"
    contour_points = 64

    def build(self, z: np.ndarray) -> None:
        h = self.h
        q, f1, f2, f3 = _phi_coefficients(z, self.contour_points)
        E2, Q = self._c(np.exp(z / 2)), self._c(h * q)
        self.stages = [Stage(E2, Q, store=True), Stage(E2, Q),
                       Stage(E2, self._c(2 * h * q), self._c(-h * q), from_a=True)]
        self.final = (self._c(np.exp(z)), self._c(h * f1), self._c(2 * h * f2), self._c(h * f3))


class IFRK4(Stepper):
    """Classical RK4 on the integrating-factor variable v = e^{−Lt} ζ̂:

        a = E2 (u + h/2 N(u));  b = E2 u + h/2 N(a);  c = E u + h E2 N(b)
        ζ̂ⁿ⁺¹ = E u + h/6 (E N(u) + 2 E2 (N(a) + N(b)) + N(c)).
    """

    name = "rk4"

    def build(self, z: np.ndarray) -> None:
        h = self.h
        E, E2 = np.exp(z), np.exp(z / 2)
        self.stages = [Stage(self._c(E2), self._c(h / 2 * E2)),
                       Stage(self._c(E2), self._c(np.full(self.shape2, h / 2))),
                       Stage(self._c(E), self._c(h * E2))]
        self.final = (self._c(E), self._c(h / 6 * E), self._c(h / 3 * E2),
                      self._c(np.full(self.shape2, h / 6)))


STEPPERS = {"etdrk4": ETDRK4, "rk4": IFRK4}


def make_stepper(name: str, linear, h, cdtype) -> Stepper:
    try:
        cls = STEPPERS[name]
    except KeyError:
        raise ValueError(f"stepper must be one of {sorted(STEPPERS)}, got {name!r}") from None
    return cls(linear, h, cdtype)
