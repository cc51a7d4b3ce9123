"""Jet diagnostics of zonal-mean profiles U(y, t), for any pair of runs (DNS or emulator): a run
against a reference.

The core works on numpy arrays U (member, time, y) at evenly spaced record times t in a periodic
box of side L, so every function can be used without files:

* :mod:`.statistics` — PDFs of U, ∂yU (spectral) and ∂tU (forward difference over the save
  interval) on bins fixed from the reference (``bins`` equal bins over its range widened by
  ``margin`` of it on each side; values outside go to the end bins), the Hellinger distance
  H² = ½ Σ (√p − √q)² of each and its floor between two halves of the reference; the time-mean
  spectrum ⟨|Û_m|²⟩ and the energy ½⟨U²⟩_y over time.
* :mod:`.counting` — the jet count (spectral Gaussian smoothing of width k_s in units of 2π/L,
  evaluated on a fixed grid, peaks with prominence ≥ a fraction of the profile's rms and U > 0),
  episodes under a persistence rule, merging and nucleation events, the fraction of time in each
  jet number and residence times with bootstrap 95 % intervals.
* :mod:`.scores` — an ensemble from one state against the truth: fair CRPS split into its error
  and spread parts, the spread–error ratio, the rank histogram and its chi-square p-value (and
  the same pooled over several starts, :func:`pool_scores`); the two-sample Kolmogorov–Smirnov
  test of the times to a first event (:func:`first_events`) in two ensembles from one state.
* :mod:`.report` — :func:`jet_statistics` (everything above for a run and a reference),
  :func:`read_profiles` (a trajectory's ``zonal_mean_u`` through :func:`solvers.io.open_trajectory`)
  and the markdown table; :mod:`.command` — ``hybrid jets RUN REFERENCE`` (:func:`jets_files`);
  :mod:`.sweep` (imported on its own: it runs an emulator) — ``hybrid jets --sweep MODEL``: a
  conditioned emulator's mean jet number and merging and nucleation rates across a parameter
  range, against DNS runs (:func:`~.sweep.sweep_files`, :func:`~.sweep.jet_rates`).

The figures are drawn by :mod:`hybrid.plots`. Definitions, bins and rules: docs/jet-diagnostics.md.
"""
from .command import DEFINITIONS, OUTPUTS, configure_parser, jets_files, run_cli
from .counting import (count_jets, episodes, eval_points, events, first_events, fractions,
                       jet_positions, residence_times, smooth_profiles, time_to_event)
from .report import JetsError, jet_statistics, markdown_table, read_profiles
from .scores import (chi2_sf, crps_parts, ensemble_scores, ks_two_sample, pool_scores,
                     rank_flatness, rank_histogram, spread_error)
from .statistics import (d_dt, d_dy, fixed_bins, pdf, pdf_distances, save_interval, spectrum,
                         split_halves, zonal_energy)

__all__ = ["DEFINITIONS", "OUTPUTS", "configure_parser", "jets_files", "run_cli", "count_jets",
           "episodes", "eval_points", "events", "fractions", "jet_positions", "residence_times",
           "smooth_profiles", "JetsError", "jet_statistics", "markdown_table", "read_profiles",
           "chi2_sf", "crps_parts", "ensemble_scores", "rank_histogram", "spread_error", "d_dt",
           "d_dy", "fixed_bins", "pdf", "pdf_distances", "save_interval", "spectrum",
           "split_halves", "zonal_energy", "first_events", "time_to_event", "ks_two_sample",
           "pool_scores", "rank_flatness"]
