"""One trajectory from the batch results of a Dask ensemble run (:func:`hybrid.ensemble.run_batch`),
written through the one trajectory writer, :class:`solvers.io.TrajectoryWriter`, with all members
in order and the same variables and attributes as a one-process run."""

from __future__ import annotations

import numpy as np

from solvers.io import TrajectoryWriter


class _GatheredRecords:
    """Stands in for a solver before :class:`TrajectoryWriter`: the configuration of the whole
    ensemble and one time level (``at(i)``) of the gathered batch records, members in order.
    Subclassed under the solver's class name (:func:`_records_class`) so that the file's
    ``solver``/``title`` attributes read as for a one-process run."""

    def __init__(self, template, members: int, config: dict, results: list[dict], records: int):
        self.grid = template.grid
        self.members = members
        self.kind = getattr(template, "kind", "unknown")
        self.seed = template.seed
        self.closure = template.closure
        self.closure_every = getattr(template, "closure_every", None)
        self._config = config
        self._results = results
        self.records = records
        self.at(0)

    def config(self) -> dict:
        return dict(self._config)

    def at(self, i: int) -> "_GatheredRecords":
        self._i = i
        first = self._results[0]
        self.t = float(first["time"][i]) if len(first["time"]) else 0.0
        self.step_count = int(first["step"][i]) if len(first["step"]) else 0
        return self

    def _cat(self, key: str) -> np.ndarray:
        return np.concatenate([r[key][:, self._i] for r in self._results], axis=0)

    @property
    def vorticity(self) -> np.ndarray:
        return self._cat("vorticity")

    def energy(self) -> np.ndarray:
        return self._cat("energy")

    def enstrophy(self) -> np.ndarray:
        return self._cat("enstrophy")

    def zonal_mean_u(self) -> np.ndarray:
        return self._cat("zonal_mean_u")


_RECORD_CLASSES: dict[str, type] = {}


def _records_class(name: str) -> type:
    cls = _RECORD_CLASSES.get(name)
    if cls is None:
        cls = type(name, (_GatheredRecords,), {"__module__": __name__})
        _RECORD_CLASSES[name] = cls
    return cls


def write_gathered_trajectory(path, template, members: int, results: list[dict],
                              records: int | None = None, overwrite: bool = False,
                              record: str = "full") -> int:
    """Write the batch results of :func:`run_batch` (sorted by first member, covering members
    0…members−1) as one trajectory at ``path``, with :class:`TrajectoryWriter` (``record``: what
    the results hold, 'full' or 'zonal-mean'). ``template`` is a solver of the ensemble's
    configuration (any member count). Returns the records written."""
    results = sorted(results, key=lambda r: r["first_member"])
    m = 0
    for r in results:
        if r["first_member"] != m:
            raise ValueError(f"batch results do not cover the members in order: expected member "
                             f"{m}, got a batch starting at {r['first_member']}")
        m += r["members"]
    if m != members:
        raise ValueError(f"batch results hold {m} members; expected {members}")
    common = min(len(r["time"]) for r in results)
    records = common if records is None else min(records, common)
    for r in results[1:]:
        if not (np.array_equal(r["step"][:records], results[0]["step"][:records])
                and np.array_equal(r["time"][:records], results[0]["time"][:records])):
            raise ValueError(f"batch starting at member {r['first_member']} recorded other times "
                             f"than the batch starting at member 0; batches must step alike "
                             f"(a fixed dt)")
    config = dict(template.config(), members=members, first_member=0)
    src = _records_class(type(template).__name__)(template, members, config, results, records)
    with TrajectoryWriter(path, src, overwrite=overwrite, record=record) as w:
        for i in range(records):
            w.write(src.at(i))
    return records
