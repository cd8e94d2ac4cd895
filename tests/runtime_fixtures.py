"""Exported-policy directories for the runtime tests, built without torch or the exporter.

Graphs are assembled with ``onnx.helper`` (fast, and independent of the exporter under test);
cards are written exactly as the card contract says, with real hashes.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
#: Old enough for any onnxruntime the runtime supports.
IR_VERSION = 8

_ONNX_ACT = {"relu": "Relu", "tanh": "Tanh"}


def mlp_weights(
    sizes: Sequence[int], density: float = 1.0, seed: int = 0, empty_rows: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random ``(w (out, in), b (out,))`` float32 layers; ``density`` < 1 zeroes weights."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = rng.normal(0.0, 1.0 / math.sqrt(fan_in), (fan_out, fan_in)).astype(np.float32)
        if density < 1.0:
            w *= rng.random(w.shape) < density
        w[:empty_rows] = 0.0
        b = rng.normal(0.0, 0.1, fan_out).astype(np.float32)
        layers.append((w, b))
    return layers


def mlp_model(
    layers: Sequence[tuple[np.ndarray, np.ndarray]],
    activations: Sequence[str],
    output_activation: str,
    input_name: str = "obs",
    output_name: str = "action",
) -> onnx.ModelProto:
    """An ONNX MLP ``(batch, in) -> (batch, out)`` computing what ``policy_mlp.npz`` describes."""
    nodes, inits = [], []
    h = input_name
    for i, ((w, b), act) in enumerate(zip(layers, activations, strict=True)):
        inits += [numpy_helper.from_array(w.T.copy(), f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes += [
            helper.make_node("MatMul", [h, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"B{i}"], [f"a{i}"]),
        ]
        h = f"a{i}"
        if act != "identity":
            nodes.append(helper.make_node(_ONNX_ACT[act], [h], [f"h{i}"]))
            h = f"h{i}"
    op = _ONNX_ACT.get(output_activation, "Identity")
    nodes.append(helper.make_node(op, [h], [output_name]))
    n_in, n_out = layers[0][0].shape[1], layers[-1][0].shape[0]
    return _model(nodes, inits, input_name, TensorProto.FLOAT, ["batch", n_in], output_name, n_out)


def pixel_model(frame_shape: Sequence[int], frame_stack: int) -> onnx.ModelProto:
    """uint8 ``(batch, C*k, H, W)`` -> the mean of each stacked channel / 255 (float32).

    With ``output="raw"`` and wide bounds the action *is* the stack's channel means, oldest
    frame first, so tests can read the frame stack back from the actions.
    """
    channels = frame_shape[0] * frame_stack
    eye = numpy_helper.from_array(np.eye(channels, dtype=np.float32) / 255.0, "W")
    nodes = [
        helper.make_node("Cast", ["obs"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["action"]),
    ]
    shape = ["batch", channels, *frame_shape[1:]]
    return _model(nodes, [eye], "obs", TensorProto.UINT8, shape, "action", channels)


def dict_model(vec_size: int = 3, frame_shape: Sequence[int] = (1, 2, 2)) -> onnx.ModelProto:
    """Inputs ``obs.vec`` float32 ``(batch, vec_size)`` and ``obs.img`` uint8 ``(batch, *frame)``
    -> ``[*vec, mean(img) / 255]``, so raw actions show what the runtime fed each input."""
    scale = numpy_helper.from_array(np.array(1 / 255, np.float32), "scale")
    shape = numpy_helper.from_array(np.array([-1, 1], np.int64), "shape")
    nodes = [
        helper.make_node("Cast", ["obs.img"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m", "shape"], ["m2"]),
        helper.make_node("Mul", ["m2", "scale"], ["s"]),
        helper.make_node("Concat", ["obs.vec", "s"], ["action"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "policy",
        [
            helper.make_tensor_value_info("obs.img", TensorProto.UINT8, ["batch", *frame_shape]),
            helper.make_tensor_value_info("obs.vec", TensorProto.FLOAT, ["batch", vec_size]),
        ],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", vec_size + 1])],
        initializer=[scale, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def log_model(size: int) -> onnx.ModelProto:
    """``action = log(obs)``: NaN for negative inputs, -inf at 0, to test non-finite outputs."""
    nodes = [helper.make_node("Log", ["obs"], ["action"])]
    return _model(nodes, [], "obs", TensorProto.FLOAT, ["batch", size], "action", size)


def _model(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    input_name: str,
    elem_type: int,
    input_shape: list[Any],
    output_name: str,
    n_out: int,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "policy",
        [helper.make_tensor_value_info(input_name, elem_type, input_shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", n_out])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def base_card(obs_size: int = 3, act_size: int = 2) -> dict[str, Any]:
    """A valid vector card body (files filled in by ``write_policy``)."""
    return {
        "format": "sparse-rl-policy-card",
        "version": 2,
        "files": {},
        "observation": {
            "kind": "vector",
            "shape": [obs_size],
            "dtype": "float32",
            "frame_shape": [obs_size],
            "frame_stack": 1,
            "normalization": None,
        },
        "action": {
            "kind": "box",
            "shape": [act_size],
            "low": [-2.0] * act_size,
            "high": [2.0] * act_size,
            "output": "squashed",
            "safe_action": [0.0] * act_size,
        },
        "policy": {"algorithm": "SAC", "class": "SparseSAC", "deterministic": True},
        "sparsity": {"density": 0.5},
        "provenance": {
            "package": "sparse-rl",
            "version": "0.1.0",
            "env_id": None,
            "num_timesteps": 1000,
            "weights_sha256": "0" * 64,
            "created": "2025-01-01T00:00:00+00:00",
        },
    }


def write_policy(
    directory: Path,
    model: onnx.ModelProto,
    card: dict[str, Any],
    mlp: tuple[Sequence[tuple[np.ndarray, np.ndarray]], Sequence[str], str] | None = None,
) -> Path:
    """Write ``policy.onnx`` (+ ``policy_mlp.npz``) and ``card.json`` with their hashes."""
    directory.mkdir(parents=True, exist_ok=True)
    card = copy.deepcopy(card)
    onnx.save(model, directory / "policy.onnx")
    inputs = [i.name for i in model.graph.input]
    card["files"]["onnx"] = {
        "path": "policy.onnx",
        "sha256": sha256(directory / "policy.onnx"),
        "input": inputs[0] if len(inputs) == 1 else {n.removeprefix("obs."): n for n in inputs},
        "output": model.graph.output[0].name,
    }
    if mlp is not None:
        layers, activations, output_activation = mlp
        arrays = {}
        for i, (w, b) in enumerate(layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        np.savez(directory / "policy_mlp.npz", **arrays)
        card["files"]["numpy"] = {
            "path": "policy_mlp.npz",
            "sha256": sha256(directory / "policy_mlp.npz"),
            "activations": list(activations),
            "output_activation": output_activation,
        }
    (directory / "card.json").write_text(json.dumps(card, indent=2))
    return directory


def mlp_policy(
    directory: Path,
    sizes: Sequence[int] = (3, 16, 16, 2),
    density: float = 1.0,
    output: str = "squashed",
    normalization: dict[str, Any] | None = None,
    seed: int = 0,
    empty_rows: int = 0,
    **action: Any,
) -> Path:
    """A vector MLP policy with both backends; ``action`` overrides card action fields."""
    layers = mlp_weights(sizes, density=density, seed=seed, empty_rows=empty_rows)
    activations = ["relu"] * (len(layers) - 1) + ["identity"]
    output_activation = "tanh" if output == "squashed" else "identity"
    card = base_card(sizes[0], sizes[-1])
    card["observation"]["normalization"] = normalization
    card["action"]["output"] = output
    card["action"].update(action)
    model = mlp_model(layers, activations, output_activation)
    return write_policy(directory, model, card, (layers, activations, output_activation))


def pixel_policy(
    directory: Path, frame_shape: Sequence[int] = (3, 4, 5), frame_stack: int = 3
) -> Path:
    """A uint8 pixel policy whose actions are its stacked channel means (see ``pixel_model``)."""
    channels = frame_shape[0] * frame_stack
    card = base_card(1, channels)
    card["observation"] = {
        "kind": "pixels",
        "shape": [channels, *frame_shape[1:]],
        "dtype": "uint8",
        "frame_shape": list(frame_shape),
        "frame_stack": frame_stack,
        "normalization": None,
    }
    card["action"].update(
        low=[-1000.0] * channels,
        high=[1000.0] * channels,
        output="raw",
        safe_action=[-1.0] * channels,
    )
    return write_policy(directory, pixel_model(frame_shape, frame_stack), card)


def rehash(directory: Path) -> None:
    """Refresh the card's hashes after a test rewrote a model file on purpose."""
    path = directory / "card.json"
    card = json.loads(path.read_text())
    for entry in card["files"].values():
        entry["sha256"] = sha256(directory / entry["path"])
    path.write_text(json.dumps(card))


#: A valid card ``action`` section per discrete kind, over 5 model outputs.
DISCRETE_ACTIONS: dict[str, dict[str, Any]] = {
    "discrete": {"kind": "discrete", "n": 5, "output": "logits", "safe_action": 4},
    "q_values": {"kind": "discrete", "n": 5, "output": "q_values", "safe_action": 4},
    "multi_discrete": {
        "kind": "multi_discrete", "nvec": [2, 3], "output": "logits", "safe_action": [1, 2],
    },
    "multi_binary": {
        "kind": "multi_binary", "n": 5, "output": "logits", "safe_action": [0, 1, 0, 1, 0],
    },
}  # fmt: skip


def scores_policy(directory: Path, action: dict[str, Any], size: int = 5) -> Path:
    """A policy whose model output (logits / Q-values) is its observation, both backends."""
    layers = [(np.eye(size, dtype=np.float32), np.zeros(size, np.float32))]
    card = base_card(size, size)
    card["action"] = copy.deepcopy(action)
    model = mlp_model(layers, ["identity"], "identity")
    return write_policy(directory, model, card, (layers, ["identity"], "identity"))


def dict_policy(directory: Path, **action: Any) -> Path:
    """A dict-observation policy (``vec`` (3,) float, ``img`` (1, 2, 2) uint8; see
    ``dict_model``) with raw actions in [-1000, 1000]; ``action`` overrides card fields."""
    card = base_card(1, 4)
    card["observation"] = {
        "kind": "dict",
        "keys": {
            "vec": {"kind": "vector", "shape": [3], "dtype": "float32", "low": None, "high": None},
            "img": {"kind": "pixels", "shape": [1, 2, 2], "dtype": "uint8", "low": 0, "high": 255},
        },
    }
    card["action"].update(
        low=[-1000.0] * 4, high=[1000.0] * 4, output="raw", safe_action=[-1.0] * 4, **action
    )
    return write_policy(directory, dict_model(), card)
