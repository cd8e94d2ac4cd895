"""The core's one check of its own (masks, which need torch); the others come from
:mod:`sparse_rl.validation`, the one validation module."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_mask(param: str, mask: object, shape: Sequence[int]) -> torch.Tensor:
    """Check a user-supplied mask is a tensor of 0/1 shaped like its weight.

    Anything else would scale weights (0.5) or revive them (NaN) on every re-masking multiply.
    ``param`` names it, e.g. "weight_mask of layer '0'". A meta tensor has no values to check.
    """
    shape = tuple(shape)
    if not isinstance(mask, torch.Tensor):
        raise ValueError(
            f"{param} must be a tensor of 0/1 shaped like the weight {shape}, "
            f"got {type(mask).__name__}."
        )
    if tuple(mask.shape) != shape:
        raise ValueError(
            f"{param} has shape {tuple(mask.shape)}, but the weight it masks has shape {shape}."
        )
    if mask.dtype != torch.bool and not mask.is_meta:
        bad = (mask != 0) & (mask != 1)  # NaN compares unequal to both
        if bool(bad.any()):
            value = mask[bad][0].item()
            raise ValueError(f"{param} must be 0/1 (bool, or exactly 0. and 1.), got {value!r}.")
    return mask
