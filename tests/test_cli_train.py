"""``sparse-rl train / eval / export``: options, one-line errors, and runs that survive SIGKILL."""

from __future__ import annotations

import csv
import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sparse_rl import cli

SAC = {
    "algo": "sac",
    "env": {"id": "Pendulum-v1"},
    "steps": 1000,
    "threads": 1,
    "algo_kwargs": {"learning_starts": 100, "batch_size": 32, "buffer_size": 2000},
    "policy_kwargs": {"net_arch": [16, 16], "density": 0.5},
    "eval": {"every": 200, "episodes": 1},
    "checkpoint": {"every": 200},
    "log_formats": ["csv"],
}
R2N = {
    **SAC,
    "algo": "r2n",
    "steps": 700,
    "env": {"id": "Pendulum-v1", "noise_fraction": 0.75},
    "algo_kwargs": {"learning_starts": 50, "batch_size": 32},
    "policy_kwargs": {"net_arch": [16, 16]},
    "preference": {"reward_hidden": [16, 16], "reward_steps": 5, "reward_batch_size": 16,
                   "segment_length": 10, "labels_per_session": 8, "session_every": 100,
                   "budget": 200, "unsupervised_steps": 50},
}  # fmt: skip


def sparse_rl_command() -> list[str]:
    script = Path(sys.executable).parent / "sparse-rl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sparse_rl.cli"]


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*sparse_rl_command(), *args], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def kill_when(args: list[str], ready: callable, deadline: float = 120) -> None:
    """Start ``sparse-rl ARGS`` and SIGKILL it as soon as ``ready()`` holds."""
    child = subprocess.Popen([*sparse_rl_command(), *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    end = time.time() + deadline
    try:
        while not ready():
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.time() < end, "the run did not get ready in time"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def eval_steps(run_dir: Path) -> list[int]:
    with (run_dir / "eval.csv").open() as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(run_dir: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(run_dir)): (digest(p), p.stat().st_mtime_ns)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


# -- options and errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("train", ["CONFIG", "--run-dir", "--set", "--resume", "--progress", "--no-progress"]),
        ("eval", ["RUN_DIR", "--episodes", "--modes", "--out"]),
        ("export", ["RUN_DIR", "--out", "--formats"]),
    ],
)
def test_help_documents_every_option(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], status: int) -> str:
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1, err
    return lines[0]


def test_config_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "run.yaml", {**SAC, "seeed": 1})
    line = one_line_error(["train", str(config)], capsys, 2)
    assert line.startswith("sparse-rl train: unknown key 'seeed' (did you mean 'seed'?)")
    line = one_line_error(["train", str(tmp_path / "nope.yaml")], capsys, 2)
    assert "does not exist" in line
    config = write_config(tmp_path / "ok.yaml", SAC)
    line = one_line_error(["train", str(config), "--set", "steps=ten"], capsys, 2)
    assert "steps: expected an integer, got a string 'ten'" in line


def test_run_dir_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "give a CONFIG" in one_line_error(["train"], capsys, 1)
    line = one_line_error(["train", "--resume", str(tmp_path)], capsys, 1)
    assert "holds no run to resume" in line
    assert "holds no run" in one_line_error(["eval", str(tmp_path)], capsys, 1)
    assert "holds no run" in one_line_error(["export", str(tmp_path)], capsys, 1)


# -- killed runs -----------------------------------------------------------------------------------


def test_killed_run_resumes_and_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL after the first checkpoint; then a kill during a checkpoint write (simulated by
    an unfinished .tmp dir and a truncated newest model.zip) still resumes from a good one (the
    resume runs the command line in this process: the kill needed a process, the resume not)."""
    config = write_config(tmp_path / "sac.yaml", {**SAC, "steps": 400})
    run_dir = tmp_path / "run"
    kill_when(["train", str(config), "--run-dir", str(run_dir)],
              lambda: (run_dir / "checkpoints" / "LATEST").exists())  # fmt: skip
    assert not (run_dir / "done.json").exists()
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*"))
    assert checkpoints
    newest = max(checkpoints, key=lambda p: int(p.name.split("-")[1]))
    (run_dir / "checkpoints" / ".tmp-99999").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / ".tmp-99999" / "model.zip").write_bytes(b"PK\x03\x04")
    with (newest / "model.zip").open("r+b") as f:
        f.truncate(64)

    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "removing unfinished checkpoint write" in err
    assert f"checkpoint skipped: {newest}: model.zip does not match its sha256" in err
    assert yaml.safe_load((run_dir / "done.json").read_text())["steps"] == 400
    steps = eval_steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == 400
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))


def test_resume_eval_and_export_of_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run_dir = write_config(tmp_path / "sac.yaml", {**SAC, "steps": 200}), tmp_path / "run"
    assert cli.main(["train", str(config), "--run-dir", str(run_dir), "--no-progress"]) == 0
    assert "run/model.zip (final model)" in capsys.readouterr().err
    before = tree(run_dir)
    line = one_line_error(["train", str(config), "--resume", str(run_dir), "--set", "seed=7"],
                          capsys, 2)  # fmt: skip
    assert "differs from the given config in seed: run has 0, given 7" in line
    assert tree(run_dir) == before
    line = one_line_error(["train", str(config), "--run-dir", str(run_dir)], capsys, 1)
    assert "already holds a run" in line and tree(run_dir) == before

    assert cli.main(["eval", str(run_dir), "--episodes", "1", "--out", str(tmp_path / "ev")]) == 0
    assert "| default |" in capsys.readouterr().out
    assert (tmp_path / "ev" / "eval.csv").exists()
    line = one_line_error(["eval", str(run_dir), "--modes", "clean"], capsys, 2)
    assert "modes: distraction modes apply to the visual algos" in line
    out = tmp_path / "export"
    assert cli.main(["export", str(run_dir), "--out", str(out), "--formats", "onnx"]) == 0
    assert (out / "card.json").exists() and (out / "policy.onnx").exists()
    assert "card.json" in capsys.readouterr().err
    line = one_line_error(["export", str(run_dir), "--formats", "tflite"], capsys, 2)
    assert "formats: 'tflite' is not valid" in line

    assert cli.main(["train", "--resume", str(run_dir), "--set", "steps=400"]) == 0  # extend
    assert eval_steps(run_dir) == [200, 400]


def label_ids(run_dir: Path) -> set[int]:
    path = run_dir / "labels.sqlite"
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        try:
            return {row[0] for row in db.execute("SELECT id FROM labels")}
        except sqlite3.OperationalError:  # the table is not made yet
            return set()


@pytest.mark.slow  # fast representatives: the SAC kill here, the PrefSAC kill in test_pbrl
def test_killed_r2n_run_resumes_with_every_label(tmp_path: Path) -> None:
    config, run_dir = write_config(tmp_path / "r2n.yaml", R2N), tmp_path / "run"

    def ready() -> bool:
        return (run_dir / "checkpoints" / "LATEST").exists() and len(label_ids(run_dir)) >= 16

    kill_when(["train", str(config), "--run-dir", str(run_dir)], ready)
    before = label_ids(run_dir)
    result = run("train", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    after = label_ids(run_dir)
    assert before < after  # every label made before the kill is kept, and more were asked
    assert yaml.safe_load((run_dir / "done.json").read_text())["steps"] == 700


def test_default_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "sac.yaml", {**SAC, "steps": 200, "name": "mine"})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", str(config)]) == 0
    assert (tmp_path / "runs" / "mine-Pendulum-v1-s0" / "done.json").exists()
    assert "runs/mine-Pendulum-v1-s0" in capsys.readouterr().err
