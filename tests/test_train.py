"""Training of the diffusion closure (closures.train) and ``hybrid train ldm``.

Synthetic problem with a known answer: ω̄ a smooth random field (Fourier modes 0 < |k| ≤ 2 on 16²,
unit variance per field) and C = −0.5·ω̄ + 0.1·η with η an independent field of the same kind, so
p(C | ω̄) has mean −0.5·ω̄ and a pointwise standard deviation of 0.1 (in physical units).
"""
from __future__ import annotations

import json
import math
import time

import netCDF4
import numpy as np
import pytest
import torch

from closures.ldm import LatentDiffusionModel, load_model
from closures.train import train_ldm, train_paths
from hybrid.cli import main

SLOPE, NOISE = -0.5, 0.1
TINY = dict(latent_channels=2, ae_channels=(8, 8, 8), width=8, modes=2, layers=2, time_dim=16,
            proj_hidden=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smooth_fields(rng, count, n, kmax=2):
    k = np.fft.fftfreq(n, 1.0 / n)
    kk = np.hypot(*np.meshgrid(k, k))
    mask = (kk <= kmax) & (kk > 0)
    spec = (rng.standard_normal((count, n, n)) + 1j * rng.standard_normal((count, n, n))) * mask
    f = np.fft.ifft2(spec).real
    return f / f.std(axis=(1, 2), keepdims=True)


def write_closure_dataset(path, count=256, n=16, seed=0):
    """A closure dataset file as ``hybrid generate`` writes it (the variables and attributes
    ClosureDataset reads), with C = SLOPE·ω̄ + NOISE·η; closure_sign = +1 so subgrid = C.
    One member, one sample per sampling time. Returns (ω̄, C)."""
    rng = np.random.default_rng(seed)
    w = smooth_fields(rng, count, n)
    c = SLOPE * w + NOISE * smooth_fields(rng, count, n)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("sample", None)
        ds.createDimension("y", n)
        ds.createDimension("x", n)
        ds.createVariable("omega_bar", "f4", ("sample", "y", "x"))[:] = w
        ds.createVariable("subgrid", "f4", ("sample", "y", "x"))[:] = c
        ds.createVariable("member", "i4", ("sample",))[:] = np.zeros(count, dtype=np.int32)
        ds.createVariable("time", "f8", ("sample",))[:] = np.arange(count, dtype=np.float64)
        ds.createVariable("step", "i8", ("sample",))[:] = np.arange(count)
        ds.setncatts({"dataset_format": "hybrid-closure-dataset", "format_version": 1,
                      "closure_sign": 1, "samples_complete": count, "n_les": n,
                      "L": 2 * math.pi, "preset": "synthetic", "target": "synthetic"})
    return w, c


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("ldm-data") / "synthetic.nc"
    write_closure_dataset(p)
    return p


def conditional_mean_error(model, w, c, samples=8, seed=3):
    """Relative error of the mean of ``samples`` draws against the known conditional mean
    SLOPE·ω̄, and the RMS ensemble spread (physical units)."""
    x = torch.from_numpy(model.normalise(w, "omega_bar").astype(np.float32))[:, None]
    g = torch.Generator().manual_seed(seed)
    d = model.denormalise(model.sample(x, g, samples=samples).double(), "closure")[:, :, 0]
    truth = torch.from_numpy(SLOPE * w)
    err = float(torch.linalg.vector_norm(d.mean(1) - truth) / torch.linalg.vector_norm(truth))
    spread = float(d.std(dim=1).pow(2).mean().sqrt())
    return err, spread


@pytest.mark.parametrize("space", ["latent", "physical"])
def test_loss_decreases_and_learns_the_known_conditional(tmp_path, data_file, space):
    torch.set_num_threads(1)
    stem = tmp_path / f"m-{space}"
    arch = dict(TINY, modes=2 if space == "latent" else 4)
    w, c = write_closure_dataset(tmp_path / "held-out.nc", count=32, seed=99)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        init = LatentDiffusionModel(16, space=space, L=2 * math.pi, **arch)
    t0 = time.perf_counter()
    m = train_ldm(data_file, stem, space=space, epochs=12, batch=16, lr=5e-3, progress=False,
                  samples_eval=8, threads=1, **arch)
    wall = time.perf_counter() - t0
    model = load_model(stem)
    init.stats = model.stats
    err0, _ = conditional_mean_error(init, w, c)
    err1, spread1 = conditional_mean_error(model, w, c)
    log = [json.loads(x) for x in train_paths(stem)["log"].read_text().splitlines()]
    epochs = [r for r in log if "epoch" in r]
    assert [r["epoch"] for r in epochs] == list(range(1, 13)) and log[-1]["final"]
    first, last = epochs[0]["train"]["total"], epochs[-1]["train"]["total"]
    # measured (1 thread, seed 0): total loss latent 6.3 → 0.025, physical 0.085 → 0.0086;
    # relative error of the 8-sample mean vs −0.5·ω̄ (held-out file): latent 1.00 → 0.53,
    # physical 1.29 → 0.42; spread (RMS ensemble std; true conditional std 0.1): latent 0.40,
    # physical 0.15
    print(space, first, last, err0, err1, spread1, m["offline"])
    assert last < 0.5 * first
    assert err1 < 0.7 and err1 < 0.6 * err0
    # the spread is not collapsed; in latent space 12 tiny epochs leave it ~4× too wide
    # (the score near t = 0 is the last thing learned), in physical space within 0.1–0.2
    assert 0.05 < spread1 < (0.8 if space == "latent" else 0.3)
    off = m["offline"]
    assert off["pairs"] == 26 and off["samples"] == 8 and off["rel_error"] < 1.0
    card = json.loads(train_paths(stem)["card"].read_text())
    assert card["metrics"]["offline"]["rel_error"] == off["rel_error"]
    assert card["data"]["n"] == 16 and card["data"]["preset"] == "synthetic"
    assert card["training"]["epochs"] == 12
    # the card's training time is this run's: within the call's wall time, and most of it
    # (the rest is loading the data and the offline evaluation)
    assert 0.3 * wall < card["training_time_s"] <= wall


def test_mean_network_learns_the_conditional_mean(tmp_path, data_file):
    """Residual conditioning: μ(ω̄) trained by MSE approaches the known mean −0.5·ω̄, the
    sampler adds it, and the card, round trip and two-phase freezing carry it."""
    torch.set_num_threads(1)
    w, c = write_closure_dataset(tmp_path / "held-out.nc", count=32, seed=99)
    kw = dict(TINY, mean_width=4, mean_blocks=1, batch=16, lr=5e-3, progress=False,
              samples_eval=4, threads=1)
    m = train_ldm(data_file, tmp_path / "m", epochs=6, **kw)
    model = load_model(tmp_path / "m")
    assert model.config["mean_width"] == 4 and model.mean_net is not None
    x = torch.from_numpy(model.normalise(w, "omega_bar").astype(np.float32))[:, None]
    with torch.no_grad():
        mu = model.denormalise(model.mean(x).double(), "closure")[:, 0].numpy()
    err_mu = np.linalg.norm(mu - SLOPE * w) / np.linalg.norm(SLOPE * w)
    # measured (1 thread, seed 0): 0.06 after 6 epochs (a zero mean: 1.0)
    assert err_mu < 0.2
    assert m["offline"]["mean_rel_error"] < 0.35      # against C, which holds 0.1/0.5 noise
    err, _ = conditional_mean_error(model, w, c)
    assert err < 0.35
    # two-phase: the mean network trains in the autoencoder phase and is frozen after it
    train_ldm(data_file, tmp_path / "tp", mode="two-phase", epochs=2, ae_epochs=1,
              stop_after=1, **kw)
    after_ae = torch.load(train_paths(tmp_path / "tp")["checkpoint"], weights_only=True)["model"]
    train_ldm(data_file, tmp_path / "tp", mode="two-phase", epochs=2, ae_epochs=1, resume=True,
              **kw)
    final = _weights(tmp_path / "tp")
    for k, v in final.items():
        if k.startswith("mean_net."):
            assert torch.equal(v, after_ae[k]), k
    assert not all(torch.equal(final[k], after_ae[k]) for k in final if k.startswith("score_net"))


def _weights(stem):
    return torch.load(train_paths(stem)["weights"], weights_only=True)


@pytest.mark.parametrize("mode", ["joint", "two-phase"])
def test_resume_gives_the_same_final_weights(tmp_path, data_file, mode):
    torch.set_num_threads(1)
    kw = dict(mode=mode, epochs=4, batch=64, progress=False, samples_eval=2, eval_pairs=4,
              threads=1, **TINY)
    full = train_ldm(data_file, tmp_path / "full", **kw)
    part = train_ldm(data_file, tmp_path / "part", stop_after=3, **kw)
    assert part["stopped"] and part["epochs"] == 3
    assert not train_paths(tmp_path / "part")["weights"].exists()
    # an epoch logged after the last checkpoint (a killed run) is dropped on resume
    with open(train_paths(tmp_path / "part")["log"], "a") as f:
        f.write(json.dumps({"epoch": 4, "debris": True}) + "\n")
    rest = train_ldm(data_file, tmp_path / "part", resume=True, **kw)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rest["offline"] == {**full["offline"], "eval_time_s": rest["offline"]["eval_time_s"]}
    log = [json.loads(x) for x in train_paths(tmp_path / "part")["log"].read_text().splitlines()]
    assert [r["epoch"] for r in log if "epoch" in r] == [1, 2, 3, 4]
    assert not any(r.get("debris") for r in log)
    if mode == "two-phase":
        assert [r["phase"] for r in log if "epoch" in r] == ["ae", "ae", "score", "score"]
    ref = [json.loads(x) for x in train_paths(tmp_path / "full")["log"].read_text().splitlines()]
    assert [r["train"] for r in ref if "epoch" in r] == [r["train"] for r in log if "epoch" in r]


def test_resume_refuses_other_settings(tmp_path, data_file):
    kw = dict(epochs=2, batch=128, progress=False, samples_eval=1, eval_pairs=2, **TINY)
    train_ldm(data_file, tmp_path / "m", stop_after=1, **kw)
    with pytest.raises(ValueError, match="other settings"):
        train_ldm(data_file, tmp_path / "m", resume=True, **{**kw, "width": 4})
    with pytest.raises(FileNotFoundError, match="ckpt.pt"):
        train_ldm(data_file, tmp_path / "none", resume=True, **kw)


def test_cli_train_happy_path(tmp_path, data_file, capsys):
    out = tmp_path / "w" / "cli"
    code = main(["train", "ldm", "--data", str(data_file), "--out", str(out), "--epochs", "1",
                 "--batch", "128", "--samples-eval", "1", "--threads", "1", "--width", "4",
                 "--modes", "2", "--layers", "1", "--ae-channels", "4,4,4", "--time-dim", "8",
                 "--proj-hidden", "8", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    assert printed["offline"]["samples"] == 1
    model = load_model(out)
    assert model.config["width"] == 4 and model.space == "latent"
    assert model.card["command"].startswith(f"hybrid train ldm --data {data_file} --out {out} ")
    assert model.card["data"]["generation"]["n_les"] == model.n
    # again without --overwrite/--resume: refused; with --resume at the last epoch: fine
    assert main(["train", "ldm", "--data", str(data_file), "--out", str(out), "--modes", "2"]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag", [
    (["--data", "MISSING", "--out", "OUT"], "--data"),
    (["--data", "DATA", "--out", "OUT", "--epochs", "0"], "--epochs"),
    (["--data", "DATA", "--out", "OUT", "--batch", "x"], "--batch"),
    (["--data", "DATA", "--out", "OUT", "--lr", "-1"], "--lr"),
    (["--data", "DATA", "--out", "OUT", "--space", "spectral"], "--space"),
    (["--data", "DATA", "--out", "OUT", "--modes", "3"], "--modes"),
    (["--data", "DATA", "--out", "OUT", "--modes", "2", "--resume"], "--resume"),
    (["--data", "NOTNC", "--out", "OUT"], "--data"),
])
def test_cli_train_bad_input_exits_2(tmp_path, data_file, capsys, argv, flag):
    (tmp_path / "notnc.nc").write_text("not netCDF")
    subs = {"MISSING": str(tmp_path / "missing.nc"), "DATA": str(data_file),
            "OUT": str(tmp_path / "o"), "NOTNC": str(tmp_path / "notnc.nc")}
    argv = [subs.get(a, a) for a in argv]
    assert main(["train", "ldm", *argv]) == 2
    assert flag in capsys.readouterr().err
    assert not list(tmp_path.glob("o*"))
