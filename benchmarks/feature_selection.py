"""Feature selection with sparse networks against a univariate filter, offline (issue 18).

Problems (the relevant columns are known for the first two; K = selected columns):

- ``madelon``: Madelon-style ``make_classification``, 2600 × 500, 5 informative + 15 redundant
  columns, 16 clusters per class, class_sep 2.0 (the pilot in ``shared/SUPERVISED.md``),
  generated with ``shuffle=False`` and then the columns permuted (seeded); K = 20.
- ``xor``: 1000 × 50 Gaussian columns, the label is the XOR of the signs of two at seeded random
  positions: no column alone carries signal, so univariate filters are at chance; K = 2.
- ``digits``: ``load_digits`` (1797 × 64 pixels), no known relevant set; K = 10 (an SVC on the
  10 best ANOVA pixels reaches about 0.9, on 10 random ones about 0.75).

Arms: ``SparseFeatureSelector`` (hidden 1000, 100; Adam 1e-3; up to 200 epochs, patience 50,
with SET or RigL at density 0.2 (ERK; every 10 steps, drop 0.3 cosine, stop at 75%) or dense
(density 1.0), each ranking by ``attribution`` or ``strength``; ``quickselection``
(``QuickSelection``, unsupervised, its paper's settings); ``anova`` (``SelectKBest(f_classif)``);
``random`` (K seeded random columns); ``all`` (every column). Per seed the data are split
80/20 (stratified); the network selectors hold out 18.75% of the 80% for early stopping
(65/15/20, the paper's split). Metrics: coverage of the relevant columns by the top K, test
accuracy of ``StandardScaler + SVC()`` on the top K, selection time (fit only, one thread).

Run (resumable, one thread per process; ``--jobs 2`` runs two processes)::

    python benchmarks/feature_selection.py run --jobs 2
    python benchmarks/feature_selection.py report

Rows go to ``results/feature_selection/rows.jsonl`` as they finish; ``report`` writes
``results/feature_selection.{md,png}`` with 95% bootstrap intervals over seeds.
``run --quick`` runs tiny sizes with one seed into a temporary folder (or ``--out``), then
reports there: a smoke test, never results.

The rows, the runner and the command line are those of ``_offline.py``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import _offline as offline
import numpy as np
from _offline import RESULTS as RESULTS  # where full runs write

NAME = "feature_selection"
PROBLEMS = ("madelon", "xor", "digits")
NETWORK_ARMS = (
    "set-attr", "set-strength", "rigl-attr", "rigl-strength", "dense-attr", "dense-strength",
)  # fmt: skip
ARMS = (*NETWORK_ARMS, "quickselection", "anova", "random", "all")
SEEDS = (0, 1, 2, 3, 4)
DENSITY = 0.2
DIGITS_K = 10
IMPORTANCE = {"attr": "attribution", "strength": "strength"}


@dataclass(frozen=True)
class Scale:
    """Problem sizes and training budget: ``full`` for the results, ``quick`` for a smoke."""

    name: str
    madelon: tuple[int, int, int, int, int]  # samples, features, informative, redundant, clusters
    xor: tuple[int, int]  # samples, features
    digits_samples: int | None  # None: all 1797
    hidden: tuple[int, ...]
    epochs: int
    patience: int | None
    qs_hidden: int
    qs_epochs: int


FULL = Scale("full", (2600, 500, 5, 15, 16), (1000, 50), None, (1000, 100), 200, 50, 1000, 100)
QUICK = Scale("quick", (300, 30, 3, 3, 2), (300, 10), 500, (16,), 3, None, 16, 2)
SCALES = {s.name: s for s in (FULL, QUICK)}


Cell = offline.ProblemCell


cells = offline.problem_cells


def problem_data(
    problem: str, seed: int, scale: Scale
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """``X``, ``y``, the relevant columns (None for digits) and K for one problem and seed."""
    from sparse_rl.supervised.demo import madelon_problem, parity_problem

    if problem == "madelon":
        n, d, informative, redundant, clusters = scale.madelon
        X, y, relevant = madelon_problem(n, d, informative, redundant, clusters, 2.0, seed)
        return X, y, relevant, informative + redundant
    if problem == "xor":
        X, y, relevant = parity_problem(*scale.xor, order=2, seed=seed)
        return X, y, relevant, 2
    if problem == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        if scale.digits_samples is not None:
            keep = np.random.default_rng(0).permutation(len(X))[: scale.digits_samples]
            X, y = X[keep], y[keep]
        return X.astype(float), y, None, DIGITS_K
    raise ValueError(f"problem={problem!r} is not valid; choose one of {list(PROBLEMS)}.")


def _selector(arm: str, k: int, seed: int, scale: Scale) -> Any:
    from sparse_rl.supervised import QuickSelection, SparseFeatureSelector

    if arm == "quickselection":
        return QuickSelection(k, hidden=scale.qs_hidden, epochs=scale.qs_epochs, random_state=seed)
    updater, importance = arm.split("-")
    return SparseFeatureSelector(
        k,
        importance=IMPORTANCE[importance],
        hidden=scale.hidden,
        density=1.0 if updater == "dense" else DENSITY,
        updater="set" if updater == "dense" else updater,
        epochs=scale.epochs,
        patience=scale.patience,
        validation_fraction=0.15 / 0.8,
        random_state=seed,
    )


def run_cell(cell: Cell) -> dict[str, Any]:
    """Select K columns on the training split with one arm; score them with an SVC."""
    from sklearn.model_selection import train_test_split
    from sparse_rl.supervised.demo import anova_scores, coverage, svc_accuracy, top_k

    scale = SCALES[cell.scale]
    X, y, relevant, k = problem_data(cell.problem, cell.seed, scale)
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.2, random_state=cell.seed, stratify=y)
    d = X.shape[1]
    row: dict[str, Any] = {**asdict(cell), "k": k, "n_features": d}
    scores = None
    selector = (
        None if cell.arm in ("all", "random", "anova") else _selector(cell.arm, k, cell.seed, scale)
    )
    start = time.perf_counter()  # the selection alone: no data making, no imports
    if cell.arm == "all":
        selected = np.arange(d)
    elif cell.arm == "random":
        selected = np.sort(np.random.default_rng([1, cell.seed]).choice(d, k, replace=False))
    elif cell.arm == "anova":
        scores = anova_scores(Xa, ya)
        selected = top_k(scores, k)
    else:
        assert selector is not None
        selector.fit(Xa, ya)
        scores = selector.feature_importances_
        selected = np.flatnonzero(selector.get_support())
        row["epochs_run"] = len(selector.history_)
        row["best_epoch"] = selector.history_.best_epoch
        stats = selector.sparsity_stats_
        row["density"] = 1.0 if stats is None else float(stats.density)
    row["seconds"] = time.perf_counter() - start
    row["coverage"] = (
        None if relevant is None or cell.arm == "all" else coverage(selected, relevant)
    )
    row["accuracy"] = svc_accuracy(Xa, ya, Xb, yb, selected)
    row["selected"] = selected.tolist()
    if relevant is not None:
        row["relevant"] = relevant.tolist()
    if scores is not None and cell.problem == "digits":  # for the pixel heat map
        total = float(np.sum(scores))
        row["scores"] = np.round(scores / (total if total > 0 else 1.0), 6).tolist()
    return row


def describe(row: dict[str, Any]) -> str:
    cov = "" if row["coverage"] is None else f"coverage {row['coverage']:.2f}, "
    return f"{cov}accuracy {row['accuracy']:.3f}, {row['seconds']:.1f} s"


def main(argv: list[str] | None = None) -> None:
    offline.main(
        argv,
        sys.modules[__name__],
        what="select with every missing (problem, arm, seed)",
        choices={"arms": ARMS, "problems": PROBLEMS},
    )


if __name__ == "__main__":
    main()
