"""The main job (``make demo``) end to end on a shortened budget: sweep, report, export, runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparse_rl import demo
from sparse_rl.sweeps import expand_sweep


def test_demo_default_is_r2n_against_pebble_on_noisy_features() -> None:
    """The fast representative: the embedded default is the valid R2N vs PEBBLE comparison the
    demo promises (95% noise features, 10k steps, 2 seeds each), with the package defaults."""
    runs = expand_sweep(demo.default_sweep())
    configs = [run.config for run in runs]
    assert sorted({c.algo for c in configs}) == ["pebble", "r2n"]
    assert {c.seed for c in configs} == {0, 1} and len(configs) == 4
    assert {c.env.noise_fraction for c in configs} == {0.95}
    assert {c.steps for c in configs} == {10_000}
    assert len(expand_sweep(demo.default_sweep(steps=1500, seeds=1))) == 2


@pytest.mark.slow
def test_demo_reports_both_methods_and_exports_r2n(tmp_path: Path, capsys) -> None:
    assert demo.main(["--out", str(tmp_path), "--steps", "1500", "--seeds", "1"]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| pebble | 1 |" in report and "| r2n | 1 |" in report
    assert (tmp_path / "report" / "curves.png").stat().st_size > 0
    assert (tmp_path / "report" / "reward_inputs.png").stat().st_size > 0
    card = json.loads((tmp_path / "export" / "card.json").read_text())
    assert card["provenance"]["env_id"] == "Pendulum-v1"
    loop = json.loads((tmp_path / "export" / "loop_report.json").read_text())
    assert loop["episodes"] == 3 and loop["invalid_observations"] == 0
    shares = capsys.readouterr().out.split("input weight on the real features: ")[1]
    assert "pebble " in shares and "r2n " in shares
    # Re-running skips the finished runs and rewrites the same outputs.
    assert demo.main(["--out", str(tmp_path), "--steps", "1500", "--seeds", "1"]) == 0
