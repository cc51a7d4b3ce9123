"""The markdown of a ``hybrid bench`` report: the cost and error table, and the table of the
one-start ensembles."""
from __future__ import annotations

import numpy as np

__all__ = ["format_report"]


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
