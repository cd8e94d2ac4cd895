"""Seeding one block of code without touching the caller's random stream."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, devices: Sequence[int] = ()) -> Iterator[None]:
    """Draws inside come from torch's global generator seeded with ``seed``; afterwards the
    global generator (and those of the CUDA ``devices``) is as before.

    ``nn.Module`` initialisers draw from the global generator only, so this is how a library
    seeds a model's initial weights without reseeding its user's stream.
    """
    with torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(seed)
        yield
