"""The one settings object that says how a network is sparse: what it builds, how user mappings
lay over a consumer's defaults, and that policies, reward models and configs read it alike."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparse_rl import sparse_nets as sn
from sparse_rl.validation import ConfigError


def mlp(inputs: int = 40) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(inputs, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )


def test_dense_settings_build_nothing() -> None:
    model = mlp()
    assert sn.SparsitySettings().dense
    assert sn.SparsitySettings().apply(model, None, seed=0) is None
    assert not hasattr(model[0], sn.MASK)


def test_fan_in_gives_every_input_unit_that_many_inputs() -> None:
    model = mlp(inputs=40)
    settings = sn.SparsitySettings(fan_in=8, layers="input")
    sparsity = settings.apply(model, None, seed=0)
    assert sparsity is not None and list(sparsity.masks) == ["0"]
    assert int(sparsity.masks["0"].sum()) == 32 * 8  # density 8/40 of the input layer


def test_density_caps_fan_in_on_a_narrow_input() -> None:
    capped = sn.SparsitySettings(fan_in=8, density=0.1, layers="input")
    wide, narrow = (
        capped.apply(mlp(inputs=100), None, seed=0),
        capped.apply(mlp(inputs=20), None, seed=0),
    )
    assert wide is not None and narrow is not None
    assert int(wide.masks["0"].sum()) == 32 * 8  # 8/100 is under the cap
    assert int(narrow.masks["0"].sum()) == 32 * 2  # 8/20 is capped at 0.1: 2 inputs per unit


def test_rescale_init_restores_each_rows_dense_norm() -> None:
    dense_norms = mlp()[2].weight.norm(dim=1)
    for rescale, close in ((True, True), (False, False)):
        model = mlp()
        settings = sn.SparsitySettings(density=0.1, distribution="erk", rescale_init=rescale)
        settings.apply(model, None, seed=0)
        norms = model[2].weight.norm(dim=1)
        rows = norms > 0  # a row with no active weight stays zero
        assert rows.sum() > 20
        assert torch.allclose(norms[rows], dense_norms[rows], atol=1e-5) == close


def test_reset_keeps_masks_and_rescales() -> None:
    model = mlp()
    settings = sn.SparsitySettings(density=0.2, distribution="erk", rescale_init=True)
    sparsity = settings.apply(model, None, seed=0)
    assert sparsity is not None
    masks = {n: m.clone() for n, m in sparsity.masks.items()}
    with torch.no_grad():
        model[2].weight.mul_(100.0)
    settings.reset_(model)
    for name, mask in masks.items():
        layer = model.get_submodule(name)
        assert torch.equal(getattr(layer, sn.MASK), mask)
        assert torch.all(layer.weight[mask == 0] == 0)
    fresh = mlp()[2]
    fresh.reset_parameters()  # same init distribution: row norms of the same order
    assert model[2].weight.norm() < 3 * fresh.weight.norm()


def test_updated_lays_a_mapping_over_defaults() -> None:
    base = sn.SparsitySettings(fan_in=8, layers="input", updater=sn.RigL(interval=20))
    dense_count = base.updated({"density": 0.3})
    assert dense_count.fan_in is None and dense_count.density == 0.3  # the one given wins
    assert dense_count.updater == sn.RigL(interval=20)
    by_fan_in = sn.SparsitySettings(density=0.2, layers="input").updated({"fan_in": 4})
    assert by_fan_in.fan_in == 4 and by_fan_in.density == 1.0
    rigl = base.updated({"updater": {"name": "RigL", "interval": 7}})
    assert rigl.updater == sn.RigL(interval=7)
    assert base.updated(None) is base


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"densty": 0.1}, r"unknown key 'net\.densty' \(did you mean 'net\.density'\?\)"),
        ({"updater": {"name": "rigl", "intervl": 3}}, r"unknown key 'net\.updater\.intervl'"),
        ({"updater": "foo"}, r"net\.updater: 'foo' is not valid; choose one of"),
        ({"distribution": "gaussian"}, r"distribution: 'gaussian' is not valid"),
        ({"fan_in": 4, "layers": "all"}, r"fan_in applies to layers='input' only"),
        ({"grow_init": float("nan")}, r"grow_init must be a finite number"),
        (3, r"net: expected a mapping of density"),
    ],
)
def test_bad_overrides_name_the_key(overrides: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        sn.SparsitySettings().updated(overrides, "net")  # type: ignore[arg-type]


def test_to_dict_round_trips() -> None:
    settings = sn.SparsitySettings(
        density=0.3, distribution="erk", updater=sn.SET(interval=9, drop_fraction=0.1)
    )
    again = sn.SparsitySettings().updated(settings.to_dict())
    assert again == settings


def test_policies_reward_models_and_configs_share_the_settings() -> None:
    """One object: the policies' networks, R2N's reward models and a YAML config all hold it."""
    from sparse_rl.agents.sparse.settings import network_settings

    from sparse_rl import agents

    networks = network_settings({"density": 0.5, "critic_sparsity": {"layers": "input"}})
    assert all(isinstance(s, sn.SparsitySettings) for s in networks.values())
    assert networks["critic"].layers == "input" and networks["critic"].density == 0.5
    assert networks["actor"] == agents.policy_defaults().updated({"density": 0.5})
    assert isinstance(agents.r2n().reward_sparsity, sn.SparsitySettings)
    published = agents.pebble(reward_sparsity={"updater": "rigl"}).reward_sparsity
    assert published == agents.R2N_PUBLISHED.updated({"updater": "rigl"})
