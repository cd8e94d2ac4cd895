"""Conv encoders for pixel SAC, as SB3 features extractors (inputs scaled to [0, 1] by SB3).

``"gb"`` is DMControl-GB's: 11 conv layers of 32 filters (the first with stride 2), so 84×84
becomes 32×21×21, then a projection to 100 features with LayerNorm and tanh. It is the paper
configuration and needs a GPU. ``"small"`` (default) keeps the same design with 3 layers, two of
them strided (84×84 → 32×18×18), projected to 50 features: about 40× fewer multiply-adds, which
makes CPU runs feasible (one SAC update with the GB encoder takes 146 ms at batch 32 on 2 cores:
benchmarks/results/visual_update_speed_gb.md).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn

from sparse_rl.validation import check_choice

#: name -> (conv strides, features)
ENCODERS: dict[str, tuple[tuple[int, ...], int]] = {
    "gb": ((2,) + (1,) * 10, 100),
    "small": ((2, 2, 1), 50),
}


class PixelEncoder(BaseFeaturesExtractor):
    """Conv stack → Linear → LayerNorm → tanh, on (3·k, H, W) observations.

    :param arch: "small" (CPU default) or "gb" (DMControl-GB's 11-layer encoder).
    :param filters: conv channels (32 in both).
    """

    def __init__(self, observation_space: gym.Space, arch: str = "small", filters: int = 32):
        check_choice("arch", arch, ENCODERS)
        shape = observation_space.shape
        if shape is None or len(shape) != 3:
            raise ValueError(
                f"PixelEncoder needs (channels, height, width) observations, got {shape}."
            )
        strides, features = ENCODERS[arch]
        super().__init__(observation_space, features)
        layers: list[nn.Module] = []
        channels = shape[0]
        for stride in strides:
            layers += [nn.Conv2d(channels, filters, 3, stride=stride), nn.ReLU()]
            channels = filters
        self.convs = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *shape)).shape[1]
        self.projection = nn.Sequential(
            nn.Linear(flat, features), nn.LayerNorm(features), nn.Tanh()
        )
        self.conv_output = flat

    def forward(self, observations: Tensor) -> Tensor:
        return self.projection(self.convs(observations))
