"""The shipped ``betaplane-hybrid`` closures (closures/weights/ldm-betaplane and, where shipped,
slt-closure-betaplane), checked on a fresh DNS.

Fresh data: the preset's DNS 128² (dt 0.025) from rest with the ring-forcing seed 77 (training
data seed 20, test data seeds 21 and 12), one member, spun up for 400 time units (jets formed),
then the filtered vorticity ω̄ and the exact closure term C = −Π on the 32² grid at three times
2 time units apart (:func:`solvers.filters.subgrid_term`, the data's filter). The numbers are
recomputed here, not read back from the card.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from closures import get_closure
from closures.ldm import WEIGHTS_DIR, load_model, model_paths
from hybrid.config import load_preset
from solvers import filters

NAME = "ldm-betaplane"
AVAILABLE = model_paths(WEIGHTS_DIR / NAME)[0].is_file()
SLT = "slt-closure-betaplane"
CLOSURES = [("ldm", NAME), ("ldm-mean", NAME)] + (
    [("slt-closure", SLT)] if model_paths(WEIGHTS_DIR / SLT)[0].is_file() else [])
SPINUP, TIMES = 400.0, (400.0, 402.0, 404.0)

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not AVAILABLE, reason=f"{NAME} is not shipped")]


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def energy_input(omega: np.ndarray, c: np.ndarray) -> float:
    """−⟨ψ C⟩ summed over the fields: the rate at which C feeds the resolved energy."""
    from benchmarks.closure_energetics import shell_transfers
    return float(shell_transfers(omega, c, 2 * np.pi)[0].sum())


@pytest.fixture(scope="module")
def fresh():
    preset = load_preset("betaplane-hybrid")
    dns = preset.make_solver("dns", members=1, seed=77)
    dns.set_vorticity(preset.initial_vorticity(dns))
    les = preset.make_solver("les")
    delta = preset.les_filter_width()
    w, c, start = [], [], None
    for t in TIMES:
        dns.step(int(round((t - dns.t) / dns.dt)))
        w_hat, pi_hat = filters.subgrid_term(dns.grid, les.grid, np.asarray(dns.vorticity_hat),
                                             delta)
        w.append(np.fft.irfft2(w_hat[0], s=(32, 32)))
        c.append(-np.fft.irfft2(pi_hat[0], s=(32, 32)))
        if start is None:
            start = w_hat
    return {"omega": np.array(w), "C": np.array(c), "start_hat": start, "preset": preset}


def test_the_shipped_betaplane_model_matches_its_preset_and_grid():
    pt, _ = model_paths(WEIGHTS_DIR / NAME)
    assert pt.stat().st_size < 20e6
    model = load_model(WEIGHTS_DIR / NAME)                  # weights_only=True inside
    card = model.card
    assert model.n == 32 and model.L == pytest.approx(2 * np.pi)
    assert card["data"]["preset"] == "betaplane-hybrid"
    assert card["data"]["generation"]["target"] == "subgrid"
    assert card["command"].startswith("hybrid train ldm ") and " --data " in card["command"]
    assert card["metrics"]["test"]["split"] == "test"


def test_the_mean_network_and_the_draws_carry_the_closure_energy_on_fresh_dns(fresh):
    """On fresh pairs the exact C feeds the resolved energy (−⟨ψ̄C⟩ > 0: the subgrid eddies drive
    the jets); the mean network μ(ω̄) and the mean of 8 draws must feed it too, with the same sign,
    and beat C = 0 (relative error < 1) where Smagorinsky, which removes energy, cannot."""
    model = load_model(WEIGHTS_DIR / NAME)
    x = torch.from_numpy(model.normalise(fresh["omega"], "omega_bar").astype(np.float32))[:, None]
    with torch.inference_mode():
        d = model.sample(x, torch.Generator().manual_seed(0), samples=8)
    draws = model.denormalise(d[:, :, 0].double(), "closure").numpy()      # (N, 8, n, n)
    mean = draws.mean(axis=1)
    exact = energy_input(fresh["omega"], fresh["C"])
    assert exact > 0
    assert energy_input(fresh["omega"], mean) > 0.2 * exact
    err = rel(mean, fresh["C"])
    print(f"\n{NAME}: fresh error of the mean of 8 draws {err:.3f}; energy input "
          f"{energy_input(fresh['omega'], mean):.3g} against {exact:.3g}")
    assert err < 1.0


@pytest.mark.parametrize("registry, name", CLOSURES)
def test_a_short_betaplane_hybrid_run_with_the_shipped_closure_stays_finite(fresh, registry, name):
    """From ω̄ at t = 400, 50 time units (500 LES steps, a refresh every 5) of two members: finite,
    and the closure feeds the resolved energy (its budget term is positive in both members), as
    the exact term does; an eddy viscosity's would be negative."""
    s = fresh["preset"].make_solver("les", members=2, seed=3)
    s.set_vorticity_hat(np.repeat(fresh["start_hat"], 2, axis=0))
    s.set_closure(get_closure(registry, path=name), 5)
    s.step(500)
    assert np.isfinite(np.asarray(s.vorticity)).all()
    fed = np.asarray(s.budget_summary()["energy_closure"])
    print(f"\n{registry}: energy put in by the closure over 50 time units {fed}")
    assert fed.shape == (2,) and np.all(fed > 0)
