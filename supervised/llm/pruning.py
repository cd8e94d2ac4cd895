"""Post-training pruning of language models into masks the core starts from.

:func:`prune_magnitude` and :func:`prune_wanda` return ``{layer name: bool mask}`` and leave the
model as it was; ``sn.sparsify(model, optimizer, 1 - sparsity, init=masks)`` (or
:class:`~sparse_rl.supervised.llm.SparsityCallback` with ``{"init": masks}``) zeroes the pruned
weights and keeps them so while fine-tuning. Torch only: any model whose projections are
``nn.Linear`` (LLaMA, Mistral, Qwen, GPT-NeoX, ...) and that takes an input-id tensor or a dict
of tensors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_fraction, check_int

#: A calibration batch: input ids (the model's first argument) or keyword inputs.
Batch = Tensor | Mapping[str, Any]


def output_head(model: nn.Module) -> str | None:
    """Qualified name of the model's output embedding (``lm_head``, GPT-NeoX's ``embed_out``),
    found with the Hugging Face ``get_output_embeddings()``; None for other models."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None:
        return None
    return next((n for n, m in model.named_modules() if m is head), None)


def refuse_conv1d(model: nn.Module) -> None:
    """GPT-2's ``Conv1D`` stores its weight transposed (in × out): refused, with what to do.

    Wanda compares weights within output rows and the core reads dim 1 as the input (N:M groups,
    per-input statistics); both would silently work on the wrong axis.
    """
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        transposed = type(module).__name__ == "Conv1D" and not isinstance(module, nn.Conv1d)
        if transposed and isinstance(weight, Tensor) and weight.dim() == 2:
            raise ValueError(
                f"layer {name!r} is a {type(module).__module__}.Conv1D (GPT-2 style: weight "
                "stored transposed, in × out), which is not supported: pruning would compare "
                "and group along the wrong axis. Use a model whose projections are nn.Linear "
                "(LLaMA, Mistral, Qwen, GPT-NeoX), or replace each Conv1D with an nn.Linear "
                "holding weight.T first."
            )


def target_layers(
    model: nn.Module,
    layers: sn.Selector | None = None,
    exclude: sn.Selector | None = None,
    *,
    include_head: bool = False,
) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` layers to prune and fine-tune sparse: ``layers`` (default every Linear)
    minus ``exclude``, minus the output head unless ``include_head`` (Wanda keeps it dense; a
    head tied to the input embedding is refused by the core either way)."""
    refuse_conv1d(model)
    chosen = sn.select_layers(model, nn.Linear if layers is None else layers, exclude)
    head = None if include_head else output_head(model)
    out = {n: m for n, m in chosen.items() if n != head and isinstance(m, nn.Linear)}
    if not out:
        raise ValueError(
            f"layers={layers!r}, exclude={exclude!r} leave no nn.Linear layer to prune "
            f"(the output head {head!r} stays dense unless include_head=True)."
        )
    return out


def _check_pattern(sparsity: float, n_m: tuple[int, int] | None) -> float:
    sparsity = check_fraction("sparsity", sparsity, low_open=False, high_closed=False)
    if n_m is None:
        return sparsity
    if not (isinstance(n_m, tuple) and len(n_m) == 2):
        raise ValueError(f"n_m must be a pair (N, M) such as (2, 4), got {n_m!r}.")
    n, m = check_int("n_m[0]", n_m[0]), check_int("n_m[1]", n_m[1])
    if n >= m:
        raise ValueError(f"n_m=({n}, {m}) keeps N of every M weights: N must be below M.")
    if abs(sparsity - (1 - n / m)) > 1e-9:
        raise ValueError(
            f"n_m=({n}, {m}) prunes {1 - n / m:g} of the weights, but sparsity={sparsity!r}; "
            f"pass sparsity={1 - n / m:g}."
        )
    return sparsity


def _row_masks(
    scores: Mapping[str, Tensor], sparsity: float, n_m: tuple[int, int] | None
) -> dict[str, Tensor]:
    """Keep the best scores of each output row (``cols - round(sparsity·cols)`` of them), or the
    best N of each M consecutive inputs of a row."""
    masks = {}
    for name, score in scores.items():
        rows, cols = score.shape
        if n_m is not None:
            n, m = n_m
            if cols % m:
                raise ValueError(
                    f"layer {name!r} has {cols} inputs, not a multiple of M={m}: N:M pruning "
                    "needs whole groups."
                )
            groups = score.reshape(rows, cols // m, m)
            best = torch.topk(groups, n, dim=2).indices
            mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, best, True)
            masks[name] = mask.reshape(rows, cols)
            continue
        keep = cols - round(sparsity * cols)
        mask = torch.zeros_like(score, dtype=torch.bool)
        if keep:
            mask.scatter_(1, torch.topk(score, keep, dim=1).indices, True)
        masks[name] = mask
    return masks


@torch.no_grad()
def prune_magnitude(
    model: nn.Module,
    sparsity: float,
    *,
    n_m: tuple[int, int] | None = None,
    layers: sn.Selector | None = None,
    exclude: sn.Selector | None = None,
    include_head: bool = False,
) -> dict[str, Tensor]:
    """Masks keeping the largest |w| of each targeted layer (N:M: of each group of M inputs).

    :param sparsity: fraction of each layer's weights pruned, in [0, 1).
    :param n_m: ``(N, M)``, e.g. ``(2, 4)``: keep N of every M consecutive inputs of each row
        (semi-structured; ``sparsity`` must then be 1 - N/M).
    :param layers: which Linear layers (a core selector); default all.
    :param exclude: layers kept dense.
    :param include_head: prune the output head too (kept dense by default, as Wanda does).
    """
    sparsity = _check_pattern(sparsity, n_m)
    chosen = target_layers(model, layers, exclude, include_head=include_head)
    scores = {n: m.weight.detach().abs() for n, m in chosen.items()}
    if n_m is not None:
        return _row_masks(scores, sparsity, n_m)
    masks = {}
    for name, score in scores.items():
        keep = score.numel() - round(sparsity * score.numel())
        mask = torch.zeros_like(score, dtype=torch.bool)
        mask.view(-1)[torch.topk(score.flatten(), keep, sorted=False).indices] = True
        masks[name] = mask
    return masks


def _run(model: nn.Module, batch: Batch, device: torch.device) -> None:
    if isinstance(batch, Tensor):
        model(batch.to(device))
    elif isinstance(batch, Mapping):
        model(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()})
    else:
        raise TypeError(
            "calibration batches must be input-id tensors or dicts of model inputs, got "
            f"{type(batch).__name__}."
        )


def _blocks(names: Iterable[str]) -> list[list[str]]:
    """Layers grouped by transformer block (the name up to its first numeric part, as in
    ``model.layers.3``), in model order; a layer outside any block is a group of its own."""
    groups: dict[str, list[str]] = {}
    for name in names:
        match = re.match(r"^(.*?\.\d+)(\.|$)", name)
        groups.setdefault(match.group(1) if match else name, []).append(name)
    return list(groups.values())


def _masked_forward(mask: Tensor):
    def hook(module: nn.Linear, args: tuple[Any, ...], _out: Tensor) -> Tensor:
        return F.linear(args[0], module.weight * mask, module.bias)

    return hook


@torch.no_grad()
def input_norms(
    model: nn.Module,
    calibration: Iterable[Batch],
    layers: Mapping[str, nn.Linear],
    masks: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """‖X_j‖₂ of each input channel j of each of ``layers`` over every calibration token, the
    inputs captured with forward pre-hooks; layers in ``masks`` run pruned meanwhile."""
    batches = list(calibration)
    if not batches:
        raise ValueError("calibration is empty: give at least one batch of input ids.")
    device = next(model.parameters()).device
    squares = {n: torch.zeros(m.in_features, dtype=torch.float32, device=device)
               for n, m in layers.items()}  # fmt: skip

    def capture(name: str):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].detach().to(torch.float32)
            squares[name] += x.reshape(-1, x.shape[-1]).pow(2).sum(0)

        return hook

    handles = [m.register_forward_pre_hook(capture(n)) for n, m in layers.items()]
    for name, mask in (masks or {}).items():
        module = model.get_submodule(name)
        handles.append(module.register_forward_hook(_masked_forward(mask.to(device))))
    training = model.training
    model.eval()
    try:
        for batch in batches:
            _run(model, batch, device)
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return {n: s.sqrt() for n, s in squares.items()}


@torch.no_grad()
def prune_wanda(
    model: nn.Module,
    calibration: Iterable[Batch],
    sparsity: float,
    *,
    n_m: tuple[int, int] | None = None,
    layers: sn.Selector | None = None,
    exclude: sn.Selector | None = None,
    include_head: bool = False,
    sequential: bool = True,
) -> dict[str, Tensor]:
    """Wanda (Sun et al. 2024): within each output row, keep the weights with the largest
    |W_ij|·‖X_j‖₂, X_j being input channel j over the calibration tokens.

    :param calibration: batches of input ids (the model's first argument) or dicts of model
        inputs; every position counts, padding included, so calibrate on unpadded text.
    :param sparsity: fraction of each row's weights pruned, in [0, 1).
    :param n_m: ``(N, M)``: keep N of every M consecutive inputs of each row instead.
    :param sequential: as the paper, block by block (``model.layers.0``, ``model.layers.1``,
        ...): a block's inputs come from the blocks before it already pruned, one calibration
        pass per block. False: one pass of the dense model for every layer.
    """
    sparsity = _check_pattern(sparsity, n_m)
    chosen = target_layers(model, layers, exclude, include_head=include_head)
    batches = list(calibration)
    masks: dict[str, Tensor] = {}
    for group in _blocks(chosen) if sequential else [list(chosen)]:
        norms = input_norms(model, batches, {n: chosen[n] for n in group}, masks)
        scores = {n: chosen[n].weight.detach().abs().float() * norms[n] for n in group}
        masks.update(_row_masks(scores, sparsity, n_m))
    return {n: masks[n] for n in chosen}


def measured_sparsity(model: nn.Module, names: Iterable[str]) -> dict[str, float]:
    """Fraction of exact zeros in the weight of each named layer (a saved model's sparsity)."""
    out = {}
    for name in names:
        weight = model.get_submodule(name).weight.detach()
        out[name] = 1.0 - int(weight.count_nonzero()) / weight.numel()
    return out
