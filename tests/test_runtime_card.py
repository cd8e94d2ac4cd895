"""card.json validation: each bad field fails with a CardError that names it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import mlp_policy, pixel_policy

from sparse_rl.runtime import CardError, Policy, load_card


def _edit(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / "card.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def test_valid_card_loads(tmp_path: Path) -> None:
    norm = {"mean": [0.0, 1.0, 2.0], "var": [1.0, 4.0, 0.0], "epsilon": 1e-8, "clip": 10.0}
    card = load_card(mlp_policy(tmp_path, normalization=norm))
    assert card.observation.kind == "vector" and card.observation.shape == (3,)
    assert card.action.shape == (2,) and card.action.low == (-2.0, -2.0)
    assert card.onnx.path == (tmp_path / "policy.onnx").resolve()
    assert card.numpy is not None and card.numpy.activations == ("relu", "relu", "identity")
    assert card.observation.normalization is not None
    assert card.observation.normalization.clip == 10.0
    assert "SparseSAC" in card.describe()


def test_pixel_card_loads(tmp_path: Path) -> None:
    card = load_card(pixel_policy(tmp_path, frame_shape=(3, 4, 5), frame_stack=3))
    assert card.observation.shape == (9, 4, 5) and card.observation.frame_stack == 3
    assert card.numpy is None


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(card: dict[str, Any]) -> None:
        target = card
        for part in section.split(".") if section else []:
            target = target[part]
        target[key] = value

    return change


def _delete(section: str, key: str) -> Callable[[dict[str, Any]], None]:
    def change(card: dict[str, Any]) -> None:
        target = card[section] if section else card
        del target[key]

    return change


BAD_VECTOR_CARDS = {
    "format": (_set("", "format", "something-else"), "format must be"),
    "version": (_set("", "version", 2), "version 2 is not supported"),
    "version-type": (_set("", "version", "1"), "version '1' is not supported"),
    "unknown-top": (_set("", "extra", 1), "unknown key(s) 'extra' at the top level"),
    "missing-top": (_delete("", "action"), "missing action"),
    "missing-nested": (_delete("action", "safe_action"), "missing action.safe_action"),
    "unknown-nested": (_set("observation", "scale", 1), "unknown key(s) 'scale' in observation"),
    "low-length": (
        _set("action", "low", [-1.0] * 5),
        "action.low has 5 values but action.shape [2] needs 2",
    ),
    "high-length": (_set("action", "high", [1.0]), "action.high has 1 values"),
    "safe-length": (_set("action", "safe_action", []), "action.safe_action has 0 values"),
    "low-not-below-high": (_set("action", "low", [-2.0, 2.0]), "action.low must be < action.high"),
    "low-nan": (_set("action", "low", [-2.0, float("nan")]), "action.low[1] must be a finite"),
    "high-inf": (_set("action", "high", [2.0, float("inf")]), "action.high[1] must be a finite"),
    "low-string": (_set("action", "low", "-2"), "action.low must be a list"),
    "safe-outside": (_set("action", "safe_action", [0.0, 3.0]), "action.safe_action[1] = 3.0"),
    "action-output": (_set("action", "output", "scaled"), "action.output must be one of"),
    "action-shape": (_set("action", "shape", [0]), "action.shape must be a non-empty list"),
    "obs-kind": (
        _set("observation", "kind", "image"),
        "observation.kind must be one of 'vector', 'pixels', got 'image'",
    ),
    "obs-dtype": (_set("observation", "dtype", "float64"), "observation.dtype must be one of"),
    "obs-dtype-kind": (
        _set("observation", "dtype", "uint8"),
        "observation.dtype is 'uint8' but vector observations must be 'float32'",
    ),
    "obs-shape-type": (_set("observation", "shape", [3.0]), "observation.shape must be"),
    "vector-frame-stack": (_set("observation", "frame_stack", 2), "observation.frame_stack must"),
    "vector-frame-shape": (_set("observation", "frame_shape", [4]), "observation.frame_shape [4]"),
    "norm-length": (
        _set(
            "observation",
            "normalization",
            {"mean": [0.0] * 2, "var": [1.0] * 3, "epsilon": 1e-8, "clip": 10.0},
        ),
        "observation.normalization.mean has 2 values but observation.shape [3] needs 3",
    ),
    "norm-var": (
        _set(
            "observation",
            "normalization",
            {"mean": [0.0] * 3, "var": [1.0, -1.0, 1.0], "epsilon": 1e-8, "clip": 10.0},
        ),
        "observation.normalization.var must be >= 0",
    ),
    "norm-clip": (
        _set(
            "observation",
            "normalization",
            {"mean": [0.0] * 3, "var": [1.0] * 3, "epsilon": 1e-8, "clip": 0},
        ),
        "observation.normalization.clip must be > 0",
    ),
    "norm-keys": (
        _set("observation", "normalization", {"mean": [0.0] * 3, "var": [1.0] * 3}),
        "missing observation.normalization.epsilon, observation.normalization.clip",
    ),
    "onnx-missing": (_delete("files", "onnx"), "missing files.onnx"),
    "onnx-path-escape": (_set("files.onnx", "path", "../policy.onnx"), "files.onnx.path"),
    "onnx-path-absent": (_set("files.onnx", "path", "nope.onnx"), "files.onnx.path: nope.onnx"),
    "onnx-sha-format": (_set("files.onnx", "sha256", "abc"), "files.onnx.sha256 must be 64 hex"),
    "onnx-sha-mismatch": (
        _set("files.onnx", "sha256", "0" * 64),
        "policy.onnx does not match its card",
    ),
    "numpy-activation": (
        _set("files.numpy", "activations", ["relu", "gelu", "identity"]),
        "files.numpy.activations[1] must be one of 'relu', 'tanh', 'identity'",
    ),
    "numpy-output-activation": (
        _set("files.numpy", "output_activation", "sigmoid"),
        "files.numpy.output_activation must be one of",
    ),
    "files-unknown": (_set("files", "tflite", {}), "unknown key(s) 'tflite' in files"),
    "policy-type": (_set("", "policy", "SAC"), "policy must be an object"),
}


@pytest.mark.parametrize("case", sorted(BAD_VECTOR_CARDS))
def test_bad_field_names_it(tmp_path: Path, case: str) -> None:
    change, message = BAD_VECTOR_CARDS[case]
    mlp_policy(tmp_path)
    _edit(tmp_path, change)
    with pytest.raises(CardError) as info:
        load_card(tmp_path)
    assert str(info.value).startswith("card.json: ")
    assert message in str(info.value)


BAD_PIXEL_CARDS = {
    "stack-mismatch": (
        _set("observation", "shape", [6, 4, 5]),
        "observation.shape [6, 4, 5] does not match frame_shape [3, 4, 5] x frame_stack 3",
    ),
    "frame-hw": (_set("observation", "frame_shape", [3, 4, 6]), "expected [9, 4, 6]"),
    "frame-rank": (_set("observation", "frame_shape", [3, 20]), "must both be (C, H, W)"),
    "pixel-dtype": (
        _set("observation", "dtype", "float32"),
        "observation.dtype is 'float32' but pixels observations must be 'uint8'",
    ),
    "pixel-normalization": (
        _set("observation", "normalization", {"mean": [0], "var": [1], "epsilon": 0, "clip": 1}),
        "observation.normalization is only supported for vector observations",
    ),
    "pixel-stack-zero": (_set("observation", "frame_stack", 0), "observation.frame_stack must be"),
}


@pytest.mark.parametrize("case", sorted(BAD_PIXEL_CARDS))
def test_bad_pixel_field_names_it(tmp_path: Path, case: str) -> None:
    change, message = BAD_PIXEL_CARDS[case]
    pixel_policy(tmp_path)
    _edit(tmp_path, change)
    with pytest.raises(CardError, match=r"^card\.json: ") as info:
        load_card(tmp_path)
    assert message in str(info.value)


def test_tampered_model_file_is_rejected(tmp_path: Path) -> None:
    mlp_policy(tmp_path)
    with (tmp_path / "policy.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(CardError, match=r"policy\.onnx does not match its card"):
        load_card(tmp_path)
    with pytest.raises(CardError, match=r"policy\.onnx does not match its card"):
        Policy(tmp_path)


def test_tampered_numpy_file_is_rejected(tmp_path: Path) -> None:
    mlp_policy(tmp_path)
    (tmp_path / "policy_mlp.npz").write_bytes(b"not an npz")
    with pytest.raises(CardError, match=r"policy_mlp.npz does not match its card \(files.numpy"):
        load_card(tmp_path)


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    mlp_policy(tmp_path)
    (tmp_path / "card.json").write_text('{"format": "sparse-rl-policy-card",')
    with pytest.raises(CardError, match=r"card.json: not valid JSON"):
        load_card(tmp_path)


def test_card_must_be_an_object(tmp_path: Path) -> None:
    (tmp_path / "card.json").write_text("[1, 2]")
    with pytest.raises(CardError, match="card must be an object"):
        load_card(tmp_path)


def test_missing_card(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="no policy card here"):
        load_card(tmp_path)


def test_card_error_is_a_value_error() -> None:
    assert issubclass(CardError, ValueError)


def test_numpy_backend_needs_a_numpy_file(tmp_path: Path) -> None:
    pixel_policy(tmp_path)
    with pytest.raises(CardError, match=r"backend 'numpy' needs files\.numpy"):
        Policy(tmp_path, backend="numpy")


def test_onnx_io_names_must_match_the_model(tmp_path: Path) -> None:
    mlp_policy(tmp_path)
    _edit(tmp_path, _set("files.onnx", "input", "observation"))
    with pytest.raises(CardError, match=r"files.onnx.input is 'observation' but policy.onnx"):
        Policy(tmp_path)


def test_action_shape_must_match_the_model(tmp_path: Path) -> None:
    mlp_policy(tmp_path)

    def three_actions(card: dict[str, Any]) -> None:
        card["action"].update(shape=[3], low=[-1.0] * 3, high=[1.0] * 3, safe_action=[0.0] * 3)

    _edit(tmp_path, three_actions)
    with pytest.raises(CardError, match=r"returns shape \(1, 2\) but action.shape \[3\]"):
        Policy(tmp_path)
    with pytest.raises(CardError, match=r"the last layer has 2 outputs but action.shape \[3\]"):
        Policy(tmp_path, backend="numpy")


def test_torchscript_entry_is_ignored(tmp_path: Path) -> None:
    mlp_policy(tmp_path)
    _edit(tmp_path, _set("files", "torchscript", {"path": "policy.ts", "sha256": "0" * 64}))
    assert load_card(tmp_path).onnx.path.name == "policy.onnx"
