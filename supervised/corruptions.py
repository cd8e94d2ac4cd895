"""Seeded image corruptions for small images, and the corruption-robustness numbers (accuracy
per kind × severity, mCA, mCE against a reference, relative drop).

The kinds follow the corruption families of Hendrycks & Dietterich (ICLR 2019), reimplemented in
torch for images of 8×8 to 32×32 pixels, ``(N, C, H, W)`` floats in [0, 1], applied *before*
normalisation and clamped back to [0, 1]. They are not the published corrupted datasets and are
not named after them: the parameters (:data:`CORRUPTIONS`, docs/supervised.md) are chosen for
small images. Left out, because they mean little at these sizes: defocus and zoom blur (at 8×8
both are a Gaussian blur under another name), glass blur and elastic warps (a displacement of
one pixel is already a large share of the image), snow, frost, fog and spatter (their textures
are larger than the image; frost needs photographs).

Randomness comes from a CPU generator seeded with ``seed`` and moved to the images' device, so
the same seed gives the same tensors on any device, and the same draws at every severity (the
severities differ only in strength, which keeps comparisons across them low-variance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from sparse_rl.validation import ConfigError, check_choice, check_int

from . import metrics

SEVERITIES = (1, 2, 3, 4, 5)

#: Pixel ranges above 1 or below 0 by more than this are an error (not rounding noise).
_RANGE_SLACK = 1e-4


@dataclass(frozen=True)
class Corruption:
    """One kind: its parameter at severities 1–5 and what the parameter means."""

    name: str
    params: tuple[float, ...]
    parameter: str
    apply: Callable[[Tensor, float, torch.Generator], Tensor]


def _noise(shape: torch.Size, g: torch.Generator, like: Tensor, uniform: bool = False) -> Tensor:
    """Draws on the CPU, then moved: the same seed gives the same tensor on every device."""
    draw = torch.rand if uniform else torch.randn
    return draw(shape, generator=g, dtype=like.dtype).to(like.device)


def _gaussian_noise(x: Tensor, sigma: float, g: torch.Generator) -> Tensor:
    return x + sigma * _noise(x.shape, g, x)


def _shot_noise(x: Tensor, photons: float, g: torch.Generator) -> Tensor:
    # Poisson photon counts: the noise grows with the pixel's brightness
    counts = torch.poisson(x.detach().cpu().clamp(0, 1) * photons, generator=g)
    return (counts / photons).to(x.device, x.dtype)


def _impulse_noise(x: Tensor, amount: float, g: torch.Generator) -> Tensor:
    # salt and pepper: the same uniform draws at each severity, so the hit pixels are nested
    u = _noise(x.shape, g, x, uniform=True)
    out = torch.where(u < amount / 2, torch.zeros_like(x), x)
    return torch.where((u >= amount / 2) & (u < amount), torch.ones_like(x), out)


def _speckle_noise(x: Tensor, sigma: float, g: torch.Generator) -> Tensor:
    return x + x * sigma * _noise(x.shape, g, x)


def _gaussian_blur(x: Tensor, sigma: float, g: torch.Generator) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    n, c, h, w = x.shape
    flat = F.pad(x.reshape(n * c, 1, h, w), (radius,) * 4, mode="replicate")
    flat = F.conv2d(flat, k.view(1, 1, 1, -1))  # separable: rows, then columns
    flat = F.conv2d(flat, k.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def _motion_blur(x: Tensor, sigma: float, g: torch.Generator) -> Tensor:
    """A one-sided Gaussian smear along a line at a random angle in [−45°, 45°] per image."""
    n, c, h, w = x.shape
    radius = max(1, math.ceil(3 * sigma))
    angle = (_noise(torch.Size([n]), g, x, uniform=True) - 0.5) * (math.pi / 2)
    t = torch.arange(radius + 1, dtype=x.dtype, device=x.device)  # distance along the line
    weight = torch.exp(-(t**2) / (2 * sigma**2))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    dx = t[None, :] * torch.cos(angle)[:, None]  # (n, points)
    dy = t[None, :] * torch.sin(angle)[:, None]
    # bilinear splat of each point into a (2r+1)² kernel: tent(x) · tent(y)
    tx = (1 - (grid[None, None, :] - dx[..., None]).abs()).clamp(min=0)
    ty = (1 - (grid[None, None, :] - dy[..., None]).abs()).clamp(min=0)
    kernel = torch.einsum("npi,npj,p->nij", ty, tx, weight)
    kernel = kernel / kernel.sum(dim=(1, 2), keepdim=True)
    kernel = kernel.repeat_interleave(c, dim=0).unsqueeze(1)  # (n·c, 1, k, k)
    flat = F.pad(x.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    return F.conv2d(flat, kernel, groups=n * c).reshape(n, c, h, w)


def _contrast(x: Tensor, factor: float, g: torch.Generator) -> Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)  # per image and channel
    return (x - mean) * factor + mean


def _brightness(x: Tensor, shift: float, g: torch.Generator) -> Tensor:
    """Adds ``shift`` to the HSV value (the largest channel), hue and saturation kept: grey
    images get ``x + shift``; colour ones are scaled so their largest channel moves by it."""
    value = x.amax(dim=1, keepdim=True)
    brighter = (value + shift).clamp(max=1)
    scaled = x * brighter / value.clamp(min=1e-12)
    return torch.where(value > 0, scaled, brighter.expand_as(x))


def _box_matrix(n_in: int, n_out: int, like: Tensor) -> Tensor:
    """(n_out, n_in): each output cell's area-weighted mean of the input cells it overlaps, the
    cells of both sides spanning the same length (box resampling, any ratio)."""
    edges_in = torch.arange(n_in + 1, dtype=torch.float64) / n_in
    edges_out = torch.arange(n_out + 1, dtype=torch.float64) / n_out
    low = torch.maximum(edges_out[:-1, None], edges_in[None, :-1])
    high = torch.minimum(edges_out[1:, None], edges_in[None, 1:])
    overlap = (high - low).clamp(min=0)
    return (overlap / overlap.sum(dim=1, keepdim=True)).to(like)


def _pixelate(x: Tensor, ratio: float, g: torch.Generator) -> Tensor:
    """Box-downsample to ``round(side · ratio)`` pixels a side, box-upsample back. Exact area
    weights both ways: nearest-neighbour upsampling by a non-integer ratio shifts the image by
    up to a pixel, which at 8×8 made a milder severity farther from the clean image."""
    h, w = x.shape[-2:]
    small_h, small_w = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    rows = _box_matrix(small_h, h, x) @ _box_matrix(h, small_h, x)  # (h, h)
    cols = _box_matrix(small_w, w, x) @ _box_matrix(w, small_w, x)
    return rows @ x @ cols.T


# JPEG (ITU T.81 Annex K) quantisation tables, scaled by quality as libjpeg does
_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8 for _ in range(4)),
)
_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def _quant_table(base: tuple[tuple[int, ...], ...], quality: float, like: Tensor) -> Tensor:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    table = torch.tensor(base, dtype=like.dtype, device=like.device)
    return torch.floor((table * scale + 50) / 100).clamp(1, 255)


def _jpeg(x: Tensor, quality: float, g: torch.Generator) -> Tensor:
    """JPEG's lossy steps: 8-bit pixels, 8×8 block DCT, quantisation at ``quality`` (luminance
    table; colour images go through YCbCr with the chrominance table for Cb and Cr; no chroma
    subsampling). Entropy coding is lossless and left out."""
    n, c, h, w = x.shape
    pixels = torch.round(x.clamp(0, 1) * 255)
    tables = [_quant_table(_LUMA, quality, x)] * c
    if c == 3:
        to_ycc = torch.tensor(_YCBCR, dtype=x.dtype, device=x.device)
        pixels = torch.einsum("kc,nchw->nkhw", to_ycc, pixels)
        offset = torch.tensor([0, 128, 128], dtype=x.dtype, device=x.device)[:, None, None]
        pixels = torch.round(pixels + offset)
        tables = [tables[0], *[_quant_table(_CHROMA, quality, x)] * 2]
    pad_h, pad_w = -h % 8, -w % 8
    blocks = F.pad(pixels - 128, (0, pad_w, 0, pad_h), mode="replicate")
    blocks = blocks.unfold(2, 8, 8).unfold(3, 8, 8)  # (n, c, H/8, W/8, 8, 8)
    i = torch.arange(8, dtype=x.dtype, device=x.device)
    dct = torch.cos((2 * i[None, :] + 1) * i[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    dct[0] /= math.sqrt(2)  # orthonormal DCT-II: the same coefficients as JPEG's
    table = torch.stack(tables).view(1, c, 1, 1, 8, 8)
    coeffs = dct @ blocks @ dct.T
    blocks = dct.T @ (torch.round(coeffs / table) * table) @ dct
    hb, wb = blocks.shape[2:4]
    out = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, hb * 8, wb * 8)[..., :h, :w] + 128
    if c == 3:
        to_rgb = torch.linalg.inv(torch.tensor(_YCBCR, dtype=torch.float64)).to(x)
        out = out - offset
        out = torch.einsum("kc,nchw->nkhw", to_rgb, out)
    return torch.round(out.clamp(0, 255)) / 255


#: Every kind, with its parameter at severities 1 to 5 (documented in docs/supervised.md).
CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption("gaussian_noise", (0.08, 0.12, 0.18, 0.26, 0.38), "σ of added N(0, σ²)",
                   _gaussian_noise),
        Corruption("shot_noise", (60, 25, 12, 5, 3), "photons λ: Poisson(λx)/λ", _shot_noise),
        Corruption("impulse_noise", (0.03, 0.06, 0.09, 0.17, 0.27), "share of values set to 0 or 1",
                   _impulse_noise),
        Corruption("speckle_noise", (0.15, 0.2, 0.35, 0.45, 0.6), "σ of x·N(0, σ²) added",
                   _speckle_noise),
        Corruption("gaussian_blur", (0.4, 0.6, 0.8, 1.0, 1.3), "σ in pixels", _gaussian_blur),
        Corruption("motion_blur", (0.5, 0.75, 1.0, 1.5, 2.0), "σ in pixels along a random line",
                   _motion_blur),
        Corruption("contrast", (0.75, 0.5, 0.4, 0.3, 0.15), "factor towards the image mean",
                   _contrast),
        Corruption("brightness", (0.1, 0.2, 0.3, 0.4, 0.5), "added to the HSV value",
                   _brightness),
        Corruption("pixelate", (0.875, 0.75, 0.625, 0.5, 0.375), "side ratio of the coarse image",
                   _pixelate),
        Corruption("jpeg", (25, 18, 15, 10, 7), "JPEG quality", _jpeg),
    )
}  # fmt: skip
KINDS = tuple(CORRUPTIONS)


def check_severity(severity: Any) -> int:
    """``severity`` as an int if it is one of 1..5, else an error naming it and the choices."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        ok = False
    else:
        ok = int(severity) in SEVERITIES
    if not ok:
        raise ConfigError(f"severity: {severity!r} is not valid; choose one of {list(SEVERITIES)}.")
    return int(severity)


def check_images(images: Any, name: str = "images") -> Tensor:
    """A float tensor ``(N, C, H, W)`` with values in [0, 1], or an error saying what is wrong."""
    x = images if isinstance(images, Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floats in [0, 1], got dtype {x.dtype}.")
    if x.numel() and (x.min() < -_RANGE_SLACK or x.max() > 1 + _RANGE_SLACK):
        raise ValueError(
            f"{name} must lie in [0, 1] (corrupt before normalising), got values in "
            f"[{x.min().item():.4g}, {x.max().item():.4g}]."
        )
    return x


def corrupt(images: Any, kind: str, severity: int, seed: int = 0) -> Tensor:
    """``images`` (N, C, H, W) in [0, 1] corrupted by ``kind`` at ``severity`` (1–5), clamped.

    The same ``seed`` gives the same tensor, and the same random draws at every severity.
    """
    kind = check_choice("kind", kind, KINDS)
    severity = check_severity(severity)
    seed = check_int("seed", seed, 0)
    x = check_images(images)
    spec = CORRUPTIONS[kind]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return spec.apply(x.detach(), float(spec.params[severity - 1]), g).clamp(0, 1)


def item_seed(seed: int, index: int) -> int:
    """The seed :class:`CorruptedDataset` uses for item ``index``: independent per item, the same
    whatever order the items are read in."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> 1)


class CorruptedDataset(Dataset):
    """A view of ``dataset`` with each image corrupted, for users' own images.

    Items are ``(image, target, ...)`` tuples or bare images, the image a ``(C, H, W)`` (or
    ``(H, W)``) float tensor or array in [0, 1], e.g. torchvision's ``ToTensor()`` output.
    Item ``i`` is corrupted with seed :func:`item_seed(seed, i) <item_seed>`: the same on every
    read, in any order, with any number of workers.
    """

    def __init__(self, dataset: Dataset, kind: str, severity: int, seed: int = 0) -> None:
        self.dataset = dataset
        self.kind = check_choice("kind", kind, KINDS)
        self.severity = check_severity(severity)
        self.seed = check_int("seed", seed, 0)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        rest: tuple[Any, ...] | None = None
        if isinstance(item, (tuple, list)):
            item, rest = item[0], tuple(item[1:])
        image = item if isinstance(item, Tensor) else torch.as_tensor(np.asarray(item))
        flat = image.ndim == 2
        batch = image[None, None] if flat else image[None]
        out = corrupt(batch, self.kind, self.severity, item_seed(self.seed, index))[0]
        out = out[0] if flat else out
        return out if rest is None else (out, *rest)


@dataclass(frozen=True)
class CorruptionReport:
    """Accuracies of one model under each corruption, and the summaries derived from them.

    ``accuracy[kind]`` holds one accuracy per entry of ``severities``. ``mca`` is their mean over
    kinds and severities; ``relative_drop`` = (clean − mCA) / clean. With a reference:
    ``ce[kind]`` = Σ_s error(kind, s) / Σ_s reference error(kind, s), ``mce`` their mean, and
    ``relative_mce`` the same on errors minus each model's clean error (NaN where a reference
    denominator is 0: the reference makes no mistakes there).
    """

    clean_accuracy: float
    accuracy: dict[str, tuple[float, ...]]
    severities: tuple[int, ...]
    ce: dict[str, float] | None = None
    relative_ce: dict[str, float] | None = None

    @property
    def mca(self) -> float:
        """Mean corruption accuracy over every kind and severity."""
        return float(np.mean([a for row in self.accuracy.values() for a in row]))

    @property
    def relative_drop(self) -> float:
        """(clean − mCA) / clean: the share of clean accuracy the corruptions take away."""
        return (self.clean_accuracy - self.mca) / self.clean_accuracy

    @property
    def mce(self) -> float | None:
        """Mean corruption error relative to the reference (1.0 = as robust as it; lower is
        better); None without a reference."""
        return None if self.ce is None else float(np.mean(list(self.ce.values())))

    @property
    def relative_mce(self) -> float | None:
        """Mean of each kind's error *increase* over clean, relative to the reference's."""
        if self.relative_ce is None:
            return None
        return float(np.mean(list(self.relative_ce.values())))

    def error_table(self) -> dict[str, Any]:
        """``{kind: (error per severity), "clean": clean error}``: what ``reference=`` takes."""
        table: dict[str, Any] = {k: tuple(1 - a for a in v) for k, v in self.accuracy.items()}
        table["clean"] = 1 - self.clean_accuracy
        return table

    def markdown(self) -> str:
        """A table: one row per kind, one column per severity, then the summaries."""
        head = "| kind | " + " | ".join(f"s{s}" for s in self.severities) + " | mean |"
        rows = [head, "|---" * (len(self.severities) + 2) + "|"]
        for kind, accs in self.accuracy.items():
            cells = " | ".join(f"{a:.3f}" for a in accs)
            rows.append(f"| {kind} | {cells} | {np.mean(accs):.3f} |")
        summary = f"clean {self.clean_accuracy:.3f}, mCA {self.mca:.3f}, "
        summary += f"relative drop {self.relative_drop:.3f}"
        if self.mce is not None:
            summary += f", mCE {self.mce:.3f}, relative mCE {self.relative_mce:.3f}"
        return "\n".join([*rows, "", summary])


Reference = nn.Module | CorruptionReport | Mapping[str, Any]


class CorruptionBenchmark:
    """Evaluate models on seeded corruptions of the same images.

    :param kinds: the kinds to use (default: all of :data:`KINDS`).
    :param severities: the severities to use (default 1–5; mCA and mCE average over these).
    :param seed: every kind is drawn with this seed, so two models evaluated by the same
        benchmark see identical corrupted images.
    :param batch_size: images per forward pass.
    """

    def __init__(
        self,
        kinds: Sequence[str] | None = None,
        severities: Sequence[int] = SEVERITIES,
        seed: int = 0,
        batch_size: int = 1024,
    ) -> None:
        if isinstance(kinds, str):
            kinds = [kinds]
        chosen = KINDS if kinds is None else kinds
        self.kinds = tuple(check_choice("kind", k, KINDS) for k in chosen)
        self.severities = tuple(check_severity(s) for s in severities)
        if not self.kinds or not self.severities:
            raise ConfigError("kinds and severities must each name at least one.")
        self.seed = check_int("seed", seed, 0)
        self.batch_size = check_int("batch_size", batch_size)

    def corrupt(self, images: Any, kind: str, severity: int) -> Tensor:
        """The corrupted images this benchmark evaluates on."""
        return corrupt(images, kind, severity, self.seed)

    def evaluate(
        self, model: nn.Module, images: Any, labels: Any, reference: Reference | None = None
    ) -> CorruptionReport:
        """Accuracy of ``model`` on the clean images and on every kind × severity.

        :param model: maps ``(N, C, H, W)`` images in [0, 1] to logits (put normalisation and
            flattening inside the model, e.g. ``nn.Sequential(nn.Flatten(), mlp)``).
        :param reference: for mCE: another model (evaluated on the same corrupted images), its
            :class:`CorruptionReport`, or an error table ``{kind: errors per severity, "clean":
            error}`` (``"clean"`` only needed for the relative mCE).
        """
        x = check_images(images)
        y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels)
        if y.shape != (len(x),):
            raise ValueError(f"labels must have shape ({len(x)},), got {tuple(y.shape)}.")
        clean = self._accuracy(model, x, y)
        table = {
            k: tuple(self._accuracy(model, self.corrupt(x, k, s), y) for s in self.severities)
            for k in self.kinds
        }
        report = CorruptionReport(clean, table, self.severities)
        if reference is None:
            return report
        if isinstance(reference, nn.Module):
            reference = self.evaluate(reference, x, y)
        if isinstance(reference, CorruptionReport):
            reference = reference.error_table()
        ce, rel = self._relative(report, reference)
        return CorruptionReport(clean, table, self.severities, ce, rel)

    def _relative(
        self, report: CorruptionReport, reference: Mapping[str, Any]
    ) -> tuple[dict[str, float], dict[str, float] | None]:
        mine = report.error_table()
        ce: dict[str, float] = {}
        rel: dict[str, float] | None = {} if "clean" in reference else None
        for kind in self.kinds:
            if kind not in reference:
                raise ValueError(
                    f"reference: no errors for kind {kind!r}; it has {sorted(reference)}."
                )
            ref = np.asarray(reference[kind], dtype=np.float64)
            if ref.shape != (len(self.severities),):
                raise ValueError(
                    f"reference[{kind!r}]: expected {len(self.severities)} errors (severities "
                    f"{list(self.severities)}), got {ref.tolist()!r}."
                )
            err = np.asarray(mine[kind])
            ce[kind] = _ratio(err.sum(), ref.sum())
            if rel is not None:
                clean_ref = float(reference["clean"])
                rel[kind] = _ratio((err - mine["clean"]).sum(), (ref - clean_ref).sum())
        return ce, rel

    def _accuracy(self, model: nn.Module, x: Tensor, y: Tensor) -> float:
        return metrics.accuracy(predict(model, x, self.batch_size), y)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else math.nan


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 1024) -> Tensor:
    """``model``'s outputs on ``images`` in eval mode, batched on the model's device, on the CPU;
    the model's train/eval mode is restored afterwards."""
    param = next(model.parameters(), None)
    device = images.device if param is None else param.device
    was_training = model.training
    model.eval()
    try:
        outs = [model(b.to(device)).cpu() for b in images.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs)
