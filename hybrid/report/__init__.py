"""The cost-vs-DNS report (`hybrid bench`): what a coarse run plus a closure costs and loses.

For one preset (``kolmogorov`` by default):

1. DNS reference on ``dns_n[0]``: ``members`` independent flows from the preset's random initial
   fields drawn with ``seed``, spun up for ``spinup`` time units, then run for ``t`` time units with records every ``output_every``. While it runs,
   a recorder (a closure that returns zeros, so the trajectory is bit-identical to one without it)
   stores the exact subgrid term Π = T(G N(ω)) − N(ω̄) on the LES grid at every closure refresh
   time of the LES: the oracle's data.
2. The other DNS grids and steps (``dns_n[1:]``, e.g. 512²) are run for ``cost_t`` time units from
   the same kind of initial field, for their cost only; so is the DNS at the grid and time step
   that made the learned closures' training data (their model card), when no row has it already.
3. LES on ``les_n`` from the coarse-grained DNS state at the end of the spin-up (Gaussian filter
   Δ = 2·dx_LES, truncation), with each closure: none, Smagorinsky, Leith, dynamic Smagorinsky,
   the oracle (replaying C = −Π), the L-CDM's mean network alone ('ldm-mean') and the shipped
   diffusion closures 'ldm' (L-CDM) and 'pcdm' (P-CDM),
   refreshed every ``every`` LES steps — or every k steps for an entry written ``'name@k'``
   (``'ldm@1'``, ``'ldm@10'``); options of a diffusion closure follow after slashes
   (``'ldm@5/steps=5/precision=bfloat16'``; ``hybrid bench --rows``).
4. :func:`hybrid.compare.compare_runs` of each LES against the DNS reference. The members are
   independent flows, so the table reports per-member errors (mean ± standard error over the
   members), never the error of a mean over different flows.
5. Real ensembles (``ensemble_members`` members from one start, the coarse-grained state of DNS
   member 0) for each stochastic closure of ``ensemble_rows``, scored against that DNS member by
   :func:`hybrid.compare.ensemble_scores` (when the closure is also a row): ensemble-mean error, spread–error ratio and CRPS over
   lead time; beside them the deterministic rows' member-0 run from the same start (its CRPS is
   its mean absolute error).

Test states only. The online runs start from a DNS with its own ``seed``; a learned closure whose
training data (model card) came from a DNS with the same seed and preset would start from states
of its own training period, so :meth:`ReportConfig.check` refuses that seed (default seed 1; the
shipped models were trained on seed 0).

The report is a markdown table (cost per simulated time unit per member, speed-up over each DNS,
closure share, errors), the ensemble table, a cost-vs-error figure and final snapshots.

Cost is read from each run's ``run.json`` (:func:`hybrid.compare.run_cost`, the numbers
``hybrid compare`` reports): wall seconds per simulated time unit per member, everything included
(closure, trajectory records); for the reference DNS without its recorder's time (the recorder is
that run's closure). The DNS rows of other grids or steps are timed directly (steady stepping, no
output).
"""
from .command import configure, handler
from .config import (CLOSURES, DEFAULT_ROWS, DEMO_ROWS, LEARNED, STOCHASTIC, ReportConfig,
                     parse_entry)
from .runs import Row, SubgridRecorder, build_report
from .table import format_report

__all__ = ["ReportConfig", "build_report", "format_report", "parse_entry", "configure", "handler",
           "SubgridRecorder", "Row", "CLOSURES", "LEARNED", "STOCHASTIC", "DEFAULT_ROWS",
           "DEMO_ROWS"]
