"""hybrid.ensemble: members batched in one process or split into Dask tasks on a real cluster."""
import dataclasses
import functools
import json
import os
import signal
import time

import numpy as np
import pytest
import xarray as xr

from hybrid.cli import main
from hybrid.ensemble import (Ensemble, SchedulerUnreachable, run_batch,
                             write_gathered_trajectory)
from hybrid.simulation import expected_closure_calls
from solvers import BlowUpError

distributed = pytest.importorskip("distributed")

COMMON = ["kolmogorov", "--closure", "smagorinsky", "--every", "3", "--members", "4",
          "--n", "16", "--t-end", "0.1", "--output-every", "0.05", "--seed", "7"]


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster for the module: 2 worker processes, one thread each, loopback only."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as lc, \
            distributed.Client(lc, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        yield lc, client


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same 4-member run, batched in this process (`hybrid run` without Dask)."""
    out = tmp_path_factory.mktemp("ref") / "ref"
    assert main(["run", *COMMON, "--out", str(out)]) == 0
    return out / "trajectory.nc"


def _load(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


def _assert_same_run(path, ref_path):
    a, b = _load(path), _load(ref_path)
    np.testing.assert_array_equal(a["vorticity"].values, b["vorticity"].values)
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    np.testing.assert_array_equal(a["step"].values, b["step"].values)
    np.testing.assert_array_equal(a["energy"].values, b["energy"].values)
    np.testing.assert_array_equal(a["enstrophy"].values, b["enstrophy"].values)
    skip = {"created"}
    assert {k: v for k, v in a.attrs.items() if k not in skip} == \
        {k: v for k, v in b.attrs.items() if k not in skip}


def test_dask_batches_equal_the_one_process_run(tmp_path, cluster, reference):
    lc, _ = cluster
    out = tmp_path / "dask"
    assert main(["run", *COMMON, "--scheduler", lc.scheduler_address, "--batch-size", "2",
                 "--out", str(out)]) == 0
    _assert_same_run(out / "trajectory.nc", reference)
    info = json.loads((out / "run.json").read_text())
    ex = info["execution"]
    assert info["status"] == "ok" and ex["mode"] == "dask" and ex["batch_size"] == 2
    assert [b["first_member"] for b in ex["batches"]] == [0, 2]
    assert info["members"] == 4 and info["solver_config"]["members"] == 4
    ref = json.loads((reference.parent / "run.json").read_text())
    assert info["steps"] == ref["steps"] == 20
    assert info["timings"]["closure_calls"] == 2 * ref["timings"]["closure_calls"]


def _kill_worker_once(marker, spec):
    """A task that kills its own worker process the first time any task runs it."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return run_batch(spec)
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)                                   # pragma: no cover


def test_lost_worker_is_retried_and_the_file_is_complete(tmp_path, cluster, reference):
    _, client = cluster
    marker = tmp_path / "killed-once"
    ens = Ensemble("kolmogorov", "smagorinsky", every=3, members=4, seed=7,
                   overrides={"n": 16})
    res = ens.run(0.1, tmp_path / "k", output_every=0.05, client=client, batch_size=2,
                  progress=False, task=functools.partial(_kill_worker_once, str(marker)))
    assert marker.exists()                                        # a worker did die
    assert res.status == "ok" and res.records == 3 and len(res.batches) == 2
    _assert_same_run(res.trajectory, reference)
    client.wait_for_workers(2, timeout=60)                       # the nanny restarted it


def test_uneven_batches_and_the_api(tmp_path, cluster, reference):
    _, client = cluster
    ens = Ensemble("kolmogorov", "smagorinsky", every=3, members=4, seed=7,
                   overrides={"n": 16})
    wall0 = time.perf_counter()
    res = ens.run(0.1, tmp_path / "u", output_every=0.05, client=client, batch_size=3,
                  progress=False)
    wall = time.perf_counter() - wall0
    assert [(b["first_member"], b["members"]) for b in res.batches] == [(0, 3), (3, 1)]
    _assert_same_run(res.trajectory, reference)
    # each task calls the closure at steps 0, 3, …, 18 of its 20; its stepping and closure time
    # lie within its wall time, which lies within the client's, which lies within this call's
    assert [b["closure_calls"] for b in res.batches] == [expected_closure_calls(0, 20, 3)] * 2
    assert res.closure_calls == 2 * 7
    for b in res.batches:
        assert b["solver_s"] + b["closure_s"] <= b["wall_s"] <= res.wall_s
    assert res.task_wall_s == pytest.approx(sum(b["wall_s"] for b in res.batches))
    assert res.solver_s + res.closure_s <= res.task_wall_s
    assert res.wall_s <= wall


def test_blowup_in_a_task_raises_and_writes_run_json(tmp_path, cluster):
    _, client = cluster
    ens = Ensemble("kolmogorov", "none", members=2, seed=0, overrides={"n": 16, "dt": 2.0})
    with pytest.raises(BlowUpError, match="blew up"):
        ens.run(40.0, tmp_path / "b", output_every=10.0, client=client, batch_size=1,
                progress=False)
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert info["status"] == "blew up"


def test_unreachable_scheduler_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    before = time.perf_counter()
    assert main(["run", *COMMON, "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert time.perf_counter() - before < 30
    err = capsys.readouterr().err
    assert "--scheduler tcp://127.0.0.1:1" in err and "cannot connect" in err
    assert list(tmp_path.iterdir()) == []
    ens = Ensemble("kolmogorov", "none", overrides={"n": 16})
    with pytest.raises(SchedulerUnreachable):
        ens.run(0.1, tmp_path / "y", scheduler="tcp://127.0.0.1:1", connect_timeout=1,
                progress=False)
    assert list(tmp_path.iterdir()) == []


def test_gathered_writer_checks_its_input(tmp_path):
    ens = Ensemble("kolmogorov", "none", members=2, overrides={"n": 16})
    parts = [run_batch(ens.spec(m, 1, 0.01, 0.005)) for m in (0, 1)]
    with pytest.raises(ValueError, match="expected member 1"):
        write_gathered_trajectory(tmp_path / "a.nc", ens.template, 2, [parts[0], parts[0]])
    with pytest.raises(ValueError, match="hold 1 members"):
        write_gathered_trajectory(tmp_path / "a.nc", ens.template, 2, parts[:1])
    assert write_gathered_trajectory(tmp_path / "a.nc", ens.template, 2, parts[::-1]) == 3
    one = ens.run(0.01, tmp_path / "one", output_every=0.005, progress=False)
    with xr.open_dataset(tmp_path / "a.nc") as a, xr.open_dataset(one.trajectory) as b:
        np.testing.assert_array_equal(a["vorticity"].values, b["vorticity"].values)


def test_gathered_betaplane_file_matches_one_process_run(tmp_path):
    ens = Ensemble("betaplane-small", "leith", every=2, members=3, seed=2)
    parts = [run_batch(ens.spec(m0, b, 0.5, 0.2)) for m0, b in ens.batches(2)]
    write_gathered_trajectory(tmp_path / "g.nc", ens.template, 3, parts)
    one = ens.run(0.5, tmp_path / "one", output_every=0.2, progress=False)
    _assert_same_run(tmp_path / "g.nc", one.trajectory)
    a = _load(tmp_path / "g.nc")
    assert a["zonal_mean_u"].shape == (3, 4, 32)                 # t = 0, .2, .4, .5
    np.testing.assert_array_equal(a["zonal_mean_u"].values, _load(one.trajectory)
                                  ["zonal_mean_u"].values)


def test_ldm_closure_in_batches_equals_the_one_process_run(tmp_path):
    """The shipped L-CDM: members 0-1 and 2-4 as two tasks (the split cuts the closure's network
    chunk of members 0-3) give the one-batch run bit for bit."""
    pytest.importorskip("torch")
    ens = Ensemble("kolmogorov", "ldm", every=1, closure_kwargs={"chunk": 4, "steps": 2},
                   members=5, seed=4)
    t_end, every = 3 * ens.template.dt, ens.template.dt
    one = ens.run(t_end, tmp_path / "one", output_every=every, progress=False)
    specs = [ens.spec(0, 2, t_end, every), ens.spec(2, 3, t_end, every)]
    write_gathered_trajectory(tmp_path / "g.nc", ens.template, 5, [run_batch(sp) for sp in specs])
    _assert_same_run(tmp_path / "g.nc", one.trajectory)
    assert _load(one.trajectory)["vorticity"].shape == (5, 4, 64, 64)
    # not by chance: calls sized by the batch alone round differently
    unaligned = run_batch(dataclasses.replace(specs[0], ensemble_members=None))
    assert not np.array_equal(unaligned["vorticity"][:, -1],
                              _load(one.trajectory)["vorticity"].values[:2, -1])


def test_dns_on_dask_writes_the_one_process_file(tmp_path, cluster):
    """``hybrid dns`` of a tiny beta-plane, 4 members in 2 tasks on the 2 workers: the zonal-mean
    record with a spin-up, the full record with --set, and members started from one state."""
    from test_zonal_records import assert_same_file, write_tiny_preset

    lc, _ = cluster
    preset = write_tiny_preset(tmp_path)
    base = tmp_path / "one-1" / "trajectory.nc"
    variants = [["--record", "zonal-mean"], ["--set", "beta=4", "--spinup", "0"],
                ["--init", str(base), "--at", "0.4", "--init-member", "2", "--t-end", "0.4"]]
    for i, extra in enumerate(variants):
        common = ["dns", str(preset), "--members", "4", "--seed", "6", *extra]
        one, dask = tmp_path / f"one-{i}", tmp_path / f"dask-{i}"
        assert main([*common, "--out", str(one)]) == 0
        assert main([*common, "--scheduler", lc.scheduler_address, "--batch-size", "2",
                     "--out", str(dask)]) == 0
        assert_same_file(one / "trajectory.nc", dask / "trajectory.nc")
        info = json.loads((dask / "run.json").read_text())
        assert info["execution"]["mode"] == "dask" and info["status"] == "ok"
        assert [b["first_member"] for b in info["execution"]["batches"]] == [0, 2]
        assert info["figures"] == json.loads((one / "run.json").read_text())["figures"]
    with xr.open_dataset(tmp_path / "dask-2" / "trajectory.nc") as ds:
        w0 = ds["vorticity"].isel(time=0).values
    assert all(np.array_equal(w0[m], w0[0]) for m in range(4))
