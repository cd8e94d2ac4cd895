"""Using a run: deterministic evaluation (per distraction mode for pixel agents) and export."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl.algorithms import (
    is_visual,
)
from sparse_rl.checkpoints import (
    latest_checkpoint,
)
from sparse_rl.config import (
    ConfigError,
    RunConfig,
    check_mode,
    eval_modes,
    eval_seed,
    load_config,
    observation_kind,
)
from sparse_rl.models import load_model, make_env
from sparse_rl.run_dir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DEFAULT_MODE,
    MODEL_FILE,
    RunError,
    is_finished,
)
from sparse_rl.run_logs import append_eval, write_table
from sparse_rl.validation import check_choice

log = logging.getLogger(__name__)


class Evaluator:
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
        from sparse_rl.agents.rollouts import rollout_returns

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
        append_eval(path, [{**row, "step": step} for row in rows])
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
    evaluator = Evaluator(config)
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
