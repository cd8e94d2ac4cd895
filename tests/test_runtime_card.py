"""card.json validation: each bad field fails with a CardError that names it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import (
    DISCRETE_ACTIONS,
    dict_policy,
    mlp_policy,
    pixel_policy,
    scores_policy,
)

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
    "version": (_set("", "version", 3), "version 3 is not supported"),
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
        "observation.kind must be one of 'vector', 'pixels', 'dict', got 'image'",
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


# ------------------------------------------------------ action kinds and dict observations


def test_version_1_cards_still_load_as_box(tmp_path: Path) -> None:
    mlp_policy(tmp_path)

    def version_1(card: dict[str, Any]) -> None:
        card["version"] = 1
        del card["action"]["kind"]

    _edit(tmp_path, version_1)
    card = load_card(tmp_path)
    assert card.version == 1 and card.action.kind == "box" and card.action.shape == (2,)
    _edit(tmp_path, _set("action", "kind", "box"))
    with pytest.raises(CardError, match="unknown key\\(s\\) 'kind' in action"):
        load_card(tmp_path)


@pytest.mark.parametrize("kind", sorted(DISCRETE_ACTIONS))
def test_discrete_cards_load(tmp_path: Path, kind: str) -> None:
    card = load_card(scores_policy(tmp_path, DISCRETE_ACTIONS[kind]))
    act = card.action
    assert act.kind == DISCRETE_ACTIONS[kind]["kind"] and act.output_shape == (5,)
    assert act.low == act.high == ()
    expected = {
        "discrete": ((), (5,), (4,)),
        "q_values": ((), (5,), (4,)),
        "multi_discrete": ((2,), (2, 3), (1, 2)),
        "multi_binary": ((5,), (), (0, 1, 0, 1, 0)),
    }[kind]
    assert (act.shape, act.nvec, act.safe_action) == expected
    assert "action: " + act.kind in card.describe()


def test_dict_card_loads(tmp_path: Path) -> None:
    card = load_card(dict_policy(tmp_path))
    obs = card.observation
    assert obs.kind == "dict" and set(obs.keys) == {"vec", "img"}
    assert obs.keys["vec"].low == (None,) * 3 and obs.keys["img"].high == (255.0,) * 4
    assert card.onnx.input == {"vec": "obs.vec", "img": "obs.img"}
    assert "observation: dict {vec: vector [3] float32, img: pixels [1, 2, 2] uint8}" in (
        card.describe()
    )


def _action(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda card: card["action"].update(fields)


BAD_DISCRETE_CARDS = {
    "kind": ("discrete", _set("action", "kind", "categorical"), "action.kind must be one of"),
    "kind-missing": ("discrete", _delete("action", "kind"), "missing action.kind"),
    "box-keys": ("discrete", _set("action", "shape", [5]), "unknown key(s) 'shape' in action"),
    "n-missing": ("discrete", _delete("action", "n"), "missing action.n"),
    "n-zero": ("discrete", _action(n=0), "action.n must be an integer >= 1, got 0"),
    "n-string": ("discrete", _action(n="5"), "action.n must be an integer >= 1, got '5'"),
    "output": (
        "discrete",
        _action(output="squashed"),
        "action.output must be one of 'logits', 'q_values', got 'squashed'",
    ),
    "safe-range": (
        "discrete",
        _action(safe_action=5),
        "action.safe_action must be an integer in [0, 5) (action.n = 5), got 5",
    ),
    "safe-float": ("discrete", _action(safe_action=1.0), "action.safe_action must be an integer"),
    "safe-bool": ("discrete", _action(safe_action=True), "action.safe_action must be an integer"),
    "safe-list": ("discrete", _action(safe_action=[1]), "action.safe_action must be an integer"),
    "nvec": (
        "multi_discrete",
        _action(nvec=[2, 0]),
        "action.nvec must be a non-empty list of positive integers",
    ),
    "md-output": (
        "multi_discrete",
        _action(output="q_values"),
        "action.output must be one of 'logits', got 'q_values'",
    ),
    "md-safe-length": (
        "multi_discrete",
        _action(safe_action=[1]),
        "action.safe_action has 1 values but the action has 2 branches (action.nvec)",
    ),
    "md-safe-range": (
        "multi_discrete",
        _action(safe_action=[1, 3]),
        "action.safe_action[1] must be an integer in [0, 3) (action.nvec[1] = 3), got 3",
    ),
    "md-safe-type": ("multi_discrete", _action(safe_action=1), "must be a list of integers"),
    "mb-safe": (
        "multi_binary",
        _action(safe_action=[0, 1, 2, 0, 0]),
        "action.safe_action[2] must be an integer in [0, 2) (multi_binary entries are 0 or 1)",
    ),
    "mb-n": ("multi_binary", _action(n=True), "action.n must be an integer >= 1, got True"),
    "n-huge": ("discrete", _action(n=2**63), "action.n = 9223372036854775808 is more than"),
    "nvec-huge": ("multi_discrete", _action(nvec=[2, 2**40]), "action.nvec[1] = 1099511627776"),
}


@pytest.mark.parametrize("case", sorted(BAD_DISCRETE_CARDS))
def test_bad_discrete_field_names_it(tmp_path: Path, case: str) -> None:
    kind, change, message = BAD_DISCRETE_CARDS[case]
    _edit(scores_policy(tmp_path, DISCRETE_ACTIONS[kind]), change)
    with pytest.raises(CardError, match=r"^card\.json: ") as info:
        load_card(tmp_path)
    assert message in str(info.value)


def _key(key: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda card: card["observation"]["keys"][key].update(fields)


BAD_DICT_CARDS = {
    "version-1": (_set("", "version", 1), "observation.kind must be one of 'vector', 'pixels'"),
    "no-keys": (_set("observation", "keys", {}), "observation.keys must name at least one"),
    "keys-type": (_set("observation", "keys", ["vec"]), "observation.keys must be an object"),
    "vector-fields": (
        _set("observation", "shape", [3]),
        "unknown key(s) 'shape' in observation",
    ),
    "entry-missing": (
        lambda card: card["observation"]["keys"]["vec"].pop("dtype"),
        "missing observation.keys.vec.dtype",
    ),
    "entry-kind": (_key("vec", kind="image"), "observation.keys.vec.kind must be one of"),
    "entry-dtype": (
        _key("img", dtype="float32"),
        "observation.keys.img.dtype is 'float32' but pixels entries must be 'uint8'",
    ),
    "entry-rank": (
        _key("img", shape=[4], low=0, high=255),
        "observation.keys.img.shape [4] must be (C, H, W) for pixels",
    ),
    "entry-bounds-length": (
        _key("vec", low=[0.0, 0.0]),
        "observation.keys.vec.low has 2 values but observation.keys.vec.shape [3] needs 3",
    ),
    "entry-bounds-order": (
        _key("vec", low=[0.0, 2.0, None], high=1.0),
        "observation.keys.vec.low must be <= observation.keys.vec.high (index 1",
    ),
    "entry-bound-nan": (
        _key("vec", high=float("nan")),
        "observation.keys.vec.high must be a finite number or null",
    ),
    "pixel-bounds": (
        _key("img", high=256),
        "observation.keys.img.low and .high must lie in [0, 255]",
    ),
    "input-string": (
        _set("files.onnx", "input", "obs"),
        "files.onnx.input must be an object mapping each observation key",
    ),
    "input-keys": (
        _set("files.onnx", "input", {"vec": "obs.vec"}),
        "files.onnx.input maps ['vec'] but observation.keys has ['img', 'vec']",
    ),
    "input-duplicate": (
        _set("files.onnx", "input", {"vec": "obs.vec", "img": "obs.vec"}),
        "gives two observation keys the same graph input",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DICT_CARDS))
def test_bad_dict_field_names_it(tmp_path: Path, case: str) -> None:
    change, message = BAD_DICT_CARDS[case]
    _edit(dict_policy(tmp_path), change)
    with pytest.raises(CardError, match=r"^card\.json: ") as info:
        load_card(tmp_path)
    assert message in str(info.value)


def test_discrete_card_must_match_the_model(tmp_path: Path) -> None:
    scores_policy(tmp_path, DISCRETE_ACTIONS["discrete"])
    _edit(tmp_path, _action(n=6))
    with pytest.raises(CardError, match=r"returns shape \(1, 5\) but action.n 6 needs \(1, 6\)"):
        Policy(tmp_path)
    with pytest.raises(CardError, match=r"the last layer has 5 outputs but action.n 6 needs 6"):
        Policy(tmp_path, backend="numpy")
    _edit(tmp_path, _action(kind="multi_discrete", nvec=[2, 2], safe_action=[0, 0]))
    _edit(tmp_path, lambda card: card["action"].pop("n"))
    with pytest.raises(CardError, match=r"action.nvec \[2, 2\] needs \(1, 4\)"):
        Policy(tmp_path)


def test_dict_card_must_match_the_model(tmp_path: Path) -> None:
    _edit(dict_policy(tmp_path), _key("vec", shape=[4], low=None, high=None))
    with pytest.raises(CardError, match=r"observation\.keys\.vec\.shape \[4\] does not match"):
        Policy(tmp_path)
    _edit(dict_policy(tmp_path), _key("img", kind="vector", dtype="float32"))
    with pytest.raises(CardError, match=r"keys\.img\.dtype is 'float32' but policy\.onnx takes"):
        Policy(tmp_path)
    _edit(dict_policy(tmp_path), _set("files.onnx", "input", {"vec": "obs.v", "img": "obs.img"}))
    with pytest.raises(CardError, match=r"files.onnx.input is .* but policy.onnx takes"):
        Policy(tmp_path)


def test_numpy_file_is_refused_for_dict_observations(tmp_path: Path) -> None:
    def numpy_entry(card: dict[str, Any]) -> None:
        onnx = card["files"]["onnx"]
        card["files"]["numpy"] = {
            "path": onnx["path"], "sha256": onnx["sha256"], "activations": ["identity"],
            "output_activation": "identity",
        }  # fmt: skip

    _edit(dict_policy(tmp_path), numpy_entry)
    with pytest.raises(CardError, match=r"files\.numpy is only supported for vector"):
        load_card(tmp_path)
