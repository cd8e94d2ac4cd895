"""Preference-based RL: PrefSAC (PEBBLE / R2N), its reward models, labels, queries and teacher."""

# Models saved before this package existed name these classes sparse_rl.agents.pbrl.<class>.
from sparse_rl.agents.pbrl.agent import PbRLConfig, PrefSAC, pebble, r2n

__all__ = ["PbRLConfig", "PrefSAC", "pebble", "r2n"]
