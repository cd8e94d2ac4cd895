"""The small networks the supervised modules train: plain ``nn.Sequential`` MLPs, so the sparse
core sees ordinary Linear layers and ``sn.first_layer`` is the input layer."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn

from sparse_rl.validation import check_choice, check_int

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def mlp(
    inputs: int, hidden: Sequence[int], outputs: int, activation: str = "relu"
) -> nn.Sequential:
    """``inputs → hidden[0] → … → outputs`` with ``activation`` between layers, none at the end
    (the output is logits or a regression value)."""
    check_int("inputs", inputs)
    check_int("outputs", outputs)
    make = ACTIVATIONS[check_choice("activation", activation, tuple(ACTIVATIONS))]
    widths = [inputs, *(check_int("hidden", h) for h in hidden), outputs]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(make())
    return nn.Sequential(*layers)
