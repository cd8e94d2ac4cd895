"""Sparse policies on pixel and dict observations: SB3's NatureCNN / CombinedExtractor through
the ``SparseCnnPolicy`` / ``SparseMultiInputPolicy`` aliases, dense by default, sparse through
the core with ``features_extractor_sparsity`` (exact density through training, targets follow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from helpers import mask_buffers, snapshot
from sparse_rl.agents import (
    SparseActorCriticCnnPolicy,
    SparseActorCriticMultiInputPolicy,
    SparseDQN,
    SparseDQNCnnPolicy,
    SparseDQNMultiInputPolicy,
    SparsePPO,
    SparseSAC,
    SparseSACCnnPolicy,
    SparseSACMultiInputPolicy,
    SparseTD3,
    SparseTD3CnnPolicy,
    SparseTD3MultiInputPolicy,
)
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN
from test_agents_policies import assert_states_equal, masks_changed, masks_of
from torch import nn

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError


class TinyPixels(gym.Env):
    """36x36 RGB uint8 noise frames (the smallest NatureCNN takes), optionally with a vector in
    a Dict observation; Discrete(2) or Box(1) actions; 20-step episodes."""

    def __init__(self, discrete: bool = True, dict_obs: bool = False) -> None:
        image = spaces.Box(0, 255, (36, 36, 3), np.uint8)
        vector = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.observation_space = spaces.Dict({"img": image, "vec": vector}) if dict_obs else image
        self.action_space = spaces.Discrete(2) if discrete else spaces.Box(-1, 1, (1,), np.float32)
        self._t = 0

    def _obs(self) -> Any:
        image = self.np_random.integers(0, 256, (36, 36, 3), dtype=np.uint8)
        if isinstance(self.observation_space, spaces.Dict):
            return {"img": image, "vec": self.np_random.uniform(-1, 1, 3).astype(np.float32)}
        return image

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self._t += 1
        return self._obs(), float(np.asarray(action).sum() > 0), False, self._t >= 20, {}


OFF_POLICY = {"learning_starts": 16, "batch_size": 16, "buffer_size": 500}
#: (alias class, stock class, discrete actions, algorithm kwargs, env steps to train)
ALGOS: dict[str, tuple[type[BaseAlgorithm], type[BaseAlgorithm], bool, dict[str, Any], int]] = {
    "dqn": (SparseDQN, DQN, True, {**OFF_POLICY, "train_freq": 1, "target_update_interval": 8}, 48),
    "ppo": (SparsePPO, PPO, True, {"n_steps": 32, "batch_size": 16, "n_epochs": 2}, 64),
    "sac": (SparseSAC, SAC, False, OFF_POLICY, 40),
    "td3": (SparseTD3, TD3, False, {**OFF_POLICY, "policy_delay": 1}, 40),
}
#: Each algorithm's extractor networks by default: (online module path, target module paths).
EXTRACTORS = {
    "dqn": {"critic_features": ("q_net.features_extractor", ["q_net_target.features_extractor"])},
    "ppo": {"features": ("features_extractor", [])},
    "sac": {
        "actor_features": ("actor.features_extractor", []),
        "critic_features": ("critic.features_extractor", ["critic_target.features_extractor"]),
    },
    "td3": {
        "actor_features": ("actor.features_extractor", ["actor_target.features_extractor"]),
        "critic_features": ("critic.features_extractor", ["critic_target.features_extractor"]),
    },
}
INTERVAL = 4
FEATURES = {"density": 0.2}


def make(
    name: str, dict_obs: bool = False, seed: int = 0, alias: bool = True, **policy_kwargs: Any
) -> BaseAlgorithm:
    """``SparseX("SparseCnnPolicy" | "SparseMultiInputPolicy")`` on TinyPixels, tiny nets, a
    sparse extractor unless told otherwise."""
    cls, _, discrete, kwargs, _ = ALGOS[name]
    extractor = {"cnn_output_dim": 16} if dict_obs else {"features_dim": 16}
    policy_kwargs = {
        "net_arch": [16],
        "features_extractor_kwargs": extractor,
        "updater": sn.RigL(interval=INTERVAL),
        "features_extractor_sparsity": FEATURES,
        **policy_kwargs,
    }
    policy = "SparseMultiInputPolicy" if dict_obs else "SparseCnnPolicy"
    env = TinyPixels(discrete, dict_obs)
    return cls(policy, env, policy_kwargs=policy_kwargs, seed=seed, **kwargs)


def extractor_layers(module: nn.Module) -> list[str]:
    return [n for n, m in module.named_modules() if isinstance(m, sn.SPARSIFIABLE)]


def assert_extractors_sparse(model: BaseAlgorithm, name: str, density: float) -> None:
    """Each extractor network: every conv / linear layer masked with its exact ERK count, zero
    weights where inactive, and every target carrying the online masks with zeros there too."""
    policy = model.policy
    for network, (path, targets) in EXTRACTORS[name].items():
        state = policy.sparse_networks[network]
        extractor = policy.get_submodule(path)
        assert state.module is extractor
        layers = extractor_layers(extractor)
        assert list(state.sparsity.masks) == layers and any("cnn" in n for n in layers)
        shapes = {n: tuple(extractor.get_submodule(n).weight.shape) for n in layers}
        counts = sn.layer_counts(shapes, density, "erk")
        for layer, mask in state.sparsity.masks.items():
            assert int(mask.sum()) == counts[layer], f"{network}.{layer}"
            for module in (extractor, *(policy.get_submodule(t) for t in targets)):
                assert torch.equal(getattr(module.get_submodule(layer), sn.MASK) != 0, mask)
                assert torch.all(module.get_submodule(layer).weight[~mask] == 0), layer


@pytest.mark.parametrize("dict_obs", [False, True], ids=["pixels", "dict"])
@pytest.mark.parametrize("name", ["dqn", "ppo", "sac"])
def test_sparse_extractor_stays_exact_and_targets_follow(name: str, dict_obs: bool) -> None:
    """The extractor is a sparse network of its own with the asked density; after training
    across topology updates (its masks changed) counts stay exact, inactive weights zero, and
    the target extractors (DQN's q_net_target, SAC's critic_target) follow its masks."""
    model = make(name, dict_obs)
    policy = model.policy
    extractor = NatureCNN if not dict_obs else CombinedExtractor
    assert type(policy.get_submodule(EXTRACTORS[name][next(iter(EXTRACTORS[name]))][0])) is (
        extractor
    )
    assert_extractors_sparse(model, name, FEATURES["density"])
    before = masks_of(model)
    model.learn(ALGOS[name][4])
    for network in EXTRACTORS[name]:
        sparsity = policy.sparse_networks[network].sparsity
        assert sparsity.step_count >= 2 * INTERVAL, network
        assert any(not torch.equal(before[network][n], m) for n, m in sparsity.masks.items())
    assert_extractors_sparse(model, name, FEATURES["density"])
    for network in ("actor", "critic") if name != "dqn" else ("critic",):
        masks = policy.sparse_networks[network].sparsity.masks
        assert not any("features_extractor" in layer for layer in masks), network


@pytest.mark.parametrize("name", ["dqn", "sac"])
def test_target_extractors_start_as_copies(name: str) -> None:
    """SB3 copies the online net into its target; sparsifying changes the online extractor
    (masks, rescaled rows), so the target starts again as its exact copy."""
    policy = make(name).policy
    for path, targets in EXTRACTORS[name].values():
        for target in targets:
            assert_states_equal(
                policy.get_submodule(target).state_dict(), policy.get_submodule(path).state_dict()
            )


@pytest.mark.parametrize(
    ("name", "share", "expected"),
    [
        ("ppo", False, {"actor_features", "critic_features"}),
        ("sac", True, {"features"}),
        ("td3", True, {"features"}),
    ],
)
def test_shared_or_separate_extractors(name: str, share: bool, expected: set[str]) -> None:
    """One ``"features"`` network where SB3 shares one extractor (PPO's default; SAC/TD3 with
    ``share_features_extractor=True``, trained by the actor's optimizer, both targets' copies
    following), one per network otherwise."""
    model = make(name, share_features_extractor=share)
    policy = model.policy
    assert {n for n in policy.sparse_networks if "features" in n} == expected
    if name == "ppo":
        for network, path in (("actor", "pi"), ("critic", "vf")):
            state = policy.sparse_networks[f"{network}_features"]
            assert state.module is getattr(policy, f"{path}_features_extractor")
            assert state.sparsity.optimizer is policy.optimizer
        return
    state = policy.sparse_networks["features"]
    assert state.module is policy.actor.features_extractor is policy.critic.features_extractor
    assert state.sparsity.optimizer is policy.actor.optimizer
    model.learn(ALGOS[name][4])
    assert state.sparsity.step_count >= 2 * INTERVAL
    targets = ["critic_target"] + (["actor_target"] if name == "td3" else [])
    for target in targets:
        copy = getattr(policy, target).features_extractor
        assert set(mask_buffers(copy)) == set(state.sparsity.masks)
        for layer, mask in state.sparsity.masks.items():
            assert torch.equal(getattr(copy.get_submodule(layer), sn.MASK) != 0, mask)
            assert torch.all(copy.get_submodule(layer).weight[~mask] == 0), f"{target}.{layer}"


def test_extractors_dense_by_default_and_settings_layered() -> None:
    """Without ``features_extractor_sparsity`` the extractor stays dense (as before); a mapping is
    laid over the shared keys; a ``SparsitySettings`` is taken as it is."""
    policy = make("ppo", features_extractor_sparsity=None).policy
    assert set(policy.sparse_networks) == {"actor", "critic"}
    assert mask_buffers(policy.features_extractor) == {}
    shared = make("ppo", density=0.3, features_extractor_sparsity={"distribution": "uniform"})
    sparsity = shared.policy.sparse_networks["features"].sparsity
    for layer in sparsity.stats().layers:
        assert abs(layer.density - 0.3) <= 1 / layer.numel, layer.name
    assert sparsity.updater == sn.RigL(interval=INTERVAL)
    own = sn.SparsitySettings(density=0.5, updater="static")
    state = make("dqn", features_extractor_sparsity=own).policy.sparse_networks["critic_features"]
    assert state.settings == own
    assert state.sparsity.stats().active == round(0.5 * state.sparsity.stats().numel)


def test_layers_input_selects_each_image_key_first_conv() -> None:
    """``layers="input"`` for an extractor: the first conv of each image key's CNN."""
    model = make("sac", dict_obs=True, features_extractor_sparsity={"layers": "input"})
    for network in ("actor_features", "critic_features"):
        masks = model.policy.sparse_networks[network].sparsity.masks
        assert list(masks) == ["extractors.img.cnn.0"]


@pytest.mark.parametrize(
    ("name", "policies"),
    [
        ("dqn", (SparseDQNCnnPolicy, SparseDQNMultiInputPolicy)),
        ("ppo", (SparseActorCriticCnnPolicy, SparseActorCriticMultiInputPolicy)),
        ("sac", (SparseSACCnnPolicy, SparseSACMultiInputPolicy)),
        ("td3", (SparseTD3CnnPolicy, SparseTD3MultiInputPolicy)),
    ],
)
def test_aliases_and_stock_classes(name: str, policies: tuple[type, type]) -> None:
    """The aliases name the Cnn / MultiInput classes; the stock SB3 class takes them too."""
    alias, stock, discrete, kwargs, _ = ALGOS[name]
    cnn, multi = policies
    assert alias.policy_aliases["SparseCnnPolicy"] is cnn
    assert alias.policy_aliases["SparseMultiInputPolicy"] is multi
    model = stock(
        cnn,
        TinyPixels(discrete),
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 16}, "net_arch": [16]},
        **kwargs,
    )
    assert type(model.policy) is cnn and model.policy.features_extractor_class is NatureCNN
    assert any(isinstance(m, NatureCNN) for m in model.policy.modules())


def test_dqn_cnn_save_load(tmp_path: Path) -> None:
    """A sparse-extractor DQN saved and loaded with the stock class: identical actions, masks
    (online and target) and sparsity state of every network."""
    model = make("dqn")
    before = masks_of(model)
    model.learn(ALGOS["dqn"][4])
    assert masks_changed(before, model)
    model.save(tmp_path / "model")
    loaded = DQN.load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is SparseDQNCnnPolicy
    space = model.observation_space
    space.seed(0)
    obs = np.stack([space.sample() for _ in range(16)])
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    assert set(loaded.policy.sparse_networks) == {"critic", "critic_features"}
    for network, state in model.policy.sparse_networks.items():
        theirs = loaded.policy.sparse_networks[network].sparsity
        assert_states_equal(snapshot(theirs.masks), snapshot(state.sparsity.masks))
        assert_states_equal(theirs.state_dict(), state.sparsity.state_dict())
    assert_states_equal(loaded.policy.state_dict(), model.policy.state_dict())


def test_unsupported_features_extractor_sparsity_is_an_error() -> None:
    """A policy with no SB3 extractor to sparsify refuses the key instead of ignoring it."""
    from sparse_rl.agents import VisualSACPolicy

    with pytest.raises(ConfigError, match="VisualSACPolicy does not take features_extractor"):
        VisualSACPolicy(
            spaces.Box(0, 255, (3, 36, 36), np.uint8),
            spaces.Box(-1, 1, (1,), np.float32),
            lambda _: 1e-3,
            features_extractor_sparsity={"density": 0.5},
        )
