"""Sparse DQN with the stock SB3 class: the alias, save/load and a reload's identical future
topology, the target Q-network following the online masks, exact density through training,
RigL's dense-gradient growth under DQN's Huber loss and gradient clipping, and logging."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import mask_buffers, snapshot
from sparse_rl.agents import SparseDQN, SparseDQNPolicy, SparsityLogger
from sparse_rl.envs import NoisyFeatures
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from test_agents_policies import (
    assert_states_equal,
    masks_changed,
    masks_of,
    observations,
    read_progress,
    values,
)

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError

ENV = "CartPole-v1"
UPDATER = sn.RigL(interval=10)
NET = [32, 32]
DENSITY = 0.1
LAYERS = ["q_net.0", "q_net.2", "q_net.4"]
#: One gradient step per env step, a hard target copy every 25 env steps.
KWARGS = {
    "learning_starts": 64,
    "batch_size": 32,
    "buffer_size": 2_000,
    "train_freq": 1,
    "target_update_interval": 25,
}


def make_dqn(
    route: str = "stock",
    env: Any = ENV,
    seed: int = 0,
    updater: sn.TopologyUpdater = UPDATER,
    algo_kwargs: dict[str, Any] | None = None,
    **policy_kwargs: Any,
) -> DQN:
    """``DQN(SparseDQNPolicy, env)`` or ``SparseDQN("SparseMlpPolicy", env)`` with a tiny net."""
    kwargs = {"net_arch": NET, "density": DENSITY, "updater": updater, **policy_kwargs}
    algo = {**KWARGS, **(algo_kwargs or {})}
    if route == "stock":
        return DQN(SparseDQNPolicy, env, policy_kwargs=kwargs, seed=seed, **algo)
    return SparseDQN("SparseMlpPolicy", env, policy_kwargs=kwargs, seed=seed, **algo)


def expected_counts(q_net: torch.nn.Module, density: float = DENSITY) -> dict[str, int]:
    shapes = {n: tuple(q_net.get_submodule(n).weight.shape) for n in LAYERS}
    return sn.layer_counts(shapes, density, "erk")


class CheckEveryStep(BaseCallback):
    """After every env step: exact active counts, zero inactive weights in the online and the
    target Q-network, target masks equal to the online ones."""

    def __init__(self, expected: dict[str, int]) -> None:
        super().__init__()
        self.expected = expected
        self.checked_steps: set[int] = set()

    def _on_step(self) -> bool:
        policy = self.model.policy
        sparsity = policy.sparse_networks["critic"].sparsity
        target_masks = mask_buffers(policy.q_net_target)
        for layer, mask in sparsity.masks.items():
            assert int(mask.sum()) == self.expected[layer], layer
            for net in (policy.q_net, policy.q_net_target):
                assert torch.all(net.get_submodule(layer).weight[~mask] == 0), layer
            assert torch.equal(target_masks[layer], mask), layer
        self.checked_steps.add(sparsity.step_count)
        return True


@functools.cache
def trained() -> tuple[DQN, dict[str, dict[str, torch.Tensor]], CheckEveryStep]:
    """One stock-route sparse DQN trained across topology updates and hard target copies, once
    per session and only read by tests."""
    torch.manual_seed(0)
    model = make_dqn()
    before = masks_of(model)
    checker = CheckEveryStep(expected_counts(model.policy.q_net))
    model.learn(300, callback=checker)
    return model, before, checker


def test_alias_and_stock_class_build_a_sparse_q_network() -> None:
    """``DQN(SparseDQNPolicy)`` and ``SparseDQN("SparseMlpPolicy")`` make the Q-network's Linear
    layers sparse with the critic settings; the target starts as an exact copy of it."""
    for route in ("stock", "alias"):
        policy = make_dqn(route).policy
        assert type(policy) is SparseDQNPolicy
        assert set(policy.sparse_networks) == {"critic"}
        sparsity = policy.sparse_networks["critic"].sparsity
        assert list(sparsity.masks) == LAYERS
        assert {n: int(m.sum()) for n, m in sparsity.masks.items()} == expected_counts(policy.q_net)
        assert_states_equal(policy.q_net_target.state_dict(), policy.q_net.state_dict())


def test_critic_sparsity_and_input_layers_reach_the_q_network() -> None:
    """``critic_sparsity`` overrides the shared keys for the Q-network; ``layers="input"`` makes
    only its first layer sparse (and the target's)."""
    policy = make_dqn(critic_sparsity={"density": 0.3}).policy
    assert policy.sparse_networks["critic"].sparsity.stats().active == sum(
        expected_counts(policy.q_net, 0.3).values()
    )
    policy = make_dqn(layers="input").policy
    assert list(policy.sparse_networks["critic"].sparsity.masks) == ["q_net.0"]
    assert set(mask_buffers(policy.q_net_target)) == {"q_net.0"}
    assert make_dqn(critic_sparsity={"density": 1.0}).policy.sparse_networks == {}


@pytest.mark.parametrize("key", ["actor_sparsity", "features_extractor_sparsity"])
def test_keys_that_do_not_apply_are_errors(key: str) -> None:
    """DQN has no actor: ``actor_sparsity`` is refused, naming the critic; a sparse extractor on
    the MLP policy's FlattenExtractor (no layers) is refused too."""
    match = {
        "actor_sparsity": r"actor_sparsity: this policy has no actor network.*critic_sparsity",
        "features_extractor_sparsity": r"FlattenExtractor has no Linear or Conv layer",
    }[key]
    with pytest.raises(ConfigError, match=match):
        make_dqn(**{key: {"density": 0.5}})


@pytest.mark.parametrize("route", ["stock", "alias"])
def test_save_load_roundtrip(route: str, tmp_path: Path) -> None:
    """``DQN.load`` / ``SparseDQN.load`` give the same greedy actions, masks (online and target),
    parameters and sparsity state."""
    if route == "stock":
        model, before = trained()[:2]
    else:
        model = make_dqn(route)
        before = masks_of(model)
        model.learn(300)
    assert masks_changed(before, model)
    model.save(tmp_path / "model")
    loaded = (DQN if route == "stock" else SparseDQN).load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is SparseDQNPolicy
    obs = observations(model, 64)
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    ours = model.policy.sparse_networks["critic"].sparsity
    theirs = loaded.policy.sparse_networks["critic"].sparsity
    assert theirs.step_count == ours.step_count > 0
    assert_states_equal(theirs.state_dict(), ours.state_dict())
    assert_states_equal(mask_buffers(loaded.policy.q_net_target), mask_buffers(model.q_net_target))
    assert_states_equal(loaded.policy.state_dict(), model.policy.state_dict())


def test_reloaded_model_continues_identically(tmp_path: Path) -> None:
    """A (trained, saved with its replay buffer) and B (loaded) take the same gradient steps from
    the same seeds across topology updates: masks, weights, target, optimizer and sparsity state
    agree."""
    updater = sn.RigL(interval=7)
    a = make_dqn(updater=updater)
    a.learn(150)
    a.save(tmp_path / "model")
    a.save_replay_buffer(tmp_path / "buffer")
    b = DQN.load(tmp_path / "model", device="cpu")
    b.load_replay_buffer(tmp_path / "buffer")
    b.set_logger(configure(None, []))
    before = masks_of(a)
    steps_before = a.policy.sparse_networks["critic"].sparsity.step_count
    for model in (a, b):
        torch.manual_seed(1)
        np.random.seed(1)
        model.train(gradient_steps=24, batch_size=32)
    assert masks_changed(before, a), "the continued training crossed no topology update"
    steps = a.policy.sparse_networks["critic"].sparsity.step_count
    assert steps // updater.interval > steps_before // updater.interval
    assert_states_equal(masks_of(b), masks_of(a))
    assert_states_equal(
        b.policy.sparse_networks["critic"].sparsity.state_dict(),
        a.policy.sparse_networks["critic"].sparsity.state_dict(),
    )
    assert_states_equal(b.policy.state_dict(), a.policy.state_dict())
    assert_states_equal(
        b.policy.optimizer.state_dict()["state"], a.policy.optimizer.state_dict()["state"]
    )


def test_density_exact_and_target_follows_through_training() -> None:
    """At every env step of learn (across topology updates and hard target copies) each layer has
    its ERK count, inactive weights are zero in the online and the target Q-network, and the
    target's masks are the online ones."""
    model, before, checker = trained()
    interval = UPDATER.interval
    assert len({s // interval for s in checker.checked_steps}) >= 10
    assert masks_changed(before, model)
    assert model._n_calls // model.target_update_interval >= 5  # several hard copies


def test_rigl_grows_where_the_dense_gradient_is_largest() -> None:
    """Under DQN's Huber loss with its gradient clipping active (a tiny ``max_grad_norm``), a
    RigL update grows each layer exactly at the previously inactive positions with the largest
    |dense gradient| of the update step's batch, drops as many, and grown weights start at 0."""
    interval = 8
    model = make_dqn(
        updater=sn.RigL(interval=interval, drop_fraction=0.3), algo_kwargs={"max_grad_norm": 1e-3}
    )
    model.learn(80)
    sparsity = model.policy.sparse_networks["critic"].sparsity
    to_next = interval - sparsity.step_count % interval
    if to_next > 1:
        model.train(gradient_steps=to_next - 1, batch_size=32)
    assert sparsity.updater.is_update_step(sparsity.step_count + 1)
    before = snapshot(sparsity.masks)
    dense: dict[str, torch.Tensor] = {}
    weights = {n: model.q_net.get_submodule(n).weight for n in before}
    handles = [
        w.register_hook(lambda g, n=n: dense.__setitem__(n, g.detach().clone()))
        for n, w in weights.items()
    ]
    model.train(gradient_steps=1, batch_size=32)
    for handle in handles:
        handle.remove()
    after = snapshot(sparsity.masks)
    updated = [n for n in before if not before[n].all()]  # ERK may keep a small layer dense
    assert updated
    for layer in updated:
        old, new = before[layer], after[layer]
        assert int(new.sum()) == int(old.sum())
        grown = new & ~old
        k = int(grown.sum())
        assert k > 0, layer
        score = dense[layer].abs().masked_fill(old, -float("inf")).flatten()
        largest = torch.zeros_like(score, dtype=torch.bool)
        largest[torch.argsort(score, descending=True)[:k]] = True
        assert torch.equal(grown.flatten(), largest), f"{layer}: growth is not by |dense grad|"
        assert torch.all(weights[layer].detach()[grown] == 0)
        assert torch.all(weights[layer].grad[~old] == 0), "the clipped .grad was masked"


def test_sparsity_logger_records_dqn(tmp_path: Path) -> None:
    """SparseDQN logs the Q-network's density, churn and, on a NoisyFeatures env, its input
    connectivity to real vs noise features; they add up to the input layer's active count."""
    env = NoisyFeatures(gym.make(ENV), noise_fraction=0.75)
    model = make_dqn("alias", env=env, updater=sn.SET(interval=5))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(200, log_interval=1, callback=SparsityLogger(every=20))
    rows = read_progress(tmp_path)
    keys = ["density", "churn", "real_connections", "noise_connections", "optimizer_steps"]
    for key in keys:
        assert values(rows, f"sparsity/critic_{key}"), key
    sparsity = model.policy.sparse_networks["critic"].sparsity
    assert values(rows, "sparsity/critic_density")[-1] == pytest.approx(DENSITY, abs=0.005)
    assert values(rows, "sparsity/critic_churn")[-1] > 0
    real = len(env.real_indices)
    obs_dim = model.observation_space.shape[0]
    assert real == 4 and obs_dim == 16
    active = float(sparsity.input_connectivity("q_net.0").sum())
    real_mean = values(rows, "sparsity/critic_real_connections")[-1]
    noise_mean = values(rows, "sparsity/critic_noise_connections")[-1]
    # the input layer's active count is fixed, whatever update the last record followed
    assert real_mean * real + noise_mean * (obs_dim - real) == pytest.approx(active, rel=1e-5)
