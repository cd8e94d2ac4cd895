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
from .denoisers import DENSE_LAYERS, MLPDenoiser, TinyUNet, timestep_embedding
from .diffusion import (
    BETA_SCHEDULES,
    DIFFUSION_SPARSITY,
    EMA,
    SAMPLERS,
    Diffusion,
    DiffusionTraining,
    beta_schedule,
    diffusion_sparsity,
    train_diffusion,
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
from .generative_metrics import (
    FIDLite,
    energy_distance,
    frechet_distance,
    median_bandwidth,
    mmd_rbf,
    save_sample_grid,
    split_halves,
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
    "BETA_SCHEDULES",
    "COMBINE",
    "CORRUPTIONS",
    "DENSE_LAYERS",
    "DIFFUSION_SPARSITY",
    "EMA",
    "IMPORTANCES",
    "KINDS",
    "NEUROTRAILS_SPARSITY",
    "POLICIES",
    "SAMPLERS",
    "SEVERITIES",
    "SUPERVISED_SPARSITY",
    "TEST_PGD",
    "TRAIN_PGD",
    "CorruptedDataset",
    "CorruptionBenchmark",
    "CorruptionReport",
    "Diffusion",
    "DiffusionTraining",
    "DynamicPruningSampler",
    "EpochRecord",
    "FIDLite",
    "History",
    "IndexedDataset",
    "MLPDenoiser",
    "MarkovLanguage",
    "MultiHeadEnsemble",
    "PartCount",
    "PrunedEpoch",
    "PruningStats",
    "QuickSelection",
    "SparseFeatureSelector",
    "SparsityCallback",
    "TinyLMConfig",
    "TinyUNet",
    "active_parameters",
    "beta_schedule",
    "budget_density",
    "corrupt",
    "dense_parameters",
    "diffusion_sparsity",
    "drop_timesteps",
    "early_el2n_scores",
    "el2n_scores",
    "energy_distance",
    "ensemble_metrics",
    "evaluate",
    "export_pretrained",
    "fit",
    "flatten_positions",
    "forward_macs",
    "frechet_distance",
    "hardest_subset",
    "input_attribution",
    "input_degree",
    "input_strength",
    "item_seed",
    "median_bandwidth",
    "metrics",
    "mlp",
    "mmd_rbf",
    "part_count",
    "pgd_accuracy",
    "pgd_attack",
    "prune_magnitude",
    "prune_wanda",
    "random_subset",
    "save_sample_grid",
    "small_cnn",
    "split_halves",
    "stopping_updater",
    "subset_size",
    "timestep_embedding",
    "tiny_causal_lm",
    "train_diffusion",
    "train_epoch_pruned",
    "training_sparsity",
]
