"""Schedules over optimizer steps: drop-fraction decay and the cubic density ramp of pruning."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine", "linear")


def decayed_fraction(
    fraction: float, schedule: str, step: int, start: int, end: int | None
) -> float:
    """Drop fraction at ``step``: constant, or decayed from ``fraction`` at ``start`` to 0.

    It reaches 0 at ``end``; decay needs an ``end``; without one the fraction stays constant.
    """
    if schedule == "constant" or end is None:
        return fraction
    progress = min(max((step - start) / (end - start), 0.0), 1.0)
    if schedule == "cosine":
        return fraction * 0.5 * (1.0 + math.cos(math.pi * progress))
    return fraction * (1.0 - progress)


def cubic_remaining(step: int, start: int, end: int) -> float:
    """Zhu & Gupta's cubic ramp: 1 before ``start``, 0 after ``end``, (1 - progress)^3 between."""
    if step <= start:
        return 1.0
    if step >= end:
        return 0.0
    return (1.0 - (step - start) / (end - start)) ** 3
