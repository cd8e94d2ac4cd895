"""Thin SB3 subclasses: the ``"SparseMlpPolicy"`` aliases and sparsity logging by default.

``SAC(SparseSACPolicy, env)`` needs none of this; ``SparseSAC("SparseMlpPolicy", env)`` adds the
string aliases (also ``"SparseCnnPolicy"``, ``"SparseMultiInputPolicy"``) and a
:class:`SparsityLogger` to every ``learn`` call.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sparse_rl.agents.sparse import policies as sp
from sparse_rl.agents.sparse.logger import SparsityLogger
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, ConvertCallback
from stable_baselines3.common.policies import BasePolicy


def with_sparsity_logger(callback: Any) -> list[BaseCallback]:
    """``callback`` (None, a callback, a function or a list of those) plus a SparsityLogger."""
    given = [] if callback is None else list(callback) if isinstance(callback, list) else [callback]
    wrapped = [c if isinstance(c, BaseCallback) else ConvertCallback(c) for c in given]
    if not any(isinstance(c, SparsityLogger) for c in wrapped):
        wrapped.insert(0, SparsityLogger())
    return wrapped


def sparse_aliases(
    algo: type[BaseAlgorithm], mlp: type[BasePolicy], cnn: type[BasePolicy], multi: type[BasePolicy]
) -> dict[str, type[BasePolicy]]:
    """SB3's aliases of ``algo`` plus ``"SparseMlpPolicy"``, ``"SparseCnnPolicy"`` (NatureCNN,
    images) and ``"SparseMultiInputPolicy"`` (CombinedExtractor, dict observations)."""
    return {
        **algo.policy_aliases,
        "SparseMlpPolicy": mlp,
        "SparseCnnPolicy": cnn,
        "SparseMultiInputPolicy": multi,
    }


class _LogsSparsity:
    def learn(self, *args: Any, callback: Any = None, **kwargs: Any) -> Any:
        return super().learn(*args, callback=with_sparsity_logger(callback), **kwargs)  # type: ignore[misc]


_SAC = (sp.SparseSACPolicy, sp.SparseSACCnnPolicy, sp.SparseSACMultiInputPolicy)
_TD3 = (sp.SparseTD3Policy, sp.SparseTD3CnnPolicy, sp.SparseTD3MultiInputPolicy)
_AC = (
    sp.SparseActorCriticPolicy,
    sp.SparseActorCriticCnnPolicy,
    sp.SparseActorCriticMultiInputPolicy,
)
_DQN = (sp.SparseDQNPolicy, sp.SparseDQNCnnPolicy, sp.SparseDQNMultiInputPolicy)


class SparseSAC(_LogsSparsity, SAC):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = sparse_aliases(SAC, *_SAC)


class SparseTD3(_LogsSparsity, TD3):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = sparse_aliases(TD3, *_TD3)


class SparseDDPG(_LogsSparsity, DDPG):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = sparse_aliases(DDPG, *_TD3)


class SparsePPO(_LogsSparsity, PPO):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = sparse_aliases(PPO, *_AC)


class SparseA2C(_LogsSparsity, A2C):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = sparse_aliases(A2C, *_AC)


class SparseDQN(_LogsSparsity, DQN):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = sparse_aliases(DQN, *_DQN)
