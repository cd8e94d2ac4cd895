"""Corruption and adversarial robustness of dense and dynamic sparse training, and hard samples,
on ``load_digits`` (issue 18).

Claim to test (DST robustness, ICLR 2025): at low sparsity, DST beats dense training in
corruption robustness; here: DST mCA > dense mCA at some density in [0.5, 0.9] with
non-overlapping 95% intervals.

Per seed the 1797 digits (8×8, grey levels / 16, in [0, 1]) are split 75/25 (stratified), and
15% of the training part is held out for early stopping. Models (both with one seed's
initialisation shared by every arm): ``mlp`` (flatten, 64 → 256 → 128 → 10, ReLU) and ``cnn``
(``small_cnn(1, 8, 10)``: conv 16, conv 32, 2×2 max-pool, 64, 10). Arms: ``dense``, and
``rigl-D`` / ``set-D`` at density D in 0.9 / 0.7 / 0.5 (ERK; every 10 steps, drop 0.3 cosine,
stop at 75% of the planned steps: ``fit``'s defaults). Training: Adam 3e-3, batch 32, up to 60
epochs, patience 10, the best-validation weights and masks kept. Settings: ``full`` (the whole
training part), ``random30`` (a seeded random 30% of it) and ``hard50`` (its hardest 50% by
early EL2N: 4 dense models of the same architecture after 3 epochs).

Metrics on the test part: clean accuracy; ``CorruptionBenchmark(seed=0)`` (10 kinds × 5
severities): mCA, relative drop, and (in the report) mCE against the dense model of the same
model, setting and seed; PGD L∞ accuracy at ε = 0.05 (20 steps of ε/4; digits' grey levels are
1/16 apart, so the paper's 8/255 is half a level); training time.

Run (resumable, one thread per process; ``--jobs 2`` runs two processes)::

    python benchmarks/robustness.py run --jobs 2
    python benchmarks/robustness.py report

Rows go to ``results/robustness/rows.jsonl`` as they finish; ``report`` writes
``results/robustness.{md,png}`` with 95% bootstrap intervals over seeds. ``run --quick`` runs
tiny sizes with one seed into a temporary folder (or ``--out``), then reports there: a smoke
test, never results. The rows, the runner and the command line are those of ``_offline.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import _offline as offline
import numpy as np

NAME = "robustness"
MODELS = ("mlp", "cnn")
SETTINGS = ("full", "random30", "hard50")
DENSITIES = (0.9, 0.7, 0.5)
ARMS = ("dense", *(f"{u}-{d}" for u in ("rigl", "set") for d in DENSITIES))
SEEDS = (0, 1, 2, 3, 4)
PGD_EPS = 0.05


@dataclass(frozen=True)
class Scale:
    """Training and evaluation budget: ``full`` for the results, ``quick`` for a smoke."""

    name: str
    epochs: int
    patience: int | None
    el2n_epochs: int
    el2n_models: int
    pgd_steps: int
    samples: int | None  # None: all 1797 digits
    severities: tuple[int, ...]


FULL = Scale("full", 60, 10, 3, 4, 20, None, (1, 2, 3, 4, 5))
QUICK = Scale("quick", 2, None, 1, 2, 2, 400, (1, 3, 5))
SCALES = {s.name: s for s in (FULL, QUICK)}
BATCH, LR = 32, 3e-3


@dataclass(frozen=True)
class Cell(offline.Cell):
    model: str
    setting: str
    arm: str
    seed: int
    scale: str = "full"


def cells(args: argparse.Namespace) -> list[Cell]:
    """Every (model, setting, seed, arm) of the command line, at its scale; a seed's arms next
    to each other."""
    return [
        Cell(m, s, a, seed, args.scale)
        for m in args.models
        for s in args.settings
        for seed in args.seeds
        for a in args.arms
    ]


def make_model(name: str) -> Any:
    """The two architectures; both take (N, 1, 8, 8) images in [0, 1]."""
    from sparse_rl.supervised import mlp, small_cnn
    from torch import nn

    if name == "mlp":
        return nn.Sequential(nn.Flatten(), mlp(64, (256, 128), 10))
    if name == "cnn":
        return small_cnn(1, 8, 10)
    raise ValueError(f"model={name!r} is not valid; choose one of {list(MODELS)}.")


@cache
def split(seed: int, samples: int | None) -> dict[str, Any]:
    """Train / validation / test tensors of one seed (the same for every model and arm)."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images / 16, dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target)
    index = np.arange(len(y))
    if samples is not None:
        index = np.random.default_rng(0).permutation(len(y))[:samples]
    labels = digits.target[index]
    rest, test = train_test_split(index, test_size=0.25, random_state=seed, stratify=labels)
    train, val = train_test_split(
        rest, test_size=0.15, random_state=seed, stratify=digits.target[rest]
    )
    return {part: (x[ix], y[ix]) for part, ix in (("train", train), ("val", val), ("test", test))}


@cache
def hard_half(model: str, seed: int, scale_name: str) -> Any:
    """Indices of the hardest 50% of the training part by early EL2N of dense models."""
    from sparse_rl.supervised import early_el2n_scores, hardest_subset

    scale = SCALES[scale_name]
    x, y = split(seed, scale.samples)["train"]
    seeds = tuple(1000 + 10 * seed + i for i in range(scale.el2n_models))
    scores = early_el2n_scores(
        lambda: make_model(model), x, y, epochs=scale.el2n_epochs, seeds=seeds,
        batch_size=BATCH, lr=LR,
    )  # fmt: skip
    return hardest_subset(scores, 0.5)


def run_cell(cell: Cell) -> dict[str, Any]:
    """Train one arm on one setting's training data; evaluate clean, corrupted and under PGD."""
    import torch
    from sparse_rl.supervised import (
        CorruptionBenchmark,
        fit,
        metrics,
        pgd_accuracy,
        random_subset,
    )

    from sparse_rl import sparse_nets as sn

    scale = SCALES[cell.scale]
    data = split(cell.seed, scale.samples)
    x, y = data["train"]
    if cell.setting == "full":
        index = torch.arange(len(y))
    elif cell.setting == "random30":
        index = random_subset(len(y), 0.3, seed=cell.seed)
    elif cell.setting == "hard50":
        index = hard_half(cell.model, cell.seed, cell.scale)
    else:
        raise ValueError(f"setting={cell.setting!r} is not valid; choose one of {SETTINGS}.")
    sparsity = None
    if cell.arm != "dense":
        updater, density = cell.arm.split("-")
        sparsity = {"density": float(density), "updater": updater}
    with sn.seeded(cell.seed):  # one initialisation per seed, shared by every arm
        model = make_model(cell.model)
    start = time.perf_counter()
    history = fit(
        model, (x[index], y[index]), data["val"], epochs=scale.epochs, batch_size=BATCH, lr=LR,
        patience=scale.patience, seed=cell.seed, sparsity=sparsity, metric=metrics.accuracy,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    x_test, y_test = data["test"]
    start = time.perf_counter()
    report = CorruptionBenchmark(severities=scale.severities, seed=0).evaluate(
        model, x_test, y_test
    )
    pgd = pgd_accuracy(
        model, x_test, y_test, eps=PGD_EPS, steps=scale.pgd_steps, step_size=PGD_EPS / 4, seed=0
    )
    stats = history.sparsity_stats
    return {
        **asdict(cell),
        "train_samples": len(index),
        "clean": report.clean_accuracy,
        "mca": report.mca,
        "relative_drop": report.relative_drop,
        "pgd": pgd,
        "severities": list(report.severities),
        "accuracy": {k: list(v) for k, v in report.accuracy.items()},
        "density": 1.0 if stats is None else float(stats.density),
        "best_epoch": history.best_epoch,
        "epochs_run": len(history),
        "seconds": seconds,
        "eval_seconds": time.perf_counter() - start,
    }


def describe(row: dict[str, Any]) -> str:
    return (
        f"clean {row['clean']:.3f}, mCA {row['mca']:.3f}, PGD {row['pgd']:.3f}, "
        f"{row['seconds']:.1f} s"
    )


def main(argv: list[str] | None = None) -> None:
    offline.main(
        argv,
        sys.modules[__name__],
        what="train every missing (model, setting, arm, seed)",
        choices={"arms": ARMS, "models": MODELS, "settings": SETTINGS},
    )


if __name__ == "__main__":
    main()
