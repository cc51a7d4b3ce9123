"""Solver step time with 1 and more threads, in interleaved rounds, and whether the bits agree.

    python -m benchmarks.thread_scaling --sizes 64,256 --members 64,1 --threads 2

For each grid size and ensemble size, one ``kolmogorov`` solver per thread count (same seed,
same initial field) steps ``--steps`` ETDRK4 steps per round; the table gives the median wall
time per step per member and the speed-up over one thread, and says whether the final states
are bit-identical to the one-thread run (with at least as many transform slots as threads the
slots are split between the threads, each on its one-thread plans; :mod:`solvers.fft`).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _ints(text: str) -> list[int]:
    try:
        out = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=_ints, default=[64, 256], help="grid sizes n")
    p.add_argument("--members", type=_ints, default=[64, 1], help="ensemble sizes")
    p.add_argument("--threads", type=int, default=2, help="thread count compared with 1")
    p.add_argument("--steps", type=int, default=10, help="steps per round")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    from hybrid.config import load_preset
    preset = load_preset("kolmogorov")
    print(f"| n | members | 1 thread (ms / step / member) | {args.threads} threads | speed-up | "
          "same bits |\n|---|---|---|---|---|---|")
    for n in args.sizes:
        for M in args.members:
            solvers = {}
            for th in (1, args.threads):
                s = preset.make_solver("dns", n=n, members=M, seed=0, dt=0.002, threads=th)
                s.set_vorticity(preset.initial_vorticity(s))
                s.step(2)                                   # compiled kernels, first calls
                solvers[th] = s
            times: dict[int, list[float]] = {th: [] for th in solvers}
            for _ in range(args.rounds):
                for th, s in solvers.items():
                    t0 = time.perf_counter()
                    s.step(args.steps)
                    times[th].append((time.perf_counter() - t0) / args.steps / M * 1e3)
            one, many = (float(np.median(times[th])) for th in (1, args.threads))
            same = np.array_equal(solvers[1].vorticity_hat, solvers[args.threads].vorticity_hat)
            print(f"| {n} | {M} | {one:.3f} | {many:.3f} | {one / many:.2f} | {same} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
