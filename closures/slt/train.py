"""Training of the stochastic latent transformer: :func:`train_slt`.

Data: U(y, t) profiles at the save interval — an array (times, n) or (members, times, n), or a
trajectory file with ``zonal_mean_u (member, time, y)`` (read with
:func:`solvers.io.open_trajectory`). Split by time: in every member the first
(1 − ``val_fraction``) of the saves train, the rest validate, so no validation target appears in
a training window. Samples are sliding windows of L = ``window`` profiles with the next profile
as target (all start points). Normalisation: the mean and standard deviation of the training
profiles (two scalars, in the card).

Objective: ``Σ weights[k]·term_k`` of :meth:`closures.slt.model.SLT.loss_terms` (energy score
of m = ``members`` draws per input on decoded U and in latent space, reconstruction, spectral
amplitudes; weights 1), autoencoder and transformer trained jointly. Adam(``lr``),
ExponentialLR(``gamma``) stepped per epoch (the paper: 5e-4, 0.9825, batch 200, 400 epochs).
Validation after every epoch on the held-out windows with a fixed noise seed.

After training, the one-step skill on the validation windows (:func:`one_step_metrics`: error
of the ensemble mean, spread, spread/error, CRPS, reconstruction error) goes into the card.

Files next to ``out`` (the conventions of :func:`closures.train.train_ldm`):
``<stem>.log.jsonl`` (one JSON line per epoch, then a final line), ``<stem>.ckpt.pt`` (model,
optimiser, scheduler, generator states, history and the run's signature; atomic;
``resume=True`` continues from it and ends with the same weights, bit for bit, as an
uninterrupted run), and at the end ``<stem>.pt`` / ``<stem>.json``
(:func:`closures.slt.files.save_slt`).

Reproducibility: initial weights from ``seed`` in a forked RNG; shuffling, training noise and
validation noise from their own generators seeded from ``seed``.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from solvers.validate import integer, number

from ..fit import _gen, fit, run_signature, save_trained, training_metrics
from ..train import _threads_scoped, train_paths
from .files import save_slt
from .local import LOCAL_WEIGHTS, LocalSLT
from .model import DEFAULT_WEIGHTS, SLT, ensemble_loss

__all__ = ["train_slt", "check_kind", "read_profiles", "split_by_time", "Windows",
           "one_step_metrics", "pretrained_slt"]

# the architecture arguments of train_slt and their defaults (fine-tuning leaves them there)
ARCH_DEFAULTS = dict(latent_points=None, channels=4, window=10, width=None, heads=None,
                     layers=2, hidden=None, residual=True, phase="common")
KINDS = ("latent", "local")   # the SLT (latent tokens per save), the point-token LocalSLT
# the LocalSLT's sizes where train_slt's arguments are left at None / their SLT defaults
LOCAL_DEFAULTS = dict(width=24, heads=2, layers=3, hidden=48, span=9, noise_channels=4)


def read_profiles(data) -> tuple[np.ndarray, dict]:
    """(U as float64 (members, times, n), a description for the card) from an array or a
    trajectory file (module docstring)."""
    if isinstance(data, (str, os.PathLike)):
        from solvers.io import open_trajectory
        ds = open_trajectory(data)
        try:
            if "zonal_mean_u" not in ds.variables:
                raise ValueError(f"data: {data} has no zonal_mean_u (record the run with "
                                 f"--record zonal-mean)")
            u = np.asarray(ds["zonal_mean_u"].values, dtype=np.float64)
            desc = {"file": os.fspath(data), "interval": (float(ds["time"][1] - ds["time"][0])
                                                          if ds.sizes["time"] > 1 else None)}
            if "L" in ds.attrs:
                desc["spacing"] = float(ds.attrs["L"]) / ds.sizes["y"]
        finally:
            ds.close()
    else:
        u = np.asarray(data, dtype=np.float64)
        desc = {"array": True}
    if u.ndim == 2:
        u = u[None]
    if u.ndim != 3:
        raise ValueError(f"data must be profiles (times, n) or (members, times, n), got shape "
                         f"{u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("data holds non-finite values")
    desc.update(members=int(u.shape[0]), times=int(u.shape[1]), points=int(u.shape[2]))
    return u, desc


def split_by_time(u: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) parts of (members, times, n): the first and the last saves."""
    cut = int(round((1.0 - val_fraction) * u.shape[1]))
    return u[:, :cut], u[:, cut:]


class Windows:
    """The sliding windows (L + K consecutive profiles) of normalised series (members, times, n):
    ``len``, and ``batch(idx)`` → (windows (B, L, n), targets (B, n) for ``horizon`` K = 1, else
    (B, K, n)) as float32 tensors."""

    def __init__(self, series: np.ndarray, window: int, horizon: int = 1):
        self.series = torch.as_tensor(series, dtype=torch.float32)
        M, T, _ = series.shape
        per = max(0, T - window - horizon + 1)
        self.window, self.horizon, self.per = window, horizon, per
        self.count = M * per
        self.offsets = torch.arange(window + horizon)

    def __len__(self) -> int:
        return self.count

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, s = idx // self.per, idx % self.per
        seq = self.series[m[:, None], s[:, None] + self.offsets]            # (B, L+K, n)
        if self.horizon == 1:
            return seq[:, :-1], seq[:, -1]
        return seq[:, :self.window], seq[:, self.window:]


@torch.no_grad()
def one_step_metrics(model: SLT, wins: Windows, samples: int = 16, batch: int = 200,
                     max_windows: int | None = 2000,
                     generator: torch.Generator | None = None) -> dict:
    """One-step skill of ``model`` on (up to ``max_windows`` evenly spaced) windows, in the
    units of the data: ``rmse`` of the ensemble mean of ``samples`` draws, ``spread`` (RMS
    ensemble standard deviation), ``spread_to_error`` (spread/rmse; about 1 for a calibrated
    ensemble, with the finite-ensemble factor √((k+1)/k) applied to the spread), ``crps`` (the
    energy score per √n of the draws) and ``rec_rmse`` (the autoencoder's reconstruction error
    of the targets)."""
    model.eval()
    N = len(wins)
    if N == 0:
        return {}
    idx = torch.arange(N) if max_windows is None or N <= max_windows else \
        torch.linspace(0, N - 1, int(max_windows)).round().long()
    std = model.stats["std"]
    se = sv = es = rec = 0.0
    for i0 in range(0, len(idx), batch):
        x, y = wins.batch(idx[i0:i0 + batch])
        z = model.encode(x)
        u = model.decode(model.step(z, generator, samples))                  # (k, B, n)
        se += float(((u.mean(0) - y) ** 2).sum())
        sv += float(u.var(0, unbiased=True).sum())
        es += float(ensemble_loss(u, y)) * len(y)
        rec += float(((model.decode(model.encode(y)) - y) ** 2).sum())
    pts = len(idx) * model.points
    rmse, spread = math.sqrt(se / pts) * std, math.sqrt(sv / pts) * std
    k = samples
    return {"windows": int(len(idx)), "samples": int(samples), "rmse": rmse, "spread": spread,
            "spread_to_error": (spread * math.sqrt((k + 1) / k) / rmse if rmse > 0 else None),
            "crps": es / len(idx) * std, "rec_rmse": math.sqrt(rec / pts) * std}


def check_options(epochs, batch, lr, gamma, members, val_fraction, seed, checkpoint_every,
                  samples_eval, stop_after) -> tuple:
    """The training options of :func:`train_slt` and
    :func:`~closures.slt.train_conditioned.train_conditioned_slt`, checked in this order
    (ValueError naming the first that is out of range) and returned in it."""
    return (integer("epochs", epochs, 1), integer("batch", batch, 1), number("lr", lr, above=0),
            number("gamma", gamma, above=0, at_most=1), integer("members", members, 2),
            number("val_fraction", val_fraction, at_least=0, below=1),
            integer("seed", seed, 0), integer("checkpoint_every", checkpoint_every, 1),
            integer("samples_eval", samples_eval, 2),
            integer("stop_after", stop_after, 1, allow_none=True))


def check_kind(kind: str, span, noise_channels, dealias) -> str:
    """``kind``, one of :data:`KINDS`; ValueError for another, or for the point-token model's
    options (``span``, ``noise_channels``, ``dealias``) given with ``kind='latent'``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "latent" and (span is not None or noise_channels is not None or dealias):
        raise ValueError("span, noise_channels and dealias are options of the point-token "
                         "model: give kind='local'")
    return kind


def loss_weights(weights: dict | None, defaults: dict | None = None) -> dict:
    """The weights of the loss terms: ``defaults`` (default
    :data:`~closures.slt.model.DEFAULT_WEIGHTS`) with those of ``weights`` (term → weight ≥ 0)
    replaced; ValueError for an unknown term or a bad weight."""
    w = dict(DEFAULT_WEIGHTS if defaults is None else defaults)
    for k, v in (weights or {}).items():
        if k not in w:
            raise ValueError(f"weights: unknown loss term {k!r}; known: {', '.join(w)}")
        w[k] = number(f"weights[{k!r}]", v, at_least=0)
    return w


def window_terms(model: SLT, train, val, device, members: int, weights: dict,
                 reencode: bool = False):
    """:func:`closures.fit.fit`'s ``batch_terms`` for an SLT on the windows ``train`` and ``val``
    (:class:`Windows`, or :class:`~closures.slt.train_conditioned.ConditionedWindows`, whose
    batches add the parameters of each window and come in groups of one profile length, each
    weighted by its share of the batch): the terms of
    :meth:`~closures.slt.model.SLT.loss_terms` (``members`` draws, ``reencode``) and their sum
    weighted by ``weights``."""
    def batch_terms(split: str, idx, generator):
        wins = train if split == "train" else val
        if isinstance(idx, slice):
            idx = torch.arange(idx.start, idx.stop)
        groups = wins.batch_groups(idx) if hasattr(wins, "batch_groups") else [wins.batch(idx)]
        terms = {}
        for x, y, *params in groups:          # one group per profile length, weighted by size
            part = model.loss_terms(x.to(device), y.to(device), generator, members, reencode,
                                    **({"params": params[0]} if params else {}))
            share = len(x) / len(idx)
            for k, v in part.items():
                terms[k] = terms[k] + v * share if k in terms else v * share
        return terms, sum(weights[k] * v for k, v in terms.items())
    return batch_terms


@_threads_scoped
def train_slt(data, out, *, window: int = 10, epochs: int = 10, batch: int = 200,
              lr: float = 5e-4, gamma: float = 0.9825, members: int = 4,
              weights: dict | None = None, latent_points: int | None = None, channels: int = 4,
              width: int | None = None, heads: int | None = None, layers: int | None = None,
              hidden: int | None = None, residual: bool = True, phase: str = "common",
              kind: str = "latent", span: int | None = None,
              noise_channels: int | None = None, dealias: bool = False,
              val_fraction: float = 0.1, unroll: int = 1, reencode: bool = False,
              init_from=None, init_model: SLT | None = None,
              seed: int = 0, threads: int | None = None, resume: bool = False,
              progress: bool = True, checkpoint_every: int = 1, stop_after: int | None = None,
              samples_eval: int = 16, command: str | None = None,
              device: str = "cpu") -> dict:
    """Train an SLT on ``data`` and save it to ``out`` (module docstring). Returns the metrics:
    ``epochs``, ``training_time_s``, ``final_train``, ``final_val``, ``one_step``
    (:func:`one_step_metrics` with ``samples_eval`` draws on the validation windows, or the
    training ones without a validation split), ``paths``.

    ``kind``: 'latent' (the SLT) or 'local' (:class:`~closures.slt.local.LocalSLT`, the
    point-token model that runs on profiles of any length: ``width``, ``heads``, ``layers``,
    ``hidden``, ``span``, ``noise_channels`` size it, defaults :data:`LOCAL_DEFAULTS`;
    ``dealias``: its increments cut to the modes |k| ≤ n/3;
    ``latent_points``, ``channels``, ``phase`` do not apply; loss weights default
    :data:`~closures.slt.local.LOCAL_WEIGHTS`).

    ``unroll``: K > 1 trains on K-step free rollouts (targets K consecutive saves; the terms of
    :meth:`closures.slt.model.SLT.loss_terms`), the remedy for rollouts that leave the data's
    manifold when the model only ever saw one step; ``reencode``: the unrolled steps feed each
    draw back decoded and encoded again (as ``Emulator.rollout(reencode=True)``; recorded in the
    card, and the emulator's default then; without effect, and recorded False, for K = 1).
    ``init_from``: start from the weights of a saved SLT (a path or a shipped model's name,
    recorded in the card; fine-tuning): its architecture and normalisation are kept, and
    architecture arguments must be left at their defaults or equal its. ``init_model``: that
    model already loaded (:func:`~closures.slt.files.load_slt`), which is then not loaded
    again.

    ``stop_after``: stop with a checkpoint after that many epochs of this call (the model is
    then not saved). ``threads``: torch's thread count during training (restored after).
    ``command``: the command line, recorded in the card."""
    window = integer("window", window, 1)
    check_kind(kind, span, noise_channels, dealias)
    (epochs, batch, lr, gamma, members, val_fraction, seed, checkpoint_every, samples_eval,
     stop_after) = check_options(epochs, batch, lr, gamma, members, val_fraction, seed,
                                 checkpoint_every, samples_eval, stop_after)
    w = loss_weights(weights, LOCAL_WEIGHTS if kind == "local" else None)
    unroll = integer("unroll", unroll, 1)
    u, desc = read_profiles(data)
    tr, va = split_by_time(u, val_fraction)
    dev = torch.device(device)
    if kind == "local":
        given = dict(width=width, heads=heads, hidden=hidden, span=span,
                     noise_channels=noise_channels, layers=layers)
        arch = dict(points=int(u.shape[2]), window=window, residual=residual,
                    dealias=bool(dealias),
                    **{k: LOCAL_DEFAULTS[k] if v is None else v for k, v in given.items()})
        model_cls = LocalSLT
    else:
        layers = ARCH_DEFAULTS["layers"] if layers is None else layers
        arch = dict(points=int(u.shape[2]), latent_points=latent_points, channels=channels,
                    window=window, width=width, heads=heads, layers=layers, hidden=hidden,
                    residual=residual, phase=phase)
        model_cls = SLT
    pretrained = None
    if init_model is not None and init_from is None:
        raise ValueError("init_model: give init_from too, the model's path or name")
    if init_from is not None:
        pretrained = pretrained_slt(init_from, arch, model=init_model)
        stats, window = dict(pretrained.stats), pretrained.window
    else:
        stats = {"mean": float(tr.mean()), "std": float(tr.std())}
    if not stats["std"] > 0:
        raise ValueError("data: the training profiles are constant (std 0)")
    train = Windows((tr - stats["mean"]) / stats["std"], window, unroll)
    val = Windows((va - stats["mean"]) / stats["std"], window, unroll)
    if len(train) == 0:
        raise ValueError(f"data: {tr.shape[1]} training saves per member hold no window of "
                         f"window + unroll = {window + unroll} profiles")
    if pretrained is not None:
        model = pretrained.to(dev).train()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_cls(**arch, stats=stats).to(dev)
    training = dict(epochs=epochs, batch=batch, lr=lr, gamma=gamma, members=members, weights=w,
                    val_fraction=val_fraction, unroll=unroll,
                    reencode=bool(reencode) and unroll > 1,
                    init_from=None if init_from is None else str(init_from), seed=seed,
                    optimizer="Adam", scheduler="ExponentialLR", device=str(dev),
                    threads=threads)
    signature = run_signature(model.config, training, stats=stats, data=desc)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    paths = train_paths(out)
    history, elapsed, stopped = fit(
        model, opt, sched, paths, signature, epochs=epochs, batch=batch, seed=seed,
        n_train=len(train), n_val=len(val),
        batch_terms=window_terms(model, train, val, dev, members, w, reencode), resume=resume,
        checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress,
        desc="train slt")
    if stopped is not None:
        return stopped

    on = Windows(val.series.numpy(), window) if len(val) else \
        Windows(train.series.numpy(), window)
    offline = one_step_metrics(model, on, samples=samples_eval, batch=batch,
                               generator=_gen(seed, "eval"))
    offline["split"] = "val" if len(val) else "train"
    metrics = training_metrics(epochs, elapsed, history, one_step=offline)
    desc.update(train_windows=len(train), val_windows=len(val))
    return save_trained(model, save_slt, out, paths, metrics, {
        "command": command, "data": desc, "training": training, "training_time_s": elapsed,
        "metrics": metrics})


def pretrained_slt(init_from, arch: dict, model: SLT | None = None) -> SLT:
    """The saved SLT to fine-tune (``model``, else loaded from ``init_from``); ValueError if
    ``arch`` (the data's points and the architecture arguments) disagrees with it."""
    if model is None:
        from .files import load_slt
        model = load_slt(init_from)
    cfg = model.config
    if ("span" in arch) != isinstance(model, LocalSLT):
        raise ValueError(f"init_from: {init_from} is a {type(model).__name__}; train it with "
                         f"kind={'local' if isinstance(model, LocalSLT) else 'latent'!r}")
    if arch["points"] != cfg["points"]:
        raise ValueError(f"init_from: {init_from} models profiles of {cfg['points']} points, "
                         f"the data has {arch['points']}")
    if arch.get("dealias") and not cfg.get("dealias"):
        raise ValueError(f"init_from: {init_from} was trained without dealias; its "
                         f"architecture is kept")
    defaults = LOCAL_DEFAULTS if "span" in arch else ARCH_DEFAULTS
    changed = [k for k, v in defaults.items() if arch[k] != v and arch[k] != cfg[k]]
    if changed:
        raise ValueError(f"init_from: the architecture comes from {init_from}; "
                         f"{', '.join(changed)} differ from it")
    return model
