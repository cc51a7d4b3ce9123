"""TEPC layers and the TEPC autoencoder: equivariance to every shift of the periodic grid
(integer shifts and sub-grid shifts by phase ramps), to round-off, in every mode."""
from __future__ import annotations

import math

import pytest
import torch

from closures.nn.attention import MultiHeadAttention, TransformerBlock, sinusoidal_positions
from closures.nn.tepc import TEPC, TEPCAutoencoder, align, restore, shift_profile

torch.set_num_threads(1)

N = 32
SHIFTS = [1, 5, -3, 0.37, 2.5, -6.81]


def profiles(batch=3, channels=1, n=N, seed=0):
    """Random band-limited profiles (all modes below Nyquist, with energy up to the top)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, channels, n, generator=g, dtype=torch.float64)
    return shift_profile(u, 0.0)                                  # drops the Nyquist mode


def test_shift_profile_is_the_exact_translation():
    y = torch.arange(N, dtype=torch.float64) * 2 * math.pi / N
    u = torch.cos(y - 1.0) + torch.cos(3 * y) + 0.5 * torch.sin(11 * y + 0.3)
    for s in SHIFTS:
        ys = y - s * 2 * math.pi / N
        ref = torch.cos(ys - 1.0) + torch.cos(3 * ys) + 0.5 * torch.sin(11 * ys + 0.3)
        assert torch.allclose(shift_profile(u, s), ref, atol=1e-13)
    a, phi = align(u[None])
    assert abs(float(torch.angle(torch.fft.rfft(a)[0, 1]))) < 1e-13
    assert torch.allclose(restore(a, phi)[0], u, atol=1e-13)


@pytest.mark.parametrize("phase", ["channel", "common"])
@pytest.mark.parametrize("n_out", [N, 8, 12])
def test_tepc_layer_is_equivariant_to_every_shift(n_out, phase):
    torch.manual_seed(0)
    net = torch.nn.Sequential(TEPC(1, 4, N, N, phase=phase),
                              TEPC(4, 3, N, n_out, phase=phase)).double()
    with torch.no_grad():
        for p in net.parameters():                 # a non-zero bias too
            p.add_(0.1 * torch.randn_like(p))
    u = profiles()
    out = net(u).detach()
    assert out.shape == (3, 3, n_out)
    for s in SHIFTS:
        shifted = net(shift_profile(u, s))
        expected = shift_profile(out, s * n_out / N)
        err = (torch.fft.rfft(shifted) - torch.fft.rfft(expected)).abs().detach()
        assert float(err.max()) < 1e-12 * float(out.abs().max()) * N
    # the upper modes carry energy, so their equivariance is tested too
    spec = torch.fft.rfft(out).abs()
    K = (min(N, n_out) + 1) // 2
    assert float(spec[..., K // 2:K].max()) > 1e-2 * float(spec.max())


@pytest.mark.parametrize("phase", ["channel", "common"])
@torch.no_grad()
def test_autoencoder_is_equivariant_to_every_shift(phase):
    torch.manual_seed(1)
    ae = TEPCAutoencoder(N, channels=4, phase=phase).double()
    u = profiles(batch=4)[:, 0]
    z, rec = ae.encode(u), ae(u)
    assert z.shape == (4, N // 4) and rec.shape == u.shape
    for s in SHIFTS:
        us = shift_profile(u, s)
        assert float((ae.encode(us) - shift_profile(z, s / 4)).abs().max()) < 1e-12
        assert float((ae(us) - shift_profile(rec, s)).abs().max()) < 1e-12
    # float32 to float32 round-off, any leading shape
    ae32 = ae.float()
    u32 = u.float().reshape(2, 2, N)
    err = ae32(shift_profile(u32, 2)) - shift_profile(ae32(u32), 2)
    assert float(err.abs().max()) < 1e-5


def test_gradients_are_finite_when_mode_one_vanishes():
    layer = TEPC(1, 2, 16).double()
    u = torch.ones(2, 1, 16, dtype=torch.float64, requires_grad=True)       # û_1 = 0
    layer(u).square().sum().backward()
    assert torch.isfinite(u.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_attention_with_extra_tokens():
    torch.manual_seed(0)
    att = MultiHeadAttention(8, 2)
    x = torch.randn(3, 5, 8)
    assert att(x).shape == (3, 5, 8)
    e = torch.randn(3, 1, 8)
    assert not torch.allclose(att(x, e), att(x))
    block = TransformerBlock(8, 2, 16, noise_token=True)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(block(x, g1), block(x, g2))
    assert not torch.allclose(block(x, g1), block(x, torch.Generator().manual_seed(4)))
    pe = sinusoidal_positions(4, 6, dtype=torch.float64)
    assert pe.shape == (4, 6) and float(pe[0, 1]) == 1.0 and float(pe[1, 0]) == math.sin(1.0)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="in_channels"):
        TEPC(0, 1, 16)
    with pytest.raises(ValueError, match="out_points"):
        TEPC(1, 1, 16, 2)
    with pytest.raises(ValueError, match=r"TEPC expects \(batch, 1, 16\)"):
        TEPC(1, 1, 16)(torch.zeros(2, 1, 8))
    with pytest.raises(ValueError, match="latent_points"):
        TEPCAutoencoder(16, latent_points=32)
    with pytest.raises(ValueError, match="encode expects profiles of 16 points"):
        TEPCAutoencoder(16).encode(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="heads"):
        MultiHeadAttention(8, 3)
    with pytest.raises(ValueError, match="phase"):
        TEPC(1, 1, 16, phase="own")
