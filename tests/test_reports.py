"""``sparse-rl report``: loading runs, the statistics, the written files and the command line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml

from sparse_rl import reporting
from sparse_rl.reporting import ReportError, bootstrap_mean_ci, load_runs, on_dmc_scale, summarize
from sparse_rl.reporting.runs import UnevaluatedRunsWarning

REPS = 200  # enough for the checks below, fast
STEPS = (1000, 2000, 3000)
RESULTS = Path(__file__).parents[1] / "benchmarks/results"


def write_run(
    root: Path,
    method: str,
    env: str,
    seed: int,
    finals: dict[str, float] | float,
    *,
    steps: Sequence[int] = STEPS,
    done: bool = True,
) -> Path:
    """A run directory as training writes it; returns climb linearly to ``finals`` (per mode)."""
    run_dir = root / f"{method}-{env.replace('/', '_')}-s{seed}"
    run_dir.mkdir(parents=True)
    config = {"name": None, "algo": method, "env": {"id": env}, "seed": seed}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    per_mode = finals if isinstance(finals, dict) else {"default": finals}
    lines = ["step,mode,return_mean,return_std,episodes"]
    for mode, final in per_mode.items():
        for i, step in enumerate(steps):
            lines.append(f"{step},{mode},{final * (i + 1) / len(steps)},1.0,5")
    (run_dir / "eval.csv").write_text("\n".join(lines) + "\n")
    if done:
        (run_dir / "done.json").write_text("{}")
    return run_dir


def two_methods(root: Path, seeds: int = 4) -> list[reporting.RunRecord]:
    """Method A beats B on every seed of two DMC tasks."""
    for env in ("walker-walk", "cheetah-run"):
        for seed in range(seeds):
            write_run(root, "A", env, seed, 800.0 + 10 * seed)
            write_run(root, "B", env, seed, 200.0 + 30 * seed)
    return load_runs([root])


def report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparse-rl report")
    reporting.add_report_arguments(parser)
    return parser


# -- statistics ------------------------------------------------------------------------------


def test_aggregates_match_numpy_on_normalised_scores(tmp_path: Path) -> None:
    """DMC finals / 1000 → IQM, mean, median as numpy computes them; CIs hold the estimates."""
    summary = summarize(two_methods(tmp_path), reps=REPS)
    assert summary.normalized and summary.metric_names[-1] == "optimality gap"
    assert summary.aggregate_tasks == ["cheetah-run", "walker-walk"]
    for method, base, step in (("A", 800.0, 10), ("B", 200.0, 30)):
        column = (base + step * np.arange(4)) / 1000.0
        scores = np.stack([column, column], axis=1)  # runs x tasks
        got = summary.metrics[method]
        assert got["IQM"][0] == pytest.approx(np.sort(scores.ravel())[2:6].mean())
        assert got["mean"][0] == pytest.approx(scores.mean())
        assert got["median"][0] == pytest.approx(np.median(scores.mean(axis=0)))
        assert got["optimality gap"][0] == pytest.approx(1.0 - np.minimum(scores, 1.0).mean())
        for estimate, low, high in got.values():
            assert low <= estimate <= high


def test_probability_of_improvement(tmp_path: Path) -> None:
    """A always beats B: P(A > B) = 1 with a degenerate CI, and P(B > A) mirrors it."""
    summary = summarize(two_methods(tmp_path), reps=REPS)
    assert summary.improvement["A", "B"] == pytest.approx((1.0, 1.0, 1.0))
    assert summary.improvement["B", "A"] == pytest.approx((0.0, 0.0, 0.0))


def test_dmc_normalisation_and_ids(tmp_path: Path) -> None:
    """DMC returns are divided by 1000; gymnasium ids are not DMC."""
    summary = summarize(two_methods(tmp_path, seeds=2), reps=REPS)
    assert summary.ranges == {"cheetah-run": (0.0, 1000.0), "walker-walk": (0.0, 1000.0)}
    assert summary.metrics["A"]["mean"][0] == pytest.approx(0.805)
    assert on_dmc_scale("walker-walk") and on_dmc_scale("ball_in_cup-catch")
    assert on_dmc_scale("sparse_rl/walker-walk-video_hard-v0") and on_dmc_scale(
        "sparse_rl/cheetah-run-state-v0"
    )
    for gym_id in ("HalfCheetah-v5", "sparse_rl/NoisyHalfCheetah-v5", "pendulum-v1", "CartPole-v1"):
        assert not on_dmc_scale(gym_id), gym_id


def test_gym_env_raw_unless_normalised(tmp_path: Path) -> None:
    """Without a range the aggregates are raw and the gap is omitted, saying why; with one, not."""
    for seed in range(3):
        write_run(tmp_path, "A", "HalfCheetah-v5", seed, 3000.0 + seed)
        write_run(tmp_path, "B", "HalfCheetah-v5", seed, 1000.0 + seed)
    runs = load_runs([tmp_path])
    raw = summarize(runs, reps=REPS)
    assert not raw.normalized and "optimality gap" not in raw.metric_names
    assert raw.metrics["A"]["mean"][0] == pytest.approx(3001.0)
    assert any("--normalize" in note and "optimality gap" in note for note in raw.notes)
    scaled = summarize(runs, normalize={"HalfCheetah-v5": (-1000.0, 5000.0)}, reps=REPS)
    assert scaled.normalized and scaled.range_source["HalfCheetah-v5"] == "--normalize"
    assert scaled.metrics["A"]["mean"][0] == pytest.approx(4001.0 / 6000.0)


def test_bootstrap_bands(tmp_path: Path) -> None:
    """Bands sit at the steps all seeds share, have their shape and contain the mean."""
    write_run(tmp_path, "A", "walker-walk", 0, 500.0, steps=(1000, 2000, 3000, 4000))
    write_run(tmp_path, "A", "walker-walk", 1, 700.0)
    write_run(tmp_path, "A", "walker-walk", 2, 600.0)
    band = summarize(load_runs([tmp_path]), reps=REPS).bands["walker-walk", "A"]
    np.testing.assert_array_equal(band.steps, STEPS)
    assert band.mean.shape == band.low.shape == band.high.shape == (3,)
    assert np.all(band.low <= band.mean) and np.all(band.mean <= band.high)
    assert np.all(band.low < band.high)


def test_bootstrap_ci_matches_the_earlier_tables_formula() -> None:
    """One column gives the percentiles of ``rng.choice(values, size=(reps, n))`` means, the
    interval of the benchmark tables made before ``sparse-rl report``, so they regenerate."""
    values = np.array([3948.0, 3409.0, 3470.0])
    means = np.random.default_rng(0).choice(values, size=(2000, 3)).mean(axis=1)
    low, high = bootstrap_mean_ci(values[:, None], 2000, 0)
    assert (low[0], high[0]) == (np.percentile(means, 2.5), np.percentile(means, 97.5))


def test_unequal_seeds_use_the_minimum(tmp_path: Path) -> None:
    """A method with 3 seeds on one task and 2 on another aggregates 2 per task, and says so."""
    for seed in range(3):
        write_run(tmp_path, "A", "walker-walk", seed, 900.0)
    for seed in range(2):
        write_run(tmp_path, "A", "cheetah-run", seed, 900.0)
    for seed in range(4):  # methods may differ in run count
        write_run(tmp_path, "B", "walker-walk", seed, 100.0)
        write_run(tmp_path, "B", "cheetah-run", seed, 100.0)
    summary = summarize(load_runs([tmp_path]), reps=REPS)
    assert summary.runs_per_task == {"A": 2, "B": 4}
    assert len(summary.cells["walker-walk", "A"].seeds) == 3  # per-task tables keep every seed
    assert any("A has 3 runs" in note and "2 lowest-seeded" in note for note in summary.notes)
    assert summary.improvement["A", "B"][0] == pytest.approx(1.0)


def test_modes_are_tasks_unless_one_is_chosen(tmp_path: Path) -> None:
    """Visual runs: each mode is a task; ``mode`` picks one; a mode no run has is an error."""
    for seed in range(2):
        write_run(tmp_path, "madi", "walker-walk", seed, {"clean": 900.0, "video_hard": 500.0})
    runs = load_runs([tmp_path])
    assert summarize(runs, reps=REPS).tasks == ["walker-walk [clean]", "walker-walk [video_hard]"]
    chosen = summarize(runs, mode="video_hard", reps=REPS)
    assert chosen.tasks == ["walker-walk [video_hard]"]
    assert chosen.metrics["madi"]["mean"][0] == pytest.approx(0.5)
    with pytest.raises(ReportError, match=r"mode.*'video_easy'.*clean.*video_hard"):
        summarize(runs, mode="video_easy")


def test_tasks_not_every_method_has_are_left_out_of_aggregates(tmp_path: Path) -> None:
    for seed in range(2):
        write_run(tmp_path, "A", "walker-walk", seed, 900.0)
        write_run(tmp_path, "B", "walker-walk", seed, 100.0)
        write_run(tmp_path, "A", "cheetah-run", seed, 900.0)
    summary = summarize(load_runs([tmp_path]), reps=REPS)
    assert summary.aggregate_tasks == ["walker-walk"]
    assert any("left out: cheetah-run" in note for note in summary.notes)


# -- bad input --------------------------------------------------------------------------------


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist") as error:
        load_runs([tmp_path / "nope"])
    assert error.value.param == "paths"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"empty holds no run"):
        load_runs([tmp_path / "empty"])
    run_dir = write_run(tmp_path, "A", "walker-walk", 0, 1.0)
    (run_dir / "eval.csv").write_text("step,return\n1,2\n")
    with pytest.raises(ReportError, match=r"lacks column\(s\) \['mode', 'return_mean'\]"):
        load_runs([run_dir])
    (run_dir / "eval.csv").write_text("step,mode,return_mean\n1,default,nan?\n")
    with pytest.raises(ReportError, match="has a row that is not numbers"):
        load_runs([run_dir])


def test_duplicate_seeds_and_bad_ranges_are_errors(tmp_path: Path) -> None:
    write_run(tmp_path / "a", "A", "walker-walk", 0, 1.0)
    write_run(tmp_path / "b", "A", "walker-walk", 0, 2.0)
    runs = load_runs([tmp_path])
    with pytest.raises(ReportError, match=r"A on walker-walk has seed\(s\) \[0\] twice"):
        summarize(runs)
    with pytest.raises(ReportError, match="no run is on env 'Hopper-v5'") as error:
        summarize(runs[:1], normalize={"Hopper-v5": (0.0, 1.0)})
    assert error.value.param == "normalize"
    with pytest.raises(ReportError, match="high"):
        summarize(runs[:1], normalize={"walker-walk": (1.0, 1.0)})


def test_runs_without_evaluations_are_left_out_with_a_warning(tmp_path: Path) -> None:
    write_run(tmp_path, "A", "walker-walk", 0, 1.0)
    write_run(tmp_path, "A", "walker-walk", 1, 1.0, steps=())
    with pytest.warns(UnevaluatedRunsWarning, match="left out 1 run"):
        assert len(load_runs([tmp_path])) == 1
    with (
        pytest.warns(UnevaluatedRunsWarning),
        pytest.raises(ReportError, match="has an evaluation yet"),
    ):
        load_runs([tmp_path / "A-walker-walk-s1"])


# -- written files ----------------------------------------------------------------------------


def test_write_report_files_and_determinism(tmp_path: Path) -> None:
    runs = two_methods(tmp_path / "runs", seeds=3)
    out = reporting.write_report(runs, tmp_path / "one", reps=REPS, seed=3)
    for name in reporting.REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    assert "### walker-walk" in text and "| A | 3 |" in text and "| B | 3 |" in text
    assert "## Aggregate metrics (normalised scores" in text and "optimality gap" in text
    assert "## Probability of improvement" in text
    data = json.loads((out / "report.json").read_text())
    assert data["tasks"]["walker-walk"]["methods"]["A"]["finals"] == [800.0, 810.0, 820.0]
    assert data["aggregate"]["metrics"]["B"]["mean"]["estimate"] == pytest.approx(0.23)
    assert {(p["x"], p["y"]) for p in data["probability_of_improvement"]} == {
        ("A", "B"),
        ("B", "A"),
    }
    again = reporting.write_report(runs, tmp_path / "two", reps=REPS, seed=3)
    assert (again / "report.json").read_text() == (out / "report.json").read_text()
    assert (again / "report.md").read_text() == text


def test_noisy_variants_and_preference_diagnostics(tmp_path: Path) -> None:
    """PbRL runs on noisy and clean features are two tasks, each with its diagnostics table."""
    for noise in (0.9, None):
        for seed, (acc, real) in enumerate(((0.6, 60.0), (0.8, 80.0))):
            run_dir = write_run(tmp_path / f"n{noise}", "r2n", "walker-walk", seed, 100.0)
            config = yaml.safe_load((run_dir / "config.yaml").read_text())
            config["env"]["noise_fraction"] = noise
            (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
            (run_dir / "logs").mkdir()
            (run_dir / "logs" / "progress.csv").write_text(
                "time/total_timesteps,pbrl/heldout_accuracy_cumulative,"
                "pbrl/reward_real_connections\n"
                f"1000,0.5,50\n2000,{acc},{real}\n3000,,\n"  # the last row logged no session
            )
    runs = load_runs([tmp_path])
    assert {r.task("default") for r in runs} == {"walker-walk noise=0.9", "walker-walk"}
    out = reporting.write_report(runs, tmp_path / "report", reps=REPS)
    text = (out / "report.md").read_text()
    assert "| method | reward acc. (new labels) | conn. per real feature |" in text
    assert text.count("| r2n | 0.7 | 70 |") == 2
    data = json.loads((out / "report.json").read_text())
    diagnostics = data["tasks"]["walker-walk noise=0.9"]["methods"]["r2n"]["diagnostics"]
    assert diagnostics["pbrl/reward_real_connections"] == pytest.approx(70.0)


def test_mode_diagnostics_belong_to_their_mode_and_skip_nan(tmp_path: Path) -> None:
    """MaDi's mask scores are logged per evaluation mode: each mode's task shows its own, and a
    seed whose score is NaN (a mask that kept no pixel has no precision) is left out of the mean."""
    for seed, precision in enumerate(("0.2", "nan")):
        finals = {"clean": 5.0, "video_hard": 3.0}
        run_dir = write_run(tmp_path, "madi", "cartpole-swingup", seed, finals)
        (run_dir / "logs").mkdir()
        (run_dir / "logs" / "progress.csv").write_text(
            "time/total_timesteps,eval/clean/mask_iou,eval/video_hard/mask_iou,"
            "eval/video_hard/mask_precision,sparsity/actor_real_connections\n"
            f"3000,0.5,0.{seed + 1},{precision},7\n"
        )
    summary = summarize(load_runs([tmp_path]), reps=REPS)
    clean = summary.cells["cartpole-swingup [clean]", "madi"].diagnostics
    hard = summary.cells["cartpole-swingup [video_hard]", "madi"].diagnostics
    assert clean == {"sparsity/actor_real_connections": 7.0, "eval/clean/mask_iou": 0.5}
    assert hard["eval/video_hard/mask_iou"] == pytest.approx(0.15)
    assert hard["eval/video_hard/mask_precision"] == pytest.approx(0.2)
    out = reporting.write_report(load_runs([tmp_path]), tmp_path / "report", reps=REPS)
    text = (out / "report.md").read_text()
    assert "| madi | 7 | 0.15 | 0.2 |" in text and "| madi | 7 | 0.5 |" in text


# -- the command line -------------------------------------------------------------------------


def test_cli_writes_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two_methods(tmp_path / "runs", seeds=2)
    args = report_parser().parse_args(
        [str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--reps", "50", "--seed", "1"]
    )
    assert reporting.run_report(args) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert f"`sparse-rl report {tmp_path / 'runs'} --out {tmp_path / 'out'} --reps 50" in text


def test_cli_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        report_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("RUNS", "--out", "--mode", "--normalize", "--reps", "--seed"):
        assert option in out, option
    assert "--sweep" not in out


@pytest.mark.parametrize(
    "argv",
    [["--normalize", "HalfCheetah-v5"], ["--normalize", "H=1:x"], ["--normalize", "H=2:1"],
     ["--reps", "0"]],
)  # fmt: skip
def test_cli_rejects_bad_option_syntax(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        report_parser().parse_args([str(tmp_path), "--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["missing"], "argument RUNS: "),
        ([], "argument RUNS: "),
        (["runs", "--mode", "video_hard"], "argument --mode: "),
        (["runs", "--normalize", "Hopper-v5=0:1"], "argument --normalize: "),
        (["runs", "--normalize", "walker-walk=0:1", "--normalize", "walker-walk=0:2"],
         "argument --normalize: "),
        (["runs", "--seed", "-1"], "argument --seed: "),
    ],
)  # fmt: skip
def test_cli_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(tmp_path / "runs", "A", "walker-walk", 0, 1.0)
    argv = [str(tmp_path / a) if a in ("runs", "missing") else a for a in argv]
    args = report_parser().parse_args([*argv, "--out", str(tmp_path / "out")])
    assert reporting.run_report(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sparse-rl report: error: {flag}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


# -- the committed benchmark results ------------------------------------------------------------


def test_committed_noise_robustness_runs() -> None:
    """The committed runs (converted from the earlier script) give its table's numbers."""
    folder = RESULTS / "noise_robustness"
    runs = load_runs([folder / "runs", folder / "runs_clean"])
    assert len(runs) == 21 and all(r.finished for r in runs)
    dense = sorted(
        (r for r in runs if r.method == "dense" and r.variant == ""), key=lambda r: r.seed
    )
    finals = np.array([r.curves["default"].returns[-1] for r in dense])
    low, high = bootstrap_mean_ci(finals[:, None], 2000, 0)
    # noise_robustness/report/report.md, HalfCheetah-v5: | dense | 3 | 40000 | 3609 | [3409, 3948] |
    assert (round(finals.mean()), round(low[0]), round(high[0])) == (3609, 3409, 3948)
    summary = summarize(runs, reps=20)
    assert len(summary.tasks) == 3 and summary.aggregate_tasks[0] == "HalfCheetah-v5 noise=0.9"
    # ANF's diagnostic at the last evaluation, mean over seeds: actor real / noise, critic real
    anf = summary.cells["HalfCheetah-v5 noise=0.9", "anf"].diagnostics
    assert [round(anf[f"sparsity/{k}_connections"], 1) for k in
            ("actor_real", "actor_noise", "critic_real")] == [52.4, 51.1, 58.7]  # fmt: skip
    assert not summary.cells["HalfCheetah-v5 noise=0.9", "dense"].diagnostics


def test_committed_visual_runs() -> None:
    """The committed MaDi benchmark gives its table's video_hard row and mask quality."""
    runs = load_runs([RESULTS / "visual_distractions" / "runs"])
    assert len(runs) == 9 and all(r.finished for r in runs)
    assert {r.modes for r in runs} == {("clean", "video_hard")}
    madi = sorted((r for r in runs if r.method == "madi"), key=lambda r: r.seed)
    finals = np.array([r.curves["video_hard"].returns[-1] for r in madi])
    low, high = bootstrap_mean_ci(finals[:, None], 2000, 0)
    # visual_distractions/report/report.md: | madi | 3 | 5000 | 35.1 | [20.4, 53.3] |
    assert (round(finals.mean()), round(low[0]), round(high[0])) == (35, 20, 53)
    summary = summarize(runs, reps=20)
    masks = summary.cells["cartpole-swingup [video_hard]", "madi"].diagnostics
    # IoU / precision (over the 2 seeds whose masks keep a pixel) / recall; agent / background
    assert [round(masks[f"eval/video_hard/mask_{k}"], 2) for k in
            ("iou", "precision", "recall", "mean_agent", "mean_background")] == [
        0.02, 0.04, 0.48, 0.48, 0.16]  # fmt: skip
    assert not summary.cells["cartpole-swingup [clean]", "madi"].diagnostics
