"""Initial states read from files, for ``--init``: the coarse-grained vorticity of a DNS
trajectory for every member (:func:`coarse_initial_from_trajectory`, ``hybrid run --init``), or one
saved 2D state for every member (:func:`state_from_file`, ``hybrid dns --init FILE --at T``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from solvers.grid import Grid
from solvers.validate import integer, number



def _span(times) -> str:
    return (f"its {len(times)} records span t={times[0]:g}…{times[-1]:g}" if len(times)
            else "it has no records")


def record_index(times, t: float, path) -> int:
    """The index of the record of ``times`` at ``t`` (within 1e-6·max(1, |t|)); ValueError naming
    ``path`` and the records' span if there is none."""
    i = int(np.argmin(np.abs(times - t))) if len(times) else 0
    if not len(times) or abs(times[i] - t) > 1e-6 * max(1.0, abs(t)):
        raise ValueError(f"{path} has no record at t={t:g}; {_span(times)}")
    return i

def coarse_initial_from_trajectory(path, grid: Grid, members: int | None = None,
                                   time: float | None = None, solver: str | None = None
                                   ) -> tuple[np.ndarray, float, dict]:
    """Initial LES fields from a DNS trajectory (written by ``hybrid dns``): the record at time
    ``time`` (default the first) of every member, coarse-grained to ``grid`` with
    :func:`solvers.filters.coarse_grain` (Gaussian filter Δ = 2·dx_LES, then truncation to the
    LES grid's dealiased modes).

    Returns ``(zeta_hat, t, info)``: spectral fields (members, n, n//2+1) in the solvers'
    normalisation, the record's time, and a dict describing the source. ``members``, if given,
    must equal the trajectory's member count; ``solver``, if given, its solver class. Problems
    raise ValueError / FileNotFoundError naming the file.
    """
    from solvers.filters import coarse_grain
    from solvers.io import open_trajectory

    p = Path(os.fspath(path)).expanduser()
    with open_trajectory(p, need="vorticity") as ds:
        attrs = dict(ds.attrs)
        if solver is not None and attrs.get("solver") not in (None, solver):
            raise ValueError(f"{p} is a {attrs.get('solver')} trajectory; this run needs a "
                             f"{solver} DNS")
        nm, nt = int(ds.sizes["member"]), int(ds.sizes["time"])
        ny, nx = int(ds.sizes["y"]), int(ds.sizes["x"])
        if members is not None and nm != members:
            raise ValueError(f"{p} holds {nm} member(s) but the run has {members}; the DNS "
                             f"trajectory's member count must match --members")
        if nt == 0:
            raise ValueError(f"{p} holds no records")
        if nx != ny:
            raise ValueError(f"{p} has a {ny}×{nx} grid; expected a square one")
        L = float(attrs.get("L", grid.L))
        if not np.isclose(L, grid.L, rtol=1e-10):
            raise ValueError(f"{p} is on a box of side L={L:g}; the LES grid has L={grid.L:g}")
        if grid.n > nx or nx % grid.n:
            raise ValueError(f"the LES grid n={grid.n} must divide the DNS grid n={nx} of {p}")
        times = np.asarray(ds["time"].values, dtype=np.float64)
        i = 0 if time is None else record_index(times, time, p)
        zeta = np.asarray(ds["vorticity"].isel(time=i).values, dtype=np.float64)
    fine = Grid(nx, grid.L)
    zh = coarse_grain(fine, grid, np.fft.rfft2(zeta))
    info = {"path": str(p), "time": float(times[i]), "record": i, "dns_n": nx,
            "members": nm, "filter": "gaussian, delta = 2 dx_les, then truncation"}
    return np.ascontiguousarray(zh, dtype=np.complex128), float(times[i]), info


# ------------------------------------------------------------------------------------ one state
def state_from_file(path, solver, at: float | None = None, member: int = 0
                    ) -> tuple[np.ndarray, float, dict]:
    """One saved 2D state to start an ensemble from (``hybrid dns --init FILE --at T``): the
    spectral vorticity of member ``member`` of ``path`` at time ``at``, for ``solver``'s grid.

    ``path`` is a restart file (:func:`solvers.io.write_restart`; its exact spectral state, at its
    one time: ``at`` None or that time) or a trajectory recorded in full (the record at time
    ``at``, within 10⁻⁶ relative; the stored vorticity, float32 unless the run stored float64).
    A zonal-mean trajectory holds no 2D state and is refused. The file's solver class, grid size
    n and box L must be ``solver``'s (its other parameters may differ). Returns ``(zeta_hat, t,
    info)``: (n, n//2+1) complex128 in the solvers' normalisation, the state's time and a dict
    describing the source. Problems raise ValueError / FileNotFoundError naming the file."""
    import netCDF4

    from solvers.io import load_restart, open_trajectory
    from solvers.io.schema import check_input_path

    p = check_input_path(path, "initial-state file")
    member = integer("member", member, 0)
    at = number("at", at, allow_none=True)
    try:
        with netCDF4.Dataset(p, "r") as nc:
            is_restart = "restart_format" in nc.ncattrs()
    except OSError as e:
        raise ValueError(f"{p} is not a readable netCDF4 file (a restart file or a trajectory "
                         f"was expected): {e}") from None
    want = (type(solver).__name__, int(solver.grid.n), float(solver.grid.L))

    def check(kind: str, have_solver, n, L, members):
        if have_solver != want[0]:
            raise ValueError(f"{p} is a {kind} of a {have_solver} run; this run is a {want[0]}")
        if int(n) != want[1] or not np.isclose(float(L), want[2], rtol=1e-10):
            raise ValueError(f"{p} is a {kind} on a {n}² grid of side L={float(L):g}; this run "
                             f"has n={want[1]}, L={want[2]:g} (set --n to match)")
        if member >= members:
            raise ValueError(f"{p} holds {members} member(s); member {member} does not exist")

    if is_restart:
        saved = load_restart(p)
        cfg, st = saved["config"], saved["state"]
        zh = np.asarray(st["zeta_hat"])
        check("restart file", saved["solver"], cfg.get("n", zh.shape[-2]),
              cfg.get("L", want[2]), zh.shape[0])
        t = float(st["t"])
        if at is not None and abs(at - t) > 1e-6 * max(1.0, abs(t)):
            raise ValueError(f"{p} is a restart file of the state at t={t:.10g}, not t={at:g} "
                             f"(leave out the time or give {t:.10g})")
        state = np.array(zh[member], dtype=np.complex128)
        info = {"path": str(p), "kind": "restart", "time": t, "step": int(st["step"]),
                "member": member}
        return state, t, info

    with open_trajectory(p, need="vorticity") as ds:
        attrs = dict(ds.attrs)
        check("trajectory", attrs.get("solver"), ds.sizes["x"], attrs.get("L", want[2]),
              int(ds.sizes["member"]))
        times = np.asarray(ds["time"].values, dtype=np.float64)
        if at is None:
            raise ValueError(f"{p} is a trajectory: give the time of the record to start from "
                             f"({_span(times)})")
        i = record_index(times, at, p)
        stored = ds["vorticity"].isel(member=member, time=i).values
        step = int(ds["step"].values[i]) if "step" in ds.variables else None
    info = {"path": str(p), "kind": "trajectory", "time": float(times[i]), "record": i,
            "step": step, "member": member, "stored_dtype": str(stored.dtype)}
    return np.fft.rfft2(np.asarray(stored, dtype=np.float64)), float(times[i]), info
