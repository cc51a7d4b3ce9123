"""``hybrid jets --sweep MODEL``: the jets of a parameter-conditioned emulator across a range of
one parameter, against DNS runs at some of its values.

The conditioned SLT (:class:`closures.slt.ConditionedSLT`) runs at ``points`` values of one
parameter p (``--param-range NAME=LO:HI``; log-spaced, p_i = LO (HI/LO)^(i/(N−1)), when LO > 0,
else evenly spaced; the model's other parameters held at ``--fixed`` values), ``members``
members of ``steps`` saves each at every value. Per value and per DNS run:

* mean jet number n̄ = Σ n(m, t)/(M R), the jet count n of every record (:func:`count_jets`) of
  the M members and R records;
* merging and nucleation rates r = N_events/(M R Δt), events per member per time unit, the events
  those of ``hybrid jets`` (:func:`events`: episodes under the persistence rule, a drop a
  merging, a rise a nucleation) and Δt the save interval;
* their percentile bootstrap 95 % intervals over segments: each member's records cut into
  B = ⌈20/M⌉ consecutive blocks of (nearly) equal length, so that there are at least 20
  segments (one per member for a large ensemble, blocks in time for a DNS of a few members);
  the segments are resampled with replacement, n̄* = Σ count sums/Σ records and r* = Σ events/
  (Σ records Δt) over the resample.

The settings are those of ``hybrid jets`` with the run as its own reference: the smoothing
wavenumber k_s = kf/2 and the persistence 1/(2μ) from the run's configuration (for an emulated
value: the configuration of the run its start comes from, with the value's parameters put in;
so a swept or fixed μ sets the persistence), unless ``--smooth-k`` and ``--persist`` fix them.

Start. All members of a value start from one window of L records (the model's window): member 0
of ``--init`` ending at its last record; without ``--init``, the DNS run (``--dns``) nearest to
the value, nearest in ln p (in p when a value is not positive) — the window of a flow at the
value's parameters or close to it, so the emulated members begin near its statistics. The first
``burn_in`` time units of every member are left out of the statistics (its first ⌈burn_in/Δt⌉
saves are dropped; episodes and events are found in the records after them).

Members. Value i's members are ``Emulator.rollout(history, steps, members, seed=seed + i,
batch=batch)`` at its parameters, made a batch at a time (:meth:`Emulator.rollout_batches`):
each batch is decoded and counted before the next is stepped, so memory holds one batch of
profiles (``batch``, default: as many members as have 2²⁶ profile values) and the jet counts
(int16, M × steps per value).

DNS runs against the emulator (:func:`emulator_at_dns`): for every DNS run inside the swept range,
each quantity of the emulator interpolated to the run's value (linearly in ln p for log spacing,
in p for linear) and whether it falls inside the run's 95 % interval.

Writes ``sweep.json`` (settings, definitions, every value and DNS run, the cost), ``sweep.md``
(the tables) and ``sweep.png`` (the three quantities against p, the emulator as a line with its
95 % band, the DNS runs as points with error bars).

Resuming. Every finished value is written at once to ``values/NNN.json`` in the output folder
(its entry and the settings that decide it, the weights' SHA-256 among them); ``resume=True``
(``--resume``) reuses those whose settings are the run's and emulates the rest, so an
interrupted sweep loses at most the value it was at, and a resumed sweep's numbers are those of
an uninterrupted one. A file made with other settings is an error naming it and the first
setting that differs. The folder is removed once ``sweep.json`` is written.

``compile=True`` compiles the emulator's transformer (:class:`closures.slt.Emulator`).
"""
from __future__ import annotations

import math
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .command import _since, count_settings
from .counting import count_jets, events
from .report import JetsError, read_profiles
from .statistics import save_interval

__all__ = ["OUTPUTS", "SWEEP_DEFINITIONS", "sweep_values", "jet_rates", "segments_for",
           "nearest_run", "sweep_files", "add_arguments", "run_sweep_cli", "sweep_table",
           "emulator_at_dns", "comparison_table", "sweep_markdown", "saves_dropped"]

OUTPUTS = ("sweep.json", "sweep.md", "sweep.png")
PARTIAL = "values"               # the folder of the finished values of an unfinished sweep
MIN_SEGMENTS = 20                # bootstrap units per estimate: members × blocks ≥ this
BATCH_VALUES = 1 << 26           # profile values (members × steps × points) decoded at once
QUANTITIES = ("mean_jets", "merging_rate", "nucleation_rate")

SWEEP_DEFINITIONS = {
    "values": "p_i = LO (HI/LO)^(i/(N−1)) (spacing log) or LO + (HI − LO) i/(N−1) (linear)",
    "mean_jets": "Σ n/(M R): the jet count n of every record (hybrid jets' rule) over the M "
                 "members and R records used",
    "merging_rate": "mergings/(M R Δt): events per member per time unit, Δt the save interval; "
                    "events under hybrid jets' persistence rule (settings per entry)",
    "nucleation_rate": "nucleations/(M R Δt), as merging_rate",
    "interval_95": "percentile bootstrap over segments: each member's records cut into "
                   "⌈20/M⌉ consecutive blocks, resampled with replacement; ratio of the sums",
    "start": "all members of a value start from one window: member 0 of --init ending at its "
             "last record, or of the --dns run nearest in ln p; the first ⌈burn_in/Δt⌉ saves "
             "of every member dropped (records_dropped)",
    "seed": "value i's members: Emulator.rollout(history, steps, members, seed=seed + i, "
            "batch=batch) at its parameters",
    "emulator_there": "per DNS run inside the swept range: the emulator's quantity "
                      "interpolated to the run's value (linear in ln p for log spacing, in p "
                      "for linear) and whether it is inside the run's 95 % interval",
}


def sweep_values(lo: float, hi: float, points: int, spacing: str | None = None
                 ) -> tuple[np.ndarray, str]:
    """The ``points`` values from ``lo`` to ``hi`` and the spacing used: 'log' (geometric; the
    default when lo > 0) or 'linear'. ValueError for lo > hi or log spacing of a range that is
    not positive."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"the range must be LO:HI with finite LO ≤ HI, got {lo:g}:{hi:g}")
    spacing = ("log" if lo > 0 else "linear") if spacing is None else spacing
    if spacing not in ("log", "linear"):
        raise ValueError(f"spacing must be 'log' or 'linear', got {spacing!r}")
    if spacing == "log" and not lo > 0:
        raise ValueError(f"log spacing needs a positive range, got {lo:g}:{hi:g}")
    vals = np.geomspace(lo, hi, points) if spacing == "log" else np.linspace(lo, hi, points)
    if points > 1:
        vals[0], vals[-1] = lo, hi                       # exactly the ends, without round-off
    return vals, spacing


def segments_for(members: int) -> int:
    """Blocks per member of the bootstrap: ⌈MIN_SEGMENTS/members⌉ (module docstring)."""
    return max(1, math.ceil(MIN_SEGMENTS / int(members)))


def jet_rates(counts, t, persist: float, blocks: int | None = None, resamples: int = 2000,
              seed: int = 0) -> dict:
    """Mean jet number and merging and nucleation rates (events per member per time unit) of
    jet-count series ``counts`` (members, records) at record times ``t``, with percentile
    bootstrap 95 % intervals over segments (``blocks`` per member, default
    :func:`segments_for`; module docstring). Returns ``members``, ``records``, ``time`` (M R Δt),
    ``segments``, and ``mean_jets``, ``merging_rate``, ``nucleation_rate``: each ``value`` and
    ``interval_95`` (None with one segment), the rates with their ``events``."""
    c = np.atleast_2d(np.asarray(counts))
    t = np.asarray(t, dtype=np.float64)
    M, R = c.shape
    dt = save_interval(t, "t")
    blocks = segments_for(M) if blocks is None else min(int(blocks), R)
    edges = [b[0] for b in np.array_split(np.arange(R), blocks)]       # first record per block
    length = np.diff(np.r_[edges, R])                                   # records per block
    sums = np.add.reduceat(c.astype(np.int64), edges, axis=1)           # (M, blocks)
    found = {"merging": np.zeros((M, blocks)), "nucleation": np.zeros((M, blocks))}
    for e in events(c, t, persist):
        k = int(np.searchsorted(edges, np.searchsorted(t, e["t"]), side="right")) - 1
        found[e["kind"]][e["member"], k] += 1
    recs = np.broadcast_to(length, (M, blocks)).ravel().astype(np.float64)
    units = {"mean_jets": (sums.ravel().astype(np.float64), recs),
             "merging_rate": (found["merging"].ravel(), recs * dt),
             "nucleation_rate": (found["nucleation"].ravel(), recs * dt)}
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, recs.size, size=(int(resamples), recs.size)) if recs.size > 1 else None
    out = {"members": int(M), "records": int(R), "time": float(M * R * dt),
           "segments": int(recs.size), "blocks_per_member": int(blocks)}
    for key, (num, den) in units.items():
        ci = None
        if pick is not None:
            boot = num[pick].sum(axis=1) / den[pick].sum(axis=1)
            ci = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
        out[key] = {"value": float(num.sum() / den.sum()), "interval_95": ci}
        if key != "mean_jets":
            out[key]["events"] = int(num.sum())
    return out


def saves_dropped(burn_in: float, interval: float) -> int:
    """⌈burn_in/Δt⌉, the saves a burn-in of ``burn_in`` time units drops, to a relative 1e-9:
    a save interval stored as 9.99999999985 still drops 300 saves for 3000 time units."""
    return math.ceil(burn_in / interval * (1 - 1e-9))


def nearest_run(value: float, values) -> int:
    """The index of the value of ``values`` nearest to ``value``: in ln p when all are positive,
    else in p (the first of equally near ones)."""
    v = np.asarray(values, dtype=np.float64)
    if value > 0 and np.all(v > 0):
        return int(np.argmin(np.abs(np.log(v) - math.log(value))))
    return int(np.argmin(np.abs(v - value)))


# ------------------------------------------------------------------------------ resuming

def _value_settings(entry: dict, common: dict) -> dict:
    """What decides a value's numbers: the sweep's ``common`` settings and the entry's own."""
    keys = ("index", "value", "parameters", "seed", "start", "smooth_k", "persist")
    return {**common, **{k: entry[k] for k in keys}}


def _weights_digest(model) -> str:
    """SHA-256 of a model's weights (names and values): a value made by other weights, under
    the same path, is not reused."""
    import hashlib
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _save_value(folder: Path, entry: dict, common: dict) -> None:
    """A finished value's entry and settings, written atomically to ``folder/NNN.json``."""
    from solvers.files import json_finite, write_json
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / f"{entry['index']:03d}.json",
               json_finite({"settings": _value_settings(entry, common), "entry": entry}),
               allow_nan=False)


def _finished_values(folder: Path, entries: list, common: dict, resume: bool,
                     overwrite: bool) -> dict:
    """The entries of the values finished by an earlier run of this sweep (index → entry) when
    ``resume``; JetsError when ``folder`` holds values and neither ``resume`` nor
    ``overwrite`` is given, or when a file's settings differ from this sweep's. With
    ``overwrite`` the folder is emptied."""
    import json
    files = sorted(folder.glob("[0-9][0-9][0-9].json")) if folder.is_dir() else []
    if overwrite:
        for f in files:
            f.unlink()
        return {}
    if files and not resume:
        raise JetsError(f"--out: {folder} holds {len(files)} finished values of an unfinished "
                        f"sweep; pass --resume to continue it or --overwrite to start again")
    done = {}
    for e in entries:
        f = folder / f"{e['index']:03d}.json"
        if not f.is_file():
            continue
        try:
            saved = json.loads(f.read_text(encoding="utf-8"))
            settings, entry = saved["settings"], saved["entry"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise JetsError(f"--resume: {f} is not a value of a sweep ({err})") from None
        want = json.loads(json.dumps(_value_settings(e, common)))
        for k, v in want.items():
            if settings.get(k) != v:
                raise JetsError(f"--resume: {f} was made with {k} = {settings.get(k)!r}, this "
                                f"sweep has {v!r}; use another --out, or --overwrite")
        done[e["index"]] = entry
    return done


# ------------------------------------------------------------------------------ checks

def _load_model(model, threads, compile: bool = False):
    from closures.slt import ModelFileError, check_compiler, load_emulator
    if compile:
        try:
            check_compiler(what="--compile")
        except ValueError as e:
            raise JetsError(str(e)) from None
    try:
        em = load_emulator(model, threads=threads, compile=compile)
    except (ModelFileError, OSError, ValueError) as e:
        raise JetsError(f"--sweep: {e}") from None
    if not em.parameter_names:
        raise JetsError(f"--sweep: {model} is not conditioned on parameters (an SLT of one "
                        f"parameter value); give a model of hybrid train slt-conditioned")
    return em


def _parameters(names, param_range, fixed: dict) -> tuple[str, dict]:
    name = param_range[0]
    if name not in names:
        raise JetsError(f"--param-range: unknown parameter {name!r}: the model is conditioned "
                        f"on {', '.join(names)}")
    for k in fixed:
        if k not in names:
            raise JetsError(f"--fixed: unknown parameter {k!r}: the model is conditioned on "
                            f"{', '.join(names)}")
        if k == name:
            raise JetsError(f"--fixed {k}: it is the swept parameter (--param-range)")
    missing = [n for n in names if n != name and n not in fixed]
    if missing:
        raise JetsError(f"--fixed: the model is conditioned on {', '.join(names)}: give "
                        f"{' '.join(f'--fixed {n}=VALUE' for n in missing)}")
    return name, {n: float(fixed[n]) for n in names if n != name}


def _dns_runs(paths, names, fixed: dict, t_min) -> list[dict]:
    from closures.slt import read_parameters
    runs = []
    for path in paths:
        d = _since(read_profiles(path, "--dns"), t_min, "--dns")
        try:
            vals = read_parameters(d["path"], names)
        except (OSError, ValueError) as e:
            raise JetsError(f"--dns: {e}") from None
        for k, v in fixed.items():
            if not math.isclose(vals[k], v, rel_tol=1e-6):
                raise JetsError(f"--dns {d['path']}: {k}={vals[k]:g}, but the sweep holds "
                                f"{k}={v:g} (--fixed)")
        try:
            dt = save_interval(d["t"], f"--dns {d['path']}")
        except ValueError as e:
            raise JetsError(str(e)) from None
        runs.append({**d, "parameters": vals, "interval": dt})
    return runs


def _start(em, path, role: str) -> dict:
    from hybrid.emulate import check_source, read_history
    try:
        src = read_history(path, em.window)
        check_source(src, em.points, em.interval, role, "emulates")
    except ValueError as e:
        raise JetsError(str(e).replace("--init", role)) from None
    return src


# ------------------------------------------------------------------------------ the sweep

def sweep_files(model, param_range: tuple[str, float, float], out, *, fixed: dict | None = None,
                points: int = 50, spacing: str | None = None, members: int = 1000,
                steps: int, init=None, dns=(), t_min: float | None = None,
                burn_in: float = 0.0, smooth_k: float | None = None, prominence: float = 0.1,
                persist: float | None = None, batch: int | None = None,
                threads: int | None = None, bootstrap: int = 2000, seed: int = 0,
                overwrite: bool = False, resume: bool = False, compile: bool = False,
                progress: bool = False, command: str | None = None) -> dict:
    """``hybrid jets --sweep`` from Python (module docstring): the conditioned emulator
    ``model`` (a shipped name or a path) at ``points`` values of ``param_range`` = (name, lo,
    hi), its other parameters at ``fixed``, ``members`` members of ``steps`` saves each, from
    ``init`` or the nearest of the ``dns`` runs (whose statistics are computed too, from
    ``t_min`` on). Every input and the output folder are checked first (JetsError naming the
    argument, nothing written); then writes :data:`OUTPUTS` into ``out`` and returns the report.
    ``resume``: reuse the finished values of an interrupted sweep in ``out``; ``compile``:
    compile the emulator's transformer (module docstring); ``progress``: a line per value on
    stderr."""
    from solvers import validate
    from solvers.files import check_output_folder, json_finite, write_json

    from .. import plots
    if out is None:
        raise JetsError("--out: give the folder of the sweep's files")
    checks = (("points", points, validate.integer, dict(at_least=1)),
              ("members", members, validate.integer, dict(at_least=1)),
              ("steps", steps, validate.integer, dict(at_least=2)),
              ("batch", batch, validate.integer, dict(at_least=1, allow_none=True)),
              ("bootstrap", bootstrap, validate.integer, dict(at_least=1)),
              ("seed", seed, validate.integer, dict(at_least=0)),
              ("burn-in", burn_in, validate.number, dict(at_least=0)),
              ("prominence", prominence, validate.number, dict(at_least=0)),
              ("smooth-k", smooth_k, validate.number, dict(above=0, allow_none=True)),
              ("persist", persist, validate.number, dict(above=0, allow_none=True)))
    for name, v, check, kw in checks:
        try:
            check(f"--{name}", v, **kw)
        except ValueError as e:
            raise JetsError(str(e)) from None
    try:
        values, spacing = sweep_values(param_range[1], param_range[2], points, spacing)
    except ValueError as e:
        raise JetsError(f"--param-range {param_range[0]}: {e}") from None
    if resume and overwrite:
        raise JetsError("--resume continues the sweep in --out, --overwrite starts it again: "
                        "give one of them")
    em = _load_model(model, threads, compile)
    name, fixed = _parameters(em.parameter_names, param_range, dict(fixed or {}))
    dns_runs = _dns_runs(list(dns), em.parameter_names, fixed, t_min)
    if init is None and not dns_runs:
        raise JetsError("--init: give the run the emulated members start from (or --dns runs, "
                        "the nearest of which each value starts from)")
    sources = {}                                     # path → the start window read from it
    if init is not None:
        src = _start(em, init, "--init")
        sources[str(src["path"])] = src
        start_of = [str(src["path"])] * len(values)
    else:
        dns_values = [r["parameters"][name] for r in dns_runs]
        start_of = [str(dns_runs[nearest_run(v, dns_values)]["path"]) for v in values]
        for p in dict.fromkeys(start_of):
            sources[p] = _start(em, p, "--dns")
    interval = next(iter(sources.values()))["interval"]
    box = next(iter(sources.values()))["L"]
    for d in [*sources.values(), *dns_runs]:
        if not math.isclose(d["L"], box, rel_tol=1e-9):
            raise JetsError(f"{d['path']} (L={d['L']:g}) is not the box of the start "
                            f"(L={box:g})")
    for d in dns_runs:
        if abs(d["interval"] - interval) > 0.01 * interval:
            raise JetsError(f"--dns {d['path']} saves every {d['interval']:g} time units; the "
                            f"emulator steps {interval:g}")
    drop = saves_dropped(burn_in, interval)
    if steps - drop < 2:
        raise JetsError(f"--burn-in {burn_in:g} leaves {steps - drop} of the {steps} saves "
                        f"(every {interval:g}); at least two are needed")
    batch = max(1, min(members, BATCH_VALUES // (steps * em.points))) if batch is None else batch
    entries = []
    for i, v in enumerate(values):
        params = {**fixed, name: float(v)}
        params = {n: params[n] for n in em.parameter_names}
        config = {**(sources[start_of[i]]["config"] or {}), **params}
        k_s, t_p = count_settings(smooth_k, persist, config, f"the start {start_of[i]}")
        entries.append({"index": i, "value": float(v), "parameters": params,
                        "seed": seed + i, "start": start_of[i], "smooth_k": k_s, "persist": t_p})
    dns_entries = []
    for d in dns_runs:
        k_s, t_p = count_settings(smooth_k, persist, d["config"], f"--dns {d['path']}")
        dns_entries.append({"run": str(d["path"]), "value": d["parameters"][name],
                            "parameters": d["parameters"], "smooth_k": k_s, "persist": t_p})
    try:
        out = check_output_folder(out, overwrite, OUTPUTS, overwrite_hint="--overwrite",
                                  what="--out")
    except (TypeError, FileExistsError, NotADirectoryError, PermissionError) as e:
        raise JetsError(str(e)) from None
    common = {"model": str(model), "weights": _weights_digest(em.model), "members": members,
              "steps": steps, "batch": batch,
              "records_dropped": drop, "prominence": prominence, "bootstrap": bootstrap,
              "compiled": bool(compile)}
    done = _finished_values(out / PARTIAL, entries, common, resume, overwrite)

    # --- the emulated values
    started = time.perf_counter()
    cost = {"emulation_s": 0.0, "counting_s": 0.0, "values_resumed": len(done)}
    for e in entries:
        if e["index"] in done:
            e.update(done[e["index"]])
            cost["emulation_s"] += e["wall_s"]["emulation"]
            cost["counting_s"] += e["wall_s"]["counting"]
            continue
        src = sources[e["start"]]
        t = src["t0"] + interval * np.arange(1, steps + 1)
        counts = np.empty((members, steps), dtype=np.int16)
        t0 = time.perf_counter()
        spent = 0.0
        for b0, U in em.rollout_batches(src["history"], steps, members, seed=e["seed"],
                                        batch=batch, params=e["parameters"]):
            t1 = time.perf_counter()
            counts[b0:b0 + U.shape[0]] = count_jets(U, box, e["smooth_k"], prominence)
            spent += time.perf_counter() - t1
        wall = time.perf_counter() - t0
        e.update(jet_rates(counts[:, drop:], t[drop:], e["persist"], resamples=bootstrap,
                           seed=seed),
                 start_time=src["t0"], wall_s={"emulation": wall - spent, "counting": spent})
        cost["emulation_s"] += wall - spent
        cost["counting_s"] += spent
        _save_value(out / PARTIAL, e, common)
        if progress:
            print(f"hybrid jets --sweep: {e['index'] + 1}/{len(entries)} {name}={e['value']:.4g}:"
                  f" {e['mean_jets']['value']:.3g} jets, {e['merging_rate']['events']} mergings, "
                  f"{e['nucleation_rate']['events']} nucleations ({wall:.1f} s)", file=sys.stderr)
    # --- the DNS runs
    for e, d in zip(dns_entries, dns_runs):
        counts = count_jets(d["U"], d["L"], e["smooth_k"], prominence)
        e.update(jet_rates(counts, d["t"], e["persist"], resamples=bootstrap, seed=seed),
                 time_span=[float(d["t"][0]), float(d["t"][-1])])
    wall = time.perf_counter() - started
    profiles = len(entries) * members * steps
    cost.update(wall_s=wall, members=len(entries) * members,
                s_per_member_per_time_unit=cost["emulation_s"] / (profiles * interval))
    rep = {"command": command,
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "model": str(model), "parameter": name, "range": [float(values[0]), float(values[-1])],
           "spacing": spacing, "fixed": fixed, "points": len(entries), "members": members,
           "steps": steps, "interval": interval, "burn_in": burn_in, "records_dropped": drop,
           "batch": batch, "compiled": bool(compile), "seed": seed, "prominence": prominence,
           "bootstrap": bootstrap,
           "t_min": t_min, "definitions": SWEEP_DEFINITIONS, "values": entries,
           "dns": dns_entries, "cost": cost}
    emulator_at_dns(rep)
    rep = json_finite(rep)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", rep, allow_nan=False)
    (out / "sweep.md").write_text(sweep_markdown(rep), encoding="utf-8")
    plots.plot_jet_sweep(rep, out / "sweep.png")
    shutil.rmtree(out / PARTIAL, ignore_errors=True)
    rep["out"] = str(out)
    rep["table"] = sweep_table(rep)
    return rep


def sweep_markdown(rep: dict) -> str:
    """``sweep.md``: the settings, :func:`sweep_table` and :func:`comparison_table`."""
    comparison = comparison_table(rep)
    return (f"# Jets across {rep['parameter']}: {rep['model']}\n\nCommand: `{rep['command']}`  \n"
            f"Date: {rep['date']}  \n{rep['members']} members × {rep['steps']} saves (every "
            f"{rep['interval']:g}) per value, the first {rep['records_dropped']} dropped; other "
            f"parameters {_params_text(rep['fixed']) or 'none'}; rates per member per 10³ time "
            f"units, 95 % bootstrap intervals.\n\n{sweep_table(rep)}\n"
            + (f"\nThe emulator at the DNS runs' values (interpolated), inside their 95 % "
               f"intervals?\n\n{comparison}\n" if comparison else ""))


def emulator_at_dns(rep: dict) -> dict:
    """Each DNS entry of a sweep report gets ``emulator_there``: per quantity, the emulated
    values interpolated to the run's value (in ln p for ``spacing`` log, else in p) and whether
    that lies inside the run's 95 % interval; None for a run outside the swept range. Returns
    the counts {quantity: [inside, judged]} (also ``rep['emulator_inside_dns_95']``)."""
    xs = np.array([e["value"] for e in rep["values"]], dtype=float)
    lo, hi = rep["range"]
    log = rep["spacing"] == "log"
    curves = {q: np.array([e[q]["value"] for e in rep["values"]], dtype=float)
              for q in QUANTITIES}
    counts = {q: [0, 0] for q in QUANTITIES}
    for d in rep["dns"]:
        v = d["value"]
        if not lo - 1e-9 * abs(lo) <= v <= hi + 1e-9 * abs(hi):
            d["emulator_there"] = None
            continue
        there = {}
        for q in QUANTITIES:
            x = float(np.interp(np.log(v), np.log(xs), curves[q]) if log
                      else np.interp(v, xs, curves[q]))
            ci = d[q].get("interval_95")
            inside = None if ci is None else bool(ci[0] <= x <= ci[1])
            there[q] = {"value": x, "inside_dns_95": inside}
            if inside is not None:
                counts[q][0] += inside
                counts[q][1] += 1
        d["emulator_there"] = there
    rep["emulator_inside_dns_95"] = counts
    return counts


def comparison_table(rep: dict) -> str:
    """The markdown table of :func:`emulator_at_dns`: per DNS run inside the range, each
    quantity's DNS value [95 %] and the emulator's there, with a count line; '' when no run
    is inside."""
    rows = [d for d in rep["dns"] if d.get("emulator_there")]
    if not rows:
        return ""
    lines = [f"| DNS run | {rep['parameter']} | mean jets DNS / emulator | mergings / 10³ DNS / "
             "emulator | nucleations / 10³ DNS / emulator |", "|---|---|---|---|---|"]
    for d in rows:
        cells = []
        for q, scale in zip(QUANTITIES, (1.0, 1e3, 1e3)):
            th = d["emulator_there"][q]
            mark = {True: " (in)", False: " (out)", None: ""}[th["inside_dns_95"]]
            cells.append(f"{_cell(d[q], scale)} / {th['value'] * scale:.3g}{mark}")
        lines.append(f"| {_run_name(d['run'])} | {d['value']:.4g} | " + " | ".join(cells) + " |")
    n = rep["emulator_inside_dns_95"]
    lines.append("\nInside the DNS's 95 % interval: " + ", ".join(
        f"{q.replace('_', ' ')} {n[q][0]} of {n[q][1]}" for q in QUANTITIES) + ".")
    return "\n".join(lines)


def _run_name(path: str) -> str:
    from .report import FILES
    p = Path(path)
    return p.parent.name if p.name in FILES else p.stem


def _params_text(params: dict) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in params.items())


def _cell(q: dict, scale: float = 1.0) -> str:
    ci = q.get("interval_95")
    text = f"{q['value'] * scale:.3g}"
    return text if ci is None else f"{text} [{ci[0] * scale:.3g}, {ci[1] * scale:.3g}]"


def sweep_table(rep: dict) -> str:
    """The markdown table of a sweep report: per emulated value and per DNS run, the mean jet
    number and the merging and nucleation rates (per member per 10³ time units) with their
    95 % intervals and event counts."""
    name = rep["parameter"]
    lines = [f"| | {name} | mean jets | mergings / 10³ | nucleations / 10³ | events (m / n) |",
             "|---|---|---|---|---|---|"]
    for role, rows in (("emulator", rep["values"]), ("DNS", rep["dns"])):
        for r in rows:
            label = "emulator" if role == "emulator" else f"DNS {_run_name(r['run'])}"
            lines.append(f"| {label} | {r['value']:.4g} | {_cell(r['mean_jets'])} | "
                         f"{_cell(r['merging_rate'], 1e3)} | {_cell(r['nucleation_rate'], 1e3)} "
                         f"| {r['merging_rate']['events']} / {r['nucleation_rate']['events']} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ command line

def parameter_range(text: str) -> tuple[str, float, float]:
    """``--param-range NAME=LO:HI``: (NAME, LO, HI)."""
    import argparse
    name, sep, rng = text.partition("=")
    lo, colon, hi = rng.partition(":")
    name = name.strip()
    try:
        if not sep or not colon or not name.isidentifier():
            raise ValueError
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=LO:HI with finite LO ≤ HI (e.g. "
                                         f"beta=2:32), got {text!r}") from None
    return name, lo, hi


def add_arguments(p) -> None:
    """The arguments of ``hybrid jets --sweep`` (module docstring)."""
    from ..cli.arguments import nonnegative_float, parameter_value, positive_int
    g = p.add_argument_group(
        "sweep (hybrid jets --sweep MODEL --param-range NAME=LO:HI ...; RUN REFERENCE, --bins, "
        "--margin, --ensemble and --truth-member do not apply)")
    g.add_argument("--sweep", default=None, metavar="MODEL",
                   help="a conditioned emulator (hybrid train slt-conditioned): run it across "
                        "--param-range and write the mean jet number and the merging and "
                        "nucleation rates against the parameter")
    g.add_argument("--param-range", type=parameter_range, default=None, metavar="NAME=LO:HI",
                   help="the swept parameter and its range, e.g. beta=2:32")
    g.add_argument("--fixed", type=parameter_value, action="append", default=[],
                   metavar="NAME=VALUE",
                   help="the value of another parameter of the model, e.g. mu=4e-3 "
                        "(repeatable; every parameter not swept needs one)")
    g.add_argument("--points", type=positive_int, default=50,
                   help="parameter values (default 50)")
    g.add_argument("--spacing", choices=("log", "linear"), default=None,
                   help="of the values (default: log for a positive range, else linear)")
    g.add_argument("--members", type=positive_int, default=1000,
                   help="emulated members per value (default 1000)")
    g.add_argument("--steps", type=positive_int, default=None,
                   help="saves per member (required with --sweep)")
    g.add_argument("--init", type=Path, default=None, metavar="RUN",
                   help="the run whose member 0's last window every member starts from "
                        "(default: the --dns run nearest to the value, in ln p)")
    g.add_argument("--dns", type=Path, nargs="+", default=[], metavar="RUN",
                   help="DNS runs at some of the values (the parameters read from their files; "
                        "the fixed ones must match): their points, with --t-min")
    g.add_argument("--burn-in", type=nonnegative_float, default=0.0, metavar="T",
                   help="leave the first T time units of every member out (default 0)")
    g.add_argument("--batch", type=positive_int, default=None,
                   help="members stepped and decoded together (default: 2^26 profile values)")
    g.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted sweep in --out, reusing its finished values")
    g.add_argument("--compile", action="store_true",
                   help="compile the emulator's transformer with torch.compile (needs a C++ "
                        "compiler on the CPU)")


def run_sweep_cli(args) -> int:
    """The handler of ``hybrid jets --sweep``: 0 on success; bad input raises UsageError (exit
    2, nothing written)."""
    from ..cli.arguments import UsageError
    try:
        rep = _sweep_from(args)
    except JetsError as e:
        raise UsageError(str(e)) from None
    print(rep["table"])
    print(f"hybrid jets --sweep: {rep['points']} values × {rep['members']} members in "
          f"{rep['cost']['wall_s']:.1f} s → {rep['out']}", file=sys.stderr)
    return 0


def _sweep_from(args) -> dict:
    from ..cli.arguments import UsageError, parameters
    if args.run is not None or args.reference is not None:
        raise JetsError("--sweep takes no RUN REFERENCE (the runs to compare with are --dns)")
    if args.param_range is None:
        raise JetsError("--param-range: give the swept parameter and its range (e.g. "
                        "--param-range beta=2:32)")
    if args.steps is None:
        raise JetsError("--steps: give the saves per member")
    try:
        fixed = parameters(args.fixed, "--fixed") or {}
    except UsageError as e:
        raise JetsError(str(e)) from None
    return sweep_files(args.sweep, args.param_range, args.out, fixed=fixed, points=args.points,
                       spacing=args.spacing, members=args.members, steps=args.steps,
                       init=args.init, dns=args.dns, t_min=args.t_min, burn_in=args.burn_in,
                       smooth_k=args.smooth_k, prominence=args.prominence,
                       persist=args.persist, batch=args.batch, threads=args.threads,
                       bootstrap=args.bootstrap, seed=args.seed, overwrite=args.overwrite,
                       resume=args.resume, compile=args.compile, progress=True,
                       command=" ".join(getattr(args, "argv", ["hybrid", "jets"])))
