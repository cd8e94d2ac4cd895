"""QuickSelection (Atashgahi et al., Machine Learning 2022): unsupervised feature selection with
a sparse denoising autoencoder, as a scikit-learn selector.

An input that the autoencoder needs to rebuild its (noisy) input keeps strong connections; the
sum of |weights| leaving an input (its *strength*) ranks the features without labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_int, check_number

from .feature_selection import Importance, NetworkSelector, validate_data
from .networks import mlp


class QuickSelection(NetworkSelector):
    """Select features without labels: a sparse denoising autoencoder, ranked by strength.

    ``n_features → hidden (sigmoid) → n_features`` on standardised inputs, ``density`` of the
    weights active, evolved by SET (the paper: ζ = 0.2 of each layer's weights replaced once per
    epoch, for the whole run), trained by SGD with momentum to rebuild each input from a copy
    with Gaussian noise of standard deviation ``noise`` added. Paper settings: 1000 hidden units,
    noise 0.2, SGD 0.01 with momentum 0.9, 100 epochs; density there follows from ε = 13.

    :param n_features_to_select: an integer, a fraction of the features, or None (half).
    :param importance: "strength" (Σ|W₁| per input, the paper's), "degree" (active
        connections per input), or a callable ``(model, X, None) -> scores``.
    :param hidden: width of the one hidden layer.
    :param density: fraction of active weights; 1.0 trains a dense autoencoder.
    :param distribution: "erk" or "uniform" spread of the density over the two layers.
    :param updater: "set", "rigl", "static", ...: once per epoch, drop fraction 0.2, never
        stopping (QuickSelection's SET); a mapping of fields laid over those; or an
        ``sn.TopologyUpdater`` used as given.
    :param noise: standard deviation of the input noise, in standardised units.
    :param validation_fraction: 0 or None (the paper: train all epochs, keep the last) or a
        share held out to keep the epoch of lowest clean reconstruction error.

    The remaining parameters and the fitted attributes are those of
    :class:`SparseFeatureSelector`; ``model_`` is the autoencoder.
    """

    _IMPORTANCES = ("strength", "degree")

    def __init__(
        self,
        n_features_to_select: int | float | None = None,
        *,
        importance: Importance = "strength",
        hidden: int = 1000,
        density: float = 0.2,
        distribution: str = "erk",
        updater: str | Mapping[str, Any] | sn.TopologyUpdater = "set",
        noise: float = 0.2,
        epochs: int = 100,
        batch_size: int | str = 100,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        patience: int | None = None,
        validation_fraction: float | None = 0.0,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_features_to_select = n_features_to_select
        self.importance = importance
        self.hidden = hidden
        self.density = density
        self.distribution = distribution
        self.updater = updater
        self.noise = noise
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> QuickSelection:
        """Train the autoencoder on ``X`` (``y`` is ignored) and rank the features."""
        self._check_common()
        hidden = check_int("hidden", self.hidden)
        noise = check_number("noise", self.noise, low=0)
        check_number("momentum", self.momentum, low=0, high=1, high_open=True)
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        X = np.asarray(X, dtype=np.float64)
        seed = self._seed()
        inputs = self._standardise(X)
        with sn.seeded(seed):
            model = mlp(X.shape[1], (hidden,), X.shape[1], "sigmoid")

        def add_noise(x: Tensor) -> Tensor:
            return x + noise * torch.randn_like(x) if noise else x

        self._train(
            model,
            inputs,
            inputs,
            F.mse_loss,
            seed,
            lambda steps: self._sparsity(
                self.epochs * steps,
                interval=steps,
                drop_fraction=0.2,
                schedule="constant",
                stop_at=None,
            ),
            optimizer="sgd",
            momentum=self.momentum,
            augment=add_noise,
        )
        return self
