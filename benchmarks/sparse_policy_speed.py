"""Wall time of a sparse SB3 agent (90% ERK, RigL) vs the dense one: same env, same steps.

``--algo sac``: SB3's SAC defaults (2×256, batch 256) on HalfCheetah-v5. ``--algo dqn``: DQN on
CartPole-v1 with 2×256 layers, batch 64, one gradient step per env step. Both use
``Adam(fused=True)`` (our recommendation on CPU, see sparse_core_speed.md); the sparse one updates
its topology every ``--interval`` gradient steps (default 250, 4× more often than the RL default
1000, so update costs are not hidden). Dense and sparse alternate, starting order flipping per
repeat, so both see the same machine load; the reported ratio is the median of the per-repeat
ratios, with a distribution-free 95% interval for that median (order statistics). Goal: <= 1.05.

The whole-run time also holds what the two agents do differently: a sparse and a dense network
act differently, so their runs play different numbers of episodes (resets, SB3's per-episode
bookkeeping). The time inside ``train()`` (the gradient steps, where the sparse core works) is
reported beside it, as its own ratio.

Run: ``python benchmarks/sparse_policy_speed.py --algo sac`` (``--quick`` for a smoke run).
Writes ``benchmarks/results/sparse_<algo>_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import gymnasium as gym
import torch
from _machine import machine_info
from scipy import stats
from stable_baselines3 import DQN, SAC

from sparse_rl import agents
from sparse_rl import sparse_nets as sn

RESULTS = Path(__file__).parent / "results"


#: algo -> (SB3 class, sparse policy, env id, extra arguments, net size).
SETUPS = {
    "sac": (SAC, "SparseSACPolicy", "HalfCheetah-v5", {}),
    "dqn": (DQN, "SparseDQNPolicy", "CartPole-v1", {"batch_size": 64, "train_freq": 1}),
}


def time_learn(
    algo: str, sparse: bool, steps: int, learning_starts: int, interval: int, seed: int
) -> tuple[float, float, int]:
    """(seconds of the whole ``learn``, seconds inside ``train()``, episodes played)."""
    cls, sparse_policy, env_id, extra = SETUPS[algo]
    policy_kwargs: dict[str, object] = {"net_arch": [256, 256], "optimizer_kwargs": {"fused": True}}
    if sparse:
        policy_kwargs.update(
            density=0.1, distribution="erk", updater=sn.RigL(interval=interval, drop_fraction=0.3)
        )
    model = cls(
        getattr(agents, sparse_policy) if sparse else "MlpPolicy",
        gym.make(env_id),
        learning_starts=learning_starts,
        policy_kwargs=policy_kwargs,
        seed=seed,
        **extra,
    )
    in_train = 0.0
    train = model.train

    def timed_train(*args: object, **kwargs: object) -> None:
        nonlocal in_train
        start = time.perf_counter()
        train(*args, **kwargs)
        in_train += time.perf_counter() - start

    model.train = timed_train  # type: ignore[method-assign]
    start = time.perf_counter()
    model.learn(steps)
    return time.perf_counter() - start, in_train, model._episode_num


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algo", choices=[*sorted(SETUPS), "all"], default="all")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--learning-starts", type=int, default=200)
    parser.add_argument("--interval", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.learning_starts, args.repeats = 300, 100, 2
    torch.set_num_threads(args.threads)
    for algo in sorted(SETUPS) if args.algo == "all" else [args.algo]:
        measure(algo, args)


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median (order statistics, scipy's quantile test);
    NaN at both ends when there are too few values to reach ``level`` (fewer than 6 at 95%)."""
    median = statistics.median(values)
    interval = stats.quantile_test(values, q=median, p=0.5).confidence_interval(level)
    return float(interval.low), float(interval.high)


def shown_interval(label: str, interval: tuple[float, float]) -> str:
    low, high = interval
    if low != low:  # NaN: too few repeats
        return f"no {label} (too few repeats)"
    return f"{label} [{low:.3f}, {high:.3f}]"


def measure(algo: str, args: argparse.Namespace) -> None:
    """Alternate dense and sparse runs of ``algo``; write its results unless ``--quick``."""
    times: dict[str, list[float]] = {"dense": [], "sparse": []}
    train_times: dict[str, list[float]] = {"dense": [], "sparse": []}
    episodes: dict[str, list[int]] = {"dense": [], "sparse": []}
    for repeat in range(args.repeats):
        order = ("dense", "sparse") if repeat % 2 == 0 else ("sparse", "dense")
        for variant in order:
            seconds, in_train, played = time_learn(
                algo, variant == "sparse", args.steps, args.learning_starts, args.interval, repeat
            )
            times[variant].append(seconds)
            train_times[variant].append(in_train)
            episodes[variant].append(played)
        print(
            f"repeat {repeat}: dense {times['dense'][-1]:.2f} s, sparse {times['sparse'][-1]:.2f} s"
        )
    ratios = [s / d for s, d in zip(times["sparse"], times["dense"], strict=True)]
    train_ratios = [s / d for s, d in zip(train_times["sparse"], train_times["dense"], strict=True)]
    updates = args.steps - args.learning_starts
    result = {
        "machine": machine_info(),
        "settings": {**vars(args), "algo": algo},
        "seconds": times,
        "ratios": ratios,
        "ratio_median": statistics.median(ratios),
        "ratio_median_interval": median_interval(ratios),
        "train_seconds": train_times,
        "train_ratios": train_ratios,
        "train_ratio_median": statistics.median(train_ratios),
        "train_ratio_median_interval": median_interval(train_ratios),
        "episodes": episodes,
        "dense_updates_per_second": updates / statistics.median(times["dense"]),
        "sparse_updates_per_second": updates / statistics.median(times["sparse"]),
    }
    m = result["machine"]
    name, env_id = algo.upper(), SETUPS[algo][2]
    settings = (
        "SB3 SAC defaults" if algo == "sac" else "DQN, batch 64, one gradient step per env step"
    )
    md = [
        f"# Sparse {name} vs dense SB3 {name}: wall time ({env_id})",
        "",
        f"Command: `{m['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, "
        f"{args.threads} torch thread(s); {m['date']}.",
        "",
        f"{args.steps} env steps each ({updates} gradient steps after {args.learning_starts} "
        f"random ones), {settings}, 2×256, `Adam(fused=True)`; sparse = 90% ERK, RigL 30% every "
        f"{args.interval} gradient steps; {args.repeats} repeats, order alternating.",
        "",
        "| | median seconds | of which in `train()` | gradient steps / s | episodes (median) |",
        "|---|---|---|---|---|",
        *(
            f"| {variant} {name} | {statistics.median(times[variant]):.2f} | "
            f"{statistics.median(train_times[variant]):.2f} | "
            f"{result[f'{variant}_updates_per_second']:.1f} | "
            f"{statistics.median(episodes[variant]):g} |"
            for variant in ("dense", "sparse")
        ),
        "",
        f"**sparse/dense = {result['ratio_median']:.3f}**, "
        f"{shown_interval('95% interval of the median', result['ratio_median_interval'])} "
        "(per-repeat ratios: "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + "). Goal: <= 1.05.",
        "",
        f"Inside `train()` only: **{result['train_ratio_median']:.3f}**, "
        f"{shown_interval('95% interval', result['train_ratio_median_interval'])} (per-repeat: "
        + ", ".join(f"{r:.3f}" for r in train_ratios)
        + ").",
        "",
    ]
    if not args.quick:
        (RESULTS / f"sparse_{algo}_speed.json").write_text(json.dumps(result, indent=1))
        (RESULTS / f"sparse_{algo}_speed.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
