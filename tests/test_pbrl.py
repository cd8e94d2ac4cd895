"""PrefSAC: PEBBLE and R2N end to end on a small noisy-feature env."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import PBRL_SMALL
from sparse_rl.agents.pbrl.agent import PbRLConfig, PrefSAC, pebble, r2n
from sparse_rl.agents.pbrl.label_store import LabelStore
from sparse_rl.agents.pbrl.replay_buffer import PreferenceReplayBuffer
from sparse_rl.agents.pbrl.teacher import SimulatedTeacher
from stable_baselines3.common.logger import configure

from sparse_rl import envs
from sparse_rl import sparse_nets as sn

SMALL = PBRL_SMALL


def noisy_pendulum() -> gym.Env:
    return envs.NoisyFeatures(gym.make("Pendulum-v1"), noise_fraction=0.75)


def agent(tmp: Path, config: PbRLConfig, **kwargs) -> PrefSAC:
    model = PrefSAC(
        "MlpPolicy",
        noisy_pendulum(),
        preference=config,
        label_store=tmp / "labels.sqlite",
        learning_starts=50,
        batch_size=32,
        seed=0,
        policy_kwargs={"net_arch": [16, 16]},
        **kwargs,
    )
    model.set_logger(configure(str(tmp), ["csv"]))
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> PrefSAC:
    tmp = tmp_path_factory.mktemp("r2n")
    model = agent(tmp, r2n(**SMALL))
    model.learn(600, log_interval=1)
    return model


def test_labels_are_stored_as_the_budget_allows(trained: PrefSAC) -> None:
    assert trained.schedule.labels_given == 24 and trained.schedule.sessions == 3
    batch = trained.label_store.load()
    assert len(batch) == 24  # the oracle teacher answers every query
    assert batch.obs0.shape == (24, 10, 12) and batch.act0.shape == (24, 10, 1)
    assert {info["method"] for info in batch.infos} == {"uniform", "disagreement"}
    # every label agrees with the true returns it records (oracle teacher)
    for label, info in zip(batch.labels, batch.infos, strict=True):
        assert label == float(info["return1"] > info["return0"])


def test_buffer_holds_true_and_learned_rewards(trained: PrefSAC) -> None:
    buffer = trained.replay_buffer
    assert isinstance(buffer, PreferenceReplayBuffer)
    n = buffer.stored()
    true = buffer.true_rewards[:n, 0]
    assert true.min() >= -16.3 and true.max() <= 0.0 and true.std() > 0  # Pendulum's reward
    obs = buffer.observations[:n, 0]
    act = buffer.actions[:n, 0]
    np.testing.assert_allclose(buffer.rewards[:n, 0], trained.reward_model.reward(obs, act),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_r2n_reward_models_have_sparse_input_layers(trained: PrefSAC) -> None:
    sparsity = trained.reward_model.sparsity
    assert sparsity is not None
    assert sorted(sparsity.masks) == ["members.0.0", "members.1.0", "members.2.0"]
    for mask in sparsity.masks.values():  # fan-in 8 capped at a sixth of the 13 inputs
        assert int(mask.sum()) == round(13 * 16 / 6)


def test_diagnostics_are_logged(trained: PrefSAC) -> None:
    import csv

    path = Path(trained.logger.get_dir()) / "progress.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    keys = set(rows[-1])
    for key in ("pbrl/labels", "pbrl/reward_train_accuracy", "pbrl/heldout_accuracy",
                "pbrl/reward_true_correlation", "pbrl/reward_real_connections",
                "pbrl/reward_noise_connections", "pbrl/reward0_real_connections"):  # fmt: skip
        assert key in keys, key
    assert any(row["pbrl/heldout_accuracy"] for row in rows)


def test_pretraining_uses_intrinsic_reward_then_resets_critic(tmp_path: Path) -> None:
    model = agent(tmp_path, pebble(**{**SMALL, "budget": 0}))
    model.learn(120)  # inside pre-training (ends at learning_starts + 100 = 150)
    buffer = model.replay_buffer
    assert isinstance(buffer, PreferenceReplayBuffer) and buffer.intrinsic is not None
    sample = buffer.sample(16)
    assert torch.all(sample.rewards > 0)  # k-NN distances, not the stored (zero) rewards
    resets = []
    end_pretraining = model._end_pretraining

    def spy() -> None:
        critic, target = model.policy.critic, model.policy.critic_target
        before = [p.detach().clone() for p in critic.parameters()]
        end_pretraining()
        now, copied = list(critic.parameters()), list(target.parameters())
        resets.append({
            "step": model.num_timesteps,
            "changed": all(not torch.equal(a, b) for a, b in zip(before, now, strict=True)),
            "optimizer_state": len(critic.optimizer.state),
            "target_equal": all(torch.equal(a, b) for a, b in zip(now, copied, strict=True)),
        })  # fmt: skip

    model._end_pretraining = spy  # type: ignore[method-assign]
    model.learn(60, reset_num_timesteps=False)
    assert resets == [
        {"step": 150, "changed": True, "optimizer_state": 0, "target_equal": True}
    ]  # exactly once, at the end of pre-training: fresh critic, fresh Adam, target copied
    assert buffer.intrinsic is None and not model._pretraining


def test_float64_observations_are_labelled_losslessly(tmp_path: Path) -> None:
    """MuJoCo envs without the noise wrapper (HalfCheetah-v5) observe float64: labels keep it."""
    env = gym.wrappers.DtypeObservation(gym.make("Pendulum-v1"), np.float64)
    model = PrefSAC(
        "MlpPolicy", env, preference=pebble(**SMALL), label_store=tmp_path / "labels.sqlite",
        learning_starts=50, batch_size=32, seed=0, policy_kwargs={"net_arch": [16, 16]},
    )  # fmt: skip
    model.learn(300)
    batch = model.label_store.load()
    assert len(batch) > 0 and batch.obs0.dtype == np.float64


def test_reward_models_train_a_fixed_number_of_steps_per_session(tmp_path: Path) -> None:
    """The default: reward_steps per session, however few labels (no early stop on them)."""
    import csv

    model = agent(tmp_path, r2n(**{**SMALL, "budget": 8}))
    model.learn(200, log_interval=1)
    with (Path(model.logger.get_dir()) / "progress.csv").open() as f:
        steps = {row["pbrl/reward_steps"] for row in csv.DictReader(f)} - {""}
    assert {float(s) for s in steps} == {5.0}


def test_bpref_epochs_with_early_stop_still_available(tmp_path: Path) -> None:
    """reward_epochs + reward_target_accuracy is B-Pref's way: at most epochs x batches steps."""
    settings = {**SMALL, "reward_steps": None, "reward_epochs": 3, "budget": 8}
    model = agent(tmp_path, pebble(**settings, reward_target_accuracy=0.97))
    model.learn(200)
    assert len(model.label_store) == 8  # 8 labels in batches of 16: 1 step per epoch, <= 3


def test_r2n_defaults_are_the_documented_design() -> None:
    config = r2n(budget=200, labels_per_session=20, reward_steps=100)
    assert config.reward_input_l1 > 0 and config.reward_sparsity.fan_in == 8
    updater = config.reward_sparsity.updater
    assert isinstance(updater, sn.RigL) and updater.grow == "input_strength"
    assert updater.end_step == 750  # cosine-annealed over 75% of 10 sessions x 100 steps
    assert pebble().reward_sparsity is None and pebble().reward_input_l1 == 0


def test_pebble_reward_models_are_dense(tmp_path: Path) -> None:
    model = agent(tmp_path, pebble(**SMALL))
    assert model.reward_model.sparsity is None


def test_save_load_keeps_labels_schedule_and_reward(trained: PrefSAC, tmp_path: Path) -> None:
    trained.save(tmp_path / "model")
    trained.save_replay_buffer(tmp_path / "buffer")
    loaded = PrefSAC.load(tmp_path / "model", env=noisy_pendulum())
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert loaded.schedule.state_dict() == trained.schedule.state_dict()
    assert len(loaded.label_store) == len(trained.label_store)
    obs = np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32)
    act = np.zeros((20, 1), np.float32)
    np.testing.assert_array_equal(loaded.reward_model.reward(obs, act),
                                  trained.reward_model.reward(obs, act))  # fmt: skip
    masks = trained.reward_model.sparsity.masks  # type: ignore[union-attr]
    for name, mask in loaded.reward_model.sparsity.masks.items():  # type: ignore[union-attr]
        assert torch.equal(mask, masks[name])
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], trained.predict(obs, deterministic=True)[0]
    )
    buffer = loaded.replay_buffer
    assert isinstance(buffer, PreferenceReplayBuffer) and buffer.reward_fn is not None


KILLED_RUN = textwrap.dedent(
    """
    import sys
    import gymnasium as gym
    from stable_baselines3.common.callbacks import CheckpointCallback
    from sparse_rl import envs
    from sparse_rl.agents.pbrl.agent import PrefSAC, r2n
    run = sys.argv[1]
    config = r2n(reward_hidden=(16, 16), reward_steps=5, reward_batch_size=16, segment_length=10,
                 labels_per_session=8, session_every=100, budget=10_000, unsupervised_steps=0)
    env = envs.NoisyFeatures(gym.make("Pendulum-v1"), noise_fraction=0.75)
    model = PrefSAC("MlpPolicy", env, preference=config, label_store=run + "/labels.sqlite",
                    learning_starts=50, batch_size=32, buffer_size=2_000, seed=0,
                    policy_kwargs={"net_arch": [16, 16]})  # a small buffer: fast checkpoints
    checkpoints = CheckpointCallback(100, run, name_prefix="ckpt", save_replay_buffer=True)
    model.learn(100_000, callback=checkpoints)
    """
)


def test_killed_run_resumes_with_every_label(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env={**os.environ})
    store_path = tmp_path / "labels.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if len(list(tmp_path.glob("ckpt_*_steps.zip"))) >= 3:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    checkpoints = sorted(tmp_path.glob("ckpt_*_steps.zip"), key=lambda p: int(p.stem.split("_")[1]))
    assert len(checkpoints) >= 3, "the run made no checkpoints before the deadline"
    with LabelStore(store_path, (12,), (1,), 10) as store:
        labels_at_kill = len(store)
    assert labels_at_kill >= 8
    # SB3's CheckpointCallback writes in place: the kill may truncate the newest checkpoint, so
    # resume from the newest one that loads whole (labels are in the store either way).
    model = None
    for last in reversed(checkpoints):
        steps = int(last.stem.split("_")[1])
        try:
            model = PrefSAC.load(last, env=noisy_pendulum())
            model.load_replay_buffer(tmp_path / f"ckpt_replay_buffer_{steps}_steps.pkl")
            break
        except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError):
            model = None
    assert model is not None, "no checkpoint survived the kill"
    assert len(model.label_store) == labels_at_kill  # nothing lost, including post-checkpoint ones
    model.learn(200, reset_num_timesteps=False)
    assert len(model.label_store) > labels_at_kill  # keeps asking and storing


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"query_method": "random"}, "query_method: 'random' is not valid"),
        ({"entropy_space": "pixels"}, "entropy_space: 'pixels' is not valid"),
        ({"budget": -1}, "budget must be an integer >= 0"),
        ({"segment_length": 0}, "segment_length must be an integer >= 1"),
        ({"entropy_space": "none"}, "set unsupervised_steps=0"),
        ({"reward_target_accuracy": 1.5}, "reward_target_accuracy"),
        ({"reward_target_accuracy": 0.97}, "reward_target_accuracy stops epoch training"),
        ({"reward_epochs": 50}, "set one of reward_steps"),
        ({"reward_steps": None}, "set one of reward_steps"),
        ({"reward_steps": 0}, "reward_steps must be an integer >= 1"),
        ({"reward_input_l1": -0.1}, "reward_input_l1 must be a number >= 0"),
    ],
)
def test_bad_settings(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pebble(**overrides)


def test_missing_label_store_and_foreign_buffer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label_store is required"):
        PrefSAC("MlpPolicy", noisy_pendulum())
    with pytest.raises(ValueError, match="drop replay_buffer_class"):
        PrefSAC("MlpPolicy", noisy_pendulum(), label_store=tmp_path / "l.sqlite",
                replay_buffer_class=PreferenceReplayBuffer)  # fmt: skip


def test_store_of_another_env_is_refused(tmp_path: Path) -> None:
    LabelStore(tmp_path / "labels.sqlite", (3,), (1,), 10).close()  # plain Pendulum shapes
    with pytest.raises(ValueError, match="obs_shape"):
        agent(tmp_path, pebble(**SMALL))


def test_skipping_teacher_asks_but_stores_only_answers(tmp_path: Path) -> None:
    teacher = SimulatedTeacher(eps_skip=1.0, margin=1e9)  # skips everything
    model = agent(tmp_path, pebble(**{**SMALL, "unsupervised_steps": 0}), teacher=teacher)
    model.learn(300)
    assert model.schedule.labels_given > 0 and len(model.label_store) == 0


def test_sparse_sac_networks_with_r2n(tmp_path: Path) -> None:
    model = PrefSAC(
        "SparseMlpPolicy",
        noisy_pendulum(),
        preference=r2n(**SMALL),
        label_store=tmp_path / "labels.sqlite",
        learning_starts=50,
        policy_kwargs={"net_arch": [16, 16], "density": 0.5, "updater": sn.SET(interval=20)},
    )
    model.learn(200)
    assert set(model.policy.sparse_networks) == {"actor", "critic"}


def test_critic_reset_after_pretraining_keeps_sparse_rows_at_their_initial_scale(
    tmp_path: Path,
) -> None:
    """PEBBLE's critic reset re-initialises a sparse critic as it was built: masks kept, each row
    rescaled to its dense norm (not left at a third of it)."""
    model = PrefSAC(
        "SparseMlpPolicy", noisy_pendulum(), preference=r2n(**SMALL),
        label_store=tmp_path / "labels.sqlite", learning_starts=50, batch_size=32, seed=0,
        policy_kwargs={"net_arch": [64, 64], "density": 0.1},
    )  # fmt: skip
    model.set_logger(configure(str(tmp_path), ["csv"]))
    first = model.policy.critic.qf0[0]
    built = first.weight.detach().norm(dim=1).mean().item()
    mask = getattr(first, sn.MASK).clone()
    model._end_pretraining()
    after = first.weight.detach().norm(dim=1).mean().item()
    assert torch.equal(getattr(first, sn.MASK), mask)
    assert torch.all(first.weight[mask == 0] == 0)
    assert 0.7 < after / built < 1.4
    target = model.policy.critic_target.qf0[0]
    assert torch.equal(target.weight, first.weight)
