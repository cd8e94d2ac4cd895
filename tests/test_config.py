"""Run configs: files, overrides, round trips, and errors that name the key and what is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import CONFIG_BASE, changed, error_of
from sparse_rl.agents.sparse.settings import network_settings

from sparse_rl import agents
from sparse_rl import sparse_nets as sn
from sparse_rl.algorithms import (
    ALGOS,
    algorithm_class,
    build_algo_kwargs,
    build_policy_kwargs,
    build_preference,
    build_teacher,
    is_sparse,
    policy_name,
)
from sparse_rl.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    config_differences,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    method_label,
    observation_kind,
)

CONFIGS = sorted((Path(__file__).parents[1] / "configs").iterdir())
BASE = CONFIG_BASE


def with_(**changes: Any) -> dict[str, Any]:
    """BASE with ``a__b=v`` setting ``data["a"]["b"] = v``."""
    return changed(BASE, **changes)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_configs_load_and_round_trip(path: Path) -> None:
    config = load_config(path)
    assert config_from_dict(config_to_dict(config)) == config
    assert config_from_dict(yaml.safe_load(dump_config(config))) == config


def test_yaml_and_toml_say_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "algo: sac\nenv: {id: Pendulum-v1}\nsteps: 1_000\nalgo_kwargs: {learning_rate: 3e-4}\n"
        "policy_kwargs: {density: 0.2, updater: {name: set, interval: 100}}\n"
    )
    (tmp_path / "b.toml").write_text(
        'algo = "sac"\nsteps = 1_000\n[env]\nid = "Pendulum-v1"\n[algo_kwargs]\n'
        "learning_rate = 3e-4\n[policy_kwargs]\ndensity = 0.2\n"
        'updater = { name = "set", interval = 100 }\n'
    )
    a, b = load_config(tmp_path / "a.yaml"), load_config(tmp_path / "b.toml")
    assert a == b
    assert a.algo_kwargs["learning_rate"] == 3e-4  # YAML 1.1 alone would read "3e-4" as a string
    assert yaml.safe_load("x: 3e-4")["x"] == "3e-4"  # ... and safe_load itself is untouched


def test_defaults_are_filled() -> None:
    data = config_to_dict(config_from_dict(BASE))
    assert data["seed"] == 0 and data["device"] == "auto" and data["eval"]["every"] == 10_000
    assert data["checkpoint"] == {"every": 50_000, "keep": 2}
    assert list(data)[:5] == ["name", "algo", "env", "seed", "steps"]


def test_integral_floats_become_ints_and_ints_floats() -> None:
    config = config_from_dict(with_(steps=1.0e6, env__noise_fraction=0))
    assert config.steps == 1_000_000 and isinstance(config.steps, int)
    assert config.env.noise_fraction == 0.0 and isinstance(config.env.noise_fraction, float)


@pytest.mark.parametrize(
    ("changes", "path", "suggestion"),
    [
        ({"seeed": 1}, "seeed", "seed"),
        ({"env__nois_fraction": 0.5}, "env.nois_fraction", "env.noise_fraction"),
        ({"eval__episode": 3}, "eval.episode", "eval.episodes"),
        ({"checkpoint__kep": 3}, "checkpoint.kep", "checkpoint.keep"),
        ({"algo_kwargs__learning_rat": 0.1}, "algo_kwargs.learning_rat",
         "algo_kwargs.learning_rate"),
        ({"policy_kwargs__densty": 0.1}, "policy_kwargs.densty", "policy_kwargs.density"),
        ({"policy_kwargs__net_arc": [8]}, "policy_kwargs.net_arc", "policy_kwargs.net_arch"),
        ({"policy_kwargs__actor_sparsity": {"densty": 0.1}}, "policy_kwargs.actor_sparsity.densty",
         "policy_kwargs.actor_sparsity.density"),
        ({"policy_kwargs__updater": {"name": "rigl", "intervl": 9}},
         "policy_kwargs.updater.intervl", "policy_kwargs.updater.interval"),
        ({"algo": "r2n", "preference__budgett": 3}, "preference.budgett", "preference.budget"),
        ({"algo": "r2n", "preference__reward_sparsity": {"densty": 0.3}},
         "preference.reward_sparsity.densty", "preference.reward_sparsity.density"),
        ({"algo": "pebble", "teacher__eps_mistak": 0.1}, "teacher.eps_mistak",
         "teacher.eps_mistake"),
        ({"algo": "ppo", "algo_kwargs__n_step": 64}, "algo_kwargs.n_step", "algo_kwargs.n_steps"),
        ({"algo": "madi", "env__id": "cartpole-swingup", "policy_kwargs__encodr": "small"},
         "policy_kwargs.encodr", "policy_kwargs.encoder"),
    ],
)  # fmt: skip
def test_unknown_keys_name_the_path_and_the_closest_key(
    changes: dict[str, Any], path: str, suggestion: str
) -> None:
    message = error_of(with_(**changes))
    assert f"unknown key {path!r} (did you mean {suggestion!r}?)" in message
    assert "valid keys" in message


def test_keys_that_do_not_fit_the_algo() -> None:
    assert "valid keys in algo_kwargs" in error_of(with_(algo="ppo", algo_kwargs={"tau": 0.1}))
    assert "applies to the algos pebble and r2n only" in error_of(with_(preference={"budget": 3}))
    assert "set by the top-level key 'seed'" in error_of(with_(algo_kwargs={"seed": 3}))
    message = error_of(with_(algo="madi", env__id="cartpole-swingup", policy_kwargs__sparsity={}))
    assert "unknown key 'policy_kwargs.sparsity'" in message and "density" in message


def test_config_sparse_keys_are_the_policies_keys() -> None:
    """The config's list (kept free of torch imports) is the policies' keys plus the old names."""
    from sparse_rl.agents.sparse.settings import POLICY_KEYS, RENAMED

    from sparse_rl.algorithms import SPARSE_KEYS

    assert set(SPARSE_KEYS) == {*POLICY_KEYS, *RENAMED}


def test_old_sparse_key_names_say_the_new_ones() -> None:
    message = error_of(with_(policy_kwargs={"density": 0.5, "sparse_layers": "input"}))
    assert "policy_kwargs.sparse_layers is now called 'layers'" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"steps": "ten"}, "steps: expected an integer, got a string 'ten'"),
        ({"seed": 1.5}, "seed: expected an integer, got a number 1.5"),
        ({"env__permute": "yes"}, "env.permute: expected true or false, got a string 'yes'"),
        ({"eval__modes": "clean"}, "eval.modes: expected a list of"),
        ({"env": "Pendulum-v1"}, "env: expected a mapping with keys id, obs"),
        ({"env": None}, "env: expected a mapping"),
        ({"log_formats": [1]}, "log_formats[0]: expected a string, got an integer 1"),
        ({"threads": 0}, "threads: must be >= 1, got 0"),
        ({"eval__every": 0}, "eval.every: must be >= 1"),
    ],
)
def test_wrong_types_and_ranges(changes: dict[str, Any], expected: str) -> None:
    assert expected in error_of(with_(**changes))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"algo": "sacc"}, "algo: 'sacc' is not valid (did you mean 'sac'?); choose one of"),
        ({"env__id": "Pendulum-v2"}, "did you mean 'Pendulum-v1'"),
        ({"env__noise_fraction": 0.5, "env__noise": "gauss"}, "env.noise: 'gauss' is not valid"),
        ({"env__noise_fraction": 1.0}, "env.noise_fraction: must be in [0, 1)"),
        ({"env__permute": True}, "env.permute: applies with env.noise_fraction only"),
        ({"env__obs": "state"}, "env.obs: applies to DeepMind Control tasks"),
        ({"env__kwargs": {"obs": "state"}}, "env.kwargs.obs: set env.obs instead"),
        ({"env__id": "walker-walk", "env__obs": "pixels"}, "sac needs flat observations"),
        ({"env__id": "walker-walk", "env__preset": "hard"}, "env.preset: applies to DeepMind"),
        ({"algo": "svea"}, "svea learns from pixels"),
        ({"algo": "madi", "env__id": "walker-walk", "eval__modes": ["video_hardd"]},
         "eval.modes[0]: 'video_hardd' is not valid (did you mean 'video_hard'?)"),
        ({"algo": "madi", "env__id": "walker-walk", "eval__modes": [1.5]},
         "eval.modes[0]: an intensity must lie in (0, 1]"),
        ({"eval__modes": ["clean"]}, "eval.modes: distraction modes apply to the visual algos"),
        ({"device": "gpu"}, "device: 'gpu' is not a torch device"),
        ({"log_formats": ["tb"]}, "log_formats[0]: 'tb' is not valid"),
        ({"policy_kwargs__updater": "rigll"}, "policy_kwargs.updater: 'rigll' is not valid "
         "(did you mean 'rigl'?)"),
        ({"policy_kwargs__density": 1.5}, "policy_kwargs: density must lie in (0, 1], got 1.5"),
        ({"policy_kwargs__distribution": "er"}, "distribution: 'er' is not valid"),
        ({"policy_kwargs__activation_fn": "relu"}, "'relu' is not valid (did you mean 'ReLU'?)"),
        ({"policy_kwargs__optimizer_class": "Adamm"}, "did you mean 'Adam'"),
        ({"algo": "td3", "algo_kwargs__action_noise": {"type": "norml"}},
         "algo_kwargs.action_noise.type: 'norml' is not valid (did you mean 'normal'?)"),
        ({"algo": "r2n", "preference__query_method": "random"}, "query_method: 'random'"),
        ({"algo": "r2n", "teacher__eps_mistake": 2.0}, "teacher: eps_mistake must be in [0, 1]"),
    ],
)  # fmt: skip
def test_bad_choices_list_the_valid_ones(changes: dict[str, Any], expected: str) -> None:
    assert expected in error_of(with_(**changes))


def test_missing_keys_and_files(tmp_path: Path) -> None:
    no_steps = {"algo": "sac", "env": {"id": "Pendulum-v1"}}
    assert "missing required key 'steps' (an integer)" in error_of(no_steps)
    assert "missing required key 'env.id'" in error_of(with_(env={"noise_fraction": 0.5}))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"must end in one of \['.yaml', '.yml', '.toml'\]"):
        load_config(tmp_path / "run.json")
    (tmp_path / "bad.yaml").write_text("algo: [sac\n")
    with pytest.raises(ConfigError, match=r"bad.yaml' is not valid: .*line"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- sac\n")
    with pytest.raises(ConfigError, match="must hold a mapping of keys, got a list"):
        load_config(tmp_path / "list.yaml")


def test_overrides() -> None:
    data = apply_overrides(
        BASE,
        ["seed=3", "env.noise_fraction=0.9", "policy_kwargs.net_arch=[64, 64]", "name=a=b",
         "algo_kwargs.learning_rate=1e-3", "eval.modes=null"],
    )  # fmt: skip
    assert BASE == {"algo": "sac", "env": {"id": "Pendulum-v1"}, "steps": 1000}  # not modified
    assert data["seed"] == 3 and data["env"]["noise_fraction"] == 0.9 and data["name"] == "a=b"
    assert data["policy_kwargs"] == {"net_arch": [64, 64]}
    assert data["algo_kwargs"]["learning_rate"] == 1e-3 and data["eval"] == {"modes": None}
    for bad, match in [("seed", "must look like key=value"), ("=3", "must look like"),
                       ("env..id=x", "must look like"), ("env.id.x=3", "env.id is a string"),
                       ("seed=[1", "not valid YAML")]:  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            apply_overrides(BASE, [bad])


def test_overrides_are_checked_like_file_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_config(path, ["steps=5"]).steps == 5
    with pytest.raises(ConfigError, match=r"did you mean 'env\.noise_fraction'"):
        load_config(path, ["env.noise_fracton=0.9"])
    assert load_config(None, ["algo=td3", "env.id=Pendulum-v1", "steps=10"]).algo == "td3"


def test_differences_and_label() -> None:
    a = config_from_dict(BASE)
    b = config_from_dict(with_(steps=5, name="mine", policy_kwargs__net_arch=[8]))
    assert config_differences(a, b) == {
        "name": (None, "mine"),
        "policy_kwargs": ({}, None),
        "policy_kwargs.net_arch": (None, [8]),
        "steps": (1000, 5),
    }
    assert method_label(a) == "sac" and method_label(b) == "mine"


# -- what each algo builds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "policy_kwargs", "cls", "policy"),
    [
        ("sac", {}, "SAC", "MlpPolicy"),
        ("sac", {"density": 0.1}, "SparseSAC", "SparseMlpPolicy"),
        ("td3", {"critic_sparsity": {"density": 0.5}}, "SparseTD3", "SparseMlpPolicy"),
        ("ddpg", {}, "DDPG", "MlpPolicy"),
        ("ppo", {"updater": "set"}, "SparsePPO", "SparseMlpPolicy"),
        ("a2c", {}, "A2C", "MlpPolicy"),
        ("anf-sac", {}, "SparseSAC", "SparseMlpPolicy"),
        ("anf-td3", {}, "SparseTD3", "SparseMlpPolicy"),
        ("pebble", {}, "PrefSAC", "MlpPolicy"),
        ("r2n", {"density": 0.5}, "PrefSAC", "SparseMlpPolicy"),
        ("visual-sac", {}, "VisualSAC", "VisualPolicy"),
        ("svea", {}, "VisualSAC", "VisualPolicy"),
        ("madi", {"density": 0.5}, "VisualSAC", "VisualPolicy"),
    ],
)
def test_every_algo_is_reachable(algo: str, policy_kwargs: dict, cls: str, policy: str) -> None:
    env = "walker-walk" if algo in ("visual-sac", "svea", "madi") else "Pendulum-v1"
    config = config_from_dict(with_(algo=algo, env__id=env, policy_kwargs=policy_kwargs))
    assert algorithm_class(config).__name__ == cls
    assert policy_name(config) == policy
    assert is_sparse(config) == (bool(policy_kwargs) or algo.startswith("anf"))
    assert algo in ALGOS


def test_policy_kwargs_become_objects() -> None:
    policy_kwargs = {
        "density": 0.2,
        "updater": {"name": "rigl", "interval": 50, "drop_fraction": 0.1},
        "actor_sparsity": {"updater": "set"},
        "activation_fn": "Tanh",
        "optimizer_class": "AdamW",
    }
    config = config_from_dict(with_(policy_kwargs=policy_kwargs))
    kwargs = build_policy_kwargs(config)
    settings = network_settings(kwargs)  # what the policy builds from them
    assert settings["critic"].updater == sn.RigL(interval=50, drop_fraction=0.1)
    assert isinstance(settings["actor"].updater, sn.SET) and settings["actor"].density == 0.2
    assert kwargs["activation_fn"].__name__ == "Tanh"
    assert kwargs["optimizer_class"].__name__ == "AdamW"
    assert config.policy_kwargs["updater"]["name"] == "rigl"  # the config itself stays plain data


def test_anf_defaults_and_overrides() -> None:
    anf = build_policy_kwargs(config_from_dict(with_(algo="anf-sac")))
    assert anf["density"] == 0.2 and anf["layers"] == "input"
    assert anf["updater"] == sn.SET(interval=1000, drop_fraction=0.05)
    td3 = build_policy_kwargs(config_from_dict(with_(algo="anf-td3", policy_kwargs__density=0.1)))
    assert td3["density"] == 0.1 and td3["layers"] == "input"


def test_visual_sparse_keys_are_the_policies_keys() -> None:
    policy_kwargs = {"encoder": "small", "density": 0.5}
    config = config_from_dict(
        with_(algo="madi", env__id="walker-walk", policy_kwargs=policy_kwargs)
    )
    assert observation_kind(config) == "pixels"
    assert build_policy_kwargs(config) == {"encoder": "small", "density": 0.5}


def test_preference_teacher_and_noise() -> None:
    preference = {
        "budget": 10,
        "reward_hidden": [16, 16],
        "reward_sparsity": {"updater": {"name": "set", "interval": 5}},
    }
    data = with_(algo="r2n", seed=4, preference=preference, teacher={"eps_mistake": 0.1})
    config = config_from_dict(data)
    preference = build_preference(config)
    assert isinstance(preference, agents.PbRLConfig)
    assert preference.budget == 10 and preference.reward_hidden == (16, 16)
    assert preference.reward_sparsity.updater == sn.SET(interval=5)
    assert preference.reward_sparsity.density == 0.2  # laid over R2N as published
    teacher = build_teacher(config)
    assert teacher.eps_mistake == 0.1 and teacher.seed == 4
    pebble = build_preference(config_from_dict(with_(algo="pebble")))
    assert pebble.reward_sparsity is None
    noise = {"type": "normal", "sigma": 0.2}
    td3 = config_from_dict(
        with_(algo="td3", algo_kwargs={"action_noise": noise, "train_freq": [1, "episode"]})
    )
    kwargs = build_algo_kwargs(td3, action_dim=2)
    assert kwargs["action_noise"]._sigma.tolist() == [0.2, 0.2]
    assert kwargs["train_freq"] == (1, "episode")


def test_run_config_is_a_plain_typed_record() -> None:
    config = config_from_dict(with_(name="x"))
    assert isinstance(config, RunConfig)
    with pytest.raises(AttributeError):
        config.seed = 3  # type: ignore[misc]


def test_dqn_configs_build_stock_or_sparse_dqn() -> None:
    """``algo: dqn`` trains SB3's DQN, sparse exactly when a sparse key is given; DQN's one
    network is its Q-network, so an actor override is an error, caught when the config loads."""
    from stable_baselines3 import DQN

    dense = config_from_dict(with_(algo="dqn", env__id="CartPole-v1"))
    assert algorithm_class(dense) is DQN and policy_name(dense) == "MlpPolicy"
    sparse = config_from_dict(with_(algo="dqn", env__id="CartPole-v1", policy_kwargs__density=0.2))
    assert algorithm_class(sparse) is agents.SparseDQN and policy_name(sparse) == "SparseMlpPolicy"
    message = error_of(
        with_(algo="dqn", env__id="CartPole-v1", policy_kwargs__actor_sparsity={"density": 0.5})
    )
    assert "policy_kwargs.actor_sparsity: this policy has no actor network" in message
    assert "takes a list of layer sizes" in error_of(
        with_(algo="dqn", env__id="CartPole-v1", policy_kwargs__net_arch={"pi": [8], "qf": [8]})
    )
