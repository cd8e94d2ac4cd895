"""Export a trained agent's deterministic policy for deployment: ONNX, TorchScript and a JSON card.

A robot computer runs the export with :mod:`sparse_rl.runtime` (numpy + onnxruntime, no torch,
no pickles). The card (``card.json``) says everything the runtime needs besides the graph:
observation spec (vector, stacked pixels, or one entry per ``Dict`` key) and frame stack, the
action space and how the graph's output becomes an action (rescaled for ``Box``; for
``Discrete``, ``MultiDiscrete`` and ``MultiBinary`` the graph returns logits or Q-values and the
runtime chooses as SB3's deterministic ``predict`` does), observation normalisation, a safe
action, sparsity statistics and provenance.
Masks are folded into dense weights.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecNormalize, VecTransposeImage
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from sparse_rl import __version__
from sparse_rl import sparse_nets as sn
from sparse_rl.validation import check_choice

FORMATS = ("onnx", "torchscript", "numpy")
CARD_FORMAT, CARD_VERSION = "sparse-rl-policy-card", 2
_ALGORITHMS = (SAC, TD3, DDPG, PPO, A2C, DQN)
_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: "identity"}


class DeterministicPolicy(nn.Module):
    """obs -> what the policy's deterministic action is computed from, in one graph.

    ``Box`` actions: the action before SB3's rescaling (squashed or raw). ``Discrete``,
    ``MultiDiscrete`` and ``MultiBinary`` actions: the logits (PPO/A2C) or Q-values (DQN); the
    runtime chooses the action from them (argmax, per branch, or sigmoid > 0.5), so the graph
    stays float and its parity with torch is checked to 1e-5.

    Written out per policy family rather than through SB3's ``_predict``, whose
    ``torch.distributions`` objects the ONNX exporter cannot trace; each path is what SB3's
    distribution takes its mode from (tanh of the mean for SAC and squashed gSDE, the mean for
    the other ``Box`` policies).

    :param keys: for ``Dict`` observations, the keys in the order ``forward`` takes one tensor each.
    """

    def __init__(self, policy: nn.Module, keys: tuple[str, ...] | None = None) -> None:
        super().__init__()
        if not isinstance(policy, (SACPolicy, TD3Policy, ActorCriticPolicy, DQNPolicy)):
            raise ValueError(
                "export supports SAC, TD3/DDPG, PPO/A2C and DQN policies, got "
                f"{type(policy).__name__}."
            )
        self.policy = policy
        self.keys = keys

    def forward(self, *obs: torch.Tensor) -> torch.Tensor:
        x: Any = obs[0] if self.keys is None else dict(zip(self.keys, obs, strict=True))
        policy = self.policy
        if isinstance(policy, DQNPolicy):
            return policy.q_net(x)
        if isinstance(policy, TD3Policy):
            return policy.actor(x)
        if isinstance(policy, SACPolicy):
            actor = policy.actor
            features = actor.extract_features(x, actor.features_extractor)
            return torch.tanh(actor.mu(actor.latent_pi(features)))
        features = policy.extract_features(x, policy.pi_features_extractor)
        out = policy.action_net(policy.mlp_extractor.forward_actor(features))
        return torch.tanh(out) if policy.squash_output else out


def export_policy(
    model: BaseAlgorithm,
    directory: str | Path,
    *,
    formats: tuple[str, ...] = ("onnx", "torchscript"),
    env_id: str | None = None,
    frame_stack: int | None = None,
    vec_normalize: VecNormalize | None = None,
    safe_action: Any = None,
    verify: bool = True,
) -> Path:
    """Write policy.onnx (+ policy.ts, policy_mlp.npz) and card.json; return the card's path.

    :param formats: "onnx" (always written: the runtime runs it), "torchscript", and "numpy"
        (the MLP's weights as arrays, for the runtime's numpy/CSR backend; vector MLPs only).
    :param frame_stack: frames stacked in a pixel observation; read from the env when it has a
        ``frame_stack`` attribute (our DMC envs do).
    :param vec_normalize: the ``VecNormalize`` the model was trained with (default: the model's).
    :param safe_action: sent for invalid observations and watchdog overruns, in env units: for
        ``Box`` actions one value per dimension (default: zeros clipped into the bounds, i.e. zero
        velocity for velocity control); for ``Discrete`` an action index (default 0); for
        ``MultiDiscrete`` one index per branch (default all 0); for ``MultiBinary`` 0/1 per
        entry (default all 0).
    :param verify: run the ONNX graph with onnxruntime on random observations and require it to
        match torch to 1e-5 before writing the card.
    """
    for name in formats:
        check_choice("formats", name, FORMATS)
    formats = tuple(dict.fromkeys(("onnx", *formats)))
    # first: refuses what it cannot export before anything is written
    action = _action_card(model.action_space, model.policy, safe_action)
    obs_space = model.observation_space
    if not isinstance(obs_space, (spaces.Box, spaces.Dict)):
        raise ValueError(f"export supports Box and Dict observation spaces, got {obs_space}.")
    env = model.get_env()
    if env is not None and isinstance(env, VecTransposeImage):
        raise ValueError(
            "the model was trained on channel-last images that SB3 transposed; export supports "
            "channel-first (C, H, W) pixel observations (our DMC envs give them)."
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    policy = _folded_copy(model.policy)
    policy.set_training_mode(False)
    keys = tuple(obs_space.spaces) if isinstance(obs_space, spaces.Dict) else None
    module = DeterministicPolicy(policy, keys).eval()
    pixels = keys is None and is_image_space(obs_space, check_channels=False)
    observation = _observation_card(model, obs_space, pixels, frame_stack, vec_normalize)
    example = _as_args(_example_obs(obs_space, 2), keys)

    files: dict[str, Any] = {"onnx": _export_onnx(module, example, keys, out / "policy.onnx")}
    if "torchscript" in formats:
        files["torchscript"] = _export_torchscript(module, example, out / "policy.ts")
    if "numpy" in formats:
        files["numpy"] = _export_numpy(policy, obs_space, out / "policy_mlp.npz")
    if verify:
        _verify_onnx(module, out / "policy.onnx", obs_space, files["onnx"]["input"])

    card = {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "files": files,
        "observation": observation,
        "action": action,
        "policy": {
            "algorithm": _algorithm(model),
            "class": type(model).__name__,
            "deterministic": True,
            **(_pixel_card(policy) if pixels else {}),
        },
        "sparsity": _sparsity_card(module, model.policy, example),
        "provenance": {
            "package": "sparse-rl",
            "version": __version__,
            "torch": torch.__version__,
            "env_id": env_id if env_id is not None else _env_id(model),
            "num_timesteps": int(model.num_timesteps),
            "weights_sha256": weights_sha256(module),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    }
    path = out / "card.json"
    path.write_text(json.dumps(card, indent=1))
    return path


def _folded_copy(policy: nn.Module) -> nn.Module:
    """A CPU copy with masks folded in, leaving the user's policy as it was.

    SB3's action distributions keep the last forward's tensors, which belong to a graph and
    cannot be deep-copied; they are rebuilt on every forward, so the copy gets them empty.
    """
    held = {}
    for module in policy.modules():
        dist = getattr(module, "action_dist", None)
        if dist is not None:
            empty = copy.copy(dist)
            for key, value in vars(empty).items():
                if isinstance(value, (torch.Tensor, torch.distributions.Distribution)):
                    setattr(empty, key, None)
            held[module] = dist
            module.action_dist = empty
    try:
        return sn.densify(policy).to("cpu")
    finally:
        for module, dist in held.items():
            module.action_dist = dist


def weights_sha256(module: nn.Module) -> str:
    """A hash of every tensor (names, shapes and values) of the exported module."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if not isinstance(tensor, torch.Tensor):
            continue  # extra state (sparse topology bookkeeping), not weights
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the pieces of the card ----------------------------------------------------------------------


def _observation_card(
    model: BaseAlgorithm,
    space: spaces.Box | spaces.Dict,
    pixels: bool,
    frame_stack: int | None,
    vec_normalize: VecNormalize | None,
) -> dict[str, Any]:
    if vec_normalize is None:
        vec_normalize = model.get_vec_normalize_env()
    if isinstance(space, spaces.Dict):
        if vec_normalize is not None and vec_normalize.norm_obs:
            raise ValueError("VecNormalize with dict observations is not supported by the export.")
        return {"kind": "dict", "keys": {k: _key_card(k, sub) for k, sub in space.spaces.items()}}
    shape = [int(n) for n in space.shape]
    if not pixels:
        if len(shape) != 1:
            raise ValueError(f"vector observations must be flat, got shape {tuple(shape)}.")
        return {
            "kind": "vector",
            "shape": shape,
            "dtype": "float32",
            "frame_shape": shape,
            "frame_stack": 1,
            "normalization": _normalization(vec_normalize),
        }
    if vec_normalize is not None and vec_normalize.norm_obs:
        raise ValueError("VecNormalize on pixel observations is not supported by the export.")
    if frame_stack is None:
        env = model.get_env()
        found = (
            env.get_attr("frame_stack")[0]
            if env is not None and env.has_attr("frame_stack")
            else None
        )
        if found is None:
            raise ValueError(
                "frame_stack is needed for a pixel policy whose env does not say it: pass "
                "export_policy(..., frame_stack=k)."
            )
        frame_stack = int(found)
    if frame_stack < 1 or shape[0] % frame_stack:
        raise ValueError(
            f"frame_stack={frame_stack} does not divide the {shape[0]} observation channels."
        )
    return {
        "kind": "pixels",
        "shape": shape,
        "dtype": "uint8",
        "frame_shape": [shape[0] // frame_stack, *shape[1:]],
        "frame_stack": frame_stack,
        "normalization": None,
    }


def _key_card(key: str, space: spaces.Space) -> dict[str, Any]:
    """One ``Dict`` entry: an image (uint8, fed as it is) or a float vector (fed as float32)."""
    if not isinstance(space, spaces.Box):
        raise ValueError(f"Dict observation {key!r}: export supports Box entries, got {space}.")
    if is_image_space(space, check_channels=False, normalized_image=False):
        kind, dtype = "pixels", "uint8"
    elif np.issubdtype(space.dtype, np.floating):
        kind, dtype = "vector", "float32"
    else:
        raise ValueError(
            f"Dict observation {key!r}: export supports float vectors and uint8 (C, H, W) "
            f"images, got a Box of {space.dtype} with shape {space.shape}."
        )
    return {
        "kind": kind,
        "shape": [int(n) for n in space.shape],
        "dtype": dtype,
        "low": _bounds(space.low),
        "high": _bounds(space.high),
    }


def _bounds(values: np.ndarray) -> float | list[float | None] | None:
    """Box bounds for the card: one number when all are equal, ``None`` for an infinite one."""
    flat = [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64).ravel()]
    return flat[0] if len(set(flat)) == 1 else flat


def _normalization(vec_normalize: VecNormalize | None) -> dict[str, Any] | None:
    if vec_normalize is None or not vec_normalize.norm_obs:
        return None
    rms = vec_normalize.obs_rms
    if isinstance(rms, dict):
        raise ValueError("VecNormalize with dict observations is not supported by the export.")
    return {
        "mean": np.asarray(rms.mean, dtype=np.float64).tolist(),
        "var": np.asarray(rms.var, dtype=np.float64).tolist(),
        "epsilon": float(vec_normalize.epsilon),
        "clip": float(vec_normalize.clip_obs),
    }


def _action_card(space: spaces.Space, policy: nn.Module, safe_action: Any) -> dict[str, Any]:
    """The card's ``action`` section for each action space SB3 trains; refuses the others.

    ``output`` says what the graph returns: the action (``squashed`` / ``raw``) for ``Box``,
    else the scores the runtime chooses from: ``q_values`` (DQN) or ``logits``.
    """
    if isinstance(space, spaces.Box):
        return _box_action_card(space, bool(policy.squash_output), safe_action)
    scores = "q_values" if isinstance(policy, DQNPolicy) else "logits"
    if isinstance(space, spaces.Discrete):
        _check_start(space.start)
        n = int(space.n)
        safe = _safe_choices(safe_action, [n], (), f"an action index in [0, {n})")
        return {"kind": "discrete", "n": n, "output": scores, "safe_action": safe}
    if isinstance(space, spaces.MultiDiscrete):
        if space.nvec.ndim != 1:
            raise ValueError(f"export supports 1-D MultiDiscrete action spaces, got {space}.")
        _check_start(space.start)
        nvec = [int(n) for n in space.nvec]
        need = f"{len(nvec)} action indices, index i in [0, nvec[i]) with nvec {nvec}"
        safe = _safe_choices(safe_action, nvec, (len(nvec),), need)
        return {"kind": "multi_discrete", "nvec": nvec, "output": scores, "safe_action": safe}
    if isinstance(space, spaces.MultiBinary):
        if len(space.shape) != 1:  # SB3 refuses them too
            raise ValueError(f"export supports 1-D MultiBinary action spaces, got {space}.")
        n = int(space.shape[0])
        safe = _safe_choices(safe_action, [2] * n, (n,), f"{n} values, each 0 or 1")
        return {"kind": "multi_binary", "n": n, "output": scores, "safe_action": safe}
    raise ValueError(
        f"export supports Box, Discrete, MultiDiscrete and MultiBinary action spaces, got {space}."
    )


def _check_start(start: Any) -> None:
    if np.any(np.asarray(start) != 0):
        raise ValueError(
            f"export supports discrete action spaces that start at 0, got start={start}: SB3's "
            "policies return indices from 0 and never add the start."
        )


def _safe_choices(
    safe_action: Any, nvec: list[int], shape: tuple[int, ...], need: str
) -> int | list[int]:
    """A discrete safe action: index ``i`` in ``[0, nvec[i])``; all zeros by default."""
    values = np.zeros(shape, np.int64) if safe_action is None else np.asarray(safe_action)
    ok = (
        values.shape == shape
        and (values.dtype.kind in "iu" or (values.dtype == bool and set(nvec) == {2}))
        and bool(np.all(values >= 0))
        and bool(np.all(values.reshape(-1) < np.asarray(nvec)))
    )
    if not ok:
        raise ValueError(f"safe_action must be {need}, got {safe_action!r}.")
    return int(values) if shape == () else [int(v) for v in values]


def _box_action_card(space: spaces.Box, squashed: bool, safe_action: Any) -> dict[str, Any]:
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError("export needs finite action bounds (a robot's actuators have limits).")
    safe = np.clip(np.zeros_like(low), low, high) if safe_action is None else safe_action
    safe = np.asarray(safe, dtype=np.float64)
    if safe.shape != low.shape or not np.isfinite(safe).all():
        raise ValueError(
            f"safe_action must be {low.shape[0]} finite values, got {np.asarray(safe_action)}."
        )
    if (safe < low).any() or (safe > high).any():
        raise ValueError(f"safe_action {safe.tolist()} is outside the action bounds.")
    return {
        "kind": "box",
        "shape": [int(n) for n in space.shape],
        "low": low.tolist(),
        "high": high.tolist(),
        "output": "squashed" if squashed else "raw",
        "safe_action": safe.tolist(),
    }


def _algorithm(model: BaseAlgorithm) -> str:
    for algo in (DDPG, TD3, SAC, PPO, A2C, DQN):  # DDPG subclasses TD3: ask it first
        if isinstance(model, algo):
            return algo.__name__
    raise ValueError(
        f"export supports {[a.__name__ for a in _ALGORITHMS]} and their subclasses, got "
        f"{type(model).__name__}."
    )


def _env_id(model: BaseAlgorithm) -> str | None:
    env = model.get_env()
    if env is None:
        return None
    spec = env.get_attr("spec")[0]
    return None if spec is None else str(spec.id)


def _sparsity_card(
    module: nn.Module, policy: nn.Module, example: tuple[torch.Tensor, ...]
) -> dict[str, Any]:
    """Density of each weight the deterministic path uses (masks folded), found by running it,
    and the training-time sparse networks' global density."""
    used: dict[str, dict[str, Any]] = {}
    names = {sub: name.removeprefix("policy.") for name, sub in module.named_modules()}

    def record(sub: nn.Module, *_: Any) -> None:
        weight = sub.weight.detach()
        used[names[sub]] = {
            "shape": list(weight.shape),
            "density": float(weight.count_nonzero()) / weight.numel(),
        }

    hooks = [
        sub.register_forward_hook(record)
        for sub in module.modules()
        if isinstance(sub, (nn.Linear, nn.Conv2d))
    ]
    with torch.no_grad():
        module(*example)
    for hook in hooks:
        hook.remove()
    networks = {
        name: {"density": network.sparsity.stats().density, "step": network.sparsity.stats().step}
        for name, network in getattr(policy, "sparse_networks", {}).items()
    }
    return {"exported_layers": used, "trained_networks": networks}


def _pixel_card(policy: nn.Module) -> dict[str, Any]:
    """What a pixel policy runs before its MLP: MaDi's Masker and the encoder architecture."""
    masker = getattr(policy, "masker", None)
    return {
        "encoder": getattr(policy, "encoder_arch", None),
        "masker": None if masker is None else sum(p.numel() for p in masker.parameters()),
    }


# -- the files ------------------------------------------------------------------------------------


Observations = torch.Tensor | dict[str, torch.Tensor]


def _example_obs(space: spaces.Box | spaces.Dict, batch: int, seed: int = 0) -> Observations:
    """Valid observations: uniform pixels, or standard-normal values clipped into the bounds;
    for ``Dict`` spaces one such batch per key."""
    rng = np.random.default_rng(seed)
    if isinstance(space, spaces.Dict):
        return {k: _example_box(sub, batch, rng) for k, sub in space.spaces.items()}
    return _example_box(space, batch, rng)


def _example_box(space: spaces.Box, batch: int, rng: np.random.Generator) -> torch.Tensor:
    if space.dtype == np.uint8:
        return torch.as_tensor(rng.integers(0, 256, (batch, *space.shape), dtype=np.uint8))
    obs = rng.standard_normal((batch, *space.shape))
    return torch.as_tensor(np.clip(obs, space.low, space.high).astype(np.float32))


def _as_args(obs: Observations, keys: tuple[str, ...] | None) -> tuple[torch.Tensor, ...]:
    """The exported module's positional inputs: the tensor, or one tensor per ``Dict`` key."""
    if keys is None:
        assert isinstance(obs, torch.Tensor)
        return (obs,)
    assert isinstance(obs, dict)
    return tuple(obs[k] for k in keys)


def input_name(key: str | None) -> str:
    """The ONNX graph input for a vector/pixel observation (``obs``) or one ``Dict`` key."""
    return "obs" if key is None else f"obs.{key}"


def _export_onnx(
    module: nn.Module, example: tuple[torch.Tensor, ...], keys: tuple[str, ...] | None, path: Path
) -> dict[str, Any]:
    """Write the graph: one input ``obs``, or ``obs.<key>`` per ``Dict`` key; output ``action``."""
    batch = torch.export.Dim("batch", min=1)
    names = [input_name(None)] if keys is None else [input_name(k) for k in keys]
    dims = [{0: batch} for _ in names]
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)  # "torchvision is not installed": not the user's concern
    with warnings.catch_warnings():  # exporter chatter about its own internals, not the user's
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(path),
            dynamo=True,
            input_names=names,
            output_names=["action"],
            dynamic_shapes=(tuple(dims),),  # forward(*obs): one var-positional argument
            external_data=False,
            verbose=False,
        )
    registration.setLevel(level)
    inputs: str | dict[str, str] = names[0] if keys is None else dict(zip(keys, names, strict=True))
    return {"path": path.name, "sha256": file_sha256(path), "input": inputs, "output": "action"}


def _export_torchscript(
    module: nn.Module, example: tuple[torch.Tensor, ...], path: Path
) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example)
        traced.save(str(path))
    return {"path": path.name, "sha256": file_sha256(path)}


def _mlp_path(policy: nn.Module) -> tuple[list[nn.Module], str]:
    """The modules of a vector MLP policy's deterministic path, and its output activation."""
    if isinstance(policy, SACPolicy):
        actor = policy.actor
        return [actor.features_extractor, *actor.latent_pi, actor.mu], "tanh"
    if isinstance(policy, TD3Policy):
        return [policy.actor.features_extractor, *policy.actor.mu], "identity"
    if isinstance(policy, DQNPolicy):
        return [policy.q_net.features_extractor, *policy.q_net.q_net], "identity"
    if isinstance(policy, ActorCriticPolicy):
        output = "tanh" if policy.squash_output else "identity"
        return [
            policy.pi_features_extractor,
            *policy.mlp_extractor.policy_net,
            policy.action_net,
        ], output
    raise ValueError(f"numpy export does not know {type(policy).__name__}; use ONNX.")


def _export_numpy(policy: nn.Module, space: spaces.Space, path: Path) -> dict[str, Any]:
    if not isinstance(space, spaces.Box):
        raise ValueError(f"numpy export supports vector observations, not {space}; use ONNX.")
    modules, output = _mlp_path(policy)
    weights: dict[str, np.ndarray] = {}
    activations: list[str] = []
    for module in modules:
        if isinstance(module, nn.Linear):
            i = len(activations)
            weights[f"w{i}"] = module.weight.detach().cpu().numpy().astype(np.float32)
            weights[f"b{i}"] = module.bias.detach().cpu().numpy().astype(np.float32)
            activations.append("identity")
        elif type(module) in _ACTIVATIONS and activations:
            if activations[-1] != "identity":
                raise ValueError("numpy export: two activations in a row are not supported.")
            activations[-1] = _ACTIVATIONS[type(module)]
        elif not isinstance(module, (nn.Flatten, FlattenExtractor)):
            raise ValueError(
                f"numpy export supports Linear / ReLU / Tanh MLPs on vector observations; found "
                f"{type(module).__name__}. Use ONNX for this policy."
            )
    if len(space.shape) != 1 or not activations:
        raise ValueError("numpy export supports MLP policies on vector observations only.")
    if output == "identity" and activations[-1] == "tanh":  # TD3: the final Tanh is the output
        activations[-1], output = "identity", "tanh"
    np.savez(path, **weights)
    return {
        "path": path.name,
        "sha256": file_sha256(path),
        "activations": activations,
        "output_activation": output,
    }


def _verify_onnx(
    module: DeterministicPolicy,
    path: Path,
    space: spaces.Box | spaces.Dict,
    inputs: str | dict[str, str],
    n: int = 64,
) -> None:
    import onnxruntime as ort

    obs = _example_obs(space, n, seed=1)
    args = _as_args(obs, module.keys)
    with torch.no_grad():
        expected = module(*args).numpy()
    feed = (
        {inputs: args[0].numpy()}
        if isinstance(inputs, str)
        else {inputs[k]: x.numpy() for k, x in zip(module.keys or (), args, strict=True)}
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["action"], feed)
    error = float(np.abs(got - expected).max())
    if not error <= 1e-5:
        raise RuntimeError(
            f"the ONNX export differs from the torch policy by {error:.2e} (> 1e-5); the card was "
            "not written."
        )
