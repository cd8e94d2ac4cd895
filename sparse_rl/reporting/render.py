"""A :class:`~sparse_rl.reporting.summary.Summary` as figures, Markdown and JSON.

Figures use matplotlib's object API (no pyplot), so a report neither needs a display nor
changes the backend of the program that asks for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .runs import DIAGNOSTICS, diagnostic_column
from .summary import Summary


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _interval(estimate: float, low: float, high: float) -> str:
    return f"{_num(estimate)} [{_num(low)}, {_num(high)}]"


def _range_text(summary: Summary, env: str) -> str:
    bounds = summary.ranges[env]
    if bounds is None:
        return f"{env}: none (raw returns)"
    low, high = bounds
    shifted = "return" if low == 0 else f"(return {'-' if low > 0 else '+'} {_num(abs(low))})"
    return f"{env}: {shifted} / {_num(high - low)}, from {summary.range_source[env]}"


def _normalized(summary: Summary, task: str, value: float) -> float | None:
    bounds = summary.ranges[summary.task_env[task]]
    return None if bounds is None else (value - bounds[0]) / (bounds[1] - bounds[0])


def _colors(summary: Summary) -> dict[str, str]:
    """One color per method, the same in every panel and figure."""
    return {m: f"C{i % 10}" for i, m in enumerate(summary.methods)}


def plot_curves(summary: Summary, path: Path) -> None:
    """One panel per task: mean return over seeds with its 95% bootstrap band, per method."""
    from matplotlib.figure import Figure

    cols = min(3, len(summary.tasks))
    rows = math.ceil(len(summary.tasks) / cols)
    fig = Figure(figsize=(5.5 * cols, 3.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colors = _colors(summary)
    for ax, task in zip(axes, summary.tasks, strict=False):
        for method in summary.methods:
            band = summary.bands.get((task, method))
            if band is None:
                continue
            n = len(summary.cells[task, method].seeds)
            ax.plot(band.steps, band.mean, color=colors[method], label=f"{method} (n={n})")
            ax.fill_between(band.steps, band.low, band.high, color=colors[method], alpha=0.2)
        ax.set(title=task, xlabel="env steps", ylabel="eval return")
        ax.legend(fontsize="small")
    for ax in axes[len(summary.tasks) :]:
        ax.set_visible(False)
    fig.savefig(path, dpi=120)


def plot_metrics(summary: Summary, path: Path) -> None:
    """Aggregate metrics and pairwise probabilities of improvement, each with its 95% CI."""
    from matplotlib.figure import Figure

    pairs = [(x, y) for i, x in enumerate(summary.methods) for y in summary.methods[i + 1 :]]
    panels = len(summary.metric_names) + bool(pairs)
    height = 0.5 * max(len(summary.methods), len(pairs)) + 1.2
    fig = Figure(figsize=(3.6 * panels, height), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    colors = _colors(summary)
    for ax, name in zip(axes, summary.metric_names, strict=False):
        for row, method in enumerate(summary.methods):
            estimate, low, high = summary.metrics[method][name]
            ax.barh(row, high - low, left=low, height=0.6, color=colors[method], alpha=0.6)
            ax.vlines(estimate, row - 0.3, row + 0.3, color="k")
        ax.set_yticks(range(len(summary.methods)), summary.methods if ax is axes[0] else [])
        ax.set_title(name)
        ax.invert_yaxis()  # first method on top, as in the tables
        ax.set_xlabel("normalised score" if summary.normalized else "raw return")
        ax.grid(axis="x", alpha=0.3)
    if pairs:
        ax = axes[-1]
        for row, (x, y) in enumerate(pairs):
            estimate, low, high = summary.improvement[x, y]
            ax.barh(row, high - low, left=low, height=0.6, color=colors[x], alpha=0.6)
            ax.vlines(estimate, row - 0.3, row + 0.3, color="k")
        ax.set_yticks(range(len(pairs)), [f"P({x} > {y})" for x, y in pairs])
        ax.yaxis.tick_right()
        ax.invert_yaxis()
        ax.axvline(0.5, color="gray", linestyle="--", linewidth=1)
        ax.set(title="probability of improvement", xlim=(0, 1))
    fig.savefig(path, dpi=120)


def markdown(summary: Summary, command: str, reps: int, seed: int, figures: list[str]) -> str:
    """The report's text: settings, notes, a table per task, aggregates, pairwise improvement."""
    lines = [
        f"# Report: {', '.join(summary.methods)} on {len(summary.tasks)} task(s)",
        "",
        f"Command: `{command}`",
        "",
        "Score of a run = its return at its last evaluation. Per-task intervals: 95% percentile "
        "bootstrap of the mean over seeds; aggregate intervals: rliable's 95% stratified "
        f"bootstrap over runs; {reps} replicates, seed {seed}.",
        "",
        "Normalisation: " + "; ".join(_range_text(summary, env) for env in summary.ranges) + ".",
        "",
    ]
    if summary.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in summary.notes), ""]
    lines += ["## Final returns per task", ""]
    for task in summary.tasks:
        lines += [
            f"### {task}",
            "",
            "| method | seeds | final step | final return (mean) | 95% CI | normalised "
            "| per seed |",
            "|---|---|---|---|---|---|---|",
        ]
        for method in summary.methods:
            cell = summary.cells.get((task, method))
            if cell is None:
                continue
            mean = float(cell.finals.mean())
            steps = sorted(set(cell.final_steps))
            norm = _normalized(summary, task, mean)
            norm_text = "-" if norm is None else _num(norm)
            lines.append(
                f"| {method} | {len(cell.seeds)} | {', '.join(map(str, steps))} | {_num(mean)} | "
                f"[{_num(cell.ci[0])}, {_num(cell.ci[1])}] | {norm_text} | "
                f"{', '.join(_num(v) for v in cell.finals)} |"
            )
        lines.append("")
        lines += _diagnostics_table(summary, task)
    if summary.metrics:
        scores = "normalised scores" if summary.normalized else "raw returns"
        lines += [
            f"## Aggregate metrics ({scores}; tasks: {', '.join(summary.aggregate_tasks)})",
            "",
            "| method | runs per task | " + " | ".join(summary.metric_names) + " |",
            "|---|---|" + "---|" * len(summary.metric_names),
        ]
        for method, values in summary.metrics.items():
            cells = " | ".join(_interval(*values[name]) for name in summary.metric_names)
            lines.append(f"| {method} | {summary.runs_per_task[method]} | {cells} |")
        lines.append("")
    if summary.improvement:
        lines += [
            "## Probability of improvement",
            "",
            "P(row > column): the chance that a run of the row's method beats a run of the "
            "column's on a task, averaged over the aggregate tasks, with its 95% CI.",
            "",
            "| P(row > column) | " + " | ".join(summary.methods) + " |",
            "|---|" + "---|" * len(summary.methods),
        ]
        for x in summary.methods:
            row = [
                "-" if x == y else "{:.2f} [{:.2f}, {:.2f}]".format(*summary.improvement[x, y])
                for y in summary.methods
            ]
            lines.append(f"| {x} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["Figures: " + ", ".join(f"`{f}`" for f in figures) + ".", ""]
    return "\n".join(lines)


def _diagnostics_table(summary: Summary, task: str) -> list[str]:
    """Diagnostics of ``task``'s methods that logged them (:data:`DIAGNOSTICS`: reward models,
    sparse policies' connectivity, MaDi's masks), mean over seeds."""
    cells = {m: summary.cells[task, m] for m in summary.methods if (task, m) in summary.cells}
    columns = {diagnostic_column(k, summary.task_mode[task]): title for k, title in
               DIAGNOSTICS.items()}  # fmt: skip
    keys = [c for c in columns if any(c in cell.diagnostics for cell in cells.values())]
    if not keys:
        return []
    lines = [
        "Last logged diagnostics, mean over the seeds that logged a number:",
        "",
        "| method | " + " | ".join(columns[k] for k in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for method, cell in cells.items():
        values = [_num(cell.diagnostics[k]) if k in cell.diagnostics else "-" for k in keys]
        lines.append(f"| {method} | " + " | ".join(values) + " |")
    return [*lines, ""]


def to_json(summary: Summary, command: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report, plain JSON types only."""

    def interval(values: tuple[float, float, float]) -> dict[str, float]:
        return dict(zip(("estimate", "low", "high"), values, strict=True))

    return {
        "command": command,
        "settings": settings,
        "normalization": {
            env: {"range": None if b is None else list(b), "from": summary.range_source[env]}
            for env, b in summary.ranges.items()
        },
        "notes": summary.notes,
        "tasks": {
            task: {
                "env": summary.task_env[task],
                "methods": {
                    method: {
                        "seeds": list(cell.seeds),
                        "final_steps": list(cell.final_steps),
                        "finals": cell.finals.tolist(),
                        "mean": float(cell.finals.mean()),
                        "ci": list(cell.ci),
                        "normalized_mean": _normalized(summary, task, float(cell.finals.mean())),
                        "finished": list(cell.finished),
                        "diagnostics": cell.diagnostics,
                        "sources": list(cell.sources),
                    }
                    for (t, method), cell in summary.cells.items()
                    if t == task
                },
            }
            for task in summary.tasks
        },
        "curves": {
            task: {
                method: {k: getattr(band, k).tolist() for k in ("steps", "mean", "low", "high")}
                for (t, method), band in summary.bands.items()
                if t == task
            }
            for task in summary.tasks
        },
        "aggregate": {
            "tasks": summary.aggregate_tasks,
            "scores": "normalized" if summary.normalized else "raw",
            "runs_per_task": summary.runs_per_task,
            "metrics": {
                m: {name: interval(v) for name, v in values.items()}
                for m, values in summary.metrics.items()
            },
        },
        "probability_of_improvement": [
            {"x": x, "y": y, **interval(v)} for (x, y), v in summary.improvement.items()
        ],
    }
