"""Cost of the conditioned point-token emulator per member and saved profile: its local attention
computed from the band only against dense scores with a −inf band, eager against compiled, one
and two threads, and the DNS it stands for.

    python -m benchmarks.local_emulator_cost --out benchmarks/results/slt-local-conditioned/cost

One process, medians of ``--repeats`` timings, ratios within the run:

* **attention**: one :class:`closures.nn.conditioning.LocalAttention` of the shipped model's
  sizes (width 24, 2 heads, 9 points) on ``--members`` profiles of 64 points: the module (the
  K = 9 scores of each point from shifted slices of the padded keys) against the same weights as
  dense n × n scores with the window's bias and −inf outside it (the masked form the tests check
  it against), forward only and forward plus backward;
* **rollout**: ``slt-local-conditioned-betaplane`` at (β, μ) = (8, 4e-3) rolling out
  ``--members`` members together for ``--steps`` saves (10 time units each), eager and
  compiled (``compile=True``; the compilation is paid in a warm-up rollout and not timed), on 1
  and 2 threads;
* **DNS**: ``betaplane-small`` with ``--set beta=8``, 16 members stepped together on one thread,
  per member per time unit.

Writes ``local_emulator_cost.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from closures.nn.attention import attend
from closures.nn.conditioning import LocalAttention, local_offsets
from closures.slt import load_emulator

from .provenance import run_header, write_results
from .slt_cost import _median_time, dns_seconds_per_step

MODEL = "slt-local-conditioned-betaplane"
PARAMS = {"beta": 8.0, "mu": 4e-3, "L": 2 * math.pi}


def dense_band(att: LocalAttention, x: torch.Tensor,
               extra: torch.Tensor | None = None) -> torch.Tensor:
    """The local attention written as full attention with dense n × n scores plus the window's
    bias, −inf outside it (0 at the ``extra`` tokens): the masked form, independent of the
    module's banded computation (the tests check the module against it)."""
    n, r = x.shape[1], att.window // 2
    src = x if extra is None else torch.cat([extra, x], dim=1)
    q, k, v = att.split_heads(att.q(x), att.kv(src))
    i = torch.arange(n)
    bias = torch.full((att.heads, n, n), -math.inf, dtype=x.dtype)
    for o in local_offsets(n, att.window).tolist():
        bias[:, i, (i + o) % n] = att.bias[:, o + r, None].to(x.dtype)
    if extra is not None:
        bias = torch.cat([torch.zeros(att.heads, n, extra.shape[1], dtype=x.dtype), bias], -1)
    return att.merge_heads(attend(q, k, v, bias[None]))


def attention_seconds(members: int, repeats: int) -> dict:
    torch.manual_seed(0)
    att = LocalAttention(24, 2, 9)
    with torch.no_grad():
        att.bias.normal_()
    x = torch.randn(members, 64, 24)
    out = {}
    for name, f in (("band", att), ("dense", lambda t: dense_band(att, t))):
        with torch.no_grad():
            out[f"{name}_forward_s"] = _median_time(lambda: f(x), repeats)
        xg = x.clone().requires_grad_(True)
        out[f"{name}_forward_backward_s"] = _median_time(lambda: f(xg).sum().backward(),
                                                         repeats)
    return out


def rollout_seconds(members: int, steps: int, repeats: int, threads: int,
                    compile: bool) -> float:
    """Median seconds per member per saved profile."""
    em = load_emulator(MODEL, threads=threads, params=PARAMS, compile=compile)
    rng = np.random.default_rng(0)
    hist = (0.3 * rng.standard_normal((em.window, 64))).astype(np.float32)
    em.rollout(hist, 3, members, seed=0)                               # warm-up (compilation)
    return _median_time(lambda: em.rollout(hist, steps, members, seed=0), repeats) / (
        members * steps)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--members", type=int, default=500)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--dns-steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    r = dict(run_header("benchmarks.local_emulator_cost", argv), members=args.members,
             steps=args.steps, model=MODEL, parameters=PARAMS)
    r["attention"] = attention_seconds(args.members, args.repeats)
    roll = {}
    for threads in (1, 2):
        for compile in (False, True):
            key = f"{'compiled' if compile else 'eager'}_{threads}_threads"
            roll[key] = rollout_seconds(args.members, args.steps, args.repeats, threads, compile)
    r["rollout_s_per_member_profile"] = roll
    sps, dt = dns_seconds_per_step("betaplane-small", 16, args.dns_steps, args.repeats, 1,
                                   100.0, beta=8.0, mu=4e-3)
    dns = sps / (dt * 16)
    interval = load_emulator(MODEL).interval                  # the data's save interval
    r["dns_s_per_member_time_unit"] = dns
    r["dns_over_emulator"] = {k: dns * interval / v for k, v in roll.items()}
    a = r["attention"]
    lines = [f"# Point-token emulator cost ({r['date']}, {r['machine']})", "",
             f"Command: `{r['command']}`", "",
             f"LocalAttention (width 24, 2 heads, 9 points) on {args.members} profiles of 64 "
             "points, one thread:", "",
             "| | forward, s | forward + backward, s |", "|---|---|---|",
             f"| band (shifted slices) | {a['band_forward_s']:.3g} | "
             f"{a['band_forward_backward_s']:.3g} |",
             f"| dense scores, −inf band | {a['dense_forward_s']:.3g} | "
             f"{a['dense_forward_backward_s']:.3g} |",
             f"| dense / band | {a['dense_forward_s'] / a['band_forward_s']:.2f} | "
             f"{a['dense_forward_backward_s'] / a['band_forward_backward_s']:.2f} |", "",
             f"`{MODEL}` at β = 8, μ = 4e-3, {args.members} members × {args.steps} saves "
             "(10 time units each); DNS: `betaplane-small`, 16 members, one thread, "
             f"{dns:.3g} s per member per time unit:", "",
             "| rollout | s per member per save | DNS / emulator, per time unit |",
             "|---|---|---|"]
    for k, v in roll.items():
        lines.append(f"| {k.replace('_', ' ')} | {v:.3g} | {r['dns_over_emulator'][k]:.0f} |")
    write_results(Path(args.out), "local_emulator_cost", r, "\n".join(lines) + "\n")
    return r


if __name__ == "__main__":
    main()
