"""The one interface every visual distraction implements.

A pixel DMC env owns a list of distractions. Around every render it calls them in order:

1. ``reset(physics, rng)`` once per episode (static distractions draw their perturbation here);
2. ``before_render(physics, rng)`` before each rendered frame (dynamic ones take a random-walk or
   playback step here; changes go through the model's fields at run time, never an XML rebuild);
3. ``after_render(frame, physics, context)`` on the rendered ``(H, W, 3)`` uint8 frame, for
   compositing (video backgrounds); it must be vectorised numpy, never a per-pixel Python loop.

``rng`` is the env's own ``numpy.random.Generator`` seeded through ``reset(seed=...)``, so the
same seed gives the same distractions. ``restore(physics)`` undoes model-field changes (the env
calls it before ``reset`` so perturbations never accumulate across episodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class RenderContext:
    """What a distraction may need to know about the frame being rendered."""

    height: int
    width: int
    camera_id: int
    #: Per-pixel MuJoCo segmentation ``(H, W, 2)`` int32 (object id, object type), rendered only
    #: when some distraction asks for it (``needs_segmentation``), else None.
    segmentation: np.ndarray | None = None


@runtime_checkable
class Distraction(Protocol):
    """A seeded perturbation of what the camera sees (colors, camera pose, background)."""

    #: Whether ``after_render`` needs the segmentation image (costs a second render pass).
    needs_segmentation: bool

    def reset(self, physics: Any, rng: np.random.Generator) -> None: ...

    def before_render(self, physics: Any, rng: np.random.Generator) -> None: ...

    def after_render(
        self, frame: np.ndarray, physics: Any, context: RenderContext
    ) -> np.ndarray: ...

    def restore(self, physics: Any) -> None: ...
