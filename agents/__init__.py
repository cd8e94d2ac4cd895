"""SB3-compatible agents built on the sparse core.

``SAC(SparseSACPolicy, env, policy_kwargs=dict(density=0.1, distribution="erk"))`` trains a sparse
SAC with stock SB3; ``SparseSAC("SparseMlpPolicy", env)`` also logs sparsity statistics.
``PrefSAC(..., preference=r2n())`` learns its reward from preferences (R2N; ``pebble()`` dense).
"""

import importlib as _importlib
import sys as _sys

from sparse_rl.agents.pbrl.agent import (
    ENTROPY_SPACES,
    PbRLConfig,
    PrefSAC,
    pebble,
    r2n,
    r2n_reward_sparsity,
)
from sparse_rl.agents.pbrl.label_store import LabelStore
from sparse_rl.agents.pbrl.labels import LabelBatch, LabelStoreError, PreferenceLabel
from sparse_rl.agents.pbrl.queries import QUERY_METHODS, FeedbackSchedule
from sparse_rl.agents.pbrl.replay_buffer import PreferenceReplayBuffer
from sparse_rl.agents.pbrl.reward_model import (
    R2N_PUBLISHED,
    RewardEnsemble,
    RewardModel,
    reward_sparsity,
)
from sparse_rl.agents.pbrl.state_entropy import StateEntropyReward
from sparse_rl.agents.pbrl.teacher import SimulatedTeacher
from sparse_rl.agents.sparse.anf import ANF_ALGOS, anf_kwargs, anf_policy_kwargs
from sparse_rl.agents.sparse.classes import (
    SparseA2C,
    SparseDDPG,
    SparseDQN,
    SparsePPO,
    SparseSAC,
    SparseTD3,
)
from sparse_rl.agents.sparse.logger import SparsityLogger
from sparse_rl.agents.sparse.policies import (
    SparseActorCriticCnnPolicy,
    SparseActorCriticMultiInputPolicy,
    SparseActorCriticPolicy,
    SparseDQNCnnPolicy,
    SparseDQNMultiInputPolicy,
    SparseDQNPolicy,
    SparsePolicyMixin,
    SparseSACCnnPolicy,
    SparseSACMultiInputPolicy,
    SparseSACPolicy,
    SparseTD3CnnPolicy,
    SparseTD3MultiInputPolicy,
    SparseTD3Policy,
)
from sparse_rl.agents.sparse.settings import POLICY_KEYS, default_updater, policy_defaults
from sparse_rl.agents.visual.agent import VisualSAC
from sparse_rl.agents.visual.augmentations import (
    AUGMENTATIONS,
    DirectoryImages,
    ProceduralImages,
    overlay,
    random_conv,
    random_shift,
    strong_augment,
)
from sparse_rl.agents.visual.encoders import ENCODERS, PixelEncoder
from sparse_rl.agents.visual.evaluation import (
    DEFAULT_MODES,
    DistractionEval,
    evaluate_mode,
    evaluate_modes,
)
from sparse_rl.agents.visual.frame_buffer import FrameReplayBuffer
from sparse_rl.agents.visual.masker import Masker, mask_quality
from sparse_rl.agents.visual.policy import VisualSACPolicy

# Models saved before the agents were grouped into sparse/, pbrl/ and visual/ name their classes
# by the old module paths (SB3 pickles them): those paths stay importable, as aliases.
_MOVED = {
    "anf": "sparse.anf",
    "sparse_policies": "sparse.policies",
    "sparse_config": "sparse.settings",
    "sparse_algorithms": "sparse.classes",
    "sparsity_logger": "sparse.logger",
    "pbrl": "pbrl.agent",
    "reward_model": "pbrl.reward_model",
    "preference_store": "pbrl.label_store",
    "preference_buffer": "pbrl.replay_buffer",
    "queries": "pbrl.queries",
    "teacher": "pbrl.teacher",
    "state_entropy": "pbrl.state_entropy",
    "visual_sac": "visual.agent",
    "visual_policy": "visual.policy",
    "encoders": "visual.encoders",
    "masker": "visual.masker",
    "augmentations": "visual.augmentations",
    "frame_buffer": "visual.frame_buffer",
    "visual_eval": "visual.evaluation",
}
for _old, _new in _MOVED.items():
    if _old != "pbrl":  # sparse_rl.agents.pbrl is the package now; its classes are re-exported
        _module = _importlib.import_module(f"{__name__}.{_new}")
        _sys.modules.setdefault(f"{__name__}.{_old}", _module)

__all__ = [
    "ANF_ALGOS",
    "AUGMENTATIONS",
    "DEFAULT_MODES",
    "ENCODERS",
    "ENTROPY_SPACES",
    "POLICY_KEYS",
    "QUERY_METHODS",
    "R2N_PUBLISHED",
    "DirectoryImages",
    "DistractionEval",
    "FeedbackSchedule",
    "FrameReplayBuffer",
    "LabelBatch",
    "LabelStore",
    "LabelStoreError",
    "Masker",
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
    "SparseActorCriticCnnPolicy",
    "SparseActorCriticMultiInputPolicy",
    "SparseActorCriticPolicy",
    "SparseDDPG",
    "SparseDQN",
    "SparseDQNCnnPolicy",
    "SparseDQNMultiInputPolicy",
    "SparseDQNPolicy",
    "SparsePPO",
    "SparsePolicyMixin",
    "SparseSAC",
    "SparseSACCnnPolicy",
    "SparseSACMultiInputPolicy",
    "SparseSACPolicy",
    "SparseTD3",
    "SparseTD3CnnPolicy",
    "SparseTD3MultiInputPolicy",
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
    "policy_defaults",
    "r2n",
    "r2n_reward_sparsity",
    "random_conv",
    "random_shift",
    "reward_sparsity",
    "strong_augment",
]
