"""Argument checks shared by the agents: errors name the parameter and what is valid."""

from __future__ import annotations

import numpy as np


def check_choice(param: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{param}={value!r} is not valid; choose one of {list(choices)}.")


def check_int(name: str, value: object, low: int) -> None:
    """An integer (numpy ones too, bools not) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {low}, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}.")
