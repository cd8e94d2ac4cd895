"""SB3-compatible agents built on the sparse core.

``SAC(SparseSACPolicy, env, policy_kwargs=dict(density=0.1, distribution="erk"))`` trains a sparse
SAC with stock SB3; ``SparseSAC("SparseMlpPolicy", env)`` also logs sparsity statistics.
``PrefSAC(..., preference=r2n())`` learns its reward from preferences (R2N; ``pebble()`` dense).
"""

from .anf import ANF_ALGOS, anf_kwargs, anf_policy_kwargs
from .pbrl import ENTROPY_SPACES, PbRLConfig, PrefSAC, pebble, r2n, r2n_reward_sparsity
from .preference_buffer import PreferenceReplayBuffer
from .preference_store import LabelBatch, LabelStore, PreferenceLabel
from .queries import QUERY_METHODS, FeedbackSchedule
from .reward_model import RewardEnsemble, RewardModel
from .sparse_algorithms import SparseA2C, SparseDDPG, SparsePPO, SparseSAC, SparseTD3
from .sparse_config import KEYS, SPARSE_LAYERS, NetworkSparsity, default_updater
from .sparse_policies import (
    SparseActorCriticPolicy,
    SparsePolicyMixin,
    SparseSACPolicy,
    SparseTD3Policy,
)
from .sparsity_logger import SparsityLogger
from .state_entropy import StateEntropyReward
from .teacher import SimulatedTeacher

__all__ = [
    "ANF_ALGOS",
    "ENTROPY_SPACES",
    "KEYS",
    "QUERY_METHODS",
    "SPARSE_LAYERS",
    "FeedbackSchedule",
    "LabelBatch",
    "LabelStore",
    "NetworkSparsity",
    "PbRLConfig",
    "PrefSAC",
    "PreferenceLabel",
    "PreferenceReplayBuffer",
    "RewardEnsemble",
    "RewardModel",
    "SimulatedTeacher",
    "SparseA2C",
    "SparseActorCriticPolicy",
    "SparseDDPG",
    "SparsePPO",
    "SparsePolicyMixin",
    "SparseSAC",
    "SparseSACPolicy",
    "SparseTD3",
    "SparseTD3Policy",
    "SparsityLogger",
    "StateEntropyReward",
    "anf_kwargs",
    "anf_policy_kwargs",
    "default_updater",
    "pebble",
    "r2n",
    "r2n_reward_sparsity",
]
