"""PEBBLE's k-NN state-entropy reward."""

from __future__ import annotations

import pytest
import torch
from sparse_rl.agents.pbrl.state_entropy import StateEntropyReward, knn_distance


def test_knn_distance_matches_brute_force_across_chunks() -> None:
    x, ref = torch.randn(7, 3), torch.randn(50, 3)
    expected = torch.cdist(x, ref).sort(dim=1).values[:, 4]
    torch.testing.assert_close(knn_distance(x, ref, k=5, chunk=8), expected)


def test_knn_distance_skips_the_state_itself() -> None:
    ref = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert knn_distance(ref[:1], ref, k=1).item() == 1.0
    assert knn_distance(ref[:1], ref, k=1, exclude_self=False).item() == 0.0


def test_isolated_states_get_more_reward() -> None:
    cluster = 0.01 * torch.randn(200, 2)
    outlier = torch.tensor([[5.0, 5.0]])
    reward = StateEntropyReward(k=5)
    r = reward(torch.cat([cluster[:3], outlier]), torch.cat([cluster, outlier]))
    assert r[-1] > 10 * r[:3].max()


def test_features_decide_the_space() -> None:
    # Two real dims close together, 50 noise dims far apart: on the real features the states
    # are neighbours, on raw observations they are not.
    obs = torch.cat([0.01 * torch.randn(100, 2), 10 * torch.randn(100, 50)], dim=1)
    raw = StateEntropyReward(k=5)(obs[:10], obs)
    real = StateEntropyReward(features=lambda o: o[:, :2], k=5)(obs[:10], obs)
    assert raw.shape == real.shape == (10,)
    raw_dist = knn_distance(obs[:10], obs)
    real_dist = knn_distance(obs[:10, :2], obs[:, :2])
    assert real_dist.max() < 0.01 * raw_dist.min()


def test_running_normalisation_round_trips() -> None:
    a = StateEntropyReward(k=2)
    a(torch.randn(20, 4), torch.randn(100, 4))
    b = StateEntropyReward(k=2)
    b.load_state_dict(a.state_dict())
    x, ref = torch.randn(5, 4), torch.randn(100, 4)
    torch.testing.assert_close(a(x, ref), b(x, ref))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_distance(torch.zeros(1, 2), torch.zeros(5, 2), k=0)
    with pytest.raises(ValueError, match="at least k=5 reference states"):
        knn_distance(torch.zeros(1, 2), torch.zeros(3, 2), k=5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        StateEntropyReward(k=0)
