"""Where the first active weights go: at random, by magnitude, by SNIP saliency, by a score
function of the caller's, or exactly where the caller's masks say (a pruned model's)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import torch
from torch import Tensor, nn

from ._checks import check_mask
from .updaters import top_k_mask

MASK_INITS = ("random", "magnitude")

#: ``score(name, module)``: a tensor shaped like the module's weight; higher = kept first.
ScoreFn: TypeAlias = Callable[[str, nn.Module], Tensor]


@dataclass(frozen=True)
class SNIP:
    """SNIP (Lee et al. 2019): keep the weights with the largest |w·g| on a batch.

    :param loss_fn: called as ``loss_fn(model)`` on the user's batch, returns a scalar loss.
        Scores are ranked within each layer; the density distribution decides the counts.
    """

    loss_fn: Callable[[nn.Module], Tensor]


#: What ``sparsify(init=...)`` takes: a name of :data:`MASK_INITS`, :class:`SNIP`, a mapping
#: ``{layer name: 0/1 or bool mask}`` (the masks are the topology, their counts the targets),
#: or a :data:`ScoreFn` (each layer keeps its highest scores).
MaskInit: TypeAlias = str | SNIP | Mapping[str, Tensor] | ScoreFn


def is_mask_mapping(init: Any) -> bool:
    """Whether ``init`` gives the masks themselves (a mapping of layer name to mask)."""
    return isinstance(init, Mapping)


def check_init(init: Any) -> Any:
    """``init`` if :func:`initial_masks` can use it, else a ValueError naming the choices."""
    if isinstance(init, SNIP) or is_mask_mapping(init):
        return init
    if isinstance(init, str):
        if init in MASK_INITS:
            return init
    elif callable(init):
        return init
    raise ValueError(
        f"init={init!r} is not valid; choose one of {sorted(MASK_INITS)}, sn.SNIP(loss_fn), a "
        "mapping {layer name: mask} or a score function (name, module) -> scores."
    )


def check_init_masks(
    masks: Mapping[str, Any],
    layers: Mapping[str, nn.Module],
    counts: Mapping[str, int],
    per_layer: bool,
) -> dict[str, Tensor]:
    """The caller's initial masks as booleans, checked against the chosen layers and density.

    Every chosen layer needs a mask and every mask a chosen layer; each must be 0/1 and shaped
    like its weight. The active counts may differ from what the density asks for by at most one
    weight per output row (pruning compares within rows and rounds each row), per layer for a
    per-layer density (``per_layer``), in total otherwise (non-uniform layer ratios such as OWL's
    are the masks' business).
    """
    missing = [n for n in layers if n not in masks]
    unknown = [n for n in masks if n not in layers]
    if missing or unknown:
        raise ValueError(
            f"init masks must name exactly the sparse layers; without a mask: {missing}, "
            f"masks for layers not sparsified (not sparsifiable, excluded or unselected): "
            f"{unknown}."
        )
    out: dict[str, Tensor] = {}
    for name, module in layers.items():
        mask = check_mask(f"init mask of layer {name!r}", masks[name], module.weight.shape)
        out[name] = mask != 0
    rows = {n: int(m.weight.shape[0]) for n, m in layers.items()}
    active = {n: int(m.count_nonzero()) for n, m in out.items()}
    groups = [[n] for n in layers] if per_layer else [list(layers)]
    for group in groups:
        have, want = sum(active[n] for n in group), sum(counts[n] for n in group)
        slack = sum(rows[n] for n in group)
        if abs(have - want) > slack:
            where = f"layer {group[0]!r}" if per_layer else "the sparse layers"
            numel = sum(layers[n].weight.numel() for n in group)
            raise ValueError(
                f"init masks keep {have} of {numel} weights of {where} (density "
                f"{have / numel:.4f}), but the density asks for {want} (± {slack}, one per "
                "output row); pass the density the masks were made with."
            )
    return out


def initial_masks(
    model: nn.Module,
    layers: Mapping[str, nn.Module],
    counts: Mapping[str, int],
    init: MaskInit,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """One boolean mask per layer with exactly ``counts[name]`` active positions (a mask
    mapping is taken as it is: its counts are the targets)."""
    if is_mask_mapping(init):
        return {n: init[n].detach() != 0 for n in layers}  # type: ignore[index]
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
    elif callable(init):
        scores = {n: _user_scores(init, n, m) for n, m in layers.items()}
    else:
        raise ValueError(
            f"init={init!r} is not valid; choose one of {list(MASK_INITS)} or SNIP(...)."
        )
    return {
        n: top_k_mask(scores[n], counts[n], torch.ones_like(scores[n], dtype=torch.bool))
        for n in layers
    }


def _user_scores(score: ScoreFn, name: str, module: nn.Module) -> Tensor:
    with torch.no_grad():
        out = score(name, module)
    shape = tuple(module.weight.shape)
    if not isinstance(out, Tensor) or tuple(out.shape) != shape:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"init score function returned {got} for layer {name!r}; it must return a tensor "
            f"shaped like the weight {shape}."
        )
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"init score function returned non-finite scores for layer {name!r}.")
    return out.detach().to(device=module.weight.device, dtype=torch.float32)
