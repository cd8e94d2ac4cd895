"""``make_env``: any combination of DMC task, observation kind, distraction preset and noise."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from .dmc import DMCEnv, suite_tasks
from .noisy_features import NoisyFeatures
from .presets import VideoArg, distractions_for


def split_dmc_name(name: str) -> tuple[str, str] | None:
    """``"ball_in_cup-catch"`` → ``("ball_in_cup", "catch")`` when the domain is a DMC domain."""
    domain, sep, task = name.partition("-")
    return (domain, task) if sep and domain in suite_tasks() else None


def make_env(
    name: str,
    *,
    obs: str | None = None,
    preset: str | float | None = None,
    dynamic: bool | None = None,
    videos: VideoArg = None,
    noise_fraction: float | None = None,
    noise: str = "gaussian",
    noise_scale: float = 1.0,
    permute: bool = False,
    repermute_every: int | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """Build a DMC task (``"walker-walk"``) or a gymnasium id (``"HalfCheetah-v5"``).

    :param name: ``"<domain>-<task>"`` of the DeepMind Control suite, or any gymnasium id.
    :param obs: "state" or "pixels" (DMC only; gymnasium ids are state). Default: "pixels" when a
        distraction is asked for (``preset``, ``dynamic`` or ``videos``), else "state".
    :param preset: distraction preset for DMC pixels (see :data:`~sparse_rl.envs.PRESETS`) or
        a float intensity; None = clean.
    :param dynamic: distractions change every frame (see :func:`distractions_for`).
    :param videos: background video source: None (procedural), a directory, or a VideoSource.
    :param noise_fraction: when given, the Extremely Noisy Environment: this fraction of the
        (flat, state) observation is noise. The other ``noise*`` / ``permute`` arguments go to
        :class:`~sparse_rl.envs.NoisyFeatures`.
    :param env_kwargs: passed on to :class:`~sparse_rl.envs.DMCEnv` or ``gymnasium.make``.
    """
    dmc = split_dmc_name(name)
    distracted = preset is not None or dynamic is not None or videos is not None
    if dmc is not None:
        obs = obs if obs is not None else ("pixels" if distracted else "state")
        if preset is not None and obs != "pixels":
            raise ValueError(f"preset={preset!r} distracts pixels; it needs obs='pixels'.")
        distractions = distractions_for(preset, dynamic=dynamic, videos=videos)
        env: gym.Env = DMCEnv(*dmc, obs=obs, distractions=distractions, **env_kwargs)
    else:
        for param, value in (("preset", preset), ("videos", videos), ("dynamic", dynamic)):
            if value is not None:
                raise ValueError(
                    f"{param}= applies to DeepMind Control tasks ('<domain>-<task>', e.g. "
                    f"'walker-walk'); {name!r} is not one."
                )
        if obs not in (None, "state"):
            raise ValueError(
                f"obs={obs!r} applies to DeepMind Control tasks; {name!r} is a gymnasium id, "
                "whose observations are its state (obs='state' or None)."
            )
        try:
            env = gym.make(name, **env_kwargs)
        except gym.error.Error as error:
            domains = ", ".join(suite_tasks())
            raise ValueError(
                f"{name!r} is neither a gymnasium id nor '<domain>-<task>' of DeepMind Control "
                f"(domains: {domains}): {error}"
            ) from error
    if noise_fraction is not None:
        env = NoisyFeatures(
            env,
            noise_fraction,
            noise=noise,  # type: ignore[arg-type]
            noise_scale=noise_scale,
            permute=permute,
            repermute_every=repermute_every,
        )
    return env
