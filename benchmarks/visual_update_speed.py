"""Per-update time of SAC+shift, SVEA and MaDi (VisualSAC), side by side in one run.

Each agent fills its replay buffer with the same random transitions, then ``train`` runs
``--updates`` gradient steps; the three alternate (order rotating per repeat) and the medians of
the per-repeat ratios to SVEA are reported. MaDi's goal: Masker overhead over SVEA <= 10%.

Run: ``python benchmarks/visual_update_speed.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/visual_update_speed_<encoder>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_info

from sparse_rl import agents, envs

RESULTS = Path(__file__).parent / "results"
METHODS = ("sac", "svea", "madi")


def build(method: str, size: int, encoder: str, batch: int, fill: int) -> agents.VisualSAC:
    env = envs.make_env("walker-walk", obs="pixels", size=size, action_repeat=4)
    model = agents.VisualSAC(
        "VisualPolicy", env, method=method, batch_size=batch, buffer_size=fill + 10,
        learning_starts=fill, seed=0, policy_kwargs={"encoder": encoder, "net_arch": [1024, 1024]},
    )  # fmt: skip
    model.learn(fill)  # random actions until learning_starts: no updates yet
    return model


def time_updates(model: agents.VisualSAC, updates: int) -> float:
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(None, []))
    start = time.perf_counter()
    model.train(gradient_steps=updates, batch_size=model.batch_size)
    return (time.perf_counter() - start) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=84)
    parser.add_argument("--encoder", default="small", choices=sorted(agents.ENCODERS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.updates, args.repeats = 32, 8, 2, 2
    torch.set_num_threads(args.threads)
    models = {m: build(m, args.size, args.encoder, args.batch, 200) for m in METHODS}
    for model in models.values():
        time_updates(model, 1)  # warm-up
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for repeat in range(args.repeats):
        order = np.roll(METHODS, repeat)
        for method in order:
            times[method].append(time_updates(models[method], args.updates))
        print(f"repeat {repeat}: " + ", ".join(f"{m} {times[m][-1] * 1e3:.0f} ms" for m in METHODS))
    ratios = {
        m: statistics.median(a / b for a, b in zip(times[m], times["svea"], strict=True))
        for m in METHODS
    }
    result = {
        "machine": machine_info(),
        "settings": vars(args),
        "seconds_per_update": times,
        "ratio_to_svea_median": ratios,
    }
    mach = result["machine"]
    md = [
        "# Per-update time: SAC+shift vs SVEA vs MaDi (VisualSAC)",
        "",
        f"Command: `{mach['command']}`  ",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, torch {mach['torch']}, {args.threads} "
        f"thread(s); {mach['date']}.",
        "",
        f"walker-walk pixels {args.size}×{args.size}, 3-frame stacks, `{args.encoder}` encoder, "
        f"1024×1024 MLPs, batch {args.batch}; {args.updates} updates per measurement, "
        f"{args.repeats} repeats, order rotating.",
        "",
        "| method | median ms per update | ratio to SVEA (median) |",
        "|---|---|---|",
        *(f"| {m} | {statistics.median(times[m]) * 1e3:.0f} | {ratios[m]:.2f} |" for m in METHODS),
        "",
        f"Masker overhead over SVEA: **{(ratios['madi'] - 1) * 100:+.0f}%** (goal: <= 10%).",
        "",
    ]
    if not args.quick:
        name = f"visual_update_speed_{args.encoder}"
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
        (RESULTS / f"{name}.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
