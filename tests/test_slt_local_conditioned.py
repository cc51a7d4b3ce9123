"""The point-token emulator conditioned on PDE parameters (ConditionedLocalSLT): the identity
start from a trained LocalSLT, shift equivariance with the conditioning active, an AR(1) map whose
slope is the parameter learned and interpolated, training on profiles of two lengths, the files
and the command line. Tiny sizes: seconds on one CPU thread."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from closures.slt import ensemble_loss, load_emulator, load_slt, train_conditioned_slt
from closures.slt.local import LocalSLT
from closures.slt.local_conditioned import ConditionedLocalSLT, ConditionedLocalTransformer
from closures.slt.train_conditioned import ConditionedWindows
from closures.slt.train import Windows
from hybrid.cli import main

torch.set_num_threads(1)

N, L = 16, 3
NAMES = ["beta", "mu"]
PSTATS = {"beta": {"centre": 8.0, "scale": 3.0}, "mu": {"centre": 0.004, "scale": 0.002}}


def tiny_local(seed=0):
    torch.manual_seed(seed)
    return LocalSLT(N, window=L, width=8, heads=2, layers=2, hidden=16, span=5,
                    noise_channels=2, stats={"mean": 0.1, "std": 0.5}).double().eval()


@torch.no_grad()
def test_starts_as_its_local_model_then_depends_on_the_parameters_and_stays_equivariant():
    base = tiny_local()
    model = ConditionedLocalSLT.from_local(base, NAMES, parameter_stats=PSTATS).eval()
    u = torch.randn(3, L, N, dtype=torch.float64)
    noise = torch.randn(2 * 3, N, 2, dtype=torch.float64)
    ref = base.step(u, None, 2, noise=noise)
    for p in ({"beta": 2.0, "mu": 0.002}, {"beta": 30.0, "mu": 0.01}):
        assert torch.equal(model.step(u, None, 2, noise=noise, params=p), ref)
    g = torch.Generator().manual_seed(3)
    for w in model.conditioning_parameters():                 # zero at initialisation
        w.add_(0.3 * torch.randn(w.shape, generator=g, dtype=w.dtype))
    lo = model.step(u, None, 2, noise=noise, params={"beta": 5.0, "mu": 0.004})
    hi = model.step(u, None, 2, noise=noise, params={"beta": 11.0, "mu": 0.004})
    assert float((lo - hi).abs().min()) > 1e-6                # every value moves with β
    # one row of parameters per window: each window gets its own
    rows = model.step(u, None, 2, noise=noise, params=[[5.0, 0.004], [11.0, 0.004],
                                                       [5.0, 0.004]])
    assert torch.allclose(rows[:, 0], lo[:, 0], atol=1e-12, rtol=0)
    assert torch.allclose(rows[:, 1], hi[:, 1], atol=1e-12, rtol=0)
    # shifts commute with the step; two copies of a profile give two copies of the output
    for s in (1, 7):
        shifted = model.step(u.roll(s, -1), None, 2, noise=noise.roll(s, 1),
                             params={"beta": 5.0, "mu": 0.004})
        assert float((shifted - lo.roll(s, -1)).abs().max()) < 1e-12
    twice = model.step(u.repeat(1, 1, 2), None, 2, noise=noise.repeat(1, 2, 1),
                       params={"beta": 5.0, "mu": 0.004})
    assert float((twice - lo.repeat(1, 1, 2)).abs().max()) < 1e-12
    assert float((lo.mean(-1) - u[:, -1].mean(-1)).abs().max()) < 1e-12      # zero-mean steps
    # frozen: the identity again, whatever the parameters
    model.freeze_conditioning(True)
    assert torch.equal(model.step(u, None, 2, noise=noise, params={"beta": 11.0, "mu": 0.01}),
                       ref)
    assert not any(w.requires_grad for w in model.conditioning_parameters())
    with pytest.raises(ValueError, match="missing parameter"):
        model.step(u, None, 2, noise=noise, params={"beta": 5.0})
    with pytest.raises(ValueError, match="from_local takes an unconditioned LocalSLT"):
        ConditionedLocalSLT.from_local(model, NAMES)
    with pytest.raises(ValueError, match="adaptive LayerNorms"):
        ConditionedLocalSLT(N, parameters=NAMES, conditioning="concat")


def test_learns_and_interpolates_an_ar1_map_whose_slope_is_the_parameter():
    """u'(y) = p u(y) + σ ε(y), ε white in y, trained at p = 0.2, 0.5, 0.8 (one p per sample):
    the learned mean slope is p within 0.08, also at p = 0.35 and 0.65 never seen, and the spread
    σ within 10 %."""
    sig, seen = 0.3, torch.tensor([0.2, 0.5, 0.8])
    torch.manual_seed(0)
    tf = ConditionedLocalTransformer(1, window=1, width=16, heads=2, layers=1, hidden=32,
                                     span=3, noise_channels=2, conserve_mean=False)
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(tf.parameters(), lr=3e-3)
    for it in range(500):
        if it == 350:
            opt.param_groups[0]["lr"] = 1e-3
        p = seen[torch.randint(0, 3, (64,), generator=g)]
        x = torch.randn(64, 1, N, generator=g) * 0.6
        y = p[:, None] * x[:, -1] + sig * torch.randn(64, N, generator=g)
        loss = ensemble_loss(tf(x, ((p - 0.5) / 0.3)[:, None], g, members=4), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.linspace(-1.0, 1.0, N)[torch.randperm(N, generator=g)].reshape(1, 1, N)
    xc = x[0, 0] - x.mean()
    for p in (0.2, 0.35, 0.5, 0.65, 0.8):
        with torch.no_grad():
            d = tf(x, torch.tensor([[(p - 0.5) / 0.3]]), torch.Generator().manual_seed(5),
                   members=2000)[:, 0]
        mean = d.mean(0)
        slope = float((xc * (mean - mean.mean())).sum() / (xc ** 2).sum())
        assert abs(slope - p) < 0.08, (p, slope)
        assert abs(float(d.std(0).mean()) / sig - 1) < 0.1, (p, d.std(0).mean())


def jets(T, n, beta, seed):
    """Drifting cosine jets whose speed is the parameter, on n points of spacing 2π/N."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) * 2 * np.pi / N
    t = np.arange(T)[:, None]
    return np.cos(2 * (y - 0.01 * beta * t)) + 0.1 * rng.standard_normal((T, n))


def test_windows_of_two_lengths_are_batched_by_length():
    short, long_ = np.random.default_rng(0).standard_normal((2, 1, 20, 2 * N))
    data = ConditionedWindows([(Windows(short[:, :, :N], L), [1.0]),
                               (Windows(long_, L), [2.0])])
    idx = torch.tensor([0, 20, 3, 16, 25])             # 17 windows per run: 0-16 the short
    groups = data.batch_groups(idx)
    assert [tuple(x.shape) for x, _, _ in groups] == [(3, L, N), (2, L, 2 * N)]
    assert groups[0][2][:, 0].tolist() == [1.0, 1.0, 1.0]
    assert groups[1][2][:, 0].tolist() == [2.0, 2.0]
    assert torch.equal(groups[1][0][0], torch.as_tensor(long_[0, 3:3 + L], dtype=torch.float32))
    with pytest.raises(ValueError, match="different lengths: use batch_groups"):
        data.batch(idx)


def test_trains_on_two_lengths_saves_loads_and_emulates(tmp_path):
    runs = [(jets(80, N, 2.0, 0), {"beta": 2.0}), (jets(80, 2 * N, 6.0, 1), {"beta": 6.0})]
    small = dict(window=L, width=8, heads=2, layers=1, hidden=16, span=3, noise_channels=2,
                 batch=32, val_fraction=0.25, threads=1, progress=False)
    m = train_conditioned_slt(runs, tmp_path / "m", "beta", kind="local", epochs=2, **small)
    assert math.isfinite(m["final_val"]["total"])
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["version"] == 4 and card["config"]["kind"] == "local"
    assert card["config"]["parameters"] == ["beta"]
    assert [d["points"] for d in card["data"]] == [N, 2 * N]
    assert [r["parameters"] for r in m["one_step"]] == [{"beta": 2.0}, {"beta": 6.0}]
    model = load_slt(tmp_path / "m")
    assert type(model) is ConditionedLocalSLT
    em = load_emulator(tmp_path / "m", threads=1, params={"beta": 4.0})
    out = em.rollout(jets(L, 24, 4.0, 2), 5, members=3, seed=0)
    assert out.shape == (3, 5, 24) and np.isfinite(out).all()
    assert np.array_equal(out, em.rollout(jets(L, 24, 4.0, 2), 5, members=3, seed=0))
    # fine-tuned from an unconditioned LocalSLT: it starts as that model
    base = tiny_local().float()
    from closures.slt import save_slt
    save_slt(base, tmp_path / "base")
    ft = train_conditioned_slt(runs, tmp_path / "ft", "beta", tmp_path / "base", kind="local",
                               epochs=1, batch=32, val_fraction=0.25, threads=1,
                               progress=False)
    assert json.loads((tmp_path / "ft.json").read_text())["training"]["pretrained"]["kind"] \
        == "LocalSLT"
    assert ft["epochs"] == 1
    for kwargs, words in [
            (dict(kind="local", channels=4), "channels: an option of the TEPC autoencoder"),
            (dict(span=3), "span, noise_channels and dealias are options of the point-token"),
            (dict(kind="latent"), "different lengths"),
            (dict(kind="other"), "kind must be one of")]:
        with pytest.raises(ValueError, match=words):
            train_conditioned_slt(runs, tmp_path / "bad", "beta", epochs=1, progress=False,
                                  **kwargs)
    with pytest.raises(ValueError, match="is a LocalSLT; train it with kind='local'"):
        train_conditioned_slt(runs[:1], tmp_path / "bad", "beta", tmp_path / "base",
                              epochs=1, progress=False)
    assert not (tmp_path / "bad.json").exists()


def test_cli_trains_the_conditioned_point_model_and_emulates_it(runs, tmp_path, capsys):
    b2, b6 = runs
    out = tmp_path / "cl"
    base = ["train", "slt-conditioned", "--data", str(b2), str(b6), "--params", "beta",
            "--kind", "local", "--window", "3", "--width", "8", "--heads", "2", "--layers", "1",
            "--hidden", "16", "--val-fraction", "0.25", "--threads", "1", "--no-progress",
            "--epochs", "1", "--batch", "64"]
    assert main([*base, "--span", "3", "--noise-channels", "2", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["version"] == 4 and card["config"]["span"] == 3
    assert card["command"].startswith("hybrid train slt-conditioned")
    assert main(["emulate", "slt", "--model", str(out), "--init", str(b2), "--members", "2",
                 "--t-end", "25", "--threads", "1", "--param", "beta=4",
                 "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "emulation.json").read_text())["parameters"] == \
        {"beta": 4.0}
    capsys.readouterr()
    for extra, words in [(["--channels", "4"], "--channels is about the TEPC autoencoder"),
                         (["--kind", "latent", "--span", "3"],
                          "--span is an option of the point-token model"),
                         (["--pretrained", str(out), "--kind", "latent"],
                          "--kind latent: the pretrained model .* is a local model"),
                         (["--pretrained", str(out), "--span", "5"],
                          "--span: the architecture comes from --pretrained")]:
        assert main([*base, *extra, "--out", str(tmp_path / "bad")]) == 2, extra
        assert words.split(".*")[0] in capsys.readouterr().err, extra
    assert not (tmp_path / "bad.json").exists()
