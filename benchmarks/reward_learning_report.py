"""Tables and figure of the offline reward-learning benchmark (``reward_learning.py report``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _offline import Rows, by_arm, ci, fmt, read_machine, save
from reward_learning import ABLATIONS, NAME, SEEDS
from reward_learning import ARMS as MAIN_ARMS

ARMS = (*MAIN_ARMS, *ABLATIONS)
COLORS = {
    "r2n-fanin4": "#17becf",
    "r2n-nocap": "#9edae5",
    "r2n-rigl": "#e377c2",
    "r2n-density0.2": "#8c564b",
    "r2n-nol1": "#bcbd22",
    "pebble-bpref": "#bbbbbb",
    "pebble": "#777777",
    "pebble+l1": "#1f77b4",
    "imitation": "#9467bd",
    "r2n-set": "#ff7f0e",
    "r2n": "#d62728",
    "r2n-trails": "#2ca02c",
    "pebble-trails": "#98df8a",
    "r2n-prune70": "#ff9896",
    "r2n-steps70": "#c49c94",
    "pebble-prune70": "#aec7e8",
    "pebble-steps70": "#c7c7c7",
}
Groups = dict[tuple, dict[str, Rows]]


def _groups(rows: Rows) -> Groups:
    return by_arm(rows, lambda row: (row["task"], row["noise"], row["labels"]))


def _table(groups: Groups) -> list[str]:
    lines = [
        "| task | noise | labels | arm | seeds | held-out pair accuracy | reward r "
        "| real / noise conn. | parameters (active) | time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, noise, labels), arms in sorted(groups.items()):
        for arm in ARMS:
            rs = arms.get(arm, [])
            if not rs:
                continue
            conn = "-"
            if "real_connections" in rs[0] and arm.startswith("r2n"):
                real = np.mean([r["real_connections"] for r in rs])
                fake = np.mean([r["noise_connections"] for r in rs])
                conn = f"{real:.1f} / {fake:.1f} (×{real / fake:.1f})"
            seconds = np.median([r["seconds"] for r in rs])
            size = _parameters(rs[0])
            accuracy = fmt([r["accuracy"] for r in rs])
            correlation = fmt([r["correlation"] for r in rs], 2)
            lines.append(
                f"| {task} | {noise} | {labels} | {arm} | {len(rs)} | {accuracy} "
                f"| {correlation} | {conn} | {size} | {seconds:.0f} |"
            )
    return lines


def _parameters(row: dict[str, Any]) -> str:
    """``total (active)`` in thousands; ``-`` for rows made before they were recorded."""
    if "parameters" not in row:
        return "-"
    return f"{row['parameters'] / 1e3:.1f}k ({row['active_parameters'] / 1e3:.1f}k)"


def _verdicts(groups: Groups) -> list[str]:
    """Each goal of the issue, per cell: met when the 95% intervals do not overlap."""
    lines = [
        "| task | noise | labels | r2n > pebble | r2n ≥ pebble+l1 | pebble ≥ imitation "
        "| r2n real/noise ≥ 3 |",
        "|---|---|---|---|---|---|---|",
    ]

    def acc(arms: dict[str, Rows], arm: str) -> tuple[float, float, float] | None:
        rs = arms.get(arm)
        return ci([r["accuracy"] for r in rs]) if rs else None

    for (task, noise, labels), arms in sorted(groups.items()):
        seeds = min(len(arms.get(a, [])) for a in ("r2n", "pebble", "pebble+l1"))
        if seeds < len(SEEDS):  # a run cut short: no verdict on fewer seeds
            lines.append(f"| {task} | {noise} | {labels} | pending: {seeds} of {len(SEEDS)} "
                         "seeds | | | |")  # fmt: skip
            continue
        r2n, pebble, l1, imit = (acc(arms, a) for a in ("r2n", "pebble", "pebble+l1", "imitation"))
        cells = []
        if r2n and pebble:
            cells.append(
                "yes" if r2n[1] > pebble[2] else "no (overlap)" if r2n[0] > pebble[0] else "no"
            )
        else:
            cells.append("-")
        if r2n and l1:
            verdict = "better" if r2n[1] > l1[2] else "worse" if r2n[2] < l1[1] else "tie"
            cells.append(f"{verdict} ({r2n[0] - l1[0]:+.3f})")
        else:
            cells.append("-")
        if pebble and imit:
            verdict = "yes" if pebble[0] >= imit[0] else "tie" if pebble[2] >= imit[1] else "no"
            cells.append(f"{verdict} ({pebble[0] - imit[0]:+.3f})")
        else:
            cells.append("-")
        rs = arms.get("r2n", [])
        if rs:
            ratio = np.mean([r["real_connections"] for r in rs]) / np.mean(
                [r["noise_connections"] for r in rs]
            )
            cells.append(f"{'yes' if ratio >= 3 else 'no'} (×{ratio:.1f})")
        else:
            cells.append("-")
        lines.append(f"| {task} | {noise} | {labels} | " + " | ".join(cells) + " |")
    return lines


def _plot(groups: Groups, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))

    def curve(ax: Any, points: list[tuple[float, tuple]], arm: str) -> None:
        xs, mean, low, high = [], [], [], []
        for x, key in points:
            rs = groups.get(key, {}).get(arm)
            if rs:
                m, lo, hi = ci([r["accuracy"] for r in rs])
                xs.append(x), mean.append(m), low.append(lo), high.append(hi)
        if xs:
            ax.plot(xs, mean, "o-", color=COLORS[arm], label=arm)
            ax.fill_between(xs, low, high, color=COLORS[arm], alpha=0.2)

    noises = sorted({k[1] for k in groups if k[0] == "Pendulum-v1" and k[2] == 500})
    labels = sorted({k[2] for k in groups if k[0] == "Pendulum-v1" and k[1] == 0.98})
    for arm in ARMS[:6]:
        curve(axes[0], [(f, ("Pendulum-v1", f, 500)) for f in noises], arm)
        curve(axes[1], [(n, ("Pendulum-v1", 0.98, n)) for n in labels], arm)
    axes[0].set(xlabel="noise fraction", ylabel="held-out pair accuracy",
                title="Pendulum, 500 labels")  # fmt: skip
    axes[1].set(xlabel="labels", xscale="log", title="Pendulum, 98% noise")
    axes[0].legend(fontsize=8)

    ax = axes[2]  # which inputs each reward model reads: connections per feature, seed 0
    key = ("Pendulum-v1", 0.95, 500)
    width = 0.4
    for i, arm in enumerate(("r2n-set", "r2n")):
        rs = [r for r in groups.get(key, {}).get(arm, []) if r["seed"] == 0]
        if rs:
            conn = np.asarray(rs[0]["connections"])
            ax.bar(np.arange(len(conn)) + i * width, conn, width, color=COLORS[arm], label=arm)
    ax.axvspan(-0.5, 2.5, color="green", alpha=0.12, label="real features")
    ax.set(
        xlabel="observation feature (0-2 real, then noise)",
        ylabel="active connections (of 64)",
        title="Pendulum, 95% noise, 500 labels, seed 0",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: Rows, results: Path, command: str) -> Path:
    groups = _groups(rows)
    info = read_machine(results / NAME)
    md = [
        "# Reward learning under noise features, offline (no SAC)",
        "",
        f"Command: `python benchmarks/reward_learning.py run --jobs 2` then `{command}`. "
        f"Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, "
        f"torch {info.get('torch', '?')}, one thread per run. Raw rows: "
        "`reward_learning/rows.jsonl`.",
        "",
        "Settings in `benchmarks/reward_learning.py` (arms, data, metrics). Mean over seeds with "
        "95% bootstrap interval; real / noise conn. = active input connections per real / per "
        "noise feature (of 64 hidden units, mean over members); parameters = the reward model's "
        "weights and biases, active = those its masks keep; time = median seconds of one "
        "training run.",
        "",
        *_table(groups),
        "",
        "## Goals, cell by cell (95% intervals)",
        "",
        *_verdicts(groups),
        "",
        "Figure: `reward_learning.png`. Analysis: `docs/reward_learning.md`.",
        "",
    ]
    return save(results, NAME, md, partial(_plot, groups))
