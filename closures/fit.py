"""The epoch loop that every training function shares (:func:`closures.train.train_ldm`,
:func:`closures.slt.train_slt`, :func:`closures.slt.train_conditioned_slt`,
:func:`closures.ensemble_ldm.train_ensemble_ldm`): resuming from the checkpoint, the metrics log,
the epochs of shuffled training batches and the validation after each, checkpoints, the progress
bar; and the two ends they share around it: the run's signature (:func:`run_signature`), and
the offline evaluation, metrics, card, model file and final log line
(:func:`offline_evaluation`, :func:`training_metrics`, :func:`save_trained`).

The model, its loss, the optimiser, the scheduler and the run's settings come from the caller;
:func:`fit` owns the rest. Files (:func:`closures.train.train_paths`): ``<stem>.log.jsonl``, one
JSON line per epoch, cut back to the checkpoint's epoch on resume; ``<stem>.ckpt.pt``, written
atomically every ``checkpoint_every`` epochs, at the last and when stopping, loaded with
``weights_only=True``. A resumed run ends with the same weights, bit for bit, as an
uninterrupted one (same settings, device and thread count).
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable

import numpy as np
import torch

__all__ = ["fit", "run_signature", "offline_evaluation", "training_metrics", "save_trained"]

_STREAMS = {"shuffle": 11, "noise": 12, "val": 13, "eval": 14}


def seeded_generator(*entropy: int, device="cpu") -> torch.Generator:
    """A torch generator seeded with the first 63 bits of ``SeedSequence(entropy)``: independent
    streams for different entropy tuples (e.g. ``(seed, member)``)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([int(e) for e in entropy])
                      .generate_state(1, np.uint64)[0]) & (2**63 - 1))
    return g


def _gen(seed: int, stream: str) -> torch.Generator:
    """The torch generator of one random stream (shuffle, noise, val, eval) of ``seed``."""
    return seeded_generator(seed, _STREAMS[stream])


def run_signature(config: dict, training: dict, **more) -> str:
    """The settings a checkpoint must match (:func:`fit`'s ``signature``): the architecture
    ``config``, ``more`` (e.g. ``stats``, ``data``) and the ``training`` options less the epoch
    count, device and thread count (a run may resume with more epochs, or elsewhere)."""
    return json.dumps({"arch": config, **more,
                       "training": {k: v for k, v in training.items()
                                    if k not in ("epochs", "device", "threads")}},
                      sort_keys=True)


def training_metrics(epochs: int, elapsed: float, history: list[dict], **evaluation) -> dict:
    """The metrics of a finished run: ``epochs``, ``training_time_s``, the last epoch's
    ``final_train`` and ``final_val`` terms, then ``evaluation`` (the model's offline skill)."""
    last = history[-1] if history else {}
    return {"epochs": epochs, "training_time_s": elapsed, "final_train": last.get("train"),
            "final_val": last.get("val"), **evaluation}


def offline_evaluation(model: torch.nn.Module, evaluate: Callable[[], dict], split: str) -> dict:
    """The offline metrics of a trained model: ``evaluate()`` with every parameter trainable
    again (a phase may have frozen some), then the ``split`` evaluated on and the evaluation's
    wall time ``eval_time_s``."""
    for p in model.parameters():
        p.requires_grad_(True)
    t0 = time.perf_counter()
    offline = evaluate()
    offline.update(split=split, eval_time_s=time.perf_counter() - t0)
    return offline


def save_trained(model: torch.nn.Module, save: Callable, out, paths: dict, metrics: dict,
                 card: dict) -> dict:
    """The end of every training function: ``save(model.cpu(), out, card)`` with the card's
    ``name`` (the stem) first and ``torch_version`` and ``parameters`` (the count) last, the
    final line of the log (``final``: true and ``metrics``). Returns ``metrics`` with the
    run's ``paths`` added."""
    card = {"name": paths["weights"].with_suffix("").name, **card,
            "torch_version": torch.__version__,
            "parameters": int(sum(p.numel() for p in model.parameters()))}
    save(model.cpu(), out, card)
    with open(paths["log"], "a") as f:
        f.write(json.dumps({"final": True, **metrics}, default=str) + "\n")
    metrics["paths"] = {k: str(v) for k, v in paths.items()}
    return metrics


def fit(model: torch.nn.Module, opt, sched, paths: dict, signature: str, *, epochs: int,
        batch: int, seed: int, n_train: int, n_val: int,
        batch_terms: Callable, begin_epoch: Callable[[int], dict] | None = None,
        resume: bool = False, checkpoint_every: int = 1, stop_after: int | None = None,
        progress: bool = True, desc: str = "train") -> tuple[list[dict], float, dict | None]:
    """Train ``model`` from epoch 0 (or the checkpoint's, ``resume``) to ``epochs``.

    ``batch_terms(split, idx, generator) -> (terms, loss)``: the loss terms (a dict of scalar
    tensors) and the total loss of the samples ``idx`` of ``split`` ('train': a tensor of
    shuffled indices; 'val': a ``slice`` of consecutive ones), drawing noise from ``generator``.
    ``begin_epoch(epoch)``, if given, runs first in every epoch and returns more fields for the
    epoch's log line (after ``epoch``). ``signature``: the settings a checkpoint must match.

    Returns ``(history, elapsed_s, stopped)``: the log lines of all epochs, the training time
    and, when ``stop_after`` epochs of this call ended the run early (with a checkpoint), the
    result to return (``epochs``, ``stopped``, ``training_time_s``, ``final_train``,
    ``final_val``, ``paths``), else None."""
    g_shuffle, g_noise = _gen(seed, "shuffle"), _gen(seed, "noise")
    start, history, elapsed = 0, [], 0.0
    if resume:
        ck = paths["checkpoint"]
        if not ck.is_file():
            raise FileNotFoundError(f"resume: checkpoint {ck} does not exist")
        try:
            state = torch.load(ck, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"resume: checkpoint {ck} is not readable (corrupt?): "
                             f"{type(e).__name__}: {str(e)[:200]}") from None
        if state.get("signature") != signature:
            raise ValueError(f"resume: checkpoint {ck} was written with other settings "
                             f"(architecture, data, data split or training options differ); "
                             f"start afresh or use the same settings")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        g_shuffle.set_state(state["rng_shuffle"])
        g_noise.set_state(state["rng_noise"])
        start, elapsed = int(state["epoch"]), float(state["elapsed_s"])
        history = json.loads(state["history"])
        if start > epochs:
            raise ValueError(f"resume: checkpoint {ck} is at epoch {start}, beyond epochs="
                             f"{epochs}")
    paths["log"].parent.mkdir(parents=True, exist_ok=True)
    with open(paths["log"], "w") as f:                  # the log as of the checkpoint
        for rec in history:
            f.write(json.dumps(rec) + "\n")

    def checkpoint(epoch: int) -> None:
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "epoch": epoch,
                 "rng_shuffle": g_shuffle.get_state(), "rng_noise": g_noise.get_state(),
                 "signature": signature, "history": json.dumps(history), "elapsed_s": elapsed}
        tmp = paths["checkpoint"].with_name(paths["checkpoint"].name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, paths["checkpoint"])

    N = n_train
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, initial=start, desc=desc, unit="epoch")
    done_here = 0
    try:
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            extra = begin_epoch(epoch) if begin_epoch is not None else {}
            model.train()
            sums: dict[str, float] = {}
            perm = torch.randperm(N, generator=g_shuffle)
            for i0 in range(0, N, batch):
                idx = perm[i0:i0 + batch]
                terms, loss = batch_terms("train", idx, g_noise)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
                sums["total"] = sums.get("total", 0.0) + float(loss.detach()) * len(idx)
            rec = {"epoch": epoch + 1, **extra, "lr": opt.param_groups[0]["lr"],
                   "train": {k: v / N for k, v in sums.items()}}
            sched.step()
            if n_val:
                model.eval()
                g_val = _gen(seed, "val")
                vs: dict[str, float] = {}
                with torch.no_grad():
                    for i0 in range(0, n_val, batch):
                        i1 = min(i0 + batch, n_val)
                        terms, loss = batch_terms("val", slice(i0, i1), g_val)
                        for k, v in terms.items():
                            vs[k] = vs.get(k, 0.0) + float(v) * (i1 - i0)
                        vs["total"] = vs.get("total", 0.0) + float(loss) * (i1 - i0)
                rec["val"] = {k: v / n_val for k, v in vs.items()}
            dt = time.perf_counter() - t0
            elapsed += dt
            rec["time_s"] = dt
            history.append(rec)
            with open(paths["log"], "a") as f:
                f.write(json.dumps(rec) + "\n")
            done_here += 1
            last = epoch + 1 == epochs
            stopping = stop_after is not None and done_here >= stop_after
            if (epoch + 1) % checkpoint_every == 0 or last or stopping:
                checkpoint(epoch + 1)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{rec['train']['total']:.4g}",
                                val=(f"{rec['val']['total']:.4g}" if "val" in rec else "-"))
            if stopping and not last:
                return history, elapsed, {
                    "epochs": epoch + 1, "stopped": True, "training_time_s": elapsed,
                    "final_train": rec["train"], "final_val": rec.get("val"),
                    "paths": {k: str(v) for k, v in paths.items()}}
    finally:
        if bar is not None:
            bar.close()
    return history, elapsed, None
