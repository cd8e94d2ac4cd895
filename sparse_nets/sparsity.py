"""Make any torch model sparse with one call; the training loop stays as it was.

Masks are buffers named ``weight_mask`` on the module that owns the weight, so they travel with
``state_dict()``, ``copy.deepcopy`` and ``torch.save``; ``load_state_dict`` refuses a mask that is
not 0/1 or not shaped like its weight. They hold 0/1 in the weight's dtype: on CPU a float
multiply is ~9x faster than a boolean ``where`` / ``masked_fill``
(benchmarks/results/mask_ops.md), and the masks follow ``.half()`` / ``.to()`` with their weights.
Inactive weights are physically zero, so the forward pass is the dense one and costs nothing
extra. A hook run as each gradient is accumulated zeroes inactive entries of ``.grad`` in place,
before anything else sees them (gradient clipping measures the true norm), and a hook on the
optimizer re-masks weights after every step and runs the topology updater.

Deep copies. torch copies neither gradient hooks nor optimizer hooks, so a deep copy of the model
alone carries its masks and zeros (fine for inference, export and target networks) but nothing
keeps it sparse while it trains. Two ways to a copy that trains sparse:

- ``model2, opt2, sparsity2 = copy.deepcopy((model, optimizer, sparsity))``: one call, so the
  copied Sparsity hooks the copied model and optimizer and resumes where the original stood.
- ``sparsify(model2, opt2, ...)`` on a copied model adopts the masks it carries (with the same
  density and distribution); ``sparsity2.load_state_dict(sparsity.state_dict())`` then resumes the
  original's schedule. A model kept sparse by a live Sparsity cannot be sparsified again.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sparse_rl.validation import check_finite

from . import distributed
from ._checks import check_mask
from .distributions import layer_counts
from .layers import Selector, select_layers
from .mask_init import (
    MaskInit,
    check_init,
    check_init_masks,
    initial_masks,
    is_mask_mapping,
)
from .optimizer_state import held_parameters, zero_state
from .stats import LayerStats, SparsityStats, connections_per_input
from .updaters import UPDATERS, TopologyUpdater, make_updater

MASK = "weight_mask"
#: Mixed into the seed of the mask stream (see :func:`mask_stream_seed`).
_MASK_STREAM_TAG = 0x5350_4152_5345  # "SPARSE"
#: The Sparsity keeping each sparse module so. Weak both ways: it decides whether masks a module
#: carries belong to a live run (sparsify refuses) or were copied / released (sparsify adopts).
_OWNERS: weakref.WeakKeyDictionary[nn.Module, weakref.ReferenceType[Sparsity]] = (
    weakref.WeakKeyDictionary()
)


def mask_stream_seed(seed: int) -> int:
    """The seed of the generator that draws masks, derived from ``seed`` by splitmix64.

    Models are usually initialised right after ``torch.manual_seed(seed)``. Were the mask drawn
    from a generator seeded with the same number, its "random" scores would be the very uniforms
    that made the weights, and a random mask would keep exactly the largest positive weights.
    """
    z = (seed ^ _MASK_STREAM_TAG) + 0x9E37_79B9_7F4A_7C15 & 0xFFFF_FFFF_FFFF_FFFF
    z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9 & 0xFFFF_FFFF_FFFF_FFFF
    z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB & 0xFFFF_FFFF_FFFF_FFFF
    return z ^ (z >> 31)


@dataclass
class _Layer:
    name: str
    module: nn.Module
    final: int  # active count the distribution asks for
    target: int  # active count now (differs from final only while gradually pruning)
    ever_active: Tensor
    churn: float = 0.0

    @property
    def weight(self) -> nn.Parameter:
        return self.module.weight  # type: ignore[return-value]

    @property
    def mask(self) -> Tensor:
        """The 0/1 buffer, in the weight's dtype."""
        return getattr(self.module, MASK)

    def active(self) -> Tensor:
        return self.mask != 0

    @property
    def always_dense(self) -> bool:
        """Kept at full density by the distribution (ERK does this to small layers): its mask
        is all ones for good, so it needs no hooks and no per-step multiply."""
        return self.final == self.weight.numel()


class Sparsity:
    """The sparse state of one model: masks, updater schedule, statistics.

    Made by :func:`sparsify`; keep it to read :meth:`stats` and to checkpoint
    :meth:`state_dict` next to the model's and the optimizer's. For a second run that trains
    sparse on its own, deep-copy all three together: ``copy.deepcopy((model, opt, sparsity))``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        layers: Mapping[str, nn.Module],
        counts: Mapping[str, int],
        updater: TopologyUpdater,
        init: MaskInit,
        grow_init: float,
        seed: int,
    ) -> None:
        self.grow_init = check_finite("grow_init", grow_init)
        carried = _carried_masks(layers, counts, updater)  # before anything changes
        self.updater = updater
        self.optimizer = optimizer
        self._step = 0
        self._generator = torch.Generator().manual_seed(mask_stream_seed(seed))
        self._warned_nonfinite = False
        targets = {
            n: int(carried[n].count_nonzero())
            if n in carried
            else updater.target_count(counts[n], m.weight.numel(), 0)
            for n, m in layers.items()
        }
        fresh = {n: m for n, m in layers.items() if n not in carried}
        masks = dict(carried)
        if fresh:
            masks.update(initial_masks(model, fresh, targets, init, self._generator))
        self._layers: dict[str, _Layer] = {}
        for name, module in layers.items():
            weight = module.weight
            mask = masks[name].to(device=weight.device, dtype=weight.dtype)
            module.register_buffer(MASK, mask, persistent=True)
            self._layers[name] = _Layer(
                name, module, counts[name], targets[name], masks[name].to(weight.device).clone()
            )
        self._index()
        if distributed.is_distributed():
            distributed.broadcast_masks([layer.mask for layer in self._layers.values()])
            for layer in self._layers.values():
                layer.ever_active.copy_(layer.active())
        self._apply_masks()
        if optimizer is not None:
            for layer in self._layers.values():
                zero_state(optimizer, layer.weight, ~layer.active())
        self._attach()

    def _index(self) -> None:
        """Lists the per-step multiply runs over; no hooks yet."""
        self._masked = [layer for layer in self._layers.values() if not layer.always_dense]
        self._weights = [layer.weight for layer in self._masked]
        self._dense_grads: dict[str, Tensor] = {}
        self._handles: list[Any] = []
        self._step_handle: Any = None
        self._capture_handles: list[Any] = []
        self._attached = False

    def _attach(self) -> None:
        """Hooks that keep the model sparse: gradient masking, re-masking after each optimizer
        step, checks on masks loaded later; and the record that this object owns the layers."""
        trained = [layer for layer in self._masked if layer.weight.requires_grad]
        self._handles = [
            layer.weight.register_post_accumulate_grad_hook(self._mask_hook(layer))
            for layer in trained  # a frozen weight gets no gradient to mask
        ]
        self._attached = True
        if self.optimizer is not None:
            self._hook_optimizer(self.optimizer)
        for layer in self._layers.values():
            _OWNERS[layer.module] = weakref.ref(self)
            guard_mask_loads(layer.module)
        self._arm_capture()

    def _hook_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self._step_handle = optimizer.register_step_post_hook(lambda *_: self.step())
        self._handles.append(self._step_handle)

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Let ``optimizer``'s steps drive re-masking and topology updates from now on.

        For a model made sparse before its optimizer exists: a ``transformers.Trainer`` builds
        its optimizer when training begins, after a checkpoint (masks included) was loaded into
        the model. Replaces the optimizer attached before, if any; the new one's state is zeroed
        at inactive positions. Pass the torch optimizer itself, not a wrapper around it
        (accelerate's ``AcceleratedOptimizer``: its ``.optimizer``).
        """
        _check_optimizer(optimizer, nullable=False)
        held = held_parameters(optimizer)
        absent = [n for n, layer in self._layers.items() if id(layer.weight) not in held]
        if absent:
            raise ValueError(
                f"optimizer does not hold the weights of sparse layers {absent}; attach the "
                "optimizer that trains this model."
            )
        if self._step_handle is not None:
            self._step_handle.remove()
            self._handles.remove(self._step_handle)
            self._step_handle = None
        self.optimizer = optimizer
        for layer in self._layers.values():
            zero_state(optimizer, layer.weight, ~layer.active())
        if self._attached:
            self._hook_optimizer(optimizer)

    def __deepcopy__(self, memo: dict[int, Any]) -> Sparsity:
        """A Sparsity that keeps the copied model sparse, driven by the copied optimizer.

        Copy the model, its optimizer and this object in one ``copy.deepcopy`` call so they share
        the copied modules and parameters; copied alone, this object brings its own copies of the
        layers and the optimizer (``.optimizer``). Step count, random stream and statistics carry
        over, so the copy continues exactly as the original would.
        """
        new = Sparsity.__new__(Sparsity)
        memo[id(self)] = new
        new.updater = self.updater  # frozen
        new.optimizer = copy.deepcopy(self.optimizer, memo)
        new.grow_init = self.grow_init
        new._step = self._step
        new._generator = torch.Generator()
        new._generator.set_state(self._generator.get_state())
        new._warned_nonfinite = self._warned_nonfinite
        new._layers = {
            name: dataclasses.replace(
                layer,
                module=copy.deepcopy(layer.module, memo),
                ever_active=layer.ever_active.clone(),
            )
            for name, layer in self._layers.items()
        }
        new._index()
        if self._attached:  # a removed Sparsity copies as removed
            new._attach()
        return new

    # -- the training-loop side ---------------------------------------------------------------

    def _arm_capture(self) -> None:
        """Before an update step only, hook the incoming dense gradients (RigL grows by them)."""
        if self._capture_handles or not self._attached or not self.updater.needs_dense_grad:
            return
        if not self.updater.is_update_step(self._step + 1):
            return
        for layer in self._masked:  # an always-dense layer never grows
            if layer.weight.requires_grad:
                hook = self._capture_hook(layer)
                self._capture_handles.append(layer.weight.register_hook(hook))

    def _disarm_capture(self) -> None:
        for handle in self._capture_handles:
            handle.remove()
        self._capture_handles.clear()
        self._dense_grads.clear()

    def _capture_hook(self, layer: _Layer):
        """Keeps the dense gradient, inactive entries included, for the coming update."""

        @torch.utils.hooks.unserializable_hook
        def hook(grad: Tensor) -> None:
            seen = self._dense_grads.get(layer.name)
            # No .grad yet means zero_grad() ran since the last backward: start afresh, so a
            # backward through this net for another loss (SAC's actor through the critic)
            # is not counted in the gradient that decides growth.
            fresh = seen is None or layer.weight.grad is None
            self._dense_grads[layer.name] = grad.detach().clone() if fresh else seen + grad

        return hook

    def _mask_hook(self, layer: _Layer):
        """Zeroes inactive entries of ``.grad`` in place once a backward has accumulated into it."""

        @torch.utils.hooks.unserializable_hook
        def hook(weight: Tensor) -> None:
            _mask_gradient_(weight.grad, layer.mask)

        return hook

    @torch.no_grad()
    def _apply_masks(self) -> None:
        if self._weights:  # every layer may be dense (density 1.0)
            torch._foreach_mul_(self._weights, [layer.mask for layer in self._masked])

    @torch.no_grad()
    def step(self) -> None:
        """Called after every optimizer step (automatically when an optimizer was given)."""
        self._step += 1
        self._apply_masks()
        if self.updater.is_update_step(self._step):
            self._update()
        self._disarm_capture()
        self._arm_capture()

    def _update(self) -> None:
        layers = list(self._layers.values())
        for layer in layers:
            active = int(layer.mask.count_nonzero())
            if active != layer.target:
                raise RuntimeError(
                    f"layer {layer.name!r} has {active} active weights but the sparsity state "
                    f"expects {layer.target}: load the model's state_dict and the sparsity "
                    "state_dict from the same checkpoint."
                )
        grads = {
            layer.name: self._dense_grads.get(layer.name, layer.weight.grad) for layer in layers
        }
        if distributed.is_distributed() and self.updater.needs_dense_grad:
            distributed.average_(list(self._dense_grads.values()))
        finite = all(
            _all_finite(layer.weight)
            and (grads[layer.name] is None or _all_finite(grads[layer.name]))
            for layer in layers
        )
        if distributed.is_distributed():
            finite = distributed.all_true(finite)
        if not finite:
            self._scrub_inactive(layers)
            if not self._warned_nonfinite:
                warnings.warn(
                    f"non-finite weights or gradients at step {self._step}: topology update "
                    "skipped, masks unchanged (warned once).",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._warned_nonfinite = True
            return
        fraction = self.updater.drop_fraction_at(self._step)
        new_masks: dict[str, Tensor] = {}
        for layer in layers:
            numel = layer.weight.numel()
            target = self.updater.target_count(layer.final, numel, self._step)
            grad = grads[layer.name]
            frozen = not layer.weight.requires_grad  # nothing trains it: its topology stays
            staying_dense = target == numel == layer.target
            if frozen or staying_dense or (self.updater.needs_dense_grad and grad is None):
                continue
            new_masks[layer.name] = self.updater.new_mask(
                layer.weight, layer.active(), grad, target, fraction, self._generator
            )
        if distributed.is_distributed():
            distributed.broadcast_masks(list(new_masks.values()))
        for name, new in new_masks.items():
            self._set_mask(self._layers[name], new)

    def _scrub_inactive(self, layers: list[_Layer]) -> None:
        # Multiplying by the mask keeps NaN/inf (NaN * 0 = NaN); make inactive entries exact zeros.
        for layer in layers:
            inactive = ~layer.active()
            layer.weight.masked_fill_(inactive, 0.0)
            if self.optimizer is not None:
                zero_state(self.optimizer, layer.weight, inactive)

    def _set_mask(self, layer: _Layer, new: Tensor) -> None:
        # Float multiplies, not boolean fills: several times faster on CPU (see _apply_masks).
        old = layer.active()
        grown = new & ~old
        new_f = new.to(layer.mask.dtype)
        weight = layer.weight
        weight.mul_(new_f)
        if self.grow_init != 0.0:
            weight.masked_fill_(grown, self.grow_init)
        if weight.grad is not None:  # a loop that skips zero_grad must not reuse dropped grads
            weight.grad.mul_(new_f)
        if self.optimizer is not None:  # exact zeros even for overflowed (inf) moments
            zero_state(self.optimizer, weight, ~(new & old))
        target = int(new.count_nonzero())
        layer.churn = int(grown.count_nonzero()) / max(target, 1)
        layer.target = target
        layer.ever_active |= new.to(layer.ever_active.device)  # the model may have moved since
        layer.mask.copy_(new_f)

    # -- reading and checkpointing ------------------------------------------------------------

    @property
    def step_count(self) -> int:
        """Optimizer steps seen so far."""
        return self._step

    @property
    def masks(self) -> dict[str, Tensor]:
        """A boolean snapshot of every sparse layer's mask, by qualified name (True = active)."""
        return {name: layer.active() for name, layer in self._layers.items()}

    def stats(self) -> SparsityStats:
        """Per-layer density and active count, churn of the last update, ever-active fraction."""
        rows = []
        for layer in self._layers.values():
            numel = layer.weight.numel()
            active = int(layer.mask.count_nonzero())
            rows.append(
                LayerStats(
                    name=layer.name,
                    shape=tuple(layer.weight.shape),
                    numel=numel,
                    active=active,
                    density=active / numel,
                    churn=layer.churn,
                    itop=int(layer.ever_active.sum()) / numel,
                )
            )
        return SparsityStats(step=self._step, layers=tuple(rows))

    def input_connectivity(self, layer: str | None = None) -> Tensor:
        """Active connections per input unit of ``layer`` (default: the first sparse layer)."""
        name = next(iter(self._layers)) if layer is None else layer
        if name not in self._layers:
            raise ValueError(
                f"layer={name!r} is not sparse here; sparse layers: {list(self._layers)}."
            )
        return connections_per_input(self._layers[name].mask)

    def state_dict(self) -> dict[str, Any]:
        """What future updates need besides the masks (those live in the model's state_dict)."""
        return {
            "step": self._step,
            "generator": self._generator.get_state(),
            "updater": self.updater.config(),
            "grow_init": self.grow_init,
            "warned_nonfinite": self._warned_nonfinite,
            "layers": {
                n: {
                    "shape": tuple(layer.weight.shape),
                    "final": layer.final,
                    "target": layer.target,
                    "churn": layer.churn,
                    "ever_active": layer.ever_active.clone(),
                }
                for n, layer in self._layers.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict`; raises if it was made for other layers or settings."""
        missing = sorted({"step", "generator", "updater", "layers"} - set(state))
        if missing:
            raise ValueError(f"sparsity state_dict lacks keys {missing}; was it made by Sparsity?")
        if sorted(state["layers"]) != sorted(self._layers):
            raise ValueError(
                f"sparsity state_dict is for layers {sorted(state['layers'])}, "
                f"this model's sparse layers are {sorted(self._layers)}."
            )
        for name, saved in state["layers"].items():
            shape = tuple(self._layers[name].weight.shape)
            if tuple(saved["shape"]) != shape:
                raise ValueError(
                    f"sparsity state_dict has shape {tuple(saved['shape'])} for layer {name!r}, "
                    f"the model has {shape}."
                )
            check_mask(f"ever_active of layer {name!r}", saved["ever_active"], shape)
            if int(saved["final"]) != self._layers[name].final:
                raise ValueError(
                    f"sparsity state_dict keeps {saved['final']} weights of layer {name!r} "
                    f"active, this sparsity {self._layers[name].final}; pass the same density "
                    "and distribution to sparsify()."
                )
        if not _same_updater(state["updater"], self.updater):
            raise ValueError(
                f"sparsity state_dict was made with updater {state['updater']}, this one is "
                f"{self.updater.config()}; pass the same updater settings to sparsify()."
            )
        grow_init = check_finite("grow_init", state.get("grow_init", self.grow_init))
        self._step = int(state["step"])
        self._generator.set_state(state["generator"])
        self.grow_init = grow_init
        self._warned_nonfinite = bool(state.get("warned_nonfinite", False))
        for name, saved in state["layers"].items():
            layer = self._layers[name]
            layer.target = int(saved["target"])
            layer.churn = float(saved["churn"])
            layer.ever_active.copy_(saved["ever_active"] != 0)
        self._disarm_capture()
        self._arm_capture()

    def remove(self) -> None:
        """Detach the hooks (masks stay on the model); training after this is no longer sparse.

        The model may then be sparsified again: :func:`sparsify` adopts the masks it carries.
        """
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._step_handle = None
        self._attached = False
        self._disarm_capture()
        for layer in self._layers.values():
            ref = _OWNERS.get(layer.module)
            if ref is not None and ref() is self:
                del _OWNERS[layer.module]


def _owner(module: nn.Module) -> Sparsity | None:
    """The live, attached Sparsity keeping ``module`` sparse, if any."""
    ref = _OWNERS.get(module)
    owner = None if ref is None else ref()
    return owner if owner is not None and owner._attached else None


def _carried_masks(
    layers: Mapping[str, nn.Module], counts: Mapping[str, int], updater: TopologyUpdater
) -> dict[str, Tensor]:
    """Boolean masks the layers already carry (a deep copy, or after ``remove()``), checked.

    A carried mask must be 0/1, shaped like its weight, and keep as many weights as the density
    asks for (or, while gradually pruning, between the final and the initial count).
    """
    carried: dict[str, Tensor] = {}
    for name, module in layers.items():
        if MASK not in module._buffers:
            continue
        weight = module.weight
        mask = check_mask(f"{MASK} of layer {name!r}", module._buffers[MASK], weight.shape)
        active = mask != 0
        count = int(active.count_nonzero())
        final = counts[name]
        low, high = sorted((final, updater.target_count(final, weight.numel(), 0)))
        if not low <= count <= high:
            wanted = str(final) if low == high else f"{low} to {high}"
            raise ValueError(
                f"layer {name!r} carries a mask with {count} active weights, but the density and "
                f"distribution given to sparsify() asks for {wanted}; pass the settings the mask "
                "was made with."
            )
        carried[name] = active
    return carried


def _check_loaded_mask(
    module: nn.Module, state_dict: Mapping[str, Any], prefix: str, *_: Any
) -> None:
    """Load pre-hook of a sparse layer: the incoming mask must be 0/1 and shaped like the weight.

    A module-level function, so it follows the module through ``copy.deepcopy`` and pickling.
    """
    key = prefix + MASK
    if key in state_dict:
        layer = prefix[:-1]
        check_mask(f"{MASK} of layer {layer!r}", state_dict[key], module.weight.shape)


def _is_mask_guard(hook: object) -> bool:
    # torch wraps module hooks in _WrappedHook, which keeps the function as ``.hook``.
    return getattr(hook, "hook", hook) is _check_loaded_mask


def guard_mask_loads(module: nn.Module) -> None:
    """Check masks loaded into ``module`` by ``load_state_dict`` (once per module)."""
    if not any(_is_mask_guard(h) for h in module._load_state_dict_pre_hooks.values()):
        module.register_load_state_dict_pre_hook(_check_loaded_mask)


def unguard_mask_loads(module: nn.Module) -> None:
    """Remove the check of :func:`guard_mask_loads` (a densified module has no mask to load)."""
    hooks = module._load_state_dict_pre_hooks
    for key in [k for k, h in hooks.items() if _is_mask_guard(h)]:
        del hooks[key]


def _same_updater(saved: Mapping[str, Any], updater: TopologyUpdater) -> bool:
    """Whether ``saved`` (a ``config()``) describes ``updater``; a setting added since the save
    counts as its default value."""
    defaults = {f.name: f.default for f in dataclasses.fields(updater)}
    return {**defaults, **saved} == updater.config()


@torch.no_grad()
def _mask_gradient_(grad: Tensor, mask: Tensor) -> None:
    """Keep ``grad`` where active, exactly 0 elsewhere, in place; inf/NaN at inactive entries too.

    On CPU an in-place multiply plus a finite check of the sum is several times cheaper than
    ``where`` (boolean kernels are slow there); only a non-finite sum (some entry inf/NaN) needs
    the select. On other devices ``where`` is cheap and avoids a host sync.
    """
    if grad.device.type == "cpu":
        grad.mul_(mask)
        if _all_finite(grad):
            return
    grad.copy_(torch.where(mask != 0, grad, 0.0))


def _all_finite(t: Tensor) -> bool:
    """No inf or NaN in ``t``: any of them makes the sum non-finite (one reduction, no copy).

    Accumulated in float32 at least, so a half-precision sum does not overflow; a float32 sum
    overflows only past 3e38, where skipping a topology update is the right call anyway.
    """
    acc = torch.float64 if t.dtype == torch.float64 else torch.float32
    return math.isfinite(t.sum(dtype=acc).item())


def _check_optimizer(optimizer: object, nullable: bool = True) -> None:
    """A torch optimizer (or None where ``nullable``), and not a wrapper: hooks on a wrapper
    such as accelerate's ``AcceleratedOptimizer`` never run, its inner optimizer's do."""
    if optimizer is None and nullable:
        return
    if not isinstance(optimizer, torch.optim.Optimizer):
        allowed = "a torch.optim.Optimizer" + (" or None" if nullable else "")
        raise TypeError(f"optimizer must be {allowed}, got {type(optimizer).__name__}.")
    inner = getattr(optimizer, "optimizer", None)
    if isinstance(inner, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer is a {type(optimizer).__name__} wrapping a {type(inner).__name__}; pass "
            "the inner optimizer (its .optimizer): the wrapper's step hooks never run."
        )


def _tied_weights(model: nn.Module, chosen: Mapping[str, nn.Module]) -> dict[str, list[str]]:
    """Chosen layers whose weight is also a parameter of another module (tied embeddings:
    ``lm_head.weight is embed_tokens.weight``), with the other owners."""
    owners: dict[int, list[str]] = {}
    for name, module in model.named_modules():
        for pname, param in module._parameters.items():
            if param is not None:
                owners.setdefault(id(param), []).append(f"{name}.{pname}" if name else pname)
    tied = {}
    for name, module in chosen.items():
        own = f"{name}.weight" if name else "weight"
        others = [o for o in owners.get(id(module.weight), []) if o != own]
        if others:
            tied[name] = others
    return tied


def _resolve_updater(updater: TopologyUpdater | str) -> TopologyUpdater:
    if isinstance(updater, TopologyUpdater):
        return updater
    if isinstance(updater, str):
        return make_updater(updater)
    raise TypeError(
        f"updater must be a TopologyUpdater (e.g. sn.RigL(...)) or one of {sorted(UPDATERS)}, "
        f"got {type(updater).__name__}."
    )


def sparsify(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    density: float | Mapping[str, float],
    distribution: str | None = None,
    updater: TopologyUpdater | str = "static",
    *,
    layers: Selector | None = None,
    exclude: Selector | None = None,
    init: MaskInit = "random",
    grow_init: float = 0.0,
    seed: int = 0,
) -> Sparsity:
    """Make ``model`` sparse in place and return the :class:`Sparsity` that keeps it so.

    :param model: any module; its Linear / Conv1d / Conv2d weights can be masked.
    :param optimizer: the optimizer that trains ``model``; its steps drive re-masking and topology
        updates. ``None`` means the caller invokes :meth:`Sparsity.step` after each update.
    :param density: global fraction of active weights in (0, 1], or ``{layer name: density}``.
    :param distribution: "uniform" (default) or "erk"; not allowed with a per-layer mapping.
    :param updater: a :class:`TopologyUpdater` or its name ("static", "set", "rigl", ...).
    :param layers: which layers are sparse (glob, type, predicate or a list); default all.
    :param exclude: layers to keep dense, e.g. ``exclude=sn.last_layer(model)``.
    :param init: first mask: "random", "magnitude" (of the current weights), ``SNIP(loss_fn)``,
        a score function ``(name, module) -> scores`` shaped like the weight (each layer keeps its
        highest), or the masks themselves, ``{layer name: bool or 0/1 tensor}`` (a pruned model's,
        e.g. from Wanda): then those layers are the sparse ones unless ``layers`` says otherwise,
        and each keeps its mask's count for good; the counts may differ from the density's by at
        most one weight per output row (pruning rounds each row).
        A layer that already carries a ``weight_mask`` (a ``copy.deepcopy`` of a sparse model, or
        a model whose Sparsity was removed) keeps it instead; it must be 0/1 and match the density.
        A layer whose weight is tied to another module's (``lm_head`` and the input embedding)
        is refused: masking it would mask the other too.
    :param grow_init: value of newly grown weights (a finite number).
    :param seed: seeds every random choice (initial mask, random growth).
    """
    _check_optimizer(optimizer)
    init = check_init(init)
    updater = _resolve_updater(updater)
    given_masks = is_mask_mapping(init)
    chosen = select_layers(model, layers, exclude)
    if given_masks and layers is None:  # the masks say which layers are sparse
        chosen = {n: m for n, m in chosen.items() if n in init}
    tied = _tied_weights(model, chosen)
    if tied:
        name, others = next(iter(tied.items()))
        raise ValueError(
            f"layer {name!r} shares its weight with {others} (tied weights, e.g. an LM head tied "
            f"to the input embedding): masking it would mask those too. Keep it dense: "
            f"exclude={name!r}."
        )
    already = [n for n, m in chosen.items() if _owner(m) is not None]
    if already:
        raise ValueError(
            f"layers {already} are already sparse, kept so by a live Sparsity; sparsify each "
            "model once, or call .remove() on that Sparsity first. (A copy.deepcopy of the model "
            "can be sparsified: it keeps the masks it carries.)"
        )
    if optimizer is not None:
        held = held_parameters(optimizer)
        absent = [n for n, m in chosen.items() if id(m.weight) not in held]
        if absent:
            raise ValueError(
                f"optimizer does not hold the weights of layers {absent}; pass the optimizer "
                "that trains this model (or narrow `layers`)."
            )
    counts = layer_counts(
        {n: tuple(m.weight.shape) for n, m in chosen.items()}, density, distribution
    )
    if given_masks:
        masks = check_init_masks(init, chosen, counts, per_layer=isinstance(density, Mapping))
        counts = {n: int(m.count_nonzero()) for n, m in masks.items()}
        moving = [n for n, c in counts.items() if updater.target_count(c, masks[n].numel(), 0) != c]
        if moving:
            raise ValueError(
                f"init masks fix each layer's active count, but updater {updater.name!r} starts "
                f"layers {moving[:3]} at another count; use an updater that keeps counts "
                "(static, set, rigl, sensitivity, seft)."
            )
        init = masks
    return Sparsity(model, optimizer, chosen, counts, updater, init, grow_init, seed)
