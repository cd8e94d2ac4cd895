"""Finished (or running) training runs, read from disk into one shape the report aggregates.

Two layouts are read: run directories written by :func:`sparse_rl.training.train`
(``config.yaml`` + long-format ``eval.csv``) and the benchmark sweeps under
``benchmarks/results/<name>/`` (``sweep.json`` + per-run ``eval.csv`` of ``step,return,std``).
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: The evaluation mode of runs that evaluate one way only (state agents, benchmark sweeps).
DEFAULT_MODE = "default"
#: SB3 logger keys a report shows per task and method (mean over seeds of each run's last
#: logged value), with their column titles: the preference-learning diagnostics.
DIAGNOSTICS = {
    "pbrl/heldout_accuracy_cumulative": "reward acc. (new labels)",
    "pbrl/reward_true_correlation": "reward corr.",
    "pbrl/reward_real_connections": "conn. per real feature",
    "pbrl/reward_noise_connections": "conn. per noise feature",
}
#: Visual benchmark sweeps' per-run returns on distraction modes (``<mode>_return_mean`` columns).
DISTRACTED_FILE = "distracted.csv"
_RETURN_SUFFIX = "_return_mean"


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
    :param diagnostics: the last logged value of each of :data:`DIAGNOSTICS` the run logs.
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
    """The last value of each of :data:`DIAGNOSTICS` in an SB3 ``progress.csv`` (none without)."""
    if not progress_csv.is_file():
        return {}
    last: dict[str, str] = {}
    with progress_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            last |= {key: row[key] for key in DIAGNOSTICS if row.get(key) not in (None, "")}
    try:
        return {key: float(value) for key, value in last.items()}
    except ValueError:
        raise ReportError(
            "paths", f"{progress_csv} logs a diagnostic that is not a number: {last}"
        ) from None


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


def _locate(recorded: str, sweep_dir: Path) -> Path:
    """Where a run recorded as ``recorded`` lies now: inside the sweep's folder when it can be.

    Sweeps record ``<out>/runs/<name>`` as the path was given (often absolute), and ``sweep.json``
    sits in ``<out>``; so the part after the last component named like the sweep's folder is
    taken relative to the folder ``sweep.json`` is in (the repository may have moved). A relative
    path without that component is taken relative to the sweep's folder too; any other absolute
    path is used as recorded.
    """
    path = Path(recorded)
    parts = path.parts[:-1]
    if sweep_dir.name in parts:
        last = len(parts) - 1 - parts[::-1].index(sweep_dir.name)
        return sweep_dir.joinpath(*path.parts[last + 1 :])
    return path if path.is_absolute() else sweep_dir / path


def load_sweep_runs(
    sweep_json: str | Path,
    label_keys: Sequence[str] = (),
    *,
    task_keys: Sequence[str] = ("noise",),
    env: str | None = None,
) -> list[RunRecord]:
    """Runs of a benchmark sweep (``benchmarks/_runs.py``'s ``sweep.json``) as :class:`RunRecord`.

    Mapping from each spec in ``sweep["runs"]``:

    - method: ``spec["method"]``, then ``key=value`` for each of ``label_keys``
      (``"sparse90 lr=0.001"``);
    - env: ``spec["env"]``, else ``spec["task"]`` (visual sweeps), else the ``env`` argument
      (noise_robustness records none: it is HalfCheetah-v5);
    - variant (another task on the same env): ``key=value`` for each of ``task_keys`` the spec
      has (``"noise=0.9"``);
    - seed: ``spec["seed"]``; finished: ``done.json`` records at least ``spec["steps"]``;
    - curves: ``eval.csv``'s ``step,return`` as mode ``"default"`` (the training env); visual
      sweeps' ``distracted.csv`` adds one curve per ``<mode>_return_mean`` column, so a report
      shows clean and distracted returns as separate tasks (``cartpole-swingup [video_hard]``).

    Run directories are found as :func:`_locate` says; runs with no ``eval.csv`` yet are left out
    with a warning naming them.

    :raises ReportError: a missing or malformed sweep file, or a spec without a needed key.
    """
    path = Path(sweep_json)
    if not path.is_file():
        raise ReportError("sweep_json", f"{path} does not exist.")
    try:
        specs = json.loads(path.read_text())["runs"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ReportError(
            "sweep_json", f"{path} is not a sweep file with a 'runs' list."
        ) from error
    runs, empty = [], []
    for spec in specs:
        for key in ("dir", "method", "seed", *label_keys):
            if key not in spec:
                raise ReportError("sweep_json", f"a run in {path} has no {key!r}: {spec}")
        run_env = spec.get("env", spec.get("task", env))
        if run_env is None:
            raise ReportError(
                "env", f"runs in {path} record no 'env' or 'task'; say which env they ran on."
            )
        run_dir = _locate(spec["dir"], path.parent)
        eval_csv = run_dir / "eval.csv"
        rows = _read_csv(eval_csv, ("step", "return"), "sweep_json") if eval_csv.is_file() else []
        if not rows:
            empty.append(run_dir)
            continue
        curves = {DEFAULT_MODE: [_point(row, "return", eval_csv, "sweep_json") for row in rows]}
        curves |= _distracted_curves(run_dir / DISTRACTED_FILE)
        done = run_dir / "done.json"
        label = " ".join([str(spec["method"]), *(f"{k}={spec[k]}" for k in label_keys)])
        runs.append(
            RunRecord(
                method=label,
                env=str(run_env),
                seed=int(spec["seed"]),
                curves={mode: _curve(points, run_dir) for mode, points in curves.items()},
                source=run_dir,
                variant=" ".join(f"{k}={spec[k]}" for k in task_keys if k in spec),
                finished=done.is_file()
                and json.loads(done.read_text()).get("steps", 0) >= spec.get("steps", 0),
            )
        )
    if not runs:
        raise ReportError("sweep_json", f"no run of {path} has an evaluation yet.")
    _warn_unevaluated(empty)
    return runs


def _distracted_curves(path: Path) -> dict[str, list[tuple[float, float]]]:
    """``mode -> (step, return)`` from a visual sweep's ``distracted.csv``; none without one."""
    if not path.is_file():
        return {}
    rows = _read_csv(path, ("step",), "sweep_json")
    columns = list(rows[0]) if rows else []
    modes = [c[: -len(_RETURN_SUFFIX)] for c in columns if c.endswith(_RETURN_SUFFIX)]
    return {m: [_point(row, m + _RETURN_SUFFIX, path, "sweep_json") for row in rows] for m in modes}
