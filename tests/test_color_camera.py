"""Color and camera distractions: seeded draws, bounds, restore, static vs dynamic, visibility."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sparse_rl.envs.distractions.base import Distraction, RenderContext
from sparse_rl.envs.distractions.camera import CameraDistraction
from sparse_rl.envs.distractions.color import ColorDistraction
from sparse_rl.envs.dmc import DMCEnv

SIZE = 64
CAMERA_FIELDS = ("cam_pos", "cam_quat", "cam_pos0", "cam_poscom0", "cam_mat0", "cam_fovy")


def _env(*distractions: Any, domain: str = "walker", task: str = "walk", **kw: Any) -> DMCEnv:
    return DMCEnv(domain, task, size=SIZE, distractions=distractions, **kw)


def _color_fields(env: DMCEnv) -> dict[str, np.ndarray]:
    model = env.physics.model
    return {
        "mat_rgba": model.mat_rgba.copy(),
        "geom_rgba": model.geom_rgba.copy(),
        "tex_data": model.tex_data.copy(),
    }


def _camera_fields(env: DMCEnv) -> dict[str, np.ndarray]:
    return {name: getattr(env.physics.model, name).copy() for name in CAMERA_FIELDS}


def _assert_fields_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_protocol_and_bad_scale() -> None:
    assert isinstance(ColorDistraction(0.1), Distraction)
    assert isinstance(CameraDistraction(0.1), Distraction)
    assert ColorDistraction(0.1).needs_segmentation  # the sky is shifted on background pixels
    assert not ColorDistraction(0.1, sky=False).needs_segmentation
    assert not CameraDistraction(0.1).needs_segmentation
    for make in (ColorDistraction, CameraDistraction):
        for scale in (-0.1, 1.5, float("nan")):
            with pytest.raises(ValueError, match="scale must be in"):
                make(scale)
    with pytest.raises(ValueError, match="step_std"):
        ColorDistraction(0.1, step_std=-1.0)


def test_bad_camera_id_raises_at_reset() -> None:
    env = _env(CameraDistraction(0.1, camera_ids=[9]))
    with pytest.raises(ValueError, match="camera id 9 out of range"):
        env.reset(seed=0)


def test_color_needs_the_segmentation_image() -> None:
    env = _env(ColorDistraction(0.1))
    env.reset(seed=0)
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    with pytest.raises(RuntimeError, match="segmentation"):
        env.distractions[0].after_render(frame, env.physics, RenderContext(SIZE, SIZE, 0))


@pytest.mark.parametrize("make", [ColorDistraction, CameraDistraction])
def test_scale_zero_is_the_clean_env(make: type) -> None:
    clean, distracted = _env(), _env(make(0.0, dynamic=True))
    np.testing.assert_array_equal(clean.reset(seed=2)[0], distracted.reset(seed=2)[0])
    action = np.full(6, 0.3, np.float32)
    np.testing.assert_array_equal(clean.step(action)[0], distracted.step(action)[0])


@pytest.mark.parametrize(
    ("make", "fields"),
    [(ColorDistraction, _color_fields), (CameraDistraction, _camera_fields)],
)
def test_seeded_draws_and_restore(make: type, fields: Any) -> None:
    env = _env(make(0.3))
    original = fields(env)
    env.reset(seed=0)
    draw0 = fields(env)
    env.reset(seed=1)
    draw1 = fields(env)
    env.reset(seed=0)  # restore runs first, so draws never accumulate
    _assert_fields_equal(draw0, fields(env))
    changed = [name for name in original if not np.array_equal(original[name], draw0[name])]
    assert changed, "the distraction changed no model field"
    assert any(not np.array_equal(draw0[n], draw1[n]) for n in changed), "seeds gave one draw"
    env.distractions[0].restore(env.physics)
    _assert_fields_equal(original, fields(env))


@pytest.mark.parametrize(
    ("make", "fields"),
    [(ColorDistraction, _color_fields), (CameraDistraction, _camera_fields)],
)
def test_draws_are_around_the_originals_even_without_restore(make: type, fields: Any) -> None:
    env = _env()
    env.reset(seed=0)
    distraction = make(0.3)
    distraction.reset(env.physics, np.random.default_rng(5))
    first = fields(env)
    distraction.reset(env.physics, np.random.default_rng(6))
    distraction.reset(env.physics, np.random.default_rng(5))  # no restore in between
    _assert_fields_equal(first, fields(env))


@pytest.mark.parametrize("make", [ColorDistraction, CameraDistraction])
def test_restore_gives_back_the_clean_frame(make: type) -> None:
    clean, distracted = _env(), _env(make(0.3))
    clean_obs, _ = clean.reset(seed=4)
    distracted_obs, _ = distracted.reset(seed=4)
    assert not np.array_equal(clean_obs, distracted_obs)
    distracted.distractions[0].restore(distracted.physics)
    frame = np.array(distracted._camera_for_render().render())  # re-uploaded textures included
    np.testing.assert_array_equal(frame, np.array(clean._camera_for_render().render()))


@pytest.mark.parametrize("dynamic", [False, True])
def test_color_static_or_walk_within_bounds(dynamic: bool) -> None:
    scale = 0.2
    env = _env(ColorDistraction(scale, dynamic=dynamic))
    original = env.physics.model.mat_rgba[:, :3].copy()
    env.reset(seed=0)
    seen = [env.physics.model.mat_rgba[:, :3].copy()]
    for _ in range(4):
        env.step(np.zeros(6, np.float32))
        seen.append(env.physics.model.mat_rgba[:, :3].copy())
    assert np.all(np.abs(np.array(seen) - original) <= scale + 1e-6)
    moved = any(not np.array_equal(seen[0], s) for s in seen[1:])
    assert moved == dynamic


def test_color_parts_change_only_their_pixels() -> None:
    clean = _env(return_agent_mask=True)
    sky = _env(ColorDistraction(0.3, floor=False, bodies=False), return_agent_mask=True)
    a, info = clean.reset(seed=0)
    b, _ = sky.reset(seed=0)
    differs = np.any(a[-3:] != b[-3:], axis=0)
    assert differs.any() and not (differs & info["agent_mask"]).any()  # the agent is untouched

    env = _env(ColorDistraction(0.3, sky=False, bodies=False))
    textures, mats = env.physics.model.tex_data.copy(), env.physics.model.mat_rgba.copy()
    env.reset(seed=0)
    assert not np.array_equal(textures, env.physics.model.tex_data)  # floor recolored
    np.testing.assert_array_equal(mats, env.physics.model.mat_rgba)

    env = _env(ColorDistraction(0.3, sky=False, floor=False))
    env.reset(seed=0)
    np.testing.assert_array_equal(textures, env.physics.model.tex_data)
    assert not np.array_equal(mats, env.physics.model.mat_rgba)  # bodies recolored


@pytest.mark.parametrize("dynamic", [False, True])
def test_camera_static_or_walk_within_bounds(dynamic: bool) -> None:
    scale = 0.3
    env = _env(CameraDistraction(scale, dynamic=dynamic))
    fovy0 = float(env.physics.model.cam_fovy[0])
    tan0 = np.tan(np.deg2rad(fovy0) / 2)
    env.reset(seed=0)
    seen = [_camera_fields(env)]
    for _ in range(4):
        env.step(np.zeros(6, np.float32))
        seen.append(_camera_fields(env))
    zoom = np.tan(np.deg2rad([s["cam_fovy"][0] for s in seen]) / 2) / tan0
    assert np.all((zoom >= 1 - 0.5 * scale - 1e-9) & (zoom <= 1 + 1.5 * scale + 1e-9))
    moved = any(not np.array_equal(seen[0]["cam_mat0"], s["cam_mat0"]) for s in seen[1:])
    assert moved == dynamic
    # The walker's side camera tracks the com: it stays above the com and looks down at it.
    offset = env.physics.model.cam_poscom0[0]
    forward = -env.physics.model.cam_mat0[0].reshape(3, 3)[:, 2]
    assert offset[2] > 0 and forward[2] < 0


@pytest.mark.parametrize(
    ("domain", "task"),
    [("walker", "walk"), pytest.param("cartpole", "swingup", marks=pytest.mark.slow)],
)
def test_agent_stays_visible_at_the_largest_preset_scale(domain: str, task: str) -> None:
    for seed in range(4):
        env = _env(
            ColorDistraction(0.3, dynamic=True),
            CameraDistraction(0.3, dynamic=True),
            domain=domain,
            task=task,
            return_agent_mask=True,
        )
        _, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        for _ in range(5):
            _, _, _, _, info = env.step(env.action_space.sample())
        mask = info["agent_mask"]
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert mask.mean() > 0.005 and border.mean() < 0.25, (domain, seed)
        env.close()
