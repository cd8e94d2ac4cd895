"""The noisy-feature wrapper: sizes, pass-through, noise statistics, seeding, permutation,
env checkers on MuJoCo and bad input."""

from __future__ import annotations

import copy
import math
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from sparse_rl.envs.noisy_features import (
    NOISE_KINDS,
    NoisyFeatures,
    noisy_observation_size,
)
from stable_baselines3.common.env_checker import check_env as sb3_check_env


class ToyEnv(gym.Env[np.ndarray, np.ndarray]):
    """Feature ``k`` lives in ``[10k, 10k + 1)``, so a value tells which feature it came from.

    Seeded through ``reset(seed=...)``; episodes are truncated after ``horizon`` steps; the
    action shifts nothing (the observation is random), which keeps the tests about the wrapper.
    """

    def __init__(self, num_real: int = 5, horizon: int = 50) -> None:
        self.num_real, self.horizon = num_real, horizon
        offsets = 10.0 * np.arange(num_real)
        self.observation_space = spaces.Box(offsets, offsets + 1.0, dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.last: np.ndarray = offsets

    def _observe(self) -> np.ndarray:
        self.last = 10.0 * np.arange(self.num_real) + 0.999 * self.np_random.random(self.num_real)
        return self.last

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._observe(), 0.0, False, self.t >= self.horizon, {}


def rollout(env: gym.Env, steps: int, seed: int | None = 0) -> list[np.ndarray]:
    """Observations of ``steps`` steps after ``reset(seed)``; unseeded resets at episode ends."""
    obs, _ = env.reset(seed=seed)
    out = [obs]
    action = np.zeros(env.action_space.shape, env.action_space.dtype)
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(action)
        out.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
            out.append(obs)
    return out


def noisy(num_real: int = 5, noise_fraction: float = 0.9, **kwargs: Any) -> NoisyFeatures:
    return NoisyFeatures(ToyEnv(num_real), noise_fraction, **kwargs)


# -- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_real", "noise_fraction", "expected"),
    [(17, 0.9, 170), (17, 0.0, 17), (17, 0.8, 85), (17, 0.95, 340), (17, 0.98, 850),
     (17, 0.99, 1700), (11, 0.9, 110), (1, 0.5, 2), (3, 0.1, 3)],
)  # fmt: skip
def test_sizes(num_real: int, noise_fraction: float, expected: int) -> None:
    assert noisy_observation_size(num_real, noise_fraction) == expected
    env = noisy(num_real, noise_fraction)
    assert env.observation_space.shape == (expected,)
    assert env.observation_space.dtype == np.float32
    assert (env.num_real, env.num_noise, env.num_features) == (
        num_real,
        expected - num_real,
        expected,
    )
    obs, _ = env.reset(seed=0)
    assert obs.shape == (expected,) and obs.dtype == np.float32
    obs = env.step(env.action_space.sample())[0]
    assert obs.shape == (expected,) and obs.dtype == np.float32


# -- real features pass through --------------------------------------------------------------


@pytest.mark.parametrize("noise", NOISE_KINDS)
@pytest.mark.parametrize("permute", [False, True])
def test_real_features_pass_through(noise: str, permute: bool) -> None:
    env = noisy(noise=noise, permute=permute, repermute_every=7 if permute else None)
    inner = env.unwrapped
    assert isinstance(inner, ToyEnv)
    obs, _ = env.reset(seed=3)
    for step in range(60):
        np.testing.assert_array_equal(obs[env.real_indices], inner.last.astype(np.float32))
        assert obs in env.observation_space
        obs, *_ = env.step(env.action_space.sample())
        if step == 30:
            env.reset()
            obs = env.observation(inner.last)  # also through the public method
    if not permute:
        np.testing.assert_array_equal(env.real_indices, np.arange(5))
        np.testing.assert_array_equal(env.noise_indices, np.arange(5, 50))
    together = np.sort(np.concatenate([env.real_indices, env.noise_indices]))
    np.testing.assert_array_equal(together, np.arange(50))


def test_indices_are_read_only_and_reachable_through_wrappers() -> None:
    env = gym.wrappers.RecordEpisodeStatistics(noisy(permute=True))
    env.reset(seed=0)
    real = env.get_wrapper_attr("real_indices")
    assert real.shape == (5,)
    with pytest.raises(ValueError, match="read-only"):
        real[0] = 0


def test_returned_observations_are_not_reused() -> None:
    """Observations assembled in a block buffer must still be fresh arrays (replay buffers and
    preference segments keep them) after the block has been refilled."""
    env = noisy(noise_fraction=0.95)
    observations = rollout(env, 700)
    snapshots = [obs.copy() for obs in observations]
    more = rollout(env, 700, seed=None)
    for obs, snapshot in zip(observations, snapshots, strict=True):
        np.testing.assert_array_equal(obs, snapshot)
    assert not np.shares_memory(more[0], more[1])


@pytest.mark.parametrize("noise", NOISE_KINDS)
def test_copies_continue_identically(noise: str) -> None:
    """A deep copy (or a pickled and restored env) continues exactly like the original."""
    env = noisy(noise=noise, permute=True, repermute_every=40)
    rollout(env, 300)  # mid-block, reservoir partly filled
    twins = [copy.deepcopy(env), pickle.loads(pickle.dumps(env))]
    action = np.zeros(1, np.float32)
    for _ in range(600):  # crosses block refills, re-permutations and episode ends
        obs, *_, truncated, _ = env.step(action)
        for twin in twins:
            twin_obs, *_ = twin.step(action)
            np.testing.assert_array_equal(twin_obs, obs)
            if truncated:
                twin.reset()
        if truncated:
            env.reset()


# -- noise statistics ------------------------------------------------------------------------


def _noise(env: NoisyFeatures, steps: int, seed: int = 0) -> np.ndarray:
    return np.stack(rollout(env, steps, seed))[:, env.noise_indices].astype(np.float64)


@pytest.mark.parametrize("sigma", [1.0, 4.0])
def test_gaussian_statistics(sigma: float) -> None:
    env = noisy(noise_fraction=0.99, noise_scale=sigma)  # 495 noise features
    assert np.all(np.isneginf(env.observation_space.low[env.noise_indices]))
    assert np.all(np.isposinf(env.observation_space.high[env.noise_indices]))
    z = _noise(env, 1000) / sigma  # ~500k values
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(np.abs(z) < 1.0) - 0.6827) < 0.005
    assert abs(np.mean(np.abs(z) < 2.0) - 0.9545) < 0.003
    assert abs(np.mean(z**4) - 3.0) < 0.06  # kurtosis of a normal
    # Independent across features and time, including the Box-Muller partners (half a block on).
    flat = z.reshape(-1)
    for lag in (1, z.shape[1], 128 * z.shape[1]):
        assert abs(np.corrcoef(flat[:-lag], flat[lag:])[0, 1]) < 0.01
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.1


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_uniform_statistics_and_bounds(sigma: float) -> None:
    env = noisy(noise_fraction=0.98, noise="uniform", noise_scale=sigma)
    bound = np.float32(math.sqrt(3.0) * sigma)
    np.testing.assert_array_equal(env.observation_space.low[env.noise_indices], -bound)
    np.testing.assert_array_equal(env.observation_space.high[env.noise_indices], bound)
    u = _noise(env, 600)
    assert u.min() >= -bound and u.max() <= bound
    assert u.min() < -0.99 * bound and u.max() > 0.99 * bound
    assert abs(u.mean()) < 0.01 * sigma
    assert abs(u.std() - sigma) < 0.01 * sigma


def test_empirical_noise_copies_earlier_values_of_one_real_feature() -> None:
    """Each noise column shadows one real feature (its values come from that feature's range),
    shadows are spread evenly, and every value is one the feature had at an earlier step."""
    env = noisy(5, 0.9, noise="empirical", reservoir_size=20)  # 45 noise features, 9 per feature
    observations = np.stack(rollout(env, 600))
    real, fake = observations[:, env.real_indices], observations[:, env.noise_indices]
    lo, hi = real.min(), real.max()
    assert fake.min() >= lo and fake.max() <= hi
    sources = np.floor(fake / 10.0).astype(int)
    assert np.all(sources == sources[0])  # one source per column, for the whole run
    np.testing.assert_array_equal(np.bincount(sources[0], minlength=5), [9] * 5)
    # The first observation has no history: it copies itself. Later ones copy strictly earlier
    # ones; with a 20-row reservoir over 600+ steps, most copies are far from the current step.
    np.testing.assert_array_equal(fake[0], real[0, sources[0]])
    ages = []
    for t in range(1, len(observations)):
        for j in range(0, 45, 4):
            earlier = np.flatnonzero(real[:t, sources[0, j]] == fake[t, j])
            assert earlier.size, f"step {t}, noise feature {j}: value never seen before"
            ages.append(t - earlier.max())
    assert np.median(ages) > 10
    assert np.mean(fake[1:] == real[1:, sources[0]]) < 0.01  # not the current values


def test_empirical_marginals_match_the_real_features() -> None:
    env = noisy(5, 0.9, noise="empirical", reservoir_size=1000)
    observations = np.stack(rollout(env, 1500))[300:]
    real, fake = observations[:, env.real_indices], observations[:, env.noise_indices]
    sources = np.floor(fake[0] / 10.0).astype(int)
    # Same per-feature mean and spread as the feature each noise column shadows.
    np.testing.assert_allclose(fake.mean(0), real.mean(0)[sources], atol=0.05)
    np.testing.assert_allclose(fake.std(0), real.std(0)[sources], atol=0.05)


# -- seeding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", NOISE_KINDS)
def test_same_seed_same_observations_different_seed_different_noise(noise: str) -> None:
    def run(seed: int) -> np.ndarray:
        env = noisy(noise=noise, permute=True, repermute_every=33)
        return np.stack(rollout(env, 120, seed))  # crosses unseeded resets at episode ends

    np.testing.assert_array_equal(run(7), run(7))
    a, b = run(7), run(8)
    assert not np.array_equal(a[:, 5:], b[:, 5:])


def test_seeded_reset_restarts_the_stream_and_unseeded_reset_continues_it() -> None:
    env = noisy()
    first = rollout(env, 20, seed=1)
    again = rollout(env, 20, seed=1)
    continued = rollout(env, 20, seed=None)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(first[0][5:], continued[0][5:])


def test_noise_stream_is_not_the_envs_stream() -> None:
    """gymnasium seeds the env's generator from ``SeedSequence(seed)``; a wrapper generator
    seeded the same way would replay the env's random bits as noise."""
    env = noisy(1, 0.5, noise="uniform")
    noise = [obs[1] for obs in rollout(env, 4, seed=0)]
    bound = math.sqrt(3.0)
    same_stream = np.random.default_rng(0).random(5, dtype=np.float32) * 2 * bound - bound
    assert not np.allclose(noise, same_stream, atol=1e-4)


def test_seeded_on_mujoco() -> None:
    def run(seed: int) -> np.ndarray:
        env = NoisyFeatures(gym.make("HalfCheetah-v5"), 0.9, permute=True)
        env.action_space.seed(0)
        obs, _ = env.reset(seed=seed)
        out = [obs] + [env.step(env.action_space.sample())[0] for _ in range(20)]
        env.close()
        return np.stack(out)

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


# -- permutation -----------------------------------------------------------------------------


def test_fixed_permutation() -> None:
    env = noisy(5, 0.9, permute=True)
    env.reset(seed=0)
    real = env.real_indices.copy()
    assert not np.array_equal(real, np.arange(5))
    rollout(env, 200, seed=None)  # steps and unseeded resets keep it
    np.testing.assert_array_equal(env.real_indices, real)
    env.reset(seed=0)
    np.testing.assert_array_equal(env.real_indices, real)
    env.reset(seed=1)
    assert not np.array_equal(env.real_indices, real)


def test_permuted_bounds_are_the_union() -> None:
    env = noisy(5, 0.9, noise="uniform", permute=True)
    bound = np.float32(math.sqrt(3.0))
    np.testing.assert_array_equal(env.observation_space.low, -bound)
    np.testing.assert_array_equal(env.observation_space.high, 41.0)
    assert all(obs in env.observation_space for obs in rollout(env, 100))


def test_repermutation_every_n_steps() -> None:
    every = 10
    env = noisy(5, 0.9, permute=True, repermute_every=every)
    inner = env.unwrapped
    assert isinstance(inner, ToyEnv)
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["real_indices"], env.real_indices)
    history = [env.real_indices]
    for step in range(1, 95):  # crosses episode ends (50 steps): the count spans episodes
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        changed = step % every == 0
        assert ("real_indices" in info) == changed
        if changed:
            np.testing.assert_array_equal(info["real_indices"], env.real_indices)
            assert not np.array_equal(env.real_indices, history[-1])
            history.append(env.real_indices)
        else:
            assert env.real_indices is history[-1]
        np.testing.assert_array_equal(obs[env.real_indices], inner.last.astype(np.float32))
        if terminated or truncated:
            env.reset()
    assert len(history) == 1 + 94 // every


# -- env checkers on MuJoCo ------------------------------------------------------------------

CHECKED = [
    {"noise": "gaussian"},
    {"noise": "uniform", "noise_scale": 2.0},
    {"noise": "empirical", "permute": True, "repermute_every": 3},
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
@pytest.mark.parametrize("kwargs", CHECKED, ids=lambda kw: kw["noise"])
def test_env_checkers(env_id: str, kwargs: dict[str, Any]) -> None:
    """Both checkers, on the wrapped env. The render check is skipped: MuJoCo's "human" mode
    needs a display (rgb_array rendering passes straight through the wrapper)."""
    env = NoisyFeatures(gym.make(env_id), 0.9, **kwargs)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env)
    env.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_registered_noisy_id_matches_make_env() -> None:
    """The registered id, its spec rebuilt, and make_env give the same seeded observations."""
    from sparse_rl import envs

    env = gym.make("sparse_rl/NoisyHopper-v5", noise="uniform", permute=True)
    assert env.observation_space.shape == (110,)
    assert env.get_wrapper_attr("noise") == "uniform"
    assert env.get_wrapper_attr("permute") is True
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env)
    rebuilt = env.spec.make() if env.spec is not None else None
    assert rebuilt is not None
    direct = envs.make_env("Hopper-v5", noise_fraction=0.9, noise="uniform", permute=True)
    first = env.reset(seed=4)[0]
    np.testing.assert_array_equal(rebuilt.reset(seed=4)[0], first)
    np.testing.assert_array_equal(direct.reset(seed=4)[0], first)
    for each in (env, rebuilt, direct):
        each.close()


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.5"])
def test_bad_noise_fraction(fraction: Any) -> None:
    with pytest.raises(ValueError, match=r"noise_fraction must be a number in \[0, 1\)"):
        noisy(noise_fraction=fraction)
    with pytest.raises(ValueError, match=r"noise_fraction must be a number in \[0, 1\)"):
        noisy_observation_size(17, fraction)


def test_unknown_noise_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown noise 'pink'; valid: 'gaussian', 'uniform', 'empirical'"
    ):
        noisy(noise="pink")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_scale": 0.0}, "noise_scale must be a finite number > 0"),
        ({"noise_scale": -1.0}, "noise_scale must be a finite number > 0"),
        ({"noise_scale": float("nan")}, "noise_scale must be a finite number > 0"),
        ({"noise_scale": float("inf")}, "noise_scale must be a finite number > 0"),
        ({"noise": "empirical", "noise_scale": 2.0}, "does not apply to empirical noise"),
        ({"repermute_every": 10}, "repermute_every needs permute=True"),
        ({"permute": True, "repermute_every": 0}, "repermute_every must be an integer >= 1"),
        ({"permute": True, "repermute_every": 2.5}, "repermute_every must be an integer >= 1"),
        ({"reservoir_size": 0}, "reservoir_size must be an integer >= 1"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        noisy(**kwargs)


@pytest.mark.parametrize(
    "space",
    [spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2, 3)), spaces.Box(-1.0, 1.0, (0,))],
    ids=["discrete", "2-d", "empty"],
)
def test_needs_a_1d_box(space: spaces.Space) -> None:
    env = ToyEnv()
    env.observation_space = space  # type: ignore[assignment]
    with pytest.raises(ValueError, match="needs a non-empty 1-D Box observation space"):
        NoisyFeatures(env, 0.9)
