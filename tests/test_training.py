"""Training from a config: the run directory, evaluation, resuming, extending, eval and export."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from helpers import R2N_TINY, SAC_TINY, changed

from sparse_rl import training
from sparse_rl.config import ConfigError, config_from_dict, dump_config, load_config
from sparse_rl.evaluation import evaluate_run, export_run
from sparse_rl.run_dir import RunError, has_checkpoint, is_finished


def tiny(**changes: Any) -> Any:
    return config_from_dict(changed(SAC_TINY, **changes))


def eval_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "eval.csv").open() as f:
        return list(csv.DictReader(f))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(run_dir: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``run_dir``."""
    return {
        str(p.relative_to(run_dir)): (digest(p), p.stat().st_mtime_ns)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished sparse SAC run (400 steps, evaluated and checkpointed at 200 and 400)."""
    run_dir = tmp_path_factory.mktemp("runs") / "sac"
    config = tiny(policy_kwargs={"net_arch": [16, 16], "density": 0.5, "updater": "set"})
    assert training.train(config, run_dir) == run_dir
    return run_dir


def test_run_directory_layout(finished: Path) -> None:
    names = {p.name for p in finished.iterdir()}
    assert {"config.yaml", "eval.csv", "logs", "checkpoints", "model.zip", "done.json"} <= names
    assert load_config(finished / "config.yaml").policy_kwargs["density"] == 0.5
    rows = eval_rows(finished)
    assert list(rows[0]) == ["step", "mode", "return_mean", "return_std", "episodes"]
    assert [(r["step"], r["mode"], r["episodes"]) for r in rows] == [
        ("200", "default", "1"), ("400", "default", "1")
    ]  # fmt: skip
    assert json.loads((finished / "done.json").read_text())["steps"] == 400
    assert is_finished(finished) and has_checkpoint(finished)
    assert (finished / "checkpoints" / "LATEST").read_text().strip() == "step-400"
    with (finished / "logs" / "progress.csv").open() as f:
        logged = list(csv.DictReader(f))
    assert {"eval/return_mean", "sparsity/actor_density", "time/total_timesteps"} <= set(logged[0])


def test_an_existing_run_is_not_overwritten(finished: Path) -> None:
    before = snapshot(finished)
    with pytest.raises(RunError, match="already holds a run"):
        training.train(load_config(finished / "config.yaml"), finished)
    assert snapshot(finished) == before


def test_resume_with_another_config_changes_nothing(finished: Path) -> None:
    before = snapshot(finished)
    other = tiny(seed=1, policy_kwargs={"net_arch": [16, 16], "density": 0.5, "updater": "set"})
    with pytest.raises(ConfigError, match="differs from the given config in seed: run has 0, "):
        training.train(other, finished, resume=True)
    assert snapshot(finished) == before


def test_a_run_dir_in_use_is_refused(tmp_path: Path) -> None:
    """Two processes training one run dir would interleave checkpoints; the second is refused."""
    import fcntl

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with (run_dir / ".lock").open("w") as held:  # what a live training process holds
        held.write("pid 12345")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunError, match="is being trained by pid 12345"):
            training.train(tiny(steps=200), run_dir, resume=True)
        assert [p.name for p in run_dir.iterdir()] == [".lock"]
    training.train(tiny(steps=200), run_dir, resume=True)  # released (as when a process dies)
    assert is_finished(run_dir)


def test_resuming_a_finished_run_does_nothing(finished: Path) -> None:
    before = snapshot(finished)
    assert training.train(load_config(finished / "config.yaml"), finished, resume=True) == finished
    assert snapshot(finished) == before


def test_extend_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    training.train(tiny(steps=200), run_dir)
    assert is_finished(run_dir)
    training.train(tiny(steps=400), run_dir, resume=True)
    assert [r["step"] for r in eval_rows(run_dir)] == ["200", "400"]
    assert load_config(run_dir / "config.yaml").steps == 400
    done = json.loads((run_dir / "done.json").read_text())
    assert done["steps"] == 400 and done["steps_this_session"] == 200


def test_resume_redoes_what_came_after_the_checkpoint(tmp_path: Path) -> None:
    """A run killed after evaluating at 400 but before its checkpoint resumes from 200."""
    run_dir = tmp_path / "run"
    training.train(tiny(), run_dir)
    (run_dir / "done.json").unlink()
    for path in (run_dir / "checkpoints" / "step-400").iterdir():
        path.unlink()
    (run_dir / "checkpoints" / "step-400").rmdir()
    training.train(tiny(), run_dir, resume=True)
    assert [r["step"] for r in eval_rows(run_dir)] == ["200", "400"]
    with (run_dir / "logs" / "progress.csv").open() as f:
        steps = [int(row["time/total_timesteps"]) for row in csv.DictReader(f)]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_config_without_checkpoint_restarts_from_zero(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_config(tiny(steps=200)))
    (run_dir / "eval.csv").write_text(
        "step,mode,return_mean,return_std,episodes\n100,default,1,0,1\n"
    )
    training.train(tiny(steps=200), run_dir, resume=True)
    assert [r["step"] for r in eval_rows(run_dir)] == ["200"]


def test_resume_of_an_empty_dir_starts_a_run(tmp_path: Path) -> None:
    training.train(tiny(steps=200), tmp_path / "new", resume=True)
    assert is_finished(tmp_path / "new")


def test_a_run_that_cannot_start_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="building SAC failed"):
        training.train(tiny(policy_kwargs={"optimizer_kwargs": {"no_such": 1}}), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("changes", "replay_buffer"),
    [
        ({"algo": "ppo", "algo_kwargs": {"n_steps": 64, "batch_size": 32}, "steps": 128,
          "eval__every": 64, "checkpoint__every": 128}, False),
        ({"algo": "anf-td3", "env__noise_fraction": 0.5, "steps": 200,
          "algo_kwargs__action_noise": {"type": "normal", "sigma": 0.1}}, True),
    ],
    ids=["sparse-ppo", "anf-td3"],
)  # fmt: skip
def test_other_algorithms(tmp_path: Path, changes: dict[str, Any], replay_buffer: bool) -> None:
    config = tiny(**changes)
    training.train(config, tmp_path / "run")
    assert is_finished(tmp_path / "run")
    checkpoint = training.latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert (checkpoint.replay_buffer_path is not None) == replay_buffer


def label_ids(run_dir: Path) -> set[int]:
    with sqlite3.connect(run_dir / "labels.sqlite") as db:
        return {row[0] for row in db.execute("SELECT id FROM labels")}


def test_r2n_keeps_its_labels_across_a_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "r2n"
    training.train(tiny(**R2N_TINY, steps=300), run_dir)
    first = label_ids(run_dir)
    assert len(first) >= 8
    training.train(tiny(**R2N_TINY, steps=450), run_dir, resume=True)
    assert first < label_ids(run_dir)


def test_evaluate_and_export_a_run(finished: Path, tmp_path: Path) -> None:
    table = evaluate_run(finished, episodes=2, out_dir=tmp_path / "eval")
    with table.open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["mode"] == "default" and row["episodes"] == "2" and row["step"] == "400"
    assert row["model"].endswith("model.zip")
    assert (tmp_path / "eval" / "eval.md").exists()
    with pytest.raises(ConfigError, match="modes: distraction modes apply to the visual algos"):
        evaluate_run(finished, modes=["clean"], out_dir=tmp_path / "eval")
    card = export_run(finished, out_dir=tmp_path / "export", formats=["onnx", "numpy"])
    assert json.loads(card.read_text())["files"].keys() >= {"onnx", "numpy"}
    with pytest.raises(RunError, match="holds no run"):
        evaluate_run(tmp_path / "nothing")


def test_visual_agent_is_evaluated_per_mode(tmp_path: Path) -> None:
    env = {"id": "cartpole-swingup", "kwargs": {"size": 16, "episode_length": 10}}
    config = config_from_dict({
        "algo": "madi", "env": env, "steps": 40, "threads": 1, "log_formats": ["csv"],
        "algo_kwargs": {"learning_starts": 20, "batch_size": 8, "buffer_size": 100},
        "policy_kwargs": {"net_arch": [16, 16]},
        "eval": {"every": 40, "episodes": 1, "modes": ["clean", "color_hard"]},
    })  # fmt: skip
    run_dir = tmp_path / "madi"
    training.train(config, run_dir)
    assert [(r["step"], r["mode"]) for r in eval_rows(run_dir)] == [
        ("40", "clean"), ("40", "color_hard")
    ]  # fmt: skip
    with (run_dir / "logs" / "progress.csv").open() as f:
        assert "eval/color_hard/mask_iou" in next(csv.DictReader(f))
    table = evaluate_run(run_dir, modes=["video_easy", 0.2], out_dir=tmp_path / "eval")
    with table.open() as f:
        assert [r["mode"] for r in csv.DictReader(f)] == ["video_easy", "0.2"]
    assert (tmp_path / "eval" / "video_easy_masks.png").exists()


def test_sparse_dqn_run_that_overshoots_its_budget_evaluates_and_resumes(tmp_path: Path) -> None:
    """DQN collects ``train_freq`` steps at a time, so a run ends past its budget (SB3's remaining
    progress goes negative); the run is still evaluated, extended and resumed from its files."""
    dqn = {"algo": "dqn", "env__id": "CartPole-v1", "steps": 150, "eval__every": 100,
           "checkpoint__every": 100, "policy_kwargs__density": 0.5,
           "algo_kwargs": {"learning_starts": 20, "batch_size": 16, "train_freq": 64,
                           "buffer_size": 500}}  # fmt: skip
    run_dir = tmp_path / "dqn"
    training.train(tiny(**dqn), run_dir)
    assert is_finished(run_dir)
    evaluate_run(run_dir, episodes=1, out_dir=tmp_path / "eval")
    training.train(tiny(**{**dqn, "steps": 260}), run_dir, resume=True)
    assert is_finished(run_dir)
