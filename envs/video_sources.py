"""Where background videos come from: built-in procedural clips or the user's own directory.

A :class:`VideoSource` is a fixed, ordered list of RGB clips. The background distraction asks for
clip ``i`` at the size it renders (``frames(i, height, width)`` → ``(T, H, W, 3)`` uint8) and picks
``i`` with the env's seeded rng, so the same seed shows the same video. The order never depends on
the filesystem's listing order (names are sorted), so "the first N videos" means the same videos
on every machine.

- :class:`ProceduralVideos` needs no download: several visibly different families of colourful,
  moving clips generated with vectorised numpy, deterministic per ``(seed, index)``.
- :class:`DirectoryVideos` reads the user's videos (``*.mp4`` and other containers FFmpeg reads,
  decoded with PyAV) or image sequences in the DAVIS ``JPEGImages/480p/<video>/*.jpg`` layout (or a
  plain directory of per-video image folders). Every video is probed at construction, so a missing,
  empty or undecodable input fails there with the file's name, never later as a clean background.

Clips are cached (least recently used, per size), because an env asks for the same few clips at
the same size episode after episode.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from sparse_rl.validation import check_int

if TYPE_CHECKING:
    import av

__all__ = [
    "FAMILIES",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DirectoryVideos",
    "ProceduralVideos",
    "VideoSource",
    "as_video_source",
]

#: Container extensions :class:`DirectoryVideos` looks for (case-insensitive).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
#: Image extensions of image-sequence frames (case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")


class VideoSource(ABC):
    """A fixed, ordered set of RGB clips, served at any size and cached."""

    def __init__(self, cache_size: int = 8) -> None:
        check_int("cache_size", cache_size)
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()

    @property
    @abstractmethod
    def num_videos(self) -> int:
        """How many clips the source holds (indices ``0 .. num_videos - 1``)."""

    @abstractmethod
    def video_name(self, index: int) -> str:
        """A human-readable name of clip ``index`` (file or family), for messages and logs."""

    @abstractmethod
    def _load(self, index: int, height: int, width: int) -> np.ndarray:
        """Produce clip ``index`` as a fresh ``(T, height, width, 3)`` uint8 array, T >= 1."""

    def frames(self, index: int, height: int, width: int) -> np.ndarray:
        """Clip ``index`` as a read-only ``(T, height, width, 3)`` uint8 array (cached)."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"video index must be an int, got {index!r}")
        if not 0 <= index < self.num_videos:
            raise IndexError(f"video index {index} out of range [0, {self.num_videos})")
        for name, size in (("height", height), ("width", width)):
            check_int(name, size)
        key = (int(index), int(height), int(width))
        clip = self._cache.get(key)
        if clip is None:
            clip = self._load(*key)
            clip.flags.writeable = False
            self._cache[key] = clip
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return clip

    def frame(self, index: int, position: float, height: int, width: int) -> np.ndarray:
        """The frame at ``position`` in [0, 1) of clip ``index`` (a static background needs one).

        This default loads the whole clip; sources that can make one frame cheaply override it.
        """
        clip = self.frames(index, height, width)
        return clip[min(int(position * len(clip)), len(clip) - 1)]

    def __len__(self) -> int:
        return self.num_videos


# -- procedural clips ---------------------------------------------------------------------------

#: A frame renderer: (t (n,), y (H, 1), x (1, W)) in [0, 1) → (n, H, W, 3) float32 in [0, 1].
_Renderer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_TAU = np.float32(2 * np.pi)


def _palette(rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` saturated, clearly different colours (HSV with spread-out hues) as (k, 3) float32."""
    hues = (rng.random() + np.arange(k) / k + rng.uniform(-0.08, 0.08, k)) % 1.0
    rng.shuffle(hues)
    sat = rng.uniform(0.55, 1.0, k)
    val = rng.uniform(0.45, 1.0, k)
    return _hsv_to_rgb(hues, sat, val).astype(np.float32)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV → RGB, all in [0, 1], stacked on a new last axis."""
    i = np.floor(h * 6).astype(np.intp) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def _cyclic_lookup(s: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Map a scalar field to colours, interpolating around the cyclic palette ``colors``."""
    k = len(colors)
    u = (s % 1.0) * k
    i0 = np.floor(u).astype(np.intp) % k
    f = (u - np.floor(u))[..., None].astype(np.float32)
    return colors[i0] * (1 - f) + colors[(i0 + 1) % k] * f


def _smoothstep(f: np.ndarray) -> np.ndarray:
    return f * f * (3 - 2 * f)


def _shapes(rng: np.random.Generator) -> _Renderer:
    """Textured discs and rotating boxes sliding across a gradient, wrapping at the edges."""
    n = int(rng.integers(4, 8))
    bg = _palette(rng, 2)
    angle = rng.uniform(0, 2 * np.pi)
    kind = rng.integers(0, 2, n)  # 0 disc, 1 box
    texture = rng.integers(0, 3, n)  # 0 plain, 1 stripes, 2 checker
    size = rng.uniform(0.1, 0.25, n)
    aspect = rng.uniform(0.5, 1.5, n)
    start = rng.random((n, 2))
    vel = rng.integers(-2, 3, (n, 2))  # whole laps per clip: the clip loops seamlessly
    vel[(vel == 0).all(axis=1), 0] = 1
    spin = rng.integers(-1, 2, n)
    rot0 = rng.uniform(0, 2 * np.pi, n)
    freq = rng.uniform(8, 20, n)
    colors = _palette(rng, 2 * n).reshape(n, 2, 3)

    # one colour table: 0 = background, then the two texture colours of each shape
    table = np.concatenate([np.zeros((1, 3), np.float32), colors.reshape(2 * n, 3)])

    def render(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        g = (x * np.cos(angle) + y * np.sin(angle)) / (abs(np.cos(angle)) + abs(np.sin(angle)))
        g = ((g - g.min()) / max(float(np.ptp(g)), 1e-6))[..., None]
        layer = np.zeros((len(t), y.shape[0], x.shape[1]), np.intp)
        tt = t[:, None, None]
        for j in range(n):  # painter's order, on an index map: one colour gather at the end
            cy = (start[j, 0] + vel[j, 0] * tt) % 1.0
            cx = (start[j, 1] + vel[j, 1] * tt) % 1.0
            dy = (y - cy + 0.5) % 1.0 - 0.5  # torus distance: shapes wrap around the edges
            dx = (x - cx + 0.5) % 1.0 - 0.5
            rot = rot0[j] + spin[j] * _TAU * tt
            cos, sin = np.cos(rot), np.sin(rot)
            u = dx * cos + dy * sin
            v = dy * cos - dx * sin
            if kind[j] == 0:
                inside = (u / size[j]) ** 2 + (v / (size[j] * aspect[j])) ** 2 < 1
            else:
                inside = (np.abs(u) < size[j]) & (np.abs(v) < size[j] * aspect[j])
            if texture[j] == 1:
                pick = np.sin(u * freq[j] * _TAU) > 0
            elif texture[j] == 2:
                pick = (np.floor(u * freq[j]) + np.floor(v * freq[j])) % 2 == 0
            else:
                pick = np.zeros_like(inside)
            np.copyto(layer, 2 * j + 1 + pick, where=inside)
        background = bg[0] * (1 - g) + bg[1] * g
        return np.where(layer[..., None] == 0, background, table[layer])

    return render


def _noise(rng: np.random.Generator) -> _Renderer:
    """Drifting fractal value noise (cloud- or terrain-like), coloured through a palette."""
    octaves = 3
    cells = [int(rng.integers(3, 6)) * 2**o for o in range(octaves)]
    grids = [rng.random((c, c)).astype(np.float32) for c in cells]
    drift = [rng.integers(-1, 2, 2) for _ in range(octaves)]
    for d in drift:
        if not d.any():
            d[rng.integers(2)] = 1
    colors = _palette(rng, int(rng.integers(3, 6)))
    bands = rng.uniform(1.0, 2.5)

    def render(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        total = np.zeros((len(t), y.shape[0], x.shape[1]), np.float32)
        for o, (c, grid, d) in enumerate(zip(cells, grids, drift, strict=True)):
            # whole-cell drift per clip: the periodic grid makes the clip loop seamlessly
            u = (x + d[1] * t[:, None, None]) * c
            v = (y + d[0] * t[:, None, None]) * c
            iu, iv = np.floor(u).astype(np.intp), np.floor(v).astype(np.intp)
            fu, fv = _smoothstep(u - iu), _smoothstep(v - iv)
            iu, iv, iu1, iv1 = iu % c, iv % c, (iu + 1) % c, (iv + 1) % c
            top = grid[iv, iu] * (1 - fu) + grid[iv, iu1] * fu
            bottom = grid[iv1, iu] * (1 - fu) + grid[iv1, iu1] * fu
            total += (top * (1 - fv) + bottom * fv) * 0.5**o
        total /= sum(0.5**o for o in range(octaves))
        return _cyclic_lookup(total * bands, colors)

    return render


def _waves(rng: np.random.Generator) -> _Renderer:
    """Interfering travelling plane waves (plasma): smooth, fast-changing colour bands."""
    k = int(rng.integers(3, 6))
    theta = rng.uniform(0, 2 * np.pi, k)
    freq = rng.uniform(1.0, 4.0, k)
    kx, ky = (freq * np.cos(theta)).astype(np.float32), (freq * np.sin(theta)).astype(np.float32)
    speed = rng.integers(1, 3, k) * rng.choice([-1, 1], k)
    phase = rng.uniform(0, 2 * np.pi, k).astype(np.float32)
    colors = _palette(rng, int(rng.integers(3, 6)))

    def render(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        tt = t[:, None, None]
        s = sum(np.sin(_TAU * (kx[j] * x + ky[j] * y + speed[j] * tt) + phase[j]) for j in range(k))
        return _cyclic_lookup(s / (2 * k) + 0.5, colors)

    return render


def _blobs(rng: np.random.Generator) -> _Renderer:
    """Soft glowing colour blobs on Lissajous paths, mixing where they overlap."""
    n = int(rng.integers(4, 9))
    colors = _palette(rng, n + 1)
    bg = colors[-1] * 0.4
    sigma = rng.uniform(0.06, 0.16, n).astype(np.float32)
    center = rng.uniform(0.2, 0.8, (n, 2)).astype(np.float32)
    amp = rng.uniform(0.15, 0.45, (n, 2)).astype(np.float32)
    cycles = rng.integers(1, 4, (n, 2))
    phase = rng.uniform(0, 2 * np.pi, (n, 2)).astype(np.float32)

    def render(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        acc = np.zeros((len(t), y.shape[0], x.shape[1], 3), np.float32)
        weight = np.ones((len(t), y.shape[0], x.shape[1], 1), np.float32)
        acc += bg
        for j in range(n):
            path = center[j] + amp[j] * np.sin(_TAU * cycles[j] * t[:, None] + phase[j])
            cy, cx = path[:, 0, None, None], path[:, 1, None, None]
            w = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma[j] ** 2))[..., None] * 8
            acc += w * colors[j]
            weight += w
        return acc / weight

    return render


def _stripes(rng: np.random.Generator) -> _Renderer:
    """Scrolling, turning, wobbling stripes or checkerboards in hard-edged colour bands."""
    checker = bool(rng.integers(2))
    freq = rng.uniform(3, 8)
    angle0 = rng.uniform(0, 2 * np.pi)
    turn = float(rng.integers(-1, 2)) * 0.25  # quarter turns per clip
    scroll = int(rng.integers(1, 4)) * float(rng.choice([-1, 1]))
    wobble = rng.uniform(0.0, 0.08)
    wobble_freq = rng.uniform(1, 3)
    colors = _palette(rng, int(rng.integers(2, 4)))
    k = len(colors)

    def render(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        tt = t[:, None, None]
        a = angle0 + _TAU * turn * np.sin(_TAU * tt)
        xc, yc = x - 0.5, y - 0.5
        u = xc * np.cos(a) + yc * np.sin(a)
        v = -xc * np.sin(a) + yc * np.cos(a)
        u = u + wobble * np.sin(_TAU * (wobble_freq * v + tt))
        s = u * freq + scroll * tt
        if checker:
            s = np.floor(s) + np.floor(v * freq)
            idx = s.astype(np.intp) % k
        else:
            idx = np.floor(s * k).astype(np.intp) % k
        return colors[idx]

    return render


_FAMILIES: dict[str, Callable[[np.random.Generator], _Renderer]] = {
    "shapes": _shapes,
    "noise": _noise,
    "waves": _waves,
    "blobs": _blobs,
    "stripes": _stripes,
}
#: Names of the procedural families, in the order videos cycle through them.
FAMILIES: tuple[str, ...] = tuple(_FAMILIES)


class ProceduralVideos(VideoSource):
    """Colourful moving clips generated on the fly, no download, deterministic per seed.

    Video ``i`` belongs to family ``families[i % len(families)]`` and draws its parameters from
    ``numpy.random.default_rng([seed, i])``, so the first few videos already span every family
    (the Distracting Control Suite's "easy" uses the first 4) and a clip does not depend on which
    other clips were generated before it. Clips are made in normalised coordinates, so a clip looks
    the same at any size, and loop seamlessly (motions make whole cycles per clip).

    :param num_videos: how many distinct clips (60 matches the DAVIS-based "hard" setting).
    :param num_frames: frames per clip.
    :param seed: seed of the whole set of clips (the env's rng then picks among them).
    :param families: which families to cycle through (see :data:`FAMILIES`).
    :param cache_size: how many generated clips to keep (per size).
    """

    def __init__(
        self,
        num_videos: int = 60,
        num_frames: int = 100,
        seed: int = 0,
        families: Sequence[str] = FAMILIES,
        cache_size: int = 8,
    ) -> None:
        super().__init__(cache_size)
        for name, value in (("num_videos", num_videos), ("num_frames", num_frames)):
            check_int(name, value)
        check_int("seed", seed, 0)
        if isinstance(families, str):
            families = (families,)
        families = tuple(families)
        unknown = [f for f in families if f not in _FAMILIES]
        if unknown or not families:
            raise ValueError(
                f"unknown procedural families {unknown}; valid families: {list(FAMILIES)}"
            )
        self._num_videos = num_videos
        self.num_frames = num_frames
        self.seed = int(seed)
        self.families = families

    @property
    def num_videos(self) -> int:
        return self._num_videos

    def family(self, index: int) -> str:
        """The family of video ``index``."""
        return self.families[index % len(self.families)]

    def video_name(self, index: int) -> str:
        return f"procedural/{self.family(index)}/{index}"

    def _load(self, index: int, height: int, width: int) -> np.ndarray:
        return self._render(index, np.arange(self.num_frames), height, width)

    def frame(self, index: int, position: float, height: int, width: int) -> np.ndarray:
        """One frame, rendered alone unless its clip is cached (~100x cheaper than a clip)."""
        if (index, height, width) in self._cache:
            return super().frame(index, position, height, width)
        if not 0 <= index < self.num_videos:
            raise IndexError(f"video index {index} out of range [0, {self.num_videos})")
        j = min(int(position * self.num_frames), self.num_frames - 1)
        return self._render(index, np.array([j]), height, width)[0]

    def _render(self, index: int, frame_ids: np.ndarray, height: int, width: int) -> np.ndarray:
        """Frames ``frame_ids`` of clip ``index``, the same pixels made alone or together."""
        rng = np.random.default_rng([self.seed, index])
        render = _FAMILIES[self.family(index)](rng)
        y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
        x = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]
        t = frame_ids.astype(np.float32) / self.num_frames
        clip = np.empty((len(t), height, width, 3), np.uint8)
        chunk = max(1, 2**20 // (height * width))  # bounds the float temporaries to a few MB
        for i in range(0, len(t), chunk):
            rgb = render(t[i : i + chunk], y, x)
            clip[i : i + chunk] = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
        return clip


# -- the user's videos ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One user video: a container file, or an ordered list of image files."""

    name: str
    path: Path
    images: tuple[Path, ...] = ()


def _natural_key(path: Path) -> list[int | str]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _images_in(folder: Path) -> tuple[Path, ...]:
    files = [
        p
        for p in folder.iterdir()
        if _visible(p) and p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return tuple(sorted(files, key=_natural_key))


def _av() -> ModuleType:
    """PyAV, imported on first use: procedural sources never need it."""
    try:
        import av
    except ImportError as err:  # pragma: no cover - av is a declared dependency
        raise ImportError(
            "reading video files needs PyAV: pip install av (a dependency of sparse-rl)"
        ) from err
    return av


def _fit(frame: av.VideoFrame, height: int, width: int) -> np.ndarray:
    """Scale a decoded frame to cover ``height × width`` (aspect kept) and crop the centre."""
    scale = max(width / frame.width, height / frame.height)
    iw, ih = max(width, round(frame.width * scale)), max(height, round(frame.height * scale))
    rgb = frame.reformat(width=iw, height=ih, format="rgb24", interpolation="AREA").to_ndarray()
    top, left = (ih - height) // 2, (iw - width) // 2
    return rgb[top : top + height, left : left + width]


def decode_image(path: str | Path, height: int, width: int) -> np.ndarray:
    """The first frame of an image (or video) file as uint8 (height, width, 3), centre-cropped.

    Raises ValueError naming the file when PyAV cannot read it.
    """
    av = _av()
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (OSError, StopIteration, av.error.FFmpegError) as err:
        raise ValueError(f"cannot decode '{path}': {err or type(err).__name__}") from err
    return _fit(frame, height, width)


class DirectoryVideos(VideoSource):
    """The user's own videos: container files and/or image-sequence folders in one directory.

    Layouts searched, in this order (names sorted naturally, so the order is reproducible):

    - ``<path>/*.mp4`` (and the other :data:`VIDEO_EXTENSIONS`), decoded with PyAV;
    - DAVIS: ``<path>/JPEGImages/480p/<video>/*.jpg``; when that folder exists it is the only
      image-sequence folder used (DAVIS's ``Annotations`` masks are not videos);
    - otherwise ``<path>/<video>/*.jpg`` (or ``.jpeg`` / ``.png``): one sub-folder per video.

    Every video is probed at construction (its first frame decoded), so a bad file fails here,
    naming it. Frames are scaled to cover the requested size and centre-cropped (no stretching).

    :param path: the directory.
    :param max_frames: read at most this many frames per video (bounds memory for long videos);
        None reads all.
    :param cache_size: how many decoded clips to keep (per size).
    """

    def __init__(
        self, path: str | os.PathLike[str], max_frames: int | None = 300, cache_size: int = 8
    ) -> None:
        super().__init__(cache_size)
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
        ):
            raise ValueError(f"max_frames must be an int >= 1 or None, got {max_frames!r}")
        self.max_frames = max_frames
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(f"video directory '{self.path}' does not exist")
        if not self.path.is_dir():
            raise NotADirectoryError(f"video directory '{self.path}' is not a directory")
        self._entries = self._scan()
        if not self._entries:
            raise ValueError(
                f"no videos found in '{self.path}': looked for video files "
                f"({', '.join('*' + e for e in VIDEO_EXTENSIONS)}) directly inside it, and for "
                f"image sequences ({', '.join('*' + e for e in IMAGE_EXTENSIONS)}) in the DAVIS "
                "layout JPEGImages/480p/<video>/ or in one sub-folder per video (<video>/)"
            )
        for entry in self._entries:
            self._probe(entry)

    def _scan(self) -> list[_Entry]:
        children = sorted(filter(_visible, self.path.iterdir()), key=_natural_key)
        entries = [
            _Entry(p.name, p)
            for p in children
            if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
        ]
        davis = self.path / "JPEGImages" / "480p"
        if davis.is_dir():
            for folder in sorted(filter(_visible, davis.iterdir()), key=_natural_key):
                if not folder.is_dir():
                    continue
                images = _images_in(folder)
                if not images:
                    raise ValueError(
                        f"DAVIS video folder '{folder}' holds no images "
                        f"({', '.join('*' + e for e in IMAGE_EXTENSIONS)})"
                    )
                entries.append(_Entry(folder.name, folder, images))
        else:
            for folder in children:
                if folder.is_dir() and (images := _images_in(folder)):
                    entries.append(_Entry(folder.name, folder, images))
        return entries

    @property
    def num_videos(self) -> int:
        return len(self._entries)

    def video_name(self, index: int) -> str:
        return self._entries[index].name

    def _probe(self, entry: _Entry) -> None:
        """Decode the first frame, so unreadable input fails at construction, naming the file."""
        self._decode(entry.images[0] if entry.images else entry.path, 8, 8, limit=1)

    def _decode(self, file: Path, height: int, width: int, limit: int | None) -> list[np.ndarray]:
        av = _av()
        frames: list[np.ndarray] = []
        try:
            with av.open(str(file)) as container:
                if not container.streams.video:
                    raise ValueError("it has no video stream")
                for frame in container.decode(video=0):
                    frames.append(_fit(frame, height, width))
                    if limit is not None and len(frames) >= limit:
                        break
        except (OSError, ValueError, av.error.FFmpegError) as err:
            raise ValueError(f"cannot decode video file '{file}': {err}") from err
        if not frames:
            raise ValueError(f"cannot decode video file '{file}': it holds no video frames")
        return frames

    def _load(self, index: int, height: int, width: int) -> np.ndarray:
        entry = self._entries[index]
        if entry.images:
            images = entry.images[: self.max_frames]
            frames = [self._decode(p, height, width, limit=1)[0] for p in images]
        else:
            frames = self._decode(entry.path, height, width, limit=self.max_frames)
        return np.stack(frames)


def as_video_source(source: VideoSource | str | os.PathLike[str] | None) -> VideoSource:
    """A source from what a user passes: a :class:`VideoSource` as is, None for the built-in
    procedural clips, or a path for :class:`DirectoryVideos` (which checks it at once)."""
    if source is None:
        return ProceduralVideos()
    if isinstance(source, VideoSource):
        return source
    if isinstance(source, str | os.PathLike):
        return DirectoryVideos(source)
    raise TypeError(
        f"video source must be a VideoSource, a directory path or None, got {type(source).__name__}"
    )
