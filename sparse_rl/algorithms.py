"""What each ``algo`` of a run config builds: the SB3 class, its policy and its arguments.

Configs hold plain data (names, numbers, lists, mappings); the functions here turn
``algo_kwargs``, ``policy_kwargs``, ``preference`` and ``teacher`` into what the classes take
(updater objects, activation and optimizer classes, action noise, ``PbRLConfig``,
``SimulatedTeacher``), and check them on the way: :func:`check_arguments` is the part of
``config_from_dict`` that needs the agents (torch, SB3).

The rule for sparse networks: the networks are sparse exactly when ``policy_kwargs`` holds a key
of :data:`SPARSE_KEYS`, for every algorithm; ``anf-sac`` / ``anf-td3`` always are (ANF's
settings, which those keys override); every policy, the visual ones too, takes them directly.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparse_rl.validation import ConfigError, check_choice, check_keys, check_number

if TYPE_CHECKING:
    from sparse_rl.config import RunConfig


@dataclass(frozen=True)
class Algorithm:
    """What an ``algo`` name builds, and what sets it apart from plain (sparse) SB3.

    :param base: the SB3 algorithm underneath: sac, td3, ddpg, ppo, a2c or dqn.
    :param always_sparse: ANF: sparse input layers whatever ``policy_kwargs`` say.
    :param learns_from_labels: PEBBLE / R2N (``PrefSAC``): a reward model, a teacher and a label
        store in the run directory.
    :param pixels: pixel agents (``VisualSAC``), evaluated on each distraction mode.
    :param method: what selects the variant inside the class (PbRL settings / VisualSAC method).
    """

    base: str
    always_sparse: bool = False
    learns_from_labels: bool = False
    pixels: bool = False
    method: str | None = None


ALGORITHMS: dict[str, Algorithm] = {
    "sac": Algorithm("sac"),
    "td3": Algorithm("td3"),
    "ddpg": Algorithm("ddpg"),
    "ppo": Algorithm("ppo"),
    "a2c": Algorithm("a2c"),
    "dqn": Algorithm("dqn"),
    "anf-sac": Algorithm("sac", always_sparse=True),
    "anf-td3": Algorithm("td3", always_sparse=True),
    "pebble": Algorithm("sac", learns_from_labels=True, method="pebble"),
    "r2n": Algorithm("sac", learns_from_labels=True, method="r2n"),
    "visual-sac": Algorithm("sac", pixels=True, method="sac"),
    "svea": Algorithm("sac", pixels=True, method="svea"),
    "madi": Algorithm("sac", pixels=True, method="madi"),
}
ALGOS = tuple(ALGORITHMS)


def algorithm(config: RunConfig) -> Algorithm:
    return ALGORITHMS[config.algo]


def is_visual(config: RunConfig) -> bool:
    return algorithm(config).pixels


#: Keys of ``policy_kwargs`` that make the networks sparse: the core's ``SparsitySettings``
#: fields, per network overrides, and the old names (which get an error naming the new ones).
#: Spelled out so that reading a config does not import torch (a test checks they agree).
SPARSE_KEYS = (
    "density",
    "fan_in",
    "distribution",
    "layers",
    "exclude",
    "updater",
    "init",
    "grow_init",
    "rescale_init",
    "actor_sparsity",
    "critic_sparsity",
    "features_extractor_sparsity",
    "sparse_layers",
    "mask_init",
)
ACTION_NOISES = {"normal": ("sigma",), "ornstein_uhlenbeck": ("sigma", "theta", "dt")}
_POSITIVE_INT: dict[str, Any] = {"integer": True, "low": 1}
_POSITIVE: dict[str, Any] = {"low": 0, "low_open": True}
_FRACTION: dict[str, Any] = {"low": 0, "high": 1, "low_open": True}
_EVERY_STEP: dict[str, Any] = {**_POSITIVE_INT, "also": (-1,)}
#: Valid values of the numeric algo_kwargs SB3's algorithms take (``check_number`` arguments),
#: checked when the algo's class has the key: a value outside crashes SB3 or trains on NaNs.
ALGO_KWARG_RANGES: dict[str, dict[str, Any]] = {
    "batch_size": _POSITIVE_INT,
    "buffer_size": _POSITIVE_INT,
    "learning_starts": {"integer": True, "low": 0},
    "gradient_steps": {**_EVERY_STEP, "why": " (-1: one per env step collected)"},
    "n_steps": _POSITIVE_INT,
    "n_epochs": _POSITIVE_INT,
    "policy_delay": _POSITIVE_INT,
    "target_update_interval": _POSITIVE_INT,
    "stats_window_size": _POSITIVE_INT,
    "sde_sample_freq": {**_EVERY_STEP, "why": " (-1: only at the start of a rollout)"},
    "gamma": _FRACTION,
    "tau": _FRACTION,
    "gae_lambda": {"low": 0, "high": 1},
    "learning_rate": _POSITIVE,
    "max_grad_norm": _POSITIVE,
    "clip_range": _POSITIVE,
    "clip_range_vf": _POSITIVE,
    "target_kl": _POSITIVE,
    "rms_prop_eps": _POSITIVE,
    "exploration_fraction": {"low": 0, "high": 1},
    "exploration_initial_eps": {"low": 0, "high": 1},
    "exploration_final_eps": {"low": 0, "high": 1},
    "vf_coef": {"low": 0},
    "target_policy_noise": {"low": 0},
    "target_noise_clip": {"low": 0},
}
#: algo_kwargs of ALGO_KWARG_RANGES whose null SB3 reads as "off".
_NULLABLE_ALGO_KWARGS = ("clip_range_vf", "target_kl")
_ACTION_NOISE_RANGES: dict[str, dict[str, Any]] = {
    "sigma": {"low": 0},
    "theta": _POSITIVE,
    "dt": _POSITIVE,
}
#: algo_kwargs the config sets elsewhere (value: where).
RESERVED_ALGO_KWARGS = {
    "policy": "the algo (policy class follows from algo and policy_kwargs)",
    "env": "env",
    "seed": "the top-level key 'seed'",
    "device": "the top-level key 'device'",
    "policy_kwargs": "the top-level key 'policy_kwargs'",
    "tensorboard_log": "log_formats (logs go to RUN_DIR/logs)",
    "_init_setup_model": "the training code",
    "preference": "the top-level key 'preference'",
    "teacher": "the top-level key 'teacher'",
    "label_store": "the run dir (RUN_DIR/labels.sqlite)",
    "method": "the algo (visual-sac, svea or madi)",
}
#: Policy arguments SB3 passes itself, or that a visual policy sets itself.
_POLICY_POSITIONAL = ("self", "observation_space", "action_space", "lr_schedule")
_VISUAL_POLICY_OWN = ("features_extractor_class", "share_features_extractor")


def is_sparse(config: RunConfig) -> bool:
    """Whether the agent's networks are sparse (the rule in the module docstring)."""
    return algorithm(config).always_sparse or any(k in config.policy_kwargs for k in SPARSE_KEYS)


def algorithm_class(config: RunConfig) -> type:
    """The SB3 class that trains (and loads) this run."""
    from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3

    from sparse_rl import agents

    algo = algorithm(config)
    if algo.learns_from_labels:
        return agents.PrefSAC
    if algo.pixels:
        return agents.VisualSAC
    sparse = {
        "sac": agents.SparseSAC,
        "td3": agents.SparseTD3,
        "ddpg": agents.SparseDDPG,
        "ppo": agents.SparsePPO,
        "a2c": agents.SparseA2C,
        "dqn": agents.SparseDQN,
    }
    dense = {"sac": SAC, "td3": TD3, "ddpg": DDPG, "ppo": PPO, "a2c": A2C, "dqn": DQN}
    return (sparse if is_sparse(config) else dense)[algo.base]


def policy_name(config: RunConfig) -> str:
    """The policy alias passed to the algorithm class."""
    if is_visual(config):
        return "VisualPolicy"
    return "SparseMlpPolicy" if is_sparse(config) else "MlpPolicy"


# -- algorithm and policy arguments --------------------------------------------------------------


def _init_parameters(cls: type, skip: Sequence[str] = ()) -> list[str]:
    """Named ``__init__`` parameters along the MRO, down to the first without ``**kwargs``."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return [n for n in dict.fromkeys(names) if n not in skip]


def _check_algo_kwargs(config: RunConfig) -> None:
    valid = _init_parameters(algorithm_class(config), skip=("self",))
    for key in config.algo_kwargs:
        if key in RESERVED_ALGO_KWARGS:
            raise ConfigError(f"algo_kwargs.{key}: set by {RESERVED_ALGO_KWARGS[key]}; remove it.")
    check_keys(
        config.algo_kwargs, [k for k in valid if k not in RESERVED_ALGO_KWARGS], "algo_kwargs."
    )
    _checked_algo_kwargs(config)


def _checked_algo_kwargs(config: RunConfig) -> dict[str, Any]:
    """A copy of ``algo_kwargs`` with every value SB3 algorithms commonly take checked (the one
    place for them) and whole floats made ints (``buffer_size: 1e6``)."""
    kwargs = copy.deepcopy(config.algo_kwargs)
    base = algorithm(config).base
    # Advantages normalised over one sample are NaN (PPO asserts it, A2C trains on the NaNs).
    normalized = bool(kwargs.get("normalize_advantage", base == "ppo"))
    one_sample_nan = base in ("ppo", "a2c") and normalized
    for key, value in kwargs.items():
        path = f"algo_kwargs.{key}"
        if key in ALGO_KWARG_RANGES and not (value is None and key in _NULLABLE_ALGO_KWARGS):
            spec = ALGO_KWARG_RANGES[key]
            if one_sample_nan and key in ("batch_size", "n_steps"):
                why = " (advantages are normalised over each batch; or normalize_advantage: false)"
                spec = {**spec, "low": 2, "why": why}
            kwargs[key] = check_number(path, value, **spec)
        elif key == "train_freq":
            kwargs[key] = _checked_train_freq(path, value)
        elif key == "ent_coef":
            kwargs[key] = _checked_ent_coef(path, value, learned=base == "sac")
        elif key == "target_entropy" and value != "auto":
            kwargs[key] = check_number(path, value, why=", or 'auto'")
    noise = kwargs.get("action_noise")
    if noise is not None:
        if not isinstance(noise, Mapping) or "type" not in noise:
            raise ConfigError(
                "algo_kwargs.action_noise: expected a mapping like {type: normal, sigma: 0.1}, "
                f"got {noise!r}."
            )
        check_choice("algo_kwargs.action_noise.type", noise["type"], tuple(ACTION_NOISES))
        check_keys(noise, ["type", *ACTION_NOISES[noise["type"]]], "algo_kwargs.action_noise.")
        for key, value in noise.items():
            if key != "type":
                path = f"algo_kwargs.action_noise.{key}"
                noise[key] = check_number(path, value, **_ACTION_NOISE_RANGES[key])
    return kwargs


def _checked_train_freq(path: str, value: Any) -> int | list[Any]:
    """``train_freq``: a number of steps, or ``[frequency, 'step' or 'episode']``."""
    pair = isinstance(value, (list, tuple))
    if pair and (len(value) != 2 or value[1] not in ("step", "episode")):
        frequency: Any = None
    else:
        frequency = value[0] if pair else value
    try:
        frequency = check_number(path, frequency, integer=True, low=1)
    except ConfigError:
        raise ConfigError(
            f"{path}: {value!r} is not valid; an integer >= 1, or [frequency, 'step' or "
            "'episode'] with frequency an integer >= 1."
        ) from None
    return [frequency, value[1]] if pair else frequency


def _checked_ent_coef(path: str, value: Any, *, learned: bool) -> Any:
    """``ent_coef``: a number >= 0; SAC also learns it from ``auto`` / ``auto_<initial value>``."""
    if not learned:
        return check_number(path, value, low=0)
    if value == "auto":
        return value
    initial = value.removeprefix("auto_") if isinstance(value, str) else None
    try:
        if initial is None:
            return check_number(path, value, low=0)
        if initial != value:
            check_number(path, float(initial), low=0, low_open=True)
            return value
    except (ConfigError, ValueError):  # raised again below, with SAC's forms
        pass
    raise ConfigError(
        f"{path}: {value!r} is not valid; 'auto', 'auto_<initial value > 0>' or a number >= 0."
    )


def build_algo_kwargs(config: RunConfig, action_dim: int) -> dict[str, Any]:
    """``algo_kwargs`` as the SB3 class takes them (action noise objects, tuples)."""
    kwargs = _checked_algo_kwargs(config)
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    noise = kwargs.get("action_noise")
    if noise is not None:
        import numpy as np
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        settings = {k: v for k, v in noise.items() if k != "type"}
        sigma = float(settings.pop("sigma", 0.1)) * np.ones(action_dim)
        noise_class = (
            NormalActionNoise if noise["type"] == "normal" else OrnsteinUhlenbeckActionNoise
        )
        kwargs["action_noise"] = noise_class(np.zeros(action_dim), sigma, **settings)
    return kwargs


def _policy_parameters(config: RunConfig) -> list[str]:
    """Keys ``policy_kwargs`` may hold for this algo: the policy's arguments and SPARSE_KEYS."""
    from sparse_rl.agents.visual.policy import VisualSACPolicy

    if is_visual(config):
        skip = (*_POLICY_POSITIONAL, *_VISUAL_POLICY_OWN)
        own = _init_parameters(VisualSACPolicy, skip=skip)
    else:
        own = _init_parameters(
            algorithm_class(config).policy_aliases["MlpPolicy"], skip=_POLICY_POSITIONAL
        )
    return [*own, *SPARSE_KEYS]


def _named_class(path: str, name: Any, module: Any, base: type, *, own: bool = False) -> type:
    """``module``'s subclass of ``base`` called ``name`` (``own``: defined in ``module`` itself)."""
    candidates = sorted(
        n
        for n, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, base)
        and obj is not base
        and (not own or obj.__module__ == module.__name__)
    )
    if not isinstance(name, str) or name not in candidates:
        same = [c for c in candidates if c.lower() == str(name).lower()]
        close = same or difflib.get_close_matches(str(name), candidates, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{path}: {name!r} is not valid{hint}; choose one of {', '.join(candidates)}."
        )
    return getattr(module, name)


def _check_net_arch(config: RunConfig, net_arch: Any) -> None:
    """Layer sizes are positive integers, as a list or the mapping form SB3 reads for this algo:
    ``{pi, qf}`` (both) off-policy, ``{pi, vf}`` (either) on-policy; other keys it would ignore.
    DQN takes a list only."""
    path = "policy_kwargs.net_arch"
    if algorithm(config).base == "dqn" and isinstance(net_arch, Mapping):
        raise ConfigError(f"{path}: {net_arch!r} is not valid; DQN takes a list of layer sizes.")
    on_policy = algorithm(config).base in ("ppo", "a2c")
    keys = ("pi", "vf") if on_policy else ("pi", "qf")
    valid = (
        "a list of layer sizes (positive integers), or a mapping with keys "
        f"{' and '.join(keys)} ({'either' if on_policy else 'both'}) to such lists"
    )
    if isinstance(net_arch, Mapping):
        wrong = [k for k in net_arch if k not in keys]
        missing = [] if on_policy else [k for k in keys if k not in net_arch]
        if wrong or missing:
            raise ConfigError(f"{path}: {net_arch!r} is not valid; {valid}.")
        layers = {f"{path}.{k}": v for k, v in net_arch.items()}
    else:
        layers = {path: net_arch}
    for where, sizes in layers.items():
        ok = isinstance(sizes, list) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes
        )
        if not ok:
            raise ConfigError(f"{where}: {sizes!r} is not valid; {valid}.")


def _check_sparse_settings(config: RunConfig, path: str, settings: Mapping[str, Any]) -> None:
    """Build each network's settings once, so a bad key or value fails now, naming it (an
    override for a network the algo lacks too: DQN has only its Q-network, "critic")."""
    from sparse_rl.agents.sparse.settings import NETWORKS, network_settings

    networks = ("critic",) if algorithm(config).base == "dqn" else NETWORKS
    network_settings(settings, path, networks)


def build_policy_kwargs(config: RunConfig) -> dict[str, Any]:
    """``policy_kwargs`` as the policy takes them: ANF defaults, updaters, classes by name."""
    import torch

    from sparse_rl import agents

    prefix = "policy_kwargs."
    given = copy.deepcopy(config.policy_kwargs)
    check_keys(given, _policy_parameters(config), prefix)
    if "net_arch" in given:
        _check_net_arch(config, given["net_arch"])
    kwargs = {k: v for k, v in given.items() if k not in SPARSE_KEYS}
    sparse = {k: v for k, v in given.items() if k in SPARSE_KEYS}
    if algorithm(config).always_sparse:
        sparse = {**agents.anf_policy_kwargs(), **sparse}
    if sparse:
        _check_sparse_settings(config, prefix, sparse)
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = _named_class(
            f"{prefix}activation_fn",
            kwargs["activation_fn"],
            torch.nn.modules.activation,
            torch.nn.Module,
            own=True,
        )
    if "optimizer_class" in kwargs:
        kwargs["optimizer_class"] = _named_class(
            f"{prefix}optimizer_class",
            kwargs["optimizer_class"],
            torch.optim,
            torch.optim.Optimizer,
        )
    return {**kwargs, **sparse}


def build_preference(config: RunConfig) -> Any:
    """The ``PbRLConfig`` of a pebble / r2n run: the method's defaults with ``preference`` set."""
    from sparse_rl import agents

    prefix = "preference."
    settings = copy.deepcopy(config.preference)
    check_keys(settings, [f.name for f in dataclasses.fields(agents.PbRLConfig)], prefix)
    if isinstance(settings.get("reward_hidden"), list):
        settings["reward_hidden"] = tuple(settings["reward_hidden"])
    if isinstance(settings.get("reward_sparsity"), Mapping):
        settings["reward_sparsity"] = agents.reward_sparsity(
            settings["reward_sparsity"], f"{prefix}reward_sparsity"
        )
    make = agents.r2n if algorithm(config).method == "r2n" else agents.pebble
    try:
        return make(**settings)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"preference: {error}") from None


def build_teacher(config: RunConfig) -> Any:
    """The ``SimulatedTeacher`` of a pebble / r2n run (default: B-Pref's oracle, seeded with the
    run's seed unless ``teacher.seed`` is set)."""
    from sparse_rl import agents

    names = [f.name for f in dataclasses.fields(agents.SimulatedTeacher) if f.init]
    check_keys(config.teacher, names, "teacher.")
    try:
        return agents.SimulatedTeacher(**{"seed": config.seed, **config.teacher})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"teacher: {error}") from None


def check_arguments(config: RunConfig) -> None:
    """Check ``algo_kwargs``, ``policy_kwargs``, ``preference`` and ``teacher`` of ``config``."""
    _check_algo_kwargs(config)
    build_policy_kwargs(config)
    if algorithm(config).learns_from_labels:
        build_preference(config)
        build_teacher(config)
    else:
        for key in ("preference", "teacher"):
            if getattr(config, key):
                raise ConfigError(
                    f"{key}: applies to the algos pebble and r2n only, not to "
                    f"{config.algo!r}; remove it."
                )
