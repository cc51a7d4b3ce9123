"""The ``hybrid`` command line, called in-process through ``hybrid.cli.main``."""
import json
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread

from hybrid.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _valid_png(path) -> bool:
    with open(path, "rb") as f:
        if f.read(8) != PNG_MAGIC:
            return False
    img = imread(path)
    return img.ndim == 3 and min(img.shape[:2]) > 50


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_dns_kolmogorov_writes_trajectory_figures_and_run_json(tmp_path):
    out = tmp_path / "run"
    wall0 = time.perf_counter()
    code = main(["dns", "kolmogorov", "--n", "32", "--t-end", "0.5", "--every", "0.1",
                 "--spinup", "0", "--out", str(out)])
    wall = time.perf_counter() - wall0
    assert code == 0
    info = json.loads((out / "run.json").read_text())
    with xr.open_dataset(out / "trajectory.nc") as ds:
        assert ds["vorticity"].shape == (1, 6, 32, 32)
        np.testing.assert_allclose(ds["time"].values, np.arange(6) * 0.1, atol=1e-9)
        vort = ds["vorticity"].values.astype(np.float64)
        energy = ds["energy"].values
    assert np.isfinite(vort).all()
    assert energy[0, 0] == pytest.approx(1.0, rel=1e-6)     # the preset's initial energy
    # the recorded energy is ½⟨u² + v²⟩ of the recorded field (float32), recomputed here with
    # numpy: ψ̂ = −ζ̂/|k|², u = −∂yψ, v = ∂xψ
    n, L = 32, info["L"]
    ky = 2 * np.pi * np.fft.fftfreq(n, L / n)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(n, L / n)[None, :]
    k2 = kx ** 2 + ky ** 2
    k2[0, 0] = np.inf
    psi = -np.fft.rfft2(vort[0]) / k2
    u, v = np.fft.irfft2(-1j * ky * psi, s=(n, n)), np.fft.irfft2(1j * kx * psi, s=(n, n))
    np.testing.assert_allclose(energy[0], 0.5 * (u ** 2 + v ** 2).mean(axis=(1, 2)), rtol=1e-5)
    assert not np.allclose(energy[0], energy[0, 0], rtol=1e-3)    # and it did evolve
    assert _valid_png(out / "final_vorticity.png") and _valid_png(out / "energy.png")
    assert not (out / "hovmoller.png").exists()             # only for the beta-plane
    assert info["status"] == "ok" and info["records"] == 6
    assert info["steps"] == round(0.5 / info["dt"])
    timings = info["timings"]                               # hybrid.simulation's run.json
    assert timings["steps_per_s"] == pytest.approx(info["steps"] / timings["wall_s"])
    # the run's wall time lies within the command's, and its parts within it
    assert timings["solver_s"] + timings["closure_s"] + timings["io_s"] <= timings["wall_s"]
    assert timings["wall_s"] <= wall
    assert timings["closure_calls"] == 0 and timings["closure_s"] == 0
    assert info["t_start"] == 0 and info["t_final"] == pytest.approx(0.5)
    assert info["command"] == "dns" and info["trajectory"] == "trajectory.nc"
    assert info["figures"] == ["final_vorticity.png", "energy.png"]
    assert info["solver_config"]["n"] == 32
    assert info["preset"]["name"] == "kolmogorov"


def test_dns_spinup_members_seed_and_overwrite(tmp_path):
    out = tmp_path / "ens"
    args = ["dns", "kolmogorov", "--n", "32", "--dt", "4e-3", "--spinup", "0.2", "--t-end",
            "0.2", "--every", "0.1", "--members", "2", "--seed", "4", "--out", str(out)]
    assert main(args) == 0
    with xr.open_dataset(out / "trajectory.nc") as ds:
        assert ds["vorticity"].shape == (2, 3, 32, 32)
        np.testing.assert_allclose(ds["time"].values, [0.2, 0.3, 0.4], atol=1e-9)
        first = ds["vorticity"].values.copy()
    assert not np.allclose(first[0], first[1])               # independent members
    before = (out / "trajectory.nc").read_bytes()
    assert main(args) == 2                                   # outputs exist: refuse
    assert (out / "trajectory.nc").read_bytes() == before
    assert main(args + ["--overwrite"]) == 0                 # same seed, same trajectory
    with xr.open_dataset(out / "trajectory.nc") as ds:
        np.testing.assert_array_equal(ds["vorticity"].values, first)
    assert main(args + ["--overwrite", "--every", "0.15"]) == 0
    with xr.open_dataset(out / "trajectory.nc") as ds:      # the final state is recorded too
        np.testing.assert_allclose(ds["time"].values, [0.2, 0.352, 0.4], atol=1e-9)


def test_dns_betaplane_writes_hovmoller(tmp_path):
    out = tmp_path / "beta"
    code = main(["dns", "betaplane-paper", "--n", "64", "--t-end", "2", "--every", "0.4",
                 "--spinup", "0", "--out", str(out)])
    assert code == 0
    eps = json.loads((out / "run.json").read_text())["solver_config"]["epsilon"]
    with xr.open_dataset(out / "trajectory.nc") as ds:
        assert ds["zonal_mean_u"].shape == (1, 6, 64)
        t, energy = ds["time"].values, ds["energy"].values[0]
    assert energy[0] == 0.0                                   # starts from rest
    # the ring forcing injects energy at the rate ε; drag and hyperviscosity remove ~1% by t = 2
    # (seed 0 reads 0.95-1.06 of εt)
    np.testing.assert_allclose(energy[1:], eps * t[1:], rtol=0.15)
    assert _valid_png(out / "hovmoller.png") and _valid_png(out / "final_vorticity.png")


def test_dns_blowup_exits_3_with_restart_file(tmp_path, capsys):
    out = tmp_path / "boom"
    code = main(["dns", "kolmogorov", "--n", "32", "--dt", "0.5", "--t-end", "50",
                 "--spinup", "0", "--out", str(out)])
    assert code == 3
    restarts = list(out.glob("blowup-restart-*.nc"))
    assert len(restarts) == 1
    err = capsys.readouterr().err
    assert "blew up" in err and restarts[0].name in err
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "blew up" and info["blowup"]["restart"] == str(restarts[0])


def test_dns_blowup_in_the_spinup_still_writes_run_json(tmp_path, capsys):
    out = tmp_path / "early"
    code = main(["dns", "kolmogorov", "--n", "32", "--dt", "0.5", "--spinup", "50", "--t-end",
                 "1", "--out", str(out)])
    assert code == 3
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "blew up" and info["records"] == 0 and info["spinup"] == 50
    assert Path(info["blowup"]["restart"]).parent == out and not (out / "trajectory.nc").exists()


@pytest.mark.parametrize("argv, needle", [
    (["dns", "no-such-flow"], "unknown preset 'no-such-flow'"),
    (["dns", "kolmogorov", "--members", "0"], "--members"),
    (["dns", "kolmogorov", "--t-end", "-1"], "--t-end"),
    (["dns", "kolmogorov", "--every", "0"], "--every"),
    (["dns", "kolmogorov", "--n", "31"], "--n"),
    (["dns", "kolmogorov", "--dt", "nan"], "--dt"),
    (["dns", "kolmogorov", "--seed", "-3"], "--seed"),
    (["dns", "kolmogorov", "--dtype", "float16"], "--dtype"),
    (["dns", "kolmogorov", "--threads", "0"], "--threads"),
    (["dns", "kolmogorov", "--n", "16", "--dt", "1e-3", "--t-end", "0.01", "--out", "FILE/sub"],
     "not a directory"),
    (["dns", "kolmogorov", "--n", "8", "--t-end", "0.01", "--out", "OUT"], "kf must be"),
])
def test_dns_bad_input_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("a regular file\n")
    argv = [a.replace("FILE", str(tmp_path / "FILE")) for a in argv]
    before = _tree(tmp_path)
    assert main(argv) == 2
    assert _tree(tmp_path) == before                        # no runs/ folder, no OUT, nothing
    assert needle in capsys.readouterr().err


def test_no_command_and_help(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "dns" in capsys.readouterr().out


# hybrid train MODEL with a flag that only other models take, named by its first word (some at
# their default value, which is still a flag given)
FOREIGN_FLAGS = {
    "ldm": [["--params", "beta"], ["--pretrained", "m"], ["--window", "10"], ["--unroll", "2"],
            ["--reencode"], ["--init-from", "m"]],
    "slt": [["--space", "latent"], ["--mode", "joint"], ["--freeze"], ["--lr-factor", "0.1"],
            ["--conditioning", "adaln"], ["--eval-windows", "4"]],
    "ensemble-ldm": [["--members", "4"], ["--window", "4"], ["--params", "beta"],
                     ["--modes", "4"], ["--lags", "2"]],
    "ensemble-mean": [["--lr", "0.1"], ["--mode", "window"], ["--horizon", "4"],
                      ["--batch", "8"]],
    "slt-closure": [["--mode", "joint"], ["--init-from", "m"], ["--latent-points", "8"],
                    ["--pretrained", "m"]],
    "slt-conditioned": [["--init-from", "m"], ["--space", "physical"], ["--kl-weight", "0.1"],
                        ["--no-cold-start"], ["--mode", "window"]],
}


@pytest.mark.parametrize("model, extra", [(m, x) for m, xs in FOREIGN_FLAGS.items() for x in xs])
def test_train_refuses_a_flag_of_another_model(tmp_path, capsys, model, extra):
    """Exit 2 naming the flag and the model, before the data is read: nothing written."""
    flag = extra[0]
    data = tmp_path / "data.nc"
    data.write_text("not netCDF: never read")
    params = ["--params", "beta"] if model == "slt-conditioned" else []
    argv = ["train", model, "--data", str(data), "--out", str(tmp_path / "out" / "m"), *params]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert f"error: {flag} is not an option of {model} (only of " in err and "--data" not in err
    assert _tree(tmp_path) == ["data.nc"]
    assert main(argv) == 2 and "--data" in capsys.readouterr().err     # without it: the data


def test_train_flags_table_covers_the_parser():
    """Every flag of MODEL_FLAGS defaults to None in the parser (a flag given is one that is
    not None), and every other flag of hybrid train is one that every model takes."""
    from hybrid.cli import build_parser
    from hybrid.cli.training import MODEL_FLAGS, prepare
    args = build_parser().parse_args(["train", "ldm", "--data", "d", "--out", "o"])
    table = {k for flags in MODEL_FLAGS.values() for k in flags}
    assert {k: getattr(args, k) for k in table} == dict.fromkeys(table)
    assert set(vars(args)) - table == {"command", "handler", "model", "data", "out", "device",
                                       "threads", "seed", "resume", "overwrite",
                                       "samples_eval", "val_fraction", "checkpoint_every",
                                       "no_progress"}
    assert prepare(args, fail=None) == frozenset()              # nothing given, nothing failed
    assert args.width == 20 and args.mode == "joint" and args.ae_channels == [16, 32, 32]
    assert args.ae_channels is not MODEL_FLAGS["ldm"]["ae_channels"]


def test_run_emulator_checks_loads_runs_and_reports(tmp_path, capsys):
    """The handler an emulating command shares (hybrid ensemble): exit 2 naming --out or
    --model, or with the run's ValueError, 130 on an interrupt, else the summary line and
    JSON."""
    import argparse

    from closures.ldm.files import ModelFileError
    from hybrid.cli.arguments import run_emulator

    args = argparse.Namespace(out=tmp_path / "out", overwrite=False)
    summary = {"members": 3, "records": 5, "wall_s": 1.5, "s_per_member_per_time_unit": 0.25}
    size = lambda s: f"{s['records']} records"                            # noqa: E731

    def fails(error):
        def raise_it(*_):
            raise error
        return raise_it

    assert run_emulator("x", args, ("a.nc",), lambda: "m",
                        lambda model, out: {**summary, "out": str(out), "model": model},
                        size) == 0
    cap = capsys.readouterr()
    assert cap.err == (f"hybrid x: 3 members × 5 records in 1.50 s (0.25 s per member per time "
                       f"unit) → {tmp_path / 'out'}\n")
    assert json.loads(cap.out)["model"] == "m"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.nc").write_text("")
    for overwrite, load, run, code, words in [
            (False, lambda: "m", None, 2, "hybrid x: error: --out: "),
            (True, fails(ModelFileError("bad card")), None, 2,
             "hybrid x: error: --model: bad card"),
            (True, lambda: "m", fails(ValueError("--at 9: no record")), 2,
             "hybrid x: error: --at 9: no record"),
            (True, lambda: "m", fails(KeyboardInterrupt()), 130, "hybrid x: interrupted")]:
        args.overwrite = overwrite
        assert run_emulator("x", args, ("a.nc",), load, run, size) == code
        assert capsys.readouterr().err.startswith(words)
