"""MaDi's Masker: a tiny conv net that outputs one soft mask per RGB frame (MaDi, 2024).

x/255 → Conv(3→32) → ReLU → Conv(32→32) → ReLU → Conv(32→1) → sigmoid, all 3×3 with padding 1:
10,433 parameters. The mask multiplies the raw pixels of its frame before the encoder, so
distracting pixels are hidden from actor and critic. It learns from the critic loss alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sparse_rl.validation import check_choice

MASK_MODES = ("soft", "hard", "mixed")
THRESHOLDS = ("fixed", "mean", "quantile")


class Masker(nn.Module):
    """Per-frame soft masks for stacked RGB observations (B, 3·k, H, W).

    :param mode: "soft" (default, MaDi) multiplies by the sigmoid output; "hard" by a 0/1 mask
        (straight-through gradients, so the Masker still learns); "mixed" is soft while
        training and hard in eval mode (acting and evaluation).
    :param threshold: how a hard mask is cut: "fixed" at ``value`` (0.5), at the frame's "mean"
        mask value, or at its ``value``-"quantile".
    :param pixel_max: the value of a white pixel in the input: 255 for raw uint8 frames, 1.0 for
        frames SB3 has already scaled. The net always sees [0, 1]; the mask multiplies the input.
    """

    def __init__(
        self,
        channels: int = 32,
        mode: str = "soft",
        threshold: str = "fixed",
        value: float = 0.5,
        pixel_max: float = 255.0,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, MASK_MODES)
        check_choice("threshold", threshold, THRESHOLDS)
        if not 0.0 < value < 1.0:
            raise ValueError(f"value must be in (0, 1), got {value!r}.")
        if pixel_max <= 0:
            raise ValueError(f"pixel_max must be > 0, got {pixel_max!r}.")
        self.mode, self.threshold, self.value, self.pixel_max = mode, threshold, value, pixel_max
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 1, 3, padding=1),
            nn.Sigmoid(),
        ).to(memory_format=torch.channels_last)

    def masks(self, obs: Tensor) -> Tensor:
        """Soft masks (B, k, H, W) in [0, 1] of the k RGB frames of ``obs`` (B, 3·k, H, W)."""
        if obs.dim() != 4 or obs.shape[1] % 3:
            raise ValueError(
                f"obs must be (batch, 3·frames, height, width), got shape {tuple(obs.shape)}."
            )
        b, c, h, w = obs.shape
        frames = obs.reshape(b * c // 3, 3, h, w).float() / self.pixel_max
        # Channels-last convolutions: 2x faster forward + backward on CPU at 84x84 (measured in
        # benchmarks/results/visual_update_speed_small.md); the single-channel output has the
        # same memory layout either way.
        frames = frames.contiguous(memory_format=torch.channels_last)
        return self.net(frames).reshape(b, c // 3, h, w)

    def _harden(self, soft: Tensor) -> Tensor:
        if self.threshold == "fixed":
            cut = torch.full_like(soft[..., :1, :1], self.value)
        elif self.threshold == "mean":
            cut = soft.mean(dim=(-2, -1), keepdim=True)
        else:
            flat = soft.flatten(-2)
            cut = torch.quantile(flat, self.value, dim=-1).unsqueeze(-1).unsqueeze(-1)
        hard = (soft > cut).to(soft.dtype)
        return hard + soft - soft.detach()  # straight-through: forward hard, backward soft

    def forward(self, obs: Tensor) -> Tensor:
        """``obs`` with every frame multiplied by its mask (float, same value range as ``obs``)."""
        masks = self.masks(obs)
        if self.mode == "hard" or (self.mode == "mixed" and not self.training):
            masks = self._harden(masks)
        b, c, h, w = obs.shape
        frames = obs.float().reshape(b, c // 3, 3, h, w) * masks.unsqueeze(2)
        return frames.reshape(b, c, h, w)


def mask_quality(masks: Tensor, agent: Tensor, threshold: float = 0.5) -> dict[str, float]:
    """How well soft ``masks`` match the ground-truth ``agent`` pixels (None of the anchors does).

    :param masks: (N, H, W) mask values in [0, 1] (e.g. the last frame's mask per observation).
    :param agent: (N, H, W) bool, True on the agent's pixels (the envs' ``info["agent_mask"]``).
    :returns: IoU, precision and recall of ``masks > threshold`` against ``agent``, and the mean
        mask value on agent and on background pixels.
    """
    if masks.shape != agent.shape:
        raise ValueError(
            f"masks and agent must have the same shape, got {tuple(masks.shape)} and "
            f"{tuple(agent.shape)}."
        )
    agent = agent.bool()
    kept = masks > threshold
    tp = float((kept & agent).sum())
    fp = float((kept & ~agent).sum())
    fn = float((~kept & agent).sum())
    nan = float("nan")
    return {
        "iou": tp / (tp + fp + fn) if tp + fp + fn else nan,
        "precision": tp / (tp + fp) if tp + fp else nan,
        "recall": tp / (tp + fn) if tp + fn else nan,
        "mean_agent": float(masks[agent].mean()) if agent.any() else nan,
        "mean_background": float(masks[~agent].mean()) if (~agent).any() else nan,
    }
