"""FrameReplayBuffer: exact stacks, frames stored once, SAC drop-in, pickling, clear errors."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sparse_rl.agents.visual.frame_buffer import FrameReplayBuffer
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

K = 3  # frame stack
SIZE = 8
ACTIONS = spaces.Box(-1.0, 1.0, (2,), np.float32)


class FrameStackEnv(gym.Env[np.ndarray, np.ndarray]):
    """Random RGB frames stacked like DMCEnv; episodes of random length end either way.

    Every episode lasts ``min_len..max_len`` steps and ends terminated or truncated at random.
    ``pad="repeat"`` starts with the first frame ``k`` times (DMCEnv), ``"zeros"`` pads with
    blank frames (SB3's VecFrameStack). ``log`` holds every ``(obs, next_obs, reward,
    terminated, truncated)``.
    """

    def __init__(
        self, size: int = SIZE, min_len: int = 1, max_len: int = 6, pad: str = "repeat"
    ) -> None:
        self.observation_space = spaces.Box(0, 255, (3 * K, size, size), np.uint8)
        self.action_space = ACTIONS
        self.size, self.min_len, self.max_len, self.pad = size, min_len, max_len, pad
        self.log: list[tuple[np.ndarray, np.ndarray, float, bool, bool]] = []
        self._frames: deque[np.ndarray] = deque(maxlen=K)

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, (3, self.size, self.size), dtype=np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        first = self._frame()
        blank = np.zeros_like(first)
        self._frames.extend([first] * K if self.pad == "repeat" else [blank] * (K - 1) + [first])
        self._t, self._len = 0, int(self.np_random.integers(self.min_len, self.max_len + 1))
        self._terminates = bool(self.np_random.random() < 0.5)
        self._obs = np.concatenate(self._frames)
        return self._obs, {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        self._frames.append(self._frame())
        obs, reward = np.concatenate(self._frames), float(self.np_random.normal())
        over = self._t >= self._len
        terminated, truncated = over and self._terminates, over and not self._terminates
        self.log.append((self._obs, obs, reward, terminated, truncated))
        self._obs = obs
        return obs, reward, terminated, truncated, {}


class Driver:
    """Feeds buffers from a VecEnv as SB3's ``_store_transition`` does; keeps what went in."""

    def __init__(self, venv: DummyVecEnv, *buffers: ReplayBuffer, seed: int = 0) -> None:
        self.venv, self.buffers = venv, buffers
        self.rng = np.random.default_rng(seed)
        venv.seed(seed)
        self.last_obs = venv.reset()
        self.ref: list[tuple[np.ndarray, ...]] = []  # obs, next_obs, action, reward, done, timeout

    def run(self, steps: int) -> None:
        n = self.venv.num_envs
        for _ in range(steps):
            shape = (n, *self.venv.action_space.shape)
            action = self.rng.uniform(-1, 1, shape).astype(np.float32)
            new_obs, reward, done, infos = self.venv.step(action)
            next_obs = new_obs.copy()
            for i in np.flatnonzero(done):  # VecEnvs auto-reset: the real next obs is in infos
                next_obs[i] = infos[i]["terminal_observation"]
            for buffer in self.buffers:
                buffer.add(self.last_obs, next_obs, action, reward, done, infos)
            timeout = np.array([info.get("TimeLimit.truncated", False) for info in infos])
            self.ref.append((self.last_obs, next_obs, action, reward, done, timeout))
            self.last_obs = new_obs


def make_venv(n_envs: int = 1, **env_kwargs: Any) -> DummyVecEnv:
    return DummyVecEnv([lambda: FrameStackEnv(**env_kwargs) for _ in range(n_envs)])


def make_buffer(
    rows: int, n_envs: int = 1, size: int = SIZE, actions: spaces.Box = ACTIONS, **kwargs: Any
) -> FrameReplayBuffer:
    space = spaces.Box(0, 255, (3 * K, size, size), np.uint8)
    return FrameReplayBuffer(rows * n_envs, space, actions, device="cpu", n_envs=n_envs, **kwargs)


def assert_matches(buffer: FrameReplayBuffer, ref: list[tuple[np.ndarray, ...]]) -> None:
    """Every live row holds exactly what the env produced at its step."""
    rows, n_envs = buffer.buffer_size, buffer.n_envs
    assert buffer.size() == min(len(ref), rows)
    envs = np.arange(n_envs)
    for step in range(max(0, len(ref) - rows), len(ref)):
        obs, next_obs, action, reward, done, timeout = ref[step]
        row = step % rows
        got_obs, got_next = buffer.stacks(np.full(n_envs, row), envs)
        np.testing.assert_array_equal(got_obs, obs, err_msg=f"obs of step {step}")
        np.testing.assert_array_equal(got_next, next_obs, err_msg=f"next_obs of step {step}")
        np.testing.assert_array_equal(buffer.actions[row], action)
        np.testing.assert_array_equal(buffer.rewards[row], reward.astype(np.float32))
        np.testing.assert_array_equal(buffer.dones[row], done)
        np.testing.assert_array_equal(buffer.timeouts[row], timeout)


# ---------------------------------------------------------------------- exact reconstruction


@pytest.mark.parametrize("n_envs", [1, 2])
@pytest.mark.parametrize("max_len", [1, 6])
def test_stacks_exact_before_and_after_wraparound(n_envs: int, max_len: int) -> None:
    """Episodes of 1..max_len steps, terminated and truncated: every live row is exact."""
    buffer = make_buffer(rows=20, n_envs=n_envs)
    driver = Driver(make_venv(n_envs, max_len=max_len), buffer)
    driver.run(13)
    assert not buffer.full
    assert_matches(buffer, driver.ref)
    driver.run(57)  # wraps the rows (and the frame rings) more than twice
    assert buffer.full
    assert_matches(buffer, driver.ref)
    dones = np.array([r[4] for r in driver.ref])
    timeouts = np.array([r[5] for r in driver.ref])
    assert (dones & timeouts).any() and (dones & ~timeouts).any()  # truncations and terminations


def test_samples_equal_sb3_replay_buffer() -> None:
    """Seeded samples equal SB3's own ReplayBuffer fed the same transitions, field by field."""
    ours, theirs = make_buffer(rows=16, n_envs=2), ReplayBuffer(32, *spaces_of(), "cpu", n_envs=2)
    Driver(make_venv(2), ours, theirs).run(45)
    for seed in range(3):
        np.random.seed(seed)
        a = ours.sample(64)
        np.random.seed(seed)
        b = theirs.sample(64)
        for name, x, y in zip(a._fields, a, b, strict=True):
            assert (x is None and y is None) or (x.dtype == y.dtype and torch.equal(x, y)), name
    assert a.observations.dtype == torch.uint8 and a.observations.shape == (64, 3 * K, SIZE, SIZE)


def spaces_of() -> tuple[spaces.Box, spaces.Box]:
    return spaces.Box(0, 255, (3 * K, SIZE, SIZE), np.uint8), ACTIONS


def test_new_episode_without_done() -> None:
    """``learn()`` resets the env mid-episode: the next obs starts a new episode, still exact."""
    buffer = make_buffer(rows=12)
    driver = Driver(make_venv(max_len=50), buffer)
    driver.run(5)
    driver.last_obs = driver.venv.reset()
    driver.run(5)
    assert_matches(buffer, driver.ref)
    driver.run(10)
    assert_matches(buffer, driver.ref)


def test_blank_padded_first_obs() -> None:
    """Blank-padded stacks need two frames per episode start; one raises before storing anything."""
    one = make_buffer(rows=10)
    with pytest.raises(ValueError, match=r"2 distinct frames but first_obs_frames=1"):
        Driver(make_venv(pad="zeros"), one).run(1)
    assert one.size() == 0 and one._written.sum() == 0
    two = make_buffer(rows=10, first_obs_frames=2)
    driver = Driver(make_venv(pad="zeros"), two)
    driver.run(37)
    assert_matches(two, driver.ref)


def test_too_small_frame_ring_raises_and_keeps_live_rows() -> None:
    """Episodes far shorter than min_episode_length: add raises rather than overwrite a frame."""
    buffer = make_buffer(rows=10, min_episode_length=4)
    driver = Driver(make_venv(max_len=1), buffer)
    with pytest.raises(RuntimeError, match=r"min_episode_length=4"):
        driver.run(30)
    assert_matches(buffer, driver.ref)  # the failed step stored nothing


def test_dmc_env_reconstruction() -> None:
    """DMCEnv repeats its first frame: one frame per episode start, stacks exact across wraps."""
    from sparse_rl.envs.dmc import DMCEnv

    venv = DummyVecEnv(
        [lambda: DMCEnv("cartpole", "swingup", obs="pixels", size=16, episode_length=3)]
    )
    buffer = make_buffer(rows=5, size=16, actions=venv.action_space, min_episode_length=3)
    driver = Driver(venv, buffer)
    driver.run(13)
    assert_matches(buffer, driver.ref)
    assert buffer._written[0] == 13 + 5  # a frame per step, one more per episode (5 started)
    venv.close()


# ---------------------------------------------------------------------- memory


def test_frames_stored_once_and_nbytes() -> None:
    rows, steps = 60, 200
    buffer = make_buffer(rows=rows, min_episode_length=4)
    naive = ReplayBuffer(rows, *spaces_of(), "cpu")
    driver = Driver(make_venv(min_len=4, max_len=8), buffer, naive)
    driver.run(steps)
    episodes = 1 + int(sum(r[4].sum() for r in driver.ref[:-1]))
    assert buffer._written[0] == steps + episodes  # the newest frame per step, one per start
    slots = rows + K + (-(-(rows + K) // 4) + 1)
    assert buffer.frame_slots == slots and buffer.frames.nbytes == slots * 3 * SIZE * SIZE
    assert buffer.nbytes() == FrameReplayBuffer.memory_estimate(
        rows, (3, SIZE, SIZE), K, action_dim=2, min_episode_length=4
    )
    naive_bytes = sum(
        a.nbytes for a in (naive.observations, naive.next_observations, naive.actions)
    ) + sum(a.nbytes for a in (naive.rewards, naive.dones, naive.timeouts))
    assert buffer.nbytes() < naive_bytes / 3
    assert not hasattr(buffer, "observations") and not hasattr(buffer, "next_observations")
    assert_matches(buffer, driver.ref)


def test_memory_estimate_100k_dmc() -> None:
    """100k transitions of 3 stacked 84x84 frames: under 8 GB; SB3's two obs arrays are not."""
    est = FrameReplayBuffer.memory_estimate(100_000, (3, 84, 84), 3, action_dim=6)
    frame = 3 * 84 * 84
    assert 2 * 100_000 * frame < est <= 8e9  # any episode length: about two frames per row
    dmc = FrameReplayBuffer.memory_estimate(
        100_000, (3, 84, 84), 3, action_dim=6, min_episode_length=125
    )
    assert 100_000 * frame < dmc < 1.02 * 100_000 * frame + 10e6  # ~2.1 GB
    naive = 2 * 100_000 * 9 * 84 * 84
    assert naive > 8e9


# ---------------------------------------------------------------------- SAC drop-in


class TinyCNN(BaseFeaturesExtractor):
    """One strided conv and a linear layer: enough for 16x16 frames (NatureCNN needs 36x36)."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        conv = nn.Sequential(
            nn.Conv2d(observation_space.shape[0], 8, 3, stride=2), nn.ReLU(), nn.Flatten()
        )
        with torch.no_grad():
            n = conv(torch.zeros(1, *observation_space.shape)).shape[1]
        self.net = nn.Sequential(conv, nn.Linear(n, features_dim), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def test_sac_learns_and_buffer_round_trips(tmp_path: Any) -> None:
    def sac(venv: DummyVecEnv) -> SAC:
        return SAC(
            "CnnPolicy",
            venv,
            buffer_size=30,
            learning_starts=10,
            batch_size=8,
            policy_kwargs=dict(features_extractor_class=TinyCNN, net_arch=[16, 16]),
            replay_buffer_class=FrameReplayBuffer,
            replay_buffer_kwargs=dict(min_episode_length=1),
            seed=0,
            device="cpu",
        )

    venv = make_venv(size=16)
    model = sac(venv)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(50)
    buffer = model.replay_buffer
    assert isinstance(buffer, FrameReplayBuffer) and buffer.full
    assert model._n_updates >= 30  # one gradient step per env step after learning_starts
    after = list(model.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # Row i holds env step i: compare with what the env itself logged.
    log = venv.envs[0].unwrapped.log
    for step in range(len(log) - 30, len(log)):
        obs, next_obs, reward, terminated, truncated = log[step]
        got_obs, got_next = buffer.stacks(np.array([step % 30]), np.array([0]))
        np.testing.assert_array_equal(got_obs[0], obs)
        np.testing.assert_array_equal(got_next[0], next_obs)
        assert buffer.rewards[step % 30, 0] == np.float32(reward)
        assert buffer.dones[step % 30, 0] == (terminated or truncated)
        assert buffer.timeouts[step % 30, 0] == truncated

    path = tmp_path / "frames.pkl"
    model.save_replay_buffer(path)
    other = sac(make_venv(size=16))
    other.load_replay_buffer(path)
    loaded = other.replay_buffer
    assert isinstance(loaded, FrameReplayBuffer) and loaded is not buffer
    rows, envs = np.arange(30), np.zeros(30, int)
    for got, want in zip(loaded.stacks(rows, envs), buffer.stacks(rows, envs), strict=True):
        np.testing.assert_array_equal(got, want)
    assert loaded.pos == buffer.pos and loaded.full and loaded.nbytes() == buffer.nbytes()
    other.learn(5, reset_num_timesteps=False)  # a fresh env: its first obs starts an episode
    assert loaded.stacks(np.array([loaded.pos - 1]), np.array([0]))[1].dtype == np.uint8


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("space", "kwargs", "error", "match"),
    [
        (spaces.Box(0, 1, (9, 8, 8), np.float32), {}, TypeError, "uint8 Box"),
        (spaces.Discrete(4), {}, TypeError, "uint8 Box"),
        (spaces.Box(0, 255, (8, 8, 8), np.uint8), {}, ValueError, "multiple of frame_channels=3"),
        (spaces.Box(0, 255, (9, 8), np.uint8), {}, ValueError, r"\(channels, height, width\)"),
        (spaces.Box(0, 255, (9, 8, 8), np.uint8), {"first_obs_frames": 4}, ValueError, "at most"),
        (spaces.Box(0, 255, (9, 8, 8), np.uint8), {"min_episode_length": 0}, ValueError, ">= 1"),
        (spaces.Box(0, 255, (9, 8, 8), np.uint8), {"frame_channels": 0}, ValueError, ">= 1"),
        (
            spaces.Box(0, 255, (9, 8, 8), np.uint8),
            {"optimize_memory_usage": True},
            ValueError,
            "optimize_memory_usage=False",
        ),
    ],
)
def test_bad_construction(
    space: spaces.Space, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        FrameReplayBuffer(10, space, ACTIONS, device="cpu", **kwargs)


def test_grayscale_frames() -> None:
    buffer = FrameReplayBuffer(
        10, spaces.Box(0, 255, (4, 8, 8), np.uint8), ACTIONS, device="cpu", frame_channels=1
    )
    assert buffer.frame_stack == 4 and buffer.frame_shape == (1, 8, 8)


def test_bad_add() -> None:
    buffer = make_buffer(rows=10)
    obs = np.random.default_rng(0).integers(0, 256, (1, 3 * K, SIZE, SIZE), dtype=np.uint8)
    act, rew, done, infos = np.zeros((1, 2), np.float32), np.zeros(1), np.zeros(1, bool), [{}]
    with pytest.raises(ValueError, match="not obs shifted by one frame"):
        buffer.add(obs, obs[:, ::-1].copy(), act, rew, done, infos)
    with pytest.raises(ValueError, match=r"must have shape \(n_envs, \*obs_shape\)"):
        buffer.add(obs[0], obs[0], act, rew, done, infos)
    with pytest.raises(TypeError, match="must be uint8"):
        buffer.add(obs.astype(np.float32), obs.astype(np.float32), act, rew, done, infos)
    assert buffer.size() == 0
