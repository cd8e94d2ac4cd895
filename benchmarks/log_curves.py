"""Logged values over training, from run directories: what ``sparse-rl report`` does not draw.

``sparse-rl report`` plots returns and tabulates the last value of its diagnostics; this draws
any ``logs/progress.csv`` columns over env steps, one panel per task (env and noise variant), one
line per method and column: mean over seeds at the steps every seed logged, with the 95% bootstrap
band of ``sparse-rl report``. The published figures:

    python benchmarks/log_curves.py benchmarks/results/noise_robustness/runs \
        --keys sparsity/actor_real_connections sparsity/actor_noise_connections \
        --out benchmarks/results/noise_robustness/connectivity.png
    python benchmarks/log_curves.py benchmarks/results/visual_distractions/runs \
        --keys eval/video_hard/mask_iou eval/video_hard/mask_mean_agent \
        eval/video_hard/mask_mean_background \
        --out benchmarks/results/visual_distractions/mask_quality.png
"""

from __future__ import annotations

import argparse
import csv
from functools import reduce
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sparse_rl.reporting import DEFAULT_MODE, bootstrap_mean_ci, load_runs


def logged(progress_csv: Path, key: str) -> dict[int, float]:
    """Step → value of ``key`` (the last one logged at a step); empty without the column."""
    values: dict[int, float] = {}
    if progress_csv.is_file():
        with progress_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get(key) not in (None, ""):
                    values[int(float(row["time/total_timesteps"]))] = float(row[key])
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories, or folders that hold them")
    parser.add_argument("--keys", nargs="+", required=True, help="progress.csv columns to draw")
    parser.add_argument("--out", required=True, help="the figure (PNG)")
    args = parser.parse_args()

    curves: dict[str, dict[str, list[dict[int, float]]]] = {}  # task -> line -> seeds' values
    for run in sorted(load_runs(args.runs), key=lambda r: (r.method, r.seed)):
        for key in args.keys:
            values = logged(run.source / "logs" / "progress.csv", key)
            if values:
                line = f"{run.method}: {key.split('/')[-1]}"
                curves.setdefault(run.task(DEFAULT_MODE), {}).setdefault(line, []).append(values)
    if not curves:
        parser.error(f"no run logs any of {args.keys}")
    fig = Figure(figsize=(6 * len(curves), 4), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (task, lines) in zip(axes, sorted(curves.items()), strict=True):
        for line, seeds in lines.items():
            steps = sorted(reduce(set.intersection, (set(s) for s in seeds)))
            values = np.array([[s[step] for step in steps] for s in seeds])
            low, high = bootstrap_mean_ci(values, 2000, 0)
            (drawn,) = ax.plot(steps, np.nanmean(values, axis=0), label=f"{line} (n={len(seeds)})")
            ax.fill_between(steps, low, high, color=drawn.get_color(), alpha=0.2)
        ax.set(title=task, xlabel="steps", ylabel="logged value")
        ax.legend(fontsize="small")
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
