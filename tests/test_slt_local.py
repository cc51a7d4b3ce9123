"""The point-token emulator (LocalSLT): shift equivariance, the same model on a profile twice as
long, a noise field learned as a known AR(1) map, training files, the emulator and the command
line on profiles of another length. Tiny sizes: seconds on one CPU thread."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from closures.slt import ensemble_loss, load_emulator, load_slt, train_slt
from closures.slt.local import LocalSLT, LocalTransformer

torch.set_num_threads(1)

N, L = 16, 3


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(window=L, width=8, heads=2, layers=2, hidden=16, span=5, noise_channels=2)
    return LocalSLT(N, **{**args, **kw}, stats={"mean": 0.1, "std": 0.5}).double().eval()


@torch.no_grad()
def test_step_is_equivariant_to_shifts_and_runs_on_a_profile_twice_as_long():
    model = tiny()
    u = torch.randn(3, L, N, dtype=torch.float64)
    noise = torch.randn(2 * 3, N, 2, dtype=torch.float64)
    out = model.step(u, None, 2, noise=noise)
    assert out.shape == (2, 3, N)
    for s in (1, 5):
        shifted = model.step(u.roll(s, -1), None, 2, noise=noise.roll(s, 1))
        assert float((shifted - out.roll(s, -1)).abs().max()) < 1e-12
    # two copies of the profile (and of its noise field): every point sees the neighbourhood
    # it had, so the output is two copies of the output
    twice = model.step(u.repeat(1, 1, 2), None, 2, noise=noise.repeat(1, 2, 1))
    assert twice.shape == (2, 3, 2 * N)
    assert float((twice - out.repeat(1, 1, 2)).abs().max()) < 1e-12
    # the increments have zero mean: the profile's mean stays, to round-off
    assert float((out.mean(-1) - u[:, -1].mean(-1)).abs().max()) < 1e-12
    free = tiny(conserve_mean=False).step(u, None, 2, noise=noise)
    assert float((free.mean(-1) - u[:, -1].mean(-1)).abs().min()) > 1e-6
    # dealias: the increments hold the modes 1 … n/3 only
    cut = tiny(dealias=True).step(u, None, 2, noise=noise) - u[:, -1]
    spec = torch.fft.rfft(cut).abs()
    assert float(spec[..., N // 3 + 1:].max()) < 1e-12 and float(spec[..., 0].max()) < 1e-12
    assert float(spec[..., 1:N // 3 + 1].min()) > 1e-6
    # the noise is a field: a draw changes the output, a seed reproduces it
    a = model.step(u, torch.Generator().manual_seed(0), 2)
    assert torch.equal(a, model.step(u, torch.Generator().manual_seed(0), 2))
    assert float((a - model.step(u, torch.Generator().manual_seed(1), 2)).abs().min()) > 0
    with pytest.raises(ValueError, match=r"noise must have shape \(6, 16, 2\)"):
        model.step(u, None, 2, noise=torch.randn(6, 1, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="span must be an odd number"):
        LocalSLT(N, span=4)


def test_learns_an_ar1_map_with_a_noise_field_independent_between_distant_points():
    """u'(y) = a u(y) + σ ε(y), ε white in y: the learned conditional mean has slope ≈ a and the
    spread ≈ σ; member deviations at points farther apart than the receptive field (2 blocks ×
    2 points each side) are uncorrelated, as they depend on disjoint parts of the noise."""
    a, sig = 0.8, 0.5
    torch.manual_seed(0)
    tf = LocalTransformer(window=1, width=16, heads=2, layers=2, hidden=32, span=5,
                          noise_channels=2, conserve_mean=False)     # the map changes the mean
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(tf.parameters(), lr=3e-3)
    for it in range(400):
        if it == 300:
            opt.param_groups[0]["lr"] = 1e-3
        x = torch.randn(64, 1, N, generator=g) * (sig / math.sqrt(1 - a * a))
        y = a * x[:, -1] + sig * torch.randn(64, N, generator=g)
        loss = ensemble_loss(tf(x, g, members=4), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x = torch.linspace(-1.5, 1.5, N)[torch.randperm(N, generator=g)].reshape(1, 1, N)
        d = tf(x, torch.Generator().manual_seed(5), members=4000)[:, 0]      # (4000, N)
    mean, sd = d.mean(0), d.std(0)
    xc = x[0, 0] - x.mean()
    slope = float((xc * (mean - mean.mean())).sum() / (xc**2).sum())
    assert abs(slope - a) < 0.08, slope
    assert abs(float(sd.mean()) / sig - 1) < 0.1, sd
    dev = d - mean
    corr = torch.corrcoef(dev.T)
    far = [float(corr[i, (i + 8) % N]) for i in range(N)]        # 8 points apart: disjoint
    assert max(abs(c) for c in far) < 0.07, far                  # 4000 draws: σ(r) ≈ 0.016


def jets(T=120, n=N, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) * 2 * np.pi / N                # the spacing of N points on 2π
    t = np.arange(T)[:, None]
    return np.cos(2 * (y - 0.03 * t)) + 0.1 * rng.standard_normal((T, n))


def test_train_save_load_and_emulate_on_another_length(tmp_path):
    sizes = dict(window=L, width=8, heads=2, layers=2, hidden=16, span=5, noise_channels=2)
    m = train_slt(jets(), tmp_path / "m", kind="local", epochs=2, batch=16, threads=1,
                  progress=False, **sizes)
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["version"] == 3 and card["config"]["kind"] == "local"
    assert card["training"]["weights"] == {"es_u": 1.0, "es_latent": 0.0, "rec": 0.0,
                                           "spectral": 1.0}
    assert m["one_step"]["rec_rmse"] == 0.0
    model = load_slt(tmp_path / "m")
    assert isinstance(model, LocalSLT) and model.config["span"] == 5
    em = load_emulator(tmp_path / "m", threads=1)
    long = jets(n=2 * N)[-L:]
    a = em.rollout(long, steps=4, members=3, seed=2)
    assert a.shape == (3, 4, 2 * N) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, em.rollout(long, steps=4, members=3, seed=2))
    with pytest.raises(ValueError, match="any number of points"):
        em.rollout(long[:2], steps=1)
    with pytest.raises(ValueError, match="dealias are options of the point-token model"):
        train_slt(jets(), tmp_path / "x", span=5, epochs=1, progress=False)
    with pytest.raises(ValueError, match="kind must be one of latent, local"):
        train_slt(jets(), tmp_path / "x", kind="points", epochs=1, progress=False)


def zonal_run(path, n, L_box, kf, steps=12):
    """A zonal-mean record of a tiny beta-plane run on n points of a box of side L_box."""
    from solvers import BetaPlane
    from solvers.io import TrajectoryWriter
    s = BetaPlane(n=n, L=L_box, members=1, seed=0, dt=0.5, epsilon=1e-3, kf=kf, kf_width=1.0)
    with TrajectoryWriter(path, s, record="zonal-mean") as w:
        for _ in range(steps):
            s.step(2)
            w.write()
    return path


def test_cli_trains_a_local_model_and_emulates_a_longer_box(tmp_path, capsys):
    from hybrid.cli import main
    from hybrid.jets import read_profiles
    small = zonal_run(tmp_path / "small.nc", N, 2 * np.pi, kf=4)
    long = zonal_run(tmp_path / "long.nc", 2 * N, 4 * np.pi, kf=8)     # box 2L, same Δy
    coarse = zonal_run(tmp_path / "coarse.nc", N, 4 * np.pi, kf=4)
    flags = ["--kind", "local", "--window", str(L), "--width", "8", "--heads", "2", "--layers",
             "1", "--hidden", "16", "--span", "5", "--epochs", "1", "--batch", "8",
             "--val-fraction", "0.25", "--threads", "1", "--no-progress"]
    out = tmp_path / "m"
    assert main(["train", "slt", "--data", str(small), "--out", str(out), *flags]) == 0, \
        capsys.readouterr().err
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["config"]["layers"] == 1 and card["config"]["noise_channels"] == 4
    assert card["data"]["spacing"] == pytest.approx(2 * np.pi / N)
    capsys.readouterr()
    for extra, flag in [(["--channels", "4"], "--channels"), (["--reencode"], "--reencode"),
                        (["--span", "4"], "--span")]:
        assert main(["train", "slt", "--data", str(small), "--out", str(tmp_path / "bad"),
                     *flags, *extra]) == 2
        assert flag in capsys.readouterr().err
    assert main(["train", "slt", "--data", str(small), "--out", str(tmp_path / "bad"),
                 "--span", "5"]) == 2
    assert "--span is an option of the point-token model: give --kind local" \
        in capsys.readouterr().err
    # fine-tuning it with 2-step unrolled targets keeps its architecture; dealias cannot be added
    tuned = tmp_path / "ft"
    assert main(["train", "slt", "--data", str(small), "--out", str(tuned), "--kind", "local",
                 "--init-from", str(out), "--unroll", "2", "--epochs", "1", "--batch", "8",
                 "--val-fraction", "0.25", "--threads", "1", "--no-progress"]) == 0, \
        capsys.readouterr().err
    ft = json.loads(tuned.with_suffix(".json").read_text())
    assert ft["config"] == card["config"] and ft["training"]["init_from"] == str(out)
    assert ft["training"]["unroll"] == 2
    capsys.readouterr()
    assert main(["train", "slt", "--data", str(small), "--out", str(tmp_path / "bad"), "--kind",
                 "local", "--init-from", str(out), "--dealias"]) == 2
    err = capsys.readouterr().err
    assert "--init-from" in err and "was trained without dealias" in err
    t_end = read_profiles(long)["t"][-1] + 3
    emu = tmp_path / "emu"
    assert main(["emulate", "slt", "--model", str(out), "--init", str(long), "--members", "2",
                 "--t-end", str(t_end), "--out", str(emu), "--threads", "1"]) == 0, \
        capsys.readouterr().err
    U = read_profiles(emu)["U"]
    assert U.shape == (2, 4, 2 * N) and np.isfinite(U).all()
    assert read_profiles(emu)["L"] == pytest.approx(4 * np.pi)
    capsys.readouterr()
    assert main(["emulate", "slt", "--model", str(out), "--init", str(coarse), "--members", "2",
                 "--t-end", str(t_end), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "--init" in err and "grid spacing L/n = 0.785398" in err
    assert not list(tmp_path.glob("bad*"))
