"""MaDi's Masker and the mask-quality scores."""

from __future__ import annotations

import pytest
import torch
from sparse_rl.agents.visual.masker import Masker, mask_quality


def obs(batch: int = 2, frames: int = 3, size: int = 12) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 3 * frames, size, size), dtype=torch.uint8)


def test_masker_has_madis_parameter_count() -> None:
    assert sum(p.numel() for p in Masker().parameters()) == 10_433


def test_one_mask_per_frame_multiplies_its_pixels() -> None:
    masker = Masker()
    x = obs()
    masks = masker.masks(x)
    assert masks.shape == (2, 3, 12, 12) and masks.min() >= 0 and masks.max() <= 1
    out = masker(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    for frame in range(3):
        rgb = slice(3 * frame, 3 * frame + 3)
        expected = x[:, rgb].float() * masks[:, frame : frame + 1]
        torch.testing.assert_close(out[:, rgb], expected)


def test_each_frame_is_masked_independently() -> None:
    masker = Masker()
    x = obs(batch=1)
    changed = x.clone()
    changed[:, 6:9] = 255 - changed[:, 6:9]  # only the third frame differs
    a, b = masker.masks(x), masker.masks(changed)
    torch.testing.assert_close(a[:, :2], b[:, :2])
    assert not torch.allclose(a[:, 2], b[:, 2])


def test_gradients_reach_the_masker() -> None:
    masker = Masker(mode="hard")  # straight-through: a hard mask still trains
    masker(obs()).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in masker.parameters())


@pytest.mark.parametrize("threshold", ["fixed", "mean", "quantile"])
def test_hard_masks_are_binary(threshold: str) -> None:
    masker = Masker(mode="hard", threshold=threshold, value=0.5)
    x = obs()
    out, masks = masker(x), masker.masks(x)
    hard = out.reshape(2, 3, 3, 12, 12)[:, :, 0] / x.float().reshape(2, 3, 3, 12, 12)[:, :, 0]
    valid = x.reshape(2, 3, 3, 12, 12)[:, :, 0] > 0
    assert set(hard[valid].round().unique().tolist()) <= {0.0, 1.0}
    if threshold == "quantile":  # half of each frame's pixels are kept
        kept = (masks > masks.flatten(-2).quantile(0.5, dim=-1)[..., None, None]).float()
        assert abs(kept.mean().item() - 0.5) < 0.05


def test_mixed_is_soft_in_training_and_hard_in_eval() -> None:
    masker = Masker(mode="mixed")
    x = obs()
    soft = masker(x)  # a new module is in training mode
    masks = masker.masks(x)
    torch.testing.assert_close(soft, x.float() * masks.repeat_interleave(3, dim=1))
    masker.eval()
    hard = masker(x)
    expected = x.float() * (masks > 0.5).float().repeat_interleave(3, dim=1)
    torch.testing.assert_close(hard, expected)


def test_bad_settings_and_shapes() -> None:
    with pytest.raises(ValueError, match="mode: 'binary' is not valid"):
        Masker(mode="binary")
    with pytest.raises(ValueError, match="threshold: 'median' is not valid"):
        Masker(threshold="median")
    with pytest.raises(ValueError, match="value must be in"):
        Masker(value=1.0)
    with pytest.raises(ValueError, match="3·frames"):
        Masker().masks(torch.zeros(1, 4, 8, 8))


def test_mask_quality_scores() -> None:
    agent = torch.zeros(1, 4, 4, dtype=torch.bool)
    agent[0, :2, :2] = True  # 4 agent pixels
    masks = torch.zeros(1, 4, 4)
    masks[0, :2, :2] = 0.9  # all agent pixels kept
    masks[0, 3, :2] = 0.8  # plus 2 background pixels
    q = mask_quality(masks, agent)
    assert q["precision"] == pytest.approx(4 / 6) and q["recall"] == 1.0
    assert q["iou"] == pytest.approx(4 / 6)
    assert q["mean_agent"] == pytest.approx(0.9)
    assert q["mean_background"] == pytest.approx(1.6 / 12)
    with pytest.raises(ValueError, match="same shape"):
        mask_quality(masks, agent[:, :2])


def test_scaled_input_gives_the_same_masks() -> None:
    masker = Masker()
    x = obs()
    scaled = Masker(pixel_max=1.0)
    scaled.load_state_dict(masker.state_dict())
    torch.testing.assert_close(scaled.masks(x.float() / 255), masker.masks(x))
    torch.testing.assert_close(scaled(x.float() / 255) * 255, masker(x), rtol=1e-5, atol=1e-4)
