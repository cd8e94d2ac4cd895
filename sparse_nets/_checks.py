"""Argument checks that name the parameter and the valid choices: bad input never passes."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable


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
