"""Why masks are 0/1 floats and what the gradient/weight masking costs per step, on this CPU.

1. One masking operation on 1M float32 entries: boolean ``where`` / ``masked_fill`` vs a float
   multiply (the choice behind storing masks in the weight's dtype).
2. Per sparse layer and training step: time of backward and optimizer step of a 3x256 MLP
   (fused Adam, batch 256) with the sparse core's hooks vs the same 90%-sparse weights with the
   hooks removed, alternating, median over repeats.

Run: ``python benchmarks/mask_ops.py``. Writes ``benchmarks/results/mask_ops.{json,md}``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from _machine import machine_info
from sparse_core_speed import median_time, mlp

from sparse_rl import sparse_nets as sn

RESULTS = Path(__file__).parent / "results"


def mask_ops() -> dict[str, float]:
    n = 1 << 20
    grad, keep = torch.randn(n), torch.rand(n) < 0.1
    keep_f, drop = keep.float(), ~keep
    return {
        "where_bool_us": 1e6 * median_time(lambda: torch.where(keep, grad, 0.0), 200),
        "masked_fill_bool_us": 1e6 * median_time(lambda: grad.masked_fill(drop, 0.0), 200),
        "mul_float_us": 1e6 * median_time(lambda: grad * keep_f, 200),
    }


def hook_cost(steps: int = 300, repeats: int = 7) -> dict[str, float]:
    batches = [(torch.randn(256, 64), torch.randn(256, 10)) for _ in range(20)]

    def run(hooks: bool) -> float:
        torch.manual_seed(0)
        model = mlp(256)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        sparsity = sn.sparsify(model, optimizer, 0.1, "erk", "static", seed=0)
        if not hooks:
            sparsity.remove()
        spent = 0.0
        for i in range(steps):
            x, y = batches[i % len(batches)]
            loss = ((model(x) - y) ** 2).mean()
            optimizer.zero_grad()
            start = time.perf_counter()
            loss.backward()
            optimizer.step()
            spent += time.perf_counter() - start
        return 1e6 * spent / steps

    run(True), run(False)  # warm-up
    diffs = []
    for r in range(repeats):
        order = (True, False) if r % 2 == 0 else (False, True)
        times = {h: run(h) for h in order}
        diffs.append(times[True] - times[False])
    layers = 4
    return {
        "per_step_us": statistics.median(diffs),
        "per_layer_us": statistics.median(diffs) / layers,
    }


def main() -> None:
    result = {"machine": machine_info(), "mask_ops": mask_ops(), "hooks": hook_cost()}
    m, ops, hooks = result["machine"], result["mask_ops"], result["hooks"]
    md = "\n".join([
        "# Mask operations and hook cost",
        "",
        f"Command: `{m['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
        f"({m['torch_threads']} threads), {m['date']}",
        "",
        "## One masking operation on 1M float32 entries (median µs)",
        "",
        "| boolean where | boolean masked_fill | float multiply |",
        "|---|---|---|",
        f"| {ops['where_bool_us']:.0f} | {ops['masked_fill_bool_us']:.0f} "
        f"| {ops['mul_float_us']:.0f} |",
        "",
        "## Sparse-core hooks in a training step (3×256 MLP, fused Adam, batch 256)",
        "",
        "Backward + optimizer step, hooks on minus hooks removed: "
        f"{hooks['per_step_us']:.0f} µs per step, {hooks['per_layer_us']:.0f} µs per sparse "
        "layer (median of 7 alternating repeats).",
    ]) + "\n"  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mask_ops.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "mask_ops.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
