"""A 90%-sparse RigL MLP learns a small made-up task about as well as the dense one."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn

#: The sparse model's test accuracy may trail the dense model's by at most this much.
MARGIN = 0.03
STEPS = 600


def teacher_task(seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """4 classes from a random tanh teacher that reads 6 of 16 Gaussian features."""
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(6, 32, generator=gen) / 6**0.5
    w2 = torch.randn(32, 4, generator=gen) / 32**0.5
    x = torch.randn(6000, 16, generator=gen)
    y = (torch.tanh(x[:, :6] @ w1) @ w2).argmax(dim=1)
    return x[:4000], y[:4000], x[4000:], y[4000:]


def accuracy_after_training(sparse: bool, seed: int) -> tuple[float, sn.Sparsity | None]:
    """Train a 16-128-128-4 MLP with Adam; return its test accuracy (and sparsity if any)."""
    x, y, x_test, y_test = teacher_task(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(16, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    sparsity = None
    if sparse:
        updater = sn.RigL(interval=50, drop_fraction=0.3, schedule="cosine", end_step=450)
        sparsity = sn.sparsify(model, optimizer, 0.1, "erk", updater, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(STEPS):
        idx = torch.randint(0, x.shape[0], (64,), generator=gen)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((model(x_test).argmax(1) == y_test).float().mean()), sparsity


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_mlp_learns_within_margin_of_dense(seed: int) -> None:
    """90% sparse (ERK, RigL) reaches the dense model's test accuracy within MARGIN, both far
    above the majority class, and the sparse model is still 90% sparse at the end."""
    _, _, _, y_test = teacher_task(seed)
    majority = float(torch.bincount(y_test).max()) / len(y_test)
    dense, _ = accuracy_after_training(sparse=False, seed=seed)
    sparse, sparsity = accuracy_after_training(sparse=True, seed=seed)
    assert sparsity is not None
    stats = sparsity.stats()
    assert stats.density == pytest.approx(0.1, abs=1 / stats.numel)
    assert all(layer.itop > layer.density for layer in stats.layers)  # the topology did evolve
    assert dense > majority + 0.3
    assert sparse >= dense - MARGIN, f"sparse {sparse:.3f} vs dense {dense:.3f}"
