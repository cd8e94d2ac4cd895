"""Issue 15's hostile-input coverage for the sparse core: masks, float settings, deep copies."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from helpers import mask_buffers, mlp, regression_batches, train
from torch import nn

from sparse_rl import sparse_nets as sn

SIZES = [4, 8, 2]


def make_run(
    updater: sn.TopologyUpdater | str = "static", **kwargs: Any
) -> tuple[nn.Sequential, torch.optim.Optimizer, sn.Sparsity]:
    model = mlp(SIZES)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    sparsity = sn.sparsify(model, optimizer, 0.5, updater=updater, seed=0, **kwargs)
    return model, optimizer, sparsity


def batches(n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return regression_batches(n, SIZES[0], SIZES[-1])


def assert_masked(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        weight = model.get_submodule(name).weight.detach()
        assert torch.all(weight[~mask] == 0), f"{name}: inactive weights are not zero"


# -- masks entering through model.load_state_dict ---------------------------------------------


@pytest.mark.parametrize("value", [0.5, 2.0, -1.0, math.nan, math.inf])
def test_loaded_mask_must_be_zero_or_one(value: float) -> None:
    """A checkpoint whose mask holds anything but 0/1 is refused, naming layer and value."""
    model, _, _ = make_run()
    state = model.state_dict()
    state[f"0.{sn.MASK}"] = state[f"0.{sn.MASK}"].clone()
    state[f"0.{sn.MASK}"][0, 0] = value
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=rf"layer '0'.*must be 0/1.*got {value!r}"):
        model.load_state_dict(state)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_loaded_mask_of_wrong_shape() -> None:
    """A mask shaped unlike its weight is a ValueError naming the layer and both shapes."""
    model, _, _ = make_run()
    state = model.state_dict()
    state[f"2.{sn.MASK}"] = torch.ones(2, 4)
    with pytest.raises(ValueError, match=r"layer '2'.*shape \(2, 4\).*\(2, 8\)"):
        model.load_state_dict(state)


def test_loaded_mask_nested_names_the_full_layer() -> None:
    """Loaded through a parent module, the error names the layer by its key in the checkpoint."""
    model, _, _ = make_run()
    parent = nn.ModuleDict({"actor": model})
    state = parent.state_dict()
    state[f"actor.0.{sn.MASK}"] = torch.full_like(state[f"actor.0.{sn.MASK}"], 0.5)
    with pytest.raises(ValueError, match=r"layer 'actor\.0'.*0/1"):
        parent.load_state_dict(state)


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32, torch.int64])
def test_loaded_zero_one_masks_of_any_dtype_load(dtype: torch.dtype) -> None:
    """Valid masks load whether saved as bool, 0./1. floats or 0/1 integers."""
    model, _, sparsity = make_run()
    flipped = {name: ~mask for name, mask in sparsity.masks.items()}
    state = model.state_dict()
    for name, mask in flipped.items():
        state[f"{name}.{sn.MASK}"] = mask.to(dtype)
    model.load_state_dict(state)
    assert all(torch.equal(m, flipped[n]) for n, m in mask_buffers(model).items())


# -- masks entering through Sparsity.load_state_dict --------------------------------------------


@pytest.mark.parametrize("bad", ["half", "shape"])
def test_sparsity_state_with_bad_ever_active(bad: str) -> None:
    """The ever-active record of a sparsity checkpoint must be a 0/1 tensor shaped like the
    weight (a wrong shape would broadcast silently)."""
    _, _, sparsity = make_run()
    state = sparsity.state_dict()
    record = state["layers"]["0"]["ever_active"]
    if bad == "half":
        state["layers"]["0"]["ever_active"] = torch.full(record.shape, 0.5)
        pattern = r"ever_active of layer '0' must be 0/1.*got 0\.5"
    else:
        state["layers"]["0"]["ever_active"] = torch.ones(1, dtype=torch.bool)
        pattern = r"ever_active of layer '0' has shape \(1,\).*\(8, 4\)"
    with pytest.raises(ValueError, match=pattern):
        sparsity.load_state_dict(state)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_sparsity_state_with_nonfinite_grow_init(value: float) -> None:
    """A sparsity checkpoint cannot smuggle a NaN/inf grow_init into the run."""
    _, _, sparsity = make_run()
    state = sparsity.state_dict()
    state["grow_init"] = value
    with pytest.raises(ValueError, match=r"grow_init must be a finite number"):
        sparsity.load_state_dict(state)
    assert sparsity.grow_init == 0.0


# -- masks a model carries into sparsify -------------------------------------------------------


def test_sparsify_refuses_a_carried_mask_that_is_not_zero_one() -> None:
    """A model that arrives with a hand-made 0.5 mask is refused, naming the layer and value."""
    model = mlp(SIZES)
    model[0].register_buffer(sn.MASK, torch.full_like(model[0].weight, 0.5))
    with pytest.raises(ValueError, match=r"layer '0' must be 0/1.*got 0\.5"):
        sn.sparsify(model, None, 0.5)


# -- float settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.1", True, None])
def test_grow_init_must_be_finite(value: object) -> None:
    """grow_init is the value of every grown weight: NaN/inf or a non-number is refused up front."""
    model = mlp(SIZES)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=rf"grow_init must be a finite number, got {value!r}"):
        sn.sparsify(model, optimizer, 0.5, updater="set", grow_init=value)  # type: ignore[arg-type]
    assert not mask_buffers(model), "a refused sparsify must leave the model untouched"


@pytest.mark.parametrize("field", ["drop_fraction", "initial_density"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_updater_float_settings_must_be_finite(field: str, value: float) -> None:
    """Every float setting of an updater rejects NaN/inf, naming the setting."""
    with pytest.raises(ValueError, match=rf"{field} must be a finite number"):
        sn.make_updater("gradual", **{field: value})


@pytest.mark.parametrize("value", [math.nan, -1.0, "2"])
def test_sparse_inference_min_speedup_must_be_a_number(value: object) -> None:
    """min_speedup decides every CSR conversion: NaN would silently convert nothing."""
    model, _, _ = make_run()
    with pytest.raises(ValueError, match=r"min_speedup must be a number >= 0.*got"):
        sn.sparse_inference(model, torch.randn(2, SIZES[0]), min_speedup=value)  # type: ignore[arg-type]


# -- deep copies ----------------------------------------------------------------------------------


def test_deepcopy_with_optimizer_and_sparsity_trains_sparse() -> None:
    """copy.deepcopy((model, optimizer, sparsity)) is a second run: sparse on its own, and it
    continues exactly as the original would."""
    model, optimizer, sparsity = make_run(sn.RigL(interval=2))
    train(model, optimizer, batches(3))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model2, optimizer2, sparsity2 = copy.deepcopy((model, optimizer, sparsity))
    assert sparsity2.optimizer is optimizer2
    train(model2, optimizer2, batches(5))
    assert sparsity2.step_count == 8 and sparsity.step_count == 3
    assert_masked(model2, sparsity2.masks)
    assert all(torch.equal(m, sparsity2.masks[n]) for n, m in mask_buffers(model2).items())
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())
    train(model, optimizer, batches(5))  # the same steps on the original: the same run
    copied = model2.state_dict()
    assert all(torch.equal(v, copied[k]) for k, v in model.state_dict().items())
    assert sparsity.stats() == sparsity2.stats()


def test_sparsify_a_deepcopied_model_keeps_its_masks() -> None:
    """sparsify on a copy.deepcopy of a sparse model adopts the masks the copy carries."""
    model, optimizer, sparsity = make_run(sn.RigL(interval=2))
    train(model, optimizer, batches(4))
    twin = copy.deepcopy(model)
    optimizer2 = torch.optim.Adam(twin.parameters(), lr=0.05)
    sparsity2 = sn.sparsify(twin, optimizer2, 0.5, updater=sn.RigL(interval=2), seed=1)
    assert all(torch.equal(m, sparsity.masks[n]) for n, m in sparsity2.masks.items())
    sparsity2.load_state_dict(sparsity.state_dict())  # resume the original's schedule
    train(twin, optimizer2, batches(5))
    assert_masked(twin, sparsity2.masks)
    assert all(int(m.sum()) == int(sparsity.masks[n].sum()) for n, m in sparsity2.masks.items())


def test_sparsify_a_copy_with_another_density_is_refused() -> None:
    """Adopting carried masks at another density is refused, naming the layer and both counts."""
    model, _, _ = make_run()
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match=r"layer '0' carries a mask with 16 active.*asks for 8"):
        sn.sparsify(twin, None, 0.25)


def test_copy_does_not_free_the_original_for_resparsify() -> None:
    """The original stays owned by its Sparsity after a copy: sparsifying it again still fails."""
    model, optimizer, _ = make_run()
    copy.deepcopy(model)
    with pytest.raises(ValueError, match=r"already sparse.*remove\(\)"):
        sn.sparsify(model, optimizer, 0.5)


def test_sparsify_after_remove_adopts_masks() -> None:
    """After Sparsity.remove(), sparsify re-attaches the model with the masks it carries."""
    model, optimizer, sparsity = make_run()
    masks = sparsity.masks
    sparsity.remove()
    again = sn.sparsify(model, optimizer, 0.5)
    assert all(torch.equal(m, masks[n]) for n, m in again.masks.items())
    train(model, optimizer, batches(3))
    assert_masked(model, masks)
