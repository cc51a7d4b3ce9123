"""Training of the SLT closure: :func:`train_slt_closure` (``hybrid train slt-closure``).

Data: a closure dataset of ``hybrid generate``, best made with ``--consecutive K`` (K ≥ L), whose
member's K samples of a sampling time lie one LES refresh interval apart: windows of L
consecutive (ω̄, C) pairs, C = closure_sign · subgrid, the target being C at the window's last
pair (:meth:`closures.data.ClosureDataset.windows`). With ``cold_start`` (default) the windows
that end at the first L − 1 pairs of a sequence are used too, padded at the front by repeating
the sequence's first pair: the closure's cold start (:mod:`closures.slt.closure`). A file
without consecutive samples then still trains a closure, but one that never saw a history.

Split: the file's blocks of sampling time (:class:`closures.data.ClosureDataset`): training
windows from the training block, validation windows from the validation block (a sequence lies
in one block). Normalisation: the mean and standard deviation of ω̄ and of C over the training
block (the model's ``stats``).

Objective: Σ weights[k]·term_k of :meth:`closures.slt.closure_model.SLTClosureModel.loss_terms`
(energy score of m = ``members`` draws per window on the decoded term and in latent space,
reconstructions, the mean network's MSE, spectral amplitudes; :data:`DEFAULT_WEIGHTS`), every
part trained jointly. Adam(``lr``), ExponentialLR(``gamma``) stepped per epoch. Validation after
every epoch with a fixed noise seed.

``init_mean``: start the mean network from that of a trained model (an L-CDM or an SLT closure
saved by this package, stem or shipped name; :func:`copy_mean_network` converts between the two
normalisations exactly); it then trains on with the rest. Recorded in the card.

After training, the offline skill on the validation windows (:func:`closure_metrics`, in
physical units) goes into the card: the error of the ensemble mean and of μ alone, spread/error,
the pointwise CRPS and μ alone's mean absolute error (its CRPS). The card's ``refresh`` records
the data's refresh period (``every`` LES steps, ``interval`` time units; None without
consecutive samples): the closure's default ``every``.

Files next to ``out`` (the conventions of :func:`closures.slt.train_slt`): ``<stem>.log.jsonl``,
``<stem>.ckpt.pt`` (``resume=True`` continues from it and ends with the same weights, bit for
bit, as an uninterrupted run) and at the end ``<stem>.pt`` / ``<stem>.json``
(:func:`closures.slt.closure_files.save_slt_closure`). Reproducibility: initial weights from
``seed`` in a forked RNG; shuffling, training, validation and evaluation noise from their own
generators seeded from ``seed``.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from solvers.validate import integer

from ..data import ClosureDataset
from ..fit import _gen, fit, offline_evaluation, run_signature, save_trained, training_metrics
from ..losses import crps_ensemble
from ..train import _threads_scoped, train_paths
from .closure_files import save_slt_closure
from .closure_model import DEFAULT_WEIGHTS, SLTClosureModel
from .train import check_options, loss_weights

__all__ = ["train_slt_closure", "closure_metrics", "closure_weights", "refresh_of",
           "copy_mean_network", "load_mean_source"]


def load_mean_source(path_or_name):
    """A trained model with a mean network, for ``init_mean``: an SLT closure or an L-CDM, by
    stem or shipped name. ModelFileError names a missing file; ValueError if it has no mean
    network."""
    from .closure_files import load_closure_model
    model = load_closure_model(path_or_name)
    if model.mean_net is None:
        raise ValueError(f"init_mean: model {path_or_name} has no mean network")
    return model


@torch.no_grad()
def copy_mean_network(target, source) -> None:
    """Copy ``source.mean_net`` into ``target.mean_net`` (same width and blocks), rewritten for
    ``target``'s normalisation so that both give the same C in physical units: with
    x = (ω − m)/s and Ĉ = (C − m_C)/s_C, the first (periodic) convolution's weights scale by
    s_t/s_s and its bias gains (m_t − m_s)/s_s·ΣW; the last's weights scale by s_C,s/s_C,t and
    its bias becomes (b·s_C,s + m_C,s − m_C,t)/s_C,t. Exact up to round-off."""
    if target.mean_net is None or source.mean_net is None:
        raise ValueError("init_mean: both models need a mean network")
    try:
        target.mean_net.load_state_dict(source.mean_net.state_dict())
    except RuntimeError as e:
        raise ValueError(f"init_mean: the mean networks differ in shape (--mean-width, "
                         f"--mean-blocks): {e}") from None
    so, to = source.stats["omega_bar"], target.stats["omega_bar"]
    sc, tc = source.stats["closure"], target.stats["closure"]
    first, last = target.mean_net.net[0].conv, target.mean_net.net[-1].conv
    first.bias += (to["mean"] - so["mean"]) / so["std"] * first.weight.sum(dim=(1, 2, 3))
    first.weight *= to["std"] / so["std"]
    last.weight *= sc["std"] / tc["std"]
    last.bias.copy_((last.bias * sc["std"] + sc["mean"] - tc["mean"]) / tc["std"])


def closure_weights(weights: dict | None, mean_network: bool) -> dict:
    """The loss weights: :data:`~closures.slt.closure_model.DEFAULT_WEIGHTS` with ``weights``
    replaced (:func:`closures.slt.train.loss_weights`); without a mean network no ``mse_mean``."""
    w = loss_weights(weights, DEFAULT_WEIGHTS)
    if not mean_network:
        w.pop("mse_mean")
    return w


def refresh_of(data: ClosureDataset) -> dict:
    """The refresh period of the data's consecutive samples, for the card: ``every`` (LES
    steps), ``interval`` (time units), ``les_dt`` and ``consecutive`` K; None values for a file
    without consecutive samples."""
    gen = data.generation()
    return {"every": gen.get("refresh_every"), "interval": gen.get("refresh_interval"),
            "les_dt": gen.get("les_dt"), "consecutive": data.consecutive}


@torch.no_grad()
def closure_metrics(model: SLTClosureModel, data: ClosureDataset, windows: np.ndarray,
                    samples: int = 8, batch: int = 32, generator: torch.Generator | None = None,
                    max_windows: int | None = 512) -> dict:
    """Offline skill of ``model`` on (up to ``max_windows`` evenly spaced) ``windows`` of the
    normalised ``data``, in physical units, with ``samples`` draws C_1 … C_k per window and
    their mean C̄: ``rel_error`` ‖C̄ − C‖/‖C‖ and ``rel_error_single`` (of C_1), pooled over the
    windows; ``spread_to_error`` (RMS ensemble standard deviation, times the finite-ensemble
    factor √((k+1)/k), over the RMS error of C̄: about 1 when calibrated); ``crps`` (the fair
    CRPS per point, averaged over the field, 1/time²); with a mean network ``rel_error_mean``
    (of μ alone) and ``mae_mean`` (μ alone's mean absolute error, its CRPS)."""
    model.eval()
    N = len(windows)
    if N == 0:
        return {}
    rows = windows if max_windows is None or N <= max_windows else \
        windows[np.linspace(0, N - 1, int(max_windows)).round().astype(np.int64)]
    std, mean = model.stats["closure"]["std"], model.stats["closure"]["mean"]
    err = ref = single = var = crps = mu_err = mu_abs = 0.0
    for i0 in range(0, len(rows), batch):
        r = torch.as_tensor(rows[i0:i0 + batch])
        omega, truth = data.omega_bar[r], data.closure[r[:, -1]]
        mu_n = model.mean(omega[:, -1])
        draws = model.draw_windows(omega, generator, samples, mean=mu_n).double() * std + mean
        c = truth.double() * std + mean
        err += float(((draws.mean(0) - c) ** 2).sum())
        ref += float((c ** 2).sum())
        single += float(((draws[0] - c) ** 2).sum())
        var += float(draws.var(0, unbiased=True).sum())
        crps += float(crps_ensemble(draws, c, reduction="none").sum())
        if model.mean_net is not None:
            mu = mu_n.double() * std + mean
            mu_err += float(((mu - c) ** 2).sum())
            mu_abs += float((mu - c).abs().sum())
    points = len(rows) * model.n ** 2
    k = samples
    out = {"windows": int(len(rows)), "samples": int(k), "rel_error": math.sqrt(err / ref),
           "rel_error_single": math.sqrt(single / ref),
           "spread_to_error": (math.sqrt(var / err * (k + 1) / k) if err > 0 else None),
           "crps": crps / points}
    if model.mean_net is not None:
        out.update(rel_error_mean=math.sqrt(mu_err / ref), mae_mean=mu_abs / points)
    return out


def _training_block(data, val_fraction: float) -> ClosureDataset:
    """The training block of the closure dataset ``data``: read from the path, or ``data``
    itself when it is that block already read (ValueError for another block or split)."""
    if not isinstance(data, ClosureDataset):
        return ClosureDataset(data, "train", val_fraction=val_fraction)
    if (data.split, data.val_fraction, data.test_fraction, data.gap, data.normalised) != \
            ("train", val_fraction, 0.0, 0, True):
        raise ValueError(f"data: a ClosureDataset given must be the normalised training block "
                         f"read with val_fraction={val_fraction:g} (and no test block or gap), "
                         f"not the {data.split} block with val_fraction={data.val_fraction:g}")
    return data


@_threads_scoped
def train_slt_closure(data, out, *, window: int = 10, epochs: int = 50, batch: int = 32,
                      lr: float = 1e-3, gamma: float = 0.9825, members: int = 4,
                      weights: dict | None = None, latent_channels: int = 1,
                      ae_channels=(16, 32, 32), width: int = 64, heads: int | None = None,
                      layers: int = 2, hidden: int | None = None, mean_width: int = 16,
                      mean_blocks: int = 2, cold_start: bool = True, val_fraction: float = 0.1,
                      seed: int = 0, threads: int | None = None, resume: bool = False,
                      progress: bool = True, checkpoint_every: int = 1,
                      stop_after: int | None = None, samples_eval: int = 8,
                      eval_windows: int | None = 512, command: str | None = None,
                      device: str = "cpu", init_mean=None) -> dict:
    """Train an SLT closure on the closure dataset ``data`` (a path, or its training block
    already read: ``ClosureDataset(path, "train", val_fraction=val_fraction)``, then not read
    again) and save it to ``out`` (module docstring). Architecture arguments:
    :class:`~closures.slt.closure_model.SLTClosureModel` (``window`` = L). Returns the metrics:
    ``epochs``, ``training_time_s``, ``final_train``, ``final_val``, ``offline``
    (:func:`closure_metrics` with ``samples_eval`` draws on up to ``eval_windows`` validation
    windows, or training ones without a validation block), ``paths``.

    ``stop_after``: stop with a checkpoint after that many epochs of this call (the model is
    then not saved). ``threads``: torch's thread count during training (restored after).
    ``command``: the command line, recorded in the card. ``init_mean``: a trained model whose
    mean network starts this one's (module docstring)."""
    window = integer("window", window, 1)
    (epochs, batch, lr, gamma, members, val_fraction, seed, checkpoint_every, samples_eval,
     stop_after) = check_options(epochs, batch, lr, gamma, members, val_fraction, seed,
                                 checkpoint_every, samples_eval, stop_after)
    eval_windows = integer("eval_windows", eval_windows, 1, allow_none=True)
    if not isinstance(cold_start, bool):
        raise ValueError(f"cold_start must be True or False, got {cold_start!r}")
    w = closure_weights(weights, integer("mean_width", mean_width, 0) > 0)
    train = _training_block(data, val_fraction)
    data = train.path if data is train else data
    val = (ClosureDataset(data, "val", val_fraction=val_fraction, stats=train.stats)
           if val_fraction > 0 else None)
    source = load_mean_source(init_mean) if init_mean is not None else None
    tr_win = train.windows(window, pad=cold_start)
    va_win = val.windows(window, pad=cold_start) if val is not None else tr_win[:0]
    if len(tr_win) == 0:
        raise ValueError(f"data: the training block of {data} holds no window of {window} "
                         f"consecutive pairs (sequences of {train.consecutive}); generate it "
                         f"with --consecutive K ≥ {window}, or train with cold_start")
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SLTClosureModel(train.n, train.L, window=window,
                                latent_channels=latent_channels, ae_channels=ae_channels,
                                width=width, heads=heads, layers=layers, hidden=hidden,
                                mean_width=mean_width, mean_blocks=mean_blocks,
                                stats=train.stats).to(dev)
    if source is not None:
        copy_mean_network(model, source.to(dev))
    training = dict(epochs=epochs, batch=batch, lr=lr, gamma=gamma, members=members, weights=w,
                    cold_start=cold_start, val_fraction=val_fraction, seed=seed,
                    optimizer="Adam", scheduler="ExponentialLR", device=str(dev),
                    threads=threads)
    if source is not None:
        training["init_mean"] = {"model": str(init_mean),
                                 "trained_on": source.card.get("data", {}).get("dataset")}
    desc = {"dataset": os.fspath(data), "train_windows": int(len(tr_win)),
            "val_windows": int(len(va_win)),
            "complete_train_windows": int(len(train.windows(window)))}
    signature = run_signature(model.config, training, data=desc)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    paths = train_paths(out)

    def batch_terms(split: str, idx, generator):
        ds, wins = (train, tr_win) if split == "train" else (val, va_win)
        rows = torch.as_tensor(wins[idx] if isinstance(idx, slice) else wins[idx.numpy()])
        terms = model.loss_terms(ds.omega_bar[rows].to(dev), ds.closure[rows[:, -1]].to(dev),
                                 generator, members)
        return terms, sum(w[k] * v for k, v in terms.items())

    history, elapsed, stopped = fit(
        model, opt, sched, paths, signature, epochs=epochs, batch=batch, seed=seed,
        n_train=len(tr_win), n_val=len(va_win), batch_terms=batch_terms, resume=resume,
        checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress,
        desc="train slt-closure")
    if stopped is not None:
        return stopped

    on, wins = (val, va_win) if len(va_win) else (train, tr_win)
    offline = offline_evaluation(model, lambda: closure_metrics(
        model, on, wins, samples=samples_eval, batch=batch, generator=_gen(seed, "eval"),
        max_windows=eval_windows), on.split)
    metrics = training_metrics(epochs, elapsed, history, offline=offline)
    data_cfg = train.describe()
    data_cfg.update(desc, window=window)
    return save_trained(model, save_slt_closure, out, paths, metrics, {
        "command": command, "data": data_cfg, "refresh": refresh_of(train),
        "training": training, "training_time_s": elapsed, "metrics": metrics})
