"""One value that says how a network is sparse: what ``sparsify`` takes, as a config can hold it.

SB3 policies, R2N's reward models, the visual agents, the YAML configs and the supervised modules
all describe sparsity with :class:`SparsitySettings`; each has its own defaults (an instance),
and a user's partial mapping is laid over them with :meth:`SparsitySettings.updated`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from sparse_rl.validation import (
    ConfigError,
    check_choice,
    check_finite,
    check_fraction,
    check_keys,
    check_number,
)

from .distributions import DISTRIBUTIONS
from .layers import SPARSIFIABLE, Selector, first_layer, select_layers
from .mask_init import MASK_INITS, SNIP, MaskInit, is_mask_mapping
from .sparsity import MASK, Sparsity, sparsify
from .updaters import UPDATERS, TopologyUpdater, make_updater

#: ``layers`` keywords: every sparsifiable layer, or only those reading the network's input
#: (the owner says which those are; a plain model's is its first layer).
LAYER_KEYWORDS = ("all", "input")


def updater_from(value: Any, name: str = "updater") -> TopologyUpdater:
    """A topology updater from an instance, its name, or its config form ``{name: rigl, ...}``."""
    if isinstance(value, TopologyUpdater):
        return value
    if isinstance(value, str):
        return make_updater(check_choice(name, value, tuple(UPDATERS), ignore_case=True))
    if not isinstance(value, Mapping) or "name" not in value:
        raise ConfigError(
            f"{name}: expected an updater name ({', '.join(UPDATERS)}), a mapping like "
            f"{{name: rigl, interval: 1000}} or a TopologyUpdater, got {value!r}."
        )
    kind = check_choice(f"{name}.name", value["name"], tuple(UPDATERS), ignore_case=True)
    settings = {k: v for k, v in value.items() if k != "name"}
    check_keys(settings, [f.name for f in fields(UPDATERS[kind])], f"{name}.")
    try:
        return make_updater(kind, **settings)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name}: {error}") from None


def updater_to_dict(updater: TopologyUpdater) -> dict[str, Any]:
    """The config form of an updater (``updater_from`` reads it back)."""
    return {"name": updater.name, **dataclasses.asdict(updater)}


@dataclass(frozen=True)
class SparsitySettings:
    """How one network is sparse, with :func:`sparsify`'s names.

    :param density: fraction of active weights over the chosen layers; 1.0 keeps it dense.
    :param fan_in: active inputs per unit of the input layer (needs ``layers="input"``): room
        for the few real features whatever the input width (R2N). Given with it, ``density``
        caps the layer's density, so a narrow input does not leave most connections on noise.
    :param distribution: how density spreads over several layers: "uniform" or "erk".
    :param layers: "all" sparsifiable layers, only the "input" layer(s) (ANF, R2N), or a core
        selector (glob, type, predicate, list).
    :param exclude: a selector of layers kept dense.
    :param updater: a ``TopologyUpdater``, its name, or ``{name: ..., <fields>}``.
    :param init: first mask: "random", "magnitude", ``SNIP(loss_fn)``, a score function
        ``(name, module) -> scores`` or the masks ``{layer name: mask}`` (see ``sparsify``).
    :param grow_init: value of newly grown weights.
    :param rescale_init: scale each sparse output row back to its dense norm: without it a
        90%-sparse layer starts at about a third of the dense activation scale.
    """

    density: float = 1.0
    fan_in: int | None = None
    distribution: str = "uniform"
    layers: Selector = "all"
    exclude: Selector | None = None
    updater: TopologyUpdater | str | Mapping[str, Any] = "static"
    init: MaskInit = "random"
    grow_init: float = 0.0
    rescale_init: bool = False

    def __post_init__(self) -> None:
        check_fraction("density", self.density)
        if self.fan_in is not None:
            check_number("fan_in", self.fan_in, low=0, low_open=True)
            if self.layers != "input":
                raise ConfigError(
                    f"fan_in applies to layers='input' only (layers={self.layers!r}); "
                    "give a density instead."
                )
        set_ = object.__setattr__
        set_(
            self,
            "distribution",
            check_choice("distribution", self.distribution, DISTRIBUTIONS, ignore_case=True),
        )
        if isinstance(self.layers, str) and self.layers.lower() in LAYER_KEYWORDS:
            set_(self, "layers", self.layers.lower())
        custom = isinstance(self.init, SNIP) or is_mask_mapping(self.init) or callable(self.init)
        if isinstance(self.init, str) or not custom:
            set_(self, "init", check_choice("init", self.init, MASK_INITS, ignore_case=True))
        set_(self, "updater", updater_from(self.updater))
        check_finite("grow_init", self.grow_init)
        if not isinstance(self.rescale_init, bool):
            raise ConfigError(f"rescale_init must be true or false, got {self.rescale_init!r}.")

    @property
    def dense(self) -> bool:
        """Nothing to sparsify."""
        return self.fan_in is None and float(self.density) == 1.0

    def updated(
        self, overrides: Mapping[str, Any] | None, name: str = "sparsity"
    ) -> SparsitySettings:
        """These settings with a user's ``overrides`` (a mapping or settings) laid over them.

        ``density`` and ``fan_in`` are two ways to say how many: the one given alone replaces
        the other (give both for a fan-in capped by a density). Unknown keys raise, naming
        ``name`` and the valid keys.
        """
        if overrides is None:
            return self
        if isinstance(overrides, SparsitySettings):
            return overrides
        if not isinstance(overrides, Mapping):
            raise ConfigError(
                f"{name}: expected a mapping of {', '.join(KEYS)} or SparsitySettings, "
                f"got {overrides!r}."
            )
        check_keys(overrides, KEYS, f"{name}.")
        changes = dict(overrides)
        if "updater" in changes:  # its errors name the full path of the bad key
            changes["updater"] = updater_from(changes["updater"], f"{name}.updater")
        if "density" in changes and "fan_in" not in changes:
            changes["fan_in"] = None
        if "fan_in" in changes and changes["fan_in"] is not None and "density" not in changes:
            changes["density"] = 1.0
        try:
            return replace(self, **changes)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{name}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (for a config or a log); selectors and SNIP as given."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["updater"] = updater_to_dict(self.updater)  # type: ignore[arg-type]
        return out

    def apply(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        *,
        seed: int,
        layers: Sequence[str] | None = None,
        input_layers: Sequence[str] | None = None,
    ) -> Sparsity | None:
        """Make ``model`` sparse as these settings say; None when they are dense.

        :param layers: the owner's candidate layers for ``layers="all"`` (a policy leaves out
            its feature extractor); default every sparsifiable layer.
        :param input_layers: the layers reading the network's input, for ``layers="input"``
            (a critic has one per Q-network); default the model's first layer.
        """
        if self.dense:
            return None
        if self.layers == "input":
            chosen: Any = list(input_layers) if input_layers else [first_layer(model)]
        elif self.layers == "all":
            chosen = None if layers is None else list(layers)
        else:
            chosen = self.layers
        density = self.density if self.fan_in is None else self._fan_in_density(model, chosen)
        single = isinstance(chosen, list) and len(chosen) == 1
        norms = {}
        if self.rescale_init:
            norms = {n: row_norms(m.weight) for n, m in _selected(model, chosen, self.exclude)}
        sparsity = sparsify(
            model,
            optimizer,
            density,
            None if single else self.distribution,
            self.updater,  # type: ignore[arg-type]
            layers=chosen,
            exclude=self.exclude,
            init=self.init,
            grow_init=self.grow_init,
            seed=seed,
        )
        for name, norm in norms.items():
            restore_row_norms_(model.get_submodule(name).weight, norm)
        return sparsity

    def _fan_in_density(self, model: nn.Module, chosen: list[str]) -> float:
        inputs = min(int(model.get_submodule(n).weight[0].numel()) for n in chosen)
        return min(float(self.density), float(self.fan_in) / inputs)  # type: ignore[arg-type]

    @torch.no_grad()
    def reset_(self, model: nn.Module) -> None:
        """Re-initialise ``model`` as at construction: default init, its masks kept, rows
        rescaled as ``rescale_init`` says (a plain ``reset_parameters`` would leave a
        90%-sparse layer at a third of its initial scale)."""
        for layer in model.modules():
            if not isinstance(layer, SPARSIFIABLE):
                continue
            layer.reset_parameters()
            mask = getattr(layer, MASK, None)
            if mask is None:
                continue
            dense = row_norms(layer.weight)
            layer.weight.mul_(mask)
            if self.rescale_init:
                restore_row_norms_(layer.weight, dense)


KEYS = tuple(f.name for f in fields(SparsitySettings))


def _selected(model: nn.Module, chosen: Any, exclude: Selector | None) -> list[tuple[str, Any]]:
    return list(select_layers(model, chosen, exclude).items())


def row_norms(weight: Tensor) -> Tensor:
    """Each output row's norm (a conv's filter counts as one row)."""
    return weight.detach().flatten(1).norm(dim=1)


@torch.no_grad()
def restore_row_norms_(weight: Tensor, dense: Tensor) -> None:
    """Scale each row back to the norm ``dense`` recorded (rows with no weights stay zero)."""
    rows = weight.flatten(1)
    sparse = rows.norm(dim=1)
    scale = torch.where(sparse > 0, dense / sparse.clamp_min(1e-12), torch.ones_like(sparse))
    rows.mul_(scale.unsqueeze(1))
