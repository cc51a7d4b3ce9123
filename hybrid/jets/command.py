"""``hybrid jets RUN REFERENCE``: its arguments, its handler and the files it writes (``hybrid
jets --sweep`` is :mod:`hybrid.jets.sweep`, joined to this parser by :mod:`hybrid.cli.jets`)."""
from __future__ import annotations

import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .report import JetsError, jet_statistics, markdown_table, read_profiles

__all__ = ["configure_parser", "run_cli", "OUTPUTS", "DEFINITIONS", "jets_files"]

OUTPUTS = ("jets.json", "jets.md", "hovmoller.png", "pdfs.png", "spectra.png", "jet-numbers.png",
           "ensemble.png")

DEFINITIONS = {
    "U": "zonal-mean zonal velocity U(y, t) (zonal_mean_u)",
    "dUdy": "∂U/∂y, spectral derivative in the periodic box (Nyquist mode dropped)",
    "dUdt": "∂U/∂t, forward difference (U(t_i+1) − U(t_i))/(t_i+1 − t_i) between consecutive "
            "records, one save interval apart (settings.save_interval, the median interval; "
            "every interval within 10 % of it)",
    "pdfs": "bin probabilities on settings.bins equal-width bins over the reference's range "
            "[min, max] widened by settings.margin × (max − min) on each side; values outside go "
            "to the end bins; pooled over members, records and y",
    "hellinger": "H = sqrt(½ Σ_b (√p_b − √q_b)²) in [0, 1], run p against reference q",
    "floor": "H between two halves of the reference on the same bins: the first ⌊M/2⌋ members "
             "against the last ⌊M/2⌋, or with one member the first and last ⌊T/2⌋ records "
             "(pdfs.floor_from); a distance below it cannot be seen. Each half holds half the "
             "reference, so the floor is that of samples of this size",
    "spectrum": "⟨|Û_m|²⟩ over members and records, Û_m = rfft(U)/n_y the coefficient of mode m "
                "(wavenumber 2πm/L)",
    "energy": "½⟨U²⟩_y per record, member mean; its time mean with a 95 % interval from 20 batch "
              "means (t quantile)",
    "jet count": "U smoothed spectrally by exp(−m²/(2 k_s²)) (settings.smooth_k, mode number m) "
                 "on a fixed grid of settings.smooth_points points; periodic maxima whose "
                 "prominence is at least settings.prominence × the rms of the smoothed profile "
                 "(1D persistence rule); jets are those with U > 0",
    "episodes": "runs of constant jet count per member; a run shorter than settings.persist time "
                "units is absorbed into the episode before it; the first run is kept; an "
                "unconfirmed last run is absorbed",
    "events": "start of an episode with a new count: merging (drop) or nucleation (rise); t is "
              "the first record of the new episode",
    "fraction.records": "fraction of records (all members) with each jet count, raw",
    "fraction.episodes": "fraction of the episodes' time with each count, with a percentile "
                         "bootstrap 95 % interval over episodes (settings.bootstrap_resamples, "
                         "settings.seed)",
    "residence_time": "durations of the episodes that start and end inside the record (first and "
                      "last per member left out), mean with a percentile bootstrap 95 % interval",
    "ensemble": "run members against reference member truth_member at the common times, lead = "
                "t − start_time; fair CRPS = error − spread, error = mean_i |X_i − y|, spread = "
                "½ mean_{i≠j} |X_i − X_j|, means over y; spread = sqrt(mean_y var X) (ddof 1), "
                "error_ensemble_mean = sqrt(mean_y (⟨X⟩ − y)²), ratio = sqrt((m+1)/m) spread/"
                "error; rank histogram of the truth at leads > 0, ties broken at random; p from "
                "χ² with m degrees of freedom assuming independent ranks",
    "time_to_event": "when the run's members agree at its first record: per member, the time "
                     "from that record to its first merging, nucleation or either event within "
                     "the run's span (the reference: its records in that span); members without "
                     "an event are counted (with_event of members) and left out of the quantiles "
                     "and of the two-sample Kolmogorov–Smirnov test (asymptotic p)",
}


def configure_parser(p) -> None:
    """Arguments of ``hybrid jets``."""
    from ..cli.arguments import nonnegative_float, nonnegative_int, number, positive_float
    from ..cli.arguments import positive_int
    p.add_argument("run", type=Path, metavar="RUN", nargs="?", default=None,
                   help="the run: a run folder (trajectory.nc or emulation.nc) or a file with "
                        "zonal_mean_u (member, time, y)")
    p.add_argument("reference", type=Path, metavar="REFERENCE", nargs="?", default=None,
                   help="the reference (DNS): same box and save interval; its range fixes the "
                        "PDF bins")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: RUN's folder /jets)")
    p.add_argument("--t-min", type=number, default=None, metavar="T",
                   help="use records at t ≥ T only, in both (e.g. to drop a spin-up)")
    p.add_argument("--bins", type=positive_int, default=100,
                   help="PDF bins over the reference's range widened by --margin")
    p.add_argument("--margin", type=nonnegative_float, default=0.1,
                   help="widen the reference's range by this fraction of it on each side")
    p.add_argument("--smooth-k", type=positive_float, default=None, metavar="K",
                   help="jet count: Gaussian smoothing wavenumber in units of 2π/L (default: "
                        "half the reference's forcing wavenumber kf)")
    p.add_argument("--prominence", type=nonnegative_float, default=0.1,
                   help="jet count: least peak prominence, as a fraction of the rms of the "
                        "smoothed profile")
    p.add_argument("--persist", type=positive_float, default=None, metavar="T",
                   help="events: a new jet count must hold this long (default 1/(2μ) with the "
                        "reference's drag μ)")
    p.add_argument("--ensemble", choices=("auto", "on", "off"), default="auto",
                   help="ensemble scores (CRPS, spread–error, rank histogram); auto: when the "
                        "run's members agree at the first common time")
    p.add_argument("--truth-member", type=nonnegative_int, default=0,
                   help="the reference member the ensemble is scored against")
    p.add_argument("--bootstrap", type=positive_int, default=2000,
                   help="bootstrap resamples of the 95 %% intervals")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the bootstrap and the rank ties")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier call in --out")


def _since(d: dict, t_min, role: str) -> dict:
    if t_min is None:
        return d
    dt = float(np.min(np.diff(d["t"]))) if d["t"].size > 1 else 0.0
    keep = d["t"] >= t_min - 1e-6 * abs(dt)           # record times carry round-off
    if keep.sum() < 2:
        raise JetsError(f"--t-min {t_min:g} leaves {int(keep.sum())} record(s) of {role} "
                        f"{d['path']} (its records span t = {d['t'][0]:g} … {d['t'][-1]:g})")
    return dict(d, U=d["U"][:, keep], t=d["t"][keep])


def count_settings(smooth_k, persist, config: dict, where: str) -> tuple[float, float]:
    """(k_s, persist) of the jet counts and events: the given values, else from the run's
    ``config`` (``where`` names it in the message), k_s = kf/2 and persist = 1/(2μ); JetsError
    naming the flag when the configuration lacks a positive kf or μ."""
    def setting(value, key: str, make, flag: str) -> float:
        if value is not None:
            return float(value)
        v = config.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise JetsError(f"{flag}: {where} stores no {key} > 0 in its configuration; give "
                            f"{flag}")
        return make(float(v))
    return (setting(smooth_k, "kf", lambda kf: kf / 2, "--smooth-k"),
            setting(persist, "mu", lambda mu: 0.5 / mu, "--persist"))


def jets_files(run, reference, out, *, t_min=None, bins=100, margin=0.1, smooth_k=None,
               prominence=0.1, persist=None, ensemble="auto", truth_member=0, bootstrap=2000,
               seed=0, overwrite=False, command=None) -> dict:
    """``hybrid jets`` from Python: reads RUN and REFERENCE (:func:`read_profiles`), checks every
    input and the output folder (JetsError naming the argument, nothing written), computes
    :func:`jet_statistics` and writes :data:`OUTPUTS` into ``out``. Returns the report."""
    from solvers import validate
    from solvers.files import check_output_folder, json_finite, write_json

    from .. import plots
    for name, v, kw in (("bins", bins, dict(at_least=1)), ("bootstrap", bootstrap,
                                                            dict(at_least=1)),
                        ("truth_member", truth_member, dict(at_least=0)),
                        ("seed", seed, dict(at_least=0))):
        try:
            validate.integer(name, v, **kw)
        except ValueError as e:
            raise JetsError(str(e)) from None
    if ensemble not in ("auto", "on", "off"):
        raise JetsError(f"ensemble must be 'auto', 'on' or 'off', got {ensemble!r}")
    r = _since(read_profiles(run, "RUN"), t_min, "RUN")
    f = _since(read_profiles(reference, "REFERENCE"), t_min, "REFERENCE")
    if not math.isclose(r["L"], f["L"], rel_tol=1e-9):
        raise JetsError(f"RUN {r['path']} (L={r['L']:g}) and REFERENCE {f['path']} "
                        f"(L={f['L']:g}) are not the same box")
    from .statistics import SAME_RTOL, save_interval
    dts = []
    for role, d in (("RUN", r), ("REFERENCE", f)):
        try:
            dts.append(save_interval(d["t"], f"{role} {d['path']}"))
        except ValueError as e:
            raise JetsError(str(e)) from None
    if abs(dts[0] - dts[1]) > SAME_RTOL * dts[1]:
        raise JetsError(f"RUN {r['path']} saves every {dts[0]:g} time units and REFERENCE "
                        f"{f['path']} every {dts[1]:g}: ∂tU and the events need one interval")
    if truth_member >= f["U"].shape[0]:
        raise JetsError(f"--truth-member {truth_member}: REFERENCE {f['path']} has "
                        f"{f['U'].shape[0]} member(s)")
    k_s, persist = count_settings(smooth_k, persist, f["config"], f"the reference {f['path']}")
    if out is None:
        out = Path(run).expanduser() / "jets" if Path(run).is_dir() else r["path"].parent / "jets"
    try:
        out = check_output_folder(out, overwrite, OUTPUTS, overwrite_hint="--overwrite",
                                  what="--out")
    except (TypeError, FileExistsError, NotADirectoryError, PermissionError) as e:
        raise JetsError(str(e)) from None

    rep = jet_statistics(r["U"], r["t"], f["U"], f["t"], f["L"], k_s=k_s, persist=persist,
                         prominence=prominence, bins=bins, margin=margin, resamples=bootstrap,
                         seed=seed, truth_member=truth_member,
                         ensemble={"auto": None, "on": True, "off": False}[ensemble])
    series = rep.pop("_series")
    emulator = r["config"].get("emulator")
    run_params = emulator.get("parameters") if isinstance(emulator, dict) else None
    rep = {"command": command, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "run": str(r["path"]), "reference": str(f["path"]), "run_parameters": run_params,
           "definitions": DEFINITIONS, **rep}
    out.mkdir(parents=True, exist_ok=True)
    for stale in OUTPUTS:                     # an earlier call's files, replaced as a set
        if overwrite and (out / stale).exists():
            (out / stale).unlink()
    panels = [(f"{role} {d['path'].name}, member 0", d["t"], d["y"], d["U"][0],
               series[key]["counts"][0])
              for role, key, d in (("reference", "reference", f), ("run", "run", r))]
    plots.plot_jet_hovmoller(panels, out / "hovmoller.png")
    plots.plot_jet_pdfs(rep["pdfs"], out / "pdfs.png")
    plots.plot_jet_spectra(rep["spectrum"], series, out / "spectra.png")
    plots.plot_jet_numbers({k: rep["jets"][k] for k in ("run", "reference")},
                           out / "jet-numbers.png")
    if rep["ensemble"] is not None:
        plots.plot_jet_ensemble(rep["ensemble"], out / "ensemble.png")
    table = markdown_table(rep)
    rep = json_finite(rep)
    write_json(out / "jets.json", rep, allow_nan=False)
    emulated = (f"Run emulated at {', '.join(f'{k} = {v:g}' for k, v in run_params.items())}."
                f"  \n" if run_params else "")
    (out / "jets.md").write_text(f"# Jets: {r['path']} against {f['path']}\n\n"
                                 f"Command: `{command}`  \nDate: {rep['date']}  \n{emulated}"
                                 f"Bins: {bins} over the reference's range ± {margin:g} of it; "
                                 f"jet count k_s = {k_s:g}, prominence {prominence:g}, "
                                 f"persistence {persist:g} time units.\n\n{table}\n",
                                 encoding="utf-8")
    rep["out"] = str(out)
    rep["table"] = table
    return rep


def run_cli(args) -> int:
    """Handler of ``hybrid jets``: 0 on success, 2 on bad input (nothing written)."""
    from ..cli.arguments import UsageError
    try:
        if args.run is None or args.reference is None:
            raise JetsError("give RUN and REFERENCE (or --sweep MODEL)")
        rep = jets_files(args.run, args.reference, args.out, t_min=args.t_min, bins=args.bins,
                         margin=args.margin, smooth_k=args.smooth_k, prominence=args.prominence,
                         persist=args.persist, ensemble=args.ensemble,
                         truth_member=args.truth_member, bootstrap=args.bootstrap,
                         seed=args.seed, overwrite=args.overwrite,
                         command=" ".join(getattr(args, "argv", ["hybrid", "jets"])))
    except JetsError as e:
        raise UsageError(str(e)) from None
    print(rep["table"])
    print(f"hybrid jets: wrote {', '.join(n for n in OUTPUTS if (Path(rep['out']) / n).exists())}"
          f" to {rep['out']}", file=sys.stderr)
    return 0
