"""Compare a coarse (hybrid / LES) run with a reference DNS: errors, energetics, spectra, PDFs and
cost.

``compare_runs(run, reference, out=None, delta=None)`` (and ``hybrid compare RUN REFERENCE``) reads
two trajectories written by :class:`solvers.io.TrajectoryWriter` — a run folder (``trajectory.nc``
and ``run.json`` as ``hybrid dns`` / ``hybrid run`` write them) or a trajectory file — and returns
(and writes to ``out/metrics.json``) a dictionary of metrics, with PNG figures beside it.

How the two are put side by side
--------------------------------
* Both must describe the same box (L), the same number of ensemble members and — not checked,
  but warned about when the first common record already differs a lot — the same initial
  conditions. Records are matched by time: a run record and a reference record are the same
  instant when their times differ by at most 1e-6 × the smallest record interval of the two files.
* The comparison lives on the run's grid. A reference on the same grid is compared as it is; a
  reference on a finer grid (n_ref a multiple of n_run) is coarse-grained record by record with
  :func:`solvers.filters.coarse_grain`: Gaussian filter exp(−Δ²|k|²/24) of width Δ (default twice
  the run's grid spacing) then truncation to the run grid's 2/3-rule modes — the field an LES
  on that grid is meant to carry. "Reference" below means this coarse-grained field; "reference
  DNS" means the reference at its own resolution.

Metrics (definitions are also written into ``metrics.json["definitions"]``)
-------------------------------------------------------------------------
* relative L2 error per member and lead time, ‖ω − ω_ref‖₂ / ‖ω_ref‖₂ over the grid points; the
  member mean of it; and the error of the ensemble mean, ‖⟨ω⟩ − ⟨ω_ref⟩‖₂ / ‖⟨ω_ref⟩‖₂ with ⟨·⟩ the
  mean over members (lead time = time − first common time).
* energy E = ½⟨|u|²⟩ and enstrophy Z = ½⟨ω²⟩ (box means, :mod:`solvers.diagnostics`) against time,
  member means, for run and reference (plus the values the reference file stores at its own
  resolution when present).
* isotropic energy spectra (shells Δk = 2π/L) averaged over members and the steady records (the
  last half of the common records, or those at t ≥ ``steady_from``); on the shells k_j = jΔk with
  j ≤ the run grid's dealiasing cutoff (n−1)//3: the signed relative error per shell
  (E − E_ref)/E_ref, its root mean square, and the RMS difference of log10 E (decades).
* one-point PDFs of vorticity pooled over members, grid points and steady records, histogrammed on
  a common binning; squared Hellinger distance H² = 1 − Σ_b √(p_b q_b) (computed as the equal
  ½ Σ_b (√p_b − √q_b)², which is exactly 0 for identical histograms and never negative), and the
  1-Wasserstein distance W1 = ∫ |F(x) − G(x)| dx of the two empirical CDFs.
* cost from each folder's ``run.json`` (:mod:`.cost`: the ``timings`` block that
  :mod:`hybrid.simulation` writes): wall seconds per simulated time unit and per member, split into
  solver and closure; the speed-up is the reference's wall time per simulated time unit per member
  over the run's.

Modules, one job each: :mod:`.sources` (the two inputs, checked, and their common times),
:mod:`.distances` (Hellinger, W1), :mod:`.cost` (run.json), :mod:`.metrics` (:func:`compare_runs`),
:mod:`.scores` (:func:`ensemble_scores` of a real ensemble), :mod:`.command` (``hybrid compare``);
the figures are drawn by :func:`hybrid.plots.plot_comparison`.
"""
from .command import configure_parser, format_table, run_cli
from .cost import run_cost
from .distances import hellinger, hellinger_from_probabilities, histogram_pair, wasserstein1
from .metrics import DEFINITIONS, OUTPUTS, compare_runs
from .scores import ensemble_scores
from .sources import CompareError

__all__ = ["CompareError", "compare_runs", "ensemble_scores", "format_table", "hellinger",
           "hellinger_from_probabilities", "wasserstein1", "histogram_pair", "run_cost",
           "configure_parser", "run_cli", "DEFINITIONS", "OUTPUTS"]
