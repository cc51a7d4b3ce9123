"""The cost-vs-DNS report at a tiny size: the oracle is the upper bound it should be."""
import json

import pytest

from hybrid.cli import main
from hybrid.report import ReportConfig, build_report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    cfg = ReportConfig(dns_n=(64,), dns_dt=(2e-3,), les_n=32, les_dt=1e-2, every=1, members=2,
                       spinup=1.0, t=1.0, output_every=0.1,
                       closures=("none", "smagorinsky", "smagorinsky@3", "oracle"))
    return out, build_report(cfg, out, progress=False)


def test_oracle_tracks_filtered_dns_far_better_than_no_closure(report):
    _, r = report
    rows = {row["model"]: row["metrics"] for row in r["les"]}
    none, oracle = rows["LES none"], rows["LES oracle"]
    assert none["lead_t1"] == pytest.approx(1.0)
    # measured 2026-11-22: none 0.52, oracle 0.070 (ratio 7.5); assert a factor 3 at t = 1
    assert oracle["error_member_t1"] < none["error_member_t1"] / 3
    assert oracle["error_member_t1"] < 0.2


def test_report_files_and_costs(report):
    out, r = report
    for name in ("report.md", "report.json", "cost_vs_error.png", "final_vorticity.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "report.json").read_text())
    assert [row["model"] for row in saved["les"]] == [
        "LES none", "LES smagorinsky every 1", "LES smagorinsky every 3", "LES oracle"]
    assert (out / "runs" / "les32-smagorinsky-every-3" / "trajectory.nc").is_file()
    # cost: the run.json of each run, wall seconds / (simulated time · members); the closure's
    # share is its timings.closure_s over the wall time; the reference DNS's own closure is the
    # recorder of the oracle's data, whose time is not the DNS's cost
    folders = ["les32-none", "les32-smagorinsky-every-1", "les32-smagorinsky-every-3",
               "les32-oracle"]
    for row, name in zip(saved["les"], folders):
        info = json.loads((out / "runs" / name / "run.json").read_text())
        t = info["timings"]
        assert info["simulated_time"] == pytest.approx(1.0) and info["members"] == 2
        assert row["cost"] == pytest.approx(t["wall_s"] / (info["simulated_time"] * 2), rel=1e-12)
        assert row["closure_share"] == pytest.approx(t["closure_s"] / t["wall_s"], rel=1e-12)
    info = json.loads((out / "runs" / "dns64" / "run.json").read_text())
    t = info["timings"]
    assert saved["dns"][0]["cost"] == pytest.approx(
        (t["wall_s"] - t["closure_s"]) / (info["simulated_time"] * info["members"]), rel=1e-12)
    # the DNS takes 5× the steps on 4× the points of the LES: per time unit and member it costs
    # well over 3× the LES without a closure, measured in this same process
    assert saved["dns"][0]["cost"] > 3 * saved["les"][0]["cost"]
    # 100 LES steps: refreshes at steps 0, 1, …, 99 ("none" is the zero closure, which times the
    # hook itself) and at 0, 3, …, 99. The time shares are only reported: on a shared machine
    # they are too noisy to assert on (CI once saw 0.80 against 0.66 for a third of the calls).
    assert [row["closure_calls"] for row in saved["les"]] == [100, 100, 34, 100]
    text = (out / "report.md").read_text()
    assert "| LES oracle | 32² |" in text and "speed-up vs DNS 64²" in text


def test_report_config_is_checked():
    with pytest.raises(ValueError, match="multiple of the reference DNS dt"):
        ReportConfig(dns_dt=(3e-3, 1e-3), les_dt=5e-3, every=1).check()
    with pytest.raises(ValueError, match="'magic' is not among"):
        ReportConfig(closures=("magic",)).check()
    for bad in ("ldm@0", "ldm@x", "ldm@"):
        with pytest.raises(ValueError, match="integer ≥ 1"):
            ReportConfig(closures=(bad,)).check()
    with pytest.raises(ValueError, match="one oracle row at most"):
        ReportConfig(closures=("oracle", "oracle@1")).check()
    with pytest.raises(ValueError, match="a row twice"):
        ReportConfig(closures=("ldm", "ldm@5")).check()           # every = 5 by default
    assert ReportConfig(closures=("ldm@1", "ldm@5", "none")).rows() == [
        ("ldm", 1, "ldm every 1", {}), ("ldm", 5, "ldm every 5", {}), ("none", 5, "none", {})]
    assert ReportConfig(closures=("ldm@5", "ldm@5/steps=5/precision=bfloat16")).rows() == [
        ("ldm", 5, "ldm every 5", {}),
        ("ldm", 5, "ldm every 5 precision=bfloat16 steps=5", {"steps": 5,
                                                               "precision": "bfloat16"})]
    for bad, msg in (("ldm@5/steps", "key=value"), ("smagorinsky/cs=0.2", "learned closures")):
        with pytest.raises(ValueError, match=msg):
            ReportConfig(closures=(bad,)).check()
    # the shipped models were trained on seed-0 DNS data of this preset: not a test start
    with pytest.raises(ValueError, match="training states"):
        ReportConfig(seed=0, closures=("none", "ldm-mean")).check()
    ReportConfig(seed=1, closures=("none", "ldm-mean")).check()
    with pytest.raises(ValueError, match="not a stochastic closure"):
        ReportConfig(ensemble_rows=("ldm-mean",)).check()
    demo = ReportConfig.size("demo")
    assert {"dynamic-smagorinsky", "ldm-mean", "ldm", "oracle", "leith"} <= set(demo.closures)
    assert demo.ensemble_entries() == ["ldm", "slt-closure@10"]
    # the SLT closure's history means the data's refresh interval (0.05 time units)
    with pytest.raises(ValueError, match="trained on samples 0.05 apart"):
        ReportConfig(seed=1, closures=("slt-closure@5",)).check()
    ReportConfig(seed=1, closures=("slt-closure@10",)).check()
    assert main(["bench", "--members", "0", "--out", "x"]) == 2
    assert main(["bench", "--rows", "none,magic", "--out", "x"]) == 2
