"""Classification metrics shared by the supervised modules and the reward-model ensembles.

Every function takes numpy arrays or torch tensors (any device) and returns a Python float, so a
training loop, a benchmark table and a test all read the same numbers. ``probs`` are class
probabilities ``(n, classes)``; ``scores`` may be probabilities or logits (only their argmax
counts); ``labels`` are class indices ``(n,)``. Computed in float64.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

#: Equal-width confidence bins of :func:`ece` unless told otherwise (Guo et al. 2017; the
#: NeuroTrails evaluation uses the same fixed 15 bins on the combined prediction).
ECE_BINS = 15


def as_numpy(values: Any) -> np.ndarray:
    """A numpy copy of an array-like or a torch tensor (detached, on the CPU)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _probs_and_labels(probs: Any, labels: Any, name: str = "probs") -> tuple[np.ndarray, ...]:
    p = as_numpy(probs).astype(np.float64)
    y = as_numpy(labels)
    if p.ndim != 2:
        raise ValueError(f"{name} must have shape (n, classes), got {p.shape}.")
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must have shape ({p.shape[0]},) to match {name}, got {y.shape}.")
    if p.shape[0] == 0:
        raise ValueError(f"{name} is empty: metrics need at least one sample.")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be class indices in [0, {p.shape[1] - 1}], got {y!r}.")
    return p, y


def accuracy(scores: Any, labels: Any) -> float:
    """Share of samples whose highest score is the label (logits or probabilities alike)."""
    s, y = _probs_and_labels(scores, labels, "scores")
    return float(np.mean(s.argmax(axis=1) == y))


def nll(probs: Any, labels: Any, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the labels; probabilities are clipped at ``eps`` so one
    confident mistake gives a large finite number instead of inf."""
    p, y = _probs_and_labels(probs, labels)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], eps, None))))


def ece(probs: Any, labels: Any, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error with ``n_bins`` fixed, equal-width confidence bins.

    Confidence is the top probability; bin ``b`` holds confidences in ``(b/n, (b+1)/n]``; ECE is
    the sample-weighted mean of |accuracy − mean confidence| over the bins. Fixed bins (not
    adaptive ones) keep numbers comparable across models and papers.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}.")
    p, y = _probs_and_labels(probs, labels)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    # bin b holds (b/n, (b+1)/n]: ceil(c·n) − 1, with a confidence of exactly 0 in the first bin
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total / len(y))


def brier(probs: Any, labels: Any) -> float:
    """Multi-class Brier score: mean over samples of Σ_classes (p − one-hot)², in [0, 2]."""
    p, y = _probs_and_labels(probs, labels)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def _member_predictions(members: Any) -> np.ndarray:
    """(members, n) predicted labels from (members, n, classes) scores or (members, n) labels."""
    m = as_numpy(members)
    if m.ndim == 3:
        m = m.argmax(axis=2)
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(
            "members must have shape (members, n, classes) or (members, n) with at least two "
            f"members, got {m.shape}."
        )
    return m


def disagreement_matrix(members: Any) -> np.ndarray:
    """``D[a, b]`` = share of samples on which members ``a`` and ``b`` predict different classes.

    :param members: scores ``(members, n, classes)`` (argmax taken) or labels ``(members, n)``.
    """
    m = _member_predictions(members)
    out = np.zeros((m.shape[0], m.shape[0]))
    for a, b in combinations(range(m.shape[0]), 2):
        out[a, b] = out[b, a] = np.mean(m[a] != m[b])
    return out


def disagreement(members: Any) -> float:
    """Mean pairwise prediction disagreement, 1 − share of equal argmax, over all member pairs:
    the ensemble-diversity measure NeuroTrails reports."""
    matrix = disagreement_matrix(members)
    upper = np.triu_indices(matrix.shape[0], k=1)
    return float(matrix[upper].mean())
