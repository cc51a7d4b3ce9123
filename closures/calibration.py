"""Large-scale calibration of a learned closure (diffusion or SLT): one least-squares gain per
wavenumber shell.

Why. The closure networks are local (the mean network sees ±13 cells), so their error is roughly
white in wavenumber, while the true subgrid term C has little power at the largest scales. In
shell |k| = 1 of the ``kolmogorov`` LES 64², the shipped L-CDM's ensemble mean carried 2.5× the
power of C and its error 1.4× that power, i.e. the prediction there was worse than predicting
zero (160 held-out pairs, 2026-11-22). Online, that error forces the k = 1 mode, which only the
drag damps; the LES ended with 16 ± 4 % too much energy at k = 1.

What. For the lowest ``shells`` shells s = 1 … S (the modes with round(|k|) = s, k in units of
2π/L; the mean, k = 0, is left alone) the gain

    g_s = Σ Re(conj(Ĉ_k) C_k) / Σ |Ĉ_k|²      (sums over the shell's modes and the pairs)

minimises Σ |g_s Ĉ_k − C_k|²: the shrinkage toward zero of a prediction whose signal-to-noise
ratio is low (g ≈ 1 where the prediction is good). Ĉ is the mean of ``samples`` draws of the
model. The gains are fitted on the training split only and stored in the model card under
``calibration``; :class:`closures.ldm.LatentDiffusionClosure` and :class:`closures.slt.SLTClosure`
multiply the shell-s part of each term they return by g_s (``calibrate=False`` turns that off).
Written here rather than taken from a library because it is a few lines of numpy on the
closure's own spectra.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch

from solvers.validate import integer

from .data import ClosureDataset

__all__ = ["mode_shells", "shell_power", "shell_gains", "apply_shell_gains", "predict_mean",
           "fit_calibration", "shell_errors"]


@functools.lru_cache(maxsize=8)
def mode_shells(n: int) -> np.ndarray:
    """round(|k|) of every mode of an ``rfft2`` of n×n points: an int array (n, n//2 + 1),
    read-only (cached: the closure applies the gains at every refresh)."""
    ky = np.fft.fftfreq(n, 1.0 / n)[:, None]
    kx = np.arange(n // 2 + 1)[None, :]
    shells = np.rint(np.hypot(kx, ky)).astype(np.int64)
    shells.flags.writeable = False
    return shells


def _rfft_weights(n: int) -> np.ndarray:
    """How often each rfft2 mode counts in Σ over the full spectrum: 2 except kx = 0, n/2."""
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w[None, :]


def shell_power(fields: np.ndarray, shells: int) -> np.ndarray:
    """Σ |F_k|² over the modes of shells 0 … ``shells`` and over the fields (…, n, n): an array
    (shells + 1,)."""
    f = np.asarray(fields, dtype=np.float64)
    n = f.shape[-1]
    p = (np.abs(np.fft.rfft2(f.reshape(-1, n, n))) ** 2).sum(axis=0) * _rfft_weights(n)
    return np.bincount(mode_shells(n).ravel(), p.ravel(), minlength=shells + 1)[:shells + 1]


def shell_gains(prediction: np.ndarray, truth: np.ndarray, shells: int) -> list[float]:
    """The least-squares gains g_1 … g_shells of ``prediction`` against ``truth`` (both
    (N, n, n), real): module docstring. A shell where the prediction is zero gets gain 1."""
    p, t = np.asarray(prediction, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 3 or p.shape[-1] != p.shape[-2]:
        raise ValueError(f"prediction and truth must both be (N, n, n), got {p.shape} and "
                         f"{t.shape}")
    n = p.shape[-1]
    _check_shells(shells, n)
    P, T = np.fft.rfft2(p), np.fft.rfft2(t)
    w = _rfft_weights(n)
    idx = mode_shells(n).ravel()
    num = np.bincount(idx, ((np.conj(P) * T).real.sum(axis=0) * w).ravel())
    den = np.bincount(idx, ((np.abs(P) ** 2).sum(axis=0) * w).ravel())
    return [float(num[s] / den[s]) if den[s] > 0 else 1.0 for s in range(1, shells + 1)]


def _check_shells(shells, n: int) -> None:
    integer("shells", shells, 1)
    if shells >= n // 2:
        raise ValueError(f"shells={shells} reaches the Nyquist wavenumber of {n}² fields "
                         f"(shells < {n // 2})")


def apply_shell_gains(term: np.ndarray, gains: Sequence[float]) -> np.ndarray:
    """``term`` (…, n, n) with the part in shell s multiplied by ``gains[s − 1]``, s = 1 … len."""
    x = np.asarray(term, dtype=np.float64)
    n = x.shape[-1]
    _check_shells(len(gains), n)
    factor = np.ones(len(gains) + 2)
    factor[1:len(gains) + 1] = gains
    shells = np.minimum(mode_shells(n), len(gains) + 1)     # every shell beyond: factor 1
    return np.fft.irfft2(np.fft.rfft2(x) * factor[shells], s=x.shape[-2:])


def predict_mean(model, data: ClosureDataset, samples: int = 4, seed: int = 0,
                 batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``samples`` draws of ``model`` for every pair of ``data`` and the true C, both
    in physical units, float64 (N, n, n). A history-dependent model (an SLT closure: it has a
    ``window`` L) is evaluated on the complete windows of L consecutive pairs, one per pair that
    ends one (:meth:`ClosureDataset.windows`), with its history encoded from the window."""
    if hasattr(model, "window"):
        return _predict_mean_windows(model, data, samples, seed, batch)
    gen = torch.Generator().manual_seed(int(seed))
    preds, truth = [], []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(data), batch):
            w, c = data.omega_bar[i:i + batch], data.closure[i:i + batch]
            mean = model.sample(w, gen, samples=samples).mean(dim=1)[:, 0]
            preds.append(model.denormalise(mean.double(), "closure").numpy())
            truth.append(model.denormalise(c.double(), "closure")[:, 0].numpy())
    return np.concatenate(preds), np.concatenate(truth)


def _predict_mean_windows(model, data: ClosureDataset, samples: int, seed: int,
                          batch: int) -> tuple[np.ndarray, np.ndarray]:
    gen = torch.Generator().manual_seed(int(seed))
    windows = torch.as_tensor(data.windows(model.window))
    if len(windows) == 0:
        raise ValueError(f"{data.path} holds no window of {model.window} consecutive pairs in "
                         f"its {data.split!r} split (hybrid generate --consecutive)")
    preds, truth = [], []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            rows = windows[i:i + batch]
            draws = model.draw_windows(data.omega_bar[rows], gen, members=samples)
            mean = draws.mean(dim=0)[:, 0]
            preds.append(model.denormalise(mean.double(), "closure").numpy())
            truth.append(model.denormalise(data.closure[rows[:, -1]].double(),
                                           "closure")[:, 0].numpy())
    return np.concatenate(preds), np.concatenate(truth)


def shell_errors(prediction: np.ndarray, truth: np.ndarray, shells: int) -> list[float]:
    """Σ|Ĉ_k − C_k|² / Σ|C_k|² per shell 1 … ``shells`` (1: as bad as predicting zero)."""
    e = shell_power(np.asarray(prediction) - np.asarray(truth), shells)
    r = shell_power(truth, shells)
    return [float(e[s] / r[s]) if r[s] > 0 else math.nan for s in range(1, shells + 1)]


def fit_calibration(model, train: ClosureDataset, shells: int = 2, samples: int = 4,
                    seed: int = 0, val: ClosureDataset | None = None, report_shells: int = 8,
                    batch: int = 32) -> dict:
    """Fit the shell gains of ``model`` on ``train`` (module docstring). Returns the card entry:
    ``shell_gains`` (g_1 … g_shells, applied by the closure), ``gains_report`` (the gains of
    shells 1 … ``report_shells``, at most n/2 − 1, for information), the settings, and with
    ``val`` the per-shell errors of the held-out pairs before and after
    (``val_shell_error_raw``/``_calibrated``) and the relative error of the whole term
    (``val_rel_error_raw``/``_calibrated``)."""
    n = int(train.n)
    _check_shells(shells, n)
    report_shells = min(max(int(report_shells), int(shells)), n // 2 - 1)
    pred, truth = predict_mean(model, train, samples=samples, seed=seed, batch=batch)
    report = shell_gains(pred, truth, report_shells)
    gains = report[:shells]
    out = {"shell_gains": gains, "shells": int(shells),
           "gains_report": report, "samples": int(samples), "seed": int(seed),
           "fitted_on": f"split {train.split!r}, {len(pred)} pairs",
           "method": "least-squares gain per shell round(|k|) = s of the mean of the draws "
                     "(closures/calibration.py)"}
    if val is not None and len(val):
        p, t = predict_mean(model, val, samples=samples, seed=seed + 1, batch=batch)
        q = apply_shell_gains(p, gains)
        ref = float(np.sum(t ** 2))
        out.update(val_pairs=len(p),
                   val_shell_error_raw=shell_errors(p, t, report_shells),
                   val_shell_error_calibrated=shell_errors(q, t, report_shells),
                   val_rel_error_raw=math.sqrt(float(np.sum((p - t) ** 2)) / ref),
                   val_rel_error_calibrated=math.sqrt(float(np.sum((q - t) ** 2)) / ref))
    return out
