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

Reproducibility across processes. FFTW_MEASURE times candidate algorithms, so two processes may
pick different ones and round differently; a chaotic run then drifts apart. FFTW's answer is
wisdom: the first plan of each size is remembered in a wisdom file (default
``~/.cache/hybrid-turbulence/fftw-wisdom``, or the path in ``$HYBRID_FFTW_WISDOM``; set it to
``off`` to disable), loaded before planning, so every later process on the machine plans the same
transforms and the same seed gives the same run bit for bit. Restart files and Dask tasks carry
the wisdom explicitly (``export_wisdom``/``import_wisdom``).
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pyfftw

_ALIGN = 64
_lock = threading.RLock()
_wisdom_loaded = False


def wisdom_path() -> Path | None:
    """The wisdom file of this machine, or None when ``$HYBRID_FFTW_WISDOM`` is 'off'."""
    env = os.environ.get("HYBRID_FFTW_WISDOM")
    if env is not None and env.strip().lower() in ("", "off", "0", "none"):
        return None
    if env:
        return Path(env)
    return Path.home() / ".cache" / "hybrid-turbulence" / "fftw-wisdom"


def _load_wisdom_file() -> None:
    """Import the wisdom file once per process (a missing or unreadable file is ignored)."""
    global _wisdom_loaded
    if _wisdom_loaded:
        return
    _wisdom_loaded = True
    path = wisdom_path()
    if path is None or not path.is_file():
        return
    try:
        parts = path.read_bytes().split(b"\0\0SPLIT\0\0")
        if len(parts) == 3:
            pyfftw.import_wisdom(tuple(parts))
    except (OSError, ValueError):
        pass


def _save_wisdom_file() -> None:
    """Write this process's wisdom (which includes the file's) atomically; failures are ignored:
    the cache only makes later processes faster and reproducible, it is never required."""
    path = wisdom_path()
    if path is None:
        return
    try:
        data = b"\0\0SPLIT\0\0".join(pyfftw.export_wisdom())
        if path.is_file() and path.read_bytes() == data:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".wisdom-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        pass


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
                 threads: int = 1, planner: str = "FFTW_MEASURE", real_fields=None):
        """``real_fields``: optional list of ``slots`` existing 64-byte-aligned (n, n) arrays to
        use as the real side instead of new buffers (then ``self.real`` is that list)."""
        self.n, self.slots, self.inverse = int(n), int(slots), bool(inverse)
        self.threads = _check_threads(threads)
        rdt = real_dtype(dtype)
        if real_fields is None:
            self.real = slot_array(self.slots, (self.n, self.n), rdt)
        else:
            if len(real_fields) != self.slots or any(
                    f.shape != (self.n, self.n) or f.dtype != rdt
                    or f.ctypes.data % _ALIGN for f in real_fields):
                raise ValueError(f"real_fields must be {self.slots} aligned ({self.n}, {self.n}) "
                                 f"{rdt} arrays")
            self.real = list(real_fields)
        self.spectral = slot_array(self.slots, (self.n, self.n // 2 + 1), complex_dtype(rdt))
        flags = (planner, "FFTW_DESTROY_INPUT")
        self._plans = []
        with _lock:                                       # FFTW's planner is not thread-safe
            _load_wisdom_file()
            before = pyfftw.export_wisdom()
            for k in range(self.slots):
                if inverse:
                    p = pyfftw.FFTW(self.spectral[k], self.real[k], axes=(0, 1),
                                    direction="FFTW_BACKWARD", flags=flags, threads=self.threads,
                                    normalise_idft=False)
                else:
                    p = pyfftw.FFTW(self.real[k], self.spectral[k], axes=(0, 1),
                                    direction="FFTW_FORWARD", flags=flags, threads=self.threads)
                self._plans.append(p)
            if pyfftw.export_wisdom() != before:
                _save_wisdom_file()
        # planning with MEASURE scribbles on the buffers
        for f in self.real:
            f[...] = 0
        self.spectral[...] = 0
        self._exec = [p.execute for p in self._plans]

    def execute(self, count: int | None = None) -> None:
        """Run the transform on the first ``count`` slots (all by default)."""
        for f in self._exec if count is None else self._exec[:count]:
            f()


def export_wisdom() -> tuple[bytes, bytes, bytes]:
    """FFTW wisdom of this process (double, single, long double), to restore identical plans."""
    return pyfftw.export_wisdom()


def import_wisdom(wisdom) -> None:
    """Load wisdom saved by :func:`export_wisdom`: later plans for those sizes pick the same
    algorithms, so a restarted run rounds exactly like the one that saved it."""
    with _lock:
        pyfftw.import_wisdom(tuple(bytes(w) for w in wisdom))
