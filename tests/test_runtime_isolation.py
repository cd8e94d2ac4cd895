"""The runtime needs numpy + onnxruntime only: proven in a process where the rest cannot load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from runtime_fixtures import DISCRETE_ACTIONS, dict_policy, mlp_policy, pixel_policy, scores_policy

REPO = Path(__file__).resolve().parents[1]

#: Imported as the robot computer would: anything torch-, SB3- or gym-shaped is missing, and
#: unpickling raises, so a pickle-based load anywhere in the runtime fails the test.
ROBOT_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = ("torch", "stable_baselines3", "gymnasium", "gym", "onnx", "onnxscript", "scipy",
               "sparse_rl.agents", "sparse_rl.envs", "sparse_rl.sparse_nets",
               "sparse_rl.supervised")
    attempts = []

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                attempts.append(name)
                raise ImportError(f"{name} is not installed on the robot")
            return None

    sys.meta_path.insert(0, Block())

    import pickle
    import numpy as np

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the runtime unpickled something")

    pickle.load = pickle.loads = no_unpickling
    pickle.Unpickler = no_unpickling

    from sparse_rl.runtime import ControlLoop, Policy, load_card

    vector_dir, pixel_dir, discrete_dir, dict_dir = sys.argv[1:5]
    for backend in ("onnx", "numpy"):
        discrete = Policy(discrete_dir, backend=backend)
        assert discrete.act(np.array([0, 1, 0, 0, 0], np.float32)) == 1
    inputs = {"vec": np.zeros(3, np.float32), "img": np.zeros((1, 2, 2), np.uint8)}
    assert Policy(dict_dir).act(inputs).shape == (4,)
    for backend in ("onnx", "numpy"):
        policy = Policy(vector_dir, backend=backend)
        action = policy.act(np.zeros(3, np.float32))
        assert action.shape == (2,) and np.isfinite(action).all(), action
    pixels = Policy(pixel_dir)
    assert pixels.act(np.zeros((3, 4, 5), np.uint8)).shape == (9,)

    class Robot:
        def reset(self):
            return np.zeros(3, np.float32)
        def read_observation(self):
            return np.zeros(3, np.float32)
        def send_action(self, action):
            return False
        def safe_stop(self):
            pass

    report = ControlLoop(policy, Robot(), hz=200, max_overruns=1000).run(steps=5)
    assert report.steps == 5, report
    print(load_card(vector_dir).describe())
    leaked = [m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED)]
    assert not leaked, leaked
    assert not attempts, f"the runtime tried to import {attempts}"
    print("ROBOT-OK")
    """
)


def test_runtime_runs_without_torch_sb3_gym_or_pickle(tmp_path: Path) -> None:
    dirs = [
        mlp_policy(tmp_path / "vector"),
        pixel_policy(tmp_path / "pixels"),
        scores_policy(tmp_path / "discrete", DISCRETE_ACTIONS["discrete"]),
        dict_policy(tmp_path / "dict"),
    ]
    result = subprocess.run(
        [sys.executable, "-c", ROBOT_SCRIPT, *map(str, dirs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ROBOT-OK" in result.stdout


def test_numpy_backend_runs_without_onnxruntime(tmp_path: Path) -> None:
    vector_dir = mlp_policy(tmp_path / "vector")
    script = textwrap.dedent(
        """
        import sys
        sys.modules["onnxruntime"] = None  # import onnxruntime now raises ImportError
        import numpy as np
        from sparse_rl.runtime import Policy
        policy = Policy(sys.argv[1], backend="numpy")
        assert policy.act(np.zeros(3, np.float32)).shape == (2,)
        try:
            Policy(sys.argv[1])
        except ImportError as exc:
            assert "backend='numpy'" in str(exc)
        else:
            raise AssertionError("the onnx backend loaded without onnxruntime")
        print("NUMPY-OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(vector_dir)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "NUMPY-OK" in result.stdout


@pytest.mark.slow
def test_fresh_venv_with_numpy_and_onnxruntime_only(tmp_path: Path) -> None:
    """Install only numpy + onnxruntime (+ sparse-rl without its dependencies) and check."""
    policy_dir = mlp_policy(tmp_path / "policy")
    env_dir = tmp_path / "robot-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(python), *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    run("-m", "pip", "install", "--quiet", "numpy", "onnxruntime")
    run("-m", "pip", "install", "--quiet", "--no-deps", str(_source_copy(tmp_path / "src")))
    listed = run("-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "torch" not in listed and "gymnasium" not in listed
    check = run("-m", "sparse_rl.runtime", "check", str(policy_dir), timeout=120)
    assert "backend onnx: ok" in check.stdout and "backend numpy: ok" in check.stdout
    # The simulated robot (README): gymnasium drives Pendulum-v1 through the control loop.
    pendulum = mlp_policy(
        tmp_path / "pendulum", sizes=(3, 16, 16, 1), low=[-2.0], high=[2.0], safe_action=[0.0]
    )
    run("-m", "pip", "install", "--quiet", "gymnasium")
    loop = run(
        "-m", "sparse_rl.runtime", "run", str(pendulum), "--gym-id", "Pendulum-v1",
        "--episodes", "1", "--hz", "200", "--seed", "0", timeout=120,
    )  # fmt: skip
    assert "1 episodes" in loop.stdout or "1 episode" in loop.stdout, loop.stdout
    assert "torch" not in run("-m", "pip", "list", "--format=freeze").stdout.lower()


def _source_copy(dest: Path) -> Path:
    """The repo without its heavy or generated parts: pip builds in-tree and leaves build/."""
    skip = {".git", ".venv", "build", "benchmarks", "tests", "docs", "__pycache__", ".hypothesis"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in skip or n.endswith((".egg-info", ".pyc"))}

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest
