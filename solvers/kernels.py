"""Numba kernels fusing the pointwise work of a right-hand-side evaluation and of the stepper stages.

One step of a four-stage stepper costs, per stage: inverse FFTs of (û, v̂), ``advective_fluxes``
(uv, v² − u², in place), forward FFTs, and one fused ``stage`` kernel that assembles
N = −∇·(uζ) + sources from those products (``_advection``), forms the next stage value and writes
its (û, v̂) straight into the inverse-FFT input: no other pass over memory. Only the 2/3-rule box of
modes is computed (everything outside it is zero), and the third stage adds its N to the second's
in place (the last stage needs their sum only). The last stage (``final_stage``) also checks
finiteness and accumulates the energy and enstrophy budget.

Spectral arrays are ``(members, n, n//2+1)`` complex (or a leading size of 1, broadcast over
members); coefficient arrays are ``(n, n//2+1)``; the FFT buffers hold 2 (inverse and forward)
slots per member. Every kernel is elementwise per member (no reduction mixes members), so a member's
arithmetic does not depend on the batch it sits in. No fastmath: results are IEEE-reproducible,
which bit-exact restarts and batch equality rely on.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

_jit = njit(cache=True, nogil=True)
_inline = njit(cache=True, nogil=True, inline="always")


def _times(a, z):
    """a·z for a coefficient a (real or complex) and a complex z."""
    return a * z


@overload(_times, inline="always")
def _times_impl(a, z):
    """A real a multiplies the two parts of z: two products where the complex product of a + 0i
    costs four products and two sums (the same value for finite operands, up to the sign of a
    zero). Without β the stepper's coefficients are real, so this is every stage product."""
    if isinstance(a, types.Float):
        if z == types.complex64:
            return lambda a, z: np.complex64(complex(a * z.real, a * z.imag))
        return lambda a, z: complex(a * z.real, a * z.imag)
    return lambda a, z: a * z


@_inline
def _write_uv(z, kxi, kyj, ik, scale, prep, m, j, i):
    """(û, v̂)·scale of ζ̂ = z into slots 2m, 2m+1: û = i ky ζ̂/|k|², v̂ = −i kx ζ̂/|k|²."""
    wr = z.real * scale * ik
    wi = z.imag * scale * ik
    prep[2 * m, j, i] = complex(-kyj * wi, kyj * wr)
    prep[2 * m + 1, j, i] = complex(kxi * wi, -kxi * wr)


@_inline
def _advection(fl, kxi, kyj, m, j, i):
    """−∇·(uζ) at one mode from a = (uv)^, b = (v² − u²)^ (Basdevant et al. 1983): in 2D
    incompressible flow ∇·(uζ) = (∂xx − ∂yy)(uv) + ∂xy(v² − u²), so −∇·(uζ) has the transform
    (kx² − ky²)·a + kx ky·b. Two products of the velocities replace u, v and ζ: two inverse
    transforms and two forward ones per member instead of three and two."""
    a = fl[2 * m, j, i]
    b = fl[2 * m + 1, j, i]
    p = kxi * kxi - kyj * kyj
    q = kxi * kyj
    return complex(p * a.real + q * b.real, p * a.imag + q * b.imag)


@_inline
def _rhs_point(fl, mask, g, kxi, kyj, m, gm, j, i):
    """N = mask·(−∇·(uζ))^ + g at one mode of member m (g's member index gm)."""
    if mask[j, i]:
        return _advection(fl, kxi, kyj, m, j, i) + g[gm, j, i]
    return g[gm, j, i]


@_inline
def _products(ur, vr):
    """In place along a row: u → uv, v → v² − u² (as (v − u)(v + u))."""
    for i in range(ur.shape[0]):
        a = ur[i]
        b = vr[i]
        ur[i] = a * b
        vr[i] = (b - a) * (b + a)


@_jit
def advective_fluxes(phys):
    """In place, per member: slots 2m, 2m+1 (u, v) become uv, v² − u² (see ``_advection``); the
    forward transforms read them straight from there, so the products never leave the cache."""
    M = phys.shape[0] // 2
    for m in range(M):
        u = phys[2 * m]
        v = phys[2 * m + 1]
        for j in range(phys.shape[1]):
            _products(u[j], v[j])


@_inline
def _abs_bits_max(row, absmask, current):
    """max(current, max over the row of |x|'s bit pattern): the row's integer view with the sign bit
    cleared. For IEEE floats that order is the order of |x|, with inf and NaN above every finite
    value; an integer max is exact and vectorises without fast-math."""
    for i in range(row.shape[0]):
        current = max(current, row[i] & absmask)
    return current


@_jit
def advective_fluxes_stats(phys, bits, absmask, infbits, fbuf, ibuf, stats):
    """``advective_fluxes`` plus stats[m] = (max|u|, max|v|, 1 if any u, v is not finite);
    returns (max over members of max|u| + max|v|, whether any member is not finite).

    ``bits`` is ``phys`` viewed as integers of its width, ``absmask`` clears their sign bit,
    ``infbits`` is the pattern of +inf (any |x| pattern ≥ it is inf or NaN); ``fbuf``/``ibuf`` a
    one-element float array and its integer view, to turn a maximum back into a float. Each row
    is read for the maxima before the products overwrite u and v. (ζ is not transformed: a
    non-finite ζ̂ makes u and v non-finite too.)
    """
    M = phys.shape[0] // 2
    for m in range(M):
        u = phys[2 * m]
        v = phys[2 * m + 1]
        ub = bits[2 * m]
        vb = bits[2 * m + 1]
        umax = ub[0, 0] & 0
        vmax = umax
        for j in range(phys.shape[1]):
            umax = _abs_bits_max(ub[j], absmask, umax)
            vmax = _abs_bits_max(vb[j], absmask, vmax)
            _products(u[j], v[j])
        ibuf[0] = umax
        stats[m, 0] = fbuf[0]
        ibuf[0] = vmax
        stats[m, 1] = fbuf[0]
        stats[m, 2] = 1.0 if max(umax, vmax) >= infbits else 0.0
    fastest = 0.0
    bad = False
    for m in range(M):
        fastest = max(fastest, stats[m, 0] + stats[m, 1])
        bad = bad or stats[m, 2] > 0
    return fastest, bad


@_jit
def assemble_rhs(fl, kx, ky, mask, g, out):
    """out = mask·(−∇·(uζ))^ + g (see ``_advection``), the advection dealiased plus the source g."""
    M, n, nk = out.shape
    gb = g.shape[0] > 1
    for m in range(M):
        gm = m if gb else 0
        for j in range(n):
            for i in range(nk):
                out[m, j, i] = _rhs_point(fl, mask, g, kx[i], ky[j], m, gm, j, i)


@_inline
def _zero_tail(prep, m, j, i0):
    """Zero slots 2m, 2m+1 of row j from column i0 on (the c2r transform destroys its input, and
    the pruned one needs zeros in the columns m_x > kmax, so the modes outside the dealiased box
    are rewritten every stage)."""
    for s in range(2 * m, 2 * m + 2):
        row = prep[s, j]
        for i in range(i0, row.shape[0]):
            row[i] = 0.0


@_inline
def _kept_row(j, n, kmax):
    """Is row j (ky mode number j or j − n) inside the dealiased box |m_y| ≤ kmax?"""
    return j <= kmax or j >= n - kmax


@_jit
def velocity_vorticity_hat(zh, kx, ky, kmax, inv_k2, scale, prep):
    """From ζ̂ (M, n, nk) write (û, v̂)·scale into slots 2m, 2m+1 of ``prep`` on the
    dealiased box |m_x|, |m_y| ≤ kmax and zeros outside it (the pruned inverse transform needs
    zeros in the columns m_x > kmax; ζ̂ outside the box is ignored).

    ψ̂ = −ζ̂/|k|², u = −∂yψ → û = i ky ζ̂/|k|², v = ∂xψ → v̂ = −i kx ζ̂/|k|².
    """
    M, n, nk = zh.shape
    for m in range(M):
        for j in range(n):
            if not _kept_row(j, n, kmax):
                _zero_tail(prep, m, j, 0)
                continue
            for i in range(kmax + 1):
                _write_uv(zh[m, j, i], kx[i], ky[j], inv_k2[j, i], scale, prep, m, j, i)
            _zero_tail(prep, m, j, kmax + 1)


@_jit
def stage(fl, kx, ky, kmax, g, g_rows, y, A, B, C, nprev, use_c, n_out, add_n, store_x, x_out,
          inv_k2, scale, prep):
    """One fused stage: N = (−∇·(uζ))^ + g into ``n_out`` (n_out + N in place if ``add_n``: the
    last stage needs N_2 + N_3 only, so the third stage sums it where N_2 is, and the last stage
    reads one array instead of two); x = A·y + B·N (+ C·nprev if ``use_c``), stored in ``x_out``
    if ``store_x``; (û, v̂)·scale of x into ``prep``.

    Only the dealiased box |m_x|, |m_y| ≤ kmax is computed: outside it the state, the stage values
    and every source are zero (so N, x are too), ``n_out``/``x_out`` are never read there, and
    ``prep`` is zero-filled. ``g`` is read only on rows with ``g_rows[j]`` (it is zero elsewhere):
    a deterministic forcing of a few modes costs nothing on the other rows.
    """
    M, n, nk = y.shape
    gb = g.shape[0] > 1
    for m in range(M):
        gm = m if gb else 0
        for j in range(n):
            if not _kept_row(j, n, kmax):
                _zero_tail(prep, m, j, 0)
                continue
            kyj = ky[j]
            use_g = g_rows[j]
            for i in range(kmax + 1):
                N = _advection(fl, kx[i], kyj, m, j, i)
                if use_g:
                    N += g[gm, j, i]
                if add_n:
                    n_out[m, j, i] = n_out[m, j, i] + N
                else:
                    n_out[m, j, i] = N
                x = _times(A[j, i], y[m, j, i]) + _times(B[j, i], N)
                if use_c:
                    x += _times(C[j, i], nprev[m, j, i])
                if store_x:
                    x_out[m, j, i] = x
                _write_uv(x, kx[i], kyj, inv_k2[j, i], scale, prep, m, j, i)
            _zero_tail(prep, m, j, kmax + 1)


@_inline
def _source_rate(zr, zi, s, w):
    """w·Re(ζ̂ Ŝ*) of the midpoint ζ̂ = zr + i zi and a source value s."""
    return w * (zr * s.real + zi * s.imag)


@_jit
def final_stage(fl, kx, ky, kmax, g, g_rows, u, E, c1, n1, c2, n23, c3, out, inv_k2, scale,
                prep, flags, budget, f, f_rows, xi, c, has_x, has_c, drag, visc, norm, dt, rates,
                acc):
    """Last stage: N as in ``stage``; out = E·u + c1·n1 + c2·n23 + c3·N (the new state; n23 =
    N_2 + N_3, summed by the third stage);
    its (û, v̂)·scale into ``prep`` (the next step's first stage); flags[m] = 1 if any new
    coefficient is not finite. Only the dealiased box is computed (see ``stage``): ``out`` stays
    zero outside it.

    If ``budget``: rates[m] = the energy and enstrophy rates of each term at the midpoint
    ζ = (u + out)/2. For a vorticity source S, dE/dt = −⟨ψS⟩ = norm·Σ w Re(ζ̂ Ŝ*)/|k|² and
    dZ/dt = ⟨ζS⟩ = norm·Σ w Re(ζ̂ Ŝ*), with E = ½⟨|u|²⟩, Z = ½⟨ζ²⟩, w the Hermitian weight (1 on
    the kx = 0 and Nyquist columns, 2 elsewhere) and norm = 1/n⁴. Columns: E by forcing f, noise
    xi, closure c, drag (−drag·ζ, ``drag`` per mode: μ plus the eddy drag off kx = 0), viscosity
    (−visc·ζ); then Z by the same five. The forcing is
    read on rows with ``f_rows[j]`` only (zero elsewhere); absent noise/closure (``has_x``,
    ``has_c`` False) are not read.
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
            if not _kept_row(j, n, kmax):
                _zero_tail(prep, m, j, 0)
                continue
            kyj = ky[j]
            use_g = g_rows[j]
            use_f = budget and f_rows[j]
            for i in range(kmax + 1):
                N = _advection(fl, kx[i], kyj, m, j, i)
                if use_g:
                    N += g[gm, j, i]
                uo = u[m, j, i]
                x = (_times(E[j, i], uo) + _times(c1[j, i], n1[m, j, i])
                     + _times(c2[j, i], n23[m, j, i]) + _times(c3[j, i], N))
                out[m, j, i] = x
                total += abs(x.real) + abs(x.imag)
                _write_uv(x, kx[i], kyj, inv_k2[j, i], scale, prep, m, j, i)
                if budget:
                    zr = 0.5 * (uo.real + x.real)
                    zi = 0.5 * (uo.imag + x.imag)
                    w = 1.0 if (i == 0 or i == nk - 1) else 2.0
                    ik = inv_k2[j, i]
                    zz = w * (zr * zr + zi * zi)
                    pd = -drag[j, i] * zz
                    pv = -visc[j, i] * zz
                    e3 += pd * ik
                    e4 += pv * ik
                    z3 += pd
                    z4 += pv
                    if use_f:
                        pf = _source_rate(zr, zi, f[fm, j, i], w)
                        e0 += pf * ik
                        z0 += pf
                    if has_x:
                        px = _source_rate(zr, zi, xi[xm, j, i], w)
                        e1 += px * ik
                        z1 += px
                    if has_c:
                        pc = _source_rate(zr, zi, c[cm, j, i], w)
                        e2 += pc * ik
                        z2 += pc
            _zero_tail(prep, m, j, kmax + 1)
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
