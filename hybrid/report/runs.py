"""The runs of a ``hybrid bench`` report and what is measured on them (:func:`build_report`):
the DNS reference with the recorder of the oracle's data, the cost-only DNS, every LES row, the
comparisons and the one-start ensembles; the report files written at the end."""
from __future__ import annotations

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
from solvers.files import write_json
from solvers.grid import Grid
from solvers.io import open_trajectory

from ..compare import compare_runs, ensemble_scores, run_cost
from ..config import load_preset
from ..plots import plot_cost_vs_error, plot_panels
from ..simulation import TRAJECTORY, Simulation
from .config import STOCHASTIC, ReportConfig, parse_entry, row_label
from .table import format_report

__all__ = ["build_report", "SubgridRecorder", "Row"]


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
        label = row_label(name, k, options, cfg.every, (entry,))
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
    write_json(out / "report.json", report, indent=1, default=float)
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


def _snapshots(runs: Path, cfg: ReportConfig, dns_grid: Grid, path: Path) -> None:
    """Final vorticity of member 0: the filtered DNS and each LES, on one colour scale."""
    les = Grid(cfg.les_n, dns_grid.L)

    def last(folder: Path) -> np.ndarray:
        with open_trajectory(folder / TRAJECTORY, need="vorticity") as ds:
            return ds["vorticity"].isel(member=0, time=-1).values.astype(np.float64)

    w = last(runs / f"dns{cfg.dns_n[0]}")
    ref = np.fft.irfft2(filters.coarse_grain(dns_grid, les, np.fft.rfft2(w)), s=les.shape)
    panels = [("filtered DNS", ref)] + [(f"LES {label}", last(runs / _folder(cfg, label)))
                                        for _, _, label, _ in cfg.rows()]
    plot_panels(panels, path, les.L,
                f"{cfg.preset}: vorticity at t = {cfg.spinup + cfg.t:g}, member 0")
