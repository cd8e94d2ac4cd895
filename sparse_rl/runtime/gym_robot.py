"""A gymnasium env as a ``RobotInterface``: rehearse the robot loop in simulation.

The env is duck-typed (``reset(seed=...)``, ``step(action)``), so this module imports gymnasium
only in ``GymRobot.from_id``; a robot computer without gymnasium can still import the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class GymRobot:
    """Drive a gymnasium-API env through ``RobotInterface`` and keep its episode returns.

    :param env: any env with gymnasium's ``reset(seed=...)`` and 5-tuple ``step``.
    :param seed: the first ``reset`` uses it, later ones continue the env's RNG (gymnasium's
        convention), so a run from a fixed seed is reproducible.
    :param frame_stack: for pixel envs that stack ``k`` frames themselves (``(C*k, H, W)``):
        ``read_observation`` returns only the newest frame, since the runtime keeps the stack.

    Dict observations are passed on as a dict of arrays; actions go to ``env.step`` as the
    policy gives them (an ``int64`` scalar for ``Discrete``, an integer array for
    ``MultiDiscrete`` / ``MultiBinary``, float32 for ``Box``).
    """

    def __init__(self, env: Any, seed: int | None = None, frame_stack: int | None = None) -> None:
        if frame_stack is not None and frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1 or None, got {frame_stack}")
        self.env = env
        self.seed = seed
        self.frame_stack = frame_stack
        self.episode_returns: list[float] = []
        self.safe_stops = 0
        self._seeded = False
        self._obs: np.ndarray | dict[str, np.ndarray] | None = None
        self._return = 0.0
        self._done = True
        self._stopped = False

    @classmethod
    def from_id(
        cls,
        env_id: str,
        seed: int | None = None,
        frame_stack: int | None = None,
        **make_kwargs: Any,
    ) -> GymRobot:
        """``gymnasium.make(env_id, **make_kwargs)`` wrapped as a robot."""
        try:
            import gymnasium
        except ImportError as exc:
            raise ImportError("GymRobot.from_id needs gymnasium (pip install gymnasium)") from exc
        return cls(gymnasium.make(env_id, **make_kwargs), seed=seed, frame_stack=frame_stack)

    def reset(self) -> np.ndarray:
        """Start an episode (seeded the first time only) and return its first observation."""
        seed = None if self._seeded else self.seed
        self._seeded = True
        obs, _ = self.env.reset(seed=seed)
        self._obs = _as_observation(obs)
        self._return = 0.0
        self._done = False
        self._stopped = False
        return self.read_observation()

    def read_observation(self) -> Any:
        """The latest observation; the newest frame only when ``frame_stack`` is set."""
        if self._obs is None:
            raise RuntimeError("GymRobot.read_observation before reset()")
        if self.frame_stack is None:
            return self._obs
        if isinstance(self._obs, dict):
            raise ValueError("GymRobot(frame_stack=...) is for pixel envs, not dict observations")
        channels = self._obs.shape[0] // self.frame_stack
        return self._obs[-channels:]

    def send_action(self, action: np.ndarray) -> bool:
        """Step the env; True once the episode ended. A stopped or ended episode ignores it."""
        if self._obs is None:
            raise RuntimeError("GymRobot.send_action before reset()")
        if self._done or self._stopped:
            return self._done
        obs, reward, terminated, truncated, _ = self.env.step(action)
        self._obs = _as_observation(obs)
        self._return += float(reward)
        if terminated or truncated:
            self._done = True
            self.episode_returns.append(self._return)
        return self._done

    def safe_stop(self) -> None:
        """A simulated robot has nothing to brake: ignore commands until the next reset."""
        self._stopped = True
        self.safe_stops += 1

    def close(self) -> None:
        """Close the env."""
        self.env.close()


def _as_observation(obs: Any) -> np.ndarray | dict[str, np.ndarray]:
    """An env observation as the runtime takes it: an array, or a dict of arrays."""
    if isinstance(obs, Mapping):
        return {key: np.asarray(value) for key, value in obs.items()}
    return np.asarray(obs)
