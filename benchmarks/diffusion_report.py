"""Tables, the goals' verdicts and the figures of the sparse diffusion benchmark (``report``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from _offline import Rows, by_arm, ci, fmt, header, save
from diffusion import (
    ARMS,
    DENSITIES,
    DROPS,
    LONG_ARMS,
    NAME,
    PROBLEMS,
    SAMPLE_ARMS,
    SCALES,
    VECTOR,
)

Groups = dict[str, dict[str, Rows]]
#: Quality metrics per problem, lower is better: (row key, label).
VECTOR_METRICS = (("energy", "energy distance"), ("mmd", "MMD²"))
DIGITS_METRICS = (("fid_lite", "FID-lite"),)
#: Lines of the metric-against-density figure: (method, drop fraction, label, colour).
LINES = (
    ("static", None, "Static", "#7f7f7f"),
    ("set", 0.3, "SET f=0.3", "#1f77b4"),
    ("set", 0.05, "SET f=0.05", "#9ecae1"),
    ("rigl", 0.3, "RigL f=0.3", "#d62728"),
    ("rigl", 0.05, "RigL f=0.05", "#ff9896"),
)


def metrics_of(problem: str) -> tuple[tuple[str, str], ...]:
    return VECTOR_METRICS if problem in VECTOR else DIGITS_METRICS


def _values(rows: Rows, key: str) -> list[float]:
    return [r[key] for r in rows if r.get(key) is not None]


def _problems(groups: Groups) -> list[str]:
    return [p for p in PROBLEMS if p in groups]


def _digits(key: str) -> int:
    return 2 if key.startswith("fid") else 5 if key.startswith("mmd") else 4


def _table(problem: str, arms: dict[str, Rows]) -> list[str]:
    keys = metrics_of(problem)
    names = " | ".join(f"{label} (EMA)" for _, label in keys)
    online = " | ".join(f"{label} (online)" for _, label in keys)
    lines = [
        f"| arm | seeds | active params | {names} | {online} | train wall (s) | train CPU (s) |",
        "|---|---|---|" + "---|" * 2 * len(keys) + "---|---|",
    ]
    for arm in ARMS:
        rs = arms.get(arm)
        if not rs:
            continue
        cells = " | ".join(fmt(_values(rs, k), _digits(k)) for k, _ in keys)
        on = " | ".join(f"{np.mean(_values(rs, f'{k}_online')):.{_digits(k)}f}" for k, _ in keys)
        active = int(np.mean([r["active_parameters"] for r in rs]))
        seconds = np.median([r["seconds"] for r in rs])
        cpu = np.median([r.get("cpu_seconds", np.nan) for r in rs])
        lines.append(
            f"| {arm} | {len(rs)} | {active} | {cells} | {on} | {seconds:.1f} | {cpu:.1f} |"
        )
    floors = ", ".join(
        f"{label} {fmt(_values(_all(arms), f'{k}_floor'), _digits(k))}" for k, label in keys
    )
    lines += ["", f"Real-vs-real floor ({problem}, every row's): {floors}."]
    return lines


def _all(arms: dict[str, Rows]) -> Rows:
    return [r for rs in arms.values() for r in rs]


def verdicts(groups: Groups) -> tuple[list[str], dict[tuple[str, str], bool]]:
    """Per problem: goal 1 (at 0.5, SET or RigL within or below dense's interval on every
    metric) and goal 2 (at 0.1, drop 0.05 at least as good as 0.3 by mean, for SET and RigL)."""
    lines: list[str] = []
    met: dict[tuple[str, str], bool] = {}
    for problem in _problems(groups):
        arms = groups[problem]
        keys = metrics_of(problem)
        dense = arms.get("dense", [])
        lines += [f"**{problem}**", ""]
        # goal 1
        if len(dense) > 1:
            passing = []
            for arm in [f"{m}-0.5-f{f}" for m in ("set", "rigl") for f in DROPS]:
                rs = arms.get(arm)
                if not rs:
                    continue
                parts, ok = [], True
                for key, label in keys:
                    mean = float(np.mean(_values(rs, key)))
                    _, low, high = ci(_values(dense, key))
                    inside = mean <= high
                    ok &= inside
                    where = "below" if mean < low else "within" if inside else "above"
                    parts.append(f"{label} {mean:.{_digits(key)}f} ({where} {low:.{_digits(key)}f}"
                                 f"–{high:.{_digits(key)}f})")  # fmt: skip
                passing += [arm] if ok else []
                lines.append(f"- goal 1, {arm}: {'yes' if ok else 'no'}: " + "; ".join(parts))
            met[(problem, "goal 1")] = bool(passing)
        else:
            lines.append("- goal 1: fewer than 2 dense seeds, no interval")
        judged, verdict = _goal2(arms, keys)
        lines += judged
        if verdict:
            met[(problem, "goal 2")] = all(verdict)
        lines.append("")
    return lines, met


def _goal2(arms: dict[str, Rows], keys: list, suffix: str = "") -> tuple[list[str], list[bool]]:
    """Goal 2 for SET and RigL (``suffix``: the ``-x3`` arms): at density 0.1, drop fraction
    0.05 at least as good as 0.3 by mean on every metric."""
    lines, verdict = [], []
    for method in ("set", "rigl"):
        low_f = arms.get(f"{method}-0.1-f0.05{suffix}")
        high_f = arms.get(f"{method}-0.1-f0.3{suffix}")
        if not (low_f and high_f):
            continue
        parts, ok = [], True
        for key, label in keys:
            a, b = ci(_values(low_f, key)), ci(_values(high_f, key))
            ok &= a[0] <= b[0]
            d = _digits(key)
            parts.append(
                f"{label} {a[0]:.{d}f} [{a[1]:.{d}f}, {a[2]:.{d}f}] vs "
                f"{b[0]:.{d}f} [{b[1]:.{d}f}, {b[2]:.{d}f}]"
            )
        verdict.append(ok)
        lines.append(
            f"- goal 2{suffix and ' (' + suffix[1:] + ' training)'}, {method} at 0.1, f=0.05 vs "
            f"f=0.3: {'yes' if ok else 'no'}: " + "; ".join(parts)
        )
    return lines, verdict


def _longer(groups: Groups) -> list[str]:
    """Goal 2 again with the ``LONG_ARMS`` (three times the epochs), where they ran."""
    lines = []
    for problem in _problems(groups):
        arms = groups[problem]
        if not any(arms.get(a) for a in LONG_ARMS):
            continue
        judged, verdict = _goal2(arms, metrics_of(problem), "-x3")
        seeds = min(len(arms[a]) for a in LONG_ARMS if arms.get(a))
        met = "met" if verdict and all(verdict) else "not met"
        lines += [f"**{problem}** ({seeds}+ seeds): goal 2 at 3× the epochs {met}.", ""]
        lines += [*judged, ""]
    if not lines:
        return []
    return [
        "## Goal 2 at three times the training",
        "",
        "The four goal-2 arms (SET and RigL at density 0.1, drop fraction 0.05 and 0.3) trained "
        "for 3× the epochs (`LONG_ARMS`, `-x3`), everything else the same.",
        "",
        *lines,
    ]


def _speed(groups: Groups) -> list[str]:
    """CSR inference of the MLP denoiser's hidden stack, by density (vector problems)."""
    lines = [
        "| problem | density | rows | hidden layers dense (ms) | as CSR (ms) | layers converted "
        "| sampling, masks folded (s) | sampling, CSR where faster (s) | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for problem in [p for p in VECTOR if p in groups]:
        rows = _all(groups[problem])
        for density in (1.0, *DENSITIES):
            rs = [r for r in rows if r["density"] == density and "hidden_dense_ms" in r]
            if not rs:
                continue
            dense_ms = np.median([r["hidden_dense_ms"] for r in rs])
            csr_ms = np.median([r["hidden_csr_ms"] for r in rs])
            converted = np.mean([r["csr_layers"] for r in rs])
            folded = np.median([r["sample_seconds"] for r in rs])
            fast = np.median([r["sample_seconds_csr"] for r in rs])
            lines.append(
                f"| {problem} | {density} | {len(rs)} | {dense_ms:.2f} | {csr_ms:.2f} "
                f"| {converted:.1f} of 3 | {folded:.3f} | {fast:.3f} | {folded / fast:.2f}× |"
            )
    return lines


def _plot(groups: Groups, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [(p, k, label) for p in _problems(groups) for k, label in metrics_of(p)]
    columns = min(3, len(panels)) or 1
    rows_ = -(-len(panels) // columns) or 1
    fig, axes = plt.subplots(
        rows_, columns, figsize=(4.6 * columns, 3.6 * rows_), squeeze=False, layout="constrained"
    )
    for ax, (problem, key, label) in zip(axes.flat, panels, strict=False):
        arms = groups[problem]
        for method, drop, name, color in LINES:
            points = []
            for density in DENSITIES:
                suffix = "" if drop is None else f"-f{drop}"
                rs = arms.get(f"{method}-{density}{suffix}")
                if rs:
                    points.append((density, ci(_values(rs, key))))
            if points:
                xs = np.array([d for d, _ in points])
                mean, low, high = (np.array([p[1][i] for p in points]) for i in range(3))
                ax.errorbar(xs, mean, yerr=[mean - low, high - mean], fmt="o-", color=color,
                            label=name, capsize=2, ms=4)  # fmt: skip
        dense = arms.get("dense")
        if dense:
            mean, low, high = ci(_values(dense, key))
            ax.axhspan(low, high, color="#000000", alpha=0.12)
            ax.axhline(mean, color="#000000", lw=1, label="dense (95% interval)")
        floor = np.mean(_values(_all(arms), f"{key}_floor"))
        ax.axhline(floor, color="#2ca02c", ls="--", lw=1, label="real vs real")
        ax.set(xscale="log", xlabel="density of the hidden layers", ylabel=f"{label} (lower is "
               "better)", title=f"{problem}: {label}")  # fmt: skip
        ax.set_xticks(list(DENSITIES), [str(d) for d in DENSITIES])
        ax.minorticks_off()
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if panels:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle("Sparse-to-sparse diffusion: sample quality against density (EMA weights)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _tile(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Images ``(n, h, w)`` as one array, ``columns`` wide, one blank pixel between."""
    n, h, w = images.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), -1.0)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
    return out


def plot_samples(groups: Groups, path: Path, scale: str = "full") -> Path | None:
    """Seed 0's samples of a few arms per problem beside real data."""
    import matplotlib

    matplotlib.use("Agg")
    from diffusion import digits, vector_data
    from matplotlib import pyplot as plt

    problems = [p for p in _problems(groups) if any(r.get("samples") for r in _all(groups[p]))]
    if not problems:
        return None
    arms = [a for a in SAMPLE_ARMS if any(a in groups[p] for p in problems)]
    fig, axes = plt.subplots(
        len(problems), len(arms) + 1, figsize=(1.9 * (len(arms) + 1), 2.0 * len(problems)),
        squeeze=False, layout="constrained",
    )  # fmt: skip
    for i, problem in enumerate(problems):
        if problem in VECTOR:
            real = vector_data(problem, 0, SCALES[scale])["reference"][:500]
        else:
            real = digits(SCALES[scale].images)[0][:64, 0].numpy()
        for j, (arm, data) in enumerate([("real", real)] + [(a, None) for a in arms]):
            ax = axes[i, j]
            if data is None:
                found = [r["samples"] for r in groups[problem].get(arm, []) if r.get("samples")]
                data = np.asarray(found[0]) if found else None
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{problem}: {arm}" if j == 0 else arm, fontsize=7)
            if data is None:
                continue
            if problem in VECTOR:
                ax.scatter(data[:, 0], data[:, 1], s=1, color="#1f77b4")
                ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5))
            else:
                ax.imshow(_tile(np.asarray(data)), cmap="gray_r", vmin=-1, vmax=1)
    fig.suptitle("Samples (seed 0, EMA weights)")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _ran(groups: Groups) -> list[str]:
    lines = []
    for problem in _problems(groups):
        arms = groups[problem]
        seeds = sorted({r["seed"] for r in _all(arms)})
        ran = [a for a in arms if a in ARMS]
        rows = sum(len(arms[a]) for a in ran)
        lines.append(f"- {problem}: {len(ran)} of {len(ARMS)} arms, {rows} rows, seeds {seeds}.")
    return lines


def write_report(rows: Rows, root: Path, command: str) -> Path:
    """``root/diffusion.{md,png}`` and ``root/diffusion_samples.png`` from the rows."""
    groups: Groups = by_arm(rows, lambda row: row["problem"])
    lines, met = verdicts(groups)
    summary = [
        f"- {problem}, {goal}: {'met' if ok else 'not met'}." for (problem, goal), ok in met.items()
    ]
    scale = rows[0]["scale"] if rows else "full"
    samples = plot_samples(groups, root / f"{NAME}_samples.png", scale)
    tables: list[str] = []
    for problem in _problems(groups):
        tables += [f"### {problem}", "", *_table(problem, groups[problem]), ""]
    md = [
        "# Sparse-to-sparse diffusion: dense against Static, SET and RigL denoisers (issue 21)",
        "",
        *header(root, NAME, command, rows),
        "",
        "Settings in `benchmarks/diffusion.py` (problems, models, arms, training, metrics). "
        "Mean over seeds with 95% bootstrap interval (`sparse_rl.reporting.bootstrap_mean_ci`); "
        "every quality number is lower-is-better and measured on samples of the EMA weights, "
        "the '(online)' columns on the online network's (means only). Arms: `static-D`, "
        "`set-D-fF`, `rigl-D-fF` at density D of the hidden layers and drop fraction F; input, "
        "time-embedding and output layers dense. Active params: weights counted through the "
        "masks, biases in full. FID-lite is a Fréchet distance on a small digits classifier's "
        "features: not FID, comparable only within this table. Train wall / CPU: median seconds "
        "of one training run on one thread (the machine was shared: CPU seconds are the "
        "comparable ones).",
        "",
        "What ran:",
        "",
        *_ran(groups),
        "",
        *tables,
        "## Goals",
        "",
        "Goal 1: at density 0.5, SET or RigL (either drop fraction) with a mean at or below the "
        "upper end of the dense model's 95% interval on every metric of the problem. Goal 2: at "
        "density 0.1, drop fraction 0.05 with a mean at or below drop fraction 0.3's on every "
        "metric, for SET and for RigL.",
        "",
        *summary,
        "",
        *lines,
        *_longer(groups),
        "## Sparse inference (CSR) of the MLP denoiser",
        "",
        "The hidden stack through `sn.sparse_inference` at the sampling batch (2000 rows): "
        "per-layer median milliseconds summed over the 3 hidden layers, dense and as CSR; a "
        "layer runs as CSR only where that is 1.1× faster. Sampling: one timed 100-step DDPM run "
        "of 2000 samples with the masks folded in, and one with the converted copy. The UNet's "
        "convolutions have no CSR path in the core.",
        "",
        *_speed(groups),
        "",
        f"Figures: `{NAME}.png` (quality against density per method, dense interval shaded, "
        "real-vs-real floor dashed)"
        + (f"; `{samples.name}` (samples of seed 0)." if samples else "."),
        "",
    ]
    return save(root, NAME, md, partial(_plot, groups))
