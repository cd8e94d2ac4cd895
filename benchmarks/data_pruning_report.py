"""Tables, the goal's verdicts, the wall-time savings and the figure of the data pruning
benchmark (``report``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from _offline import Rows, by_arm, ci, fmt, header, save
from data_pruning import ARMS, NAME, PROBLEMS, PRUNED, SEQUENCE_ONLY

Groups = dict[str, dict[str, Rows]]
#: The arms judged against the goal: everything that trains on ~70% of the compute.
CANDIDATES = (*PRUNED, *SEQUENCE_ONLY)
COLORS = {
    "full": "#000000",
    "equal-compute": "#7f7f7f",
    "random-70": "#1f77b4",
    "infobatch-70": "#d62728",
    "hardest-70": "#2ca02c",
    "timesteps-70": "#9467bd",
}


def _groups(rows: Rows) -> Groups:
    return by_arm(rows, lambda row: row["problem"])


def _problems(groups: Groups) -> list[str]:
    return [p for p in PROBLEMS if p in groups] + sorted(set(groups) - set(PROBLEMS))


def _paired(rs: Rows, reference: Rows, key: str, ratio: bool = False) -> list[float]:
    """Per-seed ``row - reference`` (or ``row / reference``) on ``key``, seeds in both."""
    ref = {r["seed"]: r[key] for r in reference}
    if ratio:
        return [r[key] / ref[r["seed"]] for r in rs if r["seed"] in ref and ref[r["seed"]] > 0]
    return [r[key] - ref[r["seed"]] for r in rs if r["seed"] in ref]


def _signed(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    mean, low, high = ci(values)
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _table(groups: Groups) -> list[str]:
    lines = [
        "| problem | arm | seeds | epochs | samples seen (share) | compute share | test accuracy "
        "| − full (paired) | train s (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for problem in _problems(groups):
        arms = groups[problem]
        full = arms.get("full", [])
        for arm in ARMS:
            rs = arms.get(arm)
            if not rs:
                continue
            seen = np.mean([r["samples_seen"] for r in rs])
            lines.append(
                f"| {problem} | {arm} | {len(rs)} | {rs[0]['epochs']} "
                f"| {seen:.0f} ({np.mean([r['samples_share'] for r in rs]):.2f}) "
                f"| {np.mean([r['compute_share'] for r in rs]):.2f} "
                f"| {fmt([r['accuracy'] for r in rs])} "
                f"| {_signed(_paired(rs, full, 'accuracy')) if arm != 'full' else ''} "
                f"| {np.median([r['seconds'] for r in rs]):.1f} |"
            )
    return lines


def verdicts(groups: Groups) -> tuple[list[str], dict[tuple[str, str], bool]]:
    """The goal per (problem, candidate arm): mean accuracy at or above the lower end of the
    full arm's 95% interval, and at or above the lower end of the equal-compute arm's. Never
    met on one seed (no interval)."""
    lines = [
        "| problem | arm | compute share | accuracy | full | equal-compute | vs full "
        "| vs equal-compute | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    met: dict[tuple[str, str], bool] = {}
    for problem in _problems(groups):
        arms = groups[problem]
        full, equal = arms.get("full"), arms.get("equal-compute")
        if not full or not equal:
            continue
        _, full_low, full_high = ci([r["accuracy"] for r in full])
        _, equal_low, equal_high = ci([r["accuracy"] for r in equal])
        for arm in CANDIDATES:
            rs = arms.get(arm)
            if not rs:
                continue
            mean = float(np.mean([r["accuracy"] for r in rs]))
            enough = min(len(rs), len(full), len(equal)) > 1
            vs_full = "within" if mean <= full_high else "above"
            vs_full = vs_full if mean >= full_low else "below"
            vs_equal = "not worse" if mean <= equal_high else "better"
            vs_equal = vs_equal if mean >= equal_low else "worse"
            ok = enough and mean >= full_low and mean >= equal_low
            met[(problem, arm)] = ok
            goal = ("met" if ok else "not met") if enough else "one seed: no interval"
            lines.append(
                f"| {problem} | {arm} | {np.mean([r['compute_share'] for r in rs]):.2f} "
                f"| {fmt([r['accuracy'] for r in rs])} | {fmt([r['accuracy'] for r in full])} "
                f"| {fmt([r['accuracy'] for r in equal])} "
                f"| {vs_full} ({_signed(_paired(rs, full, 'accuracy'))}) "
                f"| {vs_equal} ({_signed(_paired(rs, equal, 'accuracy'))}) | {goal} |"
            )
    return lines, met


def savings(groups: Groups) -> tuple[list[str], dict[tuple[str, str], float]]:
    """Measured training wall time against the full arm of the same seed: the paired ratio
    (mean and interval) and the saving 1 − ratio, beside the compute share."""
    lines = [
        "| problem | arm | compute share | train s (median) | full (median) "
        "| time / full (paired) | wall-time saving |",
        "|---|---|---|---|---|---|---|",
    ]
    saved: dict[tuple[str, str], float] = {}
    for problem in _problems(groups):
        arms = groups[problem]
        full = arms.get("full")
        if not full:
            continue
        for arm in (*CANDIDATES, "equal-compute"):
            rs = arms.get(arm)
            ratios = _paired(rs or [], full, "seconds", ratio=True)
            if not ratios:
                continue
            saved[(problem, arm)] = 1 - float(np.mean(ratios))
            lines.append(
                f"| {problem} | {arm} | {np.mean([r['compute_share'] for r in rs]):.2f} "  # type: ignore[union-attr]
                f"| {np.median([r['seconds'] for r in rs]):.1f} "  # type: ignore[union-attr]
                f"| {np.median([r['seconds'] for r in full]):.1f} | {fmt(ratios, 2)} "
                f"| {saved[(problem, arm)]:.0%} |"
            )
    return lines, saved


def _plot(groups: Groups, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    problems = _problems(groups)
    fig, axes = plt.subplots(
        1, len(problems), figsize=(5.2 * len(problems), 4.2), squeeze=False, layout="constrained"
    )
    for ax, problem in zip(axes[0], problems, strict=True):
        arms = groups[problem]
        for arm in ARMS:
            rs = arms.get(arm)
            if not rs:
                continue
            color = COLORS.get(arm, "#bcbd22")
            epochs = min(len(r["curve"]) for r in rs)
            share = np.mean([[c[2] for c in r["curve"][:epochs]] for r in rs], axis=0)
            accuracy = np.mean([[c[1] for c in r["curve"][:epochs]] for r in rs], axis=0)
            ax.plot(share, accuracy, "-", color=color, linewidth=1, alpha=0.6)
            mean, low, high = ci([r["accuracy"] for r in rs])
            x = float(np.mean([r["compute_share"] for r in rs]))
            ax.errorbar(
                x, mean, yerr=[[mean - low], [high - mean]], fmt="o", color=color, capsize=3,
                label=arm,
            )  # fmt: skip
        finals = [r["accuracy"] for rs in arms.values() for r in rs]
        low_y = min(finals) - 0.08 if finals else 0
        ax.set(
            title=problem, xlabel="samples seen, share of the full arm's (frames: timesteps-70)",
            ylim=(max(0.0, low_y), min(1.0, max(finals, default=1) + 0.03)),
        )  # fmt: skip
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Test accuracy against compute: learning curves (mean over seeds) and final accuracy "
        "with 95% intervals"
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(rows: Rows, root: Path, command: str) -> Path:
    """``root/data_pruning.{md,png}`` from the rows; the machine from the run's record."""
    groups = _groups(rows)
    goal_lines, met = verdicts(groups)
    saving_lines, saved = savings(groups)
    where = [f"{p}/{a}" for (p, a), ok in met.items() if ok]
    summary = f"Goal met in {len(where)} of {len(met)} (problem, arm) cells" + (
        f": {', '.join(where)}." if where else "."
    )
    infobatch = [
        f"{p} {saved[(p, 'infobatch-70')]:.0%}"
        for p in _problems(groups)
        if (p, "infobatch-70") in saved
    ]
    measured = (
        f"Measured wall-time saving of infobatch-70 against full data: {', '.join(infobatch)}."
        if infobatch
        else ""
    )
    md = [
        "# Dynamic data pruning: 70% of the samples per epoch against full data (issue 20)",
        "",
        *header(root, NAME, command, rows),
        "",
        "Settings in `benchmarks/data_pruning.py` (problems, models, arms, training). Mean over "
        "seeds with 95% bootstrap interval (`sparse_rl.reporting.bootstrap_mean_ci`); paired "
        "columns: per-seed differences (or ratios) against the arm named, same initialisation. "
        "Samples seen: gradient computations over the run; compute share: samples seen over the "
        "full arm's (frames for `timesteps-70`); the pruned arms see all data in the last 12.5% "
        "of the epochs (annealing), so their share is about 0.74, and `equal-compute` trains on "
        "all data for that many epochs.",
        "",
        *_table(groups),
        "",
        "## Goal: accuracy at ~70% compute within the full-data interval and not below "
        "equal-compute",
        "",
        "Met when the arm's mean accuracy is at or above the lower end of the full arm's 95% "
        "interval and at or above the lower end of the equal-compute arm's ('above' / 'better': "
        "above the upper end).",
        "",
        summary,
        "",
        *goal_lines,
        "",
        "## Wall time",
        "",
        "Training seconds (the loop and the sampler's draws, one thread; testing after each "
        "epoch is not timed) against the full arm of the same seed.",
        "",
        *([measured, ""] if measured else []),
        *saving_lines,
        "",
        f"Figure: `{NAME}.png`.",
        "",
    ]
    return save(root, NAME, md, partial(_plot, groups))
