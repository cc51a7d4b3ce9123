"""Writing a closure dataset's files: the new file with its complete header and no samples
(:func:`create_file`, atomic), the DNS restart beside it (:func:`write_restart`, atomic) and the
temporary files a killed run may leave (:func:`remove_stale`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from solvers.io.schema import now

from .plan import Plan
from .schema import fsync_dir, fsync_path, pending_path

__all__ = ["create_file", "write_restart", "remove_stale"]


def create_file(plan: Plan) -> None:
    """Write the empty dataset (header, coordinates, no samples) to a temporary file and move it
    into place, so the path never holds a file without a complete header."""
    import netCDF4
    import tempfile
    out = plan.out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    n = plan.coarse.n
    try:
        with netCDF4.Dataset(tmp, "w", clobber=True, format="NETCDF4") as ds:
            ds.createDimension("sample", None)
            ds.createDimension("y", n)
            ds.createDimension("x", n)
            for name, values in (("x", plan.coarse.x), ("y", plan.coarse.y)):
                v = ds.createVariable(name, "f8", (name,))
                v.units = "solver length units"
                v.long_name = f"{name} coordinate of the LES grid (cell corners)"
                v.axis = name.upper()
                v[:] = values
            sign = plan.attrs["closure_sign"]
            chunks = (1, n, n)
            w = ds.createVariable("omega_bar", "f4", ("sample", "y", "x"), chunksizes=chunks)
            s = ds.createVariable("subgrid", "f4", ("sample", "y", "x"), chunksizes=chunks)
            if plan.target == "subgrid":
                w.long_name = "filtered vorticity w_bar = T(G w) on the LES grid"
                s.long_name = ("exact subgrid term Pi = T(G N(w)) - N(w_bar), N(w) = u.grad w; "
                               "the LES closure tendency is C = -Pi")
            else:
                w.long_name = "DNS vorticity subsampled to the coarse grid"
                s.long_name = ("missing physics H = -u.grad w of the DNS, subsampled to the "
                               "coarse grid; the closure tendency is C = +H")
            w.units = "1/time"
            s.units = "1/time^2"
            s.closure_sign = sign
            m = ds.createVariable("member", "i4", ("sample",))
            m.long_name = "ensemble member of the sample"
            t = ds.createVariable("time", "f8", ("sample",))
            t.long_name = "DNS time of the sample"
            t.units = "solver time units"
            st = ds.createVariable("step", "i8", ("sample",))
            st.long_name = "DNS step count of the sample"
            if plan.consecutive > 1:
                q = ds.createVariable("sequence", "i8", ("sample",))
                q.long_name = ("sequence of consecutive samples: the sampling time index k "
                               "(one member's samples of a sequence are a history)")
                j = ds.createVariable("position", "i4", ("sample",))
                j.long_name = ("place j in the sequence: time t_k + j * refresh_interval "
                               "(0 ... consecutive - 1)")
            ds.setncatts({**plan.attrs, "samples_requested": np.int64(plan.samples_requested),
                          "sampling_times_requested": np.int64(plan.times),
                          "samples_complete": np.int64(0),
                          "sampling_times_complete": np.int64(0), "updated": now()})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                  # mkstemp made it private
        fsync_path(Path(tmp))
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_restart(plan: Plan, done: int) -> None:
    """Atomically replace ``<out>.restart.nc`` with the DNS now, tagged with this dataset's run id
    and ``done`` complete sampling times."""
    import netCDF4
    from solvers import io as sio
    pending = pending_path(plan.out)
    sio.write_restart(plan.solver, pending)
    with netCDF4.Dataset(pending, "a") as ds:
        ds.setncatts({"generate_run_id": plan.attrs["run_id"],
                      "generate_sampling_times_done": np.int64(done),
                      "generate_dataset": plan.out.name})
    fsync_path(pending)
    os.replace(pending, plan.restart)
    fsync_dir(plan.out.parent)


def remove_stale(plan: Plan, restart_too: bool) -> None:
    """Temporary files a killed run may have left (ours only), and on overwrite the old restart."""
    folder = plan.out.parent
    if not folder.is_dir():
        return
    for stale in folder.glob(f".{plan.out.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    pending_path(plan.out).unlink(missing_ok=True)
    if restart_too:
        plan.restart.unlink(missing_ok=True)

