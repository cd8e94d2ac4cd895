"""Property tests: the masks' invariants hold after every backward and every optimizer step.

Random layer shapes (Linear, Conv1d, Conv2d), densities, distributions, updaters, optimizers and
training sequences. Expected counts are computed here, independently of the core, from the
documented rules: round(density × numel) per layer for uniform, ``layer_counts`` for ERK (checked
on its own in test_distributions.py), and the cubic schedule for gradual pruning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from helpers import assert_inactive_grads_zero, assert_sparse, snapshot, weight_shaped_state
from hypothesis import given, note
from hypothesis import strategies as st
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn

# -- strategies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """A layer to build and the shape of one input sample for it."""

    kind: str
    args: tuple[int, ...]
    sample: tuple[int, ...]

    def build(self) -> nn.Module:
        cls = {"linear": nn.Linear, "conv1d": nn.Conv1d, "conv2d": nn.Conv2d}[self.kind]
        return cls(*self.args)


@st.composite
def layer_specs(draw: st.DrawFn) -> LayerSpec:
    kind = draw(st.sampled_from(["linear", "conv1d", "conv2d"]))
    if kind == "linear":
        i, o = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        return LayerSpec(kind, (i, o), (i,))
    cin, cout, k = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    size = draw(st.integers(k, k + 2))
    sample = (cin, size) if kind == "conv1d" else (cin, size, size)
    return LayerSpec(kind, (cin, cout, k), sample)


class Bag(nn.Module):
    """Independent layers, each fed its own random input; the loss sums their MSE to noise."""

    def __init__(self, specs: list[LayerSpec]) -> None:
        super().__init__()
        self.specs = specs
        self.layers = nn.ModuleList(spec.build() for spec in specs)

    def loss(self, gen: torch.Generator) -> Tensor:
        total = torch.zeros(())
        for spec, layer in zip(self.specs, self.layers, strict=True):
            out = layer(torch.randn(2, *spec.sample, generator=gen))
            total = total + (out - torch.randn(out.shape, generator=gen)).pow(2).mean()
        return total


@st.composite
def updaters(draw: st.DrawFn) -> sn.TopologyUpdater:
    kind = draw(st.sampled_from(["set", "rigl", "sensitivity", "seft", "gradual"]))
    interval = draw(st.integers(1, 3))
    start = draw(st.integers(0, 3))
    fraction = draw(st.floats(0.0, 1.0))
    schedule = draw(st.sampled_from(sn.SCHEDULES))
    stops = schedule != "constant" or draw(st.booleans())
    end = draw(st.integers(start + 1, start + 12)) if stops else None
    common = {
        "interval": interval,
        "drop_fraction": fraction,
        "schedule": schedule,
        "start_step": start,
        "end_step": end,
    }
    if kind == "gradual":
        return sn.GradualPruning(
            **common,
            initial_density=draw(st.floats(0.0, 1.0, exclude_min=True)),
            prune_end_step=draw(st.integers(start + 1, start + 10)),
            grow=draw(st.sampled_from(["gradient", "random"])),
        )
    if kind == "seft":
        return sn.SEFT(**common, sensitivity_fraction=draw(st.floats(0.0, 1.0)))
    return {"set": sn.SET, "rigl": sn.RigL, "sensitivity": sn.Sensitivity}[kind](**common)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda p, wd: torch.optim.Adam(p, lr=0.05, weight_decay=wd),
    "adamw": lambda p, wd: torch.optim.AdamW(p, lr=0.05, weight_decay=wd),
    "rmsprop": lambda p, wd: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, weight_decay=wd),
    "sgd": lambda p, wd: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=wd),
}


# -- expected counts, from the documented rules -------------------------------------------------


def base_counts(shapes: dict[str, tuple[int, ...]], density: float, dist: str) -> dict[str, int]:
    """Uniform: round(density × numel) (at least one weight); ERK: ``layer_counts``."""
    if dist == "uniform":
        return {n: max(1, round(density * math.prod(s))) for n, s in shapes.items()}
    return sn.layer_counts(shapes, density, "erk")


def is_update(up: sn.TopologyUpdater, step: int) -> bool:
    """Documented update steps: every ``interval`` from ``start_step``, before ``end_step``."""
    regular = (
        step >= max(up.start_step, 1)
        and step % up.interval == 0
        and (up.end_step is None or step < up.end_step)
    )
    if isinstance(up, sn.GradualPruning):
        pruning = up.start_step <= step <= up.prune_end_step and step % up.interval == 0
        return regular or pruning
    return regular


def gradual_count(up: sn.GradualPruning, final: int, numel: int, step: int) -> int:
    """Zhu & Gupta's cubic ramp from the initial to the final count."""
    initial = max(final, round(up.initial_density * numel))
    if step <= up.start_step:
        remaining = 1.0
    elif step >= up.prune_end_step:
        remaining = 0.0
    else:
        remaining = (1 - (step - up.start_step) / (up.prune_end_step - up.start_step)) ** 3
    return round(final + (initial - final) * remaining)


def expected_counts(
    up: sn.TopologyUpdater, final: dict[str, int], numel: dict[str, int], step: int
) -> dict[str, int]:
    """Active counts after optimizer step ``step`` (0 = right after sparsify)."""
    if not isinstance(up, sn.GradualPruning):
        return dict(final)
    last = max((s for s in range(1, step + 1) if is_update(up, s)), default=0)
    return {n: gradual_count(up, final[n], numel[n], last) for n in final}


# -- the property -------------------------------------------------------------------------------


@given(
    specs=st.lists(layer_specs(), min_size=1, max_size=3),
    density=st.floats(0.0, 1.0, exclude_min=True),
    distribution=st.sampled_from(["uniform", "erk"]),
    updater=updaters(),
    opt_name=st.sampled_from(sorted(OPTIMIZERS)),
    weight_decay=st.sampled_from([0.0, 0.05]),
    grow_init=st.sampled_from([0.0, 0.25]),
    seed=st.integers(0, 2**16),
    plan=st.lists(
        st.tuples(st.integers(1, 2), st.sampled_from(["none", "zeros", "skip"])),
        min_size=1,
        max_size=10,
    ),
)
def test_invariants_hold_through_training(
    specs: list[LayerSpec],
    density: float,
    distribution: str,
    updater: sn.TopologyUpdater,
    opt_name: str,
    weight_decay: float,
    grow_init: float,
    seed: int,
    plan: list[tuple[int, str]],
) -> None:
    """After every backward and optimizer step: exact counts, zero inactive weights/grads/state;
    right after an update, grown weights equal ``grow_init`` and have zero optimizer state."""
    torch.manual_seed(seed)
    model = Bag(specs)
    optimizer = OPTIMIZERS[opt_name](model.parameters(), weight_decay)
    sparsity = sn.sparsify(
        model, optimizer, density, distribution, updater, grow_init=grow_init, seed=seed
    )
    weights = {n: model.get_submodule(n).weight for n in sparsity.masks}
    shapes = {n: tuple(w.shape) for n, w in weights.items()}
    numel = {n: w.numel() for n, w in weights.items()}
    final = base_counts(shapes, density, distribution)
    note(f"shapes={shapes} final={final}")
    assert_sparse(model, sparsity, optimizer, expected_counts(updater, final, numel, 0))

    gen = torch.Generator().manual_seed(seed)
    for step, (backwards, zero_mode) in enumerate(plan, start=1):
        if zero_mode != "skip":  # "skip": gradients accumulate across optimizer steps
            optimizer.zero_grad(set_to_none=zero_mode == "none")
        for _ in range(backwards):
            model.loss(gen).backward()
            assert_inactive_grads_zero(model, sparsity)
        before = snapshot(sparsity.masks)
        optimizer.step()
        assert sparsity.step_count == step
        assert_sparse(model, sparsity, optimizer, expected_counts(updater, final, numel, step))
        after = sparsity.masks
        if not is_update(updater, step):
            for n in after:
                assert torch.equal(after[n], before[n]), f"mask of {n} changed off an update step"
        for n, w in weights.items():
            grown = after[n] & ~before[n]
            assert torch.all(w.detach()[grown] == grow_init), f"{n}: grown weights != grow_init"
            for key, value in weight_shaped_state(optimizer, w).items():
                assert torch.all(value[grown] == 0), f"{n}: state {key!r} non-zero where grown"


@given(
    spec=layer_specs(),
    density=st.floats(0.05, 0.5),
    updater_cls=st.sampled_from([sn.SET, sn.RigL, sn.Sensitivity]),
    seed=st.integers(0, 2**16),
)
def test_updates_really_change_the_topology(
    spec: LayerSpec, density: float, updater_cls: type[sn.TopologyUpdater], seed: int
) -> None:
    """An update with a positive drop fraction replaces round(fraction × count) weights, when
    enough inactive positions exist (so the invariant test above is not vacuous)."""
    torch.manual_seed(seed)
    model = Bag([spec])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    sparsity = sn.sparsify(
        model, optimizer, density, None, updater_cls(interval=1, drop_fraction=0.5), seed=seed
    )
    (name,) = sparsity.masks
    count = int(sparsity.masks[name].sum())
    moved = round(0.5 * count)
    if moved == 0 or model.get_submodule(name).weight.numel() - count < moved:
        return  # a layer too small to move anything
    before = snapshot(sparsity.masks)[name]
    optimizer.zero_grad()
    model.loss(torch.Generator().manual_seed(seed)).backward()
    optimizer.step()
    after = sparsity.masks[name]
    assert int((after & ~before).sum()) == moved
    assert int(after.sum()) == count


def test_no_zero_grad_between_steps_keeps_state_masked() -> None:
    """A loop that accumulates gradients over several optimizer steps (no zero_grad) still keeps
    inactive gradients, weights and Adam moments at zero across topology updates."""
    torch.manual_seed(0)
    model = nn.Linear(12, 12)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    sparsity = sn.sparsify(model, optimizer, 0.3, None, sn.SET(interval=1, drop_fraction=0.5))
    count = round(0.3 * 144)
    for _ in range(4):
        model(torch.randn(4, 12)).pow(2).mean().backward()
        assert_inactive_grads_zero(model, sparsity)
        optimizer.step()
        assert_sparse(model, sparsity, optimizer, {"": count})


def test_outside_writes_to_inactive_weights_are_undone_by_the_next_step() -> None:
    """A value written at an inactive position from outside the optimizer (a manual edit, a
    Polyak average, a dense checkpoint copied into the weight) is zeroed by the next step."""
    torch.manual_seed(0)
    model = nn.Linear(8, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = sn.sparsify(model, optimizer, 0.25)
    with torch.no_grad():
        model.weight.fill_(0.5)
    optimizer.zero_grad()
    model(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    assert_sparse(model, sparsity, optimizer, {"": 16})


@pytest.mark.parametrize("updater_cls", [sn.SET, sn.RigL, sn.Sensitivity])
@pytest.mark.parametrize("scale", [1.0, 1e9])
def test_exact_counts_with_huge_tied_gradients(
    updater_cls: type[sn.TopologyUpdater], scale: float
) -> None:
    """Counts stay exact when every gradient is huge and tied (a constant input and a loss
    scaled by 1e9, as loss scaling or unnormalised targets give): growth only ever picks
    inactive positions, whatever the magnitude of the scores."""
    for seed in range(3):
        torch.manual_seed(seed)
        model = nn.Linear(16, 16)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        sparsity = sn.sparsify(
            model, optimizer, 0.25, None, updater_cls(interval=1, drop_fraction=0.5), seed=seed
        )
        for _ in range(3):
            optimizer.zero_grad()
            (model(torch.ones(4, 16)).sum() * scale).backward()
            optimizer.step()
            assert_sparse(model, sparsity, optimizer, {"": 64})


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_mask_is_independent_of_a_same_seed_weight_init(seed: int) -> None:
    """``torch.manual_seed(s)`` then ``sparsify(seed=s)``: the mask must not pick by weight."""
    torch.manual_seed(seed)
    layer = nn.Linear(64, 64)
    sn.sparsify(layer, None, density=0.2, seed=seed)
    active = layer.weight[layer.weight != 0]
    assert 0.4 < (active > 0).float().mean().item() < 0.6
