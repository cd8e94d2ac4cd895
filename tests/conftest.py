"""Suite-wide settings: one CPU thread per process and a quick hypothesis profile."""

from __future__ import annotations

import os

# Before torch loads, so the processes tests start (killed runs, CLI runs, sweep workers) get one
# thread too: on a 2-core machine a second intra-op thread per process mostly spins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

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


def _share_the_onnx_registry() -> None:
    """The tests export dozens of policies, and torch's ONNX exporter rebuilds its operator
    registry from torchlib on every export (about 1 s of CPU each, most of an export's cost).
    With no custom translation table, which our exporter never passes, the registry is only read,
    so one per opset serves the whole session. Private torch API: where it is missing, exports
    simply run at their normal cost."""
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:
        return
    registry_class = getattr(_registration, "ONNXRegistry", None)
    build = getattr(registry_class, "from_torchlib", None)
    if build is None:
        return
    built: dict[tuple, object] = {}

    def from_torchlib(cls: type, *args: object, **kwargs: object) -> object:
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = build.__func__(cls, *args, **kwargs)
        return built[key]

    registry_class.from_torchlib = classmethod(from_torchlib)


_share_the_onnx_registry()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the forkserver the distributed tests start (tests/helpers.py) and wait for it, so it
    does not outlive the session and its CPU time counts in the session's own."""
    import multiprocessing.forkserver

    stop = getattr(multiprocessing.forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()
