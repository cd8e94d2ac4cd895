"""Layer densities: how a global density is spread over layers (uniform, ERK, or explicit)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sparse_rl.validation import check_choice, check_fraction

DISTRIBUTIONS = ("uniform", "erk")


def _erk_raw(shape: Sequence[int]) -> float:
    # Erdős–Rényi-Kernel: (sum of all dims) / (product of all dims), kernel dims included.
    return sum(shape) / math.prod(shape)


def _round_to_total(exact: dict[str, float], total: int) -> dict[str, int]:
    """Integer counts close to ``exact`` that add up to ``total`` (largest remainder)."""
    counts = {n: math.floor(v) for n, v in exact.items()}
    short = total - sum(counts.values())
    by_remainder = sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)
    for name in by_remainder[:short]:
        counts[name] += 1
    return counts


def erk_densities(shapes: Mapping[str, Sequence[int]], density: float) -> dict[str, float]:
    """Per-layer ERK densities whose weighted mean is ``density``; saturated layers stay dense."""
    numel = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: _erk_raw(s) for n, s in shapes.items()}
    target = density * sum(numel.values())
    dense: set[str] = set()
    while True:
        budget = target - sum(numel[n] for n in dense)
        free = [n for n in shapes if n not in dense]
        if not free:
            return dict.fromkeys(shapes, 1.0)
        eps = budget / sum(raw[n] * numel[n] for n in free)
        over = {n for n in free if eps * raw[n] > 1.0}
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
        dense |= over


def layer_counts(
    shapes: Mapping[str, Sequence[int]],
    density: float | Mapping[str, float],
    distribution: str | None = None,
) -> dict[str, int]:
    """Active-weight count per layer.

    ``uniform``: each layer gets round(density × numel). ``erk``: ERK densities, rounded so the
    total is exactly round(density × total). A mapping gives explicit per-layer densities.
    """
    numel = {n: math.prod(s) for n, s in shapes.items()}
    if isinstance(density, Mapping):
        if distribution is not None:
            raise ValueError(
                f"distribution={distribution!r} cannot be combined with per-layer densities; "
                "pass either a float density with a distribution or a mapping of layer → density."
            )
        unknown = sorted(set(density) - set(shapes))
        missing = sorted(set(shapes) - set(density))
        if unknown or missing:
            raise ValueError(
                f"density mapping must name exactly the selected layers {list(shapes)}; "
                f"unknown: {unknown}, missing: {missing}."
            )
        return {
            n: max(1, round(check_fraction(f"density[{n!r}]", density[n]) * numel[n]))
            for n in shapes
        }
    density = check_fraction("density", density)
    kind = check_choice("distribution", distribution or "uniform", DISTRIBUTIONS, ignore_case=True)
    if kind == "uniform":
        return {n: max(1, round(density * numel[n])) for n in shapes}
    per_layer = erk_densities(shapes, density)
    exact = {n: per_layer[n] * numel[n] for n in shapes}
    counts = _round_to_total(exact, round(density * sum(numel.values())))
    return {n: min(max(1, c), numel[n]) for n, c in counts.items()}
