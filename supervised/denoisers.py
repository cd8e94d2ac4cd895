"""Denoisers for :class:`~sparse_rl.supervised.Diffusion`: ``forward(x_t, t) -> ε̂`` with ``t`` the
integer timesteps ``(batch,)``, and a ``sample_shape`` attribute saying what one sample is.

Layer names carry the sparsity default (``DENSE_LAYERS``): the input layer (``stem``), every
time-embedding layer (``time_mlp``, the UNet blocks' ``time_proj``) and the output layer
(``head``) stay dense; the hidden layers, where almost all weights are, are the ones
:func:`~sparse_rl.supervised.train_diffusion` makes sparse. All are plain Linear / Conv2d
layers, so the core masks them like any other.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_int

#: Globs on layer names kept dense by default: input layer, time embedding, output layer.
DENSE_LAYERS = ("*stem*", "*time*", "*head*")


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """The transformer's sinusoidal embedding of (integer or real) timesteps: ``(batch, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([angles.cos(), angles.sin()], dim=1)
    return F.pad(emb, (0, dim % 2))


class MLPDenoiser(nn.Module):
    """ε-prediction for vector data: ``stem(x) + time_mlp(emb(t))`` → SiLU → ``depth`` hidden
    ``Linear(width, width)`` + SiLU layers → ``head``.

    The time signal enters once, at the input: the hidden stack is then an ``nn.Sequential`` of
    Linear layers (``hidden``), which the core's CSR inference can convert as a whole.

    :param dim: features of one sample.
    :param width: hidden units of every layer.
    :param depth: hidden ``width × width`` layers (the sparse ones by default).
    :param time_dim: size of the sinusoidal time embedding.
    """

    def __init__(self, dim: int, width: int = 128, depth: int = 3, time_dim: int = 32) -> None:
        super().__init__()
        dim, width = check_int("dim", dim), check_int("width", width)
        depth, self.time_dim = check_int("depth", depth), check_int("time_dim", time_dim, 2)
        self.sample_shape: tuple[int, ...] = (dim,)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, width)
        )
        self.stem = nn.Linear(dim, width)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.SiLU()]
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(width, dim)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.time_dim))
        return self.head(self.hidden(F.silu(self.stem(x) + emb)))

    def sparse_inference(
        self, batch: int = 1024, min_speedup: float = 1.1
    ) -> tuple[MLPDenoiser, list[sn.CSRDecision]]:
        """A copy for sampling: masks folded in (:func:`sn.densify`), and each hidden Linear run
        as CSR where :func:`sn.sparse_inference` times it faster at ``batch`` rows (the
        sampling batch). Returns the copy and the core's per-layer decisions."""
        batch = check_int("batch", batch)
        copy = sn.densify(self)
        width = self.stem.out_features
        with sn.seeded(0):  # timing input only; the caller's stream is untouched
            example = torch.randn(batch, width)
        copy.hidden, decisions = sn.sparse_inference(copy.hidden, example, min_speedup)
        return copy, decisions


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv3×3, plus the projected time embedding, → GroupNorm → SiLU →
    conv3×3, with a 1×1 ``skip`` when the widths differ."""

    def __init__(self, channels_in: int, channels_out: int, time_width: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(math.gcd(groups, channels_in), channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.time_proj = nn.Linear(time_width, channels_out)
        self.norm2 = nn.GroupNorm(math.gcd(groups, channels_out), channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        same = channels_in == channels_out
        self.skip = nn.Identity() if same else nn.Conv2d(channels_in, channels_out, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class TinyUNet(nn.Module):
    """A two-level UNet for small images (8×8 digits): ``stem`` → ResBlock at full size →
    stride-2 conv → ResBlock at half size → upsample + conv → ResBlock on the concatenated skip →
    ``head`` (GroupNorm, SiLU, conv to the image channels).

    :param channels: image channels.
    :param image_size: height = width, even.
    :param width: channels at full size (twice that at half size).
    :param time_dim: size of the sinusoidal time embedding (``time_mlp`` maps it to ``width``).
    :param groups: GroupNorm groups (reduced to a divisor of each width).
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 8,
        width: int = 16,
        time_dim: int = 32,
        groups: int = 8,
    ) -> None:
        super().__init__()
        channels, width = check_int("channels", channels), check_int("width", width)
        image_size, groups = check_int("image_size", image_size, 2), check_int("groups", groups)
        if image_size % 2:
            raise ValueError(f"image_size must be even (one 2× downsampling), got {image_size}.")
        self.time_dim = check_int("time_dim", time_dim, 2)
        self.sample_shape: tuple[int, ...] = (channels, image_size, image_size)
        wide = 2 * width
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width)
        )
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = ResBlock(width, width, width, groups)
        self.downsample = nn.Conv2d(width, wide, 3, stride=2, padding=1)
        self.mid = ResBlock(wide, wide, width, groups)
        self.upsample = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(wide, width, 3, padding=1)
        )
        self.up = ResBlock(wide, width, width, groups)
        self.head = nn.Sequential(
            nn.GroupNorm(math.gcd(groups, width), width),
            nn.SiLU(),
            nn.Conv2d(width, channels, 3, padding=1),
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.time_dim))
        skip = self.down(self.stem(x), emb)
        h = self.mid(self.downsample(skip), emb)
        h = self.up(torch.cat([self.upsample(h), skip], dim=1), emb)
        return self.head(h)
