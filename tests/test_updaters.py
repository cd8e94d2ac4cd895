"""Updaters, schedules, mask initialisation, statistics and the training-loop integrations."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from helpers import assert_sparse, mlp, regression_batches, snapshot, train
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn


def one_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
    train(model, optimizer, [(x, y)])


def dense_gradient(model: nn.Module, name: str, x: Tensor, y: Tensor) -> Tensor:
    """Gradient of the MSE loss w.r.t. the whole weight of ``name`` (no mask, no hook)."""
    twin = sn.densify(model)
    nn.functional.mse_loss(twin(x), y).backward()
    return twin.get_submodule(name).weight.grad


def assert_best(chosen: Tensor, scores: Tensor, eligible: Tensor, k: int) -> None:
    """``chosen`` holds ``k`` eligible positions, none scoring below an eligible one left out
    (ties may be broken either way)."""
    assert int(chosen.sum()) == k and not torch.any(chosen & ~eligible)
    left_out = eligible & ~chosen
    if k and left_out.any():
        assert scores[chosen].min() >= scores[left_out].max()


# -- drop and grow rules ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["set", "rigl", "sensitivity"])
def test_drop_and_grow_rules(kind: str) -> None:
    """One update: SET and RigL drop the smallest |w|, Sensitivity the smallest |w·g|; RigL and
    Sensitivity grow where the dense |g| is largest, SET grows among inactive positions."""
    updater = {"set": sn.SET, "rigl": sn.RigL, "sensitivity": sn.Sensitivity}[kind](
        interval=1, drop_fraction=0.25
    )
    model = mlp([12, 20, 4])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the step leaves weights as they are
    sparsity = sn.sparsify(model, optimizer, 0.2, None, updater)
    ((x, y),) = regression_batches(1, 12, 4, batch=32)
    grad = dense_gradient(model, "0", x, y)
    weight = model[0].weight.detach().clone()
    old = snapshot(sparsity.masks)["0"]
    count = int(old.sum())
    moved = round(0.25 * count)
    one_step(model, optimizer, x, y)
    new = sparsity.masks["0"]
    keep_scores = weight.abs() if kind != "sensitivity" else (weight * grad).abs()
    assert_best(new & old, keep_scores, old, count - moved)
    grown = new & ~old
    assert int(grown.sum()) == moved and int(new.sum()) == count
    if kind != "set":
        assert_best(grown, grad.abs(), ~old, moved)


def test_static_never_changes() -> None:
    """Static keeps the initial mask for the whole of training."""
    model = mlp([6, 10, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    sparsity = sn.sparsify(model, optimizer, 0.3, "erk", "static")
    start = snapshot(sparsity.masks)
    train(model, optimizer, regression_batches(10, 6, 2))
    assert all(torch.equal(m, start[n]) for n, m in sparsity.masks.items())


def test_rigl_dense_gradient_accumulates_over_backwards() -> None:
    """With gradient accumulation (two backwards per step), RigL grows by the summed dense
    gradient of both micro-batches."""
    model = mlp([10, 16, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    sparsity = sn.sparsify(model, optimizer, 0.2, None, sn.RigL(interval=1, drop_fraction=0.5))
    (x1, y1), (x2, y2) = regression_batches(2, 10, 3)
    grad = dense_gradient(model, "0", x1, y1) + dense_gradient(model, "0", x2, y2)
    old = snapshot(sparsity.masks)["0"]
    optimizer.zero_grad()
    for x, y in ((x1, y1), (x2, y2)):
        nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
    grown = sparsity.masks["0"] & ~old
    assert_best(grown, grad.abs(), ~old, round(0.5 * int(old.sum())))


# -- mask initialisation ------------------------------------------------------------------------


def test_magnitude_init_keeps_largest_weights() -> None:
    """init="magnitude" keeps each layer's largest |w| and zeroes the rest."""
    model = mlp([8, 12, 4])
    weights = {n: model.get_submodule(n).weight.detach().clone() for n in ("0", "2")}
    sparsity = sn.sparsify(model, None, 0.25, init="magnitude")
    for name, mask in sparsity.masks.items():
        k = round(0.25 * weights[name].numel())
        assert_best(mask, weights[name].abs(), torch.ones_like(mask), k)
        assert torch.equal(model.get_submodule(name).weight, weights[name] * mask)


def test_snip_init_keeps_largest_saliency() -> None:
    """SNIP keeps the largest |w·g| of the loss on the user's batch, per layer."""
    model = mlp([8, 12, 4])
    ((x, y),) = regression_batches(1, 8, 4, batch=64)
    nn.functional.mse_loss(model(x), y).backward()
    saliency = {n: (model.get_submodule(n).weight * model.get_submodule(n).weight.grad).abs()
                for n in ("0", "2")}  # fmt: skip
    model.zero_grad(set_to_none=True)
    snip = sn.SNIP(lambda m: nn.functional.mse_loss(m(x), y))
    sparsity = sn.sparsify(model, torch.optim.Adam(model.parameters()), 0.3, "erk", init=snip)
    counts = sn.layer_counts({n: tuple(s.shape) for n, s in saliency.items()}, 0.3, "erk")
    for name, mask in sparsity.masks.items():
        assert_best(mask, saliency[name].detach(), torch.ones_like(mask), counts[name])
        assert saliency[name][mask].min() > 0
    assert all(p.grad is None for p in model.parameters())  # SNIP leaves no gradients behind


def test_snip_loss_must_be_scalar() -> None:
    """A SNIP loss that is not a scalar tensor is a clear error."""
    model = mlp([4, 3])
    with pytest.raises(ValueError, match=r"SNIP\.loss_fn\(model\) must return a scalar"):
        sn.sparsify(model, None, 0.5, init=sn.SNIP(lambda m: m(torch.randn(2, 4))))


# -- schedules ----------------------------------------------------------------------------------


def test_gradual_pruning_follows_cubic_schedule() -> None:
    """GradualPruning starts at initial_density and, at each update, has the Zhu & Gupta count
    final + (initial − final)·(1 − progress)³; from prune_end_step on it has the final count."""
    model = nn.Linear(20, 20)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    up = sn.GradualPruning(
        interval=2, drop_fraction=0.1, start_step=2, initial_density=1.0, prune_end_step=12
    )
    sparsity = sn.sparsify(model, optimizer, 0.1, None, up)
    final, initial = 40, 400
    counts = [int(sparsity.masks[""].sum())]
    for batch in regression_batches(16, 20, 20):
        train(model, optimizer, [batch])
        counts.append(int(sparsity.masks[""].sum()))
    assert counts[0] == initial
    for step in range(1, 17):
        last_update = step - step % 2 if step >= 2 else 0
        progress = min(max((last_update - 2) / 10, 0.0), 1.0)
        expected = round(final + (initial - final) * (1 - progress) ** 3)
        assert counts[step] == expected, f"step {step}: {counts[step]} != {expected}"
    assert counts[12:] == [final] * 5
    assert all(a >= b for a, b in itertools.pairwise(counts))
    assert_sparse(model, sparsity, optimizer, {"": final})


def test_cosine_schedule_decays_and_stops_at_end_step() -> None:
    """Cosine decay: the churn of each update is the decayed fraction (of the layer's count);
    at and after end_step the masks no longer change."""
    model = nn.Linear(30, 30)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    up = sn.RigL(interval=2, drop_fraction=0.5, schedule="cosine", end_step=10)
    sparsity = sn.sparsify(model, optimizer, 0.2, None, up)
    count = round(0.2 * 900)
    history = [snapshot(sparsity.masks)[""]]
    for step, batch in enumerate(regression_batches(20, 30, 30), start=1):
        train(model, optimizer, [batch])
        mask = sparsity.masks[""]
        grown = int((mask & ~history[-1]).sum())
        history.append(mask.clone())
        if step in (2, 4, 6, 8):
            fraction = 0.5 * 0.5 * (1 + math.cos(math.pi * step / 10))
            assert grown == round(fraction * count), f"step {step}"
            assert sparsity.stats().layers[0].churn == pytest.approx(fraction, abs=1 / count)
        else:
            assert grown == 0, f"mask changed at step {step}"
    assert all(torch.equal(h, history[9]) for h in history[9:])


def test_no_updates_from_end_step_on() -> None:
    """With a constant drop fraction and an end_step, masks change at every update before
    end_step and never at or after it."""
    model = nn.Linear(12, 12)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    sparsity = sn.sparsify(model, optimizer, 0.25, None, sn.SET(interval=1, end_step=5))
    changed = []
    for batch in regression_batches(9, 12, 12):
        before = snapshot(sparsity.masks)[""]
        train(model, optimizer, [batch])
        changed.append(not torch.equal(sparsity.masks[""], before))
    assert changed == [True] * 4 + [False] * 5


def test_start_step_delays_updates() -> None:
    """No update before start_step."""
    model = nn.Linear(10, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = sn.sparsify(model, optimizer, 0.3, None, sn.SET(interval=1, start_step=4))
    start = snapshot(sparsity.masks)[""]
    train(model, optimizer, regression_batches(3, 10, 10))
    assert torch.equal(sparsity.masks[""], start)
    train(model, optimizer, regression_batches(1, 10, 10))
    assert not torch.equal(sparsity.masks[""], start)


# -- statistics ---------------------------------------------------------------------------------


def test_stats_churn_and_itop() -> None:
    """After an update churn ≈ drop_fraction; in-time over-parameterization grows with updates
    and never exceeds 1; densities and counts match the masks."""
    model = mlp([16, 32, 4])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    sparsity = sn.sparsify(model, optimizer, 0.2, "erk", sn.SET(interval=2, drop_fraction=0.3))
    stats = sparsity.stats()
    assert stats.step == 0 and all(layer.churn == 0 for layer in stats.layers)
    assert all(layer.itop == pytest.approx(layer.density) for layer in stats.layers)
    itops = [[layer.itop for layer in stats.layers]]
    for batch in regression_batches(6, 16, 4):
        train(model, optimizer, [batch])
        stats = sparsity.stats()
        itops.append([layer.itop for layer in stats.layers])
        if stats.step % 2 == 0:
            for layer in stats.layers:
                assert layer.churn == pytest.approx(0.3, abs=1 / layer.active)
    for before, after in itertools.pairwise(itops):
        assert all(b <= a <= 1 for b, a in zip(before, after, strict=True))
    assert all(a > b for b, a in zip(itops[0], itops[-1], strict=True))
    for layer, (name, mask) in zip(stats.layers, sparsity.masks.items(), strict=True):
        assert layer.name == name and layer.active == int(mask.sum())
        assert layer.density == layer.active / layer.numel
    assert stats.density == stats.active / stats.numel
    logged = stats.as_dict()
    assert logged["sparsity/density"] == stats.density and "sparsity/0/churn" in logged
    assert "itop" in str(stats)


def test_input_connectivity() -> None:
    """Active connections per input unit of the first sparse layer sum to its active count."""
    model = mlp([7, 9, 2])
    sparsity = sn.sparsify(model, None, 0.4)
    fan_out = sparsity.input_connectivity()
    assert fan_out.shape == (7,)
    assert int(fan_out.sum()) == int(sparsity.masks["0"].sum())
    assert torch.equal(fan_out, sparsity.masks["0"].sum(dim=0).float())
    conv = nn.Sequential(nn.Conv2d(3, 5, 3))
    assert sn.sparsify(conv, None, 0.5).input_connectivity("0").shape == (3,)
    with pytest.raises(
        ValueError, match=r"layer='nope' is not sparse here; sparse layers: \['0', '2'\]"
    ):
        sparsity.input_connectivity("nope")


# -- training-loop integration ------------------------------------------------------------------


def test_gradient_clipping_sees_masked_gradients() -> None:
    """clip_grad_norm_ measures the masked gradient's norm (inactive gradients already zero)."""
    model = mlp([10, 30, 3])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = sn.sparsify(model, optimizer, 0.1)
    ((x, y),) = regression_batches(1, 10, 3)
    twin = sn.densify(model)
    nn.functional.mse_loss(twin(x), y).backward()
    masks = {f"{n}.weight": m for n, m in sparsity.masks.items()}
    dense_norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in twin.parameters()])
    )
    masked_norm = torch.linalg.vector_norm(torch.stack([
        torch.linalg.vector_norm(p.grad * masks[n] if n in masks else p.grad)
        for n, p in twin.named_parameters()
    ]))  # fmt: skip
    nn.functional.mse_loss(model(x), y).backward()
    measured = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e-3)
    assert measured == pytest.approx(float(masked_norm), rel=1e-5)
    assert float(masked_norm) < 0.9 * float(dense_norm)
    clipped = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()])
    )
    assert clipped == pytest.approx(1e-3, rel=1e-3)


def test_param_groups_mixing_sparse_and_dense() -> None:
    """A parameter-group list (sparse weights in one group, biases and the dense output layer in
    another, with other lr and weight decay) works: invariants hold and dense parameters train."""
    model = mlp([8, 16, 16, 2])
    sparse_weights = [model[0].weight, model[2].weight]
    rest = [p for p in model.parameters() if all(p is not w for w in sparse_weights)]
    optimizer = torch.optim.AdamW(
        [{"params": sparse_weights, "weight_decay": 0.1}, {"params": rest, "lr": 0.001}], lr=0.01
    )
    sparsity = sn.sparsify(
        model, optimizer, 0.25, "erk", sn.RigL(interval=2), exclude=sn.last_layer(model)
    )
    expected = {n: int(m.sum()) for n, m in sparsity.masks.items()}
    output_weight = model[4].weight.detach().clone()
    for batch in regression_batches(6, 8, 2):
        train(model, optimizer, [batch])
        assert_sparse(model, sparsity, optimizer, expected)
    assert torch.count_nonzero(model[4].weight) == model[4].weight.numel()
    assert not torch.equal(model[4].weight, output_weight)


def test_optimizer_none_and_manual_step() -> None:
    """Without an optimizer, calling ``sparsity.step()`` after each update keeps the invariants
    and runs updates on schedule."""
    model = mlp([6, 12, 2])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sparsity = sn.sparsify(model, None, 0.3, None, sn.RigL(interval=2, drop_fraction=0.5))
    expected = {n: int(m.sum()) for n, m in sparsity.masks.items()}
    start = snapshot(sparsity.masks)
    for x, y in regression_batches(4, 6, 2):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        sparsity.step()
        assert_sparse(model, sparsity, None, expected)
    assert sparsity.step_count == 4
    assert any(not torch.equal(m, start[n]) for n, m in sparsity.masks.items())


def test_remove_detaches_hooks() -> None:
    """After ``remove()`` the optimizer no longer drives the sparsity and gradients are dense."""
    model = mlp([6, 12, 2])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = sn.sparsify(model, optimizer, 0.3, None, sn.SET(interval=1))
    sparsity.remove()
    train(model, optimizer, regression_batches(1, 6, 2))
    assert sparsity.step_count == 0
    assert torch.count_nonzero(model[0].weight.grad) > int(sparsity.masks["0"].sum())


def test_rigl_input_strength_grows_the_strongest_input_first() -> None:
    """grow="input_strength": the input whose active connections are strongest (mean |w|) is
    grown first, though a weak input has the largest gradients."""
    weight = torch.zeros(4, 3)
    mask = torch.zeros(4, 3, dtype=torch.bool)
    mask[0, 0] = mask[0, 1] = mask[1, 2] = True
    weight[0, 0], weight[0, 1], weight[1, 2] = 1.0, 0.01, 0.02
    grad = torch.ones(4, 3)
    grad[:, 1] = 5.0  # the largest gradients sit on a weak input (scores: 1 + 0.2 vs 0.01 + 1)
    updater = sn.RigL(interval=1, drop_fraction=0.5, grow="input_strength")
    new = updater.new_mask(weight, mask, grad, 3, 0.5, torch.Generator().manual_seed(0))
    assert int(new.sum()) == 3 and new[0, 0]
    assert int(new[:, 0].sum()) == 3  # input 0 took both regrown slots
    plain = sn.RigL(interval=1, drop_fraction=0.5).new_mask(
        weight, mask, grad, 3, 0.5, torch.Generator().manual_seed(0)
    )
    assert int(plain[:, 1].sum()) >= 2  # RigL follows the gradient instead


def test_rigl_growth_choice_is_checked() -> None:
    with pytest.raises(ValueError, match="grow: 'magnitude' is not valid"):
        sn.RigL(grow="magnitude")
