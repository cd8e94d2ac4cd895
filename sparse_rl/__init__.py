"""sparse-rl: reinforcement learning with sparse networks whose topology evolves during training."""

import os

# Headless rendering by default (Mesa EGL works on CPU-only machines); a user's choice wins.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"

__all__ = ["__version__"]
