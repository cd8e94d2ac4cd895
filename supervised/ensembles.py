"""NeuroTrails (Grooten et al., arXiv 2505.17909): one network with a shared trunk and several
heads ("trails"), the whole model sparse with an evolving topology.

The heads give an ensemble's accuracy and calibration; sharing the trunk and training everything
sparse keeps the active weights at those of one dense model. The training loss is the mean of
the heads' cross-entropies and the prediction the mean of their *logits* (the paper's rule;
averaging probabilities changes NLL and ECE, so both are offered).

Nothing here trains: :func:`~sparse_rl.supervised.fit` takes the ensemble with
``loss_fn=MultiHeadEnsemble.loss`` and ``sparsity=`` settings that reach trunk and heads alike
through the core. The baselines are settings of the same class: one head (single model), a dense
split (TreeNet), a split at 0 (independent networks, the full ensemble).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_choice, check_int

from . import metrics

#: How heads are combined: "logit" (softmax of the mean logits, NeuroTrails' rule) or "prob"
#: (mean of the heads' softmaxes, the classic deep-ensemble rule).
COMBINE = ("logit", "prob")

#: NeuroTrails' sparsity for :func:`fit`: 80% sparse, ERK over every layer, RigL with drop
#: fraction 0.5; ``fit`` adds the cosine decay that stops at 75% of the planned steps (RigL's
#: schedule) and an update every 10 steps (the paper: every 1000 on ImageNet-length runs). Lay a
#: budget over it: ``{**NEUROTRAILS_SPARSITY, "density": budget_density(model, budget)}``.
NEUROTRAILS_SPARSITY = MappingProxyType(
    {
        "density": 0.2,
        "distribution": "erk",
        "updater": MappingProxyType({"name": "rigl", "drop_fraction": 0.5}),
    }
)


class MultiHeadEnsemble(nn.Module):
    """A shared ``trunk`` and ``num_heads`` independent heads; forward gives
    ``(batch, heads, classes)``, or ``(batch, heads, *positions, classes)`` when each head
    predicts per position (a language model's ``(batch, heads, time, vocab)``).

    :param trunk: the shared first layers (an empty ``nn.Sequential`` for none).
    :param head_factory: called once per head; each call must build a new module, so that no
        weight is shared between heads (checked: shared storage raises).
    :param num_heads: an integer >= 1.
    """

    def __init__(
        self, trunk: nn.Module, head_factory: Callable[[], nn.Module], num_heads: int
    ) -> None:
        super().__init__()
        num_heads = check_int("num_heads", num_heads)
        if isinstance(head_factory, nn.Module) or not callable(head_factory):
            raise TypeError(
                "head_factory must be a callable that builds a new head on each call (e.g. "
                f"lambda: nn.Linear(64, 10)), got {type(head_factory).__name__}."
            )
        heads = [head_factory() for _ in range(num_heads)]
        for i, head in enumerate(heads):
            if not isinstance(head, nn.Module):
                raise TypeError(f"head_factory returned {type(head).__name__} for head {i}.")
        _check_no_shared_storage({"trunk": trunk, **{f"heads.{i}": h for i, h in enumerate(heads)}})
        self.trunk = trunk
        self.heads = nn.ModuleList(heads)

    @property
    def num_heads(self) -> int:
        return len(self.heads)

    def forward(self, x: Tensor) -> Tensor:
        features = self.trunk(x)
        return torch.stack([head(features) for head in self.heads], dim=1)

    @classmethod
    def split(
        cls, model: nn.Sequential, at: int, num_heads: int, *, seed: int = 0
    ) -> MultiHeadEnsemble:
        """The ensemble made from a plain network: ``model[:at]`` is the trunk, ``model[at:]``
        is copied once per head. ``at=0`` shares nothing (independent networks, the full
        ensemble).

        Every head is re-initialised (``reset_parameters()`` on each submodule that has it)
        from torch's generator seeded with ``seed``, so heads start different; the caller's
        generator is left as it was. The trunk is a copy of ``model[:at]`` with its weights:
        training the ensemble leaves ``model`` untouched.
        """
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}.")
        num_heads = check_int("num_heads", num_heads)
        at = check_int("at", at, 0)
        if at >= len(model):
            raise ValueError(
                f"at={at} leaves the heads no layer: model has {len(model)} layers, so at must "
                f"lie in [0, {len(model) - 1}]."
            )
        trunk = copy.deepcopy(model[:at])
        with sn.seeded(check_int("seed", seed, 0)):
            heads = [_reinitialised(copy.deepcopy(model[at:])) for _ in range(num_heads)]
        made = iter(heads)
        return cls(trunk, lambda: next(made), num_heads)

    @staticmethod
    def loss(outputs: Tensor, targets: Tensor) -> Tensor:
        """Mean over heads of each head's mean cross-entropy: ``fit``'s ``loss_fn``. Targets are
        ``(batch,)`` class indices, or ``(batch, *positions)`` for per-position outputs."""
        _check_outputs(outputs)
        heads = outputs.shape[1]
        if targets.shape != (outputs.shape[0], *outputs.shape[2:-1]):
            raise ValueError(
                f"targets of shape {tuple(targets.shape)} do not match outputs "
                f"{tuple(outputs.shape)}: expected {(outputs.shape[0], *outputs.shape[2:-1])}."
            )
        # (batch, classes, heads, *positions) against (batch, heads, *positions): the
        # K-dimensional form of cross_entropy
        expanded = targets[:, None].expand(-1, heads, *targets.shape[1:])
        return F.cross_entropy(outputs.movedim(-1, 1), expanded)

    @staticmethod
    def combined_logits(outputs: Tensor) -> Tensor:
        """The mean of the heads' logits, ``(batch, classes)``: NeuroTrails' prediction."""
        return _check_outputs(outputs).mean(dim=1)

    @staticmethod
    def combined_proba(outputs: Tensor, combine: str = "logit") -> Tensor:
        """Class probabilities from the heads' logits: "logit" is the softmax of their mean,
        "prob" the mean of their softmaxes."""
        combine = check_choice("combine", combine, COMBINE)
        _check_outputs(outputs)
        if combine == "logit":
            return outputs.mean(dim=1).softmax(dim=-1)
        return outputs.softmax(dim=-1).mean(dim=1)

    @staticmethod
    def accuracy(outputs: Tensor, targets: Tensor) -> float:
        """Accuracy of the combined prediction (over every position): ``fit``'s ``metric`` for
        an ensemble."""
        outputs, targets = flatten_positions(outputs, targets)
        return metrics.accuracy(MultiHeadEnsemble.combined_logits(outputs), targets)

    @torch.no_grad()
    def predict_proba(self, x: Tensor, combine: str = "logit") -> Tensor:
        """Combined class probabilities ``(batch, classes)``, computed in eval mode (the mode
        the model was in is restored)."""
        combine = check_choice("combine", combine, COMBINE)
        was_training = self.training
        self.eval()
        try:
            return self.combined_proba(self(x), combine)
        finally:
            self.train(was_training)

    def part_sparsity(self) -> dict[str, PartCount]:
        """Active and total weights and parameters of the trunk and of each head
        (``"trunk"``, ``"heads.0"``, ...), counted through the masks."""
        parts = {"trunk": self.trunk, **{f"heads.{i}": h for i, h in enumerate(self.heads)}}
        return {name: part_count(name, module) for name, module in parts.items()}


@dataclass(frozen=True)
class PartCount:
    """One part of a model: the weights of its sparsifiable layers (Linear, Conv) and all its
    parameters (biases, norms, ...), active ones counted through the masks."""

    name: str
    active_weights: int
    weights: int
    active_parameters: int
    parameters: int

    @property
    def density(self) -> float:
        """Active share of the sparsifiable weights; NaN for a part without any."""
        return self.active_weights / self.weights if self.weights else math.nan


def part_count(name: str, module: nn.Module) -> PartCount:
    """:class:`PartCount` of ``module``."""
    active_w = total_w = 0
    for layer in module.modules():
        if isinstance(layer, sn.SPARSIFIABLE):
            total_w += layer.weight.numel()
            active_w += _active_weight(layer)
    return PartCount(name, active_w, total_w, active_parameters(module), dense_parameters(module))


def active_parameters(model: nn.Module) -> int:
    """Parameters that can be non-zero: a masked weight counts its mask's ones (the core's
    ``weight_mask`` buffers), every other parameter (biases, unmasked weights) all its entries.
    The number to hold equal when comparing sparse and dense models."""
    total, seen = 0, set()
    for layer in model.modules():
        for name, param in layer.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            masked = name == "weight" and sn.MASK in layer._buffers
            total += _active_weight(layer) if masked else param.numel()
    return total


def dense_parameters(model: nn.Module) -> int:
    """Every parameter entry, masked or not (shared parameters once)."""
    return sum(p.numel() for p in model.parameters())


def budget_density(model: nn.Module, budget: int) -> float:
    """The density of the sparsifiable weights (Linear, Conv) at which ``model`` has at most
    ``budget`` active parameters, its other parameters (biases, ...) counted in full; e.g.
    ``budget_density(ensemble, dense_parameters(single))`` for NeuroTrails at the parameters of
    one dense model. 1.0 when the dense model already fits."""
    budget = check_int("budget", budget)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, sn.SPARSIFIABLE))
    room = budget - (dense_parameters(model) - weights)
    if weights == 0:
        raise ValueError(f"model {type(model).__name__} has no sparsifiable layer.")
    if room < 1:
        raise ValueError(
            f"budget={budget} is below the {budget - room} parameters outside the sparsifiable "
            "weights (biases, norms), which stay dense."
        )
    return min(1.0, room / weights)


@torch.no_grad()
def forward_macs(model: nn.Module, inputs: Tensor) -> float:
    """Multiply-accumulates per sample of the Linear and Conv layers at their active weights:
    active weights × output positions (1 for a Linear on flat features, H × W for a Conv2d).
    Biases, activations and pooling are left out. Runs one forward pass on ``inputs`` in eval
    mode."""
    total = 0.0

    def count(layer: nn.Module, _: Any, out: Tensor) -> None:
        nonlocal total
        positions = out.numel() / (len(inputs) * layer.weight.shape[0])
        total += _active_weight(layer) * positions

    handles = [
        m.register_forward_hook(count) for m in model.modules() if isinstance(m, sn.SPARSIFIABLE)
    ]
    was_training = model.training
    model.eval()
    try:
        model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def ensemble_metrics(outputs: Tensor, labels: Tensor, combine: str = "logit") -> dict[str, Any]:
    """What NeuroTrails measures, from the heads' logits ``(n, heads, classes)``: accuracy,
    NLL, ECE (15 fixed bins) and Brier of the combined prediction, the mean accuracy of the
    heads alone (``member_accuracy``) and their pairwise disagreement (None for one head).
    Per-position outputs count every position as one prediction (:func:`flatten_positions`)."""
    outputs, labels = flatten_positions(outputs, labels)
    probs = MultiHeadEnsemble.combined_proba(outputs, combine)
    members = outputs.transpose(0, 1)
    return {
        "accuracy": metrics.accuracy(probs, labels),
        "nll": metrics.nll(probs, labels),
        "ece": metrics.ece(probs, labels),
        "brier": metrics.brier(probs, labels),
        "member_accuracy": sum(metrics.accuracy(m, labels) for m in members) / len(members),
        "disagreement": metrics.disagreement(members) if len(members) > 1 else None,
    }


def flatten_positions(outputs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(batch, heads, *positions, classes)`` logits and ``(batch, *positions)`` labels as
    ``(batch × positions, heads, classes)`` and ``(batch × positions,)``: each position one
    prediction (a language model's tokens). Plain ``(batch, heads, classes)`` passes through."""
    _check_outputs(outputs)
    if outputs.ndim == 3:
        return outputs, labels
    heads, classes = outputs.shape[1], outputs.shape[-1]
    flat = outputs.movedim(1, -2).reshape(-1, heads, classes)
    return flat, labels.reshape(-1)


# -- helpers ---------------------------------------------------------------------------------


def _check_outputs(outputs: Tensor) -> Tensor:
    if outputs.ndim < 3:
        raise ValueError(
            f"outputs must be the heads' logits (batch, heads, classes) or (batch, heads, "
            f"*positions, classes), got shape {tuple(outputs.shape)}."
        )
    return outputs


def _active_weight(layer: nn.Module) -> int:
    mask = layer._buffers.get(sn.MASK)
    return layer.weight.numel() if mask is None else int(mask.count_nonzero())


def _reinitialised(module: nn.Module) -> nn.Module:
    """``module`` with every submodule that has ``reset_parameters()`` re-initialised; raises
    when a submodule holds parameters that no such call would redraw (the heads would start
    equal there)."""
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
            mask = sub._buffers.get(sn.MASK)
            if mask is not None:  # a copied sparse layer keeps its inactive weights at zero
                with torch.no_grad():
                    sub.weight.mul_(mask)
        elif any(True for _ in sub.parameters(recurse=False)):
            raise ValueError(
                f"{type(sub).__name__} holds parameters but has no reset_parameters(): the "
                "heads would start with equal weights there; build them with a head_factory."
            )
    return module


def _check_no_shared_storage(parts: dict[str, nn.Module]) -> None:
    """Raise when two parts hold the same parameter or buffer memory."""
    owner: dict[int, str] = {}
    for name, part in parts.items():
        pointers = {t.untyped_storage().data_ptr() for t in (*part.parameters(), *part.buffers())}
        for pointer in pointers:
            if pointer in owner and pointer != 0:
                raise ValueError(
                    f"{owner[pointer]} and {name} share weights: head_factory must build a new "
                    "module on every call, with its own parameters."
                )
            owner[pointer] = name
