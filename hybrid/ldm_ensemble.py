"""Ensembles of the zonal jets U(y, t) around one run, from the latent diffusion ensemble
generator (:mod:`closures.ensemble_ldm`): the work of ``hybrid ensemble``.

:func:`generate_ensemble` takes member ``member`` of a run with ``zonal_mean_u`` (read with
:func:`hybrid.jets.read_profiles`) from its record at time ``at`` (default the first) to the one at
``t_end`` (default the last) as the conditioning run U_c(t) — its first record is the state the
ensemble starts from — generates ``members`` members around it
(:meth:`closures.ensemble_ldm.EnsembleGenerator.generate`) at the same record times, and writes
to ``out`` the files of ``hybrid emulate`` (:data:`hybrid.emulate.OUTPUTS`):

* ``emulation.nc`` — the ``--record zonal-mean`` format through
  :func:`hybrid.emulate.write_emulation`: ``zonal_mean_u (member, time, y)``, the first record
  the start state for every member; the configuration attribute holds the run's configuration
  under ``source`` and the generator's under ``emulator``. ``hybrid jets OUT REFERENCE`` reads
  it like a DNS record (score it against a DNS member other than the conditioning run:
  ``--truth-member``);
* ``hovmoller.png``, ``statistics.png`` — :func:`hybrid.emulate.emulation_figures`;
* ``emulation.json`` — what was run, the wall time and the cost per member per time unit.

With an ensemble mean attached to the generator (``hybrid ensemble --centre``, or the model
card's), the members are centred on it (``EnsembleGenerator.generate``).
"""
from __future__ import annotations

import os
import time

import numpy as np

from solvers.files import check_output_folder, write_json
from solvers.validate import integer, number

from .emulate import (OUTPUTS, check_source, emulation_figures, read_source, record_at,
                      write_emulation)

__all__ = ["generate_ensemble", "read_conditioning", "OUTPUTS"]


def read_conditioning(run, member: int = 0, at: float | None = None,
                      t_end: float | None = None) -> dict:
    """The run's profiles and, for the generator, ``U_c`` (records, n): member ``member`` from
    the record at ``at`` to the one at ``t_end`` (within half a save interval; defaults the first
    and the last), their ``times`` and ``interval``. ValueError naming RUN, ``--member``,
    ``--at`` or ``--t-end``."""
    src, interval = read_source(run, "RUN", member)
    U, t = src["U"], src["t"]
    i0 = 0 if at is None else record_at(t, at, interval, "--at", src["path"])
    i1 = len(t) - 1 if t_end is None else record_at(t, t_end, interval, "--t-end", src["path"])
    if i1 <= i0:
        raise ValueError(f"--t-end must lie at least one save interval ({interval:g}) after the "
                         f"start t = {t[i0]:g}, got {t[i1]:g}")
    if not np.allclose(np.diff(t[i0:i1 + 1]), interval, rtol=1e-6):
        raise ValueError(f"RUN: the records of {src['path']} from t = {t[i0]:g} to {t[i1]:g} are "
                         f"not evenly spaced")
    return {**src, "U_c": U[member, i0:i1 + 1], "times": t[i0:i1 + 1], "interval": interval,
            "member": member}


def generate_ensemble(model, run, out, *, members: int, member: int = 0,
                      at: float | None = None, t_end: float | None = None, seed: int = 0,
                      batch: int | None = None, steps: int | None = None,
                      method: str | None = None, threads: int | None = None,
                      overwrite: bool = False, residual_gain: float | None = None) -> dict:
    """Generate an ensemble around member ``member`` of ``run`` and write :data:`OUTPUTS` to
    ``out`` (module docstring). ``model``: a shipped model's name, a path, or a
    :class:`closures.ensemble_ldm.EnsembleGenerator`; ``steps``, ``method``, ``batch``,
    ``residual_gain``: see :meth:`~closures.ensemble_ldm.EnsembleGenerator.generate`. Everything
    is checked before anything is written; returns the summary written to ``emulation.json``."""
    from closures.ensemble_ldm import EnsembleGenerator, load_generator
    members = integer("members", members, 1)
    seed = integer("seed", seed, 0)
    member = integer("member", member, 0)
    at = number("at", at, allow_none=True)
    t_end = number("t_end", t_end, allow_none=True)
    out = check_output_folder(out, overwrite, OUTPUTS, overwrite_hint="--overwrite")
    gen = model if isinstance(model, EnsembleGenerator) else load_generator(model,
                                                                            threads=threads)
    src = read_conditioning(run, member, at, t_end)
    check_source(src, gen.points, gen.interval, "RUN", "generates")
    method = gen.method(method)
    steps = gen.sample_steps(steps, method)
    gain = gen.residual_gain(residual_gain)
    centre = None if gen.mean is None else (gen.mean.name or "given")
    scale = gen.spread_scale()
    if (centre is not None or scale) and members < 2:
        raise ValueError(f"--members must be ≥ 2 to centre the ensemble on its mean or scale "
                         f"its spread (the model's ensemble mean {centre}, spread scale "
                         f"{'yes' if scale else 'none'}), got {members}")
    t0 = time.perf_counter()
    X = gen.generate(src["U_c"], members, seed, batch=batch, method=method, steps=steps,
                     residual_gain=gain)
    wall = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    name = gen.card.get("name", "ensemble-ldm") if isinstance(model, EnsembleGenerator) \
        else str(model)
    times = src["times"]
    config = {"source": src["config"], "emulator": {
        "model": "ensemble-ldm", "name": name, "mode": gen.mode, "config": gen.model.config,
        "conditioning": os.fspath(src["path"]), "member": member, "at": float(times[0]),
        "interval": src["interval"], "members": members, "seed": seed, "method": method,
        "steps": steps, "residual_gain": gain, "centre": centre, "spread_scale": scale}}
    write_emulation(out / "emulation.nc", X, times, src["L"], config, seed, overwrite=overwrite)
    emulation_figures(out, src, X, times, label=f"ensemble-ldm ({gen.mode})")
    span = float(times[-1] - times[0])
    summary = {"model": name, "mode": gen.mode, "run": os.fspath(src["path"]),
               "member": member, "at": float(times[0]), "t_end": float(times[-1]),
               "interval": src["interval"], "members": members, "records": int(len(times)),
               "seed": seed, "method": method, "steps": steps, "residual_gain": gain,
               "centre": centre, "spread_scale": scale, "wall_s": wall,
               "s_per_member_per_time_unit": wall / (members * span),
               "outputs": list(OUTPUTS)}
    write_json(out / "emulation.json", summary)
    return summary
