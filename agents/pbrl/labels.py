"""What one preference label is, checked the moment it is made, before any store sees it.

A teacher's answer is worth keeping only if it is well formed, so the label types live apart from
where labels are kept: ``PreferenceLabel`` (one answer, its arrays copied, read-only and finite),
``LabelBatch`` (labels stacked for a reward model), ``SessionRecord`` (one feedback session) and
``LabelStoreError``, with the format name and version and the layout (shapes, dtypes, segment
length) that the SQLite store (``label_store``) and the JSON Lines interchange format
(``label_jsonl``) share. This module imports neither of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

#: Name and version written in a store's metadata and in the header of an interchange file.
FORMAT_NAME = "sparse-rl-preferences"
FORMAT_VERSION = 1
#: 0.0: segment 0 preferred, 1.0: segment 1 preferred, 0.5: equally good.
LABEL_VALUES = (0.0, 0.5, 1.0)
SEGMENT_FIELDS = ("obs0", "act0", "obs1", "act1")


class LabelStoreError(ValueError):
    """A label store that cannot be used as it is: not a store, or missing or changed labels.

    A ValueError, so code that caught a bad store before still does; catch this class to tell
    label trouble from other bad values.
    """


class SessionRecord(NamedTuple):
    """One feedback session as the store recorded it (see ``LabelStore.record_session``)."""

    step: int
    asked: int
    labels: int


@dataclass(frozen=True, eq=False)
class PreferenceLabel:
    """One teacher answer: which of two segments is better.

    Arrays are copied and made read-only, so a replay buffer that later overwrites the slots a
    segment came from cannot change the label; ``info`` is kept as its JSON form (numpy scalars
    become numbers, tuples lists). Equality is identity (arrays have no single truth value).

    :param obs0: observations of segment 0, shape (T, *obs_shape).
    :param act0: actions of segment 0, shape (T, *act_shape).
    :param obs1: observations of segment 1, same shape as ``obs0``.
    :param act1: actions of segment 1, same shape as ``act0``.
    :param label: 1.0 if segment 1 is preferred, 0.0 if segment 0 is, 0.5 if equally good.
    :param info: JSON-serialisable teacher info: true returns, mistake flag, source
        ("simulated" / "human"), env step, ...
    """

    obs0: np.ndarray
    act0: np.ndarray
    obs1: np.ndarray
    act1: np.ndarray
    label: float
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in SEGMENT_FIELDS:
            object.__setattr__(self, name, _frozen_array(name, getattr(self, name)))
        if self.obs0.ndim == 0 or self.obs0.shape[0] == 0:
            raise ValueError(
                f"obs0 must have shape (T, *obs_shape) with T >= 1 steps, got {self.obs0.shape}."
            )
        steps = self.obs0.shape[0]
        if self.obs1.shape != self.obs0.shape:
            raise ValueError(
                f"obs1 has shape {self.obs1.shape} but obs0 has {self.obs0.shape}; "
                "both segments must have the same shape."
            )
        if self.act0.ndim == 0 or self.act0.shape[0] != steps:
            raise ValueError(
                f"act0 has shape {self.act0.shape} but obs0 has {steps} steps; "
                "act0 must have shape (T, *act_shape)."
            )
        if self.act1.shape != self.act0.shape:
            raise ValueError(
                f"act1 has shape {self.act1.shape} but act0 has {self.act0.shape}; "
                "both segments must have the same shape."
            )
        label = self.label
        if isinstance(label, (bool, np.bool_)) or not isinstance(
            label, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"label must be a number in {list(LABEL_VALUES)}, got {label!r}.")
        if float(label) not in LABEL_VALUES:
            raise ValueError(
                f"label must be one of {list(LABEL_VALUES)} (1.0: segment 1 preferred, "
                f"0.0: segment 0 preferred, 0.5: equally good), got {label!r}."
            )
        object.__setattr__(self, "label", float(label))
        if not isinstance(self.info, Mapping):
            raise TypeError(f"info must be a dict, got {type(self.info).__name__}.")
        object.__setattr__(self, "info", _to_json(self.info, "info"))


@dataclass(eq=False)
class LabelBatch:
    """Labels stacked for a reward model; every array leads with the label axis N.

    :param obs0: (N, T, *obs_shape) observations of segment 0 (``obs1`` likewise).
    :param act0: (N, T, *act_shape) actions of segment 0 (``act1`` likewise).
    :param labels: (N,) float32; 1.0 means segment 1 is preferred.
    :param infos: the N teacher info dicts.
    :param ids: (N,) int64 store ids, in append order.
    """

    obs0: np.ndarray
    act0: np.ndarray
    obs1: np.ndarray
    act1: np.ndarray
    labels: np.ndarray
    infos: list[dict[str, Any]]
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class _Layout:
    """What every label of a store shares, in the order the header and metadata list it."""

    obs_shape: tuple[int, ...]
    act_shape: tuple[int, ...]
    obs_dtype: str
    act_dtype: str
    segment_length: int

    def as_json(self) -> dict[str, Any]:
        return {
            "obs_shape": list(self.obs_shape),
            "act_shape": list(self.act_shape),
            "obs_dtype": self.obs_dtype,
            "act_dtype": self.act_dtype,
            "segment_length": self.segment_length,
        }

    def segment(self, name: str) -> tuple[str, tuple[int, ...], np.dtype]:
        """("obs" or "act", full segment shape, dtype) of one of ``SEGMENT_FIELDS``."""
        kind = name[:3]
        step_shape = self.obs_shape if kind == "obs" else self.act_shape
        dtype = self.obs_dtype if kind == "obs" else self.act_dtype
        return kind, (self.segment_length, *step_shape), np.dtype(dtype)


def _frozen_array(name: str, value: object) -> np.ndarray:
    """A read-only copy of ``value``, which must hold finite numbers."""
    try:
        array = np.array(value, copy=True)
    except ValueError as error:
        raise ValueError(f"{name} is not a rectangular array ({error}).") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (bool, int or float), got dtype {array.dtype}.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(
            f"{name} holds {array[index]} at index {index}; labels must hold finite values."
        )
    array.setflags(write=False)
    return array


def _to_json(value: object, where: str) -> Any:
    """``value`` as plain JSON types; numpy scalars and arrays become numbers and lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; JSON holds no NaN or infinity.")
        return float(value)
    if isinstance(value, np.ndarray):
        return _to_json(value.tolist(), where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has key {key!r}; JSON object keys must be strings.")
            out[key] = _to_json(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where} is a {type(value).__name__}, which JSON cannot hold; use numbers, strings, "
        "bools, None, lists and dicts."
    )


def _check_version(version: object, where: str) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{where}: version must be an int >= 1, got {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{where}: written in {FORMAT_NAME} version {version}, newer than version "
            f"{FORMAT_VERSION} that this sparse-rl reads; upgrade sparse-rl to read it."
        )


def _dumps(value: object) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _show(value: object) -> str:
    """JSON shapes as the tuples users pass."""
    return repr(tuple(value)) if isinstance(value, list) else repr(value)
