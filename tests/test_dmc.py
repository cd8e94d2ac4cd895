"""DeepMind Control through gymnasium: spaces, frame stack, action repeat, seeding, mask, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from sparse_rl.envs.distractions.camera import CameraDistraction
from sparse_rl.envs.distractions.color import ColorDistraction
from sparse_rl.envs.dmc import DMCEnv, benchmark_tasks, suite_tasks
from stable_baselines3.common.env_checker import check_env as sb3_check_env

SIZE = 64
FIVE_TASKS = [
    ("walker", "walk"),
    ("cartpole", "swingup"),
    ("cheetah", "run"),
    ("finger", "spin"),
    ("ball_in_cup", "catch"),
]


def _rollout(env: DMCEnv, seed: int, steps: int) -> list[np.ndarray]:
    """Observations of a seeded episode under a fixed action sequence."""
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(123).uniform(-1, 1, (steps, *env.action_space.shape))
    out = [obs]
    for a in actions:
        out.append(env.step(a.astype(np.float32))[0])
    return out


def test_spaces_and_dtypes() -> None:
    state = DMCEnv("walker", "walk", obs="state")
    obs, info = state.reset(seed=0)
    assert state.observation_space.shape == (24,) and obs.dtype == np.float32
    assert obs in state.observation_space and info == {}
    assert state.action_space.dtype == np.float32 and state.action_space.shape == (6,)
    np.testing.assert_array_equal(state.action_space.low, -1)

    pixels = DMCEnv("walker", "walk", size=(48, SIZE), frame_stack=2)
    obs, _ = pixels.reset(seed=0)
    assert obs.shape == (6, 48, SIZE) and obs.dtype == np.uint8
    assert pixels.observation_space.shape == obs.shape and obs in pixels.observation_space
    obs, reward, terminated, truncated, _ = pixels.step(np.zeros(6, np.float32))
    assert obs.shape == (6, 48, SIZE) and isinstance(reward, float)
    assert terminated is False and truncated is False


@pytest.mark.parametrize(
    ("domain", "task", "repeat", "length", "camera"),
    [
        ("cartpole", "swingup", 8, 125, 0),
        ("finger", "spin", 2, 500, 0),
        ("walker", "walk", 4, 250, 0),
        ("quadruped", "walk", 4, 250, 2),
    ],
)
def test_per_domain_defaults(domain: str, task: str, repeat: int, length: int, camera: int) -> None:
    env = DMCEnv(domain, task, obs="state")
    assert (env.action_repeat, env.episode_length, env.camera_id) == (repeat, length, camera)


def test_frame_stack_shifts_oldest_first() -> None:
    env = DMCEnv("cartpole", "swingup", size=SIZE, render_mode="rgb_array")
    first, _ = env.reset(seed=0)
    np.testing.assert_array_equal(first[0:3], first[3:6])  # the reset frame fills the stack
    np.testing.assert_array_equal(first[3:6], first[6:9])
    prev = first
    for _ in range(3):
        obs, *_ = env.step(np.ones(1, np.float32))
        np.testing.assert_array_equal(obs[:6], prev[3:])  # older frames shift towards the front
        np.testing.assert_array_equal(obs[6:], env.render().transpose(2, 0, 1))  # newest last
        prev = obs
    assert not np.array_equal(obs[6:], first[6:])  # the cart moved


def test_action_repeat_sums_rewards_over_control_steps() -> None:
    once = DMCEnv("cheetah", "run", obs="state", action_repeat=1)
    thrice = DMCEnv("cheetah", "run", obs="state", action_repeat=3)
    once.reset(seed=3)
    thrice.reset(seed=3)
    action = np.full(6, 0.7, np.float32)
    rewards = [once.step(action)[1] for _ in range(6)]
    summed = [thrice.step(action)[1] for _ in range(2)]
    np.testing.assert_allclose(summed, [sum(rewards[:3]), sum(rewards[3:])], rtol=1e-12)
    np.testing.assert_array_equal(once.physics.get_state(), thrice.physics.get_state())


def test_episode_length_counts_agent_steps_and_truncates() -> None:
    env = DMCEnv("walker", "walk", obs="state")  # default: 1000 control steps = 250 agent steps
    env.reset(seed=0)
    action = np.zeros(6, np.float32)
    for step in range(1, 251):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated and truncated == (step == 250)
    assert env.physics.data.time == pytest.approx(1000 * env.dm_env.control_timestep())

    short = DMCEnv("walker", "walk", obs="state", action_repeat=2, episode_length=3)
    short.reset(seed=0)
    assert [short.step(action)[3] for _ in range(3)] == [False, False, True]
    short.reset()
    assert short.step(action)[3] is False  # reset starts a new count


def test_reset_seed_reproducible_state_and_pixels() -> None:
    env = DMCEnv("walker", "walk", obs="state")
    a, b, c = env.reset(seed=5)[0], env.reset(seed=5)[0], env.reset(seed=6)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)

    distractions = [ColorDistraction(0.2, dynamic=True), CameraDistraction(0.2, dynamic=True)]
    pixels = DMCEnv("walker", "walk", size=SIZE, distractions=distractions)
    first = _rollout(pixels, seed=7, steps=4)
    second = _rollout(pixels, seed=7, steps=4)
    fresh_env = DMCEnv(
        "walker",
        "walk",
        size=SIZE,
        distractions=[ColorDistraction(0.2, dynamic=True), CameraDistraction(0.2, dynamic=True)],
    )
    fresh = _rollout(fresh_env, seed=7, steps=4)
    other = _rollout(pixels, seed=8, steps=4)
    for x, y, z, w in zip(first, second, fresh, other, strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
        assert not np.array_equal(x, w)


def test_unseeded_reset_after_seed_continues_deterministically() -> None:
    env = DMCEnv("finger", "spin", obs="state")
    env.reset(seed=1)
    a = env.reset()[0]
    env.reset(seed=1)
    np.testing.assert_array_equal(a, env.reset()[0])


def test_agent_mask_covers_the_agent() -> None:
    env = DMCEnv("walker", "walk", size=SIZE, return_agent_mask=True, render_mode="rgb_array")
    _, info = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(3):
        _, _, _, _, info = env.step(env.action_space.sample())
    mask = info["agent_mask"]
    assert mask.dtype == bool and mask.shape == (SIZE, SIZE)
    assert 0.01 < mask.mean() < 0.5
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert border.mean() < 0.1  # mostly inside the frame
    frame = env.render().astype(float)
    # The walker is orange, the floor and sky blue: red dominates inside the mask only.
    assert (frame[mask, 0] - frame[mask, 2]).mean() > 50
    assert (frame[~mask, 0] - frame[~mask, 2]).mean() < 0


@pytest.mark.parametrize(
    ("domain", "task", "obs"),
    [
        (d, t, o) if o == "state" or d in ("cartpole", "walker")
        else pytest.param(d, t, o, marks=pytest.mark.slow)  # the same pixel code, other bodies
        for d, t in FIVE_TASKS
        for o in ("state", "pixels")
    ],
)  # fmt: skip
def test_env_checkers(domain: str, task: str, obs: str) -> None:
    """Both checkers, with every distraction of this module moving every frame (about 1 s)."""
    _check_both(domain, task, obs)


def _check_both(domain: str, task: str, obs: str) -> None:
    pixels = obs == "pixels"
    env = DMCEnv(
        domain,
        task,
        obs=obs,  # type: ignore[arg-type]
        size=SIZE,
        distractions=[ColorDistraction(0.3, True), CameraDistraction(0.3, True)] if pixels else (),
        return_agent_mask=pixels,
        render_mode="rgb_array",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(infinity|spec).*")
        check_env(env)
        sb3_check_env(env)
    env.close()
    env.close()  # closing twice is harmless


def test_task_lists() -> None:
    tasks = suite_tasks()
    assert "walk" in tasks["walker"] and ("cartpole", "swingup") in benchmark_tasks()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"domain": "walkr"}, ValueError, "valid domains: .*walker"),
        ({"task": "jump"}, ValueError, "valid tasks: .*walk"),
        ({"obs": "rgb"}, ValueError, "obs must be"),
        ({"size": 0}, ValueError, "height must be"),
        ({"size": 84.0}, ValueError, "size must be an int or"),
        ({"size": (84, 84, 3)}, ValueError, "size must be an int or"),
        ({"size": (64, 4000)}, ValueError, "width must be"),
        ({"camera_id": 7}, ValueError, "camera_id must be"),
        ({"camera_id": -1}, ValueError, "camera_id must be"),
        ({"frame_stack": 0}, ValueError, "frame_stack must be"),
        ({"action_repeat": 0}, ValueError, "action_repeat must be"),
        ({"episode_length": -3}, ValueError, "episode_length must be"),
        ({"episode_length": 2.5}, ValueError, "episode_length must be"),
        ({"render_mode": "human"}, ValueError, "render_mode"),
        ({"obs": "state", "return_agent_mask": True}, ValueError, "need obs='pixels'"),
        ({"obs": "state", "distractions": [ColorDistraction(0.1)]}, ValueError, "need obs="),
        ({"distractions": ["color"]}, TypeError, "Distraction protocol"),
    ],
)
def test_bad_input(kwargs: dict, error: type[Exception], match: str) -> None:
    args = {"domain": "walker", "task": "walk", **kwargs}
    with pytest.raises(error, match=match):
        DMCEnv(args.pop("domain"), args.pop("task"), **args)
