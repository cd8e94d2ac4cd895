"""What a sparse model looks like right now: densities, churn, in-time over-parameterization."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LayerStats:
    """One sparse layer.

    :param churn: fraction of the active weights that are new since the previous update.
    :param itop: in-time over-parameterization, the fraction of positions ever active.
    """

    name: str
    shape: tuple[int, ...]
    numel: int
    active: int
    density: float
    churn: float
    itop: float


@dataclass(frozen=True)
class SparsityStats:
    """All sparse layers of a model at optimizer step ``step``."""

    step: int
    layers: tuple[LayerStats, ...]

    @property
    def active(self) -> int:
        return sum(layer.active for layer in self.layers)

    @property
    def numel(self) -> int:
        return sum(layer.numel for layer in self.layers)

    @property
    def density(self) -> float:
        """Global density over the sparse layers."""
        return self.active / self.numel

    def as_dict(self, prefix: str = "sparsity") -> dict[str, float]:
        """Flat scalars for a logger (SB3 ``logger.record``, TensorBoard)."""
        out = {f"{prefix}/density": self.density, f"{prefix}/step": float(self.step)}
        for layer in self.layers:
            for key in ("density", "churn", "itop"):
                out[f"{prefix}/{layer.name}/{key}"] = getattr(layer, key)
        return out

    def __str__(self) -> str:
        rows = [f"{'layer':<28}{'shape':<20}{'active':>10}{'density':>9}{'churn':>8}{'itop':>7}"]
        for s in self.layers:
            rows.append(
                f"{s.name:<28}{'x'.join(map(str, s.shape)):<20}{s.active:>10}"
                f"{s.density:>9.4f}{s.churn:>8.3f}{s.itop:>7.3f}"
            )
        rows.append(f"{'total':<48}{self.active:>10}{self.density:>9.4f}   (step {self.step})")
        return "\n".join(rows)


def connections_per_input(mask: Tensor) -> Tensor:
    """Active connections of each input unit (columns of a Linear, input channels of a Conv)."""
    dims = [d for d in range(mask.dim()) if d != 1]
    return (mask != 0).sum(dim=dims).to(torch.float32)
