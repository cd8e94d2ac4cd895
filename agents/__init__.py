"""SB3-compatible agents built on the sparse core.

``SAC(SparseSACPolicy, env, policy_kwargs=dict(density=0.1, distribution="erk"))`` trains a sparse
SAC with stock SB3; ``SparseSAC("SparseMlpPolicy", env)`` also logs sparsity statistics.
"""

from .anf import ANF_ALGOS, anf_kwargs, anf_policy_kwargs
from .sparse_algorithms import SparseA2C, SparseDDPG, SparsePPO, SparseSAC, SparseTD3
from .sparse_config import KEYS, SPARSE_LAYERS, NetworkSparsity, default_updater
from .sparse_policies import (
    SparseActorCriticPolicy,
    SparsePolicyMixin,
    SparseSACPolicy,
    SparseTD3Policy,
)
from .sparsity_logger import SparsityLogger

__all__ = [
    "ANF_ALGOS",
    "KEYS",
    "SPARSE_LAYERS",
    "NetworkSparsity",
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
    "anf_kwargs",
    "anf_policy_kwargs",
    "default_updater",
]
