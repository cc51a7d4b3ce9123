"""What a run cost, read from its ``run.json``: the file :class:`hybrid.simulation.Simulation` (and
so ``hybrid dns``, ``hybrid run`` and :mod:`hybrid.ensemble`) writes beside the trajectory.

The keys read, all required (:data:`COST_KEYS`): ``members``, ``simulated_time`` (time units
covered by the wall time) and the ``timings`` block: ``wall_s`` (the whole run), ``solver_s`` (the
solver's steps without the closure) and ``closure_s`` (the closure). A ``run.json`` that lacks one
of them, or holds something else than a number ≥ 0 there, raises :class:`CompareError` naming the
file and the key. A trajectory without a ``run.json`` beside it (or whose ``run.json`` names another
trajectory file) has an unknown cost, which is not an error.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..simulation import RUN_JSON, TRAJECTORY
from .sources import CompareError

__all__ = ["COST_KEYS", "read_run_json", "run_cost"]

COST_KEYS = ("members", "simulated_time", "timings.wall_s", "timings.solver_s",
             "timings.closure_s")


def read_run_json(trajectory, role: str = "RUN") -> tuple[Path | None, dict | None]:
    """(path, contents) of the ``run.json`` beside ``trajectory`` (a trajectory file or a run
    folder), or (None, None) when there is none or it describes another trajectory of the folder.
    An unreadable file raises :class:`CompareError` naming ``role`` and the file."""
    trajectory = Path(trajectory)
    if trajectory.is_dir():
        trajectory = trajectory / TRAJECTORY
    path = trajectory.parent / RUN_JSON
    if not path.is_file():
        return None, None
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CompareError(f"{role}: {path} is not readable JSON ({e})") from None
    if not isinstance(info, dict):
        raise CompareError(f"{role}: {path} does not hold a JSON object")
    named = info.get("trajectory")
    if isinstance(named, str) and Path(named).name != trajectory.name:
        return None, None                  # that run.json describes another file of the folder
    return path, info


def _number(info: dict, key: str, path: Path, role: str) -> float:
    """The number at the dotted ``key`` of ``info``; CompareError naming the file and the key."""
    value = info
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise CompareError(f"{role}: {path} has no {key!r}: a run.json of this package holds "
                               f"{', '.join(COST_KEYS)}")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise CompareError(f"{role}: {path}: {key!r} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def run_cost(trajectory, role: str = "RUN") -> dict:
    """Wall seconds per simulated time unit, in total and per member, split into solver and
    closure, from the ``run.json`` beside ``trajectory`` (a trajectory file or a run folder).
    The values are None, with a 'note', when there is no run.json."""
    path, info = read_run_json(trajectory, role)
    out = {"run_json": None if path is None else str(path), "wall_s": None,
           "simulated_time": None, "members": None, "closure_s": None, "solver_s": None,
           "wall_per_time": None, "wall_per_time_per_member": None,
           "closure_per_time_per_member": None, "solver_per_time_per_member": None,
           "closure_fraction": None}
    if info is None:
        out["note"] = "no run.json beside the trajectory: cost unknown"
        return out
    members, sim, wall, solver, closure = (_number(info, k, path, role) for k in COST_KEYS)
    if members < 1 or members != int(members):
        raise CompareError(f"{role}: {path}: 'members' must be an integer ≥ 1, got {members!r}")
    if sim <= 0:
        raise CompareError(f"{role}: {path}: 'simulated_time' is {sim!r}: the run covered no "
                           f"time, so it has no cost per time unit")
    m = int(members)
    out.update(wall_s=wall, simulated_time=sim, members=m, closure_s=closure, solver_s=solver,
               wall_per_time=wall / sim, wall_per_time_per_member=wall / sim / m,
               closure_per_time_per_member=closure / sim / m,
               solver_per_time_per_member=solver / sim / m,
               closure_fraction=closure / wall if wall > 0 else None)
    return out
