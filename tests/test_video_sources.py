"""Video sources: procedural clips are deterministic and distinct; user directories load (mp4,
DAVIS and plain image-sequence layouts, written here) and bad input fails at construction."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import write_image
from sparse_rl.envs.video_sources import (
    FAMILIES,
    DirectoryVideos,
    ProceduralVideos,
    VideoSource,
    as_video_source,
)

# -- writing tiny test media with PyAV ------------------------------------------------------------


def write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4") -> Path:
    """Encode ``(T, H, W, 3)`` uint8 frames (even H, W) into a container file."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def solid(colors: list[tuple[int, int, int]], height: int = 16, width: int = 16) -> np.ndarray:
    """One flat-coloured frame per colour: survives lossy codecs, so frame order is checkable."""
    return np.broadcast_to(
        np.array(colors, np.uint8)[:, None, None], (len(colors), height, width, 3)
    ).copy()


#: Frame colours far apart in every channel pair, so a lossy codec cannot swap them.
COLORS = [(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (30, 230, 230)]


def assert_colors(clip: np.ndarray, colors: list[tuple[int, int, int]]) -> None:
    """Each frame of ``clip`` is (close to) flat in the given colour, in order."""
    assert len(clip) == len(colors)
    means = clip.reshape(len(clip), -1, 3).mean(axis=1)
    np.testing.assert_allclose(means, np.array(colors, float), atol=15)


# -- procedural clips ----------------------------------------------------------------------------


def clip(family: str, seed: int, index: int = 0, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    source = ProceduralVideos(num_videos=index + 1, num_frames=8, seed=seed, families=(family,))
    return source.frames(index, *size)


@pytest.mark.parametrize("family", FAMILIES)
def test_procedural_family_deterministic_distinct_and_moving(family: str) -> None:
    """Same seed → identical clip (from a fresh source); another seed → a different clip; the
    clip moves and is colourful."""
    a = clip(family, seed=3)
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, clip(family, seed=3))
    assert np.abs(a.astype(int) - clip(family, seed=4)).mean() > 10
    assert np.abs(np.diff(a.astype(int), axis=0)).mean() > 1, "frames must change over time"
    assert a.std() > 20, "a distraction must not be a flat colour"
    assert np.ptp(a.astype(int), axis=-1).mean() > 30, "colourful, not grey"


def test_procedural_families_differ_from_each_other() -> None:
    """Every pair of families gives clearly different clips for the same seed."""
    clips = {family: clip(family, seed=0).astype(int) for family in FAMILIES}
    assert len(FAMILIES) >= 4
    for a, b in itertools.combinations(FAMILIES, 2):
        assert np.abs(clips[a] - clips[b]).mean() > 10, (a, b)


def test_procedural_videos_cycle_families_and_are_independent() -> None:
    """Video i's family is families[i % n] and its pixels do not depend on other videos, the
    number of videos or the order clips were generated in."""
    source = ProceduralVideos(num_videos=7, num_frames=4, seed=1)
    assert [source.family(i) for i in range(7)] == [FAMILIES[i % len(FAMILIES)] for i in range(7)]
    late = source.frames(6, 16, 16)
    fresh = ProceduralVideos(num_videos=10, num_frames=4, seed=1).frames(6, 16, 16)
    np.testing.assert_array_equal(late, fresh)
    assert "procedural" in source.video_name(6) and source.family(6) in source.video_name(6)


def test_procedural_size_cache_and_read_only() -> None:
    """Any requested size; the same clip is served from the cache, and cannot be modified."""
    source = ProceduralVideos(num_videos=2, num_frames=3, cache_size=2)
    a = source.frames(0, 20, 36)
    assert a.shape == (3, 20, 36, 3)
    assert source.frames(0, 20, 36) is a
    with pytest.raises(ValueError, match="read-only"):
        a[0, 0, 0, 0] = 1
    source.frames(1, 20, 36)
    source.frames(1, 8, 8)  # evicts the least recently used: (0, 20, 36)
    assert source.frames(0, 20, 36) is not a
    np.testing.assert_array_equal(source.frames(0, 20, 36), a)


def test_procedural_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"unknown procedural families \['clouds'\].*'noise'"):
        ProceduralVideos(families=("noise", "clouds"))
    with pytest.raises(ValueError, match="num_videos must be an integer >= 1"):
        ProceduralVideos(num_videos=0)
    with pytest.raises(ValueError, match="num_frames must be an integer >= 1"):
        ProceduralVideos(num_frames=2.5)  # type: ignore[arg-type]
    source = ProceduralVideos(num_videos=3)
    with pytest.raises(IndexError, match=r"video index 3 out of range \[0, 3\)"):
        source.frames(3, 8, 8)
    with pytest.raises(ValueError, match="height must be an integer >= 1"):
        source.frames(0, 0, 8)


# -- the user's directory ------------------------------------------------------------------------


def test_directory_of_mp4s(tmp_path: Path) -> None:
    """Video files are found (sorted by name), decoded in order and scaled to the asked size."""
    write_video(tmp_path / "b.mp4", solid(COLORS[:3]))
    write_video(tmp_path / "a.MP4", solid(COLORS[2:], 24, 32))
    (tmp_path / "notes.txt").write_text("not a video")
    source = DirectoryVideos(tmp_path)
    assert source.num_videos == 2 and len(source) == 2
    assert [source.video_name(i) for i in range(2)] == ["a.MP4", "b.mp4"]
    assert_colors(source.frames(0, 8, 12), COLORS[2:])
    assert_colors(source.frames(1, 8, 12), COLORS[:3])
    assert source.frames(1, 8, 12).shape == (3, 8, 12, 3)
    assert DirectoryVideos(tmp_path, max_frames=2).frames(0, 8, 8).shape[0] == 2


def test_directory_davis_layout(tmp_path: Path) -> None:
    """DAVIS: JPEGImages/480p/<video>/*.jpg in natural order; Annotations are not videos."""
    root = tmp_path / "DAVIS"
    for video, colors in (("car", COLORS[:2]), ("bear", COLORS[1:])):
        for k, color in enumerate(colors):
            # 00000.jpg, ... but also natural order: 2.jpg before 10.jpg
            write_image(root / "JPEGImages/480p" / video / f"{k * 8 + 2}.jpg", solid([color])[0])
    write_image(root / "Annotations/480p/bear/00000.png", np.zeros((16, 16, 3), np.uint8))
    source = DirectoryVideos(root)
    assert [source.video_name(i) for i in range(source.num_videos)] == ["bear", "car"]
    assert_colors(source.frames(0, 16, 16), COLORS[1:])
    assert_colors(source.frames(1, 10, 10), COLORS[:2])
    # pointing at JPEGImages/480p directly is the plain layout, with the same videos
    plain = DirectoryVideos(root / "JPEGImages" / "480p")
    np.testing.assert_array_equal(plain.frames(1, 10, 10), source.frames(1, 10, 10))


def test_directory_plain_layout_mixed_with_files(tmp_path: Path) -> None:
    """Per-video sub-folders of png/jpg images next to video files; hidden files are skipped."""
    write_video(tmp_path / "clip.mp4", solid(COLORS[:2]))
    for k, color in enumerate(COLORS[3:]):
        write_image(tmp_path / "seq" / f"{k:05d}.png", solid([color])[0])
    (tmp_path / "seq" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "empty_folder").mkdir()
    source = DirectoryVideos(str(tmp_path))
    assert [source.video_name(i) for i in range(source.num_videos)] == ["clip.mp4", "seq"]
    assert_colors(source.frames(1, 6, 6), COLORS[3:])


def test_directory_frames_are_cropped_not_stretched(tmp_path: Path) -> None:
    """A wide frame is scaled to cover the target and centre-cropped: the sides are cut off."""
    wide = np.zeros((16, 64, 3), np.uint8)
    wide[:, :16] = (230, 30, 30)
    wide[:, 16:48] = (30, 230, 30)
    wide[:, 48:] = (30, 30, 230)
    write_image(tmp_path / "v" / "0.png", wide)
    frame = DirectoryVideos(tmp_path).frames(0, 16, 16)[0].astype(int)
    np.testing.assert_allclose(frame.reshape(-1, 3).mean(axis=0), (30, 230, 30), atol=10)


def test_as_video_source(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", solid(COLORS[:2]))
    assert isinstance(as_video_source(None), ProceduralVideos)
    assert isinstance(as_video_source(tmp_path), DirectoryVideos)
    own = ProceduralVideos(num_videos=1)
    assert as_video_source(own) is own
    assert isinstance(own, VideoSource)
    with pytest.raises(TypeError, match="VideoSource, a directory path or None"):
        as_video_source(3)  # type: ignore[arg-type]


# -- bad input: clear errors at construction -----------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"video directory '.*nowhere' does not exist"):
        DirectoryVideos(tmp_path / "nowhere")


def test_path_is_a_file(tmp_path: Path) -> None:
    video = write_video(tmp_path / "a.mp4", solid(COLORS[:2]))
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        DirectoryVideos(video)


@pytest.mark.parametrize("content", ["nothing", "unrelated files", "empty sub-folder"])
def test_no_videos_found_says_what_was_searched(tmp_path: Path, content: str) -> None:
    if content == "unrelated files":
        (tmp_path / "readme.txt").write_text("hi")
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "x.csv").write_text("1,2")
    elif content == "empty sub-folder":
        (tmp_path / "video1").mkdir()
    with pytest.raises(ValueError, match=r"no videos found in .*\*\.mp4.*\*\.jpg.*JPEGImages/480p"):
        DirectoryVideos(tmp_path)


def test_undecodable_video_is_named(tmp_path: Path) -> None:
    write_video(tmp_path / "good.mp4", solid(COLORS[:2]))
    (tmp_path / "broken.mp4").write_bytes(b"this is not an mp4 file" * 20)
    with pytest.raises(ValueError, match=r"cannot decode video file '.*broken\.mp4'"):
        DirectoryVideos(tmp_path)


def test_truncated_video_is_named(tmp_path: Path) -> None:
    data = write_video(tmp_path / "full.mp4", solid(COLORS)).read_bytes()
    (tmp_path / "full.mp4").unlink()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"cannot decode video file '.*cut\.mp4'"):
        DirectoryVideos(tmp_path)


def test_undecodable_image_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "JPEGImages" / "480p" / "dog"
    folder.mkdir(parents=True)
    (folder / "00000.jpg").write_bytes(b"\xff\xd8 garbage, not a jpeg")
    with pytest.raises(ValueError, match=r"cannot decode video file '.*dog/00000\.jpg'"):
        DirectoryVideos(tmp_path)


def test_davis_video_folder_without_images(tmp_path: Path) -> None:
    write_image(tmp_path / "JPEGImages/480p/cat/00000.jpg", solid(COLORS[:1])[0])
    (tmp_path / "JPEGImages/480p/dog").mkdir()
    with pytest.raises(ValueError, match=r"DAVIS video folder '.*dog' holds no images"):
        DirectoryVideos(tmp_path)


def test_bad_frame_later_in_a_sequence_is_named_when_loaded(tmp_path: Path) -> None:
    """Construction probes first frames only (fast on big datasets); a later bad frame still
    fails loudly, naming the file, when the clip is loaded."""
    write_image(tmp_path / "seq" / "00000.jpg", solid(COLORS[:1])[0])
    (tmp_path / "seq" / "00001.jpg").write_bytes(b"broken")
    source = DirectoryVideos(tmp_path)
    with pytest.raises(ValueError, match=r"cannot decode video file '.*seq/00001\.jpg'"):
        source.frames(0, 8, 8)


def test_bad_directory_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_frames must be an int >= 1 or None"):
        DirectoryVideos(tmp_path, max_frames=0)
    with pytest.raises(ValueError, match="cache_size must be an integer >= 1"):
        DirectoryVideos(tmp_path, cache_size=0)


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4])
def test_single_procedural_frame_equals_the_clip_frame(index: int) -> None:
    """A static background renders one frame alone; it must be the clip's frame at that spot."""
    clip = ProceduralVideos(num_frames=20).frames(index, 32, 40)
    alone = ProceduralVideos(num_frames=20)
    for position in (0.0, 0.5, 0.99):
        expected = clip[min(int(position * 20), 19)]
        np.testing.assert_array_equal(alone.frame(index, position, 32, 40), expected)
