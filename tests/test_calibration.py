"""Shell-gain calibration of the diffusion closures (closures.calibration, ``hybrid calibrate``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from closures.base import closure_state
from closures.calibration import (apply_shell_gains, fit_calibration, mode_shells, shell_gains,
                                  shell_power)
from closures.data import ClosureDataset
from closures.ldm import LatentDiffusionClosure, LatentDiffusionModel, save_model
from hybrid.cli import main
from solvers.grid import Grid
from test_train import TINY, write_closure_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_fields(count=6, n=16, seed=0):
    return np.random.default_rng(seed).standard_normal((count, n, n))


def test_mode_shells_are_rounded_wavenumber_magnitudes():
    s = mode_shells(8)
    assert s.shape == (8, 5)
    assert s[0, 0] == 0 and s[0, 1] == 1 and s[1, 1] == 1 and s[7, 1] == 1   # |k| = 1, √2
    assert s[2, 2] == 3 and s[4, 0] == 4 and s[4, 4] == 6                   # 2√2, 4, 4√2


def test_shell_power_adds_up_to_parseval():
    f = random_fields()
    n = f.shape[-1]
    p = shell_power(f, n)                          # every shell up to beyond the corner
    assert p.sum() == pytest.approx(n * n * np.sum(f ** 2), rel=1e-12)


def test_gains_scale_exactly_one_shell_and_leave_the_rest():
    f = random_fields()
    g = apply_shell_gains(f, [0.0, 1.0])
    before, after = shell_power(f, 6), shell_power(g, 6)
    assert after[1] < 1e-20 * before[1]
    np.testing.assert_allclose(after[[0, 2, 3, 4, 5, 6]], before[[0, 2, 3, 4, 5, 6]], rtol=1e-12)
    np.testing.assert_allclose(apply_shell_gains(f, [1.0, 1.0, 1.0]), f, atol=1e-13)
    assert g.mean() == pytest.approx(f.mean(), abs=1e-13)     # k = 0 untouched


def test_fitted_gains_invert_a_known_scaling():
    truth = random_fields(count=4, seed=1)
    pred = apply_shell_gains(truth, [2.5, 0.5, 1.0])
    np.testing.assert_allclose(shell_gains(pred, truth, 4), [0.4, 2.0, 1.0, 1.0], rtol=1e-10)


def test_gain_of_a_noisy_shell_is_the_wiener_factor():
    # shell 1 of the prediction = truth + independent noise of equal power: g = 1/2, with a
    # standard deviation of about 0.5/√1600 ≈ 0.013 (4 independent complex modes × 400 fields)
    rng = np.random.default_rng(2)
    truth = rng.standard_normal((400, 16, 16))
    noise = rng.standard_normal((400, 16, 16))
    pred = truth + noise - apply_shell_gains(noise, [0.0])      # noise only in shell 1
    g1, g2 = shell_gains(pred, truth, 2)
    assert g1 == pytest.approx(0.5, abs=0.04)
    assert g2 == pytest.approx(1.0, abs=1e-12)


def test_bad_shells_are_refused():
    f = random_fields()
    for bad in (0, 8, 1.5, True):
        with pytest.raises(ValueError, match="shells"):
            shell_gains(f, f, bad)
    with pytest.raises(ValueError, match="shells"):
        apply_shell_gains(f, [1.0] * 8)
    with pytest.raises(ValueError, match=r"\(N, n, n\)"):
        shell_gains(f, f[:2], 1)


class ScaledMean:
    """A stand-in model in physical units: the synthetic dataset's exact conditional mean
    −0.5·ω̄ with its shell-1 part multiplied by 2.5 (so the right gain is 0.4)."""

    def eval(self):
        return self

    def sample(self, w, gen, samples=1):
        c = apply_shell_gains(-0.5 * w[:, 0].double().numpy(), [2.5])
        return torch.from_numpy(c)[:, None, None].repeat(1, samples, 1, 1, 1)

    def denormalise(self, x, field):
        return x


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cal-data") / "synthetic.nc"
    write_closure_dataset(p, count=240)
    return p


def test_fit_recovers_the_gain_on_a_dataset(data_file):
    # C = −0.5·ω̄ + 0.1·η (η independent, shells 1-2): g_1 = 0.4 up to the η cross term, ±0.02
    train = ClosureDataset(data_file, "train", val_fraction=0.25, normalise=False)
    val = ClosureDataset(data_file, "val", val_fraction=0.25, normalise=False)
    cal = fit_calibration(ScaledMean(), train, shells=2, samples=1, val=val, report_shells=3)
    g1, g2 = cal["shell_gains"]
    assert g1 == pytest.approx(0.4, abs=0.02) and g2 == pytest.approx(1.0, abs=0.02)
    assert len(cal["gains_report"]) == 3 and cal["fitted_on"] == "split 'train', 180 pairs"
    raw, new = cal["val_shell_error_raw"], cal["val_shell_error_calibrated"]
    # raw shell 1 error: (2.5·0.5 − 0.5)² ω̄-power over (0.25 + 0.01 η) → ≈ 2.2; calibrated ≈ 0.04
    assert raw[0] > 1.5 and new[0] < 0.1
    assert cal["val_rel_error_calibrated"] < cal["val_rel_error_raw"]


def tiny_model_stem(tmp_path, data_file, gains):
    torch.manual_seed(0)
    train = ClosureDataset(data_file, "train", val_fraction=0.25)
    model = LatentDiffusionModel(16, stats=train.stats, mean_width=4, **TINY)
    card = {"data": {"split": {"val_fraction": 0.25, "gap": 0}}}
    if gains is not None:
        card["calibration"] = {"shell_gains": gains}
    save_model(model, tmp_path / "tiny", card)
    return tmp_path / "tiny"


def closure_term(stem, calibrate=True):
    c = LatentDiffusionClosure(path=stem, calibrate=calibrate, every=1)
    c.reset(Grid(16, 2 * np.pi), 3, {}, 7)
    w = random_fields(count=3, seed=3)
    return c.compute(closure_state(Grid(16, 2 * np.pi), np.fft.rfft2(w))), c


def test_closure_applies_the_cards_gains(tmp_path, data_file):
    stem = tiny_model_stem(tmp_path, data_file, [0.25, 2.0])
    on, c_on = closure_term(stem)
    off, c_off = closure_term(stem, calibrate=False)
    assert c_on.shell_gains == [0.25, 2.0] and c_off.shell_gains == []
    np.testing.assert_allclose(on, apply_shell_gains(off, [0.25, 2.0]), atol=1e-12)
    assert np.abs(on - off).max() > 1e-6                      # the gains did change the term
    assert "shell_gains=[0.25, 2.0]" in repr(c_on)
    with pytest.raises(ValueError, match="calibrate"):
        LatentDiffusionClosure(path=stem, calibrate="yes")


def test_cli_calibrate_writes_the_card(tmp_path, data_file, capsys):
    stem = tiny_model_stem(tmp_path, data_file, None)
    code = main(["calibrate", "--model", str(stem), "--data", str(data_file), "--shells", "2",
                 "--samples", "2"])
    assert code == 0, capsys.readouterr().err
    card = json.loads((tmp_path / "tiny.json").read_text())
    cal = card["calibration"]
    assert len(cal["shell_gains"]) == 2 and all(np.isfinite(cal["shell_gains"]))
    assert cal["command"].startswith("hybrid calibrate --model ")
    # report_shells 8, capped at n/2 − 1
    assert cal["val_pairs"] == 60 and len(cal["val_shell_error_raw"]) == 7
    # the closure now picks the gains up
    assert closure_term(stem)[1].shell_gains == cal["shell_gains"]


@pytest.mark.parametrize("argv, flag", [
    (["--model", "MODEL", "--data", "MISSING"], "--data"),
    (["--model", "NOPE", "--data", "DATA"], "--model"),
    (["--model", "MODEL", "--data", "DATA", "--shells", "8"], "--shells"),
    (["--model", "MODEL", "--data", "DATA", "--shells", "0"], "--shells"),
])
def test_cli_calibrate_bad_input_exits_2(tmp_path, data_file, capsys, argv, flag):
    stem = tiny_model_stem(tmp_path, data_file, None)
    subs = {"MODEL": str(stem), "DATA": str(data_file), "MISSING": str(tmp_path / "no.nc"),
            "NOPE": str(tmp_path / "nope")}
    assert main(["calibrate", *[subs.get(a, a) for a in argv]]) == 2
    assert flag in capsys.readouterr().err
