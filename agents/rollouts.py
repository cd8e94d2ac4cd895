"""Deterministic evaluation episodes: the one loop every evaluation in the package runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def rollout_returns(
    model: Any,
    env: Any,
    episodes: int,
    seed: int,
    observe: Callable[[int, Any, dict[str, Any]], None] | None = None,
) -> list[float]:
    """Undiscounted returns of ``episodes`` deterministic episodes, episode i reset with seed+i.

    :param observe: called with ``(episode, obs, info)`` before each action: what an evaluation
        scores beyond the return (MaDi's masks against the true agent pixels).
    """
    returns = []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            if observe is not None:
                observe(episode, obs, info)
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = bool(terminated or truncated)
        returns.append(total)
    return returns
