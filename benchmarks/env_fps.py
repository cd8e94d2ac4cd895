"""Frame rate of the pixel DMC envs at 84x84: clean vs every distraction preset, in one run.

Presets are timed in rotation within each repeat (so machine load hits all of them alike); the
ratio preset/clean is taken per repeat and its median reported. Goal: every preset >= 0.8x clean.
Each agent step renders one frame (after ``action_repeat`` physics steps).

Run: ``python benchmarks/env_fps.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/env_fps.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _machine import machine_info

from sparse_rl import envs

RESULTS = Path(__file__).parent / "results"


def steps_per_second(env, steps: int, rng: np.random.Generator) -> float:
    low, high = env.action_space.low, env.action_space.high
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(low, high).astype(np.float32))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def measure(task: str, steps: int, repeats: int) -> list[dict[str, object]]:
    presets = list(envs.PRESETS)
    built = {p: envs.make_env(task, preset=p, size=84) for p in presets}
    rng = np.random.default_rng(0)
    for env in built.values():
        env.reset(seed=0)
        steps_per_second(env, 5, rng)  # warm-up: GL context, video clips
    fps: dict[str, list[float]] = {p: [] for p in presets}
    for _ in range(repeats):
        for p in presets:
            fps[p].append(steps_per_second(built[p], steps, rng))
    rows = []
    for p in presets:
        ratios = [a / b for a, b in zip(fps[p], fps["clean"], strict=True)]
        rows.append({
            "task": task, "preset": p, "fps_median": statistics.median(fps[p]),
            "ratio_to_clean_median": statistics.median(ratios), "fps": fps[p],
        })  # fmt: skip
        print(f"{task:18s} {p:11s} {rows[-1]['fps_median']:7.1f} fps  "
              f"x{rows[-1]['ratio_to_clean_median']:.2f} of clean")  # fmt: skip
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Pixel env frame rate at 84x84",
        "",
        f"Command: `{m['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['date']}. MUJOCO_GL=egl (Mesa, CPU).",
        f"{result['steps']} agent steps per measurement, {result['repeats']} repeats, presets "
        "in rotation; one frame rendered per agent step. Goal: every preset >= 0.8x clean.",
        "",
        "| task | preset | agent steps/s (median) | preset / clean (median) | goal met |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ok = "yes" if r["ratio_to_clean_median"] >= 0.8 else "**no**"
        lines.append(
            f"| {r['task']} | {r['preset']} | {r['fps_median']:.1f} | "
            f"{r['ratio_to_clean_median']:.2f} | {ok} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, nothing written")
    parser.add_argument("--tasks", nargs="+", default=["walker-walk", "cartpole-swingup"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    steps, repeats = (10, 1) if args.quick else (args.steps, args.repeats)
    rows = [row for task in args.tasks for row in measure(task, steps, repeats)]
    if args.quick:
        return
    result = {"machine": machine_info(), "steps": steps, "repeats": repeats, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "env_fps.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "env_fps.md").write_text(markdown(result))
    print(f"wrote {RESULTS / 'env_fps.md'}")


if __name__ == "__main__":
    main()
