"""Named distraction settings: the DMControl-GB modes, Distracting Control Suite difficulties and
a float intensity for evaluation sweeps. Each name expands to a list of seeded distractions."""

from __future__ import annotations

import math
import os

from .distractions.background import BackgroundDistraction
from .distractions.base import Distraction
from .distractions.camera import CameraDistraction
from .distractions.color import ColorDistraction
from .video_sources import VideoSource

#: DMControl-GB spreads colors with std ≈ 0.10 (easy) / 0.19 (hard); a uniform draw within
#: ±scale has std scale/√3, hence these scales.
GB_COLOR_SCALE = {"color_easy": 0.10 * math.sqrt(3), "color_hard": 0.19 * math.sqrt(3)}
#: Distracting Control Suite: scale of color and camera changes, and how many videos are used.
DCS_SCALE = {"easy": 0.1, "medium": 0.2, "hard": 0.3}
DCS_NUM_VIDEOS: dict[str, int | None] = {"easy": 4, "medium": 8, "hard": None}

PRESETS = ("clean", *GB_COLOR_SCALE, "video_easy", "video_hard", *DCS_SCALE)

VideoArg = VideoSource | str | os.PathLike[str] | None


def distractions_for(
    preset: str | float | None,
    *,
    dynamic: bool | None = None,
    videos: VideoArg = None,
) -> list[Distraction]:
    """The distractions of ``preset``.

    :param preset: one of :data:`PRESETS`, None (= "clean"), or a float intensity in (0, 1]: the
        Distracting Control Suite kinds (color, camera, background) all at that scale, as in
        MaDi's sweeps (0.025 … 0.5).
    :param dynamic: change every frame (random walks, video playback) or once per episode.
        Default: dynamic for the video presets (DMControl-GB plays its videos), static for the
        color presets and for the Distracting Control Suite difficulties (its default).
    :param videos: video source for backgrounds: None for the built-in procedural clips, a
        directory of the user's videos / DAVIS-style image sequences, or a ``VideoSource``.
    """
    if preset is None or preset == "clean":
        return []
    if isinstance(preset, bool) or not isinstance(preset, (str, int, float)):
        raise TypeError(f"preset must be a name or a float intensity, got {preset!r}")
    if not isinstance(preset, str):
        intensity = float(preset)
        if not 0.0 < intensity <= 1.0:
            raise ValueError(f"preset intensity must lie in (0, 1], got {preset!r}")
        return _dcs(intensity, num_videos=None, dynamic=bool(dynamic), videos=videos)
    if preset in GB_COLOR_SCALE:
        return [ColorDistraction(GB_COLOR_SCALE[preset], dynamic=bool(dynamic))]
    if preset in ("video_easy", "video_hard"):
        playing = True if dynamic is None else dynamic
        hard = preset == "video_hard"
        return [BackgroundDistraction(videos, hard=hard, dynamic=playing)]
    if preset in DCS_SCALE:
        return _dcs(DCS_SCALE[preset], DCS_NUM_VIDEOS[preset], bool(dynamic), videos)
    import difflib

    close = difflib.get_close_matches(preset, PRESETS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"preset={preset!r} is not valid; choose one of {list(PRESETS)} or a float intensity "
        f"in (0, 1].{hint}"
    )


def _dcs(
    scale: float, num_videos: int | None, dynamic: bool, videos: VideoArg
) -> list[Distraction]:
    """All three Distracting Control Suite kinds at one scale."""
    return [
        ColorDistraction(scale, dynamic=dynamic),
        CameraDistraction(scale, dynamic=dynamic),
        BackgroundDistraction(videos, dynamic=dynamic, num_videos=num_videos),
    ]
