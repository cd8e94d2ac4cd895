"""Export and runtime for every SB3 action space and for Dict observations (issue 17).

Stock SB3 DQN and PPO on CartPole (Discrete), PPO on small envs with MultiDiscrete and
MultiBinary actions and with a Dict observation, a sparse PPO and a sparse DQN on CartPole, and
sparse SAC and TD3 on a Dict observation with Box actions: the runtime's actions on 1000 random
valid observations equal SB3's ``predict(deterministic=True)`` (exactly, or to 1e-5 for Box
actions), and the exported policy in the control loop earns SB3's return on a fixed seed. The
models are tiny and barely trained (the sparse ones through a few mask updates): parity is the
point, not skill.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from export_helpers import random_observations, sb3_return
from gymnasium import spaces
from sparse_rl.agents import SparseActorCriticPolicy, SparseDQN, SparseSAC, SparseTD3
from sparse_rl.agents.export import _action_card, _key_card, export_policy
from stable_baselines3 import DQN, PPO

from sparse_rl.runtime import ControlLoop, GymRobot, Policy
from sparse_rl.runtime.__main__ import main

SEED = 3
SMALL = {"net_arch": [32, 32]}
#: what ``_action_card`` reads of a PPO/A2C policy
STOCHASTIC = SimpleNamespace(squash_output=False)


class ToyEnv(gym.Env):
    """Random observations each step; the reward counts the action entries that match the
    observation's signs (Box actions: minus their squared distance to the signs), so a
    closed-loop return depends on every action taken."""

    def __init__(self, action_space: spaces.Space, dict_obs: bool = False, length: int = 30):
        self.action_space = action_space
        vec = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space: spaces.Space = (
            spaces.Dict({"vec": vec, "img": spaces.Box(0, 255, (1, 36, 36), np.uint8)})
            if dict_obs
            else vec
        )
        self.length = length
        self.t = 0

    def _obs(self) -> Any:
        vec = self.np_random.uniform(-1, 1, 4).astype(np.float32)
        if isinstance(self.observation_space, spaces.Dict):
            img = self.np_random.integers(0, 256, (1, 36, 36), dtype=np.uint8)
            return {"vec": vec, "img": img}
        return vec

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.last = self._obs()
        return self.last, {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        assert self.action_space.contains(action), action
        vec = self.last["vec"] if isinstance(self.last, dict) else self.last
        target = (vec > 0).astype(np.int64)
        if isinstance(self.action_space, spaces.Box):
            reward = -float(np.sum((action - (2 * target[: action.size] - 1)) ** 2))
        else:
            reward = float(np.sum(np.atleast_1d(action) == target[: np.size(action)]))
        self.t += 1
        self.last = self._obs()
        return self.last, reward, False, self.t >= self.length, {}


ENVS = {
    "dqn": lambda: gym.make("CartPole-v1"),
    "ppo": lambda: gym.make("CartPole-v1"),
    "sparse_ppo": lambda: gym.make("CartPole-v1"),
    "sparse_dqn": lambda: gym.make("CartPole-v1"),
    "multi_discrete": lambda: ToyEnv(spaces.MultiDiscrete([3, 2, 2])),
    "multi_binary": lambda: ToyEnv(spaces.MultiBinary(3)),
    "dict": lambda: ToyEnv(spaces.Discrete(2), dict_obs=True),
    "dict_sac": lambda: ToyEnv(spaces.Box(-1.0, 1.0, (2,), np.float32), dict_obs=True),
    "dict_td3": lambda: ToyEnv(spaces.Box(-1.0, 1.0, (2,), np.float32), dict_obs=True),
}
VECTOR = ("dqn", "ppo", "sparse_ppo", "sparse_dqn", "multi_discrete", "multi_binary")
DICT = ("dict", "dict_sac", "dict_td3")
BOX = ("dict_sac", "dict_td3")
ALL = (*VECTOR, *DICT)


def build(name: str) -> Any:
    env = ENVS[name]()
    on_policy = {"n_steps": 64, "batch_size": 64, "seed": 0}
    if name == "dqn":
        return DQN("MlpPolicy", env, policy_kwargs=SMALL, seed=1)  # seed 0 acts constantly
    if name == "sparse_dqn":  # trained through RigL updates: masks must fold at export
        sparse = {**SMALL, "density": 0.25, "updater": {"name": "rigl", "interval": 50}}
        model = SparseDQN("SparseMlpPolicy", env, policy_kwargs=sparse, learning_starts=50,
                          batch_size=16, train_freq=1, seed=1)  # fmt: skip
        model.learn(300)
        assert model.policy.sparse_networks["critic"].sparsity.stats().step > 200
        return model
    if name == "sparse_ppo":
        sparse = {**SMALL, "density": 0.25}
        model = PPO(SparseActorCriticPolicy, env, policy_kwargs=sparse, **on_policy)
        model.learn(64)  # one update: the masks must hold through training and fold at export
        return model
    dict_kwargs = {"net_arch": [16], "features_extractor_kwargs": {"cnn_output_dim": 16}}
    if name == "dict":
        return PPO("MultiInputPolicy", env, policy_kwargs=dict_kwargs, **on_policy)
    if name in BOX:  # 20 updates through the CombinedExtractor: masks must fold at export
        algo = SparseSAC if name == "dict_sac" else SparseTD3
        model = algo("SparseMultiInputPolicy", env, policy_kwargs={**dict_kwargs, "density": 0.5},
                     learning_starts=20, batch_size=8, buffer_size=200, seed=0)  # fmt: skip
        model.learn(40)
        return model
    return PPO("MlpPolicy", env, policy_kwargs=SMALL, **on_policy)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    out = {}
    for name in ALL:
        directory = tmp_path_factory.mktemp(name) / "policy"
        model = build(name)
        formats = ("onnx", "torchscript", "numpy") if name == "dqn" else ("onnx", "numpy")
        formats = ("onnx",) if name in DICT else formats
        safe = 1 if name == "dqn" else None  # a declared safe action; the others default
        export_policy(model, directory, formats=formats, safe_action=safe)
        out[name] = (model, directory)
    return out


@pytest.mark.parametrize("name", ALL)
def test_runtime_actions_equal_sb3_deterministic_actions(exported: dict, name: str) -> None:
    model, directory = exported[name]
    obs = random_observations(model.observation_space, 1000)
    expected, _ = model.predict(obs, deterministic=True)
    got = Policy(directory).act_batch(obs)
    if name in BOX:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    else:
        assert got.dtype == (np.int8 if name == "multi_binary" else np.int64)
        np.testing.assert_array_equal(got, expected)
    assert len(np.unique(got, axis=0)) > 1  # the random policies do not act constantly
    one = {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]
    action = Policy(directory).act(one)
    assert model.action_space.contains(action), action
    if name in ("dqn", "ppo", "sparse_ppo", "dict"):
        assert type(action) is np.int64


@pytest.mark.parametrize("name", VECTOR)
def test_numpy_backend_equals_sb3(exported: dict, name: str) -> None:
    model, directory = exported[name]
    obs = random_observations(model.observation_space, 1000)
    expected, _ = model.predict(obs, deterministic=True)
    policy = Policy(directory, backend="numpy", csr_max_density=1.0, csr_min_width=1)
    np.testing.assert_array_equal(policy.act_batch(obs), expected)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")  # TorchScript, as asked
def test_torchscript_gives_the_q_values(exported: dict) -> None:
    model, directory = exported["dqn"]
    obs = random_observations(model.observation_space, 200)
    with torch.no_grad():
        q_ts = torch.jit.load(str(directory / "policy.ts"))(torch.as_tensor(obs)).numpy()
        q_sb3 = model.q_net(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(q_ts, q_sb3, atol=1e-5)
    np.testing.assert_array_equal(q_ts.argmax(axis=1), model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("name", ALL)
def test_closed_loop_return_equals_sb3(exported: dict, name: str) -> None:
    model, directory = exported[name]
    expected = sb3_return(model, ENVS[name](), SEED)
    robot = GymRobot(ENVS[name](), seed=SEED)
    report = ControlLoop(Policy(directory), robot, hz=0).run(episodes=1)
    assert report.invalid_observations == 0 and report.nonfinite_actions == 0
    if name in BOX:
        assert report.episode_returns == [pytest.approx(expected, rel=1e-5, abs=1e-4)]
    else:
        assert report.episode_returns == [expected]


def test_cards_record_the_action_space(exported: dict) -> None:
    def card(name: str) -> dict[str, Any]:
        return json.loads((exported[name][1] / "card.json").read_text())

    assert card("dqn")["version"] == 2
    assert card("dqn")["action"] == {
        "kind": "discrete", "n": 2, "output": "q_values", "safe_action": 1,
    }  # fmt: skip
    assert card("dqn")["policy"]["algorithm"] == "DQN"
    assert card("ppo")["action"]["output"] == "logits" and card("ppo")["action"]["safe_action"] == 0
    assert card("multi_discrete")["action"] == {
        "kind": "multi_discrete", "nvec": [3, 2, 2], "output": "logits", "safe_action": [0, 0, 0],
    }  # fmt: skip
    assert card("multi_binary")["action"] == {
        "kind": "multi_binary", "n": 3, "output": "logits", "safe_action": [0, 0, 0],
    }  # fmt: skip
    observation = card("dict")["observation"]
    assert observation == {
        "kind": "dict",
        "keys": {
            "img": {"kind": "pixels", "shape": [1, 36, 36], "dtype": "uint8", "low": 0.0,
                    "high": 255.0},
            "vec": {"kind": "vector", "shape": [4], "dtype": "float32", "low": -1.0,
                    "high": 1.0},
        },
    }  # fmt: skip
    assert card("dict")["files"]["onnx"]["input"] == {"img": "obs.img", "vec": "obs.vec"}


@pytest.mark.parametrize("name", BOX)
def test_sparse_box_policies_on_dict_observations_fold_their_masks(exported: dict, name: str):
    model, directory = exported[name]
    card = json.loads((directory / "card.json").read_text())
    assert card["action"] == {
        "kind": "box", "shape": [2], "low": [-1.0, -1.0], "high": [1.0, 1.0],
        "output": "squashed", "safe_action": [0.0, 0.0],
    }  # fmt: skip
    assert card["observation"]["kind"] == "dict" and sorted(card["observation"]["keys"]) == [
        "img", "vec",
    ]  # fmt: skip
    masked = {
        f"actor.{layer}": module.weight_mask
        for layer, module in model.policy.actor.named_modules()
        if hasattr(module, "weight_mask")
    }
    assert any(mask.float().mean() < 1 for mask in masked.values()), "nothing was pruned"
    exported_layers = card["sparsity"]["exported_layers"]
    assert set(masked) - set(exported_layers) <= {"actor.log_std"}  # unused when deterministic
    for layer in set(masked) & set(exported_layers):
        density = masked[layer].float().mean().item()
        assert exported_layers[layer]["density"] == pytest.approx(density)


def test_safe_action_per_space_replaces_invalid_observations(exported: dict) -> None:
    expected = {
        "dqn": np.int64(1),
        "multi_discrete": np.zeros(3, np.int64),
        "multi_binary": np.zeros(3, np.int8),
        "dict": np.int64(0),
    }
    for name, safe in expected.items():
        policy = Policy(exported[name][1])
        action = policy.act(None)
        assert type(action) is type(safe) and action.dtype == safe.dtype
        np.testing.assert_array_equal(action, safe)
        assert policy.invalid_count == 1
        assert exported[name][0].action_space.contains(action)


def test_watchdog_holds_a_discrete_policy_with_its_safe_action(exported: dict) -> None:
    sent: list[Any] = []

    class SlowRobot:
        def reset(self) -> np.ndarray:
            return np.zeros(4, np.float32)

        def read_observation(self) -> np.ndarray:
            import time

            time.sleep(0.05)  # every step overruns a 100 Hz period
            return np.zeros(4, np.float32)

        def send_action(self, action: Any) -> bool:
            sent.append(action)
            return False

        def safe_stop(self) -> None:
            pass

    report = ControlLoop(Policy(exported["dqn"][1]), SlowRobot(), hz=100, max_overruns=2).run()
    assert report.stopped_reason == "watchdog"
    assert sent and all(type(a) is np.int64 and a == 1 for a in sent)


def test_sparse_ppo_masks_are_folded(exported: dict) -> None:
    model, directory = exported["sparse_ppo"]
    mask = model.policy.mlp_extractor.policy_net[0].weight_mask.numpy()
    w0 = np.load(directory / "policy_mlp.npz", allow_pickle=False)["w0"]
    assert 0 < mask.mean() < 1 and np.all(w0[mask == 0] == 0)
    card = json.loads((directory / "card.json").read_text())
    assert card["sparsity"]["trained_networks"]["actor"]["density"] < 0.5
    layer = card["sparsity"]["exported_layers"]["mlp_extractor.policy_net.0"]
    assert layer["density"] == pytest.approx(np.count_nonzero(w0) / w0.size)


def test_cli_runs_a_discrete_policy(exported: dict, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(exported["dqn"][1])
    assert main(["check", directory]) == 0
    out = capsys.readouterr().out
    assert "discrete, 2 choices (argmax of q_values), safe 1" in out and "backend numpy: ok" in out
    argv = ["run", directory, "--gym-id", "CartPole-v1", "--no-realtime", "--seed", "0"]
    assert main(argv) == 0
    assert "stopped: episodes after" in capsys.readouterr().out
    assert main([*argv[:3], "Pendulum-v1", *argv[4:]]) == 1
    assert "Pendulum-v1 takes box actions, the policy sends discrete" in capsys.readouterr().err
    assert main(["check", str(exported["dict"][1])]) == 0
    assert "observation: dict {img: pixels [1, 36, 36] uint8" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("space", "safe", "message"),
    [
        (spaces.Discrete(3), 3, r"safe_action must be an action index in \[0, 3\)"),
        (spaces.Discrete(3), 1.0, "safe_action must be an action index"),
        (spaces.Discrete(3), [1], "safe_action must be an action index"),
        (spaces.Discrete(3, start=1), None, "start at 0"),
        (spaces.MultiDiscrete([3, 2]), [0, 2], r"safe_action must be 2 action indices"),
        (spaces.MultiDiscrete([3, 2]), [0], "safe_action must be 2 action indices"),
        (spaces.MultiDiscrete([[3, 2]]), None, "1-D MultiDiscrete"),
        (spaces.MultiBinary(2), [0, 2], "safe_action must be 2 values, each 0 or 1"),
        (spaces.MultiBinary([2, 2]), None, "1-D MultiBinary"),
        (spaces.Tuple([spaces.Discrete(2)]), None, "Box, Discrete, MultiDiscrete and MultiBinary"),
    ],
)
def test_bad_action_spaces_and_safe_actions_are_refused(
    space: spaces.Space, safe: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _action_card(space, STOCHASTIC, safe)


def test_valid_discrete_safe_actions() -> None:
    assert _action_card(spaces.Discrete(3), STOCHASTIC, np.int64(2))["safe_action"] == 2
    card = _action_card(spaces.MultiBinary(3), STOCHASTIC, np.array([True, False, True]))
    assert card["safe_action"] == [1, 0, 1]
    assert _action_card(spaces.MultiDiscrete([3, 2]), STOCHASTIC, [2, 1])["safe_action"] == [2, 1]


def test_dict_entries_the_runtime_cannot_feed_are_refused() -> None:
    with pytest.raises(ValueError, match="'pos': export supports Box entries"):
        _key_card("pos", spaces.Discrete(3))
    with pytest.raises(ValueError, match="'count': export supports float vectors and uint8"):
        _key_card("count", spaces.Box(0, 10, (2,), np.int64))
    low, high = np.array([-np.inf, 0], np.float32), np.array([np.inf, 1], np.float32)
    unbounded = _key_card("v", spaces.Box(low, high))
    assert unbounded["low"] == [None, 0.0] and unbounded["high"] == [None, 1.0]
