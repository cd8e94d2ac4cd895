"""Augmentations of stacked frames: random shift is an exact replicate-padded crop, one offset per
sample; random conv is SVEA's per-sample conv; overlay mixes one image into every frame; image
sources are deterministic and read the user's folders (written here with PyAV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import write_image
from sparse_rl.agents.visual.augmentations import (
    AUGMENTATIONS,
    Augmentation,
    DirectoryImages,
    ImageSource,
    ProceduralImages,
    overlay,
    random_conv,
    random_shift,
    strong_augment,
)
from sparse_rl.envs.video_sources import ProceduralVideos


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def frames(b: int = 8, k: int = 3, h: int = 12, w: int = 16, dtype=torch.uint8) -> torch.Tensor:
    """A (B, 3k, H, W) batch whose every channel plane holds distinct values (offsets are
    recoverable from any pixel) and whose samples and frames all differ."""
    pos = torch.arange(h * w).view(1, 1, h, w)
    shift = torch.arange(b * 3 * k).view(b, 3 * k, 1, 1) * 7
    return ((pos + shift) % 256).to(dtype)  # h·w <= 256: still distinct within each plane


def checker(b: int, k: int = 2, h: int = 12, w: int = 12) -> torch.Tensor:
    """The same black/white checkerboard in every frame of every sample (uint8)."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    board = ((yy + xx) % 2 * 255).to(torch.uint8)
    return board.expand(b, 3 * k, h, w).clone()


# -- random shift ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_shift_is_a_replicate_padded_crop_per_sample(dtype: torch.dtype) -> None:
    b, k, h, w, pad = 64, 3, 12, 16, 4
    x = frames(b, k, h, w, dtype)
    out = random_shift(x, pad=pad, generator=gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    padded = F.pad(x.double(), (pad,) * 4, mode="replicate")
    offsets = []
    for i in range(b):
        # the centre pixel is always an interior one: its value says where it came from
        where = (x[i, 0] == out[i, 0, h // 2, w // 2]).nonzero()
        assert len(where) == 1
        dy, dx = int(where[0, 0]) - h // 2, int(where[0, 1]) - w // 2
        assert -pad <= dy <= pad and -pad <= dx <= pad
        # every channel (every frame) of the sample is the same crop of the padded input
        crop = padded[i, :, pad + dy : pad + dy + h, pad + dx : pad + dx + w]
        torch.testing.assert_close(out[i].double(), crop, rtol=0, atol=0)
        offsets.append((dy, dx))
    assert len(set(offsets)) > 20  # different samples get different shifts (81 possible)
    dys, dxs = zip(*offsets, strict=True)
    assert {min(dys), max(dys), min(dxs), max(dxs)} == {-pad, pad}  # the whole range is used


def test_shift_seeding_pad_zero_and_non_square() -> None:
    x = frames(16, 2, 10, 14)
    assert torch.equal(random_shift(x, generator=gen(1)), random_shift(x, generator=gen(1)))
    assert not torch.equal(random_shift(x, generator=gen(1)), random_shift(x, generator=gen(2)))
    assert not torch.equal(random_shift(x), random_shift(x))  # global RNG: a new draw per call
    assert torch.equal(random_shift(x, pad=0), x)
    assert torch.equal(random_shift(x.float(), pad=0), x.float())
    y = torch.rand(4, 5, 7, 9)  # any channel count; shifts never invent values
    out = random_shift(y, pad=2)
    assert out.shape == y.shape and set(out.unique().tolist()) <= set(y.unique().tolist())


# -- random conv ----------------------------------------------------------------------------------


def svea_random_conv(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """SVEA's loop (augmentations.random_conv), with given per-sample weights (B, 3, 3, 3, 3)."""
    n, c, h, w = x.shape
    outs = []
    for i in range(n):
        temp = x[i : i + 1].reshape(-1, 3, h, w) / 255.0
        temp = F.pad(temp, pad=[1] * 4, mode="replicate")
        outs.append(torch.sigmoid(F.conv2d(temp, weights[i])) * 255.0)
    return torch.cat(outs).reshape(n, c, h, w)


def test_random_conv_matches_svea_per_sample_loop() -> None:
    x = frames(6, 3, 12, 16).float()
    out = random_conv(x, generator=gen(3))
    weights = torch.randn((6, 3, 3, 3, 3), generator=gen(3))
    torch.testing.assert_close(out, svea_random_conv(x, weights), rtol=0, atol=1e-3)
    as_uint8 = random_conv(x.to(torch.uint8), generator=gen(3))
    assert as_uint8.dtype == torch.uint8
    assert (as_uint8.float() - out).abs().max() <= 0.5 + 1e-3  # the same, rounded


def test_random_conv_same_kernel_for_a_sample_frames_new_kernel_per_sample() -> None:
    x = checker(8, k=3)  # identical frames everywhere
    out = random_conv(x, generator=gen(4))
    per_frame = out.view(8, 3, 3, 12, 12)
    assert torch.equal(per_frame, per_frame[:, :1].expand_as(per_frame))  # frames alike
    firsts = per_frame[:, 0]
    assert all(not torch.equal(firsts[i], firsts[j]) for i in range(8) for j in range(i))
    assert not torch.equal(out, x)


def test_random_conv_keeps_range_and_is_seedable() -> None:
    x = checker(32).float()  # extreme values 0 and 255: the conv's largest responses
    out = random_conv(x)
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 255
    assert out.std() > 1  # not collapsed to a constant
    assert not torch.equal(random_conv(x), random_conv(x))
    assert torch.equal(random_conv(x, generator=gen(5)), random_conv(x, generator=gen(5)))
    as_uint8 = random_conv(x.to(torch.uint8), generator=gen(5))
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == x.shape


# -- overlay --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_overlay_alpha_zero_is_identity_and_one_is_the_image(dtype: torch.dtype) -> None:
    b, k, h, w = 5, 3, 12, 16
    x = frames(b, k, h, w, dtype)
    images = torch.randint(0, 256, (b, 3, h, w), generator=gen(6), dtype=torch.uint8)
    assert torch.equal(overlay(x, images, alpha=0.0), x)
    full = overlay(x, images, alpha=1.0)
    assert full.dtype == dtype
    assert torch.equal(full, images.repeat(1, k, 1, 1).to(dtype))
    source = ProceduralImages(seed=0, num_images=16)
    drawn = source.sample(b, h, w, gen(7))
    assert torch.equal(
        overlay(x, source, alpha=1.0, generator=gen(7)), drawn.repeat(1, k, 1, 1).to(dtype)
    )


def test_overlay_mixes_one_image_into_every_frame() -> None:
    b, k, h, w = 6, 4, 12, 16
    x = frames(b, k, h, w, torch.float32)
    source = ProceduralImages(seed=1, num_images=16)
    out = overlay(x, source, alpha=0.5, generator=gen(8))
    image_part = (out - 0.5 * x).view(b, k, 3, h, w)  # 0.5·image in every frame
    torch.testing.assert_close(image_part, image_part[:, :1].expand_as(image_part))
    torch.testing.assert_close(image_part[:, 0] * 2, source.sample(b, h, w, gen(8)).float())
    as_uint8 = overlay(x.to(torch.uint8), source, generator=gen(8))
    assert as_uint8.dtype == torch.uint8
    assert (as_uint8.float() - out).abs().max() <= 0.5


def test_overlay_resizes_tensor_images() -> None:
    x = torch.zeros(2, 6, 10, 14)
    images = torch.tensor([[40, 120, 200], [250, 0, 90]], dtype=torch.uint8)[:, :, None, None]
    out = overlay(x, images.expand(2, 3, 33, 21), alpha=1.0)
    assert torch.equal(out, images.expand(2, 3, 10, 14).repeat(1, 2, 1, 1).float())


# -- image sources --------------------------------------------------------------------------------


def test_procedural_images_deterministic_varied_and_not_the_env_videos() -> None:
    a, b = ProceduralImages(seed=3, num_images=24), ProceduralImages(seed=3, num_images=24)
    assert isinstance(a, ImageSource) and len(a) == 24
    assert torch.equal(a.sample(10, 16, 20, gen(0)), b.sample(10, 16, 20, gen(0)))
    assert not torch.equal(a.bank(16, 20), ProceduralImages(seed=4, num_images=24).bank(16, 20))
    bank = a.bank(16, 20)
    assert bank.shape == (24, 3, 16, 20) and bank.dtype == torch.uint8
    flat = bank.flatten(1).float()
    assert (torch.cdist(flat, flat) + torch.eye(24) * 1e9).min() > 100  # pairwise distinct
    assert (flat.std(dim=1) > 5).all()  # each image has structure
    drawn = a.sample(32, 16, 20, gen(1))
    assert len({img.numpy().tobytes() for img in drawn}) > 10  # samples get different images
    # none is a frame of the clips the video distractions show (same seed, any frame)
    clips = ProceduralVideos(num_videos=24, num_frames=100, seed=3)  # the env default
    env = np.concatenate([clips.frames(i, 16, 20) for i in range(24)])
    env = torch.from_numpy(env).permute(0, 3, 1, 2).flatten(1).float()
    assert torch.cdist(flat, env).min() > 100


COLORS = [(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (30, 230, 230)]


def solid(color: tuple[int, int, int], h: int = 20, w: int = 30) -> np.ndarray:
    return np.broadcast_to(np.array(color, np.uint8), (h, w, 3)).copy()


def assert_colors(images: torch.Tensor, colors: list[tuple[int, int, int]]) -> None:
    means = images.float().mean(dim=(2, 3))
    torch.testing.assert_close(means, torch.tensor(colors).float(), rtol=0, atol=12)


def test_directory_images_load_png_and_jpg_recursively_in_natural_order(tmp_path: Path) -> None:
    write_image(tmp_path / "b" / "10.png", solid(COLORS[2]))
    write_image(tmp_path / "b" / "2.jpg", solid(COLORS[1]))
    write_image(tmp_path / "a.JPEG", solid(COLORS[0]))
    write_image(tmp_path / ".hidden" / "x.png", solid(COLORS[3]))  # hidden: skipped
    write_image(tmp_path / ".skip.png", solid(COLORS[3]))
    (tmp_path / "notes.txt").write_text("not an image")
    source = DirectoryImages(tmp_path, size=(8, 12))
    assert isinstance(source, ImageSource) and len(source) == 3
    assert [p.relative_to(tmp_path).as_posix() for p in source.files] == [
        "a.JPEG",
        "b/2.jpg",
        "b/10.png",
    ]
    assert source.bank(8, 12).shape == (3, 3, 8, 12)
    assert_colors(source.bank(8, 12), COLORS[:3])
    assert_colors(source.bank(16, 16), COLORS[:3])  # another size: resized, colours kept
    drawn = source.sample(20, 8, 12, gen(0))
    assert drawn.shape == (20, 3, 8, 12) and drawn.dtype == torch.uint8
    assert torch.equal(drawn, source.sample(20, 8, 12, gen(0)))


def test_directory_images_cap_keeps_an_evenly_spread_subset(tmp_path: Path) -> None:
    for i, color in enumerate(COLORS):
        write_image(tmp_path / f"{i}.png", solid(color))
    source = DirectoryImages(tmp_path, size=4, max_images=2)
    assert [p.name for p in source.files] == ["0.png", "2.png"]
    assert_colors(source.bank(4, 4), [COLORS[0], COLORS[2]])


def test_directory_images_errors_name_the_path_and_extensions(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'.*missing' does not exist"):
        DirectoryImages(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=r"file\.png' is not a directory"):
        DirectoryImages(tmp_path / "file.png")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"no images found in '.*empty'.*\*\.jpg.*\*\.png"):
        DirectoryImages(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "0.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ValueError, match=r"no readable images in '.*broken'.*0\.jpg"):
        DirectoryImages(broken)
    write_image(broken / "1.png", solid(COLORS[0]))
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image.*0\.jpg"):
        source = DirectoryImages(broken, size=4)
    assert [p.name for p in source.files] == ["1.png"]
    with pytest.raises(ValueError, match="max_images must be an integer >= 1"):
        DirectoryImages(broken, max_images=0)
    with pytest.raises(ValueError, match=r"size must be an int or a \(height, width\) pair"):
        DirectoryImages(broken, size=(8, 8, 3))


# -- by name, and bad input -----------------------------------------------------------------------


def test_strong_augment_by_name() -> None:
    assert AUGMENTATIONS == ("overlay", "conv")
    x = frames(4, 3, 12, 16)
    conv = strong_augment("conv")
    assert isinstance(conv, Augmentation)
    assert torch.equal(conv(x, generator=gen(0)), random_conv(x, generator=gen(0)))
    source = ProceduralImages(seed=0, num_images=8)
    over = strong_augment("overlay", images=source, alpha=1.0)
    assert torch.equal(over(x, generator=gen(1)), overlay(x, source, 1.0, generator=gen(1)))
    default = strong_augment("overlay")(x, generator=gen(1))  # procedural images, alpha 0.5
    assert default.shape == x.shape and default.dtype == x.dtype and not torch.equal(default, x)
    with pytest.raises(ValueError, match=r"name: 'crop' is not valid.*\['overlay', 'conv'\]"):
        strong_augment("crop")
    with pytest.raises(ValueError, match="'overlay' augmentation, not 'conv'"):
        strong_augment("conv", alpha=0.3)
    with pytest.raises(TypeError, match="images must be an ImageSource"):
        strong_augment("overlay", images=torch.zeros(4, 3, 12, 16))


def test_bad_input_is_named() -> None:
    x = frames(2, 2, 8, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3·k, H, W\)"):
        random_shift(x[0])
    with pytest.raises(ValueError, match="pad must be an integer >= 0"):
        random_shift(x, pad=-1)
    with pytest.raises(TypeError, match="x must be uint8 or floating"):
        random_shift(x.long())
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        random_conv(x.numpy())
    with pytest.raises(ValueError, match=r"channels \(4\) must be a multiple of 3"):
        random_conv(x[:, :4])
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\]"):
        overlay(x, torch.zeros(2, 3, 8, 8), alpha=1.5)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, h, w\)"):
        overlay(x, torch.zeros(3, 3, 8, 8))
    with pytest.raises(TypeError, match="images must be an ImageSource"):
        overlay(x, "places365/")
    with pytest.raises(ValueError, match="unknown procedural families"):
        ProceduralImages(families=("clouds",))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_a_cpu_generator() -> None:
    x = frames(16, 3, 12, 16)
    source = ProceduralImages(seed=0, num_images=8)
    for aug in (random_shift, random_conv, strong_augment("overlay", images=source)):
        cpu = aug(x, generator=gen(9))
        cuda = aug(x.cuda(), generator=gen(9))
        assert cuda.device.type == "cuda" and cuda.dtype == x.dtype
        assert (cuda.cpu().float() - cpu.float()).abs().max() <= 1  # conv: rounding may differ
    cuda_gen = torch.Generator(device="cuda").manual_seed(0)
    assert random_shift(x.cuda(), generator=cuda_gen).is_cuda
    assert overlay(x.cuda(), source, generator=cuda_gen).is_cuda
