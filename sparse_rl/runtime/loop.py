"""A fixed-rate control loop with a watchdog: read, act, send, sleep until the next tick.

A real arm must get a fresh command every period. If a step (camera read, inference, command)
misses its deadline, the watchdog thread sends the policy's ``safe_action`` (a hold) at once and
again every period the step stays stuck; the step's own action, now stale, is dropped. After
``max_overruns`` consecutive periods held by the watchdog, it calls ``robot.safe_stop()`` and the
loop ends with ``stopped_reason == "watchdog"``. Any exception (from the robot, the policy or a
Ctrl-C) also ends in ``safe_stop()`` before it propagates, and so does a normal end.

The watchdog is a Python thread: it fires within the interpreter's switch interval (5 ms) of a
deadline unless a C extension holds the GIL that long (onnxruntime and ``time.sleep`` release it).
A robot that must stop even if this process hangs needs its own command timeout as well, as
UR's ``speedJ`` has: the arm stops when commands stop coming.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .policy import LOGGER_NAME, LatencyStats, Policy

log = logging.getLogger(LOGGER_NAME)


@runtime_checkable
class RobotInterface(Protocol):
    """What ``ControlLoop`` needs from a robot (or a simulated one: ``GymRobot``)."""

    def reset(self) -> np.ndarray:
        """Go to the start pose / start an episode; return the first observation."""
        ...

    def read_observation(self) -> np.ndarray:
        """The newest observation (one frame for pixel policies; the runtime stacks them)."""
        ...

    def send_action(self, action: np.ndarray) -> bool:
        """Command ``action`` (env units); return True when the episode has ended."""
        ...

    def safe_stop(self) -> None:
        """Stop all motion; safe to call repeatedly and from another thread."""
        ...


@dataclass
class LoopReport:
    """What a ``ControlLoop.run`` did, for logs and JSON."""

    steps: int = 0
    episodes: int = 0
    stopped_reason: str = ""
    hz: float = 0.0
    duration_s: float = 0.0
    overruns: int = 0
    dropped_actions: int = 0
    invalid_observations: int = 0
    nonfinite_actions: int = 0
    episode_returns: list[float] = field(default_factory=list)
    inference_p50_ms: float | None = None
    inference_p99_ms: float | None = None
    step_p50_ms: float | None = None
    step_p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def summary(self) -> str:
        """A few lines for people."""
        rate = f"{self.hz:g} Hz" if self.hz > 0 else "as fast as possible"
        lines = [
            f"stopped: {self.stopped_reason} after {self.steps} steps, {self.episodes} episodes"
            f" in {self.duration_s:.2f} s ({rate})"
        ]
        if self.episode_returns:
            returns = ", ".join(f"{r:.2f}" for r in self.episode_returns[:10])
            more = ", ..." if len(self.episode_returns) > 10 else ""
            mean = float(np.mean(self.episode_returns))
            lines.append(f"episode returns: {returns}{more} (mean {mean:.2f})")
        lines.append(
            f"overruns {self.overruns}, dropped actions {self.dropped_actions}, invalid "
            f"observations {self.invalid_observations}, non-finite actions {self.nonfinite_actions}"
        )
        lines.append(
            f"latency ms: inference p50 {_ms(self.inference_p50_ms)} p99 "
            f"{_ms(self.inference_p99_ms)}; step p50 {_ms(self.step_p50_ms)} p99 "
            f"{_ms(self.step_p99_ms)}"
        )
        return "\n".join(lines)


class ControlLoop:
    """Drive ``robot`` with ``policy`` at ``hz`` on an absolute schedule, under a watchdog.

    :param policy: the loaded policy; its ``safe_action`` is the watchdog's hold command.
    :param robot: anything with the ``RobotInterface`` methods.
    :param hz: control rate; ``0`` runs as fast as possible with no watchdog (simulation).
    :param max_overruns: consecutive watchdog holds before ``safe_stop()`` ends the run.
    :param clock: monotonic seconds (injectable for tests).
    :param sleep: sleeps between ticks (injectable for tests).
    """

    def __init__(
        self,
        policy: Policy,
        robot: RobotInterface,
        hz: float = 25.0,
        max_overruns: int = 3,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not math.isfinite(hz) or hz < 0:
            raise ValueError(f"hz must be >= 0 (0: as fast as possible), got {hz}")
        if max_overruns < 1:
            raise ValueError(f"max_overruns must be >= 1, got {max_overruns}")
        self.policy = policy
        self.robot = robot
        self.hz = float(hz)
        self.period = 1.0 / hz if hz > 0 else 0.0
        self.max_overruns = max_overruns
        self.clock = clock
        self.sleep = sleep
        self._safe = policy.safe_action
        # One lock orders every command to the robot (the loop's, the watchdog's, safe_stop) and
        # guards the watchdog state below; the condition wakes the watchdog when it is re-armed.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop_requested = threading.Event()
        self._reset_watchdog_state()

    @property
    def realtime(self) -> bool:
        """Whether the loop keeps a rate (and a watchdog)."""
        return self.period > 0

    def stop(self) -> None:
        """Ask a running loop to end after the current step (thread-safe)."""
        self._stop_requested.set()

    def run(self, steps: int | None = None, episodes: int | None = None) -> LoopReport:
        """Run until ``steps`` steps or ``episodes`` episodes (whichever first), or a stop.

        With neither, run until ``stop()``, a watchdog stop, an exception or Ctrl-C.
        """
        for name, value in (("steps", steps), ("episodes", episodes)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        self._stop_requested.clear()
        self._reset_watchdog_state()
        report = LoopReport(hz=self.hz)
        returns = getattr(self.robot, "episode_returns", None)
        returns_before = len(returns) if isinstance(returns, list) else 0
        invalid_before = self.policy.invalid_count
        nonfinite_before = self.policy.nonfinite_action_count
        inference, step_time = LatencyStats(), LatencyStats()
        watchdog = None
        if self.realtime:
            watchdog = threading.Thread(target=self._watch, name="sparse-rl-watchdog", daemon=True)
            watchdog.start()
        started = self.clock()
        error: BaseException | None = None
        try:
            self._loop(report, steps, episodes, inference, step_time)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._stop_watchdog(watchdog)
            self._final_safe_stop(error)
            report.duration_s = self.clock() - started
            report.overruns = self._overruns
            report.invalid_observations = self.policy.invalid_count - invalid_before
            report.nonfinite_actions = self.policy.nonfinite_action_count - nonfinite_before
            report.inference_p50_ms, report.inference_p99_ms = inference.p50_ms, inference.p99_ms
            report.step_p50_ms, report.step_p99_ms = step_time.p50_ms, step_time.p99_ms
            returns = getattr(self.robot, "episode_returns", None)
            if isinstance(returns, list):
                report.episode_returns = [float(r) for r in returns[returns_before:]]
        return report

    # ------------------------------------------------------------------ the loop thread

    def _loop(
        self,
        report: LoopReport,
        steps: int | None,
        episodes: int | None,
        inference: LatencyStats,
        step_time: LatencyStats,
    ) -> None:
        self._start_episode()
        next_tick = self.clock()
        while True:
            if self.realtime:
                delay = next_tick - self.clock()
                if delay > 0:
                    self.sleep(delay)
            tick = next_tick
            t0 = self.clock()
            with self._wake:
                self._deadline = tick + self.period if self.realtime else None
                self._held = False
                self._wake.notify()
            observation = self.robot.read_observation()
            t1 = self.clock()
            action = self.policy.act(observation)
            inference.record(self.clock() - t1)
            with self._wake:
                self._deadline = None
                if self._error is not None:
                    raise self._error
                if self._held or self._stop_reason is not None:
                    report.dropped_actions += 1  # the watchdog already held: this one is stale
                    done = self._hold_ended_episode
                else:
                    self._consecutive = 0
                    done = bool(self.robot.send_action(action))
                stop_reason = self._stop_reason
            step_time.record(self.clock() - t0)
            report.steps += 1
            if stop_reason is not None:
                report.stopped_reason = stop_reason
                return
            if done:
                report.episodes += 1
                if episodes is not None and report.episodes >= episodes:
                    report.stopped_reason = "episodes"
                    return
            if steps is not None and report.steps >= steps:
                report.stopped_reason = "steps"
                return
            if self._stop_requested.is_set():
                report.stopped_reason = "stopped"
                return
            if done:
                self._start_episode()
                next_tick = self.clock()  # a reset takes as long as it takes: re-anchor
            elif self.realtime:
                next_tick = tick + self.period
                now = self.clock()
                if now > next_tick:  # late: skip the missed ticks instead of bursting to catch up
                    next_tick += math.ceil((now - next_tick) / self.period) * self.period

    def _start_episode(self) -> None:
        self.robot.reset()
        self.policy.reset()
        with self._wake:
            self._hold_ended_episode = False

    # ------------------------------------------------------------------ the watchdog thread

    def _reset_watchdog_state(self) -> None:
        self._deadline: float | None = None
        self._held = False
        self._hold_ended_episode = False
        self._consecutive = 0
        self._overruns = 0
        self._stop_reason: str | None = None
        self._error: BaseException | None = None
        self._shutdown = False

    def _watch(self) -> None:
        """Hold the robot whenever an armed deadline passes; stop it after repeated holds."""
        with self._wake:
            while not self._shutdown:
                if self._deadline is None:
                    self._wake.wait()
                    continue
                remaining = self._deadline - self.clock()
                if remaining > 0:
                    self._wake.wait(timeout=remaining)
                    continue
                self._held = True
                self._overruns += 1
                self._consecutive += 1
                log.warning(
                    "control step overran its %.1f ms period: holding (safe action), %d in a row",
                    self.period * 1e3,
                    self._consecutive,
                )
                try:
                    if self._hold_ended_episode or self.robot.send_action(self._safe.copy()):
                        self._hold_ended_episode = True
                except BaseException as exc:  # surfaced to the loop thread at the end of its step
                    self._error = exc
                if self._error is not None or self._consecutive >= self.max_overruns:
                    self._stop_reason = "watchdog"
                    self._deadline = None
                    log.error(
                        "stopping the robot: %d consecutive control periods overran",
                        self._consecutive,
                    )
                    try:
                        self.robot.safe_stop()
                    except BaseException as exc:
                        self._error = self._error or exc
                else:
                    self._deadline += self.period  # still stuck next period: hold again

    def _stop_watchdog(self, watchdog: threading.Thread | None) -> None:
        with self._wake:
            self._shutdown = True
            self._deadline = None
            self._wake.notify()
        if watchdog is not None:
            watchdog.join()

    def _final_safe_stop(self, error: BaseException | None) -> None:
        """Stop the robot; never let a failing stop hide the exception that ended the run."""
        try:
            with self._lock:
                self.robot.safe_stop()
        except Exception:
            if error is None:
                raise
            log.exception("robot.safe_stop() failed while handling %r", error)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
