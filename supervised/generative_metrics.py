"""Offline quality metrics for generated samples: no download, no pretrained network.

- :func:`energy_distance` and :func:`mmd_rbf` compare two sets of vectors directly (2-D toys);
- :class:`FIDLite` is a Fréchet distance on the penultimate features of a small classifier
  trained on the same offline data. It is FID's recipe without the Inception weights, so its
  numbers compare only with each other (same classifier, same sample sizes): **not FID**. Report
  it beside its real-vs-real floor (two halves of the real data), the value a perfect generator
  would get at that sample size.

All return Python floats computed in float64; inputs may be numpy arrays or tensors of any shape
``(n, ...)`` (flattened per sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_int

from .networks import small_cnn
from .training import fit


def _flat(name: str, values: Any, minimum: int = 2) -> Tensor:
    x = torch.as_tensor(values.detach().cpu() if isinstance(values, Tensor) else np.asarray(values))
    if x.dim() < 1 or len(x) < minimum:
        raise ValueError(
            f"{name} must hold at least {minimum} samples, got shape {tuple(x.shape)}."
        )
    x = x.reshape(len(x), -1).to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or inf values.")
    return x


def _pair(x: Any, y: Any) -> tuple[Tensor, Tensor]:
    a, b = _flat("x", x), _flat("y", y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has {a.shape[1]} features per sample, y {b.shape[1]}.")
    return a, b


def _off_diagonal_mean(d: Tensor) -> Tensor:
    n = len(d)
    return (d.sum() - d.diagonal().sum()) / (n * (n - 1))


def energy_distance(x: Any, y: Any) -> float:
    """Energy distance 2·E|X − Y| − E|X − X'| − E|Y − Y'| (Székely & Rizzo), Euclidean, the
    within-set means over distinct pairs (unbiased; may dip just below 0 for equal
    distributions). 0 exactly when the distributions are equal, in the limit."""
    a, b = _pair(x, y)
    between = torch.cdist(a, b).mean()
    return float(
        2 * between - _off_diagonal_mean(torch.cdist(a, a)) - _off_diagonal_mean(torch.cdist(b, b))
    )


def median_bandwidth(x: Any, y: Any) -> float:
    """The median heuristic: median Euclidean distance between distinct points of both sets."""
    a, b = _pair(x, y)
    pooled = torch.cat([a, b])
    d = torch.cdist(pooled, pooled)
    upper = d[torch.triu_indices(len(d), len(d), 1).unbind()]
    return float(upper.median())


def mmd_rbf(x: Any, y: Any, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy with the RBF kernel exp(−‖u − v‖² / 2σ²), unbiased
    (within-set means over distinct pairs). σ is ``bandwidth`` or, by default, the median
    heuristic on both sets together (:func:`median_bandwidth`)."""
    a, b = _pair(x, y)
    sigma = median_bandwidth(a, b) if bandwidth is None else float(bandwidth)
    if not sigma > 0:
        raise ValueError(f"bandwidth must be > 0, got {sigma!r} (all points equal?).")

    def kernel(u: Tensor, v: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(u, v).square() / (2 * sigma**2))

    within = _off_diagonal_mean(kernel(a, a)) + _off_diagonal_mean(kernel(b, b))
    return float(within - 2 * kernel(a, b).mean())


def frechet_distance(x: Any, y: Any) -> float:
    """‖μ_x − μ_y‖² + tr(Σ_x + Σ_y − 2(Σ_x Σ_y)^½) of two feature sets (FID's formula).

    Each set needs at least twice as many samples as features, or its covariance is mostly
    estimation noise. The matrix square root is taken through symmetric eigendecompositions
    (numerically safe for singular covariances; no scipy).
    """
    a, b = _pair(x, y)
    features = a.shape[1]
    for name, s in (("x", a), ("y", b)):
        if len(s) < 2 * features:
            raise ValueError(
                f"{name} has {len(s)} samples for {features} features: the Fréchet distance "
                f"needs at least {2 * features} (2× the features)."
            )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = (
        torch.cov(a.T).reshape(features, features),
        torch.cov(b.T).reshape(features, features),
    )
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_root)


def split_halves(x: Any, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two disjoint random halves of ``x`` (seeded): the real-vs-real floor's two sets."""
    data = torch.as_tensor(x if isinstance(x, Tensor) else np.asarray(x))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    half = len(data) // 2
    return data[order[:half]], data[order[half : 2 * half]]


class FIDLite:
    """FID-lite: a Fréchet distance on the penultimate features of a small classifier trained
    on the real data (no Inception weights, so not comparable with published FID).

    :param classifier: an ``nn.Sequential`` whose last layer maps features to logits; the
        features are the output of everything before it.
    """

    def __init__(self, classifier: nn.Sequential) -> None:
        if not isinstance(classifier, nn.Sequential) or len(classifier) < 2:
            raise TypeError(
                "classifier must be an nn.Sequential of at least two layers (features, then "
                f"the logit layer), got {type(classifier).__name__}."
            )
        self.classifier = classifier.eval()

    @classmethod
    def train(
        cls,
        images: Any,
        labels: Any,
        *,
        epochs: int = 30,
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> FIDLite:
        """Fit :func:`~sparse_rl.supervised.small_cnn` (``channels``; the features are its
        ``hidden`` units) on ``images`` ``(n, channels, h, w)`` and integer ``labels`` with
        Adam, dense."""
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        y = torch.as_tensor(np.asarray(labels)).long()
        if x.dim() != 4:
            raise ValueError(f"images must have shape (n, channels, h, w), got {tuple(x.shape)}.")
        check_int("hidden", hidden)
        with sn.seeded(check_int("seed", seed, 0)):
            model = small_cnn(
                x.shape[1], tuple(x.shape[2:]), int(y.max()) + 1, channels, hidden=hidden
            )
        fit(model, (x, y), None, F.cross_entropy, epochs=epochs, batch_size=64, lr=lr, seed=seed)
        return cls(model)

    @torch.no_grad()
    def features(self, images: Any, batch_size: int = 1024) -> Tensor:
        """The classifier's penultimate activations, ``(n, features)``."""
        x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
        body = self.classifier[:-1]
        return torch.cat(
            [body(x[i : i + batch_size].float()) for i in range(0, len(x), batch_size)]
        )

    def accuracy(self, images: Any, labels: Any) -> float:
        """The classifier's accuracy: a check that its features mean something."""
        with torch.no_grad():
            logits = self.classifier(torch.as_tensor(np.asarray(images), dtype=torch.float32))
        return float((logits.argmax(1) == torch.as_tensor(np.asarray(labels))).double().mean())

    def distance(self, x: Any, y: Any) -> float:
        """FID-lite between two image sets (use equal sizes to compare with the floor)."""
        return frechet_distance(self.features(x), self.features(y))

    def floor(self, real: Any, seed: int = 0) -> float:
        """FID-lite between two random halves of ``real``: what a perfect generator scores
        against one half with a half-sized sample."""
        a, b = split_halves(real, seed)
        return self.distance(a, b)


def save_sample_grid(images: Any, path: str | Path, columns: int = 8, title: str = "") -> Path:
    """A PNG of ``images`` ``(n, h, w)`` or ``(n, 1, h, w)`` in a grid, grey, each image scaled
    from [-1, 1] (values outside are clipped). Needs matplotlib (the ``bench`` or ``dev``
    extra)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    x = x.detach().cpu().float()
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3 or len(x) == 0:
        raise ValueError(f"images must have shape (n, h, w) or (n, 1, h, w), got {tuple(x.shape)}.")
    columns = check_int("columns", columns)
    rows = -(-len(x) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.6, rows * 0.6 + 0.3 * bool(title)))
    for ax, i in zip(np.ravel(axes), range(rows * columns), strict=True):
        ax.axis("off")
        if i < len(x):
            ax.imshow(x[i].clamp(-1, 1).numpy(), cmap="gray_r", vmin=-1, vmax=1)
    if title:
        fig.suptitle(title, fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
