"""Tables, goals and figure of the feature-selection benchmark (``feature_selection.py report``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _offline import Rows, by_arm, ci, fmt, header, save
from feature_selection import ARMS, NAME, NETWORK_ARMS

Groups = dict[str, dict[str, Rows]]
COLORS = {
    "set-attr": "#d62728",
    "set-strength": "#ff9896",
    "rigl-attr": "#1f77b4",
    "rigl-strength": "#aec7e8",
    "dense-attr": "#2ca02c",
    "dense-strength": "#98df8a",
    "quickselection": "#9467bd",
    "anova": "#777777",
    "random": "#bbbbbb",
    "all": "#000000",
}
#: The issue's goals: coverage on the Madelon-style problem and on XOR; "far above" random-K.
MADELON_COVERAGE, XOR_COVERAGE, FAR = 0.8, 0.9, 0.05
#: ANOVA is "at chance" on XOR when its top-K SVC accuracy is within this of 0.5.
CHANCE_BAND = 0.05


def _groups(rows: Rows) -> Groups:
    return by_arm(rows, lambda row: row["problem"])


def _values(rs: Rows, key: str) -> list[float]:
    return [r[key] for r in rs if r.get(key) is not None]


def _compare(a: Rows, b: Rows, key: str) -> str:
    """a ≥ b on the mean of ``key``, with the difference and whether the intervals overlap."""
    (ma, la, ha), (mb, lb, hb) = ci(_values(a, key)), ci(_values(b, key))
    apart = "intervals disjoint" if la > hb or ha < lb else "intervals overlap"
    if min(len(_values(a, key)), len(_values(b, key))) < 2:
        apart = "one seed: no interval"
    return f"{'yes' if ma >= mb else 'no'} ({ma - mb:+.3f}, {apart})"


def _table(groups: Groups) -> list[str]:
    lines = [
        "| problem | K | arm | seeds | coverage | top-K SVC accuracy | selection time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for problem, arms in groups.items():
        for arm in ARMS:
            rs = arms.get(arm)
            if not rs:
                continue
            seconds = np.median([r["seconds"] for r in rs])
            k = "all" if arm == "all" else rs[0]["k"]
            lines.append(
                f"| {problem} | {k} | {arm} | {len(rs)} | {fmt(_values(rs, 'coverage'))} "
                f"| {fmt(_values(rs, 'accuracy'))} | {seconds:.2f} |"
            )
    return lines


def _goals(groups: Groups) -> list[str]:
    """Each goal of the issue, cell by cell: what is measured, met or not."""
    lines: list[str] = []
    madelon, xor = groups.get("madelon", {}), groups.get("xor", {})
    if madelon:
        lines += [
            f"**Madelon-style: coverage ≥ {MADELON_COVERAGE} and ≥ ANOVA's** (mean over seeds).",
            "",
            "| arm | coverage | ≥ 0.8 | ≥ ANOVA |",
            "|---|---|---|---|",
        ]
        anova = madelon.get("anova")
        for arm in (*NETWORK_ARMS, "quickselection"):
            rs = madelon.get(arm)
            if not rs:
                continue
            mean = ci(_values(rs, "coverage"))[0]
            versus = _compare(rs, anova, "coverage") if anova else "-"
            lines.append(
                f"| {arm} | {fmt(_values(rs, 'coverage'))} "
                f"| {'yes' if mean >= MADELON_COVERAGE else 'no'} | {versus} |"
            )
        lines.append("")
    if xor:
        anova = xor.get("anova")
        at_chance = None
        if anova:
            accuracy = ci(_values(anova, "accuracy"))[0]
            at_chance = abs(accuracy - 0.5) <= CHANCE_BAND
            k, d = anova[0]["k"], anova[0]["n_features"]
            lines += [
                f"**XOR: coverage ≥ {XOR_COVERAGE} while ANOVA is at chance.** ANOVA: coverage "
                f"{fmt(_values(anova, 'coverage'))} (random columns: {k / d:.3f}), top-{k} SVC "
                f"accuracy {fmt(_values(anova, 'accuracy'))}: "
                f"{'at chance' if at_chance else 'not at chance'} (within {CHANCE_BAND} of 0.5).",
                "",
            ]
        lines += ["| arm | coverage | ≥ 0.9 | goal met |", "|---|---|---|---|"]
        for arm in (*NETWORK_ARMS, "quickselection"):
            rs = xor.get(arm)
            if not rs:
                continue
            high = ci(_values(rs, "coverage"))[0] >= XOR_COVERAGE
            met = "-" if at_chance is None else "yes" if high and at_chance else "no"
            lines.append(
                f"| {arm} | {fmt(_values(rs, 'coverage'))} | {'yes' if high else 'no'} | {met} |"
            )
        lines.append("")
    lines += [
        f"**Top-K accuracy far above random-K** (far: intervals disjoint and the mean at least "
        f"{FAR:.2f} above).",
        "",
        "| problem | arm | accuracy | minus random-K | far above |",
        "|---|---|---|---|---|",
    ]
    for problem, arms in groups.items():
        random = arms.get("random")
        if not random:
            continue
        _, _, random_high = ci(_values(random, "accuracy"))
        random_mean = ci(_values(random, "accuracy"))[0]
        for arm in (*NETWORK_ARMS, "quickselection", "anova"):
            rs = arms.get(arm)
            if not rs:
                continue
            mean, low, _ = ci(_values(rs, "accuracy"))
            far = "yes" if low > random_high and mean - random_mean >= FAR else "no"
            if min(len(rs), len(random)) < 2:
                far = "n/a (one seed)"
            lines.append(
                f"| {problem} | {arm} | {fmt(_values(rs, 'accuracy'))} "
                f"| {mean - random_mean:+.3f} | {far} |"
            )
    lines += [
        "",
        "**Attribution ≥ strength in mean coverage** (the paper's claim).",
        "",
        "| problem | network | attribution | strength | attribution ≥ strength |",
        "|---|---|---|---|---|",
    ]
    for problem in ("madelon", "xor"):
        arms = groups.get(problem, {})
        for family in ("set", "rigl", "dense"):
            attr, strength = arms.get(f"{family}-attr"), arms.get(f"{family}-strength")
            if attr and strength:
                lines.append(
                    f"| {problem} | {family} | {fmt(_values(attr, 'coverage'))} "
                    f"| {fmt(_values(strength, 'coverage'))} "
                    f"| {_compare(attr, strength, 'coverage')} |"
                )
    return lines


def _dots(ax: Any, arms: dict[str, Rows], key: str, title: str, goal: float | None) -> None:
    """One row per arm: the mean over seeds with its 95% interval."""
    names = [a for a in ARMS if arms.get(a) and _values(arms[a], key)]
    for i, arm in enumerate(names):
        mean, low, high = ci(_values(arms[arm], key))
        ax.errorbar(mean, i, xerr=[[mean - low], [high - mean]], fmt="o", color=COLORS[arm])
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    if goal is not None:
        ax.axvline(goal, color="green", linestyle="--", linewidth=1)
    ax.set(title=title, xlabel=key)


def _plot(groups: Groups, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = plt.figure(figsize=(15, 11), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(2.4, 1))
    axes = top.subplots(2, 3)
    for col, (problem, goal) in enumerate((("madelon", MADELON_COVERAGE), ("xor", XOR_COVERAGE))):
        if groups.get(problem):
            title = f"{problem}: coverage (dashed: goal)"
            _dots(axes[0, col], groups[problem], "coverage", title, goal)
    ax = axes[0, 2]
    for j, (problem, arms) in enumerate(groups.items()):
        names = [a for a in ARMS if arms.get(a) and a != "all"]
        times = [np.median([r["seconds"] for r in arms[a]]) for a in names]
        ax.scatter(times, [ARMS.index(a) for a in names], marker="os^"[j % 3], label=problem)
    ax.set_xscale("log")
    ax.set_yticks(range(len(ARMS) - 1), ARMS[:-1], fontsize=8)
    ax.invert_yaxis()
    ax.set(title="selection time (median, one thread)", xlabel="seconds")
    ax.legend(fontsize=8)
    for col, problem in enumerate(("madelon", "xor", "digits")):
        arms = groups.get(problem)
        if arms:
            k = next(iter(arms.values()))[0]["k"]
            random = arms.get("random")
            goal = ci(_values(random, "accuracy"))[0] if random else None
            title = f"{problem}: SVC on the top {k} (dashed: random-K)"
            _dots(axes[1, col], arms, "accuracy", title, goal)
    digits = groups.get("digits", {})
    maps = [a for a in ARMS if any("scores" in r for r in digits.get(a, []))]
    if maps:
        axes_maps = bottom.subplots(1, len(maps), squeeze=False)[0]
        for ax, arm in zip(axes_maps, maps, strict=True):
            scores = np.mean([r["scores"] for r in digits[arm] if "scores" in r], axis=0)
            side = round(float(np.sqrt(len(scores))))
            ax.imshow(np.asarray(scores).reshape(side, side), cmap="viridis")
            ax.set(title=arm, xticks=[], yticks=[])
        bottom.suptitle("digits: pixel importance, mean over seeds (share of the total)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(rows: Rows, root: Path, command: str) -> Path:
    """``root/feature_selection.{md,png}`` from the rows; the machine from the run's record."""
    groups = _groups(rows)
    md = [
        "# Feature selection with sparse networks (issue 18)",
        "",
        *header(root, NAME, command, rows),
        "",
        "Settings in `benchmarks/feature_selection.py` (problems, arms, splits). Mean over seeds "
        "with 95% bootstrap interval (`sparse_rl.reporting.bootstrap_mean_ci`); coverage = share "
        "of the relevant columns among the top K; accuracy = `StandardScaler + SVC()` on the top "
        "K, on the held-out 20%; time = median seconds of the selector's fit.",
        "",
        *_table(groups),
        "",
        "## Goals, cell by cell",
        "",
        *_goals(groups),
        "",
        f"Figure: `{NAME}.png` (coverage, accuracy, time; digits pixel-importance heat maps).",
        "",
    ]
    return save(root, NAME, md, partial(_plot, groups))
