"""netCDF4 files of the solvers: trajectories (:mod:`.writer`), restart files (:mod:`.restart`)
and what both look like (:mod:`.schema`).

Trajectories are read back with :func:`open_trajectory`, the one reader of the format: it
checks the file and shows its complete records only (plain ``xarray.open_dataset`` would also
show a partial last record, fill values for time and energy, left by a writer killed inside a
write). A trajectory records either the full vorticity or, with ``record='zonal-mean'``, only the
zonal-mean velocity U(y) (``zonal_mean_u``) with energy and enstrophy; readers that need the
vorticity pass ``need='vorticity'`` and get a clear error for the second kind. Readers run under HDF5 file locking: while a writer holds a trajectory open, another
process may need ``HDF5_USE_FILE_LOCKING=FALSE`` in its environment to read it.
"""
from ..files import nearest_existing
from ..registry import register_solver
from .restart import check_closure, load_restart, read_restart, write_restart
from .schema import (RECORDS, RestartFileError, RestartWriteError, TrajectoryFileError,
                     check_record, open_netcdf, trajectory_record)
from .writer import TrajectoryWriter, open_trajectory

__all__ = ["TrajectoryWriter", "open_trajectory", "write_restart", "read_restart", "load_restart",
           "check_closure", "register_solver", "TrajectoryFileError", "RestartFileError",
           "RestartWriteError", "nearest_existing", "open_netcdf", "RECORDS", "check_record",
           "trajectory_record"]
