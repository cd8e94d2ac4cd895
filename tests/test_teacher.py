"""B-Pref's simulated teacher: each flaw does what the paper says, seeded and validated."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sparse_rl.agents.pbrl.teacher import SimulatedTeacher, bpref_margin, preference_probability


def random_pairs(n: int = 64, steps: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, steps)), rng.random((n, steps))


def test_rational_teacher_prefers_the_higher_return() -> None:
    r0, r1 = random_pairs()
    answer = SimulatedTeacher().label(r0, r1)
    expected = (r1.sum(axis=1) > r0.sum(axis=1)).astype(np.float32)
    assert 0 < expected.sum() < len(expected)  # both answers occur
    np.testing.assert_array_equal(answer.labels, expected)
    np.testing.assert_array_equal(answer.kept, np.arange(len(r0)))
    np.testing.assert_allclose(answer.returns0, r0.sum(axis=1))
    np.testing.assert_allclose(answer.returns1, r1.sum(axis=1))
    assert answer.labels.dtype == np.float32 and not answer.mistakes.any()


def test_myopic_teacher_weighs_the_end_of_the_segment_most() -> None:
    """Segment 0 earns early, segment 1 slightly less but late: only a myopic teacher flips."""
    r0, r1 = np.array([[1.0, 0.0]]), np.array([[0.0, 0.9]])
    assert SimulatedTeacher(gamma=1.0).label(r0, r1).labels[0] == 0.0
    # gamma=0.5: the first step weighs 0.5, the last 1, so 0.5 < 0.9.
    assert SimulatedTeacher(gamma=0.5).label(r0, r1).labels[0] == 1.0


def test_eps_mistake_one_flips_every_label() -> None:
    r0, r1 = random_pairs()
    honest = SimulatedTeacher().label(r0, r1)
    wrong = SimulatedTeacher(eps_mistake=1.0, seed=0).label(r0, r1)
    np.testing.assert_array_equal(wrong.labels, 1.0 - honest.labels)
    assert wrong.mistakes.all()


def test_eps_mistake_rate_is_about_right() -> None:
    r0, r1 = random_pairs(n=4000)
    answer = SimulatedTeacher(eps_mistake=0.2, seed=1).label(r0, r1)
    honest = (r1.sum(axis=1) > r0.sum(axis=1)).astype(np.float32)
    np.testing.assert_array_equal(answer.mistakes, answer.labels != honest)
    assert abs(answer.mistakes.mean() - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 4000)


def test_eps_skip_skips_pairs_where_both_segments_are_bad() -> None:
    returns0 = np.array([1.0, 6.0, 2.0, 0.0])
    returns1 = np.array([2.0, 1.0, 7.0, 4.9])
    teacher = SimulatedTeacher(eps_skip=0.5, margin=10.0)  # skip when max(R0, R1) < 5
    answer = teacher.label(returns0[:, None], returns1[:, None])
    np.testing.assert_array_equal(answer.kept, [1, 2])
    np.testing.assert_array_equal(answer.labels, [0.0, 1.0])
    assert answer.returns0.shape == (4,) and answer.mistakes.shape == (2,)


def test_batch_margin_is_the_mean_absolute_segment_return() -> None:
    returns0, returns1 = np.array([1.0, -3.0]), np.array([2.0, 10.0])
    answer = SimulatedTeacher(eps_skip=0.6).label(returns0[:, None], returns1[:, None])
    assert answer.margin == pytest.approx(4.0)  # (1 + 3 + 2 + 10) / 4
    np.testing.assert_array_equal(answer.kept, [1])  # pair 0: max 2 < 0.6 * 4


def test_eps_equal_labels_near_ties_half_and_overrides_mistakes() -> None:
    returns0 = np.array([5.0, 5.0, 5.0])
    returns1 = np.array([5.4, 8.0, 2.0])
    teacher = SimulatedTeacher(eps_equal=0.1, eps_mistake=1.0, margin=5.0, seed=0)  # tie < 0.5
    answer = teacher.label(returns0[:, None], returns1[:, None])
    np.testing.assert_array_equal(answer.labels, [0.5, 0.0, 1.0])  # the others are flipped
    np.testing.assert_array_equal(answer.mistakes, [False, True, True])


def test_huge_beta_is_rational() -> None:
    r0, r1 = random_pairs(n=256)
    rational = SimulatedTeacher().label(r0, r1).labels
    boltzmann = SimulatedTeacher(beta=1e9, seed=3).label(r0, r1).labels
    np.testing.assert_array_equal(boltzmann, rational)


def test_boltzmann_frequencies_match_the_sigmoid() -> None:
    gaps = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    repeats = 4000
    r1 = np.repeat(gaps, repeats)[:, None]
    answer = SimulatedTeacher(beta=1.0, seed=7).label(np.zeros_like(r1), r1)
    frequencies = answer.labels.reshape(len(gaps), repeats).mean(axis=1)
    expected = 1.0 / (1.0 + np.exp(-gaps))
    tolerance = 4 * np.sqrt(expected * (1 - expected) / repeats)  # 4 standard errors
    assert np.all(np.abs(frequencies - expected) < tolerance), (frequencies, expected)


def test_beta_scales_the_temperature() -> None:
    """A gap of 1 at beta=2 is labelled like a gap of 2 at beta=1."""
    r1 = np.full((8000, 1), 1.0)
    frequency = SimulatedTeacher(beta=2.0, seed=2).label(np.zeros_like(r1), r1).labels.mean()
    expected = 1.0 / (1.0 + math.exp(-2.0))
    assert abs(frequency - expected) < 4 * math.sqrt(expected * (1 - expected) / 8000)


def test_preference_probability_is_stable() -> None:
    p = preference_probability(np.zeros(3), np.array([-1e6, 0.0, 1e6]), beta=1e9)
    np.testing.assert_array_equal(p, [0.0, 0.5, 1.0])


def test_same_seed_same_answers_and_state_resumes_the_stream() -> None:
    r0, r1 = random_pairs(n=200)
    settings = dict(beta=2.0, eps_mistake=0.3, eps_equal=0.05, seed=11)
    a, b = SimulatedTeacher(**settings), SimulatedTeacher(**settings)
    first_a, first_b = a.label(r0, r1), b.label(r0, r1)
    np.testing.assert_array_equal(first_a.labels, first_b.labels)
    np.testing.assert_array_equal(first_a.mistakes, first_b.mistakes)
    other = SimulatedTeacher(**{**settings, "seed": 12}).label(r0, r1)
    assert not np.array_equal(other.labels, first_a.labels)

    resumed = SimulatedTeacher(**{**settings, "seed": 0})
    resumed.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(resumed.label(r0, r1).labels, a.label(r0, r1).labels)


def test_bpref_margin_sets_a_fixed_margin() -> None:
    margin = bpref_margin([100.0, 300.0], segment_length=50, episode_length=1000)
    assert margin == pytest.approx(10.0)
    teacher = SimulatedTeacher(eps_equal=0.1)
    teacher.set_margin(margin)
    answer = teacher.label(np.array([[3.0]]), np.array([[3.9]]))
    assert answer.margin == 10.0 and answer.labels[0] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"gamma": 0.0}, ValueError, r"gamma must be in \(0, 1\]"),
        ({"gamma": 1.5}, ValueError, r"gamma must be in \(0, 1\]"),
        ({"eps_mistake": -0.1}, ValueError, r"eps_mistake must be in \[0, 1\]"),
        ({"eps_skip": 1.1}, ValueError, r"eps_skip must be in \[0, 1\]"),
        ({"eps_equal": math.nan}, ValueError, r"eps_equal must be finite"),
        ({"beta": math.inf}, ValueError, r"beta must be finite"),
        ({"beta": "rational"}, TypeError, r"beta must be a number"),
        ({"eps_mistake": True}, TypeError, r"eps_mistake must be a number"),
        ({"margin": "episode"}, ValueError, r"margin='episode' is not valid.*\['batch'\]"),
        ({"margin": -1.0}, ValueError, r"margin must be >= 0"),
        ({"seed": 1.5}, ValueError, r"seed must be an integer"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SimulatedTeacher(**kwargs)


@pytest.mark.parametrize(
    ("r0", "r1", "match"),
    [
        (np.zeros(5), np.zeros(5), r"rewards0 must be a non-empty \(N queries, T steps\)"),
        (np.zeros((2, 5)), np.zeros((2, 4)), r"same \(N, T\) shape"),
        (np.zeros((0, 5)), np.zeros((0, 5)), r"non-empty"),
        (np.zeros((2, 5)), np.full((2, 5), np.nan), r"rewards1 holds non-finite"),
    ],
)
def test_bad_rewards_are_refused(r0: np.ndarray, r1: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulatedTeacher().label(r0, r1)
