"""Numba kernels fusing the pointwise work of a right-hand-side evaluation and of the stepper stages.

One step of a four-stage stepper costs, per stage: inverse FFTs of (û, v̂, ζ̂), ``advective_fluxes``
(uζ, vζ, in place), forward FFTs, and one fused ``stage`` kernel that assembles N = −∇·(uζ) + sources, forms
the next stage value and writes its (û, v̂, ζ̂) straight into the inverse-FFT input: no other pass
over memory. The last stage (``final_stage``) also checks finiteness and accumulates the energy and
enstrophy budget.

Spectral arrays are ``(members, n, n//2+1)`` complex (or a leading size of 1, broadcast over
members); coefficient arrays are ``(n, n//2+1)``; the FFT buffers hold 3 (inverse) or 2 (forward)
slots per member. Every kernel is elementwise per member (no reduction mixes members), so a member's
arithmetic does not depend on the batch it sits in. No fastmath: results are IEEE-reproducible,
which bit-exact restarts and batch equality rely on.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True)
_inline = njit(cache=True, nogil=True, inline="always")


@_inline
def _write_uvz(z, kxi, kyj, ik, scale, prep, m, j, i):
    """(û, v̂, ζ̂)·scale of ζ̂ = z into slots 3m, 3m+1, 3m+2: û = i ky ζ̂/|k|², v̂ = −i kx ζ̂/|k|²."""
    zr = z.real * scale
    zi = z.imag * scale
    wr = zr * ik
    wi = zi * ik
    prep[3 * m, j, i] = complex(-kyj * wi, kyj * wr)
    prep[3 * m + 1, j, i] = complex(kxi * wi, -kxi * wr)
    prep[3 * m + 2, j, i] = complex(zr, zi)


@_inline
def _advection(fl, kxi, kyj, m, j, i):
    """−(i kx (uζ)^ + i ky (vζ)^) = −∇·(uζ) at one mode."""
    a = fl[2 * m, j, i]
    b = fl[2 * m + 1, j, i]
    return complex(kxi * a.imag + kyj * b.imag, -kxi * a.real - kyj * b.real)


@_inline
def _rhs_point(fl, mask, g, kxi, kyj, m, gm, j, i):
    """N = mask·(−∇·(uζ))^ + g at one mode of member m (g's member index gm)."""
    if mask[j, i]:
        return _advection(fl, kxi, kyj, m, j, i) + g[gm, j, i]
    return g[gm, j, i]


@_jit
def velocity_vorticity_hat(zh, kx, ky, inv_k2, scale, prep):
    """From ζ̂ (M, n, nk) write (û, v̂, ζ̂)·scale into slots 3m, 3m+1, 3m+2 of ``prep``.

    ψ̂ = −ζ̂/|k|², u = −∂yψ → û = i ky ζ̂/|k|², v = ∂xψ → v̂ = −i kx ζ̂/|k|².
    """
    M, n, nk = zh.shape
    for m in range(M):
        for j in range(n):
            for i in range(nk):
                _write_uvz(zh[m, j, i], kx[i], ky[j], inv_k2[j, i], scale, prep, m, j, i)


@_jit
def advective_fluxes(phys):
    """In place, per member: slots 3m, 3m+1 (u, v) become uζ, vζ (ζ in slot 3m+2); the forward
    transforms read them straight from there, so the fluxes never leave the cache."""
    M = phys.shape[0] // 3
    for m in range(M):
        u = phys[3 * m]
        v = phys[3 * m + 1]
        z = phys[3 * m + 2]
        for j in range(phys.shape[1]):
            for i in range(phys.shape[2]):
                u[j, i] = u[j, i] * z[j, i]
                v[j, i] = v[j, i] * z[j, i]


@_jit
def advective_fluxes_stats(phys, stats):
    """``advective_fluxes`` plus stats[m] = (max|u|, max|v|, 1 if any u, v, ζ is not finite);
    returns (max over members of max|u| + max|v|, whether any member is not finite)."""
    M = phys.shape[0] // 3
    for m in range(M):
        u = phys[3 * m]
        v = phys[3 * m + 1]
        z = phys[3 * m + 2]
        umax = 0.0
        vmax = 0.0
        total = 0.0
        for j in range(phys.shape[1]):
            for i in range(phys.shape[2]):
                a = u[j, i]
                b = v[j, i]
                c = z[j, i]
                umax = max(umax, abs(a))
                vmax = max(vmax, abs(b))
                total += abs(a) + abs(b) + abs(c)                   # NaN/inf propagate here
                u[j, i] = a * c
                v[j, i] = b * c
        stats[m, 0] = umax
        stats[m, 1] = vmax
        stats[m, 2] = 0.0 if total < np.inf else 1.0
    fastest = 0.0
    bad = False
    for m in range(M):
        fastest = max(fastest, stats[m, 0] + stats[m, 1])
        bad = bad or stats[m, 2] > 0
    return fastest, bad


@_jit
def assemble_rhs(fl, kx, ky, mask, g, out):
    """out = mask·(−i kx (uζ)^ − i ky (vζ)^) + g, i.e. −∇·(uζ) dealiased plus the source g."""
    M, n, nk = out.shape
    gb = g.shape[0] > 1
    for m in range(M):
        gm = m if gb else 0
        for j in range(n):
            for i in range(nk):
                out[m, j, i] = _rhs_point(fl, mask, g, kx[i], ky[j], m, gm, j, i)


@_jit
def stage(fl, kx, ky, mask, g, y, A, B, C, nprev, use_c, n_out, store_x, x_out,
          inv_k2, scale, prep):
    """One fused stage: N = mask·(−∇·(uζ))^ + g into ``n_out``; x = A·y + B·N (+ C·nprev if
    ``use_c``), stored in ``x_out`` if ``store_x``; (û, v̂, ζ̂)·scale of x into ``prep``."""
    M, n, nk = y.shape
    gb = g.shape[0] > 1
    for m in range(M):
        gm = m if gb else 0
        for j in range(n):
            kyj = ky[j]
            for i in range(nk):
                N = _rhs_point(fl, mask, g, kx[i], kyj, m, gm, j, i)
                n_out[m, j, i] = N
                x = A[j, i] * y[m, j, i] + B[j, i] * N
                if use_c:
                    x += C[j, i] * nprev[m, j, i]
                if store_x:
                    x_out[m, j, i] = x
                _write_uvz(x, kx[i], kyj, inv_k2[j, i], scale, prep, m, j, i)


@_jit
def final_stage(fl, kx, ky, mask, g, u, E, c1, n1, c2, n2, n3, c3, out, inv_k2, scale, prep,
                flags, budget, f, xi, c, has_f, has_x, has_c, drag, visc, norm, dt, rates, acc):
    """Last stage: N as in ``stage``; out = E·u + c1·n1 + c2·(n2 + n3) + c3·N (the new state);
    its (û, v̂, ζ̂)·scale into ``prep`` (the next step's first stage); flags[m] = 1 if any new
    coefficient is not finite.

    If ``budget``: rates[m] = the energy and enstrophy rates of each term at the midpoint
    ζ = (u + out)/2. For a vorticity source S, dE/dt = −⟨ψS⟩ = norm·Σ w Re(ζ̂ Ŝ*)/|k|² and
    dZ/dt = ⟨ζS⟩ = norm·Σ w Re(ζ̂ Ŝ*), with E = ½⟨|u|²⟩, Z = ½⟨ζ²⟩, w the Hermitian weight (1 on
    the kx = 0 and Nyquist columns, 2 elsewhere) and norm = 1/n⁴. Columns: E by forcing f, noise
    xi, closure c, drag (−drag·ζ), viscosity (−visc·ζ); then Z by the same five. ``terms`` =
    (has f, has xi, has c): absent sources are not read.
    """
    M, n, nk = u.shape
    gb = g.shape[0] > 1
    fb = f.shape[0] > 1
    xb = xi.shape[0] > 1
    cb = c.shape[0] > 1
    for m in range(M):
        gm = m if gb else 0
        fm = m if fb else 0
        xm = m if xb else 0
        cm = m if cb else 0
        total = 0.0
        e0 = e1 = e2 = e3 = e4 = z0 = z1 = z2 = z3 = z4 = 0.0
        for j in range(n):
            kyj = ky[j]
            for i in range(nk):
                N = _rhs_point(fl, mask, g, kx[i], kyj, m, gm, j, i)
                uo = u[m, j, i]
                x = (E[j, i] * uo + c1[j, i] * n1[m, j, i]
                     + c2[j, i] * (n2[m, j, i] + n3[m, j, i]) + c3[j, i] * N)
                out[m, j, i] = x
                total += abs(x.real) + abs(x.imag)
                _write_uvz(x, kx[i], kyj, inv_k2[j, i], scale, prep, m, j, i)
                if budget:
                    zr = 0.5 * (uo.real + x.real)
                    zi = 0.5 * (uo.imag + x.imag)
                    w = 1.0 if (i == 0 or i == nk - 1) else 2.0
                    ik = inv_k2[j, i]
                    zz = w * (zr * zr + zi * zi)
                    pd = -drag * zz
                    pv = -visc[j, i] * zz
                    e3 += pd * ik
                    e4 += pv * ik
                    z3 += pd
                    z4 += pv
                    if has_f:
                        fv = f[fm, j, i]
                        pf = w * (zr * fv.real + zi * fv.imag)
                        e0 += pf * ik
                        z0 += pf
                    if has_x:
                        xv = xi[xm, j, i]
                        px = w * (zr * xv.real + zi * xv.imag)
                        e1 += px * ik
                        z1 += px
                    if has_c:
                        cv = c[cm, j, i]
                        pc = w * (zr * cv.real + zi * cv.imag)
                        e2 += pc * ik
                        z2 += pc
        flags[m] = 0 if total < np.inf else 1
        if budget:
            rates[m, 0] = e0 * norm
            rates[m, 1] = e1 * norm
            rates[m, 2] = e2 * norm
            rates[m, 3] = e3 * norm
            rates[m, 4] = e4 * norm
            rates[m, 5] = z0 * norm
            rates[m, 6] = z1 * norm
            rates[m, 7] = z2 * norm
            rates[m, 8] = z3 * norm
            rates[m, 9] = z4 * norm
            for q in range(10):
                acc[m, q] += dt * rates[m, q]
    bad = False
    for m in range(M):
        bad = bad or flags[m] > 0
    return bad


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
