"""Step-time overhead of the noisy-feature wrapper on a MuJoCo env (goal: <= 10% at f = 0.95).

The plain env (``gymnasium.make(env_id)``) and the same env wrapped in ``NoisyFeatures`` with each
noise kind run in turns within one process: every repeat times ``--steps`` steps of each, in an
order rotated between repeats, with the same fixed action sequence; the ratio wrapped/plain is
taken within each repeat and the median over repeats is reported, so slow phases of a shared
machine hit both sides. Step time is this thread's CPU time (``time.thread_time``): on a shared
machine, wall-clock time also counts the time other processes hold the core; the wall-clock
ratio is reported next to it. The wrapper's own cost is also timed alone, around a stub env
whose step does nothing (the difference of the two, in CPU microseconds per step).

Run: ``python benchmarks/noisy_features_overhead.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/noisy_features_overhead.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from _machine import machine_info
from gymnasium import spaces
from sparse_rl.envs.noisy_features import NoisyFeatures

RESULTS = Path(__file__).parent / "results"
GOAL = 1.10

#: (label, wrapper keyword arguments); the first is the goal's setting (ANF's Gaussian noise).
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("gaussian", {"noise": "gaussian"}),
    ("gaussian + permutation", {"noise": "gaussian", "permute": True}),
    ("uniform", {"noise": "uniform"}),
    ("empirical", {"noise": "empirical"}),
]


class StubEnv(gym.Env[np.ndarray, np.ndarray]):
    """Returns a fixed observation of the real env's size: isolates the wrapper's own cost."""

    def __init__(self, num_real: int, action_dim: int) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (num_real,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._obs = np.linspace(-1.0, 1.0, num_real)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self._obs.copy(), 0.0, False, False, {}


def time_steps(env: gym.Env, actions: np.ndarray) -> tuple[float, float]:
    """(CPU, wall-clock) microseconds per step over ``len(actions)`` steps (unseeded resets at
    episode ends)."""
    env.reset(seed=0)
    step = env.step
    cpu, wall = time.thread_time(), time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            env.reset()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return cpu / len(actions) * 1e6, wall / len(actions) * 1e6


def compare(
    envs: dict[str, gym.Env], actions: np.ndarray, repeats: int
) -> dict[str, dict[str, list[float]]]:
    """Per-step CPU and wall-clock microseconds of every env in each repeat, in rotating order."""
    names = list(envs)
    for name in names:  # warm-up: caches, first noise block, MuJoCo's first steps
        time_steps(envs[name], actions[: len(actions) // 4])
    times: dict[str, dict[str, list[float]]] = {"cpu": {}, "wall": {}}
    for name in names:
        times["cpu"][name], times["wall"][name] = [], []
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            cpu, wall = time_steps(envs[name], actions)
            times["cpu"][name].append(cpu)
            times["wall"][name].append(wall)
    return times


def median_ratio(wrapped: list[float], plain: list[float]) -> float:
    return statistics.median(w / p for w, p in zip(wrapped, plain, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--noise-fraction", type=float, default=0.95)
    parser.add_argument("--steps", type=int, default=2000, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 steps, 3 repeats")
    args = parser.parse_args()
    steps, repeats = (300, 3) if args.quick else (args.steps, args.repeats)
    f = args.noise_fraction

    envs: dict[str, gym.Env] = {"plain": gym.make(args.env)}
    for label, kwargs in VARIANTS:
        envs[label] = NoisyFeatures(gym.make(args.env), f, **kwargs)
    plain_space = envs["plain"].observation_space
    action_space = envs["plain"].action_space
    assert isinstance(plain_space, spaces.Box) and isinstance(action_space, spaces.Box)
    num_real, action_dim = plain_space.shape[0], action_space.shape[0]
    num_features = envs[VARIANTS[0][0]].observation_space.shape
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (steps, action_dim)).astype(np.float32)
    times = compare(envs, actions, repeats)

    stubs: dict[str, gym.Env] = {"plain": StubEnv(num_real, action_dim)}
    for label, kwargs in VARIANTS:
        stubs[label] = NoisyFeatures(StubEnv(num_real, action_dim), f, **kwargs)
    stub_times = compare(stubs, actions, repeats)

    rows = []
    cpu, wall, stub = times["cpu"], times["wall"], stub_times["cpu"]
    for label, kwargs in VARIANTS:
        ratios = [w / p for w, p in zip(cpu[label], cpu["plain"], strict=True)]
        alone = [w - p for w, p in zip(stub[label], stub["plain"], strict=True)]
        rows.append(
            {
                "variant": label,
                "kwargs": kwargs,
                "plain_us": statistics.median(cpu["plain"]),
                "wrapped_us": statistics.median(cpu[label]),
                "ratio_median": statistics.median(ratios),
                "ratio_quartiles": statistics.quantiles(ratios, n=4) if repeats > 1 else ratios,
                "wall_ratio_median": median_ratio(wall[label], wall["plain"]),
                "wrapper_alone_us": statistics.median(alone),
            }
        )
    goal_row = rows[0]
    result = {
        "machine": machine_info(),
        "env": args.env,
        "noise_fraction": f,
        "real_features": num_real,
        "observation_features": num_features[0],
        "steps_per_timing": steps,
        "repeats": repeats,
        "goal": f"wrapped/plain CPU time per step <= {GOAL} for {goal_row['variant']} noise",
        "goal_met": goal_row["ratio_median"] <= GOAL,
        "rows": rows,
        "raw_us": times,
        "raw_stub_us": stub_times,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "noisy_features_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "noisy_features_overhead.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        "# Noisy-feature wrapper: step-time overhead",
        "",
        f"Command: `{machine['command']}`  ",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['date']}",
        "",
        f"{result['env']}, {result['real_features']} real features, noise fraction "
        f"{result['noise_fraction']} → {result['observation_features']} features. Plain and "
        f"wrapped envs alternate; {result['repeats']} repeats of {result['steps_per_timing']} "
        "steps. Step time is the thread's CPU time (on a shared machine wall-clock time also "
        "counts other processes); ratios are medians of the per-repeat ratios, quartiles in "
        'brackets. "Wrapper alone": the wrapper\'s own CPU cost per step, timed around a stub '
        "env.",
        "",
        "| noise | plain µs/step | wrapped µs/step | wrapped/plain (CPU) | wrapped/plain "
        "(wall-clock) | wrapper alone µs/step |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        q1, _, q3 = row["ratio_quartiles"] if len(row["ratio_quartiles"]) == 3 else (0, 0, 0)
        lines.append(
            f"| {row['variant']} | {row['plain_us']:.1f} | {row['wrapped_us']:.1f} | "
            f"**{row['ratio_median']:.3f}** [{q1:.3f}, {q3:.3f}] | "
            f"{row['wall_ratio_median']:.3f} | {row['wrapper_alone_us']:.2f} |"
        )
    met = "met" if result["goal_met"] else "NOT met"
    lines += ["", f"Goal: {result['goal']}: **{met}**.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
