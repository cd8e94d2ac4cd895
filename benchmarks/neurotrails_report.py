"""Tables, the goals' verdicts and the figure of the NeuroTrails benchmark (``report``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from _offline import Rows, by_arm, ci, fmt, header, save
from neurotrails import ARMS, HIDDEN, MAIN, NAME, PROBLEMS

Groups = dict[str, dict[str, Rows]]
METRICS = (
    ("accuracy", "accuracy"),
    ("nll", "NLL"),
    ("ece", "ECE"),
    ("brier", "Brier"),
    ("nll_prob", "NLL (mean prob)"),
    ("ece_prob", "ECE (mean prob)"),
    ("member_accuracy", "head accuracy"),
    ("disagreement", "disagreement"),
)


def _values(rows: Rows, key: str) -> list[float]:
    return [r[key] for r in rows if r.get(key) is not None]


def _table(groups: Groups) -> list[str]:
    names = " | ".join(label for _, label in METRICS)
    lines = [
        f"| problem | arm | seeds | shared layers | heads | active params | MACs / sample "
        f"| {names} | train time (s) |",
        "|---|---|---|---|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for problem in [p for p in PROBLEMS if p in groups] + sorted(set(groups) - set(PROBLEMS)):
        for arm, spec in ARMS.items():
            rs = groups[problem].get(arm)
            if not rs:
                continue
            cells = " | ".join(fmt(_values(rs, key)) for key, _ in METRICS)
            active = int(np.mean([r["active_parameters"] for r in rs]))
            macs = int(np.mean([r["macs"] for r in rs]))
            seconds = np.median([r["seconds"] for r in rs])
            lines.append(
                f"| {problem} | {arm} | {len(rs)} | {spec.shared} | {spec.heads} | {active} "
                f"| {macs} | {cells} | {seconds:.1f} |"
            )
    return lines


def verdicts(groups: Groups) -> tuple[list[str], dict[tuple[str, str], dict[str, bool]]]:
    """Per problem and NeuroTrails arm, the three goals of the module docstring, and whether its
    active parameters stay within one dense network's."""
    lines = [
        "| problem | arm | NLL, ECE below single (disjoint) | accuracy within full's "
        "interval | disagreement between TreeNet's and full's | active ≤ single |",
        "|---|---|---|---|---|---|",
    ]
    met: dict[tuple[str, str], dict[str, bool]] = {}
    for problem, arms in groups.items():
        single, full, tree = arms.get("single"), arms.get("full"), arms.get("treenet")
        for arm in [a for a in ARMS if a.startswith("neurotrails")]:
            rs = arms.get(arm)
            if not rs:
                continue
            goals: dict[str, bool] = {}
            cells = []
            if single and min(len(rs), len(single)) > 1:
                below = []
                for key in ("nll", "ece"):
                    _, _, high = ci(_values(rs, key))
                    _, low, _ = ci(_values(single, key))
                    below.append(high < low)
                goals["calibration"] = all(below)
                verdict = "yes" if all(below) else f"no (NLL {below[0]}, ECE {below[1]})"
                cells.append(verdict.replace("True", "yes").replace("False", "no"))
            else:
                cells.append("one seed or no single: no interval")
            if full and min(len(rs), len(full)) > 1:
                mean = ci(_values(rs, "accuracy"))[0]
                _, low, high = ci(_values(full, "accuracy"))
                goals["accuracy"] = mean >= low
                where = "above" if mean > high else "within" if mean >= low else "below"
                cells.append(f"{'yes' if mean >= low else 'no'} ({mean:.3f}: {where})")
            else:
                cells.append("one seed or no full: no interval")
            if full and tree:
                nt, t, f = (np.mean(_values(g, "disagreement")) for g in (rs, tree, full))
                goals["diversity"] = bool(min(t, f) <= nt <= max(t, f))
                cells.append(
                    f"{'yes' if goals['diversity'] else 'no'} ({nt:.3f}; TreeNet {t:.3f}, "
                    f"full {f:.3f})"
                )
            else:
                cells.append("-")
            budget = max(r["active_parameters"] - r["single_parameters"] for r in rs) <= 0
            cells.append("yes" if budget else "no")
            met[(problem, arm)] = goals
            lines.append(f"| {problem} | {arm} | " + " | ".join(cells) + " |")
    return lines, met


def _plot(groups: Groups, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    problems = [p for p in PROBLEMS if p in groups] or sorted(groups)
    fig, axes = plt.subplots(
        len(problems), 2, figsize=(11, 3.9 * len(problems)), squeeze=False, layout="constrained"
    )
    colors = {"single": "#000000", "full": "#2ca02c", "treenet": "#ff7f0e"}
    for i, problem in enumerate(problems):
        arms = groups[problem]
        ax = axes[i, 0]
        for arm in ARMS:
            rs = arms.get(arm)
            if not rs:
                continue
            mean, low, high = ci(_values(rs, "accuracy"))
            active = np.mean([r["active_parameters"] for r in rs])
            color = colors.get(arm, "#1f77b4")
            ax.errorbar(active, mean, yerr=[[mean - low], [high - mean]], fmt="o", color=color)
            ax.annotate(arm, (active, mean), textcoords="offset points", xytext=(5, 3), fontsize=7)
        ax.set(xscale="log", xlabel="active parameters", ylabel="test accuracy", title=problem)
        ax.margins(x=0.25)  # room for the labels
        ax = axes[i, 1]
        points = [
            (ARMS[a].shared, ci(_values(arms[a], "disagreement")))
            for a in ARMS
            if a.startswith("neurotrails") and ARMS[a].density is None and arms.get(a)
        ]
        if points:
            xs = [k for k, _ in points]
            mean_, low_, high_ = (np.array([p[1][n] for p in points]) for n in range(3))
            ax.plot(xs, mean_, "o-", color="#1f77b4", label="neurotrails (sparse)")
            ax.fill_between(xs, low_, high_, color="#1f77b4", alpha=0.2)
        for arm in ("full", "treenet"):
            rs = arms.get(arm)
            if rs:
                mean, low, high = ci(_values(rs, "disagreement"))
                yerr = [[mean - low], [high - mean]]
                ax.errorbar(ARMS[arm].shared, mean, yerr=yerr, fmt="s", color=colors[arm])
                ax.plot([], [], "s", color=colors[arm], label=f"{arm} (dense)")
        ax.set(xlabel="shared Linear layers (split point)", ylabel="head disagreement")
        ax.set_xticks(range(len(HIDDEN) + 1))
        ax.set_title(f"{problem}: diversity against the split point")
        ax.legend(fontsize=7)
    fig.suptitle("NeuroTrails: accuracy against active parameters; disagreement against split")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(rows: Rows, root: Path, command: str) -> Path:
    """``root/neurotrails.{md,png}`` from the rows; the machine from the run's record."""
    groups: Groups = by_arm(rows, lambda row: row["problem"])
    lines, met = verdicts(groups)
    summary = []
    for problem in groups:
        goals = met.get((problem, MAIN), {})
        done = [g for g, ok in goals.items() if ok]
        summary.append(
            f"- {problem}, {MAIN}: {len(done)} of 3 goals met"
            + (f" ({', '.join(done)})" if done else "")
            + ("" if len(goals) == 3 else f"; {3 - len(goals)} not judged (too few rows)")
            + "."
        )
    md = [
        "# NeuroTrails: sparse multi-head ensembles against single, TreeNet and full ensemble "
        "(issue 19)",
        "",
        *header(root, NAME, command, rows),
        "",
        "Settings in `benchmarks/neurotrails.py` (problems, network, arms, training). Mean over "
        "seeds with 95% bootstrap interval (`sparse_rl.reporting.bootstrap_mean_ci`). The "
        "prediction is the mean of the heads' logits (NeuroTrails' rule); the '(mean prob)' "
        "columns average the heads' probabilities instead. Shared layers: Linear layers in the "
        "trunk (0 = independent networks); active params: weights counted through the masks, "
        "biases in full; MACs: multiply-accumulates per sample at active weights; head "
        "accuracy: mean accuracy of the heads alone; disagreement: mean pairwise share of "
        "different argmax between heads; train time: median seconds of one training run.",
        "",
        *_table(groups),
        "",
        "## Goals",
        "",
        f"For {MAIN} (the TreeNet split) and every other split: NLL and ECE below the single "
        "dense network's, 95% intervals disjoint; mean accuracy at or above the low end of the "
        "full ensemble's interval; mean disagreement between TreeNet's and the full "
        "ensemble's means.",
        "",
        *summary,
        "",
        *lines,
        "",
        f"Figure: `{NAME}.png`.",
        "",
    ]
    return save(root, NAME, md, partial(_plot, groups))
