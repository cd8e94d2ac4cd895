"""Checkpoints and reproducibility: a resumed run is the run that was saved."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import mask_buffers, mlp, regression_batches, snapshot, train
from torch import nn

from sparse_rl import sparse_nets as sn

SIZES = [6, 16, 16, 3]


def make_run(
    updater: sn.TopologyUpdater, seed: int, model_seed: int = 0, **kwargs: Any
) -> tuple[nn.Sequential, torch.optim.Optimizer, sn.Sparsity]:
    """Model, AdamW optimizer and sparsity made the same way every time, given the seeds."""
    model = mlp(SIZES, seed=model_seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    settings: dict[str, Any] = {"density": 0.3, "distribution": "erk", "grow_init": 0.01}
    settings.update(kwargs)
    sparsity = sn.sparsify(model, optimizer, updater=updater, seed=seed, **settings)
    return model, optimizer, sparsity


def state_of(
    model: nn.Module, optimizer: torch.optim.Optimizer, sparsity: sn.Sparsity
) -> dict[str, Any]:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sparsity": sparsity.state_dict(),
    }


UPDATERS: dict[str, Callable[[], sn.TopologyUpdater]] = {
    "set": lambda: sn.SET(interval=3, drop_fraction=0.4),
    "rigl": lambda: sn.RigL(interval=3, drop_fraction=0.4, schedule="cosine", end_step=40),
    "gradual": lambda: sn.GradualPruning(
        interval=3, drop_fraction=0.2, initial_density=0.8, prune_end_step=25, grow="random"
    ),
}


@pytest.mark.parametrize("kind", sorted(UPDATERS))
def test_round_trip_gives_identical_outputs_and_future(kind: str, tmp_path: Path) -> None:
    """Save model, optimizer and sparsity state mid-run (to a file, through torch.save); a fresh
    model sparsified with another seed and loaded from it gives the same outputs, and N more
    steps on both give identical masks, weights and statistics."""
    batches = regression_batches(30, SIZES[0], SIZES[-1], seed=1)
    model, optimizer, sparsity = make_run(UPDATERS[kind](), seed=0)
    train(model, optimizer, batches[:10])
    path = tmp_path / "ckpt.pt"
    torch.save(state_of(model, optimizer, sparsity), path)

    model2, optimizer2, sparsity2 = make_run(UPDATERS[kind](), seed=123, model_seed=7)
    assert any(not torch.equal(a, b) for a, b in zip(
        sparsity.masks.values(), sparsity2.masks.values(), strict=True
    ))  # fmt: skip
    state = torch.load(path)  # weights_only: the sparsity state is plain data
    model2.load_state_dict(state["model"])
    optimizer2.load_state_dict(state["optimizer"])
    sparsity2.load_state_dict(state["sparsity"])

    x = torch.randn(5, SIZES[0])
    assert torch.equal(model(x), model2(x))
    assert sparsity2.step_count == sparsity.step_count == 10
    history, history2 = [], []
    for xb, yb in batches[10:]:
        train(model, optimizer, [(xb, yb)])
        train(model2, optimizer2, [(xb, yb)])
        history.append(snapshot(sparsity.masks))
        history2.append(snapshot(sparsity2.masks))
    for before, after in zip(history, history2, strict=True):
        assert all(torch.equal(before[n], after[n]) for n in before)
    assert len({tuple(h["0"].flatten().tolist()) for h in history}) > 1, "no update happened"
    for (n, p), (n2, p2) in zip(model.named_parameters(), model2.named_parameters(), strict=True):
        assert n == n2 and torch.equal(p, p2), f"{n} diverged"
    assert sparsity.stats() == sparsity2.stats()


def test_round_trip_through_bytes_keeps_masks_in_model_state() -> None:
    """The masks travel in model.state_dict() (as ``weight_mask`` buffers) through a BytesIO."""
    model, optimizer, sparsity = make_run(sn.SET(interval=2), seed=0)
    train(model, optimizer, regression_batches(5, SIZES[0], SIZES[-1]))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer)
    assert {k for k in state if k.endswith(sn.MASK)} == {f"{n}.{sn.MASK}" for n in sparsity.masks}
    for name, mask in sparsity.masks.items():
        assert torch.equal(state[f"{name}.{sn.MASK}"] != 0, mask)


def test_deepcopy_carries_masks() -> None:
    """copy.deepcopy of a sparse model keeps the masks and the zeros (e.g. a target network)."""
    model, optimizer, sparsity = make_run(sn.RigL(interval=2), seed=0)
    train(model, optimizer, regression_batches(5, SIZES[0], SIZES[-1]))
    twin = copy.deepcopy(model)
    masks = mask_buffers(twin)
    assert set(masks) == set(sparsity.masks)
    for name, mask in sparsity.masks.items():
        assert torch.equal(masks[name], mask)
        assert torch.all(twin.get_submodule(name).weight[~mask] == 0)
    x = torch.randn(4, SIZES[0])
    assert torch.equal(twin(x), model(x))


def test_mismatched_layers_rejected() -> None:
    """A sparsity state for other layers names both sets of layers."""
    _, _, sparsity = make_run(sn.SET(), seed=0)
    _, _, other = make_run(sn.SET(), seed=0, exclude=sn.last_layer(mlp(SIZES)))
    with pytest.raises(ValueError, match=r"is for layers \['0', '2', '4'\].*are \['0', '2'\]"):
        other.load_state_dict(sparsity.state_dict())


def test_mismatched_shapes_rejected() -> None:
    """A sparsity state for layers of other shapes names the layer and both shapes."""
    _, _, sparsity = make_run(sn.SET(), seed=0)
    model = mlp([6, 17, 16, 3])
    other = sn.sparsify(model, torch.optim.Adam(model.parameters()), 0.3, "erk", sn.SET())
    with pytest.raises(ValueError, match=r"shape \(16, 6\) for layer '0', the model has \(17, 6\)"):
        other.load_state_dict(sparsity.state_dict())


def test_mismatched_density_rejected() -> None:
    """A sparsity state made for other per-layer counts names the layer and both counts."""
    model = mlp(SIZES)
    sparsity = sn.sparsify(model, torch.optim.Adam(model.parameters()), 0.3, "uniform", sn.SET())
    model = mlp(SIZES)
    other = sn.sparsify(model, torch.optim.Adam(model.parameters()), 0.5, "uniform", sn.SET())
    with pytest.raises(ValueError, match=r"keeps \d+ weights of layer '0' active, this sparsity"):
        other.load_state_dict(sparsity.state_dict())


def test_always_dense_layers_cost_no_hooks() -> None:
    """ERK keeps small layers dense; those get no gradient hook (they would only multiply by 1)."""
    model = mlp([4, 64, 64, 2])
    optimizer = torch.optim.Adam(model.parameters())
    sparsity = sn.sparsify(model, optimizer, 0.2, "erk", sn.RigL(interval=1))
    dense = [n for n, s in sparsity.stats().as_dict().items() if n.endswith("density") and s == 1.0]
    assert dense, "ERK should keep the 4->64 input layer dense here"
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            hooks = module.weight._post_accumulate_grad_hooks or {}
            is_dense = bool(getattr(module, sn.MASK).all())
            assert (len(hooks) == 0) == is_dense, name
    train(model, optimizer, regression_batches(3, 4, 2))  # updates run around them
    assert getattr(model[0], sn.MASK).all()


@pytest.mark.parametrize(
    "other",
    [sn.SET(interval=3), sn.SET(drop_fraction=0.5), sn.RigL(), sn.SET(start_step=1)],
)
def test_mismatched_updater_settings_rejected(other: sn.TopologyUpdater) -> None:
    """A sparsity state made with other updater settings is refused (future updates differ)."""
    _, _, sparsity = make_run(sn.SET(), seed=0)
    _, _, resumed = make_run(other, seed=0)
    with pytest.raises(ValueError, match=r"was made with updater .*pass the same updater settings"):
        resumed.load_state_dict(sparsity.state_dict())


def test_state_without_required_keys_rejected() -> None:
    """Something that is not a sparsity state (e.g. the model's state_dict) is refused."""
    model, _, sparsity = make_run(sn.SET(), seed=0)
    with pytest.raises(
        ValueError, match=r"lacks keys \['generator', 'layers', 'step', 'updater'\]"
    ):
        sparsity.load_state_dict(model.state_dict())


def masks_through_training(seed: int, kind: str) -> list[dict[str, torch.Tensor]]:
    """Mask snapshots after each of 12 steps of a run whose only varying input is ``seed``."""
    model, optimizer, sparsity = make_run(UPDATERS[kind](), seed=seed)
    history = [snapshot(sparsity.masks)]
    for batch in regression_batches(12, SIZES[0], SIZES[-1], seed=3):
        train(model, optimizer, [batch])
        history.append(snapshot(sparsity.masks))
    return history


@pytest.mark.parametrize("kind", ["set", "rigl"])
def test_same_seed_same_masks(kind: str) -> None:
    """Same seed (and same data), same masks after every step of training."""
    first, second = masks_through_training(5, kind), masks_through_training(5, kind)
    for a, b in zip(first, second, strict=True):
        assert all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("kind", ["set", "rigl"])
def test_different_seed_different_masks(kind: str) -> None:
    """Another seed gives other masks (the seed reaches every random choice)."""
    first, second = masks_through_training(5, kind), masks_through_training(6, kind)
    assert not torch.equal(first[0]["0"], second[0]["0"])
    assert not torch.equal(first[-1]["0"], second[-1]["0"])


def test_set_growth_uses_the_seeded_generator() -> None:
    """With identical initial masks and weights, SET's random growth still follows the seed."""
    runs = []
    for seed in (0, 1):
        model, optimizer, sparsity = make_run(
            sn.SET(interval=1, drop_fraction=0.5), seed=seed, init="magnitude"
        )
        start = snapshot(sparsity.masks)
        train(model, optimizer, regression_batches(1, SIZES[0], SIZES[-1]))
        runs.append((start, snapshot(sparsity.masks)))
    (start0, after0), (start1, after1) = runs
    assert all(torch.equal(start0[n], start1[n]) for n in start0)  # magnitude init: no randomness
    assert any(not torch.equal(after0[n], after1[n]) for n in after0)


def test_seeded_blocks_repeat_and_leave_the_callers_stream_alone() -> None:
    """Library code seeds a model's init with ``sn.seeded``: the same seed gives the same draws,
    and the caller's global stream continues as if the block had not run."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with sn.seeded(7):
        first = torch.nn.Linear(4, 4).weight.clone()
    with sn.seeded(7):
        second = torch.nn.Linear(4, 4).weight.clone()
    assert torch.equal(first, second)
    assert torch.equal(torch.rand(3), expected)
