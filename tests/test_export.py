"""Export parity: every agent type's ONNX (and TorchScript, numpy) actions equal torch's, and the
exported policy in the runtime's control loop earns the torch policy's return on fixed seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from export_helpers import random_observations, sb3_return
from sparse_rl.agents import (
    PrefSAC,
    SparsePPO,
    SparseSAC,
    SparseTD3,
    VisualSAC,
    r2n,
)
from sparse_rl.agents.export import export_policy
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sparse_rl import envs
from sparse_rl.runtime import ControlLoop, GymRobot, Policy

VECTOR = ("sparse_sac", "sparse_td3", "sparse_ppo", "r2n_sac")
PIXEL = ("visual_sac", "madi")
TORCHSCRIPT = ("sparse_sac", "madi")  # one vector and one pixel policy
SEED = 7


def make_env(name: str) -> gym.Env:
    if name in PIXEL:  # 40 agent steps an episode: a closed loop compares returns, not skill
        env = envs.make_env("cartpole-swingup", obs="pixels", size=32, action_repeat=8)
        return gym.wrappers.TimeLimit(env, max_episode_steps=40)
    return envs.make_env("Pendulum-v1", noise_fraction=0.5)


def train(name: str, tmp: Path) -> Any:
    env = make_env(name)
    small = {"net_arch": [64, 64]}  # parity does not need SB3's 256-wide defaults
    off_policy = {
        "learning_starts": 100, "buffer_size": 2_000, "batch_size": 32, "seed": 0,
        "policy_kwargs": small,
    }  # fmt: skip
    if name == "sparse_sac":
        model: Any = SparseSAC("SparseMlpPolicy", env, **off_policy)
    elif name == "sparse_td3":
        model = SparseTD3("SparseMlpPolicy", env, **off_policy)
    elif name == "sparse_ppo":
        model = SparsePPO(
            "SparseMlpPolicy", env, n_steps=128, batch_size=64, seed=0, policy_kwargs=small
        )
    elif name == "r2n_sac":
        config = r2n(
            budget=20, labels_per_session=10, session_every=100, unsupervised_steps=50,
            segment_length=10, reward_hidden=(32, 32), reward_steps=20,
        )  # fmt: skip
        model = PrefSAC(
            "SparseMlpPolicy", env, preference=config, label_store=tmp / "labels.sqlite",
            **off_policy,
        )  # fmt: skip
    else:
        method = "madi" if name == "madi" else "sac"
        model = VisualSAC(
            "VisualPolicy", env, method=method, learning_starts=30, batch_size=8,
            buffer_size=300, seed=0,
        )  # fmt: skip
    model.learn(40 if name in PIXEL else 200)  # parity needs moved weights, not skill
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    out = {}
    for name in (*VECTOR, *PIXEL):
        tmp = tmp_path_factory.mktemp(name)
        model = train(name, tmp)
        formats = ("onnx", "numpy") if name in VECTOR else ("onnx",)
        if name in TORCHSCRIPT:  # each ONNX / TorchScript export costs seconds of tracing
            formats = (*formats, "torchscript")
        export_policy(model, tmp / "policy", formats=formats)
        out[name] = (model, tmp / "policy")
    return out


@pytest.mark.parametrize("name", [*VECTOR, *PIXEL])
def test_onnx_actions_equal_torch_deterministic_actions(exported: dict, name: str) -> None:
    model, directory = exported[name]
    obs = random_observations(model.observation_space, 1000)
    expected, _ = model.predict(obs, deterministic=True)
    got = Policy(directory).act_batch(obs)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", VECTOR)
def test_numpy_backend_equals_torch(exported: dict, name: str) -> None:
    model, directory = exported[name]
    obs = random_observations(model.observation_space, 1000)
    expected, _ = model.predict(obs, deterministic=True)
    got = Policy(directory, backend="numpy", csr_max_density=1.0, csr_min_width=1).act_batch(obs)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")  # TorchScript, as asked
@pytest.mark.parametrize("name", TORCHSCRIPT)
def test_torchscript_equals_torch(exported: dict, name: str) -> None:
    model, directory = exported[name]
    obs = random_observations(model.observation_space, 200)
    expected, _ = model.predict(obs, deterministic=True)
    with torch.no_grad():
        squashed = torch.jit.load(str(directory / "policy.ts"))(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(model.policy.unscale_action(squashed), expected, atol=1e-5)


@pytest.mark.parametrize("name", [*VECTOR, *PIXEL])
def test_closed_loop_return_equals_torch(exported: dict, name: str) -> None:
    model, directory = exported[name]
    torch_return = sb3_return(model, make_env(name), SEED)
    policy = Policy(directory)
    stack = policy.card.observation.frame_stack if name in PIXEL else None
    robot = GymRobot(make_env(name), seed=SEED, frame_stack=stack)
    report = ControlLoop(policy, robot, hz=0).run(episodes=1)
    assert report.invalid_observations == 0
    assert report.episode_returns[0] == pytest.approx(torch_return, rel=1e-5, abs=1e-3)


def test_masks_are_folded_into_the_exported_weights(exported: dict) -> None:
    model, directory = exported["sparse_sac"]
    weights = np.load(directory / "policy_mlp.npz", allow_pickle=False)
    mask = model.policy.actor.latent_pi[0].weight_mask.numpy()
    w0 = weights["w0"]
    assert np.all(w0[mask == 0] == 0)
    card = json.loads((directory / "card.json").read_text())
    layer = card["sparsity"]["exported_layers"]["actor.latent_pi.0"]
    assert layer["density"] == pytest.approx(np.count_nonzero(w0) / w0.size)
    assert card["sparsity"]["trained_networks"]["actor"]["density"] < 0.5


def test_card_describes_a_madi_pixel_policy(exported: dict) -> None:
    model, directory = exported["madi"]
    card = json.loads((directory / "card.json").read_text())
    assert card["observation"]["kind"] == "pixels"
    assert card["observation"]["dtype"] == "uint8"
    assert card["observation"]["frame_stack"] == 3
    assert card["observation"]["frame_shape"] == [3, 32, 32]
    assert card["policy"]["masker"] == 10_433  # MaDi's tiny Masker travels in the graph
    assert card["policy"]["algorithm"] == "SAC"
    assert card["action"]["output"] == "squashed" and card["action"]["kind"] == "box"
    assert card["version"] == 2
    assert card["provenance"]["num_timesteps"] == model.num_timesteps
    assert "critic.features_extractor.masker.net.0" in card["sparsity"]["exported_layers"]


def test_weights_hash_identifies_the_weights(exported: dict, tmp_path: Path) -> None:
    model, directory = exported["sparse_td3"]
    first = json.loads((directory / "card.json").read_text())["provenance"]["weights_sha256"]
    export_policy(model, tmp_path / "again")
    again = json.loads((tmp_path / "again" / "card.json").read_text())
    assert again["provenance"]["weights_sha256"] == first
    model.learn(50, reset_num_timesteps=False)
    export_policy(model, tmp_path / "later")
    later = json.loads((tmp_path / "later" / "card.json").read_text())
    assert later["provenance"]["weights_sha256"] != first


def test_vec_normalize_statistics_travel_in_the_card(tmp_path: Path) -> None:
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]), norm_reward=False)
    model = SAC("MlpPolicy", venv, learning_starts=50, seed=0)
    model.learn(150)
    export_policy(model, tmp_path / "p")
    raw = random_observations(model.observation_space, 300)
    expected, _ = model.predict(venv.normalize_obs(raw), deterministic=True)
    np.testing.assert_allclose(Policy(tmp_path / "p").act_batch(raw), expected, atol=1e-5)


def test_bad_export_arguments_name_the_parameter(exported: dict, tmp_path: Path) -> None:
    model, _ = exported["sparse_sac"]
    with pytest.raises(ValueError, match=r"formats: 'tflite'.*\['onnx', 'torchscript', 'numpy'\]"):
        export_policy(model, tmp_path / "x", formats=("tflite",))
    with pytest.raises(ValueError, match="safe_action"):
        export_policy(model, tmp_path / "x", safe_action=[5.0])
    pixel, _ = exported["madi"]
    with pytest.raises(ValueError, match="numpy export"):
        export_policy(pixel, tmp_path / "y", formats=("numpy",))
    with pytest.raises(ValueError, match="frame_stack=2 does not divide"):
        export_policy(pixel, tmp_path / "y", frame_stack=2)
