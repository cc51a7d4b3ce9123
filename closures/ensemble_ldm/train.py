"""Training of the ensemble generator: :func:`train_ensemble_ldm`.

Data (:func:`closures.ensemble_ldm.data.read_starts`): DNS ensembles from common states, one run
file per start (or an array (starts, members, times, n)); member 0 of each start conditions the
others. The last ``val_fraction`` of the starts validate (none when that rounds to zero);
held-out test starts are simply not given. Normalisation: the mean and standard deviation of the
training profiles (two scalars, in the card).

Two phases, as the paper's pre-trained VAE (one optimiser, one checkpoint, one log):

1. epochs 0 … ``vae_epochs`` − 1, the VAE alone on every profile of the training starts:
   ``rec + kl_weight·kl`` (:meth:`closures.nn.vae.TEPCVAE.loss_terms`);
2. the remaining epochs, the VAE frozen: its latents of every profile are computed once, the
   scales ρ_z, ρ_r set from them (:meth:`EnsembleLDM.set_scales`), and the denoiser trained on
   the residual windows (:class:`closures.ensemble_ldm.data.ResidualWindows`) with the DDPM loss
   ``noise``.

Adam(``lr``); the rate times ``gamma``^e after e epochs of the current phase (LambdaLR stepped per
epoch; default 0.9825 as the SLT's, 1 for a constant rate). Validation after every epoch on the
held-out starts with a fixed noise seed.

After training, :func:`offline_metrics` on the validation starts (or the training ones): the
VAE's reconstruction error, and for up to ``eval_starts`` starts an ensemble of ``samples_eval``
members generated around the conditioning run against the DNS members: the spread (RMS over y
of the standard deviation across members) of both, averaged over the leads after the start, and
their ratio. These go into the card.

Files next to ``out`` (the conventions of :func:`closures.slt.train_slt`, through
:func:`closures.fit.fit` and :func:`closures.train.train_paths`): ``<stem>.log.jsonl`` (one JSON
line per epoch with its ``phase``, then a final line), ``<stem>.ckpt.pt`` (model, optimiser,
scheduler, generator states, history and the run's signature; atomic; ``resume=True`` continues
from it and ends with the same weights, bit for bit, as an uninterrupted run) and at the end
``<stem>.pt`` / ``<stem>.json`` (:func:`closures.ensemble_ldm.files.save_ensemble_ldm`).

Reproducibility: initial weights from ``seed`` in a forked RNG; shuffling, training noise,
validation noise and evaluation each from their own generators seeded from ``seed``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from solvers.validate import integer, number

from ..fit import fit, offline_evaluation, run_signature, save_trained, training_metrics
from ..train import _threads_scoped, train_paths
from .data import CONDITIONING, Profiles, ResidualWindows, read_starts, split_starts
from .files import save_ensemble_ldm
from .generate import SAMPLE_STEPS, EnsembleGenerator
from .model import EnsembleLDM, check_mode

__all__ = ["train_ensemble_ldm", "offline_metrics", "encode_starts"]


@torch.no_grad()
def encode_starts(model: EnsembleLDM, u: np.ndarray, chunk: int = 8192,
                  device="cpu") -> torch.Tensor:
    """Latents z = μ(u) (S, M, T, m), float32 on the CPU, of normalised starts u (S, M, T, n),
    encoded in chunks of ``chunk`` profiles."""
    flat = torch.as_tensor(u.reshape(-1, u.shape[-1]), dtype=torch.float32)
    if flat.shape[0] == 0:
        return torch.zeros(u.shape[:-1] + (model.latent_points,))
    z = _in_chunks(model.encode, flat, chunk, device)
    return z.reshape(u.shape[:-1] + (z.shape[-1],))


def _in_chunks(fn, flat: torch.Tensor, chunk: int, device) -> torch.Tensor:
    """fn applied to the rows of ``flat`` ``chunk`` at a time on ``device``, gathered on the
    CPU (bounded memory for many profiles)."""
    return torch.cat([fn(flat[i:i + chunk].to(device)).cpu()
                      for i in range(0, flat.shape[0], chunk)])


@torch.no_grad()
def offline_metrics(model: EnsembleLDM, U: np.ndarray, samples: int = 8,
                    steps: int = SAMPLE_STEPS, max_starts: int = 2, seed: int = 0,
                    device="cpu") -> dict:
    """Skill on starts U (S, M, T, n), in the data's units (module docstring): ``rec_rmse``
    (the VAE's reconstruction error of every profile), and over the first ``max_starts`` starts
    ``spread_generated`` and ``spread_dns`` (the spread across members, RMS over y, mean over
    the leads t ≥ 1) and ``spread_ratio`` (their ratio) for ``samples`` members generated
    around member 0 with ``steps`` DDIM steps."""
    model.eval()
    u = torch.as_tensor(model.normalise(U), dtype=torch.float32)
    flat = u.reshape(-1, U.shape[-1])
    rec = _in_chunks(lambda x: model.decode(model.encode(x)), flat, 8192, device)
    out = {"rec_rmse": math.sqrt(float(((rec - flat) ** 2).mean())) * model.stats["std"]}
    gen = EnsembleGenerator(model, device=device)
    sg = sd = 0.0
    n = min(int(max_starts), U.shape[0])
    for s in range(n):
        X = gen.generate(U[s, CONDITIONING], samples, seed=seed + s, steps=steps)
        sg += float(np.sqrt(X[:, 1:].var(axis=0, ddof=1).mean(axis=-1)).mean())
        sd += float(np.sqrt(U[s, :, 1:].var(axis=0, ddof=1).mean(axis=-1)).mean())
    out.update(starts=n, samples=int(samples), steps=int(steps),
               spread_generated=sg / n, spread_dns=sd / n,
               spread_ratio=(sg / sd if sd > 0 else None))
    return out


def _checkpoint_epoch(path) -> int:
    """The epoch of a readable checkpoint, else 0 (:func:`closures.fit.fit` reports it)."""
    if not path.is_file():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:
        return 0


@_threads_scoped
def train_ensemble_ldm(data, out, *, mode: str = "autoregressive", epochs: int = 100,
                       vae_epochs: int | None = None, batch: int = 200, lr: float = 1e-3,
                       gamma: float = 0.9825, kl_weight: float = 1e-3,
                       latent_points: int | None = None, channels: int = 4,
                       phase: str = "common", context: int = 4, horizon: int | None = None,
                       width: int = 64, heads: int = 4, layers: int = 3, hidden: int = 128,
                       time_dim: int = 64, diffusion_steps: int = 1000,
                       val_fraction: float = 0.1, seed: int = 0, threads: int | None = None,
                       resume: bool = False, progress: bool = True, checkpoint_every: int = 1,
                       stop_after: int | None = None, samples_eval: int = 8,
                       eval_steps: int = SAMPLE_STEPS, eval_starts: int = 2,
                       command: str | None = None, device: str = "cpu") -> dict:
    """Train an ensemble generator on ``data`` and save it to ``out`` (module docstring).
    Returns the metrics: ``epochs``, ``training_time_s``, ``final_train``, ``final_val``,
    ``offline`` (:func:`offline_metrics`), ``paths``.

    ``vae_epochs``: epochs of the VAE phase (default half, at least one; fewer than
    ``epochs``). ``stop_after``: stop with a checkpoint after that many epochs of this call (the
    model is then not saved). ``threads``: torch's thread count during training (restored
    after). ``command``: the command line, recorded in the card."""
    mode = check_mode(mode)
    epochs = integer("epochs", epochs, 2)
    vae_epochs = integer("vae_epochs", max(1, epochs // 2) if vae_epochs is None else vae_epochs,
                         1, epochs - 1)
    batch = integer("batch", batch, 1)
    lr = number("lr", lr, above=0)
    gamma = number("gamma", gamma, above=0, at_most=1)
    kl_weight = number("kl_weight", kl_weight, at_least=0)
    val_fraction = number("val_fraction", val_fraction, at_least=0, below=1)
    seed = integer("seed", seed, 0)
    checkpoint_every = integer("checkpoint_every", checkpoint_every, 1)
    stop_after = integer("stop_after", stop_after, 1, allow_none=True)
    samples_eval = integer("samples_eval", samples_eval, 2)
    eval_starts = integer("eval_starts", eval_starts, 1)
    U, desc = read_starts(data)
    tr, va = split_starts(U, val_fraction)
    stats = {"mean": float(tr.mean()), "std": float(tr.std())}
    if not stats["std"] > 0:
        raise ValueError("data: the training profiles are constant (std 0)")
    tr_n, va_n = (tr - stats["mean"]) / stats["std"], (va - stats["mean"]) / stats["std"]
    dev = torch.device(device)
    arch = dict(points=int(U.shape[3]), mode=mode, latent_points=latent_points,
                channels=channels, phase=phase, context=context, horizon=horizon, width=width,
                heads=heads, layers=layers, hidden=hidden, time_dim=time_dim,
                diffusion_steps=diffusion_steps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EnsembleLDM(**arch, stats=stats).to(dev)
    K, H = model.context, model.horizon
    eval_steps = integer("eval_steps", eval_steps, 1, model.ddpm.steps)
    if U.shape[2] - H < 1:
        raise ValueError(f"data: {U.shape[2]} records per start hold no window of the start "
                         f"and horizon = {H} steps after it")
    training = dict(epochs=epochs, vae_epochs=vae_epochs, batch=batch, lr=lr, gamma=gamma,
                    kl_weight=kl_weight, val_fraction=val_fraction, seed=seed,
                    optimizer="Adam", scheduler="LambdaLR(gamma^(epochs into the phase))",
                    device=str(dev), threads=threads)
    signature = run_signature(model.config, training, stats=stats, data=desc)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: gamma ** (e if e < vae_epochs else e - vae_epochs))
    paths = train_paths(out)
    profiles = {"train": Profiles(tr_n), "val": Profiles(va_n)}
    windows: dict = {}
    n_windows = {k: ResidualWindows.count_for(u.shape, H) for k, u in (("train", tr_n),
                                                                          ("val", va_n))}

    def begin_vae(epoch: int) -> dict:
        model.vae.requires_grad_(True)
        return {"phase": "vae"}

    def begin_diffusion(epoch: int) -> dict:
        model.vae.requires_grad_(False)
        if not windows:                       # the frozen VAE's latents, computed once
            z = {k: encode_starts(model, u, device=dev) for k, u in (("train", tr_n),
                                                                     ("val", va_n))}
            windows.update({k: ResidualWindows(v, K, H) for k, v in z.items()})
            if epoch == vae_epochs:           # else the checkpoint's scales
                model.set_scales(z["train"], windows["train"].residuals())
        return {"phase": "diffusion"}

    def vae_batch(split: str, idx, generator):
        if isinstance(idx, slice):
            idx = torch.arange(idx.start, idx.stop)
        terms = model.vae_terms(profiles[split].batch(idx).to(dev), generator)
        return terms, terms["rec"] + kl_weight * terms["kl"]

    def diffusion_batch(split: str, idx, generator):
        if isinstance(idx, slice):
            idx = torch.arange(idx.start, idx.stop)
        ctx, tgt, cond = (v.to(dev) for v in windows[split].batch(idx))
        terms = model.diffusion_terms(ctx, tgt, cond, generator)
        return terms, terms["noise"]

    common = dict(batch=batch, seed=seed, checkpoint_every=checkpoint_every, progress=progress)
    start = _checkpoint_epoch(paths["checkpoint"]) if resume else 0
    left = stop_after
    if start < vae_epochs:
        history, elapsed, stopped = fit(
            model, opt, sched, paths, signature, epochs=vae_epochs, n_train=len(profiles["train"]),
            n_val=len(profiles["val"]), batch_terms=vae_batch, begin_epoch=begin_vae,
            resume=resume, stop_after=stop_after, desc=f"train ensemble-ldm/{mode}: vae",
            **common)
        if stopped is not None:
            return stopped
        if left is not None:
            left -= vae_epochs - start
            if left <= 0:
                return {"epochs": vae_epochs, "stopped": True, "training_time_s": elapsed,
                        "final_train": history[-1]["train"],
                        "final_val": history[-1].get("val"),
                        "paths": {k: str(v) for k, v in paths.items()}}
    history, elapsed, stopped = fit(
        model, opt, sched, paths, signature, epochs=epochs, n_train=n_windows["train"],
        n_val=n_windows["val"], batch_terms=diffusion_batch, begin_epoch=begin_diffusion,
        resume=True, stop_after=left, desc=f"train ensemble-ldm/{mode}: diffusion", **common)
    if stopped is not None:
        return stopped

    on, split = (va, "val") if va.shape[0] else (tr, "train")
    offline = offline_evaluation(model, lambda: offline_metrics(
        model, on, samples=samples_eval, steps=eval_steps, max_starts=eval_starts, seed=seed,
        device=dev), split)
    metrics = training_metrics(epochs, elapsed, history, offline=offline)
    desc.update(train_starts=int(tr.shape[0]), val_starts=int(va.shape[0]),
                train_windows=n_windows["train"], val_windows=n_windows["val"])
    return save_trained(model, save_ensemble_ldm, out, paths, metrics, {
        "mode": mode, "command": command, "data": desc, "training": training,
        "training_time_s": elapsed, "metrics": metrics,
        "sampler": {"method": "ddim", "steps": eval_steps, "eta": 0.0}})
