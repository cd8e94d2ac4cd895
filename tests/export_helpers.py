"""Shared by the export parity tests: valid random observations and SB3's closed-loop return."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def random_observations(space: spaces.Space, n: int, seed: int = 0) -> Any:
    """``n`` valid observations: uniform uint8 pixels, or normal values (std 2) clipped into the
    bounds; for ``Dict`` spaces a dict of such batches, one per key."""
    rng = np.random.default_rng(seed)
    if isinstance(space, spaces.Dict):
        items = enumerate(space.items())
        return {key: random_observations(sub, n, seed + i) for i, (key, sub) in items}
    if space.dtype == np.uint8:
        return rng.integers(0, 256, (n, *space.shape), dtype=np.uint8)
    obs = rng.standard_normal((n, *space.shape)) * 2
    return np.clip(obs, space.low, space.high).astype(np.float32)


def sb3_return(model: Any, env: gym.Env, seed: int) -> float:
    """The return of one episode of ``model.predict(obs, deterministic=True)`` from ``seed``."""
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total
