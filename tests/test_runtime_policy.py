"""Policy: backend parity, CSR, rescaling, normalization, frame stacking, bad input."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_fixtures import (
    DISCRETE_ACTIONS,
    base_card,
    dict_policy,
    log_model,
    mlp_model,
    mlp_policy,
    pixel_policy,
    rehash,
    scores_policy,
    write_policy,
)

from sparse_rl.runtime import CardError, CSRMatrix, Policy, csr_linear, csr_matmul

# ---------------------------------------------------------------------------------- CSR


def _check_csr(w: np.ndarray, batch: int = 4, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, w.shape[1])).astype(np.float32)
    b = rng.normal(size=w.shape[0]).astype(np.float32)
    csr = CSRMatrix.from_dense(w)
    assert csr.nnz == np.count_nonzero(w)
    np.testing.assert_array_equal(csr.to_dense(), w)
    expected = x.astype(np.float64) @ w.T.astype(np.float64) + b
    np.testing.assert_allclose(csr_linear(x, csr, b), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(csr_matmul(x, csr), expected - b, rtol=1e-5, atol=1e-5)


@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    density=st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_csr_equals_dense(rows: int, cols: int, density: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(rows, cols)) * (rng.random((rows, cols)) < density)).astype(np.float32)
    _check_csr(w, seed=seed)


@pytest.mark.parametrize(
    "case", ["empty-rows-inside", "empty-first-last", "all-empty", "dense", "99%-sparse"]
)
def test_csr_edge_cases(case: str) -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(64, 48)).astype(np.float32)
    if case == "empty-rows-inside":
        w[[3, 4, 5, 30]] = 0.0
    elif case == "empty-first-last":
        w[[0, 1, -1]] = 0.0
    elif case == "all-empty":
        w[:] = 0.0
    elif case == "99%-sparse":
        w *= rng.random(w.shape) < 0.01
        w[:10] = 0.0
    _check_csr(w)
    assert CSRMatrix.from_dense(w).density == pytest.approx(np.count_nonzero(w) / w.size)


def test_csr_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError, match="matrix expects"):
        csr_matmul(np.zeros((2, 3), np.float32), CSRMatrix.from_dense(np.ones((4, 5))))


# ---------------------------------------------------------------------------------- backends


def _obs(n: int, size: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, (n, size)).astype(np.float32)


@pytest.mark.parametrize("output", ["squashed", "raw"])
def test_onnx_and_numpy_backends_agree(tmp_path: Path, output: str) -> None:
    norm = {"mean": [0.5, -1.0, 0.0], "var": [2.0, 0.5, 1.0], "epsilon": 1e-8, "clip": 3.0}
    mlp_policy(tmp_path, output=output, normalization=norm, density=0.5)
    onnx_policy, numpy_policy = Policy(tmp_path), Policy(tmp_path, backend="numpy")
    obs = _obs(64)
    np.testing.assert_allclose(onnx_policy.act_batch(obs), numpy_policy.act_batch(obs), atol=1e-5)
    for o in obs[:5]:
        np.testing.assert_allclose(onnx_policy.act(o), numpy_policy.act(o), atol=1e-5)


def test_numpy_backend_picks_csr_for_wide_sparse_layers(tmp_path: Path) -> None:
    mlp_policy(tmp_path, sizes=(3, 520, 520, 2), density=0.03, empty_rows=7)
    policy = Policy(tmp_path, backend="numpy")
    assert policy.csr_layers == (1,)  # layer 0 and 2 are too narrow (3 in, 2 out)
    assert Policy(tmp_path).csr_layers == ()
    dense = Policy(tmp_path, backend="numpy", csr_max_density=0.0)
    assert dense.csr_layers == ()
    obs = _obs(16)
    np.testing.assert_allclose(policy.act_batch(obs), dense.act_batch(obs), atol=1e-5)
    np.testing.assert_allclose(policy.act_batch(obs), Policy(tmp_path).act_batch(obs), atol=1e-5)


def test_every_layer_in_csr_matches_onnx(tmp_path: Path) -> None:
    mlp_policy(tmp_path, sizes=(3, 32, 32, 2), density=0.2, output="raw")
    policy = Policy(tmp_path, backend="numpy", csr_max_density=1.0, csr_min_width=1)
    assert policy.csr_layers == (0, 1, 2)
    obs = _obs(32)
    np.testing.assert_allclose(policy.act_batch(obs), Policy(tmp_path).act_batch(obs), atol=1e-5)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        Policy(".", backend="torch")


def test_npz_is_never_unpickled(tmp_path: Path) -> None:
    mlp_policy(tmp_path)
    arrays = dict(np.load(tmp_path / "policy_mlp.npz"))
    arrays["w0"] = np.array([object()], dtype=object)
    np.savez(tmp_path / "policy_mlp.npz", **arrays)
    rehash(tmp_path)  # a card that vouches for the file: only the pickle ban can stop it
    with pytest.raises(CardError, match=r"policy_mlp\.npz: not a plain numpy \.npz file"):
        Policy(tmp_path, backend="numpy")


# ---------------------------------------------------------------------------------- actions


def _identity_policy(directory: Path, **action: Any) -> Policy:
    """A policy whose model output is its (normalized) observation, to test the runtime math."""
    size = len(action.get("low", [0, 0]))
    layers = [(np.eye(size, dtype=np.float32), np.zeros(size, np.float32))]
    card = base_card(size, size)
    normalization = action.pop("normalization", None)
    card["observation"]["normalization"] = normalization
    card["action"].update(action)
    write_policy(directory, mlp_model(layers, ["identity"], "identity"), card)
    return Policy(directory)


def test_squashed_outputs_are_rescaled_and_clipped(tmp_path: Path) -> None:
    policy = _identity_policy(
        tmp_path, low=[-2.0, 0.0], high=[2.0, 10.0], output="squashed", safe_action=[0.0, 0.0]
    )
    np.testing.assert_allclose(policy.act(np.array([0.5, -1.0], np.float32)), [1.0, 0.0])
    np.testing.assert_allclose(policy.act(np.array([-1.0, 0.0], np.float32)), [-2.0, 5.0])
    np.testing.assert_allclose(policy.act(np.array([1.5, 3.0], np.float32)), [2.0, 10.0])
    action = policy.act(np.array([0.0, 0.0], np.float32))
    assert action.dtype == np.float32 and action.shape == (2,)


def test_raw_outputs_are_clipped(tmp_path: Path) -> None:
    policy = _identity_policy(
        tmp_path, low=[-2.0, 0.0], high=[2.0, 10.0], output="raw", safe_action=[0.0, 0.0]
    )
    np.testing.assert_allclose(policy.act(np.array([0.5, 7.0], np.float32)), [0.5, 7.0])
    np.testing.assert_allclose(policy.act(np.array([-9.0, 11.0], np.float32)), [-2.0, 10.0])


def test_observation_normalization(tmp_path: Path) -> None:
    mean, var, eps, clip = [1.0, -2.0, 0.0], [4.0, 0.25, 0.0], 1e-8, 5.0
    normalization = {"mean": mean, "var": var, "epsilon": eps, "clip": clip}
    policy = _identity_policy(
        tmp_path,
        low=[-100.0] * 3,
        high=[100.0] * 3,
        output="raw",
        safe_action=[0.0] * 3,
        normalization=normalization,
    )
    obs = np.array([3.0, -1.0, 1e-3], np.float64)
    expected = np.clip((obs - mean) / np.sqrt(np.array(var) + eps), -clip, clip)
    np.testing.assert_allclose(policy.act(obs), expected, rtol=1e-6)
    assert expected[2] == clip  # the zero-variance element is clipped, not infinite
    np.testing.assert_allclose(policy.act_batch(obs[None]), expected[None], rtol=1e-6)


def test_nonfinite_model_output_gets_the_safe_action(tmp_path: Path) -> None:
    card = base_card(2, 2)
    card["action"].update(output="raw", safe_action=[0.5, -0.5])
    write_policy(tmp_path, log_model(2), card)
    policy = Policy(tmp_path)
    np.testing.assert_allclose(policy.act(np.array([1.0, 1.0], np.float32)), [0.0, 0.0])
    np.testing.assert_array_equal(policy.act(np.array([-1.0, 1.0], np.float32)), [0.5, -0.5])
    np.testing.assert_array_equal(policy.act(np.array([0.0, 1.0], np.float32)), [0.5, -0.5])
    assert policy.nonfinite_action_count == 2 and policy.invalid_count == 0
    batch = policy.act_batch(np.array([[1.0, 1.0], [-1.0, 1.0]], np.float32))
    np.testing.assert_allclose(batch, [[0.0, 0.0], [0.5, -0.5]])
    assert policy.nonfinite_action_count == 3


BAD_VECTORS = {
    "nan": np.array([0.0, np.nan, 0.0], np.float32),
    "inf": np.array([0.0, 0.0, -np.inf], np.float64),
    "beyond-float32": np.array([0.0, 1e39, 0.0], np.float64),
    "short": np.zeros(2, np.float32),
    "batched": np.zeros((1, 3), np.float32),
    "scalar": np.float32(1.0),
    "int-dtype": np.zeros(3, np.int64),
    "object-dtype": np.array([0.0, 1.0, None], dtype=object),
    "none": None,
    "list": [0.0, 0.0, 0.0],
    "string": "obs",
}


@pytest.mark.parametrize("case", sorted(BAD_VECTORS))
def test_invalid_vector_observation_gets_the_safe_action(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    mlp_policy(tmp_path, safe_action=[0.25, -0.25])
    policy = Policy(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sparse_rl.runtime"):
        action = policy.act(BAD_VECTORS[case])
    np.testing.assert_array_equal(action, [0.25, -0.25])
    assert action.dtype == np.float32
    assert policy.invalid_count == 1 and policy.nonfinite_action_count == 0
    assert "invalid observation" in caplog.text
    action[:] = 9.0  # the caller owns the returned array
    np.testing.assert_array_equal(policy.safe_action, [0.25, -0.25])
    assert policy.act(np.zeros(3, np.float64)).shape == (2,)  # float64 is fine
    assert policy.invalid_count == 1


def test_invalid_warnings_are_rate_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = Policy(mlp_policy(tmp_path))
    with caplog.at_level(logging.WARNING, logger="sparse_rl.runtime"):
        for _ in range(200):
            policy.act(None)
    assert policy.invalid_count == 200
    assert len(caplog.records) == 5 + 2  # the first five, then the 100th and the 200th


def test_act_batch_rejects_bad_batches(tmp_path: Path) -> None:
    policy = Policy(mlp_policy(tmp_path))
    for bad in (np.zeros(3, np.float32), np.zeros((2, 4), np.float32), [[0.0] * 3]):
        with pytest.raises(ValueError, match="observations"):
            policy.act_batch(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN or inf"):
        policy.act_batch(np.full((2, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="floating point"):
        policy.act_batch(np.zeros((2, 3), np.int32))


def test_latency_is_recorded(tmp_path: Path) -> None:
    policy = Policy(mlp_policy(tmp_path))
    for o in _obs(20):
        policy.act(o)
    policy.act(None)
    assert policy.latency.count == 21
    assert policy.latency.p50_ms is not None and policy.latency.p50_ms > 0
    assert policy.latency.p99_ms is not None and policy.latency.p99_ms >= policy.latency.p50_ms


# ---------------------------------------------------------------------------------- pixels


def _frame(t: int, shape: tuple[int, int, int] = (3, 4, 5)) -> np.ndarray:
    """A frame whose channel ``c`` is the constant ``10 * t + c``."""
    values = 10 * t + np.arange(shape[0], dtype=np.uint8)
    return np.broadcast_to(values[:, None, None], shape).astype(np.uint8)


def _stack_of(policy: Policy, frame: Any) -> np.ndarray:
    """The per-channel means the pixel fixture returns, i.e. its frame stack, as ints."""
    return np.rint(policy.act(frame) * 255.0).astype(int)


def test_frame_stack_fills_on_reset_and_rolls_oldest_first(tmp_path: Path) -> None:
    policy = Policy(pixel_policy(tmp_path, frame_shape=(3, 4, 5), frame_stack=3))
    f = [_frame(t).astype(int)[:, 0, 0] for t in range(6)]
    np.testing.assert_array_equal(_stack_of(policy, _frame(1)), np.concatenate([f[1]] * 3))
    np.testing.assert_array_equal(_stack_of(policy, _frame(2)), np.concatenate([f[1], f[1], f[2]]))
    np.testing.assert_array_equal(_stack_of(policy, _frame(3)), np.concatenate([f[1], f[2], f[3]]))
    np.testing.assert_array_equal(_stack_of(policy, _frame(4)), np.concatenate([f[2], f[3], f[4]]))
    policy.reset()
    np.testing.assert_array_equal(_stack_of(policy, _frame(5)), np.concatenate([f[5]] * 3))


BAD_FRAMES = {
    "float-dtype": _frame(9).astype(np.float32),
    "channels-last": np.ascontiguousarray(_frame(9).transpose(1, 2, 0)),
    "stacked": np.concatenate([_frame(9)] * 3),
    "none": None,
    "list": _frame(9).tolist(),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_invalid_frame_leaves_the_stack_alone(tmp_path: Path, case: str) -> None:
    policy = Policy(pixel_policy(tmp_path, frame_shape=(3, 4, 5), frame_stack=3))
    f = [_frame(t).astype(int)[:, 0, 0] for t in range(4)]
    _stack_of(policy, _frame(1))
    _stack_of(policy, _frame(2))
    np.testing.assert_array_equal(policy.act(BAD_FRAMES[case]), [-1.0] * 9)
    assert policy.invalid_count == 1
    np.testing.assert_array_equal(_stack_of(policy, _frame(3)), np.concatenate([f[1], f[2], f[3]]))


def test_invalid_first_frame_keeps_the_stack_empty(tmp_path: Path) -> None:
    policy = Policy(pixel_policy(tmp_path, frame_shape=(3, 4, 5), frame_stack=2))
    policy.act(np.zeros((3, 4, 5), np.float32))
    f2 = _frame(2).astype(int)[:, 0, 0]
    np.testing.assert_array_equal(_stack_of(policy, _frame(2)), np.concatenate([f2, f2]))


def test_pixel_batch_mode_takes_stacked_observations(tmp_path: Path) -> None:
    stepped = Policy(pixel_policy(tmp_path))
    frames = [_frame(i) for i in range(3)]
    for frame in frames:
        action = stepped.act(frame)
    batch = Policy(pixel_policy(tmp_path)).act_batch(np.concatenate(frames)[None])
    np.testing.assert_array_equal(batch[0], action)
    with pytest.raises(ValueError, match="must be uint8"):
        Policy(pixel_policy(tmp_path)).act_batch(np.zeros((1, 9, 4, 5), np.float32))


# ---------------------------------------------------------------------- discrete actions


def _scores(*rows: list[float]) -> np.ndarray:
    return np.array(rows, np.float32)


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
def test_discrete_actions_are_the_argmax(tmp_path: Path, backend: str) -> None:
    for kind in ("discrete", "q_values"):
        policy = Policy(scores_policy(tmp_path / kind, DISCRETE_ACTIONS[kind]), backend=backend)
        action = policy.act(np.array([0.1, 2.0, -1.0, 0.5, 2.0], np.float32))
        assert type(action) is np.int64 and action == 1  # the first of equal maxima
        batch = policy.act_batch(_scores([3, 0, 0, 0, 0], [0, 0, 0, 0, 9]))
        assert batch.dtype == np.int64
        np.testing.assert_array_equal(batch, [0, 4])


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
def test_multi_discrete_actions_are_the_argmax_per_branch(tmp_path: Path, backend: str) -> None:
    policy = Policy(scores_policy(tmp_path, DISCRETE_ACTIONS["multi_discrete"]), backend=backend)
    action = policy.act(np.array([0.1, 0.2, 5.0, -1.0, 4.0], np.float32))
    assert action.dtype == np.int64
    np.testing.assert_array_equal(action, [1, 0])
    batch = policy.act_batch(_scores([1, 0, 0, 0, 1], [0, 1, 0, 1, 0]))
    np.testing.assert_array_equal(batch, [[0, 2], [1, 1]])


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
def test_multi_binary_actions_round_the_probability(tmp_path: Path, backend: str) -> None:
    policy = Policy(scores_policy(tmp_path, DISCRETE_ACTIONS["multi_binary"]), backend=backend)
    # SB3 takes round(sigmoid(logit)): a logit too small to move float32's sigmoid off 0.5 is 0
    action = policy.act(np.array([2.0, -3.0, 1e-3, 4e-8, 0.0], np.float32))
    assert action.dtype == np.int8
    np.testing.assert_array_equal(action, [1, 0, 1, 0, 0])
    assert policy.act_batch(_scores([-50, 50, 1e30, -1e30, 1])).tolist() == [[0, 1, 1, 0, 1]]


def test_softmax_ties_resolve_as_sb3(tmp_path: Path) -> None:
    """Logits a hair apart give equal float32 probabilities: SB3 takes the first of them;
    Q-values are compared as they are."""
    row = np.array([0.0, 1e-8, -5.0, -5.0, -5.0], np.float32)
    logits = Policy(scores_policy(tmp_path / "l", DISCRETE_ACTIONS["discrete"]))
    q_values = Policy(scores_policy(tmp_path / "q", DISCRETE_ACTIONS["q_values"]))
    assert logits.act(row) == 0 and q_values.act(row) == 1


@pytest.mark.parametrize("kind", sorted(DISCRETE_ACTIONS))
def test_discrete_safe_action_for_invalid_input_and_nonfinite_scores(
    tmp_path: Path, kind: str
) -> None:
    policy = Policy(scores_policy(tmp_path, DISCRETE_ACTIONS[kind]))
    safe = policy.safe_action
    expected = DISCRETE_ACTIONS[kind]["safe_action"]
    np.testing.assert_array_equal(safe, expected)
    for bad in (None, np.full(5, np.nan, np.float32), np.zeros(4, np.float32)):
        action = policy.act(bad)
        assert type(action) is type(safe) and action.dtype == safe.dtype
        np.testing.assert_array_equal(action, expected)
    assert policy.invalid_count == 3 and policy.nonfinite_action_count == 0

    card = base_card(5, 5)
    card["action"] = DISCRETE_ACTIONS[kind]
    logs = Policy(write_policy(tmp_path / "log", log_model(5), card))  # log(-1) is NaN
    np.testing.assert_array_equal(logs.act(np.array([1, -1, 1, 1, 1], np.float32)), expected)
    batch = logs.act_batch(_scores([1, 2, 1, 1, 1], [1, 1, 0, 1, 1]))
    assert np.array_equal(batch[1], expected) and not np.array_equal(batch[0], expected)
    assert logs.nonfinite_action_count == 2 and logs.invalid_count == 0


# ---------------------------------------------------------------------- dict observations


def _dict_obs(vec: Any = (0.5, -1.0, 2.0), img: int = 51) -> dict[str, Any]:
    return {"vec": np.array(vec, np.float64), "img": np.full((1, 2, 2), img, np.uint8)}


def test_dict_observation_feeds_each_entry(tmp_path: Path) -> None:
    policy = Policy(dict_policy(tmp_path))
    np.testing.assert_allclose(policy.act(_dict_obs()), [0.5, -1.0, 2.0, 0.2], rtol=1e-6)
    batch = {"vec": np.zeros((2, 3), np.float32), "img": np.full((2, 1, 2, 2), 255, np.uint8)}
    np.testing.assert_allclose(policy.act_batch(batch), [[0, 0, 0, 1]] * 2)
    zero = policy.zero_observation()
    assert set(zero) == {"vec", "img"} and zero["img"].dtype == np.uint8
    assert policy.invalid_count == 0


def _masked_img() -> dict[str, Any]:
    obs = _dict_obs()
    obs["img"] = np.ma.array(obs["img"], mask=[[[True, False], [False, False]]])
    return obs


BAD_DICTS = {
    "none": lambda: None,
    "array": lambda: np.zeros(3, np.float32),
    "missing-key": lambda: {"vec": _dict_obs()["vec"]},
    "extra-key": lambda: {**_dict_obs(), "depth": np.zeros(1)},
    "vec-nan": lambda: _dict_obs(vec=(0.0, np.nan, 0.0)),
    "vec-shape": lambda: _dict_obs(vec=(0.0, 0.0)),
    "vec-int": lambda: {**_dict_obs(), "vec": np.zeros(3, np.int64)},
    "vec-list": lambda: {**_dict_obs(), "vec": [0.0, 0.0, 0.0]},
    "img-float": lambda: {**_dict_obs(), "img": np.zeros((1, 2, 2), np.float32)},
    "img-batched": lambda: {**_dict_obs(), "img": np.zeros((1, 1, 2, 2), np.uint8)},
    "img-masked": _masked_img,
}


@pytest.mark.parametrize("case", sorted(BAD_DICTS))
def test_invalid_dict_observation_gets_the_safe_action(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    policy = Policy(dict_policy(tmp_path))
    with caplog.at_level(logging.WARNING, logger="sparse_rl.runtime"):
        action = policy.act(BAD_DICTS[case]())
    np.testing.assert_array_equal(action, [-1.0] * 4)
    assert policy.invalid_count == 1 and "invalid observation" in caplog.text


def test_act_batch_rejects_bad_dict_batches(tmp_path: Path) -> None:
    policy = Policy(dict_policy(tmp_path))
    good = {"vec": np.zeros((2, 3), np.float32), "img": np.zeros((2, 1, 2, 2), np.uint8)}
    for bad, message in (
        ({**good, "vec": np.zeros((3, 3), np.float32)}, "different batch sizes"),
        ({**good, "img": np.zeros((1, 2, 2), np.uint8)}, r"'img': shape \(1, 2, 2\)"),
        (np.zeros((2, 3), np.float32), "expected a dict of arrays"),
    ):
        with pytest.raises(ValueError, match=message):
            policy.act_batch(bad)
