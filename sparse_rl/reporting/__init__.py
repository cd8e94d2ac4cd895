"""``sparse-rl report``: aggregate runs into curves, rliable metrics and tables.

>>> runs = load_runs(["results/walker"])                     # doctest: +SKIP
>>> write_report(runs, "results/walker/report", reps=2000)    # doctest: +SKIP

The rules a report follows (score, normalisation, unequal seeds) are in
:mod:`sparse_rl.reporting.summary`; each report states the ones that applied to it.
"""

from __future__ import annotations

from .cli import add_report_arguments, run_report
from .report import REPORT_FILES, write_report
from .runs import DEFAULT_MODE, Curve, ReportError, RunRecord, load_runs
from .summary import Summary, bootstrap_mean_ci, on_dmc_scale, summarize

__all__ = [
    "DEFAULT_MODE",
    "REPORT_FILES",
    "Curve",
    "ReportError",
    "RunRecord",
    "Summary",
    "add_report_arguments",
    "bootstrap_mean_ci",
    "load_runs",
    "on_dmc_scale",
    "run_report",
    "summarize",
    "write_report",
]
