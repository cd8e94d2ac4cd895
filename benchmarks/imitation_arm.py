"""The ``imitation`` library's preference reward learning as an arm of the offline benchmark.

``train_imitation_reward`` trains imitation's own reward model (``BasicRewardNet`` with its
default settings, ``PreferenceModel``, ``CrossEntropyRewardLoss``, ``BasicRewardTrainer``) on a
fixed set of labelled segment pairs, so our reward model and imitation's can be compared on the
very same labels. Only the reward-learning half of ``PreferenceComparisons`` is used: no agent,
no fragmenter, no gatherer.

``imitation`` pins gymnasium 0.29 and stable-baselines3 2.2 but its reward learning runs with
ours, so it is installed without its dependencies (never as a package extra):
``python benchmarks/imitation_arm.py --install``. The only import it needs beyond the package's
own dependencies is scipy, which dm-control already brings. ``--selftest`` trains on synthetic
pairs and prints held-out pair accuracy.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

IMITATION_VERSION = "1.0.1"


def install_command() -> list[str]:
    """The pip command that installs imitation without touching gymnasium, SB3, torch or numpy.

    ``--no-deps`` because imitation's pins would downgrade gymnasium and stable-baselines3; its
    reward-learning imports need nothing else that sparse-rl's dependencies don't already bring
    (scipy comes with dm-control).
    """
    return [sys.executable, "-m", "pip", "install", "--no-deps", f"imitation=={IMITATION_VERSION}"]


def epochs_for(n_pairs: int, steps: int, batch_size: int) -> int:
    """Epochs so that ``epochs * ceil(n_pairs / batch_size)`` is closest to ``steps``.

    imitation trains in whole epochs over the dataset, one optimiser step per batch (the last,
    incomplete batch included, its loss scaled by its share of ``batch_size``).
    """
    per_epoch = math.ceil(n_pairs / batch_size)
    return max(1, round(steps / per_epoch))


def _fragment(obs: np.ndarray, act: np.ndarray):  # -> imitation.data.types.TrajectoryWithRew
    """One segment as imitation's fragment type.

    A trajectory has one more observation than actions; the segment's last observation is
    repeated as the final one. ``BasicRewardNet`` by default sees (state, action) only, so that
    observation is never an input. The true rewards are unknown here: zeros (imitation then logs
    a meaningless ``gt_reward_loss`` metric, which nothing reads).
    """
    from imitation.data.types import TrajectoryWithRew

    return TrajectoryWithRew(
        obs=np.concatenate([obs, obs[-1:]]),
        acts=act,
        infos=None,
        terminal=False,
        rews=np.zeros(len(act), dtype=np.float32),
    )


def train_imitation_reward(
    obs0: np.ndarray,
    act0: np.ndarray,
    obs1: np.ndarray,
    act1: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int,
    seed: int,
    batch_size: int = 32,
    lr: float = 1e-3,
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Train imitation's reward net on fixed pairs; return ``(obs, act) -> rewards``.

    ``obs0``/``obs1`` (N, T, obs_dim), ``act0``/``act1`` (N, T, act_dim), ``labels`` (N,) in
    {0, 0.5, 1}: the probability that the SECOND segment is preferred. Trains
    ``epochs_for(N, steps, batch_size)`` epochs, i.e. about ``steps`` optimiser steps (AdamW,
    imitation's choice). torch and numpy randomness is seeded from ``seed`` inside a forked
    torch RNG, so the caller's global torch state is left as it was.
    """
    from gymnasium import spaces
    from imitation.algorithms.preference_comparisons import (
        BasicRewardTrainer,
        CrossEntropyRewardLoss,
        PreferenceDataset,
        PreferenceModel,
    )
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util import logger as imit_logger

    n, _, obs_dim = obs0.shape
    act_dim = act0.shape[-1]
    if not (obs1.shape == obs0.shape and act1.shape == act0.shape == (n, obs0.shape[1], act_dim)):
        raise ValueError("obs0/obs1 must be (N, T, obs_dim) and act0/act1 (N, T, act_dim)")
    if labels.shape != (n,):
        raise ValueError(f"labels must be ({n},), got {labels.shape}")
    observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    action_space = spaces.Box(-np.inf, np.inf, (act_dim,), np.float32)

    pairs = [(_fragment(obs0[i], act0[i]), _fragment(obs1[i], act1[i])) for i in range(n)]
    # imitation's preference is P[FIRST fragment preferred] (PreferenceModel.probability
    # returns 1 / (1 + exp(R2 - R1)), PreferenceDataset.push documents "probability that
    # fragment 1 is preferred over fragment 2"), ours is P[second preferred]: flip it.
    preferences = (1.0 - np.asarray(labels, dtype=np.float32)).astype(np.float32)
    dataset = PreferenceDataset()
    dataset.push(pairs, preferences)

    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as logs:
        torch.manual_seed(seed)  # the net's initialisation and the DataLoader's shuffling
        rng = np.random.default_rng(seed)  # only used by imitation for validation splits
        net = BasicRewardNet(observation_space, action_space)  # (state, action), MLP 32-32
        trainer = BasicRewardTrainer(
            PreferenceModel(net),
            CrossEntropyRewardLoss(),
            rng=rng,
            batch_size=batch_size,
            epochs=epochs_for(n, steps, batch_size),
            lr=lr,
            # imitation's default logger writes stdout/log/csv under /tmp and keeps them
            custom_logger=imit_logger.configure(logs, format_strs=[]),
        )
        trainer.train(dataset)

    def reward(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        """Predicted rewards (M,) for (M, obs_dim) observations and (M, act_dim) actions."""
        obs = np.asarray(obs, dtype=np.float32)
        act = np.asarray(act, dtype=np.float32)
        done = np.zeros(len(obs), dtype=bool)
        return net.predict(obs, act, obs, done)  # next_state unused; eval mode, no grad

    return reward


def _synthetic(rng: np.random.Generator, n: int, length: int, weights: np.ndarray):
    """``n`` random segment pairs; reward = ``weights`` on the first 3 of 12 observation dims."""
    obs = rng.normal(size=(2, n, length, 12)).astype(np.float32)
    act = rng.normal(size=(2, n, length, 2)).astype(np.float32)
    returns = (obs[..., :3] @ weights).sum(-1)
    labels = (returns[1] > returns[0]).astype(np.float32)
    return obs, act, labels


def selftest(pairs: int = 400, steps: int = 1000, seed: int = 0) -> float:
    """Held-out pair accuracy of imitation's reward model on a linear synthetic reward."""
    rng = np.random.default_rng(seed)
    weights = np.array([1.0, -0.5, 0.25], dtype=np.float32)
    obs, act, labels = _synthetic(rng, pairs, 10, weights)
    start = time.perf_counter()
    reward = train_imitation_reward(obs[0], act[0], obs[1], act[1], labels, steps=steps, seed=seed)
    seconds = time.perf_counter() - start
    done_steps = epochs_for(pairs, steps, 32) * math.ceil(pairs / 32)

    obs, act, labels = _synthetic(rng, 1000, 10, weights)
    m, t = obs.shape[1:3]
    predicted = reward(obs.reshape(-1, 12), act.reshape(-1, 2)).reshape(2, m, t).sum(-1)
    accuracy = float(((predicted[1] > predicted[0]) == (labels == 1)).mean())
    print(
        f"imitation reward model: {pairs} pairs, {done_steps} steps in {seconds:.1f} s "
        f"({1000 * seconds / done_steps:.1f} ms/step); held-out pair accuracy {accuracy:.3f}"
    )
    return accuracy


def main() -> None:
    """``--install`` runs ``install_command()``; ``--selftest`` checks training end to end."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="pip install imitation (no deps)")
    parser.add_argument("--selftest", action="store_true", help="train on synthetic pairs")
    parser.add_argument("--steps", type=int, default=1000, help="selftest gradient steps")
    args = parser.parse_args()
    if not (args.install or args.selftest):
        parser.error("nothing to do: pass --install and/or --selftest")
    if args.install:
        import subprocess

        subprocess.run(install_command(), check=True)
    if args.selftest:
        torch.set_num_threads(1)
        accuracy = selftest(steps=args.steps)
        if accuracy <= 0.8:
            sys.exit(f"selftest failed: accuracy {accuracy:.3f} <= 0.8")


if __name__ == "__main__":
    main()
