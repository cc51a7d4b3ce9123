"""The ensemble mean from the conditioning run: :class:`EnsembleMean`, an estimate m̂(t) of the
mean of the ensemble that a conditioning run U_c (T, n) is one member of, and
:func:`fit_ensemble_mean`, :func:`save_ensemble_mean`, :func:`load_ensemble_mean`.

A member drawn as U_c plus a residual is centred on U_c, itself one draw of the ensemble: the
generator's members then share U_c's deviation from the ensemble mean. Moved together so that
their mean is m̂ (``EnsembleGenerator.generate``), they keep their spread and share only m̂'s
error instead.

**Linear part.** Per lead t (records since the common state U_c(0)) and Fourier mode k of y,

    m̂_k(t) = Σ_{j=0…J} a_{k,j}(t) Û_c,k(t − j) + b_k(t) Û_c,k(0)

(records before 0 taken as record 0), with real coefficients: m̂ commutes with every translation
in y and with the reflection y → −y (U(y) → U(−y) is a symmetry of the forced beta-plane, with
ψ(x, y) → −ψ(x, −y)). Leads past the fitted ones use the last fitted lead's coefficients.

**Nonlinear correction** (``width`` > 0). At leads t ≥ 1, m̂(t) ← m̂(t) + σ f(U_c(t)/σ,
U_c(0)/σ, m̂(t)/σ, min(t, leads − 1)/leads), f a :class:`~closures.nn.periodic1d.
PeriodicConvNet1d` (circular dilated convolutions, reflection-symmetrised, so the estimate keeps
both symmetries) with its mean over y removed (the y-mean of U is the same in every member, and
the linear part gets it exactly), and σ the training profiles' standard deviation. The linear
filter cannot represent a mean that depends on the shape of the profile (where the jets sit,
how sharp they are); on betaplane-small validation starts the correction takes the distance
below from 0.58 to about 0.42, where 0.33 is the noise of the 8-member mean it is scored
against.

Fitted on DNS ensembles from common states (:func:`closures.ensemble_ldm.read_starts`), member
:data:`~closures.ensemble_ldm.data.CONDITIONING` the conditioning run, against the mean of the
other members, an unbiased estimate of the ensemble mean whose sampling noise does not depend on
U_c. The linear part first: for each lead t and mode k, ridge least squares over the starts and
leads t − P … t + P (real and imaginary parts as separate equations); the ridge is λ times the
mean squared norm of the features' columns (closed form, no seed). Then the correction, by Adam
on the squared error at leads t ≥ 1 weighted by 1/s²(t), s(t) the training ensembles' spread at
lead t (:func:`lead_weights`: each lead counts by its error relative to the spread there, as in
a CRPS ratio, so the first leads, where the spread is smallest, are not swamped by the last),
seeded, keeping the epoch with the smallest distance on the held-out starts (the last if none
are held out).
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
from ..nn.periodic1d import PeriodicConvNet1d
from .data import CONDITIONING, conditioning_array, other_members, read_starts, split_starts

__all__ = ["EnsembleMean", "fit_ensemble_mean", "save_ensemble_mean", "load_ensemble_mean",
           "read_ensemble_mean_card", "mean_distance", "lead_weights", "CARD_FORMAT", "LAGS",
           "RIDGE", "POOL", "WIDTH", "LAYERS", "EPOCHS"]

CARD_FORMAT = "hybrid-ensemble-mean-card"
CARD_VERSION = 1
LAGS = 10           # J: records of U_c before t used at lead t (default)
RIDGE = 0.01        # λ (default)
POOL = 5            # P: leads either side pooled in each lead's fit (default)
WIDTH = 32          # hidden channels of the correction (0: the linear filter alone) (default)
LAYERS = 8          # convolutions of the correction (default)
KERNEL = 5          # their kernel
EPOCHS = 40         # Adam epochs of the correction (default)
BATCH = 64          # leads × starts per Adam step
LR = 1e-3           # Adam's learning rate
WEIGHT_DECAY = 1e-4
INPUTS = 4          # U_c(t), U_c(0), the linear m̂(t), the lead


class EnsembleMean(nn.Module):
    """m̂(t) from U_c (module docstring): ``coef`` (leads, n//2 + 1, J + 2) holds a_{k,0…J}(t)
    and b_k(t); with ``width`` > 0, ``correction`` (a :class:`PeriodicConvNet1d` of ``layers``
    convolutions) and ``scale`` σ are the nonlinear correction."""

    def __init__(self, points: int, lags: int = LAGS, leads: int = 2, width: int = 0,
                 layers: int = LAYERS):
        super().__init__()
        self.points = integer("points", points, 2)
        self.lags = integer("lags", lags, 0)
        self.leads = integer("leads", leads, 1)
        self.width = integer("width", width, 0)
        self.layers = integer("layers", layers, 2)
        self.register_buffer("coef", torch.zeros(self.leads, self.points // 2 + 1,
                                                 self.lags + 2, dtype=torch.float64))
        self.correction = None
        if self.width:
            self.correction = PeriodicConvNet1d(INPUTS, self.width, 1, self.layers, KERNEL)
            self.register_buffer("scale", torch.ones((), dtype=torch.float64))
        self.stats: dict = {}
        self.name: str | None = None          # the name or path it was loaded from

    @property
    def config(self) -> dict:
        return {"points": self.points, "lags": self.lags, "leads": self.leads,
                "width": self.width, "layers": self.layers}

    @classmethod
    def from_config(cls, config: dict, stats: dict | None = None) -> "EnsembleMean":
        return cls(config["points"], config["lags"], config["leads"], config.get("width", 0),
                   config.get("layers", LAYERS))

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

    def linear(self, U_c) -> np.ndarray:
        """The linear part of m̂ (T, n), float64."""
        A = self.features(U_c)
        lead = np.minimum(np.arange(A.shape[0]), self.leads - 1)
        c = self.coef.detach().cpu().numpy()[lead]
        return np.fft.irfft(np.einsum("tkp,tkp->tk", A, c), n=self.points, axis=-1)

    def correction_inputs(self, U_c, linear: np.ndarray) -> torch.Tensor:
        """The correction's inputs at leads 1 … T − 1: (T − 1, 4, n) float32, U_c(t)/σ,
        U_c(0)/σ, ``linear``(t)/σ and min(t, leads − 1)/leads."""
        u = conditioning_array(U_c, self.points)
        T, sigma = u.shape[0], float(self.scale)
        lead = np.minimum(np.arange(1, T), self.leads - 1) / self.leads
        x = np.stack([u[1:] / sigma, np.broadcast_to(u[:1] / sigma, u[1:].shape),
                      linear[1:] / sigma,
                      np.broadcast_to(lead[:, None], (T - 1, self.points))], axis=1)
        return torch.from_numpy(x.astype(np.float32))

    def correction_term(self, x: torch.Tensor) -> torch.Tensor:
        """f of :meth:`correction_inputs` ``x`` (B, n), in units of σ, its mean over y removed:
        the y-mean of U is the same in every member (the forcing has none and the drag is
        linear), and the linear part already gets it exactly."""
        f = self.correction(x)[:, 0]
        return f - f.mean(dim=-1, keepdim=True)

    def predict(self, U_c) -> np.ndarray:
        """m̂ (T, n), float64, in U_c's units; m̂(0) = the fitted map of U_c(0) (≈ U_c(0))."""
        m = self.linear(U_c)
        if self.correction is not None and m.shape[0] > 1:
            with torch.no_grad():
                x = self.correction_inputs(U_c, m)
                m[1:] += float(self.scale) * self.correction_term(x).double().numpy()
        return m


def fit_ensemble_mean(data, lags: int = LAGS, ridge: float = RIDGE, pool: int = POOL,
                      val_fraction: float = 0.0, width: int = WIDTH, layers: int = LAYERS,
                      epochs: int = EPOCHS, seed: int = 0,
                      command: str | None = None) -> EnsembleMean:
    """:class:`EnsembleMean` fitted on ``data`` (paths of DNS ensembles from common states, or an
    array (starts, members, times, n); at least two members per start): the linear part by ridge
    least squares, then, with ``width`` > 0, the correction by ``epochs`` of Adam (module
    docstring). The last ``val_fraction`` of the starts are held out
    (:func:`~closures.ensemble_ldm.data.split_starts`) and pick the correction's epoch.
    ``model.card`` holds the data, the settings, ``command`` and :func:`mean_distance` on the
    fitted and the held-out starts, with and without the correction."""
    lags, pool = integer("lags", lags, 0), integer("pool", pool, 0)
    ridge = number("ridge", ridge, at_least=0)
    val_fraction = number("val_fraction", val_fraction, at_least=0, below=1)
    width, layers = integer("width", width, 0), integer("layers", layers, 2)
    epochs, seed = integer("epochs", epochs, 1), integer("seed", seed, 0)
    t0 = time.perf_counter()
    U, desc = read_starts(data)
    S, M, T, n = U.shape
    train, val = split_starts(U, val_fraction)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)                       # the correction's initial weights
        model = EnsembleMean(n, lags, T, width, layers)
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
    metrics, weights = {}, None
    if width:
        metrics["linear_train_distance"] = mean_distance(model, train, linear=True)
        if len(val):
            metrics["linear_val_distance"] = mean_distance(model, val, linear=True)
        weights = lead_weights(train)
        metrics["epochs"] = _train_correction(model, train, val, weights, epochs, seed)
    metrics["train_distance"] = mean_distance(model, train)
    if len(val):
        metrics["val_distance"] = mean_distance(model, val)
    model.card = {"command": command,
                  "data": {**desc, "starts": S, "members": M, "times": T, "points": n,
                           "conditioning_member": CONDITIONING, "train_starts": len(train),
                           "val_starts": len(val)},
                  "fit": {"lags": lags, "ridge": ridge, "pool": pool, "val_fraction": val_fraction,
                          "width": width, "layers": layers, "epochs": epochs, "seed": seed,
                          "batch": BATCH, "lr": LR, "weight_decay": WEIGHT_DECAY,
                          "lead_weights": None if weights is None else weights.tolist(),
                          "time_s": time.perf_counter() - t0},
                  "metrics": metrics, "torch_version": torch.__version__}
    return model.eval()


def _train_correction(model: EnsembleMean, train: np.ndarray, val: np.ndarray,
                      weights: np.ndarray, epochs: int, seed: int) -> list[dict]:
    """Fit ``model.correction`` in place (module docstring) with the loss weights ``weights``
    of leads 1 … T − 1 (:func:`lead_weights`); the per-epoch log."""
    model.scale.fill_(float(np.std(train)) or 1.0)
    others = other_members(train.shape[1])
    X, Y = [], []
    for u in train:
        lin = model.linear(u[CONDITIONING])
        X.append(model.correction_inputs(u[CONDITIONING], lin))
        Y.append((u[others].mean(axis=0)[1:] - lin[1:]) / float(model.scale))
    X, Y = torch.cat(X), torch.from_numpy(np.concatenate(Y).astype(np.float32))
    W = torch.from_numpy(np.tile(weights, len(train)).astype(np.float32))[:, None]
    order = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.correction.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    log, best = [], (math.inf, None)
    for epoch in range(epochs):
        model.correction.train()
        total = 0.0
        for idx in torch.randperm(len(X), generator=order).split(BATCH):
            loss = torch.mean(W[idx] * (model.correction_term(X[idx]) - Y[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        model.correction.eval()
        entry = {"epoch": epoch + 1, "train_loss": total / len(X)}
        if len(val):
            entry["val_distance"] = mean_distance(model, val)
        log.append(entry)
        score = entry.get("val_distance", -epoch)
        if score < best[0]:
            best = (score, {k: v.clone() for k, v in model.correction.state_dict().items()})
    model.correction.load_state_dict(best[1])
    return log


def lead_weights(U: np.ndarray) -> np.ndarray:
    """The correction's loss weight of each lead t ≥ 1 (T − 1,) for starts ``U`` (starts,
    members, T, n): 1/s²(t), s²(t) the variance over the members other than the conditioning run
    averaged over starts and points, normalised to mean 1, so that each lead counts by its error
    relative to the ensemble's spread there, as a CRPS ratio does (uniform with fewer than two
    such members, or where a spread is 0)."""
    others = other_members(U.shape[1])
    if len(others) < 2:
        return np.ones(U.shape[2] - 1)
    var = U[:, others, 1:].var(axis=1, ddof=1).mean(axis=(0, 2))
    if not (var > 0).all():
        return np.ones(U.shape[2] - 1)
    w = 1.0 / var
    return w / w.mean()


def mean_distance(model: EnsembleMean, U, linear: bool = False) -> float:
    """√(Σ|m̂ − m|² / Σ|U_c − m|²) over starts, leads t ≥ 1 and points, for ``U`` (starts,
    members, times, n) with m the mean of the members other than the conditioning run: how far
    m̂ lies from the ensemble's mean in units of the conditioning run's distance (1: no better
    than U_c; √(1/(M − 1)/(1 + 1/(M − 1))) for a perfect m̂, from m's own sampling noise).
    ``linear``: of the linear part alone."""
    U = np.asarray(U, dtype=np.float64)
    others = other_members(U.shape[1])
    num = den = 0.0
    for u in U:
        m = u[others].mean(axis=0)[1:]
        m_hat = (model.linear if linear else model.predict)(u[CONDITIONING])[1:]
        num += float(np.sum((m_hat - m) ** 2))
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
