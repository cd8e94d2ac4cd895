"""A run directory: its layout, whether it is finished, and the lock of the process training it.

Layout (reports and sweeps read it)::

    RUN_DIR/config.yaml     the resolved config (every key, defaults filled); written first
    RUN_DIR/eval.csv        step,mode,return_mean,return_std,episodes: one row per evaluation
                            ("default" mode), or per evaluation and mode for the visual algos
    RUN_DIR/logs/           SB3's logger: progress.csv (kept across resumes), TensorBoard events
    RUN_DIR/checkpoints/    atomic checkpoints, see :mod:`sparse_rl.checkpoints`
    RUN_DIR/labels.sqlite   pebble / r2n: every preference label, durable as soon as it is made
    RUN_DIR/model.zip       the final model (SB3 ``save``)
    RUN_DIR/done.json       {"steps": N, ...}, written last: the run is complete
    RUN_DIR/.lock           held (flock) by the process training the run; a second one is refused
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import yaml

from sparse_rl.checkpoints import step_dirs
from sparse_rl.config import (
    RunConfig,
    method_label,
)

log = logging.getLogger(__name__)


CONFIG_FILE, EVAL_FILE, DONE_FILE = "config.yaml", "eval.csv", "done.json"
MODEL_FILE, LABELS_FILE, LOCK_FILE = "model.zip", "labels.sqlite", ".lock"
LOGS_DIR, CHECKPOINTS_DIR = "logs", "checkpoints"
EVAL_COLUMNS = ("step", "mode", "return_mean", "return_std", "episodes")
#: ``mode`` of eval.csv rows for agents that are not evaluated on distraction modes.
DEFAULT_MODE = "default"


class RunError(RuntimeError):
    """A run directory that cannot be used as asked (exists already, holds no run, no model)."""


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
    """``runs/<name or algo>-<env id>-s<seed>`` (slashes in the env id become underscores)."""
    env = config.env.id.replace("/", "_")
    return Path(root) / f"{method_label(config)}-{env}-s{config.seed}"


def is_finished(run_dir: str | Path) -> bool:
    """Whether ``done.json`` records at least the steps ``config.yaml`` asks for."""
    done = done_steps(Path(run_dir))
    return done is not None and done >= config_steps(Path(run_dir))


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether the run has a complete checkpoint (its hashes are checked when it is loaded)."""
    return any((p / "meta.json").is_file() for p in step_dirs(Path(run_dir) / CHECKPOINTS_DIR))


def done_steps(run_dir: Path) -> int | None:
    """Steps ``done.json`` records; None when it is missing or damaged (reported, not fatal)."""
    path = run_dir / DONE_FILE
    if not path.is_file():
        return None
    try:
        steps = json.loads(path.read_text())["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps={steps!r}")
        return steps
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("%s is damaged (%s): the run counts as not finished.", path, error)
        return None


def config_steps(run_dir: Path) -> int:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} holds no run: {CONFIG_FILE} is missing.")
    try:
        steps = yaml.safe_load(path.read_text())["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise ValueError(f"steps={steps!r}")
        return steps
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as error:
        raise RunError(f"{path} is damaged ({' '.join(str(error).split())}).") from None


def labels_path(run_dir: str | Path) -> Path:
    return (Path(run_dir) / LABELS_FILE).resolve()


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``RUN_DIR/.lock`` so two processes never interleave checkpoints and labels in one run.

    The OS drops the lock when its process dies (SIGKILL included), so a kill never leaves a
    stale lock that blocks ``--resume``.
    """
    made_dir = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunError(
                f"{run_dir} is being trained by {holder}; wait for it to finish or stop it (the "
                "run resumes from its checkpoints). Nothing was changed."
            ) from None
        handle.seek(0)
        holder = f"pid {os.getpid()}"
        if handle.read() != holder:
            handle.seek(0)
            handle.truncate()
            handle.write(holder)
            handle.flush()
        try:
            yield
        finally:
            if made_dir and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
                path.unlink()  # a run that never started leaves no directory behind
                run_dir.rmdir()


def aside_path(path: Path) -> Path:
    """A free ``<name>.damaged[-N]`` path beside ``path`` to keep a damaged file at."""
    candidate, n = path.with_name(f"{path.name}.damaged"), 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.damaged-{n}")
    return candidate
