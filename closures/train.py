"""Training of the diffusion closures: :func:`train_ldm` (used by ``hybrid train ldm``).

Modes (``space='latent'``):

* ``'joint'`` (the paper's): every epoch minimises
  ``w_h·MSE_H + w_ω·MSE_ω + w_dsm·DSM + w_m·moment`` (defaults 10, 0.1, 0.1, 0.01 from
  REFERENCES.md; :data:`closures.ldm.DEFAULT_WEIGHTS`), where MSE_H and MSE_ω are the
  autoencoders' reconstruction errors of the normalised fields, DSM the denoising score matching
  loss of the latent of C conditioned on the latent of ω̄ — its gradients flow into both encoders —
  and ``moment`` pulls both latents toward zero mean and unit variance.
* ``'two-phase'``: the first ``ae_epochs`` epochs (default half) train the autoencoders alone
  (reconstruction + moment terms); then they are frozen and the remaining epochs train the score
  network alone (DSM on the frozen latents).

``space='physical'`` (P-CDM) has no autoencoders: DSM on the normalised fields, every epoch.

Loss scaling. MSE terms are means over the batch and all points. DSM uses
``dsm_reduction='mean'`` by default: the mean over latent elements (Song et al.'s and, likely, the
paper's code sum over them, which at a 16² latent makes the DSM term 256× larger against the
reconstruction weights and lets it dominate the encoders; 'sum' is available). Adam is invariant
to a constant scale of a parameter's gradient, so the weights matter only where terms share
parameters (the encoders).

Optimiser: Adam(lr), the rate halved every ``lr_halving_every`` epochs (StepLR, stepped per
epoch). Validation: the same terms on the held-out split (sampling-time blocks,
:class:`closures.data.ClosureDataset`) after every epoch, with a fixed noise seed so epochs are
comparable.

Files written next to ``out_stem``:

* ``<stem>.log.jsonl`` — one JSON line per epoch (epoch, phase, lr, train and val terms, total,
  wall time); a final line with ``"final": true`` and the offline metrics.
* ``<stem>.ckpt.pt`` — every ``checkpoint_every`` epochs and at the end: model, optimiser and
  scheduler states, the epoch count, the torch generator states of shuffling and noise, the
  metrics history and the run's signature (architecture and training settings); saved atomically
  and loaded with ``weights_only=True``. ``resume=True`` continues from it: **the guarantee is
  that a resumed run ends with the same weights, bit for bit, as an uninterrupted one** (same
  settings, same device and thread count; tested), and the log is cut back to the checkpoint's
  epoch before continuing, so each epoch appears once.
* ``<stem>.pt`` / ``<stem>.json`` — the model and its card (:func:`closures.ldm.save_model`) at
  the end, with the offline metrics on the validation split: MSE and relative error
  ‖C − Ĉ‖/‖C‖ of the ensemble-mean sample Ĉ (``samples_eval`` samples per input), both pooled
  over the split and averaged per pair, plus the spread (ensemble standard deviation) relative to
  the error and, in latent space, the autoencoder's reconstruction error of C.

Reproducibility: the initial weights come from ``torch.manual_seed(seed)`` inside a forked RNG
(the caller's global torch RNG is untouched); shuffling, DSM noise, validation noise and evaluation
samples each use their own ``torch.Generator`` seeded from ``seed``. Same seed, same data, same
thread count → the same weights and metrics.
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import torch

from solvers.validate import integer, number

from .data import ClosureDataset
from .fit import (_gen, fit, offline_evaluation, run_signature, save_trained,
                  training_metrics)
from .ldm import (DEFAULT_WEIGHTS, RHO, SPACES, STEPS, T_START, LatentDiffusionModel,
                  model_paths, save_model, torch_threads)
from .losses import SIGMA

__all__ = ["train_ldm", "offline_metrics", "train_paths", "MODES"]

MODES = ("joint", "two-phase")


def train_paths(out_stem) -> dict[str, Path]:
    """The files of a training run: weights, card, checkpoint and log."""
    pt, js = model_paths(out_stem)
    stem = pt.with_suffix("")
    return {"weights": pt, "card": js, "checkpoint": stem.with_name(stem.name + ".ckpt.pt"),
            "log": stem.with_name(stem.name + ".log.jsonl")}


def _phase(space: str, mode: str, epoch: int, ae_epochs: int) -> str:
    if space == "physical":
        return "score"
    if mode == "joint":
        return "joint"
    return "ae" if epoch < ae_epochs else "score"


def _total(terms: dict, weights: dict) -> torch.Tensor:
    return sum(weights[k] * v for k, v in terms.items())


@torch.no_grad()
def offline_metrics(model: LatentDiffusionModel, data: ClosureDataset, samples: int = 8,
                    steps: int = STEPS, t_start: float = T_START, rho: float = RHO,
                    batch: int = 64,
                    generator: torch.Generator | None = None,
                    max_pairs: int | None = None) -> dict:
    """Offline skill of ``model`` on the (normalised) pairs of ``data``, in physical units.

    For every input ω̄, ``samples`` draws Ĉ_1…Ĉ_k and their mean Ĉ. Returns ``mse`` (mean of
    (C − Ĉ)² over pairs and points), ``rel_error`` (‖C − Ĉ‖/‖C‖ pooled over the split),
    ``rel_error_per_pair`` (the mean over pairs of ‖C − Ĉ‖/‖C‖), ``spread_to_error`` (RMS
    ensemble standard deviation over RMS error of the mean), ``rel_error_single`` (pooled relative
    error of a single draw Ĉ_1), in latent space ``ae_rel_error`` (‖C − D(E(C))‖/‖C‖, of the
    residual plus μ with a mean network) and with a mean network ``mean_rel_error``
    (‖C − μ(ω̄)‖/‖C‖).
    """
    model.eval()
    N = len(data) if max_pairs is None else min(len(data), int(max_pairs))
    if N == 0:
        return {}
    s_err = s_ref = s_single = s_var = s_ae = s_mu = 0.0
    per_pair = []
    for i0 in range(0, N, batch):
        w, c = data.omega_bar[i0:i0 + batch], data.closure[i0:i0 + batch]
        draws = model.sample(w, generator, samples=samples, steps=steps, t_start=t_start,
                             rho=rho)
        draws = model.denormalise(draws.double(), "closure")[:, :, 0]        # (B, k, n, n)
        truth = model.denormalise(c.double(), "closure")[:, 0]
        mean = draws.mean(dim=1)
        err = ((mean - truth) ** 2).sum(dim=(1, 2))
        ref = (truth ** 2).sum(dim=(1, 2))
        s_err += float(err.sum())
        s_ref += float(ref.sum())
        s_single += float(((draws[:, 0] - truth) ** 2).sum())
        if samples > 1:
            s_var += float(draws.var(dim=1, unbiased=True).sum())
        per_pair += torch.sqrt(err / ref.clamp_min(1e-300)).tolist()
        if model.space == "latent":
            rec = model.denormalise(model.reconstruct(w, c).double(), "closure")[:, 0]
            s_ae += float(((rec - truth) ** 2).sum())
        if model.mean_net is not None:
            mu = model.denormalise(model.mean(w).double(), "closure")[:, 0]
            s_mu += float(((mu - truth) ** 2).sum())
    points = N * data.n * data.n
    out = {"pairs": N, "samples": int(samples), "steps": int(steps), "t_start": float(t_start),
           "rho": float(rho),
           "mse": s_err / points, "rel_error": math.sqrt(s_err / s_ref),
           "rel_error_per_pair": float(np.mean(per_pair)),
           "rel_error_single": math.sqrt(s_single / s_ref),
           "spread_to_error": (math.sqrt(s_var / s_err) if samples > 1 and s_err > 0 else None)}
    if model.space == "latent":
        out["ae_rel_error"] = math.sqrt(s_ae / s_ref)
    if model.mean_net is not None:
        out["mean_rel_error"] = math.sqrt(s_mu / s_ref)
    return out


def _threads_scoped(train):
    """``train`` run with torch's thread count set to its ``threads`` argument (None: left
    alone) and the caller's count restored after it, also on error
    (:func:`closures.ldm.torch_threads`)."""
    @functools.wraps(train)
    def scoped(*args, threads: int | None = None, **kwargs):
        if threads is not None:
            threads = integer("threads", threads, 1)
        with torch_threads(threads):
            return train(*args, threads=threads, **kwargs)
    return scoped


@_threads_scoped
def train_ldm(dataset_path, out_stem, *, space: str = "latent", mode: str = "joint",
              epochs: int = 10, batch: int = 32, lr: float = 1e-3, lr_halving_every: int = 100,
              weights: dict | None = None, ae_epochs: int | None = None,
              latent_channels: int = 1, ae_channels=(16, 32, 32), width: int = 20,
              modes: int = 4, layers: int = 4, time_dim: int = 64, proj_hidden: int = 64,
              mean_width: int = 0, mean_blocks: int = 2, sigma: float = SIGMA,
              dsm_reduction: str = "mean", val_fraction: float = 0.1,
              gap: int = 0, seed: int = 0, device: str = "cpu", threads: int | None = None,
              resume: bool = False, progress: bool = True, checkpoint_every: int = 1,
              samples_eval: int = 8, eval_steps: int = STEPS, t_start: float = T_START,
              eval_pairs: int | None = None, stop_after: int | None = None,
              command: str | None = None) -> dict:
    """Train a diffusion closure on the closure dataset ``dataset_path`` and save it to
    ``out_stem`` (module docstring). Returns the metrics: ``epochs``, ``training_time_s``,
    ``final_train`` / ``final_val`` (the last epoch's loss terms), ``offline`` (the offline
    metrics on the validation split, or on the training split when it is empty), ``paths``.

    ``stop_after``: stop (with a checkpoint) after that many epochs of this call — for tests of
    ``resume`` and for training in slices; the model is then not saved. ``command``: the command
    line that ran the training, recorded in the card. ``threads``: torch's thread count during
    the training (default: torch's setting); the caller's count is restored after it.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    epochs = integer("epochs", epochs, 1)
    batch = integer("batch", batch, 1)
    lr = number("lr", lr, above=0)
    lr_halving_every = integer("lr_halving_every", lr_halving_every, 1)
    checkpoint_every = integer("checkpoint_every", checkpoint_every, 1)
    samples_eval = integer("samples_eval", samples_eval, 1)
    eval_steps = integer("eval_steps", eval_steps, 1)
    seed = integer("seed", seed, 0)
    if stop_after is not None:
        stop_after = integer("stop_after", stop_after, 1)
    w = dict(DEFAULT_WEIGHTS)
    for k, v in (weights or {}).items():
        if k not in w:
            raise ValueError(f"unknown loss weight {k!r}; known: {', '.join(w)}")
        x = float(v)
        if not (math.isfinite(x) and x >= 0):
            raise ValueError(f"loss weight {k} must be a finite number ≥ 0, got {v!r}")
        w[k] = x
    if ae_epochs is None:
        ae_epochs = max(1, epochs // 2) if epochs > 1 else 0
    ae_epochs = integer("ae_epochs", ae_epochs, 0)
    if mode == "two-phase" and space == "latent" and not ae_epochs < epochs:
        raise ValueError(f"two-phase training needs ae_epochs < epochs, got {ae_epochs} and "
                         f"{epochs}")
    paths = train_paths(out_stem)
    dev = torch.device(device)

    train = ClosureDataset(dataset_path, "train", val_fraction=val_fraction, gap=gap)
    val = (ClosureDataset(dataset_path, "val", val_fraction=val_fraction, gap=gap,
                          stats=train.stats) if val_fraction > 0 else None)
    arch = dict(n=train.n, space=space, L=train.L, latent_channels=latent_channels,
                ae_channels=list(ae_channels), width=width, modes=modes, layers=layers,
                time_dim=time_dim, proj_hidden=proj_hidden, sigma=sigma, mean_width=mean_width,
                mean_blocks=mean_blocks)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LatentDiffusionModel(**arch, stats=train.stats).to(dev)
    training = dict(mode=mode if space == "latent" else "dsm", epochs=epochs, batch=batch, lr=lr,
                    lr_halving_every=lr_halving_every, weights=w, ae_epochs=ae_epochs,
                    dsm_reduction=dsm_reduction, val_fraction=float(val_fraction), gap=gap,
                    seed=seed, device=str(dev), threads=threads, optimizer="Adam",
                    scheduler="StepLR(gamma=0.5)")
    signature = run_signature(model.config, training)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=lr_halving_every, gamma=0.5)
    phase = None

    def begin_epoch(epoch: int) -> dict:
        nonlocal phase
        phase = _phase(space, mode, epoch, ae_epochs)
        frozen = phase == "score" and space == "latent"
        for mod in (model.ae_omega, model.ae_closure, model.mean_net):
            if mod is not None:
                mod.requires_grad_(not frozen)
        model.score_net.requires_grad_(phase != "ae")
        return {"phase": phase}

    def batch_terms(split: str, idx, generator):
        data = train if split == "train" else val
        terms = model.loss_terms(data.omega_bar[idx].to(dev), data.closure[idx].to(dev),
                                 phase=phase, generator=generator, dsm_reduction=dsm_reduction)
        return terms, _total(terms, w)

    history, elapsed, stopped = fit(
        model, opt, sched, paths, signature, epochs=epochs, batch=batch, seed=seed,
        n_train=len(train), n_val=0 if val is None else len(val), batch_terms=batch_terms,
        begin_epoch=begin_epoch, resume=resume, checkpoint_every=checkpoint_every,
        stop_after=stop_after, progress=progress,
        desc=f"train {space}/{training['mode']}")
    if stopped is not None:
        return stopped

    # offline metrics and the model card
    on = val if val is not None and len(val) else train
    offline = offline_evaluation(model, lambda: offline_metrics(
        model, on, samples=samples_eval, steps=eval_steps, t_start=t_start,
        batch=max(batch, 16), generator=_gen(seed, "eval"), max_pairs=eval_pairs), on.split)
    metrics = training_metrics(epochs, elapsed, history, offline=offline)
    data_cfg = train.describe()
    data_cfg.update(dataset=os.fspath(dataset_path),               # as given: no machine paths
                    train_samples=len(train), val_samples=0 if val is None else len(val),
                    samples=train.samples_complete)
    return save_trained(model, save_model, out_stem, paths, metrics, {
        "space": space, "command": command, "data": data_cfg, "training": training,
        "training_time_s": elapsed, "metrics": metrics,
        "sampler": {"steps": eval_steps, "t_start": t_start, "rho": RHO,
                    "start": "sqrt(1 + std(t_start)^2) z"}})
