"""Cost of the solvers against their FFT floor (pytest-benchmark; `make bench`).

For each grid n, ensemble size M and precision, three timings in one process, back to back:
  floor  the five n×n real FFTs per member of one right-hand side (3 c2r + 2 r2c), through the
         very plans the solver uses;
  rhs    one right-hand-side evaluation N(ζ̂) (the floor plus the fused pointwise kernels);
  step   one full ETDRK4 step (four evaluations and the stage combinations).
`python -m benchmarks.report` turns the saved JSON into the ratio table rhs/floor, step/floor.
One FFTW thread, numba single-threaded; the first call of each is a warm-up (JIT, caches).
"""
import numpy as np
import pytest

from fields import smooth_random_field
from solvers import KolmogorovFlow

SIZES = [64, 128, 256, 512]
MEMBERS = [1, 8]
DTYPES = ["float64", "float32"]
WHAT = ["floor", "rhs", "step"]
_solvers: dict = {}


def solver(n, members, dtype):
    key = (n, members, dtype)
    if key not in _solvers:
        _solvers.clear()                      # keep one configuration's buffers alive at a time
        s = KolmogorovFlow(n=n, dt=1e-4, members=members, dtype=dtype, threads=1)
        s.set_vorticity(smooth_random_field(s.grid, 1))
        _solvers[key] = s
    return _solvers[key]


CASES = [(n, m, d, w) for n in SIZES for m in MEMBERS for d in DTYPES for w in WHAT]


@pytest.mark.parametrize("n,members,dtype,what", CASES,
                         ids=[f"n{n}-M{m}-{d}-{w}" for n, m, d, w in CASES])
def test_solver_cost(benchmark, n, members, dtype, what):
    s = solver(n, members, dtype)
    benchmark.group = f"n={n} M={members} {dtype}"
    benchmark.extra_info.update(n=n, members=members, dtype=dtype, what=what)
    if what == "floor":
        def run():
            s._inv.execute()
            s._fwd.execute()
    elif what == "rhs":
        zh = s.vorticity_hat.copy()
        out = np.empty_like(zh)
        def run():
            s._rhs_into(zh, out)
    else:
        def run():
            s.step(1)
    run()
    rounds = max(5, min(200, int(3e6 / (n * n * members))))
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=2)
