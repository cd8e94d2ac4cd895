"""Registered ids, presets and ``make_env``: what users build envs with."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from sparse_rl import envs


def _frames(env: gym.Env, seed: int, steps: int = 3) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    env.action_space.seed(seed)
    for _ in range(steps):
        obs, *_ = env.step(env.action_space.sample())
        frames.append(obs)
    return np.stack(frames)


def test_registered_ids_cover_every_task_and_preset() -> None:
    """Each DMC task has one id per preset plus a state id; each noisy base has one id."""
    ids = set(envs.REGISTERED_IDS)
    assert len(ids) == len(envs.DMC_TASKS) * (len(envs.PRESETS) + 1) + len(envs.NOISY_BASES)
    assert "sparse_rl/walker-walk-video_hard-v0" in ids
    assert "sparse_rl/ball_in_cup-catch-state-v0" in ids
    assert "sparse_rl/NoisyHalfCheetah-v5" in ids
    assert ids <= set(gym.registry)


#: One preset per kind of distraction at its strongest runs by default; the milder scales of the
#: same code run with ``-m slow``.
CHECKED_FAST = ("clean", "color_hard", "video_hard", "hard")


@pytest.mark.parametrize(
    "preset",
    [p if p in CHECKED_FAST else pytest.param(p, marks=pytest.mark.slow) for p in envs.PRESETS],
)
def test_each_preset_builds_steps_and_passes_both_checkers(preset: str) -> None:
    """Every preset on walker-walk is a valid gymnasium and SB3 env with stacked uint8 frames."""
    env = gym.make(f"sparse_rl/walker-walk-{preset}-v0", size=48)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (9, 48, 48) and obs.dtype == np.uint8
    env.step(env.action_space.sample())
    raw = envs.make_env("walker-walk", preset=preset, size=48)
    gym_check_env(raw, skip_render_check=True)
    sb3_check_env(raw)


@pytest.mark.parametrize("preset", ["color_hard", "video_hard", "hard", 0.3])
def test_same_seed_same_frames_other_seed_other_distractions(preset: str | float) -> None:
    """Distractions are reproducible from reset(seed=...) and differ between seeds."""
    first = _frames(envs.make_env("cartpole-swingup", preset=preset, size=48), seed=3)
    again = _frames(envs.make_env("cartpole-swingup", preset=preset, size=48), seed=3)
    other = _frames(envs.make_env("cartpole-swingup", preset=preset, size=48), seed=4)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first[0].astype(int) - other[0].astype(int)).mean() > 2.0


def test_presets_expand_to_the_documented_distractions() -> None:
    """GB names give one kind each; DCS difficulties and intensities give all three kinds."""
    kinds = {name: [type(d).__name__ for d in envs.distractions_for(name)] for name in envs.PRESETS}
    assert kinds["clean"] == []
    assert kinds["color_easy"] == ["ColorDistraction"]
    assert kinds["video_hard"] == ["BackgroundDistraction"]
    for name in ("easy", "medium", "hard", 0.05):
        got = [type(d).__name__ for d in envs.distractions_for(name)]
        assert got == ["ColorDistraction", "CameraDistraction", "BackgroundDistraction"]
    (video_hard,) = envs.distractions_for("video_hard")
    (video_easy,) = envs.distractions_for("video_easy")
    assert video_hard.hard and not video_easy.hard


def test_noisy_state_and_noisy_mujoco() -> None:
    """noise_fraction turns a flat observation into the Extremely Noisy Environment."""
    dmc = envs.make_env("walker-walk", obs="state", noise_fraction=0.95)
    assert dmc.observation_space.shape == (480,)  # 24 real features
    cheetah = gym.make("sparse_rl/NoisyHalfCheetah-v5")
    assert cheetah.observation_space.shape == (170,)  # 17 real features at 90% noise
    stronger = gym.make("sparse_rl/NoisyHalfCheetah-v5", noise_fraction=0.98)
    assert stronger.observation_space.shape == (850,)
    real = stronger.get_wrapper_attr("real_indices")
    assert len(real) == 17


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "walker-walkk"}, "valid tasks: stand, walk, run"),
        ({"name": "walkr-walk"}, "neither a gymnasium id nor"),
        ({"name": "walker-walk", "preset": "video_hrad"}, r"preset='video_hrad'.*'video_hard'"),
        ({"name": "walker-walk", "preset": 1.5}, r"intensity must lie in \(0, 1\]"),
        ({"name": "walker-walk", "obs": "state", "preset": "easy"}, "needs obs='pixels'"),
        ({"name": "HalfCheetah-v5", "preset": "easy"}, "applies to DeepMind Control tasks"),
        ({"name": "HalfCheetah-v5", "obs": "pixels"}, "gymnasium id, whose observations are"),
        ({"name": "HalfCheetah-v5", "noise_fraction": 1.0}, "noise_fraction"),
        ({"name": "walker-walk", "preset": "video_easy", "videos": "/no/such/dir"}, "/no/such/dir"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, match: str) -> None:
    """Unknown names, out-of-range values and missing video folders fail at construction."""
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        envs.make_env(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", envs.REGISTERED_IDS)
def test_every_registered_id_passes_both_checkers(env_id: str) -> None:
    """The full sweep: every id builds, steps, and passes gymnasium's and SB3's checkers."""
    env = gym.make(env_id)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    gym_check_env(env.unwrapped if "Noisy" not in env_id else env, skip_render_check=True)
    sb3_check_env(env)


def test_dmc_observations_default_to_state_unless_distracted() -> None:
    """``make_env("walker-walk")`` is the state task; asking for a distraction gives pixels."""
    state = envs.make_env("walker-walk")
    assert len(state.observation_space.shape) == 1
    pixels = envs.make_env("walker-walk", preset="easy", size=32)
    assert pixels.observation_space.dtype == np.uint8 and len(pixels.observation_space.shape) == 3
    state.close(), pixels.close()
