"""ControlLoop, GymRobot and the CLI: counting, schedule, watchdog, errors, reports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from runtime_fixtures import (
    base_card,
    dict_model,
    dict_policy,
    mlp_model,
    mlp_policy,
    write_policy,
)

from sparse_rl.runtime import ControlLoop, GymRobot, LoopReport, Policy, RobotInterface
from sparse_rl.runtime.__main__ import _env_frame_stack, main

SAFE = -5.0


@pytest.fixture
def echo_policy(tmp_path: Path) -> Policy:
    """A 1-D policy whose action is its observation (raw, in [-10, 10]; safe action -5)."""
    layers = [(np.eye(1, dtype=np.float32), np.zeros(1, np.float32))]
    card = base_card(1, 1)
    card["action"].update(low=[-10.0], high=[10.0], output="raw", safe_action=[SAFE])
    write_policy(tmp_path / "echo", mlp_model(layers, ["identity"], "identity"), card)
    return Policy(tmp_path / "echo")


@pytest.fixture
def pendulum_policy(tmp_path: Path) -> Path:
    return mlp_policy(tmp_path / "pendulum", sizes=(3, 16, 1), seed=3)


class FakeRobot:
    """Observes its step number; ``delays[i]`` / ``fail_at`` make step ``i`` slow / raise."""

    def __init__(
        self,
        delays: dict[int, float] | None = None,
        episode_length: int | None = None,
        fail_at: int | None = None,
        observation: Callable[[int], Any] | None = None,
    ) -> None:
        self.delays = delays or {}
        self.episode_length = episode_length
        self.fail_at = fail_at
        self.observation = observation or (lambda i: np.array([float(i)], np.float32))
        self.step = 0
        self.in_episode = 0
        self.resets = 0
        self.safe_stops = 0
        self.sent: list[float] = []
        self.send_threads: set[str] = set()
        self.read_times: list[float] = []

    def reset(self) -> np.ndarray:
        self.resets += 1
        self.in_episode = 0
        return self.observation(self.step)

    def read_observation(self) -> Any:
        if self.step == self.fail_at:
            raise RuntimeError("camera unplugged")
        time.sleep(self.delays.get(self.step, 0.0))
        obs = self.observation(self.step)
        self.step += 1
        return obs

    def send_action(self, action: np.ndarray) -> bool:
        self.sent.append(float(action[0]))
        self.send_threads.add(threading.current_thread().name)
        if float(action[0]) != SAFE:
            self.in_episode += 1
        return self.episode_length is not None and self.in_episode >= self.episode_length

    def safe_stop(self) -> None:
        self.safe_stops += 1


def test_fake_robot_satisfies_the_protocol() -> None:
    assert isinstance(FakeRobot(), RobotInterface)
    assert isinstance(GymRobot(SimpleNamespace()), RobotInterface)


# ---------------------------------------------------------------------------------- counting


def test_steps_and_episodes_as_fast_as_possible(echo_policy: Policy) -> None:
    robot = FakeRobot(episode_length=3)
    report = ControlLoop(echo_policy, robot, hz=0).run(episodes=3)
    assert (report.steps, report.episodes, report.stopped_reason) == (9, 3, "episodes")
    assert robot.resets == 3 and robot.safe_stops == 1
    assert robot.sent == [float(i) for i in range(9)]
    report = ControlLoop(echo_policy, FakeRobot(episode_length=4), hz=0).run(steps=6, episodes=3)
    assert (report.steps, report.episodes, report.stopped_reason) == (6, 1, "steps")


def test_pendulum_episodes_match_a_manual_rollout(pendulum_policy: Path) -> None:
    policy = Policy(pendulum_policy)
    robot = GymRobot.from_id("Pendulum-v1", seed=0)
    report = ControlLoop(policy, robot, hz=0).run(episodes=2)
    assert (report.steps, report.episodes, report.stopped_reason) == (400, 2, "episodes")
    assert report.episode_returns == robot.episode_returns and len(report.episode_returns) == 2

    env = gym.make("Pendulum-v1")
    returns = []
    for seed in (0, None):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    assert report.episode_returns == pytest.approx(returns)

    again = ControlLoop(policy, GymRobot.from_id("Pendulum-v1", seed=0), hz=0).run(episodes=2)
    assert again.episode_returns == report.episode_returns  # fixed seed: reproducible


def test_report_has_latencies_and_serializes(echo_policy: Policy) -> None:
    robot = FakeRobot(observation=lambda i: None if i % 2 else np.array([1.0], np.float32))
    report = ControlLoop(echo_policy, robot, hz=0).run(steps=10)
    assert report.invalid_observations == 5 and robot.sent.count(SAFE) == 5
    assert report.inference_p50_ms is not None and report.inference_p50_ms > 0
    assert report.step_p50_ms is not None and report.step_p99_ms is not None
    assert report.step_p99_ms >= report.step_p50_ms > 0
    data = json.loads(json.dumps(report.to_dict()))
    assert data["steps"] == 10 and data["stopped_reason"] == "steps"
    text = report.summary()
    assert "p50" in text and "p99" in text and "invalid observations 5" in text
    assert "n/a" in LoopReport(stopped_reason="steps").summary()


def test_stop_from_another_thread(echo_policy: Policy) -> None:
    loop = ControlLoop(echo_policy, FakeRobot(), hz=100, max_overruns=1000)
    timer = threading.Timer(0.05, loop.stop)
    timer.start()
    report = loop.run()
    timer.join()
    assert report.stopped_reason == "stopped" and report.steps >= 1


# ---------------------------------------------------------------------------------- schedule


def test_absolute_schedule_does_not_drift(echo_policy: Policy) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    class SlowReadRobot(FakeRobot):
        def read_observation(self) -> Any:
            self.read_times.append(now[0])
            now[0] += 0.03  # each read takes 30 ms of (virtual) time
            return super().read_observation()

    robot = SlowReadRobot()
    loop = ControlLoop(echo_policy, robot, hz=10, clock=lambda: now[0], sleep=sleep)
    report = loop.run(steps=5)
    assert report.steps == 5 and report.overruns == 0
    np.testing.assert_allclose(robot.read_times, [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-9)
    np.testing.assert_allclose(sleeps, [0.07] * 4, atol=1e-9)


def test_realtime_rate(echo_policy: Policy) -> None:
    robot = FakeRobot()
    report = ControlLoop(echo_policy, robot, hz=100, max_overruns=1000).run(steps=10)
    assert report.steps == 10 and report.stopped_reason == "steps"
    assert report.duration_s >= 0.09  # 10 ticks 10 ms apart cannot finish sooner


# ---------------------------------------------------------------------------------- watchdog


def test_watchdog_holds_then_stops_a_stuck_step(echo_policy: Policy) -> None:
    robot = FakeRobot(delays={0: 0.2})  # the first read takes ten 20 ms periods
    report = ControlLoop(echo_policy, robot, hz=50, max_overruns=3).run(steps=10)
    assert report.stopped_reason == "watchdog"
    assert report.overruns == 3 and report.dropped_actions == 1 and report.steps == 1
    assert robot.sent == [SAFE] * 3  # three holds; the stale action 0 was never sent
    assert robot.send_threads == {"sparse-rl-watchdog"}
    assert robot.safe_stops >= 1
    assert "watchdog" in report.summary()


def test_watchdog_recovers_after_one_late_step(echo_policy: Policy) -> None:
    robot = FakeRobot(delays={2: 0.15})  # step 2 takes 1.5 periods of 100 ms
    report = ControlLoop(echo_policy, robot, hz=10, max_overruns=3).run(steps=5)
    assert report.stopped_reason == "steps" and report.steps == 5
    assert report.overruns >= 1 and report.dropped_actions >= 1
    assert 2.0 not in robot.sent  # step 2's action arrived after the hold: dropped
    # Every step sent its own action or was dropped; every overrun sent one hold. (Exact
    # counts would make the test depend on the machine's load; these identities do not.)
    assert robot.sent.count(SAFE) == report.overruns
    assert len(robot.sent) == report.steps - report.dropped_actions + report.overruns
    own = [a for a in robot.sent if a != SAFE]
    assert own == sorted(own) and set(own) <= {0.0, 1.0, 3.0, 4.0}


def test_no_watchdog_without_a_rate(echo_policy: Policy) -> None:
    robot = FakeRobot(delays={0: 0.05})
    report = ControlLoop(echo_policy, robot, hz=0).run(steps=2)
    assert report.overruns == 0 and robot.sent == [0.0, 1.0]


# ---------------------------------------------------------------------------------- errors


def test_robot_exception_stops_the_robot_and_propagates(echo_policy: Policy) -> None:
    robot = FakeRobot(fail_at=3)
    with pytest.raises(RuntimeError, match="camera unplugged"):
        ControlLoop(echo_policy, robot, hz=50, max_overruns=1000).run(steps=10)
    assert robot.safe_stops == 1
    assert set(robot.sent) <= {0.0, 1.0, 2.0, SAFE} and len(robot.sent) >= 3


def test_ctrl_c_stops_the_robot_and_propagates(echo_policy: Policy) -> None:
    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    robot = FakeRobot()
    with pytest.raises(KeyboardInterrupt):
        ControlLoop(echo_policy, robot, hz=10, sleep=sleep).run(steps=10)
    assert robot.safe_stops == 1


def test_watchdog_send_failure_propagates(echo_policy: Policy) -> None:
    class HoldFails(FakeRobot):
        def send_action(self, action: np.ndarray) -> bool:
            if float(action[0]) == SAFE:
                raise ConnectionError("arm not responding")
            return super().send_action(action)

    robot = HoldFails(delays={1: 0.2})
    with pytest.raises(ConnectionError, match="arm not responding"):
        ControlLoop(echo_policy, robot, hz=20).run(steps=5)
    assert robot.safe_stops >= 1 and robot.sent == [0.0]


def test_failing_safe_stop_does_not_hide_the_error(echo_policy: Policy) -> None:
    class StopFails(FakeRobot):
        def safe_stop(self) -> None:
            raise OSError("e-stop relay")

    with pytest.raises(RuntimeError, match="camera unplugged"):
        ControlLoop(echo_policy, StopFails(fail_at=0), hz=0).run(steps=3)
    with pytest.raises(OSError, match="e-stop relay"):  # with no other error, it surfaces
        ControlLoop(echo_policy, StopFails(), hz=0).run(steps=3)


def test_bad_arguments(echo_policy: Policy) -> None:
    with pytest.raises(ValueError, match="hz"):
        ControlLoop(echo_policy, FakeRobot(), hz=-1)
    with pytest.raises(ValueError, match="max_overruns"):
        ControlLoop(echo_policy, FakeRobot(), max_overruns=0)
    with pytest.raises(ValueError, match="steps"):
        ControlLoop(echo_policy, FakeRobot(), hz=0).run(steps=0)


# ---------------------------------------------------------------------------------- GymRobot


class RecordingEnv:
    """A gymnasium-API env that records reset seeds and stacks 3 frames of 2 channels."""

    def __init__(self, length: int = 3) -> None:
        self.length = length
        self.seeds: list[int | None] = []
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.arange(6, dtype=np.uint8)[:, None, None] + np.uint8(10 * self.t)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.seeds.append(seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._obs(), 1.0, False, self.t >= self.length, {}

    def close(self) -> None:
        pass


def test_gym_robot_seeds_once_and_keeps_returns() -> None:
    env = RecordingEnv(length=3)
    robot = GymRobot(env, seed=7)
    for _ in range(2):
        robot.reset()
        done = [robot.send_action(np.zeros(1)) for _ in range(3)]
        assert done == [False, False, True]
    assert env.seeds == [7, None] and robot.episode_returns == [3.0, 3.0]
    assert robot.send_action(np.zeros(1)) is True and env.t == 3  # ended: not stepped again
    robot.reset()
    robot.safe_stop()
    assert robot.send_action(np.zeros(1)) is False and env.t == 0  # stopped: ignored


def test_gym_robot_returns_the_newest_frame() -> None:
    robot = GymRobot(RecordingEnv(), frame_stack=3)
    np.testing.assert_array_equal(robot.reset()[:, 0, 0], [4, 5])
    robot.send_action(np.zeros(1))
    np.testing.assert_array_equal(robot.read_observation()[:, 0, 0], [14, 15])
    assert GymRobot(RecordingEnv()).reset().shape == (6, 1, 1)


def test_env_frame_stack_is_inferred_from_spaces(tmp_path: Path) -> None:
    from runtime_fixtures import pixel_policy

    from sparse_rl.runtime import load_card

    card = load_card(pixel_policy(tmp_path, frame_shape=(3, 4, 5), frame_stack=3))

    def env(obs: tuple[int, ...], act: tuple[int, ...] = (9,)) -> Any:
        return SimpleNamespace(
            observation_space=SimpleNamespace(shape=obs), action_space=SimpleNamespace(shape=act)
        )

    assert _env_frame_stack(card, env((9, 4, 5)), "x") == 3
    assert _env_frame_stack(card, env((3, 4, 5)), "x") is None
    with pytest.raises(Exception, match=r"observes shape \(3, 84, 84\)"):
        _env_frame_stack(card, env((3, 84, 84)), "x")
    with pytest.raises(Exception, match=r"takes actions of shape \(2,\)"):
        _env_frame_stack(card, env((9, 4, 5), (2,)), "x")


# ---------------------------------------------------------------------------------- CLI


def test_cli_run_as_a_subprocess(pendulum_policy: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "sparse_rl.runtime", "run", str(pendulum_policy)]
    cmd += ["--gym-id", "Pendulum-v1", "--no-realtime", "--episodes", "1", "--seed", "0"]
    cmd += ["--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "stopped: episodes after 200 steps, 1 episodes" in result.stdout
    assert "p50" in result.stdout and "p99" in result.stdout
    report = json.loads(out.read_text())
    assert report["episodes"] == 1 and len(report["episode_returns"]) == 1


def test_cli_check_and_errors(
    pendulum_policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(pendulum_policy)]) == 0
    out = capsys.readouterr().out
    assert "backend onnx: ok" in out and "backend numpy: ok" in out and "SparseSAC" in out
    assert main(["check", str(pendulum_policy), "--card-only"]) == 0
    assert "backend" not in capsys.readouterr().out

    argv = ["run", str(pendulum_policy), "--gym-id", "Pendulum-v1", "--steps", "5", "--hz", "0"]
    assert main([*argv, "--backend", "numpy"]) == 0
    assert "stopped: steps after 5 steps" in capsys.readouterr().out

    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no policy card here" in err and err.count("\n") == 1

    assert main(["run", str(pendulum_policy), "--gym-id", "NoSuchEnv-v0", "--hz", "0"]) == 1
    assert "cannot make 'NoSuchEnv-v0'" in capsys.readouterr().err

    wrong = mlp_policy(tmp_path / "wrong", sizes=(3, 4, 2))
    assert main(["run", str(wrong), "--gym-id", "Pendulum-v1", "--no-realtime"]) == 1
    assert "takes actions of shape (1,), the policy sends (2,)" in capsys.readouterr().err


def test_cli_help() -> None:
    for argv in (["--help"], ["run", "--help"], ["check", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0


def test_robot_template_fits_the_interface() -> None:
    """docs/deploy/robot_template.py imports against this API and satisfies the protocol."""
    path = Path(__file__).resolve().parents[1] / "docs" / "deploy" / "robot_template.py"
    spec = importlib.util.spec_from_file_location("robot_template", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    robot = module.UR5Robot("192.0.2.1", hz=25.0)
    assert isinstance(robot, RobotInterface)
    with pytest.raises(NotImplementedError, match="speedStop"):
        robot.safe_stop()
    robot.safe_stop()  # a second call is a no-op
    assert robot.send_action(np.zeros(6)) is True  # stopped: nothing moves until reset()


# ------------------------------------------------------ discrete actions, dict observations


class DictEnv:
    """A gymnasium-API env with dict observations and Discrete(5) actions; reward = action."""

    observation_space = gym.spaces.Dict(
        {
            "vec": gym.spaces.Box(-1, 1, (3,), np.float32),
            "img": gym.spaces.Box(0, 255, (1, 2, 2), np.uint8),
        }
    )
    action_space = gym.spaces.Discrete(5)

    def reset(self, seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> dict[str, Any]:
        vec = np.array([0.0, 0.0, 0.0], np.float32)
        vec[self.t % 3] = 1.0
        return {"vec": vec, "img": np.full((1, 2, 2), 10 * self.t, np.uint8)}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        assert self.action_space.contains(action), action
        self.t += 1
        return self._obs(), float(action), False, self.t >= 4, {}


def test_gym_robot_drives_a_dict_env_with_discrete_actions(tmp_path: Path) -> None:
    """The policy's scores are [*vec, mean(img) / 255]: it picks the hot vec index (or 3)."""
    card = base_card(1, 4)
    card["observation"] = json.loads((dict_policy(tmp_path / "d") / "card.json").read_text())[
        "observation"
    ]
    card["action"] = {"kind": "discrete", "n": 4, "output": "q_values", "safe_action": 3}
    policy = Policy(write_policy(tmp_path / "p", dict_model(), card))
    robot = GymRobot(DictEnv(), seed=0)
    obs = robot.reset()
    assert isinstance(obs, dict) and obs["img"].dtype == np.uint8
    report = ControlLoop(policy, robot, hz=0).run(episodes=1)
    assert report.invalid_observations == 0
    assert report.episode_returns == [0.0 + 1.0 + 2.0 + 0.0]  # vec is hot at t % 3
    with pytest.raises(ValueError, match="not dict observations"):
        GymRobot(DictEnv(), frame_stack=2).reset()


def _spaces(obs: Any, act: Any) -> Any:
    return SimpleNamespace(observation_space=obs, action_space=act)


def test_env_spaces_are_checked_against_discrete_and_dict_cards(tmp_path: Path) -> None:
    from runtime_fixtures import DISCRETE_ACTIONS, scores_policy

    from sparse_rl.runtime import load_card

    box = gym.spaces.Box(-1, 1, (5,), np.float32)
    discrete = load_card(scores_policy(tmp_path / "d", DISCRETE_ACTIONS["discrete"]))
    assert _env_frame_stack(discrete, _spaces(box, gym.spaces.Discrete(5)), "x") is None
    for action_space, message in (
        (gym.spaces.Discrete(4), r"x takes Discrete\(4\), the policy sends indices from 0 to"),
        (gym.spaces.Discrete(5, start=1), "x takes Discrete"),
        (gym.spaces.Box(-1, 1, (5,)), "x takes box actions, the policy sends discrete actions"),
        (gym.spaces.MultiBinary(5), "x takes multi_binary actions"),
    ):
        with pytest.raises(Exception, match=message):
            _env_frame_stack(discrete, _spaces(box, action_space), "x")
    multi = load_card(scores_policy(tmp_path / "m", DISCRETE_ACTIONS["multi_discrete"]))
    assert _env_frame_stack(multi, _spaces(box, gym.spaces.MultiDiscrete([2, 3])), "x") is None
    with pytest.raises(Exception, match=r"x takes MultiDiscrete\(\[3 2\]\)"):
        _env_frame_stack(multi, _spaces(box, gym.spaces.MultiDiscrete([3, 2])), "x")

    card = load_card(dict_policy(tmp_path / "dict"))
    act = gym.spaces.Box(-1000, 1000, (4,), np.float32)
    assert _env_frame_stack(card, _spaces(DictEnv.observation_space, act), "x") is None
    other = gym.spaces.Dict(
        {"vec": gym.spaces.Box(-1, 1, (4,)), "img": DictEnv.observation_space["img"]}
    )
    for obs_space, message in (
        (other, r"x observes 'vec' of shape \(4,\), the policy reads \(3,\)"),
        (gym.spaces.Dict({"vec": other["vec"]}), r"x observes keys \['vec'\]"),
        (box, "x gives no dict observations, the policy reads dict observations"),
    ):
        with pytest.raises(Exception, match=message):
            _env_frame_stack(card, _spaces(obs_space, act), "x")
    vector = load_card(mlp_policy(tmp_path / "v", sizes=(3, 4, 4)))
    with pytest.raises(Exception, match="x gives dict observations, the policy reads vector"):
        _env_frame_stack(vector, _spaces(DictEnv.observation_space, act), "x")
