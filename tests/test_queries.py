"""Segments stay inside one episode and one pass of the ring; queries and sessions obey rules."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from sparse_rl.agents.pbrl.queries import (
    QUERY_METHODS,
    FeedbackSchedule,
    SegmentIndices,
    candidate_count,
    gather_segments,
    query_scores,
    sample_buffer_segments,
    sample_segments,
    select_queries,
)
from stable_baselines3.common.buffers import ReplayBuffer


def ring(
    total: int, buffer_size: int, n_envs: int, done_rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Write ``total`` steps into a ring as SB3 does; return (time written, dones, pos, full)."""
    rng = np.random.default_rng(seed)
    stamps = np.full((buffer_size, n_envs), -1, dtype=np.int64)
    dones = np.zeros((buffer_size, n_envs), dtype=np.float32)
    for t in range(total):
        stamps[t % buffer_size] = t
        dones[t % buffer_size] = rng.random(n_envs) < done_rate
    return stamps, dones, total % buffer_size, total >= buffer_size


def brute_force_windows(
    stamps: np.ndarray, dones: np.ndarray, pos: int, full: bool, length: int
) -> set[tuple[int, int]]:
    """Every (first row, env) whose window is consecutive in time and has no inner episode end."""
    buffer_size, n_envs = dones.shape
    windows = set()
    for row in range(buffer_size):
        for env in range(n_envs):
            rows = [(row + i) % buffer_size for i in range(length)]
            times = [stamps[r, env] for r in rows]
            if min(times) < 0 or times != list(range(times[0], times[0] + length)):
                continue
            if full and pos in rows:  # the oldest row is never used
                continue
            if any(dones[r, env] for r in rows[:-1]):
                continue
            windows.add((row, env))
    return windows


@pytest.mark.parametrize(
    ("total", "buffer_size", "length", "seed"),
    [(37, 40, 5, 0), (40, 40, 5, 1), (97, 40, 6, 2), (133, 40, 4, 3), (81, 40, 1, 4)],
)
def test_segments_are_exactly_the_windows_inside_one_episode_and_one_pass(
    total: int, buffer_size: int, length: int, seed: int
) -> None:
    stamps, dones, pos, full = ring(total, buffer_size, n_envs=3, done_rate=0.12, seed=seed)
    expected = brute_force_windows(stamps, dones, pos, full, length)
    everything = sample_segments(
        dones, length, len(expected), seed, pos=pos, full=full, replace=False
    )
    got = {(int(b[0]), int(e[0])) for b, e in zip(everything.buffer, everything.env, strict=True)}
    assert got == expected
    with pytest.raises(ValueError, match="distinct windows"):
        sample_segments(dones, length, len(expected) + 1, seed, pos=pos, full=full, replace=False)

    drawn = sample_segments(dones, length, 500, seed, pos=pos, full=full)
    assert drawn.buffer.shape == drawn.env.shape == (500, length)
    times = stamps[drawn]
    np.testing.assert_array_equal(np.diff(times, axis=1), 1)  # consecutive: pos never crossed
    assert not dones[drawn][:, :-1].any()  # an episode may only end on the last step
    assert np.all(drawn.env == drawn.env[:, :1])


def test_timeouts_are_episode_ends_too() -> None:
    dones = np.zeros((10, 1))
    timeouts = np.zeros((10, 1))
    timeouts[4] = 1
    segments = sample_segments(dones, 5, 50, 0, pos=0, full=True, timeouts=timeouts)
    assert not timeouts[segments][:, :-1].any()


def test_no_window_yet_is_a_clear_error() -> None:
    dones = np.zeros((100, 2))
    dones[[3, 8], 0] = 1
    dones[[5], 1] = 1
    with pytest.raises(
        ValueError, match=r"no segment of length=50 fits yet.*longest .* is 6 steps"
    ):
        sample_segments(dones, 50, 4, 0, pos=10, full=False)
    with pytest.raises(ValueError, match="no segment"):
        sample_segments(dones, 1, 4, 0, pos=0, full=False)  # empty buffer


def test_bad_segment_arguments() -> None:
    dones = np.zeros((10, 1))
    with pytest.raises(ValueError, match=r"pos must be in \[0, buffer_size=10\)"):
        sample_segments(dones, 2, 1, 0, pos=10, full=False)
    with pytest.raises(ValueError, match=r"dones must be a non-empty \(buffer_size, n_envs\)"):
        sample_segments(np.zeros(10), 2, 1, 0, pos=0, full=False)
    with pytest.raises(ValueError, match="length must be an integer >= 1"):
        sample_segments(dones, 0, 1, 0, pos=5, full=False)


def test_sb3_replay_buffer_round_trip() -> None:
    """Sample from a real SB3 buffer and gather rewards that match what was added."""
    buffer = ReplayBuffer(
        30, spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), device="cpu", n_envs=2
    )
    for t in range(45):
        done = np.array([t % 7 == 6, t % 11 == 10])
        reward = np.array([t, 1000 + t], dtype=np.float32)
        obs = np.full((2, 3), t, dtype=np.float32)
        buffer.add(obs, obs + 1, np.zeros((2, 2)), reward, done, [{}, {}])
    indices = sample_buffer_segments(buffer, 5, 64, rng=0)
    segments = gather_segments(indices, buffer.observations, buffer.actions, buffer.rewards)
    assert segments.observations.shape == (64, 5, 3)
    assert segments.actions.shape == (64, 5, 2) and segments.rewards.shape == (64, 5)
    times = segments.rewards - 1000 * indices.env
    np.testing.assert_array_equal(np.diff(times, axis=1), 1)
    assert times.min() >= 45 - 29  # the oldest row (pos) and older steps are gone
    np.testing.assert_array_equal(segments.observations[..., 0], times)


def test_gather_dict_observations() -> None:
    indices = SegmentIndices(np.array([[0, 1]]), np.array([[1, 1]]))
    observations = {"pixels": np.arange(12).reshape(3, 2, 2), "state": np.arange(6).reshape(3, 2)}
    segments = gather_segments(indices, observations, np.zeros((3, 2, 1)), np.ones((3, 2)))
    np.testing.assert_array_equal(segments.observations["state"], [[1, 3]])
    assert segments.observations["pixels"].shape == (1, 2, 2)


def test_disagreement_picks_the_largest_ensemble_std() -> None:
    probs = np.random.default_rng(0).random((3, 200))
    chosen = select_queries("disagreement", 200, 20, probs)
    std = np.array([np.std(probs[:, i]) for i in range(200)])
    assert set(chosen) == set(np.argsort(std)[-20:])
    assert np.all(np.diff(std[chosen]) <= 0)  # best first


def test_entropy_picks_the_mean_probability_closest_to_half() -> None:
    probs = np.random.default_rng(1).random((3, 200))
    chosen = select_queries("entropy", 200, 20, probs)
    closeness = np.abs(probs.mean(axis=0) - 0.5)  # Bernoulli entropy peaks at 1/2
    assert set(chosen) == set(np.argsort(closeness)[:20])


def test_scores_by_hand() -> None:
    probs = np.array([[0.0, 0.5, 0.9], [1.0, 0.5, 0.9]])
    np.testing.assert_allclose(query_scores("disagreement", probs), [0.5, 0.0, 0.0])
    np.testing.assert_allclose(
        query_scores("entropy", probs),
        [np.log(2), np.log(2), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))],
    )
    np.testing.assert_array_equal(select_queries("disagreement", 3, 1, probs), [0])
    np.testing.assert_array_equal(select_queries("entropy", 3, 2, probs), [0, 1])  # ties: low index


def test_uniform_is_distinct_seeded_and_needs_no_model() -> None:
    chosen = select_queries("uniform", 100, 30, rng=5)
    assert len(set(chosen)) == 30 and chosen.min() >= 0 and chosen.max() < 100
    np.testing.assert_array_equal(chosen, select_queries("uniform", 100, 30, rng=5))
    assert candidate_count("uniform", 30) == 30
    assert candidate_count("entropy", 30) == 300
    assert candidate_count("disagreement", 30, candidate_multiplier=4) == 120


def test_bad_query_arguments() -> None:
    with pytest.raises(
        ValueError,
        match=r"method: 'variance' is not valid.*"
        + str(list(QUERY_METHODS)).replace("[", r"\[").replace("]", r"\]"),
    ):
        select_queries("variance", 10, 2, np.zeros((3, 10)))
    with pytest.raises(ValueError, match="needs ensemble_probabilities"):
        select_queries("entropy", 10, 2)
    with pytest.raises(ValueError, match="expected candidates=10"):
        select_queries("entropy", 10, 2, np.zeros((3, 9)))
    with pytest.raises(ValueError, match="count=11 queries cannot be chosen from 10"):
        select_queries("uniform", 10, 11)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        select_queries("entropy", 2, 1, np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match=">= 2 members"):
        select_queries("disagreement", 2, 1, np.array([[0.5, 0.6]]))


def test_schedule_sessions_and_budget() -> None:
    schedule = FeedbackSchedule(labels_per_session=40, every=1000, budget=100, first_step=500)
    asked_at = {}
    for step in range(0, 10_000, 4):  # 4 vectorized envs
        n = schedule.due(step)
        assert schedule.due(step) == n  # asking changes nothing
        if n:
            asked_at[step] = n
            schedule.record(step, n)
    assert asked_at == {500: 40, 1500: 40, 2500: 20}
    assert schedule.labels_given == schedule.budget and schedule.remaining == 0
    assert schedule.sessions == 3


def test_schedule_catches_grid_points_it_steps_over() -> None:
    schedule = FeedbackSchedule(labels_per_session=5, every=10, budget=1000, first_step=3)
    held = []
    for step in range(0, 60, 7):
        if schedule.due(step):
            held.append(step)
            schedule.record(step, schedule.due(step))
    assert held == [7, 14, 28, 35, 49, 56]  # grid 3, 13, 23, ...; one session per grid point


def test_schedule_never_exceeds_the_budget_when_recording_by_hand() -> None:
    schedule = FeedbackSchedule(labels_per_session=10, every=1, budget=15)
    schedule.record(0, 10)
    assert schedule.due(1) == 5
    with pytest.raises(ValueError, match="exceeds the remaining budget 5"):
        schedule.record(1, 6)


def test_schedule_state_round_trips() -> None:
    settings = dict(labels_per_session=10, every=100, budget=35, first_step=50)
    schedule = FeedbackSchedule(**settings)
    schedule.record(50, 10)
    schedule.record(160, 10)
    resumed = FeedbackSchedule(**settings)
    resumed.load_state_dict(schedule.state_dict())
    assert resumed == schedule
    assert [resumed.due(s) for s in (200, 250, 251)] == [0, 10, 10]
    resumed.record(250, 10)
    assert resumed.due(350) == 5
    with pytest.raises(KeyError, match="must have keys"):
        resumed.load_state_dict({"labels_given": 3})
    with pytest.raises(ValueError, match="exceeds budget=35"):
        resumed.load_state_dict({"labels_given": 36, "sessions": 1, "next_step": 0})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels_per_session": 0}, ValueError, "labels_per_session must be an integer >= 1"),
        ({"every": 0}, ValueError, "every must be an integer >= 1"),
        ({"budget": -1}, ValueError, "budget must be an integer >= 0"),
        ({"first_step": -5}, ValueError, "first_step must be an integer >= 0"),
        ({"every": 2.5}, ValueError, "every must be an integer"),
        ({"budget": True}, ValueError, "budget must be an integer"),
    ],
)
def test_bad_schedule_values(kwargs: dict, error: type, match: str) -> None:
    settings = dict(labels_per_session=10, every=100, budget=100) | kwargs
    with pytest.raises(error, match=match):
        FeedbackSchedule(**settings)
