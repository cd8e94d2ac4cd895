"""DeepMind Control Suite tasks as seeded gymnasium envs, with pixels, frame stack and distractions.

The env wraps ``dm_control.suite.load`` directly rather than Shimmy's
``dm_control/<domain>-<task>-v0``, because what visual RL needs sits where Shimmy gets in the way:

- Shimmy keeps dm_control's own time limit, counted in control steps, so with an action repeat it
  ends episodes at the wrong agent step; here the suite is loaded with no time limit and the
  episode length is counted in agent steps (truncation, never termination).
- Shimmy's ``np_random`` is the task's legacy ``RandomState``, not the ``numpy.random.Generator``
  gymnasium promises; here ``reset(seed=...)`` seeds both the gymnasium generator (which drives
  the distractions) and, separately, the dm_control task's own ``RandomState`` (initial states).
- Shimmy renders through ``physics.render``, which builds a new ``Camera`` (and scene) every call
  and has no hook around the render; here one camera is kept (about 25% faster at 84x84) and the
  distraction hooks and the segmentation pass wrap each frame.
- Its observations are a ``Dict``; here they are one flat float32 vector, or stacked pixels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from sparse_rl.validation import check_int

from .distractions.base import Distraction, RenderContext

#: Action repeat by domain, as in DMControl-GB / DrQ / CURL (4 for every other domain).
ACTION_REPEAT = {"cartpole": 8, "finger": 2}
#: Default camera by domain, as in DMControl-GB (0 for every other domain).
CAMERA_ID = {"quadruped": 2}
#: Control steps of a full dm_control episode (every suite task but lqr uses 1000).
SUITE_EPISODE_STEPS = 1000

ObsKind = Literal["state", "pixels"]
# A plain int: comparing an array with the pybind enum itself goes element by element in Python.
_OBJ_GEOM = int(mujoco.mjtObj.mjOBJ_GEOM)


def _suite() -> Any:
    """The dm_control suite, imported on first use so importing this module stays cheap."""
    from dm_control import suite

    return suite


def suite_tasks() -> dict[str, tuple[str, ...]]:
    """Every ``domain -> tasks`` that ``dm_control.suite.ALL_TASKS`` knows."""
    tasks: dict[str, list[str]] = {}
    for domain, task in _suite().ALL_TASKS:
        tasks.setdefault(domain, []).append(task)
    return {d: tuple(t) for d, t in sorted(tasks.items())}


def benchmark_tasks() -> tuple[tuple[str, str], ...]:
    """The ``(domain, task)`` pairs of ``dm_control.suite.BENCHMARKING``."""
    return tuple(_suite().BENCHMARKING)


def check_task(domain: str, task: str) -> None:
    """Raise a ValueError naming the valid choices when ``domain`` / ``task`` is unknown."""
    tasks = suite_tasks()
    if domain not in tasks:
        raise ValueError(f"unknown DMC domain {domain!r}; valid domains: {', '.join(tasks)}")
    if task not in tasks[domain]:
        raise ValueError(
            f"unknown task {task!r} for DMC domain {domain!r}; "
            f"valid tasks: {', '.join(tasks[domain])}"
        )


def default_action_repeat(domain: str) -> int:
    """The usual action repeat: 8 for cartpole, 2 for finger, 4 otherwise."""
    return ACTION_REPEAT.get(domain, 4)


def default_camera_id(domain: str) -> int:
    """The DMControl-GB camera: 2 for quadruped, 0 otherwise."""
    return CAMERA_ID.get(domain, 0)


class DMCEnv(gym.Env[np.ndarray, np.ndarray]):
    """One dm_control suite task as a gymnasium env (state or stacked pixels, distractions).

    :param domain: dm_control domain, e.g. ``"walker"``.
    :param task: task of that domain, e.g. ``"walk"``.
    :param obs: ``"state"`` (flat float32 vector) or ``"pixels"`` (``(3 * frame_stack, H, W)``
        uint8, channel first, oldest frame first).
    :param size: frame size, an int for square frames or ``(height, width)``.
    :param camera_id: camera index; default 2 for quadruped, 0 otherwise (DMControl-GB).
    :param frame_stack: frames stacked in a pixel observation.
    :param action_repeat: physics control steps per agent step (rewards summed); default 8 for
        cartpole, 2 for finger, 4 otherwise.
    :param episode_length: agent steps per episode (then ``truncated``); default
        ``1000 // action_repeat``, i.e. the suite's 1000 control steps.
    :param distractions: :class:`~.distractions.base.Distraction` objects applied in order around
        every rendered frame (pixels only).
    :param return_agent_mask: put the ground-truth mask of the agent's own bodies for the latest
        frame in ``info["agent_mask"]`` (bool ``(H, W)``, pixels only). The agent is every geom
        on a non-world body (robot and the objects it moves); floor, walls and sky are background.
    :param render_mode: ``None`` or ``"rgb_array"`` (``render()`` gives the latest frame).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012

    def __init__(
        self,
        domain: str,
        task: str,
        *,
        obs: ObsKind = "pixels",
        size: int | tuple[int, int] = 84,
        camera_id: int | None = None,
        frame_stack: int = 3,
        action_repeat: int | None = None,
        episode_length: int | None = None,
        distractions: Sequence[Distraction] = (),
        return_agent_mask: bool = False,
        render_mode: str | None = None,
    ) -> None:
        check_task(domain, task)
        if obs not in ("state", "pixels"):
            raise ValueError(f"obs must be 'state' or 'pixels', got {obs!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.domain, self.task, self.obs_kind = domain, task, obs
        self.render_mode = render_mode
        self.frame_stack = check_int("frame_stack", frame_stack)
        self.action_repeat = check_int(
            "action_repeat",
            default_action_repeat(domain) if action_repeat is None else action_repeat,
        )
        self.episode_length = check_int(
            "episode_length",
            max(SUITE_EPISODE_STEPS // self.action_repeat, 1)
            if episode_length is None
            else episode_length,
        )
        self.distractions: tuple[Distraction, ...] = tuple(distractions)
        for d in self.distractions:
            if not isinstance(d, Distraction):
                raise TypeError(f"{d!r} does not implement the Distraction protocol")
        if obs == "state" and (self.distractions or return_agent_mask):
            raise ValueError("distractions and return_agent_mask need obs='pixels'")
        self.return_agent_mask = bool(return_agent_mask)

        # No dm_control time limit: episodes are counted here, in agent steps.
        self._env = _suite().load(domain, task, task_kwargs={"time_limit": float("inf")})
        physics = self._env.physics
        model = physics.model

        self.camera_id = default_camera_id(domain) if camera_id is None else camera_id
        if (
            isinstance(self.camera_id, bool)
            or not isinstance(self.camera_id, (int, np.integer))
            or not 0 <= self.camera_id < model.ncam
        ):
            raise ValueError(
                f"camera_id must be an integer in [0, {model.ncam}) for {domain}, "
                f"got {self.camera_id!r}"
            )
        self.camera_id = int(self.camera_id)
        if isinstance(size, (int, np.integer)):
            size = (size, size)
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}")
        height, width = size
        max_w, max_h = int(model.vis.global_.offwidth), int(model.vis.global_.offheight)
        for name, v, top in (("height", height, max_h), ("width", width, max_w)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= top:
                raise ValueError(f"frame {name} must be an integer in [1, {top}], got {v!r}")
        self.height, self.width = int(height), int(width)

        self._need_segmentation = self.return_agent_mask or any(
            d.needs_segmentation for d in self.distractions
        )
        # Agent geoms: on a non-world body and not invisible (alpha-0 helper geoms, no material).
        invisible = (model.geom_matid < 0) & (model.geom_rgba[:, 3] == 0)
        self._agent_geom = np.append((model.geom_bodyid != 0) & ~invisible, False)

        spec = self._env.action_spec()
        self.action_space = spaces.Box(
            spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), dtype=np.float32
        )
        if obs == "state":
            dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            self.observation_space = spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        else:
            shape = (3 * self.frame_stack, self.height, self.width)
            self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.metadata = {
            **self.metadata,
            "render_fps": round(1.0 / (self._env.control_timestep() * self.action_repeat)),
        }

        self._camera: Any = None
        self._frames: deque[np.ndarray] = deque(maxlen=self.frame_stack)
        self._last_frame: np.ndarray | None = None
        self._last_mask: np.ndarray | None = None
        self._steps = 0
        self._closed = False

    # ------------------------------------------------------------------ gymnasium API

    @property
    def physics(self) -> Any:
        """The dm_control ``Physics`` (model fields, data, contexts)."""
        return self._env.physics

    @property
    def dm_env(self) -> Any:
        """The wrapped ``dm_control.rl.control.Environment``."""
        return self._env

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; a ``seed`` makes initial state and distractions reproducible."""
        super().reset(seed=seed)
        if seed is not None:
            # The task draws initial states from its own legacy RandomState: reseed it too.
            self._env.task._random = np.random.RandomState(
                np.random.MT19937(np.random.SeedSequence(seed))
            )
        physics = self._env.physics
        for d in self.distractions:  # undo model-field changes so nothing accumulates
            d.restore(physics)
        time_step = self._env.reset()
        for d in self.distractions:
            d.reset(physics, self.np_random)
        self._steps = 0
        if self.obs_kind == "pixels":
            frame = self._render_frame()
            self._frames.clear()
            self._frames.extend([frame] * self.frame_stack)
        return self._observation(time_step.observation), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Repeat ``action`` for ``action_repeat`` control steps, summing rewards."""
        action = np.asarray(action, dtype=np.float64)
        reward, terminated = 0.0, False
        for _ in range(self.action_repeat):
            time_step = self._env.step(action)
            reward += float(time_step.reward or 0.0)
            if time_step.last():  # only a task's own termination: there is no time limit
                terminated = bool(time_step.discount == 0.0)
                break
        self._steps += 1
        truncated = not terminated and (time_step.last() or self._steps >= self.episode_length)
        if self.obs_kind == "pixels":
            self._frames.append(self._render_frame())
        return self._observation(time_step.observation), reward, terminated, truncated, self._info()

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The latest ``(H, W, 3)`` uint8 frame as the agent sees it (``"rgb_array"`` mode)."""
        if self.render_mode is None:
            return None
        if self.obs_kind == "pixels" and self._last_frame is not None:
            return self._last_frame.copy()
        return self._camera_for_render().render().copy()

    def close(self) -> None:
        """Free the renderer and the physics (safe to call twice; the env is unusable after)."""
        if self._closed:
            return
        self._closed = True
        if self._camera is not None:
            self._camera._scene.free()
            self._camera = None
        self._env.physics.free()  # releases the GL context now, not at garbage collection
        self._env.close()

    # ------------------------------------------------------------------ internals

    def _camera_for_render(self) -> Any:
        if self._camera is None:
            from dm_control.mujoco.engine import Camera

            self._camera = Camera(self._env.physics, self.height, self.width, self.camera_id)
        return self._camera

    def _render_frame(self) -> np.ndarray:
        """Render one distracted frame, channel first; keep the agent mask if asked."""
        physics = self._env.physics
        camera = self._camera_for_render()
        for d in self.distractions:
            d.before_render(physics, self.np_random)
        frame = np.array(camera.render())  # copy: the camera reuses its buffer
        seg = camera.render(segmentation=True) if self._need_segmentation else None
        if self.distractions:
            context = RenderContext(self.height, self.width, self.camera_id, seg)
            for d in self.distractions:
                frame = d.after_render(frame, physics, context)
        if self.return_agent_mask:
            assert seg is not None
            is_geom = seg[..., 1] == _OBJ_GEOM
            self._last_mask = is_geom & self._agent_geom[np.where(is_geom, seg[..., 0], -1)]
        self._last_frame = frame
        return np.ascontiguousarray(frame.transpose(2, 0, 1))

    def _observation(self, observation: dict[str, Any]) -> np.ndarray:
        if self.obs_kind == "pixels":
            return np.concatenate(self._frames, axis=0)
        return np.concatenate(
            [np.asarray(v, dtype=np.float32).ravel() for v in observation.values()]
        )

    def _info(self) -> dict[str, Any]:
        if self.return_agent_mask and self._last_mask is not None:
            return {"agent_mask": self._last_mask.copy()}
        return {}
