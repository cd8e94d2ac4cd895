"""One PNG per domain: the clean frame, every distraction preset and the ground-truth agent mask,
for two seeds, so a reader sees what each mode looks like. Writes ``docs/envs/<task>.png``.

Run: ``python benchmarks/env_grids.py [--tasks walker-walk cartpole-swingup ...]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparse_rl import envs

OUT = Path(__file__).resolve().parent.parent / "docs" / "envs"
TASKS = ("walker-walk", "cartpole-swingup", "cheetah-run", "finger-spin", "ball_in_cup-catch")


def last_frame(obs: np.ndarray) -> np.ndarray:
    """The newest RGB frame of a channel-first frame stack, as (H, W, 3)."""
    return np.transpose(obs[-3:], (1, 2, 0))


def frame_after(task: str, preset: str, seed: int, steps: int = 10) -> tuple[np.ndarray, dict]:
    env = envs.make_env(task, preset=preset, size=84, return_agent_mask=True)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        obs, _, _, _, info = env.step(action)
    env.close()
    return last_frame(obs), info


def grid(task: str, seeds: tuple[int, ...] = (0, 1)) -> Path:
    columns = [*envs.PRESETS, "agent mask"]
    fig, axes = plt.subplots(
        len(seeds), len(columns), figsize=(1.6 * len(columns), 2.2 * len(seeds))
    )
    for row, seed in enumerate(seeds):
        for col, preset in enumerate(envs.PRESETS):
            frame, info = frame_after(task, preset, seed)
            axes[row, col].imshow(frame)
            axes[row, col].set_title(f"{preset}\nseed {seed}", fontsize=7)
            if preset == "clean":
                axes[row, -1].imshow(info["agent_mask"], cmap="gray")
                axes[row, -1].set_title(f"agent mask\nseed {seed}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{task}: clean, distraction presets, ground-truth agent mask", fontsize=9)
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{task}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    args = parser.parse_args()
    for task in args.tasks:
        print("wrote", grid(task))


if __name__ == "__main__":
    main()
