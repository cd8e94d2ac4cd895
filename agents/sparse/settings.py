"""The sparse policies' defaults, and how their ``policy_kwargs`` become one settings per network.

The keys are the core's (:class:`sparse_rl.sparse_nets.SparsitySettings`); ``actor_sparsity`` /
``critic_sparsity`` override them for one network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparse_rl.sparse_nets.settings import KEYS

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

#: The networks of a policy that can be sparse, and their override keys.
NETWORKS = ("actor", "critic")
NETWORK_KEYS = tuple(f"{n}_sparsity" for n in NETWORKS)
#: Every sparse key a policy takes.
POLICY_KEYS = (*KEYS, *NETWORK_KEYS)
#: Keys renamed to the core's names: the error says what to write instead.
RENAMED = {"sparse_layers": "layers", "mask_init": "init"}


def default_updater() -> sn.TopologyUpdater:
    """RigL every 1000 optimizer steps, 30% of each layer's active weights, never stopping.

    RL sparse-training studies use ΔT = 1000 and drop 0.3-0.5 (RigL, RLx2); the policy cannot
    know the training budget, so nothing decays by default: pass an ``end_step`` to stop updates.
    """
    return sn.RigL(interval=1000, drop_fraction=0.3)


def policy_defaults() -> sn.SparsitySettings:
    """A sparse policy's network unless told otherwise: 90% sparse, ERK, RigL, rows rescaled
    to their dense norms (SB3's orthogonal gains then still hold)."""
    return sn.SparsitySettings(
        density=0.1, distribution="erk", updater=default_updater(), rescale_init=True
    )


def check_renamed(given: Mapping[str, Any], where: str) -> None:
    """Old key names get an error that names the new one, never a silent default."""
    for old, new in RENAMED.items():
        if old in given:
            raise ConfigError(f"{where}{old} is now called {new!r} (the core's name); use {new}.")


def network_settings(given: Mapping[str, Any], where: str = "") -> dict[str, sn.SparsitySettings]:
    """``{network: settings}`` from a policy's sparse keys (shared, then per network)."""
    check_renamed(given, where)
    for net in NETWORK_KEYS:
        if isinstance(given.get(net), Mapping):
            check_renamed(given[net], f"{where}{net}.")
    shared = {k: v for k, v in given.items() if k in KEYS}
    base = policy_defaults().updated(shared, where.rstrip(".") or "policy_kwargs")
    return {
        net: base.updated(given.get(f"{net}_sparsity"), f"{where}{net}_sparsity")
        for net in NETWORKS
    }
