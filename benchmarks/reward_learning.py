"""Reward learning from preferences under noise features, offline: which reward model finds the
real features? No SAC: fixed datasets of segment pairs (``reward_data.py``), oracle labels, one
training run per (task, noise fraction, labels, arm, seed), scored on fresh held-out pairs.

Arms (every torch arm: 3 members × [64, 64, 64], segments of 25 steps, batch 128, Adam 3e-4,
the settings of ``make demo``):

- ``pebble-bpref``: PEBBLE as B-Pref trains it: up to 50 epochs, stop at 97% label accuracy.
- ``pebble``: PEBBLE, dense, ``STEPS`` gradient steps (the package's default training).
- ``pebble+l1``: the same with R2N's L1 penalty on the input layer (the strongest dense baseline).
- ``imitation``: the ``imitation`` library's reward net and trainer on the same pairs, about
  ``STEPS`` steps (install: ``python benchmarks/imitation_arm.py --install``).
- ``r2n-set``: R2N as published: input layer 80% sparse, SET dropping 5% every 100 steps.
- ``r2n``: R2N as the package builds it (``agents.r2n()``: fan-in 8 capped at density 1/6, L1,
  RigL growing at strong inputs, drop fraction annealed to zero).

Ablations of ``r2n`` (one change each, on a few cells): ``r2n-rigl`` grows by |g| only (plain
RigL), ``r2n-density0.2`` has a fixed density 0.2 instead of fan-in 8, ``r2n-nol1`` has no L1,
``r2n-fanin4`` has fan-in 4 (also at 90% noise, where fan-in 8 leaves a quarter of each unit's
inputs on noise), ``r2n-nocap`` has fan-in 8 without R2N's density cap of 1/6 (only on Pendulum
at 80% and 90% noise: the cap acts below 48 inputs). NeuroTrails ensembles
(``reward_shared_layers=TRAILS_SHARED``: the input layer and the first hidden layer are one
trunk shared by the members, each member keeps a head of the last two layers): ``r2n-trails``
(R2N's sparse input layer is then the trunk's, one instead of one per member) and ``pebble-
trails`` (dense), on the same cells as the ablations. Dynamic pruning of the labelled pairs
(issue 20's sampler, ``reward_pair_keep``), on the same cells: ``r2n-prune70`` / ``pebble-
prune70`` keep 70% of the pairs each pass (InfoBatch) and take 70% of the steps (``STEPS_70``);
``r2n-steps70`` / ``pebble-steps70`` take the same 70% of the steps on every pair (the equal-
compute baseline).

Metrics: accuracy on 2000 fresh pairs of held-out episodes (strict labels), Pearson r of the
learned and the true reward on every held-out transition, active input connections per real
and per noise feature (mean over members; 64 = all hidden units), training wall time, the reward
model's parameters and those active under its masks (torch arms).

Run (resumable, one thread per process; ``--jobs 2`` runs two processes)::

    python benchmarks/reward_learning.py run --jobs 2
    python benchmarks/reward_learning.py report

Rows go to ``results/reward_learning/rows.jsonl`` as they finish; ``report`` writes
``results/reward_learning.{md,png}`` with 95% bootstrap intervals over seeds. The rows, the runner
and the command line are those of ``_offline.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import _offline as offline
import numpy as np

NAME = "reward_learning"
ARMS = ("pebble-bpref", "pebble", "pebble+l1", "imitation", "r2n-set", "r2n")
ABLATIONS = (
    "r2n-rigl", "r2n-density0.2", "r2n-nol1", "r2n-fanin4", "r2n-trails", "pebble-trails",
    "r2n-prune70", "r2n-steps70", "pebble-prune70", "pebble-steps70", "r2n-nocap",
)  # fmt: skip
STEPS = 600
#: Gradient steps of the pair-pruning arms and their equal-compute baselines: 70% of STEPS.
STEPS_70 = round(0.7 * STEPS)
#: The share of the labelled pairs each pass of the pruning arms keeps (InfoBatch).
PAIR_KEEP = 0.7
SEGMENT = 25
HIDDEN = (64, 64, 64)
EPISODES, LENGTH, TRAIN_EPISODES = 80, 200, 60
TEST_PAIRS = 2000
SEEDS = (0, 1, 2, 3, 4)
#: Layers of the shared trunk in the ``-trails`` arms (of 4: each head keeps the last two).
TRAILS_SHARED = 2


@dataclass(frozen=True)
class Cell(offline.Cell):
    task: str
    noise: float
    labels: int
    arm: str
    seed: int


def grid(seeds: Iterable[int] = SEEDS, arms: Iterable[str] = (*ARMS, *ABLATIONS)) -> list[Cell]:
    """Noise sweep and label sweep on Pendulum; two harder tasks at 95% and 98% noise (HalfCheetah
    at 80%, 90% and 99% too, walker-walk at 80%, 90% and 99%); the ablations on
    Pendulum at 95-99% noise and HalfCheetah at 95%."""
    arms = list(arms)
    points = [("Pendulum-v1", f, 500) for f in (0.8, 0.9, 0.95, 0.98, 0.99)]
    points += [("Pendulum-v1", 0.98, n) for n in (100, 2000)]
    points += [(task, f, 500) for task in ("HalfCheetah-v5", "walker-walk") for f in (0.95, 0.98)]
    points += [("HalfCheetah-v5", f, 500) for f in (0.8, 0.9, 0.99)]
    points += [("walker-walk", f, 500) for f in (0.8, 0.9, 0.99)]
    main = [a for a in arms if a in ARMS]
    cells = [Cell(t, f, n, a, s) for t, f, n in points for a in main for s in seeds]
    ablated = [("Pendulum-v1", f, 500) for f in (0.95, 0.98, 0.99)] + [
        ("HalfCheetah-v5", 0.95, 500)
    ]
    chosen = [a for a in arms if a in ABLATIONS]
    cells += [Cell(t, f, n, a, s) for t, f, n in ablated for a in chosen for s in seeds]
    low_noise = [("Pendulum-v1", 0.9, 500), ("HalfCheetah-v5", 0.9, 500)]
    cells += [Cell(t, f, n, "r2n-fanin4", s) for t, f, n in low_noise for s in seeds
              if "r2n-fanin4" in chosen]  # fmt: skip
    narrow = [("Pendulum-v1", f, 500) for f in (0.8, 0.9)]  # under 48 inputs: the cap acts
    return cells + [Cell(t, f, n, "r2n-nocap", s) for t, f, n in narrow for s in seeds
                    if "r2n-nocap" in chosen]  # fmt: skip


@cache
def _episodes(task: str) -> Any:
    from reward_data import collect

    return collect(task, EPISODES, LENGTH, seed=0)


def _data(cell: Cell) -> dict[str, np.ndarray]:
    from reward_data import gather, sample_pairs

    data = _episodes(cell.task)
    columns = data.at_noise(cell.noise)
    train = sample_pairs(
        data, np.arange(TRAIN_EPISODES), cell.labels, SEGMENT, np.random.default_rng(cell.seed)
    )
    test = sample_pairs(
        data, np.arange(TRAIN_EPISODES, EPISODES), TEST_PAIRS, SEGMENT, np.random.default_rng(10**6)
    )
    out: dict[str, np.ndarray] = {"labels": train.labels, "test_labels": test.labels}
    for name, pairs in (("", train), ("test_", test)):
        out[f"{name}obs0"], out[f"{name}act0"] = gather(data, pairs.first, SEGMENT, columns)
        out[f"{name}obs1"], out[f"{name}act1"] = gather(data, pairs.second, SEGMENT, columns)
    held = np.arange(TRAIN_EPISODES, EPISODES)
    out["eval_obs"] = data.obs[held][..., columns].reshape(-1, len(columns))
    out["eval_act"] = data.act[held].reshape(-1, data.act.shape[-1])
    out["eval_rew"] = data.rew[held].reshape(-1)
    return out


def _preference(arm: str) -> Any:
    from sparse_rl import agents
    from sparse_rl import sparse_nets as sn

    base = {"reward_hidden": HIDDEN, "budget": 1, "labels_per_session": 1, "reward_steps": STEPS}
    if arm == "pebble-bpref":
        return agents.pebble(
            **{**base, "reward_steps": None}, reward_epochs=50, reward_target_accuracy=0.97
        )
    if arm == "pebble":
        return agents.pebble(**base)
    if arm == "pebble-trails":
        return agents.pebble(**base, reward_shared_layers=TRAILS_SHARED)
    if arm == "pebble+l1":
        return agents.pebble(**base, reward_input_l1=agents.r2n().reward_input_l1)
    if arm == "r2n-set":
        sparsity = {"density": 0.2, "layers": "input", "updater": sn.SET(100, 0.05)}
        return agents.r2n(**base, reward_sparsity=sparsity, reward_input_l1=0.0)
    if arm == "r2n":  # one session of STEPS steps: anneal over them, as a run anneals over all
        return agents.r2n(**base)
    r2n = agents.r2n(**base)
    sparsity = r2n.reward_sparsity
    assert sparsity is not None
    if arm == "r2n-rigl":
        sparsity = sparsity.updated(
            {"updater": dataclasses.replace(sparsity.updater, grow="gradient")}
        )
    elif arm == "r2n-density0.2":
        sparsity = sparsity.updated({"density": 0.2})
    elif arm == "r2n-fanin4":
        sparsity = sparsity.updated({"fan_in": 4})
    elif arm == "r2n-nocap":
        sparsity = sparsity.updated({"fan_in": 8})  # fan-in alone: no density cap
    elif arm == "r2n-nol1":
        return dataclasses.replace(r2n, reward_input_l1=0.0)
    elif arm == "r2n-trails":
        return dataclasses.replace(r2n, reward_shared_layers=TRAILS_SHARED)
    elif arm in ("r2n-prune70", "r2n-steps70", "pebble-prune70", "pebble-steps70"):
        method = agents.r2n if arm.startswith("r2n") else agents.pebble
        keep = PAIR_KEEP if "prune" in arm else 1.0
        return method(**{**base, "reward_steps": STEPS_70}, reward_pair_keep=keep)
    else:
        raise ValueError(f"arm={arm!r} is not valid; choose one of {[*ARMS, *ABLATIONS]}.")
    return dataclasses.replace(r2n, reward_sparsity=sparsity)


def run_cell(cell: Cell) -> dict[str, Any]:
    """Train one arm on one cell's labels; score it on the held-out pairs and transitions."""
    import torch
    from sparse_rl.agents import RewardModel

    torch.set_num_threads(1)
    d = _data(cell)
    obs_dim, act_dim = d["obs0"].shape[-1], d["act0"].shape[-1]
    train = [d[k] for k in ("obs0", "act0", "obs1", "act1", "labels")]
    start = time.perf_counter()
    conn, parameters = None, None
    if cell.arm == "imitation":
        from imitation_arm import train_imitation_reward

        reward = train_imitation_reward(*train, steps=STEPS, seed=cell.seed)
        steps = STEPS
    else:
        cfg = _preference(cell.arm)
        model = RewardModel(
            obs_dim, act_dim, cfg.ensemble_size, cfg.reward_hidden, cfg.reward_lr,
            cfg.reward_batch_size, cfg.reward_sparsity, cfg.reward_input_l1, cfg.reward_input_l2,
            seed=cell.seed, shared_layers=cfg.reward_shared_layers,
            pair_keep=cfg.reward_pair_keep, pair_policy=cfg.reward_pair_policy,
        )  # fmt: skip
        parameters = _parameters(model)
        stats = model.train(
            *train, epochs=cfg.reward_epochs, target_accuracy=cfg.reward_target_accuracy,
            steps=cfg.reward_steps,
        )  # fmt: skip
        reward, steps, conn = model.reward, stats.steps, model.input_connectivity()
    seconds = time.perf_counter() - start
    accuracy = _pair_accuracy(reward, d)
    learned = reward(d["eval_obs"], d["eval_act"])
    row: dict[str, Any] = {
        **asdict(cell),
        "accuracy": accuracy,
        "correlation": float(np.corrcoef(learned, d["eval_rew"])[0, 1]),
        "steps": int(steps),
        "seconds": seconds,
    }
    if conn is not None:
        real = np.arange(len(_episodes(cell.task).real))  # real features come first
        row["real_connections"] = float(conn[:, real].mean())
        row["noise_connections"] = float(np.delete(conn, real, axis=1).mean())
        row["connections"] = conn.mean(0).round(2).tolist()  # per feature, for the picture
    if parameters is not None:
        row["parameters"], row["active_parameters"] = parameters
    return row


def _parameters(model: Any) -> tuple[int, int]:
    """The reward model's parameters, and those its masks leave active (all of a dense one)."""
    total = sum(p.numel() for p in model.ensemble.parameters())
    masks = {} if model.sparsity is None else model.sparsity.masks
    masked = sum(int(m.numel() - m.sum()) for m in masks.values())
    return total, total - masked


def _pair_accuracy(reward: Any, d: dict[str, np.ndarray]) -> float:
    labels = d["test_labels"]
    strict = labels != 0.5
    returns = []
    for k in ("0", "1"):
        obs, act = d[f"test_obs{k}"], d[f"test_act{k}"]
        n, t = obs.shape[:2]
        returns.append(reward(obs.reshape(n * t, -1), act.reshape(n * t, -1)).reshape(n, t).sum(1))
    return float(((returns[1] > returns[0]) == (labels > 0.5))[strict].mean())


def describe(row: dict[str, Any]) -> str:
    return f"accuracy {row['accuracy']:.3f}, r {row['correlation']:.2f}, {row['seconds']:.0f} s"


def cells(args: argparse.Namespace) -> list[Cell]:
    """The grid's cells sorted by task: each process works through the tasks in turn."""
    return sorted(grid(args.seeds, args.arms), key=lambda c: (c.task, c.noise, c.labels, c.seed))


def main(argv: list[str] | None = None) -> None:
    os.environ["TQDM_DISABLE"] = "1"  # imitation's trainer always draws a progress bar
    offline.main(
        argv,
        sys.modules[__name__],
        what="train every missing (cell, arm, seed)",
        choices={"arms": (*ARMS, *ABLATIONS)},
        quick=False,
    )


if __name__ == "__main__":
    main()
