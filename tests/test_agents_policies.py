"""Sparse SB3 policies: save/load, continued training, targets, exact density, optimizer state,
per-network settings, rescaled init, masked gradients and sparsity logging."""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import mask_buffers, snapshot, weight_shaped_state
from sparse_rl.agents import (
    SparseA2C,
    SparseActorCriticPolicy,
    SparseDDPG,
    SparsePPO,
    SparseSAC,
    SparseSACPolicy,
    SparseTD3,
    SparseTD3Policy,
    SparsityLogger,
    anf_kwargs,
)
from sparse_rl.envs import NoisyFeatures
from stable_baselines3 import A2C, DDPG, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from torch import Tensor, nn

from sparse_rl import sparse_nets as sn

ENV = "Pendulum-v1"
NET = [32, 32]
DENSITY = 0.1
NETWORKS = ("actor", "critic")
OFF_POLICY = {"learning_starts": 64, "batch_size": 32, "buffer_size": 2_000}


@dataclass(frozen=True)
class Algo:
    stock: type[BaseAlgorithm]
    alias: type[BaseAlgorithm]
    policy: type
    updater: sn.TopologyUpdater  # small interval: several topology updates in `steps`
    steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)


ALGOS = {
    "sac": Algo(SAC, SparseSAC, SparseSACPolicy, sn.RigL(interval=10), 300, OFF_POLICY),
    "td3": Algo(TD3, SparseTD3, SparseTD3Policy, sn.SET(interval=10), 300, OFF_POLICY),
    "ddpg": Algo(DDPG, SparseDDPG, SparseTD3Policy, sn.RigL(interval=10), 300, OFF_POLICY),
    "ppo": Algo(
        PPO,
        SparsePPO,
        SparseActorCriticPolicy,
        sn.RigL(interval=5),
        256,
        {"n_steps": 64, "batch_size": 32, "n_epochs": 2},
    ),
    "a2c": Algo(A2C, SparseA2C, SparseActorCriticPolicy, sn.SET(interval=10), 300, {"n_steps": 5}),
}
#: Weight-shaped optimizer state each algorithm's default optimizer keeps (A2C: RMSprop).
OPTIMIZER_STATE = {
    "sac": {"exp_avg", "exp_avg_sq"},
    "td3": {"exp_avg", "exp_avg_sq"},
    "ddpg": {"exp_avg", "exp_avg_sq"},
    "ppo": {"exp_avg", "exp_avg_sq"},
    "a2c": {"square_avg"},
}


def make_model(
    name: str, route: str = "stock", env: Any = ENV, seed: int = 0, **policy_kwargs: Any
) -> BaseAlgorithm:
    """``Stock(SparsePolicy, env)`` or ``SparseX("SparseMlpPolicy", env)`` with tiny nets."""
    algo = ALGOS[name]
    kwargs = {"net_arch": NET, "density": DENSITY, "updater": algo.updater, **policy_kwargs}
    if route == "stock":
        return algo.stock(algo.policy, env, policy_kwargs=kwargs, seed=seed, **algo.kwargs)
    return algo.alias("SparseMlpPolicy", env, policy_kwargs=kwargs, seed=seed, **algo.kwargs)


def network_linears(policy: nn.Module, network: str) -> tuple[nn.Module, list[str]]:
    """The module holding ``network`` and all its Linear layers, found independently of the
    policy's own bookkeeping (SAC/TD3: the actor / critic module; PPO/A2C: one branch + head)."""
    if isinstance(policy, SparseActorCriticPolicy):
        body, head = {
            "actor": ("mlp_extractor.policy_net.", "action_net"),
            "critic": ("mlp_extractor.value_net.", "value_net"),
        }[network]
        names = [n for n, m in policy.named_modules() if isinstance(m, nn.Linear)]
        return policy, [n for n in names if n.startswith(body)] + [head]
    module = getattr(policy, network)
    return module, [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]


def expected_counts(
    module: nn.Module, layers: list[str], density: float = DENSITY, distribution: str = "erk"
) -> dict[str, int]:
    shapes = {n: tuple(module.get_submodule(n).weight.shape) for n in layers}
    return sn.layer_counts(shapes, density, distribution if len(layers) > 1 else None)


def optimizer_of(policy: nn.Module, network: str) -> torch.optim.Optimizer:
    if isinstance(policy, SparseActorCriticPolicy):
        return policy.optimizer
    return getattr(policy, network).optimizer


def masks_of(model: BaseAlgorithm) -> dict[str, dict[str, Tensor]]:
    return {n: snapshot(s.sparsity.masks) for n, s in model.policy.sparse_networks.items()}


def masks_changed(before: dict[str, dict[str, Tensor]], model: BaseAlgorithm) -> bool:
    now = masks_of(model)
    return any(not torch.equal(before[n][k], now[n][k]) for n in before for k in before[n])


def observations(model: BaseAlgorithm, n: int = 16) -> np.ndarray:
    space = model.observation_space
    space.seed(123)
    return np.stack([space.sample() for _ in range(n)])


def assert_states_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Every tensor of two (nested) state dicts is bitwise equal; other leaves compare with ==."""
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, Tensor):
            assert torch.equal(value, b[key]), key
        elif isinstance(value, dict):
            assert_states_equal(value, b[key])
        else:
            assert value == b[key], key


class RecordCounts(BaseCallback):
    """Every ``every`` env steps: per layer the active count, the weight's non-zero count at
    inactive positions, and each network's optimizer step count."""

    def __init__(self, every: int = 7) -> None:
        super().__init__()
        self.every = every
        self.records: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        if self.n_calls % self.every == 0:
            self.records.append(count_record(self.model.policy))
        return True


def count_record(policy: nn.Module) -> dict[str, Any]:
    record: dict[str, Any] = {"steps": {}, "active": {}, "inactive_nonzero": {}, "buffers": {}}
    for network, state in policy.sparse_networks.items():
        module, _ = network_linears(policy, network)
        record["steps"][network] = state.sparsity.step_count
        buffers = mask_buffers(module)
        for name, mask in state.sparsity.masks.items():
            weight = module.get_submodule(name).weight.detach()
            record["active"][(network, name)] = int(mask.sum())
            record["inactive_nonzero"][(network, name)] = int((weight[~mask] != 0).sum())
            record["buffers"][(network, name)] = torch.equal(buffers[name], mask)
    return record


@functools.cache
def trained(name: str) -> tuple[BaseAlgorithm, dict[str, dict[str, Tensor]], RecordCounts]:
    """One stock-route model per algorithm, trained once per session and only read by tests:
    (model, masks before training, density records taken during training)."""
    torch.manual_seed(0)
    model = make_model(name)
    before = masks_of(model)
    recorder = RecordCounts()
    recorder.records.append(count_record(model.policy))
    model.learn(ALGOS[name].steps, callback=recorder)
    recorder.records.append(count_record(model.policy))
    return model, before, recorder


def assert_crossed_updates(name: str, model: BaseAlgorithm, before: dict[str, Any]) -> None:
    interval = ALGOS[name].updater.interval
    for network, state in model.policy.sparse_networks.items():
        assert state.sparsity.step_count >= 2 * interval, network
    assert masks_changed(before, model), "no topology update changed a mask"


# -- 1. save / load -------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["stock", "alias"])
@pytest.mark.parametrize("name", list(ALGOS))
def test_save_load_roundtrip(name: str, route: str, tmp_path: Path) -> None:
    """After a few hundred steps, Cls.load gives the same deterministic actions, parameters,
    masks, step counts and sparsity state, for ``Stock(SparsePolicy)`` and for
    ``SparseX("SparseMlpPolicy")``."""
    algo = ALGOS[name]
    if route == "stock":
        model, before = trained(name)[:2]
    else:
        model = make_model(name, route)
        before = masks_of(model)
        model.learn(algo.steps)
    assert_crossed_updates(name, model, before)
    model.save(tmp_path / "model")
    cls = algo.stock if route == "stock" else algo.alias
    loaded = cls.load(tmp_path / "model", device="cpu")

    assert type(loaded.policy) is algo.policy
    obs = observations(model)
    expected, _ = model.predict(obs, deterministic=True)
    actual, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actual, expected)
    assert set(loaded.policy.sparse_networks) == set(NETWORKS)
    for network in NETWORKS:
        ours = model.policy.sparse_networks[network].sparsity
        theirs = loaded.policy.sparse_networks[network].sparsity
        assert theirs.step_count == ours.step_count > 0
        assert_states_equal(theirs.masks, ours.masks)
        assert_states_equal(theirs.state_dict(), ours.state_dict())
        assert theirs.stats() == ours.stats()
    state, loaded_state = model.policy.state_dict(), loaded.policy.state_dict()
    assert_states_equal(
        {k: v for k, v in loaded_state.items() if k != "_extra_state"},
        {k: v for k, v in state.items() if k != "_extra_state"},
    )


@pytest.mark.parametrize("name", ["sac", "ppo"])
def test_policy_save_load_keeps_sparse_settings(name: str, tmp_path: Path) -> None:
    """``policy.save`` / ``Policy.load`` rebuild the policy with its sparse kwargs and state."""
    model = trained(name)[0]
    model.policy.save(tmp_path / "policy")
    policy = ALGOS[name].policy.load(tmp_path / "policy", device="cpu")
    for network in NETWORKS:
        ours = model.policy.sparse_networks[network].sparsity
        theirs = policy.sparse_networks[network].sparsity
        assert theirs.updater == ALGOS[name].updater
        assert theirs.step_count == ours.step_count > 0
        assert_states_equal(theirs.masks, ours.masks)
    obs = observations(model)
    np.testing.assert_array_equal(
        policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )


# -- 2. a reloaded model continues with the same topology updates ---------------------------------


@pytest.mark.parametrize(
    ("name", "updater"),
    [("sac", sn.SET(interval=7)), ("sac", sn.RigL(interval=7)), ("td3", sn.RigL(interval=5))],
    ids=["sac-set", "sac-rigl", "td3-rigl"],
)
def test_reloaded_model_continues_identically(
    name: str, updater: sn.TopologyUpdater, tmp_path: Path
) -> None:
    """A (trained, saved with its replay buffer) and B (loaded) take the same gradient steps from
    the same seeds across topology updates: masks, weights, optimizer and sparsity state agree."""
    algo = ALGOS[name]
    a = make_model(name, updater=updater)
    a.learn(150)
    a.save(tmp_path / "model")
    a.save_replay_buffer(tmp_path / "buffer")
    b = algo.stock.load(tmp_path / "model", device="cpu")
    b.load_replay_buffer(tmp_path / "buffer")
    b.set_logger(configure(None, []))
    assert b._n_updates == a._n_updates > 0
    before = masks_of(a)
    steps_before = {n: s.sparsity.step_count for n, s in a.policy.sparse_networks.items()}

    for model in (a, b):
        torch.manual_seed(1)
        np.random.seed(1)
        model.train(gradient_steps=24, batch_size=32)

    assert masks_changed(before, a), "the continued training crossed no topology update"
    for network, state in a.policy.sparse_networks.items():
        crossed = state.sparsity.step_count // updater.interval
        assert crossed > steps_before[network] // updater.interval, network
    assert masks_of(b).keys() == masks_of(a).keys()
    for network in NETWORKS:
        assert_states_equal(masks_of(b)[network], masks_of(a)[network])
        assert_states_equal(
            b.policy.sparse_networks[network].sparsity.state_dict(),
            a.policy.sparse_networks[network].sparsity.state_dict(),
        )
    assert_states_equal(b.policy.state_dict(), a.policy.state_dict())
    for network in NETWORKS:
        a_opt, b_opt = optimizer_of(a.policy, network), optimizer_of(b.policy, network)
        assert_states_equal(b_opt.state_dict()["state"], a_opt.state_dict()["state"])


# -- 3. target networks follow the online masks ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pairs"),
    [
        ("sac", [("critic", "critic_target")]),
        ("td3", [("critic", "critic_target"), ("actor", "actor_target")]),
        ("ddpg", [("critic", "critic_target"), ("actor", "actor_target")]),
    ],
)
def test_targets_follow_online_masks(name: str, pairs: list[tuple[str, str]]) -> None:
    """After topology updates, each target's ``weight_mask`` equals the online mask and its
    weights are exactly zero wherever the online mask is zero."""
    model, before = trained(name)[:2]
    assert_crossed_updates(name, model, before)
    policy = model.policy
    for online_name, target_name in pairs:
        state = policy.sparse_networks[online_name]
        target = getattr(policy, target_name)
        assert set(mask_buffers(target)) == set(state.sparsity.masks)
        assert not all(
            torch.equal(before[online_name][k], m) for k, m in state.sparsity.masks.items()
        )
        for layer, mask in state.sparsity.masks.items():
            module = target.get_submodule(layer)
            assert torch.equal(getattr(module, sn.MASK) != 0, mask), f"{target_name}.{layer}"
            weight = module.weight.detach()
            assert torch.all(weight[~mask] == 0), f"{target_name}.{layer}: weight at inactive"
            assert torch.any(weight[mask] != 0), f"{target_name}.{layer}: all zero"


# -- 4. exact density through training ------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALGOS))
def test_density_exact_through_training(name: str) -> None:
    """At every checkpoint during learn (before, between and after topology updates) each sparse
    layer has exactly the count its density and ERK give, and zero weights where inactive."""
    model, before, recorder = trained(name)
    assert_crossed_updates(name, model, before)
    policy = model.policy
    expected = {}
    for network in NETWORKS:
        module, layers = network_linears(policy, network)
        assert set(policy.sparse_networks[network].sparsity.masks) == set(layers)
        total = sum(module.get_submodule(n).weight.numel() for n in layers)
        counts = expected_counts(module, layers)
        assert sum(counts.values()) == round(DENSITY * total)
        expected.update({(network, n): c for n, c in counts.items()})
    records = recorder.records
    assert len(records) >= 10
    interval = ALGOS[name].updater.interval
    updates_seen = {r["steps"]["actor"] // interval for r in records}
    assert len(updates_seen) >= 3, "checkpoints should span several topology updates"
    for record in records:
        assert record["active"] == expected, f"at optimizer steps {record['steps']}"
        assert not any(record["inactive_nonzero"].values()), f"at {record['steps']}"
        assert all(record["buffers"].values())


# -- 5. optimizer state stays zero at inactive weights --------------------------------------------


@pytest.mark.parametrize("name", list(ALGOS))
def test_optimizer_state_zero_at_inactive(name: str) -> None:
    """After training with topology updates, the optimizer's moments (A2C: RMSprop's
    ``square_avg``; the others: Adam's ``exp_avg`` / ``exp_avg_sq``) are exactly zero at
    every inactive weight and non-zero at active ones."""
    model, before = trained(name)[:2]
    assert_crossed_updates(name, model, before)
    policy = model.policy
    if name == "a2c":
        assert isinstance(policy.optimizer, torch.optim.RMSprop)
    for network, state in policy.sparse_networks.items():
        module, _ = network_linears(policy, network)
        optimizer = optimizer_of(policy, network)
        for layer, mask in state.sparsity.masks.items():
            weight = module.get_submodule(layer).weight
            moments = weight_shaped_state(optimizer, weight)
            assert set(moments) == OPTIMIZER_STATE[name], f"{network}.{layer}"
            for key, value in moments.items():
                assert torch.all(value[~mask] == 0), f"{network}.{layer}: {key} at inactive"
                assert torch.any(value[mask] != 0), f"{network}.{layer}: {key} all zero"


# -- 6. per-network settings ----------------------------------------------------------------------


def linear_names(module: nn.Module) -> set[str]:
    return {n for n, m in module.named_modules() if isinstance(m, nn.Linear)}


@pytest.mark.parametrize("name", ["sac", "td3", "ppo"])
def test_dense_critic(name: str, tmp_path: Path) -> None:
    """``critic_sparsity=dict(density=1.0)`` keeps the critic (and its target) dense while the
    actor is sparse; a saved-and-loaded model keeps it that way."""
    model = make_model(name, critic_sparsity={"density": 1.0})
    model.save(tmp_path / "model")
    loaded = ALGOS[name].stock.load(tmp_path / "model", device="cpu")
    for m in (model, loaded):
        policy = m.policy
        assert set(policy.sparse_networks) == {"actor"}
        _, actor_layers = network_linears(policy, "actor")
        assert set(policy.sparse_networks["actor"].sparsity.masks) == set(actor_layers)
        if isinstance(policy, SparseActorCriticPolicy):
            assert set(mask_buffers(policy)) == set(actor_layers)
        else:
            assert mask_buffers(policy.critic) == {}
            assert mask_buffers(policy.critic_target) == {}
            assert set(mask_buffers(policy.actor)) == set(actor_layers)


@pytest.mark.parametrize(
    ("name", "inputs"),
    [
        ("sac", {"actor": {"latent_pi.0"}, "critic": {"qf0.0", "qf1.0"}}),
        ("td3", {"actor": {"mu.0"}, "critic": {"qf0.0", "qf1.0"}}),
        (
            "ppo",
            {"actor": {"mlp_extractor.policy_net.0"}, "critic": {"mlp_extractor.value_net.0"}},
        ),
    ],
)
def test_input_layers_only(name: str, inputs: dict[str, set[str]]) -> None:
    """``layers="input"`` makes only the layers reading the observation sparse."""
    policy = make_model(name, layers="input").policy
    for network, layers in inputs.items():
        assert set(policy.sparse_networks[network].sparsity.masks) == layers
        module, _ = network_linears(policy, network)
        counts = expected_counts(module, sorted(layers))
        for layer in layers:
            assert int(getattr(module.get_submodule(layer), sn.MASK).sum()) == counts[layer]
    if name == "ppo":
        assert set(mask_buffers(policy)) == inputs["actor"] | inputs["critic"]
    else:
        assert set(mask_buffers(policy.actor)) == inputs["actor"]
        assert set(mask_buffers(policy.critic)) == inputs["critic"]
        assert set(mask_buffers(policy.critic_target)) == inputs["critic"]
    if name == "td3":
        assert set(mask_buffers(policy.actor_target)) == inputs["actor"]


@pytest.mark.parametrize(
    ("name", "inputs"),
    [("sac", {"actor": {"latent_pi.0"}}), ("td3", {"actor": {"mu.0"}})],
)
def test_anf_kwargs(name: str, inputs: dict[str, set[str]]) -> None:
    """``anf_kwargs``: 80% sparse input layers updated by SET(1000, 0.05), dense hidden layers."""
    inputs = {**inputs, "critic": {"qf0.0", "qf1.0"}}
    algo = ALGOS[name]
    kwargs = anf_kwargs(name, net_arch=NET)
    model = algo.stock(algo.policy, ENV, seed=0, **kwargs)
    policy = model.policy
    for network, layers in inputs.items():
        sparsity = policy.sparse_networks[network].sparsity
        assert sparsity.updater == sn.SET(interval=1000, drop_fraction=0.05)
        assert set(sparsity.masks) == layers
        stats = sparsity.stats()
        assert stats.active == round(0.2 * stats.numel)
        for layer in stats.layers:
            assert abs(layer.density - 0.2) <= 1 / layer.numel, layer.name
        module = getattr(policy, network)
        for hidden in linear_names(module) - layers:
            assert sn.MASK not in module.get_submodule(hidden)._buffers, hidden
    if name == "td3":
        assert set(mask_buffers(policy.actor_target)) == inputs["actor"]
    assert set(mask_buffers(policy.critic_target)) == inputs["critic"]


@pytest.mark.parametrize("name", ["sac", "td3"])
def test_anf_paper_settings(name: str) -> None:
    """``paper=True`` adds ANF's hyperparameters; the models built from them use them."""
    kwargs = anf_kwargs(name, paper=True)
    assert kwargs["learning_rate"] == 1e-3
    assert kwargs["batch_size"] == 100
    assert kwargs["learning_starts"] == 25_000
    assert kwargs["gamma"] == 0.99 and kwargs["tau"] == 0.005
    assert kwargs["policy_kwargs"]["net_arch"] == [256, 256]
    assert kwargs["policy_kwargs"]["optimizer_kwargs"] == {"weight_decay": 2e-4}
    assert kwargs["policy_kwargs"]["updater"] == sn.SET(interval=1000, drop_fraction=0.05)
    assert kwargs.get("ent_coef") == (0.2 if name == "sac" else None)
    algo = ALGOS[name]
    model = algo.stock(algo.policy, ENV, seed=0, **kwargs)
    assert model.batch_size == 100 and model.learning_starts == 25_000
    for network in NETWORKS:
        group = optimizer_of(model.policy, network).param_groups[0]
        assert group["lr"] == 1e-3 and group["weight_decay"] == 2e-4
    assert model.policy.critic.qf0[0].out_features == 256
    if name == "sac":
        assert float(model.ent_coef_tensor) == pytest.approx(0.2)
    overridden = anf_kwargs(name, paper=True, net_arch=[64, 64], density=0.5)
    assert overridden["policy_kwargs"]["net_arch"] == [64, 64]
    assert overridden["policy_kwargs"]["density"] == 0.5


# -- 7. rescaled init ------------------------------------------------------------------------------


def weights_by_layer(model: BaseAlgorithm) -> dict[tuple[str, str], Tensor]:
    policy = model.policy
    out = {}
    for network in NETWORKS:
        module, layers = network_linears(policy, network)
        for layer in layers:
            out[(network, layer)] = module.get_submodule(layer).weight.detach().clone()
    return out


@pytest.mark.parametrize("name", ["ppo", "sac"])
@pytest.mark.parametrize("rescale", [True, False])
def test_rescale_init(name: str, rescale: bool) -> None:
    """rescale_init=True: every sparse row keeps the norm (and direction of its surviving
    entries) of the dense row the same seed builds (PPO: orthogonal init); False: the masked dense
    row, with a smaller norm."""
    kwargs = {"net_arch": [64, 64], "updater": "static"}
    dense = weights_by_layer(make_model(name, seed=3, density=1.0, **kwargs))
    model = make_model(name, seed=3, rescale_init=rescale, **kwargs)
    sparse = weights_by_layer(model)
    ratios = []
    for (network, layer), weight in sparse.items():
        mask = model.policy.sparse_networks[network].sparsity.masks[layer]
        reference = dense[(network, layer)]
        dense_norm = reference.norm(dim=1)
        sparse_norm = weight.norm(dim=1)
        live = mask.any(dim=1)
        assert live.float().mean() > 0.5, f"{layer}: most rows should keep a weight"
        assert torch.all(weight[~mask] == 0)
        if rescale:
            torch.testing.assert_close(sparse_norm[live], dense_norm[live], rtol=1e-5, atol=0)
            scale = (dense_norm / (reference * mask).norm(dim=1).clamp_min(1e-30))[live]
            torch.testing.assert_close(weight[live], (reference * mask)[live] * scale[:, None])
        else:
            assert torch.equal(weight, reference * mask)
            lost = (~mask & (reference != 0)).any(dim=1)
            assert torch.all(sparse_norm[lost] < dense_norm[lost])
        ratios.append(float((sparse_norm[live] / dense_norm[live]).mean()))
    if not rescale:  # ~sqrt(density) of the dense scale on the big hidden layers
        assert min(ratios) < 0.5


# -- 8. PPO's gradient clipping sees masked gradients ---------------------------------------------


def test_ppo_gradients_masked_before_clipping() -> None:
    """After ``backward`` the ``.grad`` of sparse weights is zero at inactive positions (the dense
    gradient there is not), so ``clip_grad_norm_`` measures the active gradients only."""
    model = make_model("ppo")
    policy = model.policy
    obs = torch.as_tensor(observations(model, 64))
    space = model.action_space
    space.seed(0)
    actions = torch.as_tensor(np.stack([space.sample() for _ in range(64)]))
    values, log_prob, entropy = policy.evaluate_actions(obs, actions)
    loss = -log_prob.mean() + values.pow(2).mean() - 0.01 * entropy.mean()

    sparse = {
        (network, layer): (policy.get_submodule(layer).weight, mask)
        for network, state in policy.sparse_networks.items()
        for layer, mask in state.sparsity.masks.items()
    }
    weights = [w for w, _ in sparse.values()]
    dense_grads = torch.autograd.grad(loss, weights, retain_graph=True)
    policy.optimizer.zero_grad()
    loss.backward()
    masked_norm_sq = 0.0
    dense_norm_sq = 0.0
    sparse_ids = {id(w) for w in weights}
    for (weight, mask), dense in zip(sparse.values(), dense_grads, strict=True):
        assert torch.all(weight.grad[~mask] == 0)
        torch.testing.assert_close(weight.grad[mask], dense[mask])
        masked_norm_sq += float((dense * mask).pow(2).sum())
        dense_norm_sq += float(dense.pow(2).sum())
    assert dense_norm_sq > masked_norm_sq, "the dense gradient should be non-zero where inactive"
    others = sum(
        float(p.grad.pow(2).sum())
        for p in policy.parameters()
        if p.grad is not None and id(p) not in sparse_ids
    )
    total = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm=1e-3)
    assert float(total) == pytest.approx(math.sqrt(masked_norm_sq + others), rel=1e-5)


def test_ppo_grads_masked_after_learning() -> None:
    """At the end of PPO.learn (clip, step, topology updates) the left-over ``.grad`` of every
    sparse weight is zero at inactive positions."""
    model, before = trained("ppo")[:2]
    assert_crossed_updates("ppo", model, before)
    for state in model.policy.sparse_networks.values():
        for layer, mask in state.sparsity.masks.items():
            grad = model.policy.get_submodule(layer).weight.grad
            assert grad is not None and torch.any(grad[mask] != 0), layer
            assert torch.all(grad[~mask] == 0), layer


# -- 9. logging -----------------------------------------------------------------------------------


def read_progress(folder: Path) -> list[dict[str, str]]:
    with open(folder / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def values(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key)]


@pytest.mark.parametrize("name", ["sac", "ppo"])
def test_sparsity_logger_noise_diagnostic(name: str, tmp_path: Path) -> None:
    """On a NoisyFeatures env, SparsityLogger writes density, churn and ANF's real / noise
    connections into SB3's logger; the connection averages add up to the input layer's count."""
    env = NoisyFeatures(gym.make(ENV, max_episode_steps=50), noise_fraction=0.9)
    model = make_model(name, env=env, updater="static")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(128, callback=SparsityLogger(every=10), log_interval=1)
    rows = read_progress(tmp_path)
    assert len(rows) >= 2
    keys = ["density", "churn", "real_connections", "noise_connections"]
    for network in NETWORKS:
        for key in keys:
            assert values(rows, f"sparsity/{network}_{key}"), f"{network}_{key} not logged"
    policy = model.policy
    for network, state in policy.sparse_networks.items():
        stats = state.sparsity.stats()
        assert values(rows, f"sparsity/{network}_density")[-1] == pytest.approx(stats.density)
        obs_dim = model.observation_space.shape[0]
        assert obs_dim == 30 and len(env.real_indices) == 3
        per_layer = [
            float(state.sparsity.input_connectivity(layer)[:obs_dim].sum())
            for layer in state.input_layers
        ]
        active = sum(per_layer) / len(per_layer)
        real_mean = values(rows, f"sparsity/{network}_real_connections")[-1]
        noise_mean = values(rows, f"sparsity/{network}_noise_connections")[-1]
        assert real_mean * 3 + noise_mean * 27 == pytest.approx(active, rel=1e-5)


def test_sparse_sac_logs_by_default_on_plain_env(tmp_path: Path) -> None:
    """SparseSAC records density and churn without being asked; a plain env has no real / noise
    split, so the connectivity keys are absent; stock SAC with the same policy logs none."""
    model = make_model("sac", route="alias", env=gym.make(ENV, max_episode_steps=50))
    model.set_logger(configure(str(tmp_path / "alias"), ["csv"]))
    model.learn(128, log_interval=1)
    rows = read_progress(tmp_path / "alias")
    for network in NETWORKS:
        density = values(rows, f"sparsity/{network}_density")
        assert density and density[0] == pytest.approx(DENSITY, abs=0.01)
        assert values(rows, f"sparsity/{network}_churn") == [0.0]
    assert not any("connections" in key for key in rows[0])

    stock = make_model("sac", env=gym.make(ENV, max_episode_steps=50))
    stock.set_logger(configure(str(tmp_path / "stock"), ["csv"]))
    stock.learn(64, log_interval=1)
    assert not any(key.startswith("sparsity/") for key in read_progress(tmp_path / "stock")[0])


def test_sparsity_logger_churn_after_updates(tmp_path: Path) -> None:
    """Once topology updates ran, the logged churn is the fraction of new connections (> 0)."""
    model = make_model("ppo", updater=sn.SET(interval=2, drop_fraction=0.3))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(192, callback=SparsityLogger(every=1))
    rows = read_progress(tmp_path)
    for network in NETWORKS:
        churn = values(rows, f"sparsity/{network}_churn")
        assert churn[0] == 0.0 and churn[-1] > 0.0
        assert values(rows, f"sparsity/{network}_optimizer_steps")[-1] > 0


def test_sparsity_logger_rejects_dense_policy() -> None:
    """SparsityLogger on a stock dense policy raises a TypeError naming what it needs."""
    model = SAC("MlpPolicy", ENV, policy_kwargs={"net_arch": NET}, learning_starts=10)
    with pytest.raises(TypeError, match=r"SparsityLogger needs a sparse policy.*got SACPolicy"):
        model.learn(20, callback=SparsityLogger())


def test_models_saved_before_the_agents_were_grouped_still_find_their_classes() -> None:
    """SB3 pickles class paths: the old module paths resolve to the moved classes."""
    import importlib

    from sparse_rl import agents

    old = {
        "sparse_rl.agents.sparse_policies": ("SparseSACPolicy", agents.SparseSACPolicy),
        "sparse_rl.agents.visual_policy": ("VisualSACPolicy", agents.VisualSACPolicy),
        "sparse_rl.agents.pbrl": ("PbRLConfig", agents.PbRLConfig),
        "sparse_rl.agents.teacher": ("SimulatedTeacher", agents.SimulatedTeacher),
        "sparse_rl.agents.preference_buffer": ("PreferenceReplayBuffer",
                                               agents.PreferenceReplayBuffer),
        "sparse_rl.agents.frame_buffer": ("FrameReplayBuffer", agents.FrameReplayBuffer),
    }  # fmt: skip
    for path, (name, cls) in old.items():
        assert getattr(importlib.import_module(path), name) is cls, path
