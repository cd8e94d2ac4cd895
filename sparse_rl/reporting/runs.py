"""Finished (or running) training runs, read from disk into one shape the report aggregates.

A run is a run directory as :func:`sparse_rl.training.train` writes it (layout in
:mod:`sparse_rl.run_dir`): ``config.yaml``, the long-format ``eval.csv`` and SB3's
``logs/progress.csv``, whose last values of :data:`DIAGNOSTICS` the report shows.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: The evaluation mode of runs that evaluate one way only (state agents).
DEFAULT_MODE = "default"
#: SB3 logger keys a report shows per task and method (mean over seeds of each run's last
#: logged value), with their column titles: the preference-learning diagnostics, the sparse
#: policies' input connectivity on noisy features (ANF's diagnostic) and, per evaluation mode,
#: MaDi's mask quality against the ground-truth agent pixels. ``{mode}`` stands for the task's
#: evaluation mode, as the evaluation logs it (``eval/video_hard/mask_iou``).
DIAGNOSTICS = {
    "pbrl/heldout_accuracy_cumulative": "reward acc. (new labels)",
    "pbrl/reward_true_correlation": "reward corr.",
    "pbrl/reward_real_connections": "conn. per real feature",
    "pbrl/reward_noise_connections": "conn. per noise feature",
    "sparsity/actor_real_connections": "actor conn. per real feature",
    "sparsity/actor_noise_connections": "actor conn. per noise feature",
    "sparsity/critic_real_connections": "critic conn. per real feature",
    "sparsity/critic_noise_connections": "critic conn. per noise feature",
    "eval/{mode}/mask_iou": "mask IoU",
    "eval/{mode}/mask_precision": "mask precision",
    "eval/{mode}/mask_recall": "mask recall",
    "eval/{mode}/mask_mean_agent": "mask on agent",
    "eval/{mode}/mask_mean_background": "mask on background",
}
_DIAGNOSTIC_COLUMNS = re.compile(
    "|".join(
        "(?:" + "(?:[^/]+/)?".join(re.escape(part) for part in key.split("{mode}/")) + ")"
        for key in DIAGNOSTICS
    )
)


def diagnostic_column(key: str, mode: str) -> str:
    """The ``progress.csv`` column of diagnostic ``key`` for evaluation ``mode`` (the default
    mode logs ``eval/<key>``, the others ``eval/<mode>/<key>``)."""
    return key.replace("{mode}/", "" if mode == DEFAULT_MODE else f"{mode}/")


class ReportError(ValueError):
    """Bad input to a report; ``param`` names the argument at fault (the CLI maps it to a flag)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


class UnevaluatedRunsWarning(UserWarning):
    """Runs were left out because they have no evaluation yet (the CLI puts these in the notes)."""


@dataclass(frozen=True)
class Curve:
    """Evaluation returns of one run in one mode, sorted by env step."""

    steps: np.ndarray
    returns: np.ndarray


@dataclass(frozen=True)
class RunRecord:
    """One run's evaluations, whichever layout wrote them.

    :param method: the label runs are compared by (a config's ``name`` or ``algo``).
    :param env: environment id; decides the score normalisation.
    :param seed: the run's seed; runs of one method and task must differ in it.
    :param curves: evaluation mode → returns over steps.
    :param source: the run directory, for the report to say where each number came from.
    :param variant: a setting that makes another task on the same env (``"noise=0.9"``).
    :param finished: whether the run wrote ``done.json`` (for its full step budget).
    :param diagnostics: the last logged value of each :data:`DIAGNOSTICS` column the run logs
        (``progress.csv`` column → value).
    """

    method: str
    env: str
    seed: int
    curves: Mapping[str, Curve]
    source: Path
    variant: str = ""
    finished: bool = True
    diagnostics: Mapping[str, float] = field(default_factory=dict)
    modes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(sorted(self.curves)))

    def task(self, mode: str) -> str:
        """The task of this run's ``mode`` evaluation: env, variant, then a non-default mode."""
        name = f"{self.env} {self.variant}" if self.variant else self.env
        return name if mode == DEFAULT_MODE else f"{name} [{mode}]"


def _curve(rows: Sequence[tuple[float, float]], path: Path) -> Curve:
    steps = np.array([step for step, _ in rows], dtype=np.int64)
    order = np.argsort(steps, kind="stable")
    if len(np.unique(steps)) != len(steps):
        raise ReportError("paths", f"{path} has two evaluations at the same step and mode.")
    return Curve(steps[order], np.array([value for _, value in rows], dtype=float)[order])


def _read_csv(path: Path, columns: Sequence[str], param: str) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ReportError(
                param, f"{path} lacks column(s) {missing}; expected a header with {list(columns)}."
            )
        return list(reader)


def _point(row: Mapping[str, str], key: str, path: Path, param: str) -> tuple[float, float]:
    """``(step, return)`` of one CSV row; a value that is not a number names the file."""
    try:
        return float(row["step"]), float(row[key])
    except (TypeError, ValueError):
        raise ReportError(param, f"{path} has a row that is not numbers: {dict(row)}") from None


def _config_value(config: Mapping[str, Any], dotted: str, path: Path) -> Any:
    value: Any = config
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise ReportError("paths", f"{path} has no {dotted!r}; a run config needs it.")
        value = value[key]
    return value


def read_run_dir(run_dir: Path) -> RunRecord | None:
    """The run in ``run_dir`` (``config.yaml`` + ``eval.csv``); None before its first evaluation."""
    config_path = run_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    if not isinstance(config, Mapping):
        raise ReportError("paths", f"{config_path} is not a mapping of run settings.")
    method = config.get("name") or _config_value(config, "algo", config_path)
    rows = _read_csv(run_dir / "eval.csv", ("step", "mode", "return_mean"), "paths")
    if not rows:
        return None
    by_mode: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        point = _point(row, "return_mean", run_dir / "eval.csv", "paths")
        by_mode.setdefault(row["mode"], []).append(point)
    return RunRecord(
        method=str(method),
        env=str(_config_value(config, "env.id", config_path)),
        seed=int(_config_value(config, "seed", config_path)),
        curves={mode: _curve(r, run_dir / "eval.csv") for mode, r in by_mode.items()},
        source=run_dir,
        variant=_env_variant(config.get("env") or {}),
        finished=(run_dir / "done.json").exists(),
        diagnostics=last_logged(run_dir / "logs" / "progress.csv"),
    )


def last_logged(progress_csv: Path) -> dict[str, float]:
    """The last value of each :data:`DIAGNOSTICS` column of an SB3 ``progress.csv`` (none
    without one)."""
    if not progress_csv.is_file():
        return {}
    last: dict[str, str] = {}
    with progress_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if _DIAGNOSTIC_COLUMNS.fullmatch(c)]
        for row in reader:
            last |= {key: row[key] for key in columns if row.get(key) not in (None, "")}
    try:
        return {key: float(value) for key, value in last.items()}
    except ValueError:
        raise ReportError(
            "paths", f"{progress_csv} logs a diagnostic that is not a number: {last}"
        ) from None


def mean_logged(values: Sequence[float]) -> float:
    """Mean of the values that are numbers (a NaN says "not measured": a mask that kept no pixel
    has no precision); NaN when none is."""
    numbers = [v for v in values if not math.isnan(v)]
    return sum(numbers) / len(numbers) if numbers else math.nan


#: Env settings that make another task of the same env id, as they appear in task names.
_VARIANT_KEYS = {"noise_fraction": "noise", "preset": "preset"}


def _env_variant(env: Mapping[str, Any]) -> str:
    """``"noise=0.9"`` for a run on noisy features (a training preset adds ``preset=...``)."""
    parts = [
        f"{name}={env[key]}"
        for key, name in _VARIANT_KEYS.items()
        if env.get(key) not in (None, "clean")
    ]
    return " ".join(parts)


def _run_dirs(path: Path) -> list[Path]:
    if (path / "config.yaml").is_file() and (path / "eval.csv").is_file():
        return [path]
    return sorted(c.parent for c in path.rglob("config.yaml") if (c.parent / "eval.csv").is_file())


def load_runs(paths: Sequence[str | Path]) -> list[RunRecord]:
    """Runs in ``paths``: run directories, or folders searched recursively for them.

    A directory with ``config.yaml`` but no ``eval.csv`` is not taken for a run (sweeps may keep
    a config at their root); one whose ``eval.csv`` has no rows yet is left out with a warning.

    :raises ReportError: a path that does not exist or holds no run; no run evaluated yet.
    """
    dirs: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ReportError("paths", f"{path} does not exist.")
        found = _run_dirs(path)
        if not found:
            raise ReportError(
                "paths", f"{path} holds no run (a run directory has config.yaml and eval.csv)."
            )
        dirs.update(dict.fromkeys(d.resolve() for d in found))
    runs, empty = [], []
    for run_dir in dirs:
        record = read_run_dir(run_dir)
        (empty.append(run_dir) if record is None else runs.append(record))
    _warn_unevaluated(empty)
    if not runs:
        raise ReportError("paths", f"no run in {[str(p) for p in paths]} has an evaluation yet.")
    return runs


def _warn_unevaluated(dirs: Sequence[Path]) -> None:
    if dirs:
        names = ", ".join(str(d) for d in dirs)
        warnings.warn(
            f"left out {len(dirs)} run(s) with no evaluation yet: {names}",
            UnevaluatedRunsWarning,
            stacklevel=3,
        )
