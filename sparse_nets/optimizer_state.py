"""Optimizer-state care: moments of inactive and freshly grown weights are exactly zero."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def held_parameters(optimizer: torch.optim.Optimizer) -> set[int]:
    """Ids of every parameter the optimizer updates."""
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


@torch.no_grad()
def zero_state(optimizer: torch.optim.Optimizer, param: nn.Parameter, where: Tensor) -> None:
    """Zero every state tensor shaped like ``param`` (Adam moments, momentum, ...) at ``where``.

    Scalar state such as Adam's step count is shared by all positions and left alone.
    """
    for value in optimizer.state.get(param, {}).values():
        if isinstance(value, Tensor) and value.shape == param.shape:
            value.masked_fill_(where, 0)
