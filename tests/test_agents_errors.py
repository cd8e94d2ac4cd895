"""Bad sparse-policy settings fail loudly, naming the parameter and the valid choices; a saved
sparse policy does not load into a policy built with other sparse settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from sparse_rl.agents import (
    SparseActorCriticPolicy,
    SparsePPO,
    SparseSAC,
    SparseSACPolicy,
    SparseTD3Policy,
    SparsityLogger,
    anf_kwargs,
)
from stable_baselines3 import PPO, SAC, TD3

from sparse_rl import sparse_nets as sn

ENV = "Pendulum-v1"
NET = [16, 16]
STOCK = {
    "sac": (SAC, SparseSACPolicy),
    "td3": (TD3, SparseTD3Policy),
    "ppo": (PPO, SparseActorCriticPolicy),
}

BAD_SETTINGS = [
    ({"density": 1.5}, ValueError, r"density must lie in \(0, 1\], got 1\.5"),
    ({"density": 0}, ValueError, r"density must lie in \(0, 1\]"),
    ({"density": "a"}, ValueError, r"density must be a finite number in \(0, 1\], got 'a'"),
    ({"density": True}, ValueError, r"density must be a finite number"),
    (
        {"distribution": "foo"},
        ValueError,
        r"distribution: 'foo' is not valid; choose one of \['uniform', 'erk'\]",
    ),
    (
        {"updater": "foo"},
        ValueError,
        r"updater: 'foo' is not valid; choose one of \[(?=.*'rigl')(?=.*'set')(?=.*'static')",
    ),
    ({"updater": sn.SET}, ValueError, r"updater: expected an updater name \(.*rigl.*TopologyUpd"),
    (
        {"layers": "hidden"},
        ValueError,
        r"layers='hidden' matches no layer; the sparsifiable layers are \[.*\]",
    ),
    (
        {"init": "snip"},
        ValueError,
        r"init: 'snip' is not valid; choose one of \['random', 'magnitude'\]",
    ),
    ({"rescale_init": "yes"}, ValueError, r"rescale_init must be true or false, got 'yes'"),
    ({"fan_in": 4}, ValueError, r"fan_in applies to layers='input' only"),
    (
        {"actor_sparsity": {"densty": 0.1}},
        ValueError,
        r"unknown key 'actor_sparsity\.densty' \(did you mean 'actor_sparsity\.density'\?\); "
        r"valid keys in actor_sparsity: density, fan_in",
    ),
    (
        {"critic_sparsity": {"foo": 1}},
        ValueError,
        r"unknown key 'critic_sparsity\.foo'; valid keys in critic_sparsity: .*distribution",
    ),
    (
        {"actor_sparsity": 3},
        ValueError,
        r"actor_sparsity: expected a mapping of density, .* or SparsitySettings, got 3",
    ),
    ({"critic_sparsity": {"density": 2.0}}, ValueError, r"density must lie in \(0, 1\].*2\.0"),
    ({"sparse_layers": "input"}, ValueError, r"sparse_layers is now called 'layers'"),
    ({"actor_sparsity": {"mask_init": "random"}}, ValueError, r"mask_init is now called 'init'"),
]


@pytest.mark.parametrize("name", list(STOCK))
@pytest.mark.parametrize(
    ("settings", "error", "match"),
    BAD_SETTINGS,
    ids=[next(iter(s)) + "=" + repr(next(iter(s.values()))) for s, _, _ in BAD_SETTINGS],
)
def test_bad_policy_kwargs(name: str, settings: dict[str, Any], error: type, match: str) -> None:
    """Every sparse policy rejects bad settings with a message naming the parameter and the valid
    values (for a misspelt key: the closest one)."""
    cls, policy = STOCK[name]
    with pytest.raises(error, match=match):
        cls(policy, ENV, policy_kwargs={"net_arch": NET, **settings})


@pytest.mark.parametrize("cls", [SparseSAC, SparsePPO])
def test_bad_policy_kwargs_through_alias(cls: type) -> None:
    """The ``"SparseMlpPolicy"`` alias builds the same checked policy."""
    with pytest.raises(ValueError, match=r"distribution: 'foo' is not valid"):
        cls("SparseMlpPolicy", ENV, policy_kwargs={"distribution": "foo"})


def test_anf_kwargs_rejects_other_algorithms() -> None:
    with pytest.raises(ValueError, match=r"algo='ppo' is not valid for ANF.*\['sac', 'td3'\]"):
        anf_kwargs("ppo")


@pytest.mark.parametrize("every", [0, -5])
def test_sparsity_logger_every_must_be_positive(every: int) -> None:
    with pytest.raises(ValueError, match=rf"every must be an integer >= 1, got {every}"):
        SparsityLogger(every=every)


# -- loading into a policy with other sparse settings ---------------------------------------------


def saved_sac(tmp_path: Path, **policy_kwargs: Any) -> tuple[SAC, Path]:
    kwargs = {"net_arch": NET, "density": 0.1, "updater": sn.SET(interval=10), **policy_kwargs}
    model = SAC(SparseSACPolicy, ENV, policy_kwargs=kwargs, learning_starts=20, batch_size=16)
    model.learn(40)
    model.save(tmp_path / "model")
    return model, tmp_path / "model.zip"


def sac(**policy_kwargs: Any) -> SAC:
    kwargs = {"net_arch": NET, "density": 0.1, "updater": sn.SET(interval=10), **policy_kwargs}
    return SAC(SparseSACPolicy, ENV, policy_kwargs=kwargs)


MISMATCHES = [
    (
        {"critic_sparsity": {"density": 1.0}},
        r"saved sparse networks \['actor', 'critic'\] differ from this policy's \['actor'\]; "
        r"load with the policy_kwargs it was trained with",
    ),
    ({"density": 0.3}, r"saved actor has active weights per layer .*policy_kwargs it was trained"),
    ({"distribution": "uniform"}, r"saved actor has active weights per layer"),
    ({"critic_sparsity": {"density": 0.5}}, r"saved critic has active weights per layer"),
    ({"updater": sn.SET(interval=20)}, r"was made with updater .*'interval': 10"),
    ({"updater": "rigl"}, r"was made with updater .*'set'"),
    ({"layers": "input"}, r"sparsity state_dict is for layers \[.*'latent_pi.2'"),
]


@pytest.mark.parametrize(
    ("other", "match"),
    MISMATCHES,
    ids=[
        "dense-critic",
        "density",
        "distribution",
        "critic-density",
        "updater-interval",
        "updater-kind",
        "sparse-layers",
    ],
)
@pytest.mark.parametrize("via", ["set_parameters", "load_state_dict"])
def test_loading_into_other_sparse_settings_fails(
    other: dict[str, Any], match: str, via: str, tmp_path: Path
) -> None:
    """A saved sparse SAC does not silently load into a policy with another density,
    distribution, updater, set of sparse layers or set of sparse networks."""
    model, path = saved_sac(tmp_path)
    target = sac(**other)
    with pytest.raises(ValueError, match=match):
        if via == "set_parameters":
            target.set_parameters(str(path))
        else:
            target.policy.load_state_dict(model.policy.state_dict())


def test_loading_with_other_init_only_settings_works(tmp_path: Path) -> None:
    """Settings that only shape the first mask (init, rescale_init) do not block a load;
    the loaded masks and step counts are the saved ones."""
    model, path = saved_sac(tmp_path)
    target = sac(init="magnitude", rescale_init=False)
    target.set_parameters(str(path))
    for network in ("actor", "critic"):
        ours = model.policy.sparse_networks[network].sparsity
        theirs = target.policy.sparse_networks[network].sparsity
        assert theirs.step_count == ours.step_count > 0
        for layer, mask in ours.masks.items():
            assert torch.equal(theirs.masks[layer], mask), layer


def test_dense_policy_rejects_sparse_checkpoint(tmp_path: Path) -> None:
    """A dense SAC refuses a sparse checkpoint (unexpected mask buffers), and vice versa."""
    _, path = saved_sac(tmp_path)
    dense = SAC("MlpPolicy", ENV, policy_kwargs={"net_arch": NET})
    with pytest.raises(RuntimeError, match=r"weight_mask"):
        dense.set_parameters(str(path))
    dense.save(tmp_path / "dense")
    with pytest.raises(RuntimeError, match=r"weight_mask"):
        sac().set_parameters(str(tmp_path / "dense.zip"))


def test_policies_and_configs_take_the_cores_names_in_any_case() -> None:
    """``"ERK"`` / ``"RigL"`` work wherever the core takes them: policy settings and YAML."""
    from sparse_rl import sparse_nets as sn
    from sparse_rl.config import config_from_dict

    settings = sn.SparsitySettings(
        distribution="ERK", updater="RigL", layers="Input", init="Random"
    )
    assert settings.distribution == "erk" and settings.layers == "input"
    assert settings.init == "random"
    assert isinstance(settings.updater, sn.RigL)
    sparse = {"density": 0.5, "distribution": "ERK", "updater": {"name": "RigL", "interval": 10}}
    config = config_from_dict(
        {"algo": "sac", "env": {"id": "Pendulum-v1"}, "steps": 1000, "policy_kwargs": sparse}
    )
    assert config.policy_kwargs["distribution"] == "ERK"  # checked, then normalised when built
