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


SERIES_RADIUS = 0.1      # contour points this close to 0 use the Taylor series (see below)
SERIES_TERMS = 16        # |w| < 0.1: the first dropped term is below 1e-16 of the sum


def _factorials(count: int) -> np.ndarray:
    return np.cumprod(np.concatenate(([1.0], np.arange(1.0, count))))


def _phi_series(w: np.ndarray) -> tuple[np.ndarray, ...]:
    """(e^{w/2} − 1)/w, f1, f2, f3 by their Taylor series about w = 0, for small |w|:

        (e^{w/2} − 1)/w = Σ_j w^j / (2^{j+1} (j+1)!),   f1 = φ1 − 3φ2 + 4φ3,
        f2 = φ2 − 2φ3,   f3 = −φ2 + 4φ3,   φ_k(w) = Σ_j w^j/(j+k)!.
    """
    j = np.arange(SERIES_TERMS)
    fact = _factorials(SERIES_TERMS + 4)                  # fact[m] = m!
    phi = [1.0 / fact[j + k] for k in (1, 2, 3)]
    coef = [0.5 ** (j + 1) / fact[j + 1], phi[0] - 3 * phi[1] + 4 * phi[2], phi[1] - 2 * phi[2],
            -phi[1] + 4 * phi[2]]
    out = []
    for c in coef:                                         # Horner, highest power first
        acc = np.zeros_like(w)
        for cj in c[::-1]:
            acc = acc * w + cj
        out.append(acc)
    return tuple(out)


def _phi_coefficients(z: np.ndarray, points: int) -> tuple[np.ndarray, ...]:
    """Contour means of Q(z)/h, f1/h, f2/h, f3/h for each z (Kassam & Trefethen 2005, eq. 2.5).

    The points go round the whole unit circle: z is complex when β ≠ 0, so the half-circle-and-real-
    part shortcut of the paper (valid for real z only) does not apply. Where a contour point w comes
    within ``SERIES_RADIUS`` of the removable singularity w = 0 (|z| ≈ 1, e.g. a large β·dt), the
    closed forms lose digits as ε/|w|³ (or divide by zero), so there the functions are summed from
    their Taylor series instead.
    """
    r = np.exp(2j * np.pi * (np.arange(1, points + 1) - 0.5) / points)
    q = np.empty_like(z)
    f1 = np.empty_like(z)
    f2 = np.empty_like(z)
    f3 = np.empty_like(z)
    rows = max(1, (1 << 20) // (z.shape[-1] * points))       # bound the temporaries to ~16 MB
    for s in range(0, z.shape[0], rows):
        lr = z[s:s + rows, :, None] + r
        near = np.abs(lr) < SERIES_RADIUS
        safe = np.where(near, 1.0, lr)
        e = np.exp(safe)
        e2 = np.exp(safe / 2)
        lr3 = safe**3
        vals = [(e2 - 1) / safe, (-4 - safe + e * (4 - 3 * safe + safe**2)) / lr3,
                (2 + safe + e * (safe - 2)) / lr3, (-4 - 3 * safe - safe**2 + e * (4 - safe)) / lr3]
        if near.any():
            for v, sv in zip(vals, _phi_series(lr[near])):
                v[near] = sv
        q[s:s + rows], f1[s:s + rows], f2[s:s + rows], f3[s:s + rows] = (
            np.mean(v, axis=-1) for v in vals)
    return q, f1, f2, f3


def noise_gain(linear: np.ndarray, h: float, held: np.ndarray) -> np.ndarray:
    """Per-mode gain that makes a white-noise forcing held over a step exact for the linear part.

    A source ξ̂ = σ η/√h held across the stages of a step adds P·ξ̂ to the mode, P = ``held`` (the
    stepper's response to a constant source: h φ1(hL) for ETDRK4, h(e^{hL} + 4e^{hL/2} + 1)/6 for
    IF-RK4), of variance |P|² σ²/h. The exact increment of dζ̂ = L ζ̂ dt + σ dW over h has variance
    σ² (e^{2ah} − 1)/(2a), a = Re L. The gain g = h √(expm1(2ah)/(2ah)) / |P| makes them equal, so
    the scheme draws the exact Ornstein–Uhlenbeck transition of every mode of the linear problem
    (steady energy ε/(2μ) under drag μ at any hμ); g → 1 as h|L| → 0.
    """
    x = 2.0 * h * np.real(linear)
    ratio = np.ones_like(x)
    big = np.abs(x) > 1e-12
    ratio[big] = np.expm1(x[big]) / x[big]
    return h * np.sqrt(ratio) / np.abs(held)


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
    """Coefficients of a four-stage exponential stepper for step ``h`` and linear operator L.

    ``held`` (complex128, per mode) is the response of one step to a source held constant across
    its stages: the new state gains ``held``·F̂ from a constant F̂ (used by :func:`noise_gain`).
    """

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
        self.held = h * (f1 + 4 * f2 + f3)                     # h φ1(hL), the constant-source response


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
        self.held = h * (E + 4 * E2 + 1) / 6                   # Simpson's rule for ∫ e^{L(h−s)} ds


STEPPERS = {"etdrk4": ETDRK4, "rk4": IFRK4}


def make_stepper(name: str, linear, h, cdtype) -> Stepper:
    try:
        cls = STEPPERS[name]
    except KeyError:
        raise ValueError(f"stepper must be one of {sorted(STEPPERS)}, got {name!r}") from None
    return cls(linear, h, cdtype)
