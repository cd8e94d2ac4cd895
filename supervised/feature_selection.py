"""Feature selection with sparse networks, as scikit-learn estimators.

:class:`SparseFeatureSelector` trains a sparse MLP with dynamic sparse training and ranks the
inputs by how much the network relies on them (Neuron-Attribution, ECAI 2024; QuickSelection's
strength; the input degree). It is a plain ``SelectorMixin`` + ``BaseEstimator``, so it works in
``Pipeline``, ``GridSearchCV``, ``clone``, ``cross_val_score`` and ``set_output``. The
unsupervised sibling is :class:`sparse_rl.supervised.QuickSelection`. Needs the ``supervised``
extra (scikit-learn).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

try:
    from sklearn.base import BaseEstimator
    from sklearn.feature_selection import SelectorMixin
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sparse_rl.supervised's selectors need scikit-learn >= 1.6: "
        "pip install 'sparse-rl[supervised]'"
    ) from error

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError, check_choice, check_fraction, check_int, check_number

from . import metrics
from .importance import IMPORTANCES, input_attribution, input_degree, input_strength
from .networks import mlp
from .training import History, fit, stopping_updater, training_sparsity

Importance = str | Callable[[nn.Module, Tensor, Tensor | None], Any]
TASKS = ("auto", "classification", "regression")
DISTRIBUTIONS = ("erk", "uniform")


class NetworkSelector(SelectorMixin, BaseEstimator):
    """What both selectors share: parameter checks, standardising, the validation split, the
    training run with per-epoch importance, and the selection from ``ranking_``.

    Subclasses store their parameters in ``__init__`` (scikit-learn's rule) and implement
    ``fit``; ``_IMPORTANCES`` lists the measures they accept by name.
    """

    _IMPORTANCES: tuple[str, ...] = IMPORTANCES

    # -- parameters -----------------------------------------------------------------------

    def _check_common(self) -> None:
        """Errors name the parameter, the value and what is valid, before any data is read."""
        k = self.n_features_to_select
        if k is not None:
            if isinstance(k, numbers.Integral) and not isinstance(k, bool):
                check_int("n_features_to_select", k)
            elif isinstance(k, float):
                check_fraction("n_features_to_select", k, high_closed=False)
            else:
                raise ConfigError(
                    f"n_features_to_select: {k!r} is not valid; give an integer >= 1, a "
                    "fraction in (0, 1) or None (half of the features)."
                )
        if not callable(self.importance):
            check_choice("importance", self.importance, self._IMPORTANCES)
        check_fraction("density", self.density)
        check_choice("distribution", self.distribution, DISTRIBUTIONS, ignore_case=True)
        if isinstance(self.updater, str):
            check_choice("updater", self.updater, tuple(sn.UPDATERS), ignore_case=True)
        elif not isinstance(self.updater, (Mapping, sn.TopologyUpdater)):
            raise ConfigError(
                f"updater: {self.updater!r} is not valid; give one of {list(sn.UPDATERS)}, a "
                "mapping like {'name': 'rigl', 'interval': 20} or an sn.TopologyUpdater."
            )
        check_int("epochs", self.epochs)
        if self.batch_size != "auto":
            check_int("batch_size", self.batch_size)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0)
        if self.patience is not None:
            check_int("patience", self.patience)
        fraction = self.validation_fraction
        if fraction is not None and fraction != 0:
            check_fraction("validation_fraction", fraction, high_closed=False)
        if self.random_state is not None and not isinstance(
            self.random_state, (numbers.Integral, np.random.RandomState)
        ):
            raise ConfigError(
                f"random_state: {self.random_state!r} is not valid; give None, an integer or a "
                "numpy RandomState."
            )

    def _n_selected(self) -> int:
        """``n_features_to_select`` as a count for the features seen in ``fit``."""
        d = self.n_features_in_
        k = self.n_features_to_select
        if k is None:
            return max(1, d // 2)
        if isinstance(k, float):
            return max(1, int(k * d))
        if k > d:
            raise ConfigError(
                f"n_features_to_select: {k!r} is not valid; the data has {d} features, so give "
                f"an integer in [1, {d}], a fraction in (0, 1) or None."
            )
        return int(k)

    def _seed(self) -> int:
        """An int random_state is the seed itself (same int, same selection); None or a
        RandomState draws one."""
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    # -- data -----------------------------------------------------------------------------

    def _standardise(self, X: np.ndarray) -> Tensor:
        """Zero mean, unit variance per feature (constant features keep scale 1): the scores
        compare gradients and weights across inputs, which only means something on one scale."""
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return torch.tensor((X - self.mean_) / self.scale_, dtype=torch.float32)

    def _split(self, n: int, seed: int, stratify: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """Train and validation indices (validation empty when ``validation_fraction`` is 0).
        Stratified by class when every class can appear on both sides."""
        index = np.arange(n)
        fraction = self.validation_fraction
        if not fraction:
            return index, index[:0]
        if n < 2:
            raise ValueError(
                f"validation_fraction={fraction} needs at least 2 samples, got n_samples = {n}."
            )
        if stratify is not None:
            counts = np.bincount(stratify)
            n_val = math.ceil(fraction * n)
            if counts.min() < 2 or not len(counts) <= n_val <= n - len(counts):
                stratify = None
        train, val = train_test_split(
            index, test_size=fraction, random_state=seed % 2**32, stratify=stratify
        )
        return np.sort(train), np.sort(val)

    def _batch_size(self, n_train: int) -> int:
        """``"auto"``: 32 below 200 training samples, else 100 (the Neuron-Attribution setting)."""
        if self.batch_size == "auto":
            return 32 if n_train < 200 else 100
        return int(self.batch_size)

    # -- training -------------------------------------------------------------------------

    def _sparsity(self, total_steps: int, **updater_defaults: Any) -> sn.SparsitySettings | None:
        if self.density == 1.0:
            return None
        updater = stopping_updater(self.updater, total_steps, name="updater", **updater_defaults)
        given = {"density": self.density, "distribution": self.distribution, "updater": updater}
        return training_sparsity(given, total_steps)

    def _train(
        self,
        model: nn.Module,
        X: Tensor,
        targets: Tensor,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        seed: int,
        sparsity: Callable[[int], sn.SparsitySettings | None],
        *,
        stratify: np.ndarray | None = None,
        callable_targets: Tensor | None = None,
        **fit_kwargs: Any,
    ) -> None:
        """Train ``model``, then set the fitted attributes (scores, ranking, history, stats).

        :param sparsity: the settings for a given number of optimizer steps per epoch (the
            updater's interval and schedule depend on it).
        """
        self._n_selected()  # more features asked for than the data has: an error before training
        train, val = self._split(len(X), seed, stratify)
        batch_size = self._batch_size(len(train))
        steps_per_epoch = math.ceil(len(train) / batch_size)
        tracker = _ImportanceTracker(self.importance, X.shape[1])
        history = fit(
            model,
            (X[train], targets[train]),
            (X[val], targets[val]) if len(val) else None,
            loss_fn,
            epochs=self.epochs,
            batch_size=batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            seed=seed,
            sparsity=sparsity(steps_per_epoch),
            on_batch=tracker.on_batch,
            on_epoch=tracker.on_epoch,
            progress=bool(self.verbose),
            **fit_kwargs,
        )
        if history.sparsity is not None:
            history.sparsity.remove()  # masks stay on the model; hooks would block pickling
            history.sparsity = None
        scores = tracker.final(model, history, X, callable_targets)
        self.model_ = model
        self.history_: History = history
        self.sparsity_stats_ = history.sparsity_stats
        self.importance_history_ = np.stack(tracker.history)
        self.feature_importances_ = scores
        order = np.argsort(-scores, kind="stable")  # ties: the lower feature index first
        ranking = np.empty(len(scores), dtype=int)
        ranking[order] = np.arange(1, len(scores) + 1)
        self.ranking_ = ranking

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "ranking_")
        return self.ranking_ <= self._n_selected()


class _ImportanceTracker:
    """Scores per epoch while ``fit`` trains; attribution accumulates over training batches."""

    def __init__(self, importance: Importance, n_features: int) -> None:
        self.importance = importance
        self.history: list[np.ndarray] = []
        self._epoch = torch.zeros(n_features, dtype=torch.float64)
        self._total = torch.zeros(n_features, dtype=torch.float64)

    def on_batch(self, model: nn.Module, inputs: Tensor, targets: Tensor) -> None:
        if self.importance == "attribution":
            self._epoch += input_attribution(model, inputs).cpu()

    def on_epoch(self, model: nn.Module, record: Any) -> None:
        if self.importance == "attribution":
            self._total += self._epoch
            self._epoch.zero_()
            self.history.append(self._total.numpy().copy())
        elif self.importance in ("strength", "degree"):
            self.history.append(self._measure(model))

    def _measure(self, model: nn.Module) -> np.ndarray:
        measure = input_strength if self.importance == "strength" else input_degree
        return measure(model).cpu().numpy()

    def final(self, model: nn.Module, history: History, X: Tensor, y: Tensor | None) -> np.ndarray:
        """Scores of the model as returned: attribution summed up to the best epoch; strength
        and degree of the restored weights; a callable's scores on the standardised data."""
        if self.importance == "attribution":
            return self.history[history.best_epoch]
        if isinstance(self.importance, str):
            return self._measure(model)
        scores = np.asarray(metrics.as_numpy(self.importance(model, X, y)), dtype=np.float64)
        if scores.shape != (X.shape[1],) or not np.all(np.isfinite(scores)):
            raise ValueError(
                f"importance callable must return {X.shape[1]} finite scores (one per feature), "
                f"got shape {scores.shape}."
            )
        self.history = [scores]
        return scores


class SparseFeatureSelector(NetworkSelector):
    """Select features by training a sparse MLP with dynamic sparse training.

    The inputs are standardised; an MLP ``n_features → hidden → outputs`` (ReLU) is trained
    with Adam, ``density`` of its weights active (``distribution`` ERK or uniform) and its
    topology evolved by ``updater`` (SET, RigL, static, ...), with early stopping on a
    validation split. The weights and masks of the best validation epoch are kept.

    :param n_features_to_select: an integer, a fraction of the features, or None (half).
    :param importance: how inputs are ranked:

        - ``"attribution"`` (Neuron-Attribution): per training batch, Σ over outputs of the batch
          mean of |∂f_i/∂x_j|, taken on the **logits** (regression: the prediction), summed over
          all batches of all epochs up to the best-validation epoch. Sees interactions: it finds
          the two columns of an XOR, where univariate filters are at chance.
        - ``"strength"`` (QuickSelection): Σ|W₁| per input of the trained input layer.
        - ``"degree"``: active connections per input of the input layer (meaningless when dense).
        - a callable ``(model, X, y) -> scores``: called once after training with the trained
          model, all of ``fit``'s X standardised (a float32 tensor) and the targets as trained
          on (class indices, or standardised values).
    :param hidden: widths of the hidden layers (the paper: 1000, 100).
    :param density: fraction of active weights; 1.0 trains a dense network.
    :param distribution: "erk" or "uniform" spread of the density over the layers.
    :param updater: "set", "rigl", "static" (or another core updater name): every 10 steps,
        drop fraction 0.3 decayed by a cosine, stopping at 75% of the planned steps; a mapping
        of the updater's fields laid over those; or an ``sn.TopologyUpdater`` used as given.
    :param task: "auto" (continuous y: regression, else classification), "classification"
        (cross-entropy) or "regression" (mean squared error on standardised targets).
    :param epochs: most epochs; ``patience`` epochs without a lower validation loss stop early
        (the paper's 200 and 50: with patience 20, SET on an XOR of 2 in 50 columns stopped
        before it learned in 1 of 5 seeds, see docs/supervised.md).
    :param batch_size: an integer, or "auto" (32 below 200 training samples, else 100).
    :param lr: Adam's learning rate. :param weight_decay: Adam's L2 term.
    :param validation_fraction: share held out (stratified) for early stopping; 0 or None
        trains on everything for all epochs and keeps the last one.
    :param random_state: None, an integer (same integer, same scores) or a RandomState.
    :param verbose: show a progress bar over epochs.

    Fitted attributes: ``feature_importances_`` (n_features,), ``importance_history_``
    (epochs run × n_features: attribution accumulated up to each epoch, or strength / degree at
    each epoch's end; a callable's one row), ``ranking_`` (1 = most important, as in
    scikit-learn's RFE), ``model_`` (the trained torch MLP, on standardised inputs:
    ``(X - mean_) / scale_``), ``history_`` (per-epoch losses, accuracy, density; its
    ``best_epoch``), ``sparsity_stats_`` (None when dense), ``n_features_in_``.
    """

    def __init__(
        self,
        n_features_to_select: int | float | None = None,
        *,
        importance: Importance = "attribution",
        hidden: tuple[int, ...] = (1000, 100),
        density: float = 0.2,
        distribution: str = "erk",
        updater: str | Mapping[str, Any] | sn.TopologyUpdater = "set",
        task: str = "auto",
        epochs: int = 200,
        batch_size: int | str = "auto",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int | None = 50,
        validation_fraction: float | None = 0.15,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_features_to_select = n_features_to_select
        self.importance = importance
        self.hidden = hidden
        self.density = density
        self.distribution = distribution
        self.updater = updater
        self.task = task
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> SparseFeatureSelector:
        """Train the network on ``(X, y)`` and rank the features."""
        self._check_common()
        hidden = _widths(self.hidden)
        task = check_choice("task", self.task, TASKS, ignore_case=True)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True)
        X = np.asarray(X, dtype=np.float64)
        if task == "auto":
            continuous = type_of_target(y) in ("continuous", "continuous-multioutput")
            task = "regression" if continuous else "classification"
        seed = self._seed()
        inputs = self._standardise(X)
        if task == "classification":
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            _, codes = np.unique(y, return_inverse=True)
            targets = torch.tensor(codes, dtype=torch.long)
            outputs, loss_fn, metric = int(codes.max()) + 1, F.cross_entropy, metrics.accuracy
            stratify = codes
        else:
            values = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
            scale = values.std(axis=0)
            values = (values - values.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
            targets = torch.tensor(values, dtype=torch.float32)
            outputs, loss_fn, metric, stratify = values.shape[1], F.mse_loss, None, None
        with sn.seeded(seed):
            model = mlp(X.shape[1], hidden, outputs, "relu")
        self._train(
            model,
            inputs,
            targets,
            loss_fn,
            seed,
            lambda steps: self._sparsity(self.epochs * steps),
            stratify=stratify,
            callable_targets=targets,
            metric=metric,
        )
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _widths(hidden: Any) -> tuple[int, ...]:
    """``hidden`` as a tuple of layer widths (an integer is one hidden layer)."""
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        return (check_int("hidden", hidden),)
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise ConfigError(
            f"hidden: {hidden!r} is not valid; give a width (integer >= 1) or a tuple of them."
        )
    return tuple(check_int("hidden", h) for h in hidden)
