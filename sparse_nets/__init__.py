"""The sparse core: masked layers whose topology evolves during training.

``sparsify(model, optimizer, ...)`` makes a model sparse in place and returns the
:class:`Sparsity` that keeps it so; the training loop does not change.
"""

from .convert import CSRDecision, CSRLinear, densify, sparse_inference
from .distributions import DISTRIBUTIONS, erk_densities, layer_counts
from .layers import SPARSIFIABLE, Selector, first_layer, last_layer, select_layers
from .mask_init import MASK_INITS, SNIP, MaskInit, ScoreFn
from .schedules import SCHEDULES
from .seeding import seeded
from .settings import SparsitySettings, updater_from
from .sparsity import MASK, Sparsity, sparsify
from .stats import LayerStats, SparsityStats
from .updaters import (
    SEFT,
    SET,
    UPDATERS,
    GradualPruning,
    RigL,
    Sensitivity,
    Static,
    TopologyUpdater,
    make_updater,
)

__all__ = [
    "DISTRIBUTIONS",
    "MASK",
    "MASK_INITS",
    "SCHEDULES",
    "SEFT",
    "SET",
    "SNIP",
    "SPARSIFIABLE",
    "UPDATERS",
    "CSRDecision",
    "CSRLinear",
    "GradualPruning",
    "LayerStats",
    "MaskInit",
    "RigL",
    "ScoreFn",
    "Selector",
    "Sensitivity",
    "Sparsity",
    "SparsitySettings",
    "SparsityStats",
    "Static",
    "TopologyUpdater",
    "densify",
    "erk_densities",
    "first_layer",
    "last_layer",
    "layer_counts",
    "make_updater",
    "seeded",
    "select_layers",
    "sparse_inference",
    "sparsify",
    "updater_from",
]
