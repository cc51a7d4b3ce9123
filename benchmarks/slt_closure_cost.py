"""Where an SLT-closure refresh spends its time: its four network parts, per member.

    python -m benchmarks.slt_closure_cost --model slt-closure-kolmogorov --members 64 \\
        --out benchmarks/results/slt-closure-kolmogorov/refresh-cost

One refresh of :class:`closures.slt.SLTClosure` (``compute``) runs, for all ``members`` at once:
the encoder of ω̂ (n² → one latent token), the mean network μ(ω̂) at full resolution, the
stochastic transformer over the history of L tokens (one noise token per member) and the
decoder of the residual latent. Each part is timed alone on random normalised inputs of the
model's grid (the cost does not depend on the values), in channels-last memory as the closure
runs them, then the whole refresh through the closure itself; medians of ``--repeats`` after
one warm-up, ``--threads`` torch threads; ``--precision bfloat16`` runs the convolutional parts
under bfloat16 autocast, as the closure's ``precision`` does. Writes ``cost.json`` and
``cost.md``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .provenance import run_header, write_results


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def measure(args: argparse.Namespace) -> dict:
    import torch

    from closures import get_closure
    from closures.base import closure_state
    from closures.ldm import conv_precision
    from solvers.grid import Grid
    torch.set_num_threads(args.threads)
    closure = get_closure("slt-closure", path=args.model, threads=args.threads,
                          precision=args.precision)
    m = closure.model.conv_channels_last()
    M, n = args.members, m.n
    g = torch.Generator().manual_seed(0)
    x = torch.randn(M, 1, n, n, generator=g).contiguous(memory_format=torch.channels_last)
    hist = torch.randn(M, m.window, m.latent_dim, generator=g)
    noise = torch.randn(M, 1, m.width, generator=g)
    r = torch.randn(M, m.latent_dim, generator=g)

    def conv(fn):
        def run():
            with conv_precision(args.precision, "cpu"):
                return fn()
        return run

    parts = {"encoder": conv(lambda: m.encode(x)), "mean network": conv(lambda: m.mean(x)),
             "transformer": lambda: m.transformer(hist, None, 1, noise=noise),
             "decoder": conv(lambda: m.decode(r))}
    out = {**run_header("benchmarks.slt_closure_cost", args.argv), "model": args.model,
           "members": M, "n": n, "window": m.window, "latent_dim": m.latent_dim,
           "threads": args.threads, "repeats": args.repeats, "precision": args.precision,
           "ms_per_member": {}}
    with torch.inference_mode():
        for name, fn in parts.items():
            out["ms_per_member"][name] = median_ms(fn, args.repeats) / M
    grid = Grid(n, m.L or 2 * np.pi)
    closure.reset(grid, M, {}, seed=0)
    w = np.random.default_rng(0).standard_normal((M, n, n))
    state = closure_state(grid, np.fft.rfft2(w))
    out["ms_per_member"]["whole refresh (SLTClosure.compute)"] = (
        median_ms(lambda: closure.compute(state), args.repeats) / M)
    return out


def markdown(r: dict) -> str:
    whole = r["ms_per_member"]["whole refresh (SLTClosure.compute)"]
    lines = [f"`{r['command']}` ({r['date']}, {r['machine']})", "",
             f"{r['model']}: {r['members']} members of {r['n']}², history of {r['window']} "
             f"tokens of {r['latent_dim']}, {r['threads']} thread(s), "
             f"{r.get('precision', 'float32')} convolutions, medians of "
             f"{r['repeats']}.", "", "| part | ms / refresh / member | share of the refresh |",
             "|---|---|---|"]
    for name, ms in r["ms_per_member"].items():
        lines.append(f"| {name} | {ms:.3f} | {ms / whole:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="slt-closure-kolmogorov",
                   help="an SLT closure: stem or shipped name")
    p.add_argument("--members", type=int, default=64)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--out", type=Path,
                   default=Path("benchmarks/results/slt-closure-kolmogorov/refresh-cost"))
    args = p.parse_args(argv)
    args.argv = argv
    if args.members < 1 or args.repeats < 1 or args.threads < 1:
        raise SystemExit("--members, --repeats and --threads must be ≥ 1")
    r = measure(args)
    text = markdown(r)
    write_results(args.out, "cost", r, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
