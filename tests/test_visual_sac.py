"""Pixel SAC, SVEA and MaDi on SB3 (tiny frames, a few updates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sparse_rl.agents.visual.agent import VisualSAC
from sparse_rl.agents.visual.frame_buffer import FrameReplayBuffer
from sparse_rl.agents.visual.policy import VisualSACPolicy

from sparse_rl import envs


@pytest.fixture(scope="module")
def env():
    return envs.make_env("cartpole-swingup", obs="pixels", size=16, action_repeat=8)


def model(env, method: str, **kwargs) -> VisualSAC:
    settings = {"learning_starts": 20, "batch_size": 8, "buffer_size": 200, "seed": 0}
    policy_kwargs = {"net_arch": [16, 16]}
    return VisualSAC("VisualPolicy", env, method=method, policy_kwargs=policy_kwargs,
                     **settings, **kwargs)  # fmt: skip


@pytest.mark.parametrize("method", ["sac", "svea", "madi"])
def test_learns_saves_and_loads(env, method: str, tmp_path: Path) -> None:
    agent = model(env, method)
    encoder = [p.detach().clone() for p in agent.policy.critic.features_extractor.parameters()]
    agent.learn(40)
    trained = agent.policy.critic.features_extractor.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(encoder, trained, strict=True))
    agent.save(tmp_path / "agent")
    loaded = VisualSAC.load(tmp_path / "agent", env=env)
    obs = np.stack([env.observation_space.sample() for _ in range(3)])
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0],
                               agent.predict(obs, deterministic=True)[0], atol=1e-6)  # fmt: skip
    assert loaded.method == method
    assert isinstance(loaded.replay_buffer, FrameReplayBuffer)  # each frame stored once
    loaded.learn(10, reset_num_timesteps=False)


def test_madi_has_the_tiny_masker_trained_by_the_critic(env) -> None:
    agent = model(env, "madi")
    policy = agent.policy
    assert isinstance(policy, VisualSACPolicy) and policy.masker is not None
    assert sum(p.numel() for p in policy.masker.parameters()) == 10_433
    masker_ids = {id(p) for p in policy.masker.parameters()}
    assert not masker_ids & {
        id(p) for g in policy.critic.optimizer.param_groups for p in g["params"]
    }
    assert not masker_ids & {
        id(p) for g in policy.actor.optimizer.param_groups for p in g["params"]
    }
    before = [p.detach().clone() for p in policy.masker.parameters()]
    agent.learn(30)
    assert all(
        not torch.equal(a, b) for a, b in zip(before, policy.masker.parameters(), strict=True)
    )
    # the same Masker serves the TD target: no target copy
    assert policy.critic_target.features_extractor.masker is policy.masker


def test_madi_logs_how_much_its_masks_keep(env, tmp_path: Path) -> None:
    """``train/mask_kept`` (share of pixel intensity the masks keep) shows a dying Masker."""
    import csv

    from stable_baselines3.common.logger import configure

    for method in ("madi", "svea"):
        agent = model(env, method)
        agent.set_logger(configure(str(tmp_path / method), ["csv"]))
        agent.learn(30)  # 20 random steps, then updates; episodes are longer: no dump yet
        agent.logger.dump(agent.num_timesteps)
        with (tmp_path / method / "progress.csv").open() as f:
            kept = [row.get("train/mask_kept", "") for row in csv.DictReader(f)]
        values = [float(v) for v in kept if v]
        if method == "madi":  # a fresh Masker's sigmoid outputs are near 0.5
            assert values and all(0.2 < v < 0.8 for v in values)
        else:
            assert not values


def test_actor_loss_does_not_train_the_encoder(env) -> None:
    agent = model(env, "svea")
    policy = agent.policy
    actor_ids = {id(p) for g in policy.actor.optimizer.param_groups for p in g["params"]}
    encoder_ids = {id(p) for p in policy.critic.features_extractor.parameters()}
    assert not actor_ids & encoder_ids
    obs = torch.as_tensor(np.stack([env.observation_space.sample() for _ in range(2)])).float()
    actions, _ = policy.actor.action_log_prob(obs)
    actions.sum().backward()
    assert all(p.grad is None for p in policy.critic.features_extractor.parameters())


def test_bad_settings(env) -> None:
    with pytest.raises(ValueError, match="method: 'drq' is not valid"):
        model(env, "drq")
    with pytest.raises(ValueError, match="strong_augmentation: 'blur' is not valid"):
        model(env, "svea", strong_augmentation="blur")
    with pytest.raises(ValueError, match="has no Masker"):
        VisualSAC("VisualPolicy", env, method="svea", policy_kwargs={"masker": {}})
    with pytest.raises(ValueError, match="svea_beta must be in"):
        model(env, "svea", svea_beta=2.0)


def test_dense_by_default_and_sparse_on_request(env, tmp_path: Path) -> None:
    assert model(env, "svea").policy.sparse_networks == {}
    sparse = {"density": 0.5, "updater": "set", "distribution": "uniform"}  # as every policy
    agent = VisualSAC("VisualPolicy", env, method="madi", learning_starts=20, batch_size=8,
                      buffer_size=200, seed=0,
                      policy_kwargs={"net_arch": [16, 16], **sparse})  # fmt: skip
    policy = agent.policy
    critic = policy.sparse_networks["critic"].sparsity
    assert "features_extractor.encoder.convs.0" in critic.masks  # the shared encoder is sparse
    assert not any("masker" in name for name in critic.masks)
    agent.learn(40)
    for name, mask in critic.masks.items():
        assert int(mask.sum()) == round(0.5 * mask.numel()), name
        target = policy.critic_target.get_submodule(name)
        assert torch.equal(target.weight_mask != 0, mask)
    agent.save(tmp_path / "sparse")
    loaded = VisualSAC.load(tmp_path / "sparse", env=env)
    restored = loaded.policy.sparse_networks["critic"].sparsity
    assert restored.step_count == critic.step_count
    for name, mask in critic.masks.items():
        assert torch.equal(restored.masks[name], mask)
    with pytest.raises(ValueError, match="actor_sparsity: expected a mapping of density"):
        VisualSAC("VisualPolicy", env, method="sac", policy_kwargs={"actor_sparsity": 0.1})


def test_visual_sac_is_plain_pixel_sac_by_default(env) -> None:
    """``VisualSAC`` without a method is what its name says: SAC with shifts, no Masker."""
    agent = VisualSAC("VisualPolicy", env, learning_starts=20, batch_size=8, buffer_size=200,
                      policy_kwargs={"net_arch": [16, 16]}, seed=0)  # fmt: skip
    assert agent.method == "sac" and agent.policy.masker is None


def test_logs_the_same_training_keys_as_sb3_sac(env, tmp_path: Path) -> None:
    """Dashboards built for SB3's SAC read VisualSAC's logs: every ``train/`` key SAC logs."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure

    def train_keys(agent, folder: Path) -> set[str]:
        agent.set_logger(configure(str(folder), ["csv"]))
        agent.learn(40)
        agent.logger.dump(agent.num_timesteps)  # off-policy logs at episode ends otherwise
        header = (folder / "progress.csv").read_text().splitlines()[0].split(",")
        return {key for key in header if key.startswith("train/")}

    sac = SAC("MlpPolicy", "Pendulum-v1", learning_starts=20, batch_size=8, seed=0,
              policy_kwargs={"net_arch": [16]})  # fmt: skip
    expected = train_keys(sac, tmp_path / "sac")
    assert "train/ent_coef_loss" in expected
    assert expected <= train_keys(model(env, "svea"), tmp_path / "visual")
