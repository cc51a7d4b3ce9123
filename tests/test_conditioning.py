"""Conditioning on PDE parameters: adaptive LayerNorm, local attention on periodic profiles, the
conditioned SLT (identity start, a parameter-dependent AR(1) map learned and interpolated, model
files, parameter checks) and its training on runs at several parameter values. Tiny sizes, one
CPU thread."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.local_emulator_cost import dense_band
from closures.nn.attention import FUSED_KEYS, MultiHeadAttention, TransformerBlock, attend
from closures.nn.conditioning import AdaptiveLayerNorm, ConditionedBlock, LocalAttention
from closures.slt import (SLT, ConditionedSLT, ConditionedTransformer, Emulator,
                          ModelFileError, ensemble_loss, load_emulator, load_slt,
                          read_parameters, save_slt, train_conditioned_slt, train_slt)

torch.set_num_threads(1)

N, L = 16, 3
NAMES = ["beta", "mu"]


def tiny_slt(seed=0):
    torch.manual_seed(seed)
    return SLT(N, window=L, width=8, heads=2, layers=2, hidden=16,
               stats={"mean": 0.1, "std": 0.5}).eval()


def perturb_conditioning(model, seed=3, size=0.3):
    """Give the conditioning weights (zero at initialisation) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.conditioning_parameters():
            p.add_(size * torch.randn(p.shape, generator=g))


# --- adaptive LayerNorm -----------------------------------------------------------------------

def test_adaln_is_the_layernorm_at_initialisation_and_depends_on_c_after_a_step():
    torch.manual_seed(0)
    ln = nn.LayerNorm(8)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    ada = AdaptiveLayerNorm(8, 2, hidden=16)
    res = ada.load_state_dict(ln.state_dict(), strict=False)
    assert not res.unexpected_keys and all(k.startswith("modulation.") for k in res.missing_keys)
    x, c = torch.randn(4, 5, 8), torch.randn(4, 2)
    assert torch.equal(ada(x, c), ln(x))                     # exactly, for any c
    assert torch.equal(ada(x, c[:1]), ln(x))                 # one c for the whole batch
    assert torch.equal(ada(x[:, 0], c), ln(x[:, 0]))         # (B, D) inputs too
    # one gradient step towards a c-dependent target: the output now depends on c
    opt = torch.optim.SGD(ada.parameters(), lr=0.1)
    loss = ((ada(x, c) - c[:, :1, None]) ** 2).mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        a, b = ada(x, torch.zeros(1, 2)), ada(x, torch.ones(1, 2))
        assert float((a - b).abs().min()) > 0
        assert not torch.allclose(ada(x, c), ln(x))
        ada.frozen = True                                    # fixed at the identity again
        assert torch.equal(ada(x, c), nn.functional.layer_norm(x, (8,), ada.weight, ada.bias))
    ada.frozen = False
    with pytest.raises(ValueError, match="needs the conditioning vector"):
        ada(x)
    with pytest.raises(ValueError, match=r"shape \(4 or 1, 2\), got \(3, 2\)"):
        ada(x, torch.zeros(3, 2))


# --- local attention --------------------------------------------------------------------------

@torch.no_grad()
def test_local_attention_is_windowed_shift_equivariant_and_runs_on_other_lengths():
    torch.manual_seed(0)
    att = LocalAttention(8, 2, window=5).double()
    att.bias.normal_()
    noise = torch.randn(3, 1, 8, dtype=torch.float64)
    for n in (12, 20, 5, 3):                                 # one set of weights, four lengths
        x = torch.randn(3, n, 8, dtype=torch.float64)
        for extra in (None, noise):
            y = att(x, extra)
            assert y.shape == x.shape
            assert float((y - dense_band(att, x, extra)).abs().max()) < 1e-12
            for s in (1, n // 2 + 1):                        # cyclic shifts, to round-off
                ys = att(torch.roll(x, s, 1), extra)
                assert float((ys - torch.roll(y, s, 1)).abs().max()) < 1e-12
    # a point outside the window does not matter; one inside does
    x = torch.randn(1, 12, 8, dtype=torch.float64)
    far, near = x.clone(), x.clone()
    far[0, 6] += 1.0
    near[0, 2] += 1.0
    assert torch.equal(att(far)[0, 0], att(x)[0, 0])
    assert not torch.allclose(att(near)[0, 0], att(x)[0, 0])
    with pytest.raises(ValueError, match="window must be an odd integer"):
        LocalAttention(8, 2, window=4)


def test_local_attention_gradients_are_those_of_the_masked_full_attention():
    """The banded computation trains as the masked one: the same gradients with respect to the
    tokens, the extra token, the projections and the offset biases (the edge offsets too)."""
    torch.manual_seed(3)
    att = LocalAttention(8, 2, window=5).double()
    with torch.no_grad():
        att.bias.normal_()
    for n, with_extra in ((12, False), (12, True), (3, True)):
        x = torch.randn(2, n, 8, dtype=torch.float64, requires_grad=True)
        extra = torch.randn(2, 1, 8, dtype=torch.float64, requires_grad=True) \
            if with_extra else None
        weight = torch.randn(2, n, 8, dtype=torch.float64)
        grads = []
        for f in (att, lambda *a: dense_band(att, *a)):
            inputs = [x] + ([extra] if with_extra else [])
            out = (f(x, extra) * weight).sum()
            g = torch.autograd.grad(out, inputs + list(att.parameters()))
            grads.append(g)
        for a, b in zip(*grads):
            assert float((a - b).abs().max()) < 1e-12
        assert float(grads[0][-1].abs().max()) > 0            # the bias gets a gradient


def test_attention_on_many_keys_takes_the_fused_kernel_with_the_same_values_and_gradients():
    """attend() switches to torch's fused kernel from FUSED_KEYS keys on (no bias): values and
    gradients equal softmax(q·kᵀ/√w) v by torch.softmax, on strided heads as the blocks pass
    them, just below and at the switch; with a bias it stays written out."""
    torch.manual_seed(4)
    for S in (FUSED_KEYS - 1, FUSED_KEYS, 2 * FUSED_KEYS):
        qkv = torch.randn(3, 5, S, 2, 4, dtype=torch.float64)          # (q|k|v, B, S, h, w)
        q, k, v = (t.transpose(1, 2).requires_grad_() for t in qkv)      # (B, h, S, w), strided
        ref_q, ref_k, ref_v = (t.detach().clone().requires_grad_() for t in (q, k, v))
        weight = torch.randn(5, 2, S, 4, dtype=torch.float64)
        out = (attend(q, k, v) * weight).sum()
        ref = (torch.softmax(ref_q @ ref_k.transpose(-1, -2) / 2.0, -1) @ ref_v * weight).sum()
        out.backward()
        ref.backward()
        assert abs(out.item() - ref.item()) < 1e-12
        for a, b in ((q, ref_q), (k, ref_k), (v, ref_v)):
            assert float((a.grad - b.grad).abs().max()) < 1e-12
    bias = torch.zeros(1, 1, 1, FUSED_KEYS, dtype=torch.float64)
    bias[..., 0] = -math.inf
    q, k, v = torch.randn(3, 2, 1, 3, FUSED_KEYS, 4, dtype=torch.float64)
    w = torch.softmax(q @ k.transpose(-1, -2) / 2.0 + bias, -1)
    assert torch.allclose(attend(q, k, v, bias), w @ v, atol=1e-14, rtol=0)
    assert float(w[..., 0].abs().max()) == 0.0


@torch.no_grad()
def test_a_window_covering_the_profile_is_full_attention_with_the_same_weights():
    torch.manual_seed(1)
    full = MultiHeadAttention(8, 2).double()
    local = LocalAttention(8, 2, window=13).double()
    res = local.load_state_dict(full.state_dict(), strict=False)
    assert res.missing_keys == ["bias"] and not res.unexpected_keys
    noise = torch.randn(2, 1, 8, dtype=torch.float64)
    for n in (7, 12, 13):
        x = torch.randn(2, n, 8, dtype=torch.float64)
        for extra in (None, noise):
            assert float((local(x, extra) - full(x, extra)).abs().max()) < 1e-12
    local.bias[0, 6] = 1.0                                    # a relative position bias: differs
    x = torch.randn(2, 12, 8, dtype=torch.float64)
    assert float((local(x) - full(x)).abs().max()) > 1e-3
    small = LocalAttention(8, 2, window=5).double()
    small.load_state_dict(full.state_dict(), strict=False)
    assert float((small(x) - full(x)).abs().max()) > 1e-3    # a narrower window differs


@torch.no_grad()
def test_conditioned_blocks_start_as_the_plain_block_and_run_on_two_lengths():
    torch.manual_seed(2)
    plain = TransformerBlock(8, 2, 16, noise_token=True)
    x, c = torch.randn(3, 5, 8), torch.randn(3, 2)
    for conditioning in ("adaln", "concat"):
        block = ConditionedBlock(8, 2, 16, 2, noise_token=True, conditioning=conditioning)
        block.load_state_dict(plain.state_dict(), strict=False)
        a = plain(x, torch.Generator().manual_seed(0))
        assert torch.equal(block(x, c, torch.Generator().manual_seed(0)), a)
    local = ConditionedBlock(8, 2, 16, 2, window=3)
    for n in (6, 11):
        assert local(torch.randn(2, n, 8), c[:1]).shape == (2, n, 8)
    with pytest.raises(ValueError, match="conditioning must be one of adaln, concat"):
        ConditionedBlock(8, 2, 16, 2, conditioning="film")
    with pytest.raises(ValueError, match="window .* conditioning='adaln' only"):
        ConditionedBlock(8, 2, 16, 2, conditioning="concat", window=3)


# --- the conditioned SLT ----------------------------------------------------------------------

@torch.no_grad()
@pytest.mark.parametrize("conditioning", ["adaln", "concat"])
def test_the_conditioned_slt_starts_as_its_slt_and_then_depends_on_the_parameters(conditioning):
    slt = tiny_slt()
    model = ConditionedSLT.from_slt(slt, NAMES, conditioning).eval()
    z = torch.randn(4, L, N // 4)
    ref = slt.step(z, torch.Generator().manual_seed(0), members=3)
    for p in ({"beta": 1.0, "mu": 0.1}, {"beta": 9.0, "mu": -2.0}):
        assert torch.equal(model.step(z, torch.Generator().manual_seed(0), 3, params=p), ref)
    perturb_conditioning(model)
    a = model.step(z, torch.Generator().manual_seed(0), 3, params={"beta": 1.0, "mu": 0.1})
    b = model.step(z, torch.Generator().manual_seed(0), 3, params={"beta": 9.0, "mu": 0.1})
    assert float((a - b).abs().max()) > 1e-4
    # one row per window; a context of B rows on a batch of 2B windows is tiled member-major
    rows = torch.tensor([[1.0, 0.1], [9.0, 0.1], [1.0, 0.1], [9.0, 0.1]])
    r = model.step(z, torch.Generator().manual_seed(0), 3, params=rows)
    assert torch.allclose(r[:, 0], a[:, 0]) and torch.allclose(r[:, 1], b[:, 1])
    with model.conditioned_on(rows[:2]):
        tiled = model.step(z, torch.Generator().manual_seed(0), 3)
    assert torch.equal(tiled, r)
    # frozen: the identity again, whatever the parameters
    model.freeze_conditioning(True)
    assert model.config["frozen"] and not any(p.requires_grad
                                              for p in model.conditioning_parameters())
    assert torch.equal(model.step(z, torch.Generator().manual_seed(0), 3, params=rows), ref)
    with pytest.raises(ValueError, match="conditioned on beta, mu: give params"):
        model.step(z, members=3)
    with pytest.raises(ValueError, match=r"values of shape \(2,\) or \(batch, 2\)"):
        model.step(z, params=[1.0, 2.0, 3.0])


def _slopes(tf, ps, center, scale):
    xs = torch.linspace(-1.5, 1.5, 13)
    xc = xs - xs.mean()
    out = {}
    with torch.no_grad():
        for p in ps:
            c = torch.full((1, 1), (p - center) / scale)
            d = tf(xs.reshape(-1, 1, 1), c, torch.Generator().manual_seed(5), members=2000)[..., 0]
            m = d.mean(0)
            out[p] = (float((xc * (m - m.mean())).sum() / (xc ** 2).sum()), float(d.std(0).mean()))
    return out


@pytest.mark.parametrize("conditioning, frozen", [("adaln", False), ("concat", False),
                                                  ("adaln", True)])
def test_a_conditioned_head_learns_and_interpolates_an_ar1_map_whose_slope_is_the_parameter(
        conditioning, frozen):
    """x' = p x + σ ε, trained at p = 0.2, 0.5, 0.8 (one p per sample): the conditioned model's
    learned mean slope is p at those and at p = 0.35, 0.65 never seen (measured within 0.02,
    spread within 4 %); with the conditioning frozen it learns one slope for all (0.49)."""
    sig, seen = 0.3, torch.tensor([0.2, 0.5, 0.8])
    torch.manual_seed(0)
    tf = ConditionedTransformer(1, 1, window=1, width=16, heads=4, layers=1, hidden=32,
                                align=False, conditioning=conditioning)
    tf.freeze_conditioning(frozen)
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam([p for p in tf.parameters() if p.requires_grad], lr=3e-3)
    for it in range(600):
        if it == 420:
            opt.param_groups[0]["lr"] = 1e-3
        p = seen[torch.randint(0, 3, (256,), generator=g)]
        x = torch.randn(256, 1, 1, generator=g)
        y = p[:, None] * x[:, -1] + sig * torch.randn(256, 1, generator=g)
        loss = ensemble_loss(tf(x, ((p - 0.5) / 0.3)[:, None], g, members=4), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    got = _slopes(tf, (0.2, 0.35, 0.5, 0.65, 0.8), 0.5, 0.3)
    if frozen:
        assert len({s for s, _ in got.values()}) == 1                 # one map for every p
        assert abs(got[0.2][0] - 0.2) > 0.2 and abs(got[0.8][0] - 0.8) > 0.2, got
    else:
        for p, (slope, spread) in got.items():
            assert abs(slope - p) < 0.05, got
            assert abs(spread / sig - 1) < 0.1, got


# --- model files and parameter checks ---------------------------------------------------------

def conditioned_model(conditioning="adaln"):
    model = ConditionedSLT.from_slt(tiny_slt(), NAMES, conditioning,
                                    parameter_stats={"beta": {"centre": 8.0, "scale": 3.0},
                                                     "mu": {"centre": 0.004, "scale": 0.002}})
    perturb_conditioning(model)
    return model.eval()


@pytest.mark.parametrize("conditioning", ["adaln", "concat"])
def test_conditioned_model_files_round_trip_with_weights_only(tmp_path, monkeypatch,
                                                               conditioning):
    model = conditioned_model(conditioning)
    pt, js = save_slt(model, tmp_path / "c", {"metrics": {}})
    card = json.loads(js.read_text())
    assert card["format"] == "hybrid-slt-card" and card["version"] == 2
    assert card["config"]["parameters"] == NAMES
    assert card["config"]["conditioning"] == conditioning
    assert card["stats"]["parameters"]["beta"] == {"centre": 8.0, "scale": 3.0}
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    back = load_slt(tmp_path / "c")
    assert calls and all(k.get("weights_only") is True for k in calls)
    assert isinstance(back, ConditionedSLT) and back.parameter_names == tuple(NAMES)
    assert back.stats == model.stats and back.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  back.state_dict().values()))
    z = torch.randn(2, L, N // 4)
    p = {"beta": 6.0, "mu": 0.005}
    with torch.no_grad():
        assert torch.equal(back.step(z, torch.Generator().manual_seed(0), 2, params=p),
                           model.step(z, torch.Generator().manual_seed(0), 2, params=p))
    _, pjs = save_slt(tiny_slt(), tmp_path / "plain")          # an SLT is still a version-1 card
    assert json.loads(pjs.read_text())["version"] == 1


def test_mismatched_conditioned_files_name_the_file(tmp_path):
    pt, js = save_slt(conditioned_model(), tmp_path / "c")
    ppt, _ = save_slt(tiny_slt(), tmp_path / "plain")
    card = json.loads(js.read_text())
    good = pt.read_bytes()
    pt.write_bytes(ppt.read_bytes())                          # an SLT's weights under the card
    with pytest.raises(ModelFileError, match=r"c\.pt does not match its card .*c\.json"):
        load_slt(tmp_path / "c")
    pt.write_bytes(good)
    stats = {**card["stats"], "parameters": {"beta": card["stats"]["parameters"]["beta"]}}
    js.write_text(json.dumps({**card, "stats": stats}))
    with pytest.raises(ModelFileError, match=r"c\.json: stats\['parameters'\] must give the "
                                             r"normalisation of exactly the parameters beta, mu"):
        load_slt(tmp_path / "c")
    bad = {**card["stats"]["parameters"], "mu": {"centre": 0.0, "scale": 0.0}}
    js.write_text(json.dumps({**card, "stats": {**card["stats"], "parameters": bad}}))
    with pytest.raises(ModelFileError, match=r"scale'\] must be a finite number > 0"):
        load_slt(tmp_path / "c")
    config = {k: v for k, v in card["config"].items() if k != "parameters"}
    js.write_text(json.dumps({**card, "config": config}))     # read as an SLT: other tensors
    with pytest.raises(ModelFileError, match=r"c\.json"):
        load_slt(tmp_path / "c")
    js.write_text(json.dumps({**card, "version": 5}))
    with pytest.raises(ModelFileError, match="has version 5; this package reads up to 4"):
        load_slt(tmp_path / "c")
    js.write_text(json.dumps({**card, "config": {**card["config"], "conditioning": "film"}}))
    with pytest.raises(ModelFileError, match=r"bad architecture config: conditioning must be"):
        load_slt(tmp_path / "c")


def test_emulators_check_their_parameters(tmp_path):
    save_slt(conditioned_model(), tmp_path / "c")
    save_slt(tiny_slt(), tmp_path / "plain")
    h = np.random.default_rng(0).standard_normal((L, N))
    em = load_emulator(tmp_path / "c", threads=1)
    p = {"beta": 6.0, "mu": 0.005}
    a = em.rollout(h, 3, 2, seed=1, params=p)
    assert a.shape == (2, 3, N)
    assert np.array_equal(a, load_emulator(tmp_path / "c", params=p).rollout(h, 3, 2, seed=1))
    assert not np.allclose(a, em.rollout(h, 3, 2, seed=1, params={**p, "beta": 10.0}))
    for params, words in [(None, r"conditioned on beta, mu: give params"),
                          ({"beta": 6.0}, r"missing parameter\(s\) 'mu'"),
                          ({**p, "gamma": 1.0}, r"unknown parameter\(s\) 'gamma'"),
                          ({**p, "beta": math.nan}, r"params\['beta'\] must be a finite number"),
                          ({**p, "beta": "8"}, r"params\['beta'\] must be a finite number"),
                          ([6.0, 0.005], "params must be a dict of the parameters beta, mu")]:
        with pytest.raises(ValueError, match=words):
            em.rollout(h, 2, 1, params=params)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'gamma'"):
        load_emulator(tmp_path / "c", params={**p, "gamma": 1.0})
    plain = load_emulator(tmp_path / "plain")
    assert plain.parameter_names == () and em.parameter_names == tuple(NAMES)
    assert plain.rollout(h, 2, 1).shape == (1, 2, N)
    with pytest.raises(ValueError, match="not conditioned on parameters"):
        plain.rollout(h, 2, 1, params={"beta": 8.0})
    with pytest.raises(ValueError, match="not conditioned on parameters"):
        Emulator(tiny_slt(), params={"beta": 8.0})


# --- training on runs at several parameter values (the runs: conftest.py) ----------------------

SMALL = dict(batch=64, progress=False, threads=1, val_fraction=0.25)
ARCH = dict(window=L, width=8, heads=2, layers=1, hidden=16)


def test_train_conditioned_slt_pretrains_fine_tunes_and_resumes(tmp_path, runs):
    b2, b6 = runs
    assert read_parameters(b6, ["beta", "mu"]) == {"beta": 6.0, "mu": 4e-4}
    # pre-training at one value, conditioning fixed
    train_conditioned_slt([b2], tmp_path / "pre", "beta", freeze=True, epochs=1, **SMALL, **ARCH)
    pre = json.loads((tmp_path / "pre.json").read_text())
    assert pre["config"]["frozen"] and pre["stats"]["parameters"]["beta"]["centre"] == 2.0
    # fine-tuning on both at lr/50, conditioning learned, normalisation from the two runs
    m = train_conditioned_slt([b2, b6], tmp_path / "ft", ["beta"], tmp_path / "pre", epochs=1,
                              **SMALL)
    card = json.loads((tmp_path / "ft.json").read_text())
    assert card["version"] == 2 and not card["config"]["frozen"]
    assert card["stats"]["parameters"] == {"beta": {"centre": 4.0, "scale": 2.0}}
    assert card["training"]["lr"] == pytest.approx(5e-4 / 50)
    assert card["training"]["pretrained"]["kind"] == "ConditionedSLT"
    assert [d["parameters"] for d in card["data"]] == [{"beta": 2.0}, {"beta": 6.0}]
    assert card["conditioning"]["range"] == {"beta": [2.0, 6.0]}
    assert [r["parameters"]["beta"] for r in m["one_step"]] == [2.0, 6.0]
    assert all(r["split"] == "val" and r["rmse"] > 0 for r in m["one_step"])
    em = load_emulator(tmp_path / "ft", params={"beta": 4.0})
    assert em.rollout(np.zeros((L, N)), 2, 2).shape == (2, 2, N)
    # from an unconditioned SLT; stopped after one epoch and resumed: the same weights
    train_slt(b2, tmp_path / "slt", epochs=1, **SMALL, **ARCH)
    data = [b2, (b6, {"beta": 6.0})]
    train_conditioned_slt(data, tmp_path / "full", "beta", tmp_path / "slt", epochs=2, **SMALL)
    part = train_conditioned_slt(data, tmp_path / "cut", "beta", tmp_path / "slt", epochs=2,
                                 stop_after=1, **SMALL)
    assert part["stopped"] and not (tmp_path / "cut.pt").exists()
    train_conditioned_slt(data, tmp_path / "cut", "beta", tmp_path / "slt", epochs=2,
                          resume=True, **SMALL)
    a, b = load_slt(tmp_path / "full"), load_slt(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    assert json.loads((tmp_path / "full.json").read_text())["training"]["pretrained"][
        "kind"] == "SLT"
    # two-step unrolled targets (the multi-step loss) run through the conditioned objective
    m = train_conditioned_slt(data, tmp_path / "k2", "beta", epochs=1, unroll=2, **SMALL,
                              **ARCH)
    assert json.loads((tmp_path / "k2.json").read_text())["training"]["unroll"] == 2
    assert math.isfinite(m["final_train"]["total"]) and len(m["one_step"]) == 2


def test_train_conditioned_slt_names_what_is_wrong(tmp_path, runs):
    b2, b6 = runs
    out = tmp_path / "out"
    out.mkdir()
    U = np.random.default_rng(0).standard_normal((40, N))
    for datasets, params, kwargs, words in [
            ([b2], ["gamma"], {}, r"b2\.nc records no parameter 'gamma'"),
            ([(b2, {"beta": 3.0})], "beta", {}, r"beta=3 given, but .*b2\.nc records beta=2"),
            ([(b2, {"gamma": 3.0})], "beta", {}, r"datasets\[0\]: unknown parameter"),
            ([b2, U], "beta", {}, r"datasets\[1\]: no value of the parameter 'beta'"),
            ([b2, (U[:, :8], {"beta": 1.0})], "beta", {}, "different lengths"),
            ([b2], ["beta", "beta"], {}, "parameters must be distinct"),
            ([], "beta", {}, "datasets must be a non-empty list"),
            ([b2], "beta", {"lr_factor": 0}, "lr_factor must be"),
            ([b2], "beta", {"conditioning": "film"}, "conditioning must be one of"),
            ([b2], "beta", {"window": 0}, "window must be"),
            ([b2], "beta", {"unroll": 0}, "unroll must be"),
            ([b2], "beta", {"unroll": 10, "window": 3}, r"window \+ unroll = 13 profiles")]:
        with pytest.raises(ValueError, match=words):
            train_conditioned_slt(datasets, out / "m", params, epochs=1, **kwargs, **SMALL)
    with pytest.raises(FileNotFoundError, match=r"nothing\.nc does not exist"):
        train_conditioned_slt([tmp_path / "nothing.nc"], out / "m", "beta", **SMALL)
    save_slt(conditioned_model(), tmp_path / "c")
    with pytest.raises(ValueError, match="conditioned on beta, mu, not on beta"):
        train_conditioned_slt([b2], out / "m", "beta", tmp_path / "c", **SMALL)
    with pytest.raises(ValueError, match="window: the architecture comes from the pretrained"):
        train_conditioned_slt([b2], out / "m", NAMES, tmp_path / "c", window=4, **SMALL)
    assert not list(out.iterdir())                             # nothing written
