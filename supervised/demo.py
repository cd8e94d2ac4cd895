"""Feature selection where a univariate filter cannot work, and what a network reads on digits.

Run: ``python -m sparse_rl.supervised.demo`` (a few minutes on one core; writes
``results/supervised_demo/``: ``results.json`` and ``feature_selection.png``).

1. **XOR**: 50 Gaussian columns, the label is the XOR of the signs of two of them, placed at
   seeded random positions. Neither column alone says anything about the label, so ANOVA
   (``SelectKBest(f_classif)``) picks two columns at chance and an SVC on them is at chance; the
   sparse selector's attribution (default settings) sees the interaction and finds both.
2. **Digits**: ``load_digits`` (8×8 pixels); the selector's pixel importance as a heat map next
   to ANOVA's F scores, and an SVC on the top 10 pixels of each against 10 random pixels.

The problem makers here (:func:`parity_problem`, :func:`madelon_problem`, :func:`coverage`)
are the ones ``benchmarks/feature_selection.py`` uses. Needs the ``supervised`` extra
(scikit-learn); the picture needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np


def parity_problem(
    n_samples: int, n_features: int, order: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian columns; the label is the parity of the signs of ``order`` of them (order 2:
    XOR), placed at seeded random positions so that no selector can win by favouring low
    indices. Each column alone is independent of the label: univariate filters are at chance.

    :return: ``X`` (n_samples, n_features), ``y`` in {0, 1}, the sorted relevant columns.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    relevant = np.sort(rng.choice(n_features, order, replace=False))
    y = (X[:, relevant] > 0).sum(axis=1) % 2
    return X, y.astype(int), relevant


def madelon_problem(
    n_samples: int = 2600,
    n_features: int = 500,
    n_informative: int = 5,
    n_redundant: int = 15,
    n_clusters_per_class: int = 16,
    class_sep: float = 2.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Madelon-style ``make_classification`` (the pilot's settings in ``shared/SUPERVISED.md``):
    generated with ``shuffle=False`` so the informative and redundant columns are known, then
    the columns are permuted (seeded) so that they are not simply the first ones.

    :return: ``X``, ``y``, the sorted relevant (informative + redundant) columns.
    """
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=n_redundant,
        n_repeated=0,
        n_clusters_per_class=n_clusters_per_class,
        class_sep=class_sep,
        shuffle=False,
        random_state=seed,
    )
    order = np.random.default_rng(seed).permutation(n_features)
    relevant = np.sort(np.flatnonzero(order < n_informative + n_redundant))
    return X[:, order], y, relevant


def coverage(selected: Sequence[int] | np.ndarray, relevant: Sequence[int] | np.ndarray) -> float:
    """Share of the relevant columns among the selected ones' indices (recall; with as many
    selected as relevant it is also the precision)."""
    return len(set(np.asarray(selected).tolist()) & set(np.asarray(relevant).tolist())) / len(
        relevant
    )


def svc_accuracy(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    columns: Sequence[int] | np.ndarray,
) -> float:
    """Test accuracy of ``StandardScaler + SVC()`` on the given columns (the papers' measure)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    cols = np.asarray(columns)
    model = make_pipeline(StandardScaler(), SVC()).fit(X_train[:, cols], y_train)
    return float(model.score(X_test[:, cols], y_test))


def anova_scores(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ANOVA F per column; constant columns (digits' border pixels) score 0 instead of NaN."""
    from sklearn.feature_selection import f_classif

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Features ... are constant" and 0/0
        scores = f_classif(X, y)[0]
    return np.nan_to_num(scores, nan=0.0)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring columns (ties: the lower index first, as the selectors do)."""
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])


@dataclass(frozen=True)
class DemoConfig:
    """Everything the demo depends on (written to ``results.json``)."""

    xor_samples: int = 1000
    xor_features: int = 50
    seeds: int = 3
    digits_k: int = 10
    digits_samples: int | None = None  # None: all 1797
    hidden: tuple[int, ...] = (1000, 100)
    density: float = 0.2
    updater: str = "set"
    epochs: int = 200
    patience: int | None = 50
    lr: float = 1e-3
    batch_size: int | str = "auto"


#: Seconds, for tests: small network, few epochs (the quickstart's XOR settings).
QUICK = DemoConfig(
    xor_samples=300, xor_features=10, seeds=1, hidden=(32,), density=0.5, updater="rigl",
    epochs=20, patience=None, lr=1e-2, batch_size=32, digits_samples=600,
)  # fmt: skip


def _selector(cfg: DemoConfig, k: int, seed: int) -> Any:
    from .feature_selection import SparseFeatureSelector

    return SparseFeatureSelector(
        k, importance="attribution", hidden=cfg.hidden, density=cfg.density,
        updater=cfg.updater, epochs=cfg.epochs, patience=cfg.patience, lr=cfg.lr,
        batch_size=cfg.batch_size, random_state=seed,
    )  # fmt: skip


def run_xor(cfg: DemoConfig) -> list[dict[str, Any]]:
    """Per seed: the selector's and ANOVA's top 2, their coverage and SVC accuracy."""
    from sklearn.model_selection import train_test_split

    rows = []
    for seed in range(cfg.seeds):
        X, y, relevant = parity_problem(cfg.xor_samples, cfg.xor_features, 2, seed)
        Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
        start = time.perf_counter()
        selector = _selector(cfg, 2, seed).fit(Xa, ya)
        seconds = time.perf_counter() - start
        anova = anova_scores(Xa, ya)
        row: dict[str, Any] = {"seed": seed, "relevant": relevant.tolist(), "seconds": seconds}
        for name, scores in (("sparse", selector.feature_importances_), ("anova", anova)):
            chosen = top_k(scores, 2)
            row[name] = {
                "selected": chosen.tolist(),
                "coverage": coverage(chosen, relevant),
                "accuracy": svc_accuracy(Xa, ya, Xb, yb, chosen),
                "scores": (scores / scores.max()).round(4).tolist(),
            }
        rows.append(row)
        print(
            f"XOR seed {seed}: relevant {relevant.tolist()}; sparse picks "
            f"{row['sparse']['selected']} (SVC {row['sparse']['accuracy']:.3f}, "
            f"{seconds:.0f} s), ANOVA picks {row['anova']['selected']} "
            f"(SVC {row['anova']['accuracy']:.3f})",
            flush=True,
        )
    return rows


def run_digits(cfg: DemoConfig) -> dict[str, Any]:
    """Pixel importance on digits and SVC accuracy on the top ``digits_k`` pixels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    if cfg.digits_samples is not None:
        keep = np.random.default_rng(0).permutation(len(X))[: cfg.digits_samples]
        X, y = X[keep], y[keep]
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    k = cfg.digits_k
    start = time.perf_counter()
    selector = _selector(cfg, k, 0).fit(Xa, ya)
    seconds = time.perf_counter() - start
    anova = anova_scores(Xa, ya)
    random = np.sort(np.random.default_rng(0).choice(X.shape[1], k, replace=False))
    chosen = {"sparse": top_k(selector.feature_importances_, k), "anova": top_k(anova, k)}
    out: dict[str, Any] = {
        "k": k,
        "seconds": seconds,
        "importance": selector.feature_importances_.round(6).tolist(),
        "anova_scores": anova.round(4).tolist(),
        "mean_image": X.mean(axis=0).round(3).tolist(),
    }
    for name, cols in (*chosen.items(), ("random", random), ("all", np.arange(X.shape[1]))):
        out[name] = {"selected": cols.tolist(), "accuracy": svc_accuracy(Xa, ya, Xb, yb, cols)}
    print(
        f"digits, SVC on {k} pixels: sparse {out['sparse']['accuracy']:.3f} "
        f"({seconds:.0f} s), ANOVA {out['anova']['accuracy']:.3f}, random "
        f"{out['random']['accuracy']:.3f}; all 64 pixels {out['all']['accuracy']:.3f}",
        flush=True,
    )
    return out


def plot(xor: list[dict[str, Any]], digits: dict[str, Any], path: Path) -> None:
    """XOR scores per column (relevant ones marked) and the two digits heat maps."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4), width_ratios=(2.2, 1, 1, 1))
    row = xor[0]
    cols = np.arange(len(row["sparse"]["scores"]))
    ax = axes[0]
    ax.bar(cols - 0.2, row["sparse"]["scores"], 0.4, color="#d62728", label="sparse attribution")
    ax.bar(cols + 0.2, row["anova"]["scores"], 0.4, color="#777777", label="ANOVA F")
    for c in row["relevant"]:
        ax.axvspan(c - 0.5, c + 0.5, color="green", alpha=0.15)
    ax.set(
        title=f"XOR of columns {row['relevant']} (green), seed {row['seed']}",
        xlabel="column",
        ylabel="score / max",
    )
    ax.legend(fontsize=8)
    k = digits["k"]
    panels = (
        ("mean_image", None, "mean digit"),
        ("importance", "sparse", f"sparse attribution (top {k} ringed)"),
        ("anova_scores", "anova", f"ANOVA F (top {k} ringed)"),
    )
    for ax, (key, arm, title) in zip(axes[1:], panels, strict=True):
        ax.imshow(np.asarray(digits[key]).reshape(8, 8), cmap="viridis")
        if arm is not None:
            rows_, cols_ = np.divmod(np.asarray(digits[arm]["selected"]), 8)
            ax.scatter(cols_, rows_, s=160, facecolors="none", edgecolors="red", linewidths=1.5)
            title += f"\nSVC on them: {digits[arm]['accuracy']:.3f}"
        ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparse_rl.supervised.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("results/supervised_demo"))
    parser.add_argument("--seeds", type=int, default=None, help="XOR seeds (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="seconds: small network, 1 seed (for tests)"
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else DemoConfig()
    if args.seeds is not None:
        cfg = replace(cfg, seeds=args.seeds)
    import torch

    torch.set_num_threads(1)  # the numbers in the docs are one thread's
    args.out.mkdir(parents=True, exist_ok=True)
    xor = run_xor(cfg)
    digits = run_digits(cfg)
    found = sum(r["sparse"]["coverage"] == 1.0 for r in xor)
    anova_found = sum(r["anova"]["coverage"] == 1.0 for r in xor)
    print(
        f"\nXOR: the sparse selector found both columns in {found} of {len(xor)} seeds, "
        f"ANOVA in {anova_found}; mean SVC accuracy on the 2 columns: sparse "
        f"{np.mean([r['sparse']['accuracy'] for r in xor]):.3f}, ANOVA "
        f"{np.mean([r['anova']['accuracy'] for r in xor]):.3f} (chance 0.5)"
    )
    results = {"config": asdict(cfg), "xor": xor, "digits": digits}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    png = args.out / "feature_selection.png"
    try:
        plot(xor, digits, png)
    except ImportError:
        print("matplotlib is missing (pip install 'sparse-rl[bench]'): no picture")
    else:
        print(f"wrote {png} and {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
