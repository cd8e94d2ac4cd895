"""Sparsity statistics in SB3's logger (stdout / CSV / TensorBoard), as an SB3 callback."""

from __future__ import annotations

import numpy as np
from sparse_rl.agents.sparse.policies import SparsePolicyMixin
from stable_baselines3.common.callbacks import BaseCallback

from sparse_rl.validation import check_int


class SparsityLogger(BaseCallback):
    """Records density, churn and ITOP per network under ``sparsity/``.

    When the env is the noisy-feature wrapper it also records ANF's diagnostic: the average number
    of active input connections per real feature vs per noise feature (``real_connections`` /
    ``noise_connections``), read from the wrapper's current ``real_indices``.

    :param every: record at most once per this many env steps (counting masks is not free).
    """

    def __init__(self, every: int = 1000, verbose: int = 0) -> None:
        super().__init__(verbose)
        check_int("every", every)
        self.every = every
        self._last = -every

    def _on_training_start(self) -> None:
        if not isinstance(self.model.policy, SparsePolicyMixin):
            raise TypeError(
                f"SparsityLogger needs a sparse policy (SparseSACPolicy, SparseTD3Policy, "
                f"SparseActorCriticPolicy, SparseDQNPolicy), "
                f"got {type(self.model.policy).__name__}."
            )
        self._record()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self._last >= self.every:
            self._record()

    def _real_indices(self) -> np.ndarray | None:
        env = self.training_env
        if env is None or not env.has_attr("real_indices"):
            return None  # not a noisy-feature env: nothing to tell real from noise
        return np.asarray(env.get_attr("real_indices", indices=[0])[0])

    def _record(self) -> None:
        self._last = self.num_timesteps
        policy = self.model.policy
        assert isinstance(policy, SparsePolicyMixin)
        for key, value in policy.sparsity_log_values(self._real_indices()).items():
            self.logger.record(f"sparsity/{key}", value)
