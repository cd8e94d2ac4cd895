"""Topology updaters: how the set of active weights changes during training.

Every updater answers two questions at an update step: which active weights to keep (the rest
are dropped) and where to grow the same number back. Counts are exact: a layer leaves every
update with exactly its target number of active weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from sparse_rl.validation import check_choice, check_fraction, check_int

from .schedules import SCHEDULES, cubic_remaining, decayed_fraction

RIGL_GROWTH = ("gradient", "input_strength")


def top_k_mask(scores: Tensor, k: int, eligible: Tensor) -> Tensor:
    """Boolean mask of the ``k`` highest (finite) ``scores`` among ``eligible`` positions."""
    out = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if k > 0:
        flat = scores.flatten()
        # A finite floor below every score: topk is several times slower on runs of -inf.
        # (min - 1 is not below min once |min| >= 2**24 in float32; 2·min(min, 0) - 1 always is.)
        floor = 2.0 * flat.min().clamp(max=0.0) - 1.0
        floored = flat.masked_fill(~eligible.flatten(), floor)
        out[top_k_indices(floored, k)] = True
    return out.view_as(eligible)


def top_k_indices(values: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` largest entries of a 1-D tensor, exactly as ``topk`` would pick.

    On large tensors ``topk`` costs several ms; a threshold read off a strided sample keeps about
    2k candidates (everything at or above it), and ``topk`` runs on those only. Should the sample
    mislead (fewer than k candidates), the full ``topk`` runs.
    """
    n = values.numel()
    if n >= 1 << 16 and 8 * k < n:
        sample = values[:: n // 4096]
        rank = max(round(sample.numel() * (1.0 - 2.0 * k / n)), 1)
        threshold = torch.kthvalue(sample, rank).values
        candidates = (values >= threshold).nonzero().squeeze(1)
        if candidates.numel() >= k:
            return candidates[torch.topk(values[candidates], k, sorted=False).indices]
    return torch.topk(values, k, sorted=False).indices


@dataclass(frozen=True)
class TopologyUpdater:
    """Base of all updaters; ``interval`` and steps count optimizer steps.

    :param interval: ΔT, optimizer steps between topology updates.
    :param drop_fraction: fraction of a layer's active weights replaced at an update.
    :param schedule: decay of the drop fraction from ``start_step`` to ``end_step``
        ("constant", "cosine" or "linear"); decaying schedules need an ``end_step``.
    :param start_step: first step at which updates may happen.
    :param end_step: no updates from this step on (None: never stop, as ANF does).
    """

    interval: int = 100
    drop_fraction: float = 0.3
    schedule: str = "constant"
    start_step: int = 0
    end_step: int | None = None

    name: ClassVar[str] = "base"
    #: Whether the dense gradient (inactive positions too) must be captured before an update.
    needs_dense_grad: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_int("interval", self.interval)
        check_fraction("drop_fraction", self.drop_fraction, low_open=False)
        object.__setattr__(
            self, "schedule", check_choice("schedule", self.schedule, SCHEDULES, ignore_case=True)
        )
        check_int("start_step", self.start_step, 0)
        if self.end_step is not None:
            check_int("end_step", self.end_step)
            if self.end_step <= self.start_step:
                raise ValueError(
                    f"end_step={self.end_step} must be larger than start_step={self.start_step}."
                )
        elif self.schedule != "constant":
            raise ValueError(
                f"schedule={self.schedule!r} decays the drop fraction to 0 at end_step, so it "
                "needs an end_step; use schedule='constant' to update forever."
            )

    def config(self) -> dict[str, object]:
        """Settings that determine future updates (stored with the sparsity state)."""
        return {"updater": self.name, **dataclasses.asdict(self)}

    def is_update_step(self, step: int) -> bool:
        """Whether the topology changes right after optimizer step number ``step`` (1-based)."""
        if step < max(self.start_step, 1) or step % self.interval:
            return False
        return self.end_step is None or step < self.end_step

    def drop_fraction_at(self, step: int) -> float:
        return decayed_fraction(
            self.drop_fraction, self.schedule, step, self.start_step, self.end_step
        )

    def target_count(self, final: int, numel: int, step: int) -> int:
        """Target active count of a layer at ``step`` (fixed for dynamic sparse training)."""
        return final

    def keep_scores(self, weight: Tensor, grad: Tensor | None) -> Tensor:
        """Higher = more worth keeping; called on the active entries only (elementwise)."""
        return weight.abs()

    def grow_scores(
        self, weight: Tensor, grad: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        """Higher = grown first among inactive positions."""
        raise NotImplementedError

    def new_mask(
        self,
        weight: Tensor,
        mask: Tensor,
        grad: Tensor | None,
        target: int,
        drop_fraction: float,
        generator: torch.Generator,
    ) -> Tensor:
        """The mask after one update: keep the best active weights, grow the rest back.

        Positions dropped in this update are not regrown in the same update unless there are
        too few other inactive positions (layers above 50% density with large drop fractions).
        """
        flat = mask.flatten()
        active = flat.nonzero().squeeze(1)
        n_keep = max(min(active.numel(), target) - round(drop_fraction * target), 0)
        new = flat.clone()
        n_remove = active.numel() - n_keep
        if n_remove:  # the weakest active weights, scored and ranked among the active ones only
            active_grad = None if grad is None else grad.flatten()[active]
            scores = self.keep_scores(weight.flatten()[active], active_grad)
            weakest = torch.topk(scores, n_remove, largest=False, sorted=False).indices
            new[active[weakest]] = False
        n_grow = target - n_keep
        if n_grow:
            fresh_enough = flat.numel() - active.numel() >= n_grow
            eligible = ~flat if fresh_enough else ~new
            grow = top_k_mask(self.grow_scores(weight, grad, generator), n_grow, eligible)
            new |= grow.flatten()
        return new.view_as(mask)


def _random_scores(weight: Tensor, generator: torch.Generator) -> Tensor:
    # Drawn on the generator's (CPU) device so the stream does not depend on where weights live.
    return torch.rand(weight.shape, generator=generator).to(weight.device)


def input_strength(weight: Tensor) -> Tensor:
    """Mean |w| of each input unit's active (non-zero) connections, shaped to broadcast.

    Inputs are dim 1 (Linear's ``in_features``, a conv's input channels); 0 for an input with
    no active connection.
    """
    dims = [d for d in range(weight.dim()) if d != 1]
    magnitude = weight.detach().abs()
    total = magnitude.sum(dims, keepdim=True)
    count = (magnitude != 0).sum(dims, keepdim=True).clamp(min=1)
    return total / count


def _unit_scaled(t: Tensor) -> Tensor:
    top = t.max()
    return t / top if top > 0 else torch.zeros_like(t)


def _require_grad(grad: Tensor | None, who: str) -> Tensor:
    if grad is None:
        raise RuntimeError(
            f"{who} needs the layer's gradient at an update step, but none was seen."
        )
    return grad


@dataclass(frozen=True)
class Static(TopologyUpdater):
    """No topology change: the initial mask is kept for the whole of training."""

    name: ClassVar[str] = "static"

    def is_update_step(self, step: int) -> bool:
        return False


@dataclass(frozen=True)
class SET(TopologyUpdater):
    """SET / MagRan (Mocanu et al. 2018): drop the smallest |w|, grow at random."""

    name: ClassVar[str] = "set"

    def grow_scores(
        self, weight: Tensor, grad: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        return _random_scores(weight, generator)


@dataclass(frozen=True)
class RigL(TopologyUpdater):
    """RigL (Evci et al. 2020): drop the smallest |w|, grow where the dense |g| is largest.

    :param grow: "gradient" (RigL) or "input_strength": grow first at the inputs whose active
        connections are strongest (mean |w| of the input's active weights), then by |g|, each
        scaled to [0, 1] and added. Made for sparse input layers under an L1 penalty (R2N's
        reward models): the weights of inputs that carry nothing sit at zero, so the inputs that
        matter fill all their connections; plain |g| also grows wherever a batch is memorised.
    """

    grow: str = "gradient"

    name: ClassVar[str] = "rigl"
    needs_dense_grad: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self, "grow", check_choice("grow", self.grow, RIGL_GROWTH, ignore_case=True)
        )

    def grow_scores(
        self, weight: Tensor, grad: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        score = _require_grad(grad, "RigL").abs()
        if self.grow == "gradient":
            return score
        return _unit_scaled(input_strength(weight)).expand_as(weight) + _unit_scaled(score)


@dataclass(frozen=True)
class Sensitivity(TopologyUpdater):
    """Drop by sensitivity |w·g| (the first-order loss change of removing a weight), grow by |g|.

    The criterion of sparsity-evolution fine-tuning (SEFT): weights whose removal changes the
    loss least go first.
    """

    name: ClassVar[str] = "sensitivity"
    needs_dense_grad: ClassVar[bool] = True

    def keep_scores(self, weight: Tensor, grad: Tensor | None) -> Tensor:
        return (weight * _require_grad(grad, "Sensitivity")).abs()

    def grow_scores(
        self, weight: Tensor, grad: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        return _require_grad(grad, "Sensitivity").abs()


@dataclass(frozen=True)
class SEFT(TopologyUpdater):
    """Sparsity evolution fine-tuning (SEFT, Xiao et al. 2025, arXiv 2505.24037): for a pruned
    model that is fine-tuned at its exact sparsity.

    At an update, ``drop_fraction`` of a layer's target count is replaced in three moves:
    drop the weakest active weights by magnitude |w|; grow where the dense gradient |g| is
    largest among every inactive position, those pruned before fine-tuning included (a weight
    Wanda pruned may be what the new task needs); then prune back to the exact target by
    sensitivity |w·g|, the first-order loss change of removing a weight, among the weights that
    were active before (grown ones are zero yet, their sensitivity says nothing). Each layer
    leaves every update with exactly its target count, so the saved model has the pruned
    model's sparsity.

    :param sensitivity_fraction: share of the replaced weights removed by sensitivity after
        growth; the rest go by magnitude before it. 0 gives RigL's drop rule, 1 the
        ``sensitivity`` updater's.
    """

    sensitivity_fraction: float = 0.5

    name: ClassVar[str] = "seft"
    needs_dense_grad: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("sensitivity_fraction", self.sensitivity_fraction, low_open=False)

    def new_mask(
        self,
        weight: Tensor,
        mask: Tensor,
        grad: Tensor | None,
        target: int,
        drop_fraction: float,
        generator: torch.Generator,
    ) -> Tensor:
        grad = _require_grad(grad, "SEFT").flatten()
        w = weight.detach().flatten()
        before = mask.flatten()
        new = before.clone()
        active = before.nonzero().squeeze(1)
        replaced = min(round(drop_fraction * target), active.numel(), before.numel() - target)
        by_magnitude = replaced - round(self.sensitivity_fraction * replaced)
        if by_magnitude:  # 1. the smallest |w| go
            weakest = torch.topk(w[active].abs(), by_magnitude, largest=False, sorted=False)
            new[active[weakest.indices]] = False
        n_grow = target - (active.numel() - replaced)
        if n_grow > 0:  # 2. the largest |g| among positions inactive before this update
            new |= top_k_mask(grad.abs(), n_grow, ~before)
        excess = int(new.count_nonzero()) - target
        if excess > 0:  # 3. back to the exact target: the smallest |w·g| of the old survivors
            survivors = (new & before).nonzero().squeeze(1)
            sensitivity = (w[survivors] * grad[survivors]).abs()
            least = torch.topk(sensitivity, excess, largest=False, sorted=False).indices
            new[survivors[least]] = False
        return new.view_as(mask)


@dataclass(frozen=True)
class GradualPruning(TopologyUpdater):
    """Gradual magnitude pruning with regrowth (GraNet-style).

    A layer starts at ``initial_density`` and is pruned by magnitude towards its final density on
    the cubic schedule of Zhu & Gupta between ``start_step`` and ``prune_end_step``; at each update
    a further ``drop_fraction`` of weights is dropped and regrown (by gradient or at random).

    :param initial_density: density at the start of pruning (1.0 = start dense).
    :param prune_end_step: step at which the final density is reached.
    :param grow: "gradient" (RigL-style, the GraNet default) or "random".
    """

    initial_density: float = 1.0
    prune_end_step: int = 10_000
    grow: str = "gradient"

    name: ClassVar[str] = "gradual"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("initial_density", self.initial_density)
        check_int("prune_end_step", self.prune_end_step)
        if self.prune_end_step <= self.start_step:
            raise ValueError(
                f"prune_end_step={self.prune_end_step} must be larger than "
                f"start_step={self.start_step}."
            )
        object.__setattr__(
            self, "grow", check_choice("grow", self.grow, ("gradient", "random"), ignore_case=True)
        )

    @property
    def needs_dense_grad(self) -> bool:  # type: ignore[override]
        return self.grow == "gradient"

    def is_update_step(self, step: int) -> bool:
        pruning = self.start_step <= step <= self.prune_end_step and step % self.interval == 0
        return pruning or super().is_update_step(step)

    def target_count(self, final: int, numel: int, step: int) -> int:
        initial = max(final, round(self.initial_density * numel))
        remaining = cubic_remaining(step, self.start_step, self.prune_end_step)
        return round(final + (initial - final) * remaining)

    def drop_fraction_at(self, step: int) -> float:
        if not super().is_update_step(step):
            return 0.0  # a pruning-only step: remove weights, grow nothing back
        return super().drop_fraction_at(step)

    def grow_scores(
        self, weight: Tensor, grad: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        if self.grow == "random":
            return _random_scores(weight, generator)
        return _require_grad(grad, "GradualPruning(grow='gradient')").abs()


UPDATERS: dict[str, type[TopologyUpdater]] = {
    cls.name: cls for cls in (Static, SET, RigL, Sensitivity, SEFT, GradualPruning)
}
UPDATERS["magran"] = SET


def make_updater(name: str, **settings: object) -> TopologyUpdater:
    """Build an updater from its name (for configs): ``make_updater("rigl", interval=1000)``."""
    cls = UPDATERS[check_choice("updater", name, UPDATERS, ignore_case=True)]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ValueError(
            f"unknown settings {unknown} for updater {name!r}; valid: {sorted(fields)}."
        )
    return cls(**settings)  # type: ignore[arg-type]
