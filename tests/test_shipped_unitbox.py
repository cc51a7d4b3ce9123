"""The shipped ``ns-unitbox`` closures (closures/weights/ldm-unitbox, pcdm-unitbox), checked on a
fresh DNS.

Fresh data: the preset's DNS 256² (dt 1e-3) from its random initial field of seed 77 (the
training data used seed 0, the test data seed 1), one member, and at t = 5, 5.5, 6 the
subsampled vorticity ω_c and the whole advection term H = −u·∇ω at the 64² points
(:func:`solvers.filters.missing_physics_target`). The numbers are recomputed here, not read back
from the cards.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from closures import get_closure
from closures.ldm import WEIGHTS_DIR, load_model, model_paths
from hybrid.cli import main
from hybrid.config import load_preset
from solvers import filters
from solvers.grid import Grid

SHIPPED = {"ldm-unitbox": ("ldm", "latent"), "pcdm-unitbox": ("pcdm", "physical")}
AVAILABLE = sorted(n for n in SHIPPED if model_paths(WEIGHTS_DIR / n)[0].is_file())
TIMES = (5.0, 5.5, 6.0)
# per model: offline error of the mean of 8 draws, of one draw; hybrid error over that of no
# closure (measured on this seed with the closures' default sampler, 10:1:0.3: L-CDM 0.25, 0.37,
# 0.22; P-CDM, under-trained and over-damped by that sampler, 0.44, 0.72, 0.39)
LIMITS = {"ldm-unitbox": (0.3, 0.45, 0.4), "pcdm-unitbox": (0.55, 0.85, 0.6)}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def fresh():
    """ω_c and H (len(TIMES), 64, 64) of the fresh DNS, and its spectral state at t = 5."""
    preset = load_preset("ns-unitbox")
    dns = preset.make_solver("dns", members=1, seed=77)
    dns.set_vorticity(preset.initial_vorticity(dns))
    coarse = Grid(64, dns.grid.L)
    w, h, start = [], [], None
    for t in TIMES:
        dns.step(int(round((t - dns.t) / dns.dt)))
        wc, hc = filters.missing_physics_target(dns.grid, coarse, np.asarray(dns.vorticity_hat))
        w.append(wc[0])
        h.append(hc[0])
        if start is None:
            start = np.fft.rfft2(wc)
    return {"omega": np.array(w), "H": np.array(h), "start_hat": start, "preset": preset}


@pytest.mark.parametrize("name", AVAILABLE)
def test_the_shipped_unitbox_model_matches_its_preset_and_grid(name):
    registry, space = SHIPPED[name]
    pt, _ = model_paths(WEIGHTS_DIR / name)
    assert pt.stat().st_size < 20e6
    model = load_model(WEIGHTS_DIR / name)                  # weights_only=True inside
    card = model.card
    assert model.space == space and model.n == 64 and model.L == 1.0
    assert card["data"]["preset"] == "ns-unitbox"
    assert card["data"]["generation"]["target"] == "missing-physics"
    assert card["command"].startswith("hybrid train ldm ") and " --data " in card["command"]
    closure = get_closure(registry, path=name)
    assert closure.solver_settings() == {"advection": False}


@pytest.mark.parametrize("name", AVAILABLE)
def test_offline_error_on_fresh_dns(name, fresh):
    """The mean of 8 draws against H on the fresh pairs, and one draw, within :data:`LIMITS`
    (the joint L-CDM on the test file: 0.16 at t = 5 over its 4 trajectories, 0.11 over all its
    pairs; the error is larger early, where H is weak: 0.26–0.35 at t = 0.5–2; a model that had
    learned nothing would be near 1)."""
    model = load_model(WEIGHTS_DIR / name)
    x = torch.from_numpy(model.normalise(fresh["omega"], "omega_bar").astype(np.float32))[:, None]
    with torch.inference_mode():
        d = model.sample(x, torch.Generator().manual_seed(0), samples=8)
    draws = model.denormalise(d[:, :, 0].double(), "closure").numpy()      # (N, 8, n, n)
    err, one = rel(draws.mean(axis=1), fresh["H"]), rel(draws[:, 0], fresh["H"])
    print(f"\n{name}: fresh error {err:.3f}, one draw {one:.3f}")
    assert err < LIMITS[name][0] and one < LIMITS[name][1]


@pytest.mark.parametrize("name", AVAILABLE)
def test_a_short_hybrid_run_tracks_the_dns_where_no_closure_cannot(name, fresh):
    """From ω_c at t = 5, 0.5 time units (500 steps, a closure sample every 5) of the 64² solver
    without its own advection: with the shipped closure it stays finite, within 1 % of the DNS
    at t = 5.5 and below :data:`LIMITS` times the error without a closure (C = 0; measured
    0.021)."""
    registry, _ = SHIPPED[name]
    p = fresh["preset"]

    def run(closure):
        s = p.make_solver("les", members=1, advection=False)
        s.set_vorticity_hat(fresh["start_hat"])
        s.t = TIMES[0]
        if closure is not None:
            s.set_closure(closure, 5)
        s.step(500)
        return np.asarray(s.vorticity)[0]

    w = run(get_closure(registry, path=name))
    assert np.isfinite(w).all()
    err, bare = rel(w, fresh["omega"][1]), rel(run(None), fresh["omega"][1])
    print(f"\n{name}: hybrid error at t = 5.5: {err:.4f}; without closure {bare:.3f}")
    assert err < 0.01 and err < LIMITS[name][2] * bare


def test_a_unitbox_model_is_refused_on_another_preset(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "kolmogorov", "--closure", "ldm", "--closure-arg", "path=ldm-unitbox",
                 "--t-end", "0.01", "--out", str(out)])
    assert code == 2 and "L=1" in capsys.readouterr().err and not out.exists()
