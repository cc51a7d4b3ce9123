"""solvers.io: trajectory files (layout, values, flushing, path checks) and restart files
(bit-exact continuation in this process and in a fresh one, atomic replacement, clear errors)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

import solvers
from solvers import BetaPlane, BlowUpError, KolmogorovFlow, fft
from solvers import io as sio

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _kolmogorov(**kw):
    args = dict(n=16, dt=0.05, members=2, seed=1)
    args.update(kw)
    s = KolmogorovFlow(**args)
    rng = np.random.default_rng(11)
    s.set_vorticity(rng.standard_normal((s.members, s.grid.n, s.grid.n)))
    return s


def _betaplane(**kw):
    args = dict(n=32, kf=6, kf_width=1.5, members=2, epsilon=1e-3, seed=5)
    args.update(kw)
    s = BetaPlane(**args)
    rng = np.random.default_rng(7)
    s.set_vorticity(0.5 * rng.standard_normal((s.members, s.grid.n, s.grid.n)))
    return s


class NoisyClosure:
    """A stochastic closure with memory: its own RNG and the last vorticity it saw."""
    every = 3

    def reset(self, grid, members, params, seed):
        self.rng = np.random.default_rng(1000 + (seed or 0))
        self.calls = 0
        self.last = np.zeros((members, grid.n, grid.n))

    def __call__(self, state):
        self.calls += 1
        term = 1e-2 * self.rng.standard_normal(state.vorticity.shape) - 1e-2 * self.last
        self.last = np.array(state.vorticity, dtype=np.float64)
        return term

    def get_state(self):
        return {"rng": self.rng.bit_generator.state, "calls": self.calls, "last": self.last.copy(),
                "tag": (1, 2.5, None)}

    def set_state(self, st):
        self.rng.bit_generator.state = st["rng"]
        self.calls = st["calls"]
        self.last = np.array(st["last"])
        assert st["tag"] == (1, 2.5, None)


def _listing(folder: Path):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------- trajectory
def test_trajectory_layout_attributes_and_values(tmp_path):
    s = _kolmogorov()
    path = tmp_path / "out" / "traj.nc"                    # folder is created
    snaps = []
    with sio.TrajectoryWriter(path, s) as w:
        def record(solver):
            w.write(solver)
            snaps.append((solver.t, solver.step_count, solver.vorticity.copy(),
                          solver.energy().copy(), solver.enstrophy().copy()))
        s.run(t_end=0.5, every=0.1, callback=record)
        assert w.records == len(snaps)
    assert len(snaps) == 6                                  # t = 0, 0.1, …, 0.5

    with xr.open_dataset(path) as ds:                       # plain xarray, no helper
        assert dict(ds.sizes) == {"member": 2, "time": 6, "y": 16, "x": 16}
        assert ds["vorticity"].dims == ("member", "time", "y", "x")
        assert ds["vorticity"].dtype == np.float32
        assert ds["energy"].dims == ("member", "time") and ds["energy"].dtype == np.float64
        assert ds["enstrophy"].dims == ("member", "time")
        assert "zonal_mean_u" not in ds                    # Kolmogorov runs have none
        for name in ("time", "x", "y", "vorticity", "energy", "enstrophy"):
            assert ds[name].attrs["units"] == "1", name
            assert ds[name].attrs["long_name"], name
        np.testing.assert_allclose(ds["x"].values, s.grid.x, rtol=0, atol=0)
        np.testing.assert_allclose(ds["y"].values, s.grid.y, rtol=0, atol=0)
        assert list(ds["member"].values) == [0, 1]
        np.testing.assert_array_equal(ds["time"].values, [t for t, *_ in snaps])
        np.testing.assert_array_equal(ds["step"].values, [k for _, k, *_ in snaps])
        for i, (_, _, vort, e, z) in enumerate(snaps):
            got = ds["vorticity"].isel(time=i).values
            np.testing.assert_allclose(got, vort, rtol=0, atol=1e-6 * np.abs(vort).max())
            np.testing.assert_array_equal(ds["energy"].isel(time=i).values, e)
            np.testing.assert_array_equal(ds["enstrophy"].isel(time=i).values, z)
        # consecutive records really differ (the run moved), so the check above is not vacuous
        assert not np.allclose(ds["vorticity"].isel(time=0), ds["vorticity"].isel(time=5))
        a = ds.attrs
        assert json.loads(a["config"]) == s.config()
        assert a["solver"] == "KolmogorovFlow" and a["kind"] == "kolmogorov"
        assert a["package_version"] == solvers.__version__
        assert int(a["seed"]) == 1
        assert a["conventions"] == a["Conventions"] == "CF-1.8"
        assert a["created"].startswith("20")
    # the config rebuilds the same solver class
    assert KolmogorovFlow(**json.loads(a["config"])).config() == s.config()


def test_trajectory_betaplane_float64_has_zonal_mean(tmp_path):
    s = _betaplane()
    path = tmp_path / "bp.nc"
    fields, zonal = [], []
    with sio.TrajectoryWriter(path, s, dtype="float64") as w:
        for _ in range(3):
            s.step(2)
            w.write()                                       # default: the constructor's solver
            fields.append(s.vorticity)
            zonal.append(s.zonal_mean_u())
    ds = sio.open_trajectory(path)
    try:
        assert ds["vorticity"].dtype == np.float64
        assert ds["zonal_mean_u"].dims == ("member", "time", "y")
        assert ds["zonal_mean_u"].attrs["units"] == "1"
        np.testing.assert_array_equal(ds["vorticity"].values, np.stack(fields, axis=1))
        np.testing.assert_array_equal(ds["zonal_mean_u"].values, np.stack(zonal, axis=1))
        assert ds.attrs["kind"] == "betaplane"
        assert json.loads(ds.attrs["config"]) == s.config()
    finally:
        ds.close()


def test_zonal_mean_record_any_solver_and_appending_keeps_the_record(tmp_path):
    s = _kolmogorov(members=3)
    path = tmp_path / "z.nc"
    zonal, energy = [], []
    with sio.TrajectoryWriter(path, s, record="zonal-mean") as w:
        for _ in range(3):
            s.step(2)
            w.write()
            zonal.append(s.zonal_mean_u().astype(np.float32))
            energy.append(s.energy())
    with netCDF4.Dataset(path) as nc:                # several records per HDF5 chunk
        assert nc["zonal_mean_u"].chunking() == [3, 4096 // (3 * 16), 16]
    with sio.open_trajectory(path) as ds:
        assert "vorticity" not in ds.variables and ds.attrs["record"] == "zonal-mean"
        assert ds["zonal_mean_u"].dtype == np.float32 and int(ds.attrs["records_complete"]) == 3
        np.testing.assert_array_equal(ds["zonal_mean_u"].values, np.stack(zonal, axis=1))
        np.testing.assert_array_equal(ds["energy"].values, np.stack(energy, axis=1))
        assert ds["x"].size == 16 and ds["y"].attrs["units"] == "1"
    with pytest.raises(sio.TrajectoryFileError, match="--record full"):
        sio.open_trajectory(path, need="vorticity")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="records 'zonal-mean'; cannot append 'full'"):
        sio.TrajectoryWriter(path, s, append=True, record="full")
    with pytest.raises(ValueError, match="record must be one of 'full', 'zonal-mean'"):
        sio.TrajectoryWriter(tmp_path / "other.nc", s, record="zonal")
    assert path.read_bytes() == before and not (tmp_path / "other.nc").exists()
    with sio.TrajectoryWriter(path, s, append=True) as w:     # the file's record, continued
        assert w.record == "zonal-mean" and w.records == 3
        s.step(2)
        w.write()
    with sio.open_trajectory(path) as ds:
        assert ds["zonal_mean_u"].shape == (3, 4, 16)


def test_writer_refuses_closed_and_mismatched(tmp_path):
    s = _kolmogorov()
    w = sio.TrajectoryWriter(tmp_path / "a.nc", s)
    with pytest.raises(ValueError, match="members=2"):
        w.write(_kolmogorov(members=1))
    w.close()
    w.close()                                               # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.write(s)


_WRITER_PRELUDE = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from solvers import KolmogorovFlow
    from solvers.io import TrajectoryWriter
    path, expected, how = sys.argv[1], sys.argv[2], sys.argv[3]
    s = KolmogorovFlow(n=16, dt=0.05, members=2, seed=3)
    s.set_vorticity(np.random.default_rng(0).standard_normal((2, 16, 16)))
    w = TrajectoryWriter(path, s)
    def write_records(k):           # k records two steps apart; their vorticity to `expected`
        snaps = []
        for _ in range(k):
            s.step(2)
            w.write(s)
            snaps.append(s.vorticity.astype(np.float32))
        np.save(expected, np.stack(snaps, axis=1))
""")

_KILLED_WRITER = _WRITER_PRELUDE + textwrap.dedent("""
    write_records(5)
    if how == "exit":
        os._exit(0)                                  # no close, no atexit, no finalisers
    print("written", flush=True)
    time.sleep(120)
""")


def _run_and_kill(script: str, path, expected, how: str, ready: str) -> int:
    """Run ``script`` in a fresh process; with how='sigkill', SIGKILL it once it prints ``ready``
    (with 'exit' it leaves through os._exit itself). Returns its exit status."""
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(expected), how],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        if how == "sigkill":
            line = proc.stdout.readline()
            assert line.strip() == ready, proc.stderr.read()
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_killed_run_keeps_what_it_wrote(tmp_path, how):
    path, expected = tmp_path / "killed.nc", tmp_path / "expected.npy"
    code = _run_and_kill(_KILLED_WRITER, path, expected, how, "written")
    assert code == (-signal.SIGKILL if how == "sigkill" else 0)
    want = np.load(expected)
    with sio.open_trajectory(path) as ds:
        assert ds.sizes["time"] == 5
        np.testing.assert_array_equal(ds["vorticity"].values, want)
        np.testing.assert_array_equal(ds["step"].values, [2, 4, 6, 8, 10])


_KILLED_INSIDE_WRITE = _WRITER_PRELUDE + textwrap.dedent("""
    write_records(3)
    s.step(2)
    real = s.enstrophy
    def killed_here():              # the 4th record's vorticity and energy are written; its
        w._ds.sync()                # time, step and enstrophy are not, and the file says so
        if how == "exit":
            os._exit(0)
        print("inside", flush=True)
        time.sleep(120)
    s.enstrophy = killed_here
    w.write(s)
""")


@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_kill_inside_a_write_leaves_only_complete_records(tmp_path, how):
    path, expected = tmp_path / "killed.nc", tmp_path / "expected.npy"
    _run_and_kill(_KILLED_INSIDE_WRITE, path, expected, how, "inside")
    with xr.open_dataset(path) as raw:                    # the partial record is in the file ...
        assert raw.sizes["time"] == 4 and not raw["time"].values[3] < 1e30
    with sio.open_trajectory(path) as ds:                 # ... and no reader sees it
        assert ds.sizes["time"] == 3
        np.testing.assert_array_equal(ds["vorticity"].values, np.load(expected))
        np.testing.assert_array_equal(ds["step"].values, [2, 4, 6])
        assert np.all(ds["energy"].values < 1e30) and np.all(ds["time"].values < 1e30)
    # a run continued from step 6 overwrites the partial record
    s = _kolmogorov(n=16, members=2, seed=3)
    s.step_count, s.t = 6, 0.3
    with sio.TrajectoryWriter(path, s, append=True) as w:
        assert w.records == 3 and w.last_step == 6
        s.step(2)
        w.write(s)
    with sio.open_trajectory(path) as ds:
        np.testing.assert_array_equal(ds["step"].values, [2, 4, 6, 8])
        np.testing.assert_allclose(ds["time"].values, [0.1, 0.2, 0.3, 0.4], rtol=1e-12)


def test_append_refuses_another_run(tmp_path):
    path = tmp_path / "t.nc"
    with sio.TrajectoryWriter(path, _kolmogorov()) as w:
        w.write()
    before = path.read_bytes()
    for other, needle in [(_kolmogorov(members=1), "members=1"),
                          (_kolmogorov(nu=2e-3), "differing: nu"),
                          (_betaplane(), "BetaPlane")]:
        with pytest.raises(ValueError, match=needle):
            sio.TrajectoryWriter(path, other, append=True)
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        sio.TrajectoryWriter(tmp_path / "missing.nc", _kolmogorov(), append=True)
    assert path.read_bytes() == before
    # threads change how a run is computed, not what: appending with other threads is fine
    sio.TrajectoryWriter(path, _kolmogorov(threads=2), append=True).close()


def test_append_accepts_an_argument_added_since_at_its_default(tmp_path):
    """A file written before the solver had an argument (its configuration lacks the key) takes
    appends from a solver with that argument at its default, and refuses another value; so
    does a restart's closure configuration."""
    path = tmp_path / "t.nc"
    with sio.TrajectoryWriter(path, _betaplane()) as w:
        w.write()
    with netCDF4.Dataset(path, "a") as ds:                     # as written before eddy_drag
        cfg = json.loads(ds.getncattr("config"))
        del cfg["eddy_drag"]
        ds.setncattr("config", json.dumps(cfg))
    sio.TrajectoryWriter(path, _betaplane(), append=True).close()
    with pytest.raises(ValueError, match="differing: eddy_drag"):
        sio.TrajectoryWriter(path, _betaplane(eddy_drag=0.1), append=True)
    from solvers.io.schema import constructor_defaults, differing_keys
    saved = {"class": "C", "arguments": {"gain": 1.0}}
    given = {"class": "C", "arguments": {"gain": 1.0, "zonal_gain": None}}
    defaults = {"arguments.zonal_gain": None}
    assert differing_keys(saved, given, defaults=defaults) == []
    given["arguments"]["zonal_gain"] = 2.0
    assert differing_keys(saved, given, defaults=defaults) == ["arguments.zonal_gain"]
    assert differing_keys(given, saved, defaults=defaults) == ["arguments.zonal_gain"]
    assert constructor_defaults(BetaPlane)["eddy_drag"] == 0.0


def test_trajectory_bad_paths_create_nothing(tmp_path):
    s = _kolmogorov()
    blocker = tmp_path / "regular_file"
    blocker.write_text("not a directory")
    before = _listing(tmp_path)
    with pytest.raises(NotADirectoryError) as e:
        sio.TrajectoryWriter(blocker / "sub" / "t.nc", s)
    assert str(blocker) in str(e.value) and "directory" in str(e.value)
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        sio.TrajectoryWriter(tmp_path, s)
    with pytest.raises(ValueError, match="dtype"):
        sio.TrajectoryWriter(tmp_path / "new" / "t.nc", s, dtype="float16")
    assert _listing(tmp_path) == before                    # no file, no folder
    assert blocker.read_text() == "not a directory"

    existing = tmp_path / "old.nc"
    existing.write_bytes(b"precious")
    with pytest.raises(FileExistsError) as e:
        sio.TrajectoryWriter(existing, s)
    assert str(existing) in str(e.value) and "overwrite=True" in str(e.value)
    assert existing.read_bytes() == b"precious"
    with sio.TrajectoryWriter(existing, s, overwrite=True) as w:
        w.write()
    with sio.open_trajectory(existing) as ds:
        assert ds.sizes["time"] == 1


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_directory_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=str(ro)):
            sio.TrajectoryWriter(ro / "t.nc", _kolmogorov())
        with pytest.raises(PermissionError, match=str(ro)):
            sio.write_restart(_kolmogorov(), ro / "r.nc")
        assert _listing(ro) == []
    finally:
        ro.chmod(0o755)


def test_open_trajectory_missing_and_corrupt(tmp_path):
    missing = tmp_path / "nothing.nc"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        sio.open_trajectory(missing)
    junk = tmp_path / "junk.nc"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(sio.TrajectoryFileError, match=str(junk)):
        sio.open_trajectory(junk)
    restart = sio.write_restart(_kolmogorov(), tmp_path / "r.nc")   # netCDF, but no trajectory
    with pytest.raises(sio.TrajectoryFileError, match="not a trajectory"):
        sio.open_trajectory(restart)


# ---------------------------------------------------------------------------------- restart
def _continue_twice(make, k, tmp_path, closure=None, **read_kw):
    """Run A for 2k steps; run B for k, restart from file, k more. Returns (A, B')."""
    a = make()
    if closure:
        a.set_closure(closure())
    a.step(2 * k)
    b = make()
    if closure:
        b.set_closure(closure())
    b.step(k)
    path = sio.write_restart(b, tmp_path / "restart.nc")
    del b
    c = sio.read_restart(path, closure=closure() if closure else None, **read_kw)
    assert c.step_count == k
    c.step(k)
    return a, c


def test_restart_bit_exact_betaplane(tmp_path):
    a, c = _continue_twice(_betaplane, 6, tmp_path)
    assert np.array_equal(a.vorticity_hat, c.vorticity_hat)
    assert a.t == c.t and a.step_count == c.step_count == 12
    assert np.array_equal(a.budget, c.budget)
    # the stochastic forcing is really in play: another seed gives another state
    other = _betaplane(seed=6)
    other.step(12)
    assert not np.array_equal(other.vorticity_hat, a.vorticity_hat)
    # and the RNGs continue where they were
    assert all(ra.bit_generator.state == rc.bit_generator.state for ra, rc in zip(a.rngs, c.rngs))


def test_restart_bit_exact_float32_adaptive_dt_with_closure(tmp_path):
    def make():
        return _kolmogorov(dtype="float32", dt=None, dt_max=0.1, members=2)
    a, c = _continue_twice(make, 7, tmp_path, closure=NoisyClosure)
    with netCDF4.Dataset(tmp_path / "restart.nc") as ds:   # float32 state stored as float32
        assert ds["state_zeta_hat_real"].dtype == np.float32
        assert ds.getncattr("closure") == "NoisyClosure"
    assert c.vorticity_hat.dtype == np.complex64
    assert np.array_equal(a.vorticity_hat, c.vorticity_hat)
    assert a.dt_level == c.dt_level and a.t == c.t
    assert a.closure_calls == c.closure_calls == 5          # steps 0, 3, 6, 9, 12
    assert c.closure.calls == a.closure.calls
    assert np.array_equal(c.closure.last, a.closure.last)


def test_restart_with_closure_needs_the_closure(tmp_path):
    s = _kolmogorov()
    s.set_closure(NoisyClosure())
    s.step(4)
    path = sio.write_restart(s, tmp_path / "r.nc")
    with pytest.raises(ValueError, match="NoisyClosure"):
        sio.read_restart(path)


_FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    from solvers import io
    path, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = io.read_restart(path)
    s.step(k)
    np.save(out, s.vorticity_hat)
""")


def test_restart_bit_exact_in_fresh_process(tmp_path):
    k = 6
    a = _betaplane()
    a.step(2 * k)
    b = _betaplane()
    b.step(k)
    path = sio.write_restart(b, tmp_path / "restart.nc")
    out = tmp_path / "continued.npy"
    r = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(path), str(out), str(k)],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    got = np.load(out)
    assert got.dtype == a.vorticity_hat.dtype
    assert np.array_equal(got, a.vorticity_hat)


_PLANS_FROM_WISDOM = textwrap.dedent("""
    import sys
    import pyfftw
    from solvers import fft
    from solvers.grid import Grid
    from solvers.io import load_restart
    path, n = sys.argv[1], int(sys.argv[2])
    def plan():                     # the solver's pruned inverse transforms, from wisdom alone
        fft.BatchedRealFFT(n, 2, "float64", inverse=True, kmax=Grid(n).kmax_dealias,
                           planner="FFTW_WISDOM_ONLY")
    pyfftw.forget_wisdom()
    try:
        plan()
        print("planned-without-wisdom")
    except RuntimeError:
        print("refused")
    fft.import_wisdom(load_restart(path)["wisdom"])
    plan()
    print("planned")
""")


def test_wisdom_is_stored_and_imported_before_planning(tmp_path, monkeypatch):
    s = _betaplane(members=1)
    path = sio.write_restart(s, tmp_path / "r.nc")
    saved = sio.load_restart(path)["wisdom"]
    assert saved == tuple(bytes(w) for w in fft.export_wisdom())
    # the saved double-precision wisdom holds this solver's plans: a fresh process without
    # wisdom cannot make them without planning, and can once it has imported the restart's
    r = subprocess.run([sys.executable, "-c", _PLANS_FROM_WISDOM, str(path), str(s.grid.n)],
                       capture_output=True, text=True, timeout=120,
                       env={**_env(), "HYBRID_FFTW_WISDOM": str(tmp_path / "no-wisdom")})
    assert r.returncode == 0 and r.stdout.split() == ["refused", "planned"], r.stdout + r.stderr

    events = []
    real_import, real_init = fft.import_wisdom, fft.BatchedRealFFT.__init__

    def spy_import(w):
        events.append(("import", tuple(bytes(x) for x in w)))
        real_import(w)

    def spy_init(self, *args, **kw):
        events.append(("plan", None))
        real_init(self, *args, **kw)

    monkeypatch.setattr(fft, "import_wisdom", spy_import)
    monkeypatch.setattr(fft.BatchedRealFFT, "__init__", spy_init)
    sio.read_restart(path)
    assert events[0] == ("import", saved)
    assert ("plan", None) in events[1:]


_WISDOM_PRECEDENCE = textwrap.dedent("""
    import sys
    import pyfftw
    from solvers import KolmogorovFlow, fft
    from solvers import io as sio
    KolmogorovFlow(n=16, dt=0.05)          # this process has planned and loaded the machine's file
    sio.read_restart(sys.argv[1])
    print(pyfftw.export_wisdom()[0].decode())
""")


def test_restart_wisdom_wins_over_the_machine_wisdom_and_the_process(tmp_path, monkeypatch):
    s = _kolmogorov(n=16)
    ours = tuple(bytes(w) for w in fft.export_wisdom())
    line = next((ln for ln in ours[0].decode().splitlines() if "_avx " in ln), None)
    if line is None:
        pytest.skip("no AVX codelet in this machine's wisdom to swap for an SSE2 one")
    other = line.replace("_avx ", "_sse2 ")
    with monkeypatch.context() as m:                    # the restart carries the AVX entry ...
        m.setattr(fft, "export_wisdom", lambda: ours)
        path = sio.write_restart(s, tmp_path / "r.nc")
    machine = tmp_path / "wisdom"                        # ... the machine file an SSE2 one
    machine.write_bytes(b"\0\0SPLIT\0\0".join(
        (ours[0].decode().replace(line, other).encode(), ours[1], ours[2])))
    env = {**_env(), "HYBRID_FFTW_WISDOM": str(machine)}
    got = subprocess.run([sys.executable, "-c", _WISDOM_PRECEDENCE, str(path)], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert line.strip() in got and other.strip() not in got


def test_restart_overrides(tmp_path):
    s = _kolmogorov()
    s.step(2)
    path = sio.write_restart(s, tmp_path / "r.nc")
    c = sio.read_restart(path, blowup_dir=tmp_path / "blow")
    assert c.blowup_dir == tmp_path / "blow"
    assert np.array_equal(c.vorticity_hat, s.vorticity_hat)
    with pytest.raises(ValueError, match="no_such_arg"):
        sio.read_restart(path, no_such_arg=1)


def test_restart_missing_corrupt_or_foreign(tmp_path):
    missing = tmp_path / "missing.nc"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        sio.read_restart(missing)
    junk = tmp_path / "junk.nc"
    junk.write_bytes(np.random.default_rng(1).bytes(2048))
    with pytest.raises(sio.RestartFileError, match=str(junk)):
        sio.read_restart(junk)
    good = sio.write_restart(_kolmogorov(), tmp_path / "good.nc")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(sio.RestartFileError, match=str(truncated)):
        sio.read_restart(truncated)
    traj = tmp_path / "traj.nc"
    with sio.TrajectoryWriter(traj, _kolmogorov()) as w:
        w.write()
    with pytest.raises(sio.RestartFileError, match="not a solver restart"):
        sio.read_restart(traj)


def test_restart_bad_path_and_failed_write_keep_old_file(tmp_path, monkeypatch):
    s = _kolmogorov()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match=str(blocker)):
        sio.write_restart(s, blocker / "r.nc")

    path = sio.write_restart(s, tmp_path / "r.nc")
    good = path.read_bytes()
    state = s.get_state()
    state["closure_state"] = {"f": lambda: None}               # neither JSON nor picklable
    monkeypatch.setattr(s, "get_state", lambda: state)
    s.step(1)
    with pytest.warns(UserWarning, match="pickling"):
        with pytest.raises(sio.RestartWriteError, match=str(path)):
            sio.write_restart(s, path)
    assert path.read_bytes() == good                           # the good restart survived
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "r.nc"]   # no temp file left


def test_blowup_restart_is_readable(tmp_path):
    s = KolmogorovFlow(n=16, dt=5.0, amplitude=50.0, seed=0, blowup_dir=tmp_path)
    s.set_vorticity(np.random.default_rng(2).standard_normal((16, 16)) * 20)
    with pytest.raises(BlowUpError) as e:
        s.step(50)
    path = e.value.restart_path
    assert path is not None and Path(path).parent == tmp_path
    c = sio.read_restart(path)
    assert c.step_count == s.step_count
    assert np.array_equal(c.vorticity_hat, s.vorticity_hat)   # the last finite state
    assert c.blowup_dir == tmp_path                            # restored from the file
