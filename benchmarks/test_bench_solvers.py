"""Cost of the solvers against their FFT floor (pytest-benchmark; `make bench`).

For each grid n, ensemble size M and precision, in one process:
  floor  the five full n×n real 2D FFTs per member (3 c2r + 2 r2c) that one right-hand side took
         before the solver's transforms were pruned to the dealiased box and cut to four, planned
         as then, on the solver's buffers (``floor_transforms``): the floor stays the yardstick it
         was;
  rhs    one right-hand-side evaluation N(ζ̂) (the solver's four pruned transforms plus the fused
         pointwise kernels);
  step   one full ETDRK4 step (four evaluations and the stage combinations).
The machines here are shared and their speed drifts within minutes, so the three are timed in
interleaved rounds (floor, rhs, step, floor, rhs, step, …) and the ratios rhs/floor and
step/floor are the medians of the per-round ratios; pytest-benchmark itself times the step.
`python -m benchmarks.report` turns the saved JSON into the ratio table. One FFTW thread, numba
single-threaded; a warm-up precedes the timing (JIT, caches).
"""
import time

import numpy as np
import pytest

from fields import smooth_random_field
from solvers import KolmogorovFlow
from solvers.fft import BatchedRealFFT

SIZES = [64, 128, 256, 512]
MEMBERS = [1, 8]
DTYPES = ["float64", "float32"]
CASES = [(n, m, d) for n in SIZES for m in MEMBERS for d in DTYPES]


def _timed(f, repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - t0) / repeat


def floor_transforms(s) -> tuple[BatchedRealFFT, BatchedRealFFT]:
    """Full (unpruned) 2D transforms of solver ``s``'s size and batch on its buffers, as the
    solver's were before they were pruned and went from (u, v, ζ) to (u, v): per member 3 c2r
    (u, v, ζ) and 2 r2c reading the u and v outputs. The u and v slots are the solver's own FFT
    buffers; the ζ slot reads the solver's forward output (overwritten by the floor's r2c later
    anyway) and writes its utility real buffer: a floor on buffers the solver does not touch runs
    10–30 % slower here, which would flatter the ratios.

    Planning (and every floor) overwrites those buffers, the state untouched; the inverse input
    may hold the state's (û, v̂) for the next step, so the solver is told to rewrite it, and each
    round times ``rhs`` (which rewrites it) after the floor.
    """
    n, M, inv = s.grid.n, s.members, s._inv
    spec = [x for m in range(M)
            for x in (inv.spectral[2 * m], inv.spectral[2 * m + 1], s._fwd.spectral[2 * m])]
    real = [x for m in range(M) for x in (inv.real[2 * m], inv.real[2 * m + 1], s._util.real[m])]
    full = BatchedRealFFT(n, 3 * M, s.rdtype, inverse=True, threads=1, real_fields=real,
                          spectral_fields=spec)
    fwd = BatchedRealFFT(n, 2 * M, s.rdtype, threads=1, spectral_fields=list(s._fwd.spectral),
                         real_fields=[real[3 * m + c] for m in range(M) for c in (0, 1)])
    s._prep_valid = False
    return full, fwd


@pytest.mark.parametrize("n,members,dtype", CASES, ids=[f"n{n}-M{m}-{d}" for n, m, d in CASES])
def test_solver_cost(benchmark, n, members, dtype):
    s = KolmogorovFlow(n=n, dt=1e-4, members=members, dtype=dtype, threads=1)
    s.set_vorticity(smooth_random_field(s.grid, 1))
    zh = s.vorticity_hat.copy()
    out = np.empty_like(zh)
    inv, fwd = floor_transforms(s)

    def floor():
        inv.execute()
        fwd.execute()

    def rhs():
        s._rhs_into(zh, out)

    def step():
        s.step(1)

    for f in (floor, rhs, step):
        f()
    repeat = max(1, int(2e5 / (n * n * members)))
    rounds = max(5, min(40, int(4e6 / (n * n * members))))
    times = np.array([[_timed(f, repeat) for f in (floor, rhs, step)] for _ in range(rounds)])
    benchmark.group = f"n={n} M={members} {dtype}"
    benchmark.extra_info.update(
        n=n, members=members, dtype=dtype, rounds=rounds,
        floor=float(np.median(times[:, 0])), rhs=float(np.median(times[:, 1])),
        step=float(np.median(times[:, 2])),
        rhs_over_floor=float(np.median(times[:, 1] / times[:, 0])),
        step_over_floor=float(np.median(times[:, 2] / times[:, 0])))
    benchmark.pedantic(step, rounds=rounds, iterations=1, warmup_rounds=1)
