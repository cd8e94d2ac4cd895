"""Data-only reading and writing of what a run saves: no file the command line reads runs code.

SB3's ``load`` unpickles the ``data`` entry of ``model.zip`` (classes, spaces, schedules) and
``load_replay_buffer`` unpickles the buffer, so a run directory received from someone else could
run their code. The command line never calls either. Instead:

- **model**: the model is rebuilt from the run's ``config.yaml`` (read with ``yaml.safe_load``
  rules) and only the weights are taken from ``model.zip``: its ``.pth`` entries through
  ``torch.load(weights_only=True)`` and four training counters from its ``data`` JSON, whose
  pickled entries are never decoded. ``model.zip`` stays SB3's format, loadable by ``load``.
- **replay buffer**: every array of the buffer, and ``pos`` / ``full``, in an ``.npz`` read with
  ``allow_pickle=False`` into the freshly built buffer (shapes and dtypes must match).
- **random states**: JSON.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.save_util import load_from_zip_file


class UnsafeStateError(ValueError):
    """A saved file that does not hold what a model or buffer of this run can take."""


#: Training counters restored from ``model.zip``'s ``data`` (everything else comes from the config).
COUNTERS: dict[str, type] = {
    "num_timesteps": int,
    "_n_updates": int,
    "_episode_num": int,
    "_current_progress_remaining": float,
}


# -- model ---------------------------------------------------------------------------------------


def read_counters(path: str | Path) -> dict[str, int | float]:
    """The :data:`COUNTERS` in ``model.zip``'s ``data`` entry (plain JSON values only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode())
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, ValueError) as error:
        raise UnsafeStateError(f"{path}: no readable 'data' entry ({error})") from None
    if not isinstance(data, dict):
        raise UnsafeStateError(f"{path}: 'data' is not a JSON object")
    counters: dict[str, int | float] = {}
    for name, kind in COUNTERS.items():
        value = data.get(name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or (kind is int and not isinstance(value, int)) or not np.isfinite(value):
            raise UnsafeStateError(f"{path}: {name}={value!r} is not a finite {kind.__name__}")
        # SB3's remaining progress dips below 0 when a rollout ends past the step budget (DQN's
        # train_freq of 256 on a budget that is not a multiple); the counts never do.
        if value < 0 and name != "_current_progress_remaining":
            raise UnsafeStateError(f"{path}: {name}={value!r} is negative")
        counters[name] = kind(value)
    return counters


def restore_model(model: Any, path: str | Path) -> None:
    """Load the weights, optimizer states and counters saved in ``path`` into ``model``.

    ``model`` is a fresh model of the same config: every state dict it expects must be in the file
    and nothing else (names are checked before any attribute is looked up).
    """
    counters = read_counters(path)
    try:
        _, params, variables = load_from_zip_file(path, device=model.device, load_data=False)
    except Exception as error:  # torch's weights-only unpickler refuses anything but tensors
        raise UnsafeStateError(f"{path}: the weights cannot be read safely ({error})") from None
    expected, tensor_names = model._get_torch_save_params()
    if set(params) != set(expected):
        missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
        raise UnsafeStateError(
            f"{path}: its state dicts do not match this run's model (missing {missing}, "
            f"unexpected {extra}); was it saved by another config?"
        )
    for name, value in counters.items():  # first: loading the loop state may read them
        setattr(model, name, value)
    from sparse_rl.agents import LabelStoreError

    try:
        model.set_parameters(params, exact_match=True, device=model.device)
    except LabelStoreError:
        raise  # lost labels are not a damaged checkpoint: an older one must not hide them
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise UnsafeStateError(
            f"{path}: the weights do not fit this run's model ({error})"
        ) from None
    for name in tensor_names:
        saved = (variables or {}).get(name)
        current = _attribute(model, name)
        if not isinstance(saved, torch.Tensor) or saved.shape != current.shape:
            raise UnsafeStateError(f"{path}: tensor {name} is missing or has the wrong shape")
        with torch.no_grad():
            current.copy_(saved)


def _attribute(model: Any, dotted: str) -> Any:
    obj = model
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


# -- replay buffer -------------------------------------------------------------------------------


def _buffer_arrays(buffer: Any) -> dict[str, np.ndarray]:
    """Every array attribute of ``buffer`` (dicts of arrays as ``name.key``)."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in vars(buffer).items():
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif (
            isinstance(value, Mapping)
            and value
            and all(isinstance(v, np.ndarray) for v in value.values())
        ):
            arrays.update({f"{name}.{key}": v for key, v in value.items()})
    return arrays


def save_buffer(buffer: Any, path: str | Path) -> None:
    """Write the buffer's arrays and position as an ``.npz`` (no object arrays)."""
    arrays = _buffer_arrays(buffer)
    for name, array in arrays.items():
        if array.dtype == object:
            raise TypeError(f"replay buffer array {name} holds Python objects; cannot save it")
    with Path(path).open("wb") as f:
        np.savez(f, **arrays, pos=np.int64(buffer.pos), full=np.bool_(buffer.full))


def load_buffer(buffer: Any, path: str | Path) -> None:
    """Fill the freshly built ``buffer`` from :func:`save_buffer`'s file, in place."""
    arrays = _buffer_arrays(buffer)
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if names != set(arrays) | {"pos", "full"}:
                missing = sorted(set(arrays) | {"pos", "full"} - names)
                raise UnsafeStateError(
                    f"{path}: arrays {sorted(names - set(arrays) - {'pos', 'full'})} are not "
                    f"in this run's buffer, or {missing} are missing"
                )
            for name, current in arrays.items():
                saved = npz[name]
                if saved.shape != current.shape or saved.dtype != current.dtype:
                    raise UnsafeStateError(
                        f"{path}: {name} is {saved.dtype}{list(saved.shape)}, this run's buffer "
                        f"has {current.dtype}{list(current.shape)}"
                    )
                current[...] = saved
            pos, full = npz["pos"], npz["full"]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, UnsafeStateError):
            raise
        raise UnsafeStateError(f"{path}: not a readable replay buffer ({error})") from None
    if pos.shape or full.shape or not 0 <= int(pos) < buffer.buffer_size:
        raise UnsafeStateError(f"{path}: pos={pos} is outside 0..{buffer.buffer_size - 1}")
    buffer.pos, buffer.full = int(pos), bool(full)


# -- random states -------------------------------------------------------------------------------


def rng_state(model: Any) -> dict[str, Any]:
    """Random states a resumed run continues from, as plain JSON data."""
    version, internal, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "key": numpy["state"]["key"].tolist(),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": bytes(torch.get_rng_state().tolist()).hex(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }
    if torch.cuda.is_available():
        state["cuda"] = [bytes(s.tolist()).hex() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(model: Any, state: Mapping[str, Any]) -> None:
    """Set the random states of :func:`rng_state` (bad values raise :class:`UnsafeStateError`)."""
    try:
        version, internal, gauss = state["python"]
        random.setstate((int(version), tuple(int(v) for v in internal), gauss))
        numpy = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": "MT19937",
                "state": {"key": np.asarray(numpy["key"], dtype=np.uint32), "pos": numpy["pos"]},
                "has_gauss": int(numpy["has_gauss"]),
                "gauss": float(numpy["gauss"]),
            }
        )
        torch.set_rng_state(_byte_tensor(state["torch"]))
        model.action_space.np_random.bit_generator.state = state["action_space"]
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([_byte_tensor(s) for s in state["cuda"]])
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise UnsafeStateError(f"random states are not valid ({error!r})") from None


def _byte_tensor(text: str) -> torch.Tensor:
    return torch.tensor(list(bytes.fromhex(text)), dtype=torch.uint8)
