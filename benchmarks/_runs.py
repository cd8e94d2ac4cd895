"""Resumable benchmark runs: train in chunks, evaluate, checkpoint, aggregate with bootstrap CIs.

A run directory holds ``eval.csv`` (deterministic returns), optional extra per-evaluation rows,
SB3's CSV logs (one folder per start, since SB3's CSV writer truncates), a checkpoint (model +
replay buffer, atomically replaced) and ``done.json``. Re-running skips finished runs, resumes
unfinished ones and extends finished ones when asked for more steps.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def evaluate(model: Any, env: Any, episodes: int, seed: int) -> tuple[float, float]:
    """Mean and std of the deterministic return over ``episodes`` seeded episodes."""
    from sparse_rl.evaluation import rollout_returns

    returns = rollout_returns(model, env, episodes, seed)
    return float(np.mean(returns)), float(np.std(returns))


def append_row(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_rows(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def truncate_rows(path: Path, step: int) -> None:
    """Drop rows written after ``step`` (a resumed run repeats them from its checkpoint)."""
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.DictReader(f))
    path.unlink()
    for row in rows:
        if float(row["step"]) <= step:
            append_row(path, row)


def is_finished(run_dir: Path, steps: int) -> bool:
    done = run_dir / "done.json"
    return done.exists() and json.loads(done.read_text())["steps"] >= steps


def train_resumable(
    make_model: Callable[[], Any],
    env: Any,
    eval_env: Any,
    run_dir: Path,
    *,
    steps: int,
    eval_every: int,
    eval_episodes: int,
    eval_seed: int,
    checkpoint_every: int,
    callback: Any = None,
    extra_rows: Callable[[Any], dict[str, dict[str, float]]] | None = None,
) -> None:
    """Train to ``steps`` env steps, resuming from the run's checkpoint when it has one.

    :param extra_rows: after each evaluation, ``{csv name: row}`` to append (e.g. connectivity).
    """
    from stable_baselines3.common.logger import configure

    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt, buffer = run_dir / "checkpoint.zip", run_dir / "replay_buffer.pkl"
    model = make_model()
    if ckpt.exists() and buffer.exists():
        model = type(model).load(ckpt, env=env)
        model.load_replay_buffer(buffer)
    for path in run_dir.glob("*.csv"):  # rows written after the checkpoint (all, when none)
        truncate_rows(path, model.num_timesteps)
    model.set_logger(configure(str(run_dir / "sb3" / f"from_{model.num_timesteps}"), ["csv"]))
    started = time.time()
    while model.num_timesteps < steps:
        chunk = min(eval_every, steps - model.num_timesteps)
        model.learn(chunk, reset_num_timesteps=False, callback=callback)
        mean, std = evaluate(model, eval_env, eval_episodes, eval_seed)
        append_row(run_dir / "eval.csv", {"step": model.num_timesteps, "return": mean, "std": std})
        for name, row in (extra_rows(model) if extra_rows else {}).items():
            append_row(run_dir / name, {"step": model.num_timesteps, **row})
        if model.num_timesteps >= steps or model.num_timesteps % checkpoint_every == 0:
            model.save(run_dir / "checkpoint.tmp.zip")
            model.save_replay_buffer(run_dir / "replay_buffer.tmp.pkl")
            os.replace(run_dir / "checkpoint.tmp.zip", ckpt)
            os.replace(run_dir / "replay_buffer.tmp.pkl", buffer)
        print(f"{run_dir.name}: step {model.num_timesteps} return {mean:.1f}", flush=True)
    model.save(run_dir / "model.zip")
    # The checkpoint stays (git ignores it): a later, larger ``steps`` extends the run.
    (run_dir / "done.json").write_text(
        json.dumps({"steps": model.num_timesteps, "seconds_this_session": time.time() - started})
    )


def bootstrap_ci(values: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean over seeds."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(reps, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def aligned(runs: list[list[dict[str, float]]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps every run has reached, and the (runs, steps) values of ``key`` there."""
    common = min(len(r) for r in runs)
    steps = np.array([row["step"] for row in runs[0][:common]])
    return steps, np.array([[row[key] for row in r[:common]] for r in runs])


def plot_curves(ax: Any, groups: dict[str, list[list[dict[str, float]]]], key: str) -> None:
    """Mean over seeds with a 95% bootstrap band, one line per group."""
    for label, runs in groups.items():
        if not runs:
            continue
        steps, values = aligned(runs, key)
        low, high = zip(*(bootstrap_ci(values[:, i]) for i in range(len(steps))), strict=True)
        ax.plot(steps, values.mean(0), label=f"{label} (n={len(runs)})")
        ax.fill_between(steps, low, high, alpha=0.2)


def add_sweep_arguments(parser: argparse.ArgumentParser, out: Path) -> None:
    """The options every sweep script shares."""
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--out", default=str(out))
    parser.add_argument("--report", action="store_true", help="aggregate finished evaluations")
    parser.add_argument("--fresh", action="store_true", help="delete --out before running")


def dispatch(
    args: argparse.Namespace,
    run_all: Callable[[argparse.Namespace], None],
    report: Callable[[argparse.Namespace], None],
) -> None:
    if args.report:
        report(args)
        return
    if args.fresh:
        shutil.rmtree(args.out, ignore_errors=True)
    run_all(args)


def launch_sweep(
    out: Path, specs: list[dict[str, Any]], run_one: Callable[[dict[str, Any]], str], jobs: int
) -> None:
    """Record the sweep (machine, commands, every run's settings), then run it on a pool.

    Runs already recorded in ``out/sweep.json`` stay in it, so a report covers every command
    given for that directory.
    """
    from _machine import machine_info

    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    machine = machine_info()
    sweep = {"machine": machine, "commands": [], "runs": []}
    if path.exists():  # a later command adds runs to the same sweep (or extends them)
        sweep = json.loads(path.read_text())
        sweep.setdefault("commands", [sweep["machine"]["command"]])
    sweep["commands"].append(machine["command"])
    runs = {run["dir"]: run for run in sweep["runs"]}
    runs.update({spec["dir"]: spec for spec in specs})
    sweep["runs"] = list(runs.values())
    path.write_text(json.dumps(sweep, indent=1))
    with ProcessPoolExecutor(jobs) as pool:
        for message in pool.map(run_one, specs):
            print(message, flush=True)


def load_sweep(
    out: Path, group_by: tuple[str, ...], files: dict[str, str]
) -> tuple[dict[str, Any], dict[tuple[Any, ...], list[dict[str, list[dict[str, float]]]]]]:
    """``out/sweep.json`` and its evaluated runs grouped by the ``group_by`` settings.

    Each run is ``{"eval": rows of eval.csv, key: rows of files[key], ...}``; runs with no
    evaluation yet are left out.
    """
    sweep = json.loads((out / "sweep.json").read_text())
    groups: dict[tuple[Any, ...], list[dict[str, list[dict[str, float]]]]] = {}
    for spec in sweep["runs"]:
        run_dir = Path(spec["dir"])
        evals = read_rows(run_dir / "eval.csv")
        if evals:
            run = {"eval": evals, **{k: read_rows(run_dir / f) for k, f in files.items()}}
            groups.setdefault(tuple(spec[k] for k in group_by), []).append(run)
    return sweep, groups


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend (benchmarks run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
