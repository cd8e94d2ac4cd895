"""Suite-wide settings: one CPU thread per process and a quick hypothesis profile."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

settings.register_profile(
    "sparse-rl",
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# A deeper search on demand: HYPOTHESIS_PROFILE=thorough python -m pytest tests
settings.register_profile("thorough", parent=settings.get_profile("sparse-rl"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sparse-rl"))


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Every test starts from the same global torch seed, so model inits are reproducible."""
    torch.manual_seed(0)
