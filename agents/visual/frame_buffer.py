"""SB3's replay buffer for frame-stacked pixels, storing every frame once.

SB3's ``ReplayBuffer`` keeps ``obs`` and ``next_obs`` whole: with 3 stacked 84x84 RGB frames that
is 6 copies of each frame, 12.7 GB for 100k transitions. Consecutive stacks share all but one frame,
so this buffer keeps a ring of single frames per env and, per transition, the ``frame_stack + 1``
frame numbers its ``obs`` (the first ``k``) and ``next_obs`` (the last ``k``) are made of. Sampling
rebuilds both stacks exactly, so SAC (or anything reading ``ReplayBufferSamples``) cannot tell the
difference: ``SAC(..., replay_buffer_class=FrameReplayBuffer)``.

Observations must be channel-first frame stacks, oldest frame first, as ``DMCEnv`` produces them:
``next_obs`` is ``obs`` shifted by one frame, which ``add`` checks.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sparse_rl.validation import check_int

try:  # SB3 warns when a buffer cannot fit in memory; do the same for the frame store
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

#: Bytes per row besides its actions: ``rewards``, ``dones``, ``timeouts`` (float32 each).
_ROW_SCALARS = 3 * 4


class FrameReplayBuffer(ReplayBuffer):
    """A ``ReplayBuffer`` for uint8 ``(c * k, H, W)`` frame stacks that stores each frame once.

    Each ``add`` stores the newest frame of ``next_obs``; at an episode start it first stores the
    frames of ``obs``, consecutive repeats once (``DMCEnv`` repeats its first frame ``k`` times, so
    that is one frame). An episode starts at the first ``add``, after a ``done``, and whenever
    ``obs`` is not the previous ``next_obs`` (``learn()`` resetting the env mid-episode).

    **Sizing.** Each env's ring has ``frame_slots`` slots (``frame_slots_for``), with
    ``rows = buffer_size // n_envs``::

        rows + k + first_obs_frames * (ceil((rows + k) / min_episode_length) + 1)

    The live rows and the ``k`` rows before them write one frame each, plus ``first_obs_frames``
    per episode start, and episodes of at least ``min_episode_length`` steps start at most that
    often. With the defaults (any episode length, first frame repeated) this is about
    ``2 * rows`` frames; ``min_episode_length=1000 // action_repeat`` (DMC's fixed episodes) brings
    it to about ``rows``. ``add`` never overwrites a frame a live transition uses: it raises first.

    :param buffer_size: transitions kept, over all envs (SB3's meaning).
    :param observation_space: uint8 ``Box`` of shape ``(frame_channels * k, H, W)``.
    :param action_space: action space.
    :param device: torch device of the sampled tensors.
    :param n_envs: parallel envs; each has its own frame ring.
    :param optimize_memory_usage: must be False (frames are already stored once); SB3 passes it.
    :param handle_timeout_termination: as in SB3: truncations are not terminal in the TD target.
    :param min_episode_length: shortest episode (agent steps) the frame ring is sized for; a
        shorter one is fine as long as, on average over the buffer, episodes are not shorter.
    :param first_obs_frames: frames stored for an episode's first ``obs``: 1 when the env repeats
        the first frame (``DMCEnv``, DMControl-GB), 2 when it pads with a blank frame (SB3's
        ``VecFrameStack``), up to ``k`` otherwise.
    :param frame_channels: channels per frame: 3 for RGB, 1 for grayscale.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        min_episode_length: int = 1,
        first_obs_frames: int = 1,
        frame_channels: int = 3,
    ) -> None:
        check_int("buffer_size", buffer_size, 1)
        check_int("n_envs", n_envs, 1)
        check_int("min_episode_length", min_episode_length, 1)
        check_int("frame_channels", frame_channels, 1)
        self.frame_shape = _frame_shape(observation_space, frame_channels)
        self.frame_stack = observation_space.shape[0] // frame_channels
        check_int("first_obs_frames", first_obs_frames, 1)
        if first_obs_frames > self.frame_stack:
            raise ValueError(
                f"first_obs_frames must be at most frame_stack={self.frame_stack}, "
                f"got {first_obs_frames}."
            )
        if optimize_memory_usage:
            raise ValueError(
                "FrameReplayBuffer already stores every frame once: pass "
                "optimize_memory_usage=False (the SB3 default)."
            )
        # SB3's __init__ allocates (buffer_size, n_envs, *obs_shape) twice: give it an empty
        # observation space so it sets up actions, rewards, dones and timeouts only.
        empty = spaces.Box(0, 255, (0,), np.uint8)
        super().__init__(
            buffer_size, empty, action_space, device, n_envs, False, handle_timeout_termination
        )
        del self.observations, self.next_observations
        self.observation_space = observation_space
        self.obs_shape = tuple(observation_space.shape)
        self.min_episode_length = int(min_episode_length)
        self.first_obs_frames = int(first_obs_frames)
        self.frame_channels = int(frame_channels)

        k = self.frame_stack
        self.frame_slots = self.frame_slots_for(
            self.buffer_size, k, self.min_episode_length, self.first_obs_frames
        )
        need = self.memory_estimate(
            buffer_size,
            self.frame_shape,
            k,
            n_envs=n_envs,
            action_dim=self.action_dim,
            min_episode_length=self.min_episode_length,
            first_obs_frames=self.first_obs_frames,
        )
        if psutil is not None and need > psutil.virtual_memory().available:
            warnings.warn(
                f"FrameReplayBuffer needs {need / 1e9:.2f} GB but only "
                f"{psutil.virtual_memory().available / 1e9:.2f} GB are available.",
                stacklevel=2,
            )
        #: One frame ring per env.
        self.frames = np.zeros((n_envs, self.frame_slots, *self.frame_shape), np.uint8)
        #: Per row and env: absolute numbers of the k + 1 frames (obs = [:k], next_obs = [1:]).
        self.frame_refs = np.zeros((self.buffer_size, n_envs, k + 1), np.int64)
        self._written = np.zeros(n_envs, np.int64)  # frames written so far, per env
        self._stack = np.zeros((n_envs, k), np.int64)  # frame numbers of the last next_obs
        self._episode_start = np.ones(n_envs, bool)

    # ------------------------------------------------------------------ sizing

    @staticmethod
    def frame_slots_for(
        rows: int, frame_stack: int, min_episode_length: int = 1, first_obs_frames: int = 1
    ) -> int:
        """Frame slots one env's ring needs for ``rows`` live transitions (see the class doc)."""
        starts = math.ceil((rows + frame_stack) / min_episode_length) + 1
        return rows + frame_stack + first_obs_frames * starts

    @staticmethod
    def memory_estimate(
        buffer_size: int,
        frame_shape: tuple[int, ...],
        frame_stack: int,
        *,
        n_envs: int = 1,
        action_dim: int = 1,
        min_episode_length: int = 1,
        first_obs_frames: int = 1,
    ) -> int:
        """Bytes a buffer of these settings holds (float32 actions): equal to its ``nbytes()``.

        :param frame_shape: one frame, e.g. ``(3, 84, 84)``.
        """
        rows = max(buffer_size // n_envs, 1)
        slots = FrameReplayBuffer.frame_slots_for(
            rows, frame_stack, min_episode_length, first_obs_frames
        )
        frames = n_envs * slots * math.prod(frame_shape)
        per_row = (frame_stack + 1) * 8 + action_dim * 4 + _ROW_SCALARS
        per_env = 8 + frame_stack * 8 + 1  # _written, _stack, _episode_start
        return frames + rows * n_envs * per_row + n_envs * per_env

    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays (frames, frame numbers, actions, rewards, flags)."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    # ------------------------------------------------------------------ SB3 API

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one step of every env: new frames, their numbers, and SB3's per-row arrays."""
        obs, next_obs = self._check_obs("obs", obs), self._check_obs("next_obs", next_obs)
        # Plan every env before writing anything, so a raised error leaves the buffer intact.
        plans = [self._plan(e, obs[e], next_obs[e]) for e in range(self.n_envs)]
        for e, (new_frames, refs) in enumerate(plans):
            for frame in new_frames:
                self.frames[e, self._written[e] % self.frame_slots] = frame
                self._written[e] += 1
            self.frame_refs[self.pos, e] = refs
            self._stack[e] = refs[1:]

        self.actions[self.pos] = np.array(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = np.array(
                [info.get("TimeLimit.truncated", False) for info in infos]
            )
        self._episode_start = np.array(done, dtype=bool).reshape(self.n_envs)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def reset(self) -> None:
        super().reset()
        self._written[:] = 0
        self._episode_start[:] = True

    def stacks(self, rows: np.ndarray, envs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``obs`` and ``next_obs`` (uint8 ``(B, c * k, H, W)``) of stored rows, one env each."""
        rows, envs = np.asarray(rows), np.asarray(envs)
        frames = self.frames[envs[:, None], self.frame_refs[rows, envs] % self.frame_slots]
        shape = (len(rows), *self.obs_shape)
        return frames[:, :-1].reshape(shape), frames[:, 1:].reshape(shape)

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> ReplayBufferSamples:
        # The same draws as SB3's ReplayBuffer, so a seeded run samples the same transitions.
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        obs, next_obs = self.stacks(batch_inds, env_indices)
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        data = (
            self._normalize_obs(obs, env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(next_obs, env),
            dones.reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))

    # ------------------------------------------------------------------ internals

    def _check_obs(self, name: str, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        if value.shape != (self.n_envs, *self.obs_shape):
            raise ValueError(
                f"{name} must have shape (n_envs, *obs_shape) = "
                f"{(self.n_envs, *self.obs_shape)}, got {value.shape}."
            )
        if value.dtype != np.uint8:
            raise TypeError(f"{name} must be uint8 pixels, got dtype {value.dtype}.")
        return value

    def _plan(
        self, e: int, obs: np.ndarray, next_obs: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Frames env ``e`` must write for this step and the k + 1 frame numbers of its row."""
        k = self.frame_stack
        obs_f = obs.reshape(k, *self.frame_shape)
        next_f = next_obs.reshape(k, *self.frame_shape)
        if not np.array_equal(next_f[:-1], obs_f[1:]):
            raise ValueError(
                f"next_obs of env {e} is not obs shifted by one frame: FrameReplayBuffer needs "
                f"channel-first stacks of {k} frames of {self.frame_channels} channels, oldest "
                "frame first (as DMCEnv makes them)."
            )
        n = int(self._written[e])
        new_frames: list[np.ndarray] = []
        start = self._episode_start[e] or not np.array_equal(
            self.frames[e, self._stack[e] % self.frame_slots], obs_f
        )
        if start:
            refs = []
            for j in range(k):
                if j and np.array_equal(obs_f[j], obs_f[j - 1]):
                    refs.append(refs[-1])
                else:
                    new_frames.append(obs_f[j])
                    refs.append(n + len(new_frames) - 1)
            if len(new_frames) > self.first_obs_frames:
                raise ValueError(
                    f"the first obs of an episode (env {e}) holds {len(new_frames)} distinct "
                    f"frames but first_obs_frames={self.first_obs_frames}; pass "
                    f"replay_buffer_kwargs=dict(first_obs_frames={len(new_frames)})."
                )
        else:
            refs = list(self._stack[e])
        new_frames.append(next_f[-1])
        refs.append(n + len(new_frames) - 1)

        # The oldest frame any live row will use once this row replaces row `pos`.
        floor = refs[0]
        oldest = (self.pos + 1) % self.buffer_size if self.full else 0
        if (self.full or self.pos > 0) and oldest != self.pos:
            floor = min(floor, int(self.frame_refs[oldest, e, 0]))
        newest = n + len(new_frames) - 1
        if newest - self.frame_slots >= floor:
            raise RuntimeError(
                f"the frame ring of env {e} ({self.frame_slots} slots) would overwrite a frame a "
                f"stored transition still uses: episodes are shorter than "
                f"min_episode_length={self.min_episode_length} on average; pass a smaller one."
            )
        return new_frames, np.asarray(refs, np.int64)


def _frame_shape(space: spaces.Space, frame_channels: int) -> tuple[int, int, int]:
    """``(frame_channels, H, W)`` of one frame of a channel-first uint8 frame-stack space."""
    if not isinstance(space, spaces.Box) or space.dtype != np.uint8:
        raise TypeError(
            f"observation_space must be a uint8 Box of stacked frames, got {space!r}; "
            "FrameReplayBuffer is for pixel observations (obs='pixels')."
        )
    if len(space.shape) != 3:
        raise ValueError(
            f"observation_space must have shape (channels, height, width), got {space.shape}."
        )
    channels, height, width = space.shape
    if channels % frame_channels:
        raise ValueError(
            f"observation_space has {channels} channels, not a multiple of "
            f"frame_channels={frame_channels}: frames must be stacked channel-first "
            "(3 * frame_stack channels for RGB)."
        )
    return frame_channels, height, width
