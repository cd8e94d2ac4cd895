"""Writing a report: compute every number, then write the figures, Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from .runs import RunRecord
from .summary import summarize

#: What :func:`write_report` writes into its ``out_dir``.
REPORT_FILES = ("curves.png", "metrics.png", "report.md", "report.json")


def _require_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
        import rliable  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"reports need matplotlib and rliable ({error}); pip install 'sparse-rl[bench]'."
        ) from error


def write_report(
    runs: Sequence[RunRecord],
    out_dir: str | Path,
    *,
    mode: str | None = None,
    normalize: Mapping[str, tuple[float, float]] | None = None,
    reps: int = 2000,
    seed: int = 0,
    command: str | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write :data:`REPORT_FILES` for ``runs`` into ``out_dir``; same inputs, same files.

    Every number is computed before anything is written, so bad input leaves ``out_dir`` alone.
    ``metrics.png`` is written only when there are aggregate metrics (the report says why not).

    :param mode: report only this evaluation mode; None reports each mode as its own task.
    :param normalize: env id → ``(low, high)`` mapped to scores 0 and 1 (DMC tasks default to
        ``(0, 1000)``).
    :param reps: bootstrap replicates for every interval.
    :param seed: seeds every bootstrap.
    :param command: how the report was made, for the report to show.
    :param notes: extra lines for the report's notes (e.g. runs the loaders left out).
    :raises ReportError: no runs, a mode no run has, a bad range, duplicate seeds.
    """
    from . import render

    _require_plotting()
    summary = summarize(runs, mode=mode, normalize=normalize, reps=reps, seed=seed)
    summary.notes[:0] = list(notes)
    command = command or "sparse_rl.reporting.write_report(...) from Python"
    figures = ["curves.png", *(["metrics.png"] if summary.metrics else [])]
    settings = {
        "mode": mode,
        "normalize": {env: list(r) for env, r in sorted((normalize or {}).items())},
        "reps": reps,
        "seed": seed,
    }
    text = render.markdown(summary, command, reps, seed, figures)
    data = render.to_json(summary, command, settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    render.plot_curves(summary, out / "curves.png")
    if summary.metrics:
        render.plot_metrics(summary, out / "metrics.png")
    else:  # a stale figure from an earlier report in this folder would contradict this one
        (out / "metrics.png").unlink(missing_ok=True)
    (out / "report.md").write_text(text)
    (out / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    return out
