"""Ensembles around one run: the latent diffusion ensemble generator against DNS ensembles and
the SLT, on the test starts of ``betaplane-small``.

    python -m benchmarks.eldm_ensembles --dns data/betaplane-small/ensembles \\
        --model runs/train/eldm-window --model runs/train/eldm-autoregressive \\
        --slt slt-betaplane-small --out benchmarks/results/ensemble-ldm

Test starts: the short-range DNS ensembles of :mod:`benchmarks.slt_ensembles` (16 starts of the
seed-13 run, 16 members with new forcing noise, 50 saves); their member 0 is the conditioning
run, members 1 … 15 the DNS ensemble, and the seed-13 run itself the truth (a draw of the same
law that no model saw). Each generator makes ``--members`` (15) members around the conditioning
run; the SLT makes as many from the L profiles before the start. Per model, pooled over starts:

* CRPS per lead against the truth and its ratio to the DNS ensemble's
  (:func:`hybrid.jets.pool_scores`);
* ensemble spread per lead and its ratio to the DNS ensemble's; rank histogram of the truth,
  and whether it is flat within sampling (:func:`hybrid.jets.rank_flatness`: the excess of its
  two end bins and the mean rank, with 95 % intervals from the starts resampled);
* statistics of the members against the DNS members: Hellinger distances of the PDFs of U, ∂yU,
  ∂tU (bins from the DNS members), mergings plus nucleations per member (mean, bootstrap 95 %
  interval), the autocorrelation of U − ⟨U⟩_members at lags 1, 2, 5, 10 saves (temporal), the
  time-mean spectrum of U (relative error per mode, mean over modes 1 … 10: spatial);
* where the ensemble's mean lies against the conditioning run and the DNS ensemble's mean
  (:func:`centring`; for the DNS ensemble itself 1 and 0 by construction);
* the cost per member per time unit.

A model given as ``NAME@G`` runs with residual gain G, ``NAME@G@steps=S`` (or ``NAME@steps=S``)
with S sampler steps per block, ``NAME@sampler=dpm2m`` with another sampler
(``EnsembleGenerator.generate``).
``--model dns-pairs[@G]`` is no model but the law a generator of residuals around one run aims
at: members U_c + G·(U_i − U_j), with (i, j) random pairs of distinct DNS members of the same
start (:func:`pair_residual_members`). A generator that learns r = z − z_c exactly but cannot
tell from the conditioning run where the ensemble mean lies makes members like these (G = 1);
their spread is √2 times a DNS ensemble's for Gaussian members, and G = 1/√2 matches the
spread at the price of calibration.
``NAME@centre=dns`` (an oracle, not a generator) moves each generated ensemble so that its mean
is the DNS ensemble's mean (:func:`recentre`): what the generator's spread would score if it knew
where the ensemble mean lies. ``NAME@centre=MEAN`` centres the members on the ensemble mean
estimated from the conditioning run by the model MEAN (a name or path:
:class:`closures.ensemble_ldm.EnsembleMean`), ``NAME@centre=none`` not at all (the default is
the generator card's). ``--model MEAN`` alone scores that estimate as a one-member forecast
(its CRPS is its mean absolute error).
``--validation START ...`` scores on validation starts instead (folders of ``hybrid dns --init
--at --members``, e.g. ``data/betaplane-small/eldm/val/start-*``): member 0 conditions, the last
member is the truth and the others are the DNS ensemble; no SLT there (it needs the profiles
before the start). Choices are made this way, never on the test starts.

Writes ``eldm_ensembles.json`` and ``eldm_ensembles.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from hybrid.jets import (count_jets, events, pdf_distances, pool_scores, read_profiles,
                         spectrum)
from hybrid.jets.counting import bootstrap_mean
from hybrid.jets.scores import ensemble_scores
from solvers.files import write_json

from .provenance import run_header
from .slt_ensembles import (K_S, PERSIST, PROMINENCE, _history, _lists, _truth,
                            flatness_interval)

LAGS = (1, 2, 5, 10)


def autocorrelation(X: np.ndarray, lags=LAGS) -> list[float]:
    """Autocorrelation of the anomaly U − ⟨U⟩ (mean over members, per time and y) of X
    (member, time, y) at the given lags, pooled over members and y."""
    a = X - X.mean(axis=0, keepdims=True)
    out = []
    for k in lags:
        num = np.sum(a[:, k:] * a[:, :-k])
        den = np.sqrt(np.sum(a[:, k:] ** 2) * np.sum(a[:, :-k] ** 2))
        out.append(float(num / den))
    return out


def events_per_member(X: np.ndarray, t: np.ndarray, L: float) -> np.ndarray:
    """Mergings plus nucleations of each member of X (member, time, y)."""
    ev = events(count_jets(X, L, K_S, PROMINENCE), t, PERSIST)
    n = np.zeros(X.shape[0])
    for e in ev:
        n[e["member"]] += 1
    return n


PAIRS = "dns-pairs"


def centring(ensembles: list, conditioning: list, dns: list) -> dict:
    """Where an ensemble's mean x̄ lies against the DNS ensemble's mean m and the conditioning
    run x_c, summed over starts, records t ≥ 1 and points. ``pull``: −Σ (x̄ − x_c)·(x_c − m) /
    Σ (x_c − m)², the share of the conditioning run's deviation from m taken away along that
    deviation (0: centred on x_c, like the pair residuals; 1: none of it left). ``distance``:
    √(Σ |x̄ − m|² / Σ |x_c − m|²), how far x̄ is from m in units of x_c's distance (about
    √(2/16) ≈ 0.35 for 15 members drawn around m, with m the mean of 15 others; 1.06 for the
    pair residuals). ``ensembles`` and ``dns``: one (members, time, y) array per start;
    ``conditioning``: one (time, y) array per start."""
    num = den = far = 0.0
    for X, xc, D in zip(ensembles, conditioning, dns):
        d_c = xc[1:] - D[:, 1:].mean(axis=0)
        d_x = X[:, 1:].mean(axis=0) - xc[1:]
        num -= float(np.sum(d_x * d_c))
        den += float(np.sum(d_c * d_c))
        far += float(np.sum((d_x + d_c) ** 2))
    return {"pull": num / den, "distance": math.sqrt(far / den)}


def pair_residual_members(U: np.ndarray, members: int, gain: float,
                          rng: np.random.Generator) -> np.ndarray:
    """U (DNS members, time, y) of one start, member 0 the conditioning run → ``members``
    members U_0 + gain·(U_i − U_j), each with its own random pair i ≠ j of members 1 …
    ``members`` (the residual between two DNS members, around the conditioning run)."""
    pairs = [rng.choice(members, 2, replace=False) + 1 for _ in range(members)]
    return np.stack([U[0] + gain * (U[i] - U[j]) for i, j in pairs])


def recentre(X: np.ndarray, dns: np.ndarray) -> np.ndarray:
    """The members of X (member, time, y) moved together so that their mean is the mean of the
    DNS members ``dns``: an oracle, the generator's spread about the ensemble mean it cannot
    know."""
    return X - X.mean(axis=0) + dns.mean(axis=0)


def generator_for(stem: str, kw: dict, threads: int | None):
    """(the generator of a --model, the keywords left for its ``generate``, whether it is the
    DNS-centred oracle): centred on its card's ensemble mean unless ``centre=none`` or
    ``centre=MEAN`` (:func:`model_spec`) says otherwise."""
    from closures.ensemble_ldm import load_generator
    kw = dict(kw)
    centre = kw.pop("centre", None)
    gen = load_generator(stem, threads=threads,
                         mean="card" if centre in (None, "dns") else centre)
    return gen, kw, centre == "dns"


def _is_mean(stem: str) -> bool:
    """Whether ``stem`` names a saved ensemble mean (its card says so)."""
    from closures.ensemble_ldm import read_ensemble_mean_card
    from closures.ldm.files import ModelFileError
    try:
        read_ensemble_mean_card(stem)
    except ModelFileError:
        return False
    return True


def label(text: str) -> str:
    """The name a --model is reported under: each of its paths (the model's, a centre's)
    shortened to the last part."""
    return "@".join(Path(part).name if "=" not in part else
                    part.split("=", 1)[0] + "=" + Path(part.split("=", 1)[1]).name
                    for part in text.split("@"))


def model_spec(text: str) -> tuple[str, dict]:
    """'NAME[@G][@steps=S][@sampler=M][@centre=dns|none|MEAN]' → (NAME, the keywords given:
    those of ``EnsembleGenerator.generate``, ``residual_gain``, ``steps``, ``method``, and
    ``centre``); ValueError naming the part."""
    name, *parts = text.split("@")
    kw = {}
    for part in parts:
        key, sep, value = part.rpartition("=")
        try:
            if key == "steps":
                kw["steps"] = int(value)
            elif key == "sampler" and value:
                kw["method"] = value
            elif key == "centre" and value:
                kw["centre"] = value
            elif not sep or key == "gain":
                kw["residual_gain"] = float(value)
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"--model {text}: {part!r} is neither a gain, steps=S, "
                             f"sampler=M nor centre=dns|none|MEAN") from None
    return name, kw


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dns", type=Path, default=None, help="test: the DNS ensembles' folder")
    ap.add_argument("--validation", type=Path, nargs="+", default=None, metavar="START",
                    help="validation: start folders (member 0 conditions, the last is the truth)")
    ap.add_argument("--model", action="append", required=True, help="NAME or NAME@GAIN")
    ap.add_argument("--slt", default=None)
    ap.add_argument("--members", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cost-members", type=int, default=1000,
                    help="members generated for the cost per member (one start; 0: not "
                         "measured; benchmarks.eldm_cost times the generators against the DNS "
                         "in one process)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from closures.ensemble_ldm import load_ensemble_mean
    from closures.slt import load_emulator
    if (args.dns is None) == (args.validation is None):
        ap.error("give --dns (test) or --validation (validation starts), not both")
    if args.validation:
        folders = list(args.validation)
        runs_u = [read_profiles(d / "trajectory.nc") for d in folders]
        L, steps = runs_u[0]["L"], runs_u[0]["U"].shape[1] - 1
        dt = float(runs_u[0]["t"][1] - runs_u[0]["t"][0])
        starts = [np.concatenate([r["U"][:1], r["U"][1:-1]]) for r in runs_u]
        truths = [r["U"][-1] for r in runs_u]
        if args.slt:
            ap.error("--slt needs the test starts (--dns): the SLT starts from the profiles "
                     "before the start")
    else:
        p = json.loads((args.dns / "plan.json").read_text())
        src = read_profiles(Path(p["source"]) / "trajectory.nc")
        L, steps, dt = src["L"], p["horizon_saves"], p["save_interval"]
        folders = [args.dns / f"short-{i:02d}" for i in range(len(p["short"]))]
        starts = [read_profiles(d / "trajectory.nc")["U"][:, :steps + 1] for d in folders]
        truths = [_truth(src, at, steps) for at in p["short"]]
    lead = np.arange(steps + 1) * dt
    members = min(args.members, min(U.shape[0] for U in starts) - 1)
    models = {"dns": None, **{label(m): m for m in args.model}}
    if args.slt:
        models["slt"] = args.slt
    sets, walls, big = {}, {}, {}
    for name, path in models.items():
        t0 = time.perf_counter()
        stem, kw = (path, {}) if name in ("dns", "slt") else model_spec(path)
        if name == "dns":
            sets[name] = [U[1:1 + members] for U in starts]
        elif name == "slt":
            em = load_emulator(path, threads=args.threads)
            sets[name] = [np.concatenate([np.repeat(U[:1, :1], members, 0), em.rollout(
                _history(src, at, em.window), steps, members, seed=5000 + i)], 1)
                for i, (U, at) in enumerate(zip(starts, p["short"]))]
            if args.cost_members:
                t1 = time.perf_counter()
                em.rollout(_history(src, p["short"][0], em.window), steps, args.cost_members,
                           seed=1)
                big[name] = (time.perf_counter() - t1) / (args.cost_members * steps * dt)
        elif stem == PAIRS:
            gain = kw.get("residual_gain", 1.0)
            sets[name] = [pair_residual_members(U, members, gain, np.random.default_rng(7000 + i))
                          for i, U in enumerate(starts)]
        elif _is_mean(stem):
            mean = load_ensemble_mean(stem)
            sets[name] = [mean.predict(U[0])[None] for U in starts]
        else:
            gen, kw, oracle = generator_for(stem, kw, args.threads)
            sets[name] = [gen.generate(U[0], members, seed=6000 + i, **kw)
                          for i, U in enumerate(starts)]
            if oracle:
                sets[name] = [recentre(X, U[1:1 + members]) for X, U in zip(sets[name], starts)]
            if args.cost_members:
                t1 = time.perf_counter()
                gen.generate(starts[0][0], args.cost_members, seed=1, **kw)
                big[name] = (time.perf_counter() - t1) / (args.cost_members * steps * dt)
        walls[name] = (time.perf_counter() - t0) / (len(starts) * members * steps * dt)
    runs = [json.loads((d / "run.json").read_text()) for d in folders]
    walls["dns"] = float(np.mean([q["timings"]["wall_s"] / (q["members"] * q["simulated_time"])
                                  for q in runs]))                    # as the DNS ran them
    ref = np.concatenate(sets["dns"])                                 # pooled DNS members
    t = lead
    ref_events = events_per_member(ref, t, L)
    ref_spec = spectrum(ref)
    r = dict(run_header("benchmarks.eldm_ensembles", argv), starts=len(starts),
             members=members, cost_members=args.cost_members, save_interval=dt, models={},
             data="validation" if args.validation else "test")
    pooled_dns = pool_scores([ensemble_scores(X, y, lead, seed=i)
                              for i, (X, y) in enumerate(zip(sets["dns"], truths))])
    for name, X in sets.items():
        pooled = pooled_dns if name == "dns" else pool_scores(
            [ensemble_scores(x, y, lead, seed=i) for i, (x, y) in enumerate(zip(X, truths))])
        allX = np.concatenate(X)
        h = pdf_distances(allX, t, ref, t, L)
        ev = events_per_member(allX, t, L)
        spec = spectrum(allX)
        modes = slice(1, 11)
        def ratio(key):
            return np.asarray(pooled[key][1:]) / np.asarray(pooled_dns[key][1:])
        r["models"][name] = {
            "crps": pooled["crps"], "crps_ratio_to_dns": ratio("crps"),
            "spread": pooled["spread"], "spread_ratio_to_dns": ratio("spread"),
            "spread_error_ratio_all": pooled["spread_error_ratio_all"],
            "rank_histogram": pooled["rank_histogram"],
            "rank_flatness": pooled["rank_flatness"],
            "hellinger": {k: v["hellinger"] for k, v in h.items() if k != "floor_from"},
            "hellinger_floor": {k: v["floor"] for k, v in h.items() if k != "floor_from"},
            "events_per_member": {"mean": float(ev.mean()), "interval_95":
                                  bootstrap_mean(ev, 2000, np.random.default_rng(0))},
            "autocorrelation": dict(zip(map(str, LAGS), autocorrelation(allX))),
            "spectrum_rel_error_modes_1_10": float(np.mean(np.abs(spec[modes] / ref_spec[modes]
                                                                  - 1))),
            "centring": centring(X, [U[0] for U in starts], sets["dns"]),
            "s_per_member_per_time_unit": walls[name],
            "s_per_member_per_time_unit_batched": big.get(name),
            "cheaper_than_dns_batched": (walls["dns"] / big[name]) if name in big else None}
        r["models"][name] = _lists(r["models"][name])
    r["dns_events_per_member"] = {"mean": float(ref_events.mean()), "interval_95":
                                  bootstrap_mean(ref_events, 2000, np.random.default_rng(0))}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "eldm_ensembles.json", r)
    md = markdown(r)
    (args.out / "eldm_ensembles.md").write_text(md)
    print(md)
    return r


def markdown(r: dict) -> str:
    names = list(r["models"])
    head = "| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
    rows = []

    def row(label, f):
        rows.append(f"| {label} | " + " | ".join(f(r["models"][n]) for n in names) + " |")
    def at(key, j):
        return lambda m: f"{m[key][j]:.3g}" if j < len(m[key]) else ""
    for key, label in (("crps_ratio_to_dns", "CRPS"), ("spread_ratio_to_dns", "spread")):
        for j in (0, 4, 9, 19, 49):
            row(f"{label} / DNS's, lead {(j + 1) * r['save_interval']:g}", at(key, j))
    row("CRPS / DNS's, mean over leads", lambda m: f"{np.mean(m['crps_ratio_to_dns']):.3f}")
    row("spread / DNS's, range over leads", lambda m: (
        f"{min(m['spread_ratio_to_dns']):.2f}–{max(m['spread_ratio_to_dns']):.2f}"))
    def ranks(m):
        h = np.asarray(m["rank_histogram"], dtype=float)
        h = h / h.mean()
        return f"{h[0]:.2f}, {h[len(h) // 2]:.2f}, {h[-1]:.2f}"
    row("rank histogram / uniform (first, middle, last)", ranks)
    def flatness(key):
        def cell(m):
            f = (m.get("rank_flatness") or {}).get(key)
            return "" if f is None else flatness_interval(f)
        return cell
    row("rank histogram: ends' excess [95 %, starts resampled]", flatness("ends_excess"))
    row("rank histogram: mean rank − ½ [95 %, starts resampled]", flatness("mean_rank"))
    row("rank histogram flat within sampling", lambda m: (
        "" if not m.get("rank_flatness") else ("yes" if m["rank_flatness"]["flat"] else "no")))
    row("spread/error, all leads", lambda m: (
        f"{m['spread_error_ratio_all']:.3g}" if m["spread_error_ratio_all"] is not None
        else ""))
    for k in ("U", "dUdy", "dUdt"):
        row(f"Hellinger {k} vs DNS members", lambda m, k=k: f"{m['hellinger'][k]:.3g}")
    def events(m):
        e = m["events_per_member"]
        return f"{e['mean']:.3g} [{e['interval_95'][0]:.3g}, {e['interval_95'][1]:.3g}]"
    row("events per member [95 %]", events)
    for lag in LAGS:
        row(f"autocorrelation, lag {lag}",
            lambda m, lag=lag: f"{m['autocorrelation'][str(lag)]:.3f}")
    row("spectrum rel. error, modes 1–10", lambda m: f"{m['spectrum_rel_error_modes_1_10']:.3f}")
    row("mean: pull from the conditioning run to the DNS mean",
        lambda m: f"{m['centring']['pull']:.3f}" if "centring" in m else "")
    row("mean: distance to the DNS mean / the conditioning run's",
        lambda m: f"{m['centring']['distance']:.3f}" if "centring" in m else "")
    row("s per member per time unit", lambda m: f"{m['s_per_member_per_time_unit']:.3g}")
    n_cost = r.get("cost_members", 1000)
    if n_cost:
        row(f"the same, {n_cost} members", lambda m: (
            f"{m['s_per_member_per_time_unit_batched']:.3g}"
            if m['s_per_member_per_time_unit_batched'] else ""))
        row(f"DNS / this, {n_cost} members", lambda m: (
            f"{m['cheaper_than_dns_batched']:.3g}" if m['cheaper_than_dns_batched'] else ""))
    return (f"# Ensembles around one run ({r['date']})\n\nCommand: `{r['command']}`\n\n"
            f"{r['starts']} {r.get('data', 'test')} starts, {r['members']} members each\n\n"
            f"{head}\n"
            + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
