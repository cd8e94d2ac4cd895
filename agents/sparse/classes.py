"""Thin SB3 subclasses: the ``"SparseMlpPolicy"`` alias and sparsity logging by default.

``SAC(SparseSACPolicy, env)`` needs none of this; ``SparseSAC("SparseMlpPolicy", env)`` adds the
string alias and a :class:`SparsityLogger` to every ``learn`` call.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sparse_rl.agents.sparse.logger import SparsityLogger
from sparse_rl.agents.sparse.policies import (
    SparseActorCriticPolicy,
    SparseSACPolicy,
    SparseTD3Policy,
)
from stable_baselines3 import A2C, DDPG, PPO, SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback, ConvertCallback
from stable_baselines3.common.policies import BasePolicy


def with_sparsity_logger(callback: Any) -> list[BaseCallback]:
    """``callback`` (None, a callback, a function or a list of those) plus a SparsityLogger."""
    given = [] if callback is None else list(callback) if isinstance(callback, list) else [callback]
    wrapped = [c if isinstance(c, BaseCallback) else ConvertCallback(c) for c in given]
    if not any(isinstance(c, SparsityLogger) for c in wrapped):
        wrapped.insert(0, SparsityLogger())
    return wrapped


class _LogsSparsity:
    def learn(self, *args: Any, callback: Any = None, **kwargs: Any) -> Any:
        return super().learn(*args, callback=with_sparsity_logger(callback), **kwargs)  # type: ignore[misc]


class SparseSAC(_LogsSparsity, SAC):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **SAC.policy_aliases,
        "SparseMlpPolicy": SparseSACPolicy,
    }


class SparseTD3(_LogsSparsity, TD3):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **TD3.policy_aliases,
        "SparseMlpPolicy": SparseTD3Policy,
    }


class SparseDDPG(_LogsSparsity, DDPG):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **DDPG.policy_aliases,
        "SparseMlpPolicy": SparseTD3Policy,
    }


class SparsePPO(_LogsSparsity, PPO):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **PPO.policy_aliases,
        "SparseMlpPolicy": SparseActorCriticPolicy,
    }


class SparseA2C(_LogsSparsity, A2C):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **A2C.policy_aliases,
        "SparseMlpPolicy": SparseActorCriticPolicy,
    }
