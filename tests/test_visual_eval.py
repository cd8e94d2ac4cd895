"""Evaluating pixel agents across distraction modes: table, mask quality, pictures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sparse_rl.agents.visual.agent import VisualSAC
from sparse_rl.agents.visual.evaluation import DistractionEval, evaluate_modes
from stable_baselines3.common.logger import configure

from sparse_rl import envs

ENV = {"size": 16, "action_repeat": 8, "episode_length": 40}


def agent(method: str) -> VisualSAC:
    env = envs.make_env("cartpole-swingup", obs="pixels", **ENV)
    return VisualSAC("VisualPolicy", env, method=method, learning_starts=10, batch_size=4,
                     buffer_size=100, seed=0, policy_kwargs={"net_arch": [8]})  # fmt: skip


def test_madi_is_scored_per_mode_with_mask_quality_and_pictures(tmp_path: Path) -> None:
    model = agent("madi")
    rows = evaluate_modes(model, "cartpole-swingup", ["clean", "video_hard"], episodes=1,
                          out_dir=tmp_path, record_frames=6, **ENV)  # fmt: skip
    assert [row["mode"] for row in rows] == ["clean", "video_hard"]
    for row in rows:
        assert 0 <= row["mask_mean_agent"] <= 1 and 0 <= row["mask_mean_background"] <= 1
        assert 0 <= row["mask_recall"] <= 1
    for name in ("eval.md", "eval.csv", "eval.json", "clean_masks.png", "video_hard.gif"):
        assert (tmp_path / name).stat().st_size > 0, name
    with (tmp_path / "eval.csv").open() as f:
        assert [r["mode"] for r in csv.DictReader(f)] == ["clean", "video_hard"]
    assert (tmp_path / "clean_masks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "video_hard.gif").read_bytes()[:6] == b"GIF89a"


def test_agents_without_masker_get_returns_only(tmp_path: Path) -> None:
    rows = evaluate_modes(agent("svea"), "cartpole-swingup", ["color_hard"], episodes=1,
                          out_dir=tmp_path, **ENV)  # fmt: skip
    assert "return_mean" in rows[0] and not any(k.startswith("mask_") for k in rows[0])
    assert not list(tmp_path.glob("*.png"))


def test_callback_logs_every_mode(tmp_path: Path) -> None:
    model = agent("madi")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(30, callback=DistractionEval("cartpole-swingup", ["video_easy"], every=20,
                                             episodes=1, **ENV))  # fmt: skip
    with (tmp_path / "progress.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/video_easy/return_mean")]
    assert rows and rows[0]["eval/video_easy/mask_iou"] != ""


def test_mode_typos_fail_before_training() -> None:
    with pytest.raises(ValueError, match="Did you mean 'video_hard'"):
        DistractionEval("cartpole-swingup", ["vidoe_hard"])
