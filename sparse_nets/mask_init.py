"""Where the first active weights go: at random, by magnitude, or by SNIP saliency."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .updaters import top_k_mask

MASK_INITS = ("random", "magnitude")


@dataclass(frozen=True)
class SNIP:
    """SNIP (Lee et al. 2019): keep the weights with the largest |w·g| on a batch.

    :param loss_fn: called as ``loss_fn(model)`` on the user's batch, returns a scalar loss.
        Scores are ranked within each layer; the density distribution decides the counts.
    """

    loss_fn: Callable[[nn.Module], Tensor]


def initial_masks(
    model: nn.Module,
    layers: Mapping[str, nn.Module],
    counts: Mapping[str, int],
    init: str | SNIP,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """One boolean mask per layer with exactly ``counts[name]`` active positions."""
    if isinstance(init, SNIP):
        loss = init.loss_fn(model)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError("SNIP.loss_fn(model) must return a scalar loss tensor.")
        weights = {n: m.weight for n, m in layers.items()}
        grads = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
        scores = {
            n: torch.zeros_like(w) if g is None else (w.detach() * g).abs()
            for (n, w), g in zip(weights.items(), grads, strict=True)
        }
    elif init == "magnitude":
        scores = {n: m.weight.detach().abs() for n, m in layers.items()}
    elif init == "random":
        scores = {
            n: torch.rand(m.weight.shape, generator=generator).to(m.weight.device)
            for n, m in layers.items()
        }
    else:
        raise ValueError(
            f"init={init!r} is not valid; choose one of {list(MASK_INITS)} or SNIP(...)."
        )
    return {
        n: top_k_mask(scores[n], counts[n], torch.ones_like(scores[n], dtype=torch.bool))
        for n in layers
    }
