"""Closure datasets (the netCDF files of ``hybrid generate``) as torch datasets.

A closure dataset holds pairs on the LES grid: ``omega_bar`` and ``subgrid`` (sample, y, x),
float32, with ``member`` and ``time`` per sample and the closure sign (the LES closure tendency is
C = closure_sign · subgrid). The file is read through its one reader,
:func:`closures.dataset_file.open_dataset` (its checks, complete samples only; errors name the
file), which also holds the split (:func:`~closures.dataset_file.split_blocks`); this module adds
at least one complete sample, the block asked for, and the normalisation.

Split: three blocks of sampling time, in this order: training (fitting weights), validation
(choices made by looking at held-out data: early stopping, sampler settings, calibration) and test
(every reported number). All members at one time fall in the same block, so no two blocks share a
DNS snapshot, and consecutive (strongly correlated) snapshots meet only across the two
boundaries, which ``gap ≥ 1`` (times dropped at the end of the training and validation blocks)
removes as well. Files written by ``hybrid generate`` record the split in their attributes
(``split_fractions``; ``split_validation_from`` and ``split_test_from``, the first sampling time
of each block, so that an extended file adds test times only); this reader uses them. For a file
without them the last ``ceil(test_fraction · T)`` of its T distinct times are the test block, the
``ceil(val_fraction · T)`` before them the validation block (:func:`time_split`). (Members are
independent DNS runs, so splitting by member would also be sound, but datasets often have few
members.)

Normalisation: one mean and one standard deviation per field (ω̄ and C), over all training
samples and points, computed in float64; both splits use the training statistics, which are on
the object (``stats``) and in ``describe()`` for the model card. ``normalise=False`` returns the
physical fields. Pass ``stats=`` (e.g. a model card's) to use given statistics instead.

Histories: a file of consecutive samples (``hybrid generate --consecutive K``) marks each
member's K samples of a sampling time as one sequence (``sequence``, ``position``; a file without
them holds sequences of one); :meth:`ClosureDataset.windows` serves windows of L consecutive
pairs of one member, oldest first. A sequence falls in one block of the split (its samples lie
between two sampling times), so no window crosses blocks.

The split's samples are read into memory (2 × 4 bytes × n² per sample), in chunks.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from solvers.validate import integer

from .dataset_file import DEFAULT_SPLIT, SEQUENCE_VARIABLES, DatasetFileError, closure_sign, \
    open_dataset, read_samples, split_blocks, time_split

__all__ = ["ClosureDataset", "ClosureDataError", "FIELDS", "SPLITS", "time_split",
           "DEFAULT_SPLIT"]

FIELDS = ("omega_bar", "closure")
SPLITS = ("train", "val", "test")
ClosureDataError = DatasetFileError     # the one error of the file format, by its older name


def _welford_merge(acc, x: np.ndarray):
    """Combine running (count, mean, M2) with the values of ``x`` (Chan et al.'s update)."""
    n_b = x.size
    if n_b == 0:
        return acc
    x = x.astype(np.float64, copy=False)
    mean_b = float(x.mean())
    m2_b = float(((x - mean_b) ** 2).sum())
    n_a, mean_a, m2_a = acc
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * n_b / n, m2_a + m2_b + delta**2 * n_a * n_b / n


def _check_stats(stats, where: str) -> dict:
    try:
        out = {f: {"mean": float(stats[f]["mean"]), "std": float(stats[f]["std"])}
               for f in FIELDS}
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: stats must look like {{'omega_bar': {{'mean': …, 'std': …}}, "
                         f"'closure': {{'mean': …, 'std': …}}}}, got {stats!r}") from None
    for f, s in out.items():
        if not (math.isfinite(s["mean"]) and math.isfinite(s["std"]) and s["std"] > 0):
            raise ValueError(f"{where}: stats of {f} need a finite mean and a positive std, "
                             f"got {s}")
    return out


class ClosureDataset(Dataset):
    """Pairs (ω̄, C) of a closure dataset file as float32 tensors of shape (1, n, n).

    ``split``: 'train', 'val' or 'test' (module docstring: blocks of sampling times; the file's
    recorded split, else the last ``test_fraction`` of the times for test and the
    ``val_fraction`` before them for validation; ``gap`` times dropped at each boundary; a zero
    fraction leaves that block empty). ``normalise``: return (x − mean)/std with the training
    statistics. ``stats``: given statistics instead of computed ones. ``chunk``: samples read at
    a time.

    Attributes: ``path``, ``split``, ``n``, ``L`` (None if the file does not say), ``closure_sign``,
    ``preset``, ``attrs`` (global attributes), ``samples_complete``, ``sample_index`` (file
    indices of this split's samples), ``times``/``members`` (per sample), ``train_times`` and
    ``val_times``, ``test_times`` (the distinct sampling times of each block), ``split_source``
    ('file' or 'fractions'), ``sequences`` and ``positions`` (per sample: the sequence of
    consecutive samples and the place in it; see :meth:`windows`), ``consecutive`` (samples per
    sequence, 1 for a file without sequences), ``stats``, ``omega_bar`` and
    ``closure`` (N, 1, n, n) tensors (normalised if ``normalise``).

    Raises FileNotFoundError / IsADirectoryError for a missing path, :class:`ClosureDataError`
    (a ValueError) for a file that is not a usable closure dataset, ValueError for bad arguments.
    """

    def __init__(self, path, split: str = "train", val_fraction: float = 0.1,
                 normalise: bool = True, gap: int = 0, stats: dict | None = None,
                 chunk: int = 256, test_fraction: float = 0.0):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        fr = []
        for name, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = float("nan")
            if isinstance(v, bool) or not 0 <= x < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {v!r}")
            fr.append(x)
        vf, tf = fr
        if vf + tf >= 1:
            raise ValueError(f"val_fraction + test_fraction must be < 1, got {vf:g} + {tf:g}")
        integer("gap", gap, 0)
        integer("chunk", chunk, 1)
        self.path = Path(os.fspath(path)).expanduser()
        self.split = split
        self.val_fraction, self.test_fraction = vf, tf
        self.gap = int(gap)
        self.normalised = bool(normalise)
        self._load(int(chunk), stats)

    # ------------------------------------------------------------------ reading
    def _fail(self, what: str) -> ClosureDataError:
        return ClosureDataError(f"closure dataset {self.path}: {what}")

    def _load(self, chunk: int, stats: dict | None) -> None:
        with open_dataset(self.path) as ds:
            self._read(ds, chunk, stats)

    def _read(self, ds, chunk: int, stats: dict | None) -> None:
        self.attrs = dict(ds.attrs)
        self.closure_sign = sign = closure_sign(ds)
        self.samples_complete = c = int(ds.sizes["sample"])
        if c < 1:
            raise self._fail("it holds no complete samples (samples_complete = 0)")
        self.n = nx = int(ds.sizes["x"])
        L = self.attrs.get("L")
        self.L = None if L is None else float(L)
        self.preset = self.attrs.get("preset")
        all_times = read_samples(ds, "time", dtype=np.float64)
        all_members = read_samples(ds, "member", dtype=np.int64)
        if SEQUENCE_VARIABLES[0] in ds.variables:
            all_seq, all_pos = (read_samples(ds, v, dtype=np.int64) for v in SEQUENCE_VARIABLES)
        else:                                       # sequences of one sample each
            all_seq, all_pos = np.arange(c, dtype=np.int64), np.zeros(c, dtype=np.int64)
        self.consecutive = int(self.attrs.get("consecutive", 1))

        # split into blocks of sampling times
        distinct = np.unique(all_times)
        try:
            blocks, self.split_source = split_blocks(
                distinct, self.attrs,
                (1 - self.val_fraction - self.test_fraction, self.val_fraction,
                 self.test_fraction), self.gap)
        except ValueError as e:
            raise self._fail(str(e)) from None
        self.train_times, self.val_times, self.test_times = blocks
        if self.train_times.size < 1 and stats is None:
            raise self._fail(f"its {distinct.size} sampling time(s) leave no training block "
                             f"(split from the {self.split_source}, gap {self.gap}) to "
                             f"normalise with: give stats= to read the other blocks")
        in_train = np.isin(all_times, self.train_times)
        in_split = np.isin(all_times, blocks[SPLITS.index(self.split)])
        self.sample_index = np.flatnonzero(in_split)
        self.times = all_times[self.sample_index]
        self.members = all_members[self.sample_index]
        self.sequences = all_seq[self.sample_index]
        self.positions = all_pos[self.sample_index]

        N = self.sample_index.size
        omega = np.empty((N, nx, nx), dtype=np.float32)
        clos = np.empty((N, nx, nx), dtype=np.float32)
        acc = {f: (0, 0.0, 0.0) for f in FIELDS}
        filled = 0
        for i0 in range(0, c, chunk):
            i1 = min(i0 + chunk, c)
            want_split = in_split[i0:i1]
            want_train = in_train[i0:i1]
            if not (want_split.any() or (stats is None and want_train.any())):
                continue
            w = read_samples(ds, "omega_bar", i0, i1)
            s = read_samples(ds, "subgrid", i0, i1)
            cl = s if sign == 1 else -s
            if stats is None:
                acc["omega_bar"] = _welford_merge(acc["omega_bar"], w[want_train])
                acc["closure"] = _welford_merge(acc["closure"], cl[want_train])
            k = int(want_split.sum())
            omega[filled:filled + k] = w[want_split]
            clos[filled:filled + k] = cl[want_split]
            filled += k

        if stats is None:
            self.stats = {}
            for f in FIELDS:
                count, mean, m2 = acc[f]
                std = math.sqrt(m2 / count) if count else 0.0
                if not std > 0:
                    raise self._fail(f"the training samples of {f} are constant (std 0): "
                                     f"cannot normalise")
                self.stats[f] = {"mean": mean, "std": std}
        else:
            self.stats = _check_stats(stats, f"ClosureDataset({self.path})")

        if self.normalised:
            omega = self.normalise(omega, "omega_bar")
            clos = self.normalise(clos, "closure")
        self.omega_bar = torch.from_numpy(np.ascontiguousarray(omega)).unsqueeze(1)
        self.closure = torch.from_numpy(np.ascontiguousarray(clos)).unsqueeze(1)

    def describe_split(self) -> dict:
        """The split as recorded on a model card: rule, fractions, gap and the three blocks."""
        def span(times):
            return {"count": int(times.size),
                    "first": float(times[0]) if times.size else None,
                    "last": float(times[-1]) if times.size else None}
        if self.split_source == "file":
            fractions = json.loads(str(self.attrs.get("split_fractions", "null")))
        else:
            fractions = [1 - self.val_fraction - self.test_fraction, self.val_fraction,
                         self.test_fraction]
        return {"by": "sampling-time blocks: training, validation, test",
                "source": self.split_source, "fractions": fractions,
                "val_fraction": self.val_fraction, "test_fraction": self.test_fraction,
                "gap": self.gap, "train_times": span(self.train_times),
                "val_times": span(self.val_times), "test_times": span(self.test_times),
                "this_split": self.split, "samples": len(self)}

    # ------------------------------------------------------------------ normalisation
    def _field(self, field: str) -> dict:
        if field not in FIELDS:
            raise ValueError(f"field must be one of {', '.join(FIELDS)}, got {field!r}")
        return self.stats[field]

    def normalise(self, x, field: str):
        """(x − mean)/std of ``field`` ('omega_bar' or 'closure'); numpy arrays stay float32
        numpy (computed in float64), tensors stay tensors of their dtype."""
        s = self._field(field)
        if torch.is_tensor(x):
            return (x - s["mean"]) / s["std"]
        return ((np.asarray(x, dtype=np.float64) - s["mean"]) / s["std"]).astype(np.float32)

    def denormalise(self, x, field: str):
        """Inverse of :meth:`normalise`: x·std + mean."""
        s = self._field(field)
        if torch.is_tensor(x):
            return x * s["std"] + s["mean"]
        return (np.asarray(x, dtype=np.float64) * s["std"] + s["mean"]).astype(np.float32)

    # ------------------------------------------------------------------ checks and records
    def check_grid(self, n, L: float | None = None) -> None:
        """Raise ValueError unless the data live on an n×n grid with box side L (L checked when
        both it and the file's ``L`` attribute are known). ``n`` may be a Grid (n and L taken
        from it)."""
        if hasattr(n, "n") and hasattr(n, "L"):
            n, L = n.n, (n.L if L is None else L)
        if int(n) != self.n:
            raise ValueError(f"closure dataset {self.path} is on a {self.n}² grid, not {n}²")
        if L is not None and self.L is not None and not math.isclose(float(L), self.L,
                                                                     rel_tol=1e-12):
            raise ValueError(f"closure dataset {self.path} has box side L={self.L:g}, not "
                             f"L={float(L):g}")

    def describe(self) -> dict:
        """A JSON-able record for a model card: source, grid, sign, split and statistics."""
        return {"source": str(self.path), "preset": None if self.preset is None
                else str(self.preset), "n": self.n, "L": self.L,
                "closure_sign": self.closure_sign,
                "closure": "C = closure_sign * subgrid",
                "samples_complete": self.samples_complete,
                "split": self.describe_split(),
                "normalised": self.normalised,
                "stats": {f: dict(v) for f, v in self.stats.items()},
                "generation": self.generation()}

    def generation(self) -> dict:
        """How ``hybrid generate`` made the file (its attributes; empty for other files)."""
        out = {}
        for k in ("n_dns", "n_les", "members", "interval", "spinup", "seed", "target",
                  "filter", "filter_width", "consecutive", "refresh_every", "refresh_interval",
                  "les_dt", "run_id", "created", "package_version"):
            v = self.attrs.get(k)
            if v is not None:
                out[k] = v.item() if hasattr(v, "item") else v
        try:
            out["dns_dt"] = json.loads(self.attrs["dns_config"])["dt"]
        except (KeyError, TypeError, ValueError):
            pass
        return out

    # ------------------------------------------------------------------ histories
    def windows(self, length: int, pad: bool = False) -> np.ndarray:
        """Indices (W, ``length``) into this split's samples (``omega_bar[idx]``) of the windows
        of ``length`` consecutive pairs of one member and one sequence, oldest first: one window
        per sample that ends one, in sample order. ``pad``: also the windows ending at the first
        ``length`` − 1 positions of a sequence, padded at the front by repeating the sequence's
        first pair (the cold start of :class:`closures.slt.SLTClosure`); with ``length`` 1 every
        sample is a window."""
        length = integer("length", length, 1)
        keys = list(zip(self.members.tolist(), self.sequences.tolist(),
                        self.positions.tolist()))
        where = {k: i for i, k in enumerate(keys)}
        rows = []
        for m, s, p in keys:
            if p + 1 < length and not pad:
                continue
            back = [where.get((m, s, q)) for q in range(max(p - length + 1, 0), p + 1)]
            if None in back:
                continue
            rows.append([back[0]] * (length - len(back)) + back)
        return np.asarray(rows, dtype=np.int64).reshape(-1, length)

    # ------------------------------------------------------------------ Dataset protocol
    def __len__(self) -> int:
        return int(self.sample_index.size)

    def __getitem__(self, i):
        return self.omega_bar[i], self.closure[i]

    def __repr__(self) -> str:
        return (f"ClosureDataset({str(self.path)!r}, split={self.split!r}, samples={len(self)}, "
                f"n={self.n}, normalised={self.normalised})")
