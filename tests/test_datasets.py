"""Closure datasets (hybrid.datasets, ``hybrid generate``): layout and attributes, the stored
fields against solvers.filters recomputed from an independent DNS, resume after interruptions in
every crash window (in-process and a real SIGKILL), and bad input that writes nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from hybrid import datasets as hd
from hybrid.datasets import generation
from hybrid.cli import main
from hybrid.config import load_preset
from solvers import filters
from solvers.grid import Grid

REPO = Path(__file__).resolve().parents[1]

# A tiny stochastically forced beta-plane (its own file, so shipped presets may change freely):
# the ring forcing makes bit-exact resumption depend on the restored RNG states too.
TINY_BETA = """\
name = "tiny-beta"
description = "test preset"
[dns]
solver = "BetaPlane"
n = 32
L = 6.283185307179586
beta = 2.0
mu = 1e-2
hyper_order = 4
kf = 6.0
kf_width = 1.5
epsilon = 1e-2
dt = 0.05
[les]
n = 16
[initial]
kind = "random"
k_peak = 3.0
energy = 0.5
[run]
spinup = 1.0
t_end = 10.0
output_every = 0.25
"""
BETA_KW = dict(samples=8, members=2, seed=7, progress=False)     # 4 sampling times × 2 members
KOLMO_ARGS = ["--n-dns", "32", "--n-les", "16", "--interval", "0.02", "--spinup", "0.05"]


@pytest.fixture(scope="module")
def beta_preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset") / "tiny-beta.toml"
    path.write_text(TINY_BETA)
    return path


@pytest.fixture(scope="module")
def beta_reference(beta_preset, tmp_path_factory):
    """An uninterrupted run: the file every interrupted-and-resumed run must equal."""
    out = tmp_path_factory.mktemp("ref") / "ref.nc"
    hd.generate_dataset(beta_preset, out, **BETA_KW)
    return _arrays(out)


def _arrays(path):
    with hd.open_dataset(path) as ds:
        return {k: ds[k].values.copy() for k in ("omega_bar", "subgrid", "time", "member",
                                                   "step")}


def _assert_same(a, b):
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), f"{k} differs"


def _listing(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ------------------------------------------------------------------ layout and values
def test_generate_layout_attributes_and_exact_subgrid_term(tmp_path, capsys):
    out = tmp_path / "data" / "kolmo.nc"
    code = main(["generate", "kolmogorov", "--samples", "5", "--members", "2", "--seed", "3",
                 "--out", str(out), *KOLMO_ARGS])
    assert code == 0
    assert "not a multiple of --members 2: writing 6 samples" in capsys.readouterr().err
    with hd.open_dataset(out) as ds:
        assert ds["omega_bar"].shape == ds["subgrid"].shape == (6, 16, 16)
        assert ds["omega_bar"].dtype == ds["subgrid"].dtype == np.float32
        assert ds["member"].values.tolist() == [0, 1, 0, 1, 0, 1]
        np.testing.assert_allclose(ds["time"].values, [0.05, 0.05, 0.07, 0.07, 0.09, 0.09],
                                   atol=1e-9)
        assert ds["step"].values.tolist() == [50, 50, 70, 70, 90, 90]
        coarse = Grid(16, 2 * np.pi)
        np.testing.assert_allclose(ds["x"].values, coarse.x)
        np.testing.assert_allclose(ds["y"].values, coarse.y)
        a = ds.attrs
        assert a["preset"] == "kolmogorov" and a["target"] == "subgrid"
        assert a["closure_sign"] == -1 and a["closure_term"].startswith("C = -subgrid")
        assert "C = -Pi" in ds["subgrid"].attrs["long_name"]
        dns, les = json.loads(a["dns_config"]), json.loads(a["les_config"])
        assert dns["n"] == 32 and dns["members"] == 2 and dns["seed"] == 3 and dns["nu"] == 1e-3
        assert les["n"] == 16 and les["dt"] == 5e-3 and "members" not in les
        assert a["filter"] == "gaussian"
        assert a["filter_width"] == pytest.approx(2 * coarse.dx, rel=1e-12)
        assert a["coarsening_factor"] == 2 and a["n_dns"] == 32 and a["n_les"] == 16
        assert a["seed"] == 3 and a["members"] == 2
        assert a["interval"] == 0.02 and a["spinup"] == 0.05
        assert a["samples_requested"] == 5 and a["samples_complete"] == 6
        assert a["sampling_times_complete"] == 3
        assert a["package_version"] and a["restart_file"] == "kolmo.nc.restart.nc"
        stored_w = ds["omega_bar"].values[2:4]
        stored_pi = ds["subgrid"].values[2:4]
    assert (out.parent / "kolmo.nc.restart.nc").is_file()
    assert _listing(out.parent) == ["kolmo.nc", "kolmo.nc.restart.nc"]      # no temporaries

    # an independent DNS with the same seed, stopped at the second sampling time (t = 0.07)
    p = load_preset("kolmogorov")
    s = p.make_solver("dns", members=2, seed=3, n=32)
    s.set_vorticity(p.initial_vorticity(s))
    s.run(0.07)
    assert s.step_count == 70
    fine = s.grid
    w_hat, pi_hat = filters.subgrid_term(fine, coarse, np.asarray(s.vorticity_hat))
    w, pi = np.fft.irfft2(w_hat, s=coarse.shape), np.fft.irfft2(pi_hat, s=coarse.shape)
    assert np.abs(pi).max() > 1e-3                                # a real, non-trivial check
    np.testing.assert_allclose(stored_w, w, rtol=1e-6, atol=1e-6 * np.abs(w).max())
    np.testing.assert_allclose(stored_pi, pi, rtol=1e-6, atol=1e-6 * np.abs(pi).max())
    assert not np.allclose(stored_pi, -pi)                       # Π itself, not the closure −Π


def test_missing_physics_target(tmp_path):
    out = tmp_path / "unit.nc"
    hd.generate_dataset("ns-unitbox", out, samples=2, n_dns=32, n_les=16, interval=0.01,
                        target="missing-physics", progress=False)
    with hd.open_dataset(out) as ds:
        assert ds.attrs["target"] == "missing-physics" and ds.attrs["closure_sign"] == 1
        assert ds.attrs["filter"] == "subsample" and ds.attrs["spinup"] == 0.0
        assert ds.attrs["coarsening_factor"] == 2
        np.testing.assert_allclose(ds["time"].values, [0.0, 0.01], atol=1e-9)
        w_stored, h_stored = ds["omega_bar"].values, ds["subgrid"].values
    p = load_preset("ns-unitbox")
    s = p.make_solver("dns", members=1, seed=0, n=32)
    s.set_vorticity(p.initial_vorticity(s))
    coarse = Grid(16, 1.0)
    for k in range(2):
        if k:
            s.run(0.01)
        w, h = filters.missing_physics_target(s.grid, coarse, np.asarray(s.vorticity_hat))
        np.testing.assert_allclose(w_stored[k], w[0], rtol=1e-6, atol=1e-6 * np.abs(w).max())
        np.testing.assert_allclose(h_stored[k], h[0], rtol=1e-6, atol=1e-6 * np.abs(h).max())
        assert np.abs(h).max() > 0


# ------------------------------------------------------------------ resume
class _Crash(Exception):
    pass


@pytest.mark.parametrize("event,k", [("spinup", 0), ("stepped", 0), ("stepped", 2),
                                     ("samples_written", 1), ("marked", 1),
                                     ("restart_written", 2)])
def test_resume_after_interruption_equals_uninterrupted(event, k, beta_preset, beta_reference,
                                                        tmp_path, monkeypatch):
    monkeypatch.setattr(generation, "SPINUP_CHECKPOINT_S", 0.0)       # a restart after every chunk
    out = tmp_path / "set.nc"
    calls, armed = [], [True]

    def hook(ev, kk):
        calls.append((ev, kk))
        if armed[0] and (ev, kk) == (event, k) and (ev != "spinup"
                                                    or calls.count(("spinup", 0)) == 2):
            armed[0] = False
            raise _Crash

    with pytest.raises(_Crash):
        hd.generate_dataset(beta_preset, out, _hook=hook, **BETA_KW)
    done = {"spinup": 0, "stepped": k, "samples_written": k, "marked": k + 1,
            "restart_written": k + 1}[event]
    with hd.open_dataset(out) as ds:                      # complete samples only, and right
        assert ds.sizes["sample"] == 2 * done
        partial = {key: ds[key].values for key in ("omega_bar", "subgrid", "time", "member")}
    for key, values in partial.items():
        assert np.array_equal(values, beta_reference[key][:2 * done]), key
    # damage the records after the complete ones, as a write killed half-way could leave them
    with netCDF4.Dataset(out, "a") as ds:
        ds["omega_bar"][2 * done:2 * done + 2] = np.full((2, 16, 16), np.nan, np.float32)
    stale = [tmp_path / ".set.nc.restart.nc.pending.x1.tmp",
             tmp_path / "set.nc.restart.nc.pending"]
    for f in stale:                               # what a kill inside a restart write leaves
        f.write_bytes(b"half a restart")
    calls.clear()
    hd.generate_dataset(beta_preset, out, samples=8, resume=True, progress=False, _hook=hook)
    _assert_same(_arrays(out), beta_reference)
    with netCDF4.Dataset(out) as ds:
        assert len(ds.dimensions["sample"]) == 8 and ds.samples_complete == 8
    assert _listing(tmp_path) == ["set.nc", "set.nc.restart.nc"]
    # it went on from the restart: no spin-up chunk or sampling time was done twice
    restart_at = {"spinup": 0, "stepped": k, "samples_written": k, "marked": k,
                  "restart_written": k + 1}[event]
    stepped = [kk for ev, kk in calls if ev == "stepped"]
    assert stepped == list(range(restart_at, 4))
    assert calls.count(("spinup", 0)) == (3 if event == "spinup" else 0)


def test_resume_extends_a_finished_dataset(beta_preset, beta_reference, tmp_path):
    out = tmp_path / "short.nc"
    hd.generate_dataset(beta_preset, out, **{**BETA_KW, "samples": 4})
    assert _arrays(out)["time"].shape == (4,)
    hd.generate_dataset(beta_preset, out, samples=8, resume=True, progress=False)
    _assert_same(_arrays(out), beta_reference)
    before = out.read_bytes()
    hd.generate_dataset(beta_preset, out, samples=6, resume=True, progress=False)  # nothing to do
    _assert_same(_arrays(out), beta_reference)
    assert len(before) == len(out.read_bytes())


def test_cli_interrupt_exits_130_and_resume_completes(tmp_path, monkeypatch, capsys):
    args = ["generate", "kolmogorov", "--samples", "6", "--members", "2", *KOLMO_ARGS]
    ref = tmp_path / "ref.nc"
    assert main([*args, "--out", str(ref)]) == 0
    real = generation.write_restart

    def interrupted(plan, done):
        real(plan, done)
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(generation, "write_restart", interrupted)
    out = tmp_path / "cut.nc"
    assert main([*args, "--out", str(out)]) == 130
    assert "continue with --resume" in capsys.readouterr().err
    assert _arrays(out)["time"].shape == (4,)
    monkeypatch.setattr(generation, "write_restart", real)
    assert main(["generate", "kolmogorov", "--samples", "6", "--out", str(out), "--resume"]) == 0
    _assert_same(_arrays(out), _arrays(ref))


_KILLED = textwrap.dedent("""
    import os, signal, sys
    from hybrid.datasets import generate_dataset
    preset, ref, out = sys.argv[1:4]
    kw = dict(samples=8, members=2, seed=7, progress=False)
    generate_dataset(preset, ref, **kw)
    def hook(event, k):
        if event == "samples_written" and k == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    generate_dataset(preset, out, _hook=hook, **kw)
""")

_RESUME = textwrap.dedent("""
    import sys
    from hybrid.cli import main
    sys.exit(main(["generate", sys.argv[1], "--samples", "8", "--out", sys.argv[2], "--resume"]))
""")


def test_resume_after_sigkill_in_fresh_process(beta_preset, tmp_path):
    """A real kill (no cleanup) between writing the samples of a sampling time and marking them
    complete; resumed by the CLI in a fresh process (which must import the restart's FFTW wisdom
    before planning). The reference is computed by the killed process itself, before it started,
    so that both use the same FFTW plans."""
    ref, out = tmp_path / "ref.nc", tmp_path / "killed.nc"
    r = subprocess.run([sys.executable, "-c", _KILLED, str(beta_preset), str(ref), str(out)],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == -9, r.stderr
    with hd.open_dataset(out) as ds:
        assert ds.sizes["sample"] == 4                          # sampling times 0 and 1
    r = subprocess.run([sys.executable, "-c", _RESUME, str(beta_preset), str(out)],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "resuming after 2 sampling time(s)" in r.stderr
    _assert_same(_arrays(out), _arrays(ref))


# ------------------------------------------------------------------ bad input
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, beta_preset):
    folder = tmp_path / "d"
    folder.mkdir()
    out = folder / "x.nc"
    base = ["--samples", "2", "--out", str(out), *KOLMO_ARGS]
    cases = [
        (["generate", "no-such-preset", *base], "unknown preset 'no-such-preset'"),
        (["generate", "kolmogorov", *base, "--resume"], "does not exist"),
        (["generate", "kolmogorov", *base, "--resume", "--overwrite"], "exclude each other"),
        (["generate", "kolmogorov", "--samples", "2", "--out", str(out), "--n-dns", "32",
          "--n-les", "24"], "n=24 (--n-les) must divide the DNS grid n=32"),
        (["generate", "kolmogorov", *base, "--interval", "1e-4"], "interval (--interval)"),
        (["generate", "kolmogorov", *base, "--target", "missing-physics", "--delta", "0.1"],
         "delta (--delta)"),
        (["generate", "kolmogorov", "--samples", "0", "--out", str(out)], "--samples"),
        (["generate", "kolmogorov", *base[:2], "--out", str(folder)], "is a directory"),
    ]
    (tmp_path / "afile").write_text("not a folder")
    cases.append((["generate", "kolmogorov", "--samples", "2", "--out",
                   str(tmp_path / "afile" / "x.nc"), *KOLMO_ARGS], "not a directory"))
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err, (argv, err)
        assert _listing(folder) == [], argv
    assert _listing(tmp_path / "d") == []


def test_existing_and_foreign_files_are_refused(tmp_path, capsys, beta_preset):
    out = tmp_path / "k.nc"
    args = ["generate", "kolmogorov", "--samples", "2", "--out", str(out), *KOLMO_ARGS]
    assert main(args) == 0
    capsys.readouterr()
    snapshot = {p: p.read_bytes() for p in tmp_path.iterdir()}

    # a user preset file claiming the same name but with other physics
    changed = tmp_path / "presets" / "kolmogorov.toml"
    changed.parent.mkdir()
    changed.write_text((REPO / "hybrid/presets/kolmogorov.toml").read_text()
                       .replace("nu = 1e-3", "nu = 2e-3"))
    resume = ["--samples", "4", "--out", str(out), "--resume"]
    cases = [
        (args, "already exists; pass --resume"),
        (["generate", str(beta_preset), *resume], "preset 'kolmogorov', not 'tiny-beta'"),
        (["generate", "kolmogorov", *resume, "--members", "3"], "members=1, got members=3"),
        (["generate", "kolmogorov", *resume, "--seed", "5"], "seed=0, got seed=5"),
        (["generate", "kolmogorov", *resume, "--n-dns", "64"], "n_dns=32, got n_dns=64"),
        (["generate", "kolmogorov", *resume, "--dt-dns", "0.002"],
         "DNS step dt=0.001, got dt_dns=0.002"),
        (["generate", "kolmogorov", *resume, "--target", "missing-physics"], "target="),
        (["generate", "kolmogorov", *resume, "--delta", "0.5"], "filter_width="),
        (["generate", str(changed), *resume], "another dns_config (file vs now: nu"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err, (argv, err)
        assert str(out) in err or "tiny-beta" in err
        for p, data in snapshot.items():
            assert p.read_bytes() == data, (argv, p)
    changed.unlink()
    changed.parent.rmdir()

    # the restart of another dataset, then no restart at all
    other = tmp_path / "o" / "other.nc"
    assert main(["generate", "kolmogorov", "--samples", "2", "--out", str(other),
                 *KOLMO_ARGS]) == 0
    rpath = hd.restart_path(out)
    rpath.write_bytes(hd.restart_path(other).read_bytes())
    assert main(["generate", "kolmogorov", *resume]) == 2
    assert "belongs to another dataset" in capsys.readouterr().err
    rpath.unlink()
    assert main(["generate", "kolmogorov", *resume]) == 2
    assert "is missing" in capsys.readouterr().err
    assert out.read_bytes() == snapshot[out]
    # --overwrite replaces the file and its restart
    assert main([*args, "--overwrite", "--members", "2"]) == 0
    with hd.open_dataset(out) as ds:
        assert ds.sizes["sample"] == 2 and ds.attrs["members"] == 2


def test_corrupt_and_foreign_files(tmp_path, capsys):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    other = tmp_path / "plain.nc"
    with netCDF4.Dataset(other, "w") as ds:
        ds.createDimension("t", 2)
        ds.createVariable("vorticity", "f4", ("t",))[:] = [1, 2]
    for path, words in ((bad, "not a readable netCDF4 closure dataset"),
                        (other, "not a closure dataset")):
        before = path.read_bytes()
        assert main(["generate", "kolmogorov", "--samples", "2", "--out", str(path),
                     "--resume", *KOLMO_ARGS]) == 2
        err = capsys.readouterr().err
        assert words in err and str(path) in err
        with pytest.raises(hd.DatasetFileError, match=words) as info:
            hd.open_dataset(path)
        assert str(path) in str(info.value)
        assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        hd.open_dataset(tmp_path / "missing.nc")


def test_dt_dns_sets_the_dns_step_and_resume_keeps_it(tmp_path):
    kw = dict(n_dns=32, n_les=16, interval=0.02, spinup=0.0, progress=False)
    out = hd.generate_dataset("kolmogorov", tmp_path / "k.nc", samples=1, dt_dns=0.004, **kw)
    with hd.open_dataset(out) as ds:
        assert json.loads(ds.attrs["dns_config"])["dt"] == 0.004
        assert ds["step"].values.tolist() == [0]
    hd.generate_dataset("kolmogorov", out, samples=2, resume=True, progress=False)
    with hd.open_dataset(out) as ds:
        assert ds["step"].values.tolist() == [0, 5]           # 0.02 / 0.004 steps
    with pytest.raises(ValueError, match="dt_dns"):
        hd.generate_dataset("kolmogorov", tmp_path / "b.nc", samples=1, dt_dns=-1.0, **kw)


def test_check_dataset_matches(tmp_path):
    out = hd.generate_dataset("kolmogorov", tmp_path / "k.nc", samples=1, n_dns=32, n_les=16,
                              interval=0.02, spinup=0.0, progress=False)
    with hd.open_dataset(out) as ds:
        hd.check_dataset_matches(ds, "kolmogorov", 16)
        hd.check_dataset_matches(ds, load_preset("kolmogorov"))
        with pytest.raises(hd.DatasetMismatchError, match="another preset.*'ns-unitbox'"):
            hd.check_dataset_matches(ds, "ns-unitbox", 16)
        with pytest.raises(hd.DatasetMismatchError, match="expected 64"):
            hd.check_dataset_matches(ds, "kolmogorov", 64)
    with pytest.raises(hd.DatasetMismatchError, match=str(out)):
        hd.check_dataset_matches(out, "betaplane-paper")


def test_generate_records_a_three_way_time_split_that_the_reader_uses(tmp_path, capsys):
    """--split 0.5,0.25,0.25 over 8 sampling times (0.05 + 0.02 k): training k = 0…3,
    validation k = 4, 5, test k = 6, 7, recorded as boundary times and read back as such."""
    from closures.data import ClosureDataset
    out = tmp_path / "split.nc"
    assert main(["generate", "kolmogorov", "--samples", "8", "--split", "0.5,0.25,0.25",
                 "--out", str(out), *KOLMO_ARGS]) == 0
    with hd.open_dataset(out) as ds:
        a = ds.attrs
        assert json.loads(a["split_fractions"]) == [0.5, 0.25, 0.25]
        assert a["split_validation_from"] == pytest.approx(0.13)
        assert a["split_test_from"] == pytest.approx(0.17)
        times = ds["time"].values
    blocks = {sp: ClosureDataset(out, sp, val_fraction=0.0) for sp in ("train", "val", "test")}
    assert np.allclose(blocks["train"].times, times[:4])
    assert np.allclose(blocks["val"].times, times[4:6])
    assert np.allclose(blocks["test"].times, times[6:])
    assert main(["generate", "kolmogorov", "--samples", "8", "--split", "0.5,0.6,0",
                 "--out", str(tmp_path / "bad.nc"), *KOLMO_ARGS]) == 2
    assert "split" in capsys.readouterr().err and not (tmp_path / "bad.nc").exists()
