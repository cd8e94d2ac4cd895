"""Atomic checkpoints: layout, hashes, pruning, and falling back past a broken newest one."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

from sparse_rl import checkpoints as ck
from sparse_rl.safe_io import restore_rng_state


@pytest.fixture
def model() -> SAC:
    agent = SAC("MlpPolicy", "Pendulum-v1", buffer_size=200, learning_starts=20, batch_size=16,
                policy_kwargs={"net_arch": [8]}, seed=0)  # fmt: skip
    agent.learn(30)
    return agent


def advance(model: SAC, steps: int) -> None:
    model.learn(steps, reset_num_timesteps=False)


def test_layout_hashes_and_latest(model: SAC, tmp_path: Path) -> None:
    checkpoint = ck.save_checkpoint(model, tmp_path, keep=2)
    assert checkpoint.path == tmp_path / "step-30"
    assert sorted(p.name for p in checkpoint.path.iterdir()) == [
        "meta.json", "model.zip", "replay_buffer.npz", "rng.json"
    ]  # fmt: skip
    meta = json.loads((checkpoint.path / "meta.json").read_text())
    assert meta["step"] == 30 and set(meta["files"]) == {
        "model.zip",
        "replay_buffer.npz",
        "rng.json",
    }
    assert (tmp_path / "LATEST").read_text().strip() == "step-30"
    assert not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.glob("*.tmp"))
    assert ck.verify(checkpoint.path).step == 30
    loaded = SAC.load(checkpoint.model_path)
    obs = np.zeros((1, 3), dtype=np.float32)
    assert np.allclose(loaded.predict(obs, deterministic=True)[0],
                       model.predict(obs, deterministic=True)[0])  # fmt: skip


def test_keeps_only_the_newest(model: SAC, tmp_path: Path) -> None:
    for _ in range(3):
        ck.save_checkpoint(model, tmp_path, keep=2)
        advance(model, 10)
    assert [p.name for p in ck.step_dirs(tmp_path)] == ["step-50", "step-40"]


def test_truncated_newest_falls_back_with_a_warning(
    model: SAC, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ck.save_checkpoint(model, tmp_path, keep=3)
    advance(model, 10)
    newest = ck.save_checkpoint(model, tmp_path, keep=3)
    with newest.model_path.open("r+b") as f:  # a kill in the middle of writing it
        f.truncate(100)
    with caplog.at_level(logging.WARNING, logger="sparse_rl.checkpoints"):
        found = ck.latest_checkpoint(tmp_path)
    assert found is not None and found.step == 30
    assert f"checkpoint skipped: {newest.path}: model.zip does not match its sha256" in caplog.text
    assert "using step-30" in caplog.text
    assert newest.path.exists()  # reading alone changes nothing

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sparse_rl.checkpoints"):
        repaired = ck.latest_checkpoint(tmp_path, repair=True)
    assert repaired is not None and repaired.step == 30
    assert "moved to corrupt-step-40" in caplog.text
    assert (tmp_path / "corrupt-step-40").is_dir() and not newest.path.exists()
    assert (tmp_path / "LATEST").read_text().strip() == "step-30"


def test_unfinished_writes_are_skipped_and_removed_on_repair(
    model: SAC, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ck.save_checkpoint(model, tmp_path)
    (tmp_path / ".tmp-99").mkdir()
    (tmp_path / ".tmp-99" / "model.zip").write_bytes(b"PK\x03")  # killed while writing
    (tmp_path / "step-77").mkdir()  # renamed but never verified: no meta.json
    assert ck.latest_checkpoint(tmp_path).step == 30
    assert f"{tmp_path / 'step-77'}: no meta.json" in caplog.text
    with caplog.at_level(logging.WARNING, logger="sparse_rl.checkpoints"):
        assert ck.latest_checkpoint(tmp_path, repair=True).step == 30
    assert "removing unfinished checkpoint write" in caplog.text
    assert not (tmp_path / ".tmp-99").exists()


def test_no_checkpoint_at_all(tmp_path: Path) -> None:
    assert ck.latest_checkpoint(tmp_path / "missing") is None
    (tmp_path / "step-5").mkdir()
    assert ck.latest_checkpoint(tmp_path) is None


def test_random_states_continue(model: SAC, tmp_path: Path) -> None:
    checkpoint = ck.save_checkpoint(model, tmp_path)
    expected = (random.random(), np.random.rand(), torch.rand(1).item(),
                model.action_space.sample().tolist())  # fmt: skip
    random.seed(123), np.random.seed(123), torch.manual_seed(123), model.action_space.seed(123)
    restore_rng_state(model, checkpoint.rng_state())
    got = (random.random(), np.random.rand(), torch.rand(1).item(),
           model.action_space.sample().tolist())  # fmt: skip
    assert got == expected


def test_bad_keep(model: SAC, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep must be >= 1"):
        ck.save_checkpoint(model, tmp_path, keep=0)
