"""The latent diffusion closure (closures.ldm): batching, seeding, restarts, files, a hybrid run."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from closures import get_closure
from closures.base import closure_state
from closures.ldm import (LatentDiffusionClosure, LatentDiffusionModel, MeanNetworkClosure,
                          ModelFileError, load_model, sample_per_member, save_model, RHO, STEPS,
                          T_START)
from closures.losses import sample_ve, ve_marginal_std
from solvers import KolmogorovFlow
from solvers.grid import Grid

N, L = 16, 2 * math.pi
TINY = dict(latent_channels=2, ae_channels=(4, 4, 4), width=8, modes=2, layers=2, time_dim=16,
            proj_hidden=16)
STATS = {"omega_bar": {"mean": 0.1, "std": 2.0}, "closure": {"mean": -0.2, "std": 0.5}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(space="latent", seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LatentDiffusionModel(N, space=space, L=L, stats=STATS,
                                    **dict(TINY, modes=2 if space == "latent" else 4))


def state_of(members=3, seed=1, step=0):
    grid = Grid(N, L)
    w = np.random.default_rng(seed).standard_normal((members, N, N))
    return closure_state(grid, np.fft.rfft2(w), step=step)


def ready(closure, members=3, seed=7):
    closure.reset(Grid(N, L), members, {}, seed)
    return closure


@pytest.mark.parametrize("space", ["latent", "physical"])
def test_shapes_and_one_batched_pass_per_refresh(space):
    model = make_model(space)
    calls = {"enc": [], "score": [], "dec": []}
    model.score_net.register_forward_hook(lambda m, i, o: calls["score"].append(i[0].shape[0]))
    if space == "latent":
        model.ae_omega.encoder.register_forward_hook(
            lambda m, i, o: calls["enc"].append(i[0].shape[0]))
        model.ae_closure.decoder.register_forward_hook(
            lambda m, i, o: calls["dec"].append(i[0].shape[0]))
        model.ae_closure.encoder.register_forward_hook(lambda m, i, o: calls["enc"].append(-1))
    clo = ready(LatentDiffusionClosure(model, every=2, steps=4), members=5)
    out = clo(state_of(5))
    assert out.shape == (5, N, N) and out.dtype == np.float64 and np.all(np.isfinite(out))
    assert calls["score"] == [5] * 4                 # `steps` passes, all members together
    if space == "latent":
        assert calls["enc"] == [5] and calls["dec"] == [5]
    for k in calls:
        calls[k].clear()
    clo2 = ready(LatentDiffusionClosure(model, steps=3, samples=4), members=5)
    assert clo2(state_of(5)).shape == (5, N, N)
    assert calls["score"] == [20] * 3
    if space == "latent":
        assert calls["enc"] == [5] and calls["dec"] == [20]


def test_chunked_refresh_equals_one_batched_call():
    model = make_model()
    calls = []
    model.ae_closure.decoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    s = state_of(5)
    whole = ready(LatentDiffusionClosure(model, steps=3, chunk=None), 5, seed=3)(s)
    assert calls == [5]
    calls.clear()
    parts = ready(LatentDiffusionClosure(model, steps=3, chunk=2), 5, seed=3)(s)
    assert calls == [2, 2, 1]
    # each member's noise comes from its own generator: chunking changes round-off at most
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-5 * np.abs(whole).max())
    with pytest.raises(ValueError, match="chunk"):
        LatentDiffusionClosure(model, chunk=0)


def test_bfloat16_convolutions_change_the_sample_by_round_off_only():
    model = make_model()
    s = state_of(3)
    f32 = ready(LatentDiffusionClosure(model, steps=3), 3, seed=4)(s)
    b16 = ready(LatentDiffusionClosure(model, steps=3, precision="bfloat16"), 3, seed=4)(s)
    rel = np.linalg.norm(b16 - f32) / np.linalg.norm(f32)
    assert 0 < rel < 0.05                     # bfloat16 keeps 8 bits: ~0.4 % per operation
    with pytest.raises(ValueError, match="precision"):
        LatentDiffusionClosure(model, precision="float16")
    # the mean network alone, likewise
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LatentDiffusionModel(N, L=L, stats=STATS, **dict(TINY, mean_width=4,
                                                                  mean_blocks=1))
        for p in model.mean_net.parameters():           # its last layer starts at zero
            p.data.normal_(0.0, 0.3)
    f32 = ready(MeanNetworkClosure(model), 3)(s)
    b16 = ready(MeanNetworkClosure(model, precision="bfloat16"), 3)(s)
    assert 0 < np.linalg.norm(b16 - f32) / np.linalg.norm(f32) < 0.05
    with pytest.raises(ValueError, match="precision"):
        MeanNetworkClosure(model, precision="half")


def test_seeding_determinism_and_member_streams():
    model = make_model()
    s = state_of(4)
    a = ready(LatentDiffusionClosure(model), 4, seed=11)(s)
    b = ready(LatentDiffusionClosure(model), 4, seed=11)(s)
    c = ready(LatentDiffusionClosure(model), 4, seed=12)(s)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    # members differ from each other even with identical inputs
    same = closure_state(Grid(N, L), np.repeat(s.vorticity_hat[:1], 4, axis=0))
    d = ready(LatentDiffusionClosure(model), 4, seed=11)(same)
    assert not np.allclose(d[0], d[1])
    # a member's draws depend only on its own stream: member 2 run alone as member 2 of the
    # ensemble (first_member=2) sees the same torch seed as in the full batch
    full = ready(LatentDiffusionClosure(model), 4, seed=11)
    full(s)
    alone = LatentDiffusionClosure(model)
    alone.reset(Grid(N, L), 1, {"first_member": 2}, 11)
    alone(closure_state(Grid(N, L), s.vorticity_hat[2:3]))
    assert alone.last_seeds == full.last_seeds[2:3]


def test_restart_is_bit_exact():
    model = make_model()
    s1, s2 = state_of(3, seed=1), state_of(3, seed=2)
    run = ready(LatentDiffusionClosure(model), 3)
    run(s1)
    saved = json.loads(json.dumps(run.get_state()))       # JSON round trip, as in restart files
    expected = run(s2)
    other = ready(LatentDiffusionClosure(model), 3)
    other.set_state(saved)
    assert np.array_equal(other(s2), expected)
    assert other.calls == run.calls == 2


def test_sampler_matches_sample_ve_and_starts_at_the_data_variance():
    model = make_model()
    cond = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    ours = sample_per_member(model.score_net, cond, [torch.Generator().manual_seed(5)], 1,
                             (2, 4, 4), steps=6, t_start=0.4, rho=7.0)
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(1, 2, 4, 4, generator=g) * math.sqrt(1 + float(ve_marginal_std(0.4)) ** 2)
    ref = sample_ve(model.score_net, (1, 2, 4, 4), cond, steps=6, x_init=x0, generator=g)
    assert torch.equal(ours, ref)
    # exact score of N(0, 1): the variance error is the discretisation's, not the start's.
    # Karras ρ = 7 from t_start 0.4, measured: 10 steps 1.36 (matched start) / 1.36 (bare prior
    # start); 20 steps 1.07 / 1.02; 40 steps 1.03 / 0.95. The defaults (ρ = 1, t_start 0.3):
    # 10 steps 0.95, 5 steps 0.90 (the exact variance recursion of the linear update).
    def unit(x, t, c):
        return -x / (1 + ve_marginal_std(t) ** 2)[:, None]

    def var(steps, data_var=1.0, **kw):
        kw = kw or {"t_start": 0.4, "rho": 7.0}
        return float(sample_per_member(unit, torch.zeros(20000, 1),
                                       torch.Generator().manual_seed(1), 1, (2,), steps=steps,
                                       data_var=data_var, **kw).var())
    assert 1.25 < var(10) < 1.5 and 1.25 < var(10, 0.0) < 1.5
    assert abs(var(20) - 1) < 0.12 and abs(var(40) - 1) < 0.06
    assert (T_START, RHO, STEPS) == (0.3, 1.0, 10)
    assert abs(var(10, t_start=T_START, rho=RHO) - 0.95) < 0.04       # 20000 draws: SE ≈ 0.01
    assert abs(var(5, t_start=T_START, rho=RHO) - 0.90) < 0.04


def test_closure_output_is_the_denormalised_sample():
    """C = std_C·(decoded sample of the normalised ω̄) + mean_C, per member with its own seed."""
    model = make_model()
    s = state_of(2)
    clo = ready(LatentDiffusionClosure(model, steps=3), 2)
    out = clo(s)
    x = torch.from_numpy(((s.vorticity - 0.1) / 2.0).astype(np.float32))[:, None]
    gens = [torch.Generator().manual_seed(k) for k in clo.last_seeds]
    ref = model.sample(x, gens, steps=3)[:, 0, 0].double().numpy() * 0.5 - 0.2
    assert np.array_equal(out, ref)


def test_save_load_round_trip(tmp_path):
    model = make_model()
    pt, js = save_model(model, tmp_path / "m", {"metrics": {"rel_error": 0.5}})
    assert pt.name == "m.pt" and js.name == "m.json"
    back = load_model(tmp_path / "m")
    card = json.loads(js.read_text())
    assert card["metrics"]["rel_error"] == 0.5 and card["config"] == model.config
    assert back.stats == model.stats and back.card["grid"] == {"n": N, "L": L}
    a = ready(LatentDiffusionClosure(model), 2)(state_of(2))
    b = ready(LatentDiffusionClosure(tmp_path / "m.pt"), 2)(state_of(2))
    c = ready(get_closure("ldm", path=str(tmp_path / "m"), every=3), 2)(state_of(2))
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_bad_files_name_the_file(tmp_path):
    model = make_model()
    save_model(model, tmp_path / "m")
    pt, js = tmp_path / "m.pt", tmp_path / "m.json"
    # corrupt weights: random bytes
    good = pt.read_bytes()
    pt.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ModelFileError, match=r"m\.pt.*not a readable"):
        load_model(tmp_path / "m")
    # weights of another architecture under this card
    save_model(make_model("physical"), tmp_path / "other")
    pt.write_bytes((tmp_path / "other.pt").read_bytes())
    with pytest.raises(ModelFileError, match=r"m\.pt does not match its card .*m\.json"):
        load_model(tmp_path / "m")
    pt.write_bytes(good)
    load_model(tmp_path / "m")
    # a card whose config does not build the listed tensors
    card = json.loads(js.read_text())
    js.write_text(json.dumps({**card, "config": {**card["config"], "width": 6}}))
    with pytest.raises(ModelFileError, match=r"m\.json"):
        load_model(tmp_path / "m")
    js.write_text("{not json")
    with pytest.raises(ModelFileError, match=r"m\.json.*not readable JSON"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"nothing\.json does not exist"):
        load_model(tmp_path / "nothing")
    save_model(model, tmp_path / "w")
    (tmp_path / "w.pt").unlink()
    with pytest.raises(ModelFileError, match=r"w\.pt does not exist"):
        LatentDiffusionClosure(path=tmp_path / "w")


def test_shipped_model_names_resolve_to_the_weights_folder(tmp_path, monkeypatch):
    import closures.ldm.files as ldm
    monkeypatch.setattr(ldm, "WEIGHTS_DIR", tmp_path / "weights")
    save_model(make_model(), tmp_path / "weights" / "tiny")
    monkeypatch.chdir(tmp_path)
    assert ldm.resolve_model_path("tiny") == tmp_path / "weights" / "tiny"
    assert LatentDiffusionClosure(path="tiny").path == str(tmp_path / "weights" / "tiny")
    save_model(make_model(), tmp_path / "tiny")                  # a local file wins
    assert ldm.resolve_model_path("tiny.pt") == Path("tiny")
    with pytest.raises(ModelFileError, match="nothing.json"):
        LatentDiffusionClosure(path="nothing")                   # neither local nor shipped
    monkeypatch.setattr(LatentDiffusionClosure, "default_model", "tiny")
    assert LatentDiffusionClosure().model.n == N


def test_grid_check_and_arguments():
    model = make_model()
    with pytest.raises(ValueError, match="grid mismatch"):
        LatentDiffusionClosure(model).reset(Grid(32, L), 1, {}, 0)
    with pytest.raises(ValueError, match="grid mismatch"):
        LatentDiffusionClosure(model).reset(Grid(N, 1.0), 1, {}, 0)
    for kw in ({"steps": 0}, {"samples": 0}, {"t_start": 2.0}, {"threads": 0}, {"rho": 0},
               {"rho": "1"}):
        with pytest.raises(ValueError):
            LatentDiffusionClosure(model, **kw)
    with pytest.raises(ValueError, match="model or a path, not both"):
        LatentDiffusionClosure(model, path="x")
    with pytest.raises(ValueError, match="modes"):
        LatentDiffusionModel(16, modes=3)
    with pytest.raises(ValueError, match="divisible by 4"):
        LatentDiffusionModel(18)
    assert LatentDiffusionModel.from_config(model.config).config == model.config


def test_short_hybrid_run_stays_finite():
    solver = KolmogorovFlow(n=N, L=L, members=3, seed=0, dt=0.01)
    solver.set_vorticity(np.random.default_rng(0).standard_normal((3, N, N)))
    clo = LatentDiffusionClosure(make_model(), steps=4, threads=1)
    solver.set_closure(clo, every=2)
    solver.step(20)
    assert np.all(np.isfinite(solver.vorticity)) and clo.calls == 10


def test_mean_network_closure_is_the_mu_inside_the_ldm_and_deterministic():
    """'ldm-mean' returns the μ(ω̄) that every L-CDM draw is built on: with the decoder of the
    residual forced to zero, an L-CDM refresh equals the mean-network closure's term; computed by
    hand it is std_C·μ((ω̄ − mean_ω)/std_ω) + mean_C; two seeds give the same term."""
    from closures.ldm import MeanNetworkClosure
    model = make_model()
    model.config.update(mean_width=4, mean_blocks=1)
    from closures.nn import MeanNet
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model.mean_net = MeanNet(4, 1)
        for p in model.mean_net.parameters():       # a visibly non-zero μ
            p.data.normal_(0.0, 0.3)
    model.eval()
    st = state_of(5)
    mean_clo = ready(get_closure("ldm-mean", model=model, chunk=2), members=5, seed=1)
    term = mean_clo(st)
    again = ready(MeanNetworkClosure(model, chunk=2), members=5, seed=99)(st)
    np.testing.assert_array_equal(term, again)                 # no randomness
    assert mean_clo(st) is not term and np.array_equal(mean_clo(st), term)
    assert np.std(term) > 1e-3
    x = torch.from_numpy(((st.vorticity - 0.1) / 2.0).astype(np.float32))[:, None]
    with torch.no_grad():
        by_hand = model.mean_net(x)[:, 0].double().numpy() * 0.5 - 0.2
    np.testing.assert_allclose(term, by_hand, rtol=0, atol=1e-5 * np.abs(term).max())
    ldm = ready(LatentDiffusionClosure(model, steps=3), members=5, seed=4)
    model.decode_closure = lambda z: torch.zeros(z.shape[0], 1, N, N)
    np.testing.assert_allclose(ldm(st), term, rtol=0, atol=1e-5 * np.abs(term).max())
    with pytest.raises(ValueError, match="no mean network"):
        MeanNetworkClosure(make_model())
    with pytest.raises(ValueError, match="chunk"):
        MeanNetworkClosure(model, chunk=0)


def test_a_refresh_leaves_the_process_torch_threads_alone():
    """threads applies to the refresh only: the caller's torch thread count is the same after."""
    from closures.ldm import torch_threads
    torch.set_num_threads(2)
    seen = []
    model = make_model()
    model.score_net.register_forward_hook(lambda m, i, o: seen.append(torch.get_num_threads()))
    ready(LatentDiffusionClosure(model, steps=2, threads=1))(state_of())
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_shipped_mean_network_closure_uses_the_shipped_ldm_weights():
    """'ldm-mean' by default loads the shipped L-CDM file and returns its μ(ω̄), uncalibrated."""
    from closures.ldm import load_model, resolve_model_path
    clo = get_closure("ldm-mean")
    model = load_model(resolve_model_path("ldm-kolmogorov"))
    assert clo.path == str(resolve_model_path("ldm-kolmogorov")) and clo.shell_gains == []
    n, L_ = model.grid
    w = 4.0 * np.random.default_rng(0).standard_normal((2, n, n))
    clo.reset(Grid(n, L_), 2, {}, 0)
    term = clo(closure_state(Grid(n, L_), np.fft.rfft2(w)))
    x = torch.from_numpy(model.normalise(w, "omega_bar").astype(np.float32))[:, None]
    with torch.no_grad():
        want = model.denormalise(model.mean_net(x)[:, 0].double().numpy(), "closure")
    np.testing.assert_allclose(term, want, rtol=0, atol=1e-5 * np.abs(want).max())
