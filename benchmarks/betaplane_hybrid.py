"""Long-range jets of the ``betaplane-hybrid`` LES with each closure, against the test DNS.

    python -m benchmarks.betaplane_hybrid --reference data/betaplane-hybrid/test-dns \\
        --rows none,smagorinsky,leith,dynamic-smagorinsky,ldm/path=STEM --members 4 \\
        --out benchmarks/results/betaplane-hybrid

Every row is an LES (32², dt 0.1) of ``--members`` members started from rest like the DNS,
run by ``hybrid run betaplane-hybrid`` for the preset's spin-up plus ``--t-end`` time units and
compared by ``hybrid jets RUN REFERENCE --t-min SPINUP``: Hellinger distances of the PDFs of U,
∂yU and ∂tU, the energy ½⟨U²⟩, the fraction of time and the residence time in each jet number,
each with the reference's 95 % interval. A row is ``closure[@every][/key=value...]`` (the rows of
``hybrid bench``, plus ``slt-closure``); ``path=`` names a trained model; LES settings may come
first, each ending in ':', and are passed to ``hybrid run --set``
(``les.eddy_drag=0.01:smagorinsky``). A run that blows up is
reported with the time it reached. Runs go to ``RUNS/<row>`` (``--runs``, default
``runs/betaplane-hybrid``) and are reused when their trajectory is complete (``--rerun`` runs
them again). Writes ``jets.json`` and ``jets.md`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from hybrid.jets.statistics import VARIABLE_LABELS

from .provenance import run_header, write_results

PRESET = "betaplane-hybrid"
NAMES = ("none", "smagorinsky", "leith", "dynamic-smagorinsky", "ldm-mean", "ldm", "pcdm",
         "slt-closure")


def row_folder(row: str) -> str:
    """A folder name for a row: its text with every run of other characters than letters,
    digits, '.', '-', '@' and '=' replaced by '_'."""
    return re.sub(r"[^A-Za-z0-9.@=-]+", "_", row).strip("_")


def parse_row(row: str) -> tuple[tuple[str, int, tuple], list[str]]:
    """``'SETTING:...:closure...'`` → (the closure's :func:`hybrid.report.parse_entry`, the
    settings, each 'SECTION.KEY=VALUE'); the settings are the leading ':'-ended parts without a
    '/' (a model path may hold ':'). ValueError naming the row."""
    from hybrid.report import parse_entry
    settings, rest = [], row
    while True:
        head, sep, tail = rest.partition(":")
        if not sep or "/" in head:
            break
        if "=" not in head:
            raise ValueError(f"the LES setting {head!r} of {row!r} must be KEY=VALUE")
        settings.append(head)
        rest = tail
    return parse_entry(rest, 0, names=NAMES), settings


def run_arguments(entry: tuple[str, int, tuple], settings: list[str], args: argparse.Namespace,
                  out: Path) -> list[str]:
    """The ``hybrid run`` arguments of a row parsed by :func:`parse_row` (every 0: the closure's
    own)."""
    name, every, options = entry
    argv = ["run", PRESET, "--closure", name, "--members", str(args.members),
            "--seed", str(args.seed), "--t-end", str(args.spinup + args.t_end),
            "--threads", str(args.threads), "--out", str(out), "--overwrite"]
    for text in settings:
        argv += ["--set", text]
    if every:
        argv += ["--every", str(every)]
    for key, value in options:
        argv += ["--closure-arg", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return argv


def complete(out: Path, t_end: float) -> bool:
    """Whether ``out`` holds a trajectory that reached ``t_end``."""
    f = out / "trajectory.nc"
    if not f.is_file():
        return False
    import xarray as xr
    with xr.open_dataset(f) as ds:
        return float(ds["time"].values[-1]) >= t_end - 1e-6


def summary(jets: dict) -> dict:
    """The numbers of a row from ``hybrid jets``'s jets.json."""
    variables = [v for v, d in jets["pdfs"].items() if isinstance(d, dict)]
    row = {"hellinger": {v: jets["pdfs"][v]["hellinger"] for v in variables},
           "floor": {v: jets["pdfs"][v].get("floor") for v in variables}}
    for side in ("run", "reference"):
        j = jets["jets"][side]
        row[side] = {"energy": j["energy"], "fraction": j["fraction"],
                     "residence_time": j["residence_time"], "time_span": j["time_span"],
                     "mergings": j["mergings"], "nucleations": j["nucleations"]}
    return row


def measure(args: argparse.Namespace) -> dict:
    from hybrid.cli import main as hybrid
    result = {**run_header("benchmarks.betaplane_hybrid", args.argv), "preset": PRESET,
              "reference": str(args.reference), "members": args.members, "seed": args.seed,
              "spinup": args.spinup, "t_end": args.t_end, "rows": {}}
    for row, (entry, settings) in args.rows.items():
        out = args.runs / row_folder(row)
        if args.rerun or not complete(out, args.spinup + args.t_end):
            code = hybrid(run_arguments(entry, settings, args, out))
            if code != 0:
                run = json.loads((out / "run.json").read_text()) \
                    if (out / "run.json").is_file() else {}
                result["rows"][row] = {"failed": run.get("status", f"hybrid run exited {code}"),
                                       "t_final": run.get("t_final"), "folder": str(out)}
                continue
        code = hybrid(["jets", str(out), str(args.reference), "--t-min", str(args.spinup),
                       "--out", str(out / "jets"), "--overwrite"])
        if code != 0:
            result["rows"][row] = {"failed": f"hybrid jets exited {code}"}
            continue
        jets = json.loads((out / "jets" / "jets.json").read_text())
        run = json.loads((out / "run.json").read_text())
        result["rows"][row] = {**summary(jets), "folder": str(out), "status": run["status"],
                               "t_final": run["t_final"],
                               "wall_per_time_unit": run["timings"]["wall_per_time_unit"]}
    return result


def _within(value: float, interval) -> str:
    return "yes" if interval and interval[0] <= value <= interval[1] else "no"


def markdown(r: dict) -> str:
    """The tables of ``jets.md``: Hellinger distances and energy; time in each jet number."""
    lines = [f"`{r['command']}` ({r['date']}, {r['machine']})", "",
             f"LES of `{r['preset']}` from rest, {r['members']} members, seed {r['seed']}, "
             f"{r['t_end']:g} time units after a spin-up of {r['spinup']:g}, against "
             f"`{r['reference']}`.", "",
             "| closure | H(U) | H(∂yU) | H(∂tU) | energy [95 %] | reference energy [95 %] | "
             "within | reached t | s per time unit |", "|---|---|---|---|---|---|---|---|---|"]
    numbers = set()
    for row, v in r["rows"].items():
        if "failed" in v:
            reached = "" if v.get("t_final") is None else f"{v['t_final']:g}"
            lines.append(f"| {row} | {v['failed']} | | | | | | {reached} | |")
            continue
        h, e, er = v["hellinger"], v["run"]["energy"], v["reference"]["energy"]
        ci, cr = e["interval_95"], er["interval_95"]
        lines.append(f"| {row} | {h['U']:.3f} | {h['dUdy']:.3f} | {h['dUdt']:.3f} | "
                     f"{e['mean']:.4g} [{ci[0]:.4g}, {ci[1]:.4g}] | "
                     f"{er['mean']:.4g} [{cr[0]:.4g}, {cr[1]:.4g}] | {_within(e['mean'], cr)} | "
                     f"{v['t_final']:g} | {v['wall_per_time_unit']['total']:.3g} |")
        numbers |= set(v["run"]["fraction"]) | set(v["reference"]["fraction"])
    floor = next((v["floor"] for v in r["rows"].values() if "floor" in v), None)
    if floor:
        lines += ["", "Floor (the reference's halves): " + ", ".join(
            f"H({VARIABLE_LABELS.get(k, k)}) {x:.3f}" for k, x in floor.items()
            if x is not None) + "."]
    numbers = sorted(numbers, key=int)
    lines += ["", "Fraction of time with each jet number (episodes, as `hybrid jets` reports them "
              "and as the reference's 95 % intervals are computed), and mean residence time:", "",
              "| closure | " + " | ".join(f"{k} jets" for k in numbers) + " | " +
              " | ".join(f"residence {k}" for k in numbers) + " |",
              "|---|" + "---|" * (2 * len(numbers))]
    ref = next((v["reference"] for v in r["rows"].values() if "reference" in v), None)
    rows = ([("DNS (reference)", ref)] if ref else []) + [
        (row, v["run"]) for row, v in r["rows"].items() if "run" in v]
    for name, side in rows:
        cells = []
        for k in numbers:
            f = side["fraction"].get(k)
            cells.append("0" if f is None else f"{f['episodes']:.2f}")
        for k in numbers:
            t = side["residence_time"].get(k)
            cells.append("n/a" if not t or t.get("mean") is None else
                         f"{t['mean']:.0f} ({t['episodes']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if ref:
        lines += ["", "Reference intervals: " + "; ".join(
            f"{k} jets {ref['fraction'][k]['episodes_interval_95'][0]:.2f}–"
            f"{ref['fraction'][k]['episodes_interval_95'][1]:.2f}" for k in numbers
            if k in ref["fraction"]) + "."]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", type=Path, default=Path("data/betaplane-hybrid/test-dns"),
                   help="the test DNS: a run folder of `hybrid dns betaplane-hybrid`")
    p.add_argument("--rows", default="none,smagorinsky,leith,dynamic-smagorinsky",
                   help="comma-separated [SECTION.KEY=VALUE:...]closure[@every][/key=value...]")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--t-end", type=float, default=10000.0, help="time units after the spin-up")
    p.add_argument("--spinup", type=float, default=None, help="default: the preset's")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rerun", action="store_true", help="run rows again even when complete")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/betaplane-hybrid"))
    p.add_argument("--runs", type=Path, default=Path("runs/betaplane-hybrid"),
                   help="where the runs go, one folder per row (not results: large)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    args.argv = argv
    from hybrid.config import load_preset
    if not (args.reference / "trajectory.nc").is_file():
        p.error(f"--reference: no trajectory.nc in {args.reference}")
    rows = {}
    for row in (x for x in args.rows.split(",") if x):
        try:
            rows[row] = parse_row(row)
        except ValueError as e:
            p.error(f"--rows: {e}")
    args.rows = rows
    if args.spinup is None:
        args.spinup = float(load_preset(PRESET).run["spinup"])
    r = measure(args)
    write_results(args.out, "jets", r, markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
