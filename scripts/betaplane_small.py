#!/usr/bin/env python
"""Run a small stochastically forced beta-plane (solvers.BetaPlane) and look at its zonal jets.

Records the zonal-mean zonal velocity U(y, t) every ``--output-every`` time units, saves it with
the energy, CFL number and jet count to an .npz, draws a Hovmöller diagram of U(y, t) above the
jet count (:func:`hybrid.plots.plot_jet_hovmoller`) and prints the number of jets over time
together with the merging (count drops) and nucleation (count rises) events it detects.

Jets and events are counted by :mod:`hybrid.jets` (docs/jet-diagnostics.md): a jet is a periodic
maximum of U(y) smoothed with the spectral Gaussian exp(−k²/(2 k_s²)), k_s = ``--smooth-k`` (units
of 2π/L), with U > 0 and a prominence of at least ``--prominence`` × the rms of the smoothed
profile; an event is a change of the count whose new value holds at least ``--persist``.

Example (the preset betaplane-small, the long run of docs/betaplane-small.md):

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python scripts/betaplane_small.py \\
        --t-end 60000 --output-every 20 --out runs/betaplane-small/long \\
        --png docs/figures/betaplane-small-hovmoller.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

# defaults = the preset betaplane-small (hybrid/presets/betaplane-small.toml)
DEFAULTS = dict(n=64, beta=8.0, mu=4e-3, hyper_order=8, kf=8.0, kf_width=1.5, epsilon=4e-4,
                dt=0.05)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("physics and numerics (solvers.BetaPlane)")
    g.add_argument("--n", type=int, default=DEFAULTS["n"], help="grid points per side")
    g.add_argument("--L", type=float, default=2 * np.pi, help="box side")
    g.add_argument("--beta", type=float, default=DEFAULTS["beta"])
    g.add_argument("--mu", type=float, default=DEFAULTS["mu"], help="linear drag")
    g.add_argument("--nu", type=float, default=None,
                   help="hyperviscosity coefficient (default: damping rate 1 at the cutoff)")
    g.add_argument("--hyper-order", type=int, default=DEFAULTS["hyper_order"])
    g.add_argument("--kf", type=float, default=DEFAULTS["kf"], help="forcing wavenumber")
    g.add_argument("--kf-width", type=float, default=DEFAULTS["kf_width"])
    g.add_argument("--epsilon", type=float, default=DEFAULTS["epsilon"], help="injection rate")
    g.add_argument("--dt", type=float, default=DEFAULTS["dt"], help="fixed time step")
    g.add_argument("--stepper", default="etdrk4", choices=("etdrk4", "rk4"))
    g.add_argument("--seed", type=int, default=0)
    r = p.add_argument_group("run and output")
    r.add_argument("--t-end", type=float, default=5000.0)
    r.add_argument("--output-every", type=float, default=10.0, help="time between U(y) records")
    r.add_argument("--spinup", type=float, default=None,
                   help="statistically steady after this time; earlier jet-count changes are "
                        "labelled spin-up (default 3/mu)")
    r.add_argument("--smooth-k", type=float, default=None,
                   help="Gaussian smoothing wavenumber of U(y) for the jet count (default kf/2)")
    r.add_argument("--prominence", type=float, default=0.1,
                   help="least prominence of a jet, as a fraction of the rms of the smoothed "
                        "profile")
    r.add_argument("--persist", type=float, default=None,
                   help="a jet-count change counts as an event only if the new count holds this "
                        "long (default 1/(2 mu))")
    r.add_argument("--log-every", type=float, default=None,
                   help="time between progress lines (default t_end/40)")
    r.add_argument("--out", default="runs/betaplane-small/run",
                   help="output prefix: writes PREFIX.npz and PREFIX.png")
    r.add_argument("--png", default=None, help="Hovmöller PNG path (default PREFIX.png)")
    r.add_argument("--title", default=None, help="figure title (default: the parameters)")
    r.add_argument("--threads", type=int, default=1, help="FFTW threads")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    import solvers
    from hybrid import jets
    from solvers import diagnostics

    s = solvers.BetaPlane(a.n, L=a.L, beta=a.beta, mu=a.mu, nu=a.nu, hyper_order=a.hyper_order,
                          kf=a.kf, kf_width=a.kf_width, epsilon=a.epsilon, dt=a.dt,
                          stepper=a.stepper, seed=a.seed, threads=a.threads)
    g = s.grid
    k_s = a.smooth_k if a.smooth_k is not None else a.kf / 2
    t_spin = a.spinup if a.spinup is not None else (3.0 / a.mu if a.mu > 0 else 0.0)
    persist = a.persist if a.persist is not None else (0.5 / a.mu if a.mu > 0 else 50.0)
    log_every = a.log_every if a.log_every is not None else a.t_end / 40
    u_rms = np.sqrt(a.epsilon / a.mu) if a.mu > 0 else float("nan")
    print(f"BetaPlane n={a.n} beta={a.beta:g} mu={a.mu:g} nu={s.nu:.3g} p={a.hyper_order} "
          f"kf={a.kf:g} width={a.kf_width:g} eps={a.epsilon:g} dt={a.dt:g} stepper={a.stepper} "
          f"seed={a.seed}; sqrt(eps/mu)={u_rms:.3g}, 1/sqrt(beta/U)={np.sqrt(u_rms / a.beta):.3g},"
          f" kmax_dealias={g.kmax_dealias}", flush=True)

    ts, Us, Es, cfls = [], [], [], []
    last_log = [-np.inf]
    wall0 = time.perf_counter()
    steps0 = s.step_count

    def record(sol):
        zh = sol.vorticity_hat
        ts.append(sol.t)
        Us.append(sol.zonal_mean_u()[0].copy())
        Es.append(float(sol.energy()[0]))
        cfls.append(float(diagnostics.cfl_number(g, zh, sol.dt)[0]))
        if sol.t - last_log[0] >= log_every - 1e-9:
            last_log[0] = sol.t
            nj = int(jets.count_jets(Us[-1], a.L, k_s, a.prominence))
            w = time.perf_counter() - wall0
            print(f"t={sol.t:9.1f}  E={Es[-1]:.4g}  max U={Us[-1].max():.3g}  CFL={cfls[-1]:.3f}  "
                  f"jets={nj}  wall={w:7.1f}s", flush=True)

    status = "ok"
    try:
        s.run(a.t_end, every=a.output_every, callback=record)
    except solvers.BlowUpError as e:
        status = f"blow-up at t={e.t:g}: {e}"
    except ImportError as e:      # the blow-up path imports solvers.io, which may be missing
        status = f"blow-up near t={s.t:g} (and {e})"
    wall = time.perf_counter() - wall0
    nsteps = s.step_count - steps0
    per_step = wall / max(nsteps, 1)
    print(f"status: {status}", flush=True)
    print(f"steps={nsteps}  wall={wall:.1f}s  wall per step={per_step * 1e3:.3f} ms "
          f"(includes recording)", flush=True)

    t = np.asarray(ts)
    U = np.asarray(Us)
    counts = jets.count_jets(U, a.L, k_s, a.prominence)
    # events are looked for once the first jets have formed (t ≥ 1/(4μ)); those before t_spin are
    # spin-up transitions
    t_form = min(0.25 / a.mu, t_spin) if a.mu > 0 else 0.0
    formed = t >= t_form
    events = jets.events(counts[formed], t[formed], persist) if formed.sum() > 1 else []
    for ev in events:
        ev["spinup"] = ev["t"] < t_spin

    # jet count summary: first time the count settles in 2..4, and the counts over time
    print(f"jet count (smoothing k_s={k_s:g}, prominence {a.prominence:g}; events need "
          f"{persist:g} t.u. persistence; "
          f"steady after t={t_spin:g}):")
    step = max(1, len(t) // 30)
    for i in range(0, len(t), step):
        y_jets = jets.jet_positions(U[i], a.L, k_s, a.prominence)
        print(f"  t={t[i]:9.1f}  jets={counts[i]}  y_jets={np.round(y_jets, 2).tolist()}")
    after = t >= t_spin
    if after.any():
        vals, freq = np.unique(counts[after], return_counts=True)
        frac = {int(v): round(float(f) / float(after.sum()), 3) for v, f in zip(vals, freq)}
        print(f"  fraction of outputs after spin-up with each count: {frac}")
    print(f"events ({len(events)}):")
    for ev in events:
        print(f"  t={ev['t']:9.1f}  {ev['kind']:10s} {ev['before']} -> {ev['after']}"
              f"{'  (spin-up)' if ev['spinup'] else ''}")

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {k: v for k, v in vars(a).items()}
    params.update(nu_used=s.nu, wall_s=wall, steps=nsteps, wall_per_step_s=per_step, status=status,
                  smooth_k_used=k_s, spinup_used=t_spin, persist_used=persist)
    np.savez_compressed(out.with_suffix(".npz"), t=t, y=g.y, U=U, energy=np.asarray(Es),
                        cfl=np.asarray(cfls), jets=counts, params=json.dumps(params),
                        events=json.dumps(events))
    png = Path(a.png) if a.png else out.with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    title = a.title or (f"beta-plane n={a.n}, β={a.beta:g}, μ={a.mu:g}, p={a.hyper_order}, "
                        f"k_f={a.kf:g}±{a.kf_width:g}, ε={a.epsilon:g}, dt={a.dt:g}, seed={a.seed}")
    if len(t):
        from hybrid.plots import plot_jet_hovmoller
        plot_jet_hovmoller([(f"U(y, t); spin-up until t = {t_spin:g}", t, g.y, U, counts)], png,
                           title=title)
        print(f"wrote {out.with_suffix('.npz')} and {png} ({os.path.getsize(png) / 1024:.0f} KB)")
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
