"""The small networks the supervised modules train: plain ``nn.Sequential`` MLPs and a small CNN,
so the sparse core sees ordinary Linear / Conv2d layers and ``sn.first_layer`` is the input
layer."""

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


def small_cnn(
    in_channels: int,
    image_size: int | tuple[int, int],
    classes: int,
    channels: Sequence[int] = (16, 32),
    hidden: int = 64,
) -> nn.Sequential:
    """A CNN for 8×8 to 32×32 images: ``conv3×3 → ReLU`` per entry of ``channels`` (padding 1),
    one 2×2 max-pool, then ``Linear → ReLU → Linear`` to logits. One pool only, so 8×8 digits
    keep a 4×4 map; Conv2d and Linear layers are what the sparse core masks."""
    check_int("in_channels", in_channels)
    check_int("classes", classes)
    check_int("hidden", hidden)
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    check_int("image_size", h, 2)
    check_int("image_size", w, 2)
    widths = [in_channels, *(check_int("channels", c) for c in channels)]
    if len(widths) < 2:
        raise ValueError("channels must name at least one convolution width.")
    layers: list[nn.Module] = []
    for a, b in pairwise(widths):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
    layers += [
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(widths[-1] * (h // 2) * (w // 2), hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    ]
    return nn.Sequential(*layers)
