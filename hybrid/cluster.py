"""Connecting to a Dask cluster for ensemble runs (:mod:`hybrid.ensemble`): an existing
scheduler, or a local cluster of worker processes started here."""

from __future__ import annotations

import logging

from solvers.validate import integer

DEFAULT_CONNECT_TIMEOUT = 10.0       # seconds to reach a Dask scheduler


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler given could not be reached in time."""


def connect(scheduler: str | None = None, workers: int | None = None,
            timeout: float = DEFAULT_CONNECT_TIMEOUT):
    """A Dask ``(client, cluster)``: connected to ``scheduler`` (cluster None), or to a new
    ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)`` on the loopback
    interface (close both when done). An unreachable scheduler raises
    :class:`SchedulerUnreachable` after ``timeout`` seconds."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:                                     # pragma: no cover
        raise ImportError(f"Dask runs need dask.distributed (pip install 'dask[distributed]'): "
                          f"{e}") from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=timeout, set_as_default=False), None
        except (OSError, TimeoutError, ValueError, RuntimeError) as e:
            raise SchedulerUnreachable(f"cannot connect to the Dask scheduler at {scheduler!r} "
                                       f"within {timeout:g} s: {e}") from None
    integer("workers", workers, 1)
    import dask
    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
    # dynamic mmap threshold: every large temporary array is then mmapped and page-faulted
    # afresh. Measured here it made a batch of 8 LES members at 64² ~35% slower; unset it.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return client, cluster
