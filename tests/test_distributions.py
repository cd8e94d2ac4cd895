"""Density distributions: uniform and explicit counts, ERK's global target and saturation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from sparse_rl import sparse_nets as sn

shapes_strategy = st.dictionaries(
    keys=st.sampled_from([f"l{i}" for i in range(6)]),
    values=st.one_of(
        st.tuples(st.integers(1, 300), st.integers(1, 300)),  # Linear
        st.tuples(st.integers(1, 16), st.integers(1, 16), st.integers(1, 5)),  # Conv1d
        st.tuples(st.integers(1, 16), st.integers(1, 16), st.integers(1, 5), st.integers(1, 5)),
    ),
    min_size=1,
    max_size=6,
)
#: Densities in (0, 1]; subnormal floats are left out (their ERK scale underflows to 0).
densities = st.floats(1e-9, 1.0)


def erk_raw(shape: tuple[int, ...]) -> float:
    """Erdős–Rényi-Kernel score of a layer: sum of its dimensions over their product."""
    return sum(shape) / math.prod(shape)


@given(shapes=shapes_strategy, density=densities)
def test_erk_total_hits_global_target(shapes: dict[str, tuple[int, ...]], density: float) -> None:
    """ERK counts add up to round(density × total) (when every layer's share is at least one
    weight; otherwise each layer keeps one) and never exceed a layer's size."""
    counts = sn.layer_counts(shapes, density, "erk")
    numel = {n: math.prod(s) for n, s in shapes.items()}
    target = round(density * sum(numel.values()))
    per_layer = sn.erk_densities(shapes, density)
    assert all(1 <= counts[n] <= numel[n] for n in shapes)
    if all(per_layer[n] * numel[n] >= 1 for n in shapes):
        assert sum(counts.values()) == target  # documented: exactly, within one weight at worst
    else:
        tiny = sum(per_layer[n] * numel[n] < 1 for n in shapes)
        assert target - 1 <= sum(counts.values()) <= target + tiny
    for n in shapes:  # each count is its ERK share, rounded
        assert abs(counts[n] - per_layer[n] * numel[n]) < 1 or counts[n] == 1


@given(shapes=shapes_strategy, density=densities)
def test_erk_saturated_layers_dense_rest_rescaled(
    shapes: dict[str, tuple[int, ...]], density: float
) -> None:
    """ERK densities: one common scale ε × raw score for the sparse layers, density 1 for the
    layers whose ε × raw score would exceed 1, and the weighted mean equals the target."""
    per_layer = sn.erk_densities(shapes, density)
    numel = {n: math.prod(s) for n, s in shapes.items()}
    assert math.isclose(
        sum(per_layer[n] * numel[n] for n in shapes),
        density * sum(numel.values()),
        rel_tol=1e-9,
    )
    sparse = [n for n in shapes if per_layer[n] < 1.0]
    dense = [n for n in shapes if per_layer[n] >= 1.0]
    assert all(0 < per_layer[n] <= 1.0 + 1e-12 for n in shapes)
    if sparse:
        scales = [per_layer[n] / erk_raw(shapes[n]) for n in sparse]
        eps = scales[0]
        assert all(math.isclose(s, eps, rel_tol=1e-9) for s in scales)
        for n in dense:  # a dense layer is one the common scale would push past density 1
            assert eps * erk_raw(shapes[n]) >= 1.0 - 1e-9


def test_erk_known_example() -> None:
    """A tiny first layer next to a wide one: the small one is dense, the wide one rescaled."""
    shapes = {"small": (4, 2), "wide": (256, 256)}
    counts = sn.layer_counts(shapes, 0.5, "erk")
    assert counts == {"small": 8, "wide": round(0.5 * (8 + 65536)) - 8}
    assert sn.erk_densities(shapes, 0.5)["small"] == 1.0


def test_erk_gives_smaller_layers_higher_density() -> None:
    """ERK density falls with layer size (unlike uniform)."""
    shapes = {"a": (64, 8), "b": (64, 64), "c": (256, 64)}
    d = sn.erk_densities(shapes, 0.2)
    assert d["a"] > d["b"] > d["c"]


@given(shapes=shapes_strategy, density=densities)
def test_uniform_rounds_each_layer(shapes: dict[str, tuple[int, ...]], density: float) -> None:
    """Uniform (the default): each layer gets round(density × numel), at least one weight."""
    expected = {n: max(1, round(density * math.prod(s))) for n, s in shapes.items()}
    assert sn.layer_counts(shapes, density, "uniform") == expected
    assert sn.layer_counts(shapes, density) == expected


def test_density_one_is_dense() -> None:
    """Density 1 keeps every weight, for both distributions."""
    shapes = {"a": (3, 5), "b": (7, 2, 3)}
    for dist in sn.DISTRIBUTIONS:
        assert sn.layer_counts(shapes, 1.0, dist) == {"a": 15, "b": 42}


def test_explicit_per_layer_densities() -> None:
    """A mapping gives each layer its own density; sparsify applies it with exact counts."""
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = sn.sparsify(model, optimizer, {"0": 0.25, "2": 1.0})
    assert {n: int(m.sum()) for n, m in sparsity.masks.items()} == {"0": 50, "2": 100}


def test_explicit_mapping_must_name_exactly_the_layers() -> None:
    """A mapping with a missing or unknown layer, or combined with a distribution, is refused."""
    shapes = {"a": (3, 3), "b": (3, 3)}
    with pytest.raises(ValueError, match=r"missing: \['b'\]"):
        sn.layer_counts(shapes, {"a": 0.5})
    with pytest.raises(ValueError, match=r"unknown: \['c'\]"):
        sn.layer_counts(shapes, {"a": 0.5, "b": 0.5, "c": 0.5})
    with pytest.raises(ValueError, match="distribution='erk' cannot be combined"):
        sn.layer_counts(shapes, {"a": 0.5, "b": 0.5}, "erk")
    with pytest.raises(ValueError, match=r"density\['b'\] must lie in \(0, 1\]"):
        sn.layer_counts(shapes, {"a": 0.5, "b": 1.5})


def test_sparsify_with_erk_matches_layer_counts() -> None:
    """sparsify(distribution="erk") gives each layer exactly its ERK count, Conv layers too."""
    model = nn.ModuleDict(
        {"conv2d": nn.Conv2d(3, 8, 3), "conv1d": nn.Conv1d(8, 8, 3), "fc": nn.Linear(64, 10)}
    )
    optimizer = torch.optim.Adam(model.parameters())
    sparsity = sn.sparsify(model, optimizer, 0.2, "erk")
    shapes = {n: tuple(model.get_submodule(n).weight.shape) for n in sparsity.masks}
    expected = sn.layer_counts(shapes, 0.2, "erk")
    assert {n: int(m.sum()) for n, m in sparsity.masks.items()} == expected
    total = sum(math.prod(s) for s in shapes.values())
    assert abs(sum(expected.values()) - round(0.2 * total)) <= 1
