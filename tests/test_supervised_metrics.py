"""The shared metrics against values worked out by hand, on numpy and torch inputs alike."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from sparse_rl.supervised import metrics

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
LABELS = np.array([0, 2, 2, 1])  # argmax 0, 1, 2, 0: right, wrong, right, wrong


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_metrics_match_hand_computed_values(kind: str) -> None:
    probs, labels = PROBS, LABELS
    if kind == "torch":
        probs, labels = torch.tensor(PROBS, dtype=torch.float32), torch.tensor(LABELS)
    assert metrics.accuracy(probs, labels) == 0.5
    expected_nll = -(math.log(0.7) + math.log(0.3) + 2 * math.log(0.4)) / 4
    assert metrics.nll(probs, labels) == pytest.approx(expected_nll, rel=1e-6)
    # (0.09+0.04+0.01) + (0.01+0.36+0.49) + (0.09+0.09+0.36) + (0.25+0.36+0.01) = 2.16, over 4
    assert metrics.brier(probs, labels) == pytest.approx(0.54, rel=1e-6)
    # two bins (0, .5], (.5, 1]: {.4 right, .5 wrong} and {.7 right, .6 wrong}
    assert metrics.ece(probs, labels, n_bins=2) == pytest.approx((2 * 0.05 + 2 * 0.15) / 4)
    # 15 bins: every confidence alone in its bin, so ECE = mean |correct - confidence|
    assert metrics.ece(probs, labels) == pytest.approx((0.3 + 0.6 + 0.6 + 0.5) / 4)


def test_accuracy_takes_logits_and_ece_is_zero_when_calibrated() -> None:
    assert metrics.accuracy(np.log(PROBS) + 3.0, LABELS) == 0.5
    probs = np.tile([0.75, 0.25], (4, 1))  # confidence 0.75, three of four right
    assert metrics.ece(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert metrics.brier(np.eye(3), np.arange(3)) == 0.0
    assert metrics.nll(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(-math.log(1e-12))


def test_disagreement_is_one_minus_the_share_of_equal_argmax() -> None:
    labels = np.array([[0, 1, 2, 0], [0, 1, 1, 0], [1, 1, 2, 0]])
    matrix = metrics.disagreement_matrix(labels)
    np.testing.assert_allclose(matrix, [[0, 0.25, 0.25], [0.25, 0, 0.5], [0.25, 0.5, 0]])
    assert metrics.disagreement(labels) == pytest.approx(1 / 3)
    scores = torch.nn.functional.one_hot(torch.tensor(labels), 3).float() * 5.0
    assert metrics.disagreement(scores) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.accuracy(PROBS, np.array([0, 1, 3, 0])), "class indices in [0, 2]"),
        (lambda: metrics.nll(PROBS, LABELS[:3]), "labels must have shape (4,)"),
        (lambda: metrics.ece(PROBS[0], LABELS), "probs must have shape (n, classes)"),
        (lambda: metrics.ece(PROBS, LABELS, n_bins=0), "n_bins must be an integer >= 1"),
        (lambda: metrics.disagreement(np.zeros((1, 4))), "at least two members"),
    ],
)
def test_bad_metric_inputs_say_what_is_wrong(call, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
