"""Run configs: one YAML or TOML file (plus ``--set key.sub=value`` overrides) describes a run.

A config names the algorithm, the env and the budget; everything else has a default::

    algo: sac                      # see ALGOS
    env: {id: HalfCheetah-v5, noise_fraction: 0.9}
    steps: 300000
    seed: 0
    policy_kwargs: {density: 0.1, updater: {name: rigl, interval: 1000}}   # sparse networks
    eval: {every: 10000, episodes: 10}

The rule for sparse networks: the networks are sparse exactly when ``policy_kwargs`` holds a
sparse key (a field of ``sn.SparsitySettings``: ``density``, ``distribution``, ``layers``,
``updater``, ``init``, ...; or ``actor_sparsity`` / ``critic_sparsity``), for every algorithm;
``anf-sac`` / ``anf-td3`` always are (ANF's settings, which those keys override). An updater is
a name (``rigl``) or a mapping ``{name: rigl, interval: 1000, drop_fraction: 0.3, ...}``.

Every key is checked: an unknown key anywhere (including inside ``algo_kwargs``,
``policy_kwargs``, ``preference`` and ``teacher``) is a :class:`ConfigError` naming its full path,
the closest valid key and all valid keys; so are wrong types and invalid choices (the checks of
the algorithm arguments live in :mod:`sparse_rl.algorithms`). YAML is read
with ``yaml.safe_load``'s rules, except that ``3e-4`` is a number (YAML 1.1 wants ``3.0e-4``), a
key given twice in one mapping is an error (not last-one-wins), and a file may nest at most
:data:`MAX_DEPTH` deep and its aliases add at most :data:`MAX_ALIAS_NODES` nodes (so an alias
bomb fails at once): :func:`load_yaml` is the one reader for config files, sweep files and
``--set`` values.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import tomllib
import types
import typing
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparse_rl.algorithms import ALGOS, check_arguments, is_visual
from sparse_rl.validation import ConfigError as ConfigError  # the config's error, raised here
from sparse_rl.validation import check_choice, check_keys, kind, shown

# -- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EnvConfig:
    """The training env (``sparse_rl.envs.make_env``); evaluation builds the same one.

    :param id: a gymnasium id (``HalfCheetah-v5``, ``sparse_rl/NoisyHopper-v5``) or a DeepMind
        Control task ``<domain>-<task>`` (``walker-walk``).
    :param obs: DMC only: ``pixels`` or ``state``; null picks ``pixels`` for the visual algos and
        ``state`` for the others. Must stay null for gymnasium ids.
    :param preset: DMC pixels only: distraction preset while training (``clean``, ``color_hard``,
        ``video_easy``, ``video_hard``, ``easy``, ``medium``, ``hard``) or an intensity in (0, 1].
    :param dynamic: DMC pixels only: distractions change every frame (null: the preset's default).
    :param videos: DMC pixels only: a directory of background videos (null: procedural ones);
        evaluation modes use it too.
    :param noise_fraction: flat observations only: this fraction in [0, 1) of the features is
        noise (the Extremely Noisy Environment); null: no noise features.
    :param noise: ``gaussian``, ``uniform`` or ``empirical`` (with ``noise_fraction``).
    :param noise_scale: standard deviation of Gaussian / uniform noise (with ``noise_fraction``).
    :param permute: shuffle all features with a seeded permutation (with ``noise_fraction``).
    :param repermute_every: draw a new permutation every this many steps (with ``permute``).
    :param kwargs: passed on to ``DMCEnv`` (``size``, ``frame_stack``, ``action_repeat``,
        ``episode_length``, ...) or ``gymnasium.make``.
    """

    id: str
    obs: str | None = None
    preset: str | float | None = None
    dynamic: bool | None = None
    videos: str | None = None
    noise_fraction: float | None = None
    noise: str = "gaussian"
    noise_scale: float = 1.0
    permute: bool = False
    repermute_every: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Deterministic evaluation during training, on a separate env.

    :param every: evaluate every this many env steps (and at the end).
    :param episodes: episodes per evaluation (and per mode).
    :param modes: visual algos only: distraction presets to evaluate on (null: ``[clean]``).
    :param seed: episode ``i`` of an evaluation resets with ``seed + i``; null: the run's
        ``seed + 10000``, so evaluation episodes never replay training seeds.
    """

    every: int = 10_000
    episodes: int = 10
    modes: list[str | float] | None = None
    seed: int | None = None


@dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """Atomic checkpoints (model, replay buffer, random states) in ``RUN_DIR/checkpoints``.

    :param every: checkpoint every this many env steps (and at the end).
    :param keep: how many of the newest complete checkpoints to keep.
    """

    every: int = 50_000
    keep: int = 2


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One training run.

    :param name: label of the method in reports and in the default run dir (null: ``algo``).
    :param algo: one of :data:`ALGOS`.
    :param env: the env.
    :param seed: seeds the model, the env and (through ``eval.seed``) evaluation.
    :param steps: env steps to train for; raise it and resume to extend a run.
    :param device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ...
    :param threads: torch CPU threads (null: torch's default).
    :param algo_kwargs: keyword arguments of the SB3 algorithm class (``learning_rate``,
        ``batch_size``, ``buffer_size``, ``learning_starts``, ``train_freq``, ...;
        ``action_noise: {type: normal, sigma: 0.1}`` for TD3 / DDPG; for the visual algos also
        ``strong_augmentation``, ``svea_alpha``, ...).
    :param policy_kwargs: the policy's keyword arguments (``net_arch``, ``activation_fn: ReLU``,
        ``optimizer_class: AdamW``, ``optimizer_kwargs``, ...; for the visual algos ``encoder``,
        ``masker``, ``masker_lr``) plus the sparse keys (``sparse_rl.algorithms.SPARSE_KEYS``).
    :param preference: ``pebble`` / ``r2n`` only: ``PbRLConfig`` fields overriding the method's
        defaults (``budget``, ``session_every``, ``reward_sparsity``, ...).
    :param teacher: ``pebble`` / ``r2n`` only: ``SimulatedTeacher`` fields (``eps_mistake``, ...;
        ``seed`` defaults to the run's seed).
    :param eval: evaluation settings.
    :param checkpoint: checkpoint settings.
    :param log_formats: SB3 logger outputs in ``RUN_DIR/logs``: ``stdout``, ``csv``,
        ``tensorboard`` (the last needs the ``tensorboard`` package; without it, a warning).
    """

    name: str | None = None
    algo: str
    env: EnvConfig
    seed: int = 0
    steps: int
    device: str = "auto"
    threads: int | None = None
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    preference: dict[str, Any] = field(default_factory=dict)
    teacher: dict[str, Any] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log_formats: list[str] = field(default_factory=lambda: ["stdout", "csv", "tensorboard"])


# -- algorithms ----------------------------------------------------------------------------------


OBS_KINDS = ("pixels", "state")
LOG_FORMATS = ("stdout", "csv", "tensorboard")


def method_label(config: RunConfig) -> str:
    """The method's name in reports: ``name``, or ``algo`` when the config has no name."""
    return config.name or config.algo


# -- loading and overrides -----------------------------------------------------------------------


#: How deep mappings and lists may nest in a config or sweep file (a run config needs about 5).
MAX_DEPTH = 50
#: How many nodes the aliases of one file may add, all expansions together: the shipped sweep
#: files add a few dozen; a "billion laughs" file would add billions.
MAX_ALIAS_NODES = 10_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.YAMLError):
    """A file the capped loader will not read: which limit, and where in the text."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.message, self.mark = message, mark

    def __str__(self) -> str:
        return f"{self.message} (line {self.mark.line + 1}, column {self.mark.column + 1})"


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` / ``3E4`` as floats (YAML 1.2 does), and is
    capped: aliases may add at most :data:`MAX_ALIAS_NODES` nodes, nesting (aliases expanded)
    stops at :data:`MAX_DEPTH`, an alias may not sit inside its own anchor, and a key may appear
    once per mapping (merge keys ``<<`` aside). The checks run while composing the node graph,
    before any Python object is built, so a hostile file costs no more than its own size.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0  # mappings and lists open around the node being composed
        self._alias_nodes = 0
        self._open: set[str] = set()  # anchors whose node is still being composed
        self._measured: dict[yaml.Node, tuple[int, int]] = {}  # node -> (size, height) expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._check_alias(event)
            return super().compose_node(parent, index)
        collection = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested more than MAX_DEPTH={MAX_DEPTH} deep", event.start_mark)
        if event.anchor is not None:
            self._open.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            if collection:
                self._depth -= 1
            self._open.discard(event.anchor)
        if isinstance(node, yaml.MappingNode):
            self._check_unique_keys(node)
        self._measure(node)
        return node

    def _check_alias(self, event: yaml.AliasEvent) -> None:
        node = self.anchors.get(event.anchor)
        if node is None:  # undefined: PyYAML's own error follows
            return
        if event.anchor in self._open:
            where = f"alias *{event.anchor} sits inside the node it names"
            raise _Refused(f"{where}, which would contain itself", event.start_mark)
        size, height = self._measured[node]
        self._alias_nodes += size
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise _Refused(
                f"aliases expand to more than MAX_ALIAS_NODES={MAX_ALIAS_NODES} nodes (an alias "
                "bomb?); write the values out or use fewer aliases",
                event.start_mark,
            )
        if self._depth + height > MAX_DEPTH:
            raise _Refused(
                f"alias *{event.anchor} makes it nested more than MAX_DEPTH={MAX_DEPTH} deep",
                event.start_mark,
            )

    def _measure(self, node: yaml.Node) -> None:
        """Record ``node``'s size and height with aliases expanded (its children are known)."""
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            self._measured[node] = (1, 0)
            return
        measured = [self._measured[child] for child in children]
        size = 1 + sum(size for size, _ in measured)
        self._measured[node] = (size, 1 + max((height for _, height in measured), default=0))

    def _check_unique_keys(self, node: yaml.MappingNode) -> None:
        """Each key once, before merge keys flatten the mapping (a merged key may be overridden)."""
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node)
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise _Refused(
                    f"duplicate key {key!r} (first at line {first}); each key may appear once "
                    "in a mapping",
                    key_node.start_mark,
                )
            seen[key] = key_node


# add_implicit_resolver appends to lists shared with SafeLoader: copy them first.
_Loader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


def load_yaml(text: str | bytes, source: str, *, invalid: str = "is not valid") -> Any:
    """The data in YAML (or JSON) ``text``, read by the capped loader; the one way our command
    line reads YAML a user wrote (config files, sweep files, ``--set`` values).

    :param source: what ``text`` is, to start error messages (``config file 'run.yaml'``).
    :param invalid: what follows ``source`` when ``text`` is not YAML at all.
    """
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except _Refused as error:
        raise ConfigError(f"{source}: {error}.") from None
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ConfigError(f"{source} {invalid}: {detail}") from None
    finally:
        loader.dispose()


def load_toml(text: str, source: str) -> dict[str, Any]:
    """The data in TOML ``text``, nesting checked against :data:`MAX_DEPTH` like YAML's."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source} is not valid: {error}") from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        data = None
    if data is None or _depth(data) > MAX_DEPTH:
        raise ConfigError(f"{source}: nested more than MAX_DEPTH={MAX_DEPTH} deep.")
    return data


def _depth(data: Any) -> int:
    """How deep mappings and lists nest in ``data`` (a scalar: 0), without recursion."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        value, depth = todo.pop()
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in children)
    return deepest


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """The run described by the file at ``path`` (YAML or TOML, by extension) and ``overrides``.

    :param path: the config file; None builds the config from ``overrides`` alone.
    :param overrides: ``key.sub=value`` strings, values read as YAML (``seed=3``,
        ``policy_kwargs.net_arch=[64, 64]``, ``env.noise_fraction=null``).
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = read_config_file(path)
    return config_from_dict(apply_overrides(data, overrides))


def read_config_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The raw mapping in a YAML / TOML config file (before overrides and checks).

    :param what: what the file is, for error messages (sweeps read theirs here too).
    """
    path = Path(path)
    source = f"{what} {str(path)!r}"
    if path.suffix not in CONFIG_SUFFIXES:
        raise ConfigError(f"{source} must end in one of {list(CONFIG_SUFFIXES)} (YAML or TOML).")
    if not path.is_file():
        raise ConfigError(f"{source} does not exist.")
    raw = path.read_bytes()
    if path.suffix == ".toml":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{source} is not valid: {error}") from None
        data: Any = load_toml(text, source)
    else:
        data = load_yaml(raw, source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping of keys, got {kind(data)}.")
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key.sub=value`` override set (missing mappings are made).

    Values are read as YAML scalars, lists or mappings. Keys are checked later, by
    :func:`config_from_dict`, so a misspelt override fails like a misspelt file key.
    """
    result = copy.deepcopy(dict(data))
    for override in overrides:
        key, sep, text = override.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(
                f"override {override!r} must look like key=value or key.sub=value "
                "(e.g. seed=3, env.noise_fraction=0.9)."
            )
        shown = override if len(override) <= 60 else override[:57] + "..."
        value = load_yaml(text, f"override {shown!r}", invalid="has a value that is not valid YAML")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(
                    f"override {override!r}: {where} is {kind(child)}, not a mapping, so it has "
                    "no sub-keys."
                )
            node = child
        node[parts[-1]] = value
    return result


def config_from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Check ``data`` (parsed YAML / TOML) completely and return the run it describes."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of keys, got {kind(data)}.")
    config = _build(RunConfig, data, "")
    _check_run(config)
    return config


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain data (all defaults filled) that :func:`config_from_dict` turns back into ``config``."""
    return dataclasses.asdict(config)


def dump_config(config: RunConfig) -> str:
    """The YAML text of ``config`` (what ``RUN_DIR/config.yaml`` holds)."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def config_differences(a: RunConfig, b: RunConfig) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (value in a, value in b)}`` for every key whose value differs."""
    flat_a, flat_b = _flatten(config_to_dict(a)), _flatten(config_to_dict(b))
    missing = object()
    return {
        key: (flat_a.get(key), flat_b.get(key))
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key, missing) != flat_b.get(key, missing)
    }


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


# -- structure and types -------------------------------------------------------------------------


def _build(cls: type, data: Any, prefix: str) -> Any:
    """An instance of dataclass ``cls`` from mapping ``data``; keys and types checked."""
    where = prefix.rstrip(".") or "the config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected {_describe(cls)}, got {shown(data)}.")
    names = [f.name for f in dataclasses.fields(cls)]
    check_keys(data, names, prefix)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if f.name in data:
            values[f.name] = _typed(path, data[f.name], hints[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {path!r} ({_describe(hints[f.name])}).")
    return cls(**values)


_NO_VALUE = object()


def _typed(path: str, value: Any, hint: Any) -> Any:
    """``value`` checked against type ``hint`` (ints also from integral floats: ``1.0e6``)."""
    result = _convert(path, value, hint)
    if result is _NO_VALUE:
        raise ConfigError(f"{path}: expected {_describe(hint)}, got {shown(value)}.")
    return result


def _convert(path: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return _plain(path, value)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            result = _convert(path, value, option)
            if result is not _NO_VALUE:
                return result
        return _NO_VALUE
    if hint is type(None):
        return None if value is None else _NO_VALUE
    if hint is bool:
        return value if isinstance(value, bool) else _NO_VALUE
    if hint is int:
        if isinstance(value, bool):
            return _NO_VALUE
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else _NO_VALUE
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _NO_VALUE
        return float(value)
    if hint is str:
        return value if isinstance(value, str) else _NO_VALUE
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return _NO_VALUE
        (item,) = typing.get_args(hint)
        return [_typed(f"{path}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            return _NO_VALUE
        return _plain(path, value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{path}.")
    raise TypeError(f"config schema has an unsupported type {hint!r} at {path}")  # our bug


def _plain(path: str, value: Any) -> Any:
    """A deep copy of free-form data as YAML can write it: str keys, lists (not tuples)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{path}: keys must be strings, got {kind(key)} {key!r}.")
            out[key] = _plain(f"{path}.{key}", item)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(f"{path}[{i}]", item) for i, item in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ConfigError(
        f"{path}: {kind(value)} {value!r} cannot be written to a config; use names, numbers, "
        "lists and mappings."
    )


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return f"a list of ({_describe(item)})"
    if typing.get_origin(hint) is dict:
        return "a mapping"
    if dataclasses.is_dataclass(hint):
        return f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(hint))}"
    names = {
        type(None): "null",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        Any: "any value",
    }
    return names[hint]


# -- meaning -------------------------------------------------------------------------------------


def _check_at_least(path: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise ConfigError(f"{path}: must be >= {low}, got {value!r}.")


def _check_run(config: RunConfig) -> None:
    check_choice("algo", config.algo, ALGOS)
    if config.name is not None and not _is_file_name(config.name):
        raise ConfigError(
            f"name: {config.name!r} is not valid; a run name names the default run dir: "
            "not blank, without control characters and path separators ('/', '\\')."
        )
    _check_at_least("steps", config.steps, 1)
    _check_at_least("seed", config.seed, 0)
    _check_at_least("threads", config.threads, 1)
    _check_at_least("eval.every", config.eval.every, 1)
    _check_at_least("eval.episodes", config.eval.episodes, 1)
    _check_at_least("eval.seed", config.eval.seed, 0)
    _check_at_least("checkpoint.every", config.checkpoint.every, 1)
    _check_at_least("checkpoint.keep", config.checkpoint.keep, 1)
    for i, name in enumerate(config.log_formats):
        check_choice(f"log_formats[{i}]", name, LOG_FORMATS)
    _check_device(config.device)
    _check_env(config)
    _check_eval_modes(config)

    check_arguments(config)


def _is_file_name(text: str) -> bool:
    """Whether ``text`` can be (part of) one folder name: not blank, no separator, no character
    of Unicode category C (control, format, unassigned: NUL, newline, escape, right-to-left
    override, ...), which would hide or garble what a folder listing shows."""
    return (
        bool(text.strip())
        and "/" not in text
        and "\\" not in text
        and not any(unicodedata.category(char).startswith("C") for char in text)
    )


def _check_device(device: str) -> None:
    if device == "auto":
        return
    import torch

    try:
        torch.device(device)
    except RuntimeError:
        raise ConfigError(
            f"device: {device!r} is not a torch device; use auto, cpu, cuda or cuda:<index>."
        ) from None


def is_dmc_name(env_id: str) -> bool:
    """Whether ``env_id`` is a ``<domain>-<task>`` name that ``make_env`` builds through DMC (so
    ``env.obs`` applies); a registered gymnasium id of a DMC task is a gymnasium id here."""
    from sparse_rl.envs.factory import split_dmc_name

    return split_dmc_name(env_id) is not None


def observation_kind(config: RunConfig) -> str | None:
    """``pixels`` / ``state`` for DMC tasks (``env.obs`` or the algo's default), None otherwise."""
    if not is_dmc_name(config.env.id):
        return None
    return config.env.obs or ("pixels" if is_visual(config) else "state")


_ENV_FIELDS = tuple(f.name for f in dataclasses.fields(EnvConfig) if f.name != "kwargs")


def _check_env(config: RunConfig) -> None:
    from sparse_rl import envs

    env, visual = config.env, is_visual(config)
    dmc = is_dmc_name(env.id)
    if not dmc and ":" not in env.id and env.id not in _gym_registry():
        known = [*_gym_registry(), *envs.DMC_TASKS]
        close = difflib.get_close_matches(env.id, known, n=3)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(
            f"env.id: {env.id!r} is neither a registered gymnasium id nor a DeepMind Control "
            f"task '<domain>-<task>'{hint}."
        )
    if env.obs is not None:
        check_choice("env.obs", env.obs, OBS_KINDS)
        if not dmc:
            raise ConfigError(
                f"env.obs: applies to DeepMind Control tasks; {env.id!r} is not "
                "one (remove env.obs)."
            )
    kind = observation_kind(config)
    if visual and kind != "pixels":
        raise ConfigError(
            f"env: {config.algo} learns from pixels: use a DeepMind Control task (e.g. "
            f"walker-walk) with obs pixels, got {env.id!r}"
            + (f" with obs {kind}." if kind else ".")
        )
    if not visual and kind == "pixels":
        raise ConfigError(
            f"env.obs: {config.algo} needs flat observations; use obs state (or a "
            "visual algo: visual-sac, svea, madi)."
        )
    for key in ("preset", "dynamic", "videos"):
        if getattr(env, key) is not None and kind != "pixels":
            raise ConfigError(f"env.{key}: applies to DeepMind Control pixels only.")
    if env.videos is not None and (not env.videos.strip() or "\0" in env.videos):
        raise ConfigError(
            f"env.videos: {env.videos!r} is not valid; give a directory of background videos "
            "(a non-blank path; '.' for the current one) or null for procedural ones."
        )
    if env.preset is not None:
        check_mode("env.preset", env.preset)
    if env.noise_fraction is not None:
        if kind == "pixels":
            raise ConfigError("env.noise_fraction: applies to flat (state) observations only.")
        _check_noise_fraction(env.noise_fraction)
        check_choice("env.noise", env.noise, envs.NOISE_KINDS)
        if not env.noise_scale > 0:
            raise ConfigError(f"env.noise_scale: must be > 0, got {env.noise_scale}.")
        _check_at_least("env.repermute_every", env.repermute_every, 1)
        if env.repermute_every is not None and not env.permute:
            raise ConfigError("env.repermute_every: needs env.permute: true.")
    else:
        defaults = EnvConfig(id=env.id)
        for key in ("noise", "noise_scale", "permute", "repermute_every"):
            if getattr(env, key) != getattr(defaults, key):
                raise ConfigError(f"env.{key}: applies with env.noise_fraction only; set it too.")
    for key in env.kwargs:
        if key in _ENV_FIELDS:
            raise ConfigError(f"env.kwargs.{key}: set env.{key} instead.")


def _check_noise_fraction(fraction: float) -> None:
    """In [0, 1), and small enough that even an env with one real feature stays within
    ``MAX_FEATURES`` (the exact bound for an env's own feature count is checked when it is
    built: the count is not known before)."""
    from sparse_rl.envs.noisy_features import MAX_FEATURES, max_noise_fraction

    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"env.noise_fraction: must be in [0, 1), got {fraction}.")
    largest = max_noise_fraction(1)
    if fraction > largest:
        raise ConfigError(
            f"env.noise_fraction: {fraction!r} is not valid; d real features become "
            f"round(d / (1 - {fraction!r})), more than MAX_FEATURES={MAX_FEATURES} for any env; "
            f"the largest valid value is {largest!r} (1 real feature), less with more features."
        )


def _gym_registry() -> list[str]:
    import gymnasium

    import sparse_rl.envs  # noqa: F401  (registers the sparse_rl/ ids)

    return list(gymnasium.registry)


def check_mode(path: str, mode: str | float) -> None:
    from sparse_rl import envs

    if isinstance(mode, str):
        check_choice(path, mode, envs.PRESETS)
    elif not 0.0 < mode <= 1.0:
        raise ConfigError(f"{path}: an intensity must lie in (0, 1], got {mode}.")


def _check_eval_modes(config: RunConfig) -> None:
    modes = config.eval.modes
    if modes is None:
        return
    if not is_visual(config):
        raise ConfigError(
            "eval.modes: distraction modes apply to the visual algos (visual-sac, svea, madi); "
            "remove eval.modes."
        )
    if not modes:
        raise ConfigError("eval.modes: give at least one mode (or null for [clean]).")
    for i, mode in enumerate(modes):
        check_mode(f"eval.modes[{i}]", mode)


def eval_modes(config: RunConfig) -> list[str | float]:
    """The modes evaluated during training (visual algos): ``eval.modes`` or ``[clean]``."""
    return list(config.eval.modes) if config.eval.modes is not None else ["clean"]


def eval_seed(config: RunConfig) -> int:
    return config.eval.seed if config.eval.seed is not None else config.seed + 10_000
