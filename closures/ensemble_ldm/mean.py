"""The ensemble mean from the conditioning run: :class:`EnsembleMean`, a linear least-squares
estimate m̂(t) of the mean of the ensemble that a conditioning run U_c (T, n) is one member of,
and :func:`fit_ensemble_mean`, :func:`save_ensemble_mean`, :func:`load_ensemble_mean`.

A member drawn as U_c plus a residual is centred on U_c, itself one draw of the ensemble: the
generator's members then share U_c's deviation from the ensemble mean. Moved together so that
their mean is m̂ (``EnsembleGenerator.generate``), they keep their spread and share only m̂'s
error instead.

Per lead t (records since the common state U_c(0)) and Fourier mode k of y,

    m̂_k(t) = Σ_{j=0…J} a_{k,j}(t) Û_c,k(t − j) + b_k(t) Û_c,k(0)

(records before 0 taken as record 0), with real coefficients: m̂ commutes with every translation
in y and with the reflection y → −y (U(y) → U(−y) is a symmetry of the forced beta-plane, with
ψ(x, y) → −ψ(x, −y)). Leads past the fitted ones use the last fitted lead's coefficients.

Fitted on DNS ensembles from common states (:func:`closures.ensemble_ldm.read_starts`), member
:data:`~closures.ensemble_ldm.data.CONDITIONING` the conditioning run: for each lead t and mode
k, ridge least squares over the starts and leads t − P … t + P (real and imaginary parts as
separate equations) against the mean of the other members, an unbiased estimate of the ensemble
mean whose sampling noise does not depend on U_c; the ridge is λ times the mean squared norm of
the features' columns. A closed-form fit (a few seconds): no epochs, no seed.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from solvers.validate import integer, number

from ..ldm.files import (ModelFileError, build_model, read_model_card, resolve_model_path,
                         save_model_files)
from .data import CONDITIONING, conditioning_array, other_members, read_starts, split_starts

__all__ = ["EnsembleMean", "fit_ensemble_mean", "save_ensemble_mean", "load_ensemble_mean",
           "read_ensemble_mean_card", "mean_distance", "CARD_FORMAT", "LAGS", "RIDGE", "POOL"]

CARD_FORMAT = "hybrid-ensemble-mean-card"
CARD_VERSION = 1
LAGS = 10           # J: records of U_c before t used at lead t (default)
RIDGE = 0.01        # λ (default)
POOL = 5            # P: leads either side pooled in each lead's fit (default)


class EnsembleMean(nn.Module):
    """m̂(t) from U_c (module docstring): ``coef`` (leads, n//2 + 1, J + 2) holds a_{k,0…J}(t)
    and b_k(t)."""

    def __init__(self, points: int, lags: int = LAGS, leads: int = 2):
        super().__init__()
        self.points = integer("points", points, 2)
        self.lags = integer("lags", lags, 0)
        self.leads = integer("leads", leads, 1)
        self.register_buffer("coef", torch.zeros(self.leads, self.points // 2 + 1,
                                                 self.lags + 2, dtype=torch.float64))
        self.stats: dict = {}
        self.name: str | None = None          # the name or path it was loaded from

    @property
    def config(self) -> dict:
        return {"points": self.points, "lags": self.lags, "leads": self.leads}

    @classmethod
    def from_config(cls, config: dict, stats: dict | None = None) -> "EnsembleMean":
        return cls(config["points"], config["lags"], config["leads"])

    @property
    def interval(self) -> float | None:
        """The save interval of the data it was fitted on (None if unknown)."""
        return (getattr(self, "card", {}).get("data") or {}).get("interval")

    def features(self, U_c) -> np.ndarray:
        """(T, n//2 + 1, J + 2) complex: Û_c(t − j) for j = 0 … J, then Û_c(0)."""
        X = np.fft.rfft(conditioning_array(U_c, self.points), axis=-1)
        T = X.shape[0]
        back = np.clip(np.arange(T)[:, None] - np.arange(self.lags + 1)[None], 0, None)
        return np.concatenate([X[back].transpose(0, 2, 1),
                               np.broadcast_to(X[0][None, :, None], (T, X.shape[1], 1))], -1)

    def predict(self, U_c) -> np.ndarray:
        """m̂ (T, n), float64, in U_c's units; m̂(0) = the fitted map of U_c(0) (≈ U_c(0))."""
        A = self.features(U_c)
        lead = np.minimum(np.arange(A.shape[0]), self.leads - 1)
        c = self.coef.detach().cpu().numpy()[lead]
        return np.fft.irfft(np.einsum("tkp,tkp->tk", A, c), n=self.points, axis=-1)


def fit_ensemble_mean(data, lags: int = LAGS, ridge: float = RIDGE, pool: int = POOL,
                      val_fraction: float = 0.0, command: str | None = None) -> EnsembleMean:
    """:class:`EnsembleMean` fitted on ``data`` (paths of DNS ensembles from common states, or an
    array (starts, members, times, n); at least two members per start) by ridge least squares
    (module docstring). The last ``val_fraction`` of the starts are held out
    (:func:`~closures.ensemble_ldm.data.split_starts`). ``model.card`` holds the data, the
    settings, ``command`` and :func:`mean_distance` on the fitted and the held-out starts."""
    lags, pool = integer("lags", lags, 0), integer("pool", pool, 0)
    ridge = number("ridge", ridge, at_least=0)
    val_fraction = number("val_fraction", val_fraction, at_least=0, below=1)
    t0 = time.perf_counter()
    U, desc = read_starts(data)
    S, M, T, n = U.shape
    train, val = split_starts(U, val_fraction)
    model = EnsembleMean(n, lags, T)
    A = np.stack([model.features(u[CONDITIONING]) for u in train])   # (S, T, K, p)
    Y = np.fft.rfft(train[:, other_members(M)].mean(axis=1), axis=-1)          # (S, T, K)
    K, p = A.shape[2], A.shape[3]
    coef = np.zeros((T, K, p))
    for t in range(T):
        leads = slice(max(0, t - pool), t + pool + 1)
        a = A[:, leads].transpose(2, 0, 1, 3).reshape(K, -1, p)        # (K, rows, p)
        y = Y[:, leads].transpose(2, 0, 1).reshape(K, -1)
        a = np.concatenate([a.real, a.imag], axis=1)
        y = np.concatenate([y.real, y.imag], axis=1)
        gram = np.einsum("kri,krj->kij", a, a)
        scale = np.trace(gram, axis1=1, axis2=2) / p
        reg = (ridge + 1e-12) * np.where(scale > 0, scale, 1.0)[:, None, None] * np.eye(p)
        coef[t] = np.linalg.solve(gram + reg, np.einsum("kri,kr->ki", a, y)[..., None])[..., 0]
    model.coef.copy_(torch.from_numpy(coef))
    metrics = {"train_distance": mean_distance(model, train)}
    if len(val):
        metrics["val_distance"] = mean_distance(model, val)
    model.card = {"command": command,
                  "data": {**desc, "starts": S, "members": M, "times": T, "points": n,
                           "conditioning_member": CONDITIONING, "train_starts": len(train),
                           "val_starts": len(val)},
                  "fit": {"lags": lags, "ridge": ridge, "pool": pool, "val_fraction": val_fraction,
                          "time_s": time.perf_counter() - t0},
                  "metrics": metrics, "torch_version": torch.__version__}
    return model


def mean_distance(model: EnsembleMean, U) -> float:
    """√(Σ|m̂ − m|² / Σ|U_c − m|²) over starts, leads t ≥ 1 and points, for ``U`` (starts,
    members, times, n) with m the mean of the members other than the conditioning run: how far
    m̂ lies from the ensemble's mean in units of the conditioning run's distance (1: no better
    than U_c; √(1/(M − 1)/(1 + 1/(M − 1))) for a perfect m̂, from m's own sampling noise)."""
    U = np.asarray(U, dtype=np.float64)
    others = other_members(U.shape[1])
    num = den = 0.0
    for u in U:
        m = u[others].mean(axis=0)[1:]
        num += float(np.sum((model.predict(u[CONDITIONING])[1:] - m) ** 2))
        den += float(np.sum((u[CONDITIONING, 1:] - m) ** 2))
    return math.sqrt(num / den) if den > 0 else float("nan")


def save_ensemble_mean(model: EnsembleMean, path_stem, card: dict | None = None):
    """Write ``<stem>.pt`` and ``<stem>.json`` (``card``, default ``model.card``, plus format,
    version, config and the tensors' shapes). Returns the two paths."""
    card = getattr(model, "card", {}) if card is None else card
    return save_model_files(model, path_stem, card, CARD_FORMAT, CARD_VERSION)


def read_ensemble_mean_card(path_or_name) -> dict:
    """The checked card of a saved ensemble mean (a path, or a shipped model's name)."""
    return read_model_card(resolve_model_path(path_or_name), CARD_FORMAT, CARD_VERSION,
                           lambda card: dict(card["stats"]))


def load_ensemble_mean(path_or_name) -> EnsembleMean:
    """The :class:`EnsembleMean` saved by :func:`save_ensemble_mean` (a path or a shipped
    model's name), with ``model.card`` set; :class:`ModelFileError` naming the file for a
    missing, corrupt or mismatched card or weights file."""
    stem = resolve_model_path(path_or_name)
    model = build_model(EnsembleMean, stem, read_ensemble_mean_card(stem), "cpu")
    model.name = str(path_or_name)
    return model
