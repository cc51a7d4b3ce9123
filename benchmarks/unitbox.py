"""The latent score-based closure paper's measurements on ``ns-unitbox`` (docs/ldm-unitbox.md).

    python -m benchmarks.unitbox offline --models runs/unitbox/ldm-joint,runs/unitbox/pcdm
    python -m benchmarks.unitbox online --models runs/unitbox/ldm-joint [--ensemble 8 --t-end 50]
    python -m benchmarks.unitbox cost --models runs/unitbox/ldm-joint,runs/unitbox/pcdm

The data are a closure dataset of ``hybrid generate ns-unitbox --target missing-physics``
(``--data``, default ``data/ns-unitbox/test.nc``: 4 DNS trajectories of seed 1, every record a
test record): ``omega_bar`` the DNS vorticity ω at every 4th point (64²), ``subgrid`` the whole
advection term H = −u·∇ω there. Every model of ``--models`` (saved stems or shipped names) must
have been trained on data of that target and grid (its card says so), or the stage stops before
any work.

* ``offline``: on the test pairs of ``--data``, per model and sampler setting
  (``--settings steps:rho:t_start,...``: the paper's 10:7:0.4 and the closure's default 10:1:0.3
  by default), the relative error ‖H − Ĥ‖/‖H‖ (pooled over pairs) of the mean Ĥ of ``--samples``
  draws, of one draw, of the mean network μ(ω̄) alone where the model has one, and the
  spread/error ratio (:func:`benchmarks.ldm_offline.evaluate`, i.e.
  :func:`closures.train.offline_metrics`). Writes ``offline.json`` and ``offline.md``.
* ``online``: from the file's ω̄ at ``--start-time`` (default 0) of each trajectory, the 64²
  coarse solver (dt 1e-3, the preset's) without its own advection, each model as its closure
  refreshed every ``--every`` = 5 steps, ``--ensemble`` E members per start (default 8); and two
  baselines of one member per start: the coarse solver with its own advection and no closure
  ("no closure"), and without its advection and without closure ("no advection, no closure":
  the missing-physics solver with C = 0). With its own advection the 64² solver resolves this
  flow (the data hold no vorticity beyond its 2/3-rule modes, to round-off), so the paper's
  ≈ 82 % "no closure" error at t = 50 is presumably the second baseline's. All runs are built by
  :func:`hybrid.ensemble.make_simulation`, which switches the advection off for a
  missing-physics model. At every record of the file (every 0.25) up to
  ``--t-end`` (default 50, read at the file's last record, 49.75), against the file's ω̄: the
  relative L2 error ‖ω − ω_ref‖/‖ω_ref‖ of the ensemble mean and of single members, mean over
  starts, and the spread/error ratio (:func:`benchmarks.ldm_online.ensemble_metrics`). Writes
  ``online.json``, ``online.md`` (a table at ``--table-times``) and ``online_error.png``.
* ``cost``: wall seconds per simulated time unit of an ensemble of ``--ensemble`` members with
  each closure, of the coarse solver with no closure and of the 256² DNS (same members, the
  file's DNS dt), each the median of ``--repeats`` timed intervals (``--cost-t`` time units for
  the coarse runs, ``--dns-t`` for the DNS), after a warm-up interval. Writes ``cost.json`` and
  ``cost.md``.

Every markdown file starts with the command that wrote it; every JSON file holds the date, the
machine and the command (:func:`benchmarks.provenance.run_header`), the torch and FFTW threads and
the load average at the start.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np

from .ldm_offline import evaluate, parse_settings, table
from .ldm_online import dns_cost, ensemble_metrics, reference
from .provenance import run_header

PRESET = "ns-unitbox"
DEFAULT_DATA = Path("data/ns-unitbox/test.nc")
DEFAULT_OUT = Path("benchmarks/results/unitbox")
DEFAULT_SETTINGS = "10:7:0.4,10:1:0.3"            # the paper's sampler, then the closure's default
TABLE_TIMES = "5,10,20,30,40,50"
NO_CLOSURE = "no closure"                        # the coarse solver with its own advection
NO_ADVECTION = "no advection, no closure"        # ... without it: the missing-physics solver, C = 0
STAGES = ("offline", "online", "cost")


# ------------------------------------------------------------------------------------- inputs
def model_list(text: str | None) -> list[str]:
    """The comma-separated model stems or shipped names of ``--models`` (empty entries dropped)."""
    return [m.strip() for m in (text or "").split(",") if m.strip()]


def check_models(models: list[str], data: Path, attrs: dict, n: int) -> dict[str, dict]:
    """{model name: {'path', 'card'}} for each of ``models``, each checked against the closure
    dataset ``data`` (attributes ``attrs``, grid n): the card's data target and grid must be the
    file's; else SystemExit naming ``--models`` and the model."""
    from closures.ldm import ModelFileError, card_target, read_card, resolve_model_path
    out = {}
    target, L = attrs.get("target"), float(attrs["L"])
    for stem in models:
        path = resolve_model_path(stem)
        try:
            card = read_card(path)
        except ModelFileError as e:
            raise SystemExit(f"--models {stem}: {e}") from None
        got = card_target(card)
        if got != target:
            raise SystemExit(f"--models {stem}: trained on data of target {got!r}; --data {data} "
                             f"holds target {target!r}")
        grid = card.get("grid") or {}
        if int(grid.get("n", -1)) != n or not math.isclose(float(grid.get("L", math.nan)), L):
            raise SystemExit(f"--models {stem}: built for n={grid.get('n')}, L={grid.get('L')}; "
                             f"--data {data} is on n={n}, L={L:g}")
        name = Path(stem).name
        if name in out:
            raise SystemExit(f"--models: two models are named {name!r}")
        out[name] = {"path": str(path), "card": card}
    return out


def data_attrs(path: Path) -> tuple[dict, int]:
    """The closure dataset's attributes and its grid size n; SystemExit naming ``--data`` if it
    is not a closure dataset of a missing-physics target."""
    from hybrid.datasets import open_dataset
    if not path.is_file():
        raise SystemExit(f"--data: no closure dataset at {path}")
    try:
        with open_dataset(path) as ds:
            attrs, n = dict(ds.attrs), int(ds.sizes["x"])
    except (OSError, ValueError) as e:
        raise SystemExit(f"--data {path}: {e}") from None
    if attrs.get("target") != "missing-physics":
        raise SystemExit(f"--data {path} holds target {attrs.get('target')!r}; this benchmark "
                         f"needs 'missing-physics' data (hybrid generate {PRESET} --target "
                         f"missing-physics)")
    return attrs, n


def environment(args: argparse.Namespace) -> dict:
    """Provenance beyond :func:`run_header`: threads, CPUs, load average, torch version."""
    import torch
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"torch_threads": args.threads, "fftw_threads": 1, "cpus": os.cpu_count(),
            "load_average_1_5_15": None if load is None else [round(x, 2) for x in load],
            "torch": torch.__version__}


def preset_and_overrides(n: int, L: float):
    """The ``ns-unitbox`` preset and the LES settings for a dataset on n², side L (the preset's
    64² unless the file is on another grid); SystemExit if L is not the preset's."""
    from hybrid.config import load_preset
    preset = load_preset(PRESET)
    les = preset.solver_kwargs("les")
    if not math.isclose(float(les["L"]), L):
        raise SystemExit(f"--data is on a box of side L={L:g}; preset {PRESET} has "
                         f"L={les['L']:g}")
    return preset, ({} if int(les["n"]) == n else {"n": n})


def closures_to_run(models: dict[str, dict], args: argparse.Namespace
                    ) -> list[tuple[str, str | None, dict, int, dict]]:
    """(label, registry name or None, closure arguments, members per start, solver settings) of
    every run: the coarse solver with its own advection and no closure, the same without its
    advection (the missing-physics solver with C = 0), each one member per start; each model's
    diffusion closure (``--ensemble`` members) and, with ``--mean-network``, its μ(ω̄) alone (one
    member). A model's solver settings are those its card asks for
    (:func:`hybrid.simulation.closure_solver_overrides`)."""
    steps, rho, t_start = args.sampler
    runs = [(NO_CLOSURE, None, {}, 1, {}), (NO_ADVECTION, None, {}, 1, {"advection": False})]
    for name, m in models.items():
        runs.append((name, "ldm", {"path": m["path"], "steps": steps, "rho": rho,
                                   "t_start": t_start, "threads": args.threads}, args.ensemble,
                     {}))
        if args.mean_network and (m["card"].get("config") or {}).get("mean_width", 0):
            runs.append((f"{name} μ(ω̄)", "ldm-mean", {"path": m["path"],
                                                       "threads": args.threads}, 1, {}))
    return runs


def simulation(preset, overrides: dict, closure: str | None, kwargs: dict, omega0: np.ndarray,
               per_start: int, t0: float, every: int, seed: int):
    """The coarse run of ``closure`` from the physical fields ``omega0`` (starts, n, n), each
    repeated ``per_start`` times (member s·per_start + e is member e of start s), at time t0:
    :func:`hybrid.ensemble.make_simulation`, which builds the solver the closure needs."""
    from hybrid.ensemble import BatchSpec, make_simulation
    initial = np.repeat(np.fft.rfft2(omega0), per_start, axis=0)
    spec = BatchSpec(preset=preset, closure=closure, closure_kwargs=kwargs,
                     every=every if closure is not None else None, seed=seed,
                     members=initial.shape[0], overrides=overrides, t0=t0, t_end=t0,
                     initial_hat=initial)
    return make_simulation(spec)


# ------------------------------------------------------------------------------------- offline
def offline(args: argparse.Namespace) -> dict:
    """The ``offline`` stage: :func:`benchmarks.ldm_offline.evaluate` of each model on the test
    pairs, for each sampler setting."""
    attrs, n = data_attrs(args.data)
    models = check_models(model_list(args.models), args.data, attrs, n)
    if not models:
        raise SystemExit("--models: the offline stage needs at least one model")
    settings = parse_settings(args.settings, "--settings")
    result = {**run_header("benchmarks.unitbox", args.argv), **environment(args),
              "stage": "offline", "data": str(args.data), "samples": args.samples,
              "seed": args.seed, "models": {}}
    for name, m in models.items():
        result["models"][name] = evaluate(m["path"], args.data, settings, args.samples,
                                          args.seed, "test")
    return result


def offline_markdown(r: dict) -> str:
    lines = [f"`{r['command']}`", "",
             f"# ns-unitbox offline skill ({r['date']}, {r['machine']})", "",
             f"Test pairs of {r['data']}: relative error ‖H − Ĥ‖/‖H‖ pooled over the pairs, of "
             f"the mean of {r['samples']} draws, of one draw and of μ(ω̄) alone; spread/error "
             f"(≈ {math.sqrt(r['samples'] / (r['samples'] + 1)):.2f} is calibrated for "
             f"{r['samples']} draws).", ""] + table(r)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- online
def online(args: argparse.Namespace) -> dict:
    """The ``online`` stage: the coarse runs from the file's states against its ω̄ over time."""
    from solvers import BlowUpError
    attrs, n = data_attrs(args.data)
    models = check_models(model_list(args.models), args.data, attrs, n)
    ref = reference(args.data)
    times, omega = ref["times"], ref["omega"]                      # (T,), (T, M, n, n)
    k0 = int(np.argmin(np.abs(times - args.start_time)))
    if abs(times[k0] - args.start_time) > 1e-6:
        raise SystemExit(f"--start-time {args.start_time:g}: --data has no record then "
                         f"(records every {times[1] - times[0]:g} from {times[0]:g})")
    test_from = attrs.get("split_test_from")
    if test_from is not None and times[k0] < float(test_from) - 1e-9:
        raise SystemExit(f"--start-time {args.start_time:g} lies before the test block of "
                         f"--data {args.data} (from t={float(test_from):g}): use test data")
    last = int(np.searchsorted(times, args.t_end + 1e-9)) - 1
    if last <= k0:
        raise SystemExit(f"--t-end {args.t_end:g} must lie after the start t={times[k0]:g}")
    starts = omega.shape[1] if args.starts is None else args.starts
    if not 1 <= starts <= omega.shape[1]:
        raise SystemExit(f"--starts must lie in 1…{omega.shape[1]} (the file's trajectories), "
                         f"got {starts}")
    record_times = times[k0:last + 1]
    truth = omega[k0:last + 1, :starts]                           # (records, S, n, n)
    preset, overrides = preset_and_overrides(n, float(attrs["L"]))
    result = {**run_header("benchmarks.unitbox", args.argv), **environment(args),
              "stage": "online", "data": str(args.data), "start_time": float(times[k0]),
              "t_end": float(record_times[-1]), "t_end_requested": args.t_end,
              "starts": starts, "ensemble": args.ensemble, "every": args.every,
              "sampler": dict(zip(("steps", "rho", "t_start"), args.sampler)), "seed": args.seed,
              "time": record_times.tolist(), "runs": {}}
    for label, closure, kwargs, per_start, extra in closures_to_run(models, args):
        sim = simulation(preset, {**overrides, **extra}, closure, kwargs, truth[0], per_start,
                         float(times[k0]), args.every, args.seed)
        s = sim.solver
        keys = ("error_ensemble_mean", "error_member", "spread_error_ratio", "relative_spread")
        rec = {"closure": closure, "closure_kwargs": kwargs, "members_per_start": per_start,
               "advection": bool(s.advection), "dt": s.dt, **{k: [] for k in keys},
               "blew_up_at": None}

        def score(solver, rec=rec):
            j = len(rec["error_member"])
            if j >= len(record_times) or abs(solver.t - record_times[j]) > 0.5 * solver.dt:
                raise RuntimeError(f"record at t={solver.t:g} does not match the file's "
                                   f"t={record_times[min(j, len(record_times) - 1)]:g}")
            w = np.asarray(solver.vorticity, np.float64).reshape(starts, per_start, n, n)
            m = ensemble_metrics(w, truth[j])
            for k in keys:
                rec[k].append(m[k])

        print(f"online {label}: {starts} start(s) × {per_start} member(s), advection "
              f"{'on' if s.advection else 'off'}, t = {times[k0]:g} → {record_times[-1]:g}",
              flush=True)
        wall0 = time.perf_counter()
        try:
            res = sim.run(float(record_times[-1]), output_every=float(times[1] - times[0]),
                          progress=args.progress, callback=score)
            rec["timings"] = res.to_dict()
        except BlowUpError as e:
            rec["blew_up_at"] = float(e.t)
            print(f"  {label} blew up at t={e.t:g}", flush=True)
        rec["wall_s"] = time.perf_counter() - wall0
        pad = len(record_times) - len(rec["error_member"])
        for k in keys:
            rec[k] += [None] * pad
        result["runs"][label] = rec
    return result


def at_times(r: dict, wanted: list[float]) -> list[int]:
    """Indices of the records of ``r['time']`` at or just before each of ``wanted`` (the last
    record for a time past it), without repeats."""
    t = np.asarray(r["time"])
    out = []
    for w in wanted:
        j = int(np.searchsorted(t, w + 1e-9)) - 1
        if j >= 0 and j not in out:
            out.append(j)
    return out


def _cell(v, fmt: str = ".3g") -> str:
    return "–" if v is None else format(v, fmt)


def online_markdown(r: dict, table_times: list[float]) -> str:
    rows = at_times(r, table_times)
    runs = r["runs"]
    head = "| t | " + " | ".join(runs) + " |"
    rule = "|---|" + "---|" * len(runs)
    lines = [f"`{r['command']}`", "",
             f"# ns-unitbox online skill ({r['date']}, {r['machine']})", "",
             f"Data: {r['data']}; {r['starts']} start(s) at t = {r['start_time']:g}, each "
             f"trajectory's subsampled DNS vorticity; the coarse solver without its own advection "
             f"and each model as its closure every {r['every']} steps ({r['ensemble']} members "
             f"per start, sampler steps:ρ:t_start = {r['sampler']['steps']}:"
             f"{r['sampler']['rho']:g}:{r['sampler']['t_start']:g}); baselines of one member per "
             f"start: '{NO_CLOSURE}' (the coarse solver with its own advection) and "
             f"'{NO_ADVECTION}' (without it, C = 0). Relative L2 error "
             f"‖ω − ω_ref‖/‖ω_ref‖ against the file's vorticity, mean over starts.", "",
             "Error of the ensemble-mean vorticity:", "", head, rule]
    for j in rows:
        lines.append(f"| {r['time'][j]:g} | " + " | ".join(
            _cell(c["error_ensemble_mean"][j]) for c in runs.values()) + " |")
    lines += ["", "Error of single members (mean over starts and members):", "", head, rule]
    for j in rows:
        lines.append(f"| {r['time'][j]:g} | " + " | ".join(
            _cell(c["error_member"][j]) for c in runs.values()) + " |")
    ens = {k: c for k, c in runs.items() if c["members_per_start"] > 1}
    if ens:
        lines += ["", "Spread/error ratio of the ensembles, sqrt((E+1)/E·Σ var / Σ (mean − "
                  "ref)²) (1 is calibrated):", "", "| t | " + " | ".join(ens) + " |",
                  "|---|" + "---|" * len(ens)]
        for j in rows:
            lines.append(f"| {r['time'][j]:g} | " + " | ".join(
                _cell(c["spread_error_ratio"][j], ".2f") for c in ens.values()) + " |")
    blown = {k: c["blew_up_at"] for k, c in runs.items() if c["blew_up_at"] is not None}
    if blown:
        lines += ["", "Blew up: " + ", ".join(f"{k} at t = {t:g}" for k, t in blown.items())]
    lines += ["", "Wall seconds per run: " + ", ".join(f"{k} {c['wall_s']:.0f} s"
                                                       for k, c in runs.items())]
    return "\n".join(lines) + "\n"


def online_figure(r: dict, path: Path) -> None:
    """Error of the ensemble mean (solid) and of single members (dashed) against time."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    t = np.asarray(r["time"])
    for i, (name, c) in enumerate(r["runs"].items()):
        color = f"C{i}"
        mean = np.array([np.nan if v is None else v for v in c["error_ensemble_mean"]])
        member = np.array([np.nan if v is None else v for v in c["error_member"]])
        if c["members_per_start"] > 1:
            ax.plot(t, mean, "-", color=color, label=f"{name}: ensemble mean "
                    f"({c['members_per_start']} members)")
            ax.plot(t, member, "--", color=color, lw=1, label=f"{name}: single members")
        else:
            ax.plot(t, member, "-", color=color, label=name)
    ax.set_xlabel("t")
    ax.set_ylabel("relative L2 error of the vorticity")
    ax.set_title(f"ns-unitbox 64², {r['starts']} test start(s) at t = {r['start_time']:g}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------- cost
def cost(args: argparse.Namespace) -> dict:
    """The ``cost`` stage: wall seconds per simulated time unit of each ensemble and the DNS."""
    attrs, n = data_attrs(args.data)
    models = check_models(model_list(args.models), args.data, attrs, n)
    ref = reference(args.data)
    preset, overrides = preset_and_overrides(n, float(attrs["L"]))
    omega0 = ref["omega"][0, :1]                                   # the first trajectory
    E = args.ensemble
    result = {**run_header("benchmarks.unitbox", args.argv), **environment(args),
              "stage": "cost", "data": str(args.data), "ensemble": E, "every": args.every,
              "sampler": dict(zip(("steps", "rho", "t_start"), args.sampler)),
              "repeats": args.repeats, "cost_t": args.cost_t, "dns_t": args.dns_t, "runs": {}}
    for label, closure, kwargs, _, extra in closures_to_run(models, args):
        sim = simulation(preset, {**overrides, **extra}, closure, kwargs, omega0, E,
                         float(ref["times"][0]),
                         args.every, args.seed)
        s = sim.solver
        warm = max(args.every, round(0.1 * args.cost_t / s.dt)) * s.dt
        sim.run(s.t + warm, progress=False)                      # model, plans, caches warm
        per_tu, closure_share, per_call = [], [], []
        for _ in range(args.repeats):
            res = sim.run(s.t + args.cost_t, progress=False)
            per_tu.append(res.wall_s / res.simulated_time)
            closure_share.append(res.closure_s / res.wall_s if res.wall_s > 0 else 0.0)
            if res.closure_calls:
                per_call.append(res.closure_s / res.closure_calls / E)
        result["runs"][label] = {
            "closure": closure, "members": E, "n": s.grid.n, "advection": bool(s.advection),
            "dt": s.dt,
            "s_per_tu": statistics.median(per_tu), "s_per_tu_repeats": per_tu,
            "closure_share": statistics.median(closure_share),
            "closure_s_per_refresh_per_member": statistics.median(per_call) if per_call
            else None}
        print(f"cost {label}: {result['runs'][label]['s_per_tu']:.3g} s per time unit for "
              f"{E} members", flush=True)
    dns = [dns_cost(preset, ref, E, args.dns_t, args.seed) for _ in range(args.repeats)]
    per_member = [d["cost_s_per_tu_per_member"] for d in dns]
    result["dns"] = {"n": dns[0]["n"], "dt": dns[0]["dt"], "members": E,
                     "s_per_tu": E * statistics.median(per_member),
                     "s_per_tu_repeats": [E * c for c in per_member]}
    print(f"cost DNS {dns[0]['n']}²: {result['dns']['s_per_tu']:.3g} s per time unit for {E} "
          f"members", flush=True)
    return result


def cost_markdown(r: dict) -> str:
    E, dns = r["ensemble"], r["dns"]
    lines = [f"`{r['command']}`", "",
             f"# ns-unitbox cost ({r['date']}, {r['machine']})", "",
             f"Wall seconds per simulated time unit of an ensemble of {E} members, median of "
             f"{r['repeats']} intervals ({r['cost_t']:g} time units for the coarse runs, "
             f"{r['dns_t']:g} for the DNS); closures refreshed every {r['every']} steps; torch "
             f"threads {r['torch_threads']}, FFTW threads {r['fftw_threads']}, load average at "
             f"the start {r['load_average_1_5_15']}. The last column scales the cost per member "
             f"to the paper's 100 members over 20 time units (20,000 steps).", "",
             "| run | grid | advection | s / time unit | s / t.u. / member | speed-up vs DNS | "
             "closure share | closure ms / refresh / member | 100 members × 20 t.u. |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, c in r["runs"].items():
        call = c["closure_s_per_refresh_per_member"]
        lines.append(
            f"| {name} | {c['n']}², dt {c['dt']:g} | {'on' if c['advection'] else 'off'} | "
            f"{c['s_per_tu']:.3g} | {c['s_per_tu'] / E:.3g} | "
            f"{dns['s_per_tu'] / c['s_per_tu']:.3g}× | "
            f"{c['closure_share']:.0%} | " + ("–" if call is None else f"{1e3 * call:.3g}")
            + f" | {c['s_per_tu'] / E * 2000:.0f} s |")
    lines.append(f"| DNS | {dns['n']}², dt {dns['dt']:g} | on | {dns['s_per_tu']:.3g} | "
                 f"{dns['s_per_tu'] / E:.3g} | 1× | – | – | {dns['s_per_tu'] / E * 2000:.0f} s |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- command
def numbers(text: str, flag: str) -> list[float]:
    """Comma-separated numbers of option ``flag``; SystemExit naming it otherwise."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"{flag}: expected comma-separated numbers, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    from closures.ldm import RHO, STEPS, T_START
    p = argparse.ArgumentParser(prog="python -m benchmarks.unitbox",
                                description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help=f"missing-physics closure dataset, every record test data (default "
                        f"{DEFAULT_DATA})")
    p.add_argument("--models", default="",
                   help="comma-separated saved model stems or shipped names, trained on "
                        "missing-physics data of the same grid (online and cost also run the "
                        "coarse solver with no closure)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder of the results (default {DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the networks (default 1)")
    g = p.add_argument_group("offline")
    g.add_argument("--settings", default=DEFAULT_SETTINGS,
                   help=f"sampler settings steps:rho:t_start, comma-separated (default "
                        f"{DEFAULT_SETTINGS}: the paper's, then the closure's default)")
    g.add_argument("--samples", type=int, default=8,
                   help="draws per pair whose mean is scored (default 8, at least 2)")
    g = p.add_argument_group("online and cost")
    g.add_argument("--sampler", default=f"{STEPS}:{RHO:g}:{T_START:g}",
                   metavar="STEPS:RHO:T_START",
                   help=f"sampler of the closures (default {STEPS}:{RHO:g}:{T_START:g}, the "
                        f"closure's)")
    g.add_argument("--ensemble", type=int, default=8,
                   help="members per start of each model's ensemble (default 8)")
    g.add_argument("--every", type=int, default=5,
                   help="steps between closure refreshes (default 5)")
    g.add_argument("--mean-network", action="store_true",
                   help="also run μ(ω̄) alone for models with a mean network (one member per "
                        "start)")
    g = p.add_argument_group("online")
    g.add_argument("--start-time", type=float, default=0.0,
                   help="record of --data to start from (default 0)")
    g.add_argument("--starts", type=int, default=None,
                   help="trajectories of --data to start from (default all)")
    g.add_argument("--t-end", type=float, default=50.0,
                   help="end of the comparison (default 50, the paper's; read at the last "
                        "record of --data at or before it)")
    g.add_argument("--table-times", default=TABLE_TIMES,
                   help=f"times of the markdown table (default {TABLE_TIMES})")
    g.add_argument("--progress", action="store_true", help="progress bars of the runs")
    g = p.add_argument_group("cost")
    g.add_argument("--repeats", type=int, default=3,
                   help="timed intervals per run; the median is reported (default 3)")
    g.add_argument("--cost-t", type=float, default=0.5,
                   help="time units per timed interval of the coarse runs (default 0.5)")
    g.add_argument("--dns-t", type=float, default=0.1,
                   help="time units per timed interval of the DNS (default 0.1)")
    return p


def check_arguments(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Ranges of the numeric options; ``p.error`` names the bad one. Reads ``--settings``,
    ``--sampler`` and ``--table-times`` into lists."""
    for flag in ("--settings", "--sampler"):
        for steps, rho, t_start in parse_settings(getattr(args, flag[2:]), flag):
            if steps < 1 or not rho > 0 or not 0 < t_start <= 1:
                p.error(f"{flag}: steps ≥ 1, rho > 0 and 0 < t_start ≤ 1, got "
                        f"{steps}:{rho:g}:{t_start:g}")
    sampler = parse_settings(args.sampler, "--sampler")
    if len(sampler) != 1:
        p.error(f"--sampler: one steps:rho:t_start, got {args.sampler!r}")
    args.sampler = sampler[0]
    args.table_times = numbers(args.table_times, "--table-times")
    for flag, v, lo in (("--samples", args.samples, 2), ("--ensemble", args.ensemble, 1),
                        ("--every", args.every, 1), ("--threads", args.threads, 1),
                        ("--repeats", args.repeats, 1), ("--seed", args.seed, 0)):
        if v < lo:
            p.error(f"{flag} must be ≥ {lo}, got {v}")
    for flag, v in (("--cost-t", args.cost_t), ("--dns-t", args.dns_t), ("--t-end", args.t_end)):
        if not (math.isfinite(v) and v > 0):
            p.error(f"{flag} must be a positive number, got {v}")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.unitbox offline|online|cost ...``; returns the exit code."""
    p = parser()
    args = p.parse_args(argv)
    check_arguments(args, p)
    args.argv = argv
    import torch
    torch.set_num_threads(args.threads)             # the scores' torch work too, not only nets
    stage = {"offline": offline, "online": online, "cost": cost}[args.stage]
    result = stage(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stage}.json").write_text(json.dumps(result, indent=1))
    if args.stage == "offline":
        text = offline_markdown(result)
    elif args.stage == "online":
        text = online_markdown(result, args.table_times)
        online_figure(result, args.out / "online_error.png")
    else:
        text = cost_markdown(result)
    (args.out / f"{args.stage}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
