"""Converters: plain dense modules for export, CSR layers for sparse inference."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_sparse, mlp, regression_batches, train
from torch import nn

from sparse_rl import sparse_nets as sn


def trained_sparse_mlp(
    sizes: list[int], density: float = 0.2
) -> tuple[nn.Sequential, torch.optim.Optimizer, sn.Sparsity]:
    model = mlp(sizes)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    sparsity = sn.sparsify(model, optimizer, density, "erk", sn.RigL(interval=2))
    train(model, optimizer, regression_batches(5, sizes[0], sizes[-1]))
    return model, optimizer, sparsity


def test_densify_gives_plain_module_with_same_outputs() -> None:
    """densify: no mask buffers, identical outputs, zeros where the masks were inactive."""
    model, _, sparsity = trained_sparse_mlp([8, 32, 32, 4])
    dense = sn.densify(model)
    assert not any(name.endswith(sn.MASK) for name, _ in dense.named_buffers())
    assert all(sn.MASK not in key for key in dense.state_dict())
    x = torch.randn(16, 8)
    assert torch.equal(dense(x), model(x))
    for name, mask in sparsity.masks.items():
        weight = dense.get_submodule(name).weight
        assert torch.equal(weight, model.get_submodule(name).weight)
        assert torch.all(weight[~mask] == 0)


def test_densify_leaves_no_gradient_hooks() -> None:
    """The dense copy trains as a dense model: no hook masks its gradients."""
    model, _, sparsity = trained_sparse_mlp([8, 32, 4])
    dense = sn.densify(model)
    assert all(not p._backward_hooks for p in dense.parameters())
    nn.functional.mse_loss(dense(torch.randn(16, 8)), torch.randn(16, 4)).backward()
    grad = dense.get_submodule("0").weight.grad
    assert torch.count_nonzero(grad[~sparsity.masks["0"]]) > 0


def test_densify_state_dict_loads_into_fresh_plain_model() -> None:
    """The dense copy's state_dict loads (strictly) into a never-sparsified model of the same
    architecture, which then computes the same function."""
    model, _, _ = trained_sparse_mlp([8, 32, 4])
    fresh = mlp([8, 32, 4], seed=99)
    fresh.load_state_dict(sn.densify(model).state_dict())
    x = torch.randn(16, 8)
    assert torch.equal(fresh(x), model(x))


def test_densify_leaves_the_original_sparse() -> None:
    """The original keeps its masks and hooks and keeps training sparse."""
    model, optimizer, sparsity = trained_sparse_mlp([8, 32, 4])
    counts = {n: int(m.sum()) for n, m in sparsity.masks.items()}
    sn.densify(model)
    train(model, optimizer, regression_batches(4, 8, 4, seed=5))
    assert sparsity.step_count == 9
    assert_sparse(model, sparsity, optimizer, counts)


def test_densify_conv_model() -> None:
    """Conv layers are folded too."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 1))
    sn.sparsify(model, None, 0.3)
    dense = sn.densify(model)
    assert list(dense.named_buffers()) == []
    x = torch.randn(3, 2, 5, 5)
    assert torch.equal(dense[0](x), model[0](x))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 64), (2, 5, 64), (64,)])
def test_csr_linear_matches_dense(bias: bool, shape: tuple[int, ...]) -> None:
    """CSRLinear computes the masked layer's output (batch dims kept) within 1e-5."""
    layer = nn.Linear(64, 48, bias=bias)
    sn.sparsify(layer, None, 0.1)
    csr = sn.CSRLinear(layer)
    assert csr.weight.layout == torch.sparse_csr
    assert csr.weight._nnz() == round(0.1 * 64 * 48)
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = layer(x)
        out = csr(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_csr_linear_of_plain_layer() -> None:
    """A layer without a mask converts as is."""
    layer = nn.Linear(16, 8)
    with torch.no_grad():
        layer.weight[:, ::2] = 0
    x = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(sn.CSRLinear(layer)(x), layer(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("min_speedup", [0.0, math.inf, 1.1])
def test_sparse_inference_same_outputs_one_decision_per_linear(min_speedup: float) -> None:
    """sparse_inference: one decision per Linear, converted layers are CSRLinear, the outputs
    equal the sparse model's whatever was converted (0: all, inf: none, 1.1: by timing)."""
    model, _, sparsity = trained_sparse_mlp([16, 64, 64, 4], density=0.05)
    x = torch.randn(8, 16)
    fast, decisions = sn.sparse_inference(model, x, min_speedup=min_speedup, repeats=3)
    assert [d.name for d in decisions] == ["0", "2", "4"]
    for d in decisions:
        assert isinstance(fast.get_submodule(d.name), sn.CSRLinear) == d.converted
        weight = model.get_submodule(d.name).weight
        assert d.sparsity == pytest.approx(float((weight == 0).float().mean()))  # zeros stored
        assert d.sparsity >= 1 - float(sparsity.masks[d.name].float().mean()) - 1e-9
        assert d.dense_ms > 0 and d.csr_ms > 0
    if min_speedup == 0.0:
        assert all(d.converted for d in decisions)
    if min_speedup == math.inf:
        assert not any(d.converted for d in decisions)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-5, rtol=1e-5)
    assert isinstance(model.get_submodule("0"), nn.Linear)  # the original is untouched
