"""hybrid.simulation (Simulation, RunResult, restarts) and the one-process `hybrid run` command."""
import json
import time

import numpy as np
import pytest
import xarray as xr

from closures.base import Closure
from closures.registry import get_closure
from hybrid.cli import main
from hybrid.config import load_preset
from hybrid.ensemble import Ensemble
from hybrid.simulation import Simulation, expected_closure_calls
from solvers import BlowUpError
from solvers.filters import coarse_grain
from solvers.grid import Grid


class NoisyClosure(Closure):
    """A stochastic test closure: C = scale·N(0, 1) per member, drawn from the closure's seeded
    generators; records the steps at which it was called."""

    name = "noisy"

    def __init__(self, scale: float = 0.05, every: int | None = None):
        super().__init__(every=every)
        self.scale = scale
        self.steps = []

    def compute(self, state):
        self.steps.append(state.step)
        return self.scale * self.normal((state.grid.n, state.grid.n))


def les(preset="kolmogorov", members=2, seed=0, **overrides):
    p = load_preset(preset)
    s = p.make_solver("les", members=members, seed=seed, **overrides)
    s.set_vorticity(p.initial_vorticity(s))
    return s


def test_run_writes_trajectory_and_run_json_with_timings(tmp_path):
    s = les(n=32)
    closure = get_closure("smagorinsky")
    inside = []                                   # the closure's own time, call by call
    compute = closure.compute

    def timed(state):
        t0 = time.perf_counter()
        try:
            return compute(state)
        finally:
            inside.append(time.perf_counter() - t0)
    closure.compute = timed
    sim = Simulation(s, closure, every=3, metadata={"note": "test"})
    wall0 = time.perf_counter()
    res = sim.run(1.0, out=tmp_path / "a", output_every=0.5, progress=False)
    wall = time.perf_counter() - wall0
    assert res.status == "ok" and res.steps == 200 and res.records == 3
    assert res.simulated_time == pytest.approx(1.0)
    assert res.closure_calls == len(inside) == expected_closure_calls(0, 200, 3) == 67
    # the closure's timer holds every call (and the transform of its term)
    assert sum(inside) <= res.closure_s
    # the accounted parts (stepping, closure, writing) make up the wall time, up to loop overhead
    assert res.closure_s + res.solver_s + res.io_s == pytest.approx(res.wall_s, rel=0.2)
    assert res.closure_s + res.solver_s + res.io_s <= res.wall_s <= wall
    with xr.open_dataset(res.trajectory) as ds:
        assert ds["vorticity"].shape == (2, 3, 32, 32) and ds["vorticity"].dtype == np.float32
        np.testing.assert_allclose(ds["time"].values, [0, 0.5, 1.0], atol=1e-9)
        assert ds.attrs["closure"] == "Smagorinsky" and int(ds.attrs["closure_every"]) == 3
        np.testing.assert_array_equal(ds["vorticity"].values[:, -1], s.vorticity.astype(np.float32))
    info = json.loads(res.run_json.read_text())
    assert info["status"] == "ok" and info["note"] == "test"
    assert info["closure"]["name"] == "smagorinsky" and info["closure"]["every"] == 3
    assert info["solver_config"]["n"] == 32 and info["members"] == 2 and info["steps"] == 200
    t = info["timings"]
    assert t["closure_calls"] == 67
    assert t["wall_per_time_unit"]["closure"] == pytest.approx(t["closure_s"] / res.simulated_time)
    assert t["wall_per_time_unit"]["solver"] == pytest.approx(t["solver_s"] / res.simulated_time)
    assert not (tmp_path / "a" / "restart.nc").exists()        # no restart_every


def test_closure_called_every_k_steps_and_callback_at_records():
    s = les(n=16, members=1)
    c = NoisyClosure(every=4)
    seen = []
    res = Simulation(s, c).run(0.25, output_every=0.1, progress=False,
                               callback=lambda sol: seen.append(sol.step_count))
    assert res.steps == 50 and c.steps == list(range(0, 50, 4))
    assert res.closure_calls == len(c.steps) == expected_closure_calls(0, 50, 4)
    assert seen == [0, 20, 40, 50] and res.records == 4 and res.trajectory is None


@pytest.mark.parametrize("preset, closure", [("betaplane-small", "noisy"),
                                             ("kolmogorov", "smagorinsky")])
def test_restart_continues_bit_identically(tmp_path, preset, closure):
    make = (lambda: NoisyClosure(every=3)) if closure == "noisy" else (lambda: "smagorinsky")
    n = 32 if preset == "betaplane-small" else 16                 # the ring forcing needs k_f < n/3
    straight = Simulation(les(preset, n=n), make(), every=3)
    T = 11 * straight.solver.dt                                  # 11 steps: not a multiple of 3
    straight.run(2 * T, progress=False)

    first = Simulation(les(preset, n=n), make(), every=3)
    res = first.run(T, out=tmp_path / "first", restart_every=T, progress=False)
    assert res.restart == tmp_path / "first" / "restart.nc" and res.restart.exists()
    again = Simulation.from_restart(res.restart, make())
    assert again.solver.step_count == 11 and again.solver.closure_every == 3
    res2 = again.run(2 * T, out=tmp_path / "second", output_every=T, progress=False)
    assert res2.steps == 11
    a, b = straight.solver.get_state(), again.solver.get_state()
    np.testing.assert_array_equal(a["zeta_hat"], b["zeta_hat"])
    np.testing.assert_array_equal(a["closure_hat"], b["closure_hat"])
    assert a["rng_states"] == b["rng_states"] and a["t"] == b["t"]
    if closure == "noisy":
        assert a["closure_state"] == b["closure_state"]


def _file_contents(path):
    """Every variable and attribute of a netCDF file (creation time left out), read raw."""
    import netCDF4
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs() if k != "created"}
        data = {k: np.array(v[...]) for k, v in ds.variables.items()}
    return attrs, data


def test_run_of_2T_equals_T_then_restart_then_T_bit_for_bit(tmp_path):
    whole = Simulation(les(n=32), NoisyClosure(every=3), every=2)
    whole.run(0.4, out=tmp_path / "whole", output_every=0.1, progress=False)

    first = Simulation(les(n=32), NoisyClosure(every=3), every=2)
    first.run(0.2, out=tmp_path / "parts", output_every=0.1, restart_every=0.2, progress=False)
    saved = tmp_path / "restart-at-T.nc"
    saved.write_bytes((tmp_path / "parts" / "restart.nc").read_bytes())
    # the first run goes on past T before it stops: its records after T must not survive
    first.run(0.3, out=tmp_path / "parts", output_every=0.1, progress=False, append=True)
    again = Simulation.from_restart(saved, NoisyClosure(every=3))
    assert again.solver.closure_every == 2 and again.closure.every == 3
    again.run(0.4, out=tmp_path / "parts", output_every=0.1, progress=False, append=True)

    (attrs_a, a), (attrs_b, b) = (_file_contents(tmp_path / d / "trajectory.nc")
                                  for d in ("whole", "parts"))
    np.testing.assert_allclose(a["time"], [0, 0.1, 0.2, 0.3, 0.4], atol=1e-9)
    assert attrs_a == attrs_b and a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    info = json.loads((tmp_path / "parts" / "run.json").read_text())
    assert info["status"] == "ok" and info["restarted_from"] == str(saved)


def test_restart_refuses_another_closure_configuration(tmp_path):
    sim = Simulation(les(n=16), NoisyClosure(scale=0.05, every=3))
    sim.run(0.05, out=tmp_path / "r", restart_every=0.05, progress=False)
    restart = tmp_path / "r" / "restart.nc"
    with pytest.raises(ValueError, match=r"arguments\.scale: saved 0\.05, given 0\.1"):
        Simulation.from_restart(restart, NoisyClosure(scale=0.1))
    with pytest.raises(ValueError, match=r"differing: every: saved 3, given 2"):
        Simulation.from_restart(restart, NoisyClosure(scale=0.05), every=2)
    with pytest.raises(ValueError, match=r"differing: class"):
        Simulation.from_restart(restart, "smagorinsky")
    with pytest.raises(ValueError, match="pass that closure"):
        Simulation.from_restart(restart)
    Simulation.from_restart(restart, NoisyClosure(scale=0.05))          # the same one is fine


def test_periodic_restarts_are_written(tmp_path, monkeypatch):
    import hybrid.simulation as hs
    sim = Simulation(les(n=16, members=1), "leith", every=2)
    writes = []
    orig = hs.write_restart

    def spy(solver, path):
        writes.append(solver.step_count)
        return orig(solver, path)

    monkeypatch.setattr(hs, "write_restart", spy)
    sim.run(0.1, out=tmp_path / "r", restart_every=0.03, progress=False)
    assert writes == [6, 12, 18, 20]                              # dt = 5e-3, then the end
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["restart.nc", "run.json",
                                                                  "trajectory.nc"]


def test_same_seed_same_trajectory(tmp_path):
    def run(seed, name):
        ens = Ensemble("betaplane-small", NoisyClosure(every=2), members=2, seed=seed,
                       overrides={"n": 32})
        res = ens.run(1.0, tmp_path / name, output_every=0.5, progress=False)
        with xr.open_dataset(res.trajectory) as ds:
            return ds["vorticity"].values

    a, b, c = run(3, "a"), run(3, "b"), run(4, "c")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, -1], c[:, -1])


def test_blowup_writes_run_json_and_reraises(tmp_path):
    s = les(n=16, members=1, dt=2.0)
    with pytest.raises(BlowUpError) as err:
        Simulation(s, "none").run(40.0, out=tmp_path / "b", output_every=10.0, progress=False)
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert info["status"] == "blew up" and info["blowup"]["step"] == err.value.step
    assert err.value.restart_path.parent == tmp_path / "b"          # blowup_dir = out
    with xr.open_dataset(tmp_path / "b" / "trajectory.nc") as ds:
        assert ds.sizes["time"] >= 1 and np.isfinite(ds["vorticity"].values).all()


def test_bad_arguments_raise_before_any_work(tmp_path):
    s = les(n=16, members=1)
    with pytest.raises(ValueError, match="unknown closure"):
        Simulation(s, "no-such-closure")
    with pytest.raises(ValueError, match="every"):
        Simulation(les(n=16, members=1), None, every=3)
    sim = Simulation(s, "none")
    with pytest.raises(ValueError, match="restart_every needs out"):
        sim.run(0.1, restart_every=0.05, progress=False)
    with pytest.raises(ValueError, match="output_every"):
        sim.run(0.1, output_every=-1, progress=False)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "run.json").write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite"):
        sim.run(0.1, out=tmp_path / "o", progress=False)
    assert s.step_count == 0 and sorted(p.name for p in (tmp_path / "o").iterdir()) == ["run.json"]
    sim.run(0.01, out=tmp_path / "o", progress=False, overwrite=True)
    assert json.loads((tmp_path / "o" / "run.json").read_text())["status"] == "ok"
    with pytest.raises(ValueError, match="t_end"):
        sim.run(0.0, progress=False)


# ------------------------------------------------------------------ hybrid run (one process)
def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def dns_traj(tmp_path_factory):
    """A 2-member 32² Kolmogorov DNS trajectory from `hybrid dns` (records t = 0, .01, .02)."""
    out = tmp_path_factory.mktemp("dns") / "dns"
    assert main(["dns", "kolmogorov", "--n", "32", "--t-end", "0.02", "--every", "0.01",
                 "--spinup", "0", "--members", "2", "--seed", "5", "--out", str(out)]) == 0
    return out / "trajectory.nc"


def test_cli_run_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "kolmogorov", "--closure", "leith", "--every", "2", "--members", "2",
                 "--n", "16", "--t-end", "0.1", "--output-every", "0.05", "--seed", "1",
                 "--closure-arg", "cl=0.5", "--restart-every", "0.05", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["restart.nc", "run.json", "trajectory.nc"]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "ok" and info["command"] == "run" and info["seed"] == 1
    assert info["closure"]["every"] == 2 and "cl=0.5" in info["closure"]["repr"]
    assert info["preset"]["name"] == "kolmogorov" and info["execution"]["mode"] == "in-process"
    with xr.open_dataset(out / "trajectory.nc") as ds:
        assert ds["vorticity"].shape == (2, 3, 16, 16)
    assert "closure calls" in capsys.readouterr().err
    assert main(["run", "kolmogorov", "--closure", "leith", "--n", "16", "--t-end", "0.1",
                 "--out", str(out)]) == 2                        # outputs exist: refuse


def test_cli_run_from_coarse_grained_dns(tmp_path, dns_traj):
    out = tmp_path / "init"
    assert main(["run", "kolmogorov", "--closure", "none", "--members", "2", "--n", "16",
                 "--t-end", "0.02", "--output-every", "0.01", "--init", str(dns_traj),
                 "--init-time", "0.01", "--out", str(out)]) == 0
    with xr.open_dataset(dns_traj) as d:
        z = d["vorticity"].isel(time=1).values.astype(np.float64)
    coarse = Grid(16, 2 * np.pi)
    want = np.fft.irfft2(coarse_grain(Grid(32, 2 * np.pi), coarse, np.fft.rfft2(z)),
                         s=coarse.shape)
    with xr.open_dataset(out / "trajectory.nc") as ds:
        np.testing.assert_allclose(ds["time"].values, [0.01, 0.02, 0.03], atol=1e-9)
        np.testing.assert_allclose(ds["vorticity"].values[:, 0], want, atol=1e-5 * np.abs(
            want).max())
    info = json.loads((out / "run.json").read_text())
    assert info["init"]["record"] == 1 and info["t_start"] == pytest.approx(0.01)


@pytest.mark.parametrize("argv, needle", [
    (["--closure", "no-such-closure"], "known closures: "),
    (["--closure", "smagorinsky", "--closure-arg", "cs"], "--closure-arg"),
    (["--closure", "smagorinsky", "--closure-arg", "zz=1"], "--closure"),
    (["--closure", "none", "--members", "3", "--init", "DNS"], "must match --members"),
    (["--closure", "none", "--members", "2", "--init", "DNS", "--init-time", "5"],
     "no record at t=5"),
    (["--closure", "none", "--init", "MISSING"], "--init"),
    (["--closure", "none", "--init-time", "0"], "--init-time needs --init"),
    (["--closure", "none", "--n", "24", "--members", "2", "--init", "DNS"], "must divide"),
    (["--closure", "none", "--batch-size", "2"], "--batch-size needs"),
    (["--closure", "none", "--workers", "2", "--restart-every", "1"], "--restart-every"),
    (["--closure", "none", "--dt", "-1"], "--dt"),
    (["--closure", "none", "--n", "8"], "kf must be"),
    (["--closure"], "--closure"),
    (["--closure", "none", "--workers", "1", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
])
def test_cli_run_bad_input_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys, dns_traj,
                                                      argv, needle):
    monkeypatch.chdir(tmp_path)
    argv = [str(dns_traj) if a == "DNS" else str(tmp_path / a) if a == "MISSING" else a
            for a in argv]
    before = _tree(tmp_path)
    assert main(["run", "kolmogorov", "--n", "16", "--t-end", "0.01", *argv]) == 2
    assert _tree(tmp_path) == before                              # no runs/ folder, nothing
    err = capsys.readouterr().err
    assert needle in err
    if "no-such-closure" in argv:
        assert "smagorinsky" in err and "leith" in err and "none" in err


def test_cli_run_blowup_exits_3(tmp_path):
    out = tmp_path / "b"
    assert main(["run", "kolmogorov", "--closure", "none", "--n", "16", "--dt", "2",
                 "--t-end", "40", "--out", str(out)]) == 3
    assert json.loads((out / "run.json").read_text())["status"] == "blew up"


def test_cli_run_restart_continues_the_trajectory_and_refuses_another_closure(tmp_path, capsys):
    common = ["kolmogorov", "--closure", "leith", "--closure-arg", "cl=0.5", "--every", "2"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["run", *common, "--members", "2", "--n", "16", "--seed", "3", "--t-end", "0.1",
                 "--output-every", "0.025", "--out", str(whole)]) == 0
    assert main(["run", *common, "--members", "2", "--n", "16", "--seed", "3", "--t-end", "0.05",
                 "--output-every", "0.025", "--restart-every", "0.05", "--out", str(parts)]) == 0
    restart = str(parts / "restart.nc")
    before = (parts / "trajectory.nc").read_bytes()
    for argv, needle in [
            (["kolmogorov", "--closure", "smagorinsky"], "differing: class"),
            ([*common[:4], "cl=0.4", "--every", "2"], "arguments.cl: saved 0.5, given 0.4"),
            ([*common[:5], "--every", "3"], "every: saved 2, given 3"),
            ([*common, "--members", "2"], "--members cannot be given"),
            (["betaplane-small", "--closure", "leith"], "holds a KolmogorovFlow run")]:
        assert main(["run", *argv, "--restart", restart, "--t-end", "0.05"]) == 2, needle
        assert needle in capsys.readouterr().err
        assert (parts / "trajectory.nc").read_bytes() == before      # nothing written
    assert main(["run", *common, "--restart", restart, "--t-end", "0.05",
                 "--output-every", "0.025"]) == 0
    (attrs_a, a), (attrs_b, b) = (_file_contents(d / "trajectory.nc") for d in (whole, parts))
    assert attrs_a == attrs_b and len(a["time"]) == 5
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_cli_dns_restart_continues_the_trajectory(tmp_path, capsys):
    common = ["dns", "kolmogorov", "--n", "32", "--members", "2", "--seed", "5", "--spinup",
              "0.02", "--every", "0.02"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*common, "--t-end", "0.08", "--out", str(whole)]) == 0
    assert main([*common, "--t-end", "0.04", "--restart-every", "0.04", "--out", str(parts)]) == 0
    restart = str(parts / "restart.nc")
    before = (parts / "trajectory.nc").read_bytes()
    assert main(["dns", "kolmogorov", "--restart", restart, "--seed", "1"]) == 2
    assert "--seed cannot be given" in capsys.readouterr().err
    assert (parts / "trajectory.nc").read_bytes() == before
    assert main(["dns", "kolmogorov", "--restart", restart, "--t-end", "0.04",
                 "--every", "0.02"]) == 0
    (attrs_a, a), (attrs_b, b) = (_file_contents(d / "trajectory.nc") for d in (whole, parts))
    np.testing.assert_allclose(a["time"], [0.02, 0.04, 0.06, 0.08, 0.1], atol=1e-9)
    assert attrs_a == attrs_b
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert json.loads((parts / "run.json").read_text())["figures"]
