"""Image augmentations of visual SAC (DrQ / RAD / SVEA / MaDi), on batches of stacked frames.

Conventions shared by every function here:

- A batch is ``(B, 3·k, H, W)``: ``k`` RGB frames stacked on the channel axis (frame ``i`` is
  channels ``3i .. 3i+2``), as :class:`~sparse_rl.envs.dmc.DMCEnv` makes pixel observations.
- Pixels are in [0, 255], as ``uint8`` (the replay buffer's type) or any float dtype (not divided
  by 255: the encoder does that). The output has the input's dtype, device and value range; a
  ``uint8`` result is rounded. Each augmentation is one vectorised torch call chain (no loop over
  the batch, no numpy), so it runs where the batch lives, CPU or CUDA.
- Randomness comes from ``generator`` (a ``torch.Generator``) when given, else from torch's global
  RNG of the batch's device. Random numbers are drawn on the generator's device and moved to the
  batch's, so a CPU generator also seeds a CUDA batch.
- A "sample" is one row of the batch: each sample gets its own random draw, and all ``k`` frames
  of a sample are augmented alike (a frame stack must stay a consistent clip).

SVEA's weak augmentation is :func:`random_shift`; its strong ones (:func:`strong_augment`) are
:func:`overlay` with a natural image and :func:`random_conv`. SVEA overlays Places365 photos,
which cannot be downloaded here: :class:`ProceduralImages` (frames of the procedural videos) is
the default and :class:`DirectoryImages` reads a user's image folder (Places365 included).
"""

from __future__ import annotations

import os
import re
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from sparse_rl.envs.video_sources import (
    FAMILIES,
    IMAGE_EXTENSIONS,
    ProceduralVideos,
    decode_image,
)
from torch import Tensor

from sparse_rl.validation import check_choice, check_int

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "DirectoryImages",
    "ImageSource",
    "ProceduralImages",
    "overlay",
    "random_conv",
    "random_shift",
    "strong_augment",
]

#: Names :func:`strong_augment` accepts: SVEA's two strong augmentations.
AUGMENTATIONS: tuple[str, ...] = ("overlay", "conv")


@runtime_checkable
class Augmentation(Protocol):
    """What :func:`strong_augment` returns: ``aug(x, generator=None)`` → augmented batch."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor: ...


@runtime_checkable
class ImageSource(Protocol):
    """Where :func:`overlay` gets its images.

    ``sample(n, height, width, generator)`` returns ``n`` RGB images as a ``uint8`` tensor of shape
    ``(n, 3, height, width)``, drawn with ``generator`` (torch's global RNG when None).
    """

    def sample(
        self, n: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> Tensor: ...


# -- checks and small helpers ---------------------------------------------------------------------


def _check_batch(x: object, rgb: bool) -> None:
    """Shape and dtype only: checking values would cost a device sync on every call."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (B, 3·k, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, 3·k, H, W), got shape {tuple(x.shape)}")
    if rgb and x.shape[1] % 3:
        raise ValueError(
            f"x must stack whole RGB frames: its channels ({x.shape[1]}) must be a multiple of 3"
        )
    if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
        raise TypeError(f"x must be uint8 or floating point pixels in [0, 255], got {x.dtype}")


def _draw_device(x: Tensor, generator: torch.Generator | None) -> torch.device:
    """Random draws must happen on the generator's device (torch requires it)."""
    return generator.device if generator is not None else x.device


def _work_dtype(x: Tensor) -> torch.dtype:
    return x.dtype if x.dtype.is_floating_point else torch.float32


def _restore_dtype(y: Tensor, dtype: torch.dtype) -> Tensor:
    """Back to the input's dtype; uint8 is rounded (values are already in [0, 255])."""
    if dtype == torch.uint8:
        return y.round_().clamp_(0, 255).to(torch.uint8)
    return y.to(dtype)


def _resize(images: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize (antialiased when shrinking) of ``(n, 3, h, w)`` images, dtype kept."""
    if images.shape[-2:] == (height, width):
        return images
    out = F.interpolate(
        images.to(_work_dtype(images)),
        size=(height, width),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return _restore_dtype(out.clamp_(0, 255), images.dtype)


# -- weak: random shift ---------------------------------------------------------------------------


def random_shift(x: Tensor, pad: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """DrQ / RAD random shift: replicate-pad by ``pad``, then crop back to ``H × W`` at a random
    integer offset in ``[0, 2·pad]²``, one offset per sample, the same for all its frames.

    Done as one ``gather`` with clamped indices (clamping *is* replicate padding), which is exact
    for ``uint8`` and about 10× faster on a CPU than DrQ's ``grid_sample`` (no float copy, no
    padded copy). ``pad=0`` returns an unchanged copy.

    :param x: ``(B, C, H, W)`` pixels (any C; uint8 or float).
    :param pad: the largest shift in pixels (SVEA / DrQ use 4 at 84 × 84).
    :param generator: seeds the offsets.
    """
    _check_batch(x, rgb=False)
    check_int("pad", pad, 0)
    b, c, h, w = x.shape
    offsets = torch.randint(
        0, 2 * pad + 1, (b, 2), generator=generator, device=_draw_device(x, generator)
    ).to(x.device)
    rows = (offsets[:, :1] - pad + torch.arange(h, device=x.device)).clamp_(0, h - 1)
    cols = (offsets[:, 1:] - pad + torch.arange(w, device=x.device)).clamp_(0, w - 1)
    index = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, h * w)
    return x.reshape(b, c, h * w).gather(2, index.expand(b, c, h * w)).view(b, c, h, w)


# -- strong: random convolution ---------------------------------------------------------------


def random_conv(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """SVEA's random convolution: a random 3×3 conv (3 → 3 channels) per sample, applied to each
    of its RGB frames.

    As in SVEA's code (``augmentations.random_conv``): weights ~ N(0, 1), drawn fresh for every
    sample (``randn(B, 3, 3, 3, 3)``: sample, out, in, kh, kw), input scaled to [0, 1],
    replicate padding 1, then ``sigmoid(·)·255``: the sigmoid is the normalisation that keeps the
    output in [0, 255] whatever the weights. SVEA loops over the batch; here it is one grouped
    conv (groups = B) with the frames on the conv's batch axis.

    :param x: ``(B, 3·k, H, W)`` pixels (uint8 or float).
    :param generator: seeds the weights.
    """
    _check_batch(x, rgb=True)
    b, c, h, w = x.shape
    k = c // 3
    dtype = _work_dtype(x)
    weight = torch.randn(
        (b, 3, 3, 3, 3), generator=generator, device=_draw_device(x, generator)
    ).to(device=x.device, dtype=dtype)
    # (B, k, 3, H, W) → (k, B·3, H, W): frames of all samples convolved at once, one group each
    frames = x.reshape(b, k, 3, h, w).transpose(0, 1).reshape(k, b * 3, h, w)
    frames = F.pad(frames.to(dtype) / 255, (1, 1, 1, 1), mode="replicate")
    out = torch.sigmoid(F.conv2d(frames, weight.view(b * 3, 3, 3, 3), groups=b)).mul_(255)
    out = _restore_dtype(out, x.dtype)  # before the transpose: a uint8 copy is 4x cheaper
    return out.view(k, b, 3, h, w).transpose(0, 1).reshape(b, c, h, w)


# -- strong: overlay with a natural image ---------------------------------------------------------


def overlay(
    x: Tensor,
    images: ImageSource | Tensor,
    alpha: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SVEA's overlay: ``(1 - alpha)·x + alpha·image``, one image per sample, the same image for
    all its frames.

    :param x: ``(B, 3·k, H, W)`` pixels (uint8 or float).
    :param images: an :class:`ImageSource` (``B`` images are drawn from it with ``generator``), or
        the images themselves as a ``(B, 3, h, w)`` tensor in [0, 255], resized to ``H × W`` when
        ``(h, w)`` differs.
    :param alpha: weight of the image; SVEA uses 0.5.
    :param generator: seeds which images are drawn (unused when ``images`` is a tensor).
    """
    _check_batch(x, rgb=True)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    b, c, h, w = x.shape
    if isinstance(images, Tensor):
        if images.dim() != 4 or images.shape[:2] != (b, 3):
            raise ValueError(
                f"images must have shape (B, 3, h, w) = ({b}, 3, h, w) to match x, "
                f"got {tuple(images.shape)}"
            )
        img = _resize(images, h, w)
    elif isinstance(images, ImageSource):
        img = images.sample(b, h, w, generator)
        if tuple(img.shape) != (b, 3, h, w):
            raise ValueError(
                f"{type(images).__name__}.sample({b}, {h}, {w}) returned shape "
                f"{tuple(img.shape)}, expected {(b, 3, h, w)}"
            )
    else:
        raise TypeError(
            "images must be an ImageSource (e.g. ProceduralImages(), DirectoryImages(path)) or a "
            f"(B, 3, h, w) tensor, got {type(images).__name__}"
        )
    dtype = _work_dtype(x)
    img = img.to(device=x.device, dtype=dtype, non_blocking=True)
    mixed = x.to(dtype).view(b, c // 3, 3, h, w) * (1 - alpha) + img[:, None] * alpha
    return _restore_dtype(mixed.view(b, c, h, w), x.dtype)


class _ImageBank(ABC):
    """A fixed set of images kept in memory; ``sample`` is an index into it (no decoding)."""

    _BANK_CACHE = 2  # (size, device) pairs kept: one training size, maybe on two devices

    def __init__(self) -> None:
        self._banks: OrderedDict[tuple[int, int, str], Tensor] = OrderedDict()

    @property
    @abstractmethod
    def num_images(self) -> int:
        """How many distinct images ``sample`` draws from."""

    @abstractmethod
    def _make_bank(self, height: int, width: int) -> Tensor:
        """All images as a CPU ``uint8`` tensor ``(num_images, 3, height, width)``."""

    def bank(self, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
        """All images at ``height × width`` on ``device`` (made once, then cached)."""
        for name, size in (("height", height), ("width", width)):
            check_int(name, size, 1)
        key = (int(height), int(width), str(torch.device(device)))
        bank = self._banks.get(key)
        if bank is None:
            bank = self._make_bank(key[0], key[1]).to(device)
            self._banks[key] = bank
            while len(self._banks) > self._BANK_CACHE:
                self._banks.popitem(last=False)
        else:
            self._banks.move_to_end(key)
        return bank

    def sample(
        self, n: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` images drawn uniformly with replacement, as ``uint8 (n, 3, height, width)``, on
        the generator's device (CPU without one)."""
        check_int("n", n, 0)
        device = generator.device if generator is not None else torch.device("cpu")
        bank = self.bank(height, width, device)
        index = torch.randint(0, len(bank), (n,), generator=generator, device=device)
        return bank[index]

    def __len__(self) -> int:
        return self.num_images


class ProceduralImages(_ImageBank):
    """Natural-looking stand-ins for Places365: single frames of the procedural videos.

    Image ``i`` is one frame (at a seeded position) of procedural clip ``2**20 + i`` of
    :class:`~sparse_rl.envs.video_sources.ProceduralVideos` with this ``seed``. The index offset
    keeps them apart from the clips the video distractions show (indices below 2**20, i.e. all
    of them), so training overlays never contain the test-time backgrounds; they share only the
    families' style, as Places365 photos and DAVIS videos share "natural image" statistics.
    Images are rendered at the size asked for (no resizing), once per size.

    :param seed: seed of the image set (same seed, same images).
    :param num_images: how many distinct images (each has its own random layout and palette).
    :param families: procedural families to cycle through (see ``video_sources.FAMILIES``).
    """

    INDEX_OFFSET = 2**20

    def __init__(
        self, seed: int = 0, num_images: int = 500, families: Sequence[str] = FAMILIES
    ) -> None:
        super().__init__()
        check_int("seed", seed, 0)
        check_int("num_images", num_images, 1)
        self.seed = int(seed)
        self._num_images = int(num_images)
        # validates families and seed, naming the valid choices
        self._videos = ProceduralVideos(
            num_videos=self.INDEX_OFFSET + self._num_images,
            num_frames=100,
            seed=self.seed,
            families=families,
            cache_size=1,
        )
        self.families = self._videos.families
        positions = np.random.default_rng([self.seed, self.INDEX_OFFSET]).random(self._num_images)
        self._positions = positions.tolist()

    @property
    def num_images(self) -> int:
        return self._num_images

    def _make_bank(self, height: int, width: int) -> Tensor:
        frames = np.stack(
            [
                self._videos.frame(self.INDEX_OFFSET + i, position, height, width)
                for i, position in enumerate(self._positions)
            ]
        )
        return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()


def _path_key(relative: Path) -> list[int | str]:
    """Natural order over the whole relative path (``cat/2.jpg`` before ``cat/10.jpg``)."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", relative.as_posix())]


class DirectoryImages(_ImageBank):
    """The user's images (e.g. Places365), decoded once with PyAV and kept in memory.

    Every ``.jpg`` / ``.jpeg`` / ``.png`` under ``path`` is found, sub-folders included (so both
    Places365's flat ``val_256/`` and its per-category ``train/<category>/`` layouts work); hidden
    files and folders are skipped and names are sorted naturally, so the set is the same on every
    machine. When there are more than ``max_images``, an evenly spread subset of the sorted list is
    kept (every category of a per-category layout is represented). Images are scaled to cover
    ``size`` (aspect kept) and centre-cropped, like the video backgrounds; ``sample`` at another
    size resizes the whole set once (bilinear, antialiased).

    Unreadable files are skipped with one warning naming them; a path that is missing, not a
    directory, or holds no readable image raises at construction.

    :param path: the directory.
    :param size: the stored size, ``side`` or ``(height, width)``: the agent's frame size.
    :param max_images: memory cap: at most this many images are kept (1000 at 84 × 84 ≈ 21 MB).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: int | tuple[int, int] = 84,
        max_images: int = 1000,
    ) -> None:
        super().__init__()
        if isinstance(size, int | np.integer):
            size = (size, size)
        if not isinstance(size, Sequence) or len(size) != 2:
            raise ValueError(f"size must be an int or a (height, width) pair, got {size!r}")
        height, width = size
        check_int("size (height)", height, 1)
        check_int("size (width)", width, 1)
        check_int("max_images", max_images, 1)
        self.size = (int(height), int(width))
        self.max_images = int(max_images)
        self.path = Path(path).expanduser()
        accepted = ", ".join("*" + e for e in IMAGE_EXTENSIONS)
        if not self.path.exists():
            raise FileNotFoundError(f"image directory '{self.path}' does not exist")
        if not self.path.is_dir():
            raise NotADirectoryError(f"image directory '{self.path}' is not a directory")
        files = self._scan()
        if not files:
            raise ValueError(
                f"no images found in '{self.path}' (searched sub-folders too): "
                f"accepted extensions are {accepted}"
            )
        if len(files) > self.max_images:
            files = [files[i * len(files) // self.max_images] for i in range(self.max_images)]
        images, self.files, errors = self._decode_all(files)
        if errors:
            shown = "; ".join(errors[:3]) + (
                f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
            )
            if not images:
                raise ValueError(
                    f"no readable images in '{self.path}' ({accepted}): all {len(errors)} "
                    f"failed to decode: {shown}"
                )
            warnings.warn(
                f"skipped {len(errors)} unreadable image(s) in '{self.path}': {shown}",
                stacklevel=2,
            )
        self._images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()

    def _scan(self) -> list[Path]:
        found = []
        for root, dirs, names in os.walk(self.path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [
                Path(root, n)
                for n in names
                if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTENSIONS
            ]
        return sorted(found, key=lambda p: _path_key(p.relative_to(self.path)))

    def _decode_all(
        self, files: list[Path]
    ) -> tuple[list[np.ndarray], tuple[Path, ...], list[str]]:
        """Decode at the stored size through video_sources' PyAV frame fitting."""
        images, kept, errors = [], [], []
        for file in files:
            try:
                images.append(decode_image(file, *self.size))
                kept.append(file)
            except ValueError as err:
                errors.append(str(err))
        return images, tuple(kept), errors

    @property
    def num_images(self) -> int:
        return len(self._images)

    def _make_bank(self, height: int, width: int) -> Tensor:
        return _resize(self._images, height, width)


# -- by name --------------------------------------------------------------------------------------


def strong_augment(
    name: str, *, images: ImageSource | None = None, alpha: float | None = None
) -> Augmentation:
    """SVEA's strong augmentation by name, as ``aug(x, generator=None)``.

    :param name: "overlay" or "conv" (see :data:`AUGMENTATIONS`).
    :param images: overlay's image source; default ``ProceduralImages(seed=0)`` (SVEA uses
        Places365: pass ``DirectoryImages(path)`` to use it).
    :param alpha: overlay's image weight; default 0.5 as in SVEA.
    """
    check_choice("name", name, AUGMENTATIONS)
    if name == "conv":
        if images is not None or alpha is not None:
            raise ValueError("images and alpha apply to the 'overlay' augmentation, not 'conv'")
        return random_conv
    if images is None:
        images = ProceduralImages(seed=0)
    elif not isinstance(images, ImageSource):
        raise TypeError(
            "images must be an ImageSource (e.g. ProceduralImages(), DirectoryImages(path)), "
            f"got {type(images).__name__}"
        )
    alpha = 0.5 if alpha is None else alpha
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return partial(overlay, images=images, alpha=alpha)
