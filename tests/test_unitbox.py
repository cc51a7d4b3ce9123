"""The `ns-unitbox` data of the latent score-based closure paper (docs/ldm-unitbox.md).

``hybrid generate ns-unitbox --target missing-physics`` stores the subsampled DNS vorticity and the
whole advection term H = −u·∇ω of the DNS at the coarse points. This file checks that end to end,
through the command line, against −u·∇ω computed here from first principles (velocity from the
vorticity, products on a zero-padded grid), not with the package's own filters or solver terms.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from hybrid import datasets as hd
from hybrid.cli import main
from hybrid.config import load_preset
from solvers.io import load_restart

N_DNS, N_LES = 64, 16           # the paper's coarsening factor 4 (256² → 64²) on a tiny grid


def _wavenumbers(n: int, L: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kx, ky, mx, my) on the rfft2 layout (n, n//2 + 1) of an n² box of side L."""
    my = np.fft.fftfreq(n, 1.0 / n)[:, None]
    mx = np.fft.rfftfreq(n, 1.0 / n)[None, :]
    return 2 * np.pi / L * mx, 2 * np.pi / L * my, mx, my


def _padded(f_hat: np.ndarray, n: int, m: int) -> np.ndarray:
    """The physical field of the n² spectrum f_hat (no Nyquist content) on an m² grid, m > n."""
    g = np.zeros((m, m // 2 + 1), complex)
    h = n // 2
    g[:h, :h] = f_hat[:h, :h]
    g[m - h + 1:, :h] = f_hat[h + 1:, :h]
    return np.fft.irfft2(g, s=(m, m)) * (m / n) ** 2


def _minus_u_grad_omega(zeta_hat: np.ndarray, L: float) -> tuple[np.ndarray, np.ndarray]:
    """(−P(u·∇ω), −u·∇ω) on the n² DNS grid, from ζ̂ (n, n//2 + 1) alone.

    u = (u, v) is the zero-mean divergence-free velocity with ∂x v − ∂y u = ω:
    û = i ky ω̂/|k|², v̂ = −i kx ω̂/|k|². The product u·∇ω is formed exactly on a 2n² grid (each
    factor holds modes |m| < n/3, the product |m| < 2n/3 < n: no aliasing); P keeps its modes in
    the 2/3-rule box |mx|, |my| ≤ (n − 1)//3, the resolved modes of the pseudo-spectral DNS (the
    Galerkin advection term the DNS integrates). The second field is the unprojected product at
    the DNS points."""
    n = zeta_hat.shape[0]
    kx, ky, mx, my = _wavenumbers(n, L)
    k2 = kx ** 2 + ky ** 2
    inv = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    u_hat, v_hat = 1j * ky * zeta_hat * inv, -1j * kx * zeta_hat * inv
    # the velocity really is the one of ω: curl u = ω, div u = 0 (mean removed)
    assert np.allclose(1j * kx * v_hat - 1j * ky * u_hat, np.where(k2 > 0, zeta_hat, 0),
                       rtol=0, atol=1e-12 * np.abs(zeta_hat).max())
    assert np.allclose(1j * kx * u_hat + 1j * ky * v_hat, 0, atol=1e-12 * np.abs(zeta_hat).max())
    m = 2 * n
    u, v = _padded(u_hat, n, m), _padded(v_hat, n, m)
    wx, wy = _padded(1j * kx * zeta_hat, n, m), _padded(1j * ky * zeta_hat, n, m)
    product = u * wx + v * wy                                  # exact on the 2n² grid
    p_hat = np.fft.rfft2(product)
    kmax = (n - 1) // 3
    keep = np.zeros((n, n // 2 + 1), complex)
    h = n // 2
    keep[:h, :h] = p_hat[:h, :h]
    keep[h + 1:, :h] = p_hat[m - h + 1:, :h]
    keep[(np.abs(my) > kmax) | (mx > kmax)] = 0.0
    projected = np.fft.irfft2(keep, s=(n, n)) / (m / n) ** 2
    return -projected, -product[::2, ::2]


def test_missing_physics_target_is_minus_u_grad_omega_of_the_subsampled_dns(tmp_path):
    out = tmp_path / "unitbox.nc"
    assert main(["generate", "ns-unitbox", "--target", "missing-physics", "--n-dns", str(N_DNS),
                 "--n-les", str(N_LES), "--members", "2", "--samples", "4", "--interval", "0.01",
                 "--seed", "3", "--split", "0,0,1", "--out", str(out)]) == 0
    with hd.open_dataset(out) as ds:
        assert ds.attrs["target"] == "missing-physics" and int(ds.attrs["closure_sign"]) == 1
        assert ds.attrs["filter"] == "subsample" and int(ds.attrs["coarsening_factor"]) == 4
        w_stored, h_stored = ds["omega_bar"].values, ds["subgrid"].values
        times, members = ds["time"].values, ds["member"].values
        L = float(ds.attrs["L"])
    assert w_stored.dtype == np.float32 and w_stored.shape == (4, N_LES, N_LES)
    np.testing.assert_allclose(times, [0, 0, 0.01, 0.01], atol=1e-12)
    np.testing.assert_array_equal(members, [0, 1, 0, 1])

    # the DNS states: t = 0 from the preset's initial field, t = 0.01 from the run's restart
    p = load_preset("ns-unitbox")
    s = p.make_solver("dns", members=2, seed=3, n=N_DNS)
    s.set_vorticity(p.initial_vorticity(s))
    restart = load_restart(hd.restart_path(out))
    assert abs(restart["state"]["t"] - 0.01) < 1e-12
    states = [np.asarray(s.vorticity_hat), np.asarray(restart["state"]["zeta_hat"])]

    r = N_DNS // N_LES
    kmax = (N_DNS - 1) // 3
    _, _, mx, my = _wavenumbers(N_DNS, L)
    outside = (np.abs(my) > kmax) | (mx > kmax)
    for k, zh in enumerate(states):
        for member in range(2):
            i = 2 * k + member
            z = zh[member]
            assert np.all(z[outside] == 0)             # the DNS holds the 2/3-rule modes only
            w = np.fft.irfft2(z, s=(N_DNS, N_DNS))[::r, ::r]
            h, h_pointwise = (f[::r, ::r] for f in _minus_u_grad_omega(z, L))
            scale = np.abs(h).max()
            assert scale > 0
            # equal to float32 rounding of the stored values (half an ulp: 2^-24 relative)
            np.testing.assert_allclose(w_stored[i], w, rtol=2.0 ** -23,
                                       atol=1e-12 * np.abs(w).max())
            np.testing.assert_allclose(h_stored[i], h, rtol=2.0 ** -23, atol=1e-12 * scale)
            # this early field is smooth (the preset's initial spectrum peaks at |k| = 2π): the
            # product has no content beyond the DNS's 2/3 rule, so H is also the pointwise
            # −u·∇ω at the coarse points, to round-off
            assert np.abs(h_pointwise - h).max() < 1e-10 * scale


# ------------------------------------------------------------------ hybrid runs of a model of H
# A model trained on missing-physics data supplies the whole advection term, so the coarse solver
# of its run has its own advection switched off; the tiny model below is trained for a second on
# a 32² → 16² dataset (its card records the data's target and grid, n = 16, L = 1).
TINY_ARCH = dict(latent_channels=2, ae_channels=(4, 4, 4), width=8, modes=2, layers=2,
                 time_dim=16, proj_hidden=16, mean_width=4, mean_blocks=1)


def _generate(out, seed: int, samples: int, split: str) -> None:
    assert main(["generate", "ns-unitbox", "--target", "missing-physics", "--n-dns", "32",
                 "--n-les", "16", "--members", "2", "--samples", str(samples), "--interval",
                 "0.05", "--seed", str(seed), "--split", split, "--out", str(out)]) == 0


@pytest.fixture(scope="module")
def unitbox_model(tmp_path_factory):
    """(stem of a tiny L-CDM trained on 16² missing-physics data, a 16² test file of seed 1)."""
    import torch

    from closures.train import train_ldm
    folder = tmp_path_factory.mktemp("unitbox-model")
    train, test = folder / "train.nc", folder / "test.nc"
    _generate(train, 0, 8, "0.5,0.5,0")
    _generate(test, 1, 6, "0,0,1")
    before = torch.get_num_threads()
    train_ldm(train, folder / "tiny", epochs=1, batch=4, threads=1, progress=False,
              samples_eval=2, eval_steps=2, **TINY_ARCH)
    assert torch.get_num_threads() == before
    return folder / "tiny", test


def _direct(members: int, advection: bool, closure=None, every: int = 5, steps: int = 50):
    """The ns-unitbox LES on 16² from the preset's initial field, built by hand."""
    p = load_preset("ns-unitbox")
    s = p.make_solver("les", members=members, seed=0, n=16, advection=advection)
    s.set_vorticity(p.initial_vorticity(s))
    if closure is not None:
        s.set_closure(closure, every)
    s.step(steps)
    return s


def test_hybrid_run_of_a_missing_physics_model_runs_the_les_without_advection(unitbox_model,
                                                                                tmp_path):
    from closures.ldm import LatentDiffusionClosure
    from solvers.io import open_trajectory
    stem, _ = unitbox_model
    out = tmp_path / "run"
    assert main(["run", "ns-unitbox", "--closure", "ldm", "--closure-arg", f"path={stem}",
                 "--closure-arg", "steps=2", "--n", "16", "--members", "2", "--t-end", "0.05",
                 "--out", str(out)]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["solver_config"]["advection"] is False and info["closure"]["name"] == "ldm"
    assert info["timings"]["closure_calls"] == 10
    with open_trajectory(out / "trajectory.nc") as ds:
        w = ds["vorticity"].values[:, -1]
    assert np.all(np.isfinite(w)) and np.abs(w).max() > 0
    # the same closure on a solver built by hand without advection: the same run, bit for bit
    s = _direct(2, False, LatentDiffusionClosure(path=stem, steps=2))
    np.testing.assert_array_equal(w, np.asarray(s.vorticity).astype(np.float32))
    with_advection = _direct(2, True, None)
    assert np.abs(w - with_advection.vorticity).max() > 1e-3 * np.abs(w).max()


def test_a_zero_missing_physics_closure_leaves_the_solver_without_advection(unitbox_model):
    """μ(ω̄) ≡ 0 (its last layer zeroed) of the missing-physics model: the hybrid run is the
    coarse solver without advection and without closure; with advection it would differ."""
    import torch

    from closures.ldm import MeanNetworkClosure, load_model
    from hybrid.ensemble import Ensemble
    stem, _ = unitbox_model
    model = load_model(stem)
    with torch.no_grad():
        for p in model.mean_net.net[-1].parameters():
            p.zero_()
    ens = Ensemble("ns-unitbox", MeanNetworkClosure(model), members=2, overrides={"n": 16})
    ens.run(0.05, progress=False)
    s = ens.simulation.solver
    assert s.advection is False and s.closure_calls == 10
    bare = _direct(2, False)
    np.testing.assert_allclose(s.vorticity, bare.vorticity, rtol=0,
                               atol=1e-12 * np.abs(bare.vorticity).max())
    moved = np.abs(_direct(2, True).vorticity - bare.vorticity).max()
    assert moved > 1e-4 * np.abs(bare.vorticity).max()


def test_a_model_that_does_not_suit_the_run_is_refused_before_any_work(unitbox_model, tmp_path,
                                                                        capsys):
    from closures import get_closure
    from closures.ldm import model_paths
    from hybrid.ensemble import Ensemble
    stem, _ = unitbox_model
    arg = ["--closure", "ldm", "--closure-arg", f"path={stem}", "--t-end", "0.01"]
    for preset, n, words in (("ns-unitbox", "32", ["built for n=16, L=1", "n=32", "--n"]),
                             ("kolmogorov", "16", ["built for n=16, L=1", "L=6.28319"])):
        out = tmp_path / f"refused-{preset}"
        assert main(["run", preset, *arg, "--n", n, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), err
        assert not out.exists()
    kw = dict(closure_kwargs={"path": str(stem)})
    with pytest.raises(ValueError, match="needs advection=False .*solver settings given set "
                                         "advection=True"):
        Ensemble("ns-unitbox", "ldm", overrides={"n": 16, "advection": True}, **kw)
    toml = (load_preset("ns-unitbox").path.read_text()
            .replace('forcing_filter = "none"', 'forcing_filter = "none"\nadvection = true'))
    (tmp_path / "with-advection.toml").write_text(toml)
    with pytest.raises(ValueError, match="sets for its les solver advection=True"):
        Ensemble(tmp_path / "with-advection.toml", "ldm", overrides={"n": 16}, **kw)
    s = load_preset("ns-unitbox").make_solver("les", n=16)
    with pytest.raises(ValueError, match="needs advection=False"):
        s.set_closure(get_closure("ldm", path=str(stem)))
    # the same weights under a card naming another preset: refused before any solver is built
    moved = tmp_path / "kolmogorov-model"
    for src, dst in zip(model_paths(stem), model_paths(moved)):
        dst.write_bytes(src.read_bytes())
    card = json.loads(model_paths(moved)[1].read_text())
    card["data"]["preset"] = "kolmogorov"
    model_paths(moved)[1].write_text(json.dumps(card))
    with pytest.raises(ValueError, match="trained on data of preset 'kolmogorov'.*'ns-unitbox'"):
        Ensemble("ns-unitbox", "ldm", overrides={"n": 16}, closure_kwargs={"path": str(moved)})
    # the same weights under a card saying 'subgrid': the solver keeps its advection
    other = tmp_path / "subgrid-model"
    for src, dst in zip(model_paths(stem), model_paths(other)):
        dst.write_bytes(src.read_bytes())
    card = json.loads(model_paths(other)[1].read_text())
    card["data"]["generation"]["target"] = "subgrid"
    model_paths(other)[1].write_text(json.dumps(card))
    sub = dict(closure_kwargs={"path": str(other)})
    assert Ensemble("ns-unitbox", "ldm", overrides={"n": 16}, **sub).template.advection is True
    with pytest.raises(ValueError, match="needs advection=True"):
        Ensemble("ns-unitbox", "ldm", overrides={"n": 16, "advection": False}, **sub)


def test_unitbox_benchmark_online_scores_the_runs_against_the_file(unitbox_model, tmp_path):
    """``benchmarks.unitbox online`` on the tiny test file: its no-closure errors are those of
    the coarse solver run by hand from each trajectory's first ω̄; the model's run has no
    advection, starts from the same fields and stays finite."""
    from benchmarks import unitbox
    stem, test = unitbox_model
    out = tmp_path / "bench"
    assert unitbox.main(["online", "--data", str(test), "--models", str(stem), "--ensemble",
                         "2", "--t-end", "0.1", "--sampler", "2:1:0.3", "--out",
                         str(out)]) == 0
    r = json.loads((out / "online.json").read_text())
    assert (out / "online.md").read_text().splitlines()[0].startswith(
        "`python -m benchmarks.unitbox online")
    assert (out / "online_error.png").stat().st_size > 0
    np.testing.assert_allclose(r["time"], [0, 0.05, 0.1], atol=1e-9)
    with hd.open_dataset(test) as ds:
        w_ref = ds["omega_bar"].values.astype(np.float64).reshape(3, 2, 16, 16)

    def by_hand(advection: bool) -> list[float]:
        s = load_preset("ns-unitbox").make_solver("les", members=2, n=16, advection=advection)
        s.set_vorticity(w_ref[0])
        errors = []
        for k in range(3):
            if k:
                s.step(50)
            e = np.sqrt(((s.vorticity - w_ref[k]) ** 2).sum(axis=(1, 2))
                        / (w_ref[k] ** 2).sum(axis=(1, 2)))
            errors.append(e.mean())
        return errors

    none, bare, model = (r["runs"][k] for k in ("no closure", "no advection, no closure",
                                                  "tiny"))
    assert none["advection"] is True and bare["advection"] is False
    assert model["advection"] is False
    for run, advection in ((none, True), (bare, False)):
        want = by_hand(advection)
        np.testing.assert_allclose(run["error_member"], want, rtol=1e-9, atol=0)
        np.testing.assert_allclose(run["error_ensemble_mean"], want, rtol=1e-9, atol=0)
    assert bare["error_member"][-1] > 10 * none["error_member"][-1]
    assert model["error_member"][0] == none["error_member"][0]
    assert model["blew_up_at"] is None
    for k in ("error_member", "error_ensemble_mean", "spread_error_ratio"):
        assert np.all(np.isfinite(np.asarray(model[k][1:], dtype=float))), k
