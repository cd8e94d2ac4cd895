"""The sparse policies' defaults, and how their ``policy_kwargs`` become one settings per network.

The keys are the core's (:class:`sparse_rl.sparse_nets.SparsitySettings`); ``actor_sparsity`` /
``critic_sparsity`` override them for one network; ``features_extractor_sparsity`` makes SB3's
feature extractors sparse too (dense unless given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sparse_rl.sparse_nets.settings import KEYS

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

#: The networks of a policy that can be sparse, and their override keys.
NETWORKS = ("actor", "critic")
NETWORK_KEYS = tuple(f"{n}_sparsity" for n in NETWORKS)
#: Settings of SB3's feature extractors (CNN, CombinedExtractor), laid over the shared keys;
#: None (the default) keeps them dense.
FEATURES_KEY = "features_extractor_sparsity"
#: The entry of :func:`network_settings` that holds the feature extractors' settings.
FEATURES = "features"
#: Every sparse key a policy takes.
POLICY_KEYS = (*KEYS, *NETWORK_KEYS, FEATURES_KEY)
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


def network_settings(
    given: Mapping[str, Any], where: str = "", networks: Sequence[str] = NETWORKS
) -> dict[str, sn.SparsitySettings]:
    """``{network: settings}`` from a policy's sparse keys (shared, then per network).

    :param networks: the policy's networks (DQN has only "critic", its Q-network); an override
        for a network the policy lacks is an error, never ignored.
    :return: one entry per network, plus ``"features"`` when ``features_extractor_sparsity`` is
        given (the feature extractors' settings: the shared ones with it laid over them).
    """
    check_renamed(given, where)
    for key in (*NETWORK_KEYS, FEATURES_KEY):
        if isinstance(given.get(key), Mapping):
            check_renamed(given[key], f"{where}{key}.")
    for net in NETWORKS:
        if net not in networks and given.get(f"{net}_sparsity") is not None:
            instead = " or ".join(f"{n}_sparsity" for n in networks)
            raise ConfigError(
                f"{where}{net}_sparsity: this policy has no {net} network (its sparse networks: "
                f"{', '.join(networks)}); use {instead} or the shared keys instead."
            )
    shared = {k: v for k, v in given.items() if k in KEYS}
    base = policy_defaults().updated(shared, where.rstrip(".") or "policy_kwargs")
    settings = {
        net: base.updated(given.get(f"{net}_sparsity"), f"{where}{net}_sparsity")
        for net in networks
    }
    if given.get(FEATURES_KEY) is not None:
        settings[FEATURES] = base.updated(given[FEATURES_KEY], f"{where}{FEATURES_KEY}")
    return settings
