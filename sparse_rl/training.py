"""Train an agent from a :class:`~sparse_rl.config.RunConfig` into a run directory.

Run directory layout (reports and sweeps read it)::

    RUN_DIR/config.yaml     the resolved config (every key, defaults filled); written first
    RUN_DIR/eval.csv        step,mode,return_mean,return_std,episodes: one row per evaluation
                            ("default" mode), or per evaluation and mode for the visual algos
    RUN_DIR/logs/           SB3's logger: progress.csv (kept across resumes), TensorBoard events
    RUN_DIR/checkpoints/    atomic checkpoints, see :mod:`sparse_rl.checkpoints`
    RUN_DIR/labels.sqlite   pebble / r2n: every preference label, durable as soon as it is made
    RUN_DIR/model.zip       the final model (SB3 ``save``)
    RUN_DIR/done.json       {"steps": N, ...}, written last: the run is complete
    RUN_DIR/.lock           held (flock) by the process training the run; a second one is refused

A run evaluates every ``eval.every`` env steps (deterministic actions, ``eval.episodes`` episodes
on a separate env, episode ``i`` seeded ``eval.seed + i``) and checkpoints every
``checkpoint.every`` steps and at the end. Killed at any moment, it resumes from its newest
complete checkpoint: evaluation rows and log rows after that step are dropped and redone; a
pebble / r2n run keeps every label, including those made after the checkpoint. A resumed run
continues the saved random states but starts a new episode (the env's own state is not saved),
so it is not bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.logger import KVWriter

from sparse_rl import __version__
from sparse_rl.algorithms import (
    algorithm,
    algorithm_class,
    build_algo_kwargs,
    build_policy_kwargs,
    build_preference,
    build_teacher,
    is_visual,
    policy_name,
)
from sparse_rl.checkpoints import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    save_checkpoint,
    set_aside,
    step_dirs,
    write_atomically,
)
from sparse_rl.config import (
    ConfigError,
    RunConfig,
    check_mode,
    config_differences,
    config_from_dict,
    config_to_dict,
    dump_config,
    eval_modes,
    eval_seed,
    load_config,
    method_label,
    observation_kind,
)
from sparse_rl.safe_io import UnsafeStateError, load_buffer, restore_model, restore_rng_state
from sparse_rl.validation import check_choice

log = logging.getLogger(__name__)

CONFIG_FILE, EVAL_FILE, DONE_FILE = "config.yaml", "eval.csv", "done.json"
MODEL_FILE, LABELS_FILE, LOCK_FILE = "model.zip", "labels.sqlite", ".lock"
LOGS_DIR, CHECKPOINTS_DIR = "logs", "checkpoints"
EVAL_COLUMNS = ("step", "mode", "return_mean", "return_std", "episodes")
#: ``mode`` of eval.csv rows for agents that are not evaluated on distraction modes.
DEFAULT_MODE = "default"


class RunError(RuntimeError):
    """A run directory that cannot be used as asked (exists already, holds no run, no model)."""


# -- paths and status ----------------------------------------------------------------------------


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
    """``runs/<name or algo>-<env id>-s<seed>`` (slashes in the env id become underscores)."""
    env = config.env.id.replace("/", "_")
    return Path(root) / f"{method_label(config)}-{env}-s{config.seed}"


def is_finished(run_dir: str | Path) -> bool:
    """Whether ``done.json`` records at least the steps ``config.yaml`` asks for."""
    done = _done_steps(Path(run_dir))
    return done is not None and done >= _config_steps(Path(run_dir))


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether the run has a complete checkpoint (its hashes are checked when it is loaded)."""
    return any((p / "meta.json").is_file() for p in step_dirs(Path(run_dir) / CHECKPOINTS_DIR))


def _done_steps(run_dir: Path) -> int | None:
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


def _config_steps(run_dir: Path) -> int:
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


# -- env and model -------------------------------------------------------------------------------


def env_kwargs(config: RunConfig) -> dict[str, Any]:
    """Keyword arguments of ``sparse_rl.envs.make_env`` for the training env."""
    env = config.env
    kwargs: dict[str, Any] = dict(env.kwargs)
    kind = observation_kind(config)
    if kind is not None:
        kwargs["obs"] = kind
    for key in ("preset", "dynamic", "videos"):
        if getattr(env, key) is not None:
            kwargs[key] = getattr(env, key)
    if env.noise_fraction is not None:
        kwargs.update(
            noise_fraction=env.noise_fraction,
            noise=env.noise,
            noise_scale=env.noise_scale,
            permute=env.permute,
            repermute_every=env.repermute_every,
        )
    return kwargs


def make_env(config: RunConfig) -> Any:
    """The run's env (training and evaluation use the same settings)."""
    from sparse_rl import envs

    try:
        return envs.make_env(config.env.id, **env_kwargs(config))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"env: {error}") from error


def build_model(config: RunConfig, env: Any, run_dir: str | Path) -> Any:
    """A new model for ``config`` on ``env`` (pebble / r2n keep labels in the run dir)."""
    cls = algorithm_class(config)
    kwargs = build_algo_kwargs(config, int(np.prod(env.action_space.shape)))
    kwargs["policy_kwargs"] = build_policy_kwargs(config)
    algo = algorithm(config)
    if algo.learns_from_labels:
        kwargs.update(
            preference=build_preference(config),
            teacher=build_teacher(config),
            label_store=_labels_path(run_dir),
        )
    if algo.pixels:
        kwargs["method"] = algo.method
    try:
        return cls(policy_name(config), env, seed=config.seed, device=config.device, **kwargs)
    except (TypeError, ValueError, AssertionError) as error:  # SB3 checks arguments with assert
        raise ConfigError(
            f"algo_kwargs / policy_kwargs: building {cls.__name__} failed: {error}"
        ) from error


def load_model(config: RunConfig, path: str | Path, run_dir: str | Path, env: Any = None) -> Any:
    """The model saved at ``path`` by a run of ``config``, on ``env`` (default: a new one).

    Nothing is unpickled (:mod:`sparse_rl.safe_io`): the model is built from ``config`` and takes
    the file's weights and counters. A pebble / r2n model needs the run's label store.
    """
    if algorithm(config).learns_from_labels and not _labels_path(run_dir).is_file():
        raise RunError(
            f"{run_dir}: the label store {_labels_path(run_dir)} is missing; the model's reward "
            "was learned from it, and a new store would silently drop every label. Put the run's "
            f"{LABELS_FILE} back."
        )
    model = build_model(config, env if env is not None else make_env(config), run_dir)
    restore_model(model, path)
    return model


def _labels_path(run_dir: str | Path) -> Path:
    return (Path(run_dir) / LABELS_FILE).resolve()


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device: {device!r} but torch sees no CUDA device; use device: auto or cpu."
        )


# -- training ------------------------------------------------------------------------------------


def train(
    config: RunConfig, run_dir: str | Path, *, resume: bool = False, progress_bar: bool = False
) -> Path:
    """Train ``config`` into ``run_dir`` (layout in the module docstring); return ``run_dir``.

    :param resume: continue the run in ``run_dir`` from its newest complete checkpoint (from
        step 0 when it has none, keeping its labels). Its ``config.yaml`` must equal ``config``
        except for ``steps`` (a larger ``steps`` extends a finished run). A finished run returns
        at once; an empty ``run_dir`` starts a new run. Without ``resume``, a ``run_dir`` that
        holds a run is an error and nothing in it changes.
    :param progress_bar: show SB3's progress bar (one per stretch between evaluations).
    :raises RunError: when another process is training in ``run_dir`` (nothing is changed).
    """
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        return _train_locked(config, run_dir, resume, progress_bar)


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


def _train_locked(config: RunConfig, run_dir: Path, resume: bool, progress_bar: bool) -> Path:
    config_path = run_dir / CONFIG_FILE
    exists = config_path.exists() or (run_dir / CHECKPOINTS_DIR).exists()
    if exists and not resume:
        raise RunError(
            f"{run_dir} already holds a run; continue it with resume (sparse-rl train --resume "
            f"{run_dir}) or choose another run dir. Nothing was changed."
        )
    if exists:
        if not config_path.exists():
            raise RunError(f"{run_dir} has checkpoints but no {CONFIG_FILE}; cannot resume it.")
        _check_same_run(load_config(config_path), config, run_dir)
        done = _done_steps(run_dir)
        if done is not None and done > config.steps:
            raise ConfigError(
                f"steps: {config.steps} is fewer than the {done} steps {run_dir} has trained; "
                f"give steps >= {done} to extend it. Nothing was changed."
            )
        if done is not None and done == config.steps:
            log.info("%s is finished (%d steps); nothing to do.", run_dir, done)
            return run_dir
    _check_device(config.device)
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)

    if not exists:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(config_path, dump_config(config))
    try:
        env = make_env(config)
        model = _resume_model(config, env, run_dir) if exists else None
        if model is None:
            model = build_model(config, env, run_dir)
    except BaseException:
        if not exists:
            _undo_new_run(run_dir)
        raise
    if exists:
        if model.num_timesteps > config.steps:
            raise ConfigError(
                f"steps: {config.steps} is fewer than the {model.num_timesteps} steps {run_dir} "
                f"has trained (its newest checkpoint); give steps >= {model.num_timesteps}. "
                "Nothing was changed."
            )
        if _config_steps(run_dir) != config.steps:
            write_atomically(config_path, dump_config(config))
        _remove_done(run_dir)
    log.info("training %s on %s from step %d to %d in %s/", config.algo, config.env.id,
             model.num_timesteps, config.steps, run_dir)  # fmt: skip
    _train_loop(config, model, run_dir, progress_bar)
    return run_dir


def _check_same_run(stored: RunConfig, given: RunConfig, run_dir: Path) -> None:
    differences = {k: v for k, v in config_differences(stored, given).items() if k != "steps"}
    if differences:
        said = "; ".join(f"{k}: run has {a!r}, given {b!r}" for k, (a, b) in differences.items())
        raise ConfigError(
            f"{run_dir / CONFIG_FILE} differs from the given config in {said}. Only steps may "
            "change when resuming; nothing was changed."
        )


def _resume_model(config: RunConfig, env: Any, run_dir: Path) -> Any | None:
    """The model of the newest checkpoint that loads; a damaged one is set aside for the next."""
    while (checkpoint := latest_checkpoint(run_dir / CHECKPOINTS_DIR, repair=True)) is not None:
        if not checkpoint.resumable:
            raise RunError(
                f"{checkpoint.path} was written by sparse-rl < 0.2, whose replay buffer and random "
                "states are pickles; resuming would unpickle them and could run code from the "
                "files. Its weights still serve sparse-rl eval / export; resume with the version "
                "that wrote it, or start a new run."
            )
        _check_checkpoint_config(checkpoint, config)
        try:
            model = load_model(config, checkpoint.model_path, run_dir, env)
            if model.num_timesteps != checkpoint.step:
                raise UnsafeStateError(
                    f"model.zip is at step {model.num_timesteps}, meta.json at {checkpoint.step}"
                )
            if checkpoint.replay_buffer_path is not None:
                load_buffer(model.replay_buffer, checkpoint.replay_buffer_path)
            restore_rng_state(model, checkpoint.rng_state())
        except (UnsafeStateError, CheckpointError) as error:
            set_aside(checkpoint.path, f"{checkpoint.path.name} does not load: {error}")
            continue
        model.get_env().seed(config.seed + checkpoint.step)  # a new episode, not the first again
        log.info("resuming %s from %s", run_dir, checkpoint.path)
        return model
    log.info("%s has no complete checkpoint: starting from step 0.", run_dir)
    return None


def _check_checkpoint_config(checkpoint: Checkpoint, config: RunConfig) -> None:
    """A checkpoint continues only the config it was trained with (``config.yaml`` edited by
    hand after the run started is an error, not a silent change of method mid-run)."""
    recorded = checkpoint.meta.get("config")
    if recorded is None:
        return  # written before checkpoints recorded their config
    try:
        trained = config_from_dict(recorded)
    except (ConfigError, TypeError) as error:
        raise RunError(f"{checkpoint.path}: meta.json's config is not valid ({error})") from None
    differences = {k: v for k, v in config_differences(trained, config).items() if k != "steps"}
    if differences:
        said = "; ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in differences.items())
        raise RunError(
            f"{checkpoint.path.parent.parent / CONFIG_FILE} was changed after the run started "
            f"({said}). Only steps may change; restore the file or start a new run. Nothing was "
            "changed."
        )


def _remove_done(run_dir: Path) -> None:
    """Drop ``done.json`` before training on; a damaged one is kept aside, not deleted."""
    path = run_dir / DONE_FILE
    if path.is_file() and _done_steps(run_dir) is None:
        os.replace(path, _aside(path))
    path.unlink(missing_ok=True)


def _aside(path: Path) -> Path:
    """A free ``<name>.damaged[-N]`` path beside ``path`` to keep a damaged file at."""
    candidate, n = path.with_name(f"{path.name}.damaged"), 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.damaged-{n}")
    return candidate


def _undo_new_run(run_dir: Path) -> None:
    """Remove what a new run wrote before it failed to start, so the command can be re-run.

    :func:`run_lock` removes the directory itself when it made it and nothing else is left.
    """
    for name in (CONFIG_FILE, LABELS_FILE, f"{LABELS_FILE}-wal", f"{LABELS_FILE}-shm"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / LOGS_DIR, ignore_errors=True)


def _train_loop(config: RunConfig, model: Any, run_dir: Path, progress_bar: bool) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    from sparse_rl import agents

    start = int(model.num_timesteps)
    _truncate_eval(run_dir / EVAL_FILE, start)
    logger = make_logger(run_dir / LOGS_DIR, config.log_formats, keep_until=start)
    model.set_logger(logger)
    callbacks: list[BaseCallback] = []
    if getattr(model.policy, "sparse_networks", None):
        callbacks.append(agents.SparsityLogger())
    evaluator = _Evaluator(config)
    began = time.time()
    try:
        while model.num_timesteps < config.steps:
            step = int(model.num_timesteps)
            next_eval = _next_multiple(step, config.eval.every)
            next_checkpoint = _next_multiple(step, config.checkpoint.every)
            target = min(next_eval, next_checkpoint, config.steps)
            model.learn(
                target - step,
                reset_num_timesteps=False,
                progress_bar=progress_bar,
                callback=callbacks,
            )
            step = int(model.num_timesteps)
            last = step >= config.steps
            if step >= next_eval or last:
                evaluator.evaluate(model, run_dir / EVAL_FILE)
            if step >= next_checkpoint or last:
                save_checkpoint(
                    model,
                    run_dir / CHECKPOINTS_DIR,
                    keep=config.checkpoint.keep,
                    extra={"config": config_to_dict(config)},
                )
        tmp = run_dir / f".{MODEL_FILE}.tmp.zip"
        model.save(tmp)
        os.replace(tmp, run_dir / MODEL_FILE)
        done = {
            "steps": int(model.num_timesteps),
            "config_steps": config.steps,
            "seconds_this_session": round(time.time() - began, 1),
            "steps_this_session": int(model.num_timesteps) - start,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sparse_rl": __version__,
        }
        write_atomically(run_dir / DONE_FILE, json.dumps(done, indent=1) + "\n")
    finally:
        evaluator.close()
        logger.close()
        model.get_env().close()  # DMC renderers hold GL contexts: do not leak them per run


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


# -- evaluation ----------------------------------------------------------------------------------


class _Evaluator:
    """Deterministic evaluation on a separate env (or, for pixel agents, on each mode)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self._env: Any = None

    def rows(self, model: Any, episodes: int, modes: Sequence[str | float] | None) -> list[dict]:
        config, seed = self.config, eval_seed(self.config)
        if is_visual(config):
            from sparse_rl import agents

            return agents.evaluate_modes(
                model,
                config.env.id,
                list(modes or eval_modes(config)),
                episodes,
                seed,
                **visual_eval_kwargs(config),
            )
        if modes:
            raise ConfigError(
                f"modes: distraction modes apply to the visual algos; {config.algo!r} is "
                "evaluated on its own env only."
            )
        if self._env is None:
            self._env = make_env(config)
        returns = rollout_returns(model, self._env, episodes, seed)
        return [
            {
                "task": config.env.id,
                "mode": DEFAULT_MODE,
                "episodes": episodes,
                "return_mean": float(np.mean(returns)),
                "return_std": float(np.std(returns)),
            }
        ]

    def evaluate(self, model: Any, path: Path) -> None:
        step = int(model.num_timesteps)
        rows = self.rows(model, self.config.eval.episodes, None)
        _append_eval(path, [{**row, "step": step} for row in rows])
        for row in rows:
            prefix = "eval" if row["mode"] == DEFAULT_MODE else f"eval/{row['mode']}"
            for key, value in row.items():
                if isinstance(value, float):
                    model.logger.record(f"{prefix}/{key}", value)
        model.logger.record("time/total_timesteps", step)
        model.logger.dump(step)
        summary = ", ".join(f"{row['mode']} {row['return_mean']:.1f}" for row in rows)
        log.info("step %d: eval return %s", step, summary)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()


def visual_eval_kwargs(config: RunConfig) -> dict[str, Any]:
    """``make_env`` arguments of evaluation envs for pixel agents (each mode sets its preset)."""
    kwargs = dict(config.env.kwargs)
    if config.env.videos is not None:
        kwargs["videos"] = config.env.videos
    return kwargs


def rollout_returns(model: Any, env: Any, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of ``episodes`` deterministic episodes, episode i reset with seed+i."""
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = bool(terminated or truncated)
        returns.append(total)
    return returns


def _append_eval(path: Path, rows: list[dict[str, Any]]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=EVAL_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def _whole(row: dict[str, Any]) -> bool:
    """Whether an eval.csv row has every column (a kill can cut the last line short)."""
    return all(row.get(k) not in (None, "") for k in EVAL_COLUMNS) and row["step"].isdigit()


def _truncate_eval(path: Path, step: int) -> None:
    """Drop rows after ``step`` (a resumed run redoes them); a damaged file is set aside whole
    and its readable rows kept."""
    if not path.exists():
        return
    _, rows, damaged = read_csv_rows(path)
    if rows and list(rows[0]) != list(EVAL_COLUMNS):
        damaged = damaged or f"columns {list(rows[0])}"
    if damaged:
        _copy_aside(path, damaged)
    kept = [row for row in rows if _whole(row) and int(row["step"]) <= step]
    if len(kept) == len(rows) and not damaged:
        return
    lines = [",".join(EVAL_COLUMNS)]
    lines += [",".join(row[k] for k in EVAL_COLUMNS) for row in kept]
    write_atomically(path, "\n".join(lines) + "\n")


def _copy_aside(path: Path, why: str) -> None:
    """Keep a copy of a damaged log beside it before its whole rows are rewritten."""
    kept = _aside(path)
    shutil.copyfile(path, kept)
    log.warning("%s is damaged (%s); a copy is kept as %s, its whole rows are used.", path, why,
                kept.name)  # fmt: skip


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]], str | None]:
    """The header and rows of a CSV file we wrote, and why it is damaged (None if it is not).

    Each line is parsed on its own, so one damaged line (NUL bytes, bad quoting, another
    encoding) costs that line only.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not lines:
        return [], [], None
    try:
        header = next(csv.reader([lines[0]]))
    except csv.Error as error:
        return [], [], f"header: {error}"
    if "\ufffd" in lines[0] or "\x00" in lines[0] or len(set(header)) != len(header):
        return [], [], "the header is not a header of this file"
    rows, damaged = [], None
    for number, line in enumerate(lines[1:], start=2):
        try:
            values = next(csv.reader([line]), [])
        except csv.Error as error:
            damaged = damaged or f"line {number}: {error}"
            continue
        if "\ufffd" in line or "\x00" in line or len(values) > len(header):
            damaged = damaged or f"line {number} is not a row of this file"
            continue
        rows.append(dict(zip(header, values + [""] * (len(header) - len(values)), strict=True)))
    return header, rows, damaged


# -- SB3 logger ----------------------------------------------------------------------------------


def make_logger(folder: Path, formats: Sequence[str], keep_until: int) -> Any:
    """SB3 Logger writing ``formats`` into ``folder``; ``progress.csv`` keeps rows up to
    ``keep_until`` steps from earlier sessions of the run."""
    from stable_baselines3.common.logger import HumanOutputFormat, Logger, TensorBoardOutputFormat

    folder.mkdir(parents=True, exist_ok=True)
    writers: list[Any] = []
    if "stdout" in formats:
        writers.append(HumanOutputFormat(sys.stdout))
    if "csv" in formats:
        writers.append(ProgressCSV(folder / "progress.csv", keep_until))
    if "tensorboard" in formats:
        if importlib.util.find_spec("tensorboard") is None:
            log.warning(
                "log_formats has tensorboard but the tensorboard package is not installed: no "
                "TensorBoard logs (pip install tensorboard, or drop it from log_formats)."
            )
        else:
            writers.append(TensorBoardOutputFormat(str(folder)))
    return Logger(str(folder), writers)


class ProgressCSV(KVWriter):
    """SB3 KVWriter for ``progress.csv`` that survives resumes.

    SB3's own CSV writer truncates the file when it opens; this one keeps the rows of earlier
    sessions up to the resumed step (``time/total_timesteps``) and appends. A new key rewrites the
    file with the wider header, as SB3's writer does.
    """

    STEP_KEY = "time/total_timesteps"

    def __init__(self, path: Path, keep_until: int) -> None:
        self.path = path
        self.keys: list[str] = []
        rows: list[dict[str, str]] = []
        if path.exists():
            self.keys, rows, damaged = read_csv_rows(path)
            steps = [self._step(row) for row in rows]
            if None in steps:
                damaged = damaged or f"a {self.STEP_KEY} that is not a number"
            if damaged:
                _copy_aside(path, damaged)
            rows = [
                r for r, t in zip(rows, steps, strict=True) if t is not None and t <= keep_until
            ]
        self._rewrite(rows)

    def _step(self, row: dict[str, str]) -> float | None:
        value = row.get(self.STEP_KEY) or ""
        try:
            return float(value) if value else -math.inf
        except ValueError:
            return None

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
    ) -> None:
        row = {
            key: value
            for key, value in key_values.items()
            if isinstance(value, (int, float, str, np.number))
            and not (key_excluded.get(key) and "csv" in key_excluded[key])
        }
        new = sorted(set(row) - set(self.keys))
        if new:
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            self.keys += new
            self._rewrite(rows)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.keys).writerow(row)

    def close(self) -> None:
        pass


# -- using a run: evaluation and export ----------------------------------------------------------


def load_run(run_dir: str | Path, env: Any = None) -> tuple[RunConfig, Any, str]:
    """The run's config, its model (final when finished, else the newest complete checkpoint)
    loaded on ``env``, and which file that model came from."""
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise RunError(f"{run_dir} holds no run: {CONFIG_FILE} is missing.")
    config = load_config(config_path)
    if is_finished(run_dir) and (run_dir / MODEL_FILE).is_file():
        path = run_dir / MODEL_FILE
    else:
        checkpoint = latest_checkpoint(run_dir / CHECKPOINTS_DIR)
        if checkpoint is None:
            raise RunError(f"{run_dir} has no model yet: not finished and no complete checkpoint.")
        path = checkpoint.model_path
    return config, load_model(config, path, run_dir, env), str(path)


def evaluate_run(
    run_dir: str | Path,
    *,
    episodes: int | None = None,
    modes: Sequence[str | float] | None = None,
    out_dir: str | Path | None = None,
) -> Path:
    """Evaluate a run's model; write ``eval.csv``, ``eval.md``, ``eval.json`` to ``out_dir``.

    :param episodes: per mode (default: the run's ``eval.episodes``).
    :param modes: visual algos only: distraction modes (default: ``agents.DEFAULT_MODES``);
        pixel agents also get MaDi mask scores and pictures (see ``agents.evaluate_modes``).
    :param out_dir: default ``RUN_DIR/evaluation``.
    :returns: the path of the written ``eval.csv``.
    """
    from sparse_rl import agents

    run_dir = Path(run_dir)
    config, model, source = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "evaluation"
    episodes = episodes if episodes is not None else config.eval.episodes
    if episodes < 1:
        raise ConfigError(f"episodes: must be >= 1, got {episodes}.")
    for i, mode in enumerate(modes or ()):
        check_mode(f"modes[{i}]", mode)
    evaluator = _Evaluator(config)
    try:
        if is_visual(config):
            chosen = list(modes) if modes else list(agents.DEFAULT_MODES)
            rows = agents.evaluate_modes(
                model,
                config.env.id,
                chosen,
                episodes,
                eval_seed(config),
                out_dir=out,
                **visual_eval_kwargs(config),
            )
        else:
            rows = evaluator.rows(model, episodes, modes)
    finally:
        evaluator.close()
        model.get_env().close()
    rows = [{**row, "step": int(model.num_timesteps), "model": source} for row in rows]
    write_table(out, rows)
    return out / "eval.csv"


def write_table(out: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as ``eval.csv``, ``eval.json`` and a Markdown ``eval.md``."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with (out / "eval.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    (out / "eval.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [
            f"{v:.3f}" if isinstance(v, float) else str(v) for v in (row.get(k, "") for k in keys)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "eval.md").write_text("\n".join(lines) + "\n")


def export_run(
    run_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    formats: Sequence[str] = ("onnx", "torchscript"),
) -> Path:
    """Export a run's model with ``agents.export.export_policy``; return the card's path.

    :param out_dir: default ``RUN_DIR/export``.
    :param formats: ``onnx`` (always written), ``torchscript``, ``numpy``.
    """
    from sparse_rl.agents.export import FORMATS, export_policy

    for name in formats:
        check_choice("formats", name, FORMATS)
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else None
    if config is None:
        raise RunError(f"{run_dir} holds no run: {CONFIG_FILE} is missing.")
    env = make_env(config)
    try:
        config, model, _ = load_run(run_dir, env)
        frame_stack = None
        if observation_kind(config) == "pixels":
            frame_stack = int(env.get_wrapper_attr("frame_stack"))
        out = Path(out_dir) if out_dir is not None else run_dir / "export"
        return export_policy(
            model, out, formats=tuple(formats), env_id=config.env.id, frame_stack=frame_stack
        )
    finally:
        env.close()
