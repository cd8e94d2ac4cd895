"""SB3-compatible agents built on the sparse core.

``SAC(SparseSACPolicy, env, policy_kwargs=dict(density=0.1, distribution="erk"))`` trains a sparse
SAC with stock SB3; ``SparseSAC("SparseMlpPolicy", env)`` also logs sparsity statistics.
``PrefSAC(..., preference=r2n())`` learns its reward from preferences (R2N; ``pebble()`` dense).
"""

from .anf import ANF_ALGOS, anf_kwargs, anf_policy_kwargs
from .augmentations import (
    AUGMENTATIONS,
    DirectoryImages,
    ProceduralImages,
    overlay,
    random_conv,
    random_shift,
    strong_augment,
)
from .encoders import ENCODERS, PixelEncoder
from .frame_buffer import FrameReplayBuffer
from .masker import Masker, mask_quality
from .pbrl import ENTROPY_SPACES, PbRLConfig, PrefSAC, pebble, r2n, r2n_reward_sparsity
from .policy_sparsity import KEYS, SPARSE_LAYERS, NetworkSparsity, default_updater
from .preference_buffer import PreferenceReplayBuffer
from .preference_store import LabelBatch, LabelStore, LabelStoreError, PreferenceLabel
from .queries import QUERY_METHODS, FeedbackSchedule
from .reward_model import RewardEnsemble, RewardModel
from .sparse_policies import (
    SparseActorCriticPolicy,
    SparsePolicyMixin,
    SparseSACPolicy,
    SparseTD3Policy,
)
from .sparse_sb3_classes import SparseA2C, SparseDDPG, SparsePPO, SparseSAC, SparseTD3
from .sparsity_logger import SparsityLogger
from .state_entropy import StateEntropyReward
from .teacher import SimulatedTeacher
from .visual_eval import DEFAULT_MODES, DistractionEval, evaluate_mode, evaluate_modes
from .visual_policy import VisualSACPolicy
from .visual_sac import VisualSAC

__all__ = [
    "ANF_ALGOS",
    "AUGMENTATIONS",
    "DEFAULT_MODES",
    "ENCODERS",
    "ENTROPY_SPACES",
    "KEYS",
    "QUERY_METHODS",
    "SPARSE_LAYERS",
    "DirectoryImages",
    "DistractionEval",
    "FeedbackSchedule",
    "FrameReplayBuffer",
    "LabelBatch",
    "LabelStore",
    "LabelStoreError",
    "Masker",
    "NetworkSparsity",
    "PbRLConfig",
    "PixelEncoder",
    "PrefSAC",
    "PreferenceLabel",
    "PreferenceReplayBuffer",
    "ProceduralImages",
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
    "VisualSAC",
    "VisualSACPolicy",
    "anf_kwargs",
    "anf_policy_kwargs",
    "default_updater",
    "evaluate_mode",
    "evaluate_modes",
    "mask_quality",
    "overlay",
    "pebble",
    "r2n",
    "r2n_reward_sparsity",
    "random_conv",
    "random_shift",
    "strong_augment",
]
