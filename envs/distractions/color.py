"""Seeded color distraction: sky, floor and body colors moved within a scale, static or dynamic.

Every color gets its own draw, in the style of the Distracting Control Suite (uniform within
``±scale`` per RGB channel, clipped to [0, 1]; dynamic: a Gaussian random walk with step
``0.03 * scale`` per frame, clipped to the same box):

- bodies: ``mat_rgba`` of every material without a floor texture (agent, decorations, targets)
  and ``geom_rgba`` of visible geoms without a material;
- floor: an RGB offset on the texture of every material used by a world-body plane (the grid),
  written into ``tex_data`` and re-uploaded with ``mjr_uploadTexture`` (300x300: under 1 ms);
- sky: an RGB offset on the background pixels of the frame, found with the segmentation pass.
  MuJoCo draws the skybox with a fixed white color, so its only run-time field is the 800x4800
  texture, whose re-upload costs about 30 ms on a software renderer: far too slow for a dynamic
  walk, whereas the segmentation pass costs about 1 ms at 84x84. An offset on the pixels equals
  an offset on the texture, since the skybox is drawn unlit.

Nothing rebuilds the XML; ``restore`` writes the original fields back.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from .base import RenderContext


def _upload_texture(physics: Any, texid: int) -> None:
    """Push ``tex_data`` of one texture to the GL context (created on first use)."""
    contexts = physics.contexts
    with contexts.gl.make_current() as ctx:
        ctx.call(mujoco.mjr_uploadTexture, physics.model.ptr, contexts.mujoco.ptr, texid)


class ColorDistraction:
    """Random sky, floor and body colors within ``scale``, drawn per episode or walked per frame.

    :param scale: largest change per RGB channel, in [0, 1] (DCS: 0.1 / 0.2 / 0.3).
    :param dynamic: take a random-walk step before every frame instead of one draw per episode.
    :param step_std: random-walk step per frame; default ``0.03 * scale`` (DCS).
    :param sky: change the sky (costs the segmentation pass).
    :param floor: change the floor texture.
    :param bodies: change material and geom colors (the agent's own bodies among them).

    One instance serves one env: it keeps that env's original colors.
    """

    def __init__(
        self,
        scale: float,
        dynamic: bool = False,
        *,
        step_std: float | None = None,
        sky: bool = True,
        floor: bool = True,
        bodies: bool = True,
    ) -> None:
        if not 0.0 <= float(scale) <= 1.0:
            raise ValueError(f"color scale must be in [0, 1], got {scale!r}")
        step = 0.03 * float(scale) if step_std is None else float(step_std)
        if not step >= 0.0:
            raise ValueError(f"step_std must be >= 0, got {step_std!r}")
        self.scale, self.dynamic, self.step_std = float(scale), bool(dynamic), step
        self.sky, self.floor, self.bodies = bool(sky), bool(floor), bool(bodies)
        self.needs_segmentation = self.sky
        self._physics: Any = None
        self._current: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"ColorDistraction(scale={self.scale}, dynamic={self.dynamic})"

    # ------------------------------------------------------------------ protocol

    def reset(self, physics: Any, rng: np.random.Generator) -> None:
        """Remember the original colors (first time) and draw this episode's colors."""
        if physics is not self._physics:
            self._capture(physics)
        self._current = rng.uniform(self._lo, self._hi)
        self._apply(physics)

    def before_render(self, physics: Any, rng: np.random.Generator) -> None:
        """Dynamic: one clipped Gaussian random-walk step of every color."""
        if not self.dynamic or self._current is None or self.step_std == 0.0:
            return
        step = rng.normal(0.0, self.step_std, self._current.shape)
        self._current = np.clip(self._current + step, self._lo, self._hi)
        self._apply(physics)

    def after_render(self, frame: np.ndarray, physics: Any, context: RenderContext) -> np.ndarray:
        """Shift the sky (background) pixels by this frame's sky offset."""
        if not self.sky or self._current is None:
            return frame
        if context.segmentation is None:
            raise RuntimeError("ColorDistraction(sky=True) needs the segmentation image")
        offset = np.rint(self._current[self._sky] * 255.0).astype(np.int16)
        background = context.segmentation[..., 0] < 0
        pixels = frame[background].astype(np.int16) + offset
        out = frame.copy()
        out[background] = np.clip(pixels, 0, 255).astype(np.uint8)
        return out

    def restore(self, physics: Any) -> None:
        """Write the original material, geom and texture colors back."""
        if physics is not self._physics or self._current is None:
            return
        model = physics.model
        model.mat_rgba[self._mats, :3] = self._mat_rgb
        model.geom_rgba[self._geoms, :3] = self._geom_rgb
        for texid, (start, data, _) in self._textures.items():
            model.tex_data[start : start + data.size] = data
            _upload_texture(physics, texid)
        self._current = None

    # ------------------------------------------------------------------ internals

    def _capture(self, physics: Any) -> None:
        """Find what to color and save its original values and bounds."""
        model = physics.model
        rgb_role = int(mujoco.mjtTextureRole.mjTEXROLE_RGB)
        mat_tex = np.asarray(model.mat_texid).reshape(model.nmat, -1)[:, rgb_role]
        plane = (model.geom_bodyid == 0) & (model.geom_type == int(mujoco.mjtGeom.mjGEOM_PLANE))
        floor_mats = np.unique(model.geom_matid[plane & (model.geom_matid >= 0)])
        floor_tex: list[int] = []
        if self.floor:
            candidates = np.unique(mat_tex[floor_mats])
            floor_tex = [
                int(t)
                for t in candidates[candidates >= 0]
                if model.tex_type[t] == int(mujoco.mjtTexture.mjTEXTURE_2D)
            ]
        textured_floor = np.isin(np.arange(model.nmat), floor_mats) & np.isin(mat_tex, floor_tex)
        self._mats = np.flatnonzero(~textured_floor) if self.bodies else np.zeros(0, int)
        visible = (model.geom_matid < 0) & (model.geom_rgba[:, 3] > 0)
        self._geoms = np.flatnonzero(visible) if self.bodies else np.zeros(0, int)
        self._mat_rgb = model.mat_rgba[self._mats, :3].copy()
        self._geom_rgb = model.geom_rgba[self._geoms, :3].copy()
        # Per floor texture: where its data starts, the original bytes, and each byte's index
        # into a per-channel lookup table (value + 256 * channel), so a recolor is one gather.
        self._textures: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        for t in floor_tex:
            start, nch = int(model.tex_adr[t]), int(model.tex_nchannel[t])
            n = int(model.tex_width[t] * model.tex_height[t]) * nch
            data = model.tex_data[start : start + n].copy()
            index = data.astype(np.int32) + 256 * np.tile(np.arange(nch), n // nch)
            self._textures[t] = (start, data, index)

        # One flat vector of every color: absolute RGB for materials and geoms, offsets else.
        s = self.scale
        absolute = np.concatenate([self._mat_rgb, self._geom_rgb]).ravel()
        n_offsets = 3 * (len(self._textures) + 1)  # floor textures, then the sky
        self._lo = np.concatenate([np.clip(absolute - s, 0, 1), np.full(n_offsets, -s)])
        self._hi = np.concatenate([np.clip(absolute + s, 0, 1), np.full(n_offsets, s)])
        n_mat, n_abs = self._mat_rgb.size, absolute.size
        self._mat_slice = slice(0, n_mat)
        self._geom_slice = slice(n_mat, n_abs)
        self._tex_slices = [slice(n_abs + 3 * i, n_abs + 3 * i + 3) for i in range(len(floor_tex))]
        self._sky = slice(self._lo.size - 3, self._lo.size)
        self._physics = physics

    def _apply(self, physics: Any) -> None:
        """Write the current colors into the model (floor textures re-uploaded)."""
        assert self._current is not None
        model = physics.model
        model.mat_rgba[self._mats, :3] = self._current[self._mat_slice].reshape(-1, 3)
        model.geom_rgba[self._geoms, :3] = self._current[self._geom_slice].reshape(-1, 3)
        textures = zip(self._textures.items(), self._tex_slices, strict=True)
        for (texid, (start, data, index)), sl in textures:
            nch = int(model.tex_nchannel[texid])
            offset = np.zeros(nch)  # alpha (if any) keeps its value
            offset[:3] = np.rint(self._current[sl] * 255.0)
            lut = np.clip(np.arange(256.0)[None, :] + offset[:, None], 0, 255).astype(np.uint8)
            model.tex_data[start : start + data.size] = lut.ravel()[index]
            _upload_texture(physics, texid)
