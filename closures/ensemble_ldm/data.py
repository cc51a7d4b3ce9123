"""Training data of the ensemble generator: DNS ensembles of U(y, t) from common states.

A start is one ensemble run from one state (``hybrid dns PRESET --record zonal-mean --init FILE
--at T --members M --seed S``): ``zonal_mean_u (member, time, y)``, record 0 the common state,
the members differing only by their forcing noise afterwards. Member :data:`CONDITIONING` (0) of
each start is the conditioning run, the others are the members whose residuals are learned.

:func:`read_starts` reads a list of such files (one start each; a single path is a list of one)
or takes an array (starts, members, times, n), and checks that every start has the same members,
records, points and save interval, and that its members agree at record 0.
:func:`split_starts` holds out the last starts for validation. :class:`Profiles` and
:class:`ResidualWindows` are the samples of the two training phases.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ..slt.train import read_profiles

__all__ = ["read_starts", "split_starts", "conditioning_array", "other_members", "Profiles",
           "ResidualWindows", "CONDITIONING",
           "START_RTOL"]

CONDITIONING = 0         # the member of each start that conditions the others
START_RTOL = 1e-6        # members agree at record 0 to this fraction of the profile's rms


def _common_start(u: np.ndarray) -> bool:
    a = u[:, 0]
    scale = float(np.sqrt(np.mean(a ** 2))) or 1.0
    return float(np.max(np.abs(a - a[0]))) <= START_RTOL * scale


def other_members(members: int) -> list[int]:
    """The members of a start other than the conditioning run :data:`CONDITIONING`."""
    return [k for k in range(members) if k != CONDITIONING]


def conditioning_array(U, points: int, min_times: int = 1) -> np.ndarray:
    """A conditioning run's profiles U_c as float64 (times, ``points``), else ValueError naming
    ``conditioning_U``: at least ``min_times`` records, finite."""
    u = np.asarray(U, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] != points or u.shape[0] < min_times:
        raise ValueError(f"conditioning_U must have shape (times ≥ {min_times}, {points}), got "
                         f"{u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("conditioning_U must be finite")
    return u


def read_starts(data) -> tuple[np.ndarray, dict]:
    """(U as float64 (starts, members, times, n), a description for the card) from a path or a
    list of paths of zonal-mean records, or an array (starts, members, times, n) (module
    docstring). ValueError naming the file or the array for anything unusable."""
    if isinstance(data, (str, os.PathLike)):
        data = [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike))
                                                         for p in data):
        arrays, intervals, files = [], [], []
        for p in data:
            u, desc = read_profiles(p)
            arrays.append(u)
            intervals.append(desc["interval"])
            files.append(desc["file"])
        first = arrays[0].shape
        for f, u in zip(files, arrays):
            if u.shape != first:
                raise ValueError(f"data: {f} holds (members, times, points) = {u.shape}; "
                                 f"{files[0]} holds {first}: every start needs the same")
        if any(i is None for i in intervals) or not np.allclose(intervals, intervals[0],
                                                                rtol=1e-6):
            raise ValueError(f"data: the files' save intervals differ or are unknown "
                             f"({intervals})")
        U = np.stack(arrays)
        desc = {"files": files, "interval": float(intervals[0])}
    else:
        U = np.asarray(data, dtype=np.float64)
        files, desc = None, {"array": True, "interval": None}
        if U.ndim != 4:
            raise ValueError(f"data must be run files or an array (starts, members, times, n), "
                             f"got shape {U.shape}")
        if not np.isfinite(U).all():
            raise ValueError("data holds non-finite values")
    S, M, T, n = U.shape
    if M < 2:
        raise ValueError(f"data: every start needs a conditioning run and at least one more "
                         f"member, got {M} member(s)")
    if T < 2:
        raise ValueError(f"data: every start needs at least two records, got {T}")
    for s in range(S):
        if not _common_start(U[s]):
            where = files[s] if files else f"start {s} of the array"
            raise ValueError(f"data: the members of {where} differ at their first record; "
                             f"the generator learns ensembles from one state (hybrid dns "
                             f"--init FILE --at T --members M)")
    desc.update(starts=S, members=M, times=T, points=n, conditioning_member=CONDITIONING)
    return U, desc


def split_starts(U: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) starts: the last round(val_fraction·S) starts validate, at least
    one start trains."""
    S = U.shape[0]
    n_val = min(int(round(val_fraction * S)), S - 1)
    return U[:S - n_val], U[S - n_val:]


class Profiles:
    """Every profile of normalised starts (S, M, T, n) as a sample of the VAE phase: ``len`` and
    ``batch(idx)`` → float32 (B, n)."""

    def __init__(self, u: np.ndarray):
        self.flat = torch.as_tensor(u.reshape(-1, u.shape[-1]), dtype=torch.float32)

    def __len__(self) -> int:
        return self.flat.shape[0]

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        return self.flat[idx]


class ResidualWindows:
    """The samples of the diffusion phase from latents z (S, M, T, m) of normalised starts:
    for every start s, member j ≠ :data:`CONDITIONING` and first target step t = 1 … T − H, the
    K residuals r = z_j − z_c before t, the H from t on, and z_c over the K + H steps; steps
    before 0 take step 0 (r(0) = 0 at a common start; module docstring of
    :mod:`closures.ensemble_ldm.model`). ``batch(idx)`` → (context (B, K, m), target (B, H, m),
    cond (B, K + H, m))."""

    def __init__(self, z: torch.Tensor, context: int, horizon: int):
        S, M, T, m = z.shape
        self.zc = z[:, CONDITIONING]                                       # (S, T, m)
        others = other_members(M)
        self.res = z[:, others] - self.zc[:, None]                          # (S, M−1, T, m)
        self.K, self.H = int(context), int(horizon)
        self.per = max(0, T - self.H)                                       # t = 1 … T − H
        self.members = len(others)
        self.count = self.count_for(z.shape, self.H)
        self.offsets = torch.arange(-self.K, self.H)

    @staticmethod
    def count_for(shape: tuple[int, ...], horizon: int) -> int:
        """The number of samples of latents of shape (S, M, T, …): S·(M − 1)·max(0, T − H)."""
        S, M, T = shape[:3]
        return S * (M - 1) * max(0, T - int(horizon))

    def __len__(self) -> int:
        return self.count

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = idx // (self.members * self.per)
        j = (idx // self.per) % self.members
        t = 1 + idx % self.per
        steps = (t[:, None] + self.offsets).clamp(min=0)                    # (B, K+H)
        r = self.res[s[:, None], j[:, None], steps]
        return r[:, :self.K], r[:, self.K:], self.zc[s[:, None], steps]

    def residuals(self) -> torch.Tensor:
        """Every residual after the start (S, M − 1, T − 1, m)."""
        return self.res[:, :, 1:]
