"""Argument checks that name the parameter and the valid choices: bad input never passes."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence

import torch


def check_choice(param: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError that lists them."""
    options = sorted(choices)
    if isinstance(value, str) and value.lower() in options:
        return value.lower()
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value.lower(), options, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{param}={value!r} is not valid; choose one of {options}.{hint}")


def check_fraction(
    param: str, value: float, *, low_open: bool = True, high_closed: bool = True
) -> float:
    """Check a float lies in (0, 1] (or the bounds asked for); ints count, bools and NaN do not."""
    interval = ("(" if low_open else "[") + "0, 1" + ("]" if high_closed else ")")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{param} must be a finite number in {interval}, got {value!r}.")
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value <= 1 if high_closed else value < 1
    if not (low_ok and high_ok):
        raise ValueError(f"{param} must lie in {interval}, got {value!r}.")
    return float(value)


def check_positive_int(param: str, value: object, *, allow_zero: bool = False) -> int:
    """Check an integer is positive (or non-negative); bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{param} must be an integer {bound}, got {value!r}.")
    return value


def check_finite(param: str, value: object) -> float:
    """Check a float is finite; ints count, bools, strings and None do not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{param} must be a finite number, got {value!r}.")
    return float(value)


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
