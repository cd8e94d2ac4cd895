"""Train an agent from a :class:`~sparse_rl.config.RunConfig` into a run directory.

The run directory's layout: :mod:`sparse_rl.run_dir`.

A run evaluates every ``eval.every`` env steps (deterministic actions, ``eval.episodes`` episodes
on a separate env, episode ``i`` seeded ``eval.seed + i``) and checkpoints every
``checkpoint.every`` steps and at the end. Killed at any moment, it resumes from its newest
complete checkpoint: evaluation rows and log rows after that step are dropped and redone; a
pebble / r2n run keeps every label, including those made after the checkpoint. A resumed run
continues the saved random states but starts a new episode (the env's own state is not saved),
so it is not bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from sparse_rl import __version__
from sparse_rl.checkpoints import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    save_checkpoint,
    set_aside,
    write_atomically,
)
from sparse_rl.config import (
    ConfigError,
    RunConfig,
    config_differences,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)
from sparse_rl.evaluation import Evaluator
from sparse_rl.models import build_model, check_device, load_model, make_env
from sparse_rl.run_dir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DONE_FILE,
    EVAL_FILE,
    LABELS_FILE,
    LOGS_DIR,
    MODEL_FILE,
    RunError,
    aside_path,
    config_steps,
    done_steps,
    run_lock,
)
from sparse_rl.run_logs import make_logger, truncate_eval
from sparse_rl.safe_io import UnsafeStateError, load_buffer, restore_rng_state

log = logging.getLogger(__name__)


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
        done = done_steps(run_dir)
        if done is not None and done > config.steps:
            raise ConfigError(
                f"steps: {config.steps} is fewer than the {done} steps {run_dir} has trained; "
                f"give steps >= {done} to extend it. Nothing was changed."
            )
        if done is not None and done == config.steps:
            log.info("%s is finished (%d steps); nothing to do.", run_dir, done)
            return run_dir
    check_device(config.device)
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
        if config_steps(run_dir) != config.steps:
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
    if path.is_file() and done_steps(run_dir) is None:
        os.replace(path, aside_path(path))
    path.unlink(missing_ok=True)


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
    truncate_eval(run_dir / EVAL_FILE, start)
    logger = make_logger(run_dir / LOGS_DIR, config.log_formats, keep_until=start)
    model.set_logger(logger)
    callbacks: list[BaseCallback] = []
    if getattr(model.policy, "sparse_networks", None):
        callbacks.append(agents.SparsityLogger())
    evaluator = Evaluator(config)
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
