"""Pixel encoders for visual SAC."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from sparse_rl.agents.visual.encoders import PixelEncoder

SPACE = gym.spaces.Box(0, 255, (9, 84, 84), np.uint8)


def test_gb_encoder_matches_dmcontrol_gb() -> None:
    encoder = PixelEncoder(SPACE, arch="gb")
    assert len([m for m in encoder.convs if isinstance(m, torch.nn.Conv2d)]) == 11
    assert encoder.conv_output == 32 * 21 * 21 and encoder.features_dim == 100


def test_small_encoder_output() -> None:
    encoder = PixelEncoder(SPACE)
    assert encoder.conv_output == 32 * 18 * 18 and encoder.features_dim == 50
    out = encoder(torch.rand(4, 9, 84, 84))
    assert out.shape == (4, 50) and out.abs().max() <= 1  # tanh after LayerNorm


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="arch: 'huge' is not valid"):
        PixelEncoder(SPACE, arch="huge")
    with pytest.raises(ValueError, match="channels, height, width"):
        PixelEncoder(gym.spaces.Box(0, 1, (10,)))
