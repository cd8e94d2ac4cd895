"""The command line and the package import's side effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparse_rl import cli


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    """``sparse-rl --help`` exits 0 and lists every subcommand."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: sparse-rl" in out
    for name in ("demo", "train", "eval", "export", "deploy", "sweep", "report", "bench"):
        assert name in out, f"subcommand {name!r} missing from --help"
    assert "option_strings" not in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a subcommand the help is printed and the exit status is 0."""
    assert cli.main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_bench_lists_and_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    """``sparse-rl bench`` knows its speed benchmarks and names the valid ones on a typo."""
    assert cli.main(["bench", "--list"]) == 0
    assert "export_latency" in capsys.readouterr().out
    assert cli.main(["bench", "sparse_core_sped"]) == 2
    assert "sparse_core_speed" in capsys.readouterr().err


def _mujoco_gl_after_import(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    if env_value is not None:
        env["MUJOCO_GL"] = env_value
    code = "import os, sparse_rl; print(os.environ.get('MUJOCO_GL', '<unset>'))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_import_sets_mujoco_gl_egl_when_unset() -> None:
    """``import sparse_rl`` chooses headless EGL rendering when the user chose nothing."""
    assert _mujoco_gl_after_import(None) == "egl"


def test_import_keeps_users_mujoco_gl() -> None:
    """A user's MUJOCO_GL wins over the default."""
    assert _mujoco_gl_after_import("osmesa") == "osmesa"


def test_deploy_is_the_runtime_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sparse-rl deploy check DIR`` reaches the runtime: a missing card is a one-line error."""
    assert cli.main(["deploy", "check", str(tmp_path)]) == 1
    assert "card.json" in capsys.readouterr().err


def test_demo_help_describes_what_sparse_rl_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``sparse-rl --help`` describes the job ``sparse-rl demo`` runs (its own description)."""
    from sparse_rl import demo

    with pytest.raises(SystemExit):
        demo.main(["--help"])
    own = " ".join(capsys.readouterr().out.split())
    assert "R2N vs PEBBLE" in own
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = " ".join(capsys.readouterr().out.split())
    line = listed[listed.index("demo") :]
    assert "R2N vs PEBBLE" in line[:200] and "%" not in line[:200]
