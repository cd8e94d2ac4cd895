"""The preference reward model: ensemble, Bradley–Terry training, R2N sparsity."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from sparse_rl.agents.pbrl.reward_model import RewardEnsemble, RewardModel, preference_loss

from sparse_rl import sparse_nets as sn

OBS, ACT, T = 12, 2, 8
REAL = np.arange(3)  # the reward reads only these observation features; the rest is noise


def pairs(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    o0, o1 = (rng.normal(size=(n, T, OBS)).astype(np.float32) for _ in range(2))
    a0, a1 = (rng.normal(size=(n, T, ACT)).astype(np.float32) for _ in range(2))
    w = np.array([1.0, -0.7, 0.5], dtype=np.float32)
    labels = ((o1[..., REAL] @ w).sum(1) > (o0[..., REAL] @ w).sum(1)).astype(np.float32)
    return o0, a0, o1, a1, labels


def small(sparsity: dict | None = None, seed: int = 0, lr: float = 3e-3) -> RewardModel:
    return RewardModel(OBS, ACT, members=3, hidden=(32, 32), lr=lr, batch_size=32,
                       sparsity=sparsity, seed=seed)  # fmt: skip


def test_ensemble_forward_equals_each_member_alone() -> None:
    ensemble = RewardEnsemble(OBS, ACT, members=3, hidden=(16, 16))
    obs, act = torch.randn(5, T, OBS), torch.randn(5, T, ACT)
    batched = ensemble(obs, act)
    assert batched.shape == (3, 5, T)
    x = torch.cat([obs, act], -1)
    for i, member in enumerate(ensemble.members):
        h = x
        for j, layer in enumerate(member):
            h = layer(h)
            h = torch.tanh(h) if j == len(member) - 1 else torch.nn.functional.leaky_relu(h)
        torch.testing.assert_close(batched[i], h.squeeze(-1))
    assert not torch.allclose(batched[0], batched[1])  # members are initialised independently
    per_member = ensemble(obs.expand(3, -1, -1, -1), act.expand(3, -1, -1, -1), per_member=True)
    torch.testing.assert_close(per_member, batched)


def test_per_member_needs_one_batch_per_member() -> None:
    ensemble = RewardEnsemble(OBS, ACT, members=3, hidden=(8,))
    with pytest.raises(ValueError, match="per_member inputs need 3 batches"):
        ensemble(torch.randn(2, 4, OBS), torch.randn(2, 4, ACT), per_member=True)


def test_rewards_are_bounded_by_tanh() -> None:
    ensemble = RewardEnsemble(OBS, ACT, members=2, hidden=(8,))
    out = ensemble(100 * torch.randn(50, OBS), 100 * torch.randn(50, ACT))
    assert out.abs().max() <= 1.0


def test_preference_loss_sign_and_ties() -> None:
    r_low, r_high = torch.zeros(1, 1), torch.full((1, 1), 3.0)
    prefers_1 = torch.ones(1)
    assert preference_loss(r_low, r_high, prefers_1) < preference_loss(r_high, r_low, prefers_1)
    tie = torch.full((1,), 0.5)
    equal = preference_loss(r_low, r_low, tie)
    assert equal < preference_loss(r_low, r_high, tie)  # a tie is best explained by equal returns


def test_training_learns_held_out_preferences() -> None:
    model = small()
    o0, a0, o1, a1, y = pairs(400, seed=1)
    stats = model.train(o0[:300], a0[:300], o1[:300], a1[:300], y[:300], epochs=40)
    assert stats.steps > 0 and stats.accuracy > 0.9
    assert model.accuracy(o0[300:], a0[300:], o1[300:], a1[300:], y[300:]) > 0.75


def test_training_stops_at_target_accuracy() -> None:
    model = small()
    o0, a0, o1, a1, y = pairs(64, seed=2)
    stats = model.train(o0, a0, o1, a1, y, epochs=200, target_accuracy=0.9)
    assert stats.accuracy >= 0.9
    assert stats.steps < 200 * 2  # stopped well before the last epoch


def test_training_runs_exactly_the_steps_asked() -> None:
    model = small()
    o0, a0, o1, a1, y = pairs(40, seed=2)  # 2 batches a pass: 7 steps cross pass boundaries
    assert model.train(o0, a0, o1, a1, y, steps=7).steps == 7
    with pytest.raises(ValueError, match="not both"):
        model.train(o0, a0, o1, a1, y, steps=7, epochs=2)
    with pytest.raises(ValueError, match="pass epochs with it"):
        model.train(o0, a0, o1, a1, y, target_accuracy=0.9)


def test_input_l1_drives_noise_weights_to_zero() -> None:
    o0, a0, o1, a1, y = pairs(512, seed=5)

    def noise_share(l1: float) -> float:
        model = RewardModel(OBS, ACT, members=2, hidden=(32, 32), lr=3e-3, input_l1=l1, seed=5)
        model.train(o0, a0, o1, a1, y, steps=150)
        mass = sum(m[0].weight.detach().abs().sum(0) for m in model.ensemble.members)
        return float(mass[3:OBS].mean() / mass[REAL].mean())

    plain, penalised = noise_share(0.0), noise_share(0.03)
    assert penalised < 0.5 * plain  # measured 0.06 vs 0.49


def test_r2n_input_layer_finds_the_real_features() -> None:
    """R2N's design (fan-in, L1, RigL growing at strong inputs) on 40 features, 3 real."""
    from sparse_rl.agents.pbrl.agent import r2n_reward_sparsity

    rng = np.random.default_rng(6)
    n, obs = 512, 40
    o0, o1 = (rng.normal(size=(n, T, obs)).astype(np.float32) for _ in range(2))
    a0, a1 = (np.zeros((n, T, ACT), np.float32) for _ in range(2))
    w = np.array([1.0, -0.7, 0.5], dtype=np.float32)
    y = ((o1[..., REAL] @ w).sum(1) > (o0[..., REAL] @ w).sum(1)).astype(np.float32)
    model = RewardModel(obs, ACT, members=2, hidden=(32, 32), lr=3e-3, batch_size=64,
                        sparsity=r2n_reward_sparsity(400), input_l1=0.03, seed=6)  # fmt: skip
    assert model.sparsity is not None
    start = model.input_connectivity()
    model.train(o0, a0, o1, a1, y, steps=400)
    conn = model.input_connectivity()
    real, noise = conn[:, REAL].mean(), np.delete(conn, REAL, axis=1).mean()
    assert start[:, REAL].mean() < 10 and real > 3 * noise  # measured 28 vs 3.8
    # fan-in 8 capped at a sixth of the 42 inputs: 7 per unit
    assert model.sparsity.stats().layers[0].active == round((obs + ACT) * 32 / 6)


def test_fan_in_sets_the_input_density() -> None:
    model = small(sparsity={"fan_in": 7})
    stats = model.sparsity.stats()  # type: ignore[union-attr]
    assert all(layer.active == 7 * 32 for layer in stats.layers)
    assert small(sparsity={"fan_in": 100}).sparsity.stats().layers[0].density == 1.0  # type: ignore[union-attr]


def test_reward_in_chunks_equals_one_pass() -> None:
    model = small()
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(1000, OBS)).astype(np.float32)
    act = rng.normal(size=(1000, ACT)).astype(np.float32)
    np.testing.assert_allclose(model.reward(obs, act, chunk=97), model.reward(obs, act), rtol=1e-6)
    assert model.member_rewards(obs, act).shape == (3, 1000)


def test_r2n_input_layers_sparse_with_exact_density_per_member() -> None:
    model = small(sparsity={"density": 0.25})
    assert model.sparsity is not None
    masks = model.sparsity.masks
    assert sorted(masks) == ["members.0.0", "members.1.0", "members.2.0"]
    for mask in masks.values():
        assert int(mask.sum()) == round(0.25 * mask.numel())
    assert not torch.equal(masks["members.0.0"], masks["members.1.0"])  # own topology each
    conn = model.input_connectivity()
    assert conn.shape == (3, OBS) and conn.sum() < 0.3 * 3 * OBS * 32


def test_r2n_rewires_towards_real_features() -> None:
    # Grown weights start at 0: the interval must let them grow past the weakest old ones.
    updater = sn.SET(interval=50, drop_fraction=0.3)
    model = small(sparsity={"density": 0.25, "updater": updater}, lr=1e-2)
    o0, a0, o1, a1, y = pairs(2048, seed=3)
    model.train(o0, a0, o1, a1, y, epochs=8, target_accuracy=None)
    conn = model.input_connectivity()
    real, noise = conn[:, REAL].mean(), np.delete(conn, REAL, axis=1).mean()
    assert real > 1.5 * noise  # 8 each at the start; measured 13.4 vs 6.7
    for mask in model.sparsity.masks.values():  # type: ignore[union-attr]
        assert int(mask.sum()) == round(0.25 * mask.numel())


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_initial_mask_is_not_the_largest_initial_weights(seed: int) -> None:
    """The mask is drawn from its own stream, not the one that initialised the weights."""
    model = RewardModel(61, 1, members=3, hidden=(64, 64), sparsity={"density": 0.2}, seed=seed)
    for member in model.ensemble.members:
        active = member[0].weight[member[0].weight != 0]
        assert 0.35 < (active > 0).float().mean().item() < 0.65


def test_dense_model_counts_every_connection() -> None:
    conn = small().input_connectivity()
    assert np.all(conn == 32)


def test_state_dict_round_trip_continues_identically() -> None:
    updater = sn.SET(interval=3, drop_fraction=0.3)
    a = small(sparsity={"density": 0.3, "updater": updater}, seed=4)
    o0, a0, o1, a1, y = pairs(64, seed=4)
    a.train(o0, a0, o1, a1, y, epochs=2, target_accuracy=None)
    b = small(sparsity={"density": 0.3, "updater": updater}, seed=99)
    b.load_state_dict(a.state_dict())
    for model in (a, b):
        model.train(o0, a0, o1, a1, y, epochs=3, target_accuracy=None)
    for name, mask in a.sparsity.masks.items():  # type: ignore[union-attr]
        assert torch.equal(mask, b.sparsity.masks[name])  # type: ignore[union-attr]
    obs = np.random.default_rng(0).normal(size=(10, OBS)).astype(np.float32)
    act = np.zeros((10, ACT), np.float32)
    np.testing.assert_array_equal(a.reward(obs, act), b.reward(obs, act))


def test_loading_sparse_into_dense_fails_clearly() -> None:
    sparse = small(sparsity={"density": 0.3})
    with pytest.raises(ValueError, match="saved reward model is sparse"):
        small().load_state_dict(sparse.state_dict())


@pytest.mark.parametrize(
    ("sparsity", "match"),
    [
        ({"densty": 0.2}, r"unknown key 'reward_sparsity.densty' \(did you mean .*density"),
        ({"layers": "hidden"}, r"layers='hidden' matches no layer; the sparsifiable layers are"),
        ({"density": 2.0}, "density"),
        ({"fan_in": 0}, r"fan_in: 0 is not valid; a finite number > 0"),
        ({"fan_in": 4, "layers": "all"}, "fan_in applies to layers='input' only"),
    ],
)
def test_bad_sparsity_settings(sparsity: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        small(sparsity=sparsity)


def test_no_labels_is_an_error() -> None:
    empty = np.zeros((0, T, OBS), np.float32), np.zeros((0, T, ACT), np.float32)
    with pytest.raises(ValueError, match="no labels"):
        small().train(*empty, *empty, np.zeros(0, np.float32))


def test_building_a_reward_model_leaves_the_global_torch_stream_alone() -> None:
    """The caller's torch random stream is not reseeded; the seed still fixes the members."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = RewardModel(4, 1, members=2, hidden=(8,), seed=5)
    assert torch.equal(torch.rand(3), expected)
    second = RewardModel(4, 1, members=2, hidden=(8,), seed=5)
    for a, b in zip(first.ensemble.parameters(), second.ensemble.parameters(), strict=True):
        assert torch.equal(a, b)


# -- a shared trunk (NeuroTrails) -----------------------------------------------------------------

HIDDEN = (16, 16)


def manual_rewards(ensemble: RewardEnsemble, x: torch.Tensor, member: int) -> torch.Tensor:
    """Member ``member``'s reward written out: trunk layers, then its head, as documented."""
    layers = [*ensemble.trunk, *ensemble.members[member]]
    for j, layer in enumerate(layers):
        x = layer(x)
        x = torch.tanh(x) if j == len(layers) - 1 else torch.nn.functional.leaky_relu(x)
    return x.squeeze(-1)


def small_shared(sparsity: dict | None = None, shared: int = 1) -> RewardModel:
    return RewardModel(OBS, ACT, members=3, hidden=(32, 32), lr=3e-3, batch_size=32,
                       sparsity=sparsity, seed=0, shared_layers=shared)  # fmt: skip


@pytest.mark.parametrize("shared", [0, 1, len(HIDDEN)])
def test_shared_trunk_shapes_and_forward(shared: int) -> None:
    ensemble = RewardEnsemble(OBS, ACT, members=3, hidden=HIDDEN, shared_layers=shared)
    assert len(ensemble.trunk) == shared
    assert all(len(head) == len(HIDDEN) + 1 - shared for head in ensemble.members)
    obs, act = torch.randn(5, T, OBS), torch.randn(5, T, ACT)
    out = ensemble(obs, act)
    assert out.shape == (3, 5, T)
    x = torch.cat([obs, act], -1)
    for i in range(3):
        torch.testing.assert_close(out[i], manual_rewards(ensemble, x, i))
    # one batch per member: each goes through the trunk and then its own head
    obs3, act3 = torch.randn(3, 4, T, OBS), torch.randn(3, 4, T, ACT)
    per_member = ensemble(obs3, act3, per_member=True)
    assert per_member.shape == (3, 4, T)
    for i in range(3):
        torch.testing.assert_close(per_member[i], ensemble(obs3[i], act3[i])[i])
    assert not torch.allclose(out[0], out[1])  # heads start different


def test_trunk_is_one_module_and_heads_share_nothing() -> None:
    ensemble = RewardEnsemble(OBS, ACT, members=3, hidden=HIDDEN, shared_layers=1)
    trunk = (OBS + ACT) * 16 + 16
    head = 16 * 16 + 16 + 16 + 1
    assert sum(p.numel() for p in ensemble.parameters()) == trunk + 3 * head
    independent = RewardEnsemble(OBS, ACT, members=3, hidden=HIDDEN)
    assert sum(p.numel() for p in independent.parameters()) == 3 * (trunk + head)
    storage = [p.data_ptr() for p in ensemble.parameters()]
    assert len(set(storage)) == len(storage)  # no weight is held twice
    obs, act = torch.randn(6, OBS), torch.randn(6, ACT)
    before = ensemble(obs, act).detach()
    with torch.no_grad():
        ensemble.members[0][-1].bias.add_(0.5)  # one head changes one member
    after = ensemble(obs, act).detach()
    assert not torch.allclose(after[0], before[0])
    torch.testing.assert_close(after[1:], before[1:])
    with torch.no_grad():
        ensemble.trunk[0].bias.add_(0.5)  # the trunk changes them all
    moved = ensemble(obs, act).detach()
    assert all(not torch.allclose(moved[i], after[i]) for i in range(3))


def test_independent_members_are_built_as_before() -> None:
    """shared_layers=0 is today's ensemble: same names, same init for a seed, same rewards."""
    torch.manual_seed(11)
    sizes = [OBS + ACT, *HIDDEN, 1]
    old = torch.nn.ModuleDict({"members": torch.nn.ModuleList(
        torch.nn.Sequential(*(torch.nn.Linear(a, b) for a, b in itertools.pairwise(sizes)))
        for _ in range(3)
    )})  # fmt: skip
    torch.manual_seed(11)
    new = RewardEnsemble(OBS, ACT, members=3, hidden=HIDDEN)
    assert list(new.state_dict()) == list(old.state_dict())
    for key, value in old.state_dict().items():
        assert torch.equal(new.state_dict()[key], value)
    assert new.input_layers() == ["members.0.0", "members.1.0", "members.2.0"]
    obs, act = torch.randn(5, OBS), torch.randn(5, ACT)
    x = torch.cat([obs, act], -1)
    expected = torch.stack([manual_rewards(new, x, i) for i in range(3)])
    assert torch.equal(new(obs, act), expected)


def test_r2n_sparsity_with_a_trunk_masks_exactly_its_input_layer() -> None:
    from sparse_rl.agents.pbrl.agent import r2n_reward_sparsity

    model = RewardModel(OBS, ACT, members=3, hidden=(32, 32), sparsity=r2n_reward_sparsity(50),
                        input_l1=0.03, seed=0, shared_layers=1)  # fmt: skip
    assert model.sparsity is not None and sorted(model.sparsity.masks) == ["trunk.0"]
    assert model.ensemble.input_layers() == ["trunk.0"]
    active = round((OBS + ACT) * 32 / 6)  # fan-in 8, capped at a sixth of the few inputs
    assert int(model.sparsity.masks["trunk.0"].sum()) == active
    conn = model.input_connectivity()  # every member reads the one input layer
    assert conn.shape == (3, OBS) and (conn == conn[0]).all() and conn.sum(1)[0] < active
    trunk_weight = model.ensemble.trunk[0].weight
    torch.testing.assert_close(model._input_penalty(), 0.03 * trunk_weight.abs().sum())
    whole = small_shared({"density": 0.5, "layers": "all"})
    assert whole.sparsity is not None
    assert sorted(whole.sparsity.masks) == sorted(
        ["trunk.0"] + [f"members.{i}.{j}" for i in range(3) for j in range(2)]
    )


@pytest.mark.parametrize("shared", [1, 2])
def test_training_a_shared_trunk_lowers_the_preference_loss(shared: int) -> None:
    model = small_shared(shared=shared)
    o0, a0, o1, a1, y = pairs(128, seed=8)

    def loss() -> float:
        with torch.no_grad():
            r0 = model.ensemble(*map(model._tensor, (o0, a0))).sum(-1)
            r1 = model.ensemble(*map(model._tensor, (o1, a1))).sum(-1)
            return preference_loss(r0, r1, model._tensor(y)).item()

    start = loss()
    trunk = model.ensemble.trunk[0].weight.detach().clone()
    model.train(o0, a0, o1, a1, y, steps=60)
    assert loss() < 0.5 * start  # measured 0.67 -> 0.10 (k=1), 0.68 -> 0.11 (k=2)
    assert not torch.equal(model.ensemble.trunk[0].weight, trunk)  # the trunk learns too


@pytest.mark.parametrize("value", [-1, 3, 1.0, True, "1"])
def test_bad_shared_layers(value: object) -> None:
    with pytest.raises(
        ValueError, match=rf"shared_layers must be an integer in \[0, 2\].*got {value!r}"
    ):
        RewardEnsemble(OBS, ACT, hidden=HIDDEN, shared_layers=value)  # type: ignore[arg-type]


def test_reward_shared_layers_setting(tmp_path: Path) -> None:
    """PbRLConfig checks the setting; a PrefSAC saved with a trunk loads with identical rewards."""
    import gymnasium as gym
    from sparse_rl.agents.pbrl.agent import PrefSAC, pebble, r2n

    from sparse_rl import envs

    with pytest.raises(ValueError, match=r"reward_shared_layers must be an integer in \[0, 3\]"):
        pebble(reward_shared_layers=4)
    config = r2n(reward_hidden=(16, 16), reward_steps=5, reward_batch_size=16, segment_length=10,
                 labels_per_session=8, session_every=100, budget=16, unsupervised_steps=0,
                 reward_shared_layers=1)  # fmt: skip
    env = envs.NoisyFeatures(gym.make("Pendulum-v1"), noise_fraction=0.75)
    model = PrefSAC("MlpPolicy", env, preference=config, label_store=tmp_path / "labels.sqlite",
                    learning_starts=50, batch_size=16, seed=0,
                    policy_kwargs={"net_arch": [8]})  # fmt: skip
    model.learn(200)
    assert model.schedule.sessions == 2 and len(model.reward_model.ensemble.trunk) == 1
    assert sorted(model.reward_model.sparsity.masks) == ["trunk.0"]  # type: ignore[union-attr]
    model.save(tmp_path / "model")
    loaded = PrefSAC.load(tmp_path / "model", env=env)
    assert loaded.preference.reward_shared_layers == 1
    obs = np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32)
    act = np.zeros((20, 1), np.float32)
    np.testing.assert_array_equal(loaded.reward_model.reward(obs, act),
                                  model.reward_model.reward(obs, act))  # fmt: skip
    saved_mask = model.reward_model.sparsity.masks["trunk.0"]  # type: ignore[union-attr]
    assert torch.equal(loaded.reward_model.sparsity.masks["trunk.0"], saved_mask)  # type: ignore[union-attr]


def _pruned(seed: int = 0, keep: float = 0.5, policy: str = "infobatch") -> RewardModel:
    return RewardModel(OBS, ACT, members=3, hidden=(32, 32), lr=3e-3, batch_size=10,
                       seed=seed, pair_keep=keep, pair_policy=policy)  # fmt: skip


def test_pair_pruning_trains_each_pass_on_the_kept_share_and_grows_with_the_labels() -> None:
    model = _pruned(policy="hardest")
    o0, a0, o1, a1, y = pairs(60, seed=5)
    passes: list[np.ndarray] = []
    epoch_order = model._epoch_order
    model._epoch_order = lambda n, p: passes.append(epoch_order(n, p)) or passes[-1]  # type: ignore[method-assign]
    model.train(o0[:40], a0[:40], o1[:40], a1[:40], y[:40], steps=8)  # 2 batches of 10 a pass
    assert [p.shape for p in passes] == [(3, 20)] * 4  # half of the 40 pairs, every member
    assert all(len(set(p[0])) == 20 and set(p[0]) == set(p[1]) for p in passes)
    assert model.pairs is not None and model.pairs.stats().scored == 40  # losses fed back
    model.train(o0, a0, o1, a1, y, steps=3)  # 20 new labels, unscored: the hardest
    assert model.pairs.n == 60 and set(range(40, 60)) <= set(passes[4][0])
    full = small()  # pair_keep=1.0: every pair, no sampler
    full.train(o0, a0, o1, a1, y, steps=2)
    assert full.pairs is None


def test_pair_pruning_learns_and_resumes_identically() -> None:
    o0, a0, o1, a1, y = pairs(400, seed=1)
    a = _pruned(seed=4, keep=0.7)
    a.train(o0[:150], a0[:150], o1[:150], a1[:150], y[:150], steps=40)
    b = _pruned(seed=99, keep=0.7)
    b.load_state_dict(a.state_dict())
    for model in (a, b):
        model.train(o0[:300], a0[:300], o1[:300], a1[:300], y[:300], steps=200)
    obs = np.random.default_rng(0).normal(size=(10, OBS)).astype(np.float32)
    act = np.zeros((10, ACT), np.float32)
    np.testing.assert_array_equal(a.reward(obs, act), b.reward(obs, act))
    assert a.accuracy(o0[300:], a0[300:], o1[300:], a1[300:], y[300:]) > 0.75
    with pytest.raises(ValueError, match="prunes its labelled pairs"):
        small().load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match=r"pair_keep must lie in \(0, 1\]"):
        _pruned(keep=0.0)


def test_a_saved_agent_keeps_its_pair_scores(tmp_path: Path) -> None:
    """PrefSAC with pruned pairs: save and load keep the sampler's scores and draws."""
    import gymnasium as gym
    from sparse_rl.agents.pbrl.agent import PrefSAC, pebble

    from sparse_rl import envs

    with pytest.raises(ValueError, match="reward_pair_policy: 'hardst' is not valid"):
        pebble(reward_pair_policy="hardst")
    config = pebble(reward_hidden=(16,), reward_steps=5, reward_batch_size=8, segment_length=10,
                    labels_per_session=8, session_every=100, budget=16, unsupervised_steps=0,
                    reward_pair_keep=0.5)  # fmt: skip
    env = envs.NoisyFeatures(gym.make("Pendulum-v1"), noise_fraction=0.5)
    model = PrefSAC("MlpPolicy", env, preference=config, label_store=tmp_path / "labels.sqlite",
                    learning_starts=50, batch_size=16, seed=0,
                    policy_kwargs={"net_arch": [8]})  # fmt: skip
    model.learn(200)
    pairs = model.reward_model.pairs
    assert pairs is not None and pairs.n == 16 and pairs.stats().scored > 8
    model.save(tmp_path / "model")
    loaded = PrefSAC.load(tmp_path / "model", env=env)
    again = loaded.reward_model.pairs
    assert again is not None and loaded.preference.reward_pair_keep == 0.5
    assert torch.equal(again.state_dict()["scores"], pairs.state_dict()["scores"])
    again.set_epoch(7), pairs.set_epoch(7)
    assert list(again) == list(pairs)
