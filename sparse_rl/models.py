"""The env and the SB3 model of a run, built from its config; saved models are read without
unpickling anything (:mod:`sparse_rl.safe_io`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl.algorithms import (
    algorithm,
    algorithm_class,
    build_algo_kwargs,
    build_policy_kwargs,
    build_preference,
    build_teacher,
    policy_name,
)
from sparse_rl.config import (
    ConfigError,
    RunConfig,
    observation_kind,
)
from sparse_rl.run_dir import LABELS_FILE, RunError, labels_path
from sparse_rl.safe_io import restore_model


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
            label_store=labels_path(run_dir),
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
    if algorithm(config).learns_from_labels and not labels_path(run_dir).is_file():
        raise RunError(
            f"{run_dir}: the label store {labels_path(run_dir)} is missing; the model's reward "
            "was learned from it, and a new store would silently drop every label. Put the run's "
            f"{LABELS_FILE} back."
        )
    model = build_model(config, env if env is not None else make_env(config), run_dir)
    restore_model(model, path)
    return model


def check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device: {device!r} but torch sees no CUDA device; use device: auto or cpu."
        )
