"""Fixed preference datasets for offline reward-learning benchmarks: no SAC, minutes on 2 cores.

Episodes are collected once per task with exploratory policies (per-episode action bias, scale
and smoothness) through the package's own noisy-feature env at the highest noise fraction
(0.99). A lower fraction ``f`` keeps the real features and the first ``round(d / (1 - f)) - d``
noise features: the noise features are i.i.d., so this is exactly the observation the env gives
at ``f``. Segment pairs are drawn uniformly from the training episodes and labelled by the
rational teacher (the segment with the larger true return; equal returns 0.5); the held-out pairs
come from other episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_NOISE = 0.99


@dataclass(frozen=True)
class Episodes:
    """``obs`` (E, T, D) at noise 0.99, ``act`` (E, T, A), ``rew`` (E, T) true rewards."""

    task: str
    obs: np.ndarray
    act: np.ndarray
    rew: np.ndarray
    real: np.ndarray  # indices of the real features in ``obs``

    def at_noise(self, fraction: float) -> np.ndarray:
        """Observation columns of the env at ``fraction`` (real features first, then noise)."""
        from sparse_rl.envs import noisy_observation_size

        d = len(self.real)
        width = noisy_observation_size(d, fraction) if fraction else d
        noise = np.setdiff1d(np.arange(self.obs.shape[-1]), self.real)[: width - d]
        return np.concatenate([self.real, noise])


@dataclass(frozen=True)
class Pairs:
    """Segment pairs: ``first``/``second`` (N, 2) rows of (episode, start); oracle labels (N,)."""

    first: np.ndarray
    second: np.ndarray
    labels: np.ndarray


def _make_env(task: str) -> Any:
    from sparse_rl import envs

    return envs.make_env(task, noise_fraction=MAX_NOISE)  # DMC tasks default to their state


def collect(task: str, episodes: int, length: int, seed: int = 0) -> Episodes:
    """``episodes`` episodes of ``length`` steps of exploratory behaviour on ``task``."""
    env = _make_env(task)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    obs_rows, act_rows, rew_rows = [], [], []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed * 100_003 + e)
        bias = rng.uniform(-0.6, 0.6, size=low.shape)
        scale = rng.uniform(0.2, 1.0)
        smooth = rng.uniform(0.0, 0.95)  # 0: white noise; near 1: slow, persistent pushes
        noise = np.zeros_like(low)
        o, a, r = [], [], []
        for _ in range(length):
            noise = smooth * noise + np.sqrt(1 - smooth**2) * rng.normal(size=low.shape)
            action = np.clip(bias + scale * noise, -1, 1)
            action = (low + (action + 1) * (high - low) / 2).astype(env.action_space.dtype)
            o.append(obs)
            a.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            r.append(reward)
            if terminated or truncated:
                obs, _ = env.reset()
        obs_rows.append(np.stack(o))
        act_rows.append(np.stack(a))
        rew_rows.append(np.asarray(r, dtype=np.float64))
    real = np.asarray(env.get_wrapper_attr("real_indices"))
    env.close()
    return Episodes(
        task,
        np.stack(obs_rows).astype(np.float32),
        np.stack(act_rows).astype(np.float32),
        np.stack(rew_rows),
        real,
    )


def sample_pairs(
    data: Episodes, episodes: np.ndarray, n: int, segment: int, rng: np.random.Generator
) -> Pairs:
    """``n`` uniform segment pairs from ``episodes``, labelled by the rational teacher."""
    t = data.obs.shape[1]
    rows = [
        np.stack([rng.choice(episodes, n), rng.integers(0, t - segment + 1, n)], 1)
        for _ in range(2)
    ]
    returns = [segment_returns(data, r, segment) for r in rows]
    labels = np.where(returns[1] > returns[0], 1.0, np.where(returns[1] < returns[0], 0.0, 0.5))
    return Pairs(rows[0], rows[1], labels.astype(np.float32))


def segment_returns(data: Episodes, rows: np.ndarray, segment: int) -> np.ndarray:
    steps = rows[:, 1:2] + np.arange(segment)
    return data.rew[rows[:, :1], steps].sum(1)


def gather(
    data: Episodes, rows: np.ndarray, segment: int, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(N, segment, features) observations and (N, segment, A) actions of segment ``rows``."""
    steps = rows[:, 1:2] + np.arange(segment)
    obs = data.obs[rows[:, :1], steps][..., columns]
    return np.ascontiguousarray(obs), data.act[rows[:, :1], steps]
