"""Reward-ensemble training step: a Python loop over members vs one batched matmul per layer.

Same ensemble (3 members, 3×256, LeakyReLU, tanh), same Bradley–Terry loss, same Adam; batch of
128 segment pairs of 50 steps, each member its own shuffle (B-Pref), inputs the size of
noisy HalfCheetah at f = 0.9 (170 obs + 6 actions). The loop is ``RewardEnsemble.forward`` (each
member in turn); the batched variant stacks the members' weights and runs ``torch.baddbmm`` per
layer. Both alternate within each repeat; the ratio is the median over repeats. The faster one
is what ``RewardEnsemble`` uses.

Run: ``python benchmarks/reward_model_speed.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/reward_model_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from _machine import machine_info
from sparse_rl.agents.pbrl.reward_model import RewardEnsemble, preference_loss
from torch.nn import functional as F

RESULTS = Path(__file__).parent / "results"


def batched_rewards(ensemble: RewardEnsemble, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """All members at once: stacked weights, one ``baddbmm`` per layer (the alternative);
    independent members only (``shared_layers=0``)."""
    if ensemble.shared_layers:
        raise ValueError("batched_rewards times independent members; got a shared trunk.")
    h = torch.cat([obs, act], dim=-1)
    batch_shape = h.shape[1:-1]
    h = h.reshape(h.shape[0], -1, h.shape[-1])
    depth = len(ensemble.members[0])
    for i in range(depth):
        layers = [member[i] for member in ensemble.members]
        weight = torch.stack([layer.weight for layer in layers])
        bias = torch.stack([layer.bias for layer in layers]).unsqueeze(1)
        h = torch.baddbmm(bias, h, weight.transpose(1, 2))
        h = F.leaky_relu(h) if i < depth - 1 else torch.tanh(h)
    return h.reshape(h.shape[0], *batch_shape)


def step_time(batched: bool, steps: int, data: tuple[torch.Tensor, ...], seed: int) -> float:
    torch.manual_seed(seed)
    obs_dim, act_dim = data[0].shape[-1], data[1].shape[-1]
    ensemble = RewardEnsemble(obs_dim, act_dim, members=3)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=3e-4)
    o0, a0, o1, a1, y = data

    def rewards(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return batched_rewards(ensemble, o, a) if batched else ensemble(o, a, per_member=True)

    start = time.perf_counter()
    for _ in range(steps):
        loss = preference_loss(rewards(o0, a0).sum(-1), rewards(o1, a1).sum(-1), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 1, 2
    torch.set_num_threads(args.threads)
    members, batch, length, obs_dim, act_dim = 3, 128, 50, 170, 6
    g = torch.Generator().manual_seed(0)
    data = (
        torch.randn(members, batch, length, obs_dim, generator=g),
        torch.randn(members, batch, length, act_dim, generator=g),
        torch.randn(members, batch, length, obs_dim, generator=g),
        torch.randn(members, batch, length, act_dim, generator=g),
        (torch.rand(members, batch, generator=g) > 0.5).float(),
    )
    times: dict[str, list[float]] = {"batched": [], "loop": []}
    for repeat in range(args.repeats):
        order = ("batched", "loop") if repeat % 2 == 0 else ("loop", "batched")
        for variant in order:
            times[variant].append(step_time(variant == "batched", args.steps, data, repeat))
        print(f"repeat {repeat}: batched {times['batched'][-1] * 1e3:.0f} ms, "
              f"loop {times['loop'][-1] * 1e3:.0f} ms")  # fmt: skip
    ratios = [b / lp for b, lp in zip(times["batched"], times["loop"], strict=True)]
    result = {
        "machine": machine_info(),
        "settings": vars(args),
        "seconds_per_step": times,
        "ratio_batched_over_loop_median": statistics.median(ratios),
    }
    m = result["machine"]
    md = [
        "# Reward-ensemble training step: a loop over members vs batched",
        "",
        f"Command: `{m['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {args.threads} torch "
        f"thread(s); {m['date']}.",
        "",
        f"3 members × (176 → 256 → 256 → 256 → 1), batch {batch} pairs × {length} steps, each "
        f"member its own batch; {args.steps} Adam steps per measurement, {args.repeats} repeats.",
        "",
        "| variant | median ms per step |",
        "|---|---|",
        f"| loop over members (`RewardEnsemble`) | {statistics.median(times['loop']) * 1e3:.0f} |",
        f"| batched: baddbmm over stacked weights | "
        f"{statistics.median(times['batched']) * 1e3:.0f} |",
        "",
        f"**batched / loop = {result['ratio_batched_over_loop_median']:.3f}** (median of "
        "per-repeat ratios: " + ", ".join(f"{r:.3f}" for r in ratios) + ").",
        "",
    ]
    if not args.quick:
        (RESULTS / "reward_model_speed.json").write_text(json.dumps(result, indent=1))
        (RESULTS / "reward_model_speed.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
