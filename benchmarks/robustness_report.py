"""Tables, the claim's verdicts and the figure of the robustness benchmark (``report``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
from _offline import Rows, by_arm, ci, fmt, header, save
from robustness import ARMS, DENSITIES, MODELS, NAME, PGD_EPS, SETTINGS

Groups = dict[tuple[str, str], dict[str, Rows]]
COLORS = {"dense": "#000000", "rigl": "#1f77b4", "set": "#d62728"}


def mce(accuracy: Mapping[str, Sequence[float]], reference: Mapping[str, Sequence[float]]) -> float:
    """Mean over kinds of Σ_s error / Σ_s reference error: ``CorruptionReport.mce`` computed
    from two rows' accuracy tables (the reference is the dense model of the same seed)."""
    ratios = []
    for kind, accs in accuracy.items():
        ref = float(np.sum(1 - np.asarray(reference[kind])))
        ratios.append(float(np.sum(1 - np.asarray(accs))) / ref if ref > 0 else np.nan)
    return float(np.mean(ratios))


def _groups(rows: Rows) -> Groups:
    return by_arm(rows, lambda row: (row["model"], row["setting"]))


def _ordered(groups: Groups) -> list[tuple[str, str]]:
    rank = {(m, s): (MODELS.index(m), SETTINGS.index(s)) for m in MODELS for s in SETTINGS}
    return sorted(groups, key=lambda k: rank.get(k, (99, 99)))


def _mces(rs: Rows, dense: Rows) -> list[float]:
    """Each row's mCE against the dense row of the same seed (seeds without one are skipped)."""
    reference = {r["seed"]: r["accuracy"] for r in dense}
    return [mce(r["accuracy"], reference[r["seed"]]) for r in rs if r["seed"] in reference]


def _paired(rs: Rows, dense: Rows, key: str) -> list[float]:
    """Per-seed differences ``row - dense`` on ``key`` (seeds present in both)."""
    reference = {r["seed"]: r[key] for r in dense}
    return [r[key] - reference[r["seed"]] for r in rs if r["seed"] in reference]


def _table(groups: Groups) -> list[str]:
    lines = [
        "| model | setting | arm | seeds | train samples | clean | mCA | mCE vs dense "
        f"| relative drop | PGD (ε={PGD_EPS}) | train time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in _ordered(groups):
        arms = groups[key]
        dense = arms.get("dense", [])
        for arm in ARMS:
            rs = arms.get(arm)
            if not rs:
                continue
            values = {k: [r[k] for r in rs] for k in ("clean", "mca", "relative_drop", "pgd")}
            seconds = np.median([r["seconds"] for r in rs])
            lines.append(
                f"| {key[0]} | {key[1]} | {arm} | {len(rs)} | {rs[0]['train_samples']} "
                f"| {fmt(values['clean'])} | {fmt(values['mca'])} | {fmt(_mces(rs, dense))} "
                f"| {fmt(values['relative_drop'])} | {fmt(values['pgd'])} | {seconds:.1f} |"
            )
    return lines


def verdicts(groups: Groups) -> tuple[list[str], dict[tuple[str, str], bool]]:
    """The claim per (model, setting, DST arm): DST mCA above dense with disjoint intervals.
    Also the paired per-seed difference, the more sensitive view of the same seeds."""
    lines = [
        "| model | setting | arm | mCA | dense mCA | DST − dense (paired) | intervals | claim |",
        "|---|---|---|---|---|---|---|---|",
    ]
    met: dict[tuple[str, str], bool] = {}
    for key in _ordered(groups):
        arms = groups[key]
        dense = arms.get("dense")
        if not dense:
            continue
        _, dense_low, dense_high = ci([r["mca"] for r in dense])
        met[key] = False
        for arm in ARMS[1:]:
            rs = arms.get(arm)
            if not rs:
                continue
            _, low, high = ci([r["mca"] for r in rs])
            above = low > dense_high and min(len(rs), len(dense)) > 1
            met[key] |= above
            apart = (
                "disjoint, above" if above else "disjoint, below" if high < dense_low else "overlap"
            )
            if min(len(rs), len(dense)) < 2:
                apart = "one seed: no interval"
            lines.append(
                f"| {key[0]} | {key[1]} | {arm} | {fmt([r['mca'] for r in rs])} "
                f"| {fmt([r['mca'] for r in dense])} | {fmt(_paired(rs, dense, 'mca'))} "
                f"| {apart} | {'met' if above else 'not met'} |"
            )
    return lines, met


def _plot(groups: Groups, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    models = [m for m in MODELS if any(k[0] == m for k in groups)]
    settings = [s for s in SETTINGS if any(k[1] == s for k in groups)]
    fig, axes = plt.subplots(
        len(models), len(settings), figsize=(4.6 * len(settings), 3.8 * len(models)),
        squeeze=False, layout="constrained",
    )  # fmt: skip
    for i, model in enumerate(models):
        for j, setting in enumerate(settings):
            ax, arms = axes[i, j], groups.get((model, setting), {})
            for metric, style in (("mca", "-"), ("clean", ":")):
                dense = arms.get("dense")
                if dense:
                    mean, low, high = ci([r[metric] for r in dense])
                    ax.axhspan(low, high, color="grey", alpha=0.2 if metric == "mca" else 0.1)
                    ax.axhline(mean, color="black", linestyle=style, linewidth=1)
                for updater in ("rigl", "set"):
                    points = [
                        (d, ci([r[metric] for r in arms[f"{updater}-{d}"]]))
                        for d in DENSITIES
                        if arms.get(f"{updater}-{d}")
                    ]
                    if not points:
                        continue
                    xs = [d for d, _ in points]
                    mean_, low_, high_ = (np.array([p[1][n] for p in points]) for n in range(3))
                    label = f"{updater} {'mCA' if metric == 'mca' else 'clean'}"
                    ax.plot(xs, mean_, "o" + style, color=COLORS[updater], label=label)
                    if metric == "mca":
                        ax.fill_between(xs, low_, high_, color=COLORS[updater], alpha=0.2)
            ax.set(title=f"{model}, {setting}", xlabel="density", xlim=(0.45, 0.95))
            if j == 0:
                ax.set_ylabel("accuracy")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(
        "digits: mCA (solid, 95% band) and clean accuracy (dotted) against density; "
        "dense: black lines with grey bands"
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(rows: Rows, root: Path, command: str) -> Path:
    """``root/robustness.{md,png}`` from the rows; the machine from the run's record."""
    groups = _groups(rows)
    lines, met = verdicts(groups)
    where = [f"{m}/{s}" for (m, s), ok in met.items() if ok]
    summary = f"Claim met in {len(where)} of {len(met)} (model, setting) cells" + (
        f": {', '.join(where)}." if where else "."
    )
    md = [
        "# Robustness and hard samples: dense against dynamic sparse training (issue 18)",
        "",
        *header(root, NAME, command, rows),
        "",
        "Settings in `benchmarks/robustness.py` (split, models, training, EL2N, PGD). Mean over "
        "seeds with 95% bootstrap interval (`sparse_rl.reporting.bootstrap_mean_ci`). mCA: mean "
        "accuracy over 10 corruption kinds × severities (`CorruptionBenchmark`, not a published "
        "corrupted dataset); mCE: per seed against the dense model of the same model, setting "
        "and seed (1.0 = as robust, lower is better); relative drop: (clean − mCA) / clean; PGD: "
        "L∞ accuracy under attack; train time: median seconds of one training run.",
        "",
        *_table(groups),
        "",
        "## Claim: DST mCA > dense mCA at some density in [0.5, 0.9], non-overlapping intervals",
        "",
        summary,
        "",
        *lines,
        "",
        f"Figure: `{NAME}.png`.",
        "",
    ]
    return save(root, NAME, md, partial(_plot, groups))
