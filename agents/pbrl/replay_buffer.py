"""SB3's replay buffer with two reward columns: the env's true reward and the learned one.

SAC trains on ``rewards`` (the reward model's), the teacher judges segments by ``true_rewards``
(from the env, never seen by the agent). During unsupervised pre-training an intrinsic reward
replaces the stored one at sampling time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (N, obs), (N, act) -> (N,)
IntrinsicFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # batch, reference -> (B,)


class PreferenceReplayBuffer(ReplayBuffer):
    """A ``ReplayBuffer`` whose rewards come from a learned reward function.

    ``reward_fn`` (set once a reward model exists) labels each new transition; ``relabel``
    recomputes the whole buffer after every reward-model update (PEBBLE). Both callables are
    runtime links to the agent and are not pickled with the buffer.
    """

    #: Random stored states the intrinsic reward of a batch is measured against.
    intrinsic_reference: int = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.true_rewards = np.zeros_like(self.rewards)
        self.reward_fn: RewardFn | None = None
        self.intrinsic: IntrinsicFn | None = None

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        self.true_rewards[self.pos] = np.asarray(reward)
        learned = np.zeros_like(np.asarray(reward, dtype=np.float32))
        if self.reward_fn is not None:
            flat_obs = np.asarray(obs).reshape(self.n_envs, -1)
            flat_act = np.asarray(action).reshape(self.n_envs, -1)
            learned = self.reward_fn(flat_obs, flat_act).reshape(np.shape(learned))
        super().add(obs, next_obs, action, learned, done, infos)

    def stored(self) -> int:
        """Rows filled so far."""
        return self.buffer_size if self.full else self.pos

    def relabel(self, reward_fn: RewardFn) -> None:
        """Recompute ``rewards`` of every stored transition (in chunks inside ``reward_fn``)."""
        n = self.stored()
        if n == 0:
            return
        obs = self.observations[:n].reshape(n * self.n_envs, -1)
        act = self.actions[:n].reshape(n * self.n_envs, -1)
        self.rewards[:n] = reward_fn(obs, act).reshape(n, self.n_envs)

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> ReplayBufferSamples:
        data = super()._get_samples(batch_inds, env)
        if self.intrinsic is None:
            return data
        n = self.stored()
        rows = np.random.randint(0, n, size=min(n, self.intrinsic_reference))
        envs = np.random.randint(0, self.n_envs, size=len(rows))
        reference = self.to_torch(self.observations[rows, envs].reshape(len(rows), -1))
        batch = data.next_observations.reshape(len(batch_inds), -1)
        reward = self.intrinsic(batch, reference).reshape(-1, 1)
        return data._replace(rewards=reward.to(data.rewards.dtype))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["reward_fn"] = state["intrinsic"] = None  # links to the live agent, not data
        return state
