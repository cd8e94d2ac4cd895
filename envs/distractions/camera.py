"""Seeded camera distraction: position, orientation and zoom moved within a scale.

As in the Distracting Control Suite, the camera moves on a sphere around the point it looks at
(azimuth and elevation ``±π/2 · scale``), rolls about its axis (``±π/2 · scale``) and zooms
(``0.5 · scale`` in, ``1.5 · scale`` out). It keeps looking at that point, the spot on its axis
nearest the agent, so the agent stays in view; it never drops below that point's height. Zoom
changes the field of view (``tan(fovy / 2)`` scaled like the DCS distance), not the distance.

Static: one draw per episode. Dynamic: a velocity random walk per frame, bounded like the DCS
one (velocity ``0.1 · scale`` rad per frame at most, roll ``π/50 · scale``). Changes go through
the model's camera fields (``cam_pos``/``cam_quat`` for fixed cameras, ``cam_pos0``/
``cam_poscom0``/``cam_mat0`` for tracking ones, ``cam_fovy``) followed by ``mj_camlight``;
``restore`` writes the originals back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from .base import RenderContext

_TRACK = int(mujoco.mjtCamLight.mjCAMLIGHT_TRACK)
_TRACKCOM = int(mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
_FIELDS = ("cam_pos", "cam_quat", "cam_pos0", "cam_poscom0", "cam_mat0", "cam_fovy")


def _look(theta: float, phi: float) -> np.ndarray:
    """Camera axes (columns x, y, z) for a camera at polar ``theta``, azimuth ``phi`` from the
    point it looks at, with a level x axis (no roll). Defined at the pole too."""
    st, ct, sp, cp = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    z = np.array([st * cp, st * sp, ct])
    x = np.array([-sp, cp, 0.0])
    return np.stack([x, np.cross(z, x), z], axis=1)


def _roll(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class CameraDistraction:
    """Random camera pose and zoom within ``scale``, drawn per episode or walked per frame.

    :param scale: in [0, 1] (DCS: 0.1 / 0.2 / 0.3).
    :param dynamic: take a random-walk step before every frame instead of one draw per episode.
    :param camera_ids: cameras to move; default every camera of the model (the distraction does
        not know which one the env renders, and the others cost nothing).

    One instance serves one env: it keeps that env's original camera fields.
    """

    needs_segmentation = False

    def __init__(
        self, scale: float, dynamic: bool = False, *, camera_ids: Sequence[int] | None = None
    ) -> None:
        if not 0.0 <= float(scale) <= 1.0:
            raise ValueError(f"camera scale must be in [0, 1], got {scale!r}")
        self.scale, self.dynamic = float(scale), bool(dynamic)
        self.camera_ids = None if camera_ids is None else tuple(int(i) for i in camera_ids)
        s = self.scale
        delta = np.pi / 2 * s
        # State per camera: azimuth change, polar angle, roll change, zoom factor.
        self._step_std = np.array([0.025 * s, 0.025 * s, np.pi / 300 * s, 0.025 * s])
        self._max_vel = np.array([0.1 * s, 0.1 * s, np.pi / 50 * s, 0.1 * s])
        self._delta = delta
        self._physics: Any = None
        self._state: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"CameraDistraction(scale={self.scale}, dynamic={self.dynamic})"

    # ------------------------------------------------------------------ protocol

    def reset(self, physics: Any, rng: np.random.Generator) -> None:
        """Remember the original cameras (first time) and draw this episode's poses."""
        if physics is not self._physics:
            self._capture(physics)
        self._setup(physics)
        self._state = rng.uniform(self._lo, self._hi)
        self._vel = (
            rng.uniform(-self._max_vel, self._max_vel, self._state.shape)
            if self.dynamic
            else np.zeros_like(self._state)
        )
        self._apply(physics)

    def before_render(self, physics: Any, rng: np.random.Generator) -> None:
        """Dynamic: one bounded velocity random-walk step of every moved camera."""
        if not self.dynamic or self._state is None:
            return
        vel = self._vel + rng.normal(0.0, 1.0, self._vel.shape) * self._step_std
        vel = np.clip(vel, -self._max_vel, self._max_vel)
        state = np.clip(self._state + vel, self._lo, self._hi)
        self._vel, self._state = state - self._state, state
        self._apply(physics)

    def after_render(self, frame: np.ndarray, physics: Any, context: RenderContext) -> np.ndarray:
        """Nothing to composite: the camera moved before the render."""
        return frame

    def restore(self, physics: Any) -> None:
        """Write the original camera fields back."""
        if physics is not self._physics or self._state is None:
            return
        model = physics.model
        for name, value in self._original.items():
            getattr(model, name)[self._ids] = value
        mujoco.mj_camlight(model.ptr, physics.data.ptr)
        self._state = None

    # ------------------------------------------------------------------ internals

    def _capture(self, physics: Any) -> None:
        model = physics.model
        ids = range(model.ncam) if self.camera_ids is None else self.camera_ids
        for i in ids:
            if not 0 <= i < model.ncam:
                raise ValueError(f"camera id {i} out of range [0, {model.ncam})")
        self._ids = np.array(ids, dtype=int)
        self._original = {name: getattr(model, name)[self._ids].copy() for name in _FIELDS}
        self._physics = physics

    def _setup(self, physics: Any) -> None:
        """Per camera: the point it looks at, its spherical pose around it, roll and bounds.

        Computed from the saved original fields, so a reset without ``restore`` cannot drift."""
        model, data = physics.model, physics.data
        root = 1 if model.nbody > 1 else 0
        n = len(self._ids)
        self._pivot = np.zeros((n, 3))
        self._base = np.zeros((n, 4))  # radius, azimuth, roll, tan(fovy / 2)
        lo, hi = np.zeros((n, 4)), np.zeros((n, 4))
        s, delta = self.scale, self._delta
        for j, i in enumerate(self._ids):
            mode, body = int(model.cam_mode[i]), int(model.cam_bodyid[i])
            orig = {name: value[j] for name, value in self._original.items()}
            if mode in (_TRACK, _TRACKCOM):
                offset = orig["cam_pos0"] if mode == _TRACK else orig["cam_poscom0"]
                rot = orig["cam_mat0"].reshape(3, 3)
                target = np.zeros(3)  # the tracked body / subtree com is the frame origin
            else:  # fixed (and target modes, whose orientation MuJoCo overrides)
                offset = orig["cam_pos"]
                rot = np.zeros(9)
                mujoco.mju_quat2Mat(rot, orig["cam_quat"])
                rot = rot.reshape(3, 3)
                body_rot = data.xmat[body].reshape(3, 3)
                target = body_rot.T @ (data.subtree_com[root] - data.xpos[body])
            forward = -rot[:, 2]
            dist = max(float(np.dot(target - offset, forward)), 1e-3)
            pivot = offset + dist * forward
            back = rot[:, 2]  # unit vector from the pivot to the camera
            theta = float(np.arccos(np.clip(back[2], -1.0, 1.0)))
            if np.hypot(back[0], back[1]) > 1e-6:
                phi = float(np.arctan2(back[1], back[0]))
            else:  # looking straight down: the azimuth whose level x axis is the camera's
                phi = float(np.arctan2(-rot[0, 0], rot[1, 0]))
            m = _look(theta, phi).T @ rot
            roll = float(np.arctan2(m[1, 0], m[0, 0]))
            tan_half = float(np.tan(np.deg2rad(orig["cam_fovy"]) / 2))
            self._pivot[j] = pivot
            self._base[j] = (dist, phi, roll, tan_half)
            lo[j] = (-delta, max(theta - delta, 0.0), -delta, 1.0 - 0.5 * s)
            hi[j] = (delta, max(min(theta + delta, np.pi / 2), theta), delta, 1.0 + 1.5 * s)
        self._lo, self._hi = lo, hi

    def _apply(self, physics: Any) -> None:
        """Write the current poses into the model's camera fields and recompute the cameras."""
        assert self._state is not None
        model = physics.model
        quat = np.zeros(4)
        for j, i in enumerate(self._ids):
            dist, phi0, roll0, tan_half = self._base[j]
            dphi, theta, droll, zoom = self._state[j]
            look = _look(theta, phi0 + dphi)
            pos = self._pivot[j] + dist * look[:, 2]
            rot = look @ _roll(roll0 + droll)
            mode = int(model.cam_mode[i])
            if mode == _TRACK:
                model.cam_pos0[i], model.cam_mat0[i] = pos, rot.ravel()
            elif mode == _TRACKCOM:
                model.cam_poscom0[i], model.cam_mat0[i] = pos, rot.ravel()
            else:
                mujoco.mju_mat2Quat(quat, rot.ravel())
                model.cam_pos[i], model.cam_quat[i] = pos, quat
            model.cam_fovy[i] = np.rad2deg(2 * np.arctan(zoom * tan_half))
        mujoco.mj_camlight(model.ptr, physics.data.ptr)
