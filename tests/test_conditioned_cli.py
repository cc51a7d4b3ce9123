"""The command line of the parameter-conditioned SLT: ``hybrid train slt-conditioned``,
``hybrid emulate --param`` and ``hybrid jets --sweep``, on the two tiny β-plane runs of
conftest.py (β = 2 and 6). Tiny sizes, one CPU thread."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from closures.slt import SLT, load_emulator, read_parameters, save_slt
from hybrid.cli import main
from hybrid.jets import count_jets, events, jet_statistics, read_profiles
from hybrid.jets.sweep import comparison_table, emulator_at_dns, jet_rates, saves_dropped

TINY = ["--epochs", "1", "--batch", "64", "--window", "3", "--width", "8", "--heads", "2",
        "--layers", "1", "--hidden", "16", "--val-fraction", "0.25", "--threads", "1",
        "--no-progress"]


@pytest.fixture(scope="module")
def model(runs, tmp_path_factory):
    """A model conditioned on β, trained by the command line on both runs (one epoch)."""
    b2, b6 = runs
    out = tmp_path_factory.mktemp("model") / "cond"
    assert main(["train", "slt-conditioned", "--data", str(b2), str(b6), "--params", "beta",
                 "--out", str(out), *TINY]) == 0
    return out


def test_train_slt_conditioned_writes_a_card_with_the_parameters(model, runs, tmp_path, capsys):
    b2, b6 = runs
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["version"] == 2 and card["config"]["parameters"] == ["beta"]
    assert not card["config"]["frozen"] and card["config"]["conditioning"] == "adaln"
    assert [d["parameters"] for d in card["data"]] == [{"beta": 2.0}, {"beta": 6.0}]
    assert card["stats"]["parameters"] == {"beta": {"centre": 4.0, "scale": 2.0}}
    assert card["command"].startswith("hybrid train slt-conditioned --data")
    assert card["training"]["lr"] == pytest.approx(5e-4) and card["training"]["pretrained"] is None
    # fine-tuned from it at lr × 0.1, two-step targets fed back re-encoded
    out = tmp_path / "ft"
    assert main(["train", "slt-conditioned", "--data", str(b2), str(b6), "--params", "beta",
                 "--out", str(out), "--pretrained", str(model), "--lr-factor", "0.1",
                 "--unroll", "2", "--reencode", "--epochs", "1", "--batch", "64",
                 "--window", "3", "--phase", "common",          # given, and equal to the model's
                 "--val-fraction", "0.25", "--threads", "1", "--no-progress"]) == 0
    ft = json.loads(out.with_suffix(".json").read_text())
    assert ft["training"]["lr"] == pytest.approx(5e-5)
    assert ft["training"]["pretrained"]["kind"] == "ConditionedSLT"
    assert ft["training"]["unroll"] == 2 and ft["training"]["reencode"] is True
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["one_step"][1]["parameters"] \
        == {"beta": 6.0}


def test_train_slt_conditioned_names_bad_input_and_writes_nothing(model, runs, tmp_path,
                                                                   capsys):
    b2, b6 = runs
    out = tmp_path / "out"
    out.mkdir()
    data = ["--data", str(b2), str(b6)]
    cases = [
        ([*data], "--params is required"),
        ([*data, "--params", "gamma"], r"--params: .*b2\.nc records no parameter 'gamma'"),
        ([*data, "--params", "beta,beta"], "argument --params: parameters must be distinct"),
        (["--data", str(tmp_path / "none.nc"), "--params", "beta"], "--data: .*none.nc does not"),
        ([*data, "--params", "beta", "--lr-factor", "0.5"], "--lr-factor .* with --pretrained"),
        ([*data, "--params", "beta", "--pretrained", str(model), "--lr-factor", "2"],
         r"--lr-factor must be in \(0, 1\]"),
        ([*data, "--params", "beta", "--pretrained", str(tmp_path / "nothing")], "--pretrained: "),
        ([*data, "--params", "beta", "--pretrained", str(model), "--window", "4"],
         "--window: the architecture comes from --pretrained .*, whose window is 3"),
        ([*data, "--params", "beta", "--pretrained", str(model), "--window", "10"],
         "--window: the architecture comes from --pretrained"),          # slt's default value
        ([*data, "--params", "beta", "--pretrained", str(model), "--conditioning", "concat"],
         "--conditioning concat: the pretrained model .* uses adaln"),
        ([*data, "--params", "beta,mu", "--pretrained", str(model)],
         "--params beta,mu: the pretrained model .* is conditioned on beta"),
        ([*data, "--params", "beta", "--unroll", "14", "--window", "3"],
         r"--data: datasets\[0\]: .*window \+ unroll = 17 profiles"),
        ([*data, "--params", "beta", "--members", "1"], "--members must be ≥ 2"),
    ]
    for argv, words in cases:
        assert main(["train", "slt-conditioned", *argv, "--out", str(out / "m"), "--epochs", "1",
                     "--threads", "1", "--no-progress"]) == 2, argv
        err = capsys.readouterr().err
        assert re.search(words, err), (argv, err)
    assert not list(out.iterdir())


def test_emulate_takes_the_parameters_and_records_them(model, runs, tmp_path, capsys):
    b2, _ = runs
    base = ["emulate", "slt", "--model", str(model), "--init", str(b2), "--members", "2",
            "--t-end", "25", "--threads", "1"]
    assert main([*base, "--param", "beta=4", "--out", str(tmp_path / "e4")]) == 0
    summary = json.loads((tmp_path / "e4" / "emulation.json").read_text())
    assert summary["parameters"] == {"beta": 4.0}
    e4 = read_profiles(tmp_path / "e4")
    assert e4["config"]["emulator"]["parameters"] == {"beta": 4.0}
    assert read_parameters(tmp_path / "e4" / "emulation.nc", ["beta"]) == {"beta": 4.0}
    # the members are the API's rollout at those parameters, and another β gives others
    src = read_profiles(b2)
    em = load_emulator(model, threads=1, params={"beta": 4.0})
    assert np.array_equal(e4["U"][:, 1:], em.rollout(src["U"][0, -3:], 9, 2).astype(float))
    assert not np.array_equal(e4["U"][:, 1:], em.rollout(src["U"][0, -3:], 9, 2,
                                                         params={"beta": 6.0}).astype(float))
    # hybrid jets reads and reports them
    assert main(["jets", str(tmp_path / "e4"), str(b2), "--persist", "3",
                 "--out", str(tmp_path / "j")]) == 0
    assert json.loads((tmp_path / "j" / "jets.json").read_text())["run_parameters"] == \
        {"beta": 4.0}
    assert "Run emulated at beta = 4." in (tmp_path / "j" / "jets.md").read_text()
    capsys.readouterr()
    # bad, missing, unknown, repeated parameters, or parameters for a plain SLT: exit 2
    save_slt(SLT(16, window=3, width=8, heads=2, layers=1, hidden=16,
                 stats={"mean": 0.0, "std": 1.0}), tmp_path / "plain")
    for extra, words in [
            (["--param", "beta=abc"], "argument --param: beta: must be a finite number"),
            (["--param", "beta"], "argument --param: expected NAME=VALUE"),
            (["--param", "beta=nan"], "argument --param: beta: must be a finite number"),
            ([], "--param: the model .* is conditioned on beta: give --param beta=VALUE"),
            (["--param", "beta=4", "--param", "gamma=1"],
             r"--param: unknown parameter\(s\) 'gamma'"),
            (["--param", "beta=4", "--param", "beta=5"], "--param beta is given twice"),
            (["--model", str(tmp_path / "plain"), "--param", "beta=4"],
             "--param: the model .*plain is not conditioned on parameters")]:
        assert main([*base, *extra, "--out", str(tmp_path / "bad")]) == 2, extra
        err = capsys.readouterr().err
        assert re.search(words, err), (extra, err)
        assert "hybrid emulate: error:" in err
    assert not (tmp_path / "bad").exists()


def test_jet_rates_of_a_known_series():
    # member 0: 3 → 2 at t = 3 (a merging), 2 → 3 at t = 7 (a nucleation); member 1: a blip of
    # one record (shorter than the persistence) and no event
    c = np.array([[3, 3, 3, 2, 2, 2, 2, 3, 3, 3], [1, 1, 1, 1, 2, 1, 1, 1, 1, 1]])
    t = 10.0 * np.arange(10)
    r = jet_rates(c, t, persist=20.0, resamples=500)
    assert r["mean_jets"]["value"] == pytest.approx(c.mean())
    assert r["merging_rate"]["events"] == 1 and r["nucleation_rate"]["events"] == 1
    assert r["merging_rate"]["value"] == pytest.approx(1 / (2 * 10 * 10.0))
    assert r["time"] == 200.0 and r["segments"] == 20 and r["blocks_per_member"] == 10
    lo, hi = r["merging_rate"]["interval_95"]
    assert lo == 0.0 < r["merging_rate"]["value"] < hi


def test_sweep_writes_its_files_and_its_rates_are_those_of_hybrid_jets(model, runs, tmp_path,
                                                                       capsys):
    b2, b6 = runs
    out = tmp_path / "sweep"
    assert main(["jets", "--sweep", str(model), "--param-range", "beta=2:6", "--points", "4",
                 "--members", "5", "--steps", "30", "--burn-in", "2", "--dns", str(b2), str(b6),
                 "--persist", "3", "--batch", "2", "--bootstrap", "200", "--threads", "1",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sweep.json", "sweep.md", "sweep.png"]
    rep = json.loads((out / "sweep.json").read_text())
    assert rep["parameter"] == "beta" and rep["spacing"] == "log" and rep["records_dropped"] == 2
    vals = [v["value"] for v in rep["values"]]
    assert np.allclose(vals, 2 * 3.0 ** (np.arange(4) / 3))
    # each value starts from the DNS run nearest in ln β
    starts = [read_profiles(v["start"])["path"] for v in rep["values"]]
    assert starts == [read_profiles(b2)["path"]] * 2 + [read_profiles(b6)["path"]] * 2
    em = load_emulator(model, threads=1)
    found = 0
    for v in rep["values"]:
        src = read_profiles(v["start"])
        U = em.rollout(src["U"][0, -3:], 30, 5, seed=v["seed"], batch=2,
                       params=v["parameters"])
        counts = count_jets(U, src["L"], 2.0)[:, 2:]            # k_s = kf/2, burn-in 2 saves
        t = src["t"][-1] + np.arange(3, 31)
        ev = events(counts, t, 3.0)
        mergings = sum(e["kind"] == "merging" for e in ev)
        assert v["mean_jets"]["value"] == pytest.approx(counts.mean(), rel=1e-12)
        assert v["merging_rate"]["events"] == mergings
        assert v["nucleation_rate"]["events"] == len(ev) - mergings
        assert v["merging_rate"]["value"] == pytest.approx(mergings / (5 * 28 * 1.0))
        for q in ("mean_jets", "merging_rate", "nucleation_rate"):
            lo, hi = v[q]["interval_95"]
            assert lo <= v[q]["value"] <= hi
        found += len(ev)
    assert found > 0                                    # the rates compared are not all zero
    # the DNS points are hybrid jets' numbers of those runs (its computation, without files)
    for d, run in zip(rep["dns"], (b2, b6)):
        r = read_profiles(run)
        ref = jet_statistics(r["U"], r["t"], r["U"], r["t"], r["L"], k_s=2.0, persist=3.0,
                             ensemble=False)["jets"]["reference"]
        shape = r["U"].shape
        assert d["value"] == read_parameters(run, ["beta"])["beta"]
        assert d["merging_rate"]["events"] == ref["mergings"]
        assert d["nucleation_rate"]["events"] == ref["nucleations"]
        assert d["merging_rate"]["value"] == pytest.approx(
            ref["mergings"] / (shape[0] * shape[1] * 1.0))
        assert d["mean_jets"]["value"] == pytest.approx(
            sum(int(n) * f["records"] for n, f in ref["fraction"].items()))
    # the runs sit at the ends of the range: the emulator there is the end values themselves
    for d, v in zip(rep["dns"], (rep["values"][0], rep["values"][-1])):
        for q in ("mean_jets", "merging_rate", "nucleation_rate"):
            assert d["emulator_there"][q]["value"] == pytest.approx(v[q]["value"], rel=1e-12)
    table = (out / "sweep.md").read_text()
    assert table.count("| emulator |") == 4
    assert table.count("| DNS ") == 3                   # two rows and the comparison's header
    assert "Inside the DNS's 95 % interval: mean jets" in table


def test_the_burn_in_drops_whole_saves_despite_a_rounded_interval():
    assert saves_dropped(3000.0, 9.99999999985448) == 300       # the interval as stored
    assert saves_dropped(3000.0, 10.0) == 300
    assert saves_dropped(3001.0, 10.0) == 301
    assert saves_dropped(0.0, 10.0) == 0
    assert saves_dropped(2.0, 1.0) == 2


def test_the_emulator_is_read_at_the_dns_values_in_the_sweeps_spacing():
    def q(x, ci=None):
        return {"value": x, "interval_95": ci}
    values = [{"value": p, "mean_jets": q(y), "merging_rate": q(y / 1e3),
               "nucleation_rate": q(0.0)} for p, y in ((1.0, 1.0), (4.0, 3.0))]
    dns = [{"run": "a/trajectory.nc", "value": 2.0, "mean_jets": q(2.1, [2.05, 2.15]),
            "merging_rate": q(2e-3, [1.5e-3, 2.5e-3]), "nucleation_rate": q(0.0)},
           {"run": "b/trajectory.nc", "value": 8.0, "mean_jets": q(4.0, [3.9, 4.1]),
            "merging_rate": q(0.0), "nucleation_rate": q(0.0)}]
    rep = {"parameter": "beta", "range": [1.0, 4.0], "spacing": "log", "values": values,
           "dns": dns}
    counts = emulator_at_dns(rep)
    there = dns[0]["emulator_there"]
    # halfway in ln p from 1 to 4: (1 + 3)/2 = 2, not the value 1.667 of linear interpolation
    assert there["mean_jets"]["value"] == pytest.approx(2.0)
    assert there["mean_jets"]["inside_dns_95"] is False               # 2.0 is not in [2.05, 2.15]
    assert there["merging_rate"]["inside_dns_95"] is True
    assert there["nucleation_rate"]["inside_dns_95"] is None         # no interval: not judged
    assert dns[1]["emulator_there"] is None                           # outside the swept range
    assert counts == {"mean_jets": [0, 1], "merging_rate": [1, 1], "nucleation_rate": [0, 0]}
    rep["spacing"] = "linear"
    emulator_at_dns(rep)
    assert dns[0]["emulator_there"]["mean_jets"]["value"] == pytest.approx(1 + 2 / 3)
    row = "| a | 2 | 2.1 [2.05, 2.15] / 1.67 (out) | 2 [1.5, 2.5] / 1.67 (in) | 0 / 0 |"
    assert row in comparison_table(rep)


def test_sweep_names_bad_input_and_writes_nothing(model, runs, tmp_path, capsys):
    b2, b6 = runs
    plain = tmp_path / "plain"
    save_slt(SLT(16, window=3, width=8, heads=2, layers=1, hidden=16,
                 stats={"mean": 0.0, "std": 1.0}), plain)
    some = ["jets", "--sweep", str(model), "--param-range", "beta=2:6", "--points", "2",
            "--members", "2", "--threads", "1"]
    base = [*some, "--steps", "5"]
    for argv, words in [
            ([*base, "--init", str(b2), "--sweep", str(plain)], "--sweep: .*not conditioned"),
            ([*base, "--init", str(b2), "--param-range", "mu=1:2"],
             "--param-range: unknown parameter 'mu'"),
            ([*base, "--init", str(b2), "--param-range", "beta=6:2"],
             "argument --param-range: expected NAME=LO:HI"),
            ([*base, "--init", str(b2), "--fixed", "mu=1"], "--fixed: unknown parameter 'mu'"),
            ([*base, "--init", str(b2), "--fixed", "beta=1"], "--fixed beta: it is the swept"),
            ([*base, "--init", str(b2), "--spacing", "log", "--param-range", "beta=-1:6"],
             "--param-range beta: log spacing needs a positive range"),
            (base, "--init: give the run"),
            ([*base, "--init", str(tmp_path / "none.nc")], "--init .*none.nc does not exist"),
            ([*base, "--dns", str(tmp_path / "none.nc")], "--dns .*none.nc does not exist"),
            ([*base, "--init", str(b2), "--burn-in", "4"], "--burn-in 4 leaves 1 of the 5"),
            ([*base, "--init", str(b2), str(b6)], "--sweep takes no RUN REFERENCE"),
            ([*some, "--init", str(b2)], "--steps: give the saves"),
            (["jets", str(b2)], "give RUN and REFERENCE")]:
        assert main([*argv, "--out", str(tmp_path / "bad")]) == 2, argv
        err = capsys.readouterr().err
        assert re.search(words, err), (argv, err)
    assert not (tmp_path / "bad").exists()


def test_an_interrupted_sweep_resumes_to_the_numbers_of_an_uninterrupted_one(
        model, runs, tmp_path, capsys, monkeypatch):
    import torch

    from hybrid.jets import sweep as sweep_module
    b2, b6 = runs
    copy = tmp_path / "model" / model.name                   # a copy whose weights can change
    copy.parent.mkdir()
    for f in model.parent.glob(model.name + ".*"):
        (copy.parent / f.name).write_bytes(f.read_bytes())
    args = ["jets", "--sweep", str(copy), "--param-range", "beta=2:6", "--points", "3",
            "--members", "3", "--steps", "12", "--dns", str(b2), str(b6), "--persist", "3",
            "--bootstrap", "100", "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "sweep.json").read_text())
    assert whole["cost"]["values_resumed"] == 0

    save = sweep_module._save_value

    def stop_after_the_second(folder, entry, common):
        save(folder, entry, common)
        if entry["index"] == 1:
            raise KeyboardInterrupt
    monkeypatch.setattr(sweep_module, "_save_value", stop_after_the_second)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(out)])
    monkeypatch.undo()
    assert sorted(p.name for p in (out / "values").iterdir()) == ["000.json", "001.json"]
    assert not (out / "sweep.json").exists()
    capsys.readouterr()
    for extra, words in [([], "holds 2 finished values .* pass --resume"),
                         (["--resume", "--overwrite"], "give one of them"),
                         (["--resume", "--seed", "1"], r"000.json was made with seed = 0, "
                                                       r"this sweep has 1")]:
        assert main([*args, "--out", str(out), *extra]) == 2, extra
        assert re.search(words, capsys.readouterr().err), extra
    # other weights under the same path are another setting
    weights = copy.parent / (copy.name + ".pt")
    original = weights.read_bytes()
    state = torch.load(weights, weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1e-3
    torch.save(state, weights)
    assert main([*args, "--out", str(out), "--resume"]) == 2
    assert "was made with weights = " in capsys.readouterr().err
    weights.write_bytes(original)
    assert main([*args, "--out", str(out), "--resume"]) == 0
    resumed = json.loads((out / "sweep.json").read_text())
    assert resumed["cost"]["values_resumed"] == 2
    assert not (out / "values").exists()                      # removed once sweep.json is written
    for a, b in zip(whole["values"], resumed["values"]):
        a.pop("wall_s"), b.pop("wall_s")
        assert a == b
    assert [d["mean_jets"] for d in whole["dns"]] == [d["mean_jets"] for d in resumed["dns"]]
