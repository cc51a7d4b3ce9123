"""Emulator workflows: ensembles of the zonal jets U(y, t) from a trained stochastic latent
transformer (:mod:`closures.slt`), started from a recorded state.

:func:`emulate_slt` reads the L = ``window`` records of ``zonal_mean_u`` of one member of a run
ending at time ``at`` (default: its last record; read with :func:`hybrid.jets.read_profiles`),
runs ``members`` emulated continuations to ``t_end`` at the run's save interval (which must be
the model's training data's), and writes to ``out``:

* ``emulation.nc`` — the same format as ``hybrid dns --record zonal-mean``
  (:class:`solvers.io.TrajectoryWriter`): ``zonal_mean_u (member, time, y)`` with the start state
  as the first record (time ``at``, every member), then one record per save; ``step`` counts
  saves; ``energy`` and ``enstrophy`` (of the full 2D flow, which an emulator of U(y) does not
  know) are NaN; the configuration attribute holds the source run's configuration under
  ``source`` and the emulator's under ``emulator``; the parameters of a conditioned model
  (``{'beta': 5.66}``) are under ``emulator.parameters`` and at the top level too, where a
  run's configuration holds them (:func:`closures.slt.read_parameters` reads them there). Every
  diagnostic that reads U(y) (``hybrid jets``) reads it like a DNS record.
* ``hovmoller.png`` — U(y, t) of the source run and of member 0 side by side, with jet counts;
* ``statistics.png`` — the time-mean spectrum of U(y) and the energy ½⟨U²⟩ over time, source
  run against the emulation;
* ``emulation.json`` — what was run (with the ``parameters`` of a conditioned model), the wall
  time and the cost per member per time unit.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from solvers.files import check_output_folder, write_json
from solvers.grid import Grid
from solvers.io import TrajectoryWriter
from solvers.validate import integer, number

__all__ = ["emulate_slt", "read_history", "read_source", "record_at", "check_source",
           "write_emulation", "emulation_figures", "SLTEmulation", "OUTPUTS"]

OUTPUTS = ("emulation.nc", "hovmoller.png", "statistics.png", "emulation.json")


class SLTEmulation:
    """What :class:`solvers.io.TrajectoryWriter` records of an emulation: the grid of the source
    run, the members, the time, the save count, the current profiles U (members, n) and the
    configuration; energy and enstrophy are NaN (module docstring)."""

    kind = "betaplane"

    def __init__(self, grid: Grid, members: int, config: dict, t: float, seed: int):
        self.grid, self.members, self._config = grid, int(members), config
        self.t, self.step_count, self.seed = float(t), 0, int(seed)
        self.U = np.zeros((self.members, grid.n))

    def config(self) -> dict:
        return self._config

    def zonal_mean_u(self) -> np.ndarray:
        return self.U

    def energy(self) -> np.ndarray:
        return np.full(self.members, np.nan)

    enstrophy = energy


def read_source(path, role: str, member: int) -> tuple[dict, float]:
    """The run ``path`` (:func:`hybrid.jets.read_profiles` as ``role``) and its save interval
    (the median spacing of its records), ``member`` checked against its members: what every
    emulator reads its start from. ValueError naming ``role`` or ``--member``."""
    from hybrid.jets import JetsError, read_profiles
    try:
        src = read_profiles(path, role=role)
    except JetsError as e:
        raise ValueError(str(e)) from None
    members = src["U"].shape[0]
    if not 0 <= member < members:
        raise ValueError(f"--member must be in [0, {members - 1}] for {src['path']}, got "
                         f"{member}")
    return src, float(np.median(np.diff(src["t"])))


def record_at(t: np.ndarray, at: float, interval: float, flag: str, path) -> int:
    """The index of the record of ``t`` at time ``at`` (within half the save ``interval``);
    ValueError naming ``flag`` and ``path`` if there is none."""
    i = int(np.argmin(np.abs(t - at)))
    if abs(t[i] - at) > 0.5 * interval:
        raise ValueError(f"{flag} {at:g}: {path} has no record there (records from {t[0]:g} to "
                         f"{t[-1]:g} every {interval:g})")
    return i


def check_source(src: dict, points: int | None, trained, role: str, verb: str,
                 spacing: float | None = None) -> None:
    """ValueError naming ``role`` unless the source run ``src`` (with its save ``interval``) has
    the model's ``points`` per profile (the model ``verb`` that many; None: any number, for a
    model of any length, which needs its training grid ``spacing`` L/n where its card records
    it) and, where the model records it, its ``trained`` save interval."""
    n, interval = src["U"].shape[-1], src["interval"]
    if points is not None and n != points:
        raise ValueError(f"{role}: {src['path']} has profiles of {n} points; the model {verb} "
                         f"{points}")
    if points is None and spacing and not np.isclose(src["L"] / n, spacing, rtol=1e-6):
        raise ValueError(f"{role}: {src['path']} has a grid spacing L/n = {src['L'] / n:g}; "
                         f"the model was trained at {spacing:g} (it runs on profiles of any "
                         f"length at that spacing)")
    if trained and not np.isclose(trained, interval, rtol=1e-6):
        raise ValueError(f"{role}: {src['path']} is saved every {interval:g}; the model was "
                         f"trained on saves every {trained:g}")


def read_history(init, window: int, at: float | None = None, member: int = 0) -> dict:
    """The ``window`` records of member ``member`` of ``init`` ending at the record at time
    ``at`` (within half a save interval; default the last record): ``history`` (window, n),
    ``t0`` (its last time), ``interval``, and the source's ``U``, ``t``, ``y``, ``L``,
    ``config``, ``path``. ValueError naming ``--init``, ``--at`` or ``--member``."""
    src, interval = read_source(init, "--init", member)
    U, t = src["U"], src["t"]
    i = len(t) - 1 if at is None else record_at(t, at, interval, "--at", src["path"])
    if i + 1 < window:
        raise ValueError(f"--at: the model needs {window} records up to the start; "
                         f"{src['path']} has {i + 1} up to t = {t[i]:g}")
    span = np.diff(t)[i + 1 - window:i]
    if span.size and not np.allclose(span, interval, rtol=1e-6):
        raise ValueError(f"--init: the records of {src['path']} before t = {t[i]:g} are not "
                         f"evenly spaced")
    return {**src, "history": U[member, i + 1 - window:i + 1], "t0": float(t[i]),
            "interval": interval, "member": member}


def emulate_slt(model, init, out, *, members: int, t_end: float, at: float | None = None,
                member: int = 0, seed: int = 0, batch: int | None = None,
                threads: int | None = None, overwrite: bool = False,
                reencode: bool | None = None, params: dict | None = None) -> dict:
    """Run an SLT ensemble from a recorded state and write :data:`OUTPUTS` to ``out`` (module
    docstring). ``model``: a shipped model's name, a path, or a
    :class:`closures.slt.Emulator`; ``reencode``: see :meth:`closures.slt.Emulator.rollout`;
    ``params``: the parameters of a conditioned model (default: the emulator's own). Returns
    the summary written to ``emulation.json``. Everything is checked before anything is
    written."""
    from closures.slt import Emulator, load_emulator
    members = integer("members", members, 1)
    seed = integer("seed", seed, 0)
    member = integer("member", member, 0)
    t_end = number("t_end", t_end)
    out = check_output_folder(out, overwrite, OUTPUTS, overwrite_hint="--overwrite")
    em = model if isinstance(model, Emulator) else load_emulator(model, threads=threads)
    src = read_history(init, em.window, at, member)
    n = src["history"].shape[1]
    check_source(src, None if em.any_length else em.points, em.interval, "--init", "emulates",
                 spacing=em.spacing)
    steps = int(round((t_end - src["t0"]) / src["interval"]))
    if steps < 1:
        raise ValueError(f"--t-end must be at least one save interval ({src['interval']:g}) after "
                         f"the start t = {src['t0']:g}, got {t_end:g}")
    t0 = time.perf_counter()
    reencode = em.reencode if reencode is None else bool(reencode)
    U = em.rollout(src["history"], steps, members, seed, batch=batch, reencode=reencode,
                   params=params)
    wall = time.perf_counter() - t0
    used = params if params is not None else em.params
    used = em.model.check_params(used) if em.parameter_names else None

    out.mkdir(parents=True, exist_ok=True)
    name = str(model) if not isinstance(model, Emulator) else em.card.get("name", "emulator")
    config = {"source": src["config"], "emulator": {
        "model": "slt", "name": name, "config": em.model.config,
        "init": os.fspath(src["path"]), "member": member, "at": src["t0"],
        "interval": src["interval"], "members": members, "seed": seed, "steps": steps,
        "reencode": bool(reencode), "parameters": used,
        "noise_memory": em.noise_memory, "spread_gain": em.spread_gain}}
    config.update(used or {})
    times = src["t0"] + src["interval"] * np.arange(steps + 1)
    full = np.concatenate([np.broadcast_to(src["history"][-1], (members, 1, n)), U], axis=1)
    write_emulation(out / "emulation.nc", full, times, src["L"], config, seed,
                    overwrite=overwrite)
    emulation_figures(out, src, full, times)
    summary = {"model": name, "init": os.fspath(src["path"]), "member": member,
               "at": src["t0"], "t_end": float(times[-1]), "interval": src["interval"],
               "members": members, "steps": steps, "seed": seed,
               "reencode": bool(reencode), "parameters": used,
               "noise_memory": em.noise_memory, "spread_gain": em.spread_gain,
               "compiled": em.compiled, "wall_s": wall,
               "s_per_member_per_time_unit": wall / (members * steps * src["interval"]),
               "outputs": list(OUTPUTS)}
    write_json(out / "emulation.json", summary)
    return summary


def write_emulation(path, U: np.ndarray, times, L: float, config: dict, seed: int,
                    overwrite: bool = False) -> Path:
    """Profiles U (members, records, n) at ``times`` (records,) written to ``path`` in the format
    of ``hybrid dns --record zonal-mean`` (:class:`solvers.io.TrajectoryWriter` recording
    :class:`SLTEmulation`: ``step`` counts records from 0, energy and enstrophy NaN), box side
    ``L``, ``config`` as the configuration attribute. Every emulator's members go through it."""
    members, records, n = U.shape
    if len(times) != records:
        raise ValueError(f"{records} records of U for {len(times)} times")
    emu = SLTEmulation(Grid(n, L), members, config, times[0], seed)
    with TrajectoryWriter(path, emu, record="zonal-mean", overwrite=overwrite) as w:
        for k in range(records):
            emu.t, emu.step_count, emu.U = float(times[k]), k, U[:, k]
            w.write()
    return Path(path)


def emulation_figures(out: Path, src: dict, U: np.ndarray, t: np.ndarray,
                      label: str = "SLT") -> None:
    """``hovmoller.png`` (member ``src['member']`` of the source run and member 0 of the
    emulation, ``label``) and ``statistics.png`` (spectrum and energy, source against emulation)
    in ``out``, for an emulation U (members, records, n) at times t."""
    from hybrid import plots
    from hybrid.jets import count_jets, spectrum, zonal_energy
    kf = (src["config"] or {}).get("kf")
    k_s = float(kf) / 2 if kf else 4.0
    L, y = src["L"], src["y"]
    U_src, t_src = src["U"][src["member"]], src["t"]
    plots.plot_jet_hovmoller(
        [(f"source run, member {src['member']}", t_src, y, U_src, count_jets(U_src, L, k_s)),
         (f"{label}, member 0", t, y, U[0], count_jets(U[0], L, k_s))],
        out / "hovmoller.png", title=f"jet count: smoothing k_s = {k_s:g}")
    spec = {"mode": np.arange(U.shape[-1] // 2 + 1), "reference": spectrum(src["U"]),
            "run": spectrum(U)}
    series = {"reference": {"t": t_src, "energy": zonal_energy(src["U"]).mean(axis=0)},
              "run": {"t": t, "energy": zonal_energy(U).mean(axis=0)}}
    plots.plot_jet_spectra(spec, series, out / "statistics.png")
