"""Closure datasets: coarse-grained DNS and the exact subgrid term, written to netCDF4.

``hybrid generate PRESET --samples N --out FILE`` (or :func:`generate_dataset`) runs the preset's
DNS ensemble (``members`` independent members, seeded by ``seed``), discards a spin-up, then at the
sampling times t_k = spinup + k·interval (k = 0, 1, …; the first one is the end of the spin-up)
stores, for every member, a pair of physical fields on the LES grid:

* ``target='subgrid'`` (default): ω̄ = T(G ω) and the exact subgrid term Π = T(G N(ω)) − N(ω̄),
  N(ω) = u·∇ω, from :func:`solvers.filters.subgrid_term` (Gaussian filter
  Ĝ = exp(−Δ²|k|²/24) of width Δ, default 2·(LES dx); truncation T to the LES grid's 2/3-rule
  modes). The filtered equation reads ∂t ω̄ + N(ω̄) = (filtered sources) − Π, so **the closure
  tendency an LES needs is C = −Π**: ``subgrid`` holds Π, ``closure_sign = -1``.
* ``target='missing-physics'`` (the latent score-based closure paper's setting, meant for
  ``ns-unitbox``): ``omega_bar`` holds the coarse vorticity and ``subgrid`` the whole advection
  term H = −u·∇ω of the DNS, both subsampled to the LES points
  (:func:`solvers.filters.missing_physics_target`). A coarse solver with its own advection switched
  off needs C = +H: ``closure_sign = +1``.

In both cases ``C = closure_sign · subgrid``; the file says so in its attributes.

Split. The sampling times are divided into three blocks in time order, training, validation and
test (``split``, fractions, default :data:`closures.dataset_file.DEFAULT_SPLIT` = 0.7, 0.15,
0.15; block sizes from :func:`closures.dataset_file.time_split` over the requested sampling
times), recorded as ``split_fractions`` and the first time of the validation and test blocks
(``split_validation_from``, ``split_test_from``; times added by extending the file fall in the
test block). :class:`closures.data.ClosureDataset` reads them: training and calibration use the
first two blocks only, every reported number the test block. ``split=(0, 0, 1)`` makes a file
that is all test (e.g. an independent DNS with another seed for a shipped model).

File layout (netCDF4; read it with :func:`open_dataset`, the one reader, in
:mod:`closures.dataset_file` with the format's name, version and split)::

    dims       sample (unlimited), y, x                      (the LES grid)
    omega_bar  (sample, y, x)  float32   filtered / coarse vorticity
    subgrid    (sample, y, x)  float32   Π (subgrid) or H (missing-physics); C = closure_sign·subgrid
    member     (sample)        int32     ensemble member the sample comes from
    time       (sample)        float64   DNS time of the sample
    step       (sample)        int64     DNS step count of the sample
    x, y       (x), (y)        float64   LES grid coordinates
    attributes dataset_format, format_version, preset, preset_json, dns_solver, dns_config,
               les_config (JSON), initial_json, filter, filter_width, filter_transfer, truncation,
               coarsening_factor, n_dns, n_les, L, target, closure_sign, closure_term, seed,
               members, interval, spinup, samples_requested, sampling_times_requested,
               samples_complete, sampling_times_complete, split_fractions,
               split_validation_from, split_test_from, run_id, restart_file,
               package_version, created, updated

Samples are ordered by sampling time, then member: sample i = k·members + m. The number of samples
is always a whole number of sampling times: ``samples`` that is not a multiple of ``members`` is
rounded up (``hybrid generate`` says so). ``les_config`` is the LES solver's ``config()`` without
the per-run keys (members, seed, first_member), i.e. what ``Preset.make_solver('les', n=n_les)``
rebuilds.

Consecutive samples (``consecutive`` K > 1, ``hybrid generate --consecutive K``): at every
sampling time the DNS also runs on to t_k + j·Δ, j = 1 … K − 1, Δ = ``refresh_every``·dt_LES (the
LES closure's refresh interval, a whole number of DNS steps), and stores the pairs there too,
marked ``sequence`` = k and ``position`` = j (variables added only when K > 1, with the attributes
``consecutive``, ``refresh_every``, ``refresh_interval`` and ``les_dt``): each member's K samples
are a history of the LES's refreshes (:meth:`closures.data.ClosureDataset.windows`). K = 1 writes
exactly the file without them. Samples are then ordered sample i = (k·K + j)·members + m.

Modules, one job each: :mod:`.schema` (names, errors, the file's attributes), :mod:`.plan`
(arguments and an existing file checked, solvers built, before anything is written),
:mod:`.files` (the new file, the restart beside it), :mod:`.generation` (the DNS run and the
samples written), :mod:`.reader` (the header a generator continues, the preset check for
trainers), :mod:`.command` (``hybrid generate``).
"""
from .command import configure, handler
from .generation import generate_dataset
from .reader import check_dataset_matches, open_dataset
from .schema import (DATASET_FORMAT, TARGETS, DatasetFileError, DatasetMismatchError,
                     restart_path)

__all__ = ["generate_dataset", "open_dataset", "check_dataset_matches", "restart_path",
           "DatasetFileError", "DatasetMismatchError", "DATASET_FORMAT", "TARGETS", "configure",
           "handler"]
