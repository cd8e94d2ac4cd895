"""A run's tables: ``eval.csv`` and SB3's ``logs/progress.csv`` kept across resumes, damaged ones
set aside, and the evaluation tables ``sparse-rl eval`` writes."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter

from sparse_rl.checkpoints import (
    write_atomically,
)
from sparse_rl.run_dir import EVAL_COLUMNS, aside_path

log = logging.getLogger(__name__)


def append_eval(path: Path, rows: list[dict[str, Any]]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=EVAL_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def _whole(row: dict[str, Any]) -> bool:
    """Whether an eval.csv row has every column (a kill can cut the last line short)."""
    return all(row.get(k) not in (None, "") for k in EVAL_COLUMNS) and row["step"].isdigit()


def truncate_eval(path: Path, step: int) -> None:
    """Drop rows after ``step`` (a resumed run redoes them); a damaged file is set aside whole
    and its readable rows kept."""
    if not path.exists():
        return
    _, rows, damaged = read_csv_rows(path)
    if rows and list(rows[0]) != list(EVAL_COLUMNS):
        damaged = damaged or f"columns {list(rows[0])}"
    if damaged:
        _copy_aside(path, damaged)
    kept = [row for row in rows if _whole(row) and int(row["step"]) <= step]
    if len(kept) == len(rows) and not damaged:
        return
    lines = [",".join(EVAL_COLUMNS)]
    lines += [",".join(row[k] for k in EVAL_COLUMNS) for row in kept]
    write_atomically(path, "\n".join(lines) + "\n")


def _copy_aside(path: Path, why: str) -> None:
    """Keep a copy of a damaged log beside it before its whole rows are rewritten."""
    kept = aside_path(path)
    shutil.copyfile(path, kept)
    log.warning("%s is damaged (%s); a copy is kept as %s, its whole rows are used.", path, why,
                kept.name)  # fmt: skip


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]], str | None]:
    """The header and rows of a CSV file we wrote, and why it is damaged (None if it is not).

    Each line is parsed on its own, so one damaged line (NUL bytes, bad quoting, another
    encoding) costs that line only.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not lines:
        return [], [], None
    try:
        header = next(csv.reader([lines[0]]))
    except csv.Error as error:
        return [], [], f"header: {error}"
    if "\ufffd" in lines[0] or "\x00" in lines[0] or len(set(header)) != len(header):
        return [], [], "the header is not a header of this file"
    rows, damaged = [], None
    for number, line in enumerate(lines[1:], start=2):
        try:
            values = next(csv.reader([line]), [])
        except csv.Error as error:
            damaged = damaged or f"line {number}: {error}"
            continue
        if "\ufffd" in line or "\x00" in line or len(values) > len(header):
            damaged = damaged or f"line {number} is not a row of this file"
            continue
        rows.append(dict(zip(header, values + [""] * (len(header) - len(values)), strict=True)))
    return header, rows, damaged


def make_logger(folder: Path, formats: Sequence[str], keep_until: int) -> Any:
    """SB3 Logger writing ``formats`` into ``folder``; ``progress.csv`` keeps rows up to
    ``keep_until`` steps from earlier sessions of the run."""
    from stable_baselines3.common.logger import HumanOutputFormat, Logger, TensorBoardOutputFormat

    folder.mkdir(parents=True, exist_ok=True)
    writers: list[Any] = []
    if "stdout" in formats:
        writers.append(HumanOutputFormat(sys.stdout))
    if "csv" in formats:
        writers.append(ProgressCSV(folder / "progress.csv", keep_until))
    if "tensorboard" in formats:
        if importlib.util.find_spec("tensorboard") is None:
            log.warning(
                "log_formats has tensorboard but the tensorboard package is not installed: no "
                "TensorBoard logs (pip install tensorboard, or drop it from log_formats)."
            )
        else:
            writers.append(TensorBoardOutputFormat(str(folder)))
    return Logger(str(folder), writers)


class ProgressCSV(KVWriter):
    """SB3 KVWriter for ``progress.csv`` that survives resumes.

    SB3's own CSV writer truncates the file when it opens; this one keeps the rows of earlier
    sessions up to the resumed step (``time/total_timesteps``) and appends. A new key rewrites the
    file with the wider header, as SB3's writer does.
    """

    STEP_KEY = "time/total_timesteps"

    def __init__(self, path: Path, keep_until: int) -> None:
        self.path = path
        self.keys: list[str] = []
        rows: list[dict[str, str]] = []
        if path.exists():
            self.keys, rows, damaged = read_csv_rows(path)
            steps = [self._step(row) for row in rows]
            if None in steps:
                damaged = damaged or f"a {self.STEP_KEY} that is not a number"
            if damaged:
                _copy_aside(path, damaged)
            rows = [
                r for r, t in zip(rows, steps, strict=True) if t is not None and t <= keep_until
            ]
        self._rewrite(rows)

    def _step(self, row: dict[str, str]) -> float | None:
        value = row.get(self.STEP_KEY) or ""
        try:
            return float(value) if value else -math.inf
        except ValueError:
            return None

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
    ) -> None:
        row = {
            key: value
            for key, value in key_values.items()
            if isinstance(value, (int, float, str, np.number))
            and not (key_excluded.get(key) and "csv" in key_excluded[key])
        }
        new = sorted(set(row) - set(self.keys))
        if new:
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            self.keys += new
            self._rewrite(rows)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.keys).writerow(row)

    def close(self) -> None:
        pass


def write_table(out: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as ``eval.csv``, ``eval.json`` and a Markdown ``eval.md``."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with (out / "eval.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    (out / "eval.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [
            f"{v:.3f}" if isinstance(v, float) else str(v) for v in (row.get(k, "") for k in keys)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "eval.md").write_text("\n".join(lines) + "\n")
