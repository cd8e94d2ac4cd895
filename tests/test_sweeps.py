"""``sparse-rl sweep``: expansion and its checks, skip / resume / start decisions, failure
isolation, the output folder's record, dry runs, the local pool, Ray, the command line, and (slow)
a real sweep of tiny SAC runs."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparse_rl.config import RunConfig, dump_config
from sparse_rl.sweeps import (
    RECORD,
    SweepError,
    add_sweep_arguments,
    expand_sweep,
    load_sweep,
    run_sweep,
    run_sweep_command,
)

BASE = {"algo": "sac", "env": {"id": "Pendulum-v1"}, "steps": 200, "log_formats": ["csv"]}
SWEEP: dict[str, Any] = {
    "base": BASE,
    "methods": {"sac": {}, "sparse": {"policy_kwargs": {"density": 0.5}}},
    "seeds": [0, 1],
}
NAMES = [
    "sac-Pendulum-v1-s0",
    "sparse-Pendulum-v1-s0",
    "sac-Pendulum-v1-s1",
    "sparse-Pendulum-v1-s1",
]


def fake_train(config: RunConfig, run_dir: str | Path, *, resume: bool = False) -> Path:
    """Stands in for ``training.train`` (module level: workers unpickle it): writes the files the
    real one does that sweeps look at, and appends ``start`` / ``resume`` to ``calls.txt``."""
    run_dir = Path(run_dir)
    if config.name == "boom":
        raise RuntimeError("the boom method always fails")
    if (run_dir / "config.yaml").exists() and not resume:
        raise RuntimeError(f"{run_dir} already holds a run")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(config))
    with (run_dir / "calls.txt").open("a") as f:
        f.write(("resume" if resume else "start") + f" pid={os.getpid()}\n")
    (run_dir / "done.json").write_text(json.dumps({"steps": config.steps}))
    return run_dir


def calls(run_dir: Path) -> list[str]:
    return [line.split()[0] for line in (run_dir / "calls.txt").read_text().splitlines()]


def quiet(_: str) -> None:
    """An ``echo`` that prints nothing."""


# --- expansion --------------------------------------------------------------------------------


def test_expand_order_labels_and_overrides() -> None:
    sweep = {
        "base": {**BASE, "env": {"id": "Pendulum-v1", "noise_fraction": 0.5, "noise": "uniform"}},
        "methods": {"sac": {}, "r2n+none": {"policy_kwargs": {"density": 0.5}}},
        "envs": {"pend": {}, "very noisy/pend": {"env": {"noise_fraction": 0.9}}},
        "seeds": [3, 1],
    }
    runs = expand_sweep(sweep)
    # seed-major, then env, then method: a sweep cut short has every method for its seeds
    assert [(r.seed, r.env, r.method) for r in runs] == [
        (3, "pend", "sac"),
        (3, "pend", "r2n+none"),
        (3, "very noisy/pend", "sac"),
        (3, "very noisy/pend", "r2n+none"),
        (1, "pend", "sac"),
        (1, "pend", "r2n+none"),
        (1, "very noisy/pend", "sac"),
        (1, "very noisy/pend", "r2n+none"),
    ]
    assert runs[3].name == "r2n+none-very_noisy_pend-s3"
    assert all(r.config.name == r.method and r.config.seed == r.seed for r in runs)
    # overrides merge into the base key by key
    assert runs[1].config.policy_kwargs == {"density": 0.5} and runs[0].config.policy_kwargs == {}
    assert runs[2].config.env.noise_fraction == 0.9 and runs[0].config.env.noise_fraction == 0.5
    assert runs[2].config.env.noise == "uniform"
    assert sweep["base"]["env"]["noise_fraction"] == 0.5  # the sweep itself is not changed


def test_expand_without_envs_labels_runs_by_env_id() -> None:
    runs = expand_sweep(SWEEP)
    assert [r.name for r in runs] == NAMES
    assert {r.env for r in runs} == {"Pendulum-v1"}


def test_the_documented_example_expands() -> None:
    import sparse_rl.sweeps

    text = (sparse_rl.sweeps.__doc__ or "").split("::\n")[1].split("\nOverrides")[0]
    runs = expand_sweep(yaml.safe_load(text.replace("\n    ", "\n")))
    assert len(runs) == 3 * 2 * 5
    assert [r.name for r in runs[:4]] == [
        "pebble-cheetah-s0",
        "r2n-cheetah-s0",
        "r2n+none-cheetah-s0",
        "pebble-hopper-s0",
    ]
    assert runs[3].config.env.id == "Hopper-v5" and runs[3].config.env.noise_fraction == 0.9


def test_yaml_and_toml_sweeps_are_the_same(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SWEEP))
    (tmp_path / "s.toml").write_text(
        """seeds = [0, 1]
[base]
algo = "sac"
env = {id = "Pendulum-v1"}
steps = 200
log_formats = ["csv"]
[methods.sac]
[methods.sparse]
policy_kwargs = {density = 0.5}
"""
    )
    assert load_sweep(tmp_path / "s.yaml") == load_sweep(tmp_path / "s.toml") == SWEEP


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": {}}, r"unknown keys 'method' \(did you mean 'methods'\?\); valid keys"),
        ({"seeds": None}, r"sweep seeds must be a list of integers >= 0"),
        ({"seeds": [0, 0]}, r"seeds repeat \[0\]"),
        ({"seeds": [True]}, r"sweep seeds must be a list"),
        ({"methods": {}}, r"sweep methods must map labels to overrides"),
        ({"methods": {"a": [1]}}, r"sweep methods.a must be a mapping of overrides"),
        ({"methods": {"x": {"seed": 4}}}, r"methods.x sets \['seed'\]"),
        ({"base": {**BASE, "name": "n"}}, r"base sets \['name'\]"),
        ({"envs": {"": {}}}, r"labels must be non-empty strings"),
        (
            {"methods": {"sac": {}, "x": {"algoo": "sac"}}},
            r"^methods.x: unknown key 'algoo' \(did you mean 'algo'\?\)",
        ),
        ({"base": {**BASE, "stepz": 3}}, r"^base \(every method\): unknown key 'stepz'"),
        (
            {"envs": {"a": {}, "b": {"env": {"noise_fraction": 2}}}},
            r"^envs.b \(every method\): env.noise_fraction: must be in \[0, 1\)",
        ),
        (
            {"envs": {"a": {}, "b": {"env": {"id": "Pendulum-v2"}}}, "methods": {"x": {}}},
            r"^methods.x on envs.b: env.id: 'Pendulum-v2' is neither",
        ),
        ({"methods": {"a b": {}, "a_b": {}}}, r"give the same run folder \['a_b-Pendulum-v1-s0'"),
    ],
)
def test_bad_sweeps_are_named(change: dict[str, Any], message: str) -> None:
    sweep = {**SWEEP, **change}
    if "method" in change:
        del sweep["methods"]
    with pytest.raises(SweepError, match=message):
        expand_sweep(sweep)


def test_missing_keys_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r"lacks \['seeds'\]"):
        expand_sweep({"base": BASE, "methods": {"sac": {}}})
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "nope.yaml")
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(SweepError, match=r"must end in one of"):
        load_sweep(tmp_path / "s.json")
    (tmp_path / "s.yaml").write_text("base: [1\n")
    with pytest.raises(SweepError, match="is not valid"):
        load_sweep(tmp_path / "s.yaml")


# --- running ----------------------------------------------------------------------------------


def test_local_pool_skips_finished_and_resumes_interrupted_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_sweep(SWEEP, out, jobs=2, train_fn=fake_train, echo=quiet, command="first")
    assert first.ok and [r.status for r in first.results] == ["finished"] * 4
    assert [r.name for r in first.results] == NAMES
    pids = {(out / n / "calls.txt").read_text().split("pid=")[1] for n in NAMES}
    assert os.getpid() not in {int(p) for p in pids}  # ran in worker processes

    (out / NAMES[1] / "done.json").unlink()  # killed before its first checkpoint
    (out / NAMES[2] / "done.json").unlink()  # killed after a checkpoint (and its config lost)
    (out / NAMES[2] / "config.yaml").unlink()
    (out / NAMES[2] / "checkpoints" / "step-100").mkdir(parents=True)
    for name in (NAMES[2], NAMES[3]):
        (out / name / "calls.txt").unlink(missing_ok=True)
    (out / NAMES[3] / "config.yaml").unlink()  # never started: a bare folder
    (out / NAMES[3] / "done.json").unlink()

    plan = run_sweep(SWEEP, out, train_fn=fake_train, echo=quiet, dry_run=True)
    assert [r.action for r in plan.results] == ["skip", "resume", "resume", "start"]
    assert [r.status for r in plan.results] == ["planned"] * 4

    lines: list[str] = []
    second = run_sweep(SWEEP, out, jobs=1, train_fn=fake_train, echo=lines.append)
    assert [r.status for r in second.results] == ["skipped", "finished", "finished", "finished"]
    assert calls(out / NAMES[0]) == ["start"]
    assert calls(out / NAMES[1]) == ["start", "resume"]
    assert calls(out / NAMES[2]) == ["resume"]
    assert calls(out / NAMES[3]) == ["start"]
    assert (
        lines[0].startswith("sweep: 4 runs in") and "1 finished (skipped), 2 to resume" in lines[0]
    )
    assert sum(": finished in" in line for line in lines) == 3

    record = yaml.safe_load((out / RECORD).read_text())
    assert record["sweep"] == SWEEP
    assert [r["name"] for r in record["runs"]] == NAMES
    assert record["runs"][1] == {
        "name": NAMES[1],
        "method": "sparse",
        "env": "Pendulum-v1",
        "seed": 0,
    }
    first_call, second_call = record["invocations"]
    assert first_call["command"] == "first" and first_call["backend"] == "local"
    assert {"date", "cpu", "cores", "python", "torch"} <= set(second_call["machine"])


def test_a_failing_run_does_not_stop_the_others(tmp_path: Path) -> None:
    sweep = {**SWEEP, "methods": {"boom": {}, "sac": {}}}
    lines: list[str] = []
    summary = run_sweep(sweep, tmp_path / "out", jobs=1, train_fn=fake_train, echo=lines.append)
    assert not summary.ok  # one worker: the failures did not take it down for the runs after
    assert [r.name for r in summary.failed] == ["boom-Pendulum-v1-s0", "boom-Pendulum-v1-s1"]
    assert summary.failed[0].error == "RuntimeError: the boom method always fails"
    assert "Traceback" in (summary.failed[0].traceback or "")
    assert summary.count("finished") == 2
    assert "FAILED boom-Pendulum-v1-s0: RuntimeError: the boom method always fails" in lines[-1]


def test_output_folder_must_hold_this_sweep(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_sweep(SWEEP, out, train_fn=fake_train, echo=quiet, jobs=1)
    with pytest.raises(SweepError, match=r"holds a different sweep \(differs in \['seeds'\]\)"):
        run_sweep({**SWEEP, "seeds": [0, 1, 2]}, out, train_fn=fake_train, echo=quiet)
    with pytest.raises(SweepError, match="different sweep"):  # a dry run checks it too
        run_sweep({**SWEEP, "seeds": [0]}, out, train_fn=fake_train, echo=quiet, dry_run=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match=r"exists and holds no sweep.yaml"):
        run_sweep(SWEEP, tmp_path / "other", train_fn=fake_train, echo=quiet)
    # the same sweep again (from a file this time) is allowed and skips every run
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SWEEP))
    again = run_sweep(tmp_path / "s.yaml", out, train_fn=fake_train, echo=quiet)
    assert [r.status for r in again.results] == ["skipped"] * 4


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    plan = run_sweep(SWEEP, tmp_path / "out", train_fn=fake_train, dry_run=True, echo=lines.append)
    assert not (tmp_path / "out").exists()
    assert [r.action for r in plan.results] == ["start"] * 4
    assert lines[0].startswith("dry run: 4 runs in") and "  start  sac-Pendulum-v1-s0" in lines[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "rey"}, r"backend='rey' is not valid; choose one of \['local', 'ray'\]"),
        ({"jobs": 0}, "jobs must be an integer >= 1"),
        ({"threads": 1.5}, "threads must be an integer >= 1"),
        ({"address": "auto"}, "address='auto' is for backend='ray' only"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        run_sweep(SWEEP, tmp_path / "out", train_fn=fake_train, **kwargs)


# --- Ray --------------------------------------------------------------------------------------


@pytest.fixture
def ray_instance(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A local Ray whose workers can import this module (for ``fake_train``)."""
    ray = pytest.importorskip("ray")
    here = str(Path(__file__).parent)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": here}})
    yield ray
    ray.shutdown()


@pytest.mark.slow  # the local pool's tests are the fast representative
def test_ray_backend_runs_every_run_and_isolates_failures(
    tmp_path: Path, ray_instance: Any
) -> None:
    sweep = {**SWEEP, "methods": {"sac": {}, "boom": {}}}
    out = tmp_path / "out"
    summary = run_sweep(sweep, out, backend="ray", train_fn=fake_train, echo=quiet)
    assert [r.status for r in summary.results] == ["finished", "failed"] * 2
    assert summary.failed[0].error == "RuntimeError: the boom method always fails"
    assert ray_instance.is_initialized()  # a Ray it did not start is left running
    (out / "sac-Pendulum-v1-s1" / "done.json").unlink()
    again = run_sweep(sweep, out, backend="ray", train_fn=fake_train, echo=quiet)
    assert [r.status for r in again.results] == ["skipped", "failed", "finished", "failed"]
    assert calls(out / "sac-Pendulum-v1-s1") == ["start", "resume"]
    record = yaml.safe_load((out / RECORD).read_text())
    assert [i["backend"] for i in record["invocations"]] == ["ray", "ray"]
    with pytest.raises(SweepError, match="this process has joined a Ray already"):
        run_sweep(sweep, out, backend="ray", address="auto", train_fn=fake_train)


# --- command line -----------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sparse-rl sweep")
    add_sweep_arguments(parser)
    return parser.parse_args(argv)


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("--help")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("SWEEP_FILE", "--out", "--backend", "--address", "--jobs", "--threads"):
        assert option in text
    assert "--dry-run" in text and "{local,ray}" in text


def test_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, "methods": {"sac": {}, "boom": {}}}))
    out = str(tmp_path / "out")
    assert run_sweep_command(parse(str(path), "--out", out, "--dry-run")) == 0
    assert (
        run_sweep_command(parse(str(path), "--out", out, "--jobs", "1"), train_fn=fake_train) == 1
    )
    assert "FAILED boom-Pendulum-v1-s0" in capsys.readouterr().out

    path.write_text(yaml.safe_dump({**SWEEP, "sed": [0]}))
    assert run_sweep_command(parse(str(path), "--out", out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparse-rl sweep: error: sweep has unknown keys 'sed' (did you mean")
    assert err.count("\n") == 1
    assert run_sweep_command(parse(str(tmp_path / "none.yaml"), "--out", out)) == 2
    with pytest.raises(SystemExit) as exit_info:
        parse(str(path), "--out", out, "--jobs", "0")
    assert exit_info.value.code == 2
    assert "--jobs: must be an integer >= 1, got '0'" in capsys.readouterr().err


# --- the real thing ---------------------------------------------------------------------------


TINY_SAC: dict[str, Any] = {
    "base": {
        "algo": "sac",
        "env": {"id": "Pendulum-v1"},
        "steps": 300,
        "device": "cpu",
        "algo_kwargs": {"learning_starts": 100, "batch_size": 32, "buffer_size": 1000},
        "policy_kwargs": {"net_arch": [16, 16]},
        "eval": {"every": 150, "episodes": 1},
        "checkpoint": {"every": 150},
        "log_formats": ["csv"],
    },
    "methods": {"sac": {}},
    "seeds": [0, 1],
}
TINY_NAMES = ["sac-Pendulum-v1-s0", "sac-Pendulum-v1-s1"]


def test_real_sweep_of_tiny_sac_runs(tmp_path: Path) -> None:
    """Two seeds of a 300-step Pendulum SAC on the local pool (one worker: each spawned worker
    imports torch), then again."""
    out = tmp_path / "out"
    summary = run_sweep(TINY_SAC, out, jobs=1, echo=quiet)
    assert summary.ok, summary.failed
    for name in TINY_NAMES:
        assert json.loads((out / name / "done.json").read_text())["steps"] == 300
        assert (out / name / "eval.csv").read_text().count("\n") == 3  # header + 2 evaluations
    assert [r.status for r in run_sweep(TINY_SAC, out, echo=quiet).results] == ["skipped"] * 2


@pytest.mark.slow
def test_real_sweep_resumes_on_a_ray_it_starts(tmp_path: Path) -> None:
    """A run killed after its last checkpoint resumes on a local Ray that the sweep starts and
    stops; the finished one is skipped."""
    ray = pytest.importorskip("ray")
    out = tmp_path / "out"
    assert run_sweep(TINY_SAC, out, jobs=2, echo=quiet).ok
    (out / TINY_NAMES[1] / "done.json").unlink()
    (out / TINY_NAMES[1] / "model.zip").unlink()
    summary = run_sweep(TINY_SAC, out, backend="ray", jobs=2, echo=quiet)
    assert [(r.action, r.status) for r in summary.results] == [
        ("skip", "skipped"),
        ("resume", "finished"),
    ], summary.failed
    assert (out / TINY_NAMES[1] / "model.zip").is_file()
    assert json.loads((out / TINY_NAMES[1] / "done.json").read_text())["steps_this_session"] == 0
    assert not ray.is_initialized()


SWEEP_FILES = Path(__file__).parents[1] / "benchmarks" / "sweeps"
RESULTS = Path(__file__).parents[1] / "benchmarks" / "results"


@pytest.mark.parametrize("path", sorted(SWEEP_FILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_benchmark_sweep_files_are_valid(path: Path) -> None:
    """The benchmark experiments as sweep files: every run config they expand to is valid."""
    runs = expand_sweep(load_sweep(path))
    assert len({run.name for run in runs}) == len(runs) > 0


@pytest.mark.parametrize(
    ("name", "out"),
    [
        ("noise_robustness", "noise_robustness/runs"),
        ("noise_robustness_clean", "noise_robustness/runs_clean"),
        ("pbrl_noise", "pbrl_noise/runs"),
        ("pbrl_pretraining", "pbrl_noise/runs_pretraining"),
        ("pbrl_rewiring", "pbrl_noise/runs_rewiring"),
        ("visual_distractions", "visual_distractions/runs"),
    ],
)
def test_committed_results_are_their_sweep_files_runs(name: str, out: str) -> None:
    """Each committed result folder is what its sweep file's command leaves: the sweep recorded,
    every run finished, with the config the sweep gives it (so the command skips them all)."""
    from sparse_rl.run_dir import is_finished  # here: it imports torch, and the pool's workers
    # import this module to unpickle fake_train (2 s of CPU each)

    sweep = load_sweep(SWEEP_FILES / f"{name}.yaml")
    folder = RESULTS / out
    record = yaml.safe_load((folder / "sweep.yaml").read_text())
    assert record["sweep"] == sweep
    runs = expand_sweep(sweep)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(r.name for r in runs)
    for run in runs:
        assert (folder / run.name / "config.yaml").read_text() == dump_config(run.config)
        assert is_finished(folder / run.name), run.name


def blocking_train(config: RunConfig, run_dir: str | Path, *, resume: bool = False) -> Path:
    """A run that never ends by itself: writes its worker's pid, then waits."""
    import time

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "pid").write_text(str(os.getpid()))
    time.sleep(120)
    return Path(run_dir)


def test_workers_end_when_the_sweep_process_is_killed(tmp_path: Path) -> None:
    """SIGKILL of ``sparse-rl sweep`` does not leave its workers training unseen (Linux)."""
    import signal
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    script = (
        "from test_sweeps import SWEEP, blocking_train\n"
        "from sparse_rl.sweeps import run_sweep\n"
        f"run_sweep({{**SWEEP, 'seeds': [0]}}, {str(tmp_path / 'out')!r}, jobs=1,\n"
        "          train_fn=blocking_train, echo=lambda line: None)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    sweep = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        pid_file = tmp_path / "out" / NAMES[0] / "pid"
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(pid_file.read_text())
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = Path(f"/proc/{worker}").exists()
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker kept running after its sweep was killed"
