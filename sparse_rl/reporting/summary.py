"""The numbers of a report: per-task finals, curve bands and rliable's aggregate metrics.

Decisions, each also stated in the report it applies to:

- score of a run = its return at its last evaluation;
- normalisation: a caller's ``(low, high)`` for an env wins; DMC tasks (``"domain-task"`` ids)
  are divided by 1000 (their maximum return); aggregates are on normalised scores only when every
  aggregated task has a range, otherwise on raw returns with the optimality gap (a gap to a score
  of 1) left out;
- aggregates cover the tasks every method has; a method with fewer runs on some task than on
  others uses, on every task, its lowest-seeded ``min`` runs, because rliable's stratified
  bootstrap needs a runs × tasks matrix. Methods may differ in run count;
- probability of improvement: one rliable estimate per unordered pair; ``P(Y > X) = 1 - P(X > Y)``
  exactly (Mann-Whitney counts ties as halves), so its interval is the mirrored one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce

import numpy as np

from .runs import (
    DEFAULT_MODE,
    DIAGNOSTICS,
    Curve,
    ReportError,
    RunRecord,
    diagnostic_column,
    mean_logged,
)

#: DMC returns lie in [0, 1000]: 1000 steps of a reward in [0, 1].
DMC_MAX_RETURN = 1000.0
_DMC_ID = re.compile(r"^(?:sparse_rl/)?[a-z_]+-(?!v\d+$)[a-z_]+(?:-[a-z_]+-v\d+)?$")
METRICS = ("IQM", "mean", "median", "optimality gap")

Interval = tuple[float, float, float]  # estimate, low, high


def on_dmc_scale(env: str) -> bool:
    """Whether ``env``'s returns are on DeepMind Control's 0..1000 scale: a DMC task name
    (``walker-walk``) or a registered id of one (``sparse_rl/walker-walk-<obs>-v0``)."""
    return bool(_DMC_ID.match(env))


def normalization_range(
    env: str, normalize: Mapping[str, tuple[float, float]]
) -> tuple[float, float] | None:
    """The ``(low, high)`` that maps ``env``'s returns to [0, 1], or None when there is none."""
    if env in normalize:
        return normalize[env]
    return (0.0, DMC_MAX_RETURN) if on_dmc_scale(env) else None


def bootstrap_mean_ci(values: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap interval of the mean over seeds (axis 0), for each column.

    Seeds are resampled together across columns (one resample of seeds per replicate). For one
    column it equals ``rng.choice(values, size=(reps, n)).mean(axis=1)``'s percentiles, the
    interval of the tables made before ``sparse-rl report`` (their converted runs regenerate them).
    """
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(reps, len(values)))].mean(axis=1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


@dataclass(frozen=True)
class Cell:
    """One method on one task: final returns per seed and their mean with a 95% CI."""

    seeds: tuple[int, ...]
    final_steps: tuple[int, ...]
    finals: np.ndarray
    ci: tuple[float, float]
    sources: tuple[str, ...]
    finished: tuple[bool, ...]
    diagnostics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Band:
    """A learning curve: mean over seeds at the steps they all reached, with a 95% band."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass
class Summary:
    """Everything a report shows, computed before anything is written."""

    tasks: list[str]
    methods: list[str]
    task_env: dict[str, str]
    task_mode: dict[str, str]
    cells: dict[tuple[str, str], Cell]
    bands: dict[tuple[str, str], Band]
    ranges: dict[str, tuple[float, float] | None]
    range_source: dict[str, str]
    aggregate_tasks: list[str] = field(default_factory=list)
    normalized: bool = False
    runs_per_task: dict[str, int] = field(default_factory=dict)
    metric_names: list[str] = field(default_factory=list)
    metrics: dict[str, dict[str, Interval]] = field(default_factory=dict)
    improvement: dict[tuple[str, str], Interval] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _select(runs: Sequence[RunRecord], mode: str | None) -> list[tuple[RunRecord, str, str, Curve]]:
    """(run, mode, task, curve) for every evaluation the report covers."""
    if not runs:
        raise ReportError("runs", "no runs to report on.")
    if mode is None:
        return [(r, m, r.task(m), r.curves[m]) for r in runs for m in r.modes]
    if not any(mode in r.curves for r in runs):
        modes = sorted({m for r in runs for m in r.modes})
        raise ReportError("mode", f"no run was evaluated in mode {mode!r}; modes here: {modes}.")
    return [(r, mode, r.task(mode), r.curves[mode]) for r in runs if mode in r.curves]


def _check_normalize(
    runs: Sequence[RunRecord], normalize: Mapping[str, tuple[float, float]]
) -> None:
    envs = sorted({r.env for r in runs})
    for env, (low, high) in normalize.items():
        if env not in envs:
            raise ReportError("normalize", f"no run is on env {env!r}; envs here: {envs}.")
        if not high > low:
            raise ReportError("normalize", f"{env}: high ({high}) must exceed low ({low}).")


def _band(curves: Sequence[Curve], reps: int, seed: int, what: str) -> Band:
    steps = reduce(np.intersect1d, [c.steps for c in curves])
    if not len(steps):
        raise ReportError("paths", f"the runs of {what} share no evaluation step to average at.")
    values = np.stack([c.returns[np.isin(c.steps, steps)] for c in curves])
    low, high = bootstrap_mean_ci(values, reps, seed)
    return Band(steps, values.mean(axis=0), low, high)


def summarize(
    runs: Sequence[RunRecord],
    *,
    mode: str | None = None,
    normalize: Mapping[str, tuple[float, float]] | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> Summary:
    """Per-task tables, curve bands and aggregate metrics of ``runs`` (see the module's rules)."""
    if reps < 1:
        raise ReportError("reps", f"must be a positive number of bootstrap replicates, got {reps}.")
    if not 0 <= seed < 2**32:
        raise ReportError("seed", f"must lie in [0, 2**32) (numpy's seed range), got {seed}.")
    normalize = dict(normalize or {})
    _check_normalize(runs, normalize)
    selected = _select(runs, mode)
    notes = []
    if mode is not None and len(selected) < len(runs):
        notes.append(f"{len(runs) - len(selected)} run(s) have no {mode!r} evaluation: left out.")
    groups: dict[tuple[str, str], list[tuple[RunRecord, Curve]]] = {}
    task_env, task_mode = {}, {}
    for run, run_mode, task, curve in selected:
        groups.setdefault((task, run.method), []).append((run, curve))
        task_env[task], task_mode[task] = run.env, run_mode
    cells, bands = {}, {}
    for (task, method), members in sorted(groups.items()):
        members.sort(key=lambda m: m[0].seed)
        seeds = [r.seed for r, _ in members]
        if len(set(seeds)) < len(seeds):
            twice = sorted({s for s in seeds if seeds.count(s) > 1})
            paths = [str(r.source) for r, _ in members if r.seed in twice]
            raise ReportError("paths", f"{method} on {task} has seed(s) {twice} twice: {paths}.")
        finals = np.array([c.returns[-1] for _, c in members])
        low, high = bootstrap_mean_ci(finals[:, None], reps, seed)
        cells[task, method] = Cell(
            tuple(seeds), tuple(int(c.steps[-1]) for _, c in members), finals,
            (float(low[0]), float(high[0])), tuple(str(r.source) for r, _ in members),
            tuple(r.finished for r, _ in members),
            _mean_diagnostics([r for r, _ in members], task_mode[task]),
        )  # fmt: skip
        bands[task, method] = _band([c for _, c in members], reps, seed, f"{method} on {task}")
    tasks = sorted({t for t, _ in cells})
    methods = sorted({m for _, m in cells})
    summary = Summary(
        tasks=tasks, methods=methods, task_env=task_env, task_mode=task_mode, cells=cells,
        bands=bands,
        ranges={e: normalization_range(e, normalize) for e in sorted(set(task_env.values()))},
        range_source={
            e: "--normalize" if e in normalize else "DMC" if on_dmc_scale(e) else "none"
            for e in sorted(set(task_env.values()))
        },
        notes=notes,
    )  # fmt: skip
    _note_steps(summary)
    _aggregate(summary, reps, seed)
    return summary


def _mean_diagnostics(runs: Sequence[RunRecord], mode: str = DEFAULT_MODE) -> dict[str, float]:
    """``progress.csv`` column → mean over the runs that logged a number in it, for each of
    :data:`DIAGNOSTICS` (in ``mode``'s column) that any of ``runs`` logged."""
    columns = [diagnostic_column(k, mode) for k in DIAGNOSTICS]
    return {
        c: mean_logged([r.diagnostics[c] for r in runs if c in r.diagnostics])
        for c in columns
        if any(c in r.diagnostics for r in runs)
    }


def _note_steps(summary: Summary) -> None:
    unfinished = sum(not f for c in summary.cells.values() for f in c.finished)
    if unfinished:
        summary.notes.append(
            f"{unfinished} run(s) have not finished (no done.json): their score is their latest "
            "evaluation."
        )
    single = sorted({m for (_, m), c in summary.cells.items() if len(c.seeds) == 1})
    if single:
        summary.notes.append(
            f"{', '.join(single)} has a single seed on some task: its intervals there have no "
            "width, which says nothing about its spread."
        )
    for task in summary.tasks:
        ends = {
            m: summary.cells[task, m].final_steps
            for m in summary.methods
            if (task, m) in summary.cells
        }
        if len({s for steps in ends.values() for s in steps}) > 1:
            said = "; ".join(f"{m}: {sorted(set(s))}" for m, s in ends.items())
            summary.notes.append(f"{task}: runs end at different steps ({said}).")


@contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """rliable's bootstraps draw from numpy's global generator: seed it, then put it back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _score_matrices(summary: Summary) -> dict[str, np.ndarray]:
    """Method → (runs, tasks) scores on the aggregate tasks, equal runs per task (see module)."""
    matrices = {}
    for method in summary.methods:
        counts = [len(summary.cells[t, method].finals) for t in summary.aggregate_tasks]
        runs = min(counts)
        if len(set(counts)) > 1:
            summary.notes.append(
                f"{method} has {max(counts)} runs on some tasks but {runs} on others; its "
                f"aggregates use its {runs} lowest-seeded runs on every task (rliable's "
                "stratified bootstrap needs the same number of runs on each task)."
            )
        columns = []
        for task in summary.aggregate_tasks:
            finals = summary.cells[task, method].finals[:runs]
            bounds = summary.ranges[summary.task_env[task]]
            if summary.normalized and bounds is not None:
                finals = (finals - bounds[0]) / (bounds[1] - bounds[0])
            columns.append(finals)
        matrices[method] = np.stack(columns, axis=1)
        summary.runs_per_task[method] = runs
    return matrices


def _aggregate(summary: Summary, reps: int, seed: int) -> None:
    """Fill ``summary``'s aggregate metrics and probabilities of improvement with rliable."""
    from rliable import library, metrics

    summary.aggregate_tasks = [
        t for t in summary.tasks if all((t, m) in summary.cells for m in summary.methods)
    ]
    left_out = [t for t in summary.tasks if t not in summary.aggregate_tasks]
    if not summary.aggregate_tasks:
        summary.notes.append("No task has runs of every method: aggregate metrics are omitted.")
        return
    if left_out:
        summary.notes.append(
            f"Aggregates cover the tasks every method has; left out: {', '.join(left_out)}."
        )
    raw_envs = sorted({
        summary.task_env[t] for t in summary.aggregate_tasks
        if summary.ranges[summary.task_env[t]] is None
    })  # fmt: skip
    summary.normalized = not raw_envs
    summary.metric_names = list(METRICS if summary.normalized else METRICS[:3])
    if raw_envs:
        envs = sorted({summary.task_env[t] for t in summary.aggregate_tasks})
        summary.notes.append(
            f"Aggregates are on raw returns: {', '.join(raw_envs)} has no normalisation range "
            "(pass --normalize ENV=LOW:HIGH). The optimality gap is omitted: it is the gap to a "
            "normalised score of 1."
            + (" Raw returns of different envs differ in scale." if len(envs) > 1 else "")
        )
    matrices = _score_matrices(summary)

    def aggregates(scores: np.ndarray) -> np.ndarray:
        values = [metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores),
                  metrics.aggregate_median(scores)]  # fmt: skip
        if summary.normalized:
            values.append(metrics.aggregate_optimality_gap(scores))
        return np.array(values)

    for method, scores in matrices.items():
        with _numpy_global_seed(seed):
            point, interval = library.get_interval_estimates(
                {method: scores}, aggregates, reps=reps
            )
        summary.metrics[method] = {
            name: (float(point[method][i]), float(interval[method][0, i]),
                   float(interval[method][1, i]))
            for i, name in enumerate(summary.metric_names)
        }  # fmt: skip
    for i, x in enumerate(summary.methods):
        for y in summary.methods[i + 1 :]:
            with _numpy_global_seed(seed):
                point, interval = library.get_interval_estimates(
                    {"xy": [matrices[x], matrices[y]]}, metrics.probability_of_improvement,
                    reps=reps,
                )  # fmt: skip
            p, (low, high) = float(point["xy"]), np.ravel(interval["xy"]).astype(float)
            summary.improvement[x, y] = (p, float(low), float(high))
            summary.improvement[y, x] = (1.0 - p, 1.0 - float(high), 1.0 - float(low))
