"""Which layers are sparse: by glob, type, predicate, first/last layer; the rest stays dense."""

from __future__ import annotations

import pytest
import torch
from helpers import mask_buffers
from torch import nn

from sparse_rl import sparse_nets as sn


class ActorCritic(nn.Module):
    """Two heads over a conv encoder with a norm layer: names like ``actor.0``, ``encoder.conv``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential()
        self.encoder.add_module("conv", nn.Conv2d(3, 4, 3))
        self.encoder.add_module("norm", nn.BatchNorm2d(4))
        self.encoder.add_module("flat", nn.Flatten())
        self.actor = nn.Sequential(nn.Linear(64, 16), nn.LayerNorm(16), nn.Linear(16, 2))
        self.critic = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return self.actor(h).sum(-1) + self.critic(h).squeeze(-1)


def sparse_names(model: nn.Module, **kwargs: object) -> set[str]:
    """Names of the layers ``sparsify(model, ..., **kwargs)`` makes sparse (masks agree)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsity = sn.sparsify(model, optimizer, 0.5, **kwargs)  # type: ignore[arg-type]
    assert set(mask_buffers(model)) == set(sparsity.masks)
    return set(sparsity.masks)


def test_default_is_every_linear_and_conv() -> None:
    """Without selectors every Linear / Conv layer is sparse."""
    names = sparse_names(ActorCritic())
    assert names == {"encoder.conv", "actor.0", "actor.2", "critic.0", "critic.2"}


def test_select_by_glob() -> None:
    """A glob on the qualified name selects a sub-network."""
    assert sparse_names(ActorCritic(), layers="actor.*") == {"actor.0", "actor.2"}


def test_select_by_type() -> None:
    """A module type selects layers of that type."""
    assert sparse_names(ActorCritic(), layers=nn.Conv2d) == {"encoder.conv"}


def test_select_by_predicate() -> None:
    """A predicate (name, module) -> bool selects the layers it accepts."""
    names = sparse_names(
        ActorCritic(), layers=lambda name, m: isinstance(m, nn.Linear) and m.out_features == 16
    )
    assert names == {"actor.0", "critic.0"}


def test_select_by_list_and_exclude() -> None:
    """A list of selectors is a union; ``exclude`` removes layers from the selection."""
    names = sparse_names(ActorCritic(), layers=["actor.*", nn.Conv2d], exclude="*.2")
    assert names == {"encoder.conv", "actor.0"}


def test_keep_output_layer_dense() -> None:
    """``exclude=sn.last_layer(model)`` leaves the output layer dense."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    assert sn.last_layer(model) == "4"
    assert sparse_names(model, exclude=sn.last_layer(model)) == {"0", "2"}
    assert torch.all(model[4].weight != 0)


def test_only_first_layer_sparse() -> None:
    """``layers=sn.first_layer(model)`` makes only the input layer sparse (as ANF does)."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert sn.first_layer(model) == "0"
    assert sparse_names(model, layers=sn.first_layer(model)) == {"0"}


def test_first_and_last_layer_need_a_sparsifiable_layer() -> None:
    """A model without Linear / Conv layers gets a clear error, not StopIteration/IndexError."""
    for pick in (sn.first_layer, sn.last_layer):
        with pytest.raises(ValueError, match="no sparsifiable layer"):
            pick(nn.Sequential(nn.ReLU(), nn.LayerNorm(3)))


def test_biases_and_norms_stay_dense_through_training() -> None:
    """Only the selected weights are masked: biases, BatchNorm and LayerNorm keep every entry
    and keep training."""
    torch.manual_seed(0)
    model = ActorCritic()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    sparsity = sn.sparsify(model, optimizer, 0.2, "erk", sn.RigL(interval=2, drop_fraction=0.5))
    masked = {id(model.get_submodule(n).weight) for n in sparsity.masks}
    others = {n: p for n, p in model.named_parameters() if id(p) not in masked}
    assert any(n.endswith("bias") for n in others) and "encoder.norm.weight" in others
    before = {n: p.detach().clone() for n, p in others.items()}
    for _ in range(4):
        loss = model(torch.randn(8, 3, 6, 6)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, p in others.items():
        assert sn.MASK not in name
        assert torch.count_nonzero(p) == p.numel(), f"{name} lost entries"
        assert not torch.equal(p, before[name]), f"{name} did not train"
    assert {n for n, _ in model.named_buffers() if n.endswith(sn.MASK)} == {
        f"{n}.{sn.MASK}" for n in sparsity.masks
    }
