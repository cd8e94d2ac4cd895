"""Supervised task modules on the sparse core: a training loop, shared metrics, and feature
selection with sparse networks (``SparseFeatureSelector``, ``QuickSelection``).

Depends on :mod:`sparse_rl.sparse_nets` (torch) only; the scikit-learn selectors need the
``supervised`` extra and are imported on first use, so ``import sparse_rl.supervised`` stays
light. Nothing here imports the RL side (``agents``, ``envs``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from . import metrics
from .importance import IMPORTANCES, input_attribution, input_degree, input_strength
from .networks import mlp
from .training import (
    SUPERVISED_SPARSITY,
    EpochRecord,
    History,
    evaluate,
    fit,
    stopping_updater,
    training_sparsity,
)

if TYPE_CHECKING:
    from .feature_selection import SparseFeatureSelector
    from .quick_selection import QuickSelection

#: Names that need scikit-learn, and the module that holds each.
_SKLEARN = {
    "SparseFeatureSelector": "feature_selection",
    "QuickSelection": "quick_selection",
}


def __getattr__(name: str) -> Any:
    if name in _SKLEARN:
        return getattr(import_module(f".{_SKLEARN[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "IMPORTANCES",
    "SUPERVISED_SPARSITY",
    "EpochRecord",
    "History",
    "QuickSelection",
    "SparseFeatureSelector",
    "evaluate",
    "fit",
    "input_attribution",
    "input_degree",
    "input_strength",
    "metrics",
    "mlp",
    "stopping_updater",
    "training_sparsity",
]
