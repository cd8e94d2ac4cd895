"""Supervised task modules on the sparse core: a training loop, shared metrics, feature
selection with sparse networks (``SparseFeatureSelector``, ``QuickSelection``), robustness and
hard samples (``CorruptionBenchmark``, ``pgd_accuracy``, ``el2n_scores``), sparse multi-head
ensembles (NeuroTrails: ``MultiHeadEnsemble``), dynamic data pruning
(``DynamicPruningSampler``), and sparse fine-tuning of pruned language models (SEFT:
``prune_wanda``, ``SparsityCallback``, in ``llm``).

Depends on :mod:`sparse_rl.sparse_nets` (torch) only; the scikit-learn selectors need the
``supervised`` extra and the Trainer callback the ``llm`` extra (transformers); both are
imported on first use, so ``import sparse_rl.supervised`` stays light. Nothing here imports the
RL side (``agents``, ``envs``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from . import metrics
from .adversarial import TEST_PGD, TRAIN_PGD, pgd_accuracy, pgd_attack
from .corruptions import (
    CORRUPTIONS,
    KINDS,
    SEVERITIES,
    CorruptedDataset,
    CorruptionBenchmark,
    CorruptionReport,
    corrupt,
    item_seed,
)
from .data_pruning import (
    POLICIES,
    DynamicPruningSampler,
    IndexedDataset,
    PrunedEpoch,
    PruningStats,
    drop_timesteps,
    train_epoch_pruned,
)
from .ensembles import (
    COMBINE,
    NEUROTRAILS_SPARSITY,
    MultiHeadEnsemble,
    PartCount,
    active_parameters,
    budget_density,
    dense_parameters,
    ensemble_metrics,
    flatten_positions,
    forward_macs,
    part_count,
)
from .hard_samples import (
    early_el2n_scores,
    el2n_scores,
    hardest_subset,
    random_subset,
    subset_size,
)
from .importance import IMPORTANCES, input_attribution, input_degree, input_strength
from .language import MarkovLanguage, TinyLMConfig, tiny_causal_lm
from .networks import mlp, small_cnn
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
    from .llm import SparsityCallback, export_pretrained, prune_magnitude, prune_wanda
    from .quick_selection import QuickSelection

#: Names that need scikit-learn, and the module that holds each.
_SKLEARN = {
    "SparseFeatureSelector": "feature_selection",
    "QuickSelection": "quick_selection",
}
#: Names of the LLM subpackage (SEFT), whose callback needs transformers (the ``llm`` extra).
_LLM = ("SparsityCallback", "export_pretrained", "prune_magnitude", "prune_wanda")


def __getattr__(name: str) -> Any:
    if name in _SKLEARN:
        return getattr(import_module(f".{_SKLEARN[name]}", __name__), name)
    if name in _LLM:
        return getattr(import_module(".llm", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COMBINE",
    "CORRUPTIONS",
    "IMPORTANCES",
    "KINDS",
    "NEUROTRAILS_SPARSITY",
    "POLICIES",
    "SEVERITIES",
    "SUPERVISED_SPARSITY",
    "TEST_PGD",
    "TRAIN_PGD",
    "CorruptedDataset",
    "CorruptionBenchmark",
    "CorruptionReport",
    "DynamicPruningSampler",
    "EpochRecord",
    "History",
    "IndexedDataset",
    "MarkovLanguage",
    "MultiHeadEnsemble",
    "PartCount",
    "PrunedEpoch",
    "PruningStats",
    "QuickSelection",
    "SparseFeatureSelector",
    "SparsityCallback",
    "TinyLMConfig",
    "active_parameters",
    "budget_density",
    "corrupt",
    "dense_parameters",
    "drop_timesteps",
    "early_el2n_scores",
    "el2n_scores",
    "ensemble_metrics",
    "evaluate",
    "export_pretrained",
    "fit",
    "flatten_positions",
    "forward_macs",
    "hardest_subset",
    "input_attribution",
    "input_degree",
    "input_strength",
    "item_seed",
    "metrics",
    "mlp",
    "part_count",
    "pgd_accuracy",
    "pgd_attack",
    "prune_magnitude",
    "prune_wanda",
    "random_subset",
    "small_cnn",
    "stopping_updater",
    "subset_size",
    "tiny_causal_lm",
    "train_epoch_pruned",
    "training_sparsity",
]
