"""hybrid.jets: PDFs and Hellinger distances of U, ∂yU, ∂tU, the jet count and its events,
ensemble scores, and the ``hybrid jets`` command."""
import json
import math

import numpy as np
import pytest

from hybrid import jets
from hybrid.cli import main
from hybrid.compare import hellinger_from_probabilities
from hybrid.jets import counting, scores, statistics
from solvers.grid import Grid
from solvers.io import TrajectoryWriter

TWO_PI = 2 * np.pi
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------- helpers
class ZonalFrames:
    """Stands in for a beta-plane solver when writing a trajectory: serves given profiles U(y)
    (members, n) as zonal_mean_u, with the vorticity −∂yU they imply."""

    kind = "betaplane"

    def __init__(self, n, L, members, kf=8.0, mu=4e-3):
        self.grid, self.members = Grid(n, L), members
        self.t, self.step_count, self.U = 0.0, 0, np.zeros((members, n))
        self._config = {"n": n, "L": L, "members": members, "kf": kf, "mu": mu}

    def config(self):
        return dict(self._config)

    def zonal_mean_u(self):
        return self.U

    @property
    def vorticity(self):
        zeta = -statistics.d_dy(self.U, self.grid.L)
        return np.repeat(zeta[:, :, None], self.grid.n, axis=2)

    def energy(self):
        return 0.5 * np.mean(self.U ** 2, axis=-1)

    def enstrophy(self):
        return 0.5 * np.mean(statistics.d_dy(self.U, self.grid.L) ** 2, axis=-1)


def write_profiles(path, U, t, L=TWO_PI, **config):
    """Write U (members, time, n) at times ``t`` as a trajectory with zonal_mean_u."""
    U = np.asarray(U, dtype=np.float64)
    M, T, n = U.shape
    fr = ZonalFrames(n, L, M, **config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with TrajectoryWriter(path, fr, dtype="float64") as w:
        for i in range(T):
            fr.t, fr.step_count, fr.U = float(t[i]), i, U[:, i]
            w.write()
    return path


def jet_profile(y, n_jets, shift=0.0):
    """n_jets eastward jets: cos(n_jets (y − shift))."""
    return np.cos(n_jets * (y - shift))


def valid_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


# ---------------------------------------------------------------------------------- PDFs
def test_hellinger_of_identical_pdfs_is_0_and_of_disjoint_pdfs_is_1():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, 10_000)
    edges = statistics.fixed_bins(ref, bins=100, margin=0.1)
    assert edges.size == 101 and np.isclose(edges[0], ref.min() - 0.1 * np.ptp(ref))
    p = statistics.pdf(ref, edges)
    assert np.isclose(p.sum(), 1) and hellinger_from_probabilities(p, p) == 0.0
    # the run lies far outside the reference's range: it all goes to the end bins, where the
    # reference (widened by the margin) has no mass
    far = statistics.pdf(ref + 10, edges)
    assert far[-1] == 1.0
    assert hellinger_from_probabilities(p, far) == pytest.approx(1.0)


def test_hellinger_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(1)
    N = 400_000
    for (m1, s1), (m2, s2) in [((0, 1), (0.5, 1)), ((0, 1), (0, 1.5))]:
        a, b = rng.normal(m1, s1, N), rng.normal(m2, s2, N)
        edges = statistics.fixed_bins(b, bins=100)
        H = hellinger_from_probabilities(statistics.pdf(a, edges), statistics.pdf(b, edges))
        exact = math.sqrt(1 - math.sqrt(2 * s1 * s2 / (s1 ** 2 + s2 ** 2))
                          * math.exp(-(m1 - m2) ** 2 / (4 * (s1 ** 2 + s2 ** 2))))
        assert H == pytest.approx(exact, abs=0.01)


def test_derivatives_and_the_floor_from_reference_halves():
    L, n = TWO_PI, 32
    y = np.arange(n) * L / n
    U = np.sin(3 * y)[None, None] * np.ones((1, 4, 1))
    assert np.allclose(statistics.d_dy(U, L), 3 * np.cos(3 * y))
    t = np.arange(4) * 0.5
    assert np.allclose(statistics.d_dt(U * t[None, :, None], t), np.sin(3 * y))
    with pytest.raises(ValueError, match="not evenly spaced"):
        statistics.save_interval([0, 1, 3])
    # a record one solver step late (as a run loop may leave it) is still one save interval
    t_slip = np.array([0, 10, 20.05, 30, 40])
    assert statistics.save_interval(t_slip) == 10
    U5 = np.sin(3 * y)[None, None] * t_slip[None, :, None]
    assert np.allclose(statistics.d_dt(U5, t_slip), np.sin(3 * y))
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(4, 400, n))
    (a, _), (b, _), how = statistics.split_halves(ref, np.arange(400.0))
    assert a.shape == b.shape == (2, 400, n) and "members" in how
    (a, ta), (b, tb), how = statistics.split_halves(ref[:1], np.arange(400.0))
    assert a.shape == b.shape == (1, 200, n) and "time halves" in how and tb[0] == 200
    run = rng.normal(0.5, 1, size=(2, 400, n))
    d = statistics.pdf_distances(run, np.arange(400.0), ref, np.arange(400.0), L)
    for name in statistics.VARIABLES:
        assert d[name]["floor"] < 0.05
    assert d["U"]["hellinger"] > 4 * d["U"]["floor"]
    # the spectrum does not depend on the resolution of a resolved profile
    s16, s64 = (statistics.spectrum(np.cos(2 * np.arange(k) * L / k)[None, None])
                for k in (16, 64))
    assert np.allclose(s16, s64[:s16.size]) and s16[2] == pytest.approx(0.25)


# ---------------------------------------------------------------------------------- jets
@pytest.mark.parametrize("n", [32, 128])
def test_jet_count_of_known_profiles_at_two_resolutions(n):
    L = TWO_PI
    y = np.arange(n) * L / n
    profiles = np.array([jet_profile(y, k, shift=0.3) for k in (1, 2, 3, 4)]
                        + [np.zeros(n), -np.ones(n)])
    assert jets.count_jets(profiles, L, k_s=4.0).tolist() == [1, 2, 3, 4, 0, 0]
    pos = jets.jet_positions(jet_profile(y, 2, shift=0.3), L, k_s=4.0)
    assert np.allclose(np.sort(pos), [0.3, 0.3 + np.pi], atol=L / 64)
    # a ripple on the flanks of two jets: two shallow extra peaks without prominence
    rippled = jet_profile(y, 2) + 0.36 * np.sin(6 * y)
    assert jets.count_jets(rippled, L, k_s=20.0, prominence=0.0) == 4
    assert jets.count_jets(rippled, L, k_s=20.0, prominence=0.1) == 2


def test_jet_count_is_the_same_at_two_resolutions_for_a_random_flow(monkeypatch):
    rng = np.random.default_rng(3)
    L, modes = TWO_PI, 10
    coef = rng.normal(size=(200, modes)) + 1j * rng.normal(size=(200, modes))
    coef[:, 0] = 0
    coef[:, 2] += 6.0                                     # 2 strong jets plus weaker structure

    def sample(n):
        spec = np.zeros((200, n // 2 + 1), complex)
        spec[:, :modes] = coef * n
        return np.fft.irfft(spec, n=n)

    c32, c96 = (jets.count_jets(sample(n), L, k_s=4.0) for n in (32, 96))
    assert np.array_equal(c32, c96) and len(set(c32.tolist())) > 1
    monkeypatch.setattr(counting, "CHUNK", 7)        # long records are counted in chunks
    assert np.array_equal(jets.count_jets(sample(32), L, k_s=4.0), c32)


def test_merging_and_nucleation_with_the_persistence_rule():
    L, n, dt = TWO_PI, 64, 2.0
    y = np.arange(n) * L / n
    # 3 jets; a 2-jet blip shorter than the persistence time; 3 jets; merging to 2 at t = 200;
    # nucleation back to 3 at t = 400; a 2-jet end too short to be confirmed
    plan = [(3, 50), (2, 3), (3, 47), (2, 100), (3, 80), (2, 2)]
    prof = np.concatenate([np.repeat(jet_profile(y, k)[None], r, axis=0) for k, r in plan])
    U = prof[None] + 0.01 * np.random.default_rng(4).normal(size=(1,) + prof.shape)
    t = np.arange(U.shape[1]) * dt
    counts = jets.count_jets(U, L, k_s=4.0)
    assert np.array_equal(counts[0], np.concatenate([[k] * r for k, r in plan]))
    persist = 20.0
    ev = jets.events(counts, t, persist)
    assert [(e["kind"], e["t"], e["before"], e["after"]) for e in ev] == [
        ("merging", 200.0, 3, 2), ("nucleation", 400.0, 2, 3)]
    assert jets.episodes(counts[0], dt, persist) == [(3, 0, 100), (2, 100, 200), (3, 200, 282)]
    res = jets.residence_times(counts, t, persist)
    assert list(res) == ["2"] and res["2"]["mean"] == 200.0 and res["2"]["episodes"] == 1
    frac = jets.fractions(counts, t, persist, resamples=200)
    assert frac["2"]["episodes"] == pytest.approx(100 / 282)
    assert frac["2"]["records"] == pytest.approx(105 / 282)
    # the same flow on a coarser grid: the same events
    coarse = U[:, :, ::4]
    assert jets.events(jets.count_jets(coarse, L, k_s=4.0), t, persist) == ev


def test_residence_time_intervals_are_seeded_and_cover_the_mean():
    rng = np.random.default_rng(5)
    series = np.concatenate([[2 + i % 2] * int(d) for i, d in
                             enumerate(rng.exponential(50, 60) + 10)])
    t = np.arange(series.size, dtype=float)
    a = jets.residence_times(series, t, persist=5.0, resamples=500, seed=7)
    b = jets.residence_times(series, t, persist=5.0, resamples=500, seed=7)
    assert a == b
    for v in a.values():
        lo, hi = v["interval_95"]
        assert lo < v["mean"] < hi


def test_time_to_the_first_event_of_each_member():
    base = np.full((3, 100), 3)
    base[0, 30:] = 2                                  # merging at t = 30
    base[1, 50:] = 4                                  # nucleation at t = 50
    base[2, 60:62] = 2                                # a blip: no event
    t = 10.0 + np.arange(100)
    assert np.array_equal(jets.first_events(base, t, 5.0), [30, 50, np.nan], equal_nan=True)
    assert np.array_equal(jets.first_events(base, t, 5.0, "merging"), [30, np.nan, np.nan],
                          equal_nan=True)
    s = jets.time_to_event(jets.first_events(base, t, 5.0))
    assert s["members"] == 3 and s["with_event"] == 2 and s["quantiles"]["0.5"] == 40
    rng = np.random.default_rng(9)
    a, b = rng.exponential(100, 300), rng.exponential(100, 300)
    assert jets.ks_two_sample(a, b)[1] > 0.05
    assert jets.ks_two_sample(a, b + 50)[1] < 1e-4
    assert jets.ks_two_sample([0, 1], [2, 3])[0] == 1.0


# ---------------------------------------------------------------------------------- scores
def test_crps_of_a_gaussian_ensemble_matches_the_closed_form():
    rng = np.random.default_rng(6)
    sigma, y0, m = 1.3, 0.7, 8
    X = rng.normal(0, sigma, size=(m, 50_000))
    truth = np.full(50_000, y0)
    error, spread = jets.crps_parts(X, truth)
    z = y0 / sigma
    Phi, phi = 0.5 * (1 + math.erf(z / math.sqrt(2))), math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    exact_error = sigma * (z * (2 * Phi - 1) + 2 * phi)              # E|X − y|
    exact_spread = sigma / math.sqrt(math.pi)                         # ½ E|X − X'|
    assert error.mean() == pytest.approx(exact_error, rel=0.01)
    assert spread.mean() == pytest.approx(exact_spread, rel=0.01)
    assert (error - spread).mean() == pytest.approx(exact_error - exact_spread, rel=0.02)
    # the spread part is the fair pair sum: brute force on a few members
    x = rng.normal(size=5)
    e, s = jets.crps_parts(x[:, None], np.zeros(1))
    assert s[0] == pytest.approx(np.abs(x[:, None] - x[None]).sum() / (2 * 5 * 4))


def test_an_ensemble_drawn_like_the_truth_is_calibrated_and_its_ranks_are_flat():
    rng = np.random.default_rng(7)
    m, leads, ny = 10, 40, 64
    truth = rng.normal(size=(leads, ny))
    X = rng.normal(size=(m, leads, ny))
    lead = np.arange(1, leads + 1, dtype=float)
    s = jets.ensemble_scores(X, truth, lead)
    assert s["spread_error_ratio_all"] == pytest.approx(1.0, abs=0.05)
    assert s["rank_histogram"].sum() == leads * ny and s["rank_histogram"].size == m + 1
    assert s["rank_histogram_p"] > 0.01
    starts = [jets.ensemble_scores(rng.normal(size=(m, leads, 8)), rng.normal(size=(leads, 8)),
                                   lead, seed=k) for k in range(6)]
    pooled = jets.pool_scores(starts)
    assert pooled["starts"] == 6 and pooled["rank_histogram"].sum() == 6 * leads * 8
    assert pooled["spread_error_ratio_all"] == pytest.approx(1.0, abs=0.08)
    assert np.allclose(pooled["crps"], np.mean([r["crps"] for r in starts], axis=0))
    with pytest.raises(ValueError, match="same members"):
        jets.pool_scores([starts[0], jets.ensemble_scores(X[:5], truth, lead)])
    narrow = jets.ensemble_scores(0.4 * X, truth, lead)
    assert narrow["spread_error_ratio_all"] < 0.5 and narrow["rank_histogram_p"] < 1e-6


def test_rank_flatness_resamples_starts_and_sees_spread_and_bias():
    """Within a start the truth and each member share one offset over all points and leads, so
    the ranks of a start move together: the pooled χ² test calls an exchangeable ensemble
    non-flat, the start-resampled intervals do not; members with a third of the truth's offset
    spread are under-dispersed (ends in excess), members shifted down are biased low (mean
    rank above ½); over-dispersed members put the ends below."""
    rng = np.random.default_rng(11)
    m, leads, ny, starts = 8, 10, 16, 40
    lead = np.arange(1, leads + 1, dtype=float)

    def pooled(offset_scale=1.0, shift=0.0):
        out = []
        for k in range(starts):
            y = rng.normal() + 0.3 * rng.normal(size=(leads, ny))
            X = (offset_scale * rng.normal(size=(m, 1, 1)) + shift
                 + 0.3 * rng.normal(size=(m, leads, ny)))
            out.append(jets.ensemble_scores(X, y, lead, seed=k))
        return jets.pool_scores(out)

    same = pooled()
    assert same["rank_histogram_p"] < 1e-6 and same["rank_flatness"]["flat"]
    narrow = pooled(offset_scale=0.3)["rank_flatness"]
    assert narrow["ends_excess"]["interval_95"][0] > 0 and not narrow["flat"]
    wide = pooled(offset_scale=3.0)["rank_flatness"]
    assert wide["ends_excess"]["interval_95"][1] < 0
    low = pooled(shift=-1.0)["rank_flatness"]
    assert low["mean_rank"]["interval_95"][0] > 0 and not low["flat"]
    h = np.array([[1, 1, 1], [2, 2, 2]])
    assert jets.rank_flatness(h)["ends_excess"]["value"] == 0.0
    assert jets.rank_flatness(h[:1]) is None


def test_chi_square_survival_function():
    for x in (0.1, 1.0, 5.0, 30.0):
        assert scores.chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-10)
        assert scores.chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-9)
    assert scores.chi2_sf(18.307, 10) == pytest.approx(0.05, abs=1e-4)
    assert statistics._t975(19) == pytest.approx(2.093, abs=2e-3)


# ---------------------------------------------------------------------------------- command
def _dns(path, n, members, t_end, seed):
    import solvers
    s = solvers.BetaPlane(n, beta=8.0, mu=4e-3, kf=4.0, kf_width=1.0, epsilon=4e-4, dt=0.1,
                          members=members, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with TrajectoryWriter(path, s) as w:
        s.run(t_end, every=1.0, callback=w.write)
    return path


def test_hybrid_jets_end_to_end_on_tiny_solver_runs(tmp_path, capsys):
    ref = _dns(tmp_path / "ref" / "trajectory.nc", 32, 2, 30.0, seed=0)
    run = _dns(tmp_path / "run" / "trajectory.nc", 16, 1, 30.0, seed=1)
    assert main(["jets", str(run.parent), str(ref), "--t-min", "5"]) == 0
    out = tmp_path / "run" / "jets"
    for name in ("jets.json", "jets.md", "hovmoller.png", "pdfs.png", "spectra.png",
                 "jet-numbers.png"):
        assert (out / name).is_file(), name
        if name.endswith(".png"):
            assert valid_png(out / name)
    assert not (out / "ensemble.png").exists()
    rep = json.loads((out / "jets.json").read_text())
    assert rep["command"].startswith("hybrid jets") and rep["date"]
    assert rep["settings"]["bins"] == 100 and rep["settings"]["smooth_k"] == 2.0
    assert rep["settings"]["persist"] == pytest.approx(125.0)
    for name in ("U", "dUdy", "dUdt"):
        assert 0 <= rep["pdfs"][name]["hellinger"] <= 1 and len(rep["pdfs"][name]["edges"]) == 101
        assert rep["pdfs"][name]["floor"] is not None
    assert rep["jets"]["reference"]["time_span"][0] == pytest.approx(5.0)
    assert "Hellinger" in capsys.readouterr().out
    # a second call refuses to overwrite, --overwrite replaces
    assert main(["jets", str(run.parent), str(ref), "--t-min", "5"]) == 2
    assert main(["jets", str(run.parent), str(ref), "--overwrite"]) == 0


def test_hybrid_jets_scores_an_ensemble_started_from_one_state(tmp_path):
    rng = np.random.default_rng(8)
    n, T, M = 32, 60, 6
    y = np.arange(n) * TWO_PI / n
    t = 100.0 + np.arange(T) * 10.0
    truth = jet_profile(y, 2)[None] + np.cumsum(0.05 * rng.normal(size=(T, n)), axis=0)
    truth[0] = jet_profile(y, 2)
    ens = truth[0][None, None] + np.concatenate(
        [np.zeros((M, 1, n)), np.cumsum(0.05 * rng.normal(size=(M, T - 1, n)), axis=1)], axis=1)
    ref = write_profiles(tmp_path / "truth.nc", truth[None], t)
    run = write_profiles(tmp_path / "ens" / "emulation.nc", ens, t)
    out = tmp_path / "scores"
    assert main(["jets", str(run.parent), str(ref), "--out", str(out)]) == 0
    rep = json.loads((out / "jets.json").read_text())
    e = rep["ensemble"]
    assert e["members"] == M and e["lead_time"][0] == 0 and len(e["crps"]) == T
    assert abs(e["crps"][0]) < 1e-12 and e["spread_error_ratio"][0] is None
    assert e["crps_error"][-1] > e["crps_error"][1]
    assert 0.5 < e["spread_error_ratio_all"] < 2 and sum(e["rank_histogram"]) == (T - 1) * n
    assert valid_png(out / "ensemble.png")
    assert rep["time_to_event"]["any"]["run"]["members"] == M
    assert rep["pdfs"]["floor_from"].startswith("one member")


@pytest.mark.parametrize("args, words", [
    (["RUN", "missing.nc"], "REFERENCE"),
    (["RUN", "KOLMO"], "zonal_mean_u"),
    (["RUN", "SLOW"], "saves every"),
    (["RUN", "REF", "--t-min", "1e6"], "--t-min"),
    (["RUN", "REF", "--truth-member", "3"], "--truth-member"),
    (["RUN", "REF", "--out", "FILE"], "--out"),
    (["RUN", "REF", "--bins", "0"], "--bins"),
    (["RUN", "NOCONF"], "--smooth-k"),
])
def test_bad_input_exits_2_naming_the_argument_and_writes_nothing(tmp_path, capsys, args,
                                                                   words):
    from solvers import KolmogorovFlow
    n, y = 16, np.arange(16) * TWO_PI / 16
    U = np.stack([jet_profile(y, 2)] * 5)[None]
    paths = {"RUN": write_profiles(tmp_path / "run.nc", U, np.arange(5.0)),
             "REF": write_profiles(tmp_path / "ref.nc", U, np.arange(5.0)),
             "SLOW": write_profiles(tmp_path / "slow.nc", U, 2 * np.arange(5.0)),
             "FILE": tmp_path / "a-file"}
    fr = ZonalFrames(n, TWO_PI, 1)
    fr._config = {"n": n, "L": TWO_PI}
    with TrajectoryWriter(tmp_path / "noconf.nc", fr) as w:
        for i in range(3):
            fr.t, fr.U = float(i), U[:, 0]
            w.write()
    paths["NOCONF"] = tmp_path / "noconf.nc"
    paths["FILE"].write_text("x")
    k = KolmogorovFlow(n=16, members=1)
    with TrajectoryWriter(tmp_path / "kolmo.nc", k) as w:
        w.write()
        k.step(1)
        w.write()
    paths["KOLMO"] = tmp_path / "kolmo.nc"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    argv = ["jets"] + [str(paths.get(a, tmp_path / a if a.endswith(".nc") else a))
                       for a in args]
    assert main(argv) == 2
    assert words in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
