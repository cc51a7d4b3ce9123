"""Training of the parameter-conditioned stochastic latent transformer:
:func:`train_conditioned_slt`.

Data: several runs, each at its own parameter values. An entry of ``datasets`` is

* the path of a zonal-mean trajectory (``hybrid dns PRESET --record zonal-mean``, with
  ``--set beta=… --set mu=…`` for the values), or the run's folder holding ``trajectory.nc``:
  the values are read from the file's solver configuration (its ``config`` attribute, which
  holds every preset value a ``--set`` replaced; :func:`read_parameters`);
* a pair ``(data, {name: value})``: an array (times, n) or (members, times, n) of U with its
  values, or a path whose recorded values are checked against the given ones.

Every run has the same number of points n (the point-token model, ``kind='local'``: the same
grid spacing L/n where the files record it, any n) and, where the files record it, the same save
interval (the emulator steps one save). Each run is split by time as in
:func:`closures.slt.train.train_slt` (the first 1 − ``val_fraction`` of every member's saves
train, the rest validate); a sample is a window of L profiles, the next profile (the next K
with ``unroll`` = K > 1: a K-step free rollout, as in ``train_slt``) and the run's parameter
vector p (raw values, in the run's units), normalised inside the model.

Two stages, after the parameter-conditioning paper:

1. **pre-training** at one parameter value with the conditioning fixed at the identity:
   ``freeze=True`` here (or :func:`~closures.slt.train.train_slt`, an unconditioned SLT);
2. **fine-tuning** on the diverse set: ``pretrained`` = the model of stage 1 (an SLT or a
   conditioned model; its architecture and normalisation of U are kept), the conditioning
   learned, at a learning rate ``lr · lr_factor`` (default 5e-4/50). A pre-trained SLT becomes a
   :class:`~closures.slt.conditioned.ConditionedSLT` with the identity conditioning
   (:meth:`~closures.slt.conditioned.ConditionedSLT.from_slt`): training starts from exactly the
   pre-trained model.

Normalisation of the parameters: the centre and half-width of the training values
(:func:`~closures.slt.conditioned.parameter_normalisation`), unless ``pretrained`` is a
conditioned model whose conditioning was already learned (then its own is kept).

Objective, optimiser, schedule, files, checkpoints and resume: those of
:func:`~closures.slt.train.train_slt` (:func:`closures.fit.fit`; Adam over the weights that are
trained, ExponentialLR(``gamma``) per epoch; ``<stem>.log.jsonl``, ``<stem>.ckpt.pt``, and at
the end ``<stem>.pt`` / ``<stem>.json``, a card of version 2 with the parameter names and their
normalisation). The card's ``metrics.one_step`` holds the one-step skill on every run's
validation windows at that run's parameters.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from solvers.validate import integer, number

from ..fit import _gen, fit, run_signature, save_trained, training_metrics
from ..ldm.files import model_paths, resolve_model_path
from ..train import _threads_scoped, train_paths
from ..nn.conditioning import check_conditioning
from .conditioned import (ConditionedSLT, ParameterConditioned, check_parameter_names,
                          parameter_normalisation)
from .files import load_slt, save_slt
from .local import LOCAL_WEIGHTS, LocalSLT
from .local_conditioned import ConditionedLocalSLT
from .train import (ARCH_DEFAULTS, LOCAL_DEFAULTS, Windows, check_kind, check_options,
                    loss_weights, one_step_metrics, read_profiles, split_by_time, window_terms)

__all__ = ["train_conditioned_slt", "read_parameters", "ConditionedWindows"]


def _trajectory_path(path) -> Path:
    p = Path(os.fspath(path)).expanduser()
    return p / "trajectory.nc" if p.is_dir() else p


def _recorded(path) -> tuple[dict, dict | None]:
    """(the numeric entries of the trajectory's solver configuration, the ``settings`` of the
    run.json beside it or None)."""
    from solvers.io import open_trajectory
    p = _trajectory_path(path)
    ds = open_trajectory(p)
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: its solver configuration (attribute 'config') is not JSON: "
                         f"{e}") from None
    finally:
        ds.close()
    numeric = {k: float(v) for k, v in config.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    settings = None
    run_json = p.parent / "run.json"
    if run_json.is_file():
        try:
            settings = json.loads(run_json.read_text()).get("settings")
        except (OSError, json.JSONDecodeError, AttributeError):
            settings = None
    return numeric, settings


def read_parameters(path, names: Sequence[str]) -> dict[str, float]:
    """The values of the parameters ``names`` recorded in a trajectory (or a run folder): its
    solver configuration, which holds the preset's values with any ``hybrid dns --set``
    applied. ValueError naming the file and the parameter if one is not recorded."""
    names = check_parameter_names(names)
    numeric, _ = _recorded(path)
    missing = [n for n in names if n not in numeric]
    if missing:
        raise ValueError(f"{_trajectory_path(path)} records no parameter "
                         f"{', '.join(map(repr, missing))} (its numeric settings: "
                         f"{', '.join(sorted(numeric))})")
    return {n: numeric[n] for n in names}


def _entries(datasets) -> list:
    if isinstance(datasets, (str, os.PathLike)) or (
            isinstance(datasets, tuple) and len(datasets) == 2
            and isinstance(datasets[1], Mapping)):
        datasets = [datasets]
    if not isinstance(datasets, (list, tuple)) or not datasets:
        raise ValueError(f"datasets must be a non-empty list of runs (paths, or (data, "
                         f"{{name: value}}) pairs), got {datasets!r}")
    return list(datasets)


def _load_dataset(i: int, entry, names: tuple[str, ...]) -> tuple[np.ndarray, dict, dict]:
    """(U (members, times, n), description, parameter values) of ``datasets[i]``."""
    given = None
    if isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[1], Mapping):
        entry, given = entry
    where = f"datasets[{i}]"
    is_path = isinstance(entry, (str, os.PathLike))
    if given is not None:
        unknown = [k for k in given if k not in names]
        if unknown:
            raise ValueError(f"{where}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                             f"training on {', '.join(names)}")
    recorded, settings = _recorded(entry) if is_path else ({}, None)
    values = {}
    for n in names:
        if given is not None and n in given:
            v = number(f"{where} parameter {n!r}", given[n])
            if n in recorded and not math.isclose(v, recorded[n], rel_tol=1e-9, abs_tol=0.0):
                raise ValueError(f"{where}: {n}={v:g} given, but {_trajectory_path(entry)} "
                                 f"records {n}={recorded[n]:g}")
            values[n] = v
        elif n in recorded:
            values[n] = recorded[n]
        elif is_path:
            raise ValueError(f"{where}: {_trajectory_path(entry)} records no parameter {n!r} "
                             f"(its numeric settings: {', '.join(sorted(recorded))}); give "
                             f"(path, {{{n!r}: value}})")
        else:
            raise ValueError(f"{where}: no value of the parameter {n!r}; give (data, "
                             f"{{{n!r}: value}})")
    try:
        u, desc = read_profiles(_trajectory_path(entry) if is_path else entry)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    desc["parameters"] = values
    if settings:
        desc["settings"] = settings
    return u, desc, values


class ConditionedWindows:
    """The sliding windows of several runs, each with its parameter vector: ``len``, and
    ``batch(idx)`` → (windows (B, L, n), targets (B, n), or (B, K, n) for windows of horizon
    K > 1, raw parameters (B, P) float64). Runs of different lengths n (the point-token model
    on boxes of several sizes) are batched by length: ``batch_groups(idx)``, one such triple
    per length."""

    def __init__(self, parts: list[tuple[Windows, Sequence[float]]]):
        self.parts = [w for w, _ in parts]
        self.values = torch.tensor([list(v) for _, v in parts], dtype=torch.float64)
        counts = torch.tensor([len(w) for w in self.parts])
        self.ends = torch.cumsum(counts, 0)
        self.starts = self.ends - counts
        self.count = int(self.ends[-1]) if len(counts) else 0
        self.lengths = torch.tensor([w.series.shape[-1] for w in self.parts])

    def __len__(self) -> int:
        return self.count

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = torch.searchsorted(self.ends, idx, right=True)
        if len(torch.unique(self.lengths[d])) > 1:
            raise ValueError("the windows of this batch have profiles of different lengths: "
                             "use batch_groups")
        local = idx - self.starts[d]
        first = self.parts[int(d[0])] if len(d) else self.parts[0]
        n, K = first.series.shape[-1], getattr(first, "horizon", 1)
        x = torch.empty(len(idx), first.window, n, dtype=first.series.dtype)
        y = torch.empty((len(idx), n) if K == 1 else (len(idx), K, n), dtype=first.series.dtype)
        for k in torch.unique(d).tolist():
            sel = d == k
            x[sel], y[sel] = self.parts[k].batch(local[sel])
        return x, y, self.values[d]

    def batch_groups(self, idx: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """:meth:`batch` of the windows of ``idx`` of each profile length, in order of length."""
        lengths = self.lengths[torch.searchsorted(self.ends, idx, right=True)]
        return [self.batch(idx[lengths == n]) for n in torch.unique(lengths).tolist()]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _start_model(pretrained, names, arch_given: dict, points: int, conditioning, cond_hidden,
                 freeze: bool, pstats_data: dict, u_stats_data: dict | None, seed: int,
                 kind: str = "latent"):
    """(the model to train, the description of the pre-trained model or None). ``kind``:
    'latent' (a ConditionedSLT) or 'local' (a ConditionedLocalSLT)."""
    local = kind == "local"
    if pretrained is None:
        given = {k: v for k, v in arch_given.items() if v is not None}
        if local:
            arch = {"window": ARCH_DEFAULTS["window"], "residual": True, **LOCAL_DEFAULTS,
                    **given}
            cls = ConditionedLocalSLT
        else:
            arch = {**ARCH_DEFAULTS, **given}
            cls = ConditionedSLT
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(points, **arch, parameters=names, conditioning=conditioning or "adaln",
                        cond_hidden=cond_hidden, frozen=freeze,
                        stats={**u_stats_data, "parameters": pstats_data})
        return model, None
    given = sorted(k for k, v in arch_given.items() if v is not None)
    if given:
        raise ValueError(f"{', '.join(given)}: the architecture comes from the pretrained model "
                         f"{pretrained}; leave these unset")
    base = load_slt(pretrained)
    stem = resolve_model_path(pretrained)
    info = {"model": os.fspath(pretrained), "kind": type(base).__name__,
            "name": base.card.get("name"), "sha256": _file_sha256(model_paths(stem)[0])}
    if isinstance(base, LocalSLT) != local:
        raise ValueError(f"pretrained: {pretrained} is a {type(base).__name__}; train it with "
                         f"kind={'local' if isinstance(base, LocalSLT) else 'latent'!r}")
    if base.points != points and not local:
        raise ValueError(f"pretrained: {pretrained} models profiles of {base.points} points, "
                         f"the datasets have {points}")
    if isinstance(base, ParameterConditioned):
        if base.parameter_names != names:
            raise ValueError(f"pretrained: {pretrained} is conditioned on "
                             f"{', '.join(base.parameter_names)}, not on {', '.join(names)}")
        if conditioning is not None and conditioning != base.config["conditioning"]:
            raise ValueError(f"conditioning={conditioning!r}, but the pretrained model "
                             f"{pretrained} uses {base.config['conditioning']!r}")
        model = base.train()
        if model.frozen:                  # identity conditioning: its normalisation is unused
            model.set_parameter_normalisation(pstats_data)
        model.freeze_conditioning(freeze)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if local:
                if conditioning not in (None, "adaln"):
                    raise ValueError(f"conditioning: the point-token model is conditioned by "
                                     f"adaptive LayerNorms ('adaln'), got {conditioning!r}")
                model = ConditionedLocalSLT.from_local(base, names, cond_hidden,
                                                       parameter_stats=pstats_data,
                                                       frozen=freeze)
            else:
                model = ConditionedSLT.from_slt(base, names, conditioning or "adaln",
                                                cond_hidden, parameter_stats=pstats_data,
                                                frozen=freeze)
    return model.train(), info


@_threads_scoped
def train_conditioned_slt(datasets, out, params: Sequence[str] | str, pretrained=None,
                          lr_factor: float = 1 / 50, *, conditioning: str | None = None,
                          cond_hidden: int = 32, freeze: bool = False, epochs: int = 10,
                          batch: int = 200, lr: float = 5e-4, gamma: float = 0.9825,
                          members: int = 4, weights: dict | None = None,
                          window: int | None = None, latent_points: int | None = None,
                          channels: int | None = None, width: int | None = None,
                          heads: int | None = None, layers: int | None = None,
                          hidden: int | None = None, residual: bool | None = None,
                          phase: str | None = None, kind: str = "latent",
                          span: int | None = None, noise_channels: int | None = None,
                          dealias: bool = False, val_fraction: float = 0.1,
                          unroll: int = 1, reencode: bool = False, seed: int = 0,
                          threads: int | None = None, resume: bool = False,
                          progress: bool = True, checkpoint_every: int = 1,
                          stop_after: int | None = None, samples_eval: int = 16,
                          command: str | None = None, device: str = "cpu") -> dict:
    """Train a :class:`~closures.slt.conditioned.ConditionedSLT` on the runs ``datasets``
    conditioned on the parameters ``params`` (names, e.g. ``['beta', 'mu']``) and save it to
    ``out`` (module docstring). Returns the metrics: ``epochs``, ``training_time_s``,
    ``final_train``, ``final_val``, ``one_step`` (a list: the skill of every run at its
    parameters), ``paths``.

    ``pretrained``: fine-tune that saved model (a path or a shipped name) at ``lr · lr_factor``;
    its architecture is kept, so the architecture arguments (``window`` … ``phase``; defaults
    those of ``train_slt``) must stay unset. ``conditioning``: 'adaln' (default) or 'concat'.
    ``freeze``: train with the conditioning fixed at the identity (pre-training). ``unroll``:
    K-step free-rollout targets and ``reencode`` (each unrolled draw fed back decoded and
    encoded again; recorded in the card only when it acts, K > 1): as in
    :func:`~closures.slt.train.train_slt`. ``kind='local'``: the point-token model
    (:class:`~closures.slt.local_conditioned.ConditionedLocalSLT`; ``width``, ``heads``,
    ``layers``, ``hidden``, ``span``, ``noise_channels``, ``dealias`` as in ``train_slt``, the
    TEPC arguments ``latent_points``, ``channels``, ``phase`` and ``reencode`` refused;
    ``pretrained`` a LocalSLT or a conditioned one). The other arguments are ``train_slt``'s."""
    names = check_parameter_names(params)
    if check_kind(kind, span, noise_channels, dealias) == "local":
        tepc = [k for k, v in dict(latent_points=latent_points, channels=channels,
                                   phase=phase, reencode=reencode or None).items()
                if v is not None]
        if tepc:
            raise ValueError(f"{tepc[0]}: an option of the TEPC autoencoder, which the "
                             f"point-token model (kind='local') does not have")
    if conditioning is not None:
        check_conditioning(conditioning)
    cond_hidden = integer("cond_hidden", cond_hidden, 1)
    (epochs, batch, lr, gamma, members, val_fraction, seed, checkpoint_every, samples_eval,
     stop_after) = check_options(epochs, batch, lr, gamma, members, val_fraction, seed,
                                 checkpoint_every, samples_eval, stop_after)
    lr_factor = number("lr_factor", lr_factor, above=0, at_most=1)
    window = integer("window", window, 1, allow_none=True)
    unroll = integer("unroll", unroll, 1)
    w = loss_weights(weights, LOCAL_WEIGHTS if kind == "local" else None)

    # --- the runs
    runs = [_load_dataset(i, e, names) for i, e in enumerate(_entries(datasets))]
    lengths = [int(u.shape[2]) for u, _, _ in runs]
    if len(set(lengths)) > 1 and kind != "local":
        raise ValueError(f"datasets: the runs have profiles of different lengths "
                         f"{sorted(set(lengths))}; one model steps one grid (kind='local' "
                         f"runs on any length at one grid spacing)")
    points = lengths[0]
    spacings = [(i, d["spacing"]) for i, (_, d, _) in enumerate(runs) if d.get("spacing")]
    for i, dx in spacings[1:]:
        if not math.isclose(dx, spacings[0][1], rel_tol=1e-6):
            raise ValueError(f"datasets: run {spacings[0][0]} has the grid spacing "
                             f"{spacings[0][1]:g}, run {i} {dx:g}; the point-token model "
                             f"steps one grid spacing")
    intervals = [(i, d["interval"]) for i, (_, d, _) in enumerate(runs)
                 if d.get("interval") is not None]
    for i, dt in intervals[1:]:
        if not math.isclose(dt, intervals[0][1], rel_tol=1e-6):
            raise ValueError(f"datasets: run {intervals[0][0]} is saved every "
                             f"{intervals[0][1]:g} time units, run {i} every {dt:g}; the "
                             f"emulator steps one save interval")
    splits = [split_by_time(u, val_fraction) for u, _, _ in runs]
    pstats = parameter_normalisation({n: [v[n] for _, _, v in runs] for n in names})
    pooled = np.concatenate([tr.ravel() for tr, _ in splits])
    u_stats = {"mean": float(pooled.mean()), "std": float(pooled.std())}
    del pooled
    arch_given = dict(window=window, width=width, heads=heads, layers=layers, hidden=hidden,
                      residual=residual)
    if kind == "local":
        arch_given.update(span=span, noise_channels=noise_channels, dealias=dealias or None)
    else:
        arch_given.update(latent_points=latent_points, channels=channels, phase=phase)
    if pretrained is None and not u_stats["std"] > 0:
        raise ValueError("datasets: the training profiles are constant (std 0)")
    dev = torch.device(device)
    model, pre = _start_model(pretrained, names, arch_given, points, conditioning, cond_hidden,
                              freeze, pstats, u_stats, seed, kind)
    model = model.to(dev)
    stats = model.stats
    L = model.window
    mean, std = stats["mean"], stats["std"]
    parts_tr, parts_va, one_step_on = [], [], []
    for i, ((tr, va), (_, desc, vals)) in enumerate(zip(splits, runs)):
        ntr, nva = (tr - mean) / std, (va - mean) / std
        wt, wv = Windows(ntr, L, unroll), Windows(nva, L, unroll)
        if len(wt) == 0:
            raise ValueError(f"datasets[{i}]: {tr.shape[1]} training saves per member hold no "
                             f"window of window + unroll = {L + unroll} profiles")
        desc.update(train_windows=len(wt), val_windows=len(wv))
        vec = [vals[n] for n in names]
        parts_tr.append((wt, vec))
        parts_va.append((wv, vec))
        one = Windows(nva, L)                              # one-step skill: one-step windows
        one_step_on.append((one, "val", vec) if len(one) else (Windows(ntr, L), "train", vec))
    train = ConditionedWindows(parts_tr)
    parts_va = [p for p in parts_va if len(p[0])]
    val = ConditionedWindows(parts_va) if parts_va else None
    n_val = len(val) if val is not None else 0

    lr_used = lr * lr_factor if pre is not None else lr
    training = dict(epochs=epochs, batch=batch, lr=lr_used, lr_base=lr,
                    lr_factor=lr_factor if pre is not None else None, gamma=gamma,
                    members=members, weights=w, val_fraction=val_fraction, unroll=unroll,
                    seed=seed,
                    conditioning=model.config["conditioning"], frozen=model.frozen,
                    pretrained=pre, optimizer="Adam", scheduler="ExponentialLR",
                    device=str(dev), threads=threads)
    reencode = bool(reencode) and unroll > 1
    if reencode:                     # absent when False: a run's signature without it holds
        training["reencode"] = True
    data = [d for _, d, _ in runs]
    signature = run_signature(model.config, training, stats=stats, data=data)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr_used)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    paths = train_paths(out)
    history, elapsed, stopped = fit(
        model, opt, sched, paths, signature, epochs=epochs, batch=batch, seed=seed,
        n_train=len(train), n_val=n_val,
        batch_terms=window_terms(model, train, val, dev, members, w, reencode), resume=resume,
        checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress,
        desc="train conditioned slt")
    if stopped is not None:
        return stopped

    one_step = []
    for on, split, vec in one_step_on:
        with model.conditioned_on(dict(zip(names, vec))):
            m = one_step_metrics(model, on, samples=samples_eval, batch=batch,
                                 generator=_gen(seed, "eval"))
        one_step.append({"parameters": dict(zip(names, vec)), "split": split, **m})
    metrics = training_metrics(epochs, elapsed, history, one_step=one_step)
    seen = {n: sorted({v[n] for _, _, v in runs}) for n in names}
    return save_trained(model, save_slt, out, paths, metrics, {
        "command": command, "data": data,
        "conditioning": {"parameters": list(names), "kind": model.config["conditioning"],
                         "frozen": model.frozen, "training_values": seen,
                         "range": {n: [v[0], v[-1]] for n, v in seen.items()}},
        "training": training, "training_time_s": elapsed, "metrics": metrics})
