"""Video backgrounds: the sky (and for ``hard`` the floor) replaced by video frames.

Compositing is done on the rendered frame with MuJoCo's segmentation image: pixels whose
segmentation says "no object" (the skybox) and, for ``hard``, pixels of the floor geoms take the
video frame; every other pixel (the agent, its reflections' occluders, props) is left as rendered,
so the agent always stays visible. It is one boolean mask and one ``np.where`` per frame.

Why not the skybox texture (what the Distracting Control Suite does)? The DMC skybox texture is
800 × 4800 RGB; re-uploading it with ``mjr_uploadTexture`` costs about as much as a whole 84 × 84
render on a CPU (Mesa EGL), so dynamic playback would halve the frame rate, while the segmentation
pass costs about a tenth of a render (measured: walker-walk 84 × 84, ≈19 ms render, ≈2 ms
segmentation). Compositing also needs no model edits, so ``restore`` has nothing to undo.

The video is screen-space (like DMControl-GB's video backgrounds): it fills the frame behind the
agent and does not turn with the camera.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import mujoco
import numpy as np

from ..video_sources import VideoSource, as_video_source
from .base import RenderContext

__all__ = ["BackgroundDistraction", "floor_geom_ids"]

_PLAYBACK = ("pingpong", "loop")
# plain ints: comparing an array with a pybind11 enum falls back to a per-element Python loop
_OBJ_GEOM = int(mujoco.mjtObj.mjOBJ_GEOM)
_GEOM_PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)


def floor_geom_ids(model: Any) -> np.ndarray:
    """Ids of the floor geoms: planes attached to the world body (DMC's ``floor``/``ground``,
    and the arena walls of e.g. reacher, which are world planes too)."""
    m = getattr(model, "ptr", model)  # dm_control's MjModel wrapper or a raw mujoco.MjModel
    is_plane = m.geom_type == _GEOM_PLANE
    return np.flatnonzero(is_plane & (m.geom_bodyid == 0)).astype(np.int32)


class BackgroundDistraction:
    """Replace the background of rendered frames with frames of a seeded choice of video.

    Per episode (``reset``) the env's rng picks one of the first ``num_videos`` videos of the
    source and a start frame. ``dynamic=False`` shows that one frame all episode;
    ``dynamic=True`` plays the video, one video frame per rendered frame, looping or ping-ponging
    at the ends. Playback needs no rng, so only ``reset`` draws from it (two draws, always).

    :param source: the videos: a :class:`~sparse_rl.envs.video_sources.VideoSource`, a directory
        path (:class:`~sparse_rl.envs.video_sources.DirectoryVideos`, checked at once), or None for
        the built-in procedural clips.
    :param hard: also replace the floor (world-body planes), as in DMControl-GB's ``video_hard``.
    :param dynamic: play the video (True) or hold one frame per episode (False).
    :param num_videos: draw only from the first N videos of the source (the Distracting Control
        Suite uses 4 / 8 / all for easy / medium / hard); None uses all of them.
    :param alpha: how much of the video replaces the background, in [0, 1]: 1 replaces it, lower
        values blend the video over the rendered background (a knob for intensity sweeps).
    :param playback: at the end of the video, ``"pingpong"`` reverses (as the Distracting Control
        Suite does), ``"loop"`` jumps back to the first frame.
    """

    needs_segmentation: bool = True

    def __init__(
        self,
        source: VideoSource | str | os.PathLike[str] | None = None,
        *,
        hard: bool = False,
        dynamic: bool = False,
        num_videos: int | None = None,
        alpha: float = 1.0,
        playback: Literal["pingpong", "loop"] = "pingpong",
    ) -> None:
        for name, flag in (("hard", hard), ("dynamic", dynamic)):
            if not isinstance(flag, bool | np.bool_):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        if playback not in _PLAYBACK:
            raise ValueError(f"playback must be one of {list(_PLAYBACK)}, got {playback!r}")
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, int | float | np.floating)
            or not 0.0 <= alpha <= 1.0
        ):
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        self.source = as_video_source(source)
        total = self.source.num_videos
        if num_videos is None:
            num_videos = total
        elif (
            isinstance(num_videos, bool)
            or not isinstance(num_videos, int | np.integer)
            or not 1 <= num_videos <= total
        ):
            raise ValueError(
                f"num_videos must be an int in [1, {total}] (the source holds {total} videos) "
                f"or None for all, got {num_videos!r}"
            )
        self.hard = bool(hard)
        self.dynamic = bool(dynamic)
        self.num_videos = int(num_videos)
        self.alpha = float(alpha)
        self.playback = playback
        self._video: int | None = None
        self._start = 0.0  # start position as a fraction of the clip: the clip length is unknown
        self._still: np.ndarray | None = None  # the static frame of this episode
        self._steps = 0  # until the first render (the size comes with the RenderContext)
        self._floor: np.ndarray = np.empty(0, np.int32)

    # -- the Distraction protocol ----------------------------------------------------------------

    def reset(self, physics: Any, rng: np.random.Generator) -> None:
        """Pick this episode's video and start frame (always exactly two draws from ``rng``)."""
        self._video = int(rng.integers(self.num_videos))
        self._start = float(rng.random())
        self._steps = -1  # the first before_render brings it to 0: the first frame is the start
        self._still: np.ndarray | None = None
        if self.hard:
            self._floor = floor_geom_ids(physics.model)

    def before_render(self, physics: Any, rng: np.random.Generator) -> None:
        """Advance playback by one frame (dynamic only); draws nothing from ``rng``."""
        self._steps += 1

    def after_render(self, frame: np.ndarray, physics: Any, context: RenderContext) -> np.ndarray:
        """Compose the current video frame where the segmentation says sky (and floor if hard)."""
        if self._video is None:
            raise RuntimeError("BackgroundDistraction.after_render called before reset")
        seg = context.segmentation
        if seg is None:
            raise RuntimeError(
                "BackgroundDistraction needs the segmentation image (needs_segmentation=True): "
                "the env must render it into RenderContext.segmentation"
            )
        height, width = frame.shape[:2]
        if seg.shape[:2] != (height, width):
            raise ValueError(f"segmentation shape {seg.shape[:2]} != frame shape {(height, width)}")
        mask = self.background_mask(seg)
        video = self.current_frame(height, width)
        if self.alpha == 1.0:
            return np.where(mask[..., None], video, frame)
        blend = frame * (1.0 - self.alpha) + video * self.alpha
        return np.where(mask[..., None], (blend + 0.5).astype(np.uint8), frame)

    def restore(self, physics: Any) -> None:
        """Nothing to undo: compositing never touches the model."""

    # -- helpers ---------------------------------------------------------------------------------

    def background_mask(self, segmentation: np.ndarray) -> np.ndarray:
        """``(H, W)`` bool: the pixels this distraction replaces (sky; floor too if ``hard``)."""
        ids = segmentation[..., 0]
        mask = ids == -1
        if self.hard and self._floor.size:
            geom = segmentation[..., 1] == _OBJ_GEOM
            mask |= geom & np.isin(ids, self._floor)
        return mask

    @property
    def video_index(self) -> int | None:
        """This episode's video (an index into the source), None before the first reset."""
        return self._video

    def frame_position(self, num_frames: int) -> int:
        """Index of the frame shown now, in a clip of ``num_frames`` frames."""
        start = min(int(self._start * num_frames), num_frames - 1)
        if not self.dynamic or num_frames == 1:
            return start
        step = start + max(self._steps, 0)
        if self.playback == "loop":
            return step % num_frames
        period = 2 * (num_frames - 1)
        phase = step % period
        return phase if phase < num_frames else period - phase

    def current_frame(self, height: int, width: int) -> np.ndarray:
        """The video frame shown now, ``(height, width, 3)`` uint8."""
        if self._video is None:
            raise RuntimeError("BackgroundDistraction: call reset first")
        if not self.dynamic:  # one frame all episode: ask the source for just that frame
            if self._still is None or self._still.shape[:2] != (height, width):
                self._still = self.source.frame(self._video, self._start, height, width)
            return self._still
        clip = self.source.frames(self._video, height, width)
        return clip[self.frame_position(len(clip))]

    def __repr__(self) -> str:
        return (
            f"BackgroundDistraction(source={type(self.source).__name__}, hard={self.hard}, "
            f"dynamic={self.dynamic}, num_videos={self.num_videos}, alpha={self.alpha}, "
            f"playback={self.playback!r})"
        )
