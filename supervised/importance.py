"""How much a network relies on each input: the feature-selection scores, from torch alone.

- :func:`input_attribution` (Neuron-Attribution): Σ over outputs of the batch mean of
  |∂f_i(x)/∂x_j|, on whatever the model returns (logits for a classifier trained with
  cross-entropy: not softmax probabilities).
- :func:`input_strength` (QuickSelection): Σ_i |W1[i, j]|, the column sums of the input layer.
- :func:`input_degree`: active connections per input of the input layer (the ANF diagnostic).
"""

from __future__ import annotations

import torch
from sparse_rl.sparse_nets import MASK, first_layer
from torch import Tensor, nn

#: The names :class:`SparseFeatureSelector` accepts for ``importance`` (besides a callable).
IMPORTANCES = ("attribution", "strength", "degree")


def input_attribution(model: nn.Module, inputs: Tensor) -> Tensor:
    """Σ_outputs mean_batch |∂f_i/∂x_j| for one batch, shape ``inputs.shape[1:]``.

    Taken in eval mode, so dropout and batch norm do not couple the samples; one backward pass
    per output. Weight gradients are neither computed nor touched (``.grad`` stays as it was),
    so this can run inside a training loop between optimizer steps.
    """
    was_training = model.training
    model.eval()
    try:
        x = inputs.detach().requires_grad_(True)
        with torch.enable_grad():
            out = model(x).reshape(len(x), -1)
            total = torch.zeros(x.shape[1:], dtype=torch.float64, device=x.device)
            for i in range(out.shape[1]):
                (grad,) = torch.autograd.grad(out[:, i].sum(), x, retain_graph=i + 1 < out.shape[1])
                total += grad.abs().mean(dim=0, dtype=torch.float64)
    finally:
        model.train(was_training)
    return total


def _input_layer(model: nn.Module) -> nn.Module:
    return model.get_submodule(first_layer(model))


@torch.no_grad()
def input_strength(model: nn.Module) -> Tensor:
    """Σ |W1| per input of the model's first Linear/Conv layer (inactive weights are zero)."""
    weight = _input_layer(model).weight
    dims = [d for d in range(weight.dim()) if d != 1]
    return weight.abs().sum(dim=dims, dtype=torch.float64)


@torch.no_grad()
def input_degree(model: nn.Module) -> Tensor:
    """Active connections per input of the first layer (its mask, or its nonzero weights when it
    is dense: then every input has the same degree and the ranking says nothing)."""
    layer = _input_layer(model)
    active = getattr(layer, MASK, None)
    active = (layer.weight != 0) if active is None else (active != 0)
    dims = [d for d in range(active.dim()) if d != 1]
    return active.sum(dim=dims).to(torch.float64)
