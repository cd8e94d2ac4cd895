"""What to ask the teacher, and when: segments from a replay buffer, query selection, schedule.

A feedback session in PEBBLE / B-Pref reads top to bottom with these pieces::

    n = schedule.due(step)                                   # 0 most steps
    if n:
        k = candidate_count(method, n)                       # n for "uniform", 10 n otherwise
        a = gather_segments(sample_buffer_segments(buf, 50, k, rng), buf.observations,
                            buf.actions, buf.rewards)
        b = gather_segments(sample_buffer_segments(buf, 50, k, rng), buf.observations,
                            buf.actions, buf.rewards)
        probs = reward_model.preference_probabilities(a.observations, a.actions,
                                                      b.observations, b.actions)  # (members, k)
        chosen = select_queries(method, k, n, probs, rng)
        answer = teacher.label(a.rewards[chosen], b.rewards[chosen])
        schedule.record(step, n)

B-Pref asks the first session uniformly (the reward model knows nothing yet): pass
``method="uniform"`` while ``schedule.sessions == 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from sparse_rl.validation import check_choice, check_int

#: Query selection rules of PEBBLE / B-Pref.
QUERY_METHODS = ("uniform", "disagreement", "entropy")

RngLike = np.random.Generator | int | None


class SegmentIndices(NamedTuple):
    """Where ``count`` segments of ``length`` steps lie in arrays laid out like SB3's buffers.

    Both are (count, length) int64, so ``buffer.rewards[indices]`` is (count, length) and
    ``buffer.observations[indices]`` is (count, length, *obs_shape).
    """

    buffer: np.ndarray
    env: np.ndarray


@dataclass(frozen=True, eq=False)
class Segments:
    """Gathered segments: observations (count, T, ...) (a dict of them for dict spaces),
    actions (count, T, ...), true rewards (count, T)."""

    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray


def sample_segments(
    dones: np.ndarray,
    length: int,
    count: int,
    rng: RngLike = None,
    *,
    pos: int,
    full: bool,
    timeouts: np.ndarray | None = None,
    replace: bool = True,
) -> SegmentIndices:
    """Draw ``count`` windows of ``length`` consecutive steps of one env, within one episode.

    Works on SB3's ``ReplayBuffer`` layout: (buffer_size, n_envs) ``dones``, a write position
    ``pos`` and a ``full`` flag. A window never crosses an episode end (``dones`` or ``timeouts``
    on any of its steps but the last) nor the circular write position: when ``full``, the newest
    step (``pos - 1``) is not followed by the oldest (``pos``), and the oldest step is never used
    (with ``optimize_memory_usage`` its observation is already overwritten). Windows may wrap
    from the last buffer row to row 0 when that is contiguous in time.

    Every valid (start, env) window is equally likely, so long episodes give more segments than
    short ones, as they hold more of the agent's behaviour.

    :param dones: (buffer_size, n_envs) episode ends, truncations included (SB3 stores
        ``terminated or truncated`` there).
    :param length: steps per segment (B-Pref: 50).
    :param count: how many segments.
    :param rng: a ``np.random.Generator`` or a seed.
    :param pos: the buffer's next write row.
    :param full: whether the buffer has wrapped around.
    :param timeouts: optional (buffer_size, n_envs) truncations, treated as episode ends too.
    :param replace: draw with replacement (PEBBLE does); without, ``count`` must not exceed the
        number of distinct windows.
    :raises ValueError: when no window of ``length`` steps exists yet.
    """
    ends = _checked_flags("dones", dones)
    if timeouts is not None:
        more = _checked_flags("timeouts", timeouts)
        if more.shape != ends.shape:
            raise ValueError(
                f"timeouts must have the shape of dones {ends.shape}, got {more.shape}."
            )
        ends = ends | more
    buffer_size, n_envs = ends.shape
    check_int("length", length, low=1)
    check_int("count", count, low=1)
    check_int("pos", pos, low=0)
    if pos >= buffer_size:
        raise ValueError(f"pos must be in [0, buffer_size={buffer_size}), got {pos}.")
    if not isinstance(full, (bool, np.bool_)):
        raise TypeError(f"full must be a bool, got {full!r}.")
    rng = np.random.default_rng(rng)

    # Logical time t = 0 .. stored-1 runs oldest to newest; row = (first + t) % buffer_size.
    first, stored = ((pos + 1) % buffer_size, buffer_size - 1) if full else (0, pos)
    rows = (first + np.arange(stored)) % buffer_size
    n_starts = stored - length + 1
    valid = np.zeros((max(n_starts, 0), n_envs), dtype=bool)
    if n_starts > 0:
        # Episode ends strictly inside a window [t, t + length - 1] are at t .. t + length - 2.
        inside = np.zeros((stored + 1, n_envs), dtype=np.int64)
        np.cumsum(ends[rows], axis=0, out=inside[1:])
        valid = (inside[length - 1 : length - 1 + n_starts] - inside[:n_starts]) == 0
    starts = np.flatnonzero(valid)
    if starts.size == 0:
        raise ValueError(
            f"no segment of length={length} fits yet: the longest stretch of one episode in the "
            f"{stored} stored steps × {n_envs} envs is {_longest_run(ends[rows])} steps; collect "
            f"more steps or use shorter segments."
        )
    if not replace and count > starts.size:
        raise ValueError(
            f"count={count} segments without replacement, but only {starts.size} distinct "
            f"windows of length={length} exist; pass replace=True or ask for fewer."
        )
    chosen = rng.choice(starts, size=count, replace=replace)
    start, env = np.divmod(chosen, n_envs)
    offsets = np.arange(length)
    buffer_index = rows[start[:, None] + offsets[None, :]]
    env_index = np.broadcast_to(env[:, None], (count, length))
    return SegmentIndices(buffer_index.astype(np.int64), env_index.astype(np.int64).copy())


def sample_buffer_segments(
    buffer: Any, length: int, count: int, rng: RngLike = None, *, replace: bool = True
) -> SegmentIndices:
    """``sample_segments`` on an SB3 ``ReplayBuffer`` / ``DictReplayBuffer`` (or look-alike)."""
    missing = [name for name in ("dones", "pos", "full") if not hasattr(buffer, name)]
    if missing:
        raise TypeError(
            f"buffer must look like SB3's ReplayBuffer (dones, pos, full), but "
            f"{type(buffer).__name__} lacks {missing}."
        )
    return sample_segments(
        buffer.dones,
        length,
        count,
        rng,
        pos=int(buffer.pos),
        full=bool(buffer.full),
        timeouts=getattr(buffer, "timeouts", None),
        replace=replace,
    )


def gather_segments(
    indices: SegmentIndices,
    observations: np.ndarray | Mapping[str, np.ndarray],
    actions: np.ndarray,
    rewards: np.ndarray,
) -> Segments:
    """Observations, actions and true rewards of the segments, from (buffer_size, n_envs, ...)
    arrays (pass ``buffer.observations, buffer.actions, buffer.rewards``)."""
    index = tuple(indices)
    if isinstance(observations, Mapping):
        gathered_obs: np.ndarray | dict[str, np.ndarray] = {
            key: np.asarray(value)[index] for key, value in observations.items()
        }
    else:
        gathered_obs = np.asarray(observations)[index]
    gathered_rewards = np.asarray(rewards)[index]
    if gathered_rewards.ndim == 3 and gathered_rewards.shape[-1] == 1:
        gathered_rewards = gathered_rewards[..., 0]
    return Segments(gathered_obs, np.asarray(actions)[index], gathered_rewards)


def candidate_count(method: str, count: int, candidate_multiplier: int = 10) -> int:
    """How many candidate pairs to draw for ``count`` queries: ``count`` for "uniform" (any
    candidate is as good as another), ``count * candidate_multiplier`` otherwise (B-Pref: 10)."""
    check_choice("method", method, QUERY_METHODS)
    check_int("count", count, low=1)
    check_int("candidate_multiplier", candidate_multiplier, low=1)
    return count if method == "uniform" else count * candidate_multiplier


def query_scores(method: str, ensemble_probabilities: np.ndarray) -> np.ndarray:
    """How informative each candidate pair is, higher first-asked: (n_candidates,) float64.

    "disagreement": the std over ensemble members of P[σ1 ≻ σ0] (B-Pref's ``get_rank_probability``).
    "entropy": the Bernoulli entropy (nats) of the members' mean P[σ1 ≻ σ0]. B-Pref instead
    averages each member's entropy, which also rewards pairs every member finds 50/50.

    :param ensemble_probabilities: (members, n_candidates) P[σ1 ≻ σ0] of each member, in [0, 1]
        (e.g. ``teacher.preference_probability`` of the members' predicted segment returns).
    """
    check_choice("method", method, QUERY_METHODS)
    if method == "uniform":
        raise ValueError('method="uniform" has no scores; select_queries draws pairs at random.')
    probs = _checked_probabilities(ensemble_probabilities)
    if method == "disagreement":
        if probs.shape[0] < 2:
            raise ValueError(
                f'method="disagreement" needs an ensemble of >= 2 members, got '
                f'{probs.shape[0]}; use "entropy" with a single model.'
            )
        return probs.std(axis=0)
    mean = probs.mean(axis=0)
    return -(_xlogx(mean) + _xlogx(1.0 - mean))


def select_queries(
    method: str,
    candidates: int,
    count: int,
    ensemble_probabilities: np.ndarray | None = None,
    rng: RngLike = None,
) -> np.ndarray:
    """Indices (count,) into ``range(candidates)`` of the candidate pairs to ask the teacher.

    "uniform" draws ``count`` distinct candidates at random; "disagreement" and "entropy" take
    the ``count`` highest ``query_scores``, best first (ties to the lower index, so the choice is
    deterministic).

    :param method: one of ``QUERY_METHODS``.
    :param candidates: how many candidate pairs there are (see ``candidate_count``).
    :param count: how many to ask, <= ``candidates``.
    :param ensemble_probabilities: (members, candidates); required except for "uniform".
    :param rng: a ``np.random.Generator`` or a seed; used by "uniform" only.
    """
    check_choice("method", method, QUERY_METHODS)
    check_int("candidates", candidates, low=1)
    check_int("count", count, low=1)
    if count > candidates:
        raise ValueError(f"count={count} queries cannot be chosen from {candidates} candidates.")
    if method == "uniform":
        return np.random.default_rng(rng).choice(candidates, size=count, replace=False)
    if ensemble_probabilities is None:
        raise ValueError(
            f"method={method!r} needs ensemble_probabilities of shape (members, {candidates})."
        )
    scores = query_scores(method, ensemble_probabilities)
    if scores.shape[0] != candidates:
        raise ValueError(
            f"ensemble_probabilities has {scores.shape[0]} candidates, expected "
            f"candidates={candidates}."
        )
    return np.argsort(-scores, kind="stable")[:count].astype(np.int64)


@dataclass
class FeedbackSchedule:
    """When to ask for labels and how many: sessions every ``every`` env steps from
    ``first_step``, ``labels_per_session`` each, ``budget`` in all (B-Pref: walker_walk 500/1000).

    Sessions sit on the grid ``first_step + k * every``; ``due`` answers at the first step on or
    after the next grid point (vectorized envs step by ``n_envs``, so the exact step may never
    come). A session missed by more than ``every`` steps is not made up. Asked queries count
    against the budget whether or not the teacher answers them, as in B-Pref.

    :param labels_per_session: queries per session (PEBBLE's ``reward_batch``), >= 1.
    :param every: env steps between sessions (PEBBLE's ``num_interact``), >= 1.
    :param budget: total queries (PEBBLE's ``max_feedback``), >= 0.
    :param first_step: env step of the first session, after seed steps and unsupervised
        pre-training (PEBBLE: ``num_seed_steps + num_unsup_steps``), >= 0.
    """

    labels_per_session: int
    every: int
    budget: int
    first_step: int = 0
    labels_given: int = field(default=0, init=False)
    sessions: int = field(default=0, init=False)
    next_step: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        check_int("labels_per_session", self.labels_per_session, low=1)
        check_int("every", self.every, low=1)
        check_int("budget", self.budget, low=0)
        check_int("first_step", self.first_step, low=0)
        self.next_step = self.first_step

    @property
    def remaining(self) -> int:
        return self.budget - self.labels_given

    def due(self, step: int) -> int:
        """How many queries to ask at env ``step``: 0 between sessions and once the budget is spent.

        Asking changes nothing: call ``record`` after the session.
        """
        check_int("step", step, low=0)
        if step < self.next_step:
            return 0
        return min(self.labels_per_session, self.remaining)

    def record(self, step: int, asked: int) -> None:
        """Book a session held at ``step`` that asked ``asked`` queries; moves to the next one."""
        check_int("step", step, low=0)
        check_int("asked", asked, low=0)
        if asked > self.remaining:
            raise ValueError(
                f"asked={asked} queries exceeds the remaining budget {self.remaining} "
                f"(budget={self.budget}, already given {self.labels_given})."
            )
        self.labels_given += asked
        self.sessions += 1
        passed = max(step - self.first_step, 0) // self.every + 1
        self.next_step = self.first_step + passed * self.every

    def state_dict(self) -> dict[str, int]:
        return {
            "labels_given": self.labels_given,
            "sessions": self.sessions,
            "next_step": self.next_step,
        }

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise KeyError(
                f"FeedbackSchedule state must have keys {sorted(expected)}, got {sorted(state)}."
            )
        check_int("labels_given", state["labels_given"], low=0)
        check_int("sessions", state["sessions"], low=0)
        check_int("next_step", state["next_step"], low=0)
        if state["labels_given"] > self.budget:
            raise ValueError(
                f"labels_given={state['labels_given']} in the state exceeds budget={self.budget}."
            )
        self.labels_given = int(state["labels_given"])
        self.sessions = int(state["sessions"])
        self.next_step = int(state["next_step"])


def _checked_flags(name: str, flags: np.ndarray) -> np.ndarray:
    array = np.asarray(flags)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"{name} must be a non-empty (buffer_size, n_envs) array like SB3's, got shape "
            f"{array.shape}."
        )
    if array.dtype != bool:
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} holds non-finite values.")
        array = array != 0
    return array


def _checked_probabilities(probabilities: np.ndarray) -> np.ndarray:
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.size == 0:
        raise ValueError(
            f"ensemble_probabilities must be a non-empty (members, n_candidates) array, got "
            f"shape {probs.shape}."
        )
    if not np.all((probs >= 0.0) & (probs <= 1.0)):
        raise ValueError("ensemble_probabilities must lie in [0, 1] (and not be NaN).")
    return probs


def _longest_run(ends: np.ndarray) -> int:
    """Longest number of consecutive steps of one env that no episode end interrupts."""
    longest = 0
    for column in ends.T:
        cuts = np.concatenate([[-1], np.flatnonzero(column), [column.size - 1]])
        longest = max(longest, int(np.diff(cuts).max()))
    return longest


def _xlogx(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)
