"""Optimizer-state care: moments of inactive and freshly grown weights are exactly zero."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def held_parameters(optimizer: torch.optim.Optimizer) -> set[int]:
    """Ids of every parameter the optimizer updates."""
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def shaped_state(optimizer: torch.optim.Optimizer, param: nn.Parameter) -> list[Tensor]:
    """Every state tensor shaped like ``param``: Adam/AdamW moments, RMSprop averages, momentum.

    Scalar state such as Adam's step count is shared by all positions and is not included.
    """
    state = optimizer.state.get(param, {})
    return [v for v in state.values() if isinstance(v, Tensor) and v.shape == param.shape]


@torch.no_grad()
def zero_state(optimizer: torch.optim.Optimizer, param: nn.Parameter, where: Tensor) -> None:
    """Set the optimizer state of ``param`` to exactly zero at ``where`` (NaN included)."""
    for value in shaped_state(optimizer, param):
        value.masked_fill_(where, 0)
