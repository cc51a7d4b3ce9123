"""Cost of the LES with each closure against the DNS at the same ensemble size.

    python -m benchmarks.ldm_cost --data data/kolmogorov-test.nc --dns-process

All timings in one process, interleaved: every round runs each LES configuration for
``--les-t`` time units and the DNS for ``--dns-t``, so that a slow spell of a shared machine hits
them alike; the table gives medians over ``--rounds`` rounds of wall seconds per simulated time
unit per member, the speed-up against the DNS median, the closure's share of the LES and its time
per refresh per member.

The LES starts from ``--members`` held-out filtered-DNS states of the dataset (tiled if there are
fewer), the DNS (the dataset's grid, 256² for ``kolmogorov``) from the preset's initial field
after a short warm-up, at the DNS step of the dataset (``dns_config.dt``: 0.002 for
``kolmogorov``, Courant ≈ 0.65). ``--preset``: the preset of the data (default ``kolmogorov``),
e.g. ``betaplane-hybrid``. LES configurations (``--configs``,
comma-separated ``closure[@every][/key=value...]``), e.g. ``ldm@5``, ``ldm@5/precision=bfloat16``,
``ldm@5/steps=5``, ``ldm@10``, ``none``; ``dt=`` sets the LES step (default the preset's 0.005,
Courant ≈ 0.4). Both solvers use ``--threads`` FFTW threads and the closures ``--threads`` torch
threads. Writes ``cost.json`` and ``cost.md`` to ``--out``.

``--dns-process`` times the DNS in a process of its own. Why: with two threads, the DNS timed in
the process that had built the LES solvers and run torch took 6.9–7.2 s per time unit per member
against ≈ 3.7 in a fresh process (2026-11-22; one thread was not affected), which
would flatter every speed-up. The cause was not found, and a smaller script (DNS, then a torch
closure and four LES solvers, all with two threads) did not reproduce it.
``--les-fft-threads``: FFTW threads of the LES solvers alone (default ``--threads``). Before the
transforms split their slots between threads (:mod:`solvers.fft`), two FFTW threads made the
64² LES with no closure 1.9× slower than one (measured 2026-11-22).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np

from .provenance import run_header

DEFAULT_CONFIGS = ("none,smagorinsky,dynamic-smagorinsky,ldm-mean@5,ldm@5,ldm@5/precision=bfloat16,"
                   "ldm@5/steps=5,ldm@5/steps=5/precision=bfloat16,ldm@10,"
                   "ldm@10/precision=bfloat16,slt-closure@10")


def parse_config(text: str) -> tuple[str, int, dict, float | None]:
    """'ldm@5/steps=5/dt=0.008' → ('ldm', 5, {'steps': 5}, 0.008): the rows of ``hybrid bench``
    (:func:`hybrid.report.parse_entry`) plus ``dt=``, the LES time step."""
    from hybrid.report import parse_entry
    try:
        name, every, options = parse_entry(text, 5)
    except ValueError as e:
        raise SystemExit(f"--configs: {e}") from None
    kw = dict(options)
    dt = kw.pop("dt", None)
    return name, every, kw, None if dt is None else float(dt)


def _timed(s, t: float) -> tuple[float, float, float]:
    """Step ``s`` for about ``t`` time units: (wall s, closure s, simulated time units)."""
    steps = max(1, round(t / s.dt))
    c0, w0 = s.timers["closure"], time.perf_counter()
    s.step(steps)
    return time.perf_counter() - w0, s.timers["closure"] - c0, steps * s.dt


def _dns_solver(preset_name: str, kwargs: dict):
    from hybrid.config import load_preset
    preset = load_preset(preset_name)
    dns = preset.make_solver("dns", **kwargs)
    dns.set_vorticity(preset.initial_vorticity(dns))
    dns.step(5)                                  # warm-up: compiled kernels
    return dns


def _dns_worker(pipe, preset_name: str, kwargs: dict) -> None:
    """``--dns-process``: build the DNS once, then time ``pipe.recv()`` time units per request
    until None arrives (a process without torch or the LES solvers)."""
    dns = _dns_solver(preset_name, kwargs)
    while (t := pipe.recv()) is not None:
        pipe.send(_timed(dns, t))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="closure dataset (hybrid generate)")
    p.add_argument("--preset", default="kolmogorov",
                   help="the preset of the data's DNS and LES (default kolmogorov)")
    p.add_argument("--configs", default=DEFAULT_CONFIGS)
    p.add_argument("--members", type=int, default=64, help="ensemble size (default 64 = 4 × 16)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--les-t", type=float, default=0.25, help="LES time units per round")
    p.add_argument("--dns-t", type=float, default=0.05, help="DNS time units per round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--les-fft-threads", type=int, default=None,
                   help="FFTW threads of the LES solvers (default: --threads)")
    p.add_argument("--dns-process", action="store_true",
                   help="time the DNS in its own process (spawned once, driven round by round), "
                        "away from torch and the LES solvers; see the module docstring")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ldm_cost"))
    args = p.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"--data: no closure dataset at {args.data}")
    import torch

    from closures.registry import get_closure
    from hybrid.config import load_preset

    from hybrid.report import LEARNED as models                  # these take torch threads

    from .ldm_online import reference
    torch.set_num_threads(args.threads)
    preset = load_preset(args.preset)
    ref = reference(args.data)
    M = args.members
    omega = ref["omega"][-1]
    omega0 = np.resize(omega, (M,) + omega.shape[1:])            # tiles the dataset's members
    keys = [c for c in args.configs.split(",") if c]
    configs = [parse_config(c) for c in keys]
    les_fft_threads = args.threads if args.les_fft_threads is None else args.les_fft_threads

    les = []
    for name, every, kw, dt in configs:
        s = preset.make_solver("les", members=M, seed=args.seed, threads=les_fft_threads,
                               **({} if dt is None else {"dt": dt}))
        s.set_vorticity(omega0)
        if name != "none":
            s.set_closure(get_closure(name, every=every, threads=args.threads, **kw)
                          if name in models else get_closure(name, every=every, **kw),
                          every=every)
        s.step(2 * every)                     # warm-up: compiled kernels, first network calls
        les.append(s)
    cfg = ref["dns_config"]
    dns_args = dict(members=M, seed=args.seed, n=int(cfg["n"]), dt=cfg["dt"],
                    threads=args.threads)
    if args.dns_process:
        ctx = multiprocessing.get_context("spawn")
        pipe, child_end = ctx.Pipe()
        child = ctx.Process(target=_dns_worker, args=(child_end, args.preset, dns_args),
                            daemon=True)
        child.start()

        def dns_round() -> tuple[float, float, float]:
            pipe.send(args.dns_t)
            return pipe.recv()
    else:
        dns = _dns_solver(args.preset, dns_args)

        def dns_round() -> tuple[float, float, float]:
            return _timed(dns, args.dns_t)

    rows: dict[str, list] = {c: [] for c in keys}
    dns_rows = []
    for r in range(args.rounds):
        dns_rows.append(dns_round())
        for key, s in zip(rows, les):
            rows[key].append(_timed(s, args.les_t))
        print(f"round {r + 1}/{args.rounds}: DNS {dns_rows[-1][0] / dns_rows[-1][2] / M:.3g} "
              f"s/t.u./member", flush=True)
    if args.dns_process:
        pipe.send(None)
        child.join()
    dns_cost = float(np.median([w / t / M for w, _, t in dns_rows]))
    out = {**run_header("benchmarks.ldm_cost", argv),
           "members": M, "threads": args.threads, "les_fft_threads": les_fft_threads,
           "rounds": args.rounds,
           "dns_process": bool(args.dns_process),
           "dns": {"n": int(cfg["n"]), "dt": float(cfg["dt"]), "s_per_tu_per_member": dns_cost},
           "les": {}}
    for (key, rs), s, (name, every, kw, dt) in zip(rows.items(), les, configs):
        cost = float(np.median([w / t / M for w, _, t in rs]))
        share = float(np.median([c / w for w, c, _ in rs]))
        refreshes = [t / (s.dt * every) for _, _, t in rs]
        per_call = (float(np.median([c / n / M for (_, c, _), n in zip(rs, refreshes)]))
                    if name != "none" else None)
        out["les"][key] = {"closure": name, "every": every, "options": kw, "dt": float(s.dt),
                           "s_per_tu_per_member": cost, "speedup_vs_dns": dns_cost / cost,
                           "closure_share": share, "closure_s_per_refresh_per_member": per_call}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cost.json").write_text(json.dumps(out, indent=1))
    lines = [f"# LES cost vs DNS {out['dns']['n']}² ({out['date']}, {out['machine']})", "",
             f"`{out['command']}`", "",
             f"{M} members, {args.threads} thread(s) (LES FFTs: {les_fft_threads}), medians of "
             f"{args.rounds} interleaved rounds. "
             f"DNS {out['dns']['n']}² at dt {out['dns']['dt']:g}"
             f"{' (timed in its own process)' if args.dns_process else ''}: {dns_cost:.3g} s per "
             f"time unit per member.", "",
             "| LES configuration | dt | s / t.u. / member | speed-up vs DNS | closure share | "
             "closure ms / refresh / member |", "|---|---|---|---|---|---|"]
    for key, r in out["les"].items():
        pc = r["closure_s_per_refresh_per_member"]
        lines.append(f"| {key} | {r['dt']:g} | {r['s_per_tu_per_member']:.3g} | "
                     f"{r['speedup_vs_dns']:.1f} | {r['closure_share']:.0%} | "
                     + ("–" if pc is None else f"{1e3 * pc:.1f}") + " |")
    text = "\n".join(lines) + "\n"
    (args.out / "cost.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
