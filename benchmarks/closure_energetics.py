"""Where the exact closure term puts energy and enstrophy: its transfer spectrum on the LES grid.

    python -m benchmarks.closure_energetics --data data/betaplane-hybrid/train-k10.nc \\
        --out benchmarks/results/betaplane-hybrid

For the pairs (ω̄, C) of a closure dataset (C = closure_sign · subgrid, a vorticity tendency),
the rate at which C changes the LES's energy E = ½⟨|ū|²⟩ = −½⟨ψ̄ ω̄⟩ and enstrophy Z = ½⟨ω̄²⟩,

    dE/dt|_C = −⟨ψ̄ C⟩ = Σ_k T_E(k),    dZ/dt|_C = ⟨ω̄ C⟩ = Σ_k T_Z(k),

per integer shell |k| ∈ [j − ½, j + ½) (units of 2π/L), averaged over the samples of a split
(mean and standard error over the distinct sampling times, whose members and consecutive pairs
are correlated). Writes ``energetics.json`` and ``energetics.md``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .provenance import run_header, write_results


def shell_transfers(omega: np.ndarray, closure: np.ndarray, L: float) -> tuple[np.ndarray, np.ndarray]:
    """(T_E, T_Z) of shape (samples, shells): the energy and enstrophy input of ``closure`` into
    ``omega`` (both (samples, n, n)) per integer shell of the dealiased modes (where the data
    live), summing to −⟨ψ C⟩ and ⟨ω C⟩ there."""
    from closures.calibration import mode_shells
    from solvers.grid import Grid
    g = Grid(omega.shape[-1], L)
    w_hat, c_hat = np.fft.rfft2(omega), np.fft.rfft2(closure)
    psi_hat = -w_hat * g.inv_k2
    shell = mode_shells(g.n)                                   # round(|k|), units of 2π/L
    shells = int(np.ceil(np.sqrt(2) * g.kmax_dealias)) + 1     # the corners of the 2/3-rule box
    n4 = g.n ** 4
    te = -(g.weight * (psi_hat * np.conj(c_hat)).real) / n4
    tz = (g.weight * (w_hat * np.conj(c_hat)).real) / n4
    out_e = np.zeros((omega.shape[0], shells))
    out_z = np.zeros_like(out_e)
    for j in range(shells):
        m = (shell == j) & g.dealias
        out_e[:, j] = te[:, m].sum(-1)
        out_z[:, j] = tz[:, m].sum(-1)
    return out_e, out_z


def per_time(values: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over samples and its standard error over the distinct ``times`` (per column)."""
    keys = np.unique(times)
    means = np.stack([values[times == t].mean(0) for t in keys])
    se = means.std(0, ddof=1) / np.sqrt(len(keys)) if len(keys) > 1 else np.full(values.shape[1:], np.nan)
    return values.mean(0), se


def measure(data: Path, split: str, max_samples: int | None) -> dict:
    from closures.data import ClosureDataset
    ds = ClosureDataset(data, split=split, normalise=False)
    if len(ds.sample_index) == 0:
        raise SystemExit(f"--split: {data} has no {split} samples")
    n = len(ds.sample_index) if max_samples is None else min(max_samples, len(ds.sample_index))
    w = ds.omega_bar[:n, 0].double().numpy()
    c = ds.closure[:n, 0].double().numpy()
    times = np.asarray(ds.times[:n])
    L = float(ds.L if ds.L is not None else 2 * np.pi)
    te, tz = shell_transfers(w, c, L)
    e_mean, e_se = per_time(te, times)
    z_mean, z_se = per_time(tz, times)
    tot_e, tot_e_se = per_time(te.sum(1, keepdims=True), times)
    tot_z, tot_z_se = per_time(tz.sum(1, keepdims=True), times)
    dns = json.loads(ds.attrs.get("dns_config", "{}"))
    return {"data": str(data), "split": split, "samples": n, "times": int(len(np.unique(times))),
            "preset": ds.preset, "epsilon": dns.get("epsilon"),
            "energy_input": {"total": float(tot_e[0]), "se": float(tot_e_se[0]),
                             "shells": e_mean.tolist(), "shells_se": e_se.tolist()},
            "enstrophy_input": {"total": float(tot_z[0]), "se": float(tot_z_se[0]),
                                "shells": z_mean.tolist(), "shells_se": z_se.tolist()}}


def markdown(r: dict) -> str:
    e, z = r["energy_input"], r["enstrophy_input"]
    eps = r.get("epsilon")
    lines = [f"`{r['command']}` ({r['date']}, {r['machine']})", "",
             f"{r['samples']} {r['split']} pairs of `{r['data']}` ({r['times']} sampling times).",
             "", f"Energy input of C: {e['total']:.3g} ± {e['se']:.2g}"
             + (f" ({e['total'] / eps:.2f} ε, ε = {eps:g})" if eps else "")
             + f"; enstrophy input: {z['total']:.3g} ± {z['se']:.2g}.", "",
             "| shell \\|k\\| | energy input T_E | ± | enstrophy input T_Z | ± |",
             "|---|---|---|---|---|"]
    for j, (a, sa, b, sb) in enumerate(zip(e["shells"], e["shells_se"], z["shells"],
                                           z["shells_se"])):
        lines.append(f"| {j} | {a:.3g} | {sa:.2g} | {b:.3g} | {sb:.2g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="closure dataset (hybrid generate)")
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    p.add_argument("--max-samples", type=int, default=None, help="the first N samples of the split")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if not args.data.is_file():
        p.error(f"--data: no closure dataset at {args.data}")
    r = {**run_header("benchmarks.closure_energetics", argv), **measure(args.data, args.split,
                                                                        args.max_samples)}
    write_results(args.out, "energetics", r, markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
