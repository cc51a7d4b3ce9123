"""Numba kernels fusing the pointwise work of a right-hand-side evaluation and of the stepper stages.

Spectral arrays are ``(members, n, n//2+1)`` complex (or a leading size of 1, broadcast over
members); coefficient arrays are ``(n, n//2+1)``. Every kernel is elementwise per member (no
reduction mixes members), so a member's arithmetic does not depend on the batch it sits in.
No fastmath: results are IEEE-reproducible, which bit-exact restarts and batch equality rely on.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True)


@_jit
def velocity_vorticity_hat(zh, kx, ky, inv_k2, scale, out):
    """From ζ̂ (M, n, nk) write û, v̂, ζ̂ (all × scale) into slots 3m, 3m+1, 3m+2 of ``out``.

    ψ̂ = −ζ̂/|k|², u = −∂yψ → û = i ky ζ̂/|k|², v = ∂xψ → v̂ = −i kx ζ̂/|k|².
    """
    M, n, nk = zh.shape
    for m in range(M):
        for j in range(n):
            kyj = ky[j]
            for i in range(nk):
                z = zh[m, j, i] * scale
                wr = z.real * inv_k2[j, i]
                wi = z.imag * inv_k2[j, i]
                out[3 * m, j, i] = complex(-kyj * wi, kyj * wr)
                out[3 * m + 1, j, i] = complex(kx[i] * wi, -kx[i] * wr)
                out[3 * m + 2, j, i] = z


@_jit
def advective_fluxes(phys, out, stats):
    """From u, v, ζ (slots 3m..3m+2 of ``phys``) write uζ, vζ into slots 2m, 2m+1 of ``out``.

    ``stats[m]`` receives (max|u|, max|v|, 1 if any of u, v, ζ is not finite else 0).
    """
    M = phys.shape[0] // 3
    n0, n1 = phys.shape[1], phys.shape[2]
    for m in range(M):
        umax = 0.0
        vmax = 0.0
        bad = 0.0
        for j in range(n0):
            for i in range(n1):
                u = phys[3 * m, j, i]
                v = phys[3 * m + 1, j, i]
                z = phys[3 * m + 2, j, i]
                out[2 * m, j, i] = u * z
                out[2 * m + 1, j, i] = v * z
                au = abs(u)
                av = abs(v)
                if au > umax:
                    umax = au
                if av > vmax:
                    vmax = av
                if not (au + av + abs(z) < np.inf):
                    bad = 1.0
        stats[m, 0] = umax
        stats[m, 1] = vmax
        stats[m, 2] = bad


@_jit
def assemble_rhs(fl, kx, ky, mask, g, out):
    """out = mask·(−i kx (uζ)^ − i ky (vζ)^) + g, i.e. −∇·(u ζ) dealiased plus the source g.

    ``fl`` holds (uζ)^, (vζ)^ in slots 2m, 2m+1; ``g`` is (M or 1, n, nk).
    """
    M, n, nk = out.shape
    gb = g.shape[0] > 1
    for m in range(M):
        gm = m if gb else 0
        for j in range(n):
            kyj = ky[j]
            for i in range(nk):
                if mask[j, i]:
                    a = fl[2 * m, j, i]
                    b = fl[2 * m + 1, j, i]
                    re = kx[i] * a.imag + kyj * b.imag
                    im = -kx[i] * a.real - kyj * b.real
                    out[m, j, i] = complex(re, im) + g[gm, j, i]
                else:
                    out[m, j, i] = g[gm, j, i]


@_jit
def lincomb2(A, x, B, y, out):
    """out = A·x + B·y (A, B coefficient arrays broadcast over members)."""
    M, n, nk = out.shape
    for m in range(M):
        for j in range(n):
            for i in range(nk):
                out[m, j, i] = A[j, i] * x[m, j, i] + B[j, i] * y[m, j, i]


@_jit
def lincomb3(A, x, B, y, C, z, out):
    """out = A·x + B·y + C·z."""
    M, n, nk = out.shape
    for m in range(M):
        for j in range(n):
            for i in range(nk):
                out[m, j, i] = A[j, i] * x[m, j, i] + B[j, i] * y[m, j, i] + C[j, i] * z[m, j, i]


@_jit
def final_combination(E, u, c1, n1, c2, n2, n3, c3, n4, out):
    """out = E·u + c1·n1 + c2·(n2 + n3) + c3·n4 (the last stage of both RK4-type steppers)."""
    M, n, nk = out.shape
    for m in range(M):
        for j in range(n):
            for i in range(nk):
                out[m, j, i] = (E[j, i] * u[m, j, i] + c1[j, i] * n1[m, j, i]
                                + c2[j, i] * (n2[m, j, i] + n3[m, j, i]) + c3[j, i] * n4[m, j, i])


@_jit
def add_sources(base, extra, out):
    """out = base + extra, with ``base`` (M or 1, n, nk) broadcast over members."""
    M, n, nk = out.shape
    bb = base.shape[0] > 1
    for m in range(M):
        bm = m if bb else 0
        for j in range(n):
            for i in range(nk):
                out[m, j, i] = base[bm, j, i] + extra[m, j, i]


@_jit
def nonfinite_members(zh, flags):
    """flags[m] = 1 if any coefficient of member m is NaN or infinite, else 0."""
    M, n, nk = zh.shape
    for m in range(M):
        bad = 0
        for j in range(n):
            for i in range(nk):
                z = zh[m, j, i]
                if not (abs(z.real) + abs(z.imag) < np.inf):
                    bad = 1
        flags[m] = bad


@_jit
def budget_rates(z0, z1, f, xi, c, drag, visc, inv_k2, weight, norm, out):
    """Energy and enstrophy rates of each term, evaluated at the midpoint ζ = (ζ⁰ + ζ¹)/2.

    For a vorticity source S: dE/dt = −⟨ψ S⟩ = Σ w Re(ζ̂ Ŝ*)/|k|² · norm and dZ/dt = ⟨ζ S⟩ =
    Σ w Re(ζ̂ Ŝ*) · norm, with E = ½⟨|u|²⟩, Z = ½⟨ζ²⟩, w the Hermitian weight, norm = 1/n⁴.
    Columns of out[m]: E by deterministic forcing f, by noise xi, by closure c, by drag (−μζ),
    by (hyper)viscosity (−visc·ζ); then the same five for Z. Arrays f, xi, c may have leading size 1.
    """
    M, n, nk = z0.shape
    fb = f.shape[0] > 1
    xb = xi.shape[0] > 1
    cb = c.shape[0] > 1
    for m in range(M):
        acc = np.zeros(10)
        fm = m if fb else 0
        xm = m if xb else 0
        cm = m if cb else 0
        for j in range(n):
            for i in range(nk):
                zr = 0.5 * (z0[m, j, i].real + z1[m, j, i].real)
                zi = 0.5 * (z0[m, j, i].imag + z1[m, j, i].imag)
                w = weight[j, i]
                ik = inv_k2[j, i]
                pf = w * (zr * f[fm, j, i].real + zi * f[fm, j, i].imag)
                px = w * (zr * xi[xm, j, i].real + zi * xi[xm, j, i].imag)
                pc = w * (zr * c[cm, j, i].real + zi * c[cm, j, i].imag)
                zz = w * (zr * zr + zi * zi)
                pd = -drag * zz
                pv = -visc[j, i] * zz
                acc[0] += pf * ik
                acc[1] += px * ik
                acc[2] += pc * ik
                acc[3] += pd * ik
                acc[4] += pv * ik
                acc[5] += pf
                acc[6] += px
                acc[7] += pc
                acc[8] += pd
                acc[9] += pv
        for q in range(10):
            out[m, q] = acc[q] * norm
