"""Sizes behind the visual agents' costs: replay memory and multiply-adds per observation.

1. Bytes of 100k pixel transitions (84×84, 3-frame stacks, 6-dim actions): SB3's ReplayBuffer
   (observation and next observation stored as stacks) vs FrameReplayBuffer, measured as the
   ``nbytes()`` of real buffers (NumPy allocates lazily, so they cost no RAM until written).
2. Multiply-adds of one 3-frame 84×84 observation through the Masker and both encoders,
   counted with forward hooks on their conv and linear layers.

Run: ``python benchmarks/visual_costs.py``. Writes ``benchmarks/results/visual_costs.{json,md}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from _machine import machine_info
from torch import nn

from sparse_rl import agents

RESULTS = Path(__file__).parent / "results"
SPACE = gym.spaces.Box(0, 255, (9, 84, 84), np.uint8)
ACTIONS = gym.spaces.Box(-1, 1, (6,), np.float32)


def buffer_bytes(size: int) -> dict[str, int]:
    sb3 = 2 * size * math.prod(SPACE.shape)  # observations + next_observations, uint8
    sb3 += size * (6 * 4 + 4 + 4 + 4)  # actions, rewards, dones, timeouts (float32)
    frames = agents.FrameReplayBuffer(size, SPACE, ACTIONS, device="cpu")
    fixed = agents.FrameReplayBuffer(size, SPACE, ACTIONS, device="cpu", min_episode_length=250)
    return {
        "sb3_replay_buffer": sb3,
        "frame_buffer": frames.nbytes(),
        "frame_buffer_min_episode_250": fixed.nbytes(),
    }


def macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass, from the output sizes of its conv and linear layers."""
    total = 0

    def hook(layer: nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
            total += out.numel() * per_output
        elif isinstance(layer, nn.Linear):
            total += out.numel() * layer.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(x)
    for handle in handles:
        handle.remove()
    return total


def main() -> None:
    obs = torch.rand(1, *SPACE.shape)
    result = {
        "machine": machine_info(),
        "bytes_100k": buffer_bytes(100_000),
        "macs_per_observation": {
            "masker": macs(agents.Masker(pixel_max=1.0), obs),
            "encoder_small": macs(agents.PixelEncoder(SPACE, "small"), obs),
            "encoder_gb": macs(agents.PixelEncoder(SPACE, "gb"), obs),
        },
    }
    b, m = result["bytes_100k"], result["macs_per_observation"]
    md = [
        "# Visual agents: replay memory and multiply-adds",
        "",
        f"Command: `{result['machine']['command']}`; {result['machine']['date']}.",
        "",
        "100k transitions, 84×84, 3-frame stacks, 6-dim actions:",
        "",
        "| buffer | GB |",
        "|---|---|",
        f"| SB3 ReplayBuffer (obs + next_obs stacks) | {b['sb3_replay_buffer'] / 1e9:.2f} |",
        f"| FrameReplayBuffer (any episode length) | {b['frame_buffer'] / 1e9:.2f} |",
        f"| FrameReplayBuffer, min_episode_length=250 | "
        f"{b['frame_buffer_min_episode_250'] / 1e9:.2f} |",
        "",
        "One 3-frame 84×84 observation:",
        "",
        "| network | million multiply-adds |",
        "|---|---|",
        *(f"| {name} | {value / 1e6:.0f} |" for name, value in m.items()),
        "",
    ]
    (RESULTS / "visual_costs.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "visual_costs.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
