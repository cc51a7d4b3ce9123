"""The SLT emulator's online settings on long free runs: noise memory ρ and spread gain g.

    python -m benchmarks.slt_online --reference data/betaplane-small/val \\
        --settings 0/1,0.4/1,0.5/1 --members 4 --t-end 200750 --out runs/slt-online

Every setting ``RHO/G`` is a free run of ``--members`` members of ``hybrid emulate slt --model
MODEL --init REFERENCE --noise-memory RHO --spread-gain G`` from the reference's last profiles to
``--t-end``, compared with the reference by ``hybrid jets``. Each row counts the targets it meets
(eight: Hellinger distance below 0.1 for U, ∂yU and ∂tU; the energy ½⟨U²⟩, the fraction of time
with 2 and with 3 jets and the mean residence times in 2 and 3 jets within the reference's 95 %
intervals) and the misfit of its residence times, Σ|ln(τ_run/τ_ref)| over 2 and 3 jets. The rule
for a choice: the most targets met, ties broken by the smaller misfit. Run on validation members
to choose, on test members to report. Runs go to ``--runs`` (default ``--out``/runs) and are
reused when complete; writes ``online.json`` and ``online.md`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .betaplane_hybrid import summary
from .provenance import run_header, write_results

JETS = ("2", "3")
HELLINGER_TARGET = 0.1


def parse_settings(text: str) -> list[tuple[float, float]]:
    """'0/1,0.4/1.1' → [(0.0, 1.0), (0.4, 1.1)]; ValueError naming the bad entry."""
    out = []
    for item in (x for x in text.split(",") if x):
        rho, sep, gain = item.partition("/")
        try:
            out.append((float(rho), float(gain)))
        except ValueError:
            raise ValueError(f"--settings: {item!r} is not RHO/G") from None
        if not sep:
            raise ValueError(f"--settings: {item!r} is not RHO/G")
    return out


def _inside(value, interval) -> bool:
    return bool(interval) and value is not None and interval[0] <= value <= interval[1]


def targets(row: dict) -> dict:
    """The targets a row of :func:`summary` meets (module docstring), and its misfit."""
    run, ref = row["run"], row["reference"]
    met = {f"H({v})": row["hellinger"][v] < HELLINGER_TARGET for v in ("U", "dUdy", "dUdt")}
    met["energy"] = _inside(run["energy"]["mean"], ref["energy"]["interval_95"])
    misfit = 0.0
    for k in JETS:
        f = run["fraction"].get(k, {}).get("episodes", 0.0)
        met[f"time with {k} jets"] = _inside(f, ref["fraction"].get(k, {}).get(
            "episodes_interval_95"))
        tau, tau_ref = (side["residence_time"].get(k, {}) for side in (run, ref))
        met[f"residence {k}"] = _inside(tau.get("mean"), tau_ref.get("interval_95"))
        if tau.get("mean") and tau_ref.get("mean"):
            misfit += abs(math.log(tau["mean"] / tau_ref["mean"]))
        else:
            misfit = math.inf
    return {"met": met, "count": sum(met.values()), "misfit": misfit}


def measure(args: argparse.Namespace) -> dict:
    from hybrid.cli import main as hybrid
    result = {**run_header("benchmarks.slt_online", args.argv), "model": args.model,
              "reference": str(args.reference), "members": args.members, "t_end": args.t_end,
              "seed": args.seed, "rows": {}}
    for rho, gain in args.settings:
        name = f"rho={rho:g}, g={gain:g}"
        out = args.runs / f"rho{rho:g}-g{gain:g}"
        if not (out / "jets" / "jets.json").is_file():
            code = hybrid(["emulate", "slt", "--model", args.model, "--init", str(args.reference),
                           "--members", str(args.members), "--t-end", str(args.t_end),
                           "--seed", str(args.seed), "--threads", "1", "--noise-memory",
                           str(rho), "--spread-gain", str(gain), "--out", str(out),
                           "--overwrite"])
            code = code or hybrid(["jets", str(out), str(args.reference), "--out",
                                   str(out / "jets"), "--overwrite"])
            if code:
                result["rows"][name] = {"failed": f"hybrid exited {code}"}
                continue
        row = summary(json.loads((out / "jets" / "jets.json").read_text()))
        result["rows"][name] = {**row, **targets(row), "noise_memory": rho, "spread_gain": gain,
                                "folder": str(out)}
    done = {k: v for k, v in result["rows"].items() if "count" in v}
    result["chosen"] = min(done, key=lambda k: (-done[k]["count"], done[k]["misfit"]),
                           default=None)
    return result


def markdown(r: dict) -> str:
    def fr(side, k):
        return side["fraction"].get(k, {}).get("episodes", 0.0)

    def tau(side, k):
        t = side["residence_time"].get(k, {}).get("mean")
        return "n/a" if t is None else f"{t:.0f}"

    lines = [f"`{r['command']}` ({r['date']}, {r['machine']})", "",
             f"`{r['model']}`, {r['members']} members from the last profiles of "
             f"`{r['reference']}` to t = {r['t_end']:g}, seed {r['seed']}.", "",
             "| ρ, g | H(U) | H(∂yU) | H(∂tU) | energy | 2 jets | 3 jets | residence 2 | "
             "residence 3 | targets met | misfit |", "|---" * 11 + "|"]
    ref = None
    for name, v in r["rows"].items():
        if "failed" in v:
            lines.append(f"| {name} | {v['failed']} | | | | | | | | | |")
            continue
        h, run, ref = v["hellinger"], v["run"], v["reference"]
        bold = "**" if name == r["chosen"] else ""
        lines.append(f"| {bold}{name}{bold} | {h['U']:.3f} | {h['dUdy']:.3f} | {h['dUdt']:.3f} | "
                     f"{run['energy']['mean']:.4f} | {fr(run, '2'):.3f} | {fr(run, '3'):.3f} | "
                     f"{tau(run, '2')} | {tau(run, '3')} | {v['count']} / 8 | "
                     f"{v['misfit']:.2f} |")
    if ref:
        def ci(x):
            return "n/a" if not x else f"[{x[0]:.4g}, {x[1]:.4g}]"
        e = ref["energy"]
        lines.append(f"| reference [95 %] | floor {r_floor(r, 'U')} | floor {r_floor(r, 'dUdy')} "
                     f"| floor {r_floor(r, 'dUdt')} | {e['mean']:.4f} {ci(e['interval_95'])} | " +
                     " | ".join(f"{fr(ref, k):.3f} "
                                f"{ci(ref['fraction'].get(k, {}).get('episodes_interval_95'))}"
                                for k in JETS) + " | " +
                     " | ".join(f"{tau(ref, k)} "
                                f"{ci(ref['residence_time'].get(k, {}).get('interval_95'))}"
                                for k in JETS) + " | | |")
    lines += ["", f"Best of these rows by the rule (most targets met, then the smallest misfit): "
              f"{r['chosen']}; a choice is made on validation runs only."]
    return "\n".join(lines) + "\n"


def r_floor(r: dict, variable: str) -> str:
    """The reference's floor of one Hellinger distance, from the first complete row."""
    v = next((v["floor"].get(variable) for v in r["rows"].values() if "floor" in v), None)
    return "n/a" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="slt-betaplane-small")
    p.add_argument("--reference", type=Path, default=Path("data/betaplane-small/val"))
    p.add_argument("--settings", default="0/1", help="comma-separated RHO/G")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--t-end", type=float, default=200750.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/slt-online"))
    p.add_argument("--runs", type=Path, default=None, help="default: OUT/runs")
    args = p.parse_args(argv)
    args.argv = argv
    try:
        args.settings = parse_settings(args.settings)
    except ValueError as e:
        p.error(str(e))
    if not (args.reference / "trajectory.nc").is_file():
        p.error(f"--reference: no trajectory.nc in {args.reference}")
    args.runs = args.runs or args.out / "runs"
    r = measure(args)
    write_results(args.out, "online", r, markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
