"""closures.data.ClosureDataset: splits by blocks of sampling time (sizes, no shared times, gap),
training statistics, the closure sign, incomplete trailing records, grid checks, errors naming
the file, and a file written by ``hybrid generate`` itself."""
from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from closures.data import ClosureDataError, ClosureDataset
from solvers.grid import Grid

N, L = 8, 1.0


def write_dataset(path, times=10, members=2, sign=-1, complete=None, extra=0, n=N,
                  drop=(), with_sign=True, seed=0, split=None):
    """A closure dataset in the documented layout: sample i = k·members + m at time 0.5 + 0.25 k;
    omega_bar = 2 + 3·noise, subgrid = −1 + 0.5·noise; ``extra`` trailing records of NaN beyond
    ``samples_complete`` (the debris of a killed writer). Returns (omega, subgrid, time, member)
    of the written complete samples."""
    rng = np.random.default_rng(seed)
    count = times * members
    complete = count if complete is None else complete
    w = (2 + 3 * rng.standard_normal((count, n, n))).astype(np.float32)
    s = (-1 + 0.5 * rng.standard_normal((count, n, n))).astype(np.float32)
    t = np.repeat(0.5 + 0.25 * np.arange(times), members)
    m = np.tile(np.arange(members, dtype=np.int32), times)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("sample", None)
        ds.createDimension("y", n)
        ds.createDimension("x", n)
        variables = {"omega_bar": ("f4", ("sample", "y", "x"), w),
                     "subgrid": ("f4", ("sample", "y", "x"), s),
                     "member": ("i4", ("sample",), m), "time": ("f8", ("sample",), t),
                     "step": ("i8", ("sample",), (t * 100).astype(np.int64))}
        for name, (dtype, dims, values) in variables.items():
            if name in drop:
                continue
            v = ds.createVariable(name, dtype, dims)
            v[:count] = values
            if extra and len(dims) == 3:
                v[count:count + extra] = np.full((extra, n, n), np.nan, np.float32)
            elif extra:
                v[count:count + extra] = np.full(extra, 99, dtype=values.dtype)
        attrs = {"dataset_format": "hybrid-closure-dataset", "format_version": np.int32(1),
                 "preset": "tiny", "n_les": np.int32(n), "L": L,
                 "samples_complete": np.int64(complete), "members": np.int32(members)}
        if with_sign:
            attrs["closure_sign"] = np.int32(sign)
        if split is not None:
            attrs.update(split)
        ds.setncatts(attrs)
    return w[:complete], s[:complete], t[:complete], m[:complete]


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.nc"
    return path, write_dataset(path)


def test_split_sizes_and_no_shared_times(tiny):
    path, _ = tiny
    train = ClosureDataset(path, "train", val_fraction=0.2)
    val = ClosureDataset(path, "val", val_fraction=0.2)
    assert len(train) == 16 and len(val) == 4                     # 8 + 2 times × 2 members
    assert set(train.times).isdisjoint(val.times)
    assert train.times.max() < val.times.min()                    # the last times are held out
    np.testing.assert_array_equal(val.val_times, [2.5, 2.75])
    np.testing.assert_array_equal(np.sort(np.unique(val.members)), [0, 1])   # every member
    assert sorted(np.concatenate([train.sample_index, val.sample_index])) == list(range(20))
    # a gap of one sampling time between the blocks
    gapped = ClosureDataset(path, "train", val_fraction=0.2, gap=1)
    assert len(gapped) == 14 and gapped.train_times.max() == 2.0
    # ceil: 0.05 of 10 times is one time; 0 leaves the validation split empty
    assert len(ClosureDataset(path, "val", val_fraction=0.05)) == 2
    assert len(ClosureDataset(path, "val", val_fraction=0.0)) == 0
    assert len(ClosureDataset(path, "train", val_fraction=0.0)) == 20


def test_items_sign_and_normalisation(tiny):
    path, (w, s, _, _) = tiny
    raw = ClosureDataset(path, "train", val_fraction=0.2, normalise=False)
    om, c = raw[3]
    assert om.shape == (1, N, N) and c.shape == (1, N, N)
    assert om.dtype == torch.float32 and c.dtype == torch.float32
    idx = raw.sample_index[3]
    np.testing.assert_array_equal(om[0].numpy(), w[idx])
    np.testing.assert_array_equal(c[0].numpy(), -s[idx])          # C = closure_sign · subgrid
    # statistics from the training samples only, in float64
    tr = raw.sample_index
    stats = raw.stats
    np.testing.assert_allclose(stats["omega_bar"]["mean"], w[tr].astype(np.float64).mean(),
                               rtol=1e-10)
    np.testing.assert_allclose(stats["omega_bar"]["std"], w[tr].astype(np.float64).std(),
                               rtol=1e-10)
    np.testing.assert_allclose(stats["closure"]["mean"], -s[tr].astype(np.float64).mean(),
                               rtol=1e-10)
    np.testing.assert_allclose(stats["closure"]["std"], s[tr].astype(np.float64).std(),
                               rtol=1e-10)
    assert abs(stats["omega_bar"]["mean"] - 2) < 0.2 and abs(stats["closure"]["mean"] - 1) < 0.1
    # normalised: the training split has mean 0 and std 1; validation uses the training stats
    train = ClosureDataset(path, "train", val_fraction=0.2)
    val = ClosureDataset(path, "val", val_fraction=0.2)
    assert val.stats == train.stats == raw.stats
    for field in (train.omega_bar, train.closure):
        assert abs(field.double().mean().item()) < 1e-5
        assert abs(field.double().std(unbiased=False).item() - 1) < 1e-5
    vi = val.sample_index[0]
    np.testing.assert_allclose(val[0][1][0].numpy(),
                               (-s[vi] - stats["closure"]["mean"]) / stats["closure"]["std"],
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(val.denormalise(val[0][1], "closure")[0],
                               torch.from_numpy(-s[vi]), rtol=1e-5, atol=1e-5)
    # given statistics replace computed ones
    fixed = {"omega_bar": {"mean": 0.0, "std": 2.0}, "closure": {"mean": 1.0, "std": 1.0}}
    given = ClosureDataset(path, "val", val_fraction=0.2, stats=fixed)
    np.testing.assert_allclose(given[0][0][0].numpy(), w[vi] / 2.0, rtol=1e-6)
    with pytest.raises(ValueError, match="stats"):
        ClosureDataset(path, stats={"omega_bar": {"mean": 0.0}})
    # batches through a DataLoader
    om_b, c_b = next(iter(DataLoader(train, batch_size=5, shuffle=False)))
    assert om_b.shape == (5, 1, N, N) and c_b.shape == (5, 1, N, N)


def test_positive_closure_sign(tmp_path):
    path = tmp_path / "mp.nc"
    _, s, _, _ = write_dataset(path, sign=1)
    ds = ClosureDataset(path, normalise=False, val_fraction=0.1)
    np.testing.assert_array_equal(ds[0][1][0].numpy(), s[ds.sample_index[0]])
    assert ds.closure_sign == 1


def test_records_beyond_samples_complete_are_ignored(tmp_path):
    path = tmp_path / "killed.nc"
    write_dataset(path, times=6, members=2, complete=10, extra=3)   # 15 records, 10 complete
    with netCDF4.Dataset(path) as raw:
        assert len(raw.dimensions["sample"]) == 15
    train = ClosureDataset(path, "train", val_fraction=0.2)
    val = ClosureDataset(path, "val", val_fraction=0.2)
    assert train.samples_complete == 10
    assert len(train) + len(val) == 10 and len(val) == 2           # 5 complete times
    assert torch.isfinite(train.omega_bar).all() and torch.isfinite(val.closure).all()
    assert 99 not in train.times and 99 not in val.times


def test_grid_check_and_model_card(tiny):
    path, _ = tiny
    ds = ClosureDataset(path)
    ds.check_grid(N, L)
    ds.check_grid(N)
    ds.check_grid(Grid(N, L))
    with pytest.raises(ValueError, match="8² grid, not 16²"):
        ds.check_grid(16, L)
    with pytest.raises(ValueError, match="L=1"):
        ds.check_grid(N, 2 * np.pi)
    with pytest.raises(ValueError, match="tiny.nc"):
        ds.check_grid(Grid(16, L))
    card = json.loads(json.dumps(ds.describe()))
    assert card["closure_sign"] == -1 and card["n"] == N and card["L"] == L
    assert card["split"]["train_times"]["count"] == 9 and card["split"]["val_times"]["count"] == 1
    assert card["stats"] == ds.stats and card["preset"] == "tiny"


def test_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.nc"
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        ClosureDataset(missing)
    with pytest.raises(IsADirectoryError):
        ClosureDataset(tmp_path)
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(ClosureDataError, match="corrupt.nc"):
        ClosureDataset(corrupt)
    truncated = tmp_path / "truncated.nc"
    write_dataset(truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(ClosureDataError, match="truncated.nc"):
        ClosureDataset(truncated)
    no_subgrid = tmp_path / "no_subgrid.nc"
    write_dataset(no_subgrid, drop=("subgrid",))
    with pytest.raises(ClosureDataError, match=r"no_subgrid\.nc.*subgrid"):
        ClosureDataset(no_subgrid)
    no_sign = tmp_path / "no_sign.nc"
    write_dataset(no_sign, with_sign=False)
    with pytest.raises(ClosureDataError, match=r"no_sign\.nc.*closure_sign"):
        ClosureDataset(no_sign)
    empty = tmp_path / "empty.nc"
    write_dataset(empty, complete=0)
    with pytest.raises(ClosureDataError, match=r"empty\.nc.*no complete samples"):
        ClosureDataset(empty)
    one_time = tmp_path / "one_time.nc"
    write_dataset(one_time, times=1)
    with pytest.raises(ClosureDataError, match="cannot be split"):
        ClosureDataset(one_time, val_fraction=0.1)
    assert len(ClosureDataset(one_time, val_fraction=0.0)) == 2
    nan = tmp_path / "nan.nc"
    write_dataset(nan, complete=20 + 1, extra=1)                # a NaN record claimed complete
    with pytest.raises(ClosureDataError, match=r"nan\.nc.*sample 20"):
        ClosureDataset(nan, val_fraction=0.0)


@pytest.mark.parametrize("kwargs, match", [({"split": "testing"}, "split"),
                                           ({"test_fraction": 1.0}, "test_fraction"),
                                           ({"val_fraction": 0.5, "test_fraction": 0.5},
                                            "val_fraction \\+ test_fraction"),
                                           ({"val_fraction": 1.0}, "val_fraction"),
                                           ({"val_fraction": -0.1}, "val_fraction"),
                                           ({"gap": -1}, "gap"), ({"chunk": 0}, "chunk")])
def test_bad_arguments(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClosureDataset(tiny[0], **kwargs)


def test_chunked_reading_gives_the_same_data(tiny):
    path, _ = tiny
    a = ClosureDataset(path, "train", chunk=3)
    b = ClosureDataset(path, "train", chunk=1000)
    assert torch.equal(a.omega_bar, b.omega_bar) and torch.equal(a.closure, b.closure)
    for f in ("omega_bar", "closure"):
        for k in ("mean", "std"):
            np.testing.assert_allclose(a.stats[f][k], b.stats[f][k], rtol=1e-12)


def test_reads_a_file_written_by_hybrid_generate(tmp_path):
    """The format as ``hybrid generate`` writes it (missing-physics target, closure_sign +1)."""
    from hybrid import datasets as hd
    out = tmp_path / "unit.nc"
    hd.generate_dataset("ns-unitbox", out, samples=4, n_dns=32, n_les=16, interval=0.01,
                        target="missing-physics", split=(0.75, 0.25, 0.0), progress=False)
    train = ClosureDataset(out, "train", normalise=False)       # the split the file records
    val = ClosureDataset(out, "val", normalise=False)
    assert len(train) == 3 and len(val) == 1 and train.n == 16 and train.L == 1.0
    train.check_grid(16, 1.0)
    with hd.open_dataset(out) as ds:
        sign = int(ds.attrs["closure_sign"])
        np.testing.assert_array_equal(train.omega_bar[:, 0].numpy(),
                                      ds["omega_bar"].values[:3])
        np.testing.assert_array_equal(val.closure[:, 0].numpy(),
                                      sign * ds["subgrid"].values[3:])


def test_the_closure_modules_do_not_import_hybrid():
    """closures stands on solvers only: loading the new modules pulls in no hybrid module."""
    import subprocess
    import sys
    code = ("import sys, closures.data, closures.losses, closures.nn; "
            "bad = [m for m in sys.modules if m == 'hybrid' or m.startswith('hybrid.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_three_blocks_by_time_from_fractions_and_from_the_file(tmp_path):
    """Training, validation and test are disjoint blocks of sampling times in that order; a file
    that records its boundaries is split there whatever fractions the caller passes; the test
    block's samples are exactly those at its times."""
    from closures.data import time_split
    assert time_split((0.7, 0.15, 0.15), 20) == (14, 3, 3)
    assert time_split((0.7, 0.15, 0.15), 20, gap=1) == (12, 3, 3)
    assert time_split((0.0, 0.0, 1.0), 5) == (0, 0, 5)
    with pytest.raises(ValueError, match="fractions"):
        time_split((0.5, 0.5, 0.5), 5)
    path = tmp_path / "legacy.nc"
    w, _, t, _ = write_dataset(path, times=20)            # times 0.5, 0.75, … 5.25
    parts = {sp: ClosureDataset(path, sp, val_fraction=0.15, test_fraction=0.15, gap=1,
                                normalise=False) for sp in ("train", "val", "test")}
    times = {sp: np.unique(d.times) for sp, d in parts.items()}
    assert [times[sp].size for sp in ("train", "val", "test")] == [12, 3, 3]
    assert times["train"].max() < times["val"].min() < times["val"].max() < times["test"].min()
    assert times["test"].min() == pytest.approx(0.5 + 0.25 * 17)
    np.testing.assert_array_equal(parts["test"].omega_bar[:, 0].numpy(), w[t >= 4.75 - 1e-9])
    recorded = tmp_path / "recorded.nc"
    write_dataset(recorded, times=20, split={"split_fractions": "[0.5, 0.25, 0.25]",
                                             "split_validation_from": 3.0,
                                             "split_test_from": 4.25, "interval": 0.25})
    test = ClosureDataset(recorded, "test", val_fraction=0.1)
    val = ClosureDataset(recorded, "val", val_fraction=0.1, stats=test.stats)
    assert test.split_source == "file" and np.unique(test.times)[0] == pytest.approx(4.25)
    assert np.unique(val.times).tolist() == pytest.approx([3.0, 3.25, 3.5, 3.75, 4.0])
    assert test.describe()["split"]["fractions"] == [0.5, 0.25, 0.25]
    # a file that is all test: no training block, so statistics must be given
    only = tmp_path / "only_test.nc"
    write_dataset(only, times=4, split={"split_fractions": "[0, 0, 1]",
                                        "split_validation_from": 0.5, "split_test_from": 0.5})
    with pytest.raises(ClosureDataError, match="no training block"):
        ClosureDataset(only, "test")
    assert len(ClosureDataset(only, "test", stats=test.stats)) == 8


def test_training_sets_torch_threads_for_itself_only(monkeypatch):
    """train_ldm runs with its ``threads`` and gives the caller's count back, also on error."""
    from closures import train as tr
    seen = []

    def no_data(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise FileNotFoundError("no data here")

    monkeypatch.setattr(tr, "ClosureDataset", no_data)
    before = torch.get_num_threads()
    mine = 1 if before != 1 else 2
    try:
        with pytest.raises(FileNotFoundError, match="no data here"):
            tr.train_ldm("nowhere.nc", "model", threads=mine, progress=False)
        assert seen == [mine] and torch.get_num_threads() == before
        with pytest.raises(FileNotFoundError):
            tr.train_ldm("nowhere.nc", "model", progress=False)      # None: torch's own setting
        assert seen == [mine, before]
        with pytest.raises(ValueError, match="threads"):
            tr.train_ldm("nowhere.nc", "model", threads=0, progress=False)
    finally:
        torch.set_num_threads(before)


def test_closures_exports_every_classical_closure_and_the_mean_network_without_torch():
    import subprocess
    import sys
    code = ("import sys, closures\n"
            "assert 'torch' not in sys.modules\n"
            "from closures import DynamicSmagorinsky, MeanNetworkClosure\n"
            "from closures.classical import DynamicSmagorinsky as D\n"
            "from closures.ldm import MeanNetworkClosure as M\n"
            "assert D is DynamicSmagorinsky and M is MeanNetworkClosure\n"
            "assert set(closures.__all__) <= set(dir(closures))\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_reader_of_the_file_format(tmp_path):
    """hybrid.datasets and closures.data read closure datasets through closures.dataset_file: one
    reader, one error, one split rule."""
    from closures import data, dataset_file
    from hybrid import datasets as hd
    assert hd.open_dataset is dataset_file.open_dataset
    assert ClosureDataError is hd.DatasetFileError is dataset_file.DatasetFileError
    assert data.time_split is dataset_file.time_split
    assert data.DEFAULT_SPLIT == dataset_file.DEFAULT_SPLIT
    path = tmp_path / "killed.nc"
    write_dataset(path, times=6, members=2, complete=10, extra=3)
    with dataset_file.open_dataset(path) as ds:
        assert ds.sizes["sample"] == 10 and dataset_file.closure_sign(ds) == -1
    foreign = tmp_path / "foreign.nc"
    write_dataset(foreign)
    with netCDF4.Dataset(foreign, "a") as ds:
        ds.delncattr("dataset_format")
    with pytest.raises(ClosureDataError, match=r"foreign\.nc.*not a closure dataset"):
        ClosureDataset(foreign)
    with netCDF4.Dataset(path, "a") as ds:                # a complete sample never written
        ds["omega_bar"][15:17] = np.ones((2, N, N), np.float32)
        ds.samples_complete = np.int64(17)
    with pytest.raises(ClosureDataError, match=r"time has missing \(fill\) values at sample 15"):
        ClosureDataset(path, val_fraction=0.0)
