"""Issue 15's hostile-input coverage for configs and sweep files: alias bombs, deep nesting,
duplicate keys, and values the loader used to accept that break a run later (or silently)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import CONFIG_BASE, changed, error_of
from sparse_rl.envs.noisy_features import MAX_FEATURES, NoisyFeatures, max_noise_fraction

from sparse_rl.algorithms import build_algo_kwargs
from sparse_rl.config import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
    read_config_file,
)
from sparse_rl.sweeps import SweepError, expand_sweep, load_sweep

ROOT = Path(__file__).parents[1]
BASE = CONFIG_BASE
HEAD = "algo: sac\nsteps: 1000\nenv: {id: Pendulum-v1}\n"


def with_(**changes: Any) -> dict[str, Any]:
    """BASE with ``a__b=v`` setting ``data["a"]["b"] = v``."""
    return changed(BASE, **changes)


def laughs(levels: int, indent: str = "    ", width: int = 9) -> str:
    """YAML mapping lines whose last anchor expands to ``width ** levels`` strings."""
    lines = [f"{indent}l0: &l0 lol"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def nested(depth: int) -> str:
    """A JSON / YAML flow value ``depth`` lists deep."""
    return "[" * depth + "1" + "]" * depth


# -- alias bombs and nesting depth -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        HEAD.replace("env: {id: Pendulum-v1}\n", "env:\n  id: Pendulum-v1\n  kwargs:\n")
        + laughs(9),
        HEAD + "algo_kwargs:\n  replay_buffer_kwargs:\n" + laughs(9),
    ],
    ids=["env.kwargs", "algo_kwargs"],
)
def test_alias_bomb_in_a_config_is_refused(tmp_path: Path, text: str) -> None:
    """A billion-laughs config fails at once, naming the file and the limit, instead of eating
    memory."""
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"bomb\.yaml.*aliases.*{MAX_ALIAS_NODES}"):
        load_config(path)


def test_alias_bomb_in_a_sweep_file_is_refused(tmp_path: Path) -> None:
    """A billion-laughs sweep file fails at once, naming the file and the limit."""
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "base:\n  algo: sac\n  steps: 100\n  env:\n    id: Pendulum-v1\n    kwargs:\n"
        + laughs(9, indent="      ")
        + "methods: {sac: {}}\nseeds: [0]\n"
    )
    with pytest.raises(SweepError, match=rf"sweep\.yaml.*aliases.*{MAX_ALIAS_NODES}"):
        load_sweep(path)


def test_alias_bomb_in_an_override_is_refused() -> None:
    """A ``--set`` value is read by the same capped loader as files."""
    items = ["&a0 lol"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    value = "[" + ", ".join(items) + "]"
    with pytest.raises(ConfigError, match=rf"override 'env\.kwargs=.*aliases.*{MAX_ALIAS_NODES}"):
        apply_overrides(BASE, [f"env.kwargs={{x: {value}}}"])


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    """A structure that contains itself is an error, not a RecursionError."""
    path = tmp_path / "loop.yaml"
    path.write_text(HEAD.replace("{id: Pendulum-v1}", "{id: Pendulum-v1, kwargs: &a {x: *a}}"))
    with pytest.raises(ConfigError, match=r"loop\.yaml.*\*a.*contain itself"):
        load_config(path)


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".yaml", HEAD.replace("{id: Pendulum-v1}", "{id: Pendulum-v1, kwargs: {x: DEEP}}")),
        (".toml", 'algo = "sac"\nsteps = 1000\n[env]\nid = "Pendulum-v1"\nkwargs = {x = DEEP}\n'),
    ],
    ids=["yaml", "toml"],
)
@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, 5000])
def test_deep_nesting_is_refused(tmp_path: Path, suffix: str, text: str, depth: int) -> None:
    """Nesting past MAX_DEPTH is a ConfigError naming the file, never a RecursionError."""
    path = tmp_path / f"deep{suffix}"
    path.write_text(text.replace("DEEP", nested(depth)))
    with pytest.raises(ConfigError, match=rf"deep\{suffix}.*nested.*{MAX_DEPTH}"):
        load_config(path)
    path.write_text(text.replace("DEEP", nested(MAX_DEPTH - 3)))  # top, env, kwargs: the limit
    assert load_config(path).env.kwargs["x"]


def test_deep_json_in_an_override_is_refused() -> None:
    """A deeply nested JSON ``--set`` value is a ConfigError, never a RecursionError."""
    deep = '{"a": ' * 3000 + "1" + "}" * 3000
    with pytest.raises(ConfigError, match=rf"override 'env\.kwargs=.*nested.*{MAX_DEPTH}"):
        apply_overrides(BASE, [f"env.kwargs={deep}"])


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "sweeps").iterdir()), ids=str)
def test_every_benchmark_sweep_still_loads(path: Path) -> None:
    """The shipped sweep files, with their anchors and merge keys, load and expand."""
    assert expand_sweep(load_sweep(path))


@pytest.mark.parametrize("path", sorted((ROOT / "configs").iterdir()), ids=str)
def test_every_example_config_still_loads(path: Path) -> None:
    """The shipped run configs load through the capped loader."""
    assert load_config(path).steps > 0


def test_merge_keys_may_override_and_nest(tmp_path: Path) -> None:
    """``<<: *anchor`` with overriding keys (also of an anchor that merges itself) is no
    duplicate."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "a: &a {x: 1, y: 2}\nb: &b {<<: *a, y: 3}\nc: {<<: *b, x: 4}\nd: {<<: [*a, *b], z: 5}\n"
    )
    data = read_config_file(path)
    assert data["b"] == {"x": 1, "y": 3} and data["d"] == {"x": 1, "y": 2, "z": 5}
    assert data["c"]["x"] == 4  # (which y PyYAML merges through two levels is its own choice)


# -- duplicate keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (HEAD + "seed: 1\nseed: 2\n", "seed", 5),
        (HEAD + 'algo_kwargs: {"gamma": 0.9, "gamma": 0.5}\n', "gamma", 4),
        (
            HEAD + "policy_kwargs:\n  net_arch: [8]\n  density: 0.5\n  net_arch: [16]\n",
            "net_arch",
            7,
        ),
    ],
    ids=["yaml", "json", "nested"],
)
def test_duplicate_keys_are_refused(tmp_path: Path, text: str, key: str, line: int) -> None:
    """A key given twice is an error naming it and its line, not a silent last-one-wins."""
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"dup\.yaml.*duplicate key '{key}'.*line {line}"):
        load_config(path)


def test_duplicate_keys_in_an_override_are_refused() -> None:
    """A ``--set`` mapping with a repeated key fails like a file would."""
    with pytest.raises(ConfigError, match="duplicate key 'gamma'"):
        apply_overrides(BASE, ['algo_kwargs={"gamma": 0.9, "gamma": 0.5}'])


def test_duplicate_method_labels_in_a_sweep_file_are_refused(tmp_path: Path) -> None:
    """Two methods with one label are an error, not one method silently dropped."""
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "base: {algo: sac, steps: 100, env: {id: Pendulum-v1}}\n"
        "methods:\n  sac: {}\n  sac: {algo: td3}\nseeds: [0]\n"
    )
    with pytest.raises(SweepError, match=r"sweep file .*duplicate key 'sac'.*line 4"):
        load_sweep(path)


def test_duplicate_keys_in_toml_are_refused(tmp_path: Path) -> None:
    """TOML files refuse repeated keys too."""
    path = tmp_path / "dup.toml"
    path.write_text('algo = "sac"\nalgo = "td3"\n')
    with pytest.raises(ConfigError, match=r"dup\.toml.*not valid"):
        load_config(path)


# -- values accepted before that break a run ---------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "key", "value", "valid"),
    [
        ("sac", "batch_size", 0, "an integer >= 1"),
        ("sac", "batch_size", 2.5, "an integer >= 1"),
        ("sac", "batch_size", True, "an integer >= 1"),
        ("sac", "buffer_size", -1, "an integer >= 1"),
        ("sac", "learning_starts", -5, "an integer >= 0"),
        ("sac", "gamma", 2, "a number in (0, 1]"),
        ("sac", "gamma", 0, "a number in (0, 1]"),
        ("sac", "tau", 1.5, "a number in (0, 1]"),
        ("sac", "learning_rate", math.inf, "a finite number > 0"),
        ("sac", "learning_rate", math.nan, "a finite number > 0"),
        ("sac", "learning_rate", 0, "a finite number > 0"),
        ("sac", "learning_rate", "fast", "a finite number > 0"),
        ("sac", "gradient_steps", 0, "an integer >= 1, or -1"),
        ("sac", "train_freq", 0, "an integer >= 1"),
        ("sac", "train_freq", [4, "epoch"], "[frequency, 'step' or 'episode']"),
        ("sac", "train_freq", [0, "step"], "an integer >= 1"),
        ("sac", "ent_coef", -0.1, "'auto', 'auto_<initial value > 0>' or a number >= 0"),
        ("sac", "ent_coef", "auto_-1", "'auto', 'auto_<initial value > 0>' or a number >= 0"),
        ("sac", "target_update_interval", 0, "an integer >= 1"),
        ("td3", "policy_delay", 0, "an integer >= 1"),
        ("td3", "target_policy_noise", -0.2, "a finite number >= 0"),
        ("td3", "action_noise", {"type": "normal", "sigma": -1}, "a finite number >= 0"),
        ("ppo", "n_steps", 1, "an integer >= 2"),
        ("ppo", "batch_size", 1, "an integer >= 2"),
        ("ppo", "n_epochs", 0, "an integer >= 1"),
        ("ppo", "ent_coef", math.nan, "a finite number >= 0"),
        ("ppo", "gae_lambda", 1.5, "a number in [0, 1]"),
        ("ppo", "clip_range", 0, "a finite number > 0"),
        ("a2c", "max_grad_norm", -1, "a finite number > 0"),
        ("r2n", "gamma", 1.01, "a number in (0, 1]"),
    ],
)
def test_bad_algo_kwargs_name_the_key_the_value_and_what_is_valid(
    algo: str, key: str, value: Any, valid: str
) -> None:
    """A value SB3 would crash on (or train NaNs with) is refused before the run starts."""
    message = error_of(with_(algo=algo, **{f"algo_kwargs__{key}": value}))
    assert f"algo_kwargs.{key}" in message and valid in message
    shown = value["sigma"] if isinstance(value, dict) else value
    assert repr(shown) in message


def test_good_algo_kwargs_still_pass_and_whole_floats_become_ints() -> None:
    """Valid SB3 settings are accepted; ``buffer_size: 1e6`` is the integer SB3 needs."""
    config = config_from_dict(
        with_(
            algo_kwargs={
                "buffer_size": 1e6,
                "batch_size": 256,
                "learning_starts": 0,
                "gamma": 1,
                "tau": 0.005,
                "learning_rate": 3e-4,
                "train_freq": [1, "episode"],
                "gradient_steps": -1,
                "ent_coef": "auto_0.1",
            }
        )
    )
    kwargs = build_algo_kwargs(config, action_dim=1)
    assert kwargs["buffer_size"] == 1_000_000 and isinstance(kwargs["buffer_size"], int)
    assert kwargs["train_freq"] == (1, "episode")
    ppo = with_(algo="ppo", algo_kwargs={"n_steps": 1, "batch_size": 1})
    ppo["algo_kwargs"]["normalize_advantage"] = False  # SB3 then takes single samples
    config_from_dict(ppo)
    config_from_dict(with_(algo="ppo", algo_kwargs={"ent_coef": 0.0, "clip_range_vf": None}))
    config_from_dict(with_(algo="a2c", algo_kwargs={"n_steps": 1}))  # A2C: no normalising
    with pytest.raises(ConfigError, match=r"algo_kwargs\.n_steps: 1 is not valid; an integer >= 2"):
        config_from_dict(with_(algo="a2c", algo_kwargs={"n_steps": 1, "normalize_advantage": True}))


@pytest.mark.parametrize(
    ("algo", "net_arch", "valid"),
    [
        ("sac", [16, -1], "positive integers"),
        ("sac", [16, 0], "positive integers"),
        ("sac", [16, 8.0], "positive integers"),
        ("sac", [True], "positive integers"),
        ("sac", 16, "a list of layer sizes"),
        ("sac", {"pi": [16, -1], "qf": [8]}, "positive integers"),
        ("sac", {"pi": [16]}, "keys pi and qf"),
        ("sac", {"pi": [16], "qf": [8], "vf": [8]}, "keys pi and qf"),
        ("ppo", {"pi": [16], "qf": [8]}, "keys pi and vf"),
        ("ppo", {"pi": [16], "vf": [-3]}, "positive integers"),
    ],
)
def test_bad_net_arch_is_refused(algo: str, net_arch: Any, valid: str) -> None:
    """Layer sizes must be positive integers, in every form SB3 takes."""
    message = error_of(with_(algo=algo, policy_kwargs__net_arch=net_arch))
    assert "policy_kwargs.net_arch" in message and valid in message


def test_good_net_arch_forms_still_pass() -> None:
    """The list and mapping forms SB3 documents keep working."""
    for algo, net_arch in [
        ("sac", []),
        ("sac", [64, 64]),
        ("sac", {"pi": [64], "qf": [64, 64]}),
        ("ppo", {"pi": [64, 64], "vf": [64, 64]}),
        ("ppo", {"pi": [32]}),
    ]:
        config_from_dict(with_(algo=algo, policy_kwargs__net_arch=net_arch))
    config_from_dict(with_(policy_kwargs={"net_arch": [8, 8], "density": 0.5}))


@pytest.mark.parametrize(
    "name", ["a\x00b", "run\n", "tab\tname", "\x1b[31mred", "a\\b", "a/b", "\u202eevil", " "]
)
def test_run_names_with_control_characters_or_separators_are_refused(name: str) -> None:
    """A run name becomes a folder name: control characters and path separators are refused."""
    message = error_of(with_(name=name))
    assert message.startswith("name:") and repr(name) in message and "control" in message


def test_empty_videos_directory_is_refused() -> None:
    """``videos: ""`` would read the current directory; it is refused instead."""
    for videos in ["", "   ", "a\x00b"]:
        message = error_of(with_(algo="madi", env={"id": "cartpole-swingup", "videos": videos}))
        assert "env.videos" in message and repr(videos) in message and "directory" in message


# -- noise fraction --------------------------------------------------------------------------------


class Flat(gym.Env[np.ndarray, np.ndarray]):
    """A 1-D Box env with ``num_real`` features (no physics: fast)."""

    def __init__(self, num_real: int) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (num_real,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


@pytest.mark.parametrize("num_real", [1, 3, 17, 348])
def test_max_noise_fraction_is_exact(num_real: int) -> None:
    """The largest valid noise_fraction builds at most MAX_FEATURES features; the next float up
    is refused, naming the limit."""
    largest = max_noise_fraction(num_real)
    env = NoisyFeatures(Flat(num_real), largest)
    assert env.num_features <= MAX_FEATURES
    above = math.nextafter(largest, 1.0)
    with pytest.raises(ValueError, match=rf"noise_fraction={above!r}.*{largest!r}"):
        NoisyFeatures(Flat(num_real), above)


def test_too_large_noise_fraction_is_refused_when_the_env_is_built() -> None:
    """noise_fraction=0.9999 on 17 features (170,000 of them) fails at once, saying the largest
    valid value for 17 features."""
    with pytest.raises(ValueError, match=rf"noise_fraction.*largest.*{max_noise_fraction(17)!r}"):
        NoisyFeatures(Flat(17), 0.9999)


def test_too_large_noise_fraction_is_refused_in_the_config() -> None:
    """``noise_fraction: 0.999999`` is too large for any env: the config says so and names the
    largest value."""
    message = error_of(with_(env__noise_fraction=0.999999))
    assert "env.noise_fraction" in message and "0.999999" in message
    assert repr(max_noise_fraction(1)) in message
    config_from_dict(with_(env__noise_fraction=0.99))  # the papers' settings stay valid
