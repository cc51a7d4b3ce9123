"""The cost-vs-DNS report (`hybrid bench`): what a coarse run plus a closure costs and loses.

For one preset (``kolmogorov`` by default):

1. DNS reference on ``dns_n[0]``: ``members`` independent flows from the preset's random initial
   fields drawn with ``seed``, spun up for ``spinup`` time units, then run for ``t`` time units with records every ``output_every``. While it runs,
   a recorder (a closure that returns zeros, so the trajectory is bit-identical to one without it)
   stores the exact subgrid term Π = T(G N(ω)) − N(ω̄) on the LES grid at every closure refresh
   time of the LES: the oracle's data.
2. The other DNS grids and steps (``dns_n[1:]``, e.g. 512²) are run for ``cost_t`` time units from
   the same kind of initial field, for their cost only; so is the DNS at the grid and time step
   that made the learned closures' training data (their model card), when no row has it already.
3. LES on ``les_n`` from the coarse-grained DNS state at the end of the spin-up (Gaussian filter
   Δ = 2·dx_LES, truncation), with each closure: none, Smagorinsky, Leith, dynamic Smagorinsky,
   the oracle (replaying C = −Π), the L-CDM's mean network alone ('ldm-mean') and the shipped
   diffusion closures 'ldm' (L-CDM) and 'pcdm' (P-CDM),
   refreshed every ``every`` LES steps — or every k steps for an entry written ``'name@k'``
   (``'ldm@1'``, ``'ldm@10'``); options of a diffusion closure follow after slashes
   (``'ldm@5/steps=5/precision=bfloat16'``; ``hybrid bench --rows``).
4. :func:`hybrid.compare.compare_runs` of each LES against the DNS reference. The members are
   independent flows, so the table reports per-member errors (mean ± standard error over the
   members), never the error of a mean over different flows.
5. Real ensembles (``ensemble_members`` members from one start, the coarse-grained state of DNS
   member 0) for each stochastic closure of ``ensemble_rows``, scored against that DNS member by
   :func:`hybrid.compare.ensemble_scores` (when the closure is also a row): ensemble-mean error, spread–error ratio and CRPS over
   lead time; beside them the deterministic rows' member-0 run from the same start (its CRPS is
   its mean absolute error).

Test states only. The online runs start from a DNS with its own ``seed``; a learned closure whose
training data (model card) came from a DNS with the same seed and preset would start from states
of its own training period, so :meth:`ReportConfig.check` refuses that seed (default seed 1; the
shipped models were trained on seed 0).

The report is a markdown table (cost per simulated time unit per member, speed-up over each DNS,
closure share, errors), the ensemble table, a cost-vs-error figure and final snapshots.

Cost is read from each run's ``run.json`` (:func:`hybrid.compare.run_cost`, the numbers
``hybrid compare`` reports): wall seconds per simulated time unit per member, everything included
(closure, trajectory records); for the reference DNS without its recorder's time (the recorder is
that run's closure). The DNS rows of other grids or steps are timed directly (steady stepping, no
output).
"""
from __future__ import annotations

import json
import math
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from closures import OracleClosure
from closures.base import Closure
from solvers import filters
from solvers.grid import Grid
from solvers.io import open_trajectory

from .compare import compare_runs, ensemble_scores, run_cost
from .config import load_preset
from .plots import plot_cost_vs_error, plot_panels
from .simulation import TRAJECTORY, Simulation

CLOSURES = ("none", "smagorinsky", "leith", "dynamic-smagorinsky", "oracle", "ldm-mean", "ldm",
            "pcdm")
LEARNED = ("ldm-mean", "ldm", "pcdm")          # closures with a model card (training data)
STOCHASTIC = ("ldm", "pcdm")
DEFAULT_ROWS = ("none", "smagorinsky", "leith", "dynamic-smagorinsky", "oracle", "ldm-mean",
                "ldm@1", "ldm@5", "ldm@10", "ldm@5/steps=5/precision=bfloat16", "pcdm@5")
DEMO_ROWS = ("none", "smagorinsky", "leith", "dynamic-smagorinsky", "oracle", "ldm-mean", "ldm")


def parse_entry(entry: str, every: int) -> tuple[str, int, tuple]:
    """``'name'`` → (name, every, ()); ``'name@k'`` → (name, k, ()); options of the closure
    follow after slashes, ``'ldm@5/steps=5/precision=bfloat16'`` → (…, (('precision',
    'bfloat16'), ('steps', 5))), values read as JSON when they parse. Raises ValueError naming
    the entry."""
    head, *opts = str(entry).split("/")
    name, _, k = head.partition("@")
    if name not in CLOSURES:
        raise ValueError(f"closures: {entry!r} is not among {CLOSURES} (optionally '@k', the "
                         f"refresh interval in LES steps, and '/key=value' options)")
    kw = {}
    for o in opts:
        key, sep, value = o.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"closures: options of {entry!r} must be '/key=value', got {o!r}")
        try:
            v = json.loads(value)
        except json.JSONDecodeError:
            v = value
        kw[key] = v if v is None or isinstance(v, (bool, int, float, str)) else value
    options = tuple(sorted(kw.items()))
    if not k and not head.endswith("@"):
        return name, int(every), options
    if not k.isdigit() or int(k) < 1:
        raise ValueError(f"closures: the refresh interval of {entry!r} must be an integer ≥ 1")
    return name, int(k), options


def _label(name: str, k: int, options: tuple, every: int, entries) -> str:
    """'ldm' alone, or 'ldm every 5' when the row's closure appears with several intervals or
    options; options are appended, 'ldm every 5 steps=5 precision=bfloat16'."""
    several = sum(str(e).partition("@")[0].partition("/")[0] == name for e in entries) > 1
    label = f"{name} every {k}" if several or k != every else name
    return " ".join([label] + [f"{key}={v}" for key, v in options])


@dataclass
class ReportConfig:
    """Sizes of a report. ``demo`` and ``default`` are the two shipped sizes."""
    preset: str = "kolmogorov"
    dns_n: tuple = (256, 512)
    dns_dt: tuple = (1e-3, 1e-3)
    les_n: int = 64
    les_dt: float = 5e-3
    every: int = 5
    members: int = 4
    seed: int = 1
    spinup: float = 5.0
    t: float = 5.0
    output_every: float = 0.25
    cost_t: float = 0.2
    closures: tuple = DEFAULT_ROWS
    ensemble_members: int = 16
    ensemble_rows: tuple = ("ldm",)

    @classmethod
    def size(cls, name: str) -> "ReportConfig":
        if name == "demo":
            return cls(dns_n=(256,), dns_dt=(1e-3,), members=2, spinup=2.0, t=2.0,
                       closures=DEMO_ROWS, ensemble_members=8)
        if name == "default":
            return cls()
        raise ValueError(f"size must be 'demo' or 'default', got {name!r}")

    def check(self) -> None:
        if len(self.dns_n) != len(self.dns_dt) or not self.dns_n:
            raise ValueError("dns_n and dns_dt must be non-empty and of equal length")
        for name in ("spinup", "t", "output_every", "cost_t", "les_dt"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for entry in self.closures:
            name, k, options = parse_entry(entry, self.every)
            if options and name not in LEARNED:
                raise ValueError(f"closures: options are for the learned closures "
                                 f"({', '.join(LEARNED)}), got {entry!r}")
            ratio = self.les_dt * k / self.dns_dt[0]
            if name == "oracle" and abs(ratio - round(ratio)) > 1e-9:
                raise ValueError(f"the oracle's refresh interval les_dt·every = "
                                 f"{self.les_dt * k:g} must be a multiple of the reference DNS "
                                 f"dt {self.dns_dt[0]:g}")
        if len({parse_entry(e, self.every) for e in self.closures}) != len(self.closures):
            raise ValueError(f"closures lists a row twice: {self.closures}")
        if sum(parse_entry(e, self.every)[0] == "oracle" for e in self.closures) > 1:
            raise ValueError(f"closures: one oracle row at most (the DNS records the exact term "
                             f"at one refresh interval), got {self.closures}")
        if isinstance(self.ensemble_members, bool) or not isinstance(self.ensemble_members, int) \
                or self.ensemble_members < 2:
            raise ValueError(f"ensemble_members must be an integer ≥ 2, got "
                             f"{self.ensemble_members!r}")
        for e in self.ensemble_rows:
            if parse_entry(e, self.every)[0] not in STOCHASTIC:
                raise ValueError(f"ensemble_rows: {e!r} is not a stochastic closure "
                                 f"({', '.join(STOCHASTIC)}): its members would all be equal")
        for card in self.training_cards():
            gen = card.get("data", {}).get("generation", {})
            if gen.get("seed") == self.seed and card.get("data", {}).get("preset") == self.preset:
                raise ValueError(f"seed {self.seed}: model {card.get('name')} was trained on "
                                 f"{self.preset} DNS data made with this seed, so the online runs "
                                 f"would start from its training states; pick another seed")

    def ensemble_entries(self) -> list[str]:
        """The entries of ``ensemble_rows`` whose closure is also a row of the table."""
        names = {parse_entry(e, self.every)[0] for e in self.closures}
        return [e for e in self.ensemble_rows if parse_entry(e, self.every)[0] in names]

    def training_cards(self) -> list[dict]:
        """The model cards of the learned closures among the rows (default models)."""
        names = {parse_entry(e, self.every)[0] for e in self.closures}
        if not names & set(LEARNED):
            return []
        from closures.ldm import read_card, resolve_model_path
        models = {"ldm-mean": "ldm-kolmogorov", "ldm": "ldm-kolmogorov",
                  "pcdm": "pcdm-kolmogorov"}
        return [read_card(resolve_model_path(m))
                for m in sorted({models[n] for n in names & set(LEARNED)})]

    def rows(self) -> list[tuple[str, int, str, dict]]:
        """(closure name, refresh interval, row label, closure options) per LES row."""
        out = []
        for e in self.closures:
            name, k, options = parse_entry(e, self.every)
            out.append((name, k, _label(name, k, options, self.every, self.closures),
                        dict(options)))
        return out

    def oracle_every(self) -> int | None:
        """The oracle's refresh interval in LES steps (None: no oracle row)."""
        ks = [k for name, k, _, _ in self.rows() if name == "oracle"]
        return ks[0] if ks else None


class SubgridRecorder(Closure):
    """Records (t, Π on the LES grid) at every call and returns zeros (adds nothing)."""

    name = "subgrid-recorder"

    def __init__(self, les: Grid, every: int):
        super().__init__(every=every)
        self.les, self.times, self.terms = les, [], []

    def compute(self, state):
        _, pi_hat = filters.subgrid_term(state.grid, self.les, np.asarray(state.vorticity_hat))
        self.times.append(state.t)
        self.terms.append(np.fft.irfft2(pi_hat, s=self.les.shape))
        return np.zeros(state.vorticity.shape)


@dataclass
class Row:
    model: str
    grid: int
    cost: float                   # wall s per simulated time unit per member
    closure_share: float | None = None
    closure_calls: int | None = None  # refreshes of the closure term over the whole run
    metrics: dict = field(default_factory=dict)
    dt: float | None = None           # time step (DNS rows)


def _run_dns(preset, cfg: ReportConfig, n: int, dt: float, out: Path, reference: bool,
             progress: bool):
    """A DNS; for the reference also the recorder and the state at the end of the spin-up."""
    s = preset.make_solver("dns", members=cfg.members, seed=cfg.seed, n=n, dt=dt)
    s.set_vorticity(preset.initial_vorticity(s))
    if not reference:
        s.step(max(1, round(0.05 / dt)))              # warm-up, then time the steady stepping
        t0, w0 = s.t, time.perf_counter()
        s.step(max(1, round(cfg.cost_t / dt)))
        return (time.perf_counter() - w0) / (s.t - t0) / cfg.members, None, None
    Simulation(s).run(cfg.spinup, progress=progress)
    start_hat = np.asarray(s.vorticity_hat).copy()
    k = cfg.oracle_every()
    rec = None
    if k is not None:
        rec = SubgridRecorder(Grid(cfg.les_n, s.grid.L), every=round(cfg.les_dt * k / dt))
        if s.step_count % rec.every:
            raise ValueError("the spin-up must be a whole number of LES refresh intervals")
    Simulation(s, rec).run(cfg.spinup + cfg.t, out=out, output_every=cfg.output_every,
                           progress=progress, overwrite=True)
    c = run_cost(out, "DNS")              # the recorder is its closure: not the DNS's cost
    cost = (c["wall_s"] - c["closure_s"]) / c["simulated_time"] / c["members"]
    oracle = None if rec is None else (np.array(rec.times), np.stack(rec.terms))
    return cost, start_hat, oracle


def _run_les(preset, cfg: ReportConfig, name: str, every: int, label: str, options: dict,
             dns_grid: Grid, start_hat, oracle, out: Path, progress: bool) -> Row:
    """An LES from ``start_hat`` (one DNS state per member) with one closure row."""
    members = start_hat.shape[0]
    s = preset.make_solver("les", members=members, seed=cfg.seed, n=cfg.les_n, dt=cfg.les_dt)
    s.set_vorticity_hat(filters.coarse_grain(dns_grid, s.grid, start_hat))
    s.t = cfg.spinup
    closure = OracleClosure.from_subgrid(*oracle) if name == "oracle" else name
    res = Simulation(s, closure, every=every, closure_kwargs=options or None).run(
        cfg.spinup + cfg.t, out=out, output_every=cfg.output_every, progress=progress,
        overwrite=True)
    c = run_cost(out, "LES")
    return Row(f"LES {label}", cfg.les_n, c["wall_per_time_per_member"], c["closure_fraction"],
               res.closure_calls)


def build_report(cfg: ReportConfig, out: Path, progress: bool = True) -> dict:
    """Run everything and write ``report.md``, ``report.json`` and ``cost_vs_error.png`` to
    ``out`` (run folders go to ``out/runs``). Returns the report as a dictionary."""
    cfg.check()
    preset = load_preset(cfg.preset)
    out = Path(out)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    dns_rows = []
    cost, start_hat, oracle = _run_dns(preset, cfg, cfg.dns_n[0], cfg.dns_dt[0],
                                       runs / f"dns{cfg.dns_n[0]}", True, progress)
    dns_rows.append(Row("DNS", cfg.dns_n[0], cost, dt=cfg.dns_dt[0]))
    for n, dt in zip(cfg.dns_n[1:], cfg.dns_dt[1:]):
        c, _, _ = _run_dns(preset, cfg, n, dt, runs / f"dns{n}", False, progress)
        dns_rows.append(Row("DNS (cost only)", n, c, dt=dt))
    for card in cfg.training_cards():                 # the DNS that made the training data
        gen = card.get("data", {}).get("generation", {})
        n, dt = gen.get("n_dns"), gen.get("dns_dt")
        if n and dt and not any(r.grid == n and math.isclose(r.dt, dt) for r in dns_rows):
            c, _, _ = _run_dns(preset, cfg, int(n), float(dt), runs / f"dns{n}", False, progress)
            dns_rows.append(Row(f"DNS (cost only, {card.get('name')} data's dt)", int(n), c,
                                dt=float(dt)))
    dns_grid = Grid(cfg.dns_n[0], preset.dns.get("L", 2 * np.pi))
    rows = []
    for name, k, label, options in cfg.rows():
        folder = runs / _folder(cfg, label)
        row = _run_les(preset, cfg, name, k, label, options, dns_grid, start_hat, oracle,
                       folder, progress)
        m = compare_runs(folder, runs / f"dns{cfg.dns_n[0]}")
        row.metrics = _summary(m, cfg)
        if name not in STOCHASTIC and cfg.ensemble_entries():     # member 0: the ensembles' start
            row.metrics["start0"] = ensemble_scores(folder, runs / f"dns{cfg.dns_n[0]}",
                                                    run_members=[0])
        rows.append(row)
    ensembles = []
    start0 = np.repeat(start_hat[:1], cfg.ensemble_members, axis=0)
    for entry in cfg.ensemble_entries():
        name, k, options = parse_entry(entry, cfg.every)
        label = _label(name, k, options, cfg.every, (entry,))
        folder = runs / (_folder(cfg, label) + f"-ensemble{cfg.ensemble_members}")
        row = _run_les(preset, cfg, name, k, label, dict(options), dns_grid, start0, oracle,
                       folder, progress)
        row.model = f"LES {label}, {cfg.ensemble_members} members from one start"
        row.metrics = ensemble_scores(folder, runs / f"dns{cfg.dns_n[0]}")
        ensembles.append(row)
    report = {
        "date": str(date.today()), "machine": f"{platform.machine()} "
        f"{platform.processor() or platform.platform()}", "config": asdict(cfg),
        "wall_seconds": time.perf_counter() - wall0,
        "dns": [asdict(r) for r in dns_rows], "les": [asdict(r) for r in rows],
        "ensembles": [asdict(r) for r in ensembles]}
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    text = format_report(report)
    (out / "report.md").write_text(text)
    plot_cost_vs_error(report, out / "cost_vs_error.png")
    _snapshots(runs, cfg, dns_grid, out / "final_vorticity.png")
    return report


def _folder(cfg: ReportConfig, label: str) -> str:
    return f"les{cfg.les_n}-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", label)


def _summary(m: dict, cfg: ReportConfig) -> dict:
    """Headline accuracy numbers of one comparison of independent flows: the per-member relative
    L2 error at lead time ≈ 1 and at the end, mean and standard error over the members."""
    e = m["errors"]
    lead = np.asarray(m["times"]["lead_time"], dtype=float)
    per = np.asarray(e["relative_l2_members"], dtype=float)           # (members, times)
    k1 = int(np.argmin(np.abs(lead - 1.0)))

    def mean_se(col):
        col = col[np.isfinite(col)]
        se = float(col.std(ddof=1) / math.sqrt(col.size)) if col.size > 1 else None
        return float(col.mean()) if col.size else None, se

    (e1, se1), (ef, sef) = mean_se(per[:, k1]), mean_se(per[:, -1])
    return {"error_member_t1": e1, "error_member_t1_se": se1, "lead_t1": float(lead[k1]),
            "error_member_final": ef, "error_member_final_se": sef,
            "error_member_mean_time_mean": float(np.nanmean(e["relative_l2_member_mean"])),
            "energy_steady_relative_error": m["energy"]["steady_relative_error"],
            "spectrum_relative_rmse": m["spectra"]["relative_rmse"],
            "pdf_hellinger": m["pdf"]["hellinger"], "pdf_wasserstein1": m["pdf"]["wasserstein1"]}


def _f(v, fmt="{:.3g}") -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def _pm(v, se) -> str:
    return _f(v) if se is None else f"{_f(v)} ± {_f(se, '{:.2g}')}"


def _at(series, lead, t) -> float | None:
    """The value of ``series`` at the lead time nearest ``t``."""
    if not series:
        return None
    return series[int(np.argmin(np.abs(np.asarray(lead, float) - t)))]


def format_report(report: dict) -> str:
    cfg = report["config"]
    dns = report["dns"]
    head = [f"# Cost vs DNS: {cfg['preset']}, {cfg['members']} independent members",
            "",
            f"{report['date']}, {report['machine']}, one process, one FFTW thread. Reference: DNS "
            f"{cfg['dns_n'][0]}² (dt {cfg['dns_dt'][0]:g}, seed {cfg['seed']}: states no shipped "
            f"model was trained or tuned on) after a spin-up of {cfg['spinup']:g}, compared over "
            f"{cfg['t']:g} time units (records every {cfg['output_every']:g}). "
            f"LES {cfg['les_n']}² (dt {cfg['les_dt']:g}) from the coarse-grained DNS state, "
            f"closure refreshed every {cfg['every']} steps. Cost = wall seconds per simulated time "
            f"unit per member. Errors: relative L2 error of each member's vorticity against its "
            f"filtered DNS, mean ± standard error over the {cfg['members']} independent members; "
            f"spectrum and PDF distances over the last half of the records. "
            f"Regenerate with `hybrid bench`.", ""]
    cols = ["model", "grid", "cost (s / t.u. / member)"] + \
           [f"speed-up vs DNS {r['grid']}² dt {_f(r.get('dt'))}" for r in dns] + \
           ["closure share", "member error t≈1", "member error final", "energy error",
            "spectrum rel. RMSE", "Hellinger", "W1"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in dns:
        lines.append("| " + " | ".join([f"{r['model']} dt {_f(r.get('dt'))}", f"{r['grid']}²",
                                        _f(r["cost"])] +
                                       [_f(d["cost"] / r["cost"], "{:.2f}") for d in dns] +
                                       ["–"] * 7) + " |")
    for r in report["les"]:
        m = r["metrics"]
        lines.append("| " + " | ".join(
            [r["model"], f"{r['grid']}²", _f(r["cost"])] +
            [_f(d["cost"] / r["cost"], "{:.1f}") for d in dns] +
            [_f(r["closure_share"], "{:.0%}"), _pm(m["error_member_t1"], m["error_member_t1_se"]),
             _pm(m["error_member_final"], m["error_member_final_se"]),
             _f(m["energy_steady_relative_error"]),
             _f(m["spectrum_relative_rmse"]), _f(m["pdf_hellinger"]),
             _f(m["pdf_wasserstein1"])]) + " |")
    ens = report.get("ensembles") or []
    if ens:
        lines += ["", f"## Ensembles from one start (DNS member 0 at t = {cfg['spinup']:g})", "",
                  "Stochastic closures run as real ensembles from one coarse-grained state, "
                  "scored against that DNS member: ensemble-mean error, spread–error ratio "
                  "(sqrt((M+1)/M)·spread / ensemble-mean RMSE; 1 is calibrated), fair CRPS over "
                  "the grid points divided by the mean |ω| of the filtered DNS, and the mean "
                  "single-member error. Deterministic rows: the member-0 run of the table above "
                  "(same start); its CRPS is its mean absolute error.", ""]
        lead_marks = (1.0, cfg["t"])
        cols = (["model", "members"] +
                [f"ens.-mean error t≈{t:g}" for t in lead_marks] +
                [f"spread/error t≈{t:g}" for t in lead_marks] +
                [f"CRPS/⟨|ω|⟩ t≈{t:g}" for t in lead_marks] +
                [f"single-member error t≈{t:g}" for t in lead_marks])
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        entries = [(r["model"], r["metrics"]) for r in ens] + \
                  [(f"{r['model']} (member 0)", r["metrics"]["start0"]) for r in report["les"]
                   if "start0" in r["metrics"]]
        for model, sc in entries:
            lead = sc["lead_time"]
            single = [float(np.mean(e)) for e in sc["error_members"]]
            lines.append("| " + " | ".join(
                [model, str(sc["members"])] +
                [_f(_at(sc["error_ensemble_mean"], lead, t)) for t in lead_marks] +
                [_f(_at(sc["spread_error_ratio"], lead, t), "{:.2f}") for t in lead_marks] +
                [_f(_at(sc["crps_relative"], lead, t)) for t in lead_marks] +
                [_f(_at(single, lead, t)) for t in lead_marks]) + " |")
    return "\n".join(head + lines) + "\n"


def _snapshots(runs: Path, cfg: ReportConfig, dns_grid: Grid, path: Path) -> None:
    """Final vorticity of member 0: the filtered DNS and each LES, on one colour scale."""
    les = Grid(cfg.les_n, dns_grid.L)

    def last(folder: Path) -> np.ndarray:
        with open_trajectory(folder / TRAJECTORY) as ds:
            return ds["vorticity"].isel(member=0, time=-1).values.astype(np.float64)

    w = last(runs / f"dns{cfg.dns_n[0]}")
    ref = np.fft.irfft2(filters.coarse_grain(dns_grid, les, np.fft.rfft2(w)), s=les.shape)
    panels = [("filtered DNS", ref)] + [(f"LES {label}", last(runs / _folder(cfg, label)))
                                        for _, _, label, _ in cfg.rows()]
    plot_panels(panels, path, les.L,
                f"{cfg.preset}: vorticity at t = {cfg.spinup + cfg.t:g}, member 0")


def configure(p) -> None:
    p.add_argument("--size", choices=("demo", "default"), default="default",
                   help="demo: DNS 256², 2 members, 2+2 time units (about two minutes); default: "
                        "DNS 256² and 512², 4 members, 5+5 time units")
    p.add_argument("--out", default="benchmarks/results",
                   help="folder for report.md, report.json, cost_vs_error.png and runs/")
    p.add_argument("--members", type=int, default=None, help="ensemble size (default: the size's)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the DNS initial fields (default 1; not the seed of a shipped "
                        "model's training data)")
    p.add_argument("--ensemble-members", type=int, default=None,
                   help="members of the one-start ensembles of the stochastic closures (default: "
                        "the size's, 16; demo 8)")
    p.add_argument("--rows", default=None, metavar="ROW,ROW,...",
                   help="LES rows, each 'closure[@every][/key=value...]' (default: the size's, "
                        f"for default {','.join(DEFAULT_ROWS)})")
    p.add_argument("--no-progress", action="store_true")


def handler(args) -> int:
    cfg = ReportConfig.size(args.size)
    if args.members is not None:
        if args.members < 1:
            print("hybrid bench: --members must be ≥ 1", flush=True)
            return 2
        cfg.members = args.members
    if args.seed is not None:
        cfg.seed = args.seed
    if args.ensemble_members is not None:
        cfg.ensemble_members = args.ensemble_members
    if args.rows is not None:
        cfg.closures = tuple(r for r in args.rows.split(",") if r)
    try:
        cfg.check()
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a folder")
    except ValueError as e:
        print(f"hybrid bench: {e}", flush=True)
        return 2
    report = build_report(cfg, out, progress=not args.no_progress)
    print(format_report(report))
    print(f"written: {out / 'report.md'}, {out / 'report.json'}, {out / 'cost_vs_error.png'}")
    return 0
