"""The main job (``make demo``) end to end on a shortened budget: sweep, report, export, runtime."""

from __future__ import annotations

import json
from pathlib import Path

from sparse_rl import demo


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
