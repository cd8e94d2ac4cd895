"""Sparse fine-tuning of pruned language models (SEFT): Wanda and magnitude pruning into masks,
and a ``transformers.TrainerCallback`` that fine-tunes at the exact sparsity.

The pruning functions need torch only; ``SparsityCallback``, ``export_pretrained`` and the
settings they use need the ``llm`` extra (transformers) and are imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .pruning import (
    input_norms,
    measured_sparsity,
    output_head,
    prune_magnitude,
    prune_wanda,
    refuse_conv1d,
    target_layers,
)

if TYPE_CHECKING:
    from .callback import (
        LLM_SPARSITY,
        SEFT_SCHEDULE,
        SparsityCallback,
        export_pretrained,
        resolve_settings,
        unwrap_optimizer,
    )

#: Names that need transformers (the ``llm`` extra), from ``callback.py``.
_TRANSFORMERS = (
    "LLM_SPARSITY",
    "SEFT_SCHEDULE",
    "SparsityCallback",
    "export_pretrained",
    "resolve_settings",
    "unwrap_optimizer",
)


def __getattr__(name: str) -> Any:
    if name in _TRANSFORMERS:
        return getattr(import_module(".callback", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LLM_SPARSITY",
    "SEFT_SCHEDULE",
    "SparsityCallback",
    "export_pretrained",
    "input_norms",
    "measured_sparsity",
    "output_head",
    "prune_magnitude",
    "prune_wanda",
    "refuse_conv1d",
    "resolve_settings",
    "target_layers",
    "unwrap_optimizer",
]
