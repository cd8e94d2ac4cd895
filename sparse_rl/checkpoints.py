"""Atomic, verified checkpoints of an SB3 model: a kill at any moment leaves a loadable one.

Layout of a checkpoint directory (``RUN_DIR/checkpoints``)::

    step-<N>/model.zip           model.save: weights, masks, optimizers, sparsity state
    step-<N>/replay_buffer.npz   the replay buffer's arrays (off-policy algorithms only)
    step-<N>/rng.json            random states SB3 does not save (python, numpy, torch, spaces)
    step-<N>/meta.json           step, time, the resolved config and the sha256 of every file
                                 above; written last
    LATEST                       the name of the newest complete checkpoint (for readers)

Nothing in a checkpoint is unpickled when it is read (:mod:`sparse_rl.safe_io`): the model is
rebuilt from the config and takes only weights and counters from ``model.zip``. Version-1
checkpoints (``replay_buffer.pkl``, ``rng.pkl``, sparse-rl before 0.2) still give their weights to
``eval`` and ``export`` but are never resumed from.

Writing: every file goes into ``.tmp-<N>/`` and is fsynced, then ``meta.json``, then the
directory; one ``os.rename`` makes it ``step-<N>/`` and ``LATEST`` is replaced atomically (temp
file, fsync, ``os.replace``). Only the newest ``keep`` complete checkpoints stay.

Reading: checkpoints are tried newest step first; one whose ``meta.json`` is missing or whose
files do not match their hashes is skipped with a logged warning naming it and the reason, and the
next older one is used. ``.tmp-*`` directories are unfinished writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparse_rl import __version__
from sparse_rl.safe_io import rng_state, save_buffer

log = logging.getLogger(__name__)

FORMAT = "sparse-rl-checkpoint"
VERSION = 2
MODEL, REPLAY_BUFFER, RNG, META, LATEST = (
    "model.zip",
    "replay_buffer.npz",
    "rng.json",
    "meta.json",
    "LATEST",
)
_HEX = re.compile(r"^[0-9a-f]{64}$")
_STEP_DIR = re.compile(r"^step-(\d+)$")
_TMP_PREFIX = ".tmp-"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class Checkpoint:
    """One complete, verified checkpoint."""

    path: Path
    step: int
    meta: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    @property
    def resumable(self) -> bool:
        """Whether its buffer and random states are data-only (version 2): it can be resumed."""
        return self.meta.get("version") == VERSION and RNG in self.meta["files"]

    @property
    def replay_buffer_path(self) -> Path | None:
        return self.path / REPLAY_BUFFER if REPLAY_BUFFER in self.meta["files"] else None

    def rng_state(self) -> dict[str, Any]:
        try:
            state = json.loads((self.path / RNG).read_text())
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{self.path}: {RNG} is unreadable ({error})") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{self.path}: {RNG} is not a JSON object")
        return state


def save_checkpoint(
    model: Any, directory: str | Path, *, keep: int = 2, extra: Mapping[str, Any] | None = None
) -> Checkpoint:
    """Write ``model`` (at ``model.num_timesteps``) as ``directory/step-<N>`` atomically.

    :param keep: how many of the newest complete checkpoints to keep (older ones are removed).
    :param extra: JSON-serialisable facts to add to ``meta.json``.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}.")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    tmp = root / f"{_TMP_PREFIX}{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save(tmp / MODEL)
    files = [MODEL]
    if getattr(model, "replay_buffer", None) is not None:
        save_buffer(model.replay_buffer, tmp / REPLAY_BUFFER)
        files.append(REPLAY_BUFFER)
    (tmp / RNG).write_text(json.dumps(rng_state(model)))
    files.append(RNG)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sparse_rl": __version__,
        "files": {name: _fsynced_sha256(tmp / name) for name in files},
        **(extra or {}),
    }
    _write_durably(tmp / META, json.dumps(meta, indent=1))
    _fsync_dir(tmp)
    final = root / f"step-{step}"
    if final.exists():  # a step redone after resuming from an older checkpoint
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    _write_durably(root / LATEST, final.name + "\n", atomic=True)
    _prune(root, keep)
    return Checkpoint(final, step, meta)


def step_dirs(directory: str | Path) -> list[Path]:
    """The ``step-<N>`` directories, newest step first (complete or not)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def verify(path: str | Path) -> Checkpoint:
    """The checkpoint at ``path`` if ``meta.json`` is whole and every file matches its hash."""
    path = Path(path)
    try:
        meta = json.loads((path / META).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no {META} (the write did not finish)") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: {META} is unreadable ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: {META} is not a {FORMAT} description")
    step, files = meta.get("step"), meta.get("files")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{path}: {META} has step={step!r}, not a whole number >= 0")
    if (m := _STEP_DIR.match(path.name)) and int(m.group(1)) != step:
        raise CheckpointError(f"{path}: {META} says step {step}, the directory another step")
    if (
        not isinstance(files, dict)
        or MODEL not in files
        or not all(isinstance(h, str) and _HEX.match(h) for h in files.values())
        or not all(isinstance(n, str) and n and "/" not in n and n != ".." for n in files)
    ):
        raise CheckpointError(
            f"{path}: {META}'s files must map each file name to its sha256, with {MODEL}"
        )
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{path}: {name} is missing")
        try:
            actual = _sha256(file)
        except OSError as error:  # e.g. removed by the training process while we read
            raise CheckpointError(f"{path}: {name} is unreadable ({error})") from None
        if actual != expected:
            raise CheckpointError(
                f"{path}: {name} does not match its sha256 (truncated or changed after writing)"
            )
    return Checkpoint(path, step, meta)


def latest_checkpoint(directory: str | Path, *, repair: bool = False) -> Checkpoint | None:
    """The newest checkpoint that verifies, or None when there is none.

    Each newer checkpoint that fails verification is skipped with a warning. With ``repair``
    (a resuming run, the only writer), skipped ones are moved aside to ``corrupt-step-<N>``,
    unfinished ``.tmp-*`` writes are removed and ``LATEST`` names the one returned.
    """
    root = Path(directory)
    if repair:
        remove_unfinished(root)
    skipped: list[tuple[Path, str]] = []
    found = None
    for path in step_dirs(root):
        try:
            found = verify(path)
            break
        except CheckpointError as error:
            skipped.append((path, str(error)))
    for path, reason in skipped:
        instead = f"using {found.path.name}" if found else "no older checkpoint verifies"
        if repair:
            set_aside(path, f"{reason}; {instead}")
        else:
            log.warning("checkpoint skipped: %s; %s", reason, instead)
    if repair and found is not None:
        latest = root / LATEST
        if not latest.is_file() or latest.read_text().strip() != found.path.name:
            _write_durably(latest, found.path.name + "\n", atomic=True)
    return found


def set_aside(path: str | Path, reason: str) -> Path:
    """Move a damaged checkpoint to ``corrupt-step-<N>`` (never deleted) and log why."""
    path = Path(path)
    aside = path.with_name(f"corrupt-{path.name}")
    if aside.exists():
        shutil.rmtree(aside)
    os.rename(path, aside)
    _fsync_dir(path.parent)
    log.warning("checkpoint skipped: %s; moved to %s", reason, aside.name)
    return aside


def remove_unfinished(directory: str | Path) -> list[Path]:
    """Delete ``.tmp-*`` directories (checkpoint writes a kill interrupted); return them."""
    root = Path(directory)
    removed = sorted(root.glob(f"{_TMP_PREFIX}*")) if root.is_dir() else []
    for path in removed:
        log.warning("removing unfinished checkpoint write %s", path)
        shutil.rmtree(path)
    return removed


def _prune(root: Path, keep: int) -> None:
    complete = [p for p in step_dirs(root) if (p / META).exists()]
    for path in complete[keep:]:
        shutil.rmtree(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsynced_sha256(path: Path) -> str:
    with path.open("rb") as f:
        os.fsync(f.fileno())
    return _sha256(path)


def _write_durably(path: Path, text: str, *, atomic: bool = False) -> None:
    """Write and fsync ``text``; with ``atomic``, through a temp file and ``os.replace``."""
    target = path.with_name(path.name + ".tmp") if atomic else path
    with target.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if atomic:
        os.replace(target, path)
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str | Path, text: str) -> None:
    """Replace the file at ``path`` with ``text`` so a kill leaves the old or the new file."""
    _write_durably(Path(path), text, atomic=True)
