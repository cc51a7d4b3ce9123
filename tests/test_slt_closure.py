"""The SLT closure (closures.slt.closure): the noise token and seeds, one network pass per refresh,
members run in parts, the cold start and the history, bit-exact restarts mid-history, a known
stochastic map learned, consecutive closure datasets, training and a hybrid run end to end, and
bad arguments. Tiny sizes, one torch thread."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from closures import get_closure
from closures.base import closure_state
from closures.data import ClosureDataset
from closures.slt import (ModelFileError, SLTClosure, SLTClosureModel, load_slt_closure,
                          train_slt_closure)
from closures.slt.closure_model import DEFAULT_WEIGHTS
from hybrid import datasets as hd
from hybrid.cli import main
from solvers import KolmogorovFlow
from solvers import io as sio
from solvers.grid import Grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N, LBOX, W = 16, 2 * math.pi, 3
STATS = {"omega_bar": {"mean": 0.1, "std": 2.0}, "closure": {"mean": -0.2, "std": 0.5}}
TINY = dict(ae_channels=(4, 4, 4), width=8, heads=2, hidden=16, layers=1, mean_width=4,
            mean_blocks=1)
GEN = dict(n_dns=32, n_les=16, interval=0.1, spinup=0.05, seed=1, progress=False)
TRAIN_FLAGS = ["--window", "2", "--epochs", "2", "--batch", "8", "--ae-channels", "4,4,4",
               "--width", "8", "--heads", "2", "--hidden", "16", "--mean-width", "4",
               "--mean-blocks", "1", "--threads", "1", "--samples-eval", "4", "--no-progress"]


def tiny_model(window=W, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SLTClosureModel(N, LBOX, window=window, stats=STATS, **TINY).eval()


def fields(members=3, seed=1):
    return np.random.default_rng(seed).standard_normal((members, N, N))


def state_of(w, step=0):
    return closure_state(Grid(N, LBOX), np.fft.rfft2(w), step=step)


def ready(closure, members=3, seed=7, **params):
    closure.reset(Grid(N, LBOX), members, params, seed)
    return closure


@pytest.fixture(scope="module")
def consecutive_data(tmp_path_factory):
    """A tiny Kolmogorov closure dataset: 6 sampling times × 2 members × 3 consecutive."""
    path = tmp_path_factory.mktemp("data") / "k3.nc"
    hd.generate_dataset("kolmogorov", path, samples=36, members=2, consecutive=3, **GEN)
    return path


# ------------------------------------------------------------------ noise, seeds, batching
def test_noise_token_changes_the_term_and_the_same_seed_reproduces_it():
    model = tiny_model()
    calls = []
    model.transformer.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    w = fields(5)
    a = ready(SLTClosure(model, every=2), 5, seed=11)(state_of(w))
    assert a.shape == (5, N, N) and a.dtype == np.float64 and np.isfinite(a).all()
    assert calls == [(5, W, model.latent_dim)]                 # one pass for all members
    b = ready(SLTClosure(model, every=2), 5, seed=11)(state_of(w))
    c = ready(SLTClosure(model, every=2), 5, seed=12)(state_of(w))
    assert np.array_equal(a, b) and not np.allclose(a, c)
    same = np.repeat(w[:1], 5, axis=0)                         # identical inputs, own noise
    d = ready(SLTClosure(model), 5, seed=11)(state_of(same))
    assert np.abs(d[0] - d[1]).max() > 1e-3 * np.abs(d).max()
    # the noise token is the only randomness: a fixed token gives a fixed term, another token
    # another term
    x = torch.as_tensor(model.normalise(w[:2], "omega_bar"), dtype=torch.float32)[:, None]
    with torch.no_grad():
        hist = model.encode(x)[:, None].expand(-1, W, -1)
        e = torch.zeros(2, 1, model.width)
        t0 = model.draw(hist, x, noise=e)
        assert torch.equal(t0, model.draw(hist, x, noise=e.clone()))
        assert not torch.allclose(t0, model.draw(hist, x, noise=e + 1))


def test_members_run_in_parts_get_the_terms_of_the_whole_batch():
    model = tiny_model()
    ws = [fields(4, seed=s) for s in (1, 2, 3, 4)]          # four refreshes: past the window
    full = ready(SLTClosure(model), 4, seed=5)
    part = ready(SLTClosure(model), 2, seed=5, first_member=2)
    part.ensemble_members = 4
    for w in ws:
        whole = full(state_of(w))
        assert np.array_equal(part(state_of(w[2:])), whole[2:])
    assert torch.equal(part.history, full.history[2:])


# ------------------------------------------------------------------ history and cold start
def test_cold_start_repeats_the_first_latent_then_the_history_shifts():
    model = tiny_model()
    clo = ready(SLTClosure(model), 2, seed=3)
    assert clo.history is None and clo.filled == 0
    ws = [fields(2, seed=s) for s in range(W + 2)]
    with torch.no_grad():
        z = [model.encode(torch.as_tensor(model.normalise(w, "omega_bar"),
                                          dtype=torch.float32)[:, None]) for w in ws]
    for k, w in enumerate(ws):
        gens = [r.bit_generator.state for r in clo.rng]
        term = clo(state_of(w))
        # the history: the first latent repeated in front of the real ones, oldest first
        want = [z[max(j, 0)] for j in range(k - W + 1, k + 1)]
        assert torch.allclose(clo.history, torch.stack(want, dim=1), atol=1e-6, rtol=0)
        assert clo.filled == min(k + 1, W)
        # the term is the model's draw on that history with the members' own noise
        for r, s in zip(clo.rng, gens):
            r.bit_generator.state = s
        noise = torch.as_tensor(clo.normal(model.width), dtype=torch.float32)[:, None]
        x = torch.as_tensor(model.normalise(w, "omega_bar"), dtype=torch.float32)[:, None]
        with torch.no_grad():
            ref = model.denormalise(model.draw(clo.history, x, noise=noise)[0, :, 0].double(),
                                    "closure").numpy()
        np.testing.assert_allclose(term, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("rho", [0.0, 0.7])
def test_restart_mid_history_continues_bit_for_bit(tmp_path, rho):
    model = tiny_model()

    def make():
        s = KolmogorovFlow(n=N, L=LBOX, members=2, seed=4, dt=0.01)
        s.set_vorticity(fields(2, seed=9))
        s.set_closure(SLTClosure(model, every=2, noise_memory=rho))
        return s

    ref = make()
    ref.step(14)
    s = make()
    s.step(3)                                  # refreshes at steps 0 and 2: 2 of W = 3 latents
    assert s.closure.filled == 2 < W
    path = sio.write_restart(s, tmp_path / "restart.nc")
    back = sio.read_restart(path, closure=SLTClosure(model, every=2, noise_memory=rho))
    assert back.closure.filled == 2 and torch.equal(back.closure.history, s.closure.history)
    back.step(11)
    assert np.array_equal(back.vorticity_hat, ref.vorticity_hat)
    assert torch.equal(back.closure.history, ref.closure.history)
    st = s.closure.get_state()
    st["history"] = st["history"][:, 1:]
    with pytest.raises(ValueError, match=r"history of shape \(2, 2, 16\).*\(2, 3, 16\)"):
        ready(SLTClosure(model), 2).set_state(st)


def test_noise_memory_makes_the_tokens_an_ar1_process_with_unit_variance():
    """ρ = 0.8: over 600 refreshes × 4 members × D token entries the tokens have variance 1 and
    lag-1 and lag-2 correlations ρ and ρ² (standard error of the estimates ≈ 0.01 here; tested
    within 0.05); ρ = 0 draws every token afresh (lag-1 correlation within 0.05 of 0)."""
    model = tiny_model()
    w = state_of(fields(4))
    for rho in (0.8, 0.0):
        c = ready(SLTClosure(model, noise_memory=rho), 4)
        tokens = []
        for _ in range(600):
            c.compute(w)
            tokens.append(c.token.copy())
        x = np.asarray(tokens)                                    # (refreshes, members, D)
        assert x.var() == pytest.approx(1.0, abs=0.05)
        for lag in (1, 2):
            corr = (x[lag:] * x[:-lag]).mean() / x.var()
            assert corr == pytest.approx(rho ** lag, abs=0.05)
    with pytest.raises(ValueError, match="noise_memory"):
        SLTClosure(model, noise_memory=1.0)


def test_spread_gain_scales_the_latent_draws_about_the_zero_token_draw(monkeypatch):
    """With the decoder and μ silenced (the draw is the transformer's latent r), 8 draws at
    gain g from the same tokens are r₀ + g·(r − r₀): g = 1 is the plain draw bit for bit, g = 0
    gives every member the zero-token draw, and the spread over members scales by g exactly."""
    model = tiny_model()
    monkeypatch.setattr(model, "decode", lambda r: r)
    monkeypatch.setattr(model, "mean", lambda omega: torch.zeros(()))
    hist = torch.randn(2, W, model.latent_dim, generator=torch.Generator().manual_seed(3))
    noise = torch.randn(8 * 2, 1, model.width, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        plain = model.transformer(hist, None, 8, noise=noise)
        r0 = model.transformer(hist, None, 1, noise=torch.zeros(2, 1, model.width))[0]
        draws = {g: model.draw(hist, None, members=8, noise=noise, spread_gain=g)
                 for g in (0.0, 1.0, 2.5)}
    assert torch.equal(draws[1.0], plain)
    assert torch.allclose(draws[0.0], r0.expand_as(plain), atol=1e-6)
    assert plain.std(dim=0).mean() > 1e-3
    assert torch.allclose(draws[2.5].std(dim=0), 2.5 * plain.std(dim=0), rtol=1e-4, atol=1e-6)


def test_spread_shells_inflates_the_draws_in_the_low_shells_only():
    """``spread_shells`` K = 3, g = 2.5: with the same tokens, the draws' Fourier modes above shell
    K are the trained draws' (g = 1) bit for bit up to round-off, and in shells 1 … K every
    member's departure from the zero-token draw (g = 0: the centre there) is g times the trained
    one's."""
    model = tiny_model()
    hist = torch.randn(2, W, model.latent_dim, generator=torch.Generator().manual_seed(3))
    omega = torch.randn(2, 1, N, N, generator=torch.Generator().manual_seed(5))
    noise = torch.randn(6 * 2, 1, model.width, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        f = {g: torch.fft.rfft2(model.draw(hist, omega, members=6, noise=noise, spread_gain=g,
                                           spread_shells=3)).numpy()
             for g in (0.0, 1.0, 2.5)}
    shell = np.rint(np.hypot(*np.meshgrid(np.fft.fftfreq(N, 1 / N), np.fft.rfftfreq(N, 1 / N),
                                          indexing="ij")))
    low = (shell >= 1) & (shell <= 3)
    np.testing.assert_allclose(f[2.5][..., ~low], f[1.0][..., ~low], atol=1e-5)
    one, two = (f[1.0] - f[0.0])[..., low], (f[2.5] - f[0.0])[..., low]
    assert np.abs(one).max() > 1e-3
    np.testing.assert_allclose(two, 2.5 * one, rtol=1e-4, atol=1e-5)


def test_online_settings_come_from_the_card_unless_given(tmp_path):
    """A card's ``online`` values are the closure's defaults (ρ, g); arguments override them; the
    term of ``gain`` = 0.5 is half the term of gain 1, ``gain`` = 0 on ``gain_shells`` = 2 removes
    shells 1-2 (round |k|) and leaves the rest, ``zonal_gain`` scales the term's mean along x
    alone, and bad values are refused by name."""
    model = tiny_model()
    model.card = {"online": {"noise_memory": 0.9, "spread_gain": 1.5}}
    c = SLTClosure(model)
    assert (c.noise_memory, c.spread_gain) == (0.9, 1.5)
    c = SLTClosure(model, noise_memory=0.0, spread_gain=1.0)
    assert (c.noise_memory, c.spread_gain) == (0.0, 1.0)
    w = state_of(fields(2))
    one = ready(SLTClosure(model, gain=1.0), 2).compute(w)
    half = ready(SLTClosure(model, gain=0.5), 2).compute(w)
    np.testing.assert_allclose(half, 0.5 * one, rtol=1e-12, atol=1e-15)
    low = ready(SLTClosure(model, gain=0.0, gain_shells=2), 2).compute(w)
    shell = np.rint(np.hypot(*np.meshgrid(np.fft.fftfreq(N, 1 / N), np.fft.rfftfreq(N, 1 / N),
                                          indexing="ij")))
    f_one, f_low = np.fft.rfft2(one), np.fft.rfft2(low)
    inside = (shell >= 1) & (shell <= 2)
    assert np.abs(f_one[:, inside]).max() > 1e-6
    assert np.abs(f_low[:, inside]).max() < 1e-12 * np.abs(f_one).max()
    np.testing.assert_allclose(f_low[:, ~inside], f_one[:, ~inside], rtol=1e-10, atol=1e-12)
    # zonal_gain: the term's mean along x scaled by it, the rest by gain
    split = ready(SLTClosure(model, gain=0.5, zonal_gain=2.0), 2).compute(w)
    zonal = one.mean(axis=-1, keepdims=True)
    assert np.abs(zonal).max() > 1e-6
    np.testing.assert_allclose(split, 0.5 * (one - zonal) + 2.0 * zonal, rtol=1e-10,
                               atol=1e-13)
    with pytest.raises(ValueError, match="zonal_gain or gain_shells"):
        SLTClosure(model, zonal_gain=1.0, gain_shells=2)
    # the card's shell gains and gain_shells together: one transform, the product of both
    from closures.calibration import apply_shell_gains
    model.card = {"calibration": {"shell_gains": [2.0, 0.5]}}
    both = ready(SLTClosure(model, gain=0.5, gain_shells=3), 2).compute(w)
    raw = ready(SLTClosure(model, calibrate=False), 2).compute(w)
    model.card = {}
    want = apply_shell_gains(apply_shell_gains(raw, [2.0, 0.5]), [0.5] * 3)
    np.testing.assert_allclose(both, want, rtol=1e-10, atol=1e-12)
    for bad in (dict(spread_gain=-1.0), dict(gain=-0.1), dict(gain=float("nan")),
                dict(gain_shells=-1), dict(spread_shells=-2), dict(zonal_gain=-1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SLTClosure(model, **bad)


def test_bfloat16_networks_change_the_term_by_round_off_only():
    """precision='bfloat16' runs the encoder, μ and the decoder under bfloat16 autocast: the
    term (same seed, so the same tokens) moves by round-off (bfloat16 keeps 8 bits), the
    history stays float32; an unknown precision is refused by name."""
    model = tiny_model()
    w = state_of(fields(3))
    f32 = ready(SLTClosure(model), 3).compute(w)
    c16 = ready(SLTClosure(model, precision="bfloat16"), 3)
    b16 = c16.compute(w)
    assert 0 < np.linalg.norm(b16 - f32) / np.linalg.norm(f32) < 0.05
    assert c16.history.dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        SLTClosure(model, precision="float16")


# ------------------------------------------------------------------ learning a known map
def test_a_tiny_slt_closure_learns_a_known_stochastic_map():
    """C = a ω̄ + σ ε φ(x), ε ~ N(0, 1) per sample, φ = √2 cos x: the ensemble mean has slope a
    against ω̄ and the draws' projection on φ a spread σ (measured over seeds 0-3: slope
    0.788-0.795, spread 0.90-1.04 σ, every input within 16 %)."""
    n, a, sig = 8, 0.8, 0.5
    torch.manual_seed(0)
    model = SLTClosureModel(n, window=2, ae_channels=(4, 4, 4), width=16, heads=4, hidden=32,
                            layers=1, mean_width=4, mean_blocks=0)
    phi = (math.sqrt(2) * torch.cos(torch.arange(n) * 2 * math.pi / n))[None, :].expand(n, n)
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for it in range(300):
        if it == 200:
            opt.param_groups[0]["lr"] = 1e-3
        w = torch.randn(32, 2, 1, n, n, generator=g)
        c = a * w[:, -1] + sig * torch.randn(32, 1, 1, 1, generator=g) * phi
        terms = model.loss_terms(w, c, g, members=4)
        loss = sum(DEFAULT_WEIGHTS[k] * v for k, v in terms.items())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        w = torch.randn(32, 2, 1, n, n, generator=g)
        hist = model.encode(w.reshape(64, 1, n, n)).reshape(32, 2, -1)
        d = model.draw(hist, w[:, -1], torch.Generator().manual_seed(5), members=400)
    slope = float((d.mean(0) * w[:, -1]).sum() / (w[:, -1] ** 2).sum())
    proj = ((d - a * w[:, -1]) * phi).mean((-1, -2))[..., 0]         # (draws, inputs): σ ε
    sd = proj.std(0) / sig
    assert abs(slope - a) < 0.03, slope
    assert abs(float(sd.mean()) - 1) < 0.15, sd
    assert float((sd - 1).abs().max()) < 0.25, sd
    assert float(proj.mean(0).abs().mean()) < 0.1 * sig * 2       # no spurious mean along φ


# ------------------------------------------------------------------ consecutive datasets
def test_consecutive_samples_lie_one_refresh_interval_apart(consecutive_data, tmp_path):
    with hd.open_dataset(consecutive_data) as ds:
        a = {k: ds[k].values for k in ("time", "step", "member", "sequence", "position")}
        attrs = dict(ds.attrs)
    assert (int(attrs["consecutive"]), int(attrs["refresh_every"])) == (3, 5)
    dt_les, dt_dns = 5e-3, 1e-3                                # the kolmogorov preset's steps
    assert attrs["refresh_interval"] == pytest.approx(5 * dt_les, rel=1e-12)
    M, K = 2, 3
    t = a["time"].reshape(6, K, M)
    steps = a["step"].reshape(6, K, M)
    assert np.array_equal(a["member"].reshape(6, K, M), np.broadcast_to(np.arange(M), (6, K, M)))
    assert np.array_equal(a["sequence"].reshape(6, K, M), np.broadcast_to(
        np.arange(6)[:, None, None], (6, K, M)))
    assert np.array_equal(a["position"].reshape(6, K, M), np.broadcast_to(
        np.arange(K)[None, :, None], (6, K, M)))
    assert np.all(np.diff(steps, axis=1) == round(5 * dt_les / dt_dns))   # exactly Δ apart
    np.testing.assert_allclose(np.diff(t, axis=1), 5 * dt_les, rtol=1e-9)
    np.testing.assert_allclose(t[:, 0, 0], 0.05 + 0.1 * np.arange(6), rtol=1e-9)
    # windows: complete ones, and padded ones at each sequence's start
    ds = ClosureDataset(consecutive_data, "train")
    win = ds.windows(2)
    assert len(win) == 4 * M * 2 and np.all(ds.sequences[win[:, 0]] == ds.sequences[win[:, 1]])
    assert np.all(ds.positions[win[:, 1]] == ds.positions[win[:, 0]] + 1)
    padded = ds.windows(3, pad=True)
    first = ds.positions[padded[:, -1]] == 0
    assert len(padded) == 4 * M * K and np.all(padded[first] == padded[first][:, :1])
    # K = 1 is the file as before: same values, same variables and attributes
    one, plain = tmp_path / "k1.nc", tmp_path / "plain.nc"
    hd.generate_dataset("kolmogorov", one, samples=4, members=2, consecutive=1, **GEN)
    hd.generate_dataset("kolmogorov", plain, samples=4, members=2, **GEN)
    with hd.open_dataset(one) as x, hd.open_dataset(plain) as y:
        assert set(x.variables) == set(y.variables) and "sequence" not in x.variables
        skip = {"run_id", "created", "updated", "restart_file"}
        assert {k: str(v) for k, v in x.attrs.items() if k not in skip} == \
            {k: str(v) for k, v in y.attrs.items() if k not in skip}
        for k in ("omega_bar", "subgrid", "time", "step", "member"):
            assert np.array_equal(x[k].values, y[k].values), k
    assert ClosureDataset(one, "train").windows(1).shape == (len(ClosureDataset(one)), 1)


def test_a_consecutive_dataset_interrupted_mid_sequence_resumes_exactly(consecutive_data,
                                                                        tmp_path):
    out = tmp_path / "cut.nc"

    class Crash(Exception):
        pass

    def hook(event, k):
        if (event, k) == ("samples_written", 3):      # sequence 3 written, not yet marked
            raise Crash

    with pytest.raises(Crash):
        hd.generate_dataset("kolmogorov", out, samples=36, members=2, consecutive=3, _hook=hook,
                            **GEN)
    with hd.open_dataset(out) as ds:
        assert ds.sizes["sample"] == 3 * 6                  # three whole sequences
    with pytest.raises(hd.DatasetMismatchError, match="--consecutive"):
        hd.generate_dataset("kolmogorov", out, samples=36, consecutive=2, resume=True,
                            progress=False)
    hd.generate_dataset("kolmogorov", out, samples=36, resume=True, progress=False)
    with hd.open_dataset(out) as x, hd.open_dataset(consecutive_data) as y:
        for k in ("omega_bar", "subgrid", "time", "step", "member", "sequence", "position"):
            assert np.array_equal(x[k].values, y[k].values), k


@pytest.mark.parametrize("flags, flag", [
    (["--refresh-every", "5"], "--refresh-every"),
    (["--consecutive", "5"], "--consecutive"),               # 4 × 0.025 ≥ --interval 0.1
    (["--consecutive", "2", "--refresh-every", "3", "--dt-dns", "0.002"], "--refresh-every"),
])
def test_generate_refuses_bad_consecutive_flags_before_writing(flags, flag, tmp_path, capsys):
    out = tmp_path / "d" / "x.nc"
    code = main(["generate", "kolmogorov", "--samples", "4", "--out", str(out), "--n-dns", "32",
                 "--n-les", "16", "--interval", "0.1", "--spinup", "0.05", *flags])
    assert code == 2 and flag in capsys.readouterr().err
    assert not out.exists() and not out.with_name("x.nc.restart.nc").exists()


# ------------------------------------------------------------------ training and runs
def test_train_resume_command_and_hybrid_run_end_to_end(consecutive_data, tmp_path, capsys,
                                                         monkeypatch):
    small = dict(window=2, epochs=2, batch=8, progress=False, threads=1, samples_eval=4,
                 **dict(TINY, layers=2))
    train_slt_closure(consecutive_data, tmp_path / "full", **small)
    part = train_slt_closure(consecutive_data, tmp_path / "cut", stop_after=1, **small)
    assert part["stopped"] and not (tmp_path / "cut.pt").exists()
    train_slt_closure(consecutive_data, tmp_path / "cut", resume=True, **small)
    a, b = load_slt_closure(tmp_path / "full"), load_slt_closure(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    card = json.loads((tmp_path / "full.json").read_text())
    assert card["format"] == "hybrid-slt-closure-card" and card["refresh"]["every"] == 5
    off = card["metrics"]["offline"]
    assert off["split"] == "val" and off["spread_to_error"] > 0 and off["crps"] > 0
    log = [json.loads(s) for s in (tmp_path / "full.log.jsonl").read_text().splitlines()]
    assert set(log[0]["train"]) == set(DEFAULT_WEIGHTS) | {"total"} and log[-1]["final"]
    with pytest.raises(ValueError, match="training block"):         # data given as read
        train_slt_closure(ClosureDataset(consecutive_data, "val"), tmp_path / "no", **small)
    # the command (which reads the training block once), then a hybrid run with the closure
    import closures.data
    import closures.slt.train_closure

    reads = []

    class Counted(ClosureDataset):
        def __init__(self, path, split="train", *args, **kwargs):
            reads.append(split)
            super().__init__(path, split, *args, **kwargs)

    monkeypatch.setattr(closures.data, "ClosureDataset", Counted)
    monkeypatch.setattr(closures.slt.train_closure, "ClosureDataset", Counted)
    stem = tmp_path / "cli"
    assert main(["train", "slt-closure", "--data", str(consecutive_data), "--out", str(stem),
                 *TRAIN_FLAGS]) == 0
    assert reads == ["train", "val"]
    assert "held-out relative error" in capsys.readouterr().err
    assert json.loads(stem.with_suffix(".json").read_text())["data"]["dataset"] == \
        str(consecutive_data)
    clo = get_closure("slt-closure", path=str(stem))
    assert clo.every == 5 and clo.window == 2
    dt = card["refresh"]["interval"] / 5                       # the data's LES step
    with pytest.raises(ValueError, match="trained on samples"):
        clo.reset(Grid(16, 2 * np.pi), 1, {"dt": 2 * dt}, 0)    # refreshed twice as far apart
    clo.reset(Grid(16, 2 * np.pi), 1, {"dt": dt}, 0)
    run = tmp_path / "run"
    assert main(["run", "kolmogorov", "--closure", "slt-closure", "--closure-arg",
                 f"path={stem}", "--n", "16", "--members", "2", "--t-end", "0.1",
                 "--output-every", "0.05", "--out", str(run)]) == 0
    assert "closure slt-closure every 5 steps" in capsys.readouterr().err
    with sio.open_trajectory(run / "trajectory.nc") as tr:
        v = tr["vorticity"].values
    assert v.shape[:2] == (2, 3) and np.isfinite(v).all()


@pytest.mark.parametrize("flags, flag", [
    (["--members", "1"], "--members"),
    (["--window", "4", "--no-cold-start"], "--window"),
    (["--heads", "3"], "--heads"),
    (["--gamma", "1.5"], "--gamma"),
    (["--mode", "joint"], "--mode"),
    (["--init-mean", "no-such-model"], "--init-mean"),
    (["--init-mean", "ldm-kolmogorov", "--mean-width", "8"], "--init-mean"),   # shipped: 16
])
def test_bad_training_arguments_exit_2_naming_the_flag(flags, flag, consecutive_data, tmp_path,
                                                        capsys):
    out = tmp_path / "out"
    code = main(["train", "slt-closure", "--data", str(consecutive_data), "--out",
                 str(out / "m"), *TRAIN_FLAGS, *flags])
    assert code == 2 and flag in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_copied_mean_network_gives_the_same_term_in_physical_units():
    """init_mean: the shipped L-CDM's μ copied into a model with other normalisation statistics
    gives the same C(ω̄) in physical units (to float32 round-off); without the conversion the
    terms would differ by the ratio of the statistics."""
    from closures.slt.train_closure import copy_mean_network, load_mean_source
    source = load_mean_source("ldm-kolmogorov")
    stats = {"omega_bar": {"mean": 0.3, "std": 3.0}, "closure": {"mean": -0.2, "std": 1.5}}
    target = SLTClosureModel(32, 2 * math.pi, window=3, stats=stats)

    def term(model, w):
        s = model.stats
        x = (w - s["omega_bar"]["mean"]) / s["omega_bar"]["std"]
        return model.mean_net(x) * s["closure"]["std"] + s["closure"]["mean"]

    w = 4 * torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = term(target, w)
        copy_mean_network(target, source)
        a, b = term(source, w), term(target, w)
    scale = float(a.abs().max())
    assert scale > 1 and float((before - a).abs().max()) > 0.1 * scale
    assert float((a - b).abs().max()) < 1e-5 * scale


def test_calibration_of_an_slt_closure_uses_its_windows(consecutive_data, tmp_path, capsys):
    """predict_mean of a history-dependent model: one prediction per complete window, at its last
    pair (with the residual decoder silenced the mean of the draws is μ of the last ω̄ exactly);
    `hybrid calibrate` writes the gains into the SLT card and the closure applies them."""
    from closures.calibration import predict_mean
    from closures.slt import save_slt_closure
    data = ClosureDataset(consecutive_data, "train", stats=STATS)
    model = tiny_model()
    wins = data.windows(W)
    assert 0 < len(wins) < len(data)                           # fewer windows than pairs
    model.decode = lambda r: torch.zeros(*r.shape[:-1], 1, N, N)
    pred, truth = predict_mean(model, data, samples=3, batch=4)
    last = data.omega_bar[torch.as_tensor(wins[:, -1])]
    with torch.no_grad():
        mu = model.denormalise(model.mean(last).double(), "closure")[:, 0].numpy()
    np.testing.assert_allclose(pred, mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(truth, model.denormalise(
        data.closure[torch.as_tensor(wins[:, -1])].double(), "closure")[:, 0].numpy())
    stem = tmp_path / "m"
    save_slt_closure(tiny_model(), stem)
    assert main(["calibrate", "--model", str(stem), "--data", str(consecutive_data),
                 "--shells", "1", "--samples", "2"]) == 0, capsys.readouterr().err
    cal = json.loads(stem.with_suffix(".json").read_text())["calibration"]
    assert cal["fitted_on"] == f"split 'train', {len(wins)} pairs"
    assert SLTClosure(path=stem).shell_gains == cal["shell_gains"]


def test_missing_data_and_bad_model_files_are_named(tmp_path, capsys):
    assert main(["train", "slt-closure", "--data", str(tmp_path / "none.nc"), "--out",
                 str(tmp_path / "m")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["run", "kolmogorov", "--closure", "slt-closure", "--closure-arg",
                 f"path={tmp_path / 'nothing'}", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--closure" in err and "nothing.json" in err and not (tmp_path / "r").exists()
    from closures.slt import save_slt_closure
    save_slt_closure(tiny_model(), tmp_path / "bad")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="bad.pt"):
        SLTClosure(path=tmp_path / "bad")
    with pytest.raises(ValueError, match="closure grid mismatch"):
        SLTClosure(tiny_model()).reset(Grid(32, LBOX), 1, {}, 0)
