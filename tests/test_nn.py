"""closures.nn: Fourier layers (modes kept, exact periodic shift equivariance), the FNO, time
embeddings, the conditional score network (shapes, equivariance, what its parameter count counts)
and the periodic autoencoder (shapes, shift equivariance, it learns). Tiny fields only."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from closures.nn import (ConditionalFNOScore, ConvAutoencoder, FNO2d, FourierLayer,
                         GaussianFourierEmbedding, SinusoidalEmbedding, SpectralConv2d,
                         count_parameters, time_embedding)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def kept_mask(h: int, w: int, modes: int) -> np.ndarray:
    """rfft2-layout mask of the modes SpectralConv2d keeps: |ky| < modes, 0 ≤ kx < modes."""
    ky = np.fft.fftfreq(h, 1.0 / h)[:, None]
    kx = np.arange(w // 2 + 1)[None, :]
    return (np.abs(ky) < modes) & (kx < modes)


# ------------------------------------------------------------------ Fourier layers
def test_spectral_conv_identity_weights_is_the_documented_low_pass():
    torch.manual_seed(0)
    c, h, w, m = 3, 12, 16, 3
    conv = SpectralConv2d(c, c, m)
    assert conv.weight.shape == (c, c, 2 * m - 1, m, 2)
    with torch.no_grad():
        conv.weight.zero_()
        for i in range(c):
            conv.weight[i, i, :, :, 0] = 1.0                      # identity per mode
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        y = conv(x)
    x_hat = np.fft.rfft2(x.double().numpy())
    expected = np.fft.irfft2(x_hat * kept_mask(h, w, m), s=(h, w))
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-5)
    # the low-pass is a projection, and it removes the rest: high modes of y vanish
    with torch.no_grad():
        np.testing.assert_allclose(conv(y).numpy(), y.numpy(), atol=1e-5)
    y_hat = np.fft.rfft2(y.double().numpy())
    assert np.abs(y_hat[..., ~kept_mask(h, w, m)]).max() < 1e-4
    assert np.abs(y_hat[..., kept_mask(h, w, m)]).max() > 1.0


def test_spectral_conv_mixes_channels_per_mode():
    """Weight (i → o) at mode (ky, kx) multiplies exactly that mode of channel i into channel o."""
    conv = SpectralConv2d(2, 1, 2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[1, 0, 1, 1, 1] = 1.0          # channel 1 → 0, ky = 1, kx = 1, weight i
        conv.weight[1, 0, 2, 1, 0] = 1.0          # ky = −1, kx = 1, weight 1
    n = 8
    yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    phase = 2 * np.pi * (xx + yy) / n               # mode (ky, kx) = (1, 1) and its conjugate
    x = torch.zeros(1, 2, n, n)
    x[0, 1] = torch.from_numpy(np.cos(phase)).float()
    x[0, 0] = torch.randn(n, n)                     # ignored: channel 0 has zero weights
    with torch.no_grad():
        y = conv(x)[0, 0].numpy()
    np.testing.assert_allclose(y, -np.sin(phase), atol=1e-5)   # i·e^{iθ} → real part −sin θ


def test_spectral_conv_rejects_fields_too_small_for_its_modes():
    conv = SpectralConv2d(1, 1, 5)
    with pytest.raises(ValueError, match="modes=5"):
        conv(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="in_ch"):
        SpectralConv2d(0, 1, 2)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        conv(torch.randn(1, 2, 16, 16))


def test_fno_shapes_and_exact_shift_equivariance():
    torch.manual_seed(1)
    net = FNO2d(in_ch=2, out_ch=3, width=8, modes=4, layers=3, proj_hidden=16)
    x = torch.randn(2, 2, 16, 12)                             # not square on purpose
    y = net(x)
    assert y.shape == (2, 3, 16, 12) and y.dtype == torch.float32
    for dy, dx in ((1, 0), (0, 5), (3, 7), (-4, 2)):
        torch.testing.assert_close(net(shift(x, dy, dx)), shift(y, dy, dx), atol=1e-5, rtol=0)
    # and a Fourier layer alone; the operator is not trivially shift-invariant
    layer = FourierLayer(4, 3)
    z = torch.randn(1, 4, 12, 12)
    torch.testing.assert_close(layer(shift(z, 2, -5)), shift(layer(z), 2, -5), atol=1e-5, rtol=0)
    assert (net(shift(x, 3, 7)) - y).abs().max() > 1e-2


@pytest.mark.parametrize("shape", [(8, 8), (10, 8), (8, 9)])
def test_fourier_layer_whole_grid_form_equals_the_two_branches(shape):
    """Where the kept box covers most of the grid, the layer runs as one per-mode operator
    W_k + S; values and gradients must be those of act(SpectralConv2d(x) + Conv1x1(x))."""
    torch.manual_seed(3)
    layer = FourierLayer(5, 4, out_ch=3)
    H, W = shape
    assert layer.whole_grid(H, W) and not layer.whole_grid(32, 32)
    x = torch.randn(2, 5, H, W, requires_grad=True)
    y = layer(x)
    ref = layer.act(layer.spectral(x) + layer.skip(x))
    torch.testing.assert_close(y, ref, atol=2e-6, rtol=0)
    g = torch.randn_like(y)
    params = [x, layer.spectral.weight, layer.skip.weight, layer.skip.bias]
    for a, b in zip(torch.autograd.grad((y * g).sum(), params),
                    torch.autograd.grad((ref * g).sum(), params)):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
    # without gradients the per-mode matrices are cached, and rebuilt when a weight changes
    with torch.no_grad():
        torch.testing.assert_close(layer(x), ref, atol=2e-6, rtol=0)
        layer.skip.weight.add_(0.5)
        layer.spectral.weight.mul_(-1.0)
        torch.testing.assert_close(layer(x), layer.act(layer.spectral(x) + layer.skip(x)),
                                   atol=2e-6, rtol=0)
    with pytest.raises(ValueError, match="modes=4"):
        layer(torch.randn(1, 5, 6, 8))


def test_fno_is_trainable_and_gradients_reach_the_spectral_weights():
    torch.manual_seed(2)
    net = FNO2d(1, 1, width=4, modes=2, layers=2, proj_hidden=8)
    loss = net(torch.randn(3, 1, 8, 8)).pow(2).mean()
    loss.backward()
    grads = [layer.spectral.weight.grad for layer in net.layers]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    # state_dict holds real tensors only (loadable with weights_only=True)
    assert all(not v.is_complex() for v in net.state_dict().values())


# ------------------------------------------------------------------ time embeddings
@pytest.mark.parametrize("kind", ["gaussian", "sinusoidal"])
def test_time_embeddings(kind):
    emb = time_embedding(kind, 16)
    t = torch.tensor([1e-5, 0.1, 0.5, 1.0])
    e = emb(t)
    assert e.shape == (4, 16) and e.dtype == torch.float32
    assert e.abs().max() <= 1.0 + 1e-6
    # sin² + cos² = 1 per frequency: nothing is lost
    torch.testing.assert_close(e[:, :8] ** 2 + e[:, 8:] ** 2, torch.ones(4, 8))
    assert torch.cdist(e, e)[~torch.eye(4, dtype=torch.bool)].min() > 0.1   # times told apart
    assert emb(0.5).shape == (1, 16)
    torch.testing.assert_close(emb(0.5), e[2:3])
    with pytest.raises(ValueError, match="even"):
        time_embedding(kind, 7)


def test_gaussian_embedding_is_reproducible_and_saved():
    a, b = GaussianFourierEmbedding(8, seed=3), GaussianFourierEmbedding(8, seed=3)
    t = torch.tensor([0.1, 0.3, 0.9])
    torch.testing.assert_close(a(t), b(t))
    assert "frequencies" in a.state_dict()
    assert not torch.equal(a.frequencies, GaussianFourierEmbedding(8, seed=4).frequencies)
    s = SinusoidalEmbedding(8, max_frequency=100.0)
    torch.testing.assert_close(s.frequencies, torch.tensor([1.0, 100 ** (1 / 3), 100 ** (2 / 3),
                                                            100.0]))


# ------------------------------------------------------------------ score network
def test_conditional_score_shapes_equivariance_and_dependence():
    torch.manual_seed(3)
    net = ConditionalFNOScore(channels=2, cond_channels=1, width=8, modes=3, layers=2,
                              time_dim=16, proj_hidden=16)
    x, c = torch.randn(3, 2, 12, 12), torch.randn(3, 1, 12, 12)
    t = torch.tensor([0.05, 0.3, 1.0])
    s = net(x, t, c)
    assert s.shape == x.shape and s.dtype == torch.float32 and torch.isfinite(s).all()
    torch.testing.assert_close(net(shift(x, 2, 5), t, shift(c, 2, 5)), shift(s, 2, 5),
                               atol=1e-4, rtol=1e-5)
    # the output depends on the condition and on t (not only through the 1/std scaling)
    assert (net(x, t, torch.randn(3, 1, 12, 12)) - s).abs().max() > 1e-3
    raw = ConditionalFNOScore(channels=2, cond_channels=1, width=8, modes=3, layers=2,
                              time_dim=16, proj_hidden=16, sigma=None)
    raw.load_state_dict(net.state_dict())
    a, b = raw(x, torch.full((3,), 0.3), c), raw(x, torch.full((3,), 0.6), c)
    assert (a - b).abs().max() > 1e-4
    # with sigma, the output is the raw output over std(t)
    from closures.losses import ve_marginal_std
    torch.testing.assert_close(net(x, t, c), raw(x, t, c) / ve_marginal_std(t)[:, None, None, None])
    # a scalar t is broadcast over the batch
    torch.testing.assert_close(net(x, 0.3, c), net(x, torch.full((3,), 0.3), c))
    with pytest.raises(ValueError, match="cond"):
        net(x, t, None)
    with pytest.raises(ValueError, match="cond of shape"):
        net(x, t, torch.randn(3, 1, 8, 8))


def test_unconditional_score():
    net = ConditionalFNOScore(channels=1, cond_channels=0, width=4, modes=2, layers=1,
                              time_dim=8, proj_hidden=8)
    assert net(torch.randn(2, 1, 8, 8), 0.5).shape == (2, 1, 8, 8)


def test_parameter_count_is_what_training_updates():
    """count_parameters counts the scalars a loss has gradients for (all of them reach the
    output), skips frozen ones unless asked, and grows with the kept Fourier modes by exactly
    the complex per-mode weights W_k (width × width, two branches, every layer): the kept box
    |k_y| < m, 0 ≤ k_x < m holds (2m − 1)·m modes."""
    width, layers = 6, 2
    nets = {m: ConditionalFNOScore(1, 1, width=width, modes=m, layers=layers, time_dim=8,
                                   proj_hidden=8) for m in (2, 3)}
    net = nets[2]
    x, c = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    net(x, torch.tensor([0.2, 0.7]), c).square().sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    assert count_parameters(net) == sum(g.numel() for g in grads)
    box = {m: (2 * m - 1) * m for m in (2, 3)}
    assert count_parameters(nets[3]) - count_parameters(net) == \
        2 * layers * width * width * 2 * (box[3] - box[2])
    total = count_parameters(net)
    for p in net.branch_c.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in net.branch_c.parameters())
    assert count_parameters(net) == total - frozen
    assert count_parameters(net, trainable_only=False) == total


# ------------------------------------------------------------------ autoencoder
def test_autoencoder_shapes():
    ae = ConvAutoencoder(in_ch=1, latent_channels=2, channels=(4, 6, 8))
    for h, w in ((16, 16), (8, 12), (64, 64)):
        x = torch.randn(2, 1, h, w)
        z = ae.encode(x)
        assert z.shape == (2, 2, h // 4, w // 4)
        assert ae.decode(z).shape == x.shape and ae(x).shape == x.shape
    with pytest.raises(ValueError, match="divisible by 4"):
        ae.encode(torch.randn(1, 1, 10, 12))
    with pytest.raises(ValueError, match="decode expects"):
        ae.decode(torch.randn(1, 1, 4, 4))


def test_autoencoder_is_periodic_and_shift_equivariant_by_four_cells():
    torch.manual_seed(4)
    ae = ConvAutoencoder(in_ch=1, latent_channels=1, channels=(4, 4, 4))
    x = torch.randn(2, 1, 16, 16)
    z, y = ae.encode(x), ae(x)
    torch.testing.assert_close(ae.encode(shift(x, 4, -8)), shift(z, 1, -2), atol=1e-5, rtol=0)
    torch.testing.assert_close(ae(shift(x, 4, -8)), shift(y, 4, -8), atol=1e-5, rtol=0)
    # circular padding: a perturbation at one edge reaches the opposite edge of the output
    x2 = x.clone()
    x2[..., 0, 0] += 10.0
    d = (ae(x2) - y).abs()[0, 0]
    assert d[-1, -1] > 1e-4 and d[-1, 0] > 1e-4


def test_channels_last_autoencoder_matches_and_pads_periodically():
    """Channels-last fields are padded by periodic_pad (not F.pad); the padding, and a whole
    autoencoder on channels-last weights and fields, must give what the default layout gives."""
    import torch.nn.functional as F
    from closures.nn.autoencoder import periodic_pad
    torch.manual_seed(4)
    x = torch.randn(2, 3, 8, 12).contiguous(memory_format=torch.channels_last)
    for p in (1, 2):
        got = periodic_pad(x, p)
        assert got.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(got, F.pad(x.contiguous(), (p, p, p, p), mode="circular"))
    with pytest.raises(ValueError, match="padding 9"):
        periodic_pad(x, 9)
    ae = ConvAutoencoder(in_ch=1, latent_channels=2, channels=(4, 6, 8))
    f = torch.randn(3, 1, 16, 16)
    ref = ae(f)
    ae.to(memory_format=torch.channels_last)
    out = ae(f.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def smooth_fields(count: int, n: int, seed: int) -> torch.Tensor:
    """Random periodic fields with modes |k| ≤ 2, unit variance on average."""
    g = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    out = np.zeros((count, 1, n, n))
    for kx in range(3):
        for ky in range(-2, 3):
            if (kx == 0 and ky <= 0) or kx * kx + ky * ky > 4:
                continue
            ph = 2 * np.pi * (kx * xx + ky * yy) / n
            a, b = g.standard_normal((2, count, 1, 1, 1))
            out += a * np.cos(ph) + b * np.sin(ph)
    out /= out.std()
    return torch.from_numpy(out).float()


def test_autoencoder_learns_smooth_fields():
    """A few hundred Adam steps cut the reconstruction MSE of smooth 16² fields tenfold."""
    torch.manual_seed(5)
    x = smooth_fields(8, 16, seed=0)
    ae = ConvAutoencoder(in_ch=1, latent_channels=1, channels=(8, 8, 8))
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    with torch.no_grad():
        mse0 = torch.mean((ae(x) - x) ** 2).item()
    t0 = time.perf_counter()
    for _ in range(200):
        opt.zero_grad()
        loss = torch.mean((ae(x) - x) ** 2)
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - t0
    with torch.no_grad():
        mse = torch.mean((ae(x) - x) ** 2).item()
    print(f"\nautoencoder: MSE {mse0:.3g} → {mse:.3g} in 200 steps, {elapsed:.2f} s")
    assert mse < mse0 / 10          # measured: ×1000 (about 3–6 s on two shared cores)
