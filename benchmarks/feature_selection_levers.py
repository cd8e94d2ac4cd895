"""Levers tried for the Madelon-style coverage goal of the feature-selection benchmark (issue 18).

SET attribution (``SparseFeatureSelector``'s defaults: hidden 1000, 100; density 0.2; Adam 1e-3;
up to 200 epochs, patience 50) with one setting changed at a time, on the benchmark's
Madelon-style problem (coverage of the 20 relevant columns by the top 20) and XOR (both columns
of 2 in 50), 5 seeds, the benchmark's splits (``feature_selection.py``).

Run: ``python benchmarks/feature_selection_levers.py`` (about 5-10 minutes on one core); writes
``benchmarks/results/feature_selection_levers.md``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from _machine import machine_info
from _offline import RESULTS, ci
from feature_selection import FULL, problem_data

#: name -> the settings changed from the selector's defaults.
LEVERS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "weight decay 1e-3": {"weight_decay": 1e-3},
    "learning rate 1e-4": {"lr": 1e-4},
    "density 0.05": {"density": 0.05},
    "batch 32": {"batch_size": 32},
    "one hidden layer of 100, learning rate 1e-4": {"hidden": (100,), "lr": 1e-4},
}
PROBLEMS = ("madelon", "xor")
SEEDS = (0, 1, 2, 3, 4)


def coverage(problem: str, seed: int, settings: dict[str, Any]) -> float:
    from sklearn.model_selection import train_test_split
    from sparse_rl.supervised import SparseFeatureSelector
    from sparse_rl.supervised.demo import coverage as share

    X, y, relevant, k = problem_data(problem, seed, FULL)
    Xa, _, ya, _ = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    selector = SparseFeatureSelector(
        k, validation_fraction=0.15 / 0.8, random_state=seed, **settings
    ).fit(Xa, ya)
    return share(np.flatnonzero(selector.get_support()), relevant)


def main() -> None:
    torch.set_num_threads(1)
    m = machine_info()
    lines = [
        "# Feature selection: levers for the Madelon-style coverage goal",
        "",
        f"Command: `{m['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, one thread; {m['date']}.",
        "",
        "SET attribution with one setting changed from `SparseFeatureSelector`'s defaults; "
        "coverage of the relevant columns by the top K, mean over 5 seeds with 95% bootstrap "
        "interval (per seed in brackets). Goal on Madelon-style: >= 0.8 and >= ANOVA's 0.78.",
        "",
        "| setting | " + " | ".join(PROBLEMS) + " | seconds |",
        "|---|" + "---|" * (len(PROBLEMS) + 1),
    ]
    for name, settings in LEVERS.items():
        start, cells = time.perf_counter(), []
        for problem in PROBLEMS:
            values = [coverage(problem, seed, settings) for seed in SEEDS]
            mean, low, high = ci(values)
            cells.append(
                f"{mean:.2f} [{low:.2f}, {high:.2f}] ({', '.join(f'{v:.2f}' for v in values)})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.0f} |")
        print(lines[-1], flush=True)
    (RESULTS / "feature_selection_levers.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
