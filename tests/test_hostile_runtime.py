"""Issue 15's hostile-input coverage for the robot runtime: cards and inputs built to break it.

A card must be refused by ``check`` (and by loading the policy) with an error that names the field,
the value and what is valid, before the robot moves; ``Policy.act`` must answer anything it is
given with a finite command, the card's safe action when the input cannot be trusted.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runtime_fixtures import (
    base_card,
    mlp_model,
    mlp_policy,
    mlp_weights,
    pixel_policy,
    write_policy,
)

from sparse_rl.runtime import CardError, Policy, load_card
from sparse_rl.runtime import policy as policy_module
from sparse_rl.runtime.__main__ import main


def _edit(directory: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    path = directory / "card.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))
    return directory


def _action(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda card: card["action"].update(fields)


def _normalization(**fields: Any) -> Callable[[dict[str, Any]], None]:
    norm = {"mean": [0.0] * 3, "var": [1.0] * 3, "epsilon": 1e-8, "clip": 10.0, **fields}
    return lambda card: card["observation"].update(normalization=norm)


def _check(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", str(directory)])
    return code, capsys.readouterr().err


# -------------------------------------------------------------------- item 6: card numbers

#: case -> (card change, text the error must hold: the field, the value, what is valid)
OVERFLOWING_CARDS = {
    "low-beyond-float32": (
        _action(low=[-1e300, -2.0], high=[1e300, 2.0]),
        ["action.low[0]", "-1e+300", "float32"],
    ),
    "high-beyond-float32": (_action(high=[2.0, 1e300]), ["action.high[1]", "1e+300", "float32"]),
    "squashed-range-overflows": (
        _action(low=[-3e38, -2.0], high=[3e38, 2.0]),
        ["action.high[0] - action.low[0]", "float32"],
    ),
    "bounds-equal-in-float32": (
        _action(low=[1.0, -2.0], high=[1.0 + 1e-12, 2.0], safe_action=[1.0, 0.0]),
        ["action.low[0]", "action.high[0]", "float32"],
    ),
    "normalization-clip-beyond-float32": (
        _normalization(clip=1e300),
        ["observation.normalization.clip", "1e+300", "float32"],
    ),
    "normalization-var-overflows": (
        _normalization(var=[1e308, 1.0, 1.0], epsilon=1e308),
        ["observation.normalization.var[0]", "epsilon", "finite"],
    ),
}


@pytest.mark.parametrize("case", sorted(OVERFLOWING_CARDS))
def test_check_refuses_card_numbers_the_runtime_cannot_compute_with(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A card whose numbers overflow the runtime's float32 math is refused before anything moves."""
    change, needles = OVERFLOWING_CARDS[case]
    _edit(mlp_policy(tmp_path), change)
    with pytest.raises(CardError, match=r"^card\.json: ") as info:
        load_card(tmp_path)
    for needle in needles:
        assert needle in str(info.value)
    with pytest.raises(CardError):
        Policy(tmp_path)
    code, err = _check(tmp_path, capsys)
    assert code == 1 and err.startswith("error: card.json: ") and needles[0] in err


def test_card_safe_action_is_finite_float32_inside_the_bounds(tmp_path: Path) -> None:
    """The safe action the robot falls back on is itself a finite float32 inside the bounds."""
    _edit(mlp_policy(tmp_path), _action(safe_action=[0.0, 1e300]))
    with pytest.raises(CardError, match=r"action\.safe_action\[1\] = 1e\+300 is outside"):
        load_card(tmp_path)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_act_never_emits_a_nonfinite_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even bounds that slipped past the card check never turn into NaN commands."""
    directory = mlp_policy(tmp_path, safe_action=[0.5, -0.5])
    card = load_card(directory)
    huge = dataclasses.replace(card.action, low=(-1e300, -2.0), high=(1e300, 2.0))
    monkeypatch.setattr(
        policy_module, "load_card", lambda _: dataclasses.replace(card, action=huge)
    )
    for backend in ("onnx", "numpy"):
        policy = Policy(directory, backend=backend)
        action = policy.act(np.zeros(3, np.float32))
        assert np.isfinite(action).all(), action
        np.testing.assert_array_equal(action, [0.5, -0.5])
        assert policy.nonfinite_action_count == 1
        batch = policy.act_batch(np.zeros((4, 3), np.float32))
        assert np.isfinite(batch).all()


# ------------------------------------------------------------- item 7: shapes and masks


def _vector_card_reading(size: int) -> Callable[[dict[str, Any]], None]:
    def change(card: dict[str, Any]) -> None:
        card["observation"].update(shape=[size], frame_shape=[size])

    return change


def test_check_refuses_observation_shape_the_onnx_graph_does_not_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A card that promises the wrong observation size is a card error, not an onnxruntime trace."""
    _edit(mlp_policy(tmp_path), _vector_card_reading(4))
    with pytest.raises(CardError, match=r"^card\.json: observation\.shape \[4\]") as info:
        Policy(tmp_path)
    assert "policy.onnx" in str(info.value) and "[3]" in str(info.value)
    code, err = _check(tmp_path, capsys)
    assert code == 1 and err.startswith("error: card.json: observation.shape [4]")


def test_check_refuses_observation_rank_the_onnx_graph_does_not_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A card with an extra observation dimension is refused with both shapes named."""
    layers = mlp_weights((3, 8, 2))
    card = base_card(3, 2)
    card["observation"].update(shape=[3, 1], frame_shape=[3, 1])
    write_policy(tmp_path, mlp_model(layers, ["relu", "identity"], "tanh"), card)
    with pytest.raises(CardError, match=r"observation\.shape \[3, 1\]"):
        Policy(tmp_path)
    assert _check(tmp_path, capsys)[0] == 1


def test_observation_shape_behind_a_symbolic_dimension_is_a_card_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A graph that declares any width but needs 3 still fails at load as a card error."""
    layers = mlp_weights((3, 8, 2))
    model = mlp_model(layers, ["relu", "identity"], "tanh")
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "width"
    card = base_card(4, 2)
    write_policy(tmp_path, model, card)
    with pytest.raises(CardError, match=r"policy\.onnx fails on a zero observation") as info:
        Policy(tmp_path)
    assert "observation.shape [4]" in str(info.value)
    code, err = _check(tmp_path, capsys)
    assert code == 1 and err.startswith("error: card.json: policy.onnx fails")


def test_check_refuses_pixel_shape_the_onnx_graph_does_not_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pixel card whose frames disagree with the graph's image size is refused at load."""

    def wider_frames(card: dict[str, Any]) -> None:
        card["observation"].update(shape=[9, 4, 6], frame_shape=[3, 4, 6])

    _edit(pixel_policy(tmp_path, frame_shape=(3, 4, 5), frame_stack=3), wider_frames)
    with pytest.raises(CardError, match=r"observation\.shape \[9, 4, 6\]") as info:
        Policy(tmp_path)
    assert "[9, 4, 5]" in str(info.value)
    code, err = _check(tmp_path, capsys)
    assert code == 1 and "observation.shape [9, 4, 6]" in err


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
def test_masked_vector_observation_gets_the_safe_action(tmp_path: Path, backend: str) -> None:
    """Masked entries are missing sensor data: the robot holds still instead of using stale data."""
    policy = Policy(mlp_policy(tmp_path, safe_action=[0.25, -0.25]), backend=backend)
    data = np.array([0.3, 5.0, -0.7], np.float32)
    for masked in (
        np.ma.array(data, mask=[False, True, False]),
        np.ma.array(data.astype(np.float64), mask=[True, True, True]),
        np.ma.masked_invalid(np.array([0.3, np.nan, -0.7], np.float32)),
    ):
        action = policy.act(masked)
        assert type(action) is np.ndarray
        np.testing.assert_array_equal(action, [0.25, -0.25])
    assert policy.invalid_count == 3 and policy.nonfinite_action_count == 0
    unmasked = policy.act(np.ma.array(data, mask=False))
    assert type(unmasked) is np.ndarray
    np.testing.assert_array_equal(unmasked, policy.act(data))


def test_masked_pixel_frame_gets_the_safe_action_and_leaves_the_stack(tmp_path: Path) -> None:
    """A camera frame with masked pixels is not stacked and gets the safe action."""
    policy = Policy(pixel_policy(tmp_path, frame_shape=(1, 2, 2), frame_stack=2))
    first = policy.act(np.full((1, 2, 2), 100, np.uint8))
    mask = np.zeros((1, 2, 2), bool)
    mask[0, 0, 0] = True
    held = policy.act(np.ma.array(np.full((1, 2, 2), 200, np.uint8), mask=mask))
    np.testing.assert_array_equal(held, policy.safe_action)
    assert policy.invalid_count == 1
    np.testing.assert_allclose(policy.act(np.full((1, 2, 2), 100, np.uint8)), first)


def test_act_batch_refuses_masked_batches(tmp_path: Path) -> None:
    """Benchmarks and tests get a clear error instead of actions computed from masked data."""
    policy = Policy(mlp_policy(tmp_path))
    batch = np.ma.array(np.zeros((2, 3), np.float32), mask=[[False] * 3, [False, True, False]])
    with pytest.raises(ValueError, match="masked"):
        policy.act_batch(batch)
