"""The `ns-unitbox` data of the latent score-based closure paper (docs/ldm-unitbox.md).

``hybrid generate ns-unitbox --target missing-physics`` stores the subsampled DNS vorticity and the
whole advection term H = −u·∇ω of the DNS at the coarse points. This file checks that end to end,
through the command line, against −u·∇ω computed here from first principles (velocity from the
vorticity, products on a zero-padded grid), not with the package's own filters or solver terms.
"""
from __future__ import annotations

import numpy as np

from hybrid import datasets as hd
from hybrid.cli import main
from hybrid.config import load_preset
from solvers.io import load_restart

N_DNS, N_LES = 64, 16           # the paper's coarsening factor 4 (256² → 64²) on a tiny grid


def _wavenumbers(n: int, L: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kx, ky, mx, my) on the rfft2 layout (n, n//2 + 1) of an n² box of side L."""
    my = np.fft.fftfreq(n, 1.0 / n)[:, None]
    mx = np.fft.rfftfreq(n, 1.0 / n)[None, :]
    return 2 * np.pi / L * mx, 2 * np.pi / L * my, mx, my


def _padded(f_hat: np.ndarray, n: int, m: int) -> np.ndarray:
    """The physical field of the n² spectrum f_hat (no Nyquist content) on an m² grid, m > n."""
    g = np.zeros((m, m // 2 + 1), complex)
    h = n // 2
    g[:h, :h] = f_hat[:h, :h]
    g[m - h + 1:, :h] = f_hat[h + 1:, :h]
    return np.fft.irfft2(g, s=(m, m)) * (m / n) ** 2


def _minus_u_grad_omega(zeta_hat: np.ndarray, L: float) -> tuple[np.ndarray, np.ndarray]:
    """(−P(u·∇ω), −u·∇ω) on the n² DNS grid, from ζ̂ (n, n//2 + 1) alone.

    u = (u, v) is the zero-mean divergence-free velocity with ∂x v − ∂y u = ω:
    û = i ky ω̂/|k|², v̂ = −i kx ω̂/|k|². The product u·∇ω is formed exactly on a 2n² grid (each
    factor holds modes |m| < n/3, the product |m| < 2n/3 < n: no aliasing); P keeps its modes in
    the 2/3-rule box |mx|, |my| ≤ (n − 1)//3, the resolved modes of the pseudo-spectral DNS (the
    Galerkin advection term the DNS integrates). The second field is the unprojected product at
    the DNS points."""
    n = zeta_hat.shape[0]
    kx, ky, mx, my = _wavenumbers(n, L)
    k2 = kx ** 2 + ky ** 2
    inv = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    u_hat, v_hat = 1j * ky * zeta_hat * inv, -1j * kx * zeta_hat * inv
    # the velocity really is the one of ω: curl u = ω, div u = 0 (mean removed)
    assert np.allclose(1j * kx * v_hat - 1j * ky * u_hat, np.where(k2 > 0, zeta_hat, 0),
                       rtol=0, atol=1e-12 * np.abs(zeta_hat).max())
    assert np.allclose(1j * kx * u_hat + 1j * ky * v_hat, 0, atol=1e-12 * np.abs(zeta_hat).max())
    m = 2 * n
    u, v = _padded(u_hat, n, m), _padded(v_hat, n, m)
    wx, wy = _padded(1j * kx * zeta_hat, n, m), _padded(1j * ky * zeta_hat, n, m)
    product = u * wx + v * wy                                  # exact on the 2n² grid
    p_hat = np.fft.rfft2(product)
    kmax = (n - 1) // 3
    keep = np.zeros((n, n // 2 + 1), complex)
    h = n // 2
    keep[:h, :h] = p_hat[:h, :h]
    keep[h + 1:, :h] = p_hat[m - h + 1:, :h]
    keep[(np.abs(my) > kmax) | (mx > kmax)] = 0.0
    projected = np.fft.irfft2(keep, s=(n, n)) / (m / n) ** 2
    return -projected, -product[::2, ::2]


def test_missing_physics_target_is_minus_u_grad_omega_of_the_subsampled_dns(tmp_path):
    out = tmp_path / "unitbox.nc"
    assert main(["generate", "ns-unitbox", "--target", "missing-physics", "--n-dns", str(N_DNS),
                 "--n-les", str(N_LES), "--members", "2", "--samples", "4", "--interval", "0.01",
                 "--seed", "3", "--split", "0,0,1", "--out", str(out)]) == 0
    with hd.open_dataset(out) as ds:
        assert ds.attrs["target"] == "missing-physics" and int(ds.attrs["closure_sign"]) == 1
        assert ds.attrs["filter"] == "subsample" and int(ds.attrs["coarsening_factor"]) == 4
        w_stored, h_stored = ds["omega_bar"].values, ds["subgrid"].values
        times, members = ds["time"].values, ds["member"].values
        L = float(ds.attrs["L"])
    assert w_stored.dtype == np.float32 and w_stored.shape == (4, N_LES, N_LES)
    np.testing.assert_allclose(times, [0, 0, 0.01, 0.01], atol=1e-12)
    np.testing.assert_array_equal(members, [0, 1, 0, 1])

    # the DNS states: t = 0 from the preset's initial field, t = 0.01 from the run's restart
    p = load_preset("ns-unitbox")
    s = p.make_solver("dns", members=2, seed=3, n=N_DNS)
    s.set_vorticity(p.initial_vorticity(s))
    restart = load_restart(hd.restart_path(out))
    assert abs(restart["state"]["t"] - 0.01) < 1e-12
    states = [np.asarray(s.vorticity_hat), np.asarray(restart["state"]["zeta_hat"])]

    r = N_DNS // N_LES
    kmax = (N_DNS - 1) // 3
    _, _, mx, my = _wavenumbers(N_DNS, L)
    outside = (np.abs(my) > kmax) | (mx > kmax)
    for k, zh in enumerate(states):
        for member in range(2):
            i = 2 * k + member
            z = zh[member]
            assert np.all(z[outside] == 0)             # the DNS holds the 2/3-rule modes only
            w = np.fft.irfft2(z, s=(N_DNS, N_DNS))[::r, ::r]
            h, h_pointwise = (f[::r, ::r] for f in _minus_u_grad_omega(z, L))
            scale = np.abs(h).max()
            assert scale > 0
            # equal to float32 rounding of the stored values (half an ulp: 2^-24 relative)
            np.testing.assert_allclose(w_stored[i], w, rtol=2.0 ** -23,
                                       atol=1e-12 * np.abs(w).max())
            np.testing.assert_allclose(h_stored[i], h, rtol=2.0 ** -23, atol=1e-12 * scale)
            # this early field is smooth (the preset's initial spectrum peaks at |k| = 2π): the
            # product has no content beyond the DNS's 2/3 rule, so H is also the pointwise
            # −u·∇ω at the coarse points, to round-off
            assert np.abs(h_pointwise - h).max() < 1e-10 * scale
