"""Helpers of the diffusion-closure benchmarks: spectrum standard errors, configuration parsing."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.ldm_cost import parse_config
from benchmarks.ldm_online import member_mean_and_se, model_names, parse_rows


def test_member_standard_error_matches_the_spread_of_ensemble_means():
    """Members independent, times within a member correlated (AR(1), ρ = 0.9): the standard
    error from the members' time means must match the actual scatter of the ensemble mean over
    replicate ensembles, where the naive one over all (time, member) samples is far too small."""
    rng = np.random.default_rng(0)
    reps, T, M, shells, phi = 1500, 60, 8, 2, 0.9
    x = np.empty((reps, T, M, shells))
    x[:, 0] = rng.standard_normal((reps, M, shells))
    for t in range(1, T):
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal((reps, M, shells))
    means, ses = zip(*(member_mean_and_se(1.0 + 0.1 * x[r]) for r in range(reps)))
    actual = np.std(means, axis=0)
    estimated = np.sqrt(np.mean(np.square(ses), axis=0))
    np.testing.assert_allclose(estimated, actual, rtol=0.1)
    naive = 0.1 / np.sqrt(T * M)
    assert np.all(actual > 2.5 * naive)
    assert np.all(np.isnan(member_mean_and_se(x[0, :, :1])[1]))          # one member: unknown


def test_cost_configurations_parse_like_report_rows():
    assert parse_config("ldm@5/steps=5/dt=0.008") == ("ldm", 5, {"steps": 5}, 0.008)
    assert parse_config("ldm@10/precision=bfloat16") == ("ldm", 10, {"precision": "bfloat16"},
                                                         None)
    assert parse_config("none") == ("none", 5, {}, None)
    # a trained model's path comes last and keeps its slashes; the SLT closure is a row too
    assert parse_config("ldm@5/steps=5/path=runs/a/m") == ("ldm", 5, {"steps": 5,
                                                                       "path": "runs/a/m"}, None)
    assert parse_config("slt-closure/path=m") == ("slt-closure", 5, {"path": "m"}, None)
    for bad in ("magic", "ldm@0", "ldm@5/steps"):
        with pytest.raises(SystemExit, match="--configs"):
            parse_config(bad)


def test_online_rows_carry_their_own_refresh_and_model(tmp_path):
    """Each --closures row keeps its interval and options, its label says them, and the models
    whose training DNS the test data must not overlap are the ones the rows load."""
    rows = parse_rows(f"none,ldm,ldm-mean,slt-closure@10/path={tmp_path}/m", 5)
    assert rows == {"none": ("none", 5, ()), "ldm": ("ldm", 5, ()),
                    "ldm-mean": ("ldm-mean", 5, ()),
                    f"slt-closure every 10 path={tmp_path}/m": (
                        "slt-closure", 10, (("path", f"{tmp_path}/m"),))}
    assert model_names(rows.values()) == {"ldm-kolmogorov", f"{tmp_path}/m"}
    assert model_names(rows.values(), "runs/own") == {"runs/own", f"{tmp_path}/m"}
    assert model_names([("smagorinsky", 5, ())]) == set()
    with pytest.raises(ValueError, match="magic"):
        parse_rows("none,magic", 5)


def test_closure_transfer_spectrum_sums_to_the_physical_space_rates():
    """Σ_k T_E = −⟨ψ C⟩ and Σ_k T_Z = ⟨ω C⟩ for dealiased fields; a term C = −μω puts
    −2μE into the energy and −2μZ into the enstrophy, shell by shell of the spectrum."""
    from benchmarks.closure_energetics import shell_transfers
    from solvers.grid import Grid
    g = Grid(32, 3.0)
    rng = np.random.default_rng(0)
    fields = []
    for _ in range(2):
        h = np.fft.rfft2(rng.standard_normal((3, 32, 32))) * g.dealias
        fields.append(np.fft.irfft2(h, s=(32, 32)))
    w, c = fields
    te, tz = shell_transfers(w, c, g.L)
    psi = np.fft.irfft2(-np.fft.rfft2(w) * g.inv_k2, s=(32, 32))
    np.testing.assert_allclose(te.sum(1), -(psi * c).mean((1, 2)), rtol=1e-10)
    np.testing.assert_allclose(tz.sum(1), (w * c).mean((1, 2)), rtol=1e-10)
    te, tz = shell_transfers(w, -0.5 * w, g.L)
    energy = -0.5 * (psi * w).mean((1, 2))
    np.testing.assert_allclose(te.sum(1), -2 * 0.5 * energy, rtol=1e-10)
    assert np.all(te <= 1e-15) and np.all(tz <= 1e-15)


def test_jet_rows_take_les_settings_and_online_rows_count_their_targets():
    """``benchmarks.betaplane_hybrid`` rows: LES settings before ':' go to ``hybrid run --set``;
    ``benchmarks.slt_online`` counts the eight targets against the reference's intervals and the
    residence-time misfit Σ|ln(τ/τ_ref)|."""
    import argparse
    import math
    from pathlib import Path

    from benchmarks.betaplane_hybrid import parse_row, run_arguments
    from benchmarks.slt_online import parse_settings, targets
    entry, settings = parse_row("les.eddy_drag=0.01:ldm-mean/gain=0.5/path=runs/a:b")
    assert settings == ["les.eddy_drag=0.01"] and entry[0] == "ldm-mean"
    args = argparse.Namespace(members=2, seed=1, spinup=1.0, t_end=2.0, threads=1)
    argv = run_arguments(entry, settings, args, Path("out"))
    assert argv[argv.index("--set") + 1] == "les.eddy_drag=0.01"
    assert ["--closure-arg", "gain=0.5"] == argv[argv.index("gain=0.5") - 1:][:2]
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_row("eddy:none")
    assert parse_settings("0/1,0.5/0.9") == [(0.0, 1.0), (0.5, 0.9)]
    with pytest.raises(ValueError, match="RHO/G"):
        parse_settings("0.5")

    def side(e, f2, f3, t2, t3, ci=None):
        return {"energy": {"mean": e, "interval_95": ci},
                "fraction": {"2": {"episodes": f2, "episodes_interval_95": [0.7, 0.9]},
                             "3": {"episodes": f3, "episodes_interval_95": [0.1, 0.3]}},
                "residence_time": {"2": {"mean": t2, "interval_95": [3000, 5000]},
                                   "3": {"mean": t3, "interval_95": [600, 1300]}}}

    ref = side(0.027, 0.8, 0.2, 4000, 900, ci=[0.0268, 0.0273])
    row = {"hellinger": {"U": 0.05, "dUdy": 0.12, "dUdt": 0.02}, "reference": ref,
           "run": side(0.0275, 0.85, 0.05, 8000, 900)}
    t = targets(row)
    assert t["count"] == 4 and not t["met"]["H(dUdy)"] and not t["met"]["energy"]
    assert not t["met"]["time with 3 jets"] and not t["met"]["residence 2"]
    assert t["misfit"] == pytest.approx(math.log(2))


def test_generator_models_name_their_gain_steps_and_centre():
    from benchmarks.eldm_ensembles import model_spec
    assert model_spec("runs/m@0.5") == ("runs/m", {"residual_gain": 0.5})
    assert model_spec("m@gain=0.7@steps=10") == ("m", {"residual_gain": 0.7, "steps": 10})
    assert model_spec("m@steps=5@sampler=dpm2m") == ("m", {"steps": 5, "method": "dpm2m"})
    assert model_spec("m") == ("m", {})
    assert model_spec("m@0.5@centre=dns") == ("m", {"residual_gain": 0.5, "centre": "dns"})
    assert model_spec("m@centre=runs/mean") == ("m", {"centre": "runs/mean"})
    from benchmarks.eldm_ensembles import label
    assert label("runs/a/m@0.5@centre=runs/b/mean") == "m@0.5@centre=mean"
    with pytest.raises(ValueError, match="neither a gain, steps=S, sampler=M nor centre"):
        model_spec("m@rate=2")


def test_held_out_runs_are_judged_against_the_training_points_that_surround_them():
    from benchmarks.conditioned_runs import neighbours, regime_hits
    train = {f"b{b}-m{m}": {"beta": b, "mu": m} for b in (2, 4, 8) for m in (2e-3, 4e-3)}
    # inside in both parameters: the four corners around it
    assert neighbours({"beta": 5.66, "mu": 2.83e-3}, train) == [
        "b4-m0.002", "b4-m0.004", "b8-m0.002", "b8-m0.004"]
    # on a training value of mu: the two runs at that mu either side in beta
    assert neighbours({"beta": 2.83, "mu": 4e-3}, train) == ["b2-m0.004", "b4-m0.004"]
    # outside the range in beta: only the nearest end
    assert neighbours({"beta": 64.0, "mu": 4e-3}, train) == ["b8-m0.004"]
    regimes = {"1": {"fraction": 0.5, "fraction_dns": 0.4, "fraction_dns_95": [0.3, 0.6],
                     "residence": 90.0, "residence_dns": 100.0, "residence_dns_95": [95, 110]},
               "2": {"fraction": 0.5, "fraction_dns": 0.6, "fraction_dns_95": [0.4, 0.7],
                     "residence": 50.0, "residence_dns": 60.0, "residence_dns_95": None},
               "3": {"fraction": 0.1, "fraction_dns": 0.0, "fraction_dns_95": [0.0, 0.0],
                     "residence": 10.0, "residence_dns": None, "residence_dns_95": None}}
    # jet number 3 is never visited by the DNS and not judged; 2's residence has no interval
    assert regime_hits(regimes) == (2, 3)


def test_an_emulation_is_reused_only_when_made_with_the_same_settings(tmp_path):
    import json

    from benchmarks.conditioned_runs import same_emulation
    made = {"model": "u8", "members": 4, "at": 849.9999999997747, "t_end": 20749.99999971019,
            "parameters": {"beta": 8.0, "mu": 0.004}, "noise_memory": 0.0, "spread_gain": 1.0,
            "wall_s": 6.6}
    (tmp_path / "emulation.json").write_text(json.dumps(made))
    want = {"model": "u8", "members": 4, "at": 850.0, "t_end": 20750.0,
            "parameters": {"beta": 8.0, "mu": 4e-3}, "noise_memory": 0.0, "spread_gain": 1.0}
    assert same_emulation(tmp_path, want)                   # record times within round-off
    for key, other in (("noise_memory", 0.1), ("spread_gain", 0.9), ("members", 8),
                       ("model", "u4"), ("at", 860.0), ("parameters", {"beta": 5.66, "mu": 4e-3}),
                       ("parameters", {"beta": 8.0})):
        assert not same_emulation(tmp_path, {**want, key: other}), key
    assert not same_emulation(tmp_path / "none", want)     # nothing made yet


def test_paired_bootstrap_of_hellinger_distances_tells_a_shift_from_sampling():
    """Gaussian samples in blocks: B drawn like A gives a ratio interval holding 1; B shifted by
    half a standard deviation is further, its difference interval above 0; the point values are
    the distances of the pooled histograms."""
    from benchmarks.hellinger_difference import block_histograms, paired_bootstrap
    from hybrid.jets.statistics import fixed_bins, hellinger_from_probabilities, pdf
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 4000, 4))
    a = rng.standard_normal((4, 2000, 4))
    same = rng.standard_normal((4, 2000, 4))
    shifted = 0.5 + rng.standard_normal((4, 2000, 4))
    edges = fixed_bins(ref, 40)
    hr, ha = block_histograms(ref, edges, 5), block_histograms(a, edges, 5)
    assert hr.shape == (10, 40) and ha.shape == (20, 40) and ha.sum() == a.size
    r = paired_bootstrap(ha, block_histograms(same, edges, 5), hr, resamples=400)
    assert r["A"] == pytest.approx(hellinger_from_probabilities(pdf(a, edges), pdf(ref, edges)))
    lo, hi = r["ratio_95"]
    assert lo < 1 < hi
    s = paired_bootstrap(ha, block_histograms(shifted, edges, 5), hr, resamples=400)
    assert s["difference_95"][0] > 0 and s["ratio_95"][0] > 1.5


def test_pair_residual_members_are_the_conditioning_run_plus_a_difference_of_two_members():
    from benchmarks.eldm_ensembles import pair_residual_members
    M = 6
    U = np.arange(M + 1, dtype=float)[:, None, None] ** 2 * np.ones((1, 3, 4))   # member k: k²
    X = pair_residual_members(U, M, 0.5, np.random.default_rng(0))
    assert X.shape == (M, 3, 4)
    seen = set()
    for x in X[:, 0, 0]:                  # 0 + ½(i² − j²) for one pair 1 ≤ i ≠ j ≤ M
        pairs = [(i, j) for i in range(1, M + 1) for j in range(1, M + 1)
                 if i != j and 0.5 * (i * i - j * j) == x]
        assert len(pairs) == 1
        seen.add(pairs[0])
    assert len(seen) > 1                                                # pairs vary
    np.testing.assert_array_equal(X, pair_residual_members(U, M, 0.5, np.random.default_rng(0)))
    # Gaussian members: the spread around the conditioning run is √2 that of the members
    rng = np.random.default_rng(1)
    G = rng.normal(size=(41, 1, 2000))
    X = pair_residual_members(G, 40, 1.0, np.random.default_rng(2))
    assert X[:, 0].std(axis=0).mean() / G[1:, 0].std(axis=0).mean() == pytest.approx(
        math.sqrt(2), rel=0.05)


def test_centring_measures_the_pull_towards_and_the_distance_to_the_dns_mean():
    from benchmarks.eldm_ensembles import centring
    rng = np.random.default_rng(3)
    D = rng.normal(size=(8, 5, 6))                    # DNS members (member, time, y)
    m = D.mean(axis=0)
    xc = m + np.r_[0.0, 1, 0, 0, 0, 0][None] * np.ones((5, 1))       # off m along y = 1
    e = np.r_[0.0, 0, 0, 0.5, 0, 0][None] * np.ones((5, 1))          # orthogonal to it
    X = (xc + 0.4 * (m - xc) + e)[None] + np.array([-1.0, 1.0])[:, None, None]  # mean: the sum
    c = centring([X], [xc], [D])
    assert c["pull"] == pytest.approx(0.4, abs=1e-12)
    assert c["distance"] == pytest.approx(math.hypot(0.6, 0.5), abs=1e-12)
    c = centring([D], [xc], [D])                      # the DNS ensemble itself: centred on m
    assert c["pull"] == pytest.approx(1.0) and c["distance"] == pytest.approx(0.0, abs=1e-12)
    # the oracle recentring keeps the deviations and puts the mean on the DNS members' mean
    from benchmarks.eldm_ensembles import recentre
    R = recentre(X, D)
    np.testing.assert_allclose(R.mean(axis=0), m, atol=1e-12)
    np.testing.assert_allclose(R - R.mean(axis=0), X - X.mean(axis=0), atol=1e-12)
