"""The JSON Lines interchange format: labels in and out of a store as text a front end can write.

A human-labelling front end (or another tool) cannot write SQLite blobs, so labels travel between
it and a ``LabelStore`` as one documented, versioned text format; this module reads and writes it
and nothing else: ``export_jsonl(store, path)`` and ``import_jsonl(store, path)`` (also called as
``store.export_jsonl(path)`` / ``store.import_jsonl(path)``), with the header and line checks that
name the bad line of a file.

Interchange format (what a human-labelling front end writes)
------------------------------------------------------------
JSON Lines in UTF-8. The first line is the header::

    {"format": "sparse-rl-preferences", "version": 1, "obs_shape": [17], "act_shape": [6],
     "obs_dtype": "float32", "act_dtype": "float32", "segment_length": 50}

then one line per label, with exactly these keys::

    {"obs0": [[...], ...], "act0": [[...], ...], "obs1": [[...], ...], "act1": [[...], ...],
     "label": 1, "info": {"source": "human", "labeller": "ana"}}

- ``obs0`` / ``obs1`` are nested lists of shape ``[segment_length, *obs_shape]``, ``act0`` /
  ``act1`` of shape ``[segment_length, *act_shape]``; numbers only, no NaN or infinity.
- ``label`` is 1 if segment 1 is preferred, 0 if segment 0 is, 0.5 if they are equally good.
- ``info`` is any JSON object (true returns, mistake flag, source, env step, ...).
- Numbers are read as float64 and rounded to the float dtype of the store, so decimals a front
  end writes land on the nearest value; numbers written by ``export_jsonl`` come back bit-exact.
  Integer and bool dtypes take only values they hold exactly.
- Blank lines are skipped; any other bad line fails the whole import with its line number.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sparse_rl.agents.pbrl.labels import (
    FORMAT_NAME,
    FORMAT_VERSION,
    SEGMENT_FIELDS,
    PreferenceLabel,
    _check_version,
    _dumps,
    _Layout,
    _show,
)

if TYPE_CHECKING:
    from sparse_rl.agents.pbrl.label_store import LabelStore

HEADER_KEYS = (
    "format",
    "version",
    "obs_shape",
    "act_shape",
    "obs_dtype",
    "act_dtype",
    "segment_length",
)
LINE_KEYS = (*SEGMENT_FIELDS, "label", "info")


def export_jsonl(store: LabelStore, path: str | os.PathLike[str]) -> int:
    """Write every label of ``store`` to ``path`` in the interchange format; returns how many.

    The file appears whole or not at all: it is written and fsynced under a temporary name
    in the same folder, then renamed over ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    count = 0
    try:
        # O_EXCL: never clobber another file; mode 0o666 lets the umask decide permissions.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(descriptor, "w", encoding="utf-8", newline="\n") as file:
            header = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
            file.write(_dumps({**header, **store._layout.as_json()}) + "\n")
            for row_id, *blobs, label, info in store._select():
                line: dict[str, Any] = {
                    # tolist() gives Python floats holding the exact stored values, and
                    # JSON's shortest repr of a float64 parses back to the same float64.
                    name: store._decode(row_id, name, blob).tolist()
                    for name, blob in zip(SEGMENT_FIELDS, blobs, strict=True)
                }
                line["label"] = int(label) if float(label).is_integer() else label
                line["info"] = json.loads(info)
                file.write(_dumps(line) + "\n")
                count += 1
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_folder(target.parent)
    return count


def import_jsonl(store: LabelStore, path: str | os.PathLike[str]) -> int:
    """Append every label of an interchange file to ``store`` in one transaction; returns how many.

    The header must match the store. Any bad line raises ValueError naming the file and the
    line number, and then no label of the file is stored.
    """
    source = Path(path)
    rows = []
    header_seen = False
    with open(source, "rb") as file:
        for number, raw in enumerate(file, start=1):
            where = f"{source} line {number}"
            try:
                text = raw.decode("utf-8").removeprefix("\ufeff")
            except UnicodeDecodeError as error:
                raise ValueError(f"{where}: not UTF-8 text ({error}).") from None
            if not text.strip():
                continue
            try:
                value = json.loads(text, parse_constant=_reject_constant)
            except ValueError as error:
                raise ValueError(f"{where}: not valid JSON ({error}).") from None
            if header_seen:
                rows.append(store._row(_parse_line(store._layout, value, where), where))
            else:
                _check_header(store, value, where)
                header_seen = True
    if not header_seen:
        raise ValueError(
            f"{source} is empty; a {FORMAT_NAME} file starts with a header line "
            f"with keys {list(HEADER_KEYS)}."
        )
    return len(store._insert(rows))


def _check_header(store: LabelStore, header: object, where: str) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{where}: expected a header with format={FORMAT_NAME!r} and keys "
            f"{list(HEADER_KEYS)}, got {_short(header)}."
        )
    _check_version(header.get("version"), where)
    _check_keys(header, HEADER_KEYS, "the header", where)
    for key, expected in store._layout.as_json().items():
        given = header[key]
        if key.endswith("dtype") and isinstance(given, str):
            with contextlib.suppress(TypeError):
                given = np.dtype(given).name
        if given != expected:
            raise ValueError(
                f"{where}: the header says {key}={_show(header[key])}, but the store "
                f"{store.path} has {key}={_show(expected)}; import into a store made with "
                "the file's settings."
            )


def _parse_line(layout: _Layout, value: object, where: str) -> PreferenceLabel:
    if not isinstance(value, dict):
        raise ValueError(
            f"{where}: expected a JSON object with keys {list(LINE_KEYS)}, got {_short(value)}."
        )
    _check_keys(value, LINE_KEYS, "a label line", where)
    arrays = {name: _parse_array(layout, value[name], name, where) for name in SEGMENT_FIELDS}
    try:
        return PreferenceLabel(**arrays, label=value["label"], info=value["info"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def _parse_array(layout: _Layout, value: object, name: str, where: str) -> np.ndarray:
    """Nested lists in the store's dtype; floats round to nearest, others must be exact."""
    _, _, dtype = layout.segment(name)
    try:
        array = np.array(value)
    except ValueError as error:
        raise ValueError(f"{where}: {name} is not a rectangular array ({error}).") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{where}: {name} must be nested lists of numbers, got {_short(value)}.")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(dtype)
    if dtype.kind == "f":
        lossy = bool(np.any(np.isfinite(array) & ~np.isfinite(converted)))
    else:
        lossy = not np.array_equal(converted, array)
    if lossy:
        raise ValueError(
            f"{where}: {name} holds values that {dtype.name} cannot represent "
            "(out of range, or fractions for an integer dtype)."
        )
    return converted


def _check_keys(value: Mapping[str, Any], keys: tuple[str, ...], what: str, where: str) -> None:
    missing = [key for key in keys if key not in value]
    unknown = sorted(set(value) - set(keys))
    if missing or unknown:
        raise ValueError(
            f"{where}: {what} must have exactly the keys {list(keys)}; missing {missing}, "
            f"unknown {unknown}."
        )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number; labels must hold finite values")


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable: on POSIX a new directory entry is on disk once its folder is."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
