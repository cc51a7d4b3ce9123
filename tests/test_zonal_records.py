"""``hybrid dns --record zonal-mean`` (U(y) only), ``--set KEY=VALUE``, ensembles from one state
(``--init FILE --at T``), appending to a zonal-mean trajectory with ``--restart``, and the readers
of both kinds of trajectory. Tiny beta-plane: 16², a few dozen steps per run."""
import json

import netCDF4
import numpy as np
import pytest

from hybrid.cli import main
from hybrid.config import load_preset
from hybrid.simulation import Simulation
from solvers.io import TrajectoryFileError, open_trajectory

TINY = """\
name = "tiny-beta"
[dns]
solver = "BetaPlane"
n = 16
L = 6.283185307179586
beta = 8.0
mu = 4e-3
hyper_order = 8
kf = 4.0
kf_width = 1.0
epsilon = 1e-3
dt = 0.05
[initial]
kind = "rest"
[run]
spinup = 0.5
t_end = 1.0
output_every = 0.2
"""


def write_tiny_preset(folder):
    """A 16² beta-plane preset (spin-up 0.5, 1.0 recorded every 0.2, dt 0.05) in ``folder``."""
    path = folder / "tiny-beta.toml"
    path.write_text(TINY)
    return path


def contents(path):
    """Every variable and attribute of a netCDF file (creation time left out), read raw."""
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs() if k != "created"}
        data = {k: np.array(v[...]) for k, v in ds.variables.items()}
    return attrs, data


def assert_same_file(a_path, b_path):
    (attrs_a, a), (attrs_b, b) = contents(a_path), contents(b_path)
    assert attrs_a == attrs_b and a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A full 2-member run with a restart file at its end, and the same run recorded zonal-mean."""
    root = tmp_path_factory.mktemp("sources")
    preset = write_tiny_preset(root)
    common = ["dns", str(preset), "--members", "2", "--seed", "1"]
    assert main([*common, "--restart-every", "1.0", "--out", str(root / "full")]) == 0
    assert main([*common, "--record", "zonal-mean", "--out", str(root / "zonal")]) == 0
    return {"preset": preset, "full": root / "full" / "trajectory.nc",
            "restart": root / "full" / "restart.nc", "zonal": root / "zonal" / "trajectory.nc"}


def test_zonal_mean_record_is_the_mean_over_x_of_u_and_energy_is_the_solvers(tmp_path):
    preset = write_tiny_preset(tmp_path)
    common = ["dns", str(preset), "--members", "2", "--seed", "3", "--spinup", "0",
              "--set", "beta=4", "--set", "mu=2e-3"]
    assert main([*common, "--out", str(tmp_path / "full")]) == 0
    assert main([*common, "--record", "zonal-mean", "--out", str(tmp_path / "zonal")]) == 0
    (fa, full), (za, zonal) = (contents(tmp_path / d / "trajectory.nc") for d in ("full", "zonal"))
    assert "vorticity" not in zonal and za["record"] == "zonal-mean" and fa["record"] == "full"
    assert zonal["zonal_mean_u"].dtype == np.float32 and zonal["zonal_mean_u"].shape == (2, 6, 16)
    for name in ("zonal_mean_u", "energy", "enstrophy", "time", "step", "x", "y"):
        np.testing.assert_array_equal(zonal[name], full[name], err_msg=name)
    # U(y) is the mean over x of u = −∂yψ of the recorded (float32) vorticity
    n, L = 16, 2 * np.pi
    ky = 2 * np.pi * np.fft.fftfreq(n, L / n)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(n, L / n)[None, :]
    k2 = kx ** 2 + ky ** 2
    k2[0, 0] = np.inf
    u = np.fft.irfft2(1j * ky * np.fft.rfft2(full["vorticity"].astype(np.float64)) / k2,
                      s=(n, n))
    U = zonal["zonal_mean_u"].astype(np.float64)
    assert np.abs(U).max() > 1e-3                                  # the jets are forming
    np.testing.assert_allclose(U, u.mean(axis=-1), atol=1e-5 * np.abs(U).max())
    # the records are the solver's own energy, enstrophy and U(y)
    p = load_preset(preset).with_settings({"beta": 4, "mu": 2e-3})
    solver = p.make_solver("dns", members=2, seed=3)
    solver.set_vorticity(p.initial_vorticity(solver))
    seen = []
    Simulation(solver).run(1.0, output_every=0.2, progress=False, callback=lambda s: seen.append(
        (s.energy(), s.enstrophy(), s.zonal_mean_u().astype(np.float32))))
    for i, name in enumerate(("energy", "enstrophy", "zonal_mean_u")):
        np.testing.assert_array_equal(zonal[name], np.stack([r[i] for r in seen], axis=1),
                                      err_msg=name)
    # --set is recorded: the trajectory's configuration and run.json
    cfg = json.loads(za["config"])
    assert cfg["beta"] == 4 and cfg["mu"] == 2e-3
    info = json.loads((tmp_path / "zonal" / "run.json").read_text())
    assert info["settings"] == {"beta": 4, "mu": 2e-3} and info["preset"]["dns"]["beta"] == 4
    assert info["record"] == "zonal-mean" and info["figures"] == ["energy.png", "hovmoller.png"]


def test_zonal_mean_restart_appends_bit_identically(tmp_path):
    preset = write_tiny_preset(tmp_path)
    common = ["dns", str(preset), "--members", "2", "--seed", "2", "--record", "zonal-mean"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*common, "--out", str(whole)]) == 0
    assert main([*common, "--t-end", "0.6", "--restart-every", "0.4", "--out", str(parts)]) == 0
    assert main(["dns", str(preset), "--restart", str(parts / "restart.nc"), "--record", "full"]) \
        == 2                                       # the trajectory's record is kept, not changed
    assert main(["dns", str(preset), "--restart", str(parts / "restart.nc"), "--t-end",
                 "0.4"]) == 0
    assert_same_file(whole / "trajectory.nc", parts / "trajectory.nc")
    with open_trajectory(parts / "trajectory.nc") as ds:
        np.testing.assert_allclose(ds["time"].values, 0.5 + 0.2 * np.arange(6), atol=1e-9)


def test_members_from_one_trajectory_record_share_the_state_and_differ_by_the_noise(tmp_path,
                                                                                  sources):
    out = tmp_path / "ens"
    with open_trajectory(sources["full"]) as ds:
        t_at = float(ds["time"].values[3])
        start = ds["vorticity"].isel(member=1, time=3).values.astype(np.float64)
    assert main(["dns", str(sources["preset"]), "--init", str(sources["full"]), "--at",
                 f"{t_at!r}", "--init-member", "1", "--members", "3", "--seed", "9",
                 "--t-end", "0.4", "--out", str(out)]) == 0
    with open_trajectory(out / "trajectory.nc") as ds:
        times = ds["time"].values
        w = ds["vorticity"].values.astype(np.float64)
        energy = ds["energy"].values
    np.testing.assert_allclose(times, t_at + np.array([0, 0.2, 0.4]), atol=1e-9)   # no spin-up
    for m in (1, 2):
        np.testing.assert_array_equal(w[m, 0], w[0, 0])            # one state at t = T ...
        np.testing.assert_array_equal(energy[m, 0], energy[0, 0])
        assert not np.allclose(w[m, -1], w[0, -1], rtol=1e-3)       # ... new noise after it
    np.testing.assert_allclose(w[0, 0], start, atol=1e-5 * np.abs(start).max())
    info = json.loads((out / "run.json").read_text())
    assert info["init"]["kind"] == "trajectory" and info["init"]["member"] == 1
    assert info["init"]["time"] == t_at and info["spinup"] == 0


def test_members_from_a_restart_file_start_from_its_exact_state(tmp_path, sources):
    out = tmp_path / "ens"
    assert main(["dns", str(sources["preset"]), "--init", str(sources["restart"]), "--members",
                 "2", "--seed", "4", "--t-end", "0.2", "--record", "zonal-mean",
                 "--out", str(out)]) == 0
    with open_trajectory(sources["full"]) as src, open_trajectory(out / "trajectory.nc") as ds:
        assert float(ds["time"][0]) == float(src["time"][-1])
        np.testing.assert_array_equal(ds["zonal_mean_u"].isel(time=0).values,
                                      src["zonal_mean_u"].isel(member=[0, 0], time=-1).values)
        np.testing.assert_array_equal(ds["energy"].isel(time=0).values,
                                      src["energy"].isel(member=[0, 0], time=-1).values)
        U = ds["zonal_mean_u"].isel(time=-1).values
    assert not np.array_equal(U[0], U[1])


def test_readers_take_both_records_and_name_the_one_that_lacks_vorticity(tmp_path, sources,
                                                                         capsys):
    with open_trajectory(sources["zonal"]) as ds:
        assert ds.attrs["record"] == "zonal-mean" and ds["zonal_mean_u"].shape == (2, 6, 16)
    with open_trajectory(sources["full"]) as ds:
        assert ds.attrs["record"] == "full"
    with pytest.raises(TrajectoryFileError, match="only zonal-mean profiles"):
        open_trajectory(sources["zonal"], need="vorticity")
    before = _tree(tmp_path)
    assert main(["compare", str(sources["zonal"]), str(sources["full"]), "--out",
                 str(tmp_path / "cmp")]) == 2
    assert "--record zonal-mean" in capsys.readouterr().err and _tree(tmp_path) == before


@pytest.mark.parametrize("argv, needle", [
    (["--init", "ZONAL", "--at", "1.1"], "only zonal-mean profiles"),
    (["--init", "FULL", "--at", "1.15"], "--at 1.15"),
    (["--init", "FULL"], "give the time of the record"),
    (["--init", "MISSING.nc", "--at", "1"], "does not exist"),
    (["--init", "RESTART", "--at", "0.7"], "not t=0.7"),
    (["--init", "FULL", "--at", "1.1", "--init-member", "2"], "member 2 does not exist"),
    (["--init", "FULL", "--at", "1.1", "--n", "32"], "n=32"),
    (["--at", "1.1"], "--at needs --init"),
    (["--set", "foo=1"], "--set foo=1: dns: unknown key 'foo'"),
    (["--set", "beta=fast"], "dns.beta must be a number"),
    (["--set", "beta"], "expected KEY=VALUE"),
    (["--set", "n=12.5"], "dns.n must be an integer"),
    (["--set", "mu=-1"], "got -1 (command-line settings: --set mu)"),
    (["--record", "zonal"], "--record"),
    (["--workers", "2", "--restart-every", "1"], "--restart-every works for one-process runs"),
    (["--batch-size", "2"], "--batch-size needs --workers"),
    (["--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "0.5"], "cannot connect"),
    (["--restart", "RESTART", "--set", "beta=2"], "--set cannot be given"),
    (["--restart", "RESTART", "--init", "FULL"], "--init cannot be given"),
])
def test_bad_input_exits_2_naming_the_argument_and_writes_nothing(tmp_path, monkeypatch, capsys,
                                                                  sources, argv, needle):
    monkeypatch.chdir(tmp_path)
    names = {"ZONAL": sources["zonal"], "FULL": sources["full"], "RESTART": sources["restart"]}
    argv = [str(names.get(a, a)) for a in argv]
    watched = [tmp_path, sources["full"].parent]
    before = [_tree(d) for d in watched], sources["full"].read_bytes()
    assert main(["dns", str(sources["preset"]), "--out", str(tmp_path / "out"), *argv]) == 2
    assert ([_tree(d) for d in watched], sources["full"].read_bytes()) == before
    assert needle in capsys.readouterr().err


def test_hybrid_run_set_gives_the_les_an_eddy_drag(tmp_path, capsys):
    """``hybrid run --set les.eddy_drag=R``: recorded in the configuration and run.json, and the
    eddy energy E − ½⟨U²⟩ of a run forced from rest is cut (μₑ = 2 over t = 1.5: about a sixth
    of the undamped eddy energy for white forcing); a negative drag is refused by name before
    anything is written."""
    preset = tmp_path / "tiny-les.toml"
    preset.write_text(TINY.replace("[initial]", "[les]\nn = 16\n[initial]"))
    eddy = {}
    for drag in (0, 2):
        out = tmp_path / f"drag{drag}"
        assert main(["run", str(preset), "--closure", "none", "--members", "2", "--seed", "3",
                     "--set", f"les.eddy_drag={drag}", "--out", str(out)]) == 0
        attrs, data = contents(out / "trajectory.nc")
        assert json.loads(attrs["config"])["eddy_drag"] == drag
        info = json.loads((out / "run.json").read_text())
        assert info["settings"] == {"les.eddy_drag": drag}
        zonal = 0.5 * (data["zonal_mean_u"].astype(np.float64) ** 2).mean(axis=-1)
        eddy[drag] = (data["energy"] - zonal)[:, -1].mean()
    assert 0 < eddy[2] < 0.3 * eddy[0]
    capsys.readouterr()
    assert main(["run", str(preset), "--closure", "none", "--set", "les.eddy_drag=-1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "eddy_drag must be a finite number ≥ 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
