"""A parameter-conditioned emulator on held-out DNS runs: each run emulated at its own parameters
from its own state, judged by ``hybrid jets``, beside the DNS of the surrounding training points
(what a user who ran only the training points would have).

    python -m benchmarks.conditioned_runs --model MODEL --params beta,mu \
        --runs data/betaplane-sweep/test-interp/* data/betaplane-sweep/test-extrap/* \
        --neighbours data/betaplane-sweep/train/* --out DIR

For every run D at parameters p (read from its configuration), first record S:
``hybrid emulate slt --model MODEL --param p --init D --at S+100 --members M --t-end S+T --out
DIR/NAME`` (T = ``--span``, default 20,000 time units) and ``hybrid jets DIR/NAME D``; for each
neighbour run N (``--neighbours``: the training runs whose every parameter is the nearest
training value at or below, or at or above, D's), ``hybrid jets N D``. Written: ``DIR/runs.json``
(per run: the Hellinger distances of the PDFs of U, ∂yU and ∂tU and their floors, mean jet
number, zonal energy and its 95 % interval, fraction of time and residence time per jet number
with the DNS's 95 % intervals, the neighbours' H(U), jet numbers and regime counts (a neighbour
at the run's own parameters gives the DNS-against-DNS scale of every number)) and ``DIR/runs.md``, a
table of them. An unconditioned model (``--model`` an SLT, e.g. the pre-trained model of a
fine-tuning) is run without ``--param``, at the parameters it was trained at; ``--params`` still
names the runs' parameters. Emulations and ``hybrid jets`` reports already in DIR
(``emulation.json``, ``jets.json``) are read, not made again, so a stopped run is continued by
the same command; an emulation made with other settings (model, members, start, end,
parameters, noise memory or spread gain: :func:`same_emulation`) is made again, and its
``hybrid jets`` report with it.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from closures.base import online_setting
from closures.slt.conditioned import is_conditioned_config
from closures.slt.files import read_slt_card
from hybrid.cli import main as hybrid

from .provenance import run_header, write_results

VARIABLES = ("U", "dUdy", "dUdt")


def parameters(run: Path, names) -> dict:
    from closures.slt import read_parameters
    return read_parameters(run, names)


def first_time(run: Path) -> float:
    from hybrid.jets.report import read_profiles
    return float(read_profiles(run)["t"][0])


def neighbours(p: dict, train: dict[Path, dict]) -> list[Path]:
    """The training runs whose every parameter is the nearest seen value at or below p's, or at
    or above it (one per parameter where p equals a training value)."""
    pick = {}
    for name, v in p.items():
        seen = sorted({q[name] for q in train.values()})
        lo = [s for s in seen if s <= v * (1 + 1e-9)]
        hi = [s for s in seen if s >= v * (1 - 1e-9)]
        pick[name] = {x for x in (lo[-1] if lo else None, hi[0] if hi else None)
                      if x is not None}
    return sorted(r for r, q in train.items() if all(q[n] in pick[n] for n in p))


def jets(run: Path, ref: Path, out: Path, again: bool = False) -> dict:
    """``hybrid jets RUN REF --out OUT`` (unless done, or ``again``) and its jets.json."""
    if again or not (out / "jets.json").is_file():
        if hybrid(["jets", str(run), str(ref), "--out", str(out), "--overwrite"]) != 0:
            raise SystemExit(f"hybrid jets {run} {ref} failed")
    return json.loads((out / "jets.json").read_text())


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def same_emulation(folder: Path, expected: dict) -> bool:
    """Whether ``folder/emulation.json`` exists and records every setting of ``expected`` (numbers
    to a relative 1e-6: a start asked at t = 850 is the record at 849.9999999998)."""
    try:
        made = json.loads((folder / "emulation.json").read_text())
    except (OSError, ValueError):
        return False
    return all(k in made and _same(made[k], v) for k, v in expected.items())


def mean_jets(side: dict) -> float:
    return float(sum(int(k) * v["records"] for k, v in side["fraction"].items()))


def summary(j: dict) -> dict:
    """The numbers of one ``hybrid jets`` report (jets.json)."""
    run, ref = j["jets"]["run"], j["jets"]["reference"]
    out = {"hellinger": {v: j["pdfs"][v]["hellinger"] for v in VARIABLES},
           "floor": {v: j["pdfs"][v]["floor"] for v in VARIABLES},
           "mean_jets": mean_jets(run), "mean_jets_dns": mean_jets(ref),
           "energy": run["energy"]["mean"], "energy_dns": ref["energy"]["mean"],
           "energy_dns_interval_95": ref["energy"]["interval_95"], "regimes": {}}
    for k in sorted(set(ref["fraction"]) | set(run["fraction"]), key=int):
        f_run = run["fraction"].get(k, {}).get("episodes", 0.0)
        f_ref = ref["fraction"].get(k, {})
        r_run = run["residence_time"].get(k, {}).get("mean")
        r_ref = ref["residence_time"].get(k, {})
        out["regimes"][k] = {"fraction": f_run, "fraction_dns": f_ref.get("episodes", 0.0),
                             "fraction_dns_95": f_ref.get("episodes_interval_95"),
                             "residence": r_run, "residence_dns": r_ref.get("mean"),
                             "residence_dns_95": r_ref.get("interval_95")}
    return out


def inside(x, interval) -> bool | None:
    if x is None or not interval:
        return None
    return bool(interval[0] <= x <= interval[1])


def regime_hits(regimes: dict) -> tuple[int, int]:
    """(inside the DNS's 95 % interval, judged) over the fractions and residence times of the
    jet numbers the DNS visits."""
    hit = total = 0
    for r in regimes.values():
        if not r["fraction_dns"]:
            continue
        for x, iv in ((r["fraction"], r["fraction_dns_95"]), (r["residence"],
                                                              r["residence_dns_95"])):
            ok = inside(x, iv)
            if ok is not None:
                total += 1
                hit += ok
    return hit, total


def table(rows: list[dict]) -> str:
    lines = ["| run | parameters | H(U) | H(∂yU) | H(∂tU) | floor H(U) | mean jets emulator / DNS "
             "| energy / DNS | regimes in DNS 95 % | neighbours' H(U) best–worst (mean jets) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["emulator"]
        h = s["hellinger"]
        nb = r["neighbours"]
        hs = [n["hellinger_U"] for n in nb]
        counts = ", ".join("%.2f" % n["mean_jets"] for n in nb)
        near = f"{min(hs):.3f}–{max(hs):.3f} ({counts})" if nb else "–"
        hit, total = regime_hits(s["regimes"])
        params = ", ".join(f"{k} = {v:g}" for k, v in r["parameters"].items())
        lines.append(f"| {r['name']} | {params} | {h['U']:.3f} | {h['dUdy']:.3f} | "
                     f"{h['dUdt']:.3f} | {s['floor']['U']:.3f} | {s['mean_jets']:.2f} / "
                     f"{s['mean_jets_dns']:.2f} | {s['energy'] / s['energy_dns']:.2f} | "
                     f"{hit}/{total} | {near} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True,
                   help="an emulator (name or path), conditioned or not")
    p.add_argument("--params", required=True, help="its parameters, comma-separated")
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="held-out DNS runs")
    p.add_argument("--neighbours", nargs="*", type=Path, default=[],
                   help="the training runs (the DNS a user would have without the emulator)")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--span", type=float, default=20000.0, help="time units emulated")
    p.add_argument("--noise-memory", type=float, default=None,
                   help="hybrid emulate's --noise-memory (default: the card's)")
    p.add_argument("--spread-gain", type=float, default=None,
                   help="hybrid emulate's --spread-gain (default: the card's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    names = [n.strip() for n in args.params.split(",")]
    train = {r: parameters(r, names) for r in args.neighbours}
    card = read_slt_card(args.model)
    conditioned = is_conditioned_config(card["config"])
    online = {"noise_memory": online_setting(card, "noise_memory", args.noise_memory, 0.0),
              "spread_gain": online_setting(card, "spread_gain", args.spread_gain, 1.0)}
    rows = []
    for run in args.runs:
        name = f"{run.parent.name}/{run.name}"
        pv = parameters(run, names)
        s = first_time(run)
        out = args.out / run.parent.name / run.name
        again = not same_emulation(out, {
            "model": card.get("name", "emulator"), "members": args.members, "at": s + 100,
            "t_end": s + args.span, "parameters": pv if conditioned else None, **online})
        if again:
            argv_e = ["emulate", "slt", "--model", str(args.model), "--init", str(run),
                      "--at", f"{s + 100:g}", "--members", str(args.members),
                      "--t-end", f"{s + args.span:g}", "--threads", str(args.threads),
                      "--overwrite", "--out", str(out)]
            for k, v in (pv.items() if conditioned else ()):
                argv_e += ["--param", f"{k}={v!r}"]
            for flag, v in (("--noise-memory", args.noise_memory),
                            ("--spread-gain", args.spread_gain)):
                argv_e += [flag, f"{v!r}"] if v is not None else []
            if hybrid(argv_e) != 0:
                raise SystemExit(f"hybrid {shlex.join(argv_e)} failed")
        row = {"name": name, "run": str(run), "parameters": pv,
               "emulator": summary(jets(out, run, out / "jets", again)), "neighbours": []}
        for nb in neighbours(pv, train):
            j = summary(jets(nb, run, args.out / "neighbours" / name / nb.name))
            row["neighbours"].append({"run": str(nb), "parameters": train[nb],
                                      "hellinger_U": j["hellinger"]["U"],
                                      "mean_jets": j["mean_jets"],
                                      "regimes_in_dns_95": list(regime_hits(j["regimes"]))})
        rows.append(row)
        print(f"{name}: H(U) {row['emulator']['hellinger']['U']:.3f}", file=sys.stderr)
    header = run_header("benchmarks.conditioned_runs", argv)
    text = (f"# {args.model} on held-out runs\n\nCommand: `{header['command']}`  \n"
            f"Date: {header['date']}, {header['machine']}\n\n{table(rows)}\n")
    write_results(args.out, "runs", {**header, "model": str(args.model), "rows": rows}, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
