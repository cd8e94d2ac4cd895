"""Converters for inference and export: fold masks into plain modules, or run wide layers as CSR."""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sparse_rl.validation import check_int

from ._checks import check_mask
from .sparsity import MASK, unguard_mask_loads


def densify(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with masks folded into the weights and no mask buffers or hooks left.

    The copy is an ordinary module (ONNX / TorchScript export, ``load_state_dict`` into a fresh
    dense model of the same architecture). The original keeps training sparse.
    """
    dense = copy.deepcopy(model)  # parameters are copied without their gradient hooks
    with torch.no_grad():
        for name, module in dense.named_modules():
            mask = module._buffers.pop(MASK, None)
            if mask is not None:  # a 0.5 put in by hand would silently scale the exported weight
                check_mask(f"{MASK} of layer {name!r}", mask, module.weight.shape)
                module.weight.mul_(mask)
                unguard_mask_loads(module)
    return dense


class CSRLinear(nn.Module):
    """Inference-only linear layer whose weight is stored in CSR and applied with ``sparse.mm``.

    ``torch.sparse.mm(W, x.T)`` is used rather than ``F.linear(x, W)``, which is several times
    slower for CSR weights. Not exportable to ONNX / TorchScript: use :func:`densify` for that.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        mask = getattr(linear, MASK, None)
        if mask is not None:
            weight = weight * check_mask(f"the Linear's {MASK}", mask, weight.shape)
        with warnings.catch_warnings():  # "CSR support is in beta": known, and not the user's doing
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = weight.to_sparse_csr()
        self.register_buffer("weight", csr)
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, self.in_features)
        out = torch.sparse.mm(self.weight, flat.t()).t()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        nnz = self.weight._nnz()
        return f"in={self.in_features}, out={self.out_features}, nnz={nnz}"


@dataclass(frozen=True)
class CSRDecision:
    """Timing that decided whether one layer runs as CSR (median milliseconds per call)."""

    name: str
    sparsity: float
    dense_ms: float
    csr_ms: float
    converted: bool


def _median_ms(fn, x: Tensor, repeats: int) -> float:
    with torch.no_grad():
        fn(x)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
    return 1e3 * sorted(times)[len(times) // 2]


def sparse_inference(
    model: nn.Module, example_input: Tensor, min_speedup: float = 1.1, repeats: int = 15
) -> tuple[nn.Module, list[CSRDecision]]:
    """A dense-folded copy of ``model`` where each Linear runs as CSR only if that is faster.

    Each Linear is timed dense vs CSR on the input it receives from ``example_input`` (so the
    batch size is the one you will serve) and converted when CSR is ``min_speedup`` times faster.
    Returns the model and one :class:`CSRDecision` per Linear layer.
    """
    speedup_ok = isinstance(min_speedup, (int, float)) and not isinstance(min_speedup, bool)
    if not (speedup_ok and min_speedup >= 0):  # NaN fails >= 0: it would convert nothing
        raise ValueError(
            "min_speedup must be a number >= 0 (0: convert every Linear, inf: none), "
            f"got {min_speedup!r}."
        )
    check_int("repeats", repeats)
    model = densify(model).eval()
    inputs: dict[str, Tensor] = {}
    handles = [
        m.register_forward_pre_hook(lambda _m, args, n=n: inputs.setdefault(n, args[0].detach()))
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear)
    ]
    with torch.no_grad():
        model(example_input)
    for handle in handles:
        handle.remove()
    decisions = []
    for name, x in inputs.items():
        linear = model.get_submodule(name)
        csr = CSRLinear(linear)
        sparsity = 1.0 - csr.weight._nnz() / linear.weight.numel()
        dense_ms = _median_ms(linear, x, repeats)
        csr_ms = _median_ms(csr, x, repeats)
        converted = dense_ms >= min_speedup * csr_ms
        if converted:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, csr)
        decisions.append(CSRDecision(name, sparsity, dense_ms, csr_ms, converted))
    return model, decisions
