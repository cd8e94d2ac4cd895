"""The video-background distraction, driven through the Distraction protocol by hand on a real
dm_control physics: it changes exactly the background pixels (sky; floor too when hard), plays
or holds frames, and is seeded by the rng it is given."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sparse_rl.envs.distractions.background import BackgroundDistraction, floor_geom_ids
from sparse_rl.envs.distractions.base import Distraction, RenderContext
from sparse_rl.envs.video_sources import ProceduralVideos, VideoSource

SIZE = 64


class NumberedVideos(VideoSource):
    """Flat frames that encode (video, frame) in their colour, so tests can read both back."""

    def __init__(self, num_videos: int = 6, num_frames: int = 5) -> None:
        super().__init__()
        self._n, self.num_frames = num_videos, num_frames

    @property
    def num_videos(self) -> int:
        return self._n

    def video_name(self, index: int) -> str:
        return f"numbered/{index}"

    def _load(self, index: int, height: int, width: int) -> np.ndarray:
        clip = np.zeros((self.num_frames, height, width, 3), np.uint8)
        clip[..., 0] = 10 + 20 * index
        clip[..., 1] = (10 + 20 * np.arange(self.num_frames))[:, None, None]
        clip[..., 2] = 255
        return clip


def shown(frame: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    """(video, frame) index read back from the NumberedVideos colour of a replaced pixel."""
    r, g = frame[mask][0, :2].astype(int)
    return (r - 10) // 20, (g - 10) // 20


class Scene:
    """One rendered frame of a domain, its segmentation, and a way to run a distraction on it."""

    def __init__(self, domain: str, task: str) -> None:
        from dm_control import suite  # after sparse_rl's MUJOCO_GL=egl default

        env = suite.load(domain, task, task_kwargs={"random": 0})
        env.reset()
        self.physics = env.physics
        self.frame = self.physics.render(SIZE, SIZE, camera_id=0)
        self.frame.flags.writeable = False  # a distraction must not draw into the env's frame
        seg = self.physics.render(SIZE, SIZE, camera_id=0, segmentation=True)
        self.context = RenderContext(SIZE, SIZE, 0, seg)
        ids, types = seg[..., 0], seg[..., 1]
        model = self.physics.model
        self.sky = ids == -1
        floor = [i for i in range(model.ngeom) if model.id2name(i, "geom") in ("floor", "ground")]
        self.floor = (types == 5) & np.isin(ids, floor)  # 5 = mjOBJ_GEOM
        self.agent = (types == 5) & (ids >= 0) & (model.geom_bodyid[np.maximum(ids, 0)] > 0)
        assert self.sky.any() and self.floor.any() and self.agent.any()

    def step(self, d: Any) -> np.ndarray:
        """One rendered frame, as the env does it: before_render, render, after_render."""
        d.before_render(self.physics, np.random.default_rng(123))
        out = d.after_render(self.frame, self.physics, self.context)
        assert out.shape == self.frame.shape and out.dtype == np.uint8
        return out

    def episode(self, d: Any, seed: int, frames: int = 1) -> list[np.ndarray]:
        d.restore(self.physics)
        d.reset(self.physics, np.random.default_rng(seed))
        return [self.step(d) for _ in range(frames)]


@pytest.fixture(scope="module")
def walker() -> Scene:
    return Scene("walker", "walk")


@pytest.fixture(scope="module")
def cartpole() -> Scene:
    return Scene("cartpole", "swingup")


def test_implements_the_protocol() -> None:
    d = BackgroundDistraction(ProceduralVideos(num_videos=2, num_frames=2))
    assert isinstance(d, Distraction) and d.needs_segmentation


@pytest.mark.parametrize("scene_name", ["walker", "cartpole"])
@pytest.mark.parametrize("hard", [False, True])
def test_only_background_pixels_change(scene_name: str, hard: bool, request: Any) -> None:
    """Easy replaces exactly the sky; hard the sky and the floor; the agent is never touched."""
    scene: Scene = request.getfixturevalue(scene_name)
    d = BackgroundDistraction(NumberedVideos(), hard=hard)
    out = scene.episode(d, seed=0)[0]
    replaced = scene.sky | scene.floor if hard else scene.sky
    video = d.current_frame(SIZE, SIZE)
    np.testing.assert_array_equal(out[replaced], video[replaced])
    np.testing.assert_array_equal(out[~replaced], scene.frame[~replaced])
    np.testing.assert_array_equal(out[scene.agent], scene.frame[scene.agent])
    assert (out[scene.floor] != scene.frame[scene.floor]).any() == hard


def test_hard_keeps_world_props_that_are_not_planes(cartpole: Scene) -> None:
    """Cartpole's rails belong to the world body but are not planes: they stay visible."""
    physics, size = cartpole.physics, 128  # the thin rails need more than 64 pixels
    model = physics.model
    floors = floor_geom_ids(model)
    assert [model.id2name(int(i), "geom") for i in floors] == ["floor"]
    frame = physics.render(size, size, camera_id=0)
    seg = physics.render(size, size, camera_id=0, segmentation=True)
    rails = [i for i in range(model.ngeom) if model.geom_bodyid[i] == 0 and i not in floors]
    rail_pixels = (seg[..., 1] == 5) & np.isin(seg[..., 0], rails)
    assert rail_pixels.sum() > 10
    d = BackgroundDistraction(NumberedVideos(), hard=True)
    d.reset(physics, np.random.default_rng(0))
    d.before_render(physics, np.random.default_rng(0))
    out = d.after_render(frame, physics, RenderContext(size, size, 0, seg))
    np.testing.assert_array_equal(out[rail_pixels], frame[rail_pixels])
    assert (out[seg[..., 0] == -1] != frame[seg[..., 0] == -1]).any()


def test_procedural_background_is_visible(walker: Scene) -> None:
    """With the built-in clips the sky really changes (not a silent clean background)."""
    out = walker.episode(BackgroundDistraction(None, hard=True), seed=0)[0].astype(int)
    diff = np.abs(out - walker.frame).sum(-1)
    assert (diff[walker.sky | walker.floor] > 30).mean() > 0.5


def test_static_holds_one_frame_dynamic_plays(walker: Scene) -> None:
    static = walker.episode(BackgroundDistraction(NumberedVideos()), seed=1, frames=6)
    assert all(np.array_equal(f, static[0]) for f in static)
    dynamic = walker.episode(
        BackgroundDistraction(NumberedVideos(), dynamic=True), seed=1, frames=6
    )
    shown_frames = [shown(f, walker.sky) for f in dynamic]
    assert len({video for video, _ in shown_frames}) == 1, "one video per episode"
    positions = [frame for _, frame in shown_frames]
    assert all(abs(a - b) == 1 for a, b in itertools.pairwise(positions))
    # the same seed starts static and dynamic episodes at the same frame
    assert shown(dynamic[0], walker.sky) == shown(static[0], walker.sky)


@pytest.mark.parametrize(
    ("playback", "expected"),
    [("loop", [3, 4, 0, 1, 2, 3, 4, 0]), ("pingpong", [3, 4, 3, 2, 1, 0, 1, 2])],
)
def test_playback_at_the_ends(walker: Scene, playback: str, expected: list[int]) -> None:
    d = BackgroundDistraction(NumberedVideos(num_frames=5), dynamic=True, playback=playback)  # type: ignore[arg-type]
    d.reset(walker.physics, np.random.default_rng(0))
    d._start = 0.7  # start at frame 3 of 5
    positions = [shown(walker.step(d), walker.sky)[1] for _ in expected]
    assert positions == expected


def test_seeding(walker: Scene) -> None:
    """Same seed → identical frames; different seeds → different videos and start frames."""
    for dynamic in (False, True):
        d = BackgroundDistraction(ProceduralVideos(num_videos=8, num_frames=10), dynamic=dynamic)
        first = walker.episode(d, seed=7, frames=3)
        walker.episode(d, seed=8, frames=2)  # an episode in between changes nothing
        again = walker.episode(d, seed=7, frames=3)
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    d = BackgroundDistraction(NumberedVideos(num_videos=8, num_frames=10))
    picks = {shown(walker.episode(d, seed=s)[0], walker.sky) for s in range(12)}
    assert len({video for video, _ in picks}) >= 4 and len({f for _, f in picks}) >= 4


def test_num_videos_limits_the_choice(walker: Scene) -> None:
    """Only the first N videos of the source are used, and all of them are."""
    d = BackgroundDistraction(NumberedVideos(num_videos=6), num_videos=4)
    videos = {shown(walker.episode(d, seed=s)[0], walker.sky)[0] for s in range(40)}
    assert videos == {0, 1, 2, 3}
    one = BackgroundDistraction(NumberedVideos(num_videos=6), num_videos=1)
    assert {shown(walker.episode(one, seed=s)[0], walker.sky)[0] for s in range(5)} == {0}


def test_reset_draws_the_same_from_rng_whatever_the_mode(walker: Scene) -> None:
    """Two draws at reset, none per frame: distractions after this one see the same stream."""
    states = []
    for kwargs in ({}, {"dynamic": True}, {"hard": True, "num_videos": 2}):
        d = BackgroundDistraction(NumberedVideos(), **kwargs)  # type: ignore[arg-type]
        rng = np.random.default_rng(5)
        d.reset(walker.physics, rng)
        for _ in range(3):
            d.before_render(walker.physics, rng)
        states.append(rng.random())
    assert len(set(states)) == 1


def test_alpha_blends(walker: Scene) -> None:
    half = walker.episode(BackgroundDistraction(NumberedVideos(), alpha=0.5), seed=0)[0]
    full = walker.episode(BackgroundDistraction(NumberedVideos()), seed=0)[0]
    expected = (walker.frame.astype(float) + full) / 2
    np.testing.assert_allclose(half[walker.sky], expected[walker.sky], atol=1)
    np.testing.assert_array_equal(half[~walker.sky], walker.frame[~walker.sky])
    none = walker.episode(BackgroundDistraction(NumberedVideos(), alpha=0.0), seed=0)[0]
    np.testing.assert_array_equal(none, walker.frame)


def test_user_directory_end_to_end(walker: Scene, tmp_path: Path) -> None:
    """A DAVIS-layout directory as the source, passed as a path."""
    import av

    for k in range(3):
        rgb = np.full((24, 32, 3), (200, 40 * k, 30), np.uint8)
        folder = tmp_path / "JPEGImages" / "480p" / "seq"
        folder.mkdir(parents=True, exist_ok=True)
        with av.open(str(folder / f"{k:05d}.jpg"), "w", format="image2") as container:
            stream = container.add_stream("mjpeg", rate=1)
            stream.height, stream.width, stream.pix_fmt = 24, 32, "yuvj444p"
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            container.mux(stream.encode())
    d = BackgroundDistraction(tmp_path, dynamic=True)
    frames = walker.episode(d, seed=0, frames=3)
    for f in frames:
        np.testing.assert_allclose(f[walker.sky][:, 0].mean(), 200, atol=10)
    greens = [round(f[walker.sky][:, 1].mean() / 40) for f in frames]  # the frame number
    assert all(abs(a - b) == 1 for a, b in itertools.pairwise(greens)), greens


def test_bad_arguments() -> None:
    source = NumberedVideos(num_videos=6)
    with pytest.raises(ValueError, match=r"num_videos must be an int in \[1, 6\].*got 7"):
        BackgroundDistraction(source, num_videos=7)
    with pytest.raises(ValueError, match=r"num_videos must be an int in \[1, 6\].*got 0"):
        BackgroundDistraction(source, num_videos=0)
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got 1.5"):
        BackgroundDistraction(source, alpha=1.5)
    with pytest.raises(ValueError, match=r"playback must be one of \['pingpong', 'loop'\]"):
        BackgroundDistraction(source, playback="bounce")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hard must be a bool"):
        BackgroundDistraction(source, hard="yes")  # type: ignore[arg-type]


def test_missing_video_directory_fails_at_construction(tmp_path: Path) -> None:
    """Never a silent fallback to the clean background."""
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BackgroundDistraction(tmp_path / "DAVIS", hard=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos found"):
        BackgroundDistraction(tmp_path / "empty")


def test_misuse_is_loud(walker: Scene) -> None:
    d = BackgroundDistraction(NumberedVideos())
    with pytest.raises(RuntimeError, match="before reset"):
        d.after_render(walker.frame, walker.physics, walker.context)
    d.reset(walker.physics, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="needs the segmentation image"):
        d.after_render(walker.frame, walker.physics, RenderContext(SIZE, SIZE, 0, None))
