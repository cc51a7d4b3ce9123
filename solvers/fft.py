"""Planned pyFFTW transforms over the last two axes of batched n×n fields. The only pyFFTW user.

Each field slot of a batch has its own FFTW plans for one n×n transform (one 2D plan, or two 1D
plans when pruned to the dealiased box), all planned from the same wisdom, and the batch is
executed slot by slot. Why not one "howmany" plan: FFTW may pick a different algorithm (and so a
different round-off) for a batch of 8 than for 1, which would break
"a batched run equals M single runs, bit for bit" and Dask runs that split members into other
batches; and measured here, slot-by-slot is as fast as batched plans for n ≤ 256 and faster at 512²
(batched plans lose the cache). Slots are padded to 64-byte boundaries so every plan sees the same
alignment.

Threads. Where each of ``threads`` groups of slots holds at least ``MIN_GROUP_POINTS`` grid
points, the slots are split into ``threads`` contiguous groups run side by side (pyFFTW releases
the GIL while a plan executes), each slot on its one-thread plans. Otherwise transforms of
n ≥ ``MIN_THREADED_N`` use FFTW's own threads inside each plan, and smaller ones one thread (a
hand-off costs more than it saves there). Why: the slot plans are small, and FFTW's threads
inside one n×n transform cost more than they save at 64² (64 members, 2 threads: 463 against
313 µs per step per member with one thread, 2026-11-22) and save little at 256². Slot groups
also keep every member's transforms the one-thread plans, so a run with two threads equals the
one-thread run bit for bit.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyfftw

from .validate import integer

_ALIGN = 64
_lock = threading.RLock()
_wisdom_loaded = False
_pools: dict[int, ThreadPoolExecutor] = {}
MIN_GROUP_POINTS = 2 ** 17      # grid points per slot group worth a thread hand-off
MIN_THREADED_N = 256            # smallest n whose single transforms use FFTW's threads


# a forked child has none of its parent's pool threads: start its own pools
os.register_at_fork(after_in_child=_pools.clear)


def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads for slot groups (shared by all transforms)."""
    with _lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="fft-slots")
        return _pools[workers]


def _run(calls) -> None:
    for f in calls:
        f()


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
    return min(integer("threads", threads, 1), max(multiprocessing.cpu_count(), 1) * 4)


class BatchedRealFFT:
    """Forward (r2c) or inverse (c2r) transforms of ``slots`` n×n fields through planned buffers.

    ``real`` (slots, n, n) and ``spectral`` are the bound buffers: fill the input one, call
    :meth:`execute` (or ``execute(k)`` for the first k slots), read the other.

    ``spectral`` is (slots, n, n//2+1). ``kmax=None``: full 2D transforms. ``kmax`` given:
    transforms pruned to the 2/3-rule box |m_x|, |m_y| ≤ kmax of dealiased fields, as two 1D
    passes per slot, so the columns m_x > kmax (a third of them) skip the pass along y:

    * inverse: a c2c along y in place on the columns m_x ≤ kmax, then a c2r along x. The columns
      m_x > kmax of the input must be zero (they skip the first pass).
    * forward: an r2c along x, then a c2c along y in place on the columns m_x ≤ kmax. Only those
      columns hold the 2D transform: the caller must ignore (or mask) the rest.

    The c2r transform destroys its input buffer (FFTW's multi-dimensional c2r always may; the
    pruned one is planned with FFTW_DESTROY_INPUT too, measured faster than preserving it even
    counting the rewrite of the zeros), and the r2c may destroy ``real``.

    Why two hand-made 1D passes and not FFTW's 2D plan: FFTW does not prune. Measured here
    (2-core Xeon, 1 thread, 256², float64, in the solver): the pruned forward takes about 0.82 of
    the full 2D one, the pruned inverse 0.95–1; a solver step went from 4.96 to 4.34 full-FFT
    floors (``benchmarks/ab_solver_cost.py``).
    """

    def __init__(self, n: int, slots: int, dtype="float64", inverse: bool = False,
                 threads: int = 1, planner: str = "FFTW_MEASURE", real_fields=None,
                 kmax: int | None = None, spectral_fields=None):
        """``real_fields``/``spectral_fields``: optional lists of ``slots`` existing 64-byte-aligned
        (n, n) real / (n, n//2+1) complex arrays to use instead of new buffers (then ``self.real``
        / ``self.spectral`` is that list); they are zeroed. ``kmax``: prune to the dealiased box
        (see the class docstring), 0 ≤ kmax < n//2."""
        self.n, self.slots, self.inverse = int(n), int(slots), bool(inverse)
        self.threads = _check_threads(threads)
        # slot groups side by side, FFTW's threads inside each plan, or one thread (module
        # docstring)
        group_points = (self.slots // self.threads) * self.n ** 2
        self.slot_parallel = 1 < self.threads <= self.slots and group_points >= MIN_GROUP_POINTS
        inner = self.threads > 1 and not self.slot_parallel and self.n >= MIN_THREADED_N
        self._plan_threads = self.threads if inner else 1
        nk = self.n // 2 + 1
        self.kmax = integer("kmax", kmax, 0, self.n // 2 - 1, allow_none=True)
        rdt, cdt = real_dtype(dtype), complex_dtype(dtype)
        self.real = self._buffers(real_fields, (self.n, self.n), rdt, "real_fields")
        self.spectral = self._buffers(spectral_fields, (self.n, nk), cdt, "spectral_fields")
        with _lock:                                       # FFTW's planner is not thread-safe
            _load_wisdom_file()
            before = pyfftw.export_wisdom()
            plans = [self._slot_plans(k, planner) for k in range(self.slots)]
            if pyfftw.export_wisdom() != before:
                _save_wisdom_file()
        # planning with MEASURE scribbles on the buffers
        for f in (*self.real, *self.spectral):
            f[...] = 0
        self._per_slot = len(plans[0])
        self._exec = [p.execute for slot in plans for p in slot]

    def _buffers(self, fields, shape: tuple[int, int], dtype, name: str) -> list | np.ndarray:
        """New aligned slots of ``shape``, or the validated existing ``fields``."""
        if fields is None:
            return slot_array(self.slots, shape, dtype)
        if len(fields) != self.slots or any(
                f.shape != shape or f.dtype != dtype or f.ctypes.data % _ALIGN for f in fields):
            raise ValueError(f"{name} must be {self.slots} aligned {shape} {dtype} arrays")
        return list(fields)

    def _slot_plans(self, k: int, planner: str) -> list:
        """The plans of slot k in execution order: one 2D plan, or two 1D plans when pruned."""
        destroy = (planner, "FFTW_DESTROY_INPUT")
        kw = dict(threads=self._plan_threads)
        back = dict(direction="FFTW_BACKWARD", normalise_idft=False, **kw)
        real, spec = self.real[k], self.spectral[k]
        if self.kmax is None:
            if self.inverse:
                return [pyfftw.FFTW(spec, real, axes=(0, 1), flags=destroy, **back)]
            return [pyfftw.FFTW(real, spec, axes=(0, 1), direction="FFTW_FORWARD", flags=destroy,
                                **kw)]
        cols = spec[:, :self.kmax + 1]
        if self.inverse:
            return [pyfftw.FFTW(cols, cols, axes=(0,), flags=destroy, **back),
                    pyfftw.FFTW(spec, real, axes=(1,), flags=destroy, **back)]
        return [pyfftw.FFTW(real, spec, axes=(1,), direction="FFTW_FORWARD", flags=destroy, **kw),
                pyfftw.FFTW(cols, cols, axes=(0,), direction="FFTW_FORWARD", flags=destroy, **kw)]

    def execute(self, count: int | None = None) -> None:
        """Run the transform on the first ``count`` slots (all by default)."""
        k = self.slots if count is None else int(count)
        calls = self._exec if count is None else self._exec[:k * self._per_slot]
        groups = min(self.threads, k) if self.slot_parallel else 1
        if groups < 2:
            _run(calls)
            return
        per = self._per_slot
        edges = [(k * g // groups) * per for g in range(groups + 1)]
        pool = _pool(self.threads - 1)
        futures = [pool.submit(_run, calls[a:b]) for a, b in zip(edges[1:-1], edges[2:])]
        _run(calls[:edges[1]])                          # the first group in this thread
        for f in futures:
            f.result()


def export_wisdom() -> tuple[bytes, bytes, bytes]:
    """FFTW wisdom of this process (double, single, long double), to restore identical plans."""
    return pyfftw.export_wisdom()


def import_wisdom(wisdom) -> None:
    """Load wisdom saved by :func:`export_wisdom` so that it wins: later plans for those sizes
    pick its algorithms, and a restarted run rounds exactly like the one that saved it.

    FFTW keeps the entry it learnt first when an import holds another for the same problem
    (measured with pyFFTW 0.15/FFTW 3.3.5), so the machine's wisdom file is loaded first (once per
    process, as planning would), the process's wisdom is set aside, ``wisdom`` is imported into an
    empty store, and the set-aside wisdom then only adds the problems ``wisdom`` does not know."""
    new = tuple(bytes(w) for w in wisdom)
    with _lock:
        _load_wisdom_file()
        held = pyfftw.export_wisdom()
        pyfftw.forget_wisdom()
        pyfftw.import_wisdom(new)
        pyfftw.import_wisdom(held)
