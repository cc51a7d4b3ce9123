"""Planned pyFFTW transforms over the last two axes of batched n×n fields. The only pyFFTW user.

Each field slot of a batch has its own FFTW plan for one n×n transform, all planned from the same
wisdom, and the batch is executed slot by slot. Why not one "howmany" plan: FFTW may pick a
different algorithm (and so a different round-off) for a batch of 8 than for 1, which would break
"a batched run equals M single runs, bit for bit" and Dask runs that split members into other
batches; and measured here, slot-by-slot is as fast as batched plans for n ≤ 256 and faster at 512²
(batched plans lose the cache). Slots are padded to 64-byte boundaries so every plan sees the same
alignment.

Transforms are unnormalised: forward ``f̂ = Σ f e^{-ik·x}``; inverse ``f = Σ f̂ e^{ik·x}`` (no 1/n²),
so callers fold the 1/n² into their pointwise kernels.
"""
from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pyfftw

_ALIGN = 64
_lock = threading.Lock()


def real_dtype(dtype) -> np.dtype:
    """Validate a real floating dtype name ('float64' or 'float32') and return it."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


def complex_dtype(dtype) -> np.dtype:
    return np.dtype(np.complex128) if real_dtype(dtype) == np.float64 else np.dtype(np.complex64)


def slot_array(slots: int, shape: tuple[int, int], dtype) -> np.ndarray:
    """An array of ``slots`` fields of ``shape``, each field starting on a 64-byte boundary.

    Returned as a (possibly non-contiguous) view ``(slots, *shape)`` of one aligned buffer.
    """
    dtype = np.dtype(dtype)
    field_bytes = shape[0] * shape[1] * dtype.itemsize
    stride = -(-field_bytes // _ALIGN) * _ALIGN
    buf = pyfftw.empty_aligned(max(slots, 1) * stride, dtype=np.uint8, n=_ALIGN)
    view = np.ndarray((slots, *shape), dtype=dtype, buffer=buf,
                      strides=(stride, shape[1] * dtype.itemsize, dtype.itemsize))
    view[...] = 0
    return view


def _check_threads(threads: int) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    return int(min(threads, max(multiprocessing.cpu_count(), 1) * 4))


class BatchedRealFFT:
    """Forward (r2c) or inverse (c2r) transforms of ``slots`` n×n fields through planned buffers.

    ``real`` (slots, n, n) and ``spectral`` (slots, n, n//2+1) are the bound buffers: fill the input
    one, call :meth:`execute` (or ``execute(k)`` for the first k slots), read the other.
    The c2r transform destroys its input buffer (FFTW's multi-dimensional c2r always may).
    """

    def __init__(self, n: int, slots: int, dtype="float64", inverse: bool = False,
                 threads: int = 1, planner: str = "FFTW_MEASURE"):
        self.n, self.slots, self.inverse = int(n), int(slots), bool(inverse)
        self.threads = _check_threads(threads)
        rdt = real_dtype(dtype)
        self.real = slot_array(self.slots, (self.n, self.n), rdt)
        self.spectral = slot_array(self.slots, (self.n, self.n // 2 + 1), complex_dtype(rdt))
        flags = (planner, "FFTW_DESTROY_INPUT")
        self._plans = []
        with _lock:                                       # FFTW's planner is not thread-safe
            for k in range(self.slots):
                if inverse:
                    p = pyfftw.FFTW(self.spectral[k], self.real[k], axes=(0, 1),
                                    direction="FFTW_BACKWARD", flags=flags, threads=self.threads,
                                    normalise_idft=False)
                else:
                    p = pyfftw.FFTW(self.real[k], self.spectral[k], axes=(0, 1),
                                    direction="FFTW_FORWARD", flags=flags, threads=self.threads)
                self._plans.append(p)
        # planning with MEASURE scribbles on the buffers
        self.real[...] = 0
        self.spectral[...] = 0
        self._exec = [p.execute for p in self._plans]

    def execute(self, count: int | None = None) -> None:
        """Run the transform on the first ``count`` slots (all by default)."""
        for f in self._exec[: self.slots if count is None else count]:
            f()


def export_wisdom() -> tuple[bytes, bytes, bytes]:
    """FFTW wisdom of this process (double, single, long double), to restore identical plans."""
    return pyfftw.export_wisdom()


def import_wisdom(wisdom) -> None:
    """Load wisdom saved by :func:`export_wisdom`: later plans for those sizes pick the same
    algorithms, so a restarted run rounds exactly like the one that saved it."""
    with _lock:
        pyfftw.import_wisdom(tuple(bytes(w) for w in wisdom))


def forget_wisdom() -> None:
    with _lock:
        pyfftw.forget_wisdom()
