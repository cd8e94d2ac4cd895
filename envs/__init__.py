"""Test beds for the agents: noisy-feature observations and distracting DeepMind Control.

Importing this package registers namespaced gymnasium ids (see :data:`REGISTERED_IDS`):

- ``sparse_rl/<domain>-<task>-<preset>-v0``: DMC pixels with a distraction preset
  (``clean``, ``color_easy``, ``color_hard``, ``video_easy``, ``video_hard``, ``easy``,
  ``medium``, ``hard``), for the tasks in :data:`DMC_TASKS`;
- ``sparse_rl/<domain>-<task>-state-v0``: flat DMC state vectors;
- ``sparse_rl/Noisy<Env>-v5``: gymnasium MuJoCo envs with 90% noise features (override with
  ``gymnasium.make(id, noise_fraction=0.98)``).

:func:`make_env` builds any other combination from keyword arguments.
"""

import gymnasium

import sparse_rl  # noqa: F401  (sets MUJOCO_GL=egl before any renderer loads)

from .distractions.background import BackgroundDistraction
from .distractions.base import Distraction, RenderContext
from .distractions.camera import CameraDistraction
from .distractions.color import ColorDistraction
from .dmc import DMCEnv
from .factory import make_env
from .noisy_features import NOISE_KINDS, NoisyFeatures, noisy_observation_size
from .presets import DCS_NUM_VIDEOS, DCS_SCALE, GB_COLOR_SCALE, PRESETS, distractions_for
from .video_sources import DirectoryVideos, ProceduralVideos, VideoSource

#: DMC tasks with registered ids: those of DMControl-GB, the Distracting Control Suite and MaDi.
DMC_TASKS = (
    "ball_in_cup-catch",
    "cartpole-balance",
    "cartpole-swingup",
    "cheetah-run",
    "finger-spin",
    "reacher-easy",
    "walker-run",
    "walker-stand",
    "walker-walk",
)
#: Gymnasium MuJoCo envs with a registered noisy-feature variant (ANF's test beds).
NOISY_BASES = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5")
_ENTRY = "sparse_rl.envs.factory:make_env"


def _register_all() -> tuple[str, ...]:
    ids: list[tuple[str, dict[str, object]]] = []
    for name in DMC_TASKS:
        ids += [
            (f"sparse_rl/{name}-{preset}-v0", {"name": name, "preset": preset})
            for preset in PRESETS
        ]
        ids.append((f"sparse_rl/{name}-state-v0", {"name": name, "obs": "state"}))
    for base in NOISY_BASES:
        stem, version = base.rsplit("-", 1)
        ids.append((f"sparse_rl/Noisy{stem}-{version}", {"name": base, "noise_fraction": 0.9}))
    for env_id, kwargs in ids:
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=_ENTRY, kwargs=kwargs)
    return tuple(env_id for env_id, _ in ids)


#: Every id this package registers.
REGISTERED_IDS = _register_all()

__all__ = [
    "DCS_NUM_VIDEOS",
    "DCS_SCALE",
    "DMC_TASKS",
    "GB_COLOR_SCALE",
    "NOISE_KINDS",
    "NOISY_BASES",
    "PRESETS",
    "REGISTERED_IDS",
    "BackgroundDistraction",
    "CameraDistraction",
    "ColorDistraction",
    "DMCEnv",
    "DirectoryVideos",
    "Distraction",
    "NoisyFeatures",
    "ProceduralVideos",
    "RenderContext",
    "VideoSource",
    "distractions_for",
    "make_env",
    "noisy_observation_size",
]
