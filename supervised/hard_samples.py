"""Hard samples and data-limited subsets: EL2N scores (Paul et al., NeurIPS 2021) and the
subsets the hard-sample experiments train on.

EL2N of a sample is the L2 norm of (softmax output − one-hot label), averaged over a few models
(initialisations) taken early in training: samples the networks have not fitted yet, mislabelled
ones among them, score high. The squared variant (a per-sample Brier score) ranks samples the
same for one model, but not once it is averaged over models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_int

from .corruptions import predict
from .data_pruning import subset_size
from .training import fit


def _labels(labels: Any, n: int) -> Tensor:
    y = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    if y.shape != (n,) or y.is_floating_point() or y.is_complex():
        raise ValueError(f"labels must be {n} class indices, got {tuple(y.shape)} {y.dtype}.")
    return y.long().cpu()


def _inputs(inputs: Any) -> Tensor:
    if isinstance(inputs, Tensor):
        return inputs
    array = np.asarray(inputs)
    dtype = torch.get_default_dtype() if np.issubdtype(array.dtype, np.floating) else None
    return torch.as_tensor(array, dtype=dtype)


def el2n_scores(
    models: nn.Module | Iterable[nn.Module],
    inputs: Any,
    labels: Any,
    batch_size: int = 1024,
) -> Tensor:
    """EL2N per sample: ‖softmax(model(x)) − onehot(y)‖₂, the mean over ``models``.

    In [0, √2]; higher = harder. Pass models early in training (a few epochs, several seeds:
    :func:`early_el2n_scores` does both). Eval mode, no gradients; the models' modes are kept.
    """
    members = [models] if isinstance(models, nn.Module) else list(models)
    if not members:
        raise ValueError("models is empty: EL2N needs at least one model.")
    x = _inputs(inputs)
    y = _labels(labels, len(x))
    batch_size = check_int("batch_size", batch_size)
    total = torch.zeros(len(x), dtype=torch.float64)
    for model in members:
        logits = predict(model, x, batch_size)
        if logits.ndim != 2 or (len(y) and (y.min() < 0 or y.max() >= logits.shape[1])):
            raise ValueError(
                f"labels must be class indices in [0, {logits.shape[-1] - 1}] for outputs of "
                f"shape {tuple(logits.shape)}."
            )
        probs = logits.double().softmax(dim=1)
        total += (probs - F.one_hot(y, logits.shape[1]).double()).norm(dim=1)
    return (total / len(members)).float()


def early_el2n_scores(
    make_model: Callable[[], nn.Module],
    inputs: Any,
    labels: Any,
    *,
    epochs: int = 3,
    seeds: Sequence[int] = (0, 1, 2, 3),
    **fit_kwargs: Any,
) -> Tensor:
    """EL2N averaged over ``len(seeds)`` models, each built by ``make_model()`` under
    ``sn.seeded(seed)`` and trained ``epochs`` epochs on the data with :func:`fit`
    (``fit_kwargs``: ``lr``, ``batch_size``, ``sparsity``, ...): the paper's "a few epochs into
    training, averaged over several initialisations". The caller's global torch generator is
    left as it was."""
    epochs = check_int("epochs", epochs)
    seeds = [check_int("seeds", s, 0) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: EL2N needs at least one model.")
    x = _inputs(inputs)
    y = _labels(labels, len(x))
    models = []
    for seed in seeds:
        with sn.seeded(seed):
            model = make_model()
        fit(model, (x, y), epochs=epochs, seed=seed, **fit_kwargs)
        models.append(model)
    return el2n_scores(models, x, y)


def hardest_subset(scores: Any, fraction: float) -> Tensor:
    """Indices of the ``fraction`` of samples with the highest scores, hardest first (ties in
    index order): the data-limited "hardest p%" training set."""
    s = torch.as_tensor(np.asarray(scores.cpu() if isinstance(scores, Tensor) else scores))
    if s.ndim != 1 or len(s) == 0 or not torch.isfinite(s.double()).all():
        raise ValueError(
            f"scores must be a non-empty 1-D array of finite numbers, got shape {tuple(s.shape)}."
        )
    order = torch.argsort(-s.double(), stable=True)
    return order[: subset_size(len(s), fraction)]


def random_subset(n: int, fraction: float, seed: int = 0) -> Tensor:
    """Sorted indices of a seeded random ``fraction`` of ``n`` samples: the data-limited
    (``p_data``) baseline."""
    size = subset_size(n, fraction)
    g = torch.Generator().manual_seed(check_int("seed", seed, 0))
    return torch.randperm(n, generator=g)[:size].sort().values
