"""The Stochastic Latent Transformer: noise token, seeded rollouts, shift equivariance, the energy
score against closed forms, learning a known AR(1) map, training files and resume, model files and
argument errors. Tiny sizes: seconds on one CPU thread."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from closures.losses import crps_ensemble, energy_score
from closures.nn.tepc import shift_profile
from closures.slt import (SLT, Emulator, ModelFileError, StochasticTransformer, ensemble_loss,
                          load_emulator, load_slt, save_slt, train_slt)

torch.set_num_threads(1)

N, L = 16, 3


def tiny_slt(seed=0):
    torch.manual_seed(seed)
    return SLT(N, window=L, width=8, heads=2, layers=2, hidden=16,
               stats={"mean": 0.1, "std": 0.5}).eval()


def jets(T=160, seed=0):
    """Drifting, noisy jets U(y, t) on N points."""
    rng = np.random.default_rng(seed)
    y = np.arange(N) * 2 * np.pi / N
    t = np.arange(T)[:, None]
    return (np.cos(2 * (y - 0.03 * t)) + 0.3 * np.cos(y + 0.5) + 0.1 * rng.standard_normal((T, N)))


# --- the stochastic transformer ---------------------------------------------------------------

@torch.no_grad()
def test_noise_token_changes_the_output_and_seeds_reproduce_it():
    model = tiny_slt()
    z = torch.randn(4, L, N // 4)
    a = model.step(z, torch.Generator().manual_seed(0), members=3)
    b = model.step(z, torch.Generator().manual_seed(0), members=3)
    c = model.step(z, torch.Generator().manual_seed(1), members=3)
    assert a.shape == (3, 4, N // 4)
    assert torch.equal(a, b)
    assert float((a - c).abs().min()) > 0                    # every member and value differs
    assert float((a[0] - a[1]).abs().min()) > 0              # members differ from each other
    # the noise enters through the first block only: a fixed token gives a fixed output
    tf = model.transformer
    noise = torch.zeros(4, 1, tf.width)
    assert torch.equal(tf(z, noise=noise), tf(z, noise=noise.clone()))
    assert not torch.allclose(tf(z, noise=noise), tf(z, noise=noise + 1))


@torch.no_grad()
def test_the_step_is_equivariant_to_shifts_of_the_window():
    model = tiny_slt().double()
    u = torch.as_tensor(jets(T=L), dtype=torch.float64)[None]
    z = model.encode(model.normalise(u))
    for s in (1, 4, 2.5):
        zs = model.encode(model.normalise(shift_profile(u, s)))
        a = model.step(zs, torch.Generator().manual_seed(2), members=2)
        b = shift_profile(model.step(z, torch.Generator().manual_seed(2), members=2), s / 4)
        assert float((a - b).abs().max()) < 1e-12


def test_a_stochastic_head_learns_an_ar1_map():
    """x' = a x + σ ε: the learned conditional mean has slope ≈ a, the spread ≈ σ."""
    a, sig = 0.8, 0.5
    torch.manual_seed(0)
    tf = StochasticTransformer(1, window=1, width=16, heads=4, layers=1, hidden=32, align=False)
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(tf.parameters(), lr=3e-3)
    for it in range(700):
        if it == 500:
            opt.param_groups[0]["lr"] = 1e-3
        x = torch.randn(256, 1, 1, generator=g) * (sig / math.sqrt(1 - a * a))
        y = a * x[:, -1] + sig * torch.randn(256, 1, generator=g)
        loss = ensemble_loss(tf(x, g, members=4), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        xs = torch.linspace(-1.5, 1.5, 13)
        d = tf(xs.reshape(-1, 1, 1), torch.Generator().manual_seed(5), members=4000)[..., 0]
    mean, sd = d.mean(0), d.std(0)
    xc = xs - xs.mean()
    slope = float((xc * (mean - mean.mean())).sum() / (xc**2).sum())
    assert abs(slope - a) < 0.05, slope                       # measured 0.79–0.81 (4 seeds)
    assert abs(float(mean.mean())) < 0.06                      # intercept 0
    assert abs(float(sd.mean()) / sig - 1) < 0.06, sd          # measured 0.97–1.01
    assert float((sd / sig - 1).abs().max()) < 0.12, sd        # at every x


# --- the energy score against closed forms ----------------------------------------------------

def test_energy_score_of_a_gaussian_matches_its_closed_form():
    """X ~ N(μ, σ² I_D): E‖X − X'‖ = √2 σ c_D and, at y = μ, E‖X − y‖ = σ c_D, with
    c_D = √2 Γ((D+1)/2)/Γ(D/2) the mean of a χ_D variable; so ES = σ c_D (1 − 1/√2). In one
    dimension CRPS(N(μ, σ²), y) = σ (z(2Φ(z) − 1) + 2φ(z) − 1/√π), z = (y − μ)/σ."""
    g = torch.Generator().manual_seed(0)
    D, m, B, sig = 8, 300, 200, 0.7
    mu = torch.randn(B, D, generator=g, dtype=torch.float64)
    X = mu + sig * torch.randn(m, B, D, generator=g, dtype=torch.float64)
    es = energy_score(X, mu, reduction="none")
    c_D = math.sqrt(2) * math.exp(math.lgamma((D + 1) / 2) - math.lgamma(D / 2))
    exact = sig * c_D * (1 - 1 / math.sqrt(2))
    assert abs(float(es.mean()) - exact) < 4 * float(es.std()) / math.sqrt(B)
    assert abs(float(es.mean()) / exact - 1) < 0.02
    assert math.isclose(float(ensemble_loss(X, mu)), float(es.mean()) / math.sqrt(D),
                        rel_tol=1e-12)
    # one dimension, targets away from the mean
    y = torch.linspace(-2, 2, 9, dtype=torch.float64)
    X1 = sig * torch.randn(20000, 9, generator=g, dtype=torch.float64)
    z = y / sig
    Phi = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    phi = torch.exp(-z**2 / 2) / math.sqrt(2 * math.pi)
    exact1 = sig * (z * (2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi))
    got = crps_ensemble(X1, y, reduction="none")
    assert torch.allclose(got, exact1, rtol=0.03, atol=0.005)


# --- rollouts ---------------------------------------------------------------------------------

@torch.no_grad()
def test_rollouts_are_seeded_batched_and_equivariant():
    em = Emulator(tiny_slt(), threads=1)
    h = jets(T=L)
    a = em.rollout(h, steps=6, members=5, seed=3)
    assert a.shape == (5, 6, N) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, em.rollout(h, steps=6, members=5, seed=3))
    assert not np.array_equal(a, em.rollout(h, steps=6, members=5, seed=4))
    assert np.abs(a[0] - a[1]).min() > 0
    chunked = em.rollout(h, steps=6, members=5, seed=3, chunk=7)
    np.testing.assert_allclose(chunked, a, rtol=0, atol=1e-5)
    # member batches: the same seed and batch size reproduce; the first batch is the same draw
    b = em.rollout(h, steps=6, members=5, seed=3, batch=2)
    assert np.array_equal(b, em.rollout(h, steps=6, members=5, seed=3, batch=2))
    r = em.rollout(h, steps=6, members=5, seed=3, reencode=True)
    np.testing.assert_allclose(r[:, 0], a[:, 0], rtol=0, atol=1e-6)   # the first draw alike
    assert not np.allclose(r[:, 1:], a[:, 1:])
    assert np.array_equal(r, em.rollout(h, steps=6, members=5, seed=3, reencode=True))
    # shifting the history shifts every member (same noise), to float32 round-off
    hs = shift_profile(torch.as_tensor(h), 3.0).numpy()
    s = em.rollout(hs, steps=3, members=2, seed=1)
    ref = shift_profile(torch.as_tensor(em.rollout(h, steps=3, members=2, seed=1)), 3.0).numpy()
    np.testing.assert_allclose(s, ref, rtol=0, atol=2e-4 * np.abs(ref).max())


@torch.no_grad()
def test_online_settings_of_the_emulator():
    """ρ = 0 and g = 1 are the trained model's draws (a manual loop over ``SLT.step`` with the
    generator); with noise memory ρ the tokens fed to the transformer are exactly
    ξ_t = ρ ξ_{t−1} + √(1 − ρ²) η_t of the same draws η_t (the first save alike); g = 0 gives
    every member the zero-token path; one step of gain g moves the latent g times as far from
    the zero-token latent; the card's ``online`` values are the defaults; bad values are refused
    by name."""
    model = tiny_slt()
    h = jets(T=L)
    em = Emulator(model, threads=1)
    assert (em.noise_memory, em.spread_gain) == (0.0, 1.0)
    g = torch.Generator().manual_seed(5)
    win = model.encode(model.normalise(torch.as_tensor(h, dtype=torch.float32)))[None]
    win = win.expand(2, -1, -1).contiguous()
    manual = []
    for _ in range(4):
        z = model.step(win, g, 1)[0]
        manual.append(z)
        win = torch.cat([win[:, 1:], z[:, None]], dim=1)
    ref = em._decode(torch.stack(manual, dim=1), 64, N)
    assert np.array_equal(em.rollout(h, steps=4, members=2, seed=5), ref)
    # noise memory: record the tokens the transformer is given
    rho, seen = 0.8, []
    step = model.step

    def spy(z, generator=None, members=1, noise=None):
        seen.append(noise.clone())
        return step(z, generator, members, noise=noise)

    model.step = spy
    try:
        mem = Emulator(model, threads=1, noise_memory=rho).rollout(h, steps=4, members=2, seed=5)
    finally:
        del model.step
    eta = torch.randn((4, 2, 1, model.transformer.width), generator=torch.Generator()
                      .manual_seed(5))
    want = [eta[0]]
    for t in range(1, 4):
        want.append(rho * want[-1] + math.sqrt(1 - rho * rho) * eta[t])
    for got, w in zip(seen, want):
        torch.testing.assert_close(got, w, rtol=1e-6, atol=1e-6)
    assert np.array_equal(mem[:, 0], ref[:, 0]) and not np.allclose(mem[:, 1:], ref[:, 1:])
    # spread gain: g = 0 is one path for all members; one step scales z − z₀ by g
    flat = Emulator(model, threads=1, spread_gain=0.0).rollout(h, steps=3, members=3, seed=1)
    assert np.array_equal(flat[0], flat[1]) and np.array_equal(flat[0], flat[2])
    hist = torch.as_tensor(h, dtype=torch.float32)
    lat = {gain: next(Emulator(model, spread_gain=gain)._latents(hist, 1, 3,
                                                                torch.Generator().manual_seed(2),
                                                                3, False))[1][:, 0]
           for gain in (0.0, 1.0, 2.5)}
    torch.testing.assert_close(lat[2.5] - lat[0.0], 2.5 * (lat[1.0] - lat[0.0]), rtol=1e-5,
                               atol=1e-6)
    assert (lat[1.0] - lat[0.0]).abs().max() > 1e-3
    # the card's online values are the defaults, arguments override them
    model.card = {"online": {"noise_memory": 0.5, "spread_gain": 1.5}}
    assert (Emulator(model).noise_memory, Emulator(model).spread_gain) == (0.5, 1.5)
    assert Emulator(model, noise_memory=0.0, spread_gain=1.0).noise_memory == 0.0
    for bad in (dict(noise_memory=1.0), dict(noise_memory=-0.1), dict(spread_gain=-1.0),
                dict(spread_gain=float("nan"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Emulator(model, **bad)


def test_rollout_arguments_name_the_argument():
    em = Emulator(tiny_slt())
    h = jets(T=L)
    for kwargs, name in [({"steps": 0}, "steps"), ({"steps": 2, "members": 0}, "members"),
                         ({"steps": 2, "seed": -1}, "seed"), ({"steps": 2, "batch": 0}, "batch"),
                         ({"steps": 2, "chunk": 1.5}, "chunk")]:
        with pytest.raises(ValueError, match=name):
            em.rollout(h, **kwargs)
    with pytest.raises(ValueError, match=r"history must have shape .* = \(3, 16\)"):
        em.rollout(h[:2], steps=2)
    with pytest.raises(ValueError, match="history must be finite"):
        em.rollout(np.full((L, N), np.nan), steps=2)
    with pytest.raises(ValueError, match="model must be an SLT"):
        Emulator(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="heads"):
        SLT(N, width=8, heads=3)
    with pytest.raises(ValueError, match="window"):
        SLT(N, window=0)
    with pytest.raises(ValueError, match="stats"):
        SLT(N, stats={"mean": 0.0, "std": 0.0})


# --- training and files -----------------------------------------------------------------------

SMALL = dict(window=L, batch=64, width=8, heads=2, layers=1, hidden=16, progress=False,
             threads=1, val_fraction=0.2)


def test_train_slt_writes_a_loadable_model_log_and_resumes_bit_for_bit(tmp_path):
    U = jets()
    m = train_slt(U, tmp_path / "full", epochs=2, **SMALL)
    log = [json.loads(s) for s in (tmp_path / "full.log.jsonl").read_text().splitlines()]
    assert [r.get("epoch") for r in log[:2]] == [1, 2] and log[-1]["final"]
    assert set(log[0]["train"]) == {"es_u", "es_latent", "rec", "spectral", "total"}
    assert "val" in log[0] and log[1]["lr"] < log[0]["lr"]
    card = json.loads((tmp_path / "full.json").read_text())
    assert card["format"] == "hybrid-slt-card" and card["data"]["val_windows"] > 0
    assert card["config"]["window"] == L and m["epochs"] == 2
    one = card["metrics"]["one_step"]
    assert one["split"] == "val" and one["rmse"] > 0 and one["spread_to_error"] > 0
    # interrupted after one epoch, then resumed: the same weights, bit for bit
    part = train_slt(U, tmp_path / "cut", epochs=2, stop_after=1, **SMALL)
    assert part["stopped"] and not (tmp_path / "cut.pt").exists()
    train_slt(U, tmp_path / "cut", epochs=2, resume=True, **SMALL)
    a, b = load_slt(tmp_path / "full"), load_slt(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    # the loaded emulator runs
    em = load_emulator(tmp_path / "full.pt")
    assert em.rollout(U[:L], steps=2, members=2, seed=0).shape == (2, 2, N)
    with pytest.raises(ValueError, match="other settings"):
        train_slt(U, tmp_path / "cut", epochs=3, resume=True, **{**SMALL, "batch": 32})


def test_unrolled_loss_is_the_one_step_loss_for_one_step_and_trains_through_k_steps():
    torch.manual_seed(1)
    m = tiny_slt().train()
    x, y = torch.randn(5, L, N), torch.randn(5, 3, N)
    one = m.loss_terms(x, y[:, 0], torch.Generator().manual_seed(4), 4)
    unrolled = m.loss_terms(x, y[:, :1], torch.Generator().manual_seed(4), 4)
    assert all(torch.equal(one[k], unrolled[k]) for k in one)
    # three steps: the later targets matter, and gradients reach the transformer through them
    a = m.loss_terms(x, y, torch.Generator().manual_seed(4), 4)
    b = m.loss_terms(x, torch.cat([y[:, :1], y[:, 1:] + 1.0], 1),
                     torch.Generator().manual_seed(4), 4)
    assert float(b["es_u"].detach()) > float(a["es_u"].detach())
    a["es_u"].backward()
    assert float(m.transformer.embed.weight.grad.abs().sum()) > 0


def test_fine_tuning_keeps_architecture_and_normalisation(tmp_path):
    U = jets()
    train_slt(U, tmp_path / "base", epochs=1, **SMALL)
    base = load_slt(tmp_path / "base")
    m = train_slt(U * 1.5, tmp_path / "tuned", epochs=1, unroll=3, reencode=True,
                  init_from=tmp_path / "base", **SMALL)
    tuned = load_slt(tmp_path / "tuned")
    assert tuned.config == base.config and tuned.stats == base.stats     # not U·1.5's stats
    assert tuned.card["training"]["unroll"] == 3 and m["one_step"]["samples"] == 16
    # the emulator rolls out the way the model was trained: re-encoded here, as drawn for base
    em, em0 = load_emulator(tmp_path / "tuned"), load_emulator(tmp_path / "base")
    assert em.reencode and not em0.reencode
    args = (U[:L], 5, 3, 2)
    assert np.array_equal(em.rollout(*args), em.rollout(*args, reencode=True))
    assert not np.array_equal(em.rollout(*args), em.rollout(*args, reencode=False))
    assert np.array_equal(em0.rollout(*args), em0.rollout(*args, reencode=False))
    assert any(not torch.equal(a, b) for a, b in zip(base.state_dict().values(),
                                                      tuned.state_dict().values()))
    with pytest.raises(ValueError, match="init_from.*hidden"):
        train_slt(U, tmp_path / "bad", epochs=1, init_from=tmp_path / "base",
                  **{**SMALL, "hidden": 32})
    with pytest.raises(ValueError, match="unroll"):
        train_slt(U, tmp_path / "bad", unroll=0, progress=False)
    assert not list(tmp_path.glob("bad*"))


def test_train_slt_arguments_name_the_argument(tmp_path):
    U = jets(T=40)
    for kwargs, name in [({"window": 0}, "window"), ({"epochs": 0}, "epochs"),
                         ({"members": 1}, "members"), ({"val_fraction": 1.0}, "val_fraction"),
                         ({"lr": -1}, "lr"), ({"gamma": 1.5}, "gamma"),
                         ({"weights": {"nope": 1}}, "weights")]:
        with pytest.raises(ValueError, match=name):
            train_slt(U, tmp_path / "m", progress=False, **kwargs)
    with pytest.raises(ValueError, match="data must be profiles"):
        train_slt(np.zeros(5), tmp_path / "m", progress=False)
    with pytest.raises(ValueError, match="no window"):
        train_slt(U[:5], tmp_path / "m", window=10, progress=False)
    assert not list(tmp_path.iterdir())                        # nothing written


def test_corrupt_or_mismatched_model_files_name_the_file(tmp_path):
    model = tiny_slt()
    pt, js = save_slt(model, tmp_path / "m", {"metrics": {}})
    back = load_slt(tmp_path / "m")
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(),
                                                  back.state_dict().values()))
    good = pt.read_bytes()
    pt.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelFileError, match=r"m\.pt.*not a readable"):
        load_emulator(tmp_path / "m")
    torch.manual_seed(1)
    save_slt(SLT(N, window=L, width=16, heads=4, layers=2, hidden=16), tmp_path / "other")
    pt.write_bytes((tmp_path / "other.pt").read_bytes())
    with pytest.raises(ModelFileError, match=r"m\.pt does not match its card .*m\.json"):
        load_slt(tmp_path / "m")
    pt.write_bytes(good)
    card = json.loads(js.read_text())
    js.write_text(json.dumps({**card, "config": {**card["config"], "width": 16}}))
    with pytest.raises(ModelFileError, match=r"m\.json lists tensors"):
        load_slt(tmp_path / "m")
    js.write_text(json.dumps({**card, "config": {**card["config"], "heads": 3}}))
    with pytest.raises(ModelFileError, match=r"m\.json: bad architecture config"):
        load_slt(tmp_path / "m")
    js.write_text(json.dumps({**card, "format": "hybrid-ldm-card"}))
    with pytest.raises(ModelFileError, match=r"not a 'hybrid-slt-card' card"):
        load_slt(tmp_path / "m")
    js.write_text("{not json")
    with pytest.raises(ModelFileError, match=r"m\.json.*not readable JSON"):
        load_slt(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"nothing\.json does not exist"):
        load_emulator(tmp_path / "nothing")


@pytest.fixture(scope="module")
def zonal_file(tmp_path_factory):
    """A zonal-mean record of a tiny beta-plane run: 2 members, 16 saves of 16 points."""
    from solvers import BetaPlane
    from solvers.io import TrajectoryWriter
    s = BetaPlane(n=N, members=2, seed=0, dt=0.5, epsilon=1e-3, kf=4, kf_width=1.0)
    path = tmp_path_factory.mktemp("zonal") / "u.nc"
    with TrajectoryWriter(path, s, record="zonal-mean") as w:
        for _ in range(16):
            s.step(2)
            w.write()
    return path


def test_train_slt_reads_a_zonal_mean_record(tmp_path, zonal_file):
    m = train_slt(zonal_file, tmp_path / "m", epochs=1, **{**SMALL, "val_fraction": 0.25})
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["data"]["members"] == 2 and card["data"]["times"] == 16
    assert card["data"]["interval"] == pytest.approx(1.0)
    assert card["data"]["train_windows"] == 2 * (12 - L) and m["final_val"] is not None
    with pytest.raises(FileNotFoundError, match=r"nothing\.nc does not exist"):
        train_slt(tmp_path / "nothing.nc", tmp_path / "x", progress=False)


def test_cli_train_slt(tmp_path, zonal_file, capsys, monkeypatch):
    from hybrid.cli import main
    out = tmp_path / "cli"
    small = ["--epochs", "1", "--batch", "16", "--window", str(L), "--width", "8", "--heads",
             "2", "--layers", "1", "--hidden", "16", "--val-fraction", "0.25", "--threads", "1",
             "--no-progress"]
    code = main(["train", "slt", "--data", str(zonal_file), "--out", str(out), *small])
    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["final_val"]) >= {"es_u", "es_latent", "rec", "spectral"}
    assert printed["one_step"]["samples"] == 8
    em = load_emulator(out)
    assert em.card["command"].startswith(f"hybrid train slt --data {zonal_file} --out {out}")
    assert em.model.config["layers"] == 1 and em.card["training"]["epochs"] == 1
    # bad input: exit 2 naming the flag, nothing written
    for extra, flag in [(["--members", "1"], "--members"), (["--gamma", "2"], "--gamma"),
                        (["--window", "12"], "--window"), (["--heads", "3"], "--heads"),
                        (["--latent-points", "32"], "--latent-points"),
                        (["--samples-eval", "1"], "--samples-eval"),
                        (["--unroll", "40"], "--unroll"),
                        (["--init-from", str(tmp_path / "none")], "--init-from")]:
        argv = ["train", "slt", "--data", str(zonal_file), "--out", str(tmp_path / "bad"),
                *small, *extra]
        assert main(argv) == 2
        assert flag in capsys.readouterr().err
    run = tmp_path / "run"                                     # a run folder, as hybrid jets
    run.mkdir()
    (run / "trajectory.nc").write_bytes(zonal_file.read_bytes())
    assert main(["train", "slt", "--data", str(run), "--out", str(tmp_path / "f"), *small]) == 0
    assert load_emulator(tmp_path / "f").card["data"]["file"] == str(run / "trajectory.nc")
    capsys.readouterr()
    assert main(["train", "slt", "--data", str(tmp_path), "--out", str(tmp_path / "bad")]) == 2
    assert "holds none of" in capsys.readouterr().err
    notnc = tmp_path / "notnc.nc"
    notnc.write_text("not netCDF")
    assert main(["train", "slt", "--data", str(notnc), "--out", str(tmp_path / "bad")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["train", "slt", "--data", str(zonal_file), "--out", str(out), *small]) == 2
    assert "--out" in capsys.readouterr().err
    # with --init-from, an architecture flag given must equal the model's, even at its default
    for window in ("10", "4"):
        assert main(["train", "slt", "--data", str(zonal_file), "--out", str(tmp_path / "bad"),
                     "--init-from", str(out), "--window", window]) == 2
        assert f"--window: the architecture comes from --init-from {out}, whose window is {L}" \
            in capsys.readouterr().err
    assert not list(tmp_path.glob("bad*"))
    # fine-tuned from it: the model is loaded once, and an architecture flag equal to its is fine
    import closures.slt
    import closures.slt.files
    loads, load = [], closures.slt.files.load_slt
    monkeypatch.setattr(closures.slt.files, "load_slt", lambda *a, **k: loads.append(a) or
                        load(*a, **k))
    monkeypatch.setattr(closures.slt, "load_slt", closures.slt.files.load_slt)
    assert main(["train", "slt", "--data", str(zonal_file), "--out", str(tmp_path / "ft"),
                 "--init-from", str(out), "--window", str(L), "--epochs", "1", "--batch", "16",
                 "--val-fraction", "0.25", "--threads", "1", "--no-progress"]) == 0
    assert loads == [(str(out),)]
    tuned = load_emulator(tmp_path / "ft")
    assert tuned.card["training"]["init_from"] == str(out)
    assert tuned.model.config == em.model.config


def test_cli_emulate_slt_end_to_end(tmp_path, zonal_file, capsys):
    from hybrid.cli import main
    from hybrid.jets import read_profiles
    stem = tmp_path / "m"
    train_slt(zonal_file, stem, epochs=1, **{**SMALL, "val_fraction": 0.25})
    t_src = read_profiles(zonal_file)["t"]
    out = tmp_path / "emu"
    argv = ["emulate", "slt", "--model", str(stem), "--init", str(zonal_file), "--members", "3",
            "--t-end", str(t_src[-1] + 5), "--out", str(out), "--seed", "2", "--threads", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 5 and summary["members"] == 3
    emu = read_profiles(out)                                     # the run folder, like a DNS's
    assert emu["U"].shape == (3, 6, N) and np.allclose(emu["t"], t_src[-1] + np.arange(6))
    src = read_profiles(zonal_file)
    assert np.allclose(emu["U"][:, 0], src["U"][0, -1], atol=1e-6)   # the start state, float32
    assert np.allclose(emu["y"], src["y"]) and emu["config"]["emulator"]["seed"] == 2
    ref = load_emulator(stem).rollout(src["U"][0, -L:], steps=5, members=3, seed=2)
    np.testing.assert_array_equal(emu["U"][:, 1:], ref)          # the same seeded rollout
    assert all((out / f).is_file() for f in ("hovmoller.png", "statistics.png",
                                             "emulation.json"))
    # from an earlier state and another member
    assert main([*argv[:-6], "--out", str(tmp_path / "e2"), "--at", str(t_src[8]),
                 "--member", "1", "--reencode"]) == 0
    e2 = json.loads((tmp_path / "e2" / "emulation.json").read_text())
    assert e2["at"] == pytest.approx(t_src[8]) and e2["member"] == 1 and e2["reencode"]
    assert (e2["noise_memory"], e2["spread_gain"]) == (0.0, 1.0)
    assert main([*argv[:-6], "--out", str(tmp_path / "e3"), "--noise-memory", "0.9",
                 "--spread-gain", "1.5"]) == 0
    e3 = json.loads((tmp_path / "e3" / "emulation.json").read_text())
    assert (e3["noise_memory"], e3["spread_gain"]) == (0.9, 1.5)
    assert read_profiles(tmp_path / "e3")["config"]["emulator"]["noise_memory"] == 0.9
    capsys.readouterr()
    # bad input exits 2 naming the flag, and writes nothing
    bad = tmp_path / "bad"
    for extra, flag in [(["--at", "999"], "--at"), (["--at", str(t_src[1])], "--at"),
                        (["--member", "5"], "--member"), (["--t-end", "0"], "--t-end"),
                        (["--noise-memory", "1"], "--noise-memory"),
                        (["--spread-gain", "-2"], "--spread-gain")]:
        args = ["emulate", "slt", "--model", str(stem), "--init", str(zonal_file), "--members",
                "2", "--t-end", str(t_src[-1] + 2), "--out", str(bad), *extra]
        assert main(args) == 2
        assert flag in capsys.readouterr().err
    assert main(["emulate", "slt", "--model", str(tmp_path / "none"), "--init",
                 str(zonal_file), "--members", "2", "--t-end", "99", "--out", str(bad)]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(argv) == 2 and "--out" in capsys.readouterr().err          # outputs exist
    assert not bad.exists()
