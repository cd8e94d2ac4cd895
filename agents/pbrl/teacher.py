"""B-Pref's simulated teacher: labels pairs of segments from their true rewards, with its flaws.

Lee et al. (2021), "B-Pref: Benchmarking Preference-Based Reinforcement Learning", model a human
as a rational (or Boltzmann) chooser who may be myopic, make mistakes, skip queries where both
segments are bad and call near-equal segments a tie. ``SimulatedTeacher`` reproduces the rules of
the reference code (``reward_model.get_label``), in numpy, seeded.

Labels follow the reward model's convention: 1 means segment 1 is preferred (σ1 ≻ σ0), 0 means
segment 0 is, 0.5 means "equally preferable" (the target of the cross-entropy is then 0.5/0.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparse_rl.validation import check_int

#: How the margin that scales ``eps_skip`` and ``eps_equal`` is measured, besides a fixed number.
MARGIN_MODES = ("batch",)


def preference_probability(
    returns0: np.ndarray, returns1: np.ndarray, beta: float = 1.0
) -> np.ndarray:
    """Bradley–Terry P[σ1 ≻ σ0] = sigmoid(beta · (R1 − R0)), without overflow for large gaps.

    Written as ``0.5 · (1 + tanh(x / 2))`` so that ``beta = 1e9`` gives exactly 0 or 1, not NaN.
    Works on any broadcastable shapes, e.g. an ensemble's (members, n) predicted returns.
    """
    gap = np.asarray(returns1, dtype=np.float64) - np.asarray(returns0, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * beta * gap))


def bpref_margin(
    recent_episode_returns: Sequence[float] | np.ndarray, segment_length: int, episode_length: int
) -> float:
    """B-Pref's margin: the mean of recent episode returns, scaled to one segment's share.

    The reference training loop calls this with the last 10 training episodes' true returns before
    every feedback session (``mean(returns) * segment / max_episode_steps``); pass the result to
    ``SimulatedTeacher.set_margin`` to label exactly as B-Pref does.
    """
    returns = np.asarray(recent_episode_returns, dtype=np.float64).reshape(-1)
    if returns.size == 0 or not np.all(np.isfinite(returns)):
        raise ValueError(
            f"recent_episode_returns must be a non-empty sequence of finite numbers, got {returns}."
        )
    check_int("segment_length", segment_length, low=1)
    check_int("episode_length", episode_length, low=1)
    return max(float(returns.mean()) * segment_length / episode_length, 0.0)


@dataclass(frozen=True, eq=False)
class TeacherAnswer:
    """What the teacher said about N queries, kept whole so every label can be audited later.

    :param labels: (M,) float32 in {0, 0.5, 1} for the answered queries (1: σ1 ≻ σ0).
    :param kept: (M,) int64 indices into the N queries that were answered; the others were skipped.
    :param returns0: (N,) undiscounted true return of every segment 0, skipped ones included.
    :param returns1: (N,) undiscounted true return of every segment 1.
    :param mistakes: (M,) bool, True where ``eps_mistake`` flipped the label (never for 0.5).
    :param margin: the margin that ``eps_skip`` and ``eps_equal`` were multiplied with.
    """

    labels: np.ndarray
    kept: np.ndarray
    returns0: np.ndarray
    returns1: np.ndarray
    mistakes: np.ndarray
    margin: float

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class SimulatedTeacher:
    """B-Pref's scripted teacher (defaults: the "oracle", perfectly rational and error-free).

    The rules run in B-Pref's order on each query (R = undiscounted segment return,
    Rγ = gamma-weighted return, margin as below):

    1. skip it if ``eps_skip > 0`` and max(R0, R1) < eps_skip · margin (both segments are bad);
    2. label 1 if Rγ1 > Rγ0 else 0 (ties go to σ0, as in B-Pref); with ``beta > 0`` instead draw
       label 1 with probability sigmoid(beta · (Rγ1 − Rγ0));
    3. flip the label with probability ``eps_mistake``;
    4. label 0.5 if |R0 − R1| < eps_equal · margin (this overrides 2 and 3).

    :param beta: rationality. <= 0 (B-Pref writes -1): always prefer the higher return; > 0:
        Boltzmann, higher is more rational.
    :param gamma: myopia in (0, 1]: step t of a T-step segment weighs gamma**(T-1-t), so the end of
        the segment counts most; 1 weighs all steps equally.
    :param eps_mistake: probability in [0, 1] of flipping each label.
    :param eps_skip: in [0, 1]; queries whose better segment returns less than eps_skip · margin
        are not answered. 0 answers all.
    :param eps_equal: in [0, 1]; queries whose returns differ by less than eps_equal · margin are
        labelled 0.5. 0 never calls a tie.
    :param margin: the scale of "recent segment returns". "batch" (default): the mean absolute
        undiscounted return of the 2N segments given to this ``label`` call, so it needs no state
        and follows the policy as it improves. A number >= 0: a fixed margin, which
        ``set_margin`` updates; ``set_margin(bpref_margin(last_10_returns, T, episode_length))``
        before each session is B-Pref's exact rule. A margin of 0 disables skip and equal.
    :param seed: seeds the teacher's own generator; the same seed gives the same answers.
    """

    beta: float = -1.0
    gamma: float = 1.0
    eps_mistake: float = 0.0
    eps_skip: float = 0.0
    eps_equal: float = 0.0
    margin: float | str = "batch"
    seed: int | None = None
    _rng: np.random.Generator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_number("beta", self.beta, "any finite number (<= 0: perfectly rational)")
        _check_number("gamma", self.gamma, "(0, 1]")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1] (1 = not myopic), got {self.gamma!r}.")
        for name in ("eps_mistake", "eps_skip", "eps_equal"):
            value = getattr(self, name)
            _check_number(name, value, "[0, 1]")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
        self.margin = _checked_margin(self.margin)
        if self.seed is not None:
            check_int("seed", self.seed, low=0)
        self._rng = np.random.default_rng(self.seed)

    @property
    def rational(self) -> bool:
        """True when labels are deterministic given the returns (``beta <= 0``)."""
        return self.beta <= 0

    def set_margin(self, margin: float | str) -> None:
        """Replace the margin (a number >= 0, or "batch"), e.g. before each feedback session."""
        self.margin = _checked_margin(margin)

    def label(self, rewards0: np.ndarray, rewards1: np.ndarray) -> TeacherAnswer:
        """Answer N queries "is segment 1 better than segment 0?" from their per-step true rewards.

        :param rewards0: (N, T) true rewards of segment 0 of each query.
        :param rewards1: (N, T) true rewards of segment 1, same shape.
        """
        r0 = _checked_rewards("rewards0", rewards0)
        r1 = _checked_rewards("rewards1", rewards1)
        if r0.shape != r1.shape:
            raise ValueError(
                f"rewards0 and rewards1 must have the same (N, T) shape, got {r0.shape} and "
                f"{r1.shape}."
            )
        returns0, returns1 = r0.sum(axis=1), r1.sum(axis=1)
        margin = (
            float(np.concatenate([np.abs(returns0), np.abs(returns1)]).mean())
            if self.margin == "batch"
            else float(self.margin)
        )

        skip_threshold = self.eps_skip * margin
        if skip_threshold > 0:
            kept = np.flatnonzero(np.maximum(returns0, returns1) >= skip_threshold)
        else:
            kept = np.arange(r0.shape[0])

        weights = self.gamma ** np.arange(r0.shape[1] - 1, -1, -1, dtype=np.float64)
        weighted0, weighted1 = r0[kept] @ weights, r1[kept] @ weights
        if self.rational:
            labels = (weighted1 > weighted0).astype(np.float32)
        else:
            p1 = preference_probability(weighted0, weighted1, self.beta)
            labels = (self._rng.random(kept.size) < p1).astype(np.float32)

        mistakes = self._rng.random(kept.size) < self.eps_mistake
        labels[mistakes] = 1.0 - labels[mistakes]

        equal = np.abs(returns0[kept] - returns1[kept]) < self.eps_equal * margin
        labels[equal] = 0.5
        mistakes &= ~equal
        return TeacherAnswer(
            labels=labels,
            kept=kept.astype(np.int64),
            returns0=returns0,
            returns1=returns1,
            mistakes=mistakes,
            margin=margin,
        )

    def state_dict(self) -> dict[str, Any]:
        """The margin and the generator's position, so a resumed run asks and answers the same."""
        return {"margin": self.margin, "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"margin", "rng"} - set(state)
        if missing:
            raise KeyError(f"SimulatedTeacher state is missing {sorted(missing)}.")
        self.margin = _checked_margin(state["margin"])
        self._rng.bit_generator.state = state["rng"]


def _checked_rewards(name: str, rewards: np.ndarray) -> np.ndarray:
    try:
        array = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric (N, T) array of rewards: {error}") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty (N queries, T steps) array, got shape {array.shape}; "
            f"squeeze a trailing reward axis of 1."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds non-finite rewards (NaN or inf).")
    return array


def _checked_margin(margin: object) -> float | str:
    if isinstance(margin, str):
        if margin not in MARGIN_MODES:
            raise ValueError(
                f"margin={margin!r} is not valid; choose one of {list(MARGIN_MODES)} or a number "
                f">= 0."
            )
        return margin
    _check_number("margin", margin, f"one of {list(MARGIN_MODES)} or a number >= 0")
    if margin < 0:  # type: ignore[operator]
        raise ValueError(f"margin must be >= 0 (or one of {list(MARGIN_MODES)}), got {margin!r}.")
    return float(margin)  # type: ignore[arg-type]


def _check_number(name: str, value: object, valid: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in {valid}, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite ({valid}), got {value!r}.")
