"""hybrid.compare: run-vs-DNS errors, spectra, PDF distances, cost, and the `hybrid compare` CLI."""
import json
import math

import numpy as np
import pytest

from fields import smooth_random_field
from hybrid.cli import main
from hybrid.compare import (CompareError, compare_runs, format_table, hellinger, histogram_pair,
                            wasserstein1)
from solvers import KolmogorovFlow, diagnostics, filters
from solvers.grid import Grid
from solvers.io import TrajectoryWriter

TWO_PI = 2 * np.pi
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------- helpers
class Frames:
    """Stands in for a solver when writing a trajectory: serves given fields at given times."""

    kind = "kolmogorov"

    def __init__(self, n, L, members):
        self.grid, self.members = Grid(n, L), members
        self.t, self.step_count, self.vorticity = 0.0, 0, None

    def config(self):
        return {"n": self.grid.n, "L": self.grid.L, "members": self.members}

    def _hat(self):
        return np.fft.rfft2(self.vorticity)

    def energy(self):
        return diagnostics.energy(self.grid, self._hat())

    def enstrophy(self):
        return diagnostics.enstrophy(self.grid, self._hat())


def write_traj(path, fields, times, L=TWO_PI, dtype="float64"):
    """Write fields (members, time, n, n) at ``times`` as a trajectory file; returns the path."""
    fields = np.asarray(fields, dtype=np.float64)
    M, T, n, _ = fields.shape
    fr = Frames(n, L, M)
    with TrajectoryWriter(path, fr, dtype=dtype) as w:
        for i in range(T):
            fr.t, fr.step_count, fr.vorticity = float(times[i]), i, fields[:, i]
            w.write()
    return path


def band_limited_fields(grid, members, records, kmax, seed):
    """Random physical fields whose modes satisfy |m_x|, |m_y| ≤ kmax."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft2(rng.standard_normal((members, records) + grid.shape))
    my = np.abs(np.fft.fftfreq(grid.n, 1 / grid.n))[:, None]
    mx = np.arange(grid.nk)[None, :]
    spec[..., (my > kmax) | (mx > kmax)] = 0
    spec[..., 0, 0] = 0
    return np.fft.irfft2(spec, s=grid.shape)


def folder(tmp_path, name, fields, times, run_json=None, **kw):
    d = tmp_path / name
    d.mkdir()
    write_traj(d / "trajectory.nc", fields, times, **kw)
    if run_json is not None:
        (d / "run.json").write_text(json.dumps(run_json))
    return d


def valid_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


# ---------------------------------------------------------------------------------- distances
def test_wasserstein_is_exact_on_small_samples():
    # F_a: 1/2 on [0,1), 1 after; F_b: 2/3 on [0,3), 1 after → ∫|F_a − F_b| = 1/6·1 + 1/3·2 = 5/6
    assert wasserstein1([0.0, 1.0], [0.0, 0.0, 3.0]) == pytest.approx(5 / 6, abs=1e-15)
    assert wasserstein1([0.0, 0.0, 3.0], [1.0, 0.0]) == pytest.approx(5 / 6, abs=1e-15)
    x = np.random.default_rng(0).standard_normal(1000)
    assert wasserstein1(x, x + 0.25) == pytest.approx(0.25, abs=1e-12)   # a shift moves by 0.25
    assert wasserstein1(x, x[::-1]) == 0.0                               # order does not matter


def test_hellinger_bounds():
    x = np.random.default_rng(1).standard_normal(5000)
    assert hellinger(x, x.copy()) == 0.0
    assert hellinger(x, x + 100.0) == pytest.approx(1.0, abs=1e-12)     # disjoint supports
    edges, p, q = histogram_pair(x, x + 1, bins=40)
    assert edges.size == 41 and p.sum() == pytest.approx(1) and q.sum() == pytest.approx(1)


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_shifted_gaussians_match_the_closed_forms(mu):
    # W1(N(0,1), N(μ,1)) = |μ|;  H(N(0,1), N(μ,1)) = sqrt(1 − exp(−μ²/8)).
    # With 2·10⁵ samples each, W1's sampling error is ~0.003 and the histogram estimate of H is
    # biased by ~(bins)/(8N)/H ≲ 0.001 here: tolerances 0.015 (W1) and 0.006 (H).
    rng = np.random.default_rng(42)
    a = rng.standard_normal(200_000)
    b = mu + rng.standard_normal(200_000)
    assert wasserstein1(a, b) == pytest.approx(mu, abs=0.015)
    assert hellinger(a, b) == pytest.approx(math.sqrt(1 - math.exp(-mu**2 / 8)), abs=0.006)
    # different sample sizes use the CDF formula: same answer
    assert wasserstein1(a[:150_000], b) == pytest.approx(mu, abs=0.015)


# ---------------------------------------------------------------------------------- metrics
def test_a_run_compared_with_itself_has_zero_errors(tmp_path):
    g = Grid(16)
    fields = 3 * band_limited_fields(g, 2, 5, 6, seed=3)
    d = folder(tmp_path, "run", fields, np.arange(5) * 0.5)
    m = compare_runs(d, d)
    assert m["errors"]["relative_l2_members"] == [[0.0] * 5] * 2
    assert m["errors"]["relative_l2_ensemble_mean"] == [0.0] * 5
    assert m["energy"]["relative_error"] == [0.0] * 5
    assert m["pdf"]["hellinger"] == 0.0 and m["pdf"]["wasserstein1"] == 0.0
    assert m["spectra"]["relative_rmse"] == 0.0 and m["spectra"]["log_rmse_decades"] == 0.0
    assert m["spectra"]["shells_compared"] == 5                           # (16 − 1)//3
    assert m["times"]["steady_records"] == 3                              # the last half: 2, 3, 4
    assert not m["coarse_graining"]["applied"]
    out = d / "compare"                                                   # the default --out
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["headline"]["pdf_hellinger"] == 0.0
    assert "definitions" in saved and "pdf.hellinger" in saved["definitions"]
    for name in ("error.png", "energy.png", "spectra.png", "pdf.png"):
        assert valid_png(out / name)
    table = format_table(m)
    assert table.startswith("| metric | value |") and "Hellinger" in table


def test_coarse_graining_the_dns_reproduces_a_band_limited_les_field(tmp_path):
    fine, coarse = Grid(32), Grid(16)
    # modes ≤ 5 are inside the 16² grid's 2/3-rule modes, so the 16² field is exact
    w_fine = band_limited_fields(fine, 2, 3, 5, seed=7)
    times = [0.0, 1.0, 2.0]
    ref = write_traj(tmp_path / "dns.nc", w_fine, times)
    les_exact = write_traj(tmp_path / "les_exact.nc", w_fine[..., ::2, ::2], times)
    m = compare_runs(les_exact, ref, delta=0.0, write=False)
    assert m["coarse_graining"]["applied"] and m["coarse_graining"]["factor"] == 2
    assert max(max(r) for r in m["errors"]["relative_l2_members"]) < 1e-12
    # the default filter, Δ = 2 dx_LES, applied to the LES field too: the same agreement
    filtered = np.fft.irfft2(filters.coarse_grain(fine, coarse, np.fft.rfft2(w_fine)),
                             s=coarse.shape)
    les_filtered = write_traj(tmp_path / "les_filtered.nc", filtered, times)
    m = compare_runs(les_filtered, ref, write=False)
    assert m["coarse_graining"]["delta"] == pytest.approx(2 * coarse.dx)
    assert max(max(r) for r in m["errors"]["relative_l2_members"]) < 1e-12
    assert m["spectra"]["relative_rmse"] < 1e-12
    # falsifiable: the unfiltered LES field is not the filtered reference
    m = compare_runs(les_exact, ref, write=False)
    assert min(min(r) for r in m["errors"]["relative_l2_members"]) > 1e-2


def test_error_grows_with_the_perturbation(tmp_path):
    g = Grid(16)
    ref_fields = band_limited_fields(g, 3, 4, 5, seed=11)
    noise = band_limited_fields(g, 3, 4, 5, seed=12)
    times = np.arange(4) * 0.25
    ref = write_traj(tmp_path / "ref.nc", ref_fields, times)
    results = []
    for amp in (0.01, 0.1, 0.5):
        run = write_traj(tmp_path / f"run{amp}.nc", ref_fields + amp * noise, times)
        m = compare_runs(run, ref, write=False)
        err = np.array(m["errors"]["relative_l2_members"])
        expect = amp * np.linalg.norm(noise.reshape(3, 4, -1), axis=-1) / \
            np.linalg.norm(ref_fields.reshape(3, 4, -1), axis=-1)
        np.testing.assert_allclose(err, expect, rtol=1e-10)
        ens = (ref_fields + amp * noise).mean(0) - ref_fields.mean(0)
        np.testing.assert_allclose(m["errors"]["relative_l2_ensemble_mean"],
                                   np.linalg.norm(ens.reshape(4, -1), axis=-1)
                                   / np.linalg.norm(ref_fields.mean(0).reshape(4, -1), axis=-1),
                                   rtol=1e-10)
        results.append(m)
    for small, big in zip(results, results[1:]):
        assert (np.array(big["errors"]["relative_l2_members"])
                > np.array(small["errors"]["relative_l2_members"])).all()
        assert big["pdf"]["wasserstein1"] > small["pdf"]["wasserstein1"]
        assert big["pdf"]["hellinger"] > small["pdf"]["hellinger"]
        assert big["spectra"]["relative_rmse"] > small["spectra"]["relative_rmse"]


def test_les_started_from_the_coarse_grained_dns_drifts_away(tmp_path):
    fine, coarse = Grid(32), Grid(16)
    z0 = np.stack([smooth_random_field(fine, s, peak=2.0, amplitude=3.0) for s in (0, 1)])
    dns = KolmogorovFlow(n=32, nu=2e-2, mu=0.1, kf=4, dt=0.01, members=2)
    dns.set_vorticity(z0)
    les = KolmogorovFlow(n=16, nu=2e-2, mu=0.1, kf=4, dt=0.01, members=2)
    les.set_vorticity(np.fft.irfft2(filters.coarse_grain(fine, coarse, dns.vorticity_hat),
                                    s=coarse.shape))
    for s, name in ((dns, "dns"), (les, "les")):
        with TrajectoryWriter(tmp_path / name / "trajectory.nc", s, dtype="float64") as w:
            s.run(2.0, every=0.5, callback=w.write)
    m = compare_runs(tmp_path / "les", tmp_path / "dns", write=False)
    err = m["errors"]["relative_l2_member_mean"]
    assert len(err) == 5 and m["times"]["lead_time"][-1] == pytest.approx(2.0)
    assert err[0] < 1e-12                        # the same initial state, on the LES grid
    assert err[-1] > 1e-3 and err[-1] > err[1] > err[0]
    assert m["spectra"]["k_reference_dns"] is not None and len(m["spectra"]["k"]) == 8


def test_records_are_matched_by_time(tmp_path):
    g = Grid(16)
    ref_fields = band_limited_fields(g, 1, 11, 5, seed=4)
    ref = write_traj(tmp_path / "ref.nc", ref_fields, np.arange(11) * 0.1)
    t_run = np.array([0.0, 0.5, 1.0, 1.5]) + 1e-9               # 1.5 is not in the reference
    run = write_traj(tmp_path / "run.nc", ref_fields[:, [0, 5, 10, 10]], t_run)
    m = compare_runs(run, ref, write=False)
    assert m["times"]["reference_indices"] == [0, 5, 10]
    assert m["times"]["unmatched_run_records"] == 1
    assert m["errors"]["relative_l2_members"] == [[0.0, 0.0, 0.0]]
    m = compare_runs(run, ref, write=False, steady_from=0.4)
    assert m["times"]["steady_records"] == 2


# ---------------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_problem(tmp_path):
    g = Grid(16)
    f2 = band_limited_fields(g, 2, 2, 5, seed=0)
    times = [0.0, 1.0]
    good = write_traj(tmp_path / "good.nc", f2, times)
    with pytest.raises(CompareError, match="RUN .*nowhere.nc does not exist"):
        compare_runs(tmp_path / "nowhere.nc", good, write=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompareError, match="REFERENCE folder .*empty has no trajectory.nc"):
        compare_runs(good, tmp_path / "empty", write=False)
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"this is not netCDF" * 10)
    with pytest.raises(CompareError, match="REFERENCE: cannot read trajectory .*corrupt.nc"):
        compare_runs(good, corrupt, write=False)
    one = write_traj(tmp_path / "one.nc", f2[:1], times)
    with pytest.raises(CompareError, match="member counts differ.*one.nc has 1 member"):
        compare_runs(good, one, write=False)
    box = write_traj(tmp_path / "box.nc", f2, times, L=1.0)
    with pytest.raises(CompareError, match="different boxes.*L=1"):
        compare_runs(good, box, write=False)
    later = write_traj(tmp_path / "later.nc", f2, [5.0, 6.0])
    with pytest.raises(CompareError, match="no common record times"):
        compare_runs(good, later, write=False)
    g24 = write_traj(tmp_path / "g24.nc", band_limited_fields(Grid(24), 2, 2, 5, 0), times)
    with pytest.raises(CompareError, match="grids do not divide.*24²"):
        compare_runs(good, g24, write=False)
    with pytest.raises(CompareError, match="coarser than RUN"):
        compare_runs(g24, good, write=False)
    with pytest.raises(CompareError, match="--steady-from 9 leaves no common record"):
        compare_runs(good, good, write=False, steady_from=9.0)
    bad_json = tmp_path / "badjson"
    bad_json.mkdir()
    write_traj(bad_json / "trajectory.nc", f2, times)
    (bad_json / "run.json").write_text("{not json")
    with pytest.raises(CompareError, match="RUN: .*run.json is not readable JSON"):
        compare_runs(bad_json, good, write=False)
    with pytest.raises(CompareError, match="--out .*good.nc exists and is not a directory"):
        compare_runs(good, good, out=good)


# ---------------------------------------------------------------------------------- cost + CLI
def run_json(members, simulated_time, wall_s, solver_s, closure_s):
    """A run.json as hybrid.simulation writes it (its own timing_info), with known timings."""
    from hybrid.simulation import RunResult, timing_info
    res = RunResult(status="ok", trajectory=None, run_json=None, restart=None, members=members,
                    steps=100, records=4, t_start=0.0, t_end=simulated_time,
                    simulated_time=simulated_time, wall_s=wall_s, solver_s=solver_s,
                    closure_s=closure_s, io_s=wall_s - solver_s - closure_s, closure_calls=20)
    return {"members": members, "simulated_time": simulated_time, "t_start": 0.0,
            "t_final": simulated_time, "trajectory": "trajectory.nc", "status": "ok",
            "timings": json.loads(json.dumps(timing_info(res)))}


def test_cli_writes_metrics_figures_and_cost(tmp_path, capsys):
    fine, coarse = Grid(32), Grid(16)
    w = band_limited_fields(fine, 2, 4, 6, seed=5)
    times = np.arange(4) * 0.5
    filtered = np.fft.irfft2(filters.coarse_grain(fine, coarse, np.fft.rfft2(w)), s=coarse.shape)
    shift = 0.1 * np.abs(filtered).max()
    les = filtered + shift             # the filtered DNS moved by a constant: W1 is the shift
    # the DNS: 10 s for 1.5 time units, 2 members; the run: 2 s, of which 0.5 s in the closure
    ref = folder(tmp_path, "dns", w, times, run_json=run_json(2, 1.5, 10.0, 9.5, 0.0))
    run = folder(tmp_path, "les", les, times, run_json=run_json(2, 1.5, 2.0, 1.25, 0.5))
    out = tmp_path / "cmp"
    assert main(["compare", str(run), str(ref), "--out", str(out), "--bins", "40"]) == 0
    printed = capsys.readouterr()
    assert "| speed-up per time unit per member (reference / run) | 5 |" in printed.out
    m = json.loads((out / "metrics.json").read_text())
    cost = m["cost"]
    assert cost["reference"]["wall_per_time_per_member"] == pytest.approx(10 / 1.5 / 2)
    assert cost["run"]["closure_per_time_per_member"] == pytest.approx(0.5 / 1.5 / 2)
    assert cost["run"]["solver_per_time_per_member"] == pytest.approx(1.25 / 1.5 / 2)
    assert cost["run"]["closure_fraction"] == pytest.approx(0.25)
    assert cost["speedup_per_time_per_member"] == pytest.approx(5.0)
    assert m["run"]["run_json"] == str(run / "run.json")
    # the distances of a shifted copy: W1 is the shift exactly; H from the two histograms on the
    # common bins, computed here as 1 − Σ√(pq) (the code uses ½Σ(√p − √q)²)
    steady = slice(2, 4)                                   # the last half of the 4 records
    a, b = les[:, steady].ravel(), filtered[:, steady].ravel()
    assert m["headline"]["pdf_wasserstein1"] == pytest.approx(shift, rel=1e-9)
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 41)
    p, q = np.histogram(a, edges)[0] / a.size, np.histogram(b, edges)[0] / b.size
    assert m["headline"]["pdf_hellinger"] == pytest.approx(math.sqrt(1 - np.sum(np.sqrt(p * q))),
                                                           abs=1e-9)
    assert m["headline"]["pdf_hellinger"] > 0.1                # the shift is seen
    # every error is the shift against the filtered DNS: ‖c‖/‖ω_ref‖ per member and record
    np.testing.assert_allclose(
        m["errors"]["relative_l2_members"],
        shift * np.sqrt(coarse.n ** 2) / np.linalg.norm(filtered.reshape(2, 4, -1), axis=-1),
        rtol=1e-9)
    assert m["coarse_graining"]["applied"]
    assert sorted(m["figures"]) == ["energy.png", "error.png", "pdf.png", "spectra.png"]
    for name in m["figures"]:
        assert valid_png(out / name)
    # the reference at its own resolution is kept beside the filtered one
    assert len(m["spectra"]["reference_dns"]) == 16 and len(m["energy"]["reference_dns"]) == 4


def test_cli_bad_input_exits_2_naming_the_argument(tmp_path, capsys):
    g = Grid(16)
    good = write_traj(tmp_path / "good.nc", band_limited_fields(g, 1, 2, 5, 0), [0.0, 1.0])
    assert main(["compare", str(good), str(tmp_path / "missing")]) == 2
    assert "REFERENCE" in capsys.readouterr().err
    assert main(["compare", str(good), str(good), "--delta", "-1"]) == 2
    assert "--delta" in capsys.readouterr().err
    assert not (tmp_path / "compare").exists()               # nothing written on bad input


def test_cost_is_read_from_the_run_json_of_a_real_run(tmp_path):
    """The run.json hybrid.simulation writes, read back: cost = timings / simulated_time /
    members, and the same numbers for a copy of the run (speed-up 1)."""
    from hybrid.simulation import Simulation
    s = KolmogorovFlow(n=16, nu=2e-2, mu=0.1, kf=4, dt=0.01, members=2)
    s.set_vorticity(np.stack([smooth_random_field(s.grid, k, amplitude=3.0) for k in (0, 1)]))
    Simulation(s, "smagorinsky", every=2).run(0.3, out=tmp_path / "run", output_every=0.1)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    m = compare_runs(tmp_path / "run", tmp_path / "run", write=False)
    c, T = m["cost"]["run"], info["simulated_time"]
    assert T == pytest.approx(0.3) and c["members"] == 2
    assert c["wall_per_time_per_member"] == info["timings"]["wall_s"] / T / 2
    assert c["closure_per_time_per_member"] == info["timings"]["closure_s"] / T / 2
    assert c["solver_per_time_per_member"] == info["timings"]["solver_s"] / T / 2
    assert m["cost"]["speedup_per_time_per_member"] == 1.0


@pytest.mark.parametrize("drop, message", [
    ("timings", "has no 'timings.wall_s'"),
    ("timings.closure_s", "has no 'timings.closure_s'"),
    ("simulated_time", "has no 'simulated_time'"),
    ("members", "has no 'members'"),
])
def test_a_run_json_without_the_cost_keys_names_the_file_and_the_key(tmp_path, drop, message):
    g = Grid(16)
    info = run_json(2, 1.5, 3.0, 2.0, 0.6)
    group, _, key = drop.rpartition(".")
    del (info[group] if group else info)[key]
    run = folder(tmp_path, "run", band_limited_fields(g, 2, 2, 5, seed=1), [0.0, 1.5],
                 run_json=info)
    with pytest.raises(CompareError, match=f"RUN: .*run.json {message}"):
        compare_runs(run, run, write=False)
    info = run_json(2, 1.5, 3.0, 2.0, 0.6)
    info["timings"]["wall_s"] = "3 s"
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(CompareError, match="'timings.wall_s' must be a finite number"):
        compare_runs(run, run, write=False)


def test_no_run_json_means_unknown_cost(tmp_path):
    g = Grid(16)
    run = write_traj(tmp_path / "run.nc", band_limited_fields(g, 2, 2, 5, seed=1), [0.0, 1.5])
    c = compare_runs(run, run, write=False)["cost"]
    assert c["run"]["wall_per_time_per_member"] is None and "no run.json" in c["run"]["note"]
    assert c["speedup_per_time_per_member"] is None


def test_ensemble_scores_of_a_calibrated_gaussian_ensemble(tmp_path):
    """Truth and M members drawn alike, c + a·z (z white, unit variance): the spread–error ratio
    is 1, the fair CRPS is a/√π (the CRPS of N(μ, a²) against a draw from it), the ensemble-mean
    error is a·sqrt(1 + 1/M)/rms(truth); a one-member run's CRPS is its mean absolute error."""
    from hybrid.compare import ensemble_scores
    n, M, T, a = 32, 24, 3, 0.5
    rng = np.random.default_rng(5)
    g = Grid(n, TWO_PI)
    c = np.stack([smooth_random_field(g, 10 + t, amplitude=4.0) for t in range(T)])
    truth = c + a * rng.standard_normal((T, n, n))
    members = c[None] + a * rng.standard_normal((M, T, n, n))
    times = 1.0 + 0.5 * np.arange(T)
    ref = folder(tmp_path, "ref", np.stack([np.zeros_like(truth), truth]), times)
    run = folder(tmp_path, "ens", members, times)
    sc = ensemble_scores(run, ref, reference_member=1)
    assert sc["members"] == M and sc["lead_time"] == pytest.approx([0.0, 0.5, 1.0])
    np.testing.assert_allclose(sc["spread_error_ratio"], 1.0, atol=0.06)
    np.testing.assert_allclose(np.array(sc["crps"]) / a, 1 / math.sqrt(math.pi), rtol=0.04)
    rms = np.sqrt(np.mean(truth ** 2, axis=(1, 2)))
    np.testing.assert_allclose(sc["error_ensemble_mean"], a * math.sqrt(1 + 1 / M) / rms,
                               rtol=0.05)
    s1 = ensemble_scores(run, ref, reference_member=1, run_members=[0])
    mae = np.mean(np.abs(members[0] - truth), axis=(1, 2))
    np.testing.assert_allclose(s1["crps"], mae, rtol=1e-10)
    assert s1["spread_error_ratio"] == [None] * T
    with pytest.raises(CompareError, match="reference_member"):
        ensemble_scores(run, ref, reference_member=2)
