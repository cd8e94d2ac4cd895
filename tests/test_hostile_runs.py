"""Issue 15's hostile-input coverage for run directories: no code from data, damage never fatal.

A run directory may come from someone else (a shared results folder, a download) or be damaged
by a crash or a disk; ``sparse-rl train --resume``, ``eval`` and ``export`` must neither run code
from its files nor stop with a traceback on a damaged log.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import logging
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import R2N_TINY, SAC_TINY, changed

from sparse_rl import training
from sparse_rl.config import ConfigError, config_from_dict, load_config
from sparse_rl.evaluation import evaluate_run, export_run, load_run
from sparse_rl.run_dir import RunError, is_finished


def tiny(steps: int = 400, **changes: Any) -> Any:
    return config_from_dict(changed(SAC_TINY, steps=steps, **changes))


class Payload:
    """Unpickling this creates ``marker``: the proof that a file ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 400-step SAC run with checkpoints at 200 and 400."""
    run_dir = tmp_path_factory.mktemp("runs") / "sac"
    training.train(tiny(), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def finished_r2n(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 300-step R2N run (its labels in the run's labels.sqlite)."""
    run_dir = tmp_path_factory.mktemp("runs") / "r2n"
    training.train(tiny(300, **R2N_TINY), run_dir)
    return run_dir


@pytest.fixture
def r2n_run(finished_r2n: Path, tmp_path: Path) -> Path:
    """A copy of the finished R2N run to damage."""
    return Path(shutil.copytree(finished_r2n, tmp_path / "r2n"))


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run to damage."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def unfinished(run: Path) -> Path:
    """The run as if killed after its last checkpoint (no final model, no done.json)."""
    (run / "done.json").unlink()
    (run / "model.zip").unlink()
    return run


def poison_model_zip(path: Path, marker: Path) -> None:
    """Replace the pickled ``policy_class`` in ``data`` by code that creates ``marker``."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    data["policy_class"][":serialized:"] = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, blob in entries.items():
            archive.writestr(name, blob)


def rehash(checkpoint: Path) -> None:
    """Update meta.json's hashes, as anyone who edits a checkpoint can."""
    meta = json.loads((checkpoint / "meta.json").read_text())
    for name in meta["files"]:
        meta["files"][name] = hashlib.sha256((checkpoint / name).read_bytes()).hexdigest()
    (checkpoint / "meta.json").write_text(json.dumps(meta))


def test_eval_and_export_never_unpickle_the_model(run: Path, tmp_path: Path) -> None:
    """A crafted model.zip runs no code in ``sparse-rl eval`` or ``export`` (SB3's load would)."""
    marker = tmp_path / "pwned"
    poison_model_zip(run / "model.zip", marker)
    table = evaluate_run(run, episodes=1, out_dir=tmp_path / "eval")
    assert table.is_file()
    export_run(run, out_dir=tmp_path / "export", formats=("onnx",))
    assert not marker.exists()


def test_resume_never_unpickles_a_checkpoint(run: Path, tmp_path: Path) -> None:
    """A crafted checkpoint (model.zip, then an object array in the buffer) runs no code."""
    marker = tmp_path / "pwned"
    unfinished(run)
    newest = run / "checkpoints" / "step-400"
    poison_model_zip(newest / "model.zip", marker)
    rehash(newest)
    training.train(tiny(steps=600), run, resume=True)
    assert not marker.exists()
    assert json.loads((run / "done.json").read_text())["steps"] == 600

    # the buffer: an object array needs pickle, which the loader refuses
    second = Path(shutil.copytree(tmp_path / "run", tmp_path / "again"))
    unfinished(second)
    newest = max((second / "checkpoints").glob("step-*"), key=lambda p: int(p.name[5:]))
    with np.load(newest / "replay_buffer.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["rewards"] = np.array([Payload(marker)], dtype=object)
    with (newest / "replay_buffer.npz").open("wb") as f:
        np.savez(f, **arrays)
    rehash(newest)
    training.train(tiny(steps=800), second, resume=True)
    assert not marker.exists()
    assert (second / "checkpoints" / f"corrupt-{newest.name}").is_dir()  # set aside, not deleted


def test_a_checkpoint_that_does_not_load_falls_back(run: Path, caplog: Any) -> None:
    """Weights that do not fit the run's model: the previous checkpoint is used, with a warning."""
    unfinished(run)
    newest = run / "checkpoints" / "step-400"
    with zipfile.ZipFile(newest / "model.zip") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries.pop("policy.pth")
    with zipfile.ZipFile(newest / "model.zip", "w") as archive:
        for name, blob in entries.items():
            archive.writestr(name, blob)
    rehash(newest)
    with caplog.at_level(logging.WARNING):
        training.train(tiny(), run, resume=True)
    assert "step-400 does not load" in caplog.text
    assert (run / "checkpoints" / "corrupt-step-400").is_dir()
    assert is_finished(run)


def test_an_old_pickle_checkpoint_is_not_resumed(run: Path) -> None:
    """Checkpoints of sparse-rl < 0.2 hold pickles: resuming from one is refused, clearly."""
    unfinished(run)
    newest = run / "checkpoints" / "step-400"
    meta = json.loads((newest / "meta.json").read_text())
    meta["version"] = 1
    (newest / "rng.json").rename(newest / "rng.pkl")
    meta["files"]["rng.pkl"] = meta["files"].pop("rng.json")
    (newest / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match=r"step-400 was written by sparse-rl < 0.2.*pickles"):
        training.train(tiny(), run, resume=True)


def test_fewer_steps_than_trained_is_an_error(run: Path) -> None:
    """Resuming with fewer steps than the run has trained names steps and changes nothing."""
    config_text = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"steps: 200 is fewer than the 400 steps"):
        training.train(tiny(steps=200), run, resume=True)
    unfinished(run)
    with pytest.raises(ConfigError, match=r"steps: 200 is fewer than the 400 steps .*checkpoint"):
        training.train(tiny(steps=200), run, resume=True)
    assert (run / "config.yaml").read_text() == config_text


def test_config_edited_after_the_run_started_is_refused(run: Path) -> None:
    """A hand-edited config.yaml does not silently change the method in the middle of a run."""
    unfinished(run)
    data = yaml.safe_load((run / "config.yaml").read_text())
    data["algo_kwargs"]["batch_size"] = 64
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(RunError, match=r"changed after the run started.*batch_size.*32.*64"):
        training.train(load_config(run / "config.yaml"), run, resume=True)


@pytest.mark.parametrize(
    "damage",
    [
        lambda meta: meta.pop("step"),
        lambda meta: meta.update(files=list(meta["files"])),
        lambda meta: meta.update(step="400"),
        lambda meta: meta.update(step=200),
        lambda meta: meta["files"].update({"../../evil": "0" * 64}),
    ],
    ids=["no-step", "files-list", "step-string", "step-mismatch", "path-escape"],
)
def test_malformed_meta_json_falls_back(run: Path, damage: Any, caplog: Any) -> None:
    """A malformed meta.json skips that checkpoint for the previous one (resume and eval)."""
    unfinished(run)
    path = run / "checkpoints" / "step-400" / "meta.json"
    meta = json.loads(path.read_text())
    damage(meta)
    path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        _, model, source = load_run(run)
    assert model.num_timesteps == 200 and "step-200" in source
    assert "checkpoint skipped" in caplog.text
    training.train(tiny(), run, resume=True)
    assert is_finished(run)


def test_damaged_done_json_is_not_fatal(run: Path, tmp_path: Path) -> None:
    """A damaged done.json: eval uses the newest checkpoint, resume finishes the run."""
    (run / "done.json").write_text('{"steps": ')
    assert not is_finished(run)
    evaluate_run(run, episodes=1, out_dir=tmp_path / "eval")
    training.train(tiny(), run, resume=True)
    assert is_finished(run)
    assert (run / "done.json.damaged").read_text() == '{"steps": '


def test_damaged_logs_are_kept_aside_not_fatal(run: Path) -> None:
    """NUL bytes and garbage in progress.csv / eval.csv: resume works and keeps a copy."""
    unfinished(run)
    progress = run / "logs" / "progress.csv"
    original = progress.read_bytes()
    progress.write_bytes(original + b"\x00\x00garbage,\x00\nnot-a-step" + b",x" * 3 + b"\n")
    evals = run / "eval.csv"
    evals.write_bytes(evals.read_bytes() + b'"unclosed,\x00\n')
    training.train(tiny(), run, resume=True)
    assert (run / "logs" / "progress.csv.damaged").read_bytes().startswith(original)
    assert (run / "eval.csv.damaged").is_file()
    with evals.open() as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["200", "400"]
    with progress.open() as f:
        steps = [float(row["time/total_timesteps"]) for row in csv.DictReader(f)]
    assert steps and max(steps) == 400


def test_resume_with_lost_labels_is_an_error_not_a_fallback(r2n_run: Path) -> None:
    """Labels lost from the store stop the resume, naming how many; no older checkpoint hides it."""
    import sqlite3

    from sparse_rl.agents import LabelStoreError

    run = r2n_run
    (run / "done.json").unlink()
    (run / "model.zip").unlink()
    with sqlite3.connect(run / "labels.sqlite") as db:
        total = db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
        db.execute("DELETE FROM labels WHERE id > (SELECT MIN(id) FROM labels) + 3")
    with pytest.raises(LabelStoreError, match=rf"trained on {total} labels.*missing"):
        training.train(tiny(450, **R2N_TINY), run, resume=True)
    assert not list((run / "checkpoints").glob("corrupt-*"))


def test_resume_without_the_label_store_is_an_error(r2n_run: Path, tmp_path: Path) -> None:
    """A pebble / r2n run whose labels.sqlite is gone is not resumed on a new, empty store."""
    run = r2n_run
    (run / "done.json").unlink()
    (run / "labels.sqlite").rename(tmp_path / "elsewhere.sqlite")
    with pytest.raises(RunError, match=r"label store .*labels.sqlite is missing"):
        training.train(tiny(450, **R2N_TINY), run, resume=True)
    with pytest.raises(RunError, match=r"label store .*labels.sqlite is missing"):
        evaluate_run(run, episodes=1, out_dir=tmp_path / "eval")
    assert not (run / "labels.sqlite").exists()
