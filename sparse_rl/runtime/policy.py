"""An exported policy as a callable for a control loop: observation in, command in env units out.

``Policy.act`` is the control path, so it never raises on a bad observation: a robot that gets
``None`` from a camera driver or a NaN from a joint encoder should hold still (``safe_action``),
not crash mid-motion. Everything around the model that SB3 did in Python — observation
normalization, frame stacking, feeding each entry of a dict observation, action rescaling and
clipping, choosing discrete actions from logits / Q-values — happens here, from the card.

The ONNX backend needs onnxruntime; the numpy backend (MLP policies only) needs numpy alone and
runs sparse layers in CSR.
"""

from __future__ import annotations

import logging
import math
import time
import zipfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .card import ActionSpec, CardError, PolicyCard, load_card
from .csr import CSRMatrix, csr_linear

BACKENDS = ("onnx", "numpy")
LOGGER_NAME = "sparse_rl.runtime"

#: The integer dtype of each discrete action kind, as gymnasium's spaces hold them.
ACTION_DTYPES = {"discrete": np.int64, "multi_discrete": np.int64, "multi_binary": np.int8}
#: What ``act`` takes: one array, or for dict observations one array per key.
Observation = np.ndarray | Mapping[str, np.ndarray]

#: Warn on each of the first few problems of a kind, then only on every ``_WARN_EVERY``-th.
_WARN_FIRST = 5
_WARN_EVERY = 100


class _Invalid(Exception):
    """An observation the policy must not act on; the message says why."""


class LatencyStats:
    """Recent durations (seconds, bounded memory) with percentiles in milliseconds."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._samples: deque[float] = deque(maxlen=maxlen)
        self.count = 0

    def record(self, seconds: float) -> None:
        """Add one duration."""
        self._samples.append(seconds)
        self.count += 1

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile of the kept samples in ms; ``None`` before the first one."""
        if not self._samples:
            return None
        return float(np.percentile(np.fromiter(self._samples, dtype=np.float64), q) * 1e3)

    @property
    def p50_ms(self) -> float | None:
        """Median duration in ms."""
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float | None:
        """99th-percentile duration in ms."""
        return self.percentile_ms(99)

    def clear(self) -> None:
        """Forget all samples."""
        self._samples.clear()
        self.count = 0


class _Backend(Protocol):
    def run(self, x: Any) -> np.ndarray:
        """Model outputs for a batch of model inputs."""
        ...


class _OnnxBackend:
    """An onnxruntime CPU session; imported lazily so the numpy backend needs numpy alone."""

    def __init__(self, card: PolicyCard, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the robot's environment
            raise ImportError(
                "the onnx backend needs onnxruntime (pip install onnxruntime), or use "
                "backend='numpy' for MLP policies"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: no optimizer chatter on the robot's console
        name = card.onnx.path.name
        try:
            self.session = ort.InferenceSession(
                str(card.onnx.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise CardError(f"{name}: onnxruntime cannot load it ({exc})") from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        obs = card.observation
        if isinstance(card.onnx.input, str):
            feeds = {"": (card.onnx.input, obs.shape, obs.dtype, "observation")}
        else:
            feeds = {
                key: (name, obs.keys[key].shape, obs.keys[key].dtype, f"observation.keys.{key}")
                for key, name in card.onnx.input.items()
            }
        wanted = sorted(feed[0] for feed in feeds.values())
        if sorted(inputs) != wanted:
            raise CardError(
                f"card.json: files.onnx.input is {card.onnx.input!r} but {name} takes "
                f"{list(inputs)}"
            )
        if card.onnx.output not in outputs:
            raise CardError(
                f"card.json: files.onnx.output is {card.onnx.output!r} but {name} returns {outputs}"
            )
        for input_name, shape, dtype, field in feeds.values():
            graph_input = inputs[input_name]
            expected = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}[dtype]
            if graph_input.type != expected:
                raise CardError(
                    f"card.json: {field}.dtype is {dtype!r} but {name} takes {graph_input.type}"
                    + (f" at {input_name!r}" if field != "observation" else "")
                )
            _check_input_shape(shape, list(graph_input.shape), field, input_name, name)
        self._feeds = {key: name for key, (name, *_) in feeds.items()}
        self._output = card.onnx.output

    def run(self, x: Any) -> np.ndarray:
        if isinstance(x, np.ndarray):
            feed = {self._feeds[""]: x}
        else:
            feed = {name: x[key] for key, name in self._feeds.items()}
        return self.session.run([self._output], feed)[0]


def _check_input_shape(
    shape: tuple[int, ...], declared: list[Any], field: str, input_name: str, file: str
) -> None:
    """The graph's input must be ``(batch, *shape)``; a mismatch is the card's fault.

    Symbolic dimensions (strings, ``None``) fit anything here: the probe run at load tries them.
    onnxruntime reports an unknown shape as ``[]``, which is left to the probe as well.
    """
    if not declared:
        return
    fixed = [d if isinstance(d, int) else None for d in declared]
    fits = (
        len(fixed) == len(shape) + 1
        and fixed[0] in (None, 1)
        and all(d is None or d == s for d, s in zip(fixed[1:], shape, strict=True))
    )
    if not fits:
        shown = ", ".join("?" if d is None else str(d) for d in declared)
        per_obs = ", ".join("?" if d is None else str(d) for d in declared[1:])
        raise CardError(
            f"card.json: {field}.shape {list(shape)} does not match {file}, "
            f"whose input {input_name!r} is [{shown}], i.e. observations of shape "
            f"[{per_obs}] after the batch dimension; the card must give that shape"
        )


_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "identity": lambda x: x,
}


class _NumpyBackend:
    """The MLP from ``policy_mlp.npz``; wide, sparse layers run in CSR, the rest dense."""

    def __init__(self, card: PolicyCard, csr_max_density: float, csr_min_width: int) -> None:
        spec = card.numpy
        if spec is None:
            raise CardError(
                f"card.json: backend 'numpy' needs files.numpy, which {card.directory} lacks "
                "(only MLP policies export one); use backend='onnx'"
            )
        name = spec.path.name
        n = len(spec.activations)
        try:  # never unpickle: an object array in the file is an error, not code to run
            with np.load(spec.path, allow_pickle=False) as npz:
                arrays = {k: np.asarray(npz[k]) for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise CardError(f"{name}: not a plain numpy .npz file ({exc})") from None
        expected = {f"{p}{i}" for i in range(n) for p in "wb"}
        if set(arrays) != expected:
            raise CardError(
                f"{name}: holds {sorted(arrays)} but files.numpy.activations has {n} "
                f"layers, so it must hold {sorted(expected)}"
            )
        self.layers: list[tuple[np.ndarray | CSRMatrix, np.ndarray, str]] = []
        self.csr_layers: list[int] = []
        width = math.prod(card.observation.shape)
        for i, act in enumerate(spec.activations):
            w, b = arrays[f"w{i}"], arrays[f"b{i}"]
            if w.dtype.kind != "f" or b.dtype.kind != "f":
                raise CardError(f"{name}: w{i} and b{i} must be floating point")
            if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
                raise CardError(
                    f"{name}: layer {i} has w{i} {w.shape} and b{i} {b.shape}; expected "
                    f"(out, {width}) and (out,)"
                )
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise CardError(f"{name}: layer {i} has non-finite weights")
            w32 = w.astype(np.float32)
            density = np.count_nonzero(w32) / w32.size
            if density <= csr_max_density and min(w32.shape) >= csr_min_width:
                weight: np.ndarray | CSRMatrix = CSRMatrix.from_dense(w32)
                self.csr_layers.append(i)
            else:
                weight = np.ascontiguousarray(w32.T)  # x @ w.T without a transpose per call
            self.layers.append((weight, b.astype(np.float32), act))
            width = w.shape[0]
        outputs = card.action.output_shape
        if width != math.prod(outputs):
            raise CardError(
                f"{name}: the last layer has {width} outputs but {_action_field(card)} needs "
                f"{math.prod(outputs)}"
            )
        self.output_activation = spec.output_activation
        self._batch_shape = outputs

    def run(self, x: np.ndarray) -> np.ndarray:
        h = x.reshape(x.shape[0], -1).astype(np.float32, copy=False)
        for weight, bias, act in self.layers:
            h = csr_linear(h, weight, bias) if isinstance(weight, CSRMatrix) else h @ weight + bias
            h = _ACTIVATIONS[act](h)
        h = _ACTIVATIONS[self.output_activation](h)
        return h.reshape(x.shape[0], *self._batch_shape)


class Policy:
    """An exported policy directory (``card.json`` + model) ready to act, torch-free.

    :param directory: the export directory.
    :param backend: ``"onnx"`` (any policy, via onnxruntime) or ``"numpy"`` (MLP policies).
    :param csr_max_density: numpy backend: a layer at or below this density may use CSR...
    :param csr_min_width: ...if both its input and output widths are at least this; CSR only
        beats dense BLAS for wide, very sparse layers.
    :param threads: onnxruntime intra-op threads; 1 keeps latency steady next to robot drivers.
    :param logger: where invalid-input warnings go (default ``sparse_rl.runtime``).
    """

    def __init__(
        self,
        directory: str | Path,
        backend: str = "onnx",
        csr_max_density: float = 0.05,
        csr_min_width: int = 512,
        threads: int = 1,
        logger: logging.Logger | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.card = load_card(directory)
        self.backend = backend
        self.log = logger or logging.getLogger(LOGGER_NAME)
        obs, act = self.card.observation, self.card.action
        self._backend: _Backend
        if backend == "onnx":
            self._backend = _OnnxBackend(self.card, threads)
            self.csr_layers: tuple[int, ...] = ()
        else:
            numpy_backend = _NumpyBackend(self.card, csr_max_density, csr_min_width)
            self._backend = numpy_backend
            self.csr_layers = tuple(numpy_backend.csr_layers)
        if act.kind == "box":
            self._low = np.asarray(act.low, dtype=np.float32).reshape(act.shape)
            self._high = np.asarray(act.high, dtype=np.float32).reshape(act.shape)
        self._action_dtype = np.dtype(ACTION_DTYPES.get(act.kind, np.float32))
        #: an ``int64`` scalar for discrete actions, an array otherwise
        self._safe: Any = np.asarray(act.safe_action, self._action_dtype).reshape(act.shape)[()]
        self._norm: tuple[np.ndarray, np.ndarray, float] | None = None
        if obs.normalization is not None:
            n = obs.normalization
            mean = np.asarray(n.mean, dtype=np.float64).reshape(obs.shape)
            std = np.sqrt(np.asarray(n.var, dtype=np.float64).reshape(obs.shape) + n.epsilon)
            self._norm = (mean, std, n.clip)
        self._model_dtype = np.dtype(obs.dtype or np.float32)  # "" for dict observations
        self._stack = np.zeros((1, *obs.shape), dtype=self._model_dtype)
        self._stack_filled = False
        self._warned: dict[str, int] = {}
        self.invalid_count = 0
        self.nonfinite_action_count = 0
        self.latency = LatencyStats()
        self._check_output_shape()

    # ------------------------------------------------------------------ control path

    @property
    def safe_action(self) -> np.ndarray:
        """The card's hold command (a copy), in env units (an ``int64`` scalar for discrete)."""
        return self._safe.copy()

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """What ``act`` takes: one frame for pixel policies, the vector otherwise; ``()`` for
        dict observations, whose entries ``card.observation.keys`` gives."""
        return self.card.observation.frame_shape

    def zero_observation(self) -> Observation:
        """An all-zero observation as ``act`` takes it (one frame; a dict for dict policies)."""
        obs = self.card.observation
        if obs.kind == "dict":
            return {k: np.zeros(spec.shape, spec.dtype) for k, spec in obs.keys.items()}
        return np.zeros(obs.frame_shape, dtype=obs.dtype)

    def reset(self) -> None:
        """Start an episode: the next valid frame fills the whole frame stack."""
        self._stack_filled = False

    def act(self, observation: Any) -> np.ndarray:
        """The command for one observation (no batch dim), in env units.

        ``Box``: float32 array. ``Discrete``: an ``int64`` scalar. ``MultiDiscrete``: ``int64``
        array, one index per branch. ``MultiBinary``: ``int8`` array of 0/1. A dict observation
        is a mapping with exactly the card's keys, each array of its entry's shape.

        An observation with the wrong type, shape or dtype, or a non-finite value, gets the
        card's ``safe_action``, is counted in ``invalid_count`` and leaves the frame stack as it
        was. A non-finite model output also gets ``safe_action`` (``nonfinite_action_count``).
        """
        start = time.perf_counter()
        try:
            x = self._model_input(observation)
        except _Invalid as exc:
            self.invalid_count += 1
            self._warn("invalid", f"invalid observation ({exc}); sending the safe action")
            self.latency.record(time.perf_counter() - start)
            return self._safe.copy()
        action = self._actions(self._backend.run(x))[0]
        self.latency.record(time.perf_counter() - start)
        return action

    def act_batch(self, observations: Observation) -> np.ndarray:
        """Commands for a batch of model inputs ``(B, *shape)``; for tests and benchmarks.

        Pixel policies take whole stacked observations here (uint8), not single frames; dict
        policies a mapping of ``(B, *shape)`` arrays, one per key.

        :raises ValueError: on a batch ``act`` would reject; this is not the control path.
        """
        obs = self.card.observation
        if obs.kind == "dict":
            try:
                return self._actions(self._backend.run(self._dict_input(observations, batch=True)))
            except _Invalid as exc:
                raise ValueError(f"observations: {exc}") from None
        if not isinstance(observations, np.ndarray):
            raise ValueError(f"observations must be a numpy array, got {type(observations)}")
        if _masked(observations):
            raise ValueError("observations have masked entries (missing data)")
        observations = np.asarray(observations)
        if observations.ndim != len(obs.shape) + 1 or observations.shape[1:] != obs.shape:
            raise ValueError(
                f"observations have shape {observations.shape}, need (B, *{obs.shape})"
            )
        if obs.kind == "pixels":
            if observations.dtype != np.uint8:
                raise ValueError(f"pixel observations must be uint8, got {observations.dtype}")
            return self._actions(self._backend.run(observations))
        if observations.dtype.kind != "f":
            raise ValueError(f"observations must be floating point, got {observations.dtype}")
        with np.errstate(over="ignore"):
            x = observations.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("observations contain NaN or inf (or values beyond float32)")
        x = self._normalize(x)
        return self._actions(self._backend.run(x))

    # ------------------------------------------------------------------ internals

    def _model_input(self, observation: Any) -> Any:
        """Validate one observation and turn it into a batch-of-one model input."""
        obs = self.card.observation
        if obs.kind == "dict":
            return self._dict_input(observation, batch=False)
        if not isinstance(observation, np.ndarray):
            raise _Invalid(f"expected a numpy array, got {type(observation).__name__}")
        if _masked(observation):
            raise _Invalid("masked entries (missing data) in the observation")
        observation = np.asarray(observation)  # a plain array: no subclass arithmetic below
        if observation.shape != obs.frame_shape:
            hint = " (frames are channel-first)" if obs.kind == "pixels" else ""
            raise _Invalid(f"shape {observation.shape} != {obs.frame_shape}{hint}")
        if obs.kind == "pixels":
            if observation.dtype != np.uint8:
                raise _Invalid(f"pixel frames must be uint8, got {observation.dtype}")
            c = obs.frame_shape[0]
            stack = self._stack[0]
            if self._stack_filled:  # oldest frame first, newest last, as DMCEnv stacks them
                stack[:-c] = stack[c:].copy()
                stack[-c:] = observation
            else:
                stack[:] = np.concatenate([observation] * obs.frame_stack, axis=0)
                self._stack_filled = True
            return self._stack.copy()
        if observation.dtype.kind != "f":
            raise _Invalid(f"vector observations must be floating point, got {observation.dtype}")
        with np.errstate(over="ignore"):  # beyond float32's range becomes inf, rejected below
            x = observation.astype(np.float32)[None]
        if not np.isfinite(x).all():
            raise _Invalid("NaN or inf in the observation")
        return self._normalize(x)

    def _dict_input(self, observation: Any, batch: bool) -> dict[str, np.ndarray]:
        """Check a dict observation entry by entry; the model inputs, one per key.

        Exactly the card's keys; each entry a plain (unmasked) array of its shape: uint8 for
        pixel entries, finite floating point for vectors (fed as float32). With ``batch`` each
        entry has a leading batch dimension, the same for all.
        """
        keys = self.card.observation.keys
        if not isinstance(observation, Mapping):
            raise _Invalid(f"expected a dict of arrays, got {type(observation).__name__}")
        if set(observation) != set(keys):
            missing = sorted(set(keys) - set(observation), key=str)
            extra = sorted(set(observation) - set(keys), key=str)
            raise _Invalid(f"keys differ from the card's: missing {missing}, unexpected {extra}")
        inputs, sizes = {}, set()
        for key, spec in keys.items():
            x = observation[key]
            if not isinstance(x, np.ndarray):
                raise _Invalid(f"{key!r}: expected a numpy array, got {type(x).__name__}")
            if _masked(x):
                raise _Invalid(f"{key!r}: masked entries (missing data)")
            x = np.asarray(x)
            shape = x.shape[1:] if batch else x.shape
            if shape != spec.shape or (batch and x.ndim == 0):
                need = f"(B, *{spec.shape})" if batch else f"{spec.shape}"
                raise _Invalid(f"{key!r}: shape {x.shape} != {need}")
            if spec.kind == "pixels":
                if x.dtype != np.uint8:
                    raise _Invalid(f"{key!r}: pixel entries must be uint8, got {x.dtype}")
            else:
                if x.dtype.kind != "f":
                    raise _Invalid(f"{key!r}: must be floating point, got {x.dtype}")
                with np.errstate(over="ignore"):  # beyond float32's range becomes inf: rejected
                    x = x.astype(np.float32)
                if not np.isfinite(x).all():
                    raise _Invalid(f"{key!r}: NaN or inf")
            inputs[key] = x if batch else x[None]
            sizes.add(inputs[key].shape[0])
        if len(sizes) > 1:
            raise _Invalid(f"entries have different batch sizes {sorted(sizes)}")
        return inputs

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        """``clip((x - mean) / sqrt(var + eps), -clip, clip)`` as float32, as VecNormalize does."""
        if self._norm is None:
            return x
        mean, std, clip = self._norm
        with np.errstate(over="ignore"):  # a huge z-score becomes inf, then clip
            return np.clip((x - mean) / std, -clip, clip).astype(np.float32)

    def _actions(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs ``(B, *outputs)`` to commands; non-finite rows get the safe action.

        ``box``: rescale and clip; a row is replaced when the model output is non-finite (an
        inf would otherwise be clipped to a bound) or when the command is, so no NaN ever
        reaches the robot. Discrete kinds: see ``_choose``; a row with any non-finite output is
        replaced.
        """
        act = self.card.action
        with np.errstate(over="ignore", invalid="ignore"):
            a = np.asarray(outputs, dtype=np.float32).reshape(-1, *act.output_shape)
            model_finite = _finite_rows(a)
            if act.kind == "box":
                if act.output == "squashed":
                    a = self._low + 0.5 * (a + 1.0) * (self._high - self._low)
                a = np.clip(a, self._low, self._high).astype(np.float32)
                finite = model_finite & _finite_rows(a)
            else:
                a = _choose(a, act).astype(self._action_dtype)
                finite = model_finite
        if not finite.all():
            bad = int((~finite).sum())
            self.nonfinite_action_count += bad
            what = "the model returned" if not model_finite.all() else "rescaling gave"
            self._warn("nonfinite", f"{what} NaN or inf; sending the safe action")
            a[~finite] = self._safe
        return a

    def _warn(self, kind: str, message: str) -> None:
        """Log the first few problems of a kind, then every ``_WARN_EVERY``-th, with a count."""
        n = self._warned.get(kind, 0) + 1
        self._warned[kind] = n
        if n <= _WARN_FIRST or n % _WARN_EVERY == 0:
            more = " (further ones logged every 100th)" if n == _WARN_FIRST else ""
            self.log.warning("%s [%d so far]%s", message, n, more)

    def _check_output_shape(self) -> None:
        """Run one neutral input so a model/card mismatch fails at load, not on the robot."""
        obs, act = self.card.observation, self.card.action
        probe: Any = (
            {k: np.zeros((1, *spec.shape), spec.dtype) for k, spec in obs.keys.items()}
            if obs.kind == "dict"
            else np.zeros((1, *obs.shape), dtype=self._model_dtype)
        )
        what = "observation.keys" if obs.kind == "dict" else f"observation.shape {list(obs.shape)}"
        name = self.card.onnx.path.name if self.backend == "onnx" else "the numpy MLP"
        try:
            out = np.asarray(self._backend.run(probe))
        except MemoryError:
            raise
        except Exception as exc:  # e.g. a symbolic dimension the graph cannot take after all
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CardError(
                f"card.json: {name} fails on a zero observation of {what} ({first}); the card "
                "does not describe this model"
            ) from None
        if out.shape != (1, *act.output_shape):
            raise CardError(
                f"card.json: {name} returns shape {out.shape} but {_action_field(self.card)} "
                f"needs {(1, *act.output_shape)}"
            )


def _action_field(card: PolicyCard) -> str:
    """The card field that fixes the model's output width, with its value, for errors."""
    act = card.action
    if act.kind == "discrete":
        return f"action.n {act.nvec[0]}"
    if act.kind == "multi_discrete":
        return f"action.nvec {list(act.nvec)}"
    if act.kind == "multi_binary":
        return f"action.n {act.shape[0]}"
    return f"action.shape {list(act.shape)}"


def _choose(scores: np.ndarray, act: ActionSpec) -> np.ndarray:
    """Discrete actions from ``(B, outputs)`` float32 scores, as SB3's deterministic ``predict``.

    Q-values: their argmax. Logits: the argmax of their softmax (per branch), which SB3 takes
    from ``Categorical.probs``; multi-binary logits: 1 where ``sigmoid`` > 0.5, i.e.
    ``round(Bernoulli.probs)``. Computed in float32 the way torch does, so logits that differ by
    less than float32 can tell apart tie as they do in SB3; ``np.argmax`` takes the first of
    equal maxima, as ``torch.argmax`` does.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if act.kind == "multi_binary":
            return 1.0 / (1.0 + np.exp(-scores)) > 0.5
        branches = np.split(scores, np.cumsum(act.nvec)[:-1], axis=1)
        if act.output == "logits":
            branches = [_softmax(b) for b in branches]
        chosen = np.stack([np.argmax(b, axis=1) for b in branches], axis=1)
    return chosen[:, 0] if act.kind == "discrete" else chosen


def _softmax(logits: np.ndarray) -> np.ndarray:
    """torch's ``Categorical(logits=x).probs``: normalize by logsumexp, then softmax."""
    peak = logits.max(axis=1, keepdims=True)
    logits = logits - (peak + np.log(np.exp(logits - peak).sum(axis=1, keepdims=True)))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _masked(array: np.ndarray) -> bool:
    """Whether a numpy masked array hides any entry: masked entries are missing data."""
    return isinstance(array, np.ma.MaskedArray) and bool(np.ma.getmaskarray(array).any())


def _finite_rows(a: np.ndarray) -> np.ndarray:
    """Per batch row, whether every value is finite."""
    return np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
