"""The policy card (``card.json``): what an exported policy expects, checked before it runs.

The card is the contract between the exporter and this runtime. A robot must not start moving on
a card that is half right, so ``load_card`` checks every field the runtime acts on (types,
lengths, bounds, model file hashes) and fails with a ``CardError`` that names the field. Numbers
are checked in the dtype the runtime computes with (float32 for commands and normalized
observations), since a bound that is finite in JSON can still be ``inf`` on the robot. The
``policy``, ``sparsity`` and ``provenance`` sections are informational and kept as given.

Version 2 added ``action.kind`` (``box``, ``discrete``, ``multi_discrete``, ``multi_binary``) and
``dict`` observations; a version 1 card (``Box`` actions, vector or pixel observations) is still
read, as a ``box`` card.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl.validation import ConfigError, check_int

CARD_FILE = "card.json"
CARD_FORMAT = "sparse-rl-policy-card"
CARD_VERSION = 2
#: The card versions this runtime reads.
CARD_VERSIONS = (1, 2)

OBSERVATION_KINDS = ("vector", "pixels", "dict")
#: What each entry of a ``dict`` observation is.
KEY_KINDS = ("vector", "pixels")
#: The model input dtype each observation kind (and dict entry kind) must declare.
OBSERVATION_DTYPES = {"vector": "float32", "pixels": "uint8"}
ACTION_KINDS = ("box", "discrete", "multi_discrete", "multi_binary")
#: What the graph outputs, per action kind: for ``box`` the action, ``squashed`` (tanh output,
#: rescaled to the bounds) or ``raw`` (clipped); otherwise the scores the action is chosen from,
#: ``logits`` (PPO/A2C) or ``q_values`` (DQN). The runtime takes the argmax of the Q-values, of
#: the softmax of the logits (per branch for ``multi_discrete``), and 1 where the sigmoid of a
#: ``multi_binary`` logit is > 0.5: SB3's deterministic actions, in float32 as SB3 computes them.
ACTION_OUTPUTS = {
    "box": ("squashed", "raw"),
    "discrete": ("logits", "q_values"),
    "multi_discrete": ("logits",),
    "multi_binary": ("logits",),
}
_ACTION_KEYS = {
    "box": ("shape", "low", "high", "output", "safe_action"),
    "discrete": ("n", "output", "safe_action"),
    "multi_discrete": ("nvec", "output", "safe_action"),
    "multi_binary": ("n", "output", "safe_action"),
}
ACTIVATIONS = ("relu", "tanh", "identity")
#: The most choices (``n``, each ``nvec`` entry) an action may have: indices fit int32.
MAX_CHOICES = 2**31 - 1

#: The largest finite float32: commands and normalized observations are computed in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)

_TOP_KEYS = ("format", "version", "files", "observation", "action", "policy", "provenance")
_OPTIONAL_TOP_KEYS = ("sparsity",)


class CardError(ValueError):
    """A policy directory whose card or model files cannot be trusted to drive a robot."""


@dataclass(frozen=True)
class OnnxFile:
    """The ONNX model: absolute path, expected hash, input and output tensor names.

    ``input`` is one name, or for ``dict`` observations a mapping observation key -> input name.
    """

    path: Path
    sha256: str
    input: str | Mapping[str, str]
    output: str


@dataclass(frozen=True)
class NumpyFile:
    """An MLP as ``w0, b0, w1, b1, ...`` arrays; layer ``i`` is followed by ``activations[i]``."""

    path: Path
    sha256: str
    activations: tuple[str, ...]
    output_activation: str


@dataclass(frozen=True)
class Normalization:
    """SB3 ``VecNormalize`` observation statistics (flat, one value per observation element)."""

    mean: tuple[float, ...]
    var: tuple[float, ...]
    epsilon: float
    clip: float


@dataclass(frozen=True)
class KeySpec:
    """One entry of a ``dict`` observation: fed to the graph input of its own, not stacked.

    ``low`` / ``high`` are the env's bounds per element (``None``: unbounded), for people and
    checks of the env; the runtime does not clip to them (SB3 does not either).
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]


@dataclass(frozen=True)
class ObservationSpec:
    """What the model reads; for pixels the runtime stacks ``frame_stack`` frames itself.

    ``dict`` observations have their entries in ``keys`` (and an empty ``shape`` / ``dtype``).
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str
    frame_shape: tuple[int, ...]
    frame_stack: int
    normalization: Normalization | None
    keys: Mapping[str, KeySpec] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionSpec:
    """What the model returns and how it becomes a command in env units.

    ``shape`` is the shape of one action as the env takes it: ``()`` for ``discrete``, one entry
    per branch for ``multi_discrete`` and ``multi_binary``. ``low`` / ``high`` are ``box`` only.
    ``nvec`` is the number of choices per branch: ``(n,)`` for ``discrete``, the env's ``nvec``
    for ``multi_discrete``, ``()`` otherwise. ``safe_action`` is flat, integers for the discrete
    kinds.
    """

    shape: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    output: str
    safe_action: tuple[float, ...]
    kind: str = "box"
    nvec: tuple[int, ...] = ()

    @property
    def output_shape(self) -> tuple[int, ...]:
        """What the graph returns per observation: one logit / Q-value per choice for the
        discrete kinds (all branches' side by side), the action itself for ``box``."""
        if self.kind in ("discrete", "multi_discrete"):
            return (sum(self.nvec),)
        return self.shape


@dataclass(frozen=True)
class PolicyCard:
    """A validated ``card.json`` with model paths resolved inside ``directory``."""

    directory: Path
    version: int
    onnx: OnnxFile
    numpy: NumpyFile | None
    observation: ObservationSpec
    action: ActionSpec
    policy: Mapping[str, Any] = field(default_factory=dict)
    sparsity: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """A few lines for people: what the policy reads, what it commands, where it came from."""
        obs, act = self.observation, self.action
        algo = self.policy.get("algorithm", "?")
        cls = self.policy.get("class", "?")
        lines = [f"policy: {algo} ({cls}), card v{self.version}, {self.directory}"]
        norm = "normalized" if obs.normalization is not None else "not normalized"
        if obs.kind == "pixels":
            lines.append(
                f"observation: pixels, frames {list(obs.frame_shape)} {obs.dtype} x "
                f"{obs.frame_stack} stacked -> model input {list(obs.shape)}"
            )
        elif obs.kind == "dict":
            entries = ", ".join(
                f"{k}: {spec.kind} {list(spec.shape)} {spec.dtype}" for k, spec in obs.keys.items()
            )
            lines.append(f"observation: dict {{{entries}}}")
        else:
            lines.append(f"observation: vector {list(obs.shape)} {obs.dtype}, {norm}")
        lines.append(f"action: {_describe_action(act)}")
        files = [self.onnx.path.name] + ([self.numpy.path.name] if self.numpy else [])
        lines.append(f"files: {', '.join(files)} (sha256 verified)")
        prov = self.provenance
        lines.append(
            f"provenance: {prov.get('package', '?')} {prov.get('version', '?')}, "
            f"env {prov.get('env_id')}, {prov.get('num_timesteps', '?')} timesteps, "
            f"created {prov.get('created', '?')}"
        )
        if self.sparsity:
            items = [f"{k}={v}" for k, v in self.sparsity.items() if not isinstance(v, dict | list)]
            lines.append(f"sparsity: {', '.join(items) or '(per-layer details in the card)'}")
        return "\n".join(lines)


def load_card(directory: str | Path) -> PolicyCard:
    """Read and check ``directory/card.json`` and the hashes of the model files it names.

    :raises CardError: on anything missing, malformed, inconsistent or tampered with.
    """
    directory = Path(directory)
    path = directory / CARD_FILE
    if not path.is_file():
        raise CardError(f"{path}: no policy card here (is {directory} an exported policy?)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: not valid JSON ({exc})") from None
    return parse_card(raw, directory)


def parse_card(raw: Any, directory: str | Path) -> PolicyCard:
    """Check an already-decoded card; model paths are resolved (and hashed) in ``directory``."""
    directory = Path(directory)
    card = _section(raw, "card")
    _check_keys(card, "card", _TOP_KEYS, _OPTIONAL_TOP_KEYS)
    if card["format"] != CARD_FORMAT:
        raise _error(f"format must be {CARD_FORMAT!r}, got {card['format']!r}")
    version = card["version"]
    if type(version) is not int or version not in CARD_VERSIONS:
        raise _error(
            f"version {version!r} is not supported by this runtime (it reads versions "
            f"{', '.join(map(str, CARD_VERSIONS))}); use the sparse-rl release that exported it"
        )
    observation = _observation(_section(card["observation"], "observation"), version)
    action = _action(_section(card["action"], "action"), version)
    onnx, numpy = _files(_section(card["files"], "files"), directory, observation)
    if numpy is not None and observation.kind != "vector":
        raise _error("files.numpy is only supported for vector observations")
    sparsity = card.get("sparsity")
    return PolicyCard(
        directory=directory,
        version=version,
        onnx=onnx,
        numpy=numpy,
        observation=observation,
        action=action,
        policy=dict(_section(card["policy"], "policy")),
        sparsity={} if sparsity is None else dict(_section(sparsity, "sparsity")),
        provenance=dict(_section(card["provenance"], "provenance")),
    )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------- sections


def _observation(obs: dict[str, Any], version: int) -> ObservationSpec:
    kinds = OBSERVATION_KINDS if version >= 2 else ("vector", "pixels")
    if obs.get("kind") == "dict":
        _check_keys(obs, "observation", ("kind", "keys"))
    else:
        keys = ("kind", "shape", "dtype", "frame_shape", "frame_stack", "normalization")
        _check_keys(obs, "observation", keys)
    kind = _choice(obs["kind"], "observation.kind", kinds)
    if kind == "dict":
        return _dict_observation(_section(obs["keys"], "observation.keys"))
    dtype = _choice(
        obs["dtype"], "observation.dtype", tuple(sorted(set(OBSERVATION_DTYPES.values())))
    )
    if dtype != OBSERVATION_DTYPES[kind]:
        raise _error(
            f"observation.dtype is {dtype!r} but {kind} observations must be "
            f"{OBSERVATION_DTYPES[kind]!r}"
        )
    shape = _shape(obs["shape"], "observation.shape")
    frame_shape = _shape(obs["frame_shape"], "observation.frame_shape")
    frame_stack = _int(obs["frame_stack"], "observation.frame_stack", minimum=1)
    if kind == "vector":
        if frame_stack != 1:
            raise _error(f"observation.frame_stack must be 1 for vectors, got {frame_stack}")
        if frame_shape != shape:
            raise _error(
                f"observation.frame_shape {list(frame_shape)} must equal observation.shape "
                f"{list(shape)} for vectors"
            )
    else:
        if len(frame_shape) != 3 or len(shape) != 3:
            raise _error(
                f"observation.shape {list(shape)} and observation.frame_shape "
                f"{list(frame_shape)} must both be (C, H, W) for pixels"
            )
        expected = (frame_shape[0] * frame_stack, *frame_shape[1:])
        if shape != expected:
            raise _error(
                f"observation.shape {list(shape)} does not match frame_shape {list(frame_shape)}"
                f" x frame_stack {frame_stack}: expected {list(expected)}"
            )
    norm = obs["normalization"]
    normalization = None
    if norm is not None:
        if kind != "vector":
            raise _error("observation.normalization is only supported for vector observations")
        normalization = _normalization(_section(norm, "observation.normalization"), shape)
    return ObservationSpec(kind, shape, dtype, frame_shape, frame_stack, normalization)


def _dict_observation(keys: dict[str, Any]) -> ObservationSpec:
    if not keys:
        raise _error("observation.keys must name at least one observation entry")
    specs = {}
    for key, entry in keys.items():
        f = f"observation.keys.{key}"
        if not key:
            raise _error("observation.keys must not have an empty key")
        spec = _section(entry, f)
        _check_keys(spec, f, ("kind", "shape", "dtype", "low", "high"))
        kind = _choice(spec["kind"], f"{f}.kind", KEY_KINDS)
        dtype = _choice(
            spec["dtype"], f"{f}.dtype", tuple(sorted(set(OBSERVATION_DTYPES.values())))
        )
        if dtype != OBSERVATION_DTYPES[kind]:
            raise _error(
                f"{f}.dtype is {dtype!r} but {kind} entries must be {OBSERVATION_DTYPES[kind]!r}"
            )
        shape = _shape(spec["shape"], f"{f}.shape")
        if kind == "pixels" and len(shape) != 3:
            raise _error(f"{f}.shape {list(shape)} must be (C, H, W) for pixels")
        size = math.prod(shape)
        low = _bounds(spec["low"], f"{f}.low", size, f"{f}.shape {list(shape)}")
        high = _bounds(spec["high"], f"{f}.high", size, f"{f}.shape {list(shape)}")
        for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
            if lo is not None and hi is not None and not lo <= hi:
                raise _error(f"{f}.low must be <= {f}.high (index {i}: {lo!r} > {hi!r})")
            if kind == "pixels" and not (
                lo is not None and hi is not None and 0 <= lo <= hi <= 255
            ):
                raise _error(f"{f}.low and .high must lie in [0, 255] for uint8 pixels (index {i})")
        specs[key] = KeySpec(kind, shape, dtype, low, high)
    return ObservationSpec("dict", (), "", (), 1, None, specs)


def _normalization(norm: dict[str, Any], shape: tuple[int, ...]) -> Normalization:
    f = "observation.normalization"
    _check_keys(norm, f, ("mean", "var", "epsilon", "clip"))
    size = math.prod(shape)
    mean = _floats(norm["mean"], f"{f}.mean", size, f"observation.shape {list(shape)}")
    var = _floats(norm["var"], f"{f}.var", size, f"observation.shape {list(shape)}")
    epsilon = _float(norm["epsilon"], f"{f}.epsilon")
    clip = _float(norm["clip"], f"{f}.clip")
    if epsilon < 0:
        raise _error(f"{f}.epsilon must be >= 0, got {epsilon}")
    if clip <= 0:
        raise _error(f"{f}.clip must be > 0, got {clip}")
    _float32(clip, f"{f}.clip", "normalized observations are float32")
    bad = [i for i, v in enumerate(var) if v < 0 or v + epsilon <= 0]
    if bad:
        raise _error(f"{f}.var must be >= 0 with var + epsilon > 0 (index {bad[0]}: {var[bad[0]]})")
    for i, v in enumerate(var):  # the runtime takes sqrt(var + epsilon) in float64
        if not math.isfinite(v + epsilon):
            raise _error(
                f"{f}.var[{i}] + {f}.epsilon = {v!r} + {epsilon!r} is not a finite float64; "
                "their sum must be at most 1.7976931348623157e+308"
            )
    return Normalization(mean, var, epsilon, clip)


def _action(act: dict[str, Any], version: int) -> ActionSpec:
    if version == 1:  # before action.kind: Box actions only
        _check_keys(act, "action", _ACTION_KEYS["box"])
        return _box_action(act)
    if "kind" not in act:
        raise _error("missing action.kind")
    kind = _choice(act["kind"], "action.kind", ACTION_KINDS)
    _check_keys(act, "action", ("kind", *_ACTION_KEYS[kind]))
    if kind == "box":
        return _box_action(act)
    output = _choice(act["output"], "action.output", ACTION_OUTPUTS[kind])
    safe = act["safe_action"]
    if kind == "discrete":
        n = _choices(act["n"], "action.n")
        index = _index(safe, "action.safe_action", n, f"action.n = {n}")
        return ActionSpec((), (), (), output, (index,), kind, (n,))
    if kind == "multi_discrete":
        nvec = _shape(act["nvec"], "action.nvec")
        for i, n in enumerate(nvec):
            _choices(n, f"action.nvec[{i}]")
        whys = [f"action.nvec[{i}] = {n}" for i, n in enumerate(nvec)]
        size, what = len(nvec), "branches (action.nvec)"
    else:
        size, nvec = _choices(act["n"], "action.n"), ()
        whys, what = ["multi_binary entries are 0 or 1"] * size, "entries (action.n)"
    if not isinstance(safe, list):
        raise _error(f"action.safe_action must be a list of integers, got {type(safe).__name__}")
    if len(safe) != size:
        raise _error(f"action.safe_action has {len(safe)} values but the action has {size} {what}")
    choices = nvec or (2,) * size
    indices = tuple(
        _index(v, f"action.safe_action[{i}]", c, why)
        for i, (v, c, why) in enumerate(zip(safe, choices, whys, strict=True))
    )
    return ActionSpec((size,), (), (), output, indices, kind, nvec)


def _box_action(act: dict[str, Any]) -> ActionSpec:
    shape = _shape(act["shape"], "action.shape")
    size = math.prod(shape)
    need = f"action.shape {list(shape)}"
    low = _floats(act["low"], "action.low", size, need)
    high = _floats(act["high"], "action.high", size, need)
    output = _choice(act["output"], "action.output", ACTION_OUTPUTS["box"])
    safe = _floats(act["safe_action"], "action.safe_action", size, need)
    why = "commands are computed in float32"
    low32 = [_float32(v, f"action.low[{i}]", why) for i, v in enumerate(low)]
    high32 = [_float32(v, f"action.high[{i}]", why) for i, v in enumerate(high)]
    for i, (lo, hi) in enumerate(zip(low32, high32, strict=True)):
        if not lo < hi:
            rounded = f", {lo!r} >= {hi!r} once rounded" if (low[i], high[i]) != (lo, hi) else ""
            raise _error(
                f"action.low must be < action.high everywhere in float32, the runtime's dtype "
                f"(action.low[{i}] = {low[i]!r}, action.high[{i}] = {high[i]!r}{rounded})"
            )
        with np.errstate(over="ignore"):  # the width as the runtime computes it
            width = float(np.float32(hi) - np.float32(lo))
        if output == "squashed" and not math.isfinite(width):
            raise _error(
                f"action.high[{i}] - action.low[{i}] = {high[i] - low[i]:g} overflows float32 "
                f"(at most {FLOAT32_MAX:.7g}): squashed outputs are rescaled as "
                "low + (a + 1) / 2 * (high - low) in float32; narrow the bounds or use output 'raw'"
            )
    for i, (s, lo, hi) in enumerate(zip(safe, low32, high32, strict=True)):
        if not lo <= _to_float32(s) <= hi:  # bounds are finite, so a safe action inside is too
            raise _error(
                f"action.safe_action[{i}] = {s!r} is outside [{low[i]!r}, {high[i]!r}] "
                "(action.low, action.high) in float32"
            )
    return ActionSpec(shape, low, high, output, safe)


def _files(
    files: dict[str, Any], directory: Path, observation: ObservationSpec
) -> tuple[OnnxFile, NumpyFile | None]:
    _check_keys(files, "files", ("onnx",), ("numpy", "torchscript"))
    onnx_entry = _section(files["onnx"], "files.onnx")
    _check_keys(onnx_entry, "files.onnx", ("path", "sha256", "input", "output"))
    onnx = OnnxFile(
        *_model_file(onnx_entry, "files.onnx", directory),
        input=_onnx_input(onnx_entry["input"], observation),
        output=_str(onnx_entry["output"], "files.onnx.output"),
    )
    if "torchscript" in files:  # the runtime never loads TorchScript; only its shape is checked
        _section(files["torchscript"], "files.torchscript")
    numpy = None
    if files.get("numpy") is not None:
        entry = _section(files["numpy"], "files.numpy")
        f = "files.numpy"
        _check_keys(entry, f, ("path", "sha256", "activations", "output_activation"))
        acts = entry["activations"]
        if not isinstance(acts, list) or not acts:
            raise _error(f"{f}.activations must be a non-empty list, got {acts!r}")
        activations = tuple(
            _choice(a, f"{f}.activations[{i}]", ACTIVATIONS) for i, a in enumerate(acts)
        )
        numpy = NumpyFile(
            *_model_file(entry, f, directory),
            activations=activations,
            output_activation=_choice(
                entry["output_activation"], f"{f}.output_activation", ACTIVATIONS
            ),
        )
    return onnx, numpy


def _onnx_input(value: Any, observation: ObservationSpec) -> str | dict[str, str]:
    """One input name, or for dict observations an object: observation key -> input name."""
    f = "files.onnx.input"
    if observation.kind != "dict":
        return _str(value, f)
    if not isinstance(value, dict):
        raise _error(
            f"{f} must be an object mapping each observation key to a graph input for dict "
            f"observations, got {value!r}"
        )
    if set(value) != set(observation.keys):
        raise _error(
            f"{f} maps {sorted(value)} but observation.keys has {sorted(observation.keys)}"
        )
    names = {key: _str(name, f"{f}.{key}") for key, name in value.items()}
    if len(set(names.values())) != len(names):
        raise _error(f"{f} gives two observation keys the same graph input: {names}")
    return names


def _model_file(entry: dict[str, Any], f: str, directory: Path) -> tuple[Path, str]:
    """Resolve a model path inside ``directory`` and check its bytes against the card's hash."""
    rel = _str(entry["path"], f"{f}.path")
    digest = _str(entry["sha256"], f"{f}.sha256")
    if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise _error(f"{f}.sha256 must be 64 hex digits, got {digest!r}")
    root = directory.resolve()
    path = (root / rel).resolve()
    if Path(rel).is_absolute() or not path.is_relative_to(root):
        raise _error(f"{f}.path {rel!r} must be a relative path inside the policy directory")
    if not path.is_file():
        raise _error(f"{f}.path: {rel} does not exist in {directory}")
    digest = digest.lower()
    if sha256_file(path) != digest:
        raise _error(
            f"{rel} does not match its card ({f}.sha256): the model file was changed or "
            "corrupted after export; re-export or copy the directory again"
        )
    return path, digest


# ---------------------------------------------------------------------------------- values


def _error(message: str) -> CardError:
    return CardError(f"{CARD_FILE}: {message}")


def _section(value: Any, f: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _error(f"{f} must be an object, got {type(value).__name__}")
    return value


def _check_keys(
    d: dict[str, Any], f: str, required: Sequence[str], optional: Sequence[str] = ()
) -> None:
    where = "at the top level" if f == "card" else f"in {f}"
    unknown = sorted(set(d) - set(required) - set(optional))
    if unknown:
        raise _error(f"unknown key(s) {', '.join(map(repr, unknown))} {where}")
    missing = [k for k in required if k not in d]
    if missing:
        prefix = "" if f == "card" else f"{f}."
        raise _error(f"missing {', '.join(prefix + k for k in missing)}")


def _choice(value: Any, f: str, choices: Sequence[str]) -> str:
    if value not in choices or not isinstance(value, str):
        raise _error(f"{f} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _str(value: Any, f: str) -> str:
    if not isinstance(value, str) or not value:
        raise _error(f"{f} must be a non-empty string, got {value!r}")
    return value


def _int(value: Any, f: str, minimum: int) -> int:
    try:
        return check_int(f, value, low=minimum)
    except ConfigError as error:
        raise _error(str(error).rstrip(".")) from None


def _shape(value: Any, f: str) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
    ):
        raise _error(f"{f} must be a non-empty list of positive integers, got {value!r}")
    return tuple(value)


def _choices(value: Any, f: str) -> int:
    """A number of choices (or of entries): the graph returns one score for each."""
    n = _int(value, f, minimum=1)
    if n > MAX_CHOICES:
        raise _error(f"{f} = {n} is more than {MAX_CHOICES} (one model output each)")
    return n


def _index(value: Any, f: str, n: int, why: str) -> int:
    """An action index in ``[0, n)``: a JSON integer (not a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise _error(f"{f} must be an integer in [0, {n}) ({why}), got {value!r}")
    return value


def _bounds(value: Any, f: str, size: int, need: str) -> tuple[float | None, ...]:
    """Observation bounds: one number (or ``null``: unbounded) for all elements, or one each."""
    if not isinstance(value, list):
        return (_bound(value, f),) * size
    if len(value) != size:
        raise _error(f"{f} has {len(value)} values but {need} needs {size}")
    return tuple(_bound(v, f"{f}[{i}]") for i, v in enumerate(value))


def _bound(value: Any, f: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _error(f"{f} must be a finite number or null (unbounded), got {value!r}")
    return float(value)


def _float(value: Any, f: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _error(f"{f} must be a finite number, got {value!r}")
    return float(value)


def _to_float32(value: float) -> float:
    """``value`` rounded to float32 (``inf`` beyond its range), back as a Python float."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def _float32(value: float, f: str, why: str) -> float:
    """``value`` as float32, which the runtime computes with; beyond float32's range is an error."""
    rounded = _to_float32(value)
    if not math.isfinite(rounded):
        raise _error(
            f"{f} = {value!r} does not fit float32 ({why}): it must be within "
            f"[-{FLOAT32_MAX:.7g}, {FLOAT32_MAX:.7g}]"
        )
    return rounded


def _floats(value: Any, f: str, size: int, need: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise _error(f"{f} must be a list of numbers, got {type(value).__name__}")
    if len(value) != size:
        raise _error(f"{f} has {len(value)} values but {need} needs {size}")
    return tuple(_float(v, f"{f}[{i}]") for i, v in enumerate(value))


def _describe_action(act: ActionSpec) -> str:
    safe = _fmt(act.safe_action)
    if act.kind == "discrete":
        return (
            f"discrete, {act.nvec[0]} choices (argmax of {act.output}), safe {act.safe_action[0]}"
        )
    if act.kind == "multi_discrete":
        return f"multi_discrete, nvec {list(act.nvec)} (argmax of logits per branch), safe {safe}"
    if act.kind == "multi_binary":
        return f"multi_binary, {act.shape[0]} entries (1 where sigmoid(logit) > 0.5), safe {safe}"
    return (
        f"{list(act.shape)} {act.output}, low {_fmt(act.low)}, high {_fmt(act.high)}, safe {safe}"
    )


def _fmt(values: tuple[float, ...], limit: int = 6) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
