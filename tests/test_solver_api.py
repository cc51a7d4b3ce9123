"""The solver's contract: determinism, batching, the closure hook, and errors on bad input."""
import numpy as np
import pytest

from solvers import BetaPlane, BlowUpError, Every, KolmogorovFlow, PseudoSpectralSolver
from solvers.base import ClosureError
from fields import smooth_random_field


def beta_run(members=1, seed=3, steps=30, first_member=0, **kw):
    s = BetaPlane(n=32, beta=2.0, mu=1e-2, kf=6, kf_width=1.5, epsilon=1e-3, dt=0.05,
                  members=members, seed=seed, first_member=first_member, **kw)
    s.step(steps)
    return s


def test_same_seed_gives_bit_identical_trajectory_and_other_seed_does_not():
    a, b, c = beta_run(seed=3), beta_run(seed=3), beta_run(seed=4)
    assert np.array_equal(a.vorticity_hat, b.vorticity_hat)
    assert not np.allclose(a.vorticity_hat, c.vorticity_hat)


def test_batched_members_equal_single_member_runs_bit_for_bit():
    batch = beta_run(members=4)
    for m in range(4):
        single = beta_run(members=1, first_member=m)
        assert np.array_equal(batch.vorticity_hat[m], single.vorticity_hat[0])
    # and a sub-batch (as a Dask worker would run it) equals its slice of the full batch
    part = beta_run(members=2, first_member=2)
    assert np.array_equal(batch.vorticity_hat[2:], part.vorticity_hat)
    # members differ from each other (independent noise)
    assert not np.allclose(batch.vorticity_hat[0], batch.vorticity_hat[1])


def test_threads_split_the_members_and_give_the_one_thread_run_bit_for_bit(monkeypatch):
    """Slot groups run side by side, each slot on its one-thread plans: any thread count gives
    the one-thread bits. (The size thresholds are lowered so that 32² fields take each path.)"""
    from solvers import fft
    one = beta_run(members=5)
    monkeypatch.setattr(fft, "MIN_GROUP_POINTS", 0)
    for threads in (2, 3):
        s = beta_run(members=5, threads=threads)
        assert s._inv.slot_parallel and s._util.slot_parallel
        assert np.array_equal(s.vorticity_hat, one.vorticity_hat)
    # fewer slots than threads: FFTW's own threads inside each plan from MIN_THREADED_N on,
    # below it one thread
    few = fft.BatchedRealFFT(16, 2, threads=4)
    assert not few.slot_parallel and few._plan_threads == 1
    monkeypatch.setattr(fft, "MIN_THREADED_N", 16)
    assert fft.BatchedRealFFT(16, 2, threads=4)._plan_threads == 4
    # default thresholds: small fields stay on one thread
    monkeypatch.undo()
    assert not beta_run(members=5, threads=2, steps=1)._inv.slot_parallel
    # a partial execute (the first 3 of 5 slots) over two groups touches only those slots
    monkeypatch.setattr(fft, "MIN_GROUP_POINTS", 0)
    fwd = fft.BatchedRealFFT(16, 5, threads=2, kmax=5)
    phys = np.random.default_rng(1).standard_normal((5, 16, 16))
    fwd.real[...] = phys
    fwd.execute(3)
    mask = np.zeros((16, 9), bool)
    mask[:, :6] = True
    mask[6:11] = False
    for k in range(3):
        np.testing.assert_allclose(fwd.spectral[k] * mask, np.fft.rfft2(phys[k]) * mask,
                                   atol=1e-12)
    assert not np.any(np.asarray(fwd.spectral)[3:])


class ConstantClosure:
    """Returns the same physical term every call; counts calls."""

    def __init__(self, term, every=1):
        self.term, self.every, self.calls, self.steps = term, every, 0, []

    def reset(self, grid, members, params, seed):
        self.calls, self.steps = 0, []

    def __call__(self, state):
        self.calls += 1
        self.steps.append(state.step)
        return np.broadcast_to(self.term, state.vorticity.shape).copy()


def test_run_makes_each_schedules_calls_on_its_own_times():
    """The one run loop: a callback every 0.03 from the start (and at the end), one every 0.05
    from an origin before the start (no start call), one at the end only of a run whose start
    is recorded already; dt = 0.01, t_end = 0.1."""
    import time
    s = KolmogorovFlow(n=16, dt=0.01)
    seen = {"a": [], "b": [], "c": [], "cb": []}

    def note(key):
        return lambda solver: seen[key].append(solver.step_count)
    a = Every(0.03, note("a"), end=True)
    b = Every(0.05, note("b"), origin=-0.02, start=False, end=True)
    c = Every(None, note("c"), end=True, last_step=0)
    wall0 = time.perf_counter()
    s.run(0.1, every=0.04, callback=note("cb"), schedules=[a, b, c])
    wall = time.perf_counter() - wall0
    assert seen == {"a": [0, 3, 6, 9, 10], "b": [3, 8, 10], "c": [10], "cb": [0, 4, 8]}
    assert (a.calls, b.calls, c.calls) == (5, 3, 1) and s.step_count == 10
    assert s.timers["steps"] <= wall                        # the steps' time, not the calls'
    s.run(0.1, schedules=[a, b])                            # nothing to step: nothing repeated
    assert seen["a"] == [0, 3, 6, 9, 10] and seen["b"] == [3, 8, 10]
    with pytest.raises(ValueError, match="^every must"):
        Every(0.0, print)
    with pytest.raises(ValueError, match="Every"):
        s.run(0.2, schedules=[print])


def test_constant_closure_equals_the_same_term_given_as_forcing():
    g = PseudoSpectralSolver(32, dt=0.01).grid
    X, Y = g.meshgrid()
    term = 0.3 * np.sin(2 * X) * np.cos(3 * Y)
    z0 = smooth_random_field(g, 6)
    forced = PseudoSpectralSolver(32, nu=1e-2, mu=0.1, dt=0.01, forcing=term)
    hooked = PseudoSpectralSolver(32, nu=1e-2, mu=0.1, dt=0.01)
    hooked.set_closure(ConstantClosure(term, every=3))
    for s in (forced, hooked):
        s.set_vorticity(z0)
        s.step(25)
    assert np.array_equal(forced.vorticity_hat, hooked.vorticity_hat)
    # the budget books the same input under "closure" instead of "forcing"
    bf, bh = forced.budget_summary(), hooked.budget_summary()
    assert bh["energy_closure"][0] == pytest.approx(bf["energy_forcing"][0], rel=1e-12)
    assert bh["energy_forcing"][0] == 0


@pytest.mark.parametrize("every,steps", [(1, 7), (5, 23), (4, 8)])
def test_closure_called_once_every_k_steps(every, steps):
    s = KolmogorovFlow(n=32, dt=0.01, members=2)
    clo = ConstantClosure(np.zeros((32, 32)), every=every)
    s.set_closure(clo)
    s.step(steps)
    assert clo.calls == -(-steps // every)
    assert clo.steps == list(range(0, steps, every))
    assert s.closure_calls == clo.calls


def test_closure_held_fixed_between_calls():
    # a closure returning a different term each call: between calls the held term is the old one
    class Ramp(ConstantClosure):
        def __call__(self, state):
            self.calls += 1
            return np.full(state.vorticity.shape, 0.0) + self.calls * self.term

    g = PseudoSpectralSolver(32, dt=0.01).grid
    X, Y = g.meshgrid()
    term = np.cos(X)
    s = PseudoSpectralSolver(32, dt=0.01)
    s.set_closure(Ramp(term, every=4))
    s.step(8)                                   # terms 1·term for steps 0–3, 2·term for 4–7
    ref = PseudoSpectralSolver(32, dt=0.01, forcing=term)
    ref.step(4)
    ref2 = PseudoSpectralSolver(32, dt=0.01, forcing=2 * term)
    ref2.set_vorticity_hat(ref.vorticity_hat)
    ref2.step(4)
    np.testing.assert_allclose(s.vorticity_hat, ref2.vorticity_hat, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad,match", [
    (lambda shape: np.full(shape, np.nan), "non-finite"),
    (lambda shape: np.zeros(shape[1:]), "shape"),
    (lambda shape: np.zeros(shape, dtype=np.complex128), "dtype"),
    (lambda shape: [[0.0]], "expected a numpy array"),
])
def test_bad_closure_output_raises_naming_closure_and_step(bad, match, tmp_path):
    class Bad(ConstantClosure):
        def __call__(self, state):
            if state.step == 2:
                return bad(state.vorticity.shape)
            return np.zeros(state.vorticity.shape)

    s = KolmogorovFlow(n=32, dt=0.01, members=2, blowup_dir=tmp_path)
    s.set_closure(Bad(None, every=1))
    with pytest.raises(ClosureError, match=match) as e:
        s.step(5)
    assert "Bad" in str(e.value) and "step 2" in str(e.value)
    assert e.value.step == 2 and e.value.restart_path.parent == tmp_path


def test_closure_that_raises_leaves_a_restart_and_names_step_and_time(tmp_path):
    class Failing(ConstantClosure):
        fail_at = 6

        def __call__(self, state):
            if state.step == self.fail_at:
                raise RuntimeError("network exploded")
            return super().__call__(state)

    g = PseudoSpectralSolver(32, dt=0.01).grid
    term = 0.1 * np.cos(2 * g.meshgrid()[1])
    s = KolmogorovFlow(n=32, dt=0.01, members=2, blowup_dir=tmp_path)
    s.set_vorticity(smooth_random_field(s.grid, 2))
    s.set_closure(Failing(term, every=3))
    with pytest.raises(ClosureError, match=r"Failing raised RuntimeError: network exploded at "
                                           r"step 6 \(t=0\.06\)") as e:
        s.step(10)
    assert isinstance(e.value.__cause__, RuntimeError)
    assert str(e.value.restart_path) in str(e.value)
    # the restart holds the state at the start of step 6: continuing it with a working closure
    # equals a run that never failed
    from solvers.io import read_restart
    mended = Failing(term, every=3)
    mended.fail_at = None
    again = read_restart(e.value.restart_path, closure=mended)
    assert again.step_count == 6 and again.closure_every == 3
    again.step(4)
    ref = KolmogorovFlow(n=32, dt=0.01, members=2)
    ref.set_vorticity(smooth_random_field(ref.grid, 2))
    ref.set_closure(ConstantClosure(term, every=3))
    ref.step(10)
    assert np.array_equal(again.vorticity_hat, ref.vorticity_hat)


def test_set_closure_every_leaves_the_closure_object_alone():
    clo = ConstantClosure(np.zeros((32, 32)), every=5)
    s = KolmogorovFlow(n=32, dt=0.01)
    s.set_closure(clo, every=2)
    s.step(6)
    assert clo.every == 5                          # the caller's object is unchanged ...
    assert s.closure_every == 2 and clo.steps == [0, 2, 4]      # ... the solver uses every=2
    with pytest.raises(ValueError, match="^every must"):
        s.set_closure(clo, every=0)


@pytest.mark.parametrize("kwargs,name", [
    (dict(n=33), "n"), (dict(n=4), "n"), (dict(n=32.0), "n"), (dict(nu=-1e-3), "nu"),
    (dict(mu=-0.1), "mu"), (dict(dt=0.0), "dt"), (dict(dt=-0.1), "dt"),
    (dict(dt=float("nan")), "dt"), (dict(members=0), "members"), (dict(kf=0), "kf"),
    (dict(dtype="int32"), "dtype"), (dict(stepper="euler"), "stepper"), (dict(L=-1.0), "L"),
    (dict(seed=-1), "seed"), (dict(cfl=0), "cfl"), (dict(threads=0), "threads"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        KolmogorovFlow(**{"n": 32, **kwargs})


def test_bad_betaplane_arguments():
    with pytest.raises(ValueError, match="^epsilon must"):
        BetaPlane(n=32, epsilon=-1.0, kf=6)
    with pytest.raises(ValueError, match="kf=16 lies beyond"):
        BetaPlane(n=32, kf=16)
    with pytest.raises(ValueError, match="^hyper_order must"):
        BetaPlane(n=32, kf=6, hyper_order=0)


def test_set_vorticity_checks_shape_and_values():
    s = KolmogorovFlow(n=32, dt=0.01, members=2)
    with pytest.raises(ValueError, match="zeta must have shape"):
        s.set_vorticity(np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match="finite"):
        s.set_vorticity(np.full((32, 32), np.inf))


@pytest.mark.parametrize("bad", [np.nan, np.inf, complex(0, np.nan)])
def test_set_vorticity_hat_rejects_non_finite_values_and_keeps_the_state(bad):
    s = KolmogorovFlow(n=32, dt=0.01, members=2)
    s.set_vorticity(smooth_random_field(s.grid, 2))
    before = np.array(s.vorticity_hat)
    zh = np.array(before)
    zh[1, 3, 2] = bad                              # one mode of one member, inside the kept box
    with pytest.raises(ValueError, match="^zeta_hat must be finite"):
        s.set_vorticity_hat(zh)
    assert np.array_equal(s.vorticity_hat, before)


def test_unstable_dt_blows_up_with_step_time_and_restart_file(tmp_path):
    s = KolmogorovFlow(n=32, nu=1e-3, mu=0.1, dt=1.0, blowup_dir=tmp_path)
    s.set_vorticity(smooth_random_field(s.grid, 1, amplitude=5.0))
    with pytest.raises(BlowUpError) as e:
        s.step(500)
    err = e.value
    assert err.step >= 1 and err.t == pytest.approx(err.step * 1.0)
    assert f"step {err.step}" in str(err) and str(err.restart_path) in str(err)
    assert err.restart_path.exists() and err.restart_path.parent == tmp_path
    # the restart holds the last finite state, one step before the failure
    from solvers.io import read_restart
    r = read_restart(err.restart_path)
    assert r.step_count == err.step - 1
    assert np.all(np.isfinite(r.vorticity_hat))


RUN_TWICE = """
import sys, numpy as np
from solvers import BetaPlane
s = BetaPlane(n=64, beta=2.0, mu=1e-2, kf=8, kf_width=1.5, epsilon=1e-3, dt=0.05, members=2,
              seed=5)
s.step(100)
np.save(sys.argv[1], np.asarray(s.vorticity_hat))
"""


PLAN_FROM_WISDOM_FILE = """
import sys
from solvers import fft
from solvers.grid import Grid
n = int(sys.argv[1])
try:                                # the pruned inverse transforms of 2 members, from wisdom alone
    fft.BatchedRealFFT(n, 4, "float64", inverse=True, kmax=Grid(n).kmax_dealias,
                       planner="FFTW_WISDOM_ONLY")
    print("planned")
except RuntimeError:
    print("refused")
"""


def test_same_seed_is_bit_identical_across_processes_through_the_wisdom_file(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "HYBRID_FFTW_WISDOM": str(tmp_path / "wisdom")}
    outs = [tmp_path / f"run{k}.npy" for k in range(2)]
    for out in outs:
        subprocess.run([sys.executable, "-c", RUN_TWICE, str(out)], check=True, env=env,
                       cwd=tmp_path)
    # the first process saved its plans: a process reading the file makes them from wisdom alone
    for wisdom, want in [(tmp_path / "wisdom", "planned"), (tmp_path / "none", "refused")]:
        r = subprocess.run([sys.executable, "-c", PLAN_FROM_WISDOM_FILE, "64"], check=True,
                           env={**env, "HYBRID_FFTW_WISDOM": str(wisdom)}, cwd=tmp_path,
                           capture_output=True, text=True)
        assert r.stdout.strip() == want
    a, b = (np.load(o) for o in outs)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("n", [8, 10, 48, 64])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-13), ("float32", 2e-6)])
def test_pruned_transforms_equal_full_ones_on_the_dealiased_box(n, dtype, tol):
    from solvers.fft import BatchedRealFFT
    from solvers.grid import Grid
    g = Grid(n)
    rng = np.random.default_rng(n)
    phys = rng.standard_normal((2, n, n))
    spec = np.fft.rfft2(phys) * g.dealias                    # a Hermitian-consistent spectrum
    inv = BatchedRealFFT(n, 2, dtype, inverse=True, kmax=g.kmax_dealias)
    inv.spectral[...] = spec
    inv.execute()
    want = np.fft.irfft2(spec, s=(n, n)) * n * n
    assert np.abs(np.asarray(inv.real) - want).max() <= tol * np.abs(want).max()
    fwd = BatchedRealFFT(n, 2, dtype, kmax=g.kmax_dealias)
    fwd.real[...] = phys
    fwd.execute(1)                                            # the first slot only
    want = np.fft.rfft2(phys[0]) * g.dealias
    got = fwd.spectral[0] * g.dealias
    assert np.abs(got - want).max() <= tol * np.abs(want).max()
    assert not np.any(fwd.spectral[1])


def test_pruned_transform_arguments_are_checked():
    from solvers.fft import BatchedRealFFT, slot_array
    for kmax in (-1, 4, 2.0):
        with pytest.raises(ValueError, match="kmax"):
            BatchedRealFFT(8, 1, kmax=kmax)
    with pytest.raises(ValueError, match="spectral_fields"):
        BatchedRealFFT(8, 1, spectral_fields=list(slot_array(1, (8, 4), np.complex128)))


def test_modes_outside_the_dealiased_box_are_ignored_by_rhs_and_inverse():
    s = KolmogorovFlow(n=32, dt=0.01, members=2)
    s.set_vorticity(smooth_random_field(s.grid, 1))
    zh = np.array(s.vorticity_hat)
    noisy = zh + (~s.grid.dealias) * (1.0 + 2.0j)
    assert np.array_equal(s.rhs(noisy), s.rhs(zh))
    assert np.array_equal(s.inverse(noisy), s.inverse(zh))


def test_a_continued_run_whose_t_fell_short_by_round_off_makes_no_extra_call():
    """A run continued from step 230000 of dt 0.025 holds t = 5749.99999998645, 1.4e-8 short of
    the record time 5750 its earlier part was called at (t summed step by step). The schedule
    from origin 0 every 10 must call next at t ≈ 5760, not one step later at 5750.025."""
    s = KolmogorovFlow(n=16, nu=1e-2, mu=0.1, dt=0.025)
    s.t, s.step_count = 5749.999999986449, 230000
    steps = []
    s.run(s.t + 20.0, schedules=[Every(10.0, lambda sv: steps.append(sv.step_count), origin=0.0,
                                       last_step=230000)])
    assert steps == [230400, 230800]


def test_every_counts_steps_so_round_off_in_t_does_not_delay_a_call():
    """At t ≈ 2e9 each addition of dt = 0.1 to t rounds by up to 1.2e-7: summed over a period, far
    more than a time tolerance of 1e-9·every (which put the second call at step 101). The calls
    must still come every 100 steps."""
    s = KolmogorovFlow(n=16, nu=1e-2, mu=0.1, dt=0.1)
    s.t = 2e9 + 0.1
    steps = []
    s.run(s.t + 30.0, schedules=[Every(10.0, lambda sv: steps.append(sv.step_count))])
    assert steps == [0, 100, 200, 300]
    assert abs(s.t - (2e9 + 0.1 + s.step_count * 0.1)) > 1e-8     # the summed time did drift
