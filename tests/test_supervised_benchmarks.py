"""The supervised benchmarks' quick paths, their reports on made-up rows, and the demo.

The full runs take hours; here ``run --quick`` goes through every code path on tiny sizes
(rows, resuming, the report and its figure), and the reports' goal verdicts are checked on rows
whose answers are known.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[SimpleNamespace]:
    """The benchmark scripts, imported the way they import each other when run."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        names = ("feature_selection", "feature_selection_report", "robustness", "robustness_report")
        yield SimpleNamespace(**{n: importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(BENCHMARKS))


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- problems --------------------------------------------------------------------------------


def test_problems_hide_their_columns_and_xor_has_no_marginal_signal() -> None:
    """Relevant columns sit at seeded random places, so a selector that ignores the data (equal
    scores, lowest indices first) covers them only by chance; each XOR column alone is
    independent of the label, while the Madelon-style relevant columns carry ANOVA signal."""
    from sparse_rl.supervised.demo import (
        anova_scores,
        coverage,
        madelon_problem,
        parity_problem,
        top_k,
    )

    X, y, relevant = parity_problem(4000, 20, 2, seed=3)
    assert X.shape == (4000, 20) and set(np.unique(y)) == {0, 1} and len(relevant) == 2
    for column in relevant:  # P(y = 1 | sign of one column) stays 1/2
        assert abs(y[X[:, column] > 0].mean() - 0.5) < 0.04
    both = (X[:, relevant] > 0).sum(axis=1) % 2
    assert np.array_equal(both, y)
    blind = [coverage(top_k(np.zeros(50), 2), parity_problem(10, 50, 2, s)[2]) for s in range(20)]
    assert np.mean(blind) < 0.2
    assert coverage([1, 2, 3], [3, 4]) == 0.5

    X, y, relevant = madelon_problem(400, 60, 3, 5, 2, 2.0, seed=0)
    assert X.shape == (400, 60) and len(relevant) == 8
    assert not np.array_equal(relevant, np.arange(8))  # permuted away from the front
    assert coverage(top_k(anova_scores(X, y), 8), relevant) >= 0.5


# -- feature selection -----------------------------------------------------------------------


def test_feature_selection_quick_runs_resumes_and_reports(
    bench: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--quick", "--out", str(tmp_path), "--jobs", "1", "--arms", "set-attr"]
    args += ["quickselection", "anova", "random", "all"]
    bench.feature_selection.main(args)
    rows = rows_of(tmp_path / "feature_selection" / "rows.jsonl")
    assert len(rows) == 15 and {r["scale"] for r in rows} == {"quick"}
    for row in rows:
        assert 0 <= row["accuracy"] <= 1 and row["seconds"] >= 0
        if row["problem"] == "digits" or row["arm"] == "all":
            assert row["coverage"] is None
        else:
            assert 0 <= row["coverage"] <= 1 and len(row["selected"]) == row["k"]
    heat = next(r for r in rows if r["problem"] == "digits" and r["arm"] == "set-attr")
    assert len(heat["scores"]) == 64 and abs(sum(heat["scores"]) - 1) < 1e-3
    md = (tmp_path / "feature_selection.md").read_text()
    assert "Quick smoke" in md and "| xor | 2 | anova | 1 |" in md
    assert (tmp_path / "feature_selection.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "feature_selection" / "machine.json").read_text())["cores"]
    capsys.readouterr()
    bench.feature_selection.main(args)  # resumes: nothing left to run
    assert "0 runs to do, 15 done" in capsys.readouterr().out
    assert len(rows_of(tmp_path / "feature_selection" / "rows.jsonl")) == 15


def test_quick_never_writes_into_results(bench: SimpleNamespace) -> None:
    target = bench.feature_selection.RESULTS / "smoke"
    with pytest.raises(SystemExit, match="outside"):
        bench.feature_selection.main(["run", "--quick", "--out", str(target)])
    with pytest.raises(SystemExit, match="outside"):
        bench.robustness.main(["run", "--quick", "--out", str(target)])
    assert not target.exists()


def _fs_row(problem: str, arm: str, seed: int, coverage: float | None, accuracy: float) -> dict:
    k = {"madelon": 20, "xor": 2, "digits": 10}[problem]
    row = {"problem": problem, "arm": arm, "seed": seed, "scale": "full", "k": k,
           "n_features": {"madelon": 500, "xor": 50, "digits": 64}[problem],
           "coverage": coverage, "accuracy": accuracy, "seconds": 1.0}  # fmt: skip
    if problem == "digits" and arm != "random":
        row["scores"] = list(np.full(64, 1 / 64))
    return row


def test_feature_selection_report_judges_each_goal(bench: SimpleNamespace, tmp_path: Path) -> None:
    """Made-up rows with known answers: set-attr meets every goal, set-strength none."""
    jitter = (-0.01, 0.0, 0.01, 0.0, 0.005)
    rows = []
    for s, j in enumerate(jitter):
        rows += [
            _fs_row("madelon", "set-attr", s, 0.9 + j, 0.95 + j),
            _fs_row("madelon", "set-strength", s, 0.6 + j, 0.90 + j),
            _fs_row("madelon", "anova", s, 0.75 + j, 0.94 + j),
            _fs_row("madelon", "random", s, 0.05 + j, 0.65 + j),
            _fs_row("xor", "set-attr", s, 1.0, 0.96 + j),
            _fs_row("xor", "set-strength", s, 0.5, 0.70 + j),
            _fs_row("xor", "anova", s, 0.0, 0.50 + j),
            _fs_row("xor", "random", s, 0.04, 0.50 + j),
            _fs_row("digits", "set-attr", s, None, 0.90 + j),
            _fs_row("digits", "random", s, None, 0.75 + j),
            _fs_row("digits", "all", s, None, 0.98 + j),
        ]
    path = bench.feature_selection_report.write_report(rows, tmp_path, "python x report")
    md = path.read_text()
    assert "Quick smoke" not in md and "`python x report`" in md
    assert "| set-attr | 0.901 [0.895, 0.906] | yes | yes (+0.150, intervals disjoint) |" in md
    assert "| set-strength | 0.601 [0.595, 0.606] | no | no (-0.150, intervals disjoint) |" in md
    assert "at chance (within 0.05 of 0.5)" in md
    assert "| set-attr | 1.000 [1.000, 1.000] | yes | yes |" in md
    assert "| set-strength | 0.500 [0.500, 0.500] | no | no |" in md
    assert "| digits | set-attr | 0.901 [0.895, 0.906] | +0.150 | yes |" in md
    assert "| xor | set-strength | 0.701 [0.695, 0.706] | +0.200 | yes |" in md
    assert "| madelon | set | 0.901 [0.895, 0.906] | 0.601 [0.595, 0.606] | yes (+0.300" in md
    assert (tmp_path / "feature_selection.png").stat().st_size > 10_000


# -- robustness ------------------------------------------------------------------------------


def test_robustness_quick_runs_and_reports(bench: SimpleNamespace, tmp_path: Path) -> None:
    bench.robustness.main(
        ["run", "--quick", "--out", str(tmp_path), "--jobs", "1", "--models", "mlp",
         "--arms", "dense", "rigl-0.5", "--settings", "full", "hard50"]
    )  # fmt: skip
    rows = rows_of(tmp_path / "robustness" / "rows.jsonl")
    assert len(rows) == 4
    for row in rows:
        assert 0 <= row["pgd"] <= row["clean"] <= 1 and 0 <= row["mca"] <= 1
        assert len(row["accuracy"]) == 10 and row["severities"] == [1, 3, 5]
    sparse = [r for r in rows if r["arm"] == "rigl-0.5"]
    assert all(0.4 < r["density"] < 0.6 for r in sparse)
    hard = {r["train_samples"] for r in rows if r["setting"] == "hard50"}
    full = {r["train_samples"] for r in rows if r["setting"] == "full"}
    assert len(hard) == 1 and abs(hard.pop() - full.pop() / 2) <= 1
    md = (tmp_path / "robustness.md").read_text()
    assert "Quick smoke" in md and "| mlp | full | dense | 1 |" in md
    assert "1.000 [1.000, 1.000]" in md  # the dense model's mCE against itself
    assert (tmp_path / "robustness.png").stat().st_size > 10_000


def _rb_row(arm: str, seed: int, mca: float) -> dict:
    accuracy = {"gaussian_noise": [mca] * 5, "contrast": [mca] * 5}
    return {"model": "mlp", "setting": "full", "arm": arm, "seed": seed, "scale": "full",
            "train_samples": 1000, "clean": 0.95, "mca": mca, "relative_drop": 0.2,
            "pgd": 0.5, "accuracy": accuracy, "seconds": 2.0}  # fmt: skip


def test_robustness_report_tests_the_claim(bench: SimpleNamespace, tmp_path: Path) -> None:
    """rigl-0.9 above dense with disjoint intervals meets the claim; set-0.5 below does not;
    mCE is the error ratio against the same seed's dense model."""
    report = bench.robustness_report
    assert report.mce({"a": [0.5, 0.5], "b": [0.8, 0.8]}, {"a": [0.0, 0.0], "b": [0.6, 0.6]}) == (
        pytest.approx((0.5 + 0.5) / 2)
    )
    rows = []
    for s, j in enumerate((-0.005, 0.0, 0.005, 0.0, 0.002)):
        rows += [
            _rb_row("dense", s, 0.70 + j),
            _rb_row("rigl-0.9", s, 0.75 + j),
            _rb_row("set-0.5", s, 0.68 + j),
        ]
    md = report.write_report(rows, tmp_path, "python y report").read_text()
    assert "Claim met in 1 of 1 (model, setting) cells: mlp/full." in md
    assert "| mlp | full | rigl-0.9 |" in md and "| disjoint, above | met |" in md
    assert "| disjoint, below | not met |" in md
    lines, met = report.verdicts(report._groups(rows[:3]))  # one seed: no interval, no claim
    assert met == {("mlp", "full"): False} and "one seed: no interval" in lines[2]


# -- demo ------------------------------------------------------------------------------------


def test_demo_quick_finds_the_xor_columns(tmp_path: Path) -> None:
    from sparse_rl.supervised import demo

    assert demo.main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    (xor,) = results["xor"]
    assert xor["sparse"]["coverage"] == 1.0 and xor["anova"]["coverage"] < 1.0
    assert abs(xor["anova"]["accuracy"] - 0.5) < 0.1 < xor["sparse"]["accuracy"] - 0.5
    digits = results["digits"]
    assert len(digits["importance"]) == 64
    assert digits["sparse"]["accuracy"] > digits["random"]["accuracy"]
    assert (tmp_path / "feature_selection.png").stat().st_size > 10_000
