"""The core's SEFT updater, masks and score functions as initial masks, attaching an optimizer
later, and the refusal of tied weights (issue 22)."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_sparse, mlp, regression_batches, snapshot, train
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn


def dense_gradient(model: nn.Module, name: str, x: Tensor, y: Tensor) -> Tensor:
    twin = sn.densify(model)
    nn.functional.mse_loss(twin(x), y).backward()
    return twin.get_submodule(name).weight.grad


# -- the SEFT update ------------------------------------------------------------------------------


def test_seft_three_moves_by_hand() -> None:
    """One update on a 1x10 layer: the weakest |w| goes, the largest |g| among inactive
    positions (pruned ones included) grows, and the smallest |w·g| of the old survivors is
    pruned back to the exact count."""
    weight = torch.tensor([[5.0, 4.0, 3.0, 0.5, 2.0, 0, 0, 0, 0, 0]])
    grad = torch.tensor([[0.01, 1.0, 1.0, 1.0, 0.1, 9.0, 8.0, 0.5, 0.1, 0.2]])
    mask = weight != 0  # 5 active, target 5
    up = sn.SEFT(interval=1, drop_fraction=0.4, sensitivity_fraction=0.5)  # 2 replaced: 1 + 1
    new = up.new_mask(weight, mask, grad, 5, 0.4, torch.Generator())
    # magnitude drops index 3 (|w| 0.5); growth takes 5 and 6 (|g| 9, 8); sensitivity then
    # drops index 0 (|w·g| 0.05, below 4, 3, 0.2) among the old survivors 0, 1, 2, 4.
    assert new.tolist() == [[False, True, True, False, True, True, True, False, False, False]]


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_seft_update_in_a_training_loop(share: float) -> None:
    """Through sparsify: each update keeps every layer's exact count; share 0 drops like RigL
    (smallest |w|), share 1 like Sensitivity (smallest |w·g|); growth is by the dense |g|."""
    model = mlp([12, 20, 4])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the step leaves weights as they are
    up = sn.SEFT(interval=1, drop_fraction=0.25, sensitivity_fraction=share)
    sparsity = sn.sparsify(model, optimizer, 0.2, None, up)
    ((x, y),) = regression_batches(1, 12, 4, batch=32)
    grad = dense_gradient(model, "0", x, y)
    weight = model[0].weight.detach().clone()
    old = snapshot(sparsity.masks)["0"]
    count = int(old.sum())
    train(model, optimizer, [(x, y)])
    new = sparsity.masks["0"]
    assert int(new.sum()) == count
    moved = round(0.25 * count)
    assert int((new & ~old).sum()) == moved
    grown, kept = new & ~old, new & old
    left = ~old & ~new
    assert grad.abs()[grown].min() >= grad.abs()[left].max()
    if share == 0.0:
        assert (weight.abs()[kept]).min() >= (weight.abs()[old & ~new]).max()
    if share == 1.0:
        sens = (weight * grad).abs()
        assert sens[kept].min() >= sens[old & ~new].max()


def test_seft_regrows_pruned_positions_and_keeps_exact_counts() -> None:
    """From a pruned model's masks, SEFT updates reach positions the pruning removed, and
    after every update each layer has exactly its pruned count (Adam, real learning)."""
    model = mlp([16, 32, 8])
    masks = {n: model.get_submodule(n).weight.abs() > 0.1 for n in ("0", "2")}
    counts = {n: int(m.sum()) for n, m in masks.items()}
    density = sum(counts.values()) / sum(m.numel() for m in masks.values())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    up = sn.SEFT(interval=2, drop_fraction=0.3)
    sparsity = sn.sparsify(model, optimizer, density, updater=up, init=masks)
    assert {n: torch.equal(m, masks[n]) for n, m in sparsity.masks.items()} == {
        "0": True,
        "2": True,
    }
    for batch in regression_batches(6, 16, 8):
        train(model, optimizer, [batch])
        assert_sparse(model, sparsity, optimizer, counts)
    assert all(bool((m & ~masks[n]).any()) for n, m in sparsity.masks.items())


def test_seft_by_name_and_config() -> None:
    """SEFT is chosen like every updater: its name, or its config mapping, in the settings."""
    assert isinstance(sn.make_updater("seft"), sn.SEFT)
    up = sn.updater_from({"name": "SEFT", "interval": 5, "sensitivity_fraction": 0.25})
    assert up == sn.SEFT(interval=5, sensitivity_fraction=0.25)
    settings = sn.SparsitySettings(density=0.5, updater={"name": "seft", "interval": 3})
    assert isinstance(settings.updater, sn.SEFT)
    with pytest.raises(ValueError, match=r"sensitivity_fraction must lie in \[0, 1\], got 1.5"):
        sn.SEFT(sensitivity_fraction=1.5)


# -- initial masks and score functions ------------------------------------------------------------


def test_mask_init_is_taken_exactly_and_names_the_layers() -> None:
    """A mask mapping is the topology: its layers are the sparse ones, its counts the targets,
    even a count that differs from the density's by up to one weight per output row."""
    model = mlp([10, 8, 3])
    mask = torch.zeros(8, 10, dtype=torch.bool)
    mask[:, :4] = True  # 32 of 80: density 0.4
    mask[0, 4] = True  # 33: one more than round(0.4 · 80)
    sparsity = sn.sparsify(model, None, 0.4, init={"0": mask.float()})
    assert list(sparsity.masks) == ["0"] and torch.equal(sparsity.masks["0"], mask)
    assert torch.all(model[0].weight[~mask] == 0)
    assert sparsity.stats().layers[0].active == 33


@pytest.mark.parametrize(
    ("masks", "density", "match"),
    [
        ({"0": torch.ones(8, 10)}, 0.4, r"keep 80 of 80 weights .* asks for 32 \(± 8"),
        ({"9": torch.ones(8, 10)}, 0.4, r"without a mask: \[\].*not sparsified.*\['9'\]"),
        ({"0": torch.full((8, 10), 0.5)}, 0.4, r"init mask of layer '0' must be 0/1"),
        ({"0": torch.ones(10, 8)}, 0.4, r"init mask of layer '0' has shape \(10, 8\)"),
    ],
)
def test_bad_mask_init_is_a_clear_error(masks: dict, density: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sn.sparsify(mlp([10, 8, 3]), None, density, init=masks)


def test_mask_init_with_explicit_layers_needs_every_mask() -> None:
    with pytest.raises(ValueError, match=r"without a mask: \['2'\]"):
        sn.sparsify(mlp([10, 8, 3]), None, 0.5, layers=["0", "2"], init={"0": torch.ones(8, 10)})


def test_score_function_init_keeps_the_highest_scores() -> None:
    model = mlp([6, 5, 2])
    scores = {n: torch.rand(model.get_submodule(n).weight.shape) for n in ("0", "2")}
    sparsity = sn.sparsify(model, None, 0.5, init=lambda name, module: scores[name])
    for name, mask in sparsity.masks.items():
        k = round(0.5 * mask.numel())
        assert int(mask.sum()) == k
        assert scores[name][mask].min() >= scores[name][~mask].max()
    with pytest.raises(ValueError, match=r"returned \(2,\) for layer '0'.*shaped like"):
        sn.sparsify(mlp([6, 5, 2]), None, 0.5, init=lambda name, module: torch.ones(2))


def test_settings_accept_masks_and_score_functions() -> None:
    model = mlp([10, 8, 3])
    mask = torch.rand(8, 10) < 0.5
    settings = sn.SparsitySettings(density=float(mask.float().mean()), init={"0": mask})
    sparsity = settings.apply(model, None, seed=0)
    assert sparsity is not None and torch.equal(sparsity.masks["0"], mask)
    with pytest.raises(ValueError, match=r"init: 'wanda' is not valid"):
        sn.SparsitySettings(density=0.5, init="wanda")


def test_mask_init_refuses_a_count_changing_updater() -> None:
    masks = {"0": torch.rand(8, 10) < 0.5, "2": torch.rand(3, 8) < 0.5}
    density = sum(int(m.sum()) for m in masks.values()) / 104
    up = sn.GradualPruning(interval=1, initial_density=1.0, prune_end_step=5)
    with pytest.raises(ValueError, match=r"init masks fix each layer's active count"):
        sn.sparsify(mlp([10, 8, 3]), None, density, updater=up, init=masks)


# -- attaching the optimizer later ----------------------------------------------------------------


def test_attach_optimizer_later_drives_updates() -> None:
    """Sparsified without an optimizer (a Trainer builds it later), attached afterwards: its
    steps re-mask and update, and attaching another replaces the first."""
    model = mlp([8, 16, 4])
    sparsity = sn.sparsify(model, None, 0.3, updater=sn.SEFT(interval=1, drop_fraction=0.5))
    first = torch.optim.Adam(model.parameters(), lr=0.01)
    sparsity.attach_optimizer(first)
    before = snapshot(sparsity.masks)
    batches = regression_batches(4, 8, 4)
    train(model, first, batches[:1])
    assert sparsity.step_count == 1 and not torch.equal(before["0"], sparsity.masks["0"])
    second = torch.optim.SGD(model.parameters(), lr=0.01)
    sparsity.attach_optimizer(second)
    train(model, first, batches[1:2])  # the old optimizer no longer drives anything
    assert sparsity.step_count == 1
    train(model, second, batches[2:])
    assert sparsity.step_count == 3 and sparsity.optimizer is second
    counts = {n: int(m.sum()) for n, m in before.items()}
    assert_sparse(model, sparsity, second, counts)


class _Wrapper(torch.optim.Optimizer):
    """Like accelerate's AcceleratedOptimizer: an Optimizer around ``.optimizer``."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer


def test_a_wrapped_optimizer_is_refused() -> None:
    model = mlp([4, 3])
    inner = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"_Wrapper wrapping a SGD; pass the inner optimizer"):
        sn.sparsify(model, _Wrapper(inner), 0.5)
    sparsity = sn.sparsify(model, None, 0.5)
    with pytest.raises(TypeError, match="pass the inner optimizer"):
        sparsity.attach_optimizer(_Wrapper(inner))
    with pytest.raises(ValueError, match=r"does not hold the weights of sparse layers \['0'\]"):
        sparsity.attach_optimizer(torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1))


# -- tied weights ---------------------------------------------------------------------------------


class _TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.body = nn.Linear(8, 8)
        self.head = nn.Linear(8, 20, bias=False)
        self.head.weight = self.embed.weight


def test_tied_weights_are_refused() -> None:
    """Masking a head tied to the input embedding would mask the embedding: refused."""
    with pytest.raises(ValueError, match=r"layer 'head' shares its weight with \['embed.weight'\]"):
        sn.sparsify(_TiedLM(), None, 0.5)
    model = _TiedLM()
    sparsity = sn.sparsify(model, None, 0.5, exclude="head")
    assert list(sparsity.masks) == ["body"] and bool((model.embed.weight != 0).all())
