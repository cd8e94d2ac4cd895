"""How one network of an SB3 policy is made sparse: the keys users put in ``policy_kwargs``."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_choice

#: Which layers of a network are sparse: every Linear layer, or only those reading the observation.
SPARSE_LAYERS = ("all", "input")
#: Mask inits that need nothing but the weights (SNIP needs a loss, which a policy lacks).
POLICY_MASK_INITS = ("random", "magnitude")


def default_updater() -> sn.TopologyUpdater:
    """RigL every 1000 optimizer steps, 30% of each layer's active weights, never stopping.

    RL sparse-training studies use ΔT = 1000 and drop 0.3-0.5 (RigL, RLx2); the policy cannot
    know the training budget, so nothing decays by default: pass an ``end_step`` to stop updates.
    """
    return sn.RigL(interval=1000, drop_fraction=0.3)


@dataclass(frozen=True)
class NetworkSparsity:
    """Sparse settings of one network (actor, or critic / value).

    :param density: fraction of active weights over the chosen layers; 1.0 keeps the network dense.
    :param distribution: how density spreads over layers: "erk" or "uniform".
    :param updater: a ``sn.TopologyUpdater`` or its name; intervals count this network's
        optimizer steps (for TD3's actor that is every ``policy_delay``-th gradient step).
    :param sparse_layers: "all" Linear layers, or only the "input" layer(s) (ANF).
    :param mask_init: "random" or "magnitude" first mask.
    :param rescale_init: scale each output row so its norm equals the dense row's; without it a
        90%-sparse layer starts with ~1/3 of the dense activation scale (and SB3's orthogonal
        gains no longer hold).
    """

    density: float = 0.1
    distribution: str = "erk"
    updater: sn.TopologyUpdater | str = field(default_factory=default_updater)
    sparse_layers: str = "all"
    mask_init: str = "random"
    rescale_init: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.density, bool) or not isinstance(self.density, (int, float)):
            raise TypeError(f"density must be a number in (0, 1], got {self.density!r}.")
        if not 0.0 < float(self.density) <= 1.0:
            raise ValueError(f"density must be in (0, 1] (1.0 = dense), got {self.density!r}.")
        # Names are the core's, in any case ("ERK", "RigL"), as sn.sparsify takes them.
        for name, choices in (
            ("distribution", sn.DISTRIBUTIONS),
            ("sparse_layers", SPARSE_LAYERS),
            ("mask_init", POLICY_MASK_INITS),
        ):
            value = check_choice(name, getattr(self, name), choices, ignore_case=True)
            object.__setattr__(self, name, value)
        if isinstance(self.updater, str):
            name = check_choice("updater", self.updater, tuple(sn.UPDATERS), ignore_case=True)
            object.__setattr__(self, "updater", sn.make_updater(name))
        elif not isinstance(self.updater, sn.TopologyUpdater):
            raise TypeError(
                f"updater must be a sn.TopologyUpdater (e.g. sn.SET(interval=1000)) or one of "
                f"{sorted(sn.UPDATERS)}, got {type(self.updater).__name__}."
            )
        if not isinstance(self.rescale_init, bool):
            raise TypeError(f"rescale_init must be a bool, got {self.rescale_init!r}.")

    @property
    def dense(self) -> bool:
        return float(self.density) == 1.0

    def with_overrides(self, network: str, overrides: Mapping[str, Any] | None) -> NetworkSparsity:
        """These settings with ``{network}_sparsity`` overrides applied (unknown keys raise)."""
        if overrides is None:
            return self
        if isinstance(overrides, NetworkSparsity):
            return overrides
        if not isinstance(overrides, Mapping):
            raise TypeError(
                f"{network}_sparsity must be a dict of {sorted(KEYS)} or a NetworkSparsity, "
                f"got {type(overrides).__name__}."
            )
        unknown = sorted(set(overrides) - set(KEYS))
        if unknown:
            hints = {k: difflib.get_close_matches(k, KEYS, n=1) for k in unknown}
            said = ", ".join(
                f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items()
            )
            raise ValueError(
                f"{network}_sparsity has unknown keys {said}; valid keys: {sorted(KEYS)}."
            )
        return replace(self, **overrides)


KEYS = tuple(f.name for f in fields(NetworkSparsity))
